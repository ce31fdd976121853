// SPDX-License-Identifier: GPL-2.0

//! KVM as the oracle: one guest (src/kvm.rs's VMM, kvm/guest.s) plays the same script of TCE
//! hypercalls against a table KVM keeps (`KVM_CREATE_SPAPR_TCE_64`, answered in the kernel) and
//! one the module keeps with the same geometry under another liobn (KVM leaves it to userspace,
//! which forwards it to the module, as tools/qemu/'s series does); every return code, then
//! every entry (KVM's through its mmap, the module's through its own), must agree. Scripts are
//! drawn with proptest from a seed (`seed=` reruns one), shrunk on a disagreement.

use super::fuzz::op::At;
use crate::kvm::{self, GuestMem, Vm, H_GET_TCE, H_PARAMETER, H_PUT_TCE, H_PUT_TCE_INDIRECT};
use crate::kvm::{H_STUFF_TCE, H_SUCCESS, H_TOO_HARD};
use crate::window::Window;
use crate::{diag, CaseResult, Stop};
use kvm_tce_replay::{TceReplay, TceTable, TceTableArgs};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestError};
use rustix::fd::AsFd;
use rustix::io::Errno;

/// The guest's memory: slot 0 (the guest's code, its script and its TCE lists, then pages TCEs
/// point to), a hole, slot 1.
const SLOTS: [(u64, u64); 2] = [(0, 32 << 20), (64 << 20, 16 << 20)];
/// Where record `i`'s TCE list goes: 4 KiB each from 1 MiB.
const LISTS_GPA: u64 = 1 << 20;
/// The longest script.
const SCRIPT_CALLS: usize = 48;

/// A guest address a TCE or a list points to.
#[derive(Clone, Copy, Debug)]
enum Gpa {
    /// Page `n` (of the table's page size) of slot `s`, wrapped into the slot.
    In(usize, u64),
    /// The last page of slot `s`.
    Last(usize),
    /// The first page past slot `s`.
    Past(usize),
    /// Between the slots.
    Hole,
    /// Far above all memory.
    Far,
}

impl Gpa {
    fn addr(self, shift: u32) -> u64 {
        let page = 1u64 << shift;
        match self {
            Gpa::In(s, n) => {
                let (base, size) = SLOTS[s % SLOTS.len()];
                base + (n % (size / page).max(1)) * page
            }
            Gpa::Last(s) => {
                let (base, size) = SLOTS[s % SLOTS.len()];
                (base + size).saturating_sub(page)
            }
            Gpa::Past(s) => {
                let (base, size) = SLOTS[s % SLOTS.len()];
                base + size
            }
            Gpa::Hole => SLOTS[0].1 + page.min(1 << 20),
            Gpa::Far => 1 << 44,
        }
    }
}

/// A TCE as the guest passes it.
#[derive(Clone, Copy, Debug)]
enum Tce {
    Zero,
    /// `gpa` aligned down to the page, with junk `low` below it (4 KiB-aligned junk: 0 for
    /// most) and permission bits `perm` (0: poison).
    At {
        gpa: Gpa,
        low: u64,
        perm: u64,
    },
    Raw(u64),
}

impl Tce {
    fn value(self, shift: u32) -> u64 {
        let mask = (1u64 << shift) - 1;
        match self {
            Tce::Zero => 0,
            Tce::At { gpa, low, perm } => (gpa.addr(shift) & !mask) | (low & mask & !3) | perm,
            Tce::Raw(v) => v,
        }
    }
}

/// Where `H_PUT_TCE_INDIRECT`'s list is.
#[derive(Clone, Copy, Debug)]
enum ListAt {
    /// Record `i`'s own 4 KiB page of slot 0.
    Own,
    /// 8 bytes into it.
    Misaligned,
    /// A guest address no slot holds.
    Outside,
    /// The last 4 KiB of slot 1.
    LastOfSlot1,
}

#[derive(Clone, Debug)]
enum Call {
    Put {
        at: At,
        tce: Tce,
    },
    /// `npages` TCEs of a list holding `tces` (the rest of its 4 KiB zero).
    Indirect {
        at: At,
        list: ListAt,
        tces: Vec<Tce>,
        npages: u64,
    },
    Stuff {
        at: At,
        value: Tce,
        npages: u64,
    },
    Get {
        at: At,
    },
}

#[derive(Clone, Copy, Debug)]
struct Geometry {
    page_shift: u32,
    offset: u64,
    size: u64,
}

