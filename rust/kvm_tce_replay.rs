// SPDX-License-Identifier: GPL-2.0

//! kvm-tce-replay: sPAPR TCE tables with KVM's ioctls whose IOMMU-group attach replays the valid
//! TCEs into the group, walking only the allocated TCE pages.

mod accounting;
mod attach;
mod bitwalk;
mod device;
mod hwmap;
mod iommu;
#[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
mod mock_group;
mod replay;
mod shim;
mod table;
mod uapi;
mod user;
mod window;

use kernel::{
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
    #[pin]
    _miscdev: MiscDeviceRegistration<device::Context>,
}

impl kernel::InPlaceModule for KvmTceReplayModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _miscdev <- MiscDeviceRegistration::register(MiscDeviceOptions {
                name: c"kvm-tce-replay",
            }),
        })
    }
}
