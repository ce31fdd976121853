// SPDX-License-Identifier: GPL-2.0

//! The fuzzer: seeded, reproducible, coverage-free. Each sequence of ops ([`op`]) runs against
//! the module and against the reference model ([`model`]); every op's result must match, and at
//! the end every table entry, every group's hardware entries and the statistics must too, and
//! once everything is closed the module's memory counters must be back where they were. A
//! failing sequence is shrunk (proptest) to the shortest one that still fails and printed with
//! its seed: `make fuzz SEED=<seed>` runs it again.

mod model;
pub(crate) mod op;

use crate::fixture::{self, pinned_pages, TableExt};
use crate::uapi::*;
use crate::window::Window;
use crate::{diag, CaseResult, Stop};
use kvm_tce_replay::{raw, MockGroup, TceList, TceMap, TceReplay, TceTable};
use model::{Model, Out, Res};
use op::*;
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use rustix::io::Errno;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// An fd number never open in the harness (RLIMIT_NOFILE is 1024 and it opens far fewer).
const CLOSED_FD: i32 = 999;

/// Ops run (shrinking included): all, refused with an errno, skipped (their table, group or
/// mapping was not there).
static OPS: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);
static SKIPPED: AtomicU64 = AtomicU64::new(0);

/// A table slot of the module's side: the fd (closed: `None`) and the mappings, which keep the
/// table alive without it.
struct Slot {
    fd: Option<TceTable>,
    maps: Vec<TceMap>,
    w: Window,
}

/// The module's side of a sequence.
struct World {
    devs: Vec<TceReplay>,
    tables: Vec<Option<Slot>>,
    groups: Vec<Option<MockGroup>>,
    epp: u64,
}

impl World {
    fn new() -> kvm_tce_replay::Result<Self> {
        Ok(Self {
            devs: (0..CTXS)
                .map(|_| fixture::open())
                .collect::<Result<_, _>>()?,
            tables: (0..TABLES).map(|_| None).collect(),
            groups: (0..GROUPS).map(|_| None).collect(),
            epp: rustix::param::page_size() as u64 / 8,
        })
    }

    fn fd(&self, fd: Fd) -> i32 {
        let table = |s: usize| self.tables[s].as_ref().and_then(|t| t.fd.as_ref());
        match fd {
            Fd::Table(s) => table(s).map_or(CLOSED_FD, |t| t.as_raw_fd()),
            Fd::Group(g) => self.groups[g].as_ref().map_or(CLOSED_FD, |g| g.as_raw_fd()),
            Fd::Device(c) => self.devs[c].as_raw_fd(),
            Fd::Closed => CLOSED_FD,
            Fd::Minus1 => -1,
        }
    }

    /// The walk an attach asks for: the full walks only over small windows.
    fn walk(&self, table: Fd, flags: u32) -> u32 {
        match table {
            Fd::Table(s) => self.tables[s]
                .as_ref()
                .map_or(flags, |t| Model::walk(flags, &t.w)),
            _ => flags,
        }
    }

    /// Plays `op` on the module, as [`Model::apply`] plays it on the model; each kind of op has
    /// its own method below, but for the ioctls of one line.
    fn apply(&mut self, op: &Op) -> Res {
        let done = |r: kvm_tce_replay::Result<()>| r.map(|()| Out::Done).map_err(Errno::from);
        match op {
            Op::Enable(c) => done(self.devs[*c].enable_replay()),
            Op::Create { .. } | Op::Close(_) | Op::Map(_) | Op::Unmap(_) => {
                self.apply_lifecycle(op)
            }
            Op::Table(s, op) => match &self.tables[*s] {
                Some(t) => table_op(t, op, self.epp),
                None => Ok(Out::Skipped),
            },
            Op::Parallel(..) | Op::Fork(..) => self.apply_concurrent(op),
            Op::CreateGroup(..) | Op::AddTable(..) | Op::CloseGroup(_) => self.apply_group(op),
            Op::Attach {
                ctx,
                table,
                group,
                flags,
                pad,
            } => {
                let req = KtrAttach {
                    groupfd: self.fd(*group),
                    tablefd: self.fd(*table),
                    flags: self.walk(*table, *flags),
                    pad: *pad,
                };
                done(self.devs[*ctx].attach_raw(&req))
            }
            Op::Detach {
                ctx,
                table,
                group,
                flags,
            } => {
                let req = KtrAttach {
                    groupfd: self.fd(*group),
                    tablefd: self.fd(*table),
                    flags: *flags,
                    pad: 0,
                };
                done(self.devs[*ctx].detach_raw(&req))
            }
            Op::Memslot(c, slot) => done(
                self.devs[*c]
                    .set_user_memory_region_raw(slot.request())
                    .map(drop),
            ),
        }
    }

