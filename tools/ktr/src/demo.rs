// SPDX-License-Identifier: GPL-2.0

//! `ktr demo`, `make run`'s scenario, the 128 TiB DDW of 2^31 64 KiB TCEs, told step by step. A VMM probes and
//! enables the capability, creates a 128 TiB window of 64 KiB TCEs, the guest maps 1 GiB, and an
//! IOMMU group attaches: the kernel replays the 16384 valid TCEs walking only the allocated TCE
//! pages. Needs the module loaded with mock=1 (the groups are mock groups).

use kvm_tce_replay::uapi::*;
use kvm_tce_replay::{Cap, Result, TceList, TceReplay, TceTableArgs};
use std::time::Instant;

/// The guest memory the demo registers: 2 TiB from guest-physical 0 (the guest's TCEs point at
/// 1 TiB), at a user address the mock backend never touches.
const GUEST_RAM: u64 = 2 << 40;

fn step() -> Result<bool> {
    let dev = TceReplay::new()?;
    dev.set_user_memory_region(0, 0, GUEST_RAM, rustix::param::page_size() as u64)?;
    println!(
        "demo: KVM_CHECK_EXTENSION(KVM_CAP_SPAPR_TCE_64) = {}",
        dev.check_extension_int(Cap::SpaprTce64)?
    );
    println!(
        "demo: KVM_CHECK_EXTENSION(KVM_CAP_SPAPR_TCE_REPLAY = {KVM_CAP_SPAPR_TCE_REPLAY:#x}) = {}",
        dev.check_extension_int(Cap::SpaprTceReplay)?
    );
    dev.enable_replay()?;
    println!("demo: KVM_ENABLE_CAP(KVM_CAP_SPAPR_TCE_REPLAY): the VMM can skip its own replay");

    let before = dev.mem_stats()?.table_bytes;
    let t = dev.create_tce_table(TceTableArgs::new(0x8000_0001, 16, 0, 1 << 31))?;
    let s = t.stats()?;
    println!(
        "demo: KVM_CREATE_SPAPR_TCE_64: {} TCEs of 64 KiB = {} TiB window, {} TCE pages of {} TCEs; module memory {} B (a KVM-style pages[] array: {} KiB)",
        s.window_entries,
        (s.window_entries << 16) >> 40,
        s.window_entries / s.entries_per_page,
        s.entries_per_page,
        dev.mem_stats()?.table_bytes - before,
        s.window_entries / s.entries_per_page * 8 / 1024
    );

    // The guest maps 1 GiB at bus address 1 TiB with H_PUT_TCE_INDIRECT, 512 TCEs at a time.
    let first = 1u64 << 24;
    let mut list = TceList::new();
    for chunk in 0..32u64 {
        for (i, e) in list.0.iter_mut().enumerate() {
            *e = (0x100_0000_0000 + ((chunk * 512 + i as u64) << 16)) | 3;
        }
        t.put_indirect_list(first + chunk * 512, &list, 512)?;
    }
    let s = t.stats()?;
    println!(
        "demo: guest put 16384 TCEs (1 GiB) at ioba {:#x}: {} TCE pages allocated",
        t.ioba(first),
        s.pages_allocated
    );

    for it_page_shift in [16, 12] {
        let g = dev.create_mock_group_for(&t, it_page_shift, 0)?;
        let start = Instant::now();
        dev.attach(&t, &g)?;
        let wall = start.elapsed();
        let s = t.stats()?;
        let gs = g.stats()?;
        println!(
            "demo: attach of an IOMMU group with {} KiB pages replayed {} TCEs into {} hardware entries, walking {} of {} TCE pages, in {} us (kernel {} us)",
            1 << (it_page_shift - 10),
            s.last_tces_replayed,
            s.last_hw_entries_written,
            s.last_pages_walked,
            s.window_entries / s.entries_per_page,
            wall.as_micros(),
            s.last_replay_ns / 1000
        );
        let sub = 1u64 << (16 - it_page_shift);
        let hw = g.read(first * sub, sub)?;
        let ok = gs.entries_valid == 16384 * sub && hw[0] == 0x100_0000_0000 | 3;
        println!(
            "demo: group holds {} valid entries, first one {:#x}: {}",
            gs.entries_valid,
            hw[0],
            if ok { "as expected" } else { "WRONG" }
        );
        if !ok {
            return Ok(false);
        }
    }
    println!(
        "demo: a VMM replaying by itself would read all {} entries of the window",
        1u64 << 31
    );
    // What `ktr stats` shows of the live table.
    match crate::stats::read(std::path::Path::new(crate::stats::TABLES)) {
        Ok(stats) => crate::stats::lines(&stats, "demo: debugfs: ")
            .iter()
            .for_each(|l| println!("{l}")),
        Err(e) => println!("demo: debugfs: {e}"),
    }
    Ok(true)
}

/// Runs the scenario; true if every check held.
pub fn run() -> std::result::Result<bool, Box<dyn std::error::Error>> {
    match step() {
        Ok(true) => {
            println!("demo: OK");
            Ok(true)
        }
        Ok(false) => Ok(false),
        Err(e) => {
            println!("demo: failed: {e}");
            Ok(false)
        }
    }
}
