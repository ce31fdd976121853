// SPDX-License-Identifier: GPL-2.0

//! Cases of attaching mock IOMMU groups: the replay writes exactly the valid TCEs (subpages
//! included) walking only allocated pages; no replay without the capability; double attach,
//! detach, updates reaching every group, the compatibility checks, and rollback on failure.

use crate::fixture::{self, covering, DeviceExt, TableExt};
use crate::uapi::*;
use crate::uapi_test::*;
use crate::window::tce_is_valid;
use crate::{ensure, ensure_eq, ensure_err, CaseResult, Stop};
use kvm_tce_replay::{mock_levels, MockGroup, TceReplay, TceTable};
use rustix::io::Errno;
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;

const RW: u64 = 3;

/// The hardware entries a group must hold for `tces` (entry -> TCE) of `table`.
pub fn expected_hw(
    table: &TceTable,
    it_page_shift: u32,
    tces: &BTreeMap<u64, u64>,
) -> BTreeMap<u64, u64> {
    let w = table.window();
    let hw = covering(&w, it_page_shift);
    let mut out = BTreeMap::new();
    for (&entry, &tce) in tces {
        if tce_is_valid(tce) {
            out.extend(hw.split(&w, entry, tce));
        }
    }
    out
}

/// Checks that `group` holds exactly `expected` over the hardware entries of `entries` of the
/// window (and zero elsewhere in those entries' subpages and one entry on each side).
pub fn check_group(
    group: &MockGroup,
    table: &TceTable,
    it_page_shift: u32,
    tces: &BTreeMap<u64, u64>,
) -> CaseResult {
    let expected = expected_hw(table, it_page_shift, tces);
    let sub = 1u64 << (table.page_shift() - it_page_shift);
    for &entry in tces.keys() {
        let lo = entry.saturating_sub(1) * sub;
        let hi = ((entry + 2).min(table.size())) * sub;
        let got = group.read(lo, hi - lo)?;
        for (i, &value) in got.iter().enumerate() {
            let index = lo + i as u64;
            let want = expected.get(&index).copied().unwrap_or(0);
            ensure!(
                value == want,
                "hw entry {index:#x} (window entry {}) is {value:#x}, expected {want:#x}",
                index / sub
            );
        }
    }
    let valid = group.stats()?.entries_valid;
    ensure_eq!(valid, expected.values().filter(|&&v| v != 0).count() as u64);
    Ok(())
}

/// A table at bus offset 0x40 (pages) with `tces` put through the hcalls.
fn table_with(
    dev: &TceReplay,
    liobn: u64,
    size: u64,
    tces: &BTreeMap<u64, u64>,
) -> Result<TceTable, Stop> {
    let t = dev.create_tce_table(KvmCreateSpaprTce64 {
        liobn,
        page_shift: 16,
        flags: 0,
        offset: 0x40,
        size,
    })?;
    for (&entry, &tce) in tces {
        t.put(entry, tce)?;
    }
    Ok(t)
}

fn scattered(size: u64) -> BTreeMap<u64, u64> {
    let mut tces = BTreeMap::new();
    let entries = [0, 1, 2, 511, 512, 4097, 40000, 70000, size / 2, size - 1];
    for (i, entry) in entries.into_iter().filter(|&e| e < size).enumerate() {
        tces.insert(
            entry,
            ((i as u64 + 1) << 20) | if i % 3 == 0 { 1 } else { RW },
        );
    }
    // An entry set then cleared, and a poisoned one (no permission bit): neither is replayed.
    tces.insert(3000, 0);
    tces.insert(3001, 0x77_0000);
    tces
}

