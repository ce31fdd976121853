// SPDX-License-Identifier: GPL-2.0

//! The pure core: TCE windows, hardware-table geometry, population bitmaps, DMA directions,
//! memory slots, lossless integer conversions and the uapi structs, with no `kernel::` import.
//! Each file is also compiled, as the same source, into the userspace harness and its
//! reference model, so its files name each other through `super::` (the harness mounts them
//! at its crate root).

pub(crate) mod bitwalk;
#[cfg(CONFIG_KVM_TCE_REPLAY_SPAPR)]
pub(crate) mod dma;
// Without an IOMMU backend, the group ABI and the hardware-table math are unused.
#[cfg_attr(
    not(any(CONFIG_KVM_TCE_REPLAY_MOCK, CONFIG_KVM_TCE_REPLAY_SPAPR)),
    allow(dead_code)
)]
pub(crate) mod hwmap;
pub(crate) mod memslots;
pub(crate) mod num;
// Without an IOMMU backend, the group ABI and the hardware-table math are unused.
#[cfg_attr(
    not(any(CONFIG_KVM_TCE_REPLAY_MOCK, CONFIG_KVM_TCE_REPLAY_SPAPR)),
    allow(dead_code)
)]
pub(crate) mod uapi;
#[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
pub(crate) mod uapi_test;
pub(crate) mod window;
