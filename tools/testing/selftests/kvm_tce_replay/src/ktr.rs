// SPDX-License-Identifier: GPL-2.0

//! Typed wrappers of the module's ioctls over rustix: the device (a context, like a KVM VM fd),
//! TCE table fds and mock IOMMU group fds.

use crate::uapi::*;
use rustix::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::io::{Errno, Result};
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use std::ffi::c_void;

/// Path of the misc device.
pub const DEVICE: &str = "/dev/kvm-tce-replay";

/// One ioctl whose argument is a pointer or an integer and whose return value is kept.
struct Call {
    op: u32,
    arg: *mut c_void,
}

// SAFETY: `arg` is either an integer the kernel does not dereference, or a pointer to a live
// value of the size encoded in `op`, as the callers below guarantee.
unsafe impl Ioctl for Call {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.op as Opcode
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.arg
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> Result<IoctlOutput> {
        Ok(out)
    }
}

/// `ioctl(fd, op, &mut arg)`; `op` must encode `T`'s size.
pub fn ioctl_ref<T>(fd: BorrowedFd<'_>, op: u32, arg: &mut T) -> Result<i32> {
    let call = Call {
        op,
        arg: (arg as *mut T).cast(),
    };
    // SAFETY: `arg` is a live, exclusively borrowed `T`.
    unsafe { rustix::ioctl::ioctl(fd, call) }
}

/// `ioctl(fd, op, value)` for ioctls that take an integer.
pub fn ioctl_val(fd: BorrowedFd<'_>, op: u32, value: usize) -> Result<i32> {
    let call = Call {
        op,
        arg: value as *mut c_void,
    };
    // SAFETY: the kernel reads `value` as an integer for these ioctls, or fails cleanly.
    unsafe { rustix::ioctl::ioctl(fd, call) }
}

fn new_fd(raw: i32) -> Result<OwnedFd> {
    if raw < 0 {
        return Err(Errno::BADF);
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// An open of the device: one context.
pub struct Device(pub OwnedFd);

impl Device {
    pub fn open() -> Result<Self> {
        use rustix::fs::{open, Mode, OFlags};
        Ok(Self(open(
            DEVICE,
            OFlags::RDWR | OFlags::CLOEXEC,
            Mode::empty(),
        )?))
    }

    pub fn check_extension(&self, cap: u32) -> Result<i32> {
        ioctl_val(self.0.as_fd(), KVM_CHECK_EXTENSION, cap as usize)
    }

    pub fn enable_cap_raw(&self, mut req: KvmEnableCap) -> Result<i32> {
        ioctl_ref(self.0.as_fd(), KVM_ENABLE_CAP, &mut req)
    }

    pub fn enable_replay(&self) -> Result<()> {
        self.enable_cap_raw(KvmEnableCap::new(KVM_CAP_SPAPR_TCE_REPLAY))
            .map(drop)
    }
}
