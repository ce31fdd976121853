// SPDX-License-Identifier: GPL-2.0

//! Cases of mmap of a table: reading an empty window maps the zero page and allocates nothing,
//! writes through the mapping and through the hcalls see each other, past the table is SIGBUS,
//! MAP_PRIVATE is refused, and a page GUP-fast took from a mapping outlives its table.

use crate::fixture::{self, DeviceExt};
use crate::{diag, ensure, ensure_eq, CaseResult, Stop};
use kvm_tce_replay::TceTable;
use rustix::io::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const RW: u64 = 3;

pub fn mmap_read_empty_window() -> CaseResult {
    let dev = fixture::open()?;
    let t = dev.create_table(1, 16, 1 << 20)?;
    let pages = (t.size() as usize * 8).div_ceil(rustix::param::page_size());
    let m = t.map(0, pages)?;
    let mut nonzero = 0;
    for e in 0..m.len() {
        nonzero += usize::from(m.read(e) != 0);
    }
    ensure_eq!(nonzero, 0);
    ensure_eq!(t.stats()?.pages_allocated, 0);
    Ok(())
}

pub fn mmap_write_through() -> CaseResult {
    let dev = fixture::open()?;
    let t = dev.create_table(1, 16, 1 << 16)?;
    let epp = t.stats()?.entries_per_page as usize;
    let m = t.map(0, 4)?;
    // Read first (zero page), then write: the write replaces the zero page by a real page.
    ensure_eq!(m.read(epp + 5), 0);
    m.write(epp + 5, 0x42_0000 | RW);
    ensure_eq!(t.get(epp as u64 + 5)?, 0x42_0000 | RW);
    ensure_eq!(t.stats()?.pages_allocated, 1);
    // An hcall write shows in the mapping, also in a page mapped before it was allocated.
    t.put(7, 0x43_0000 | RW)?;
    ensure_eq!(m.read(7), 0x43_0000 | RW);
    t.put(3 * epp as u64, 0x44_0000 | RW)?;
    ensure_eq!(m.read(3 * epp), 0x44_0000 | RW);
    ensure_eq!(t.stats()?.pages_allocated, 3);
    // A page read through the mapping (the zero page) and then allocated by an hcall, or by a
    // write through another mapping, shows its new contents in every mapping.
    ensure_eq!(m.read(2 * epp + 1), 0);
    let m3 = t.map(0, 4)?;
    ensure_eq!(m3.read(2 * epp + 1), 0);
    t.put(2 * epp as u64 + 1, 0x45_0000 | RW)?;
    ensure_eq!(m.read(2 * epp + 1), 0x45_0000 | RW);
    ensure_eq!(m3.read(2 * epp + 1), 0x45_0000 | RW);
    let t4 = dev.create_table(4, 16, 1 << 16)?;
    let (a, b) = (t4.map(0, 4)?, t4.map(0, 4)?);
    ensure_eq!((a.read(9), b.read(9)), (0, 0));
    a.write(9, 0x46_0000 | RW);
    ensure_eq!(b.read(9), 0x46_0000 | RW);
    ensure_eq!(t4.get(9)?, 0x46_0000 | RW);
    // The zero page stays zero for everybody else.
    let t2 = dev.create_table(2, 16, 1 << 16)?;
    let m2 = t2.map(0, 4)?;
    ensure_eq!(m2.read(epp + 5), 0);
    Ok(())
}

/// The address the child is about to read, for its signal handler's report.
static TOUCHING: AtomicUsize = AtomicUsize::new(0);

/// A fixed buffer that formats without allocating (in a signal handler).
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl std::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// SIGBUS and SIGSEGV handler of the child: reports the signal as the kernel delivered it, then
/// returns; the handler is reset (SA_RESETHAND), so the access faults again and the signal
/// kills the child.
extern "C" fn report_fault(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    use std::fmt::Write;
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    let mut line = Line {
        buf: [0; 160],
        len: 0,
    };
    let touching = TOUCHING.load(Ordering::Relaxed);
    let _ = writeln!(
        line,
        "# child: signal {sig} si_code {code} si_addr {addr:#x} reading {touching:#x}"
    );
    // SAFETY: write(2) is async-signal-safe; the buffer is ours.
    unsafe { libc::write(1, line.buf.as_ptr().cast(), line.len) };
}

