// SPDX-License-Identifier: GPL-2.0

//! Cases of TCE tables: creation checks, the 128 TiB DDW without a memory blow-up, the hcalls'
//! round trips and argument checks, lazy allocation and the populated-pages bitmap.

use crate::fixture::{self, mem_free, DeviceExt};
use crate::uapi::*;
use crate::window::{TCE_PCI_READ, TCE_PCI_WRITE};
use crate::{ensure, ensure_eq, ensure_err, CaseResult};
use kvm_tce_replay::TceList;
use rustix::io::Errno;

const RW: u64 = TCE_PCI_READ | TCE_PCI_WRITE;

fn req(liobn: u64, page_shift: u32, offset: u64, size: u64) -> KvmCreateSpaprTce64 {
    KvmCreateSpaprTce64 {
        liobn,
        page_shift,
        flags: 0,
        offset,
        size,
    }
}

pub fn create_checks() -> CaseResult {
    let dev = fixture::open()?;
    let before = dev.mem_stats()?;
    for bad in [
        req(1, 11, 0, 1),
        req(1, 35, 0, 1),
        req(1, 16, 0, 0),
        req(1, 16, 1, u64::MAX >> 16),
        req(1, 16, u64::MAX, 2),
        req(1, 12, 0, (u64::MAX >> 12) + 1),
    ] {
        ensure_eq!(dev.create_tce_table(bad).err(), Some(Errno::INVAL.into()));
    }
    let mut flags = req(1, 16, 0, 1);
    flags.flags = 1;
    ensure_eq!(dev.create_tce_table(flags).err(), Some(Errno::INVAL.into()));
    ensure_eq!(dev.mem_stats()?, before);
    // The extremes are accepted.
    let _a = dev.create_tce_table(req(1, 12, 0, 1))?;
    let _b = dev.create_tce_table(req(2, 34, 0, u64::MAX >> 34))?;
    // A liobn is unique in its context while its table lives, and free again after.
    ensure_eq!(
        dev.create_tce_table(req(1, 16, 0, 8)).err(),
        Some(Errno::BUSY.into())
    );
    let other = fixture::open()?;
    let _c = other.create_tce_table(req(1, 16, 0, 8))?;
    drop(_a);
    let _d = dev.create_tce_table(req(1, 16, 0, 8))?;
    Ok(())
}

pub fn table_fd_flags() -> CaseResult {
    use rustix::fs::{fcntl_getfl, OFlags};
    use rustix::io::{fcntl_getfd, FdFlags};
    let dev = fixture::open()?;
    let t = dev.create_table(7, 16, 64)?;
    ensure!(
        fcntl_getfd(&t)?.contains(FdFlags::CLOEXEC),
        "table fd without O_CLOEXEC"
    );
    ensure_eq!(fcntl_getfl(&t)? & OFlags::ACCMODE, OFlags::RDWR);
    Ok(())
}

/// The 128 TiB DDW: 2^31 TCEs of 64 KiB, created without allocating anything sized
/// by the window.
pub fn ddw_128tib_memory() -> CaseResult {
    let dev = fixture::open()?;
    let before = dev.mem_stats()?;
    let free_before = mem_free();
    let t = dev.create_table(0x8000_0001, 16, 1 << 31)?;
    let after = dev.mem_stats()?;
    let free_after = mem_free();
    let bytes = after.table_bytes - before.table_bytes;
    crate::diag!(
        "128 TiB DDW: module accounting {bytes} B, MemFree delta {} KiB",
        free_before.saturating_sub(free_after) / 1024
    );
    // KVM would allocate a pages[] array of 2^31 / 512 slots (32 MiB with 4 KiB pages).
    ensure!(
        bytes <= 64 << 10,
        "creating the window took {bytes} B of module memory"
    );
    ensure!(
        free_before.saturating_sub(free_after) < 4 << 20,
        "MemFree fell by more than 4 MiB"
    );
    let s = t.stats()?;
    ensure_eq!(s.window_entries, 1u64 << 31);
    ensure_eq!(s.pages_allocated, 0);
    // Its last entry is reachable and empty.
    ensure_eq!(t.get((1 << 31) - 1)?, 0);
    ensure_eq!(t.stats()?.pages_allocated, 0);
    Ok(())
}

