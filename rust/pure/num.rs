// SPDX-License-Identifier: GPL-2.0

//! Lossless conversions between `usize` and `u64` (the kernel's `unsigned long` and the ABI's
//! `__u64`), which the standard library leaves to `as` because they depend on the target: the
//! module is for 64-bit kernels only, so both are one width, checked here once at build time
//! instead of at every cast (as nova-core's num.rs does).

const _: () = assert!(
    usize::BITS == u64::BITS,
    "kvm-tce-replay is for 64-bit targets"
);

/// Converts a `usize` (a length, an index, a page offset) into a `u64`, losslessly.
#[inline(always)]
pub(crate) const fn usize_as_u64(value: usize) -> u64 {
    value as u64
}

/// Converts a `u64` (an entry index, an address of the ABI) into a `usize`, losslessly.
#[inline(always)]
pub(crate) const fn u64_as_usize(value: u64) -> usize {
    value as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for v in [0, 1, u64::from(u32::MAX) + 1, u64::MAX] {
            assert_eq!(usize_as_u64(u64_as_usize(v)), v);
        }
    }
}
