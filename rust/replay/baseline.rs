// SPDX-License-Identifier: GPL-2.0

//! The benchmarks' baseline walks (test configuration only, `KTR_ATTACH_WALK_*`): every
//! TCE-page slot of the window, as a KVM-style `pages[]` array would be walked, or every entry,
//! as QEMU's own replay reads them. The production module carries neither.

use super::{Next, Replayer};
use crate::table::GEO;

impl<'a> Replayer<'a> {
    /// [`super::Walk::Slots`]: the page slot of `from` (one look), and its entry if the page is
    /// allocated.
    pub(super) fn next_slot(&mut self, from: u64) -> Next<'a> {
        let index = GEO.page_of(from);
        self.enter_page(index);
        self.chunk.spend(1);
        let page = match self.page {
            Some((at, page)) if at == index => Some(page),
            _ => self
                .table
                .page(index)
                .inspect(|&page| self.page = Some((index, page))),
        };
        match page {
            Some(page) => {
                self.stats.visited += 1;
                Next::Entry(from, page.load(GEO.slot_of(from)))
            }
            None => Next::Skip(GEO.first_entry(index + 1)),
        }
    }

    /// [`super::Walk::Entries`]: entry `from`, one lookup.
    pub(super) fn next_entry(&mut self, from: u64) -> Next<'a> {
        self.stats.walked += 1;
        self.stats.visited += 1;
        self.chunk.spend(1);
        Next::Entry(from, self.table.get(from))
    }
}
