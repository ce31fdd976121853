// SPDX-License-Identifier: GPL-2.0

//! The fuzzer's operations and how they are drawn: ioctls with hostile arguments over a few
//! contexts, table slots and mock groups, writes and reads through mmap, munmap, close and fork,
//! and pairs of table operations run from two threads at once. Arguments are drawn abstractly
//! (an entry "past the end", a TCE "with junk below the page") and resolved against the table
//! they hit when the op runs, the same way for the module and for the model.

use crate::fixture::{covering, GUEST_RAM};
use crate::uapi::*;
use crate::uapi_test::*;
use crate::window::Window;
use kvm_tce_replay::mock_levels;
use proptest::prelude::*;

/// Contexts (opens of the device).
pub const CTXS: usize = 2;
/// Table slots.
pub const TABLES: usize = 4;
/// Mock group slots.
pub const GROUPS: usize = 3;
/// Most pages a mapping covers.
pub const MAP_PAGES: u64 = 4;
/// Windows larger than this never get the benchmarks' full walks (every entry, every slot).
pub const FULL_WALK_MAX: u64 = 1 << 16;

const PAGE_SHIFTS: [u32; 4] = [12, 16, 24, 34];
const SIZES: [u64; 7] = [1, 511, 512, 513, 4096, 1 << 20, 1 << 31];
const OFFSETS: [u64; 3] = [0, 1, 1 << 20];

/// Where in a table an op points.
#[derive(Clone, Copy, Debug)]
pub enum At {
    /// Entry `n` (past the end if the window is smaller).
    Entry(u64),
    /// Entry `n % size`: anywhere in the window.
    Anywhere(u64),
    Last,
    End,
    /// Half a page past entry `n`: misaligned.
    Misaligned(u64),
    /// Any I/O bus address.
    Raw(u64),
}

impl At {
    /// The I/O bus address in window `w`.
    pub fn ioba(self, w: &Window) -> u64 {
        let entry = |e: u64| -> u64 {
            let page = u128::from(w.offset()) + u128::from(e);
            u64::try_from(page << w.page_shift()).unwrap_or(u64::MAX)
        };
        match self {
            At::Entry(n) => entry(n),
            At::Anywhere(n) => entry(n % w.size()),
            At::Last => entry(w.size() - 1),
            At::End => entry(w.size()),
            At::Misaligned(n) => entry(n % w.size()).wrapping_add(1 << (w.page_shift() - 1)),
            At::Raw(v) => v,
        }
    }
}

/// A TCE, drawn for the page size of the table it goes to.
#[derive(Clone, Copy, Debug)]
pub enum Tce {
    Zero,
    /// Guest page `page` (of the window's page size) with permission bits `perm` (0: poison).
    Page {
        page: u64,
        perm: u64,
    },
    /// As `Page`, with junk below the page size.
    Junk {
        page: u64,
        low: u64,
        perm: u64,
    },
    /// A page past slot 0, where slots 1 and 2 may be.
    Far {
        page: u64,
        perm: u64,
    },
    Raw(u64),
}

impl Tce {
    pub fn value(self, page_shift: u32) -> u64 {
        let at = |page: u64| page.checked_shl(page_shift).unwrap_or(0);
        match self {
            Tce::Zero => 0,
            Tce::Page { page, perm } => at(page) | perm,
            Tce::Junk { page, low, perm } => {
                let below = (1u64 << page_shift) - 1;
                at(page) | ((low & below & !3) | 4) & below | perm
            }
            Tce::Far { page, perm } => (GUEST_RAM + at(page)) | perm,
            Tce::Raw(v) => v,
        }
    }
}

/// A user pointer for the ioctls that take one.
#[derive(Clone, Copy, Debug)]
pub enum Ptr {
    /// A buffer of the harness.
    Good,
    Null,
    /// Page-aligned and never mapped (below mmap_min_addr).
    Unmapped,
    /// A kernel address.
    Kernel,
    /// One byte past a good buffer's alignment.
    Unaligned,
}

impl Ptr {
    /// The address, with `good` for [`Ptr::Good`].
    pub fn addr(self, good: u64) -> u64 {
        match self {
            Ptr::Good => good,
            Ptr::Null => 0,
            Ptr::Unmapped => 0x1000,
            Ptr::Kernel => 0xc000_0000_0000_0000,
            Ptr::Unaligned => good + 8,
        }
    }
}

