// SPDX-License-Identifier: GPL-2.0

//! Cases of hostile input, one per defect class of the hardening review (Documentation/
//! security.rst lists which guards what): junk a guest writes through the mmapped table, an
//! update one group cannot take, a process over its RLIMIT_MEMLOCK, a VMM killed in the middle
//! of a huge replay, another process driving a context's fds, KVM's memory-slot rules and
//! poison TCEs, and a VMM that only reads its mapping of the table.

use crate::cases::attach::check_group;
use crate::fixture::{self, covering, DeviceExt, TableExt, GUEST_RAM};
use crate::uapi::*;
use crate::uapi_test::*;
use crate::{diag, ensure, ensure_eq, ensure_err, CaseResult, Stop};
use kvm_tce_replay::{mock_levels, MockGroup, TceReplay};
use rustix::io::Errno;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

const RW: u64 = 3;

/// Values a guest may write through the mapping that `H_PUT_TCE` would refuse: all ones (its
/// address overflows when split into subpages), junk below the page size with a permission bit
/// (powernv's `pnv_tce_xchg` BUG_ONs on those), and a valid-looking TCE outside guest memory.
const JUNK: [u64; 3] = [u64::MAX, 0x1_0000 | 0x800 | 1, GUEST_RAM | RW];

/// Defect 1: the replay checks every entry it reads like `H_PUT_TCE` does, and skips (and
/// counts) the ones it refuses instead of crashing or writing junk into the hardware table.
pub fn junk_through_mmap_is_skipped() -> CaseResult {
    let dev = fixture::open()?;
    dev.enable_replay()?;
    let t = dev.create_table(1, 16, 1 << 16)?;
    let m = t.map(0, 1)?;
    let good = 0x2_0000 | RW;
    let mut expected = BTreeMap::new();
    for (i, &junk) in JUNK.iter().enumerate() {
        m.write(i, junk);
        expected.insert(i as u64, 0);
    }
    let at = JUNK.len() as u64;
    m.write(at as usize, good);
    expected.insert(at, good);
    // 4 KiB hardware pages first: splitting all ones into them overflows.
    for it_page_shift in [12, 16] {
        let g = dev.create_group_for(&t, it_page_shift)?;
        dev.attach(&t, &g)?;
        check_group(&g, &t, it_page_shift, &expected)?;
        let s = t.stats()?;
        ensure_eq!(
            (s.last_tces_replayed, s.last_tces_skipped),
            (1, JUNK.len() as u64)
        );
        // The guest's view keeps what it wrote.
        ensure_eq!(t.get(0)?, u64::MAX);
        // An update of a junk entry through the hcalls reaches the group.
        t.put(1, 0x9_0000 | RW)?;
        let mut now = expected.clone();
        now.insert(1, 0x9_0000 | RW);
        check_group(&g, &t, it_page_shift, &now)?;
        m.write(1, JUNK[1]);
        dev.detach(&t, &g)?;
    }
    Ok(())
}

/// A user pointer into kernel space (an `H_PUT_TCE_INDIRECT` list) is EFAULT on every platform
/// and stores nothing. powerpc's copies mask such an address to 0x8000000000000000 and count on
/// that faulting, which it did not on QEMU's powernv9 host (hypervisor mode, radix): the fuzzer
/// found the module reading a list at 0xc000000000000000 there.
pub fn kernel_addresses_are_efault() -> CaseResult {
    let dev = fixture::open()?;
    let t = dev.create_table(1, 16, 1 << 16)?;
    for addr in [
        0xc000_0000_0000_0000u64,
        0x8000_0000_0000_0000,
        0xffff_ffff_ffff_0000,
    ] {
        for npages in [1, 512] {
            ensure_err!(t.put_indirect_raw(0, addr, npages), FAULT);
        }
    }
    ensure_eq!(t.get(0)?, 0);
    ensure_eq!(t.stats()?.pages_allocated, 0);
    Ok(())
}

