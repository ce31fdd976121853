// SPDX-License-Identifier: GPL-2.0

//! The replay walk: writes every valid TCE of a table into one IOMMU group, in chunks under the
//! table lock with a reschedule point and a fatal-signal check between them, so that a huge
//! replay neither stalls the CPU, nor starves concurrent updates, nor outlives a killed VMM. A
//! chunk's budget counts work: entry slots looked at plus hardware entries written, so a 16 GiB
//! TCE split into 4 KiB hardware pages (2^22 entries) spans many chunks. Ours visits only the
//! allocated TCE pages and, inside a page, only its populated entries; two baselines for the
//! benchmarks (test configuration only) visit every entry of the window (what QEMU's own replay
//! costs) or every TCE-page slot (what a KVM-style pages[] array costs).
//!
//! Every value the walk reads passes `H_PUT_TCE`'s checks ([`Table::validate`]) or is skipped and
//! counted: userspace may write anything through mmap, and KVM's handlers refuse such values.
//!
//! The baselines are in [`baseline`], built only in the test configuration.

#[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
mod baseline;

use crate::{
    iommu::{IommuBackend, Runs},
    pure::num::{u64_as_usize, usize_as_u64},
    pure::window::{tce_is_valid, TCE_PERM_MASK},
    shim::{self, SparseIter},
    stats::ReplayStats,
    table::{Table, TableState, TcePage, GEO},
};
use kernel::{
    prelude::*,
    time::{Instant, Monotonic},
};

/// Work units (entry slots looked at plus hardware entries written) per hold of the table lock.
const BUDGET: u64 = 16384;

/// Longest span of consecutive entries a replay copies out of a TCE page and checks at once
/// (4 KiB of TCEs).
const SPAN: usize = 512;

/// One hold of the table lock: the work it has done against [`BUDGET`], and where the walk
/// resumes.
#[derive(Default)]
struct Chunk {
    /// Work units spent in this chunk (reset when the next one starts).
    spent: u64,
    /// The entry the walk resumes at, from its hardware subpage `sub` on (`sub > 0` only inside
    /// a TCE split over chunks, whose value is `partial`).
    entry: u64,
    sub: u64,
    partial: u64,
}

impl Chunk {
    /// Counts `units` of work.
    fn spend(&mut self, units: u64) {
        self.spent += units;
    }

    /// Work units left in this chunk.
    fn left(&self) -> u64 {
        BUDGET.saturating_sub(self.spent)
    }
}

/// How a replay visits the table.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walk {
    /// Allocated pages, populated entries: the normal walk.
    Populated,
    /// Every TCE-page slot of the window, every entry of an allocated page (a baseline).
    #[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
    Slots,
    /// Every entry of the window, one lookup each (a baseline).
    #[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
    Entries,
}

impl Walk {
    /// The strategy named by `KTR_ATTACH`'s flags: the normal walk (0), or, in the test
    /// configuration (`test_config`: the mock backend built and enabled), one of the
    /// benchmarks' baselines.
    #[cfg_attr(not(CONFIG_KVM_TCE_REPLAY_MOCK), allow(unused_variables))]
    pub(crate) fn from_flags(flags: u32, test_config: bool) -> Result<Self> {
        if flags == 0 {
            return Ok(Self::Populated);
        }
        #[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
        if test_config {
            use crate::pure::uapi_test::{KTR_ATTACH_WALK_ENTRIES, KTR_ATTACH_WALK_SLOTS};
            match flags {
                KTR_ATTACH_WALK_SLOTS => return Ok(Self::Slots),
                KTR_ATTACH_WALK_ENTRIES => return Ok(Self::Entries),
                _ => {}
            }
        }
        Err(EINVAL)
    }
}

/// What a walk found at or after a position.
enum Next<'a> {
    /// Window entry `.0` holds `.1` (maybe zero, for the baselines).
    Entry(u64, u64),
    /// The `len` entries from slot `slot` of `page`, the first of which is window entry
    /// `entry`, start with a populated one and are taken at once (each TCE is one hardware
    /// entry): [`Replayer::span`].
    Span {
        entry: u64,
        page: &'a TcePage,
        slot: usize,
        len: usize,
    },
    /// Nothing before entry `.0`.
    Skip(u64),
    /// Nothing up to the end of the window.
    End,
}