fn gpa() -> impl Strategy<Value = Gpa> {
    prop_oneof![
        6 => (0..2usize, any::<u64>()).prop_map(|(s, n)| Gpa::In(s, n)),
        1 => (0..2usize).prop_map(Gpa::Last),
        1 => (0..2usize).prop_map(Gpa::Past),
        1 => Just(Gpa::Hole),
        1 => Just(Gpa::Far),
    ]
}

fn tce() -> impl Strategy<Value = Tce> {
    let low = prop_oneof![6 => Just(0u64), 1 => Just(4u64), 1 => 1u64..1 << 34];
    prop_oneof![
        1 => Just(Tce::Zero),
        8 => (gpa(), low, 0..4u64).prop_map(|(gpa, low, perm)| Tce::At { gpa, low, perm }),
        1 => any::<u64>().prop_map(Tce::Raw),
    ]
}

fn at() -> impl Strategy<Value = At> {
    prop_oneof![
        8 => any::<u64>().prop_map(At::Anywhere),
        1 => (0..4u64).prop_map(At::Entry),
        1 => Just(At::Last),
        1 => Just(At::End),
        1 => any::<u64>().prop_map(At::Misaligned),
        1 => any::<u64>().prop_map(At::Raw),
    ]
}

fn npages() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0..8u64,
        2 => prop::sample::select(vec![511u64, 512, 513, 4096, 8193]),
        1 => any::<u64>(),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    let list = prop_oneof![
        8 => Just(ListAt::Own),
        1 => Just(ListAt::Misaligned),
        1 => Just(ListAt::Outside),
        1 => Just(ListAt::LastOfSlot1),
    ];
    let indirect_n = prop_oneof![6 => 0..24u64, 1 => Just(512u64), 1 => Just(513u64)];
    let stuff_value = prop_oneof![4 => Just(Tce::Zero), 2 => tce()];
    prop_oneof![
        4 => (at(), tce()).prop_map(|(at, tce)| Call::Put { at, tce }),
        3 => (at(), list, prop::collection::vec(tce(), 0..24), indirect_n).prop_map(
            |(at, list, tces, npages)| Call::Indirect { at, list, tces, npages }
        ),
        2 => (at(), stuff_value, npages()).prop_map(|(at, value, npages)| Call::Stuff {
            at,
            value,
            npages
        }),
        2 => at().prop_map(|at| Call::Get { at }),
    ]
}

fn geometry() -> impl Strategy<Value = Geometry> {
    (
        prop::sample::select(vec![12u32, 16, 24]),
        prop::sample::select(vec![0u64, 1, 1 << 20]),
        prop::sample::select(vec![1u64, 511, 512, 513, 8192, 8193, 1 << 20]),
    )
        .prop_map(|(page_shift, offset, size)| Geometry {
            page_shift,
            offset,
            size,
        })
}

fn script() -> impl Strategy<Value = (Geometry, Vec<Call>)> {
    (geometry(), prop::collection::vec(call(), 1..SCRIPT_CALLS))
}

/// Why KVM's kvmppc_tce_validate() refuses a TCE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    /// Bits below the page besides the permission bits.
    Misaligned,
    /// The guest address in no slot.
    NoSlot,
}

/// Whether guest address `gpa` lies in one of [`SLOTS`].
fn in_slot(gpa: u64) -> bool {
    SLOTS
        .iter()
        .any(|&(base, size)| gpa >= base && gpa - base < size)
}

/// The first `n` TCEs of an indirect list holding `tces` (the rest of its 4 KiB zero), for a
/// table of `shift`.
fn list_values(tces: &[Tce], n: u64, shift: u32) -> impl Iterator<Item = u64> + '_ {
    (0..n).map(move |k| tces.get(k as usize).map_or(0, |t| t.value(shift)))
}

/// Why KVM refuses `tce` of a table of `shift`, if it does (a poison TCE, no permission bit, is
/// never refused).
fn refused(tce: u64, shift: u32) -> Option<Refused> {
    let gpa = tce & !3;
    if tce & 3 == 0 {
        None
    } else if gpa & ((1 << shift) - 1) != 0 {
        Some(Refused::Misaligned)
    } else if !in_slot(gpa) {
        Some(Refused::NoSlot)
    } else {
        None
    }
}

/// The first TCE of `call` (in window `w`) that KVM's checks refuse, if any.
fn first_refused(call: &Call, w: &Window) -> Option<Refused> {
    let shift = w.page_shift();
    match call {
        Call::Put { tce, .. } => refused(tce.value(shift), shift),
        Call::Indirect { tces, npages, .. } => {
            list_values(tces, (*npages).min(512), shift).find_map(|v| refused(v, shift))
        }
        _ => None,
    }
}