    /// A table's fds and mappings: created, closed, mapped, unmapped.
    fn apply_lifecycle(&mut self, op: &Op) -> Res {
        match op {
            Op::Create {
                ctx,
                slot,
                liobn,
                geo,
            } => {
                if self.tables[*slot].is_some() {
                    return Ok(Out::Skipped);
                }
                let table = self.devs[*ctx].create_tce_table(geo.request(*liobn))?;
                let w = table.window();
                self.tables[*slot] = Some(Slot {
                    fd: Some(table),
                    maps: Vec::new(),
                    w,
                });
                Ok(Out::Done)
            }
            Op::Close(s) => {
                let Some(t) = self.tables[*s].as_mut().filter(|t| t.fd.is_some()) else {
                    return Ok(Out::Skipped);
                };
                t.fd = None;
                if t.maps.is_empty() {
                    self.tables[*s] = None;
                }
                Ok(Out::Done)
            }
            Op::Map(s) => {
                let Some(t) = self.tables[*s].as_mut() else {
                    return Ok(Out::Skipped);
                };
                let Some(fd) = t.fd.as_ref().filter(|_| t.maps.len() < 2) else {
                    return Ok(Out::Skipped);
                };
                let pages = t.w.size().div_ceil(self.epp).min(MAP_PAGES);
                t.maps.push(fd.map(0, pages as usize)?);
                Ok(Out::Done)
            }
            Op::Unmap(s) => {
                let Some(t) = self.tables[*s].as_mut().filter(|t| !t.maps.is_empty()) else {
                    return Ok(Out::Skipped);
                };
                t.maps.pop();
                if t.fd.is_none() && t.maps.is_empty() {
                    self.tables[*s] = None;
                }
                Ok(Out::Done)
            }
            _ => unreachable!("not a lifecycle op: {op:?}"),
        }
    }

    /// Two table ops from two threads at once, or a forked child's writes.
    fn apply_concurrent(&mut self, op: &Op) -> Res {
        match op {
            Op::Parallel(a, x, b, y) => {
                let (ta, tb) = (&self.tables[*a], &self.tables[*b]);
                let epp = self.epp;
                let run = |t: &Option<Slot>, op: &TableOp| match t {
                    Some(t) => table_op(t, op, epp),
                    None => Ok(Out::Skipped),
                };
                let start = Barrier::new(2);
                let (first, second) = std::thread::scope(|scope| {
                    let other = scope.spawn(|| {
                        start.wait();
                        run(ta, x)
                    });
                    start.wait();
                    let second = run(tb, y);
                    (other.join(), second)
                });
                let first = first.unwrap_or(Err(Errno::NOTRECOVERABLE));
                Ok(Out::Pair(Box::new(first), Box::new(second)))
            }
            Op::Fork(s, n, tce) => match self.tables[*s].as_ref() {
                Some(t) if t.fd.is_some() => fork(t, *n, *tce),
                _ => Ok(Out::Skipped),
            },
            _ => unreachable!("not a concurrent op: {op:?}"),
        }
    }

    /// Mock groups: created, given a second hardware table, closed.
    fn apply_group(&mut self, op: &Op) -> Res {
        match op {
            Op::CreateGroup(g, geo) => {
                if self.groups[*g].is_some() {
                    return Ok(Out::Skipped);
                }
                let w = geo
                    .slot()
                    .and_then(|s| self.tables[s].as_ref())
                    .map(|t| t.w);
                self.groups[*g] = Some(self.devs[0].create_mock_group(&geo.request(w.as_ref()))?);
                Ok(Out::Done)
            }
            Op::AddTable(g, geo) => {
                let Some(group) = self.groups[*g].as_ref() else {
                    return Ok(Out::Skipped);
                };
                let w = geo
                    .slot()
                    .and_then(|s| self.tables[s].as_ref())
                    .map(|t| t.w);
                Ok(Out::Value(group.add_table(&geo.request(w.as_ref()))? as u64))
            }
            Op::CloseGroup(g) => Ok(match self.groups[*g].take() {
                Some(_) => Out::Done,
                None => Out::Skipped,
            }),
            _ => unreachable!("not a group op: {op:?}"),
        }
    }
}

