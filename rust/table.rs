// SPDX-License-Identifier: GPL-2.0

//! A TCE table: one window of guest-visible TCEs kept in lazily allocated pages, each with a
//! population map; the guest's hcalls as ioctls on its fd; mmap of the TCE array; and the IOMMU
//! groups attached to it, which every update reaches.
//!
//! # Lock order
//!
//! Outermost first; a lock is only taken while holding locks above it:
//!
//! 1. `mmap_lock` of a process faulting on a table mapping (the fault handlers take 3 under it);
//! 2. a hardware table's binding (`iommu::Binding::state`): attach and detach, held across a
//!    replay;
//! 3. the table lock (`TableState`, class `kvm_tce_replay::Table::state`): updates, publishing,
//!    each replay chunk, the fault handlers' allocations;
//! 4. under the table lock: the context's memory slots (`GuestMemory::slots`), a mock hardware
//!    table (`MockTable::hw`), the real backend's `iommu_table` locks, `i_mmap_rwsem` (dropping
//!    the zero page from the mappings), `xa_lock` (inside [`SparseMap`]); none of these is held
//!    while taking another of them;
//! 5. leaves, never held while taking another lock: the registry of bound hardware tables
//!    (`iommu::BOUND`, alone or under a binding), a binding's holders (`iommu::Binding::holders`,
//!    under a binding or the table lock), a context's liobns (`liobn::Liobns::taken`), the
//!    stats registry (`stats`), a mock group's list of tables (`MockGroup::tables`).
//!
//! Nothing takes `mmap_lock` under the table lock: TCE pages are charged to RLIMIT_MEMLOCK
//! atomically (`shim::MemlockCharge`), and user memory is copied outside it.
//!
//! Levels 2 and 3 (and the mock's level 4) are mutexes: an update reschedules holding the table
//! lock inside an entry's subpages (`iommu::Budget`), which is legal because no spinlock of level
//! 4 (`xa_lock`, the real backend's) is held between two exchanges.

pub(crate) mod liobn;

use crate::{
    accounting::{self, Accounted},
    guest::GuestMemory,
    iommu::{self, Budget, IommuBackend, Unfinished},
    pure::bitwalk::{self, word_and_mask, words_for},
    pure::num::{u64_as_usize, usize_as_u64},
    pure::uapi::*,
    pure::window::{tce_is_valid, PageGeometry, Window, TCE_PERM_MASK},
    shim::{self, AnonFile, FileOps, MemlockCharge, SparseIter, SparseMap, UserMappings, WordPage},
    stats::TableStats,
    table::liobn::LiobnClaim,
    user,
};
use core::{
    mem::size_of,
    ops::Range,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};
use kernel::{
    new_mutex,
    page::{Page, PAGE_SIZE},
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex, MutexGuard},
};

/// How TCEs are grouped into pages of the kernel's page size.
pub(crate) const GEO: PageGeometry = PageGeometry::new(PAGE_SIZE);

/// Words of a TCE page's population map: one bit per TCE.
const POP_WORDS: usize = PAGE_SIZE / 8 / 64;

/// Words of `KTR_GET_POPULATED`'s bitmap between two reschedule points.
const POPULATED_CHUNK: u64 = 1024;

/// One page of TCEs and its population map.
///
/// # Invariants
///
/// Unless `user_mapped` is set, bit `i` of `population` is set exactly when TCE `i` is non-zero
/// (both change together, under the table lock). Once userspace may write the page through mmap,
/// `user_mapped` is set for good and the page's entries are the only truth.
pub(crate) struct TcePage {
    mem: WordPage,
    population: [AtomicU64; POP_WORDS],
    user_mapped: AtomicBool,
    _charge: MemlockCharge,
    _acct: Accounted,
}

