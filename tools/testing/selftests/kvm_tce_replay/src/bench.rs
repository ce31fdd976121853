// SPDX-License-Identifier: GPL-2.0

//! `make bench`'s guest side: times attach + replay of windows of 2^20 to 2^31 TCEs with four
//! populations and three strategies (ours, every page slot, every entry), the VMM's own replay
//! through mmap, a memcpy of the dense replay's bytes, and the memory windows cost. Prints one
//! `bench,...` CSV line per figure for the host to tabulate; slow baselines that would take
//! minutes under emulation are measured on smaller windows and extrapolated linearly.

use crate::ktr::{mem_free, Device, Group, Mapping, Table};
use crate::uapi_test::*;
use std::time::Instant;

const RW: u64 = 3;
const WINDOWS: [u32; 4] = [20, 24, 28, 31];
/// Largest window on which the every-entry walks are measured rather than extrapolated.
const MEASURE_ENTRIES_UP_TO: u32 = 24;

fn line(
    platform: &str,
    window: u32,
    it_shift: u32,
    population: &str,
    what: &str,
    ns: u64,
    extrapolated: bool,
) {
    println!(
        "bench,{platform},{window},{it_shift},{population},{what},{ns},{}",
        u8::from(extrapolated)
    );
}

pub fn populate(t: &Table, window: u32, population: &str, epp: u64) -> rustix::io::Result<u64> {
    let size = 1u64 << window;
    match population {
        "empty" => Ok(0),
        // 1 GiB of 64 KiB TCEs in the middle of the window.
        "contiguous" => {
            t.fill(size / 2, (1 << 40) | RW, 16384)?;
            Ok(16384)
        }
        // 16384 TCEs, each in its own TCE page (as many as the window has pages).
        "scattered" => {
            let pages = (size / epp).min(16384);
            let stride = size / epp / pages * epp;
            for i in 0..pages {
                t.put(i * stride + 7, ((i + 1) << 16) | RW)?;
            }
            Ok(pages)
        }
        // Every entry of a 2^24 sub-range.
        _ => {
            t.fill(0, (1 << 40) | RW, 1 << 24)?;
            Ok(1 << 24)
        }
    }
}

/// `H_PUT_TCE`'s latency while the dense table `t` replays into `g` on another thread: the
/// p50, p99 and max of the ioctl in ns, over every PUT made during three replays. A PUT waits
/// for the replay's chunk in progress (the table lock), so this bounds the chunk budget.
fn put_latency(dev: &Device, t: &Table, g: &Group) -> rustix::io::Result<[u64; 3]> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = AtomicBool::new(false);
    let mut ns = Vec::new();
    let replays = std::thread::scope(|scope| {
        let replayer = scope.spawn(|| {
            let result = (0..3)
                .try_for_each(|_| timed_attach(dev, t, g, KTR_ATTACH_WALK_POPULATED).map(drop));
            done.store(true, Ordering::Release);
            result
        });
        // An entry of the replayed range, put over and over with two values.
        let mut i = 0u64;
        while !done.load(Ordering::Acquire) {
            let start = Instant::now();
            let r = t.put(12345, (1 << 40) | ((i & 1) << 16) | RW);
            ns.push(start.elapsed().as_nanos() as u64);
            if r.is_err() {
                break;
            }
            i += 1;
        }
        replayer.join()
    });
    replays.unwrap_or(Err(rustix::io::Errno::NOTRECOVERABLE))?;
    ns.sort_unstable();
    let at = |q: usize| {
        ns.get((ns.len().saturating_sub(1)) * q / 100)
            .copied()
            .unwrap_or(0)
    };
    Ok([at(50), at(99), at(100)])
}

fn timed_attach(dev: &Device, t: &Table, g: &Group, walk: u32) -> rustix::io::Result<u64> {
    dev.attach_with(t, g, walk)?;
    let ns = t.stats()?.last_replay_ns;
    dev.detach(t, g)?;
    Ok(ns)
}