/// A table op on the module's side.
fn table_op(t: &Slot, op: &TableOp, epp: u64) -> Res {
    let (w, ps) = (t.w, t.w.page_shift());
    let done = |r: kvm_tce_replay::Result<()>| r.map(|()| Out::Done).map_err(Errno::from);
    let Some(fd) = t.fd.as_ref() else {
        if !matches!(op, TableOp::MmapWrite(..) | TableOp::MmapRead(_)) {
            return Ok(Out::Skipped);
        }
        return mmap_op(t, op, ps);
    };
    match op {
        TableOp::Put(at, tce) => done(fd.put_ioba(at.ioba(&w), tce.value(ps))),
        TableOp::Stuff(at, tce, n) => done(fd.stuff_ioba(at.ioba(&w), tce.value(ps), *n)),
        TableOp::Indirect(at, list) => {
            let mut buf = TceList::new();
            let good = buf.0.as_ptr() as u64;
            let (ptr, n) = match list {
                List::Tces(l) => {
                    for (slot, t) in buf.0.iter_mut().zip(l) {
                        *slot = t.value(ps);
                    }
                    (good, l.len() as u64)
                }
                List::Bad(p, n) => (p.addr(good), *n),
            };
            done(fd.put_indirect_raw(at.ioba(&w), ptr, n))
        }
        TableOp::Get(at) => Ok(fd.get_ioba(at.ioba(&w)).map(Out::Value)?),
        TableOp::Populated {
            first,
            past,
            n,
            ptr,
        } => {
            let pages = w.size().div_ceil(epp);
            let first = if *past {
                pages + first % 4
            } else {
                first % pages
            };
            // Room for the words asked for (when the module can accept them), one more for the
            // unaligned pointer.
            let words = n.div_ceil(64).min(8) as usize;
            let mut buf = vec![0u64; words + 1];
            let good = buf.as_mut_ptr() as u64;
            let skip = usize::from(matches!(ptr, Ptr::Unaligned));
            // SAFETY: the kernel writes at most `words` words from the pointer, inside `buf`
            // (one word later when unaligned), or fails on a bad pointer.
            unsafe { fd.populated_raw(first, *n, ptr.addr(good)) }?;
            Ok(Out::Words(buf[skip..skip + words].to_vec()))
        }
        TableOp::MmapWrite(..) | TableOp::MmapRead(_) => mmap_op(t, op, ps),
    }
}

/// A write or read through the table's newest mapping.
fn mmap_op(t: &Slot, op: &TableOp, ps: u32) -> Res {
    let Some(m) = t.maps.last() else {
        return Ok(Out::Skipped);
    };
    let at = |n: u64| (n % m.len() as u64) as usize;
    match op {
        TableOp::MmapWrite(n, tce) => {
            m.write(at(*n), tce.value(ps));
            Ok(Out::Done)
        }
        TableOp::MmapRead(n) => Ok(Out::Value(m.read(at(*n)))),
        _ => Ok(Out::Skipped),
    }
}

/// A forked child, which shares the table and its mappings: the table's ioctls must refuse it
/// (EIO: another address space), a write through the mapping it inherited must land.
fn fork(t: &Slot, n: u64, tce: Tce) -> Res {
    let fd = t.fd.as_ref().expect("an open table");
    // SAFETY: the harness has no other thread now (parallel ops join theirs); the child only
    // makes system calls, writes the shared mapping and calls _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::from_raw_os_error(libc::EAGAIN));
    }
    if pid == 0 {
        let refused = fd.put(0, 0) == Err(Errno::IO.into());
        let _ = mmap_op(t, &TableOp::MmapWrite(n, tce), t.w.page_shift());
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(if refused { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(Out::Done)
    } else {
        Err(Errno::PERM)
    }
}

/// Fails with `what` unless `got == want`.
fn same<T: PartialEq + std::fmt::Debug>(got: T, want: T, what: &str) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: module {got:?}, model {want:?}"))
    }
}

