// SPDX-License-Identifier: GPL-2.0

//! Module-wide memory accounting: every allocation of tables and mock groups carries an
//! [`Accounted`] token that counts its bytes while it lives (`KTR_MEM_STATS`, debugfs).

use crate::pure::num::usize_as_u64;
use core::sync::atomic::{AtomicU64, Ordering};

/// Bytes live in a category.
pub(crate) struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Bytes live now.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Tables: their structs and TCE pages.
pub(crate) static TABLES: Counter = Counter::new();
/// Mock IOMMU groups: their structs and hardware-table pages.
pub(crate) static MOCK: Counter = Counter::new();

/// `bytes` counted in a [`Counter`] for as long as the token lives.
pub(crate) struct Accounted {
    counter: &'static Counter,
    bytes: u64,
}

impl Accounted {
    /// Counts `bytes` in `counter` until the token is dropped.
    pub(crate) fn new(counter: &'static Counter, bytes: usize) -> Self {
        let bytes = usize_as_u64(bytes);
        counter.0.fetch_add(bytes, Ordering::Relaxed);
        Self { counter, bytes }
    }
}

impl Drop for Accounted {
    fn drop(&mut self) {
        self.counter.0.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}
