// SPDX-License-Identifier: GPL-2.0

//! The mock IOMMU group, the designated test backend (the pattern of iommufd's mock domain): up
//! to two hardware TCE tables (a PE's default 32-bit window and its DDW), each of its own
//! geometry, multi-level and lazily allocated like powernv's
//! (arch/powerpc/platforms/powernv/pci-ioda-tce.c), with counters and allocation-failure
//! injection, behind a group fd. Each hardware table is a backend of its own, attached to at
//! most one TCE table, as KVM ties its `stit` entries to the `iommu_table`.

use crate::{
    accounting::{self, Accounted},
    iommu::{self, Binding, IommuBackend},
    pure::hwmap::{HwGeometry, Levels, LEVELS_MAX},
    pure::num::{u64_as_usize, usize_as_u64},
    pure::uapi_test::*,
    pure::window::Window,
    shim::{AnonFile, FileOps},
    user,
};
use core::{mem::size_of, ops::Range};
use kernel::{
    new_mutex,
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex},
};

/// Slots of a level: one page of u64s (what [`Levels`] is made with).
const SLOTS: usize = PAGE_SIZE / size_of::<u64>();

/// One level of the hardware table: a page of child pointers or a page of hardware TCEs.
enum Node {
    Dir {
        children: KBox<[Option<KBox<Node>>; SLOTS]>,
        _acct: Accounted,
    },
    Leaf {
        entries: KBox<[u64; SLOTS]>,
        _acct: Accounted,
    },
}

/// Counters and failure injection of a hardware table.
#[derive(Default)]
struct Counters {
    pages: u64,
    valid: u64,
    written: u64,
    exchanges: u64,
    /// 0: allocations succeed; n: the n-th next allocation fails.
    fail_in: u64,
}

impl Counters {
    /// A zeroed level (no entries, no children); a leaf if `leaf`. Counted when linked.
    fn alloc(&mut self, leaf: bool) -> Result<KBox<Node>> {
        if self.fail_in > 0 {
            self.fail_in -= 1;
            if self.fail_in == 0 {
                return Err(ENOMEM);
            }
        }
        let acct = Accounted::new(&accounting::MOCK, PAGE_SIZE);
        let node = if leaf {
            Node::Leaf {
                entries: KBox::init(pin_init::init_zeroed(), GFP_KERNEL_ACCOUNT)?,
                _acct: acct,
            }
        } else {
            Node::Dir {
                children: KBox::init(pin_init::init_zeroed(), GFP_KERNEL_ACCOUNT)?,
                _acct: acct,
            }
        };
        Ok(KBox::new(node, GFP_KERNEL_ACCOUNT)?)
    }
}

/// The hardware table: its levels and counters.
struct HwTable {
    root: Option<KBox<Node>>,
    counters: Counters,
}

/// The first level missing on the way to the leaf of `index` under `node` (at `level`), or
/// `None` if the leaf exists.
fn first_missing(node: Option<&Node>, levels: &Levels, level: u32, index: u64) -> Option<u32> {
    match node {
        None => Some(level),
        Some(Node::Leaf { .. }) => None,
        Some(Node::Dir { children, .. }) => {
            let child = children.get(levels.slot(index, level))?.as_deref();
            first_missing(child, levels, level + 1, index)
        }
    }
}

/// The leaf (page of hardware entries) holding `index` under `slot` at `level`, linking the
/// missing levels from `spare` (popped from its end: the highest missing level first); `None` if
/// a level is missing and `spare` is empty.
fn leaf<'a>(
    slot: &'a mut Option<KBox<Node>>,
    c: &mut Counters,
    levels: &Levels,
    level: u32,
    index: u64,
    spare: &mut KVec<KBox<Node>>,
) -> Result<Option<&'a mut [u64; SLOTS]>> {
    if slot.is_none() {
        let Some(node) = spare.pop() else {
            return Ok(None);
        };
        c.pages += 1;
        *slot = Some(node);
    }
    match slot.as_deref_mut() {
        Some(Node::Dir { children, .. }) => {
            let child = children.get_mut(levels.slot(index, level)).ok_or(EINVAL)?;
            leaf(child, c, levels, level + 1, index, spare)
        }
        Some(Node::Leaf { entries, .. }) => Ok(Some(entries)),
        None => Err(EINVAL),
    }
}

