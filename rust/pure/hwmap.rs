// SPDX-License-Identifier: GPL-2.0

//! How a window's TCEs land in an IOMMU group's hardware table: the compatibility checks of
//! `kvm_spapr_tce_attach_iommu_group`, the subpage split of `kvmppc_tce_iommu_map`, and the
//! level indices of a multi-level table like powernv's. Core-only: shared with the userspace model.

use super::window::{Window, TCE_PERM_MASK};

/// Most levels of a hardware table (powernv allows 5).
#[allow(dead_code, reason = "used by the mock backend, absent in production")]
pub(crate) const LEVELS_MAX: u32 = 5;

/// Geometry of a hardware TCE table (`struct iommu_table`: it_page_shift, it_offset, it_size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HwGeometry {
    /// log2 of the hardware IOMMU page size.
    pub it_page_shift: u32,
    /// Bus offset of the table, in hardware pages.
    pub it_offset: u64,
    /// Number of hardware entries.
    pub it_size: u64,
}

impl HwGeometry {
    /// Whether a window can be attached: the hardware page is not larger than the window's, both
    /// start at the same bus address and the hardware table covers the whole window.
    pub(crate) fn compatible(&self, w: &Window) -> bool {
        if self.it_page_shift > w.page_shift() {
            return false;
        }
        let hw_start = u128::from(self.it_offset) << self.it_page_shift;
        let hw_len = u128::from(self.it_size) << self.it_page_shift;
        let w_start = u128::from(w.offset()) << w.page_shift();
        let w_len = u128::from(w.size()) << w.page_shift();
        hw_start == w_start && hw_len >= w_len
    }

    /// Hardware entries per window entry. Only for compatible windows.
    pub(crate) fn subpages(&self, w: &Window) -> u64 {
        1 << (w.page_shift() - self.it_page_shift)
    }

    /// The hardware entry of window entry `entry`'s first subpage: the global I/O entry, less
    /// the table's offset, as iommu_tce_xchg does (for a compatible geometry).
    pub(crate) fn first_index(&self, w: &Window, entry: u64) -> u64 {
        let shift = w.page_shift() - self.it_page_shift;
        ((entry + w.offset()) << shift) - self.it_offset
    }

    /// The hardware entries that stand for window entry `entry` holding `tce`, as
    /// (hardware index, value) pairs: a valid TCE is split into subpages of consecutive addresses
    /// with the same permissions, an empty one clears them all. Only for compatible windows and
    /// TCEs that pass [`Window::check_tce`] (their address is aligned to the window's page, so
    /// the subpages' addresses cannot overflow).
    pub(crate) fn split(
        &self,
        w: &Window,
        entry: u64,
        tce: u64,
    ) -> impl Iterator<Item = (u64, u64)> {
        self.split_range(w, entry, tce, 0..self.subpages(w))
    }

    /// The subpages `subs` of [`HwGeometry::split`], for a replay that stops inside a TCE.
    pub(crate) fn split_range(
        &self,
        w: &Window,
        entry: u64,
        tce: u64,
        subs: core::ops::Range<u64>,
    ) -> impl Iterator<Item = (u64, u64)> {
        let first = self.first_index(w, entry);
        let perm = tce & TCE_PERM_MASK;
        let addr = tce & !TCE_PERM_MASK;
        let it_page_shift = self.it_page_shift;
        subs.map(move |i| {
            let value = if perm == 0 {
                0
            } else {
                (addr + (i << it_page_shift)) | perm
            };
            (first + i, value)
        })
    }
}

/// Index math of a multi-level hardware table whose every level is one page of u64 slots.
///
/// # Invariants
///
/// `1 <= levels <= LEVELS_MAX` and `levels * bits <= 64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code, reason = "used by the mock backend, absent in production")]
pub(crate) struct Levels {
    levels: u32,
    bits: u32,
}

#[allow(dead_code, reason = "used by the mock backend, absent in production")]
impl Levels {
    /// A table of `levels` levels of `1 << bits` slots each, able to hold `it_size` entries;
    /// `None` if the levels are out of range or cannot hold `it_size` entries.
    pub(crate) fn new(levels: u32, bits: u32, it_size: u64) -> Option<Self> {
        if levels == 0 || levels > LEVELS_MAX || it_size == 0 {
            return None;
        }
        let total = levels.checked_mul(bits)?;
        if total < 64 && it_size > 1u64 << total {
            return None;
        }
        // INVARIANT: checked above; `total < 64` or the table addresses every u64.
        Some(Self { levels, bits })
    }

    /// Number of levels.
    pub(crate) fn levels(&self) -> u32 {
        self.levels
    }

    /// Slots per level.
    pub(crate) fn slots(&self) -> usize {
        1 << self.bits
    }

    /// The slot of `index` at `level` (0 is the top level, `levels - 1` holds the entries).
    pub(crate) fn slot(&self, index: u64, level: u32) -> usize {
        let shift = (self.levels - 1 - level) * self.bits;
        if shift >= 64 {
            return 0;
        }
        // CAST: masked below the slots of a level.
        ((index >> shift) & ((1u64 << self.bits) - 1)) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_matches_kvm() {
        let w = Window::new(16, 0x800, 1 << 20).unwrap();
        let hw = |it_page_shift, it_offset, it_size| HwGeometry {
            it_page_shift,
            it_offset,
            it_size,
        };
        assert!(hw(16, 0x800, 1 << 20).compatible(&w));
        assert!(hw(12, 0x800 << 4, 1 << 24).compatible(&w));
        assert!(!hw(12, 0x800 << 4, (1 << 24) - 1).compatible(&w));
        assert!(!hw(21, 0x800 >> 5, 1 << 20).compatible(&w));
        assert!(!hw(16, 0x801, 1 << 21).compatible(&w));
    }

    #[test]
    fn split_into_subpages() {
        let w = Window::new(16, 2, 10).unwrap();
        let hw = HwGeometry {
            it_page_shift: 12,
            it_offset: 2 << 4,
            it_size: 160,
        };
        let v: Vec<_> = hw.split(&w, 3, 0x7_0000 | 1).collect();
        assert_eq!(v.len(), 16);
        assert_eq!(v[0], (48, 0x7_0001));
        assert_eq!(v[15], (63, 0x7_f001));
        assert!(hw.split(&w, 3, 0).all(|(_, value)| value == 0));
        assert_eq!(hw.subpages(&w), 16);
        let tail: Vec<_> = hw.split_range(&w, 3, 0x7_0000 | 1, 14..16).collect();
        assert_eq!(tail, v[14..]);
        // The highest aligned address splits without overflow.
        let top = (u64::MAX << 16) | 2;
        assert_eq!(hw.split(&w, 3, top).last(), Some((63, u64::MAX << 12 | 2)));
        let same = HwGeometry {
            it_page_shift: 16,
            it_offset: 2,
            it_size: 10,
        };
        assert_eq!(
            same.split(&w, 9, 0x5_0003).collect::<Vec<_>>(),
            [(9, 0x5_0003)]
        );
    }

    #[test]
    fn level_slots() {
        assert!(Levels::new(0, 9, 1).is_none());
        assert!(Levels::new(6, 9, 1).is_none());
        assert!(Levels::new(2, 9, (1 << 18) + 1).is_none());
        let l = Levels::new(3, 9, 1 << 27).unwrap();
        let index = (5 << 18) | (7 << 9) | 11;
        assert_eq!(
            [l.slot(index, 0), l.slot(index, 1), l.slot(index, 2)],
            [5, 7, 11]
        );
        assert_eq!(l.slots(), 512);
    }
}