/// Compares every table's entries, population and statistics, the memory charged, and every open
/// group's hardware tables with the model.
fn verify(m: &Model, w: &World, pinned: u64) -> Result<(), String> {
    for (s, (mt, rt)) in m.tables.iter().zip(&w.tables).enumerate() {
        match (mt, rt) {
            (None, None) => {}
            (Some(mt), Some(rt)) => verify_table(m, s, mt, rt)?,
            _ => {
                return Err(format!(
                    "table slot {s}: alive in one of module and model only"
                ))
            }
        }
    }
    verify_charge(m, pinned)?;
    for (g, (id, rg)) in m.groups.iter().zip(&w.groups).enumerate() {
        match (id, rg) {
            (None, None) => {}
            (Some(id), Some(rg)) => verify_group(g, &m.all[*id], rg)?,
            _ => {
                return Err(format!(
                    "group slot {g}: open in one of module and model only"
                ))
            }
        }
    }
    Ok(())
}

/// What reading the module's state failed with.
fn reading(e: kvm_tce_replay::Error) -> String {
    format!("reading the state: {:?}", e.errno())
}

/// Table slot `s`: its statistics, population bitmap and entries (through its fd, or through
/// its last mapping once the fd is closed).
fn verify_table(m: &Model, s: usize, mt: &model::Table, rt: &Slot) -> Result<(), String> {
    let e = reading;
    let Some(fd) = rt.fd.as_ref() else {
        // Only the mapping is left to look through.
        let map = rt.maps.last().expect("a mapping keeps it");
        for i in 0..map.len() {
            let want = mt.entries.get(&(i as u64)).copied().unwrap_or(0);
            same(map.read(i), want, &format!("table {s} entry {i} (mapped)"))?;
        }
        return Ok(());
    };
    let st = fd.stats().map_err(e)?;
    same(
        st.pages_allocated,
        mt.pages.len() as u64,
        &format!("table {s} pages"),
    )?;
    same(
        st.groups_attached,
        mt.attached.len() as u64,
        &format!("table {s} groups"),
    )?;
    same(st.replays, mt.replays, &format!("table {s} replays"))?;
    if let Some(r) = mt.last {
        let got = (
            st.last_tces_replayed,
            st.last_tces_skipped,
            st.last_hw_entries_written,
        );
        same(
            got,
            (r.replayed, r.skipped, r.hw_written),
            &format!("table {s} last replay"),
        )?;
    }
    // The population bitmap: whole, or for a huge window (a bitmap of 2^31 pages takes
    // minutes in the debug VM) around the allocated pages and at both ends; the page count
    // above covers the rest.
    let pages = m.page_count(&mt.w);
    let ranges: Vec<(u64, u64)> = if pages <= 1 << 20 {
        vec![(0, pages)]
    } else {
        let around = |p: u64| (p.saturating_sub(64), (p + 64).min(pages));
        [0, pages - 1]
            .iter()
            .chain(&mt.pages)
            .map(|&p| around(p))
            .collect()
    };
    for (lo, hi) in ranges {
        let got: Vec<u64> = fd.populated(lo, hi - lo).map_err(e)?.iter().collect();
        let want: Vec<u64> = mt.pages.range(lo..hi).copied().collect();
        same(
            got,
            want,
            &format!("table {s} population of pages {lo}..{hi}"),
        )?;
    }
    for &p in &mt.pages {
        // The whole page through a mapping of its own, its window entries through GET too.
        let map = fd.map(p as usize, 1).map_err(e)?;
        for i in 0..m.epp {
            let entry = p * m.epp + i;
            let want = mt.entries.get(&entry).copied().unwrap_or(0);
            let what = format!("table {s} entry {entry}");
            same(map.read(i as usize), want, &what)?;
            if entry < mt.w.size() && (want != 0 || i == 0) {
                same(fd.get(entry).map_err(e)?, want, &what)?;
            }
        }
    }
    Ok(())
}

/// Every allocated TCE page of a live table is charged to this process, nothing else.
fn verify_charge(m: &Model, pinned: u64) -> Result<(), String> {
    let charged: u64 = m
        .tables
        .iter()
        .flatten()
        .map(|t| t.pages.len() as u64)
        .sum();
    same(
        pinned_pages(),
        pinned + charged,
        "pages charged to pinned_vm",
    )?;
    Ok(())
}

