// SPDX-License-Identifier: GPL-2.0

//! The DMA direction (`enum dma_data_direction`) a TCE's permission bits stand for, both ways, as
//! `iommu_tce_direction` and `iommu_direction_to_tce_perm` convert them for the real IOMMU
//! backend. Core-only: shared with the userspace tests.

use super::window::{TCE_PCI_READ, TCE_PCI_WRITE, TCE_PERM_MASK};

/// `DMA_BIDIRECTIONAL` of the kernel's `enum dma_data_direction`.
pub(crate) const DMA_BIDIRECTIONAL: u32 = 0;
/// `DMA_TO_DEVICE`: the device reads memory.
pub(crate) const DMA_TO_DEVICE: u32 = 1;
/// `DMA_FROM_DEVICE`: the device writes memory.
pub(crate) const DMA_FROM_DEVICE: u32 = 2;
/// `DMA_NONE`: no mapping.
pub(crate) const DMA_NONE: u32 = 3;

/// The DMA direction of a TCE's permissions (`iommu_tce_direction`).
pub(crate) const fn tce_direction(tce: u64) -> u32 {
    match tce & TCE_PERM_MASK {
        TCE_PERM_MASK => DMA_BIDIRECTIONAL,
        TCE_PCI_READ => DMA_TO_DEVICE,
        TCE_PCI_WRITE => DMA_FROM_DEVICE,
        _ => DMA_NONE,
    }
}

/// The TCE permissions of a DMA direction (`iommu_direction_to_tce_perm`).
pub(crate) const fn direction_perm(dir: u32) -> u64 {
    match dir {
        DMA_BIDIRECTIONAL => TCE_PERM_MASK,
        DMA_TO_DEVICE => TCE_PCI_READ,
        DMA_FROM_DEVICE => TCE_PCI_WRITE,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_round_trip_like_the_kernel() {
        for perm in 0..4 {
            assert_eq!(direction_perm(tce_direction(0x1000 | perm)), perm);
        }
        assert_eq!(tce_direction(TCE_PCI_READ), DMA_TO_DEVICE);
        assert_eq!(tce_direction(TCE_PCI_WRITE), DMA_FROM_DEVICE);
        assert_eq!(tce_direction(0x1000), DMA_NONE);
        assert_eq!(direction_perm(7), 0);
    }
}