pub fn attach_replays_exactly() -> CaseResult {
    for it_page_shift in [16, 12] {
        let dev = fixture::open()?;
        dev.enable_replay()?;
        let size = 1 << 20;
        let tces = scattered(size);
        let t = table_with(&dev, 1, size, &tces)?;
        t.put(3000, 0x99_0000 | RW)?;
        t.put(3000, 0)?;
        let g = dev.create_group_for(&t, it_page_shift)?;
        dev.attach(&t, &g)?;
        check_group(&g, &t, it_page_shift, &tces)?;
        let s = t.stats()?;
        let valid = tces.values().filter(|&&v| tce_is_valid(v)).count() as u64;
        ensure_eq!(s.replays, 1);
        ensure_eq!(s.last_pages_walked, s.pages_allocated);
        ensure_eq!(s.last_tces_replayed, valid);
        ensure_eq!(s.last_hw_entries_written, valid << (16 - it_page_shift));
        crate::diag!(
            "it_page_shift {it_page_shift}: {} pages walked, {} TCEs, {} hw entries, {} ns",
            s.last_pages_walked,
            s.last_tces_replayed,
            s.last_hw_entries_written,
            s.last_replay_ns
        );
    }
    Ok(())
}

/// The benchmark baselines (every entry, every page slot) replay the same as the normal walk.
pub fn replay_strategies_agree() -> CaseResult {
    let dev = fixture::open()?;
    dev.enable_replay()?;
    let size = 1 << 16;
    let tces = scattered(size);
    let t = table_with(&dev, 1, size, &tces)?;
    let epp = t.stats()?.entries_per_page;
    for (walk, walked) in [
        (KTR_ATTACH_WALK_POPULATED, t.stats()?.pages_allocated),
        (KTR_ATTACH_WALK_SLOTS, size.div_ceil(epp)),
        (KTR_ATTACH_WALK_ENTRIES, size),
    ] {
        let g = dev.create_group_for(&t, 12)?;
        dev.attach_with(&t, &g, walk)?;
        check_group(&g, &t, 12, &tces)?;
        ensure_eq!(t.stats()?.last_pages_walked, walked);
    }
    Ok(())
}

pub fn no_replay_without_capability() -> CaseResult {
    let dev = fixture::open()?;
    let tces = scattered(1 << 16);
    let t = table_with(&dev, 1, 1 << 16, &tces)?;
    let g = dev.create_group_for(&t, 16)?;
    dev.attach(&t, &g)?;
    ensure_eq!(g.stats()?.entries_valid, 0);
    ensure_eq!(g.stats()?.exchanges, 0);
    ensure_eq!(t.stats()?.replays, 0);
    // Updates after the attach reach the group all the same.
    t.put(5, 0x5_0000 | RW)?;
    ensure_eq!(g.read(5, 1)?, vec![0x5_0000 | RW]);
    Ok(())
}

pub fn double_attach_and_detach() -> CaseResult {
    let dev = fixture::open()?;
    dev.enable_replay()?;
    let tces = scattered(1 << 16);
    let t = table_with(&dev, 1, 1 << 16, &tces)?;
    let g = dev.create_group_for(&t, 16)?;
    dev.attach(&t, &g)?;
    let exchanges = g.stats()?.exchanges;
    dev.attach(&t, &g)?;
    ensure_eq!(t.stats()?.replays, 1);
    ensure_eq!(g.stats()?.exchanges, exchanges);
    ensure_eq!(t.stats()?.groups_attached, 1);
    dev.detach(&t, &g)?;
    ensure_eq!(g.stats()?.attached, 1);
    check_group(&g, &t, 16, &tces)?;
    dev.detach(&t, &g)?;
    let s = g.stats()?;
    ensure_eq!((s.attached, s.entries_valid, s.pages_allocated), (0, 0, 0));
    ensure_eq!(t.stats()?.groups_attached, 0);
    ensure_err!(dev.detach(&t, &g), NOENT);
    // Detached, updates no longer reach it; attached again, it is replayed again.
    t.put(9, 0x9_0000 | RW)?;
    ensure_eq!(g.read(9, 1)?, vec![0]);
    dev.attach(&t, &g)?;
    ensure_eq!(g.read(9, 1)?, vec![0x9_0000 | RW]);
    ensure_eq!(t.stats()?.replays, 2);
    Ok(())
}