/// The TCE list of `H_PUT_TCE_INDIRECT`.
#[derive(Clone, Debug)]
pub enum List {
    Tces(Vec<Tce>),
    /// `n` TCEs at a bad pointer.
    Bad(Ptr, u64),
}

/// A table's geometry at creation.
#[derive(Clone, Copy, Debug)]
pub enum TableGeo {
    Good {
        page_shift: usize,
        size: usize,
        offset: usize,
    },
    Raw {
        page_shift: u32,
        offset: u64,
        size: u64,
        flags: u64,
    },
}

impl TableGeo {
    pub fn request(self, liobn: u64) -> KvmCreateSpaprTce64 {
        let (page_shift, offset, size, flags) = match self {
            TableGeo::Good {
                page_shift,
                size,
                offset,
            } => (PAGE_SHIFTS[page_shift], OFFSETS[offset], SIZES[size], 0),
            TableGeo::Raw {
                page_shift,
                offset,
                size,
                flags,
            } => (page_shift, offset, size, flags),
        };
        KvmCreateSpaprTce64 {
            liobn,
            page_shift,
            flags: flags as u32,
            offset,
            size,
        }
    }
}

/// A mock hardware table's geometry.
#[derive(Clone, Copy, Debug)]
pub enum GroupGeo {
    /// Covers the window of the table in slot `slot` (a fixed small one if the slot is empty)
    /// with pages `2^smaller` times smaller (at most 4 KiB), `grow`: twice as many entries,
    /// `shift`: one hardware page off (no window fits).
    Cover {
        slot: usize,
        smaller: u32,
        grow: bool,
        shift: bool,
    },
    Raw {
        it_page_shift: u32,
        it_offset: u64,
        it_size: u64,
        levels: u32,
    },
}

impl GroupGeo {
    pub fn request(self, window: Option<&Window>) -> KtrMockGroup {
        match self {
            GroupGeo::Cover {
                smaller,
                grow,
                shift,
                ..
            } => {
                let fallback = Window::new(16, 0, 512).expect("a valid window");
                let w = window.unwrap_or(&fallback);
                let it_page_shift = w.page_shift().saturating_sub(smaller).max(12);
                let mut hw = covering(w, it_page_shift);
                if grow {
                    hw.it_size = hw.it_size.saturating_mul(2);
                }
                if shift {
                    hw.it_offset += 1;
                }
                KtrMockGroup {
                    it_page_shift,
                    levels: mock_levels(hw.it_size),
                    it_offset: hw.it_offset,
                    it_size: hw.it_size,
                    flags: 0,
                }
            }
            GroupGeo::Raw {
                it_page_shift,
                it_offset,
                it_size,
                levels,
            } => KtrMockGroup {
                it_page_shift,
                levels,
                it_offset,
                it_size,
                flags: 0,
            },
        }
    }

    /// The table slot whose window it covers.
    pub fn slot(self) -> Option<usize> {
        match self {
            GroupGeo::Cover { slot, .. } => Some(slot),
            GroupGeo::Raw { .. } => None,
        }
    }
}

/// The fd an attach or detach names.
#[derive(Clone, Copy, Debug)]
pub enum Fd {
    Table(usize),
    Group(usize),
    Device(usize),
    /// Never open.
    Closed,
    Minus1,
}

/// A memory slot request (`KVM_SET_USER_MEMORY_REGION`).
#[derive(Clone, Copy, Debug)]
pub enum Slot {
    /// Slot 0 as `fixture::open` made it (0 .. GUEST_RAM).
    Ram,
    /// Slot `slot` (1 or 2) of 1 GiB at GUEST_RAM + `at` GiB (`at` 0..3; 3: the last GiB of
    /// slot 0 instead), deleted if `delete`.
    Extra { slot: u32, at: u64, delete: bool },
    /// Delete slot 0.
    DeleteRam,
    /// A request KVM refuses whatever the slots: flags, a slot past 511, misalignment, a
    /// wrapping range.
    Bad(u32),
}

/// User address of memory slot `slot`'s memory.
pub fn slot_ua(slot: u32) -> u64 {
    if slot == 0 {
        rustix::param::page_size() as u64
    } else {
        (1 << 44) + u64::from(slot) * (1 << 41)
    }
}

