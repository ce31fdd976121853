// SPDX-License-Identifier: GPL-2.0

//! The fuzzer's reference model: what every op must return and leave behind, written from
//! Documentation/api.rst and KVM's rules. It shares the window arithmetic (`Window::new`,
//! `Window::entry`) with the module, and computes everything else on its own: which TCEs
//! `H_PUT_TCE` takes, the memory-slot rules, the hardware entries a TCE becomes, which hardware
//! table an attach takes, what a replay writes and skips.

use super::op::*;
use crate::uapi::*;
use crate::uapi_test::*;
use crate::window::Window;
use rustix::io::Errno;
use std::collections::{BTreeMap, BTreeSet};

/// What an op returns besides success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    Done,
    /// Not run: its table, group or mapping is not there.
    Skipped,
    Value(u64),
    Words(Vec<u64>),
    Pair(Box<Res>, Box<Res>),
}

pub type Res = Result<Out, Errno>;

/// A context: replay enabled, and its memory slots (slot -> guest range, user address).
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    pub replay: bool,
    pub slots: BTreeMap<u32, (u64, u64, u64)>,
}

/// The last replay's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replay {
    pub replayed: u64,
    pub skipped: u64,
    pub hw_written: u64,
}

/// A table: alive while its fd or a mapping is.
#[derive(Clone, Debug)]
pub struct Table {
    pub ctx: usize,
    pub liobn: u64,
    pub w: Window,
    /// Non-zero entries, those written through mmap past the window's end included.
    pub entries: BTreeMap<u64, u64>,
    pub pages: BTreeSet<u64>,
    pub fd: bool,
    /// Pages each mapping covers, oldest first.
    pub maps: Vec<u64>,
    /// Attached hardware tables: (group id, hardware table index).
    pub attached: Vec<(usize, usize)>,
    pub replays: u64,
    pub last: Option<Replay>,
}

/// A mock hardware table.
#[derive(Clone, Debug)]
pub struct Hw {
    pub it_page_shift: u32,
    pub it_offset: u64,
    pub it_size: u64,
    /// The table slot it is attached to, and the attach references.
    pub att: Option<(usize, u64)>,
    /// Non-zero entries.
    pub entries: BTreeMap<u64, u64>,
}

impl Hw {
    /// Whether window `w` fits, as `kvm_spapr_tce_attach_iommu_group` checks it.
    fn fits(&self, w: &Window) -> bool {
        let start = |off: u64, shift: u32| u128::from(off) << shift;
        self.it_page_shift <= w.page_shift()
            && start(self.it_offset, self.it_page_shift) == start(w.offset(), w.page_shift())
            && start(self.it_size, self.it_page_shift) >= start(w.size(), w.page_shift())
    }
}

/// A mock group; it lives on after its fd is closed while a hardware table is attached.
#[derive(Clone, Debug)]
pub struct Group {
    pub fd: bool,
    pub hw: Vec<Hw>,
}

pub struct Model {
    /// The host page size, and TCEs per TCE page.
    pub page: u64,
    pub epp: u64,
    pub ctxs: Vec<Ctx>,
    pub tables: Vec<Option<Table>>,
    /// Group slot -> id in `all`.
    pub groups: Vec<Option<usize>>,
    pub all: Vec<Group>,
}

/// Where fd arguments lead.
enum Target {
    Table(usize),
    Group(usize),
}

impl Model {
    pub fn new() -> Self {
        let page = rustix::param::page_size() as u64;
        let mut ctx = Ctx::default();
        let ram = Slot::Ram.request();
        ctx.slots.insert(
            0,
            (ram.guest_phys_addr, ram.memory_size, ram.userspace_addr),
        );
        Self {
            page,
            epp: page / 8,
            ctxs: vec![ctx; CTXS],
            tables: vec![None; TABLES],
            groups: vec![None; GROUPS],
            all: Vec::new(),
        }
    }

    /// TCE pages of window `w`.
    pub fn page_count(&self, w: &Window) -> u64 {
        w.size().div_ceil(self.epp)
    }

    /// Pages a new mapping of the table in `slot` covers.
    pub fn map_pages(&self, w: &Window) -> u64 {
        self.page_count(w).min(MAP_PAGES)
    }