pub fn updates_reach_every_group() -> CaseResult {
    let dev = fixture::open()?;
    dev.enable_replay()?;
    let t = table_with(&dev, 1, 1 << 16, &BTreeMap::new())?;
    let g16 = dev.create_group_for(&t, 16)?;
    let g12 = dev.create_group_for(&t, 12)?;
    dev.attach(&t, &g16)?;
    dev.attach(&t, &g12)?;
    let mut tces = BTreeMap::new();
    t.put(10, 0x10_0000 | RW)?;
    tces.insert(10, 0x10_0000 | RW);
    t.fill(100, 0x20_0000 | 1, 3)?;
    for e in 100..103 {
        tces.insert(e, 0x20_0000 | 1);
    }
    let list: Vec<u64> = (0..4).map(|i| (0x30_0000 + (i << 16)) | RW).collect();
    t.put_indirect(200, &list)?;
    for (i, &tce) in list.iter().enumerate() {
        tces.insert(200 + i as u64, tce);
    }
    t.put(101, 0)?;
    tces.insert(101, 0);
    check_group(&g16, &t, 16, &tces)?;
    check_group(&g12, &t, 12, &tces)?;
    Ok(())
}

pub fn attach_checks() -> CaseResult {
    let dev = fixture::open()?;
    let t = table_with(&dev, 1, 1 << 16, &BTreeMap::new())?;
    let group = |it_page_shift, it_offset, it_size| {
        dev.create_mock_group(&KtrMockGroup {
            it_page_shift,
            levels: 4,
            it_offset,
            it_size,
            flags: 0,
        })
    };
    // Hardware page larger than the window's, another bus offset, too small: EINVAL.
    for g in [
        group(17, 0x20, 1 << 15)?,
        group(16, 0x41, 1 << 17)?,
        group(16, 0x40, (1 << 16) - 1)?,
        group(12, 0x40, 1 << 20)?,
    ] {
        ensure_err!(dev.attach(&t, &g), INVAL);
        ensure_eq!(g.stats()?.attached, 0);
    }
    let g = dev.create_group_for(&t, 16)?;
    // A table of another context.
    let other = fixture::open()?;
    ensure_err!(other.attach(&t, &g), INVAL);
    // Bad fds, and fds of the wrong kind.
    let (gfd, tfd) = (g.as_raw_fd(), t.as_raw_fd());
    let raw = |groupfd, tablefd, flags, pad| KtrAttach {
        groupfd,
        tablefd,
        flags,
        pad,
    };
    ensure_err!(dev.attach_raw(&raw(gfd, 999, 0, 0)), BADF);
    ensure_err!(dev.attach_raw(&raw(-1, tfd, 0, 0)), BADF);
    ensure_err!(dev.attach_raw(&raw(tfd, gfd, 0, 0)), INVAL);
    ensure_err!(dev.attach_raw(&raw(tfd, tfd, 0, 0)), INVAL);
    // An fd that is no group at all (with the real backend: no VFIO group either).
    ensure_err!(dev.attach_raw(&raw(dev.as_raw_fd(), tfd, 0, 0)), INVAL);
    ensure_err!(dev.attach_raw(&raw(gfd, tfd, 3, 0)), INVAL);
    ensure_err!(dev.attach_raw(&raw(gfd, tfd, 0, 1)), INVAL);
    ensure_err!(dev.detach_raw(&raw(gfd, tfd, 1, 0)), INVAL);
    ensure_eq!(g.stats()?.attached, 0);
    // A group attached to one table cannot attach to another.
    dev.attach(&t, &g)?;
    let t2 = table_with(&dev, 2, 1 << 16, &BTreeMap::new())?;
    ensure_err!(dev.attach(&t2, &g), BUSY);
    ensure_err!(dev.detach(&t2, &g), NOENT);
    Ok(())
}