impl TcePage {
    /// A zeroed page, charged to the context's RLIMIT_MEMLOCK and memory cgroup.
    fn new(guest: &GuestMemory) -> Result<KBox<Self>> {
        let charge = guest.charge(1)?;
        let mem = WordPage::new_zeroed()?;
        // INVARIANT: a zeroed page with an empty population map.
        Ok(KBox::new(
            Self {
                mem,
                population: [const { AtomicU64::new(0) }; POP_WORDS],
                user_mapped: AtomicBool::new(false),
                _charge: charge,
                _acct: Accounted::new(&accounting::TABLES, PAGE_SIZE + size_of::<Self>()),
            },
            GFP_KERNEL_ACCOUNT,
        )?)
    }

    fn entries(&self) -> &[AtomicU64] {
        self.mem.words()
    }

    /// TCE `slot` of the page, zero or not.
    pub(crate) fn load(&self, slot: usize) -> u64 {
        self.entries()[slot].load(Ordering::Relaxed)
    }

    /// Stores TCE `slot`, under the table lock (`_locked`).
    fn store(&self, _locked: &TableState, slot: usize, tce: u64) {
        self.entries()[slot].store(tce, Ordering::Relaxed);
        let (word, mask) = word_and_mask(usize_as_u64(slot));
        // INVARIANT: the bit follows the entry, under the table lock.
        if tce != 0 {
            self.population[word].fetch_or(mask, Ordering::Relaxed);
        } else {
            self.population[word].fetch_and(!mask, Ordering::Relaxed);
        }
    }

    /// The first non-zero TCE of the page at or after `from`, with its slot, and how many slots
    /// were looked at to find it: the next set bit of the population map, or, in a page
    /// userspace has written through mmap, the next non-zero entry; under the table lock
    /// (`_locked`), so that the map and the entries agree.
    pub(crate) fn next_populated(
        &self,
        _locked: &TableState,
        from: usize,
    ) -> (Option<(usize, u64)>, u64) {
        let entries = self.entries();
        if self.user_mapped.load(Ordering::Acquire) {
            let rest = entries.get(from..).unwrap_or(&[]);
            for (i, e) in rest.iter().enumerate() {
                let tce = e.load(Ordering::Relaxed);
                if tce != 0 {
                    return (Some((from + i, tce)), usize_as_u64(i) + 1);
                }
            }
            return (None, usize_as_u64(rest.len()));
        }
        // The set bits from `from` on, a word at a time.
        let (mut word, mask) = word_and_mask(usize_as_u64(from));
        let Some(first) = self.population.get(word) else {
            return (None, 0);
        };
        let mut bits = first.load(Ordering::Relaxed) & !(mask - 1);
        while bits == 0 {
            word += 1;
            match self.population.get(word) {
                Some(next) => bits = next.load(Ordering::Relaxed),
                None => return (None, 0),
            }
        }
        // CAST: a bit index, below 64.
        let slot = word * 64 + bits.trailing_zeros() as usize;
        (Some((slot, entries[slot].load(Ordering::Relaxed))), 1)
    }

    /// How many entries from slot `slot` on (a populated one, as [`TcePage::next_populated`]
    /// finds it) a replay takes as one span, at most `max`: the run of consecutive set bits of
    /// the population map there or, in a page userspace has written through mmap (whose map
    /// says nothing), the rest of the page. Under the table lock (`_locked`), as
    /// `next_populated`.
    pub(crate) fn span(&self, _locked: &TableState, slot: usize, max: usize) -> usize {
        let rest = self.entries().len().saturating_sub(slot);
        if self.user_mapped.load(Ordering::Acquire) {
            return rest.min(max);
        }
        let words = self.population.iter().map(|w| w.load(Ordering::Relaxed));
        let ones = bitwalk::ones_from(words, usize_as_u64(slot), usize_as_u64(max));
        u64_as_usize(ones).min(rest)
    }

