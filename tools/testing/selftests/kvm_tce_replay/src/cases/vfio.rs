// SPDX-License-Identifier: GPL-2.0

//! The real IOMMU backend end to end (ppc64le): QEMU's `edu` PCI devices bound to vfio-pci, a
//! VFIO container with the sPAPR TCE v2 IOMMU and preregistered memory, as QEMU sets them up;
//! the module replays a table into the group's hardware table on attach, and the device's DMA
//! goes through the replayed TCEs. On a pseries guest the hardware table is QEMU's (H_PUT_TCE);
//! on a powernv host it is a PHB4's IODA table: multi-level, subpages, both windows of a PE.

use crate::uapi::*;
use crate::vfio::{
    devices, locked_kib, need_platform, pattern, step, Container, Edu, Group, Memory,
};
use crate::window::{TCE_PCI_READ as TCE_READ, TCE_PCI_WRITE as TCE_WRITE};
use crate::{diag, ensure, ensure_eq, ensure_err, CaseResult, Stop};
use kvm_tce_replay::{TceReplay, TceTable};
use rustix::io::Errno;
use std::time::{Duration, Instant};

/// Where the guest memory of every case sits in guest-physical space (2 MiB aligned).
const GPA: u64 = 0x1000_0000;
const KIB_64: u64 = 64 << 10;

/// A 64-bit window to create besides the default one: log2 of its IOMMU page, its size, its
/// table's levels.
#[derive(Clone, Copy)]
struct Ddw(u32, u64, u32);

/// QEMU's DDW shape for a small guest: 64 KiB pages, 1 GiB, one level.
const DDW_64K: Ddw = Ddw(16, 1 << 30, 1);

/// A context set up as QEMU sets one up for VFIO: the groups of `n` edu devices in one
/// container, guest memory preregistered and in slot 0 at [`GPA`], a 64-bit window created (which
/// makes VFIO create the default 32-bit window first), replay enabled.
struct Rig {
    groups: Vec<Group>,
    container: Container,
    mem: Memory,
    dev: TceReplay,
    /// The 64-bit window's bus address, or why it could not be created (a pseries guest may
    /// offer none).
    ddw: std::result::Result<u64, Errno>,
    /// The process's locked memory (VmLck, KiB) before the preregistration: VFIO charges the
    /// windows' tables and the preregistered memory there, and gives the memory's charge back
    /// only when it releases the memory, once nothing maps it.
    unregistered_kib: u64,
}

impl Rig {
    fn new(n: usize, len: usize, huge: bool, ddw: Ddw) -> std::result::Result<Self, Stop> {
        let bdfs = devices(n)?;
        let groups = bdfs
            .iter()
            .map(|b| Group::open(b))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let container = Container::new(&groups.iter().collect::<Vec<_>>())?;
        let ddw = container.create_window(ddw.0, ddw.1, ddw.2);
        let mem = step("guest memory", Memory::new(len, huge))?;
        let unregistered_kib = locked_kib();
        step(
            "register memory",
            container.register(mem.addr(), mem.len(), true),
        )?;
        let dev = TceReplay::new()?;
        dev.set_user_memory_region(0, GPA, mem.len(), mem.addr())?;
        dev.enable_replay()?;
        Ok(Self {
            groups,
            container,
            mem,
            dev,
            ddw,
            unregistered_kib,
        })
    }

    /// A TCE table of 2^`page_shift`-byte pages over the bus range `start`, `size` bytes.
    fn table(
        &self,
        liobn: u64,
        page_shift: u32,
        start: u64,
        size: u64,
    ) -> kvm_tce_replay::Result<TceTable> {
        self.dev.create_tce_table(KvmCreateSpaprTce64 {
            liobn,
            page_shift,
            flags: 0,
            offset: start >> page_shift,
            size: size >> page_shift,
        })
    }

    /// A table over the default 32-bit window (4 KiB pages).
    fn table32(&self, liobn: u64) -> kvm_tce_replay::Result<TceTable> {
        let (start, size) = self.container.dma32();
        self.table(liobn, 12, start, size)
    }

    /// The 64-bit window, or a skip.
    fn ddw(&self) -> std::result::Result<u64, Stop> {
        self.ddw.map_err(|e| {
            Stop::Skip(format!(
                "VFIO_IOMMU_SPAPR_TCE_CREATE of the 64-bit window: {e:?}"
            ))
        })
    }