/// Run in a child process: maps `pages` pages of the inherited table `tablefd` (one TCE page of
/// 64 KiB TCEs) and reads `entry`, printing what it read or the signal the read raised.
pub fn child_touch(tablefd: i32, pages: usize, entry: usize) -> ! {
    let run = || -> kvm_tce_replay::Result<()> {
        let epp = rustix::param::page_size() as u64 / 8;
        // SAFETY: the parent passed this fd open, without O_CLOEXEC, for us to own.
        let fd = unsafe { OwnedFd::from_raw_fd(tablefd) };
        let t = TceTable::new(fd, 16, 0, epp)?;
        let m = t.map(0, pages)?;
        // On the thread's own stack (no SA_ONSTACK): a signal frame always fits there, whatever
        // the size of the FPU state the kernel saves in it.
        // SAFETY: a zeroed sigaction is a valid empty one; the handler only formats into its own
        // buffer and calls write(2).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = report_fault
                as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                as libc::sighandler_t;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESETHAND;
            for sig in [libc::SIGBUS, libc::SIGSEGV] {
                if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                    return Err(rustix::io::Errno::INVAL.into());
                }
            }
        }
        let addr = m.as_ptr() as usize + entry * 8;
        TOUCHING.store(addr, Ordering::Relaxed);
        println!("# child: reading entry {entry} at {addr:#x}");
        let value = m.read(entry);
        println!("# child: read {value:#x}");
        Ok(())
    };
    std::process::exit(if run().is_ok() { 0 } else { 3 })
}

/// What a child touching a table's mapping did.
struct Touch {
    /// The signal that killed it, if one did.
    killed_by: Option<i32>,
    /// The signal, si_code, si_addr and the address read, as its handler reported them.
    reported: Option<(i32, i32, u64, u64)>,
    /// Whether the read returned.
    read: bool,
}

fn touch_in_child(table: &TceTable, pages: usize, entry: usize) -> Result<Touch, Stop> {
    use std::os::unix::process::ExitStatusExt;
    rustix::io::fcntl_setfd(table, rustix::io::FdFlags::empty())?;
    let out = Command::new("/proc/self/exe")
        .args([
            "child-touch",
            &table.as_raw_fd().to_string(),
            &pages.to_string(),
            &entry.to_string(),
        ])
        .output()
        .map_err(|e| Stop::Fail(format!("spawning the child: {e}")));
    rustix::io::fcntl_setfd(table, rustix::io::FdFlags::CLOEXEC)?;
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    ensure!(
        out.status.code() != Some(3),
        "the child could not set up its mapping"
    );
    // "signal S si_code C si_addr 0xA reading 0xR", as `report_fault` prints it (si_code may
    // be negative: SI_TKILL and the like).
    let hex = |w: &str| u64::from_str_radix(w.strip_prefix("0x")?, 16).ok();
    let reported = text.lines().find_map(|l| {
        let w: Vec<&str> = l.strip_prefix("# child: signal ")?.split(' ').collect();
        match w[..] {
            [sig, "si_code", code, "si_addr", addr, "reading", touching] => Some((
                sig.parse().ok()?,
                code.parse().ok()?,
                hex(addr)?,
                hex(touching)?,
            )),
            _ => None,
        }
    });
    Ok(Touch {
        killed_by: out.status.signal(),
        reported,
        read: text.lines().any(|l| l.starts_with("# child: read ")),
    })
}

/// A mapping longer than the table: its pages inside the table read (the zero page), the page
/// past the end raises SIGBUS, as KVM's (kvm_spapr_tce_fault), and nothing is allocated. The
/// module's `faults_refused` tells whether the fault reached its handler: where it did, the
/// kernel turns its VM_FAULT_SIGBUS into SIGBUS at the address read, and nothing else passes.
/// UML alone can answer the access without asking the VMA (its host reported a fault it cannot
/// fix, not a page fault: `bad_segv`, SIGSEGV); the read must still not return.
pub fn mmap_sigbus_past_the_end() -> CaseResult {
    let dev = fixture::open()?;
    let epp = rustix::param::page_size() / 8;
    let t = dev.create_table(1, 16, epp as u64)?;
    let inside = touch_in_child(&t, 2, epp - 1)?;
    ensure!(
        inside.read && inside.killed_by.is_none(),
        "reading inside the table: killed by {:?}",
        inside.killed_by
    );
    ensure_eq!(t.stats()?.faults_refused, 0);

    let past = touch_in_child(&t, 2, epp + 1)?;
    let s = t.stats()?;
    ensure!(!past.read, "an entry past the table's end was readable");
    ensure_eq!(s.pages_allocated, 0);
    let bus = (libc::SIGBUS, libc::BUS_ADRERR);
    if s.faults_refused > 0 {
        // The handler's report and the signal that killed the child (the access repeated with
        // the handler reset): both SIGBUS.
        let r = past.reported.ok_or(Stop::Fail(
            "the module refused the fault but the child's handler never ran".into(),
        ))?;
        ensure_eq!((r.0, r.1), bus);
        ensure_eq!(r.2, r.3);
        ensure_eq!(past.killed_by, Some(libc::SIGBUS));
    } else {
        ensure!(
            fixture::is_uml(),
            "the fault past the end never reached the module (killed by {:?}, reported {:?})",
            past.killed_by,
            past.reported
        );
        ensure_eq!(past.killed_by, Some(libc::SIGSEGV));
        diag!("UML answered the access without the module's fault handler: SIGSEGV");
    }
    Ok(())
}

