// SPDX-License-Identifier: GPL-2.0

//! Model check: random sequences of put, stuff, indirect, mmap writes, attach and detach run
//! against the module and against a userspace reference model built from the shared pure logic
//! (window checks, subpage split), then compared entry by entry.

use crate::fixture::{self, covering, DeviceExt, GUEST_RAM};
use crate::hwmap::HwGeometry;
use crate::window::Window;
use crate::CaseResult;
use kvm_tce_replay::{MockGroup, TceMap, TceReplay, TceTable};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::collections::BTreeMap;

const PAGE_SHIFT: u32 = 16;
/// Hardware page shifts of the two groups.
const GROUPS: [u32; 2] = [16, 12];

#[derive(Clone, Debug)]
enum Op {
    Put(u64, u64),
    Stuff(u64, u64, u64),
    Indirect(u64, Vec<u64>),
    MmapWrite(u64, u64),
    Attach(usize),
    Detach(usize),
}

/// The reference model: the table's entries and each group's hardware entries.
struct Model {
    window: Window,
    table: BTreeMap<u64, u64>,
    groups: [Option<BTreeMap<u64, u64>>; 2],
}

impl Model {
    fn hw(&self, g: usize) -> HwGeometry {
        covering(&self.window, GROUPS[g])
    }

    fn write_groups(&mut self, entry: u64, tce: u64) {
        for g in 0..2 {
            let hw = self.hw(g);
            if let Some(map) = &mut self.groups[g] {
                map.extend(hw.split(&self.window, entry, tce));
            }
        }
    }

    /// Whether the groups hold TCE `t`: it has a permission bit, no other bit below the page
    /// size, and its address is guest memory ([`crate::fixture::open`]'s slot). Written out here rather
    /// than taken from the module's shared checks.
    fn maps(&self, t: u64) -> bool {
        let low = (1u64 << self.window.page_shift()) - 1;
        t & 3 != 0 && t & low & !3 == 0 && t & !3 < GUEST_RAM
    }

    /// Applies an op as the module must; returns whether the module must accept it.
    fn apply(&mut self, op: &Op) -> bool {
        let w = self.window;
        // H_PUT_TCE takes any poison TCE (no permission bit) and the valid TCEs the groups hold.
        let ok_tce = |t: u64| t & 3 == 0 || self.maps(t);
        match op {
            Op::Put(e, t) => {
                if w.entry(w.ioba(*e), 1).is_err() || !ok_tce(*t) {
                    return false;
                }
                self.table.insert(*e, *t);
                self.write_groups(*e, *t);
            }
            Op::Stuff(e, t, n) => {
                // H_STUFF_TCE only clears or poisons.
                if w.entry(w.ioba(*e), *n).is_err() || *t & 3 != 0 {
                    return false;
                }
                for i in *e..*e + *n {
                    self.table.insert(i, *t);
                    self.write_groups(i, *t);
                }
            }
            Op::Indirect(e, list) => {
                if w.entry(w.ioba(*e), list.len() as u64).is_err()
                    || !list.iter().all(|&t| ok_tce(t))
                {
                    return false;
                }
                for (i, &t) in list.iter().enumerate() {
                    self.table.insert(e + i as u64, t);
                    self.write_groups(e + i as u64, t);
                }
            }
            // Writes through mmap change the table only; groups see them at the next replay.
            Op::MmapWrite(e, t) => {
                self.table.insert(*e, *t);
            }
            Op::Attach(g) => {
                if self.groups[*g].is_none() {
                    let hw = self.hw(*g);
                    let mut map = BTreeMap::new();
                    // Values written through mmap that H_PUT_TCE would refuse are skipped.
                    for (&e, &t) in &self.table {
                        if self.maps(t) {
                            map.extend(hw.split(&w, e, t));
                        }
                    }
                    self.groups[*g] = Some(map);
                }
            }
            Op::Detach(g) => {
                if self.groups[*g].is_none() {
                    return false;
                }
                self.groups[*g] = None;
            }
        }
        true
    }
}

struct Real {
    dev: TceReplay,
    table: TceTable,
    groups: [MockGroup; 2],
    attached: [bool; 2],
    map: TceMap,
}