    fn attach(&self, table: &TceTable, group: usize) -> rustix::io::Result<()> {
        Ok(self.dev.attach(table, &self.groups[group].fd)?)
    }

    fn detach(&self, table: &TceTable, group: usize) -> rustix::io::Result<()> {
        Ok(self.dev.detach(table, &self.groups[group].fd)?)
    }

    /// `VFIO_IOMMU_SPAPR_[UN]REGISTER_MEMORY` of all the guest memory.
    fn register(&self, on: bool) -> rustix::io::Result<()> {
        self.container.register(self.mem.addr(), self.mem.len(), on)
    }

    /// Guest memory at `at` after the device copied 4 KiB from bus address `from` into it
    /// (through bus address `to`, which maps it): the sink is cleared first.
    fn copied(
        &self,
        edu: &Edu,
        from: u64,
        to: u64,
        at: usize,
    ) -> std::result::Result<Vec<u8>, Stop> {
        self.mem.write(at, &[0; 4096]);
        step("DMA through the TCEs", edu.copy(from, to))?;
        Ok(self.mem.read(at, 4096))
    }
}

pub fn real_vfio_group() -> CaseResult {
    need_platform(false)?;
    let page = rustix::param::page_size() as u64;
    let rig = Rig::new(1, 2 * page as usize, false, DDW_64K)?;
    let (start, size) = rig.container.dma32();
    diag!(
        "edu {} in IOMMU group {}: 32-bit window {start:#x}+{size:#x}, 64-bit window {:?}",
        rig.groups[0].bdf,
        rig.groups[0].number,
        rig.ddw
    );
    let buf = &rig.mem;
    let pattern = pattern(0);
    buf.write(0, &pattern);
    let dev = &rig.dev;
    let table = rig.table32(0x8000_0000)?;
    let (src, dst, late) = (0x10000u64, 0x20000u64, 0x30000u64);
    table.put_ioba(start + src, GPA | TCE_READ)?;
    table.put_ioba(start + dst, (GPA + page) | TCE_WRITE)?;
    // A TCE outside every slot is refused, as KVM's H_PUT_TCE does.
    ensure_err!(
        table.put_ioba(start + 0x40000, (GPA + 8 * page) | TCE_READ),
        FAULT
    );
    // A TCE in a slot whose memory is not preregistered is taken while no group is attached;
    // the replay then fails with EFAULT and the group ends detached.
    let other = step("unregistered memory", Memory::new(page as usize, false))?;
    dev.set_user_memory_region(1, GPA + 4 * page, page, other.addr())?;
    table.put_ioba(start + 0x40000, (GPA + 4 * page) | TCE_READ)?;
    ensure_eq!(rig.attach(&table, 0), Err(Errno::FAULT));
    ensure_eq!(rig.detach(&table, 0), Err(Errno::NOENT));
    table.put_ioba(start + 0x40000, 0)?;

    step("attach", rig.attach(&table, 0))?;
    let st = table.stats()?;
    ensure_eq!((st.last_tces_replayed, st.last_hw_entries_written), (2, 2));
    // The hardware table takes one TCE table: another of the same window is refused.
    let second = rig.table32(0x8000_0001)?;
    ensure_eq!(rig.attach(&second, 0), Err(Errno::BUSY));
    ensure_eq!(rig.detach(&second, 0), Err(Errno::NOENT));
    drop(second);

    // The device's DMA goes through the replayed TCEs: memory -> device -> memory.
    let edu = step("open the device", Edu::open(&rig.groups[0]))?;
    let b = page as usize;
    ensure!(
        rig.copied(&edu, start + src, start + dst, b)? == pattern,
        "DMA through the replayed TCEs lost the data"
    );
    // An update after the attach reaches the hardware table too.
    table.put_ioba(start + late, (GPA + page + 4096) | TCE_WRITE)?;
    step("DMA from the device", edu.dma(start + late, 4096, false))?;
    ensure!(
        buf.read(b + 4096, 4096) == pattern,
        "DMA through an updated TCE lost the data"
    );
    diag!("edu DMA through 2 replayed TCEs and 1 updated TCE: 12 KiB moved intact");

    // Detach clears the hardware entries: the device's writes no longer reach memory.
    step("detach", rig.detach(&table, 0))?;
    buf.write(b + 4096, &[0; 4096]);
    step("DMA after detach", edu.dma(start + late, 4096, false))?;
    ensure!(
        buf.read(b + 4096, 4096).iter().all(|&x| x == 0),
        "a DMA reached memory after detach"
    );
    step("unregister memory", rig.register(false))?;
    Ok(())
}