/// Where KVM's `H_PUT_TCE_INDIRECT` stops on `call` in window `w` although the module stores
/// the whole list (api.rst's difference 2): KVM checks every TCE, then stores them one by one and
/// stops with H_PARAMETER at the first whose address is in no slot, poison ones included
/// (kvmppc_tce_to_ua() in its store loop), although its H_PUT_TCE and H_STUFF_TCE accept such a
/// poison TCE. The bus address of the first TCE KVM did not store and the TCEs from there.
fn indirect_stops_at_poison(call: &Call, w: &Window) -> Option<(u64, Vec<u64>)> {
    let Call::Indirect {
        at,
        list: ListAt::Own | ListAt::LastOfSlot1,
        tces,
        npages,
    } = call
    else {
        return None;
    };
    if *npages > 512 || first_refused(call, w).is_some() {
        return None;
    }
    let shift = w.page_shift();
    let values: Vec<u64> = list_values(tces, *npages, shift).collect();
    let stop = values.iter().position(|&v| v & 3 == 0 && !in_slot(v))?;
    Some((
        at.ioba(w) + ((stop as u64) << shift),
        values[stop..].to_vec(),
    ))
}

/// The hcall return code a module errno is compared as (api.rst section 4: EINVAL is
/// H_PARAMETER, EFAULT is H_TOO_HARD, KVM's "userspace decides"); any other errno is kept as
/// itself above 0x1_0000_0000 so that it never equals one of KVM's codes.
fn hret(r: kvm_tce_replay::Result<()>) -> u64 {
    match r.map_err(|e| e.errno()) {
        Ok(()) => H_SUCCESS,
        Err(Errno::INVAL) => H_PARAMETER,
        Err(Errno::FAULT) => H_TOO_HARD,
        Err(e) => 0x1_0000_0000 + e.raw_os_error() as u64,
    }
}

/// A context of the module with `vm`'s memory slots, as a VMM registers its RAM with both.
fn module_context(vm: &Vm) -> Result<TceReplay, Stop> {
    let ktr = TceReplay::new()?;
    for (i, slot) in vm.mem.slots.iter().enumerate() {
        ktr.set_user_memory_region(i as u32, slot.gpa, slot.size, slot.ua())?;
    }
    Ok(ktr)
}

/// The oracle's state over a run: the VM, the module's context with the same memory slots and
/// the next liobn (two a table pair, from [`FIRST_LIOBN`]).
struct Oracle {
    vm: Vm,
    ktr: TceReplay,
    liobn: u64,
    /// Calls that met api.rst's differences 1 (a TCE with bits below its page) and 2 (a poison
    /// TCE in no slot in an indirect list).
    differences: [u64; 2],
}

/// The liobn of the first table KVM keeps; the module's is the next.
const FIRST_LIOBN: u64 = 0x1000;

impl Oracle {
    fn new() -> Result<Self, Stop> {
        let vm = Vm::new(&SLOTS, &[H_PUT_TCE_INDIRECT, H_STUFF_TCE])?;
        let ktr = module_context(&vm)?;
        Ok(Self {
            vm,
            ktr,
            liobn: FIRST_LIOBN,
            differences: [0; 2],
        })
    }

    /// Record `i`'s hypercall for the table `liobn` of `w`, its list written to guest memory.
    fn encode(&self, i: usize, call: &Call, liobn: u64, w: &Window) -> [u64; 5] {
        let shift = w.page_shift();
        match call {
            Call::Put { at, tce } => [H_PUT_TCE, liobn, at.ioba(w), tce.value(shift), 0],
            Call::Get { at } => [H_GET_TCE, liobn, at.ioba(w), 0, 0],
            Call::Stuff { at, value, npages } => {
                [H_STUFF_TCE, liobn, at.ioba(w), value.value(shift), *npages]
            }
            Call::Indirect {
                at,
                list,
                tces,
                npages,
            } => {
                let own = LISTS_GPA + i as u64 * 4096;
                let gpa = match list {
                    ListAt::Own => own,
                    ListAt::Misaligned => own + 8,
                    ListAt::Outside => Gpa::Hole.addr(12),
                    ListAt::LastOfSlot1 => SLOTS[1].0 + SLOTS[1].1 - 4096,
                };
                if self.vm.mem.ua(gpa).is_some() {
                    let page = gpa & !4095;
                    for (k, v) in (0u64..).zip(list_values(tces, 512, shift)) {
                        // The list is big-endian in guest memory, as H_PUT_TCE_INDIRECT reads it.
                        self.vm.mem.write(page + k * 8, v.to_be());
                    }
                }
                [H_PUT_TCE_INDIRECT, liobn, at.ioba(w), gpa, *npages]
            }
        }
    }