    /// Copies the entries from slot `slot` on into `dst` (at most to the page's end), showing
    /// each to `inspect` on the way (one pass); returns how many.
    pub(crate) fn copy(&self, slot: usize, dst: &mut [u64], mut inspect: impl FnMut(u64)) -> usize {
        let src = self.entries().get(slot..).unwrap_or(&[]);
        let n = src.len().min(dst.len());
        for (d, s) in dst.iter_mut().zip(&src[..n]) {
            let tce = s.load(Ordering::Relaxed);
            inspect(tce);
            *d = tce;
        }
        n
    }
}

/// What the table lock protects (`Table::state`, level 3 of the lock order at the top of this
/// file).
pub(crate) struct TableState {
    /// The attached groups; every update of a TCE reaches each of them. Protected by the table
    /// lock.
    groups: KVec<Arc<dyn IommuBackend>>,
}

/// A TCE table (`struct kvmppc_spapr_tce_table`), behind its anonymous-inode fd.
#[pin_data(PinnedDrop)]
pub(crate) struct Table {
    claim: LiobnClaim,
    /// The context's guest memory: its memory slots check TCEs, its address space is charged
    /// for the pages.
    guest: Arc<GuestMemory>,
    window: Window,
    /// The allocated TCE pages. Inserted, and their entries and population maps changed, with
    /// the table lock held (a write through a mapping changes entries without it); looked up
    /// without it (RCU).
    #[pin]
    pages: SparseMap<TcePage>,
    stats: Arc<TableStats>,
    /// The table lock, level 3 of the lock order: protects [`TableState`] and every change of
    /// `pages`.
    #[pin]
    state: Mutex<TableState>,
    mappings: UserMappings,
    _acct: Accounted,
}

static TABLE_FOPS: FileOps = FileOps::new::<Table>();

impl Table {
    /// A new, empty table for `window` of the context whose liobn it claims and whose guest
    /// memory it uses; allocates nothing sized by the window.
    pub(crate) fn new(
        claim: LiobnClaim,
        guest: Arc<GuestMemory>,
        window: Window,
    ) -> Result<Arc<Self>> {
        let stats = TableStats::register(claim.liobn(), window.size(), GEO.entries_per_page())?;
        let listed = stats.clone();
        Arc::pin_init(
            pin_init!(Self {
                claim,
                guest,
                window,
                pages <- SparseMap::new(),
                stats,
                state <- new_mutex!(TableState {
                    groups: KVec::new(),
                }, "kvm_tce_replay::Table::state"),
                mappings: UserMappings::new(),
                _acct: Accounted::new(&accounting::TABLES, size_of::<Self>()),
            }),
            GFP_KERNEL_ACCOUNT,
        )
        .inspect_err(|_| TableStats::unregister(&listed))
    }

    /// The table's identity, as recorded by the groups attached to it.
    pub(crate) fn id(&self) -> usize {
        core::ptr::from_ref(self).addr()
    }

    /// The window's geometry.
    pub(crate) fn window(&self) -> &Window {
        &self.window
    }

    /// Whether the table belongs to the context of guest memory `guest`.
    pub(crate) fn owned_by(&self, guest: &GuestMemory) -> bool {
        core::ptr::eq(&*self.guest, guest)
    }

    /// The window-entry ranges under the allocated TCE pages: every entry the table may ever
    /// have written into a group (pages are never freed).
    pub(crate) fn written_ranges(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        let size = self.window.size();
        self.allocated_pages(0).map(move |(index, _)| {
            let first = GEO.first_entry(index);
            first..size.min(first + GEO.entries_per_page())
        })
    }

    /// The guest memory of the table's context.
    pub(crate) fn guest(&self) -> &GuestMemory {
        &self.guest
    }

    /// Checks a TCE as `H_PUT_TCE` does (`kvmppc_tce_validate`): EINVAL for a valid TCE with
    /// junk below the page size, EFAULT for one whose guest address is in no memory slot. A
    /// poison TCE (no permission bit) may hold anything.
    pub(crate) fn validate(&self, tce: u64) -> Result {
        self.window.check_tce(tce)?;
        if tce_is_valid(tce) {
            self.guest().to_ua(tce & !TCE_PERM_MASK, 1)?;
        }
        Ok(())
    }