pub fn put_get_round_trip() -> CaseResult {
    let dev = fixture::open()?;
    let t = dev.create_tce_table(req(3, 16, 0x100, 4096))?;
    let epp = t.stats()?.entries_per_page;
    for (entry, tce) in [
        (0, 0x1_0000 | RW),
        (1, 0x2_0000 | TCE_PCI_READ),
        (4095, 0xabc_0000 | TCE_PCI_WRITE),
    ] {
        t.put(entry, tce)?;
        ensure_eq!(t.get(entry)?, tce);
    }
    ensure_eq!(t.get(2)?, 0);
    // Entries 0, 1 and 4095 live in the first and the last TCE page.
    ensure_eq!(t.stats()?.pages_allocated, if 4096 > epp { 2 } else { 1 });
    // A TCE without permission bits is stored as given (KVM lets userspace poison entries).
    t.put(5, 0x5_0000)?;
    ensure_eq!(t.get(5)?, 0x5_0000);
    t.put(0, 0)?;
    ensure_eq!(t.get(0)?, 0);
    Ok(())
}

pub fn put_checks() -> CaseResult {
    let dev = fixture::open()?;
    let t = dev.create_tce_table(req(3, 16, 0x100, 64))?;
    let base = t.ioba(0);
    // ioba: aligned, inside the window.
    for ioba in [base + 0x1000, base - (1 << 16), t.ioba(64), 0, !0xffff] {
        ensure_err!(t.put_ioba(ioba, RW | 0x1_0000), INVAL);
        ensure_err!(t.get_ioba(ioba), INVAL);
    }
    // A valid TCE: only READ/WRITE below the page size (poison may hold anything).
    for tce in [0x1_1000 | RW, 0x1_0000 | 4 | 2, 0x8000 | TCE_PCI_READ] {
        ensure_err!(t.put(0, tce), INVAL);
    }
    ensure_eq!(t.get(0)?, 0);
    ensure_eq!(t.stats()?.pages_allocated, 0);
    Ok(())
}

pub fn stuff_round_trip() -> CaseResult {
    let dev = fixture::open()?;
    let t = dev.create_table(3, 16, 1 << 20)?;
    let epp = t.stats()?.entries_per_page;
    // H_STUFF_TCE clears or poisons (no permission bit): a poison value is stored as is.
    t.stuff(100, 0x7_0000, 3 * epp)?;
    ensure_eq!(t.get(99)?, 0);
    ensure_eq!(t.get(100)?, 0x7_0000);
    ensure_eq!(t.get(100 + 3 * epp - 1)?, 0x7_0000);
    ensure_eq!(t.get(100 + 3 * epp)?, 0);
    ensure_eq!(t.stats()?.pages_allocated, 4);
    // Clearing the whole window walks only allocated pages and allocates nothing.
    t.stuff(0, 0, 1 << 20)?;
    ensure_eq!(t.get(100)?, 0);
    ensure_eq!(t.stats()?.pages_allocated, 4);
    // Checks: range inside the window, no permission bit.
    ensure_err!(t.stuff((1 << 20) - 2, 0, 3), INVAL);
    ensure_err!(t.stuff(0, 0x1000 | RW, 1), INVAL);
    ensure_err!(t.stuff_ioba(t.ioba(0) + 8, RW, 1), INVAL);
    ensure_err!(t.stuff(0, RW, u64::MAX), INVAL);
    Ok(())
}

pub fn indirect_round_trip() -> CaseResult {
    let dev = fixture::open()?;
    let t = dev.create_table(3, 12, 4096)?;
    let tces: Vec<u64> = (0..512).map(|i| ((i + 1) << 12) | RW).collect();
    t.put_indirect(1000, &tces)?;
    for (i, &tce) in tces.iter().enumerate() {
        ensure_eq!(t.get(1000 + i as u64)?, tce);
    }
    ensure_eq!(t.get(1512)?, 0);
    Ok(())
}

