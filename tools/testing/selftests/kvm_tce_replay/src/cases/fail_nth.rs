// SPDX-License-Identifier: GPL-2.0

//! The fail-nth sweep, in the style of tools/testing/selftests/iommu/iommufd_fail_nth.c: for each
//! operation that allocates, fail its 1st, 2nd, 3rd, ... allocation (any kernel allocation of
//! the calling thread, through /proc/self/task/TID/fail-nth) until it succeeds. A failed attempt
//! returns an errno and leaves everything as before, compared entry by entry: the table, the
//! group's hardware entries, the statistics, the module's memory counters and the pages charged
//! to the process's pinned_vm; a successful one
//! ends as an attempt without injection does. Needs CONFIG_FAULT_INJECTION with FAILSLAB,
//! FAIL_PAGE_ALLOC and their debugfs knobs (the x86_64 debug kernel); skipped elsewhere.

use crate::fixture::{self, pinned_pages, DeviceExt};
use crate::uapi::*;
use crate::{diag, ensure, CaseResult, Stop};
use kvm_tce_replay::{MockGroup, TceReplay, TceTable};
use rustix::io::Errno;
use std::io::Write;
use std::os::unix::fs::FileExt;

const RW: u64 = 3;

/// Window entries the fixture holds TCEs at (two TCE pages), and the one operations add.
const HELD: [u64; 3] = [1, 2, 700];
const NEW: u64 = 600_000;

/// The state the sweep compares: table entries and counters, the group's hardware entries and
/// counters, the module's memory.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    entries: Vec<u64>,
    table: KtrTableStats,
    group: Vec<u64>,
    group_valid: u64,
    group_attached: u64,
    memory: KtrMemStats,
    /// Pages charged to the process's pinned_vm.
    pinned: u64,
}

/// A context with a table of TCEs at [`HELD`] and a mock group of 4 KiB pages, attached or not.
struct Fixture {
    dev: TceReplay,
    t: TceTable,
    g: MockGroup,
}

impl Fixture {
    fn new(attached: bool) -> kvm_tce_replay::Result<Self> {
        let dev = fixture::open()?;
        dev.enable_replay()?;
        let t = dev.create_table(1, 16, 1 << 20)?;
        for (i, &e) in HELD.iter().enumerate() {
            t.put(e, ((i as u64 + 1) << 16) | RW)?;
        }
        let g = dev.create_group_for(&t, 12)?;
        if attached {
            dev.attach(&t, &g)?;
        }
        Ok(Self { dev, t, g })
    }

    fn snapshot(&self) -> kvm_tce_replay::Result<Snapshot> {
        let mut entries = Vec::new();
        let mut group = Vec::new();
        for e in HELD.iter().chain([&NEW]) {
            entries.push(self.t.get(*e)?);
            group.extend(self.g.read(e * 16, 16)?);
        }
        let mut table = self.t.stats()?;
        table.last_replay_ns = 0;
        // A count of events, not state: a write fault refused for want of memory counts, and a
        // child whose runtime retries the access after the SIGBUS then succeeds.
        table.faults_refused = 0;
        let g = self.g.stats()?;
        Ok(Snapshot {
            entries,
            table,
            group,
            group_valid: g.entries_valid,
            group_attached: g.attached,
            memory: self.dev.mem_stats()?,
            pinned: pinned_pages(),
        })
    }
}

/// The calling thread's fail-nth control file.
struct FailNth(std::fs::File);

impl FailNth {
    /// The calling thread's file, as it is.
    fn task() -> Option<Self> {
        let tid = rustix::thread::gettid().as_raw_nonzero();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/self/task/{tid}/fail-nth"))
            .ok()?;
        Some(Self(file))
    }

