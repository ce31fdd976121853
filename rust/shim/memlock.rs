// SPDX-License-Identifier: GPL-2.0

//! The RLIMIT_MEMLOCK charge of a context's TCE pages to its address space's `pinned_vm`.

use kernel::{
    ffi::{c_int, c_ulong, c_void},
    mm::Mm,
    prelude::*,
    sync::aref::ARef,
};

// The module's C helpers (ktr_helpers.h). `struct mm_struct` goes as `void *`: its binding
// holds a type rustc does not deem FFI-safe.
extern "C" {
    fn ktr_charge_memlock(mm: *mut c_void, pages: c_ulong) -> c_int;
    fn ktr_uncharge_memlock(mm: *mut c_void, pages: c_ulong);
}

/// Pages charged to an address space's `pinned_vm` against RLIMIT_MEMLOCK, given back when
/// dropped.
///
/// # Invariants
///
/// `pages` pages were added to `mm`'s `pinned_vm` by `ktr_charge_memlock`.
pub(crate) struct MemlockCharge {
    mm: ARef<Mm>,
    pages: c_ulong,
}

impl MemlockCharge {
    /// Charges `pages` pages to `mm`: ENOMEM past the caller's RLIMIT_MEMLOCK, unless it has
    /// CAP_IPC_LOCK. Never sleeps (see ktr_helpers.c).
    pub(crate) fn new(mm: &Mm, pages: usize) -> Result<Self> {
        let pages = c_ulong::try_from(pages).map_err(|_| ENOMEM)?;
        // SAFETY: `mm` is a live address space (the reference keeps at least its `mm_count`).
        kernel::error::to_result(unsafe { ktr_charge_memlock(mm.as_raw().cast(), pages) })?;
        // INVARIANT: charged just above.
        Ok(Self {
            mm: mm.into(),
            pages,
        })
    }
}

impl Drop for MemlockCharge {
    fn drop(&mut self) {
        // SAFETY: by the type invariant; `ARef<Mm>` (mmgrab) keeps the `mm_struct` and its
        // `pinned_vm` alive even after the address space is torn down.
        unsafe { ktr_uncharge_memlock(self.mm.as_raw().cast(), self.pages) };
    }
}