/// Replays into a group under construction: counts entries and gathers their hardware writes.
struct Replayer<'a> {
    table: &'a Table,
    /// The allocated TCE pages after `page`, found a batch at a time ([`Walk::Populated`]). A
    /// page allocated behind the iterator's position after its batch was found is not visited:
    /// the group is published before the replay, so every `H_PUT_TCE` into such a page reaches
    /// it directly; what userspace writes there through mmap meanwhile may or may not be
    /// replayed, as with any mmap write racing an attach.
    pages: SparseIter<'a, TcePage>,
    /// The TCE page the walk is in, with its index: looked up once, not per entry (pages are
    /// never freed, so the reference stays good).
    page: Option<(u64, &'a TcePage)>,
    /// A span's entries, copied out of its page ([`SPAN`] of them).
    scratch: KVec<u64>,
    runs: Runs<'a>,
    stats: ReplayStats,
    /// Hardware entries per TCE.
    subpages: u64,
    /// The TCE page last walked into (counted once).
    last_page: Option<u64>,
    /// The guest range of the memory slot of the last valid TCE, for the current chunk only
    /// (slots may change between chunks).
    slot: Option<(u64, u64)>,
    chunk: Chunk,
}

impl<'a> Replayer<'a> {
    /// Counts TCE page (or page slot) `index` as walked, once.
    fn enter_page(&mut self, index: u64) {
        if self.last_page != Some(index) {
            self.last_page = Some(index);
            self.stats.walked += 1;
        }
    }