pub fn mock_group_checks() -> CaseResult {
    let dev = fixture::open()?;
    let before = dev.mem_stats()?;
    let ok = KtrMockGroup {
        it_page_shift: 12,
        levels: 2,
        it_offset: 0,
        it_size: 1 << 18,
        flags: 0,
    };
    let bits = rustix::param::page_size().trailing_zeros() - 3;
    let mut bad = vec![
        KtrMockGroup { flags: 2, ..ok },
        KtrMockGroup { levels: 0, ..ok },
        KtrMockGroup { levels: 6, ..ok },
        KtrMockGroup {
            it_page_shift: 11,
            ..ok
        },
        KtrMockGroup {
            it_page_shift: 35,
            ..ok
        },
        KtrMockGroup { it_size: 0, ..ok },
        KtrMockGroup {
            it_offset: u64::MAX,
            ..ok
        },
    ];
    // One level more than the levels can address.
    bad.push(KtrMockGroup {
        levels: 1,
        it_size: (1 << bits) + 1,
        ..ok
    });
    for req in bad {
        ensure!(
            dev.create_mock_group(&req).err() == Some(Errno::INVAL.into()),
            "accepted {req:?}"
        );
    }
    ensure_eq!(dev.mem_stats()?, before);
    let g = dev.create_mock_group(&ok)?;
    ensure_eq!(
        g.read_raw(0, KTR_MOCK_READ_MAX + 1).err(),
        Some(Errno::INVAL.into())
    );
    ensure_eq!(
        g.read_raw((1 << 18) - 1, 2).err(),
        Some(Errno::INVAL.into())
    );
    // KTR_MOCK_WRITE: past the table, too many entries, no such table: EINVAL, nothing written.
    ensure_err!(g.write_table(0, (1 << 18) - 1, &[1, 2]), INVAL);
    let too_many = vec![1; KTR_MOCK_WRITE_MAX as usize + 1];
    ensure_err!(g.write_table(0, 0, &too_many), INVAL);
    ensure_err!(g.write_table(1, 0, &[1]), INVAL);
    ensure_eq!(g.stats()?.entries_valid, 0);
    ensure_eq!(g.read(0, 4)?, vec![0; 4]);
    Ok(())
}

pub fn replay_failure_rolls_back() -> CaseResult {
    let dev = fixture::open()?;
    dev.enable_replay()?;
    let tces = scattered(1 << 20);
    let t = table_with(&dev, 1, 1 << 20, &tces)?;
    let g = dev.create_group_for(&t, 12)?;
    // The replay needs several hardware pages; the third allocation fails.
    g.fail_alloc(3)?;
    ensure_err!(dev.attach(&t, &g), NOMEM);
    let s = g.stats()?;
    ensure_eq!((s.attached, s.entries_valid, s.pages_allocated), (0, 0, 0));
    ensure_eq!(t.stats()?.groups_attached, 0);
    // Updates do not reach it, and a second attach (no failure left) replays everything.
    t.put(6, 0x6_0000 | RW)?;
    ensure_eq!(g.stats()?.entries_valid, 0);
    dev.attach(&t, &g)?;
    let mut tces = tces;
    tces.insert(6, 0x6_0000 | RW);
    check_group(&g, &t, 12, &tces)?;
    // A failing update after the attach returns the errno.
    g.fail_alloc(1)?;
    ensure_err!(t.put(900_000, 0x1_0000 | RW), NOMEM);
    Ok(())
}

/// The 128 TiB DDW: a window of 2^31 64 KiB TCEs, 1 GiB mapped (16384 TCEs), attached.
pub fn ddw_128tib_replay() -> CaseResult {
    let dev = fixture::open()?;
    dev.enable_replay()?;
    let t = table_with(&dev, 0x8000_0001, 1 << 31, &BTreeMap::new())?;
    let base = 1u64 << 30;
    t.stuff(0, 0, 1 << 31)?;
    let mut tces = BTreeMap::new();
    for i in 0..16384u64 {
        tces.insert((1 << 24) + i, (base + (i << 16)) | RW);
    }
    t.fill(1 << 24, base | RW, 1)?;
    for (&e, &tce) in tces.iter().skip(1) {
        t.put(e, tce)?;
    }
    let g = dev.create_group_for(&t, 16)?;
    dev.attach(&t, &g)?;
    let s = t.stats()?;
    crate::diag!("128 TiB DDW (2^31 TCEs, 64 KiB): {} TCE pages allocated, {} walked, {} TCEs and {} hw entries replayed in {} us",
        s.pages_allocated, s.last_pages_walked, s.last_tces_replayed, s.last_hw_entries_written, s.last_replay_ns / 1000);
    ensure_eq!(s.last_pages_walked, s.pages_allocated);
    ensure_eq!(s.last_tces_replayed, 16384);
    ensure_eq!(s.last_hw_entries_written, 16384);
    ensure_eq!(g.stats()?.entries_valid, 16384);
    let hw = g.read(1 << 24, 16384)?;
    for (i, &v) in hw.iter().enumerate() {
        ensure!(
            v == (base + ((i as u64) << 16)) | RW,
            "hw entry {i} is {v:#x}"
        );
    }
    Ok(())
}