impl Slot {
    pub fn request(self) -> KvmUserspaceMemoryRegion {
        let page = rustix::param::page_size() as u64;
        match self {
            Slot::Ram => KvmUserspaceMemoryRegion::new(0, 0, GUEST_RAM, slot_ua(0)),
            Slot::Extra { slot, at, delete } => KvmUserspaceMemoryRegion::new(
                slot,
                if at >= 3 {
                    GUEST_RAM - (1 << 30)
                } else {
                    GUEST_RAM + (at << 30)
                },
                if delete { 0 } else { 1 << 30 },
                slot_ua(slot),
            ),
            Slot::DeleteRam => KvmUserspaceMemoryRegion::new(0, 0, 0, slot_ua(0)),
            Slot::Bad(kind) => {
                let mut r = KvmUserspaceMemoryRegion::new(3, GUEST_RAM * 2, 1 << 30, slot_ua(3));
                match kind % 4 {
                    0 => r.flags = 1,
                    1 => r.slot = 512,
                    2 => r.guest_phys_addr += 8,
                    _ => r.guest_phys_addr = u64::MAX - page + 1,
                }
                r
            }
        }
    }
}

/// An operation on one table (these may run two at once, from two threads).
#[derive(Clone, Debug)]
pub enum TableOp {
    Put(At, Tce),
    Stuff(At, Tce, u64),
    Indirect(At, List),
    Get(At),
    /// `KTR_GET_POPULATED` of pages `first ..` (`first` modulo the table's pages, or past
    /// them if `past`), `n` of them.
    Populated {
        first: u64,
        past: bool,
        n: u64,
        ptr: Ptr,
    },
    /// A write through the table's newest mapping, at entry `n` modulo what it maps.
    MmapWrite(u64, Tce),
    MmapRead(u64),
}

/// One step of a sequence.
#[derive(Clone, Debug)]
pub enum Op {
    Enable(usize),
    Create {
        ctx: usize,
        slot: usize,
        liobn: u64,
        geo: TableGeo,
    },
    Close(usize),
    Map(usize),
    Unmap(usize),
    Table(usize, TableOp),
    /// Two table ops on two different slots, from two threads at once.
    Parallel(usize, TableOp, usize, TableOp),
    /// A forked child: the table's ioctls refuse it (EIO); it writes through the mapping it
    /// inherited.
    Fork(usize, u64, Tce),
    CreateGroup(usize, GroupGeo),
    AddTable(usize, GroupGeo),
    CloseGroup(usize),
    Attach {
        ctx: usize,
        table: Fd,
        group: Fd,
        flags: u32,
        pad: u32,
    },
    Detach {
        ctx: usize,
        table: Fd,
        group: Fd,
        flags: u32,
    },
    Memslot(usize, Slot),
}

/// A table slot: mostly slot 0, which every sequence starts with.
fn tslot() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(0usize), 2 => 1..TABLES]
}

/// A group slot: mostly group 0, which every sequence starts with.
fn gslot() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(0usize), 2 => 1..GROUPS]
}

fn at() -> impl Strategy<Value = At> {
    prop_oneof![
        4 => (0u64..1100).prop_map(At::Entry),
        4 => any::<u64>().prop_map(At::Anywhere),
        1 => Just(At::Last),
        1 => Just(At::End),
        1 => any::<u64>().prop_map(At::Misaligned),
        1 => any::<u64>().prop_map(At::Raw),
    ]
}

fn tce() -> impl Strategy<Value = Tce> {
    prop_oneof![
        2 => Just(Tce::Zero),
        6 => (0u64..64, 0u64..4).prop_map(|(page, perm)| Tce::Page { page, perm }),
        1 => (0u64..64, any::<u64>(), 0u64..4).prop_map(|(page, low, perm)| Tce::Junk { page, low, perm }),
        1 => (0u64..64, 0u64..4).prop_map(|(page, perm)| Tce::Far { page, perm }),
        1 => prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), Just(1u64 << 63 | 3), any::<u64>()].prop_map(Tce::Raw),
    ]
}

fn ptr() -> impl Strategy<Value = Ptr> {
    prop_oneof![
        8 => Just(Ptr::Good),
        1 => Just(Ptr::Null),
        1 => Just(Ptr::Unmapped),
        1 => Just(Ptr::Kernel),
        1 => Just(Ptr::Unaligned),
    ]
}

/// Counts: the boundaries of `H_STUFF_TCE` and `H_PUT_TCE_INDIRECT`, and some small ones.
fn count() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(512),
        Just(513),
        Just(1 << 63),
        Just(u64::MAX),
        0u64..1500,
    ]
}