/// TCEs of 64 KiB over a PHB window of 4 KiB IOMMU pages: each TCE is 16 hardware entries, and
/// every one of them moves its own 4 KiB of the guest page.
pub fn vfio_subpages() -> CaseResult {
    need_platform(true)?;
    let window = 1u64 << 30;
    let rig = Rig::new(1, 5 * KIB_64 as usize, false, Ddw(12, window, 1))?;
    let start = rig.ddw()?;
    let table = rig.table(0x8000_0001, 16, start, window)?;
    let entries = [3u64, 1000, 9000, 16383];
    for (p, &e) in (0u64..).zip(&entries) {
        for s in 0..16 {
            rig.mem
                .write(((p * 16 + s) * 4096) as usize, &pattern(p * 16 + s));
        }
        table.put(e, (GPA + p * KIB_64) | TCE_READ)?;
    }
    let sink = 7;
    table.put(sink, (GPA + 4 * KIB_64) | TCE_WRITE)?;
    step("attach", rig.attach(&table, 0))?;
    let st = table.stats()?;
    ensure_eq!((st.last_tces_replayed, st.last_hw_entries_written), (5, 80));
    let edu = step("open the device", Edu::open(&rig.groups[0]))?;
    for (p, &e) in (0u64..).zip(&entries) {
        for s in 0..16 {
            let from = start + (e << 16) + (s << 12);
            let got = rig.copied(&edu, from, start + (sink << 16), 4 * KIB_64 as usize)?;
            ensure!(
                got == pattern(p * 16 + s),
                "hardware entry {s} of TCE {e} did not move its 4 KiB"
            );
        }
    }
    diag!(
        "64 hardware entries of 4 TCEs of 64 KiB over 4 KiB IOMMU pages: each moved its own 4 KiB"
    );
    step("detach", rig.detach(&table, 0))?;
    step("unregister memory", rig.register(false))?;
    Ok(())
}

/// A two-level PHB table of 2^24 entries (a 64 GiB window of 4 KiB pages), its lower levels
/// allocated as the replay writes them: 4096 TCEs spread over it, replayed, sampled by DMA.
pub fn vfio_multilevel_window() -> CaseResult {
    need_platform(true)?;
    let window = 1u64 << 36;
    let rig = Rig::new(1, 2 * KIB_64 as usize, false, Ddw(12, window, 2))?;
    ensure!(
        rig.container.info.ddw_levels >= 2,
        "the PHB offers {} levels",
        rig.container.info.ddw_levels
    );
    let start = rig.ddw()?;
    let table = rig.table(0x8000_0001, 12, start, window)?;
    const N: u64 = 4096;
    let entry = |i: u64| i * 4096 + (i * 7 % 4096);
    for b in 0..16 {
        rig.mem.write((b * 4096) as usize, &pattern(b));
    }
    for i in 0..N {
        table.put(entry(i), (GPA + (i % 16) * 4096) | TCE_READ)?;
    }
    let sink = 1;
    table.put(sink, (GPA + KIB_64) | TCE_WRITE)?;
    step("attach", rig.attach(&table, 0))?;
    let st = table.stats()?;
    ensure_eq!(
        (st.last_tces_replayed, st.last_hw_entries_written),
        (N + 1, N + 1)
    );
    let edu = step("open the device", Edu::open(&rig.groups[0]))?;
    for i in (0..N).step_by(128).chain([N - 1]) {
        let got = rig.copied(
            &edu,
            start + (entry(i) << 12),
            start + (sink << 12),
            KIB_64 as usize,
        )?;
        ensure!(
            got == pattern(i % 16),
            "TCE {i} (entry {}) did not move its 4 KiB",
            entry(i)
        );
    }
    diag!(
        "{} TCEs over 2^24 entries of a 2-level table replayed in {} us; 33 checked by DMA",
        N + 1,
        st.last_replay_ns / 1000
    );
    step("detach", rig.detach(&table, 0))?;
    step("unregister memory", rig.register(false))?;
    Ok(())
}