/// Defect 2: an update that one attached group cannot take (its hardware table cannot allocate)
/// fails, leaves the guest-visible entry as it was, and leaves every group holding what the
/// table holds: for `H_PUT_TCE`, and for the failing TCE of `H_PUT_TCE_INDIRECT` (the TCEs
/// before it are stored, as KVM does).
pub fn failed_update_changes_nothing() -> CaseResult {
    let dev = fixture::open()?;
    dev.enable_replay()?;
    let t = dev.create_table(1, 16, 1 << 20)?;
    let old = 0x5_0000 | RW;
    t.put(0, old)?;
    let (a, b) = (dev.create_group_for(&t, 12)?, dev.create_group_for(&t, 12)?);
    dev.attach(&t, &a)?;
    dev.attach(&t, &b)?;
    let mut expected = BTreeMap::from([(0, old)]);
    // Entry `far` lies in a hardware leaf neither group has: writing it allocates.
    let far = 900_000;
    expected.insert(far, 0);
    b.fail_alloc(1)?;
    ensure_err!(t.put(far, 0x7_0000 | RW), NOMEM);
    ensure_eq!(t.get(far)?, 0);
    for g in [&a, &b] {
        check_group(g, &t, 12, &expected)?;
    }
    // INDIRECT of three TCEs from `e`, the last entry of a hardware leaf both groups have: `e`
    // lands, `e + 1` (a new leaf) fails in group b, `e + 2` is never reached.
    let leaf = (rustix::param::page_size() as u64 / 8) >> (16 - 12);
    let e = 1000 * leaf - 1;
    t.put(e, 0x10_0000 | RW)?;
    b.fail_alloc(1)?;
    let mut list = kvm_tce_replay::TceList::new();
    list.0[..3].copy_from_slice(&[0x11_0000 | RW, 0x12_0000 | RW, 0x13_0000 | RW]);
    ensure_err!(
        t.put_indirect_raw(t.ioba(e), list.0.as_ptr() as u64, 3),
        NOMEM
    );
    expected.extend([(e, 0x11_0000 | RW), (e + 1, 0), (e + 2, 0)]);
    ensure_eq!(
        (t.get(e)?, t.get(e + 1)?, t.get(e + 2)?),
        (0x11_0000 | RW, 0, 0)
    );
    for g in [&a, &b] {
        check_group(g, &t, 12, &expected)?;
    }
    // With the failure gone, the same update reaches everything.
    t.put(far, 0x7_0000 | RW)?;
    expected.insert(far, 0x7_0000 | RW);
    for g in [&a, &b] {
        check_group(g, &t, 12, &expected)?;
    }
    Ok(())
}

/// Run in a child process: registers guest memory, limits RLIMIT_MEMLOCK to `limit` bytes, drops
/// root (and with it CAP_IPC_LOCK, which bypasses the limit), then puts one TCE into each TCE
/// page until a put fails. Prints how many pages it got and the errno.
pub fn child_memlock(limit: u64) -> ! {
    use rustix::process::{setrlimit, Resource, Rlimit};
    let run = || -> rustix::io::Result<(u64, i32)> {
        let dev = fixture::open()?;
        let t = dev.create_table(1, 16, 1 << 24)?;
        let epp = t.stats()?.entries_per_page;
        setrlimit(
            Resource::Memlock,
            Rlimit {
                current: Some(limit),
                maximum: Some(limit),
            },
        )?;
        rustix::thread::set_thread_res_uid(
            rustix::process::Uid::from_raw(65534),
            rustix::process::Uid::from_raw(65534),
            rustix::process::Uid::from_raw(65534),
        )?;
        for page in 0..(1 << 24) / epp {
            if let Err(e) = t.put(page * epp, (page << 16) | RW) {
                return Ok((page, e.raw_os_error()));
            }
        }
        Ok(((1 << 24) / epp, 0))
    };
    match run() {
        Ok((pages, e)) => {
            println!("{pages} {e}");
            std::process::exit(0)
        }
        Err(e) => {
            println!("setup failed: {e:?}");
            std::process::exit(3)
        }
    }
}