fn table_op() -> impl Strategy<Value = TableOp> {
    prop_oneof![
        6 => (at(), tce()).prop_map(|(a, t)| TableOp::Put(a, t)),
        2 => (at(), tce(), count()).prop_map(|(a, t, n)| TableOp::Stuff(a, t, n)),
        2 => (at(), prop_oneof![
            6 => proptest::collection::vec(tce(), 0..24).prop_map(List::Tces),
            1 => (ptr(), count()).prop_map(|(p, n)| List::Bad(p, n)),
        ]).prop_map(|(a, l)| TableOp::Indirect(a, l)),
        2 => at().prop_map(TableOp::Get),
        1 => (any::<u64>(), any::<bool>(), prop_oneof![Just(0u64), 1u64..200, Just(u64::MAX)], ptr())
            .prop_map(|(first, past, n, ptr)| TableOp::Populated { first, past, n, ptr }),
        3 => (any::<u64>(), tce()).prop_map(|(n, t)| TableOp::MmapWrite(n, t)),
        1 => any::<u64>().prop_map(TableOp::MmapRead),
    ]
}

fn table_geo() -> impl Strategy<Value = TableGeo> {
    prop_oneof![
        8 => (0..PAGE_SHIFTS.len(), 0..SIZES.len(), 0..OFFSETS.len())
            .prop_map(|(page_shift, size, offset)| TableGeo::Good { page_shift, size, offset }),
        1 => (prop_oneof![Just(0u32), Just(11), Just(35), Just(64), 12u32..35],
              prop_oneof![Just(0u64), Just(u64::MAX), Just(1u64 << 40)],
              prop_oneof![Just(0u64), Just(u64::MAX), Just(1u64 << 40), 1u64..100],
              prop_oneof![9 => Just(0u64), 1 => Just(1u64)])
            .prop_map(|(page_shift, offset, size, flags)| TableGeo::Raw { page_shift, offset, size, flags }),
    ]
}

fn group_geo() -> impl Strategy<Value = GroupGeo> {
    prop_oneof![
        8 => (tslot(), 0u32..5, prop::bool::weighted(0.2), prop::bool::weighted(0.1))
            .prop_map(|(slot, smaller, grow, shift)| GroupGeo::Cover { slot, smaller, grow, shift }),
        1 => (prop_oneof![Just(0u32), Just(11), Just(12), Just(35)],
              prop_oneof![Just(0u64), Just(u64::MAX)],
              prop_oneof![Just(0u64), Just(1u64), Just(u64::MAX)],
              0u32..7)
            .prop_map(|(it_page_shift, it_offset, it_size, levels)| GroupGeo::Raw { it_page_shift, it_offset, it_size, levels }),
    ]
}

fn fd() -> impl Strategy<Value = Fd> {
    prop_oneof![
        1 => tslot().prop_map(Fd::Table),
        1 => gslot().prop_map(Fd::Group),
        1 => (0..CTXS).prop_map(Fd::Device),
        1 => Just(Fd::Closed),
        1 => Just(Fd::Minus1),
    ]
}