fn run_bench(platform: &str) -> rustix::io::Result<()> {
    let epp = rustix::param::page_size() as u64 / 8;
    let dev = Device::open()?;
    dev.enable_replay()?;
    // Per-entry costs of the every-entry walks (per hardware page size) and of the VMM's mmap
    // read, measured on the largest window where they are affordable, for extrapolation.
    let mut entry_ns = [0f64; 2];
    let mut vmm_ns_per_entry = 0f64;
    for &window in &WINDOWS {
        let size = 1u64 << window;
        // Memory to create the window.
        let (m0, f0) = (dev.mem_stats()?.table_bytes, mem_free());
        let t = dev.create_table(1, 16, size)?;
        let (m1, f1) = (dev.mem_stats()?.table_bytes, mem_free());
        line(
            platform,
            window,
            0,
            "empty",
            "create_module_bytes",
            m1 - m0,
            false,
        );
        line(
            platform,
            window,
            0,
            "empty",
            "create_memfree_bytes",
            f0.saturating_sub(f1),
            false,
        );
        drop(t);
        for population in ["empty", "contiguous", "scattered", "dense"] {
            if population == "dense" && window < 24 {
                continue;
            }
            let t = dev.create_table(1, 16, size)?;
            let valid = populate(&t, window, population, epp)?;
            line(platform, window, 0, population, "valid_tces", valid, false);
            for (k, it_shift) in [16u32, 12].into_iter().enumerate() {
                // A dense 2^24 range split into 4 KiB pages would need a 2 GiB hardware table.
                if population == "dense" && it_shift == 12 {
                    continue;
                }
                // A group that keeps its hardware table's levels across detaches, as powernv
                // does: a first, untimed attach allocates them, and the strategies below all find
                // them present (and their memory touched: first touches are host page faults
                // under UML and QEMU, which a kernel on hardware does not pay).
                let g = dev.create_group_with(&t, it_shift, KTR_MOCK_KEEP_LEVELS)?;
                timed_attach(&dev, &t, &g, KTR_ATTACH_WALK_POPULATED)?;
                let ours = timed_attach(&dev, &t, &g, KTR_ATTACH_WALK_POPULATED)?;
                line(platform, window, it_shift, population, "ours", ours, false);
                // Our replay into a new group, which allocates its levels as it goes: natively
                // only (UML), where the time targets are judged; under emulation allocating the
                // levels of the large windows takes many minutes.
                if platform.ends_with("-uml") {
                    let cold = dev.create_group_for(&t, it_shift)?;
                    let ns = timed_attach(&dev, &t, &cold, KTR_ATTACH_WALK_POPULATED)?;
                    line(
                        platform,
                        window,
                        it_shift,
                        population,
                        "ours_cold",
                        ns,
                        false,
                    );
                }
                let slots = timed_attach(&dev, &t, &g, KTR_ATTACH_WALK_SLOTS)?;
                line(
                    platform, window, it_shift, population, "slots", slots, false,
                );
                if window <= MEASURE_ENTRIES_UP_TO {
                    let all = timed_attach(&dev, &t, &g, KTR_ATTACH_WALK_ENTRIES)?;
                    line(
                        platform, window, it_shift, population, "entries", all, false,
                    );
                    if population == "empty" {
                        entry_ns[k] = all as f64 / size as f64;
                    }
                } else {
                    // Extrapolated from the empty window's per-entry cost plus our cost of the
                    // valid entries, which the every-entry walk writes too.
                    let est = entry_ns[k] * size as f64 + ours as f64;
                    line(
                        platform, window, it_shift, population, "entries", est as u64, true,
                    );
                }
                if population == "dense" && window == 24 {
                    let [p50, p99, max] = put_latency(&dev, &t, &g)?;
                    for (what, ns) in [("put_p50", p50), ("put_p99", p99), ("put_max", max)] {
                        line(platform, window, it_shift, population, what, ns, false);
                    }
                }
                if population == "dense" {
                    // A memcpy of the bytes the dense replay writes.
                    let bytes = (valid << (16 - it_shift)) as usize * 8;
                    let src = vec![0x5au8; bytes];
                    // Both buffers touched first, as the replay's hardware pages are.
                    let mut dst = vec![0xa5u8; bytes];
                    let start = Instant::now();
                    dst.copy_from_slice(&src);
                    let ns = start.elapsed().as_nanos() as u64;
                    std::hint::black_box(&dst);
                    line(platform, window, it_shift, population, "memcpy", ns, false);
                }
            }
            if population == "empty" {
                // The VMM's own replay: read every entry through mmap, as QEMU does.
                let pages = (size / epp) as usize;
                if window <= MEASURE_ENTRIES_UP_TO {
                    let m = Mapping::new(&t, pages)?;
                    let start = Instant::now();
                    let mut acc = 0u64;
                    for e in 0..m.entries() {
                        acc |= m.read(e);
                    }
                    let ns = start.elapsed().as_nanos() as u64;
                    std::hint::black_box(acc);
                    line(platform, window, 0, population, "vmm_mmap", ns, false);
                    let allocated = t.stats()?.pages_allocated;
                    line(
                        platform,
                        window,
                        0,
                        population,
                        "mmap_pages_allocated",
                        allocated,
                        false,
                    );
                    vmm_ns_per_entry = ns as f64 / size as f64;
                } else {
                    let est = vmm_ns_per_entry * size as f64;
                    line(
                        platform, window, 0, population, "vmm_mmap", est as u64, true,
                    );
                }
            }
        }
    }
    Ok(())
}