/// Defect 3: TCE pages are charged to the opener's RLIMIT_MEMLOCK, page by page as they are
/// allocated (the window's size costs nothing), and `H_STUFF_TCE` with permission bits is
/// refused as in KVM.
pub fn memlock_bounds_tce_pages() -> CaseResult {
    let limit = 64 * 1024;
    let out = Command::new("/proc/self/exe")
        .args(["child-memlock", &limit.to_string()])
        .output()
        .map_err(|e| Stop::Fail(format!("spawning the child: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.code() == Some(0),
        "the child ended with {} ({text}{})",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<i64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let pages = limit / rustix::param::page_size() as i64;
    diag!("RLIMIT_MEMLOCK of {limit} B: the child got {text}");
    ensure_eq!(got, vec![pages, Errno::NOMEM.raw_os_error() as i64]);

    let dev = fixture::open()?;
    let t = dev.create_table(1, 16, 1 << 16)?;
    for tce in [0x1_0000 | 1, 0x1_0000 | 2, RW] {
        ensure_err!(t.stuff(0, tce, 4), INVAL);
    }
    ensure_eq!(t.stats()?.pages_allocated, 0);
    Ok(())
}

/// Run in a child process: opens its own context, creates a window of four 16 GiB TCEs, puts
/// them and attaches the inherited mock group `groupfd` of 4 KiB pages: 2^24 hardware entries.
pub fn child_attach(groupfd: i32) -> ! {
    let run = || -> kvm_tce_replay::Result<()> {
        let dev = fixture::open()?;
        dev.enable_replay()?;
        let t = dev.create_table(1, 34, 4)?;
        for i in 0..4 {
            t.put(i, ((i + 1) << 34) | RW)?;
        }
        // SAFETY: the parent passed this fd open, without O_CLOEXEC, for us to own.
        let group = MockGroup::from(unsafe { OwnedFd::from_raw_fd(groupfd) });
        println!("attaching");
        dev.attach(&t, &group)?;
        println!("attached");
        Ok(())
    };
    std::process::exit(if run().is_ok() { 0 } else { 3 })
}

/// A mock group of `hw_entries` hardware entries of 4 KiB, and a child running `mode` on it
/// (the group's fd inherited), once it has said `ready` on its stdout (the rest of which is
/// the reader's).
fn group_and_child(
    hw_entries: u64,
    mode: &str,
    ready: &str,
) -> Result<
    (
        MockGroup,
        std::process::Child,
        BufReader<std::process::ChildStdout>,
    ),
    Stop,
> {
    let dev = fixture::open()?;
    let g = dev.create_mock_group(&KtrMockGroup {
        it_page_shift: 12,
        levels: mock_levels(hw_entries),
        it_offset: 0,
        it_size: hw_entries,
        flags: 0,
    })?;
    rustix::io::fcntl_setfd(&g, rustix::io::FdFlags::empty())?;
    let mut child = Command::new("/proc/self/exe")
        .args([mode, &g.as_raw_fd().to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Stop::Fail(format!("spawning the child: {e}")))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or(Stop::Fail("no stdout".into()))?;
    let mut reader = BufReader::new(stdout);
    let _ = reader.read_line(&mut line);
    if line.trim() != ready {
        let _ = child.wait();
        return Err(Stop::Fail(format!("the child said {line:?}")));
    }
    Ok((g, child, reader))
}

/// What the group `s` of a child killed in the middle of `call` must show: the call did not
/// return (the child said nothing more, `rest`), it did part of the group's `hw_entries`
/// exchanges, and the group ended detached and empty.
fn killed_partway(s: &KtrMockStats, hw_entries: u64, rest: &str, call: &str) -> CaseResult {
    ensure!(
        rest.is_empty(),
        "the {call} returned before the kill: {rest:?}"
    );
    ensure!(
        s.exchanges > 0 && s.exchanges < hw_entries,
        "the {call} ran {} exchanges (of {hw_entries}) despite SIGKILL",
        s.exchanges
    );
    ensure_eq!((s.attached, s.entries_valid), (0, 0));
    Ok(())
}

/// Defect 4: a replay checks for fatal signals between chunks (counted in hardware entries):
/// SIGKILL during a replay of 2^24 hardware entries (sent as soon as the group's first writes
/// show) ends it early and rolls the group back.
pub fn kill_interrupts_replay() -> CaseResult {
    let hw_entries = 4u64 << 22;
    let (g, mut child, mut reader) = group_and_child(hw_entries, "child-attach", "attaching")?;
    // Kill as soon as the replay has started writing the group: however fast the platform,
    // most of its 1024 chunks are still to come.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while g.stats()?.exchanges == 0 && std::time::Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::yield_now();
    }
    let _ = child.kill();
    let status = child
        .wait()
        .map_err(|e| Stop::Fail(format!("waiting for the child: {e}")))?;
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
    let s = g.stats()?;
    diag!(
        "killed once the replay had started ({status}): {} of {hw_entries} hardware exchanges done",
        s.exchanges
    );
    killed_partway(&s, hw_entries, &rest, "attach")
}

/// Run in a child process: opens its own context with a window of 512 TCEs of 16 GiB, attaches
/// the inherited mock group `groupfd` (4 KiB pages: 2^22 hardware entries per TCE) and puts 512
/// poison TCEs (no permission bit: valid input, each clearing its 2^22 hardware entries) with one
/// `H_PUT_TCE_INDIRECT`.
pub fn child_indirect(groupfd: i32) -> ! {
    let run = || -> kvm_tce_replay::Result<()> {
        let dev = fixture::open()?;
        let t = dev.create_table(1, 34, 512)?;
        // SAFETY: the parent passed this fd open, without O_CLOEXEC, for us to own.
        let group = MockGroup::from(unsafe { OwnedFd::from_raw_fd(groupfd) });
        dev.attach(&t, &group)?;
        let poison: Vec<u64> = (1..=512).map(|i| i << 34).collect();
        println!("indirect");
        t.put_indirect(0, &poison)?;
        println!("returned");
        Ok(())
    };
    std::process::exit(if run().is_ok() { 0 } else { 3 })
}

/// The clock ticks process `pid` has spent in the kernel (`stime` of /proc/PID/stat), 0 if it
/// is gone.
fn system_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis, from the state (field 3) on.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0)
}

/// How long a child killed in the middle of an update may take to die.
const DIE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Defect 4, for updates: the work of one entry is bounded too. An `H_PUT_TCE_INDIRECT` of 512
/// TCEs of 16 GiB into a group of 4 KiB pages is 2^31 hardware exchanges under the table lock;
/// SIGKILL once the put has run for a while ends it within [`DIE_WITHIN`] (the update checks for
/// a fatal signal every 16384 hardware entries, inside a TCE too) after part of its exchanges,
/// the group ends detached and empty, and (the log checker) no soft lockup.
pub fn huge_indirect_is_killable() -> CaseResult {
    let hw_entries = 512u64 << 22;
    let (g, mut child, mut reader) = group_and_child(hw_entries, "child-indirect", "indirect")?;
    // Kill once the put has run for 20 clock ticks in the kernel. Not by watching the group's
    // counters: they are behind the hardware table's lock, which the put takes and drops for
    // every exchange, and a reader can wait for it for minutes.
    let pid = child.id();
    let started = system_ticks(pid);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while system_ticks(pid) < started + 20 && std::time::Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let killed = std::time::Instant::now();
    let _ = child.kill();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Stop::Fail(format!("waiting for the child: {e}")))?
        {
            break status;
        }
        if killed.elapsed() > DIE_WITHIN {
            return Err(Stop::Fail(format!(
                "the child still runs {} s after SIGKILL ({} clock ticks in the kernel so far)",
                DIE_WITHIN.as_secs(),
                system_ticks(pid).saturating_sub(started)
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let took = killed.elapsed();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
    let s = g.stats()?;
    diag!(
        "killed in the indirect put ({status}), dead {} ms later: {} of {hw_entries} hardware exchanges done",
        took.as_millis(),
        s.exchanges
    );
    killed_partway(&s, hw_entries, &rest, "indirect put")
}

/// Run in a child process: uses the context fd `devfd` and the table fd `tablefd` inherited
/// from another process; prints the errno of each ioctl.
pub fn child_foreign(devfd: i32, tablefd: i32) -> ! {
    use kvm_tce_replay::raw;
    use rustix::fd::BorrowedFd;
    // SAFETY: the parent passed these fds open, without O_CLOEXEC; we only borrow them.
    let (dev, table) = unsafe {
        (
            BorrowedFd::borrow_raw(devfd),
            BorrowedFd::borrow_raw(tablefd),
        )
    };
    let errno = |r: kvm_tce_replay::Result<i32>| match r {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("{:?}", e.errno()),
    };
    let mut create = KvmCreateSpaprTce64 {
        liobn: 9,
        page_shift: 16,
        flags: 0,
        offset: 0,
        size: 16,
    };
    let mut put = KtrPutTce {
        ioba: 0,
        tce: 0x1_0000 | RW,
    };
    // SAFETY: each command's argument is the integer or the struct it takes.
    let results = unsafe {
        [
            errno(raw::ioctl_with_val(
                dev,
                KVM_CHECK_EXTENSION,
                KVM_CAP_SPAPR_TCE_REPLAY as usize,
            )),
            errno(raw::ioctl_with_mut_ref(
                dev,
                KVM_CREATE_SPAPR_TCE_64,
                &mut create,
            )),
            errno(raw::ioctl_with_mut_ref(table, KTR_PUT_TCE, &mut put)),
        ]
    };
    println!("{}", results.join(" "));
    std::process::exit(0)
}

/// Defect 7: a context belongs to the process that opened it (KVM's `kvm->mm == current->mm`):
/// another process holding its fds (a forked child, a receiver over a socket) gets EIO.
pub fn foreign_process_gets_eio() -> CaseResult {
    let dev = fixture::open()?;
    let t = dev.create_table(1, 16, 1 << 16)?;
    for fd in [rustix::fd::AsFd::as_fd(&dev), rustix::fd::AsFd::as_fd(&t)] {
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
    }
    let out = Command::new("/proc/self/exe")
        .args([
            "child-foreign",
            &dev.as_raw_fd().to_string(),
            &t.as_raw_fd().to_string(),
        ])
        .output()
        .map_err(|e| Stop::Fail(format!("spawning the child: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let eio = format!("{:?}", Errno::IO);
    ensure_eq!(text.trim(), [eio.as_str(); 3].join(" "));
    ensure_eq!(t.get(0)?, 0);
    Ok(())
}

/// Defect 7: KVM's memory-slot rules (512 slots, a slot keeps its size and user address, the
/// user range must be a user address range), and a valid TCE whose guest address is in no slot
/// is refused (EFAULT) and changes nothing, while any poison TCE (no permission bit) is taken.
pub fn memslots_and_poison_match_kvm() -> CaseResult {
    let dev = TceReplay::new()?;
    let page = rustix::param::page_size() as u64;
    let base = 0x100_0000_0000u64;
    dev.set_user_memory_region_raw(KvmUserspaceMemoryRegion::new(511, base, 16 * page, 1 << 40))?;
    for (bad, errno) in [
        (
            KvmUserspaceMemoryRegion::new(512, 0, page, 1 << 40),
            Errno::INVAL,
        ),
        // Not a user address range.
        (
            KvmUserspaceMemoryRegion::new(1, 0, page, 1 << 63),
            Errno::INVAL,
        ),
        (
            KvmUserspaceMemoryRegion::new(1, 0, page, u64::MAX - page + 1),
            Errno::INVAL,
        ),
        // Resized or remapped in place.
        (
            KvmUserspaceMemoryRegion::new(511, base, 32 * page, 1 << 40),
            Errno::INVAL,
        ),
        (
            KvmUserspaceMemoryRegion::new(511, base, 16 * page, 1 << 41),
            Errno::INVAL,
        ),
    ] {
        ensure_eq!(dev.set_user_memory_region_raw(bad), Err(errno.into()));
    }
    // Moving a slot keeps its size and user address: allowed.
    dev.set_user_memory_region_raw(KvmUserspaceMemoryRegion::new(
        511,
        base + 16 * page,
        16 * page,
        1 << 40,
    ))?;

    let t = dev.create_table(1, 16, 1 << 16)?;
    // In the slot: taken. Outside it (the old range, past its end): EFAULT, nothing stored.
    t.put(0, (base + 16 * page) | RW)?;
    for gpa in [base, base + 32 * page, 0] {
        ensure_err!(t.put(1, gpa | RW), FAULT);
        ensure_eq!(t.stuff(1, 0, 1), Ok(()));
    }
    ensure_eq!(t.get(1)?, 0);
    let mut list = kvm_tce_replay::TceList::new();
    list.0[..2].copy_from_slice(&[(base + 16 * page) | RW, base | RW]);
    ensure_err!(
        t.put_indirect_raw(t.ioba(2), list.0.as_ptr() as u64, 2),
        FAULT
    );
    ensure_eq!((t.get(2)?, t.get(3)?), (0, 0));
    // Poison (no permission bit) is any value, in a slot or not, aligned or not.
    for (entry, poison) in [(4, 0x1_0ff0u64), (5, !RW), (6, 0x4)] {
        t.put(entry, poison)?;
        ensure_eq!(t.get(entry)?, poison);
    }
    t.stuff(7, 0x2_0ffc, 3)?;
    ensure_eq!(t.get(9)?, 0x2_0ffc);
    // Deleting the slot makes its TCEs unputtable but leaves the stored ones.
    dev.set_user_memory_region_raw(KvmUserspaceMemoryRegion::new(511, 0, 0, 0))?;
    ensure_err!(t.put(10, (base + 16 * page) | RW), FAULT);
    ensure_eq!(t.get(0)?, (base + 16 * page) | RW);
    Ok(())
}

/// Defect 11: a VMM that maps the table and reads it (as QEMU does) does not turn the pages it
/// read into full-page scans; a page written through the mapping is scanned in full.
pub fn read_mapping_keeps_population() -> CaseResult {
    let dev = fixture::open()?;
    dev.enable_replay()?;
    let t = dev.create_table(1, 16, 1 << 20)?;
    let epp = t.stats()?.entries_per_page;
    let mut tces = BTreeMap::new();
    for page in [0u64, 3, 7] {
        for slot in [1u64, 2, epp - 1] {
            tces.insert(page * epp + slot, ((page * epp + slot) << 16) | RW);
        }
    }
    for (&e, &tce) in &tces {
        t.put(e, tce)?;
    }
    let m = t.map(0, 8)?;
    let mut seen = 0;
    for e in 0..m.len() {
        seen += usize::from(m.read(e) != 0);
    }
    ensure_eq!(seen, tces.len());
    let g = dev.create_group_for(&t, 16)?;
    dev.attach(&t, &g)?;
    let s = t.stats()?;
    ensure_eq!(
        (s.last_pages_walked, s.last_entries_visited),
        (3, tces.len() as u64)
    );
    dev.detach(&t, &g)?;
    // A write through the mapping: that page (only) is scanned in full from now on.
    m.write((3 * epp + 5) as usize, 0x77_0000 | RW);
    tces.insert(3 * epp + 5, 0x77_0000 | RW);
    dev.attach(&t, &g)?;
    check_group(&g, &t, 16, &tces)?;
    let s = t.stats()?;
    ensure_eq!((s.last_pages_walked, s.last_entries_visited), (3, epp + 6));
    Ok(())
}

/// Defect 6: a group has up to two hardware tables (the default 32-bit window and a DDW), each
/// attached to its own TCE table with its own replay, and a hardware table takes one TCE table:
/// another one is refused (EBUSY).
pub fn two_windows_two_tables() -> CaseResult {
    let dev = fixture::open()?;
    dev.enable_replay()?;
    // The 32-bit window: 4 KiB pages from bus address 0 (2 GiB).
    let small = dev.create_table(1, 12, 1 << 19)?;
    // The DDW: 64 KiB pages from bus address 1 TiB.
    let ddw = dev.create_tce_table(KvmCreateSpaprTce64 {
        liobn: 2,
        page_shift: 16,
        flags: 0,
        offset: 1 << 24,
        size: 1 << 16,
    })?;
    let g = dev.create_group_for(&small, 12)?;
    let hw = covering(&ddw.window(), 16);
    let second = KtrMockGroup {
        it_page_shift: 16,
        levels: mock_levels(hw.it_size),
        it_offset: hw.it_offset,
        it_size: hw.it_size,
        flags: 0,
    };
    ensure_eq!(g.add_table(&second), Ok(1));
    ensure_err!(g.add_table(&second), BUSY);
    let tces = [
        BTreeMap::from([(5u64, 0x5000 | RW), (1 << 18, 0x7000_0000 | 1)]),
        BTreeMap::from([(0u64, 0x10_0000 | RW), (100, 0x20_0000 | 2)]),
    ];
    for (t, map) in [&small, &ddw].into_iter().zip(&tces) {
        for (&e, &tce) in map {
            t.put(e, tce)?;
        }
    }
    // Each attach picks the hardware table that can hold its window, and replays into it.
    dev.attach(&small, &g)?;
    dev.attach(&ddw, &g)?;
    let check = |tces: &[BTreeMap<u64, u64>; 2]| -> CaseResult {
        for (i, map) in tces.iter().enumerate() {
            for (&e, &tce) in map {
                // One hardware entry per TCE: both tables have the page size of their window.
                ensure_eq!(g.read_table(i as u64, e, 1)?, vec![tce]);
            }
            ensure_eq!(g.stats_table(i as u64)?.entries_valid, map.len() as u64);
        }
        Ok(())
    };
    check(&tces)?;
    ensure_eq!(
        (
            small.stats()?.last_tces_replayed,
            ddw.stats()?.last_tces_replayed
        ),
        (2, 2)
    );
    // An update reaches the hardware table of its own window only.
    small.put(6, 0x6000 | RW)?;
    let mut now = tces.clone();
    now[0].insert(6, 0x6000 | RW);
    check(&now)?;
    // A third TCE table of the small window's geometry: that hardware table is taken.
    let other = dev.create_table(3, 12, 1 << 19)?;
    ensure_err!(dev.attach(&other, &g), BUSY);
    ensure_err!(dev.detach(&other, &g), NOENT);
    // Detaching the DDW clears its hardware table only.
    dev.detach(&ddw, &g)?;
    ensure_eq!(g.stats_table(1)?.entries_valid, 0);
    ensure_eq!(g.stats_table(0)?.entries_valid, 3);
    ensure_eq!(g.stats_table(2).err(), Some(Errno::INVAL.into()));
    Ok(())
}

super::register! {
    device kernel_addresses_are_efault,
    mock junk_through_mmap_is_skipped,
    mock failed_update_changes_nothing,
    device memlock_bounds_tce_pages,
    mock kill_interrupts_replay,
    mock huge_indirect_is_killable,
    device foreign_process_gets_eio,
    device memslots_and_poison_match_kvm,
    mock read_mapping_keeps_population,
    mock two_windows_two_tables,
}