    /// The module's answer to a hypercall KVM left to userspace for its table `table`.
    fn forward(mem: &GuestMem, table: &TceTable, nr: u64, a: &[u64; 9]) -> (u64, Option<u64>) {
        let (ioba, x, n) = (a[1], a[2], a[3]);
        match nr {
            H_PUT_TCE => (hret(table.put_ioba(ioba, x)), None),
            H_STUFF_TCE => (hret(table.stuff_ioba(ioba, x, n)), None),
            H_GET_TCE => match table.get_ioba(ioba) {
                Ok(tce) => (H_SUCCESS, Some(tce)),
                Err(e) => (hret(Err(e)), None),
            },
            H_PUT_TCE_INDIRECT => {
                // As QEMU reads the list: the guest's big-endian TCEs, from its user address
                // (the misalignment kept, for the module to refuse); a list no slot holds is an
                // address that faults.
                let mut list = kvm_tce_replay::TceList::new();
                let ptr = match mem.ua(x) {
                    Some(_) => {
                        let page = x & !4095;
                        for (k, slot) in list.0.iter_mut().enumerate() {
                            *slot = u64::from_be(mem.read(page + k as u64 * 8));
                        }
                        list.0.as_ptr() as u64 + (x & 4095)
                    }
                    None => 0x1000 + (x & 4095),
                };
                match hret(table.put_indirect_raw(ioba, ptr, n)) {
                    // An empty list the module accepted (its other arguments are good) at a
                    // guest address no slot holds: KVM's kvmppc_tce_to_ua() on the list fails,
                    // as the VMM's translation does.
                    H_SUCCESS if mem.ua(x).is_none() => (H_TOO_HARD, None),
                    ret => (ret, None),
                }
            }
            _ => (0x2_0000_0000 + nr, None),
        }
    }

    /// The table pairs made so far.
    fn tables(&self) -> u64 {
        (self.liobn - FIRST_LIOBN) / 2
    }

    /// Plays `calls` on a fresh pair of tables of geometry `g`: the hypercalls played, or the
    /// first disagreement.
    fn play(&mut self, g: Geometry, calls: &[Call]) -> Result<u64, String> {
        let (kvm_liobn, ktr_liobn) = (self.liobn, self.liobn + 1);
        self.liobn += 2;
        let w = Window::new(g.page_shift, g.offset, g.size).map_err(|e| format!("{e:?}"))?;
        let kvm_table = self
            .vm
            .create_tce_table(TceTableArgs::new(kvm_liobn, g.page_shift, g.offset, g.size))
            .map_err(|e| format!("KVM_CREATE_SPAPR_TCE_64 {g:?}: {e:?}"))?;
        let table = self
            .ktr
            .create_tce_table(TceTableArgs::new(ktr_liobn, g.page_shift, g.offset, g.size))
            .map_err(|e| format!("the module's KVM_CREATE_SPAPR_TCE_64 {g:?}: {e:?}"))?;
        // Plays `records` in the guest, the module's liobn forwarded to the module.
        let play = |vm: &mut Vm, records: &[[u64; 5]]| {
            let mut unexpected = None;
            let results = vm
                .play(records, |mem, nr, a| {
                    if a[0] == ktr_liobn {
                        Self::forward(mem, &table, nr, a)
                    } else {
                        if a[0] != kvm_liobn {
                            unexpected = Some((nr, *a));
                        }
                        (H_TOO_HARD, None)
                    }
                })
                .map_err(|e| format!("{e:?}"))?;
            match unexpected {
                Some((nr, a)) => Err(format!("KVM left hcall {nr:#x} {a:x?} to userspace")),
                None => Ok(results),
            }
        };
        // Each call as a pair of records, KVM's table first, and the answers compared.
        for (i, call) in calls.iter().enumerate() {
            let pair = [
                self.encode(0, call, kvm_liobn, &w),
                self.encode(1, call, ktr_liobn, &w),
            ];
            let r = play(&mut self.vm, &pair)?;
            let (k, m) = (r[0], r[1]);
            let get = matches!(call, Call::Get { .. }) && k.0 == H_SUCCESS;
            if (k.0, m.0) == (H_TOO_HARD, H_PARAMETER)
                && first_refused(call, &w) == Some(Refused::Misaligned)
            {
                // Difference 1 of api.rst: KVM leaves the TCE to userspace, the module refuses it.
                self.differences[0] += 1;
                continue;
            }
            if (k.0, m.0) == (H_PARAMETER, H_SUCCESS) {
                if let Some((from, rest)) = indirect_stops_at_poison(call, &w) {
                    // Difference 2 of api.rst: KVM stopped at a poison TCE in no slot, the
                    // module stored the whole list. KVM takes the rest one by one (its
                    // H_PUT_TCE accepts them), so that the two tables agree again.
                    self.differences[1] += 1;
                    let records: Vec<_> = rest
                        .iter()
                        .enumerate()
                        .map(|(k, &tce)| {
                            [
                                H_PUT_TCE,
                                kvm_liobn,
                                from + ((k as u64) << w.page_shift()),
                                tce,
                                0,
                            ]
                        })
                        .collect();
                    let r = play(&mut self.vm, &records)?;
                    if let Some(bad) = r.iter().find(|r| r.0 != H_SUCCESS) {
                        return Err(format!("call {i} {call:?}: KVM refused the rest of its list one by one: {bad:x?}"));
                    }
                    continue;
                }
            }
            if k.0 != m.0 || (get && k.1 != m.1) {
                return Err(format!(
                    "call {i} {call:?} = {:x?}: KVM gave {k:x?}, the module {m:x?}",
                    pair[0]
                ));
            }
        }
        let epp = table
            .populated(0, 1)
            .map_err(|e| format!("{e:?}"))?
            .entries_per_page();
        let map = table
            .map(0, g.size.div_ceil(epp) as usize)
            .map_err(|e| format!("the module's mmap: {e:?}"))?;
        for e in 0..g.size {
            let (k, m) = (kvm_table.read(e), map.read(e as usize));
            if k != m {
                return Err(format!("entry {e}: KVM holds {k:#x}, the module {m:#x}"));
            }
        }
        Ok(2 * calls.len() as u64)
    }
}

