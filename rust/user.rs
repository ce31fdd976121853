// SPDX-License-Identifier: GPL-2.0

//! Copying ioctl arguments between userspace and the kernel.

use core::mem::size_of;
use kernel::{
    prelude::*,
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice, UserSliceWriter},
};

/// Reads the ioctl argument struct at user address `arg` (EFAULT if it cannot be read).
pub(crate) fn read<T: FromBytes>(arg: usize) -> Result<T> {
    UserSlice::new(UserPtr::from_addr(arg), size_of::<T>())
        .reader()
        .read()
}

/// Writes `value` back to the ioctl argument at user address `arg`.
pub(crate) fn write<T: AsBytes>(arg: usize, value: &T) -> Result {
    UserSlice::new(UserPtr::from_addr(arg), size_of::<T>())
        .writer()
        .write(value)
}

/// Reads `count` u64s from user address `addr` into `out` (cleared first).
pub(crate) fn read_u64s(addr: u64, count: usize, out: &mut KVec<u64>) -> Result {
    let addr = usize::try_from(addr).map_err(|_| EFAULT)?;
    let mut bytes = KVec::new();
    UserSlice::new(UserPtr::from_addr(addr), count * 8).read_all(&mut bytes, GFP_KERNEL_ACCOUNT)?;
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
    Ok(UserSlice::new(UserPtr::from_addr(addr), len).writer())
}
