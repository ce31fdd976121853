// SPDX-License-Identifier: GPL-2.0

//! The KUnit suite (UML, the module built in): the XArray page walk and reservations, every
//! replay strategy against a mock hardware table, updates reaching a published group, and the
//! rate limit of warnings. It sits at the top of the layers, as it puts a table, its walk and a
//! backend together.

#[kernel::macros::kunit_tests(kvm_tce_replay)]
mod tests {
    use crate::{
        guest::GuestMemory,
        iommu::{mock::MockTable, IommuBackend},
        pure::num::usize_as_u64,
        pure::{
            hwmap::HwGeometry,
            uapi_test::KtrMockGroup,
            window::{Window, TCE_PCI_READ, TCE_PCI_WRITE},
        },
        replay::{replay, Walk},
        shim::{RateLimit, SparseMap},
        table::{
            liobn::{LiobnClaim, Liobns},
            Table, GEO,
        },
    };
    use kernel::{prelude::*, sync::Arc};

    /// Window entries given a TCE: the first, two in one page, far ones and the last.
    const ENTRIES: [u64; 6] = [0, 5, 6, 100_000, 3_000_000, (1 << 24) - 1];

    /// A 2^24-entry window of 64 KiB pages with a TCE at each of [`ENTRIES`].
    fn table() -> Result<Arc<Table>> {
        let claim = LiobnClaim::new(Liobns::new()?, 1)?;
        let table = Table::new(
            claim,
            GuestMemory::for_kunit()?,
            Window::new(16, 0, 1 << 24)?,
        )?;
        for (i, &entry) in ENTRIES.iter().enumerate() {
            table.put(entry, ((usize_as_u64(i) + 1) << 16) | TCE_PCI_READ)?;
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
    fn group(table: &Table) -> Result<Arc<MockTable>> {
        MockTable::create(&KtrMockGroup {
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
    fn page_walk_crosses_batches() -> Result {
        // 100 pages at irregular indices: more than three batches of the XArray walk.
        let table = table()?;
        let mut pages = KVec::new();
        for i in 0..100u64 {
            let page = 7 + i * i + 3 * i;
            table.put(GEO.first_entry(page) + i, (1 << 16) | TCE_PCI_READ)?;
            pages.push(page, GFP_KERNEL)?;
        }
        for page in pages_of_entries()? {
            if !pages.contains(&page) {
                pages.push(page, GFP_KERNEL)?;
            }
        }
        pages.sort_unstable();
        let mut walked = KVec::new();
        for (index, _) in table.allocated_pages(0) {
            walked.push(index, GFP_KERNEL)?;
        }
        assert_eq!(&walked[..], &pages[..]);
        // From the middle on: exactly the tail.
        let from = pages[50];
        walked.clear();
        for (index, _) in table.allocated_pages(from) {
            walked.push(index, GFP_KERNEL)?;
        }
        assert_eq!(&walked[..], &pages[50..]);
        Ok(())
    }

    #[test]
    fn every_walk_writes_exactly_the_valid_tces() -> Result {
        let table = table()?;
        let pages_with_tces = usize_as_u64(pages_of_entries()?.len());
        for (walk, walked) in [
            (Walk::Populated, pages_with_tces),
            (Walk::Slots, table.page_count()),
            (Walk::Entries, table.window().size()),
        ] {
            let group = group(&table)?;
            let stats = replay(&table, &*group, walk)?;
            assert_eq!(stats.tces, usize_as_u64(ENTRIES.len()));
            assert_eq!(stats.hw_entries, 16 * usize_as_u64(ENTRIES.len()));
            assert_eq!(stats.walked, walked);
            assert_eq!(
                group.stats().entries_valid,
                16 * usize_as_u64(ENTRIES.len())
            );
            // Each TCE became 16 subpages of consecutive addresses with its permissions:
            // exchanging one for itself gives it back.
            let geo = group.geometry();
            for (i, &entry) in ENTRIES.iter().enumerate() {
                let tce = ((usize_as_u64(i) + 1) << 16) | TCE_PCI_READ;
                for (index, value) in geo.split(table.window(), entry, tce) {
                    assert_eq!(group.xchg(index, value)?, value);
                }
            }
        }
        Ok(())
    }

    #[test]
    fn get_or_insert_leaves_a_reserved_index_alone() -> Result {
        let map = KBox::pin_init(SparseMap::<u64>::new(), GFP_KERNEL)?;
        let reservation = map.reserve(5)?;
        // A reserved index holds no value and is not free either: nothing goes in, and the
        // caller is told so rather than handed a value the map does not hold.
        let got = map.get_or_insert(5, || Ok(KBox::new(7, GFP_KERNEL)?));
        assert_eq!(got.map(|(v, inserted)| (*v, inserted)), Err(EBUSY));
        assert!(map.get(5).is_none());
        drop(reservation);
        // Given back, the index takes a value, once.
        let (v, inserted) = map.get_or_insert(5, || Ok(KBox::new(7, GFP_KERNEL)?))?;
        assert_eq!((*v, inserted), (7, true));
        let (v, inserted) = map.get_or_insert(5, || Ok(KBox::new(8, GFP_KERNEL)?))?;
        assert_eq!((*v, inserted), (7, false));
        assert_eq!(map.get(5).copied(), Some(7));
        Ok(())
    }

    #[test]
    fn a_rate_limit_lets_the_default_burst_through() -> Result {
        // DEFAULT_RATELIMIT_BURST (include/linux/ratelimit_types.h) in a row, then nothing
        // until DEFAULT_RATELIMIT_INTERVAL (5 s) has passed.
        static LIMIT: RateLimit = RateLimit::new(c"kunit");
        let allowed = (0..25).filter(|_| LIMIT.allow()).count();
        assert_eq!(allowed, 10);
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