/// Runs the scripts of seeds `seed..seed + n`; a failure is shrunk and reported with its seed.
fn run(seed: u64, n: u64) -> CaseResult {
    if let Some(why) = kvm::unavailable() {
        return Err(Stop::Skip(why));
    }
    let started = std::time::Instant::now();
    // proptest's runner takes a `Fn`: the oracle and the count are borrowed mutably inside it.
    let oracle = std::cell::RefCell::new(Oracle::new()?);
    let calls = std::cell::Cell::new(0);
    for s in seed..seed + n {
        let mut runner = super::fuzz::seeded_runner(s, 1024);
        let outcome = runner.run(&script(), |(g, script)| {
            match oracle.borrow_mut().play(g, &script) {
                Ok(played) => {
                    calls.set(calls.get() + played);
                    Ok(())
                }
                Err(why) => Err(TestCaseError::fail(why)),
            }
        });
        match outcome {
            Ok(()) => {}
            Err(TestError::Fail(why, (g, script))) => {
                let mut report = format!("seed={s}: {why}\n# the shortest script, {g:?}:");
                for (i, c) in script.iter().enumerate() {
                    report += &format!("\n#   {i:3}: {c:?}");
                }
                return Err(Stop::Fail(report));
            }
            Err(e) => return Err(Stop::Fail(format!("seed={s}: {e}"))),
        }
    }
    diag!(
        "KVM oracle: {n} scripts (seeds {seed}..{}), {} hcalls, {} tables each side, {} \
         left by KVM to the VMM: KVM and the module agree but for {:?} calls of api.rst's \
         differences 1 and 2, in {:.1} s",
        seed + n,
        calls.get(),
        oracle.borrow().tables(),
        oracle.borrow().vm.exits,
        oracle.borrow().differences,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The differential run of `make check`: `oracle_scripts=` scripts (default 1000) from
/// `seed=` (default the clock's).
pub fn kvm_oracle() -> CaseResult {
    let seed = super::fuzz::seed();
    unsafe { std::env::set_var("RUST_BACKTRACE", "1") };
    diag!("KVM oracle seed={seed}");
    run(seed, super::fuzz::arg("oracle_scripts").unwrap_or(1000))
}

/// Who keeps the table the group is attached to, in [`kvm_oracle_vfio`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keeper {
    /// KVM (`KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE` through a KVM VFIO device), as upstream QEMU.
    Kvm,
    /// The module (`KTR_ATTACH`), as tools/qemu's series.
    Module,
}

/// The VFIO oracle's DDW: 2^16 TCEs of 64 KiB (4 GiB), one level.
const VFIO_SHIFT: u32 = 16;
const VFIO_ENTRIES: u64 = 1 << 16;
/// Guest pages of slot 0 the script's TCEs point to (64 KiB each, from 4 MiB), the page the
/// device copies into (the sink) and a page of zeros.
const SOURCES_GPA: u64 = 4 << 20;
const SOURCES: u64 = 64;
const SINK_GPA: u64 = 30 << 20;
const ZERO_GPA: u64 = 29 << 20;
/// The guest address of source page `n` (wrapped into the [`SOURCES`]).
const fn source_page(n: u64) -> u64 {
    SOURCES_GPA + (n % SOURCES) * (1 << VFIO_SHIFT)
}

/// The entries that map the sink and the zero page.
const SINK: u64 = 60_000;
const ZERO: u64 = 60_001;

/// What the device saw through the hardware table at the end, for one keeper.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    /// Each call's r3 (and r4 for a get).
    answers: Vec<(u64, u64)>,
    /// For each sampled entry, what a DMA from it brought: the source page it read (by index),
    /// nothing, or bytes of no source page.
    dma: Vec<(u64, Option<Option<u64>>)>,
    /// The table's entries as KVM's mmap or the module's GET shows them, for the samples.
    entries: Vec<u64>,
}