    /// `H_PUT_TCE`'s check of `tce` for a table of context `ctx`: any poison value; a valid
    /// one with nothing but permission bits below the page size, in a memory slot.
    fn check(&self, ctx: usize, w: &Window, tce: u64) -> Result<(), Errno> {
        if tce & 3 == 0 {
            return Ok(());
        }
        let gpa = tce & !3;
        if gpa & ((1 << w.page_shift()) - 1) != 0 {
            return Err(Errno::INVAL);
        }
        let in_slot = self.ctxs[ctx]
            .slots
            .values()
            .any(|&(start, size, _)| gpa >= start && gpa - start < size);
        if in_slot {
            Ok(())
        } else {
            Err(Errno::FAULT)
        }
    }

    /// The hardware entries standing for window entry `entry` holding `tce` (0: cleared).
    fn split(w: &Window, hw: &Hw, entry: u64, tce: u64) -> Vec<(u64, u64)> {
        let shift = w.page_shift() - hw.it_page_shift;
        let first = ((w.offset() + entry) << shift) - hw.it_offset;
        (0..1u64 << shift)
            .map(|i| {
                let v = if tce & 3 == 0 {
                    0
                } else {
                    ((tce & !3) + (i << hw.it_page_shift)) | (tce & 3)
                };
                (first + i, v)
            })
            .collect()
    }

    fn write_hw(hw: &mut Hw, w: &Window, entry: u64, tce: u64) {
        for (i, v) in Self::split(w, hw, entry, tce) {
            if v == 0 {
                hw.entries.remove(&i);
            } else {
                hw.entries.insert(i, v);
            }
        }
    }

    /// Stores `tce` (checked) at `entry` and in every attached group.
    fn set(&mut self, slot: usize, entry: u64, tce: u64) {
        let t = self.tables[slot].as_mut().expect("a live table");
        let page = entry / self.epp;
        if tce == 0 && !t.pages.contains(&page) {
            return;
        }
        let value = if tce & 3 == 0 { 0 } else { tce };
        for &(g, i) in &t.attached {
            Self::write_hw(&mut self.all[g].hw[i], &t.w, entry, value);
        }
        t.pages.insert(page);
        if tce == 0 {
            t.entries.remove(&entry);
        } else {
            t.entries.insert(entry, tce);
        }
    }

    /// The table's fd and mappings are gone: its groups are detached and cleared.
    fn free_table(&mut self, slot: usize) {
        if let Some(t) = self.tables[slot].take() {
            for (g, i) in t.attached {
                let hw = &mut self.all[g].hw[i];
                hw.att = None;
                hw.entries.clear();
            }
        }
    }

    fn open_table(&self, slot: usize) -> Option<&Table> {
        self.tables[slot].as_ref().filter(|t| t.fd)
    }

    fn open_group(&self, slot: usize) -> Option<usize> {
        self.groups[slot]
    }

    /// What an fd argument of attach or detach is: EBADF if it is not open.
    fn target(&self, fd: Fd) -> Result<Option<Target>, Errno> {
        match fd {
            Fd::Table(s) => match self.open_table(s) {
                Some(_) => Ok(Some(Target::Table(s))),
                None => Err(Errno::BADF),
            },
            Fd::Group(g) => match self.open_group(g) {
                Some(id) => Ok(Some(Target::Group(id))),
                None => Err(Errno::BADF),
            },
            Fd::Device(_) => Ok(None),
            Fd::Closed | Fd::Minus1 => Err(Errno::BADF),
        }
    }

    /// The walk flags an attach uses: the full walks only on small windows.
    pub fn walk(flags: u32, w: &Window) -> u32 {
        if (flags == 1 || flags == 2) && w.size() > FULL_WALK_MAX {
            0
        } else {
            flags
        }
    }