    /// What the groups must hold for a TCE the table holds: the TCE if it passes
    /// [`Table::validate`] now, nothing (0) otherwise. Entries written through mmap or whose
    /// memory slot went away are not mapped.
    pub(crate) fn replayable(&self, tce: u64) -> u64 {
        if tce_is_valid(tce) && self.validate(tce).is_ok() {
            tce
        } else {
            0
        }
    }

    /// Takes the table lock, which serialises updates, attaches, detaches and replay chunks.
    pub(crate) fn lock(&self) -> MutexGuard<'_, TableState> {
        self.state.lock()
    }

    /// Number of TCE pages the window spans.
    pub(crate) fn page_count(&self) -> u64 {
        GEO.pages_for(self.window.size())
    }

    /// The allocated TCE pages from page `from` on, in index order, without the table lock
    /// (pages are never freed).
    pub(crate) fn allocated_pages(&self, from: u64) -> SparseIter<'_, TcePage> {
        self.pages.iter(from, self.page_count() - 1)
    }

    /// TCE page `index`, if allocated (for the benchmarks' slot walk and KUnit).
    #[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
    pub(crate) fn page(&self, index: u64) -> Option<&TcePage> {
        self.pages.get(index)
    }

    /// TCE page `index`, allocated if it was not; under the table lock (`_locked`), which makes
    /// an allocation atomic with the fault handler's mapping of the zero page.
    fn page_or_alloc(&self, _locked: &mut TableState, index: u64) -> Result<&TcePage> {
        let guest = self.guest();
        let (page, inserted) = self.pages.get_or_insert(index, || TcePage::new(guest))?;
        if inserted {
            self.stats.pages_allocated.fetch_add(1, Ordering::Relaxed);
            // Userspace may map this page as the zero page: make it fault the new page in.
            self.mappings.unmap_page(index);
        }
        Ok(page)
    }

    /// TCE `entry` (0 if its page was never allocated).
    pub(crate) fn get(&self, entry: u64) -> u64 {
        self.pages
            .get(GEO.page_of(entry))
            .map_or(0, |p| p.load(GEO.slot_of(entry)))
    }

    /// Sets TCE `entry` to `tce` (checked by [`Table::validate`]) in every attached group, then
    /// in the table. The table's page, if new, is allocated first; if a group fails (its
    /// hardware table cannot allocate, the real backend cannot map), every group written so
    /// far, the failing one included, is given back what the table holds (KVM clears the
    /// failing one, `kvmppc_clear_tce`, and leaves the others updated). Either way the error is
    /// returned and nothing changed. Clearing never allocates, and reaches every group in a page
    /// never allocated too (KVM unmaps every entry it is asked to): a group may hold entries
    /// written before it was attached (VFIO's `VFIO_IOMMU_MAP_DMA`).
    ///
    /// The work counts against `budget`: one unit for the entry, one for each hardware entry
    /// written. A fatal signal that stops it inside the entry (EINTR) leaves nothing changed
    /// either: the subpages already written are given back what the table holds, which costs at
    /// most what was done.
    fn set(&self, st: &mut TableState, entry: u64, tce: u64, budget: &mut Budget) -> Result {
        budget.spend(1)?;
        let index = GEO.page_of(entry);
        let page = self.pages.get(index);
        // Nothing to store and no group to clear.
        if page.is_none() && tce == 0 && st.groups.is_empty() {
            return Ok(());
        }
        // A new page is allocated and its index reserved before any group is written, so that
        // after the groups nothing can fail. A clear stores nothing in a page never allocated.
        let new = match page {
            None if tce != 0 => {
                let new = TcePage::new(self.guest())?;
                Some((self.pages.reserve(index)?, new))
            }
            _ => None,
        };
        let old = self.replayable(self.get(entry));
        // `tce` passed `validate` (the caller's): the groups get it if it is valid.
        let value = if tce_is_valid(tce) { tce } else { 0 };
        for (i, group) in st.groups.iter().enumerate() {
            if let Err(unfinished) = iommu::map_entry(&**group, &self.window, entry, value, budget)
            {
                for done in st.groups.iter().take(i) {
                    iommu::restore_entry(&**done, &self.window, entry, old);
                }
                match unfinished {
                    Unfinished::Killed { written } => {
                        iommu::restore_killed(&**group, &self.window, entry, value, old, written)
                    }
                    Unfinished::Failed(_) => {
                        iommu::restore_entry(&**group, &self.window, entry, old)
                    }
                }
                return Err(unfinished.into());
            }
        }
        let page = match (page, new) {
            (Some(page), _) => page,
            (None, Some((reservation, new))) => {
                let page = match reservation.fill(new) {
                    Ok(page) => page,
                    // Not expected (the nodes are reserved), but then too nothing changes.
                    Err(e) => {
                        for group in st.groups.iter() {
                            iommu::restore_entry(&**group, &self.window, entry, old);
                        }
                        return Err(e);
                    }
                };
                self.stats.pages_allocated.fetch_add(1, Ordering::Relaxed);
                // Userspace may map this page as the zero page: make it fault the new page in.
                self.mappings.unmap_page(index);
                page
            }
            // A clear of a page never allocated: the groups are cleared, the table holds 0.
            (None, None) => return Ok(()),
        };
        page.store(st, GEO.slot_of(entry), tce);
        Ok(())
    }

    /// Runs `step` on the table lock's state for entry after entry, from `entry` while
    /// `entry < end`, under one [`Budget`]: `step` updates one entry (through [`Table::set`])
    /// and returns the next one. When the budget is spent, between two entries, the lock is
    /// dropped for a reschedule point and a fatal-signal check (EINTR: the entries done so far
    /// stay done, as KVM leaves them).
    fn update_each(
        &self,
        mut entry: u64,
        end: u64,
        mut step: impl FnMut(&mut TableState, u64, &mut Budget) -> Result<u64>,
    ) -> Result {
        let mut budget = Budget::killable();
        let mut st = self.lock();
        while entry < end {
            if budget.spent() {
                drop(st);
                budget.renew()?;
                st = self.lock();
            }
            entry = step(&mut st, entry, &mut budget)?;
        }
        Ok(())
    }

    /// Checks valid TCE `tce` against every attached group (see [`IommuBackend::check_map`]),
    /// as kvmppc_tce_validate() walks the table's `iommu_tables`: EFAULT if one cannot map it.
    fn check_groups(&self, st: &TableState, tce: u64) -> Result {
        if tce_is_valid(tce) {
            for group in st.groups.iter() {
                group.check_map(tce)?;
            }
        }
        Ok(())
    }

    /// `H_PUT_TCE` of window entry `entry` (inside the window): checks `tce` and stores it.
    pub(crate) fn put(&self, entry: u64, tce: u64) -> Result {
        self.validate(tce)?;
        let mut st = self.lock();
        self.check_groups(&st, tce)?;
        self.set(&mut st, entry, tce, &mut Budget::killable())
    }

    fn put_tce(&self, arg: usize) -> Result<isize> {
        let req: KtrPutTce = user::read(arg)?;
        self.put(self.window.entry(req.ioba, 1)?, req.tce)?;
        Ok(0)
    }

    fn put_tce_indirect(&self, arg: usize) -> Result<isize> {
        let req: KtrPutTceIndirect = user::read(arg)?;
        if req.npages > KTR_INDIRECT_MAX || req.tces & 0xfff != 0 {
            return Err(EINVAL);
        }
        let first = self.window.entry(req.ioba, req.npages)?;
        // At most KTR_INDIRECT_MAX (512), checked above.
        let n = u64_as_usize(req.npages);
        let mut tces = KVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        user::read_u64s(req.tces, n, &mut tces)?;
        // Every TCE is checked before any is stored, against the attached groups too (a group
        // attached after the check may still fail the update halfway, as in KVM).
        for &tce in tces.iter() {
            self.validate(tce)?;
        }
        {
            let st = self.lock();
            for &tce in tces.iter() {
                self.check_groups(&st, tce)?;
            }
        }
        // As KVM: the TCEs before a failing one stay stored.
        self.update_each(first, first + req.npages, |st, entry, budget| {
            let tce = *tces.get(u64_as_usize(entry - first)).ok_or(EINVAL)?;
            self.set(st, entry, tce, budget)?;
            Ok(entry + 1)
        })?;
        Ok(0)
    }

    fn stuff_tce(&self, arg: usize) -> Result<isize> {
        let req: KtrStuffTce = user::read(arg)?;
        let first = self.window.entry(req.ioba, req.npages)?;
        Window::check_stuff(req.tce_value)?;
        let end = first + req.npages;
        self.update_each(first, end, |st, mut entry, budget| {
            if req.tce_value == 0 && st.groups.is_empty() {
                // Clearing with no group attached: only the allocated pages hold anything.
                match self.pages.find(GEO.page_of(entry), GEO.page_of(end - 1)) {
                    None => return Ok(end),
                    Some((index, _)) => entry = entry.max(GEO.first_entry(index)),
                }
            }
            self.set(st, entry, req.tce_value, budget)?;
            Ok(entry + 1)
        })?;
        Ok(0)
    }

    fn get_tce(&self, arg: usize) -> Result<isize> {
        let mut req: KtrGetTce = user::read(arg)?;
        let entry = self.window.entry(req.ioba, 1)?;
        req.tce = self.get(entry);
        user::write(arg, &req)?;
        Ok(0)
    }

    fn populated(&self, arg: usize) -> Result<isize> {
        let mut req: KtrPopulated = user::read(arg)?;
        let end = req.first_page.checked_add(req.npages).ok_or(EINVAL)?;
        if req.npages == 0 || end > self.page_count() {
            return Err(EINVAL);
        }
        let words = words_for(req.npages);
        let mut out = user::u64_writer(req.bitmap, words)?;
        for w in 0..words {
            if w % POPULATED_CHUNK == POPULATED_CHUNK - 1 {
                if shim::fatal_signal_pending() {
                    return Err(EINTR);
                }
                shim::cond_resched();
            }
            let lo = req.first_page + w * 64;
            let hi = (lo + 63).min(end - 1);
            let mut word = 0u64;
            let mut from = lo;
            while let Some((index, _)) = self.pages.find(from, hi) {
                word |= 1 << (index - lo);
                from = index + 1;
            }
            out.write(&word)?;
        }
        req.entries_per_page = GEO.entries_per_page();
        user::write(arg, &req)?;
        Ok(0)
    }

    /// The table's counters.
    pub(crate) fn stats(&self) -> &TableStats {
        &self.stats
    }

    /// The attached group of identity `id` ([`IommuBackend::id`]), if any.
    pub(crate) fn attached(&self, id: usize) -> Option<Arc<dyn IommuBackend>> {
        self.lock().groups.iter().find(|g| g.id() == id).cloned()
    }

    /// Adds `group` to the attached groups: from now on every update reaches it.
    ///
    /// No group of the same identity is in the list already, so nothing is checked: attach (the
    /// only caller besides KUnit, which publishes a group once) publishes a backend under its
    /// binding lock, having found it bound (`iommu::bind`, `iommu::is_bound`) and detached
    /// there, and the registry binds at most one backend per identity. A backend is in a table's
    /// list only while bound: it leaves the list before it is unbound (detach and a failed replay
    /// under its binding lock, a table's release before it takes that lock to unbind it).
    pub(crate) fn publish(&self, group: Arc<dyn IommuBackend>) -> Result {
        let mut st = self.lock();
        st.groups.push(group, GFP_KERNEL_ACCOUNT)?;
        self.stats
            .groups_attached
            .store(usize_as_u64(st.groups.len()), Ordering::Relaxed);
        Ok(())
    }

    /// Removes `group` from the attached groups.
    pub(crate) fn unpublish(&self, group: &dyn IommuBackend) {
        let mut st = self.lock();
        st.groups.retain(|g| !core::ptr::addr_eq(&**g, group));
        self.stats
            .groups_attached
            .store(usize_as_u64(st.groups.len()), Ordering::Relaxed);
    }
}