/// Runs the benchmark; returns the exit code.
pub fn run() -> i32 {
    // UML runs kernel code natively; QEMU (TCG) emulates it.
    let uml = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains("User Mode Linux"));
    let platform = if uml {
        format!("{}-uml", std::env::consts::ARCH)
    } else {
        format!("{}-vm", std::env::consts::ARCH)
    };
    match run_bench(&platform) {
        Ok(()) => {
            println!("bench: done");
            0
        }
        Err(e) => {
            println!("bench: failed: {e:?}");
            1
        }
    }
}

/// `make profile`'s guest side: one scenario of the benchmark (`scattered`, `dense` or
/// `contiguous`, with 64 KiB hardware pages whose levels stay allocated across detaches, as the
/// benchmark's "ours" figure measures it), its attach and detach repeated for `seconds`
/// while the host samples the UML kernel with perf. Prints `profile: start` when the loop
/// begins; returns the exit code.
pub fn profile(scenario: &str, seconds: u64) -> i32 {
    let run = || -> rustix::io::Result<(u64, u64)> {
        let epp = rustix::param::page_size() as u64 / 8;
        let window = if scenario == "dense" { 24 } else { 31 };
        let dev = Device::open()?;
        dev.enable_replay()?;
        let t = dev.create_table(1, 16, 1 << window)?;
        populate(&t, window, scenario, epp)?;
        let g = dev.create_group_with(&t, 16, KTR_MOCK_KEEP_LEVELS)?;
        // The hardware table's levels allocated and touched, as in the benchmark.
        timed_attach(&dev, &t, &g, KTR_ATTACH_WALK_POPULATED)?;
        println!("profile: start {scenario} (2^{window} window) for {seconds} s");
        let start = Instant::now();
        let (mut n, mut ns) = (0u64, 0u64);
        while start.elapsed().as_secs() < seconds {
            ns += timed_attach(&dev, &t, &g, KTR_ATTACH_WALK_POPULATED)?;
            n += 1;
        }
        Ok((n, ns))
    };
    match run() {
        Ok((n, ns)) => {
            println!("profile: stop: {n} replays, {} ns each", ns / n.max(1));
            0
        }
        Err(e) => {
            println!("profile: failed: {e:?}");
            1
        }
    }
}