/// `KTR_MOCK_KEEP_LEVELS`: a detach clears a mock hardware table's entries and keeps its levels
/// (attaching again allocates no level), where by default it frees them.
pub fn mock_keep_levels() -> CaseResult {
    let dev = fixture::open()?;
    dev.enable_replay()?;
    let t = dev.create_table(1, 16, 1 << 20)?;
    let tces = [(5, (3 << 16) | 3), (700_000, (9 << 16) | 1)];
    for (entry, tce) in tces {
        t.put(entry, tce)?;
    }
    // Two TCEs of 64 KiB, 16 hardware entries of 4 KiB each.
    let valid = 2 * 16;
    for flags in [0, KTR_MOCK_KEEP_LEVELS] {
        let hw = covering(&t.window(), 12);
        let g = dev.create_mock_group(&KtrMockGroup {
            it_page_shift: 12,
            levels: mock_levels(hw.it_size),
            it_offset: hw.it_offset,
            it_size: hw.it_size,
            flags,
        })?;
        dev.attach(&t, &g)?;
        let pages = g.stats()?.pages_allocated;
        ensure!(pages > 0, "flags {flags}: no level allocated");
        ensure_eq!(g.stats()?.entries_valid, valid);
        dev.detach(&t, &g)?;
        let s = g.stats()?;
        ensure_eq!((flags, s.entries_valid), (flags, 0));
        ensure_eq!(
            (flags, s.pages_allocated),
            (flags, if flags == 0 { 0 } else { pages })
        );
        for (entry, _) in tces {
            let hw_entries = g.read(entry * 16, 16)?;
            ensure!(
                hw_entries.iter().all(|&v| v == 0),
                "flags {flags}: entry {entry} left"
            );
        }
        dev.attach(&t, &g)?;
        ensure_eq!((flags, g.stats()?.pages_allocated), (flags, pages));
        ensure_eq!(g.stats()?.entries_valid, valid);
        dev.detach(&t, &g)?;
    }
    Ok(())
}

/// The replay takes a run of consecutive TCEs at once (one hardware entry each) and still checks
/// every entry of it: a run whose addresses cross from one memory slot into the next replays
/// whole, and once the second slot is gone, exactly the entries still in guest memory replay
/// and the others are counted as skipped.
pub fn replay_checks_each_entry_of_a_run() -> CaseResult {
    let dev = TceReplay::new()?;
    dev.enable_replay()?;
    let page = rustix::param::page_size() as u64;
    let gib = 1u64 << 30;
    dev.set_user_memory_region(0, 0, gib, page)?;
    dev.set_user_memory_region(1, gib, gib, 1 << 40)?;
    let t = dev.create_table(1, 16, 1 << 20)?;
    let epp = t.stats()?.entries_per_page;
    // Two and a half TCE pages of consecutive entries from the middle of page 1, their 64 KiB
    // pages of guest memory consecutive too, the first half below 1 GiB (slot 0).
    let (first, n) = (epp + epp / 2, 2 * epp + 3);
    let gpa = |i: u64| gib - (n / 2) * 0x1_0000 + i * 0x1_0000;
    let tces: BTreeMap<u64, u64> = (0..n).map(|i| (first + i, gpa(i) | RW)).collect();
    for (&entry, &tce) in &tces {
        t.put(entry, tce)?;
    }
    let g = dev.create_group_for(&t, 16)?;
    // The hardware entries of the run and one entry on each side, as they must be.
    let check = |kept: &dyn Fn(u64) -> bool| -> CaseResult {
        let got = g.read(first - 1, n + 2)?;
        for (i, &value) in got.iter().enumerate() {
            let entry = first - 1 + i as u64;
            let want = tces
                .get(&entry)
                .copied()
                .filter(|&tce| kept(tce))
                .unwrap_or(0);
            ensure!(
                value == want,
                "hw entry {entry:#x} is {value:#x}, expected {want:#x}"
            );
        }
        Ok(())
    };
    dev.attach(&t, &g)?;
    check(&|_| true)?;
    let s = t.stats()?;
    ensure_eq!((s.last_tces_replayed, s.last_tces_skipped), (n, 0));
    dev.detach(&t, &g)?;
    // Slot 1 deleted (size 0): the TCEs pointing above 1 GiB no longer point at guest memory.
    dev.set_user_memory_region(1, gib, 0, 1 << 40)?;
    dev.attach(&t, &g)?;
    check(&|tce| tce < gib)?;
    let below = (0..n).filter(|&i| gpa(i) < gib).count() as u64;
    ensure_eq!(below, n / 2);
    let s = t.stats()?;
    ensure_eq!(
        (s.last_tces_replayed, s.last_tces_skipped),
        (below, n - below)
    );
    Ok(())
}