#[vtable]
impl AnonFile for Table {
    const NAME: &'static CStr = c"kvm-spapr-tce";

    fn fops() -> &'static FileOps {
        &TABLE_FOPS
    }

    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize> {
        // The hcalls come from the context's VMM only, as KVM's vcpu ioctls.
        this.guest().check_caller()?;
        match cmd {
            KTR_PUT_TCE => this.put_tce(arg),
            KTR_PUT_TCE_INDIRECT => this.put_tce_indirect(arg),
            KTR_STUFF_TCE => this.stuff_tce(arg),
            KTR_GET_TCE => this.get_tce(arg),
            KTR_GET_POPULATED => this.populated(arg),
            KTR_TABLE_STATS => {
                user::write(arg, &this.stats.to_uapi())?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }

    fn user_mappings(&self) -> &UserMappings {
        &self.mappings
    }

    fn pages(&self) -> usize {
        usize::try_from(self.page_count()).unwrap_or(usize::MAX)
    }

    fn fault(&self, pgoff: usize, write: bool, insert: &mut dyn FnMut(Option<&Page>)) -> Result {
        let index = usize_as_u64(pgoff);
        let refused = || {
            self.stats.faults_refused.fetch_add(1, Ordering::Relaxed);
            EFAULT
        };
        // Past the table's end (the mapping may be longer than the table): SIGBUS, as
        // kvm_spapr_tce_fault answers past kvmppc_tce_pages().
        if index >= self.page_count() {
            return Err(refused());
        }
        let mut st = self.lock();
        let page = if write {
            // A page that cannot be allocated or charged (RLIMIT_MEMLOCK) is SIGBUS for the
            // writer (EFAULT), not an OOM: the global OOM killer would not free anything here.
            self.page_or_alloc(&mut st, index).map_err(|_| refused())?
        } else {
            match self.pages.get(index) {
                Some(page) => page,
                // Reading a page never written maps the zero page and allocates nothing.
                None => {
                    insert(None);
                    return Ok(());
                }
            }
        };
        if write {
            // INVARIANT: from now on userspace may change entries behind the population map.
            page.user_mapped.store(true, Ordering::Release);
        }
        insert(Some(page.mem.page()));
        Ok(())
    }

    fn mkwrite(&self, pgoff: usize) -> Result {
        let _st = self.lock();
        // The page is mapped, so it is allocated.
        let page = self.pages.get(usize_as_u64(pgoff)).ok_or(EFAULT)?;
        // INVARIANT: as in `fault`, before the mapping becomes writable.
        page.user_mapped.store(true, Ordering::Release);
        Ok(())
    }
}

#[pinned_drop]
impl PinnedDrop for Table {
    fn drop(self: Pin<&mut Self>) {
        // The table's fd is gone: its groups are detached (outside the table lock, which nests
        // inside the groups' attach locks).
        let groups = core::mem::take(&mut self.lock().groups);
        for group in groups.iter() {
            iommu::release(
                &**group,
                self.id(),
                &self.window,
                &mut self.written_ranges(),
            );
        }
        TableStats::unregister(&self.stats);
    }
}
