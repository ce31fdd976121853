// SPDX-License-Identifier: GPL-2.0

//! A page of TCEs seen through the kernel's direct map as u64 atomics.

use core::{ptr::NonNull, sync::atomic::AtomicU64};
use kernel::{
    bindings,
    page::{Page, PAGE_SIZE},
    prelude::*,
};

#[cfg(CONFIG_HIGHMEM)]
compile_error!("TCE pages are used through the kernel's direct map, which needs !CONFIG_HIGHMEM");

/// A page of TCEs, seen through the kernel's direct map as u64 atomics (userspace may write the
/// same memory through mmap at any time), its address looked up once.
///
/// # Invariants
///
/// `words` is the direct-map address of `page`, PAGE_SIZE bytes, page aligned.
pub(crate) struct WordPage {
    page: Page,
    words: NonNull<AtomicU64>,
}

// SAFETY: the page is owned (`Page` is `Send`); `words` only points into it and is only used as
// atomics, which any thread may do.
unsafe impl Send for WordPage {}
// SAFETY: as above: shared access goes through atomics.
unsafe impl Sync for WordPage {}

impl WordPage {
    /// A zeroed page, charged to the caller's memory cgroup.
    pub(crate) fn new_zeroed() -> Result<Self> {
        let page = Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?;
        // SAFETY: without CONFIG_HIGHMEM (checked at the top of this file) `kmap_local_page`
        // returns `page_address()` and `kunmap_local` does nothing, so the address is the page's
        // permanent direct-map address, valid for as long as the page is allocated.
        let addr = unsafe {
            let addr = bindings::kmap_local_page(page.as_ptr());
            bindings::kunmap_local(addr);
            addr
        };
        let words = NonNull::new(addr.cast::<AtomicU64>()).ok_or(ENOMEM)?;
        // INVARIANT: the direct-map address of `page`.
        Ok(Self { page, words })
    }

    /// The page, for mapping it into userspace.
    pub(crate) fn page(&self) -> &Page {
        &self.page
    }

    /// The page's u64 words.
    pub(crate) fn words(&self) -> &[AtomicU64] {
        // SAFETY: by the type invariant, PAGE_SIZE bytes, aligned, alive while `self` is, and
        // only ever accessed as u64 atomics.
        unsafe { core::slice::from_raw_parts(self.words.as_ptr(), PAGE_SIZE / 8) }
    }
}
