// SPDX-License-Identifier: GPL-2.0

//! kvm-tce-replay: sPAPR TCE tables with KVM's ioctls whose IOMMU-group attach replays the valid
//! TCEs into the group, walking only the allocated TCE pages.

// The layers, bottom up; a file imports only from layers below its own (checked by the
// harness's host test `layers`, see Documentation/design.rst).

// 1. The pure core: no `kernel::` import; shared, as one source, with the userspace harness.
mod pure;
// 2. The shim: every raw binding and every `unsafe` block of the module.
mod shim;
// 3. Kernel services: memory accounting, user copies, statistics, a context's guest memory.
mod accounting;
mod guest;
mod stats;
mod user;
// 4. The IOMMU backend interface (`iommu.rs`, its backends in `iommu/` sit at 6).
// Without an IOMMU backend, the group ABI and the hardware-table math are unused.
#[cfg_attr(
    not(any(CONFIG_KVM_TCE_REPLAY_MOCK, CONFIG_KVM_TCE_REPLAY_SPAPR)),
    allow(dead_code)
)]
mod iommu;
// 5. The table and its walk.
mod replay;
mod table;
// 6. The backends: `iommu/mock.rs`, `iommu/spapr.rs` (declared in `iommu.rs`).
// 7. The device and its ioctl dispatch; attach and detach.
mod attach;
mod device;
#[cfg(CONFIG_KVM_TCE_REPLAY_KUNIT_TEST)]
mod kunit;

use kernel::{
    debugfs::{Dir, File},
    miscdevice::{MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
};

module! {
    type: KvmTceReplayModule,
    name: "kvm_tce_replay",
    authors: ["kvm-tce-replay developers"],
    description: "sPAPR TCE tables whose IOMMU group attach replays the valid TCEs",
    license: "GPL",
    params: {
        mock: bool {
            default: false,
            description: "Allow mock IOMMU groups (test backend; needs CONFIG_KVM_TCE_REPLAY_MOCK)",
        },
    },
}

/// Every argument the shared checks refuse is `EINVAL` (`H_PARAMETER` for the hcalls).
impl From<pure::window::Invalid> for Error {
    fn from(_: pure::window::Invalid) -> Self {
        EINVAL
    }
}

#[pin_data]
struct KvmTceReplayModule {
    _debugfs: Dir,
    #[pin]
    _tables: File<stats::Summary>,
    #[pin]
    _miscdev: MiscDeviceRegistration<device::Context>,
}

impl kernel::InPlaceModule for KvmTceReplayModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let debugfs = Dir::new(c"kvm_tce_replay");
        try_pin_init!(Self {
            _tables <- debugfs.read_only_file(c"tables", stats::Summary),
            _miscdev <- MiscDeviceRegistration::register(MiscDeviceOptions {
                name: c"kvm-tce-replay",
            }),
            _debugfs: debugfs,
        })
    }
}