    fn table_op(&mut self, slot: usize, op: &TableOp) -> Res {
        // Through the mapping, a table lives without its fd.
        let Some(t) = self.tables[slot].as_ref() else {
            return Ok(Out::Skipped);
        };
        let (w, ctx) = (t.w, t.ctx);
        let ps = w.page_shift();
        let mapped = t.maps.last().map(|&p| p * self.epp);
        if !t.fd && !matches!(op, TableOp::MmapWrite(..) | TableOp::MmapRead(_)) {
            return Ok(Out::Skipped);
        }
        let inval = |r: Result<u64, _>| r.map_err(|_| Errno::INVAL);
        match op {
            TableOp::Put(at, tce) => {
                let entry = inval(w.entry(at.ioba(&w), 1))?;
                let tce = tce.value(ps);
                self.check(ctx, &w, tce)?;
                self.set(slot, entry, tce);
            }
            TableOp::Stuff(at, tce, n) => {
                let entry = inval(w.entry(at.ioba(&w), *n))?;
                let tce = tce.value(ps);
                if tce & 3 != 0 {
                    return Err(Errno::INVAL);
                }
                for e in entry..entry + n {
                    self.set(slot, e, tce);
                }
            }
            TableOp::Indirect(at, list) => {
                let (ptr, n) = match list {
                    List::Tces(l) => (Ptr::Good, l.len() as u64),
                    List::Bad(p, n) => (*p, *n),
                };
                if n > 512 || ptr.addr(0x10000) & 0xfff != 0 {
                    return Err(Errno::INVAL);
                }
                let entry = inval(w.entry(at.ioba(&w), n))?;
                let tces: Vec<u64> = match list {
                    List::Tces(l) => l.iter().map(|t| t.value(ps)).collect(),
                    List::Bad(Ptr::Good, n) => vec![0; *n as usize],
                    List::Bad(..) if n == 0 => Vec::new(),
                    List::Bad(..) => return Err(Errno::FAULT),
                };
                for &tce in &tces {
                    self.check(ctx, &w, tce)?;
                }
                for (i, &tce) in tces.iter().enumerate() {
                    self.set(slot, entry + i as u64, tce);
                }
            }
            TableOp::Get(at) => {
                let entry = inval(w.entry(at.ioba(&w), 1))?;
                return Ok(Out::Value(t.entries.get(&entry).copied().unwrap_or(0)));
            }
            TableOp::Populated {
                first,
                past,
                n,
                ptr,
            } => {
                let pages = self.page_count(&w);
                let first = if *past {
                    pages + first % 4
                } else {
                    first % pages
                };
                match first.checked_add(*n) {
                    Some(end) if *n != 0 && end <= pages => {}
                    _ => return Err(Errno::INVAL),
                }
                if !matches!(ptr, Ptr::Good | Ptr::Unaligned) {
                    return Err(Errno::FAULT);
                }
                let mut words = vec![0u64; n.div_ceil(64) as usize];
                for &p in t.pages.range(first..first + n) {
                    words[((p - first) / 64) as usize] |= 1 << ((p - first) % 64);
                }
                return Ok(Out::Words(words));
            }
            TableOp::MmapWrite(n, tce) => {
                let Some(mapped) = mapped else {
                    return Ok(Out::Skipped);
                };
                let entry = n % mapped;
                let t = self.tables[slot].as_mut().expect("a live table");
                t.pages.insert(entry / self.epp);
                match tce.value(ps) {
                    0 => t.entries.remove(&entry),
                    v => t.entries.insert(entry, v),
                };
            }
            TableOp::MmapRead(n) => {
                let Some(mapped) = mapped else {
                    return Ok(Out::Skipped);
                };
                return Ok(Out::Value(
                    t.entries.get(&(n % mapped)).copied().unwrap_or(0),
                ));
            }
        }
        Ok(Out::Done)
    }

    /// What the replay of the table in `slot` writes into hardware table `hw`, and its counts.
    fn replay(&self, slot: usize, hw: &mut Hw) -> Replay {
        let t = self.tables[slot].as_ref().expect("a live table");
        let mut r = Replay::default();
        // Entries past the window's end (written through mmap) are not the window's.
        for (&e, &tce) in t.entries.range(..t.w.size()) {
            if tce & 3 == 0 {
                continue;
            }
            if self.check(t.ctx, &t.w, tce).is_ok() {
                Self::write_hw(hw, &t.w, e, tce);
                r.replayed += 1;
                r.hw_written += 1 << (t.w.page_shift() - hw.it_page_shift);
            } else {
                r.skipped += 1;
            }
        }
        r
    }

