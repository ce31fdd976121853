// SPDX-License-Identifier: GPL-2.0

//! Copying ioctl arguments between userspace and the kernel.
//!
//! Every user range is checked with `access_ok` first. The kernel's copies check it too, except
//! where the architecture masks the address instead (`masked_user_access_begin`): powerpc turns
//! a kernel address into 0x8000000000000000 and counts on that faulting, which it does in a guest
//! but did not on QEMU's powernv9 host (hypervisor mode, radix), where an `H_PUT_TCE_INDIRECT`
//! list at 0xc000000000000000 was read without a fault. Refusing the range here gives EFAULT on
//! every platform.

use crate::{pure::num::usize_as_u64, shim};
use core::mem::size_of;
use kernel::{
    prelude::*,
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice, UserSliceWriter},
};

/// EFAULT unless `len` bytes at `addr` are a range of user addresses (nothing is read or
/// written for 0 bytes, wherever they are).
fn check(addr: usize, len: usize) -> Result {
    if len == 0 {
        return Ok(());
    }
    if shim::user_range_ok(usize_as_u64(addr), usize_as_u64(len)) {
        Ok(())
    } else {
        Err(EFAULT)
    }
}

/// Reads the ioctl argument struct at user address `arg` (EFAULT if it cannot be read).
pub(crate) fn read<T: FromBytes>(arg: usize) -> Result<T> {
    check(arg, size_of::<T>())?;
    UserSlice::new(UserPtr::from_addr(arg), size_of::<T>())
        .reader()
        .read()
}

/// Writes `value` back to the ioctl argument at user address `arg`.
pub(crate) fn write<T: AsBytes>(arg: usize, value: &T) -> Result {
    check(arg, size_of::<T>())?;
    UserSlice::new(UserPtr::from_addr(arg), size_of::<T>())
        .writer()
        .write(value)
}

/// Reads `count` u64s from user address `addr` into `out` (cleared first).
pub(crate) fn read_u64s(addr: u64, count: usize, out: &mut KVec<u64>) -> Result {
    let addr = usize::try_from(addr).map_err(|_| EFAULT)?;
    let len = count.checked_mul(8).ok_or(EINVAL)?;
    check(addr, len)?;
    let mut bytes = KVec::new();
    UserSlice::new(UserPtr::from_addr(addr), len).read_all(&mut bytes, GFP_KERNEL_ACCOUNT)?;
    out.clear();
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        out.push(u64::from_ne_bytes(word), GFP_KERNEL_ACCOUNT)?;
    }
    Ok(())
}

/// A writer of `count` u64s to user address `addr`.
pub(crate) fn u64_writer(addr: u64, count: u64) -> Result<UserSliceWriter> {
    let addr = usize::try_from(addr).map_err(|_| EFAULT)?;
    let len = usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_mul(8))
        .ok_or(EINVAL)?;
    check(addr, len)?;
    Ok(UserSlice::new(UserPtr::from_addr(addr), len).writer())
}
