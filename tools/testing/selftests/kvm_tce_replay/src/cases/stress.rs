// SPDX-License-Identifier: GPL-2.0

//! Cases of concurrency and lifetimes: PUT_TCE threads racing with the attach of a large table
//! lose nothing, and closing the fds in every order frees everything.

use crate::fixture::{self, DeviceExt};
use crate::{ensure, ensure_eq, CaseResult};
use kvm_tce_replay::{MockGroup, TceReplay, TceTable};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const RW: u64 = 3;

pub fn concurrent_puts_during_attach() -> CaseResult {
    let dev = fixture::open()?;
    dev.enable_replay()?;
    let size = 1u64 << 18;
    let t = Arc::new(dev.create_table(1, 16, size)?);
    // Populate every entry so the replay is long.
    t.fill(0, 0x1_0000 | 1, size)?;
    let g = dev.create_group_for(&t, 12)?;
    let stop = Arc::new(AtomicBool::new(false));
    let puts = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..2u64)
        .map(|id| {
            let (t, stop, puts) = (t.clone(), stop.clone(), puts.clone());
            std::thread::spawn(move || -> kvm_tce_replay::Result<()> {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ id;
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let entry = x % size;
                    let tce = if x.is_multiple_of(5) {
                        0
                    } else {
                        ((x >> 20) % 4096 + 2) << 16 | RW
                    };
                    t.put(entry, tce)?;
                    puts.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    while puts.load(Ordering::Relaxed) < 100 {
        std::thread::yield_now();
    }
    let before = puts.load(Ordering::Relaxed);
    dev.attach(&t, &g)?;
    let during = puts.load(Ordering::Relaxed) - before;
    // Let the threads go on a little after the attach, then stop them.
    while puts.load(Ordering::Relaxed) < before + during + 100 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        th.join().expect("thread")?;
    }
    crate::diag!(
        "{during} PUT_TCEs ran during the attach, {} in all",
        puts.load(Ordering::Relaxed)
    );
    // Every entry of the group matches the table.
    let hw = g.read(0, size * 16)?;
    for e in 0..size {
        let tce = t.get(e)?;
        for i in 0..16u64 {
            let want = if tce & RW == 0 {
                0
            } else {
                ((tce & !RW) + (i << 12)) | (tce & RW)
            };
            let got = hw[(e * 16 + i) as usize];
            ensure!(
                got == want,
                "entry {e} subpage {i}: hw {got:#x}, table {tce:#x}"
            );
        }
    }
    ensure!(
        during > 0,
        "no PUT_TCE ran during the attach: the replay starved them"
    );
    Ok(())
}

/// Tables, groups and contexts closed in every order, attached or not, free all their memory.
pub fn close_in_every_order() -> CaseResult {
    let probe = fixture::open()?;
    let base = probe.mem_stats()?;
    for order in 0..6 {
        for attach in [false, true] {
            let dev = fixture::open()?;
            dev.enable_replay()?;
            let t = dev.create_table(1, 16, 1 << 16)?;
            t.fill(0, 0x1_0000 | RW, 5000)?;
            let g = dev.create_group_for(&t, 12)?;
            if attach {
                dev.attach(&t, &g)?;
            }
            enum Fd {
                Dev(TceReplay),
                Table(TceTable),
                Group(MockGroup),
            }
            let mut fds = vec![Fd::Dev(dev), Fd::Table(t), Fd::Group(g)];
            // The permutation number `order` of the three fds.
            let first = fds.remove(order / 2);
            let second = fds.remove(order % 2);
            for fd in [first, second, fds.remove(0)] {
                match fd {
                    Fd::Dev(d) => drop(d),
                    Fd::Table(t) => drop(t),
                    Fd::Group(g) => drop(g),
                }
            }
            ensure_eq!(probe.mem_stats()?, base);
        }
    }
    Ok(())
}

/// A xorshift generator: the stress is random but its seed is printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What a group must hold for window entry holding `tce`: written out here, not taken from the
/// module's checks (a permission bit, nothing else below 64 KiB, an address of guest memory).
fn maps(tce: u64) -> bool {
    tce & RW != 0 && tce & 0xfffc == 0 && tce & !RW < crate::fixture::GUEST_RAM
}

/// For a fixed time, from several threads: PUT, INDIRECT and STUFF in one half of a window,
/// writes of any value through the mmap in the other, attach and detach of two groups,
/// GET_POPULATED, and a second table created, attached to a third group and closed, over and
/// over. Afterwards every attached group holds exactly what the table's hcall half says, and,
/// attached anew, what the replay of the whole table says. The kernel's checkers (lockdep,
/// KASAN, kmemleak) see the rest.
pub fn stress_everything() -> CaseResult {
    use crate::fixture::{covering, DeviceExt, TableExt};
    let secs: u64 = std::env::args()
        .find_map(|a| a.strip_prefix("stress=").and_then(|s| s.parse().ok()))
        .unwrap_or(8);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    crate::diag!("stress: {secs} s, seed={seed}");
    let dev = fixture::open()?;
    dev.enable_replay()?;
    let size = 1u64 << 16;
    let half = size / 2;
    let t = dev.create_table(1, 16, size)?;
    let epp = t.stats()?.entries_per_page;
    let map = t.map(0, (size / epp) as usize)?;
    let groups = [dev.create_group_for(&t, 16)?, dev.create_group_for(&t, 12)?];
    let third = dev.create_group_for(&t, 16)?;
    let stop = AtomicBool::new(false);
    // Per thread: PUT, INDIRECT/STUFF, writes through the mapping, attaches, second tables.
    let ops: [AtomicU64; 5] = Default::default();
    let tce_of = |x: u64| match x % 8 {
        0 => 0,
        1 => (x >> 8) & !RW,
        _ => (((x >> 16) % (1 << 20)) << 16) | ((x >> 3) % 3 + 1),
    };
    let result: Result<(), String> = std::thread::scope(|s| {
        let workers = [
            // PUT
            s.spawn(|| -> Result<(), String> {
                let mut r = Rng(seed);
                while !stop.load(Ordering::Relaxed) {
                    let x = r.next();
                    t.put(x % half, tce_of(x >> 1))
                        .map_err(|e| format!("put: {e:?}"))?;
                    ops[0].fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }),
            // INDIRECT and STUFF
            s.spawn(|| -> Result<(), String> {
                let mut r = Rng(seed ^ 0x5555);
                while !stop.load(Ordering::Relaxed) {
                    let x = r.next();
                    let n = x % 40 + 1;
                    let at = (x >> 8) % (half - n);
                    if x.is_multiple_of(3) {
                        let poison = if x & 8 == 0 { 0 } else { (x >> 20) & !RW };
                        t.stuff(at, poison, n)
                            .map_err(|e| format!("stuff: {e:?}"))?;
                    } else {
                        let list: Vec<u64> = (0..n).map(|_| tce_of(r.next())).collect();
                        t.put_indirect(at, &list)
                            .map_err(|e| format!("indirect: {e:?}"))?;
                    }
                    ops[1].fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }),
            // Writes of any value through the mapping, in the other half.
            s.spawn(|| -> Result<(), String> {
                let mut r = Rng(seed ^ 0xaaaa);
                while !stop.load(Ordering::Relaxed) {
                    let x = r.next();
                    let value = if x.is_multiple_of(4) {
                        r.next()
                    } else {
                        tce_of(r.next())
                    };
                    map.write((half + x % half) as usize, value);
                    ops[2].fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }),
            // Attach and detach of both groups; GET_POPULATED.
            s.spawn(|| -> Result<(), String> {
                let mut r = Rng(seed ^ 0x3333);
                while !stop.load(Ordering::Relaxed) {
                    let g = &groups[(r.next() % 2) as usize];
                    match dev.attach(&t, g) {
                        Ok(()) => {}
                        Err(e) => return Err(format!("attach: {e:?}")),
                    }
                    t.populated(0, size / epp)
                        .map_err(|e| format!("populated: {e:?}"))?;
                    if r.next().is_multiple_of(2) {
                        dev.detach(&t, g).map_err(|e| format!("detach: {e:?}"))?;
                    }
                    ops[3].fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }),
            // A second table, attached to a third group and closed, over and over.
            s.spawn(|| -> Result<(), String> {
                let mut r = Rng(seed ^ 0x7777);
                while !stop.load(Ordering::Relaxed) {
                    let other = dev
                        .create_table(2, 16, size)
                        .map_err(|e| format!("create: {e:?}"))?;
                    other
                        .put(r.next() % size, 0x5_0000 | RW)
                        .map_err(|e| format!("put 2: {e:?}"))?;
                    dev.attach(&other, &third)
                        .map_err(|e| format!("attach 3: {e:?}"))?;
                    // The third group is the other table's: this one cannot take it.
                    if dev.attach(&t, &third) != Err(rustix::io::Errno::BUSY.into()) {
                        return Err("a hardware table was attached to two tables".into());
                    }
                    drop(other);
                    ops[4].fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }),
        ];
        std::thread::sleep(std::time::Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .try_for_each(|w| w.join().unwrap_or_else(|_| Err("a thread panicked".into())))
    });
    result.map_err(|e| crate::Stop::Fail(format!("stress (seed={seed}): {e}")))?;
    let n = ops.each_ref().map(|o| o.load(Ordering::Relaxed));
    crate::diag!(
        "stress: {} PUTs, {} INDIRECT/STUFFs, {} writes through the mapping, {} attaches, {} second tables",
        n[0],
        n[1],
        n[2],
        n[3],
        n[4]
    );
    let w = t.window();
    let expected = |g: usize, upto: u64| -> Result<Vec<u64>, crate::Stop> {
        let hw = covering(&w, [16, 12][g]);
        let mut out = vec![0u64; (upto << (16 - hw.it_page_shift)) as usize];
        for e in 0..upto {
            let tce = t.get(e)?;
            if maps(tce) {
                for (i, v) in hw.split(&w, e, tce) {
                    out[i as usize] = v;
                }
            }
        }
        Ok(out)
    };
    // The first hardware entry where `got` and `want` differ, with the table's entry.
    let first_difference = |got: &[u64], want: &[u64], sub: u64| -> Option<String> {
        let i = got.iter().zip(want).position(|(g, w)| g != w)?;
        let e = i as u64 / sub;
        Some(format!(
            "hw entry {i} is {:#x}, expected {:#x}; table entry {e} is {:#x?}",
            got[i],
            want[i],
            t.get(e)
        ))
    };
    // Attached groups follow every hcall; the mmap half is the next replay's.
    for (i, g) in groups.iter().enumerate() {
        let sub = 1u64 << (16 - [16, 12][i]);
        if g.stats()?.attached == 1 {
            let diff = first_difference(&g.read(0, half * sub)?, &expected(i, half)?, sub);
            ensure!(
                diff.is_none(),
                "group {i} differs from the table's hcall half (seed={seed}): {diff:?}"
            );
        }
        // Attaches take references: drop them all, then attach anew (a replay).
        while dev.detach(&t, g).is_ok() {}
        dev.attach(&t, g)?;
        let diff = first_difference(&g.read(0, size * sub)?, &expected(i, size)?, sub);
        ensure!(
            diff.is_none(),
            "group {i} differs from the replay of the table (seed={seed}): {diff:?}"
        );
    }
    ensure_eq!(third.stats()?.attached, 0);
    Ok(())
}

super::register! {
    mock concurrent_puts_during_attach,
    mock close_in_every_order,
    mock stress_everything,
}