/// Both windows of one PE, the 32-bit default one and the 64-bit DDW, attached to two TCE
/// tables: each replayed into its own hardware table, the device's DMA through both.
pub fn vfio_both_windows() -> CaseResult {
    need_platform(true)?;
    let rig = Rig::new(1, 4 * KIB_64 as usize, false, DDW_64K)?;
    let start64 = rig.ddw()?;
    let (start32, _) = rig.container.dma32();
    let t32 = rig.table32(0x8000_0000)?;
    let t64 = rig.table(0x8000_0001, 16, start64, DDW_64K.1)?;
    rig.mem.write(0, &pattern(1));
    rig.mem.write(2 * KIB_64 as usize, &pattern(2));
    t32.put_ioba(start32 + 0x10000, GPA | TCE_READ)?;
    t32.put_ioba(start32 + 0x20000, (GPA + KIB_64) | TCE_WRITE)?;
    t64.put(5, (GPA + 2 * KIB_64) | TCE_READ)?;
    t64.put(9, (GPA + 3 * KIB_64) | TCE_WRITE)?;
    step("attach the 32-bit window's table", rig.attach(&t32, 0))?;
    step("attach the 64-bit window's table", rig.attach(&t64, 0))?;
    for t in [&t32, &t64] {
        let st = t.stats()?;
        ensure_eq!((st.last_tces_replayed, st.groups_attached), (2, 1));
    }
    let edu = step("open the device", Edu::open(&rig.groups[0]))?;
    let got = rig.copied(&edu, start32 + 0x10000, start32 + 0x20000, KIB_64 as usize)?;
    ensure!(
        got == pattern(1),
        "DMA through the 32-bit window lost the data"
    );
    let got = rig.copied(
        &edu,
        start64 + (5 << 16),
        start64 + (9 << 16),
        3 * KIB_64 as usize,
    )?;
    ensure!(
        got == pattern(2),
        "DMA through the 64-bit window lost the data"
    );
    diag!("one PE, two windows, two tables, each replayed: DMA through both intact");
    step("detach", rig.detach(&t32, 0))?;
    step("detach", rig.detach(&t64, 0))?;
    step("unregister memory", rig.register(false))?;
    Ok(())
}

/// Two threads attach and detach one VFIO group to one table, each call by its own fd lookup,
/// over 4096 valid TCEs: every call succeeds, and afterwards the group's hardware table is the
/// table's (DMA through it) and holds exactly its mappings. The memory's preregistration is the
/// oracle of the mapping references: VFIO's unregistration succeeds even while the memory is
/// mapped, but only releases it (and its locked-memory charge, VmLck) once nothing maps it.
pub fn vfio_attach_detach_race() -> CaseResult {
    need_platform(false)?;
    let rig = Rig::new(1, 2 * KIB_64 as usize, false, DDW_64K)?;
    let (start, _) = rig.container.dma32();
    let table = rig.table32(0x8000_0000)?;
    const N: u64 = 4096;
    for b in 0..16 {
        rig.mem.write((b * 4096) as usize, &pattern(b));
    }
    for i in 0..N {
        table.put(i, (GPA + (i % 16) * 4096) | TCE_READ)?;
    }
    let sink = N;
    table.put(sink, (GPA + KIB_64) | TCE_WRITE)?;
    // 10^4 rounds in all, 5000 on each thread (about a minute under TCG), or as many as fit in
    // three minutes.
    let deadline = Instant::now() + Duration::from_secs(180);
    let (dev, fd) = (&rig.dev, &rig.groups[0].fd);
    let rounds = || -> std::result::Result<u32, String> {
        let mut n = 0;
        while n < 5_000 && Instant::now() < deadline {
            dev.attach(&table, fd)
                .map_err(|e| format!("attach {n}: {e:?}"))?;
            dev.detach(&table, fd)
                .map_err(|e| format!("detach {n}: {e:?}"))?;
            n += 1;
        }
        Ok(n)
    };
    let done = std::thread::scope(|s| {
        let threads: Vec<_> = (0..2).map(|_| s.spawn(rounds)).collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Err("panicked".into())))
            .collect::<Vec<_>>()
    });
    let mut total = 0;
    for d in done {
        total += d.map_err(Stop::Fail)?;
    }
    ensure_eq!(table.stats()?.groups_attached, 0);
    ensure!(total > 0, "no round ran");
    // Nothing is attached: nothing of the table is mapped, the memory is released.
    step("unregister memory with nothing mapped", rig.register(false))?;
    ensure_eq!(locked_kib(), rig.unregistered_kib);
    step("register memory again", rig.register(true))?;
    step("attach", rig.attach(&table, 0))?;
    let edu = step("open the device", Edu::open(&rig.groups[0]))?;
    for i in (0..N).step_by(64).chain([N - 1]) {
        let got = rig.copied(
            &edu,
            start + (i << 12),
            start + (sink << 12),
            KIB_64 as usize,
        )?;
        ensure!(
            got == pattern(i % 16),
            "TCE {i} moved no data after the race"
        );
    }
    step("detach", rig.detach(&table, 0))?;
    step(
        "unregister memory after the last detach",
        rig.register(false),
    )?;
    ensure_eq!(locked_kib(), rig.unregistered_kib);
    diag!("{total} attach/detach rounds on 2 threads over {N} TCEs; 65 TCEs checked by DMA");
    Ok(())
}

