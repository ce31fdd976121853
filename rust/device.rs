// SPDX-License-Identifier: GPL-2.0

//! The misc device /dev/kvm-tce-replay: each open() is one context, like a KVM VM fd, answering
//! KVM's `KVM_CHECK_EXTENSION` and `KVM_ENABLE_CAP`.

use crate::uapi::{
    KvmEnableCap, KVM_CAP_SPAPR_TCE_64, KVM_CAP_SPAPR_TCE_REPLAY, KVM_CHECK_EXTENSION,
    KVM_ENABLE_CAP,
};
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    fs::File,
    ioctl::_IOC_SIZE,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    transmute::FromBytes,
    uaccess::{UserPtr, UserSlice},
};

// SAFETY: `KvmEnableCap` is `repr(C)` of integers and byte arrays: every bit pattern is valid.
unsafe impl FromBytes for KvmEnableCap {}

/// One open of the device: the equivalent of a KVM VM.
pub(crate) struct Context {
    /// `KVM_CAP_SPAPR_TCE_REPLAY` was enabled: attach replays.
    replay: AtomicBool,
}

impl Context {
    fn check_extension(cap: usize) -> isize {
        match u32::try_from(cap) {
            Ok(KVM_CAP_SPAPR_TCE_64 | KVM_CAP_SPAPR_TCE_REPLAY) => 1,
            _ => 0,
        }
    }

    fn enable_cap(&self, arg: usize, size: usize) -> Result<isize> {
        let req: KvmEnableCap = UserSlice::new(UserPtr::from_addr(arg), size)
            .reader()
            .read()?;
        if req.cap != KVM_CAP_SPAPR_TCE_REPLAY {
            return Err(EINVAL);
        }
        if req.flags != 0 || req.args != [0; 4] || req.pad != [0; 64] {
            return Err(EINVAL);
        }
        self.replay.store(true, Ordering::Release);
        Ok(0)
    }
}

#[vtable]
impl MiscDevice for Context {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        Ok(KBox::new(
            Self {
                replay: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?)
    }

    fn ioctl(me: &Context, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            KVM_CHECK_EXTENSION => Ok(Self::check_extension(arg)),
            KVM_ENABLE_CAP => me.enable_cap(arg, _IOC_SIZE(cmd)),
            _ => Err(ENOTTY),
        }
    }
}
