// SPDX-License-Identifier: GPL-2.0

//! The replay walk: writes every valid TCE of a table into one IOMMU group, in chunks under the
//! table lock with reschedule points between them, so that a huge replay neither stalls the CPU
//! nor starves concurrent updates. Ours visits only the allocated TCE pages and, inside a page,
//! only its populated entries; two baselines for the benchmarks visit every entry of the window
//! (what QEMU's own replay costs) or every TCE-page slot (what a KVM-style pages[] array costs).

use crate::{
    iommu::{map_entry, IommuBackend},
    shim,
    stats::ReplayStats,
    table::{Table, TcePage, GEO},
    uapi::{KTR_ATTACH_WALK_ENTRIES, KTR_ATTACH_WALK_POPULATED, KTR_ATTACH_WALK_SLOTS},
    window::tce_is_valid,
};
use kernel::{
    prelude::*,
    time::{Instant, Monotonic},
};

/// Slots looked at per hold of the table lock.
const BUDGET: u64 = 16384;

/// How a replay visits the table.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walk {
    /// Allocated pages, populated entries: the normal walk.
    Populated,
    /// Every TCE-page slot of the window, every entry of an allocated page.
    Slots,
    /// Every entry of the window, one lookup each.
    Entries,
}

impl Walk {
    /// The strategy named by `KTR_ATTACH`'s flags.
    pub(crate) fn from_flags(flags: u32) -> Result<Self> {
        match flags {
            KTR_ATTACH_WALK_POPULATED => Ok(Self::Populated),
            KTR_ATTACH_WALK_SLOTS => Ok(Self::Slots),
            KTR_ATTACH_WALK_ENTRIES => Ok(Self::Entries),
            _ => Err(EINVAL),
        }
    }
}

/// Replays into `group` under construction: counts and writes one entry.
struct Replayer<'a> {
    table: &'a Table,
    group: &'a dyn IommuBackend,
    stats: ReplayStats,
}

impl Replayer<'_> {
    fn entry(&mut self, entry: u64, tce: u64) -> Result {
        // Only entries inside the window: the tail of the last page may hold junk written
        // through mmap.
        if tce_is_valid(tce) && entry < self.table.window().size() {
            self.stats.tces += 1;
            self.stats.hw_entries += map_entry(self.group, self.table.window(), entry, tce)?;
        }
        Ok(())
    }

    fn page_populated(&mut self, index: u64, page: &TcePage) -> Result<u64> {
        let first = GEO.first_entry(index);
        page.for_each_populated(|slot, tce| self.entry(first + slot as u64, tce))
    }

    fn page_all(&mut self, index: u64, page: &TcePage) -> Result<u64> {
        let first = GEO.first_entry(index);
        page.for_each_entry(|slot, tce| self.entry(first + slot as u64, tce))?;
        Ok(GEO.entries_per_page())
    }

    /// Walks `from..end` (pages, slots or entries) in chunks of about [`BUDGET`] slots; `step`
    /// handles one position under the table lock and returns the next one and its cost.
    fn chunked(
        &mut self,
        end: u64,
        mut step: impl FnMut(&mut Self, u64) -> Result<(u64, u64)>,
    ) -> Result {
        let mut pos = 0;
        while pos < end {
            let guard = self.table.lock();
            let mut budget = BUDGET;
            while pos < end && budget > 0 {
                let (next, cost) = step(self, pos)?;
                pos = next;
                budget = budget.saturating_sub(cost.max(1));
            }
            drop(guard);
            shim::cond_resched();
        }
        Ok(())
    }
}

/// Writes every valid TCE of `table` into `group` with strategy `walk`.
pub(crate) fn replay(table: &Table, group: &dyn IommuBackend, walk: Walk) -> Result<ReplayStats> {
    let start = Instant::<Monotonic>::now();
    let mut r = Replayer {
        table,
        group,
        stats: ReplayStats::default(),
    };
    let pages = table.page_count();
    match walk {
        Walk::Populated => r.chunked(pages, |r, pos| match r.table.next_page(pos, pages - 1) {
            None => Ok((pages, 1)),
            Some((index, page)) => {
                r.stats.walked += 1;
                let cost = r.page_populated(index, page)?;
                Ok((index + 1, cost))
            }
        })?,
        Walk::Slots => r.chunked(pages, |r, pos| {
            r.stats.walked += 1;
            let cost = match r.table.page(pos) {
                Some(page) => r.page_all(pos, page)?,
                None => 1,
            };
            Ok((pos + 1, cost))
        })?,
        Walk::Entries => r.chunked(table.window().size(), |r, pos| {
            r.stats.walked += 1;
            let tce = r.table.get(pos);
            r.entry(pos, tce)?;
            Ok((pos + 1, 1))
        })?,
    }
    r.stats.ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(0);
    Ok(r.stats)
}