impl HwTable {
    /// Writes `values` into the entries from `first` on, a leaf at a time, and calls `old` with
    /// each entry's old value. Clearing never allocates.
    fn write(
        &mut self,
        levels: &Levels,
        first: u64,
        values: &[u64],
        mut old: impl FnMut(u64),
    ) -> Result {
        let last = levels.levels() - 1;
        let (mut index, mut rest) = (first, values);
        while !rest.is_empty() {
            let start = levels.slot(index, last);
            let (now, later) = rest.split_at(rest.len().min(levels.slots() - start));
            let Self { root, counters } = self;
            // One walk down when the levels are there. Else the levels a valid value needs are
            // allocated all before any is linked, so a failed allocation leaves the table as it
            // was, and a second walk links them.
            let mut spare = KVec::new();
            let entries = match leaf(root, counters, levels, 0, index, &mut spare)? {
                Some(entries) => Some(entries),
                None if now.iter().any(|&v| v != 0) => {
                    if let Some(from) = first_missing(root.as_deref(), levels, 0, index) {
                        // CAST: at most 5.
                        spare = KVec::with_capacity(LEVELS_MAX as usize, GFP_KERNEL_ACCOUNT)?;
                        for level in (from..levels.levels()).rev() {
                            spare.push(counters.alloc(level == last)?, GFP_KERNEL_ACCOUNT)?;
                        }
                    }
                    leaf(root, counters, levels, 0, index, &mut spare)?
                }
                None => None,
            };
            match entries {
                Some(entries) => {
                    let dst = entries.get_mut(start..start + now.len()).ok_or(EINVAL)?;
                    // Counted without branches: one pass, as cheap as the copy it does.
                    let (mut valid, mut was_valid) = (0, 0);
                    for (d, &v) in dst.iter_mut().zip(now) {
                        let was = core::mem::replace(d, v);
                        valid += u64::from(v != 0);
                        was_valid += u64::from(was != 0);
                        old(was);
                    }
                    counters.valid = counters.valid + valid - was_valid;
                    counters.written += valid;
                }
                // No leaf: every value clears an entry that is clear.
                None => now.iter().for_each(|_| old(0)),
            }
            counters.exchanges += usize_as_u64(now.len());
            index += usize_as_u64(now.len());
            rest = later;
        }
        Ok(())
    }
}

/// Runs whose levels [`warm`] reads down at once.
const WARM: usize = 64;

/// Reads down to the leaf entry of each run's first index (at most [`WARM`] runs), a level at a
/// time across all the runs: each run's loads depend on each other, but not on another run's,
/// so the cache misses of a level overlap. The writes then find their levels in the cache.
fn warm(root: Option<&Node>, levels: &Levels, runs: &[(u64, usize)]) {
    let mut at = [root; WARM];
    for level in 0..levels.levels() {
        for (node, &(first, _)) in at.iter_mut().zip(runs) {
            if let Some(Node::Dir { children, .. }) = *node {
                *node = children
                    .get(levels.slot(first, level))
                    .and_then(|c| c.as_deref());
            }
        }
    }
    let last = levels.levels() - 1;
    let touched = at
        .iter()
        .zip(runs)
        .fold(0u64, |acc, (node, &(first, _))| match node {
            Some(Node::Leaf { entries, .. }) => {
                acc ^ entries.get(levels.slot(first, last)).copied().unwrap_or(0)
            }
            _ => acc,
        });
    core::hint::black_box(touched);
}

fn lookup(mut node: Option<&Node>, levels: &Levels, index: u64) -> u64 {
    for level in 0..levels.levels() {
        let i = levels.slot(index, level);
        match node {
            Some(Node::Dir { children, .. }) => node = children.get(i).and_then(|c| c.as_deref()),
            Some(Node::Leaf { entries, .. }) => return entries.get(i).copied().unwrap_or(0),
            None => return 0,
        }
    }
    0
}

/// One hardware table of a mock IOMMU group.
#[pin_data]
pub(crate) struct MockTable {
    geo: HwGeometry,
    levels: Levels,
    /// `KTR_MOCK_KEEP_LEVELS`: a clear keeps the levels.
    keep_levels: bool,
    #[pin]
    binding: Binding,
    /// The hardware table, under level 4 of the lock order (table.rs): taken for each exchange
    /// or run, under the table lock or a binding, never while taking another lock.
    #[pin]
    hw: Mutex<HwTable>,
    _acct: Accounted,
}

/// Entries copied out per hold of the hardware table's lock by `KTR_MOCK_READ`.
const READ_BATCH: usize = 4096;

/// Hardware tables of a group (`IOMMU_TABLE_GROUP_MAX_TABLES`).
const TABLES_MAX: usize = 2;