/// The VFIO oracle's script over a window at bus address `start`: puts, a 512-TCE list, a
/// clear, updates the hardware cannot take (a TCE into slot 1, whose memory VFIO never
/// preregistered; a list ending with one), a poison TCE, gets.
/// Returns the calls, the entries to sample and the calls the hardware must refuse.
fn vfio_script(liobn: u64) -> (Vec<[u64; 5]>, Vec<u64>, Vec<usize>) {
    let ioba = |e: u64| e << VFIO_SHIFT;
    let (r, rw) = (1u64, 3u64);
    let unregistered = SLOTS[1].0 | r;
    let mut calls = Vec::new();
    for e in 0..32 {
        calls.push([
            H_PUT_TCE,
            liobn,
            ioba(e),
            source_page(e) | if e % 3 == 0 { rw } else { r },
            0,
        ]);
    }
    calls.push([H_PUT_TCE, liobn, ioba(SINK), SINK_GPA | rw, 0]);
    calls.push([H_PUT_TCE, liobn, ioba(ZERO), ZERO_GPA | r, 0]);
    // The lists live at LISTS_GPA: list 0 of 512 TCEs, list 1 of 8 whose last is unregistered.
    calls.push([H_PUT_TCE_INDIRECT, liobn, ioba(1000), LISTS_GPA, 512]);
    calls.push([H_STUFF_TCE, liobn, ioba(8), 0, 8]);
    let refused = vec![calls.len(), calls.len() + 1];
    calls.push([H_PUT_TCE_INDIRECT, liobn, ioba(2000), LISTS_GPA + 4096, 8]);
    calls.push([H_PUT_TCE, liobn, ioba(3), unregistered, 0]);
    calls.push([H_PUT_TCE, liobn, ioba(4), source_page(40), 0]);
    calls.push([H_PUT_TCE, liobn, ioba(5), source_page(41) | 2, 0]);
    for e in [3, 4, 5, 1000, 1511, 2000] {
        calls.push([H_GET_TCE, liobn, ioba(e), 0, 0]);
    }
    let mut samples: Vec<u64> = (0..34).collect();
    samples.extend((1000..1512).step_by(37));
    samples.extend([1511, 2000, 2007, 59_999]);
    (calls, samples, refused)
}