pub fn mmap_private_refused() -> CaseResult {
    use rustix::mm::{mmap, MapFlags, ProtFlags};
    let dev = fixture::open()?;
    let t = dev.create_table(1, 16, 1 << 16)?;
    // SAFETY: a new mapping that the kernel is expected to refuse.
    let r = unsafe {
        mmap(
            std::ptr::null_mut(),
            4096,
            ProtFlags::READ,
            MapFlags::PRIVATE,
            &t,
            0,
        )
    };
    ensure_eq!(r.err(), Some(rustix::io::Errno::INVAL));
    Ok(())
}

/// What `VM_IO` does and does not do for a table's mapping. It keeps the slow GUP path away
/// (`get_user_pages` refuses the VMA: EFAULT), but GUP-fast walks the page tables without
/// looking at the VMA and takes a reference on a page mapped there: `vmsplice` of a mapped,
/// allocated TCE page puts that page itself into a pipe. The reference keeps the page alive
/// after the table is closed and freed (the module frees its pages by dropping its own
/// reference), so reading the pipe afterwards gives back the TCEs and no freed memory (KASAN on
/// the debug kernel). UML has no GUP-fast: there vmsplice takes the slow path and gets EFAULT.
pub fn vmsplice_reference_outlives_table() -> CaseResult {
    use rustix::pipe::{pipe, vmsplice, IoSliceRaw, SpliceFlags};
    let dev = fixture::open()?;
    let before = dev.mem_stats()?.table_bytes;
    let t = dev.create_table(1, 16, 1 << 16)?;
    let epp = t.stats()?.entries_per_page as usize;
    let page = rustix::param::page_size();
    let tces = [
        (0usize, 0x11_0000 | RW),
        (1, 0x12_0000 | 1),
        (epp - 1, 0x13_0000 | 2),
    ];
    for (e, tce) in tces {
        t.put(e as u64, tce)?;
    }
    let m = t.map(0, 1)?;
    // A read maps the allocated page (read-only): the PTE GUP-fast finds.
    ensure_eq!(m.read(0), tces[0].1);
    let (r, w) = pipe()?;
    // SAFETY: the first page of the live mapping `m`, which nothing writes while it is borrowed.
    let mapped = unsafe { std::slice::from_raw_parts(m.as_ptr().cast::<u8>(), page) };
    // SAFETY: the iovec is `mapped`, which vmsplice only reads.
    let spliced = unsafe { vmsplice(&w, &[IoSliceRaw::from_slice(mapped)], SpliceFlags::empty()) };
    if fixture::is_uml() {
        ensure_eq!(spliced, Err(Errno::FAULT));
        diag!("UML (no GUP-fast): vmsplice of the mapping took the slow GUP path: EFAULT");
        return Ok(());
    }
    ensure_eq!(spliced, Ok(page));
    drop(m);
    drop(t);
    // The table and its accounting are gone; its page is the pipe's now.
    ensure_eq!(dev.mem_stats()?.table_bytes, before);
    let mut bytes = vec![0u8; page];
    let mut got = 0;
    while got < page {
        let n = rustix::io::read(&r, &mut bytes[got..])?;
        ensure!(n > 0, "the pipe ended after {got} of {page} bytes");
        got += n;
    }
    let words: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
        .collect();
    let mut expected = vec![0u64; epp];
    for (e, tce) in tces {
        expected[e] = tce;
    }
    ensure!(
        words == expected,
        "the pipe gave back other words than the TCEs put"
    );
    diag!(
        "vmsplice kept the TCE page alive past its table: {} TCEs read back",
        tces.len()
    );
    Ok(())
}

super::register! {
    device mmap_read_empty_window,
    device mmap_write_through,
    device mmap_sigbus_past_the_end,
    device mmap_private_refused,
    device vmsplice_reference_outlives_table,
}