    /// The next entry at or after `from` that `walk` looks at; counts what looking cost.
    fn next(&mut self, st: &TableState, walk: Walk, from: u64) -> Next<'a> {
        if from >= self.table.window().size() {
            return Next::End;
        }
        match walk {
            Walk::Populated => self.next_populated(st, from),
            #[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
            Walk::Slots => self.next_slot(from),
            #[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
            Walk::Entries => self.next_entry(from),
        }
    }

    /// [`Walk::Populated`]: the page holding `from` or the next allocated one, its next
    /// populated entry, and the span of populated entries from there.
    fn next_populated(&mut self, st: &TableState, from: u64) -> Next<'a> {
        let index = GEO.page_of(from);
        // The page holding `from`, or the first allocated one after it.
        let (found, page) = loop {
            match self.page {
                Some((at, page)) if at >= index => break (at, page),
                _ => match self.pages.next() {
                    Some(hit) => self.page = Some(hit),
                    None => return Next::End,
                },
            }
        };
        self.enter_page(found);
        let slot = if found == index { GEO.slot_of(from) } else { 0 };
        let (hit, looked) = page.next_populated(st, slot);
        self.stats.visited += looked;
        self.chunk.spend(looked.max(1));
        let Some((slot, tce)) = hit else {
            return Next::Skip(GEO.first_entry(found + 1));
        };
        let entry = GEO.first_entry(found) + usize_as_u64(slot);
        if self.subpages > 1 {
            return Next::Entry(entry, tce);
        }
        let room = u64_as_usize((self.chunk.left() / 2).max(1));
        let len = page.span(st, slot, room.min(SPAN));
        Next::Span {
            entry,
            page,
            slot,
            len,
        }
    }

    /// Whether a non-zero `tce` is replayed: a valid TCE that passes [`Table::validate`]. A
    /// poison TCE (no permission bit) maps nothing and is no error; a refused one is counted.
    fn replayable(&mut self, tce: u64) -> bool {
        if !tce_is_valid(tce) {
            return false;
        }
        let gpa = tce & !TCE_PERM_MASK;
        let ok = self.table.window().check_tce(tce).is_ok()
            && match self.slot {
                Some((start, end)) if start <= gpa && gpa < end => true,
                _ => {
                    self.slot = self.table.guest().slot_range(gpa);
                    self.slot.is_some()
                }
            };
        if !ok {
            self.stats.skipped += 1;
        }
        ok
    }

    /// Replays the `len` entries from slot `slot` of `page` (window entry `entry` first), each
    /// TCE one hardware entry: checks them as it copies them out; if every one is a valid TCE
    /// inside the memory slot of the first (the common case: a guest maps its memory slot by
    /// slot), they go to the group as one run, else one by one. The first entry's look is
    /// already counted.
    fn span(&mut self, entry: u64, page: &TcePage, slot: usize, len: usize) -> Result {
        let w = *self.table.window();
        // The memory slot of the first entry, unless the last one checked holds it too.
        let first = page.load(slot);
        let gpa = first & !TCE_PERM_MASK;
        if !self
            .slot
            .is_some_and(|(start, end)| start <= gpa && gpa < end)
        {
            self.slot = self.table.guest().slot_range(gpa);
        }
        // Every entry is checked as it is copied: or-ed flaws, without branches, of which any
        // sends the span one by one: no permission, an address off the page or outside the slot.
        let (start, end) = self.slot.unwrap_or((0, 0));
        let page_mask = (1u64 << w.page_shift()) - 1;
        let mut flaws = u64::from(self.slot.is_none());
        let Some(values) = self.scratch.get_mut(..len) else {
            return Err(EINVAL);
        };
        let n = page.copy(slot, values, |tce| {
            let gpa = tce & !TCE_PERM_MASK;
            flaws |= u64::from(tce & TCE_PERM_MASK == 0)
                | (gpa & page_mask)
                | u64::from(gpa.wrapping_sub(start) >= end - start);
        });
        let values = &values[..n];
        self.stats.visited += usize_as_u64(n.saturating_sub(1));
        self.chunk.spend(2 * usize_as_u64(n));
        let all_valid = flaws == 0;
        if all_valid {
            let first = self.runs.geometry().first_index(&w, entry);
            self.runs.push_run(first, values)?;
            self.stats.tces += usize_as_u64(n);
            self.stats.hw_entries += usize_as_u64(n);
            return Ok(());
        }
        // One by one: zeros (in a page written through mmap) and poison TCEs map nothing.
        for (at, i) in (entry..).zip(0..n) {
            let tce = self.scratch[i];
            if tce != 0 && self.replayable(tce) {
                self.stats.hw_entries += self.runs.push_entry(&w, at, tce, 0..1)?;
                self.stats.tces += 1;
            }
        }
        Ok(())
    }

    /// Writes the hardware subpages of entry `entry` holding `tce` from `sub` on, as many as the
    /// chunk has room for (one at least); returns the first subpage not written (`subpages` when
    /// done).
    fn write(&mut self, entry: u64, tce: u64, sub: u64) -> Result<u64> {
        let end = self.subpages.min(sub + self.chunk.left().max(1));
        let w = *self.table.window();
        self.stats.hw_entries += self.runs.push_entry(&w, entry, tce, sub..end)?;
        self.chunk.spend(end - sub);
        if end == self.subpages {
            self.stats.tces += 1;
        }
        Ok(end)
    }

    /// Walks the whole window with `walk` in chunks of about [`BUDGET`] work each.
    fn run(&mut self, walk: Walk) -> Result {
        loop {
            if shim::fatal_signal_pending() {
                return Err(EINTR);
            }
            let guard = self.table.lock();
            self.slot = None;
            self.chunk.spent = 0;
            let done = self.chunk_of(&guard, walk)?;
            // The chunk's writes land before the lock lets updates of its entries in.
            self.runs.flush()?;
            drop(guard);
            if done {
                return Ok(());
            }
            shim::cond_resched();
        }
    }

    /// One chunk of the walk, under the table lock (`st`), from where the last one stopped;
    /// returns whether the walk reached the window's end.
    fn chunk_of(&mut self, st: &TableState, walk: Walk) -> Result<bool> {
        let Chunk {
            mut entry,
            mut sub,
            mut partial,
            ..
        } = self.chunk;
        if sub > 0 {
            // An update while the lock was dropped wrote the whole entry itself.
            if self.table.get(entry) == partial {
                sub = self.write(entry, partial, sub)?;
            }
            if sub == 0 || sub == self.subpages || self.table.get(entry) != partial {
                (entry, sub) = (entry + 1, 0);
            }
        }
        let size = self.table.window().size();
        let mut done = false;
        while self.chunk.spent < BUDGET && sub == 0 {
            match self.next(st, walk, entry) {
                Next::End => {
                    done = true;
                    break;
                }
                Next::Skip(next) => entry = next,
                Next::Span {
                    entry: at,
                    page,
                    slot,
                    len,
                } => {
                    // The tail of the last page, past the window, is nobody's.
                    let len = u64_as_usize(usize_as_u64(len).min(size.saturating_sub(at)));
                    if len == 0 {
                        done = true;
                        break;
                    }
                    self.span(at, page, slot, len)?;
                    entry = at + usize_as_u64(len);
                }
                // The tail of the last page, past the window, is nobody's.
                Next::Entry(at, _) if at >= size => {
                    done = true;
                    break;
                }
                Next::Entry(at, tce) => {
                    entry = at + 1;
                    if tce == 0 || !self.replayable(tce) {
                        continue;
                    }
                    let end = self.write(at, tce, 0)?;
                    if end < self.subpages {
                        (entry, sub, partial) = (at, end, tce);
                    }
                }
            }
        }
        (self.chunk.entry, self.chunk.sub, self.chunk.partial) = (entry, sub, partial);
        Ok(done)
    }
}

/// Writes every valid TCE of `table` into `group` with strategy `walk`. EINTR if the caller
/// gets a fatal signal; the caller rolls the group back.
pub(crate) fn replay(table: &Table, group: &dyn IommuBackend, walk: Walk) -> Result<ReplayStats> {
    let start = Instant::<Monotonic>::now();
    let runs = Runs::new(group)?;
    let subpages = runs.geometry().subpages(table.window());
    let mut scratch = KVec::with_capacity(SPAN, GFP_KERNEL_ACCOUNT)?;
    scratch.resize(SPAN, 0, GFP_KERNEL_ACCOUNT)?;
    let mut r = Replayer {
        table,
        pages: table.allocated_pages(0),
        page: None,
        scratch,
        runs,
        stats: ReplayStats::default(),
        subpages,
        last_page: None,
        slot: None,
        chunk: Chunk::default(),
    };
    r.run(walk)?;
    r.stats.ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(0);
    Ok(r.stats)
}