/// Plays the VFIO oracle's script with edu's group attached to a table `keeper` keeps, then
/// moves 4 KiB through each sampled entry with edu's DMA.
fn vfio_side(keeper: Keeper) -> Result<Seen, Stop> {
    use crate::vfio::{self, Container, Edu, Group};
    let bdf = vfio::devices(1)?.remove(0);
    let mut vm = Vm::new(&SLOTS, &[H_PUT_TCE_INDIRECT, H_STUFF_TCE])?;
    let group = Group::open(&bdf)?;
    let container = Container::new(&[&group])?;
    let slot0 = &vm.mem.slots[0];
    vfio::step(
        "register slot 0",
        container.register(slot0.ua(), slot0.size, true),
    )?;
    let start = vfio::step(
        "VFIO_IOMMU_SPAPR_TCE_CREATE",
        container.create_window(VFIO_SHIFT, VFIO_ENTRIES << VFIO_SHIFT, 1),
    )?;
    let args = |liobn| TceTableArgs::new(liobn, VFIO_SHIFT, start >> VFIO_SHIFT, VFIO_ENTRIES);
    let ktr = module_context(&vm)?;
    ktr.enable_replay()?;
    let (kvm_liobn, ktr_liobn) = (0x100, 0x101);
    let kvm_table = vfio::step(
        "KVM_CREATE_SPAPR_TCE_64",
        vm.create_tce_table(args(kvm_liobn)),
    )?;
    let table = ktr.create_tce_table(args(ktr_liobn))?;
    let (liobn, _device) = match keeper {
        Keeper::Kvm => {
            let dev = vfio::step(
                "KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE",
                vm.attach_vfio(group.fd.as_fd(), &kvm_table),
            )?;
            (kvm_liobn, Some(dev))
        }
        Keeper::Module => {
            ktr.attach(&table, &group.fd)?;
            (ktr_liobn, None)
        }
    };
    // The lists (big-endian, as the guest writes them) and the pages the TCEs point to.
    for k in 0..512u64 {
        vm.mem
            .write(LISTS_GPA + k * 8, (source_page(k * 5) | 1).to_be());
    }
    for k in 0..8u64 {
        let tce = if k == 7 {
            SLOTS[1].0 | 1
        } else {
            source_page(k) | 3
        };
        vm.mem.write(LISTS_GPA + 4096 + k * 8, tce.to_be());
    }
    for n in 0..SOURCES {
        vm.mem.write_bytes(source_page(n), &vfio::pattern(n + 1));
    }
    vm.mem.write_bytes(ZERO_GPA, &[0; 4096]);
    let (mut script, samples, _) = vfio_script(liobn);
    for call in &mut script {
        call[2] += start;
    }
    let answers = vm.play(&script, forward_to(&table, ktr_liobn))?;
    let answers: Vec<(u64, u64)> = script
        .iter()
        .zip(answers)
        .map(|(c, (r3, r4))| {
            (
                r3,
                if c[0] == H_GET_TCE && r3 == H_SUCCESS {
                    r4
                } else {
                    0
                },
            )
        })
        .collect();
    let entries = samples
        .iter()
        .map(|&e| match keeper {
            Keeper::Kvm => Ok(kvm_table.read(e)),
            Keeper::Module => table.get(e).map_err(Stop::from),
        })
        .collect::<Result<Vec<u64>, Stop>>()?;
    let edu = vfio::step("open edu", Edu::open(&group))?;
    let bus = |e: u64| start + (e << VFIO_SHIFT);
    let mut dma = Vec::new();
    for &e in &samples {
        // Zeros into the device's buffer, then the entry's page (a refused read leaves the
        // zeros), then the buffer into the sink.
        vfio::step("DMA from the zero page", edu.dma(bus(ZERO), 4096, true))?;
        vm.mem.write_bytes(SINK_GPA, &[0xa5; 4096]);
        let moved = edu
            .dma(bus(e), 4096, true)
            .and_then(|()| edu.dma(bus(SINK), 4096, false));
        let what = match moved {
            Err(_) => None,
            Ok(()) => {
                let got = vm.mem.read_bytes(SINK_GPA, 4096);
                Some(if got.iter().all(|&b| b == 0) {
                    None
                } else {
                    (0..SOURCES)
                        .find(|&n| got == vfio::pattern(n + 1))
                        .map_or(Some(u64::MAX), Some)
                })
            }
        };
        dma.push((e, what));
    }
    Ok(Seen {
        answers,
        dma,
        entries,
    })
}

/// KVM's table and the module's with edu's VFIO group attached, on powernv: the same script
/// (a put into memory VFIO never preregistered, a list failing at its last TCE, a clear, a
/// poison TCE among them) gives the same answers and entries, and edu's DMA through the
/// hardware table sees the same pages, the ones the entries name.
pub fn kvm_oracle_vfio() -> CaseResult {
    crate::vfio::need_platform(true)?;
    if let Some(why) = kvm::unavailable() {
        return Err(Stop::Skip(why));
    }
    let by_kvm = vfio_side(Keeper::Kvm)?;
    let by_module = vfio_side(Keeper::Module)?;
    for (i, (k, m)) in by_kvm.answers.iter().zip(&by_module.answers).enumerate() {
        crate::ensure!(k == m, "call {i}: KVM gave {k:x?}, the module {m:x?}");
    }
    crate::ensure_eq!(by_kvm.entries, by_module.entries);
    for ((e, k), (_, m)) in by_kvm.dma.iter().zip(&by_module.dma) {
        crate::ensure!(
            k == m,
            "entry {e}: the device saw {k:?} through KVM's table, {m:?} through the module's"
        );
    }
    let (_, samples, refused) = vfio_script(0);
    for i in refused {
        // Memory VFIO never preregistered: KVM leaves the call to userspace before storing.
        crate::ensure_eq!(by_kvm.answers[i].0, H_TOO_HARD);
    }
    for ((e, seen), tce) in by_kvm.dma.iter().zip(&by_kvm.entries) {
        // Any permission lets the device read: QEMU 10.0's PHB4 does not refuse a read through
        // a write-only TCE (entry 5), through KVM's table or the module's alike.
        let want = (tce & 3 != 0).then(|| ((tce & !3) - SOURCES_GPA) >> VFIO_SHIFT);
        crate::ensure!(
            *seen == Some(want),
            "entry {e} ({tce:#x}): the device saw {seen:?}, expected {want:?}"
        );
    }
    diag!(
        "KVM's table and the module's, each with edu's group attached: {} answers, {} entries \
         and {} DMAs agree",
        by_kvm.answers.len(),
        samples.len(),
        by_kvm.dma.len()
    );
    Ok(())
}

