// SPDX-License-Identifier: GPL-2.0

//! kvm-tce-replay: sPAPR TCE tables with KVM's ioctls whose IOMMU-group attach replays the valid
//! TCEs into the group, walking only the allocated TCE pages.

mod accounting;
mod attach;
mod bitwalk;
mod device;
#[cfg(CONFIG_KVM_TCE_REPLAY_SPAPR)]
mod dma;
mod guest;
// Without an IOMMU backend, the group ABI and the hardware-table math are unused.
#[cfg_attr(
    not(any(CONFIG_KVM_TCE_REPLAY_MOCK, CONFIG_KVM_TCE_REPLAY_SPAPR)),
    allow(dead_code)
)]
mod hwmap;
mod memslots;
// Without an IOMMU backend, the group ABI and the hardware-table math are unused.
#[cfg_attr(
    not(any(CONFIG_KVM_TCE_REPLAY_MOCK, CONFIG_KVM_TCE_REPLAY_SPAPR)),
    allow(dead_code)
)]
mod iommu;
#[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
mod mock_group;
mod replay;
mod shim;
#[cfg(CONFIG_KVM_TCE_REPLAY_SPAPR)]
mod spapr_group;
mod stats;
mod table;
// Without an IOMMU backend, the group ABI and the hardware-table math are unused.
#[cfg_attr(
    not(any(CONFIG_KVM_TCE_REPLAY_MOCK, CONFIG_KVM_TCE_REPLAY_SPAPR)),
    allow(dead_code)
)]
mod uapi;
#[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
mod uapi_test;
mod user;
mod window;

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
impl From<window::Invalid> for Error {
    fn from(_: window::Invalid) -> Self {
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
        stats::init();
        iommu::init();
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
