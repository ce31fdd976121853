// SPDX-License-Identifier: GPL-2.0

//! A TCE table: one window of guest-visible TCEs kept in lazily allocated pages, each with a
//! population map; the guest's hcalls as ioctls on its fd; mmap of the TCE array; and the IOMMU
//! groups attached to it, which every update reaches.

use crate::{
    accounting::{self, Accounted},
    bitwalk::{word_and_mask, words_for, SetBits},
    device::LiobnClaim,
    iommu::{self, IommuBackend},
    shim::{self, AnonFile, FileOps, Mappable, SparseMap, UserMappings},
    stats::TableStats,
    uapi::*,
    user,
    window::{PageGeometry, Window},
};
use core::{
    mem::size_of,
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

/// TCEs a bulk update (`H_STUFF_TCE`) changes under one hold of the table lock.
const STUFF_CHUNK: u64 = 8192;

/// One page of TCEs and its population map.
///
/// # Invariants
///
/// Unless `user_mapped` is set, bit `i` of `population` is set exactly when TCE `i` is non-zero
/// (both change together, under the table lock). Once userspace may write the page through mmap,
/// `user_mapped` is set for good and the page's entries are the only truth.
pub(crate) struct TcePage {
    mem: Page,
    population: [AtomicU64; POP_WORDS],
    user_mapped: AtomicBool,
    _acct: Accounted,
}

impl TcePage {
    fn new() -> Result<KBox<Self>> {
        let mem = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
        // INVARIANT: a zeroed page with an empty population map.
        Ok(KBox::new(
            Self {
                mem,
                population: [const { AtomicU64::new(0) }; POP_WORDS],
                user_mapped: AtomicBool::new(false),
                _acct: Accounted::new(&accounting::TABLES, PAGE_SIZE + size_of::<Self>()),
            },
            GFP_KERNEL,
        )?)
    }

    fn entries(&self) -> &[AtomicU64] {
        shim::page_words(&self.mem)
    }

    fn load(&self, slot: usize) -> u64 {
        self.entries()[slot].load(Ordering::Relaxed)
    }

    /// Stores TCE `slot`; the caller holds the table lock.
    fn store(&self, slot: usize, tce: u64) {
        self.entries()[slot].store(tce, Ordering::Relaxed);
        let (word, mask) = word_and_mask(slot as u64);
        // INVARIANT: the bit follows the entry, under the table lock.
        if tce != 0 {
            self.population[word].fetch_or(mask, Ordering::Relaxed);
        } else {
            self.population[word].fetch_and(!mask, Ordering::Relaxed);
        }
    }

    /// Calls `f(slot, tce)` for every non-zero TCE of the page and returns how many slots were
    /// looked at: the set bits of the population map, or every slot of a page userspace may
    /// have written through mmap. The caller holds the table lock.
    pub(crate) fn for_each_populated(
        &self,
        mut f: impl FnMut(usize, u64) -> Result,
    ) -> Result<u64> {
        if self.user_mapped.load(Ordering::Acquire) {
            self.for_each_entry(|slot, tce| if tce != 0 { f(slot, tce) } else { Ok(()) })?;
            return Ok(GEO.entries_per_page());
        }
        // The page's address once, not per entry.
        let entries = self.entries();
        let mut looked = 0;
        for slot in SetBits::new(self.population.iter().map(|w| w.load(Ordering::Relaxed))) {
            looked += 1;
            let slot = slot as usize;
            f(slot, entries[slot].load(Ordering::Relaxed))?;
        }
        Ok(looked)
    }

    /// Calls `f(slot, tce)` for every TCE of the page, zero or not (the page-slot baseline).
    pub(crate) fn for_each_entry(&self, mut f: impl FnMut(usize, u64) -> Result) -> Result {
        for (slot, e) in self.entries().iter().enumerate() {
            f(slot, e.load(Ordering::Relaxed))?;
        }
        Ok(())
    }
}

/// What the table lock protects.
pub(crate) struct TableState {
    /// The attached groups; every update of a TCE reaches each of them.
    groups: KVec<Arc<dyn IommuBackend>>,
}

/// A TCE table (`struct kvmppc_spapr_tce_table`), behind its anonymous-inode fd.
#[pin_data(PinnedDrop)]
pub(crate) struct Table {
    claim: LiobnClaim,
    window: Window,
    #[pin]
    pages: SparseMap<TcePage>,
    stats: Arc<TableStats>,
    #[pin]
    state: Mutex<TableState>,
    mappings: UserMappings,
    _acct: Accounted,
}

static TABLE_FOPS: FileOps = FileOps::new_mappable::<Table>();

impl Table {
    /// A new, empty table for `window`; allocates nothing sized by the window.
    pub(crate) fn new(claim: LiobnClaim, window: Window) -> Result<Arc<Self>> {
        let stats = TableStats::register(claim.liobn(), window.size(), GEO.entries_per_page())?;
        let listed = stats.clone();
        Arc::pin_init(
            pin_init!(Self {
                claim,
                window,
                pages <- SparseMap::new(),
                stats,
                state <- new_mutex!(TableState {
                    groups: KVec::new(),
                }),
                mappings: UserMappings::new(),
                _acct: Accounted::new(&accounting::TABLES, size_of::<Self>()),
            }),
            GFP_KERNEL,
        )
        .inspect_err(|_| TableStats::unregister(&listed))
    }

    /// The table's identity, as recorded by the groups attached to it.
    pub(crate) fn id(&self) -> usize {
        core::ptr::from_ref(self) as usize
    }

    /// The window's geometry.
    pub(crate) fn window(&self) -> &Window {
        &self.window
    }

    /// The claim of the table's liobn in its context.
    pub(crate) fn claim(&self) -> &LiobnClaim {
        &self.claim
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
    pub(crate) fn allocated_pages(&self, from: u64) -> impl Iterator<Item = (u64, &TcePage)> {
        let last = self.page_count() - 1;
        let mut from = Some(from).filter(|&f| f <= last);
        core::iter::from_fn(move || {
            let (index, page) = self.pages.find(from?, last)?;
            from = Some(index + 1).filter(|&next| next <= last);
            Some((index, page))
        })
    }

    /// TCE page `index`, if allocated.
    pub(crate) fn page(&self, index: u64) -> Option<&TcePage> {
        self.pages.get(index)
    }

    /// TCE page `index`, allocated if it was not; the caller holds the table lock, which makes
    /// an allocation atomic with the fault handler's mapping of the zero page.
    fn page_or_alloc(&self, _locked: &mut TableState, index: u64) -> Result<&TcePage> {
        let (page, inserted) = self.pages.get_or_insert(index, TcePage::new)?;
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

    /// Sets TCE `entry` and updates every attached group. Clearing never allocates.
    fn set(&self, st: &mut TableState, entry: u64, tce: u64) -> Result {
        let page = match self.pages.get(GEO.page_of(entry)) {
            Some(page) => page,
            // Nothing was ever mapped in this page, so no group holds anything for it.
            None if tce == 0 => return Ok(()),
            None => self.page_or_alloc(st, GEO.page_of(entry))?,
        };
        page.store(GEO.slot_of(entry), tce);
        for group in st.groups.iter() {
            iommu::map_entry(&**group, &self.window, entry, tce)?;
        }
        Ok(())
    }

    /// `H_PUT_TCE` of window entry `entry` (inside the window): checks `tce` and stores it.
    pub(crate) fn put(&self, entry: u64, tce: u64) -> Result {
        self.window.check_tce(tce)?;
        self.set(&mut self.lock(), entry, tce)
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
        let mut tces = KVec::with_capacity(req.npages as usize, GFP_KERNEL)?;
        user::read_u64s(req.tces, req.npages as usize, &mut tces)?;
        // Every TCE is checked before any is stored.
        for &tce in tces.iter() {
            self.window.check_tce(tce)?;
        }
        let mut st = self.lock();
        for (entry, &tce) in (first..).zip(tces.iter()) {
            self.set(&mut st, entry, tce)?;
        }
        Ok(0)
    }

    fn stuff_tce(&self, arg: usize) -> Result<isize> {
        let req: KtrStuffTce = user::read(arg)?;
        let mut entry = self.window.entry(req.ioba, req.npages)?;
        self.window.check_tce(req.tce_value)?;
        let end = entry + req.npages;
        while entry < end {
            let chunk_end = end.min(entry + STUFF_CHUNK);
            let mut st = self.lock();
            while entry < chunk_end {
                if req.tce_value == 0 {
                    // Clearing: go straight to the next allocated page.
                    let last = GEO.page_of(chunk_end - 1);
                    match self.pages.find(GEO.page_of(entry), last) {
                        None => {
                            entry = chunk_end;
                            continue;
                        }
                        Some((index, _)) => entry = entry.max(GEO.first_entry(index)),
                    }
                }
                self.set(&mut st, entry, req.tce_value)?;
                entry += 1;
            }
            drop(st);
            shim::cond_resched();
        }
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

    /// Adds `group` to the attached groups: from now on every update reaches it. EBUSY if a
    /// group of the same identity is attached already (a racing attach of the same group).
    pub(crate) fn publish(&self, group: Arc<dyn IommuBackend>) -> Result {
        let mut st = self.lock();
        if st.groups.iter().any(|g| g.id() == group.id()) {
            return Err(EBUSY);
        }
        st.groups.push(group, GFP_KERNEL)?;
        self.stats
            .groups_attached
            .store(st.groups.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Removes `group` from the attached groups.
    pub(crate) fn unpublish(&self, group: &dyn IommuBackend) {
        let mut st = self.lock();
        st.groups.retain(|g| !core::ptr::addr_eq(&**g, group));
        self.stats
            .groups_attached
            .store(st.groups.len() as u64, Ordering::Relaxed);
    }
}

impl AnonFile for Table {
    const NAME: &'static CStr = c"kvm-spapr-tce";

    fn fops() -> &'static FileOps {
        &TABLE_FOPS
    }

    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize> {
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

    fn user_mappings(&self) -> Option<&UserMappings> {
        Some(&self.mappings)
    }
}

impl Mappable for Table {
    fn pages(&self) -> usize {
        usize::try_from(self.page_count()).unwrap_or(usize::MAX)
    }

    fn fault(
        &self,
        pgoff: usize,
        write: bool,
        may_write: bool,
        insert: &mut dyn FnMut(Option<&Page>),
    ) -> Result {
        let index = pgoff as u64;
        let mut st = self.lock();
        let page = if write {
            self.page_or_alloc(&mut st, index)?
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
        if may_write {
            // INVARIANT: from now on userspace may change entries behind the population map.
            page.user_mapped.store(true, Ordering::Release);
        }
        insert(Some(&page.mem));
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
            iommu::release(&**group, &self);
        }
        TableStats::unregister(&self.stats);
    }
}