    /// Opens the file and makes allocations that may sleep fail too (fail-nth needs the
    /// debugfs knobs of FAILSLAB and FAIL_PAGE_ALLOC); `None` without fault injection.
    fn open() -> Option<Self> {
        let file = Self::task()?;
        for (knob, value) in [
            ("failslab/ignore-gfp-wait", "N"),
            ("failslab/verbose", "0"),
            ("fail_page_alloc/ignore-gfp-wait", "N"),
            ("fail_page_alloc/ignore-gfp-highmem", "N"),
            ("fail_page_alloc/min-order", "0"),
            ("fail_page_alloc/verbose", "0"),
        ] {
            std::fs::write(format!("/sys/kernel/debug/{knob}"), value).ok()?;
        }
        Some(file)
    }

    /// The `n`-th next fault-injection point of this thread fails.
    fn arm(&self, n: u32) -> std::io::Result<()> {
        (&self.0).write_all(n.to_string().as_bytes())
    }

    /// Disarms; true if the failure was injected.
    fn injected(&self) -> std::io::Result<bool> {
        let mut buf = [0u8; 16];
        let n = self.0.read_at(&mut buf, 0)?;
        let left: u32 = String::from_utf8_lossy(&buf[..n])
            .trim()
            .parse()
            .unwrap_or(1);
        (&self.0).write_all(b"0").ok();
        Ok(left == 0)
    }
}

/// How an operation of the sweep runs.
#[derive(Clone, Copy)]
enum Run {
    /// In the sweeping thread.
    Here(fn(&Fixture) -> kvm_tce_replay::Result<()>),
    /// In a forked child, which arms its own fail-nth (the file is per task, and fork clears
    /// it): for a fault, which fails with a signal rather than an errno.
    Child(fn(&Fixture) -> kvm_tce_replay::Result<()>),
}

/// An operation of the sweep: its name, whether its fixture is attached, and what it does.
type Op = (&'static str, bool, Run);

/// A write through a new mapping of the table into a TCE page never allocated: the write
/// fault allocates and charges the page (SIGBUS if it cannot).
fn mmap_write(f: &Fixture) -> kvm_tce_replay::Result<()> {
    let epp = rustix::param::page_size() as u64 / 8;
    let map = f.t.map((NEW / epp) as usize, 1)?;
    map.write((NEW % epp) as usize, (8 << 16) | RW);
    Ok(())
}

const OPS: &[Op] = &[
    (
        "open a context",
        false,
        Run::Here(|_| fixture::open().map(drop)),
    ),
    (
        "create a table",
        false,
        Run::Here(|f| f.dev.create_table(9, 16, 1 << 31).map(drop)),
    ),
    (
        "create a mock group",
        false,
        Run::Here(|f| f.dev.create_group_for(&f.t, 12).map(drop)),
    ),
    (
        "set a memory slot",
        false,
        Run::Here(|f| {
            f.dev
                .set_user_memory_region_raw(KvmUserspaceMemoryRegion {
                    slot: 7,
                    flags: 0,
                    guest_phys_addr: 1 << 50,
                    memory_size: 1 << 20,
                    userspace_addr: 1 << 40,
                })
                .map(drop)
        }),
    ),
    (
        "PUT a TCE in a new page",
        true,
        Run::Here(|f| f.t.put(NEW, (5 << 16) | RW)),
    ),
    (
        "INDIRECT in a new page",
        true,
        Run::Here(|f| f.t.put_indirect(NEW, &[(6 << 16) | RW, (7 << 16) | RW])),
    ),
    (
        "STUFF poison in a new page",
        true,
        Run::Here(|f| f.t.stuff(NEW, 0x8_0000, 3)),
    ),
    (
        "write a new page through mmap",
        true,
        Run::Child(mmap_write),
    ),
    (
        "attach with replay",
        false,
        Run::Here(|f| f.dev.attach(&f.t, &f.g)),
    ),
    ("detach", true, Run::Here(|f| f.dev.detach(&f.t, &f.g))),
];

/// Runs `run` with the `n`-th allocation failing (0: none); returns its result and whether
/// the failure was injected.
fn attempt(
    fail: &FailNth,
    f: &Fixture,
    run: Run,
    n: u32,
) -> Result<(kvm_tce_replay::Result<()>, bool), Stop> {
    let err = |e: std::io::Error| Stop::Fail(format!("fail-nth: {e}"));
    match run {
        Run::Here(op) => {
            if n > 0 {
                fail.arm(n).map_err(err)?;
            }
            let result = op(f);
            Ok((result, fail.injected().map_err(err)?))
        }
        Run::Child(op) => {
            // SAFETY: the harness runs one thread here; the child opens a file, makes system
            // calls and calls _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let code = match FailNth::task() {
                    Some(fail) if n == 0 || fail.arm(n).is_ok() => {
                        let ok = op(f).is_ok();
                        let injected = fail.injected().unwrap_or(false);
                        10 + u8::from(ok) * 2 + u8::from(injected)
                    }
                    _ => 1,
                };
                // SAFETY: ends the child without the parent's exit handlers.
                unsafe { libc::_exit(code.into()) };
            }
            let mut status = 0;
            // SAFETY: waits for the child just forked.
            if pid < 0 || unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
                return Err(Stop::Fail("fork or wait failed".into()));
            }
            if libc::WIFSIGNALED(status) {
                // The fault failed: SIGBUS, as api.rst says for a page that cannot be allocated.
                let sig = libc::WTERMSIG(status);
                ensure!(
                    sig == libc::SIGBUS,
                    "the child died of signal {sig}, not SIGBUS"
                );
                return Ok((Err(Errno::FAULT.into()), true));
            }
            match libc::WEXITSTATUS(status) {
                code @ 10..=13 => {
                    let ok = code >= 12;
                    Ok((
                        if ok { Ok(()) } else { Err(Errno::NOMEM.into()) },
                        code % 2 == 1,
                    ))
                }
                code => Err(Stop::Fail(format!(
                    "the child could not arm fail-nth ({code})"
                ))),
            }
        }
    }
}

