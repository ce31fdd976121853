// SPDX-License-Identifier: GPL-2.0

//! Geometry of a TCE window and of the TCEs in it: the argument checks of KVM's
//! `KVM_CREATE_SPAPR_TCE_64`, `H_PUT_TCE`, `H_STUFF_TCE` and `H_GET_TCE`, and the index math of
//! entries and TCE pages. Core-only: shared by the module and the userspace model.

/// TCE permission bit: the device may read the page.
pub(crate) const TCE_PCI_READ: u64 = 1;
/// TCE permission bit: the device may write the page.
pub(crate) const TCE_PCI_WRITE: u64 = 2;
/// Both permission bits.
pub(crate) const TCE_PERM_MASK: u64 = TCE_PCI_READ | TCE_PCI_WRITE;

/// Smallest IOMMU page shift of a window (4 KiB).
pub(crate) const PAGE_SHIFT_MIN: u32 = 12;
/// Largest IOMMU page shift of a window (16 GiB).
pub(crate) const PAGE_SHIFT_MAX: u32 = 34;

/// Why an argument was refused; every reason is `EINVAL` (`H_PARAMETER`) at the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// Window geometry: `size == 0`, page shift out of range, or offset + size overflows.
    Geometry,
    /// An I/O bus address not aligned to the page size, or a range outside the window.
    Ioba,
    /// A valid TCE with bits other than READ/WRITE below the page size (a misaligned address),
    /// or an `H_STUFF_TCE` value with a permission bit.
    Tce,
}

/// Whether `tce` maps a page (any permission bit set); a TCE without one is empty.
pub(crate) const fn tce_is_valid(tce: u64) -> bool {
    tce & TCE_PERM_MASK != 0
}

/// A window of a TCE table: `size` TCEs of `1 << page_shift` bytes from bus page `offset` on.
///
/// # Invariants
///
/// `PAGE_SHIFT_MIN <= page_shift <= PAGE_SHIFT_MAX`, `size > 0` and
/// `offset + size <= u64::MAX >> page_shift`, so every I/O bus address of the window fits a u64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    page_shift: u32,
    offset: u64,
    size: u64,
}

impl Window {
    /// Checks a window as `kvm_vm_ioctl_create_spapr_tce` does.
    pub(crate) const fn new(page_shift: u32, offset: u64, size: u64) -> Result<Self, Invalid> {
        if size == 0 || page_shift < PAGE_SHIFT_MIN || page_shift > PAGE_SHIFT_MAX {
            return Err(Invalid::Geometry);
        }
        match offset.checked_add(size) {
            Some(end) if end <= u64::MAX >> page_shift => {}
            _ => return Err(Invalid::Geometry),
        }
        // INVARIANT: checked just above.
        Ok(Self {
            page_shift,
            offset,
            size,
        })
    }

    /// log2 of the IOMMU page size.
    pub(crate) const fn page_shift(&self) -> u32 {
        self.page_shift
    }

    /// Bus offset of the window, in IOMMU pages.
    pub(crate) const fn offset(&self) -> u64 {
        self.offset
    }

    /// Number of TCEs.
    pub(crate) const fn size(&self) -> u64 {
        self.size
    }

    /// The entry index (0 is the window's first TCE) of `ioba`, after checking that `ioba` is
    /// aligned and that `npages` TCEs from it lie inside the window (`kvmppc_ioba_validate`).
    pub(crate) const fn entry(&self, ioba: u64, npages: u64) -> Result<u64, Invalid> {
        let mask = (1u64 << self.page_shift) - 1;
        let idx = ioba >> self.page_shift;
        if ioba & mask != 0 || idx < self.offset {
            return Err(Invalid::Ioba);
        }
        let entry = idx - self.offset;
        match entry.checked_add(npages) {
            Some(end) if end <= self.size => Ok(entry),
            _ => Err(Invalid::Ioba),
        }
    }

    /// The I/O bus address of `entry`.
    #[allow(dead_code, reason = "used by the userspace model")]
    pub(crate) const fn ioba(&self, entry: u64) -> u64 {
        (entry + self.offset) << self.page_shift
    }

    /// Checks a TCE as `kvmppc_tce_validate` does: a poison TCE (no permission bit) may hold
    /// anything; in a valid one, only the READ and WRITE bits may be set below the page size, so
    /// the address is aligned to the IOMMU page. (Whether the address is guest memory is the
    /// memory slots' check.)
    pub(crate) const fn check_tce(&self, tce: u64) -> Result<(), Invalid> {
        let mask = (1u64 << self.page_shift) - 1;
        if tce_is_valid(tce) && tce & mask & !TCE_PERM_MASK != 0 {
            return Err(Invalid::Tce);
        }
        Ok(())
    }

    /// Checks an `H_STUFF_TCE` value as `kvmppc_h_stuff_tce` does: it may only clear or poison
    /// (no permission bit), whatever its other bits.
    pub(crate) const fn check_stuff(tce: u64) -> Result<(), Invalid> {
        if tce_is_valid(tce) {
            return Err(Invalid::Tce);
        }
        Ok(())
    }
}

/// How TCEs are grouped into TCE pages of the kernel's page size, the unit of allocation.
///
/// # Invariants
///
/// `shift` is log2 of the entries per page, `3 <= PAGE_SHIFT - 3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PageGeometry {
    shift: u32,
}

