// SPDX-License-Identifier: GPL-2.0

//! Cases of concurrency and lifetimes: PUT_TCE threads racing with the attach of a large table
//! lose nothing, and closing the fds in every order frees everything.

use crate::ktr::{Device, Group, Table};
use crate::{ensure, ensure_eq, CaseResult};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const RW: u64 = 3;

pub fn concurrent_puts_during_attach() -> CaseResult {
    let dev = Device::open()?;
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
            std::thread::spawn(move || -> rustix::io::Result<()> {
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
    let probe = Device::open()?;
    let base = probe.mem_stats()?;
    for order in 0..6 {
        for attach in [false, true] {
            let dev = Device::open()?;
            dev.enable_replay()?;
            let t = dev.create_table(1, 16, 1 << 16)?;
            t.fill(0, 0x1_0000 | RW, 5000)?;
            let g = dev.create_group_for(&t, 12)?;
            if attach {
                dev.attach(&t, &g)?;
            }
            enum Fd {
                Dev(Device),
                Table(Table),
                Group(Group),
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