/// Sweeps one operation; returns the number of failures injected.
fn sweep(fail: &FailNth, &(name, attached, run): &Op) -> Result<u32, Stop> {
    let fixture = |attached| {
        Fixture::new(attached).map_err(|e| Stop::Fail(format!("{name}: fixture: {e:?}")))
    };
    // The outcome without injection, against which a success with injection is compared.
    let clean = fixture(attached)?;
    let before = clean.snapshot()?;
    attempt(fail, &clean, run, 0)?
        .0
        .map_err(|e| Stop::Fail(format!("{name} without injection: {e:?}")))?;
    let after = clean.snapshot()?;
    drop(clean);
    for n in 1..1000 {
        let f = fixture(attached)?;
        ensure!(f.snapshot()? == before, "{name}: the fixture differs");
        let (result, injected) = attempt(fail, &f, run, n)?;
        let now = f.snapshot()?;
        match result {
            Err(e) => ensure!(
                now == before,
                "{name}: allocation {n} failed with {e:?} but changed the state:\n{before:?}\n->\n{now:?}"
            ),
            Ok(()) => ensure!(
                now == after,
                "{name}: allocation {n} failed but the operation succeeded with another outcome:\n{after:?}\n->\n{now:?}"
            ),
        }
        if !injected {
            return Ok(n - 1);
        }
    }
    Err(Stop::Fail(format!(
        "{name}: still failing after 1000 allocations"
    )))
}

pub fn fail_nth_sweep() -> CaseResult {
    let Some(fail) = FailNth::open() else {
        return Err(Stop::Skip(
            "no fault injection (fail-nth) in this kernel".into(),
        ));
    };
    let mut total = 0;
    for op in OPS {
        let n = sweep(&fail, op)?;
        diag!("fail-nth: {}: {n} allocations failed in turn", op.0);
        total += n;
    }
    diag!(
        "fail-nth: {} operations, {total} failure points injected",
        OPS.len()
    );
    Ok(())
}

super::register! {
    mock fail_nth_sweep,
}