/// A user address that is not aligned to the IOMMU page (a slot that starts 64 KiB into a 2 MiB
/// huge page, with 2 MiB IOMMU pages) is refused with EFAULT, as VFIO's MAP_DMA refuses such
/// a vaddr: the TCE would point into the middle of a page (on powernv, pnv_tce_xchg's BUG_ON).
/// Needs 2 MiB huge pages, which QEMU's powernv9 does not offer (its device tree has no radix
/// page sizes but 4 KiB and 64 KiB), and 2 MiB IOMMU pages: it runs on pseries.
pub fn vfio_unaligned_user_address() -> CaseResult {
    need_platform(false)?;
    let huge = 2u64 << 20;
    if let Err(e) = std::fs::write("/proc/sys/vm/nr_hugepages", "2") {
        return Err(Stop::Skip(format!("no hugetlbfs pages: {e}")));
    }
    // Two huge pages, preregistered; slot 1 is one IOMMU page of them 64 KiB in, all of it
    // preregistered memory: only its alignment is wrong.
    let rig = Rig::new(1, 2 * huge as usize, true, Ddw(21, 1 << 30, 1))?;
    if rig.container.info.ddw_pgsizes & huge == 0 {
        return Err(Stop::Skip(format!(
            "the PHB offers no 2 MiB IOMMU pages: {:#x}",
            rig.container.info.ddw_pgsizes
        )));
    }
    let start = rig.ddw()?;
    let table = rig.table(0x8000_0001, 21, start, 1 << 30)?;
    let gpa = 0x2000_0000;
    rig.dev
        .set_user_memory_region(1, gpa, huge, rig.mem.addr() + KIB_64)?;
    step("attach", rig.attach(&table, 0))?;
    ensure_err!(table.put(1, gpa | TCE_READ), FAULT);
    ensure_eq!(table.get(1)?, 0);
    // The aligned slot of the same memory maps.
    table.put(0, GPA | TCE_READ)?;
    step("detach", rig.detach(&table, 0))?;
    step("unregister memory", rig.register(false))?;
    Ok(())
}

/// Two groups in one container share its hardware tables: each attach holds its own group, and
/// detaching one lets it go, so that it can be closed and opened again (a VMM's hot-unplug).
pub fn vfio_detached_group_reopens() -> CaseResult {
    need_platform(true)?;
    let mut rig = Rig::new(2, KIB_64 as usize, false, DDW_64K)?;
    let (start, _) = rig.container.dma32();
    let table = rig.table32(0x8000_0000)?;
    table.put_ioba(start, GPA | TCE_READ)?;
    step("attach group 1", rig.attach(&table, 0))?;
    step("attach group 2", rig.attach(&table, 1))?;
    ensure_eq!(table.stats()?.groups_attached, 1);
    step("detach group 1", rig.detach(&table, 0))?;
    let first = rig.groups.remove(0);
    let number = first.number.clone();
    drop(first);
    let again = step(
        "open group 1 again after its detach and close",
        Group::open_number(&number),
    )?;
    drop(again);
    step("detach group 2", rig.detach(&table, 0))?;
    ensure_eq!(table.stats()?.groups_attached, 0);
    step("unregister memory", rig.register(false))?;
    Ok(())
}