    fn attach(&mut self, ctx: usize, table: Fd, group: Fd, flags: u32, pad: u32) -> Res {
        if pad != 0 || !(0..=2).contains(&flags) {
            return Err(Errno::INVAL);
        }
        let Some(Target::Table(slot)) = self.target(table)? else {
            return Err(Errno::INVAL);
        };
        let Some(Target::Group(g)) = self.target(group)? else {
            return Err(Errno::INVAL);
        };
        let t = self.tables[slot].as_ref().expect("an open table");
        let w = t.w;
        let i = self.all[g]
            .hw
            .iter()
            .position(|hw| hw.fits(&w))
            .ok_or(Errno::INVAL)?;
        if t.ctx != ctx {
            return Err(Errno::INVAL);
        }
        match &mut self.all[g].hw[i].att {
            Some((s, refs)) if *s == slot => {
                *refs += 1;
                return Ok(Out::Done);
            }
            Some(_) => return Err(Errno::BUSY),
            None => {}
        }
        let mut hw = self.all[g].hw[i].clone();
        hw.att = Some((slot, 1));
        let replay = self.ctxs[ctx].replay.then(|| self.replay(slot, &mut hw));
        self.all[g].hw[i] = hw;
        let t = self.tables[slot].as_mut().expect("an open table");
        t.attached.push((g, i));
        if let Some(r) = replay {
            t.replays += 1;
            t.last = Some(r);
        }
        Ok(Out::Done)
    }

    fn detach(&mut self, ctx: usize, table: Fd, group: Fd, flags: u32) -> Res {
        if flags != 0 {
            return Err(Errno::INVAL);
        }
        let Some(Target::Table(slot)) = self.target(table)? else {
            return Err(Errno::INVAL);
        };
        let Some(Target::Group(g)) = self.target(group)? else {
            return Err(Errno::INVAL);
        };
        let t = self.tables[slot].as_mut().expect("an open table");
        if t.ctx != ctx {
            return Err(Errno::INVAL);
        }
        let Some(at) = t.attached.iter().position(|&(id, _)| id == g) else {
            return Err(Errno::NOENT);
        };
        let i = t.attached[at].1;
        let hw = &mut self.all[g].hw[i];
        match &mut hw.att {
            Some((_, refs)) if *refs > 1 => *refs -= 1,
            _ => {
                hw.att = None;
                hw.entries.clear();
                t.attached.remove(at);
            }
        }
        Ok(Out::Done)
    }

    /// `KVM_SET_USER_MEMORY_REGION` with 7.3's rules.
    fn memslot(&mut self, ctx: usize, r: &KvmUserspaceMemoryRegion) -> Res {
        let page = self.page;
        let aligned = |v: u64| v.is_multiple_of(page);
        if r.flags != 0
            || r.slot >= 512
            || !aligned(r.guest_phys_addr)
            || !aligned(r.memory_size)
            || !aligned(r.userspace_addr)
            || r.memory_size / page > (1 << 31) - 1
            || r.guest_phys_addr.checked_add(r.memory_size).is_none()
            || r.userspace_addr.checked_add(r.memory_size).is_none()
        {
            return Err(Errno::INVAL);
        }
        let slots = &mut self.ctxs[ctx].slots;
        if r.memory_size == 0 {
            return match slots.remove(&r.slot) {
                Some(_) => Ok(Out::Done),
                None => Err(Errno::INVAL),
            };
        }
        if let Some(&(_, size, ua)) = slots.get(&r.slot) {
            if size != r.memory_size || ua != r.userspace_addr {
                return Err(Errno::INVAL);
            }
        }
        let (start, end) = (r.guest_phys_addr, r.guest_phys_addr + r.memory_size);
        let overlaps = slots
            .iter()
            .any(|(&s, &(a, n, _))| s != r.slot && start < a + n && a < end);
        if overlaps {
            return Err(Errno::EXIST);
        }
        slots.insert(r.slot, (start, r.memory_size, r.userspace_addr));
        Ok(Out::Done)
    }