impl MockTable {
    /// A hardware table of `KTR_CREATE_MOCK_GROUP`'s (or `KTR_MOCK_ADD_TABLE`'s) geometry,
    /// checked like a window's; its levels must be able to address `it_size` entries.
    pub(crate) fn create(req: &KtrMockGroup) -> Result<Arc<Self>> {
        if req.flags & !KTR_MOCK_KEEP_LEVELS != 0 {
            return Err(EINVAL);
        }
        Window::new(req.it_page_shift, req.it_offset, req.it_size)?;
        // CAST: PAGE_SHIFT is at most 16.
        let levels = Levels::new(req.levels, PAGE_SHIFT as u32 - 3, req.it_size).ok_or(EINVAL)?;
        Arc::pin_init(
            pin_init!(Self {
                geo: HwGeometry {
                    it_page_shift: req.it_page_shift,
                    it_offset: req.it_offset,
                    it_size: req.it_size,
                },
                levels,
                keep_levels: req.flags & KTR_MOCK_KEEP_LEVELS != 0,
                binding <- Binding::new(),
                hw <- new_mutex!(HwTable {
                    root: None,
                    counters: Counters::default(),
                }, "kvm_tce_replay::MockTable::hw"),
                _acct: Accounted::new(&accounting::MOCK, size_of::<Self>()),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// EINVAL unless the `n` entries from `first` on are the table's.
    fn check_run(&self, first: u64, n: usize) -> Result {
        match first.checked_add(usize_as_u64(n)) {
            Some(end) if end <= self.geo.it_size => Ok(()),
            _ => Err(EINVAL),
        }
    }

    fn read(&self, req: &KtrMockRead) -> Result<isize> {
        let end = req.first.checked_add(req.count).ok_or(EINVAL)?;
        if req.count > KTR_MOCK_READ_MAX || end > self.geo.it_size {
            return Err(EINVAL);
        }
        let mut out = user::u64_writer(req.entries, req.count)?;
        let mut batch = KVec::with_capacity(READ_BATCH, GFP_KERNEL_ACCOUNT)?;
        let mut index = req.first;
        while index < end {
            let batch_end = end.min(index + usize_as_u64(READ_BATCH));
            batch.clear();
            {
                let hw = self.hw.lock();
                for i in index..batch_end {
                    batch.push(
                        lookup(hw.root.as_deref(), &self.levels, i),
                        GFP_KERNEL_ACCOUNT,
                    )?;
                }
            }
            for value in batch.iter() {
                out.write(value)?;
            }
            index = batch_end;
        }
        Ok(0)
    }

    /// `KTR_MOCK_WRITE`: writes hardware entries from userspace, outside any TCE table, as
    /// VFIO's `VFIO_IOMMU_MAP_DMA` writes a container's table (levels allocated as needed). The
    /// values are copied in before the hardware table's lock is taken.
    fn write_user(&self, req: &KtrMockWrite) -> Result<isize> {
        if req.count > KTR_MOCK_WRITE_MAX {
            return Err(EINVAL);
        }
        // At most KTR_MOCK_WRITE_MAX (4096), checked above.
        let n = u64_as_usize(req.count);
        self.check_run(req.first, n)?;
        let mut values = KVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        user::read_u64s(req.entries, n, &mut values)?;
        self.hw
            .lock()
            .write(&self.levels, req.first, &values, |_| {})?;
        Ok(0)
    }

    /// The counters, as `KTR_MOCK_STATS` reports them.
    pub(crate) fn stats(&self) -> KtrMockStats {
        // From the registry of bound hardware tables, not the binding, which an attach holds
        // for the whole replay.
        let attached = u64::from(iommu::is_bound(self));
        let hw = self.hw.lock();
        let c = &hw.counters;
        KtrMockStats {
            entries_written: c.written,
            exchanges: c.exchanges,
            entries_valid: c.valid,
            pages_allocated: c.pages,
            attached,
            table: 0,
        }
    }
}

/// A mock IOMMU group: one hardware table, and a second once added.
#[pin_data]
pub(crate) struct MockGroup {
    /// The group's hardware tables: a leaf of the lock order (table.rs), locked only to read or
    /// extend the list.
    #[pin]
    tables: Mutex<KVec<Arc<MockTable>>>,
}

static MOCK_FOPS: FileOps = FileOps::new::<MockGroup>();

impl MockGroup {
    /// Creates a group from `KTR_CREATE_MOCK_GROUP`'s argument, with one hardware table.
    pub(crate) fn create(req: &KtrMockGroup) -> Result<Arc<Self>> {
        let mut tables = KVec::with_capacity(TABLES_MAX, GFP_KERNEL_ACCOUNT)?;
        tables.push(MockTable::create(req)?, GFP_KERNEL_ACCOUNT)?;
        Arc::pin_init(
            pin_init!(Self {
                tables <- new_mutex!(tables, "kvm_tce_replay::MockGroup::tables"),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Hardware table `index`; EINVAL if the group has no such table.
    fn table(&self, index: u64) -> Result<Arc<MockTable>> {
        let tables = self.tables.lock();
        let index = usize::try_from(index).map_err(|_| EINVAL)?;
        tables.get(index).cloned().ok_or(EINVAL)
    }

    /// The hardware table an attach of window `w` takes: the first that can hold it, as
    /// `kvm_spapr_tce_attach_iommu_group` picks it; EINVAL if none can.
    pub(crate) fn table_for(&self, w: &Window) -> Result<Arc<MockTable>> {
        let tables = self.tables.lock();
        tables
            .iter()
            .find(|t| t.geo.compatible(w))
            .cloned()
            .ok_or(EINVAL)
    }

    /// The group's hardware tables.
    pub(crate) fn tables(&self) -> Result<KVec<Arc<MockTable>>> {
        let tables = self.tables.lock();
        let mut out = KVec::with_capacity(tables.len(), GFP_KERNEL_ACCOUNT)?;
        for t in tables.iter() {
            out.push(t.clone(), GFP_KERNEL_ACCOUNT)?;
        }
        Ok(out)
    }

    /// `KTR_MOCK_ADD_TABLE`: a second hardware table; EBUSY if the group has two.
    fn add_table(&self, req: &KtrMockGroup) -> Result<isize> {
        let table = MockTable::create(req)?;
        let mut tables = self.tables.lock();
        if tables.len() >= TABLES_MAX {
            return Err(EBUSY);
        }
        tables.push(table, GFP_KERNEL_ACCOUNT)?;
        // CAST: at most TABLES_MAX - 1.
        Ok(tables.len() as isize - 1)
    }
}

impl IommuBackend for MockTable {
    fn geometry(&self) -> HwGeometry {
        self.geo
    }

    fn xchg(&self, index: u64, value: u64) -> Result<u64> {
        if index >= self.geo.it_size {
            return Err(EINVAL);
        }
        let mut old = 0;
        self.hw
            .lock()
            .write(&self.levels, index, &[value], |was| old = was)?;
        Ok(old)
    }

    /// The whole run under one hold of the lock, a leaf at a time.
    fn write_run(&self, first: u64, values: &[u64]) -> Result {
        self.check_run(first, values.len())?;
        self.hw.lock().write(&self.levels, first, values, |_| {})
    }

    /// Every run under one hold of the lock.
    fn write_runs(&self, runs: &[(u64, usize)], values: &[u64]) -> Result {
        let mut hw = self.hw.lock();
        for chunk in runs.chunks(WARM) {
            warm(hw.root.as_deref(), &self.levels, chunk);
        }
        let mut rest = values;
        for &(first, n) in runs {
            self.check_run(first, n)?;
            let (run, later) = rest.split_at_checked(n).ok_or(EINVAL)?;
            hw.write(&self.levels, first, run, |_| {})?;
            rest = later;
        }
        Ok(())
    }

    fn id(&self) -> usize {
        core::ptr::from_ref(self).addr()
    }

    /// Clears the whole hardware table, entries written by `KTR_MOCK_WRITE` included: frees its
    /// levels, or with `KTR_MOCK_KEEP_LEVELS` zeroes its entries and keeps them, as powernv
    /// keeps a table's levels until the table is freed.
    fn clear(&self, _w: &Window, _written: &mut dyn Iterator<Item = Range<u64>>) {
        fn zero(node: &mut Node) {
            match node {
                Node::Leaf { entries, .. } => entries.fill(0),
                Node::Dir { children, .. } => children.iter_mut().flatten().for_each(|c| zero(c)),
            }
        }
        let mut hw = self.hw.lock();
        if self.keep_levels {
            if let Some(root) = hw.root.as_deref_mut() {
                zero(root);
            }
        } else {
            hw.root = None;
            hw.counters.pages = 0;
        }
        hw.counters.valid = 0;
    }

    fn binding(&self) -> &Binding {
        &self.binding
    }
}

#[vtable]
impl AnonFile for MockGroup {
    const NAME: &'static CStr = c"ktr-mock-iommu-group";

    fn fops() -> &'static FileOps {
        &MOCK_FOPS
    }

    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            KTR_MOCK_READ => {
                let req: KtrMockRead = user::read(arg)?;
                this.table(req.table)?.read(&req)
            }
            KTR_MOCK_STATS => {
                let req: KtrMockStats = user::read(arg)?;
                let mut stats = this.table(req.table)?.stats();
                stats.table = req.table;
                user::write(arg, &stats)?;
                Ok(0)
            }
            KTR_MOCK_FAIL_ALLOC => {
                let n: u64 = user::read(arg)?;
                this.table(0)?.hw.lock().counters.fail_in = n;
                Ok(0)
            }
            KTR_MOCK_ADD_TABLE => this.add_table(&user::read(arg)?),
            KTR_MOCK_WRITE => {
                let req: KtrMockWrite = user::read(arg)?;
                this.table(req.table)?.write_user(&req)
            }
            _ => Err(ENOTTY),
        }
    }
}