pub fn indirect_checks() -> CaseResult {
    let dev = fixture::open()?;
    let t = dev.create_table(3, 12, 4096)?;
    let mut list = TceList::new();
    for (i, e) in list.0.iter_mut().enumerate() {
        *e = ((i as u64 + 1) << 12) | RW;
    }
    let addr = list.0.as_ptr() as u64;
    // More than 512, a list not 4 KiB aligned, a range past the window, a bad list pointer.
    ensure_err!(t.put_indirect_raw(t.ioba(0), addr, 513), INVAL);
    ensure_err!(t.put_indirect_raw(t.ioba(0), addr + 8, 2), INVAL);
    ensure_err!(t.put_indirect_raw(t.ioba(4000), addr, 512), INVAL);
    ensure_err!(t.put_indirect_raw(t.ioba(0), 0x1000, 2), FAULT);
    // One bad TCE among good ones: nothing changes.
    list.0[300] = 0x123 | RW;
    ensure_err!(t.put_indirect_raw(t.ioba(0), addr, 512), INVAL);
    for e in [0, 299, 511] {
        ensure_eq!(t.get(e)?, 0);
    }
    ensure_eq!(t.stats()?.pages_allocated, 0);
    Ok(())
}

pub fn clear_does_not_allocate() -> CaseResult {
    let dev = fixture::open()?;
    let t = dev.create_table(3, 16, 1 << 24)?;
    t.put(12345, 0)?;
    t.stuff(0, 0, 1 << 24)?;
    t.put_indirect(4096, &[0; 512])?;
    ensure_eq!(t.stats()?.pages_allocated, 0);
    t.put(12345, RW)?;
    ensure_eq!(t.stats()?.pages_allocated, 1);
    Ok(())
}

pub fn populated_bitmap() -> CaseResult {
    let dev = fixture::open()?;
    let t = dev.create_table(3, 16, 1 << 24)?;
    let epp = t.populated(0, 1)?.entries_per_page();
    ensure_eq!(epp, t.stats()?.entries_per_page);
    let pages = (1u64 << 24) / epp;
    for page in [0, 1, 63, 64, 130, pages - 1] {
        t.put(page * epp + 3, RW)?;
    }
    let all = t.populated(0, pages)?;
    let set: Vec<u64> = crate::bitwalk::SetBits::new(all.words().iter().copied()).collect();
    ensure_eq!(set, vec![0, 1, 63, 64, 130, pages - 1]);
    // A sub-range is relative to its first page.
    let sub = t.populated(63, 3)?;
    ensure_eq!(sub.words(), [0b011]);
    ensure_eq!(t.populated(0, pages + 1).err(), Some(Errno::INVAL.into()));
    ensure_eq!(t.populated(pages, 1).err(), Some(Errno::INVAL.into()));
    ensure_eq!(t.populated(0, 0).err(), Some(Errno::INVAL.into()));
    Ok(())
}

pub fn debugfs_stats() -> CaseResult {
    const PATH: &str = "/sys/kernel/debug/kvm_tce_replay/tables";
    let dev = fixture::open()?;
    let t = dev.create_table(0xdeb0_0001, 16, 1 << 20)?;
    t.put(0, 0x1_0000 | RW)?;
    t.put(100_000, 0x1_0000 | RW)?;
    let text =
        std::fs::read_to_string(PATH).map_err(|e| crate::Stop::Fail(format!("{PATH}: {e}")))?;
    let line = text.lines().find(|l| l.starts_with("liobn 0xdeb00001:"));
    ensure!(
        line.is_some_and(|l| l.contains("pages_allocated 2 ")),
        "no line for the table in {text:?}"
    );
    ensure!(
        text.starts_with("memory: tables "),
        "no memory line in {text:?}"
    );
    drop(t);
    let text =
        std::fs::read_to_string(PATH).map_err(|e| crate::Stop::Fail(format!("{PATH}: {e}")))?;
    ensure!(
        !text.contains("liobn 0xdeb00001:"),
        "closed table still listed: {text:?}"
    );
    Ok(())
}

super::register! {
    device create_checks,
    device table_fd_flags,
    device ddw_128tib_memory,
    device put_get_round_trip,
    device put_checks,
    device stuff_round_trip,
    device indirect_round_trip,
    device indirect_checks,
    device clear_does_not_allocate,
    device populated_bitmap,
    device debugfs_stats,
}
