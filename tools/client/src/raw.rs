// SPDX-License-Identifier: GPL-2.0

//! The ioctl plumbing under the typed API, and its escape hatch for tests: ioctls with any
//! number and any argument, as a fuzzer or a hostile-argument test issues them. A VMM never needs
//! this module.

use crate::Result;
use rustix::fd::{AsFd, FromRawFd, OwnedFd};
use rustix::io::Errno;
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};

/// Ioctls issued by this process through the crate.
static IOCTLS: AtomicU64 = AtomicU64::new(0);

/// The number of ioctls this process issued through the crate so far (a fuzzer's report).
///
/// ```no_run
/// use kvm_tce_replay::{raw, Cap, TceReplay};
///
/// let before = raw::ioctls_issued();
/// TceReplay::new()?.check_extension(Cap::SpaprTce64)?;
/// assert_eq!(raw::ioctls_issued(), before + 1);
/// # Ok::<(), kvm_tce_replay::Error>(())
/// ```
pub fn ioctls_issued() -> u64 {
    IOCTLS.load(Ordering::Relaxed)
}

/// One ioctl whose argument is a pointer or an integer and whose return value is kept.
struct Call {
    op: u32,
    arg: *mut c_void,
}

// SAFETY: `arg` is either an integer the kernel does not dereference, or a pointer to a live
// value of the size encoded in `op`, as the callers of `issue` guarantee.
unsafe impl Ioctl for Call {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.op as Opcode
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.arg
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// `ioctl(fd, op, arg)`.
///
/// # Safety
///
/// `arg` is an integer `op` does not dereference, or points to memory that `op` may read and
/// write (its size, `_IOC_SIZE(op)`, at least).
unsafe fn issue(fd: impl AsFd, op: u32, arg: *mut c_void) -> Result<i32> {
    IOCTLS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: as the caller guarantees.
    Ok(unsafe { rustix::ioctl::ioctl(fd, Call { op, arg }) }?)
}

/// An argument struct of the ABI: `#[repr(C)]` plain data the kernel may overwrite with any
/// bytes.
///
/// # Safety
///
/// Every bit pattern is a valid value of the type.
pub(crate) unsafe trait Pod: Sized {}

// SAFETY: every type below is a `#[repr(C)]` struct of integers (or an integer).
unsafe impl Pod for u64 {}
macro_rules! pod {
    ($($t:ty = $c:literal ($n:literal)),* $(,)?) => { $(
        // SAFETY: a `#[repr(C)]` struct of integers and integer arrays.
        unsafe impl Pod for $t {}
    )* };
}
crate::ktr_uapi_structs!(pod! crate::uapi);
#[cfg(feature = "mock")]
crate::ktr_uapi_test_structs!(pod! crate::uapi_test);

/// `ioctl(fd, op, &mut arg)` for the ABI's own commands: `op` is one of the ABI's numbers whose
/// argument is a `T` (its `_IOC_SIZE` is `size_of::<T>()`), and any user pointer inside `arg`
/// is valid for what the command does with it.
pub(crate) fn ioctl_arg<T: Pod>(fd: impl AsFd, op: u32, arg: &mut T) -> Result<i32> {
    debug_assert_eq!(((op >> 16) & 0x1fff) as usize, size_of::<T>() & 0x1fff);
    // SAFETY: `arg` is a live, exclusively borrowed `T` of the size `op` encodes, and every bit
    // pattern the kernel may write is a valid `T`.
    unsafe { issue(fd, op, (arg as *mut T).cast()) }
}

/// `ioctl(fd, op, value)` for the ABI's commands that take an integer.
pub(crate) fn ioctl_int(fd: impl AsFd, op: u32, value: usize) -> Result<i32> {
    // SAFETY: `op` reads `value` as an integer.
    unsafe { issue(fd, op, value as *mut c_void) }
}

/// Takes ownership of the fd an ioctl returned.
pub(crate) fn new_fd(raw: i32) -> Result<OwnedFd> {
    if raw < 0 {
        return Err(Errno::BADF.into());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// For tests: `ioctl(fd, op, arg)` with any command number and a pointer to `arg`, whatever
/// size `op` encodes (a fuzzer's or a hostile test's call); returns the ioctl's return value.
///
/// # Safety
///
/// The kernel may read and write `_IOC_SIZE(op)` bytes at `arg` (and whatever user pointers
/// inside it point to): `op` must encode at most `size_of::<T>()`, every bit pattern must be a
/// valid `T`, and the pointers inside must be valid for what `op` does with them, or `op` must
/// be a command the fd refuses before touching memory.
///
/// ```no_run
/// use kvm_tce_replay::{raw, TceReplay};
///
/// let ktr = TceReplay::new()?;
/// let mut arg = 0u64;
/// // An unknown command of KVM's type: ENOTTY.
/// // SAFETY: the module refuses an unknown command without touching `arg`.
/// let err = unsafe { raw::ioctl_with_mut_ref(&ktr, 0xc008_ae7f, &mut arg) }.unwrap_err();
/// assert_eq!(err.errno(), kvm_tce_replay::Errno::NOTTY);
/// # Ok::<(), kvm_tce_replay::Error>(())
/// ```
pub unsafe fn ioctl_with_mut_ref<T>(fd: impl AsFd, op: u32, arg: &mut T) -> Result<i32> {
    // SAFETY: as the caller guarantees.
    unsafe { issue(fd, op, (arg as *mut T).cast()) }
}

/// For tests: `ioctl(fd, op, value)` with any command number and an integer argument; returns
/// the ioctl's return value.
///
/// # Safety
///
/// `op` reads `value` as an integer, or is a command the fd refuses before touching memory, or
/// `value` is an address that `op` may read and write as it does.
///
/// ```no_run
/// use kvm_tce_replay::{raw, uapi::KVM_CHECK_EXTENSION, TceReplay};
///
/// let ktr = TceReplay::new()?;
/// // SAFETY: KVM_CHECK_EXTENSION reads its argument as an integer.
/// let v = unsafe { raw::ioctl_with_val(&ktr, KVM_CHECK_EXTENSION, 125) }?;
/// assert_eq!(v, 1);
/// # Ok::<(), kvm_tce_replay::Error>(())
/// ```
pub unsafe fn ioctl_with_val(fd: impl AsFd, op: u32, value: usize) -> Result<i32> {
    // SAFETY: as the caller guarantees.
    unsafe { issue(fd, op, value as *mut c_void) }
}
