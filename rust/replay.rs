// SPDX-License-Identifier: GPL-2.0

//! The replay walk: writes every valid TCE of a table into one IOMMU group, in chunks under the
//! table lock with reschedule points between them, so that a huge replay neither stalls the CPU
//! nor starves concurrent updates. Ours visits only the allocated TCE pages and, inside a page,
//! only its populated entries; two baselines for the benchmarks visit every entry of the window
//! (what QEMU's own replay costs) or every TCE-page slot (what a KVM-style pages[] array costs).

use crate::{
    iommu::{IommuBackend, Runs},
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

/// Replays into a group under construction: counts entries and gathers their hardware writes.
struct Replayer<'a> {
    table: &'a Table,
    runs: Runs<'a>,
    stats: ReplayStats,
}

impl Replayer<'_> {
    fn entry(&mut self, entry: u64, tce: u64) -> Result {
        // Only entries inside the window: the tail of the last page may hold junk written
        // through mmap.
        if tce_is_valid(tce) && entry < self.table.window().size() {
            self.stats.tces += 1;
            self.stats.hw_entries += self.runs.push_entry(self.table.window(), entry, tce)?;
        }
        Ok(())
    }

    fn page_populated(&mut self, index: u64, page: &TcePage) -> Result<u64> {
        let first = GEO.first_entry(index);
        let looked = page.for_each_populated(|slot, tce| self.entry(first + slot as u64, tce))?;
        self.stats.visited += looked;
        Ok(looked)
    }

    fn page_all(&mut self, index: u64, page: &TcePage) -> Result<u64> {
        let first = GEO.first_entry(index);
        page.for_each_entry(|slot, tce| self.entry(first + slot as u64, tce))?;
        self.stats.visited += GEO.entries_per_page();
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
            // The chunk's writes land before the lock lets updates of its entries in.
            self.runs.flush()?;
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
        runs: Runs::new(group)?,
        stats: ReplayStats::default(),
    };
    let pages = table.page_count();
    match walk {
        Walk::Populated => {
            r.chunked(pages, |r, pos| match r.table.allocated_pages(pos).next() {
                None => Ok((pages, 1)),
                Some((index, page)) => {
                    r.stats.walked += 1;
                    let cost = r.page_populated(index, page)?;
                    Ok((index + 1, cost))
                }
            })?
        }
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
            r.stats.visited += 1;
            let tce = r.table.get(pos);
            r.entry(pos, tce)?;
            Ok((pos + 1, 1))
        })?,
    }
    r.stats.ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(0);
    Ok(r.stats)
}

#[cfg(CONFIG_KVM_TCE_REPLAY_KUNIT_TEST)]
#[kernel::macros::kunit_tests(kvm_tce_replay)]
mod tests {
    use super::*;
    use crate::{
        device::{Context, LiobnClaim},
        hwmap::HwGeometry,
        mock_group::MockGroup,
        uapi::KtrMockGroup,
        window::{Window, TCE_PCI_READ, TCE_PCI_WRITE},
    };
    use kernel::sync::Arc;

    /// Window entries given a TCE: the first, two in one page, far ones and the last.
    const ENTRIES: [u64; 6] = [0, 5, 6, 100_000, 3_000_000, (1 << 24) - 1];

    /// A 2^24-entry window of 64 KiB pages with a TCE at each of [`ENTRIES`].
    fn table() -> Result<Arc<Table>> {
        let claim = LiobnClaim::new(Context::new()?, 1)?;
        let table = Table::new(claim, Window::new(16, 0, 1 << 24)?)?;
        for (i, &entry) in ENTRIES.iter().enumerate() {
            table.put(entry, ((i as u64 + 1) << 16) | TCE_PCI_READ)?;
        }
        // Clearing an entry of a page never written allocates nothing.
        table.put(1 << 20, 0)?;
        Ok(table)
    }

    /// The TCE pages holding [`ENTRIES`], in order.
    fn pages_of_entries() -> Result<KVec<u64>> {
        let mut pages = KVec::new();
        for &entry in ENTRIES.iter() {
            let page = GEO.page_of(entry);
            if pages.last() != Some(&page) {
                pages.push(page, GFP_KERNEL)?;
            }
        }
        Ok(pages)
    }

    /// A mock group of 4 KiB pages covering the table's window.
    fn group(table: &Table) -> Result<Arc<MockGroup>> {
        MockGroup::create(&KtrMockGroup {
            it_page_shift: 12,
            // 2^28 entries: four levels of 4 KiB pages (three with 64 KiB pages).
            levels: 4,
            it_offset: 0,
            it_size: table.window().size() << 4,
            flags: 0,
        })
    }

    #[test]
    fn allocated_pages_are_exactly_the_written_ones() -> Result {
        let table = table()?;
        let mut pages = KVec::new();
        for (index, _) in table.allocated_pages(0) {
            pages.push(index, GFP_KERNEL)?;
        }
        assert_eq!(&pages[..], &pages_of_entries()?[..]);
        assert!(table.page(GEO.page_of(1 << 20)).is_none());
        Ok(())
    }

    #[test]
    fn every_walk_writes_exactly_the_valid_tces() -> Result {
        let table = table()?;
        let pages_with_tces = pages_of_entries()?.len() as u64;
        for (walk, walked) in [
            (Walk::Populated, pages_with_tces),
            (Walk::Slots, table.page_count()),
            (Walk::Entries, table.window().size()),
        ] {
            let group = group(&table)?;
            let stats = replay(&table, &*group, walk)?;
            assert_eq!(stats.tces, ENTRIES.len() as u64);
            assert_eq!(stats.hw_entries, 16 * ENTRIES.len() as u64);
            assert_eq!(stats.walked, walked);
            assert_eq!(group.stats().entries_valid, 16 * ENTRIES.len() as u64);
            // Each TCE became 16 subpages of consecutive addresses with its permissions:
            // exchanging one for itself gives it back.
            let geo = group.geometry();
            for (i, &entry) in ENTRIES.iter().enumerate() {
                let tce = ((i as u64 + 1) << 16) | TCE_PCI_READ;
                for (index, value) in geo.split(table.window(), entry, tce) {
                    assert_eq!(group.xchg(index, value)?, value);
                }
            }
        }
        Ok(())
    }

    #[test]
    fn updates_after_publish_reach_the_group() -> Result {
        let table = table()?;
        let group = group(&table)?;
        table.publish(group.clone())?;
        table.put(7, (9 << 16) | TCE_PCI_WRITE)?;
        table.put(0, 0)?;
        let geo: HwGeometry = group.geometry();
        assert_eq!(group.stats().entries_valid, 16);
        for (index, value) in geo.split(table.window(), 7, (9 << 16) | TCE_PCI_WRITE) {
            assert_eq!(group.xchg(index, value)?, value);
        }
        table.unpublish(&*group);
        Ok(())
    }
}