impl PageGeometry {
    /// TCE pages of `page_size` bytes (a power of two of at least 64 bytes) of u64 TCEs.
    pub(crate) const fn new(page_size: usize) -> Self {
        assert!(page_size.is_power_of_two() && page_size >= 64);
        // INVARIANT: a u64 is 8 bytes; the assert keeps the shift meaningful.
        Self {
            shift: page_size.trailing_zeros() - 3,
        }
    }

    /// TCEs per TCE page.
    pub(crate) const fn entries_per_page(&self) -> u64 {
        1 << self.shift
    }

    /// The TCE page holding `entry`.
    pub(crate) const fn page_of(&self, entry: u64) -> u64 {
        entry >> self.shift
    }

    /// The slot of `entry` inside its TCE page.
    pub(crate) const fn slot_of(&self, entry: u64) -> usize {
        // CAST: masked below the entries of a page.
        (entry & (self.entries_per_page() - 1)) as usize
    }

    /// The first entry of TCE page `page`.
    pub(crate) const fn first_entry(&self, page: u64) -> u64 {
        page << self.shift
    }

    /// TCE pages needed for `entries` TCEs.
    pub(crate) const fn pages_for(&self, entries: u64) -> u64 {
        entries.div_ceil(self.entries_per_page())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_checks_match_kvm() {
        assert_eq!(Window::new(11, 0, 1), Err(Invalid::Geometry));
        assert_eq!(Window::new(35, 0, 1), Err(Invalid::Geometry));
        assert_eq!(Window::new(16, 0, 0), Err(Invalid::Geometry));
        assert!(Window::new(12, 0, 1).is_ok());
        assert!(Window::new(34, 0, 1).is_ok());
        // offset + size must stay <= U64_MAX >> page_shift, without wrapping.
        assert!(Window::new(16, 0, u64::MAX >> 16).is_ok());
        assert_eq!(Window::new(16, 1, u64::MAX >> 16), Err(Invalid::Geometry));
        assert_eq!(Window::new(16, u64::MAX, 2), Err(Invalid::Geometry));
        // The 128 TiB DDW: 2^31 TCEs of 64 KiB.
        let w = Window::new(16, 0, 1 << 31).unwrap();
        assert_eq!(w.size() << w.page_shift(), 128 << 40);
    }

    #[test]
    fn ioba_checks_match_kvm() {
        let w = Window::new(16, 0x10, 100).unwrap();
        let base = 0x10 << 16;
        assert_eq!(w.entry(base, 1), Ok(0));
        assert_eq!(w.entry(base + (99 << 16), 1), Ok(99));
        assert_eq!(w.entry(base + (99 << 16), 2), Err(Invalid::Ioba));
        assert_eq!(w.entry(base + (100 << 16), 1), Err(Invalid::Ioba));
        assert_eq!(w.entry(base - (1 << 16), 1), Err(Invalid::Ioba));
        assert_eq!(w.entry(base + 4096, 1), Err(Invalid::Ioba));
        assert_eq!(w.entry(base, u64::MAX), Err(Invalid::Ioba));
        assert_eq!(w.entry(base, 100), Ok(0));
        assert_eq!(w.ioba(5), base + (5 << 16));
    }

    #[test]
    fn tce_checks_match_kvm() {
        let w = Window::new(16, 0, 8).unwrap();
        assert_eq!(w.check_tce(0), Ok(()));
        assert_eq!(w.check_tce(0x1_0000 | TCE_PCI_READ | TCE_PCI_WRITE), Ok(()));
        assert_eq!(w.check_tce(0x1_1000 | TCE_PCI_READ), Err(Invalid::Tce));
        assert_eq!(w.check_tce(0x1_0000 | 4 | TCE_PCI_WRITE), Err(Invalid::Tce));
        assert_eq!(w.check_tce(u64::MAX), Err(Invalid::Tce));
        // Poison: any value without a permission bit.
        assert_eq!(w.check_tce(0x1_0000 | 4), Ok(()));
        assert_eq!(w.check_tce(!TCE_PERM_MASK), Ok(()));
        assert_eq!(Window::check_stuff(0x1_0ff4), Ok(()));
        assert_eq!(
            Window::check_stuff(0x1_0000 | TCE_PCI_READ),
            Err(Invalid::Tce)
        );
        assert_eq!(Window::check_stuff(TCE_PCI_WRITE), Err(Invalid::Tce));
        assert!(tce_is_valid(TCE_PCI_WRITE));
        assert!(!tce_is_valid(0x1_0000));
    }

    #[test]
    fn page_geometry_of_4k_and_64k_pages() {
        let g4 = PageGeometry::new(4096);
        assert_eq!(g4.entries_per_page(), 512);
        assert_eq!(g4.page_of(1023), 1);
        assert_eq!(g4.slot_of(1023), 511);
        assert_eq!(g4.pages_for(1 << 31), 1 << 22);
        let g64 = PageGeometry::new(65536);
        assert_eq!(g64.entries_per_page(), 8192);
        assert_eq!(g64.first_entry(3), 3 * 8192);
        assert_eq!(g64.pages_for(8193), 2);
    }
}