fn slot() -> impl Strategy<Value = Slot> {
    prop_oneof![
        1 => Just(Slot::Ram),
        4 => (1u32..3, 0u64..4, any::<bool>())
            .prop_map(|(slot, at, delete)| Slot::Extra { slot, at, delete }),
        1 => Just(Slot::DeleteRam),
        1 => any::<u32>().prop_map(Slot::Bad),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let attach = (
        0..CTXS,
        prop_oneof![6 => tslot().prop_map(Fd::Table), 1 => fd()],
        prop_oneof![6 => gslot().prop_map(Fd::Group), 1 => fd()],
        prop_oneof![12 => Just(0u32), 1 => Just(1), 1 => Just(2), 1 => any::<u32>()],
        prop_oneof![15 => Just(0u32), 1 => any::<u32>()],
    );
    prop_oneof![
        1 => (0..CTXS).prop_map(Op::Enable),
        3 => (0..CTXS, 0..TABLES, 1u64..4, table_geo())
            .prop_map(|(ctx, slot, liobn, geo)| Op::Create { ctx, slot, liobn, geo }),
        1 => tslot().prop_map(Op::Close),
        2 => tslot().prop_map(Op::Map),
        1 => tslot().prop_map(Op::Unmap),
        20 => (tslot(), table_op()).prop_map(|(s, o)| Op::Table(s, o)),
        3 => (0..TABLES, table_op(), 1..TABLES, table_op())
            .prop_map(|(a, x, d, y)| Op::Parallel(a, x, (a + d) % TABLES, y)),
        1 => (tslot(), any::<u64>(), tce()).prop_map(|(s, n, t)| Op::Fork(s, n, t)),
        3 => (gslot(), group_geo()).prop_map(|(g, geo)| Op::CreateGroup(g, geo)),
        1 => (gslot(), group_geo()).prop_map(|(g, geo)| Op::AddTable(g, geo)),
        1 => gslot().prop_map(Op::CloseGroup),
        6 => attach.prop_map(|(ctx, table, group, flags, pad)| Op::Attach { ctx, table, group, flags, pad }),
        3 => (0..CTXS, prop_oneof![6 => tslot().prop_map(Fd::Table), 1 => fd()],
              prop_oneof![6 => gslot().prop_map(Fd::Group), 1 => fd()],
              prop_oneof![12 => Just(0u32), 1 => any::<u32>()])
            .prop_map(|(ctx, table, group, flags)| Op::Detach { ctx, table, group, flags }),
        1 => (0..CTXS, slot()).prop_map(|(c, s)| Op::Memslot(c, s)),
    ]
}

/// How every sequence starts: a table in slot 0 (of a valid geometry), a group in slot 0 that
/// covers it, attached, and replay enabled in context 0 (before the attach or after it), so
/// that the ops after it have something to hit.
fn start() -> impl Strategy<Value = Vec<Op>> {
    (
        0..PAGE_SHIFTS.len(),
        0..SIZES.len(),
        0..OFFSETS.len(),
        0u32..5,
        any::<bool>(),
    )
        .prop_map(|(page_shift, size, offset, smaller, replay_first)| {
            let geo = TableGeo::Good {
                page_shift,
                size,
                offset,
            };
            let group = GroupGeo::Cover {
                slot: 0,
                smaller,
                grow: false,
                shift: false,
            };
            let attach = Op::Attach {
                ctx: 0,
                table: Fd::Table(0),
                group: Fd::Group(0),
                flags: 0,
                pad: 0,
            };
            let mut ops = vec![
                Op::Create {
                    ctx: 0,
                    slot: 0,
                    liobn: 1,
                    geo,
                },
                Op::CreateGroup(0, group),
            ];
            if replay_first {
                ops.splice(0..0, [Op::Enable(0)]);
                ops.push(attach);
            } else {
                ops.extend([attach, Op::Enable(0)]);
            }
            ops
        })
}

/// The fuzzer's sequence: the [`start`], then anything.
pub fn sequence() -> impl Strategy<Value = Vec<Op>> {
    (start(), proptest::collection::vec(op(), 1..80)).prop_map(|(mut ops, rest)| {
        ops.extend(rest);
        ops
    })
}

/// The model check's sequence, the replay's own workload: the [`start`], a second group over
/// the same table with hardware pages of 4 KiB (or the table's, if smaller), the table mapped,
/// then only updates of the table (`H_PUT_TCE`, `H_STUFF_TCE`, `H_PUT_TCE_INDIRECT`, writes
/// through the mapping) and attaches and detaches of the two groups.
pub fn replay_sequence() -> impl Strategy<Value = Vec<Op>> {
    let update = prop_oneof![
        6 => (at(), tce()).prop_map(|(a, t)| TableOp::Put(a, t)),
        2 => (at(), tce(), count()).prop_map(|(a, t, n)| TableOp::Stuff(a, t, n)),
        2 => (at(), proptest::collection::vec(tce(), 0..24))
            .prop_map(|(a, l)| TableOp::Indirect(a, List::Tces(l))),
        3 => (any::<u64>(), tce()).prop_map(|(n, t)| TableOp::MmapWrite(n, t)),
    ];
    let group = || (0..2usize).prop_map(Fd::Group);
    let step = prop_oneof![
        12 => update.prop_map(|o| Op::Table(0, o)),
        2 => group().prop_map(|group| Op::Attach { ctx: 0, table: Fd::Table(0), group, flags: 0, pad: 0 }),
        2 => group().prop_map(|group| Op::Detach { ctx: 0, table: Fd::Table(0), group, flags: 0 }),
    ];
    (start(), proptest::collection::vec(step, 1..60)).prop_map(|(mut ops, rest)| {
        let second = GroupGeo::Cover {
            slot: 0,
            smaller: 4,
            grow: false,
            shift: false,
        };
        ops.extend([Op::CreateGroup(1, second), Op::Map(0)]);
        ops.extend(rest);
        ops
    })
}