/// `H_PUT_TCE(0)` and `H_STUFF_TCE(0)` clear every entry of their range in every attached group,
/// in TCE pages the table never allocated too, as KVM's `kvmppc_tce_iommu_unmap` does entry by
/// entry: a hardware entry written before the attach, outside the table (as VFIO's
/// `VFIO_IOMMU_MAP_DMA` writes one), does not survive the guest's clear. Clearing still
/// allocates nothing, and an entry outside the ranges cleared keeps its value.
pub fn clear_reaches_entries_written_outside() -> CaseResult {
    let dev = fixture::open()?;
    dev.enable_replay()?;
    let t = dev.create_table(1, 16, 1 << 20)?;
    let epp = t.stats()?.entries_per_page;
    let g = dev.create_group_for(&t, 12)?;
    // 64 KiB TCEs over 4 KiB hardware pages: window entry `e` is hardware entries 16e .. 16e + 16.
    // Three entries in three TCE pages, none allocated: one stuffed, one put, one left alone.
    let (stuffed, put, kept) = (2 * epp + 7, 5 * epp + 1, 9 * epp);
    let mapped = |e: u64| -> Vec<u64> { (0..16).map(|i| ((e << 16) + (i << 12)) | RW).collect() };
    for e in [stuffed, put, kept] {
        g.write_table(0, e * 16, &mapped(e))?;
    }
    ensure_eq!(g.stats()?.entries_valid, 3 * 16);
    // The attach of the empty table replays nothing and, as KVM's, clears nothing.
    dev.attach(&t, &g)?;
    for e in [stuffed, put, kept] {
        ensure_eq!(g.read(e * 16, 16)?, mapped(e));
    }
    t.stuff(stuffed - 3, 0, 8)?;
    t.put(put, 0)?;
    for e in [stuffed, put] {
        ensure_eq!((e, g.read(e * 16, 16)?), (e, vec![0; 16]));
    }
    ensure_eq!(g.read(kept * 16, 16)?, mapped(kept));
    ensure_eq!(g.stats()?.entries_valid, 16);
    ensure_eq!(t.stats()?.pages_allocated, 0);
    // A poison TCE (no permission bit) clears its entry in the groups too, and is stored.
    t.put(kept, 0x5_0000)?;
    ensure_eq!(g.read(kept * 16, 16)?, vec![0; 16]);
    ensure_eq!(t.get(kept)?, 0x5_0000);
    ensure_eq!(g.stats()?.entries_valid, 0);
    Ok(())
}

super::register! {
    mock attach_replays_exactly,
    mock replay_strategies_agree,
    mock no_replay_without_capability,
    mock double_attach_and_detach,
    mock updates_reach_every_group,
    mock attach_checks,
    mock mock_group_checks,
    mock mock_keep_levels,
    mock replay_checks_each_entry_of_a_run,
    mock replay_failure_rolls_back,
    mock ddw_128tib_replay,
    mock clear_reaches_entries_written_outside,
}