/// Group slot `g`: each hardware table's counters and entries, and no table past the last.
fn verify_group(g: usize, mg: &model::Group, rg: &MockGroup) -> Result<(), String> {
    let e = reading;
    for (i, hw) in mg.hw.iter().enumerate() {
        let what = format!("group {g} hardware table {i}");
        let st = rg.stats_table(i as u64).map_err(e)?;
        same(
            st.entries_valid,
            hw.entries.len() as u64,
            &format!("{what} valid"),
        )?;
        same(
            st.attached,
            u64::from(hw.att.is_some()),
            &format!("{what} attached"),
        )?;
        if hw.it_size <= 1 << 18 {
            let all = rg.read_table(i as u64, 0, hw.it_size).map_err(e)?;
            for (k, v) in all.into_iter().enumerate() {
                let want = hw.entries.get(&(k as u64)).copied().unwrap_or(0);
                same(v, want, &format!("{what} entry {k}"))?;
            }
        } else {
            for (&k, &v) in &hw.entries {
                let got = rg.read_table_raw(i as u64, k, 1).map_err(e)?;
                same(got[0], v, &format!("{what} entry {k}"))?;
            }
        }
    }
    same(
        rg.stats_table(mg.hw.len() as u64).map(drop),
        Err(Errno::INVAL.into()),
        &format!("group {g}: a hardware table too many"),
    )?;
    Ok(())
}

/// Runs one sequence against the module and the model.
fn run_ops(ops: &[Op], baseline: &Baseline) -> Result<(), String> {
    let mut model = Model::new();
    let mut world = World::new().map_err(|e| format!("setup: {e:?}"))?;
    for (i, op) in ops.iter().enumerate() {
        OPS.fetch_add(1, Ordering::Relaxed);
        let want = model.apply(op);
        let start = Instant::now();
        let got = world.apply(op);
        if start.elapsed() > Duration::from_secs(1) {
            diag!(
                "fuzz: op {i} {op:?} took {:.1} s",
                start.elapsed().as_secs_f64()
            );
        }
        match want {
            Err(_) => REFUSED.fetch_add(1, Ordering::Relaxed),
            Ok(Out::Skipped) => SKIPPED.fetch_add(1, Ordering::Relaxed),
            Ok(_) => 0,
        };
        same(got, want, &format!("op {i} {op:?}"))?;
    }
    let start = Instant::now();
    verify(&model, &world, baseline.pinned)?;
    if start.elapsed() > Duration::from_secs(1) {
        diag!(
            "fuzz: checking the state took {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    drop(world);
    same(
        Baseline::now()?,
        *baseline,
        "memory of tables and mock groups, and pages charged, after closing everything",
    )
}

/// What the module holds when no sequence runs: its memory for tables and mock groups, and
/// the pages charged to this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Baseline {
    table_bytes: u64,
    mock_bytes: u64,
    pinned: u64,
}

impl Baseline {
    fn now() -> Result<Self, String> {
        let m = TceReplay::new()
            .and_then(|d| d.mem_stats())
            .map_err(|e| format!("mem stats: {e:?}"))?;
        Ok(Self {
            table_bytes: m.table_bytes,
            mock_bytes: m.mock_bytes,
            pinned: pinned_pages(),
        })
    }
}

/// A proptest runner that draws one case from `seed` (the same on every run) and shrinks a
/// failure at most `max_shrink_iters` times.
pub(crate) fn seeded_runner(seed: u64, max_shrink_iters: u32) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases: 1,
        failure_persistence: None,
        max_shrink_iters,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Runs the sequence of `seed`; on failure, shrinks it and returns the report.
fn run_seed(
    seed: u64,
    baseline: &Baseline,
    sequence: impl Strategy<Value = Vec<Op>>,
) -> Result<(), String> {
    let mut runner = seeded_runner(seed, 4096);
    match runner.run(&sequence, |ops| {
        run_ops(&ops, baseline).map_err(TestCaseError::fail)
    }) {
        Ok(()) => Ok(()),
        Err(TestError::Fail(why, ops)) => {
            let mut report = format!("seed={seed}: {why}\n# the shortest sequence that fails:");
            for (i, op) in ops.iter().enumerate() {
                report += &format!("\n#   {i:3}: {op:?}");
            }
            Err(report)
        }
        Err(e) => Err(format!("seed={seed}: {e}")),
    }
}

/// How long a run goes on.
enum Budget {
    Sequences(u64),
    Time(Duration),
    Forever,
}

/// Runs sequences from `seed` on (seed, seed + 1, ...), printing progress every 10 s.
fn run(seed: u64, budget: Budget) -> Result<u64, String> {
    let baseline = Baseline::now()?;
    let start = Instant::now();
    let mut last = start;
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let counts = || {
        let [ops, refused, skipped] = [&OPS, &REFUSED, &SKIPPED].map(count);
        [ops, refused, skipped, raw::ioctls_issued()]
    };
    let zero = counts();
    let mut n = 0u64;
    let report = |n: u64| {
        let now = counts();
        let [ops, refused, skipped, ioctls] = [0, 1, 2, 3].map(|i| now[i] - zero[i]);
        diag!(
            "fuzz: {n} sequences (seeds {seed}..{}): {ops} ops ({refused} refused, {skipped} \
             skipped), {ioctls} ioctls, {:.0} s",
            seed.wrapping_add(n),
            start.elapsed().as_secs_f64()
        )
    };
    loop {
        let more = match budget {
            Budget::Sequences(max) => n < max,
            Budget::Time(t) => start.elapsed() < t,
            Budget::Forever => true,
        };
        if !more {
            break;
        }
        let one = Instant::now();
        let result = run_seed(seed.wrapping_add(n), &baseline, op::sequence());
        if one.elapsed() > Duration::from_secs(5) {
            diag!(
                "fuzz: seed {} took {:.1} s",
                seed.wrapping_add(n),
                one.elapsed().as_secs_f64()
            );
        }
        if let Err(why) = result {
            report(n);
            diag!(
                "fuzz: FAIL; rerun with: make fuzz SEED={}",
                seed.wrapping_add(n)
            );
            return Err(why);
        }
        n += 1;
        if last.elapsed() >= Duration::from_secs(10) {
            last = Instant::now();
            report(n);
        }
    }
    report(n);
    Ok(n)
}

/// `name=value` from the harness arguments.
pub(crate) fn arg(name: &str) -> Option<u64> {
    std::env::args().find_map(|a| {
        a.strip_prefix(name)
            .and_then(|v| v.strip_prefix('='))
            .and_then(|v| v.parse().ok())
    })
}

/// A seed from `seed=`, or from the clock (printed, so that the run can be repeated): getrandom()
/// blocks in a fresh VM until the CRNG is ready.
pub(crate) fn seed() -> u64 {
    arg("seed").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_007)
    })
}