/// The VMM's answer to a hypercall KVM left to it: the module's for `table` (liobn `liobn`),
/// H_TOO_HARD for anything else, as QEMU answers a liobn it does not know.
fn forward_to(
    table: &TceTable,
    liobn: u64,
) -> impl FnMut(&GuestMem, u64, &[u64; 9]) -> (u64, Option<u64>) + '_ {
    move |mem, nr, a| {
        if a[0] == liobn {
            Oracle::forward(mem, table, nr, a)
        } else {
            (H_TOO_HARD, None)
        }
    }
}

/// What one `H_PUT_TCE` costs the guest, in ns: into KVM's table (KVM answers it in the kernel)
/// and into the module's (KVM exits to the VMM, which makes it a `KTR_PUT_TCE` ioctl, as
/// tools/qemu's series does), each the mean over `rounds` scripts of [`kvm::SCRIPT_MAX`] calls,
/// every TCE valid and distinct, in a 4 KiB-page table of 2^20 entries.
pub fn hcall_cost(rounds: u32) -> Result<[u64; 2], Stop> {
    let mut vm = Vm::new(&SLOTS, &[H_PUT_TCE_INDIRECT, H_STUFF_TCE])?;
    let ktr = module_context(&vm)?;
    let (kvm_liobn, ktr_liobn) = (0x200, 0x201);
    let args = |liobn| TceTableArgs::new(liobn, 12, 0, 1 << 20);
    let _kvm_table = crate::vfio::step(
        "KVM_CREATE_SPAPR_TCE_64",
        vm.create_tce_table(args(kvm_liobn)),
    )?;
    let table = ktr.create_tce_table(args(ktr_liobn))?;
    let mut ns = [0u64; 2];
    for (i, liobn) in [kvm_liobn, ktr_liobn].into_iter().enumerate() {
        let mut calls = 0u64;
        for round in 0..rounds as u64 {
            let script: Vec<[u64; 5]> = (0..kvm::SCRIPT_MAX as u64)
                .map(|k| {
                    let n = round * kvm::SCRIPT_MAX as u64 + k;
                    // Slot 0's pages above the script and the lists, each entry once.
                    [
                        H_PUT_TCE,
                        liobn,
                        n << 12,
                        ((2 << 20) + ((n % 4096) << 12)) | 3,
                        0,
                    ]
                })
                .collect();
            let start = std::time::Instant::now();
            let answers = vm.play(&script, forward_to(&table, ktr_liobn))?;
            ns[i] += start.elapsed().as_nanos() as u64;
            calls += script.len() as u64;
            crate::ensure!(
                answers.iter().all(|a| a.0 == H_SUCCESS),
                "H_PUT_TCE into liobn {liobn:#x}: {:x?}",
                answers.iter().find(|a| a.0 != H_SUCCESS)
            );
        }
        ns[i] /= calls;
    }
    Ok(ns)
}

super::register! {
    device kvm_oracle,
    device kvm_oracle_vfio,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    /// The generator draws every kind of call, and the rules see both refusals.
    #[test]
    fn scripts_draw_every_kind_of_call() {
        let mut runner = TestRunner::deterministic();
        let mut kinds = [0u32; 4];
        let mut refusals = [0u32; 2];
        for _ in 0..200 {
            let (g, calls) = script().new_tree(&mut runner).unwrap().current();
            let w = Window::new(g.page_shift, g.offset, g.size).unwrap();
            for c in &calls {
                kinds[match c {
                    Call::Put { .. } => 0,
                    Call::Indirect { .. } => 1,
                    Call::Stuff { .. } => 2,
                    Call::Get { .. } => 3,
                }] += 1;
                match first_refused(c, &w) {
                    Some(Refused::Misaligned) => refusals[0] += 1,
                    Some(Refused::NoSlot) => refusals[1] += 1,
                    None => {}
                }
            }
        }
        assert!(kinds.iter().all(|&k| k > 100), "{kinds:?}");
        assert!(refusals.iter().all(|&k| k > 20), "{refusals:?}");
    }
}