    /// Applies `op` as the module must, and returns what it must return.
    pub fn apply(&mut self, op: &Op) -> Res {
        match op {
            Op::Enable(c) => {
                self.ctxs[*c].replay = true;
            }
            Op::Create {
                ctx,
                slot,
                liobn,
                geo,
            } => {
                if self.tables[*slot].is_some() {
                    return Ok(Out::Skipped);
                }
                let r = geo.request(*liobn);
                if r.flags != 0 {
                    return Err(Errno::INVAL);
                }
                let w = Window::new(r.page_shift, r.offset, r.size).map_err(|_| Errno::INVAL)?;
                let taken = self
                    .tables
                    .iter()
                    .flatten()
                    .any(|t| t.ctx == *ctx && t.liobn == *liobn);
                if taken {
                    return Err(Errno::BUSY);
                }
                self.tables[*slot] = Some(Table {
                    ctx: *ctx,
                    liobn: *liobn,
                    w,
                    entries: BTreeMap::new(),
                    pages: BTreeSet::new(),
                    fd: true,
                    maps: Vec::new(),
                    attached: Vec::new(),
                    replays: 0,
                    last: None,
                });
            }
            Op::Close(s) => {
                let Some(t) = self.tables[*s].as_mut().filter(|t| t.fd) else {
                    return Ok(Out::Skipped);
                };
                t.fd = false;
                if t.maps.is_empty() {
                    self.free_table(*s);
                }
            }
            Op::Map(s) => {
                let Some(t) = self.open_table(*s).filter(|t| t.maps.len() < 2) else {
                    return Ok(Out::Skipped);
                };
                let pages = self.map_pages(&t.w);
                self.tables[*s]
                    .as_mut()
                    .expect("an open table")
                    .maps
                    .push(pages);
            }
            Op::Unmap(s) => {
                let Some(t) = self.tables[*s].as_mut().filter(|t| !t.maps.is_empty()) else {
                    return Ok(Out::Skipped);
                };
                t.maps.pop();
                if !t.fd && t.maps.is_empty() {
                    self.free_table(*s);
                }
            }
            Op::Table(s, op) => return self.table_op(*s, op),
            Op::Parallel(a, x, b, y) => {
                let first = self.table_op(*a, x);
                let second = self.table_op(*b, y);
                return Ok(Out::Pair(Box::new(first), Box::new(second)));
            }
            Op::Fork(s, n, tce) => {
                if self.open_table(*s).is_none() {
                    return Ok(Out::Skipped);
                }
                self.table_op(*s, &TableOp::MmapWrite(*n, *tce))?;
            }
            Op::CreateGroup(g, geo) => {
                if self.groups[*g].is_some() {
                    return Ok(Out::Skipped);
                }
                let hw = self.hw(*geo)?;
                self.all.push(Group {
                    fd: true,
                    hw: vec![hw],
                });
                self.groups[*g] = Some(self.all.len() - 1);
            }
            Op::AddTable(g, geo) => {
                let Some(id) = self.groups[*g] else {
                    return Ok(Out::Skipped);
                };
                let hw = self.hw(*geo)?;
                if self.all[id].hw.len() >= 2 {
                    return Err(Errno::BUSY);
                }
                self.all[id].hw.push(hw);
                return Ok(Out::Value(1));
            }
            Op::CloseGroup(g) => {
                let Some(id) = self.groups[*g].take() else {
                    return Ok(Out::Skipped);
                };
                self.all[id].fd = false;
            }
            Op::Attach {
                ctx,
                table,
                group,
                flags,
                pad,
            } => return self.attach(*ctx, *table, *group, *flags, *pad),
            Op::Detach {
                ctx,
                table,
                group,
                flags,
            } => return self.detach(*ctx, *table, *group, *flags),
            Op::Memslot(c, slot) => return self.memslot(*c, &slot.request()),
        }
        Ok(Out::Done)
    }

    /// The window a group geometry covers, if its table is there.
    pub fn cover(&self, geo: GroupGeo) -> Option<Window> {
        geo.slot()
            .and_then(|s| self.tables[s].as_ref())
            .map(|t| t.w)
    }

    /// A mock hardware table of `geo`, checked as `KTR_CREATE_MOCK_GROUP` checks it.
    fn hw(&self, geo: GroupGeo) -> Result<Hw, Errno> {
        let r: KtrMockGroup = geo.request(self.cover(geo).as_ref());
        Window::new(r.it_page_shift, r.it_offset, r.it_size).map_err(|_| Errno::INVAL)?;
        let bits = self.epp.trailing_zeros();
        let total = r.levels * bits;
        if !(1..=5).contains(&r.levels) || (total < 64 && r.it_size > 1 << total) {
            return Err(Errno::INVAL);
        }
        Ok(Hw {
            it_page_shift: r.it_page_shift,
            it_offset: r.it_offset,
            it_size: r.it_size,
            att: None,
            entries: BTreeMap::new(),
        })
    }
}