/// After VFIO_IOMMU_SPAPR_TCE_REMOVE of an attached window its hardware table is no longer the
/// group's: a TCE for it is refused (ENXIO) rather than written into an orphaned table, and
/// closing everything unpins all the memory.
pub fn vfio_removed_window() -> CaseResult {
    need_platform(false)?;
    let before = locked_kib();
    {
        let rig = Rig::new(1, 2 * KIB_64 as usize, false, DDW_64K)?;
        let start = rig.ddw()?;
        let table = rig.table(0x8000_0001, 16, start, DDW_64K.1)?;
        table.put(1, GPA | TCE_READ)?;
        step("attach", rig.attach(&table, 0))?;
        step("remove the window", rig.container.remove_window(start))?;
        ensure_err!(table.put(2, (GPA + KIB_64) | TCE_READ), NXIO);
        ensure_eq!(table.get(2)?, 0);
        let during = locked_kib();
        diag!("locked memory: {before} KiB before, {during} KiB registered");
    }
    ensure_eq!(locked_kib(), before);
    Ok(())
}

/// A group in no container still has the kernel's own DMA tables: attaching it is refused
/// (EINVAL) rather than writing the host's table (and reaching pnv_tce_useraddrptr's
/// WARN_ON_ONCE for a table without a userspace view).
pub fn vfio_group_outside_a_container() -> CaseResult {
    need_platform(false)?;
    let bdf = devices(1)?;
    let group = Group::open(&bdf[0])?;
    let dev = TceReplay::new()?;
    let mem = step("guest memory", Memory::new(KIB_64 as usize, false))?;
    dev.set_user_memory_region(0, GPA, mem.len(), mem.addr())?;
    dev.enable_replay()?;
    let table = dev.create_tce_table(KvmCreateSpaprTce64 {
        liobn: 0x8000_0000,
        page_shift: 12,
        flags: 0,
        offset: 0,
        size: 1 << 18,
    })?;
    let attached = dev.attach(&table, &group.fd);
    if attached.is_ok() {
        // What an attach to the host's table lets through.
        let put = table.put(1, GPA | TCE_READ);
        return Err(Stop::Fail(format!(
            "a group in no container attached; then a PUT gave {put:?}"
        )));
    }
    ensure_err!(attached, INVAL);
    Ok(())
}

/// H_STUFF_TCE(0) over a range whose TCE pages were never allocated still clears the attached
/// group's entries there, as KVM unmaps every entry of the range: a mapping VFIO made itself
/// (MAP_DMA) before the attach is gone, and its memory reference with it.
pub fn vfio_stuff_clears_vfio_mappings() -> CaseResult {
    need_platform(false)?;
    let rig = Rig::new(1, KIB_64 as usize, false, DDW_64K)?;
    let (start, _) = rig.container.dma32();
    let iova = start + 0x50000;
    step(
        "VFIO_IOMMU_MAP_DMA",
        rig.container.map_dma(rig.mem.addr(), iova, 4096),
    )?;
    let edu = step("open the device", Edu::open(&rig.groups[0]))?;
    rig.mem.write(0, &pattern(9));
    step("DMA to the device", edu.dma(iova, 4096, true))?;
    rig.mem.write(0, &[0; 4096]);
    step("DMA from the device", edu.dma(iova, 4096, false))?;
    ensure!(
        rig.mem.read(0, 4096) == pattern(9),
        "VFIO's own mapping moved no data"
    );
    let table = rig.table32(0x8000_0000)?;
    step("attach", rig.attach(&table, 0))?;
    table.stuff_ioba(start + 0x40000, 0, 32)?;
    rig.mem.write(0, &[0; 4096]);
    step("DMA after the stuff", edu.dma(iova, 4096, false))?;
    ensure!(
        rig.mem.read(0, 4096).iter().all(|&b| b == 0),
        "a DMA through VFIO's mapping reached memory after H_STUFF_TCE(0) over it"
    );
    step("detach", rig.detach(&table, 0))?;
    step("unregister memory", rig.register(false))?;
    Ok(())
}

super::register! {
    device real_vfio_group,
    device vfio_subpages,
    device vfio_multilevel_window,
    device vfio_both_windows,
    device vfio_attach_detach_race,
    device vfio_unaligned_user_address,
    device vfio_detached_group_reopens,
    device vfio_removed_window,
    device vfio_stuff_clears_vfio_mappings,
    device vfio_group_outside_a_container,
}