/// The model check: sequences of the replay's own workload ([`op::replay_sequence`]: updates of
/// one table, two groups attached and detached), each checked op by op and then entry by entry
/// against the fuzzer's reference model; `model_sequences=` in the harness arguments sets how
/// many (default 48), `seed=` reruns one.
pub fn model_check() -> CaseResult {
    let seed = seed();
    let n = arg("model_sequences").unwrap_or(48);
    diag!("model check seed={seed}");
    let baseline = Baseline::now().map_err(Stop::Fail)?;
    for i in 0..n {
        run_seed(seed.wrapping_add(i), &baseline, op::replay_sequence())
            .map_err(|why| Stop::Fail(format!("model check: {why}")))?;
    }
    diag!("model check: {n} random sequences agree with the reference model");
    Ok(())
}

/// The case of `make check`: a fixed number of sequences (`sequences=` in the harness
/// arguments, default 300).
pub fn fuzz_budget() -> CaseResult {
    let seqs = arg("sequences").unwrap_or(300);
    run(seed(), Budget::Sequences(seqs)).map_err(Stop::Fail)?;
    Ok(())
}

/// `kvm_tce_replay_fuzz [seed=N] [time=SECONDS]`: runs until stopped, or for `time=`
/// seconds; exit status 1 on a failure, which is printed shrunk.
pub fn main() -> i32 {
    let budget = match arg("time") {
        Some(t) => Budget::Time(Duration::from_secs(t)),
        None => Budget::Forever,
    };
    match run(seed(), budget) {
        Ok(n) => {
            println!("fuzz: PASS, {n} sequences agree with the model");
            0
        }
        Err(why) => {
            println!("fuzz: FAIL {why}");
            1
        }
    }
}

super::register! {
    mock model_check,
    mock fuzz_budget,
}