impl Real {
    fn apply(&mut self, op: &Op) -> bool {
        match op {
            Op::Put(e, t) => self.table.put(*e, *t).is_ok(),
            Op::Stuff(e, t, n) => self.table.stuff(*e, *t, *n).is_ok(),
            Op::Indirect(e, list) => self.table.put_indirect(*e, list).is_ok(),
            Op::MmapWrite(e, t) => {
                self.map.write(*e as usize, *t);
                true
            }
            Op::Attach(g) => {
                // Attaching an attached group only takes a reference: keep one at most.
                if self.attached[*g] {
                    return true;
                }
                self.attached[*g] = self.dev.attach(&self.table, &self.groups[*g]).is_ok();
                self.attached[*g]
            }
            Op::Detach(g) => {
                let ok = self.dev.detach(&self.table, &self.groups[*g]).is_ok();
                if ok {
                    self.attached[*g] = false;
                }
                ok
            }
        }
    }
}

fn ops(size: u64) -> impl Strategy<Value = Vec<Op>> {
    let tce = prop_oneof![
        Just(0u64),
        (0u64..64, 0u64..4).prop_map(|(a, p)| (a << PAGE_SHIFT) | p),
        (0u64..64, 1u64..0x1000).prop_map(|(a, low)| (a << PAGE_SHIFT) | low),
        (0u64..64, 0u64..4).prop_map(|(a, p)| GUEST_RAM | (a << PAGE_SHIFT) | p),
        Just(u64::MAX),
        any::<u64>(),
    ];
    let entry = prop_oneof![0..size, Just(size - 1), Just(size), size - 8..size + 8];
    let op = prop_oneof![
        4 => (entry.clone(), tce.clone()).prop_map(|(e, t)| Op::Put(e, t)),
        1 => (entry.clone(), tce.clone(), 0u64..700).prop_map(|(e, t, n)| Op::Stuff(e, t, n)),
        1 => (entry.clone(), proptest::collection::vec(tce.clone(), 0..40)).prop_map(|(e, l)| Op::Indirect(e, l)),
        2 => (0..size, tce).prop_map(|(e, t)| Op::MmapWrite(e, t)),
        1 => (0usize..2).prop_map(Op::Attach),
        1 => (0usize..2).prop_map(Op::Detach),
    ];
    proptest::collection::vec(op, 1..40)
}

fn run_one(ops: &[Op]) -> Result<(), TestCaseError> {
    let err = |e: kvm_tce_replay::Error| TestCaseError::fail(format!("setup: {:?}", e.errno()));
    let size = 4 * (rustix::param::page_size() as u64 / 8);
    let dev = fixture::open().map_err(err)?;
    dev.enable_replay().map_err(err)?;
    let table = dev.create_table(1, PAGE_SHIFT, size).map_err(err)?;
    let groups = [
        dev.create_group_for(&table, GROUPS[0]).map_err(err)?,
        dev.create_group_for(&table, GROUPS[1]).map_err(err)?,
    ];
    let map = table.map(0, 4).map_err(err)?;
    let mut real = Real {
        dev,
        table,
        groups,
        attached: [false; 2],
        map,
    };
    let mut model = Model {
        window: Window::new(PAGE_SHIFT, 0, size).expect("window"),
        table: BTreeMap::new(),
        groups: [None, None],
    };
    for (i, op) in ops.iter().enumerate() {
        let want = model.apply(op);
        let got = real.apply(op);
        prop_assert_eq!(
            got,
            want,
            "op {} {:?}: accepted {}, model {}",
            i,
            op,
            got,
            want
        );
    }
    for e in 0..size {
        let want = model.table.get(&e).copied().unwrap_or(0);
        prop_assert_eq!(real.table.get(e).map_err(err)?, want, "table entry {}", e);
    }
    for (g, it_page_shift) in GROUPS.into_iter().enumerate() {
        let sub = 1u64 << (PAGE_SHIFT - it_page_shift);
        let hw = real.groups[g].read(0, size * sub).map_err(err)?;
        let empty = BTreeMap::new();
        let want = model.groups[g].as_ref().unwrap_or(&empty);
        for (i, &v) in hw.iter().enumerate() {
            let w = want.get(&(i as u64)).copied().unwrap_or(0);
            prop_assert_eq!(v, w, "group {} hw entry {}", g, i);
        }
    }
    Ok(())
}

pub fn model_check() -> CaseResult {
    let size = 4 * (rustix::param::page_size() as u64 / 8);
    let cases = std::env::var("KTR_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    // A seed from the clock, printed for reruns (`seed=N` in the harness arguments): the
    // default one comes from getrandom(), which blocks in a fresh VM until the CRNG is ready.
    let seed = std::env::args()
        .find_map(|a| a.strip_prefix("seed=").and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    crate::diag!("model check seed={seed}");
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    runner
        .run(&ops(size), |ops| run_one(&ops))
        .map_err(|e| crate::Stop::Fail(format!("{e}")))?;
    crate::diag!("model check: {cases} random sequences agree with the reference model");
    Ok(())
}

super::register! {
    mock model_check,
}
