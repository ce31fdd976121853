// SPDX-License-Identifier: GPL-2.0

//! Cases of mmap of a table: reading an empty window maps the zero page and allocates nothing,
//! writes through the mapping and through the hcalls see each other, past the table is SIGBUS.

use crate::fixture::{self, DeviceExt};
use crate::{ensure, ensure_eq, CaseResult, Stop};
use std::process::Command;

const RW: u64 = 3;

pub fn read_empty_window() -> CaseResult {
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

pub fn write_through_mmap() -> CaseResult {
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

/// Run in a child process: maps `pages` pages of a table of one TCE page and touches `entry`.
pub fn child_touch(pages: usize, entry: usize) -> ! {
    let run = || -> kvm_tce_replay::Result<()> {
        let dev = fixture::open()?;
        let epp = rustix::param::page_size() as u64 / 8;
        let t = dev.create_table(1, 16, epp)?;
        let m = t.map(0, pages)?;
        println!("# child: reading entry {entry}");
        let _ = m.read(entry);
        Ok(())
    };
    std::process::exit(if run().is_ok() { 0 } else { 3 })
}

fn touch_in_child(pages: usize, entry: usize) -> Result<Option<i32>, Stop> {
    use std::os::unix::process::ExitStatusExt;
    let status = Command::new("/proc/self/exe")
        .args(["child-touch", &pages.to_string(), &entry.to_string()])
        .status()
        .map_err(|e| Stop::Fail(format!("spawning the child: {e}")))?;
    ensure!(
        status.code() != Some(3),
        "the child could not set up its mapping"
    );
    Ok(status.signal())
}

pub fn sigbus_past_the_end() -> CaseResult {
    let epp = rustix::param::page_size() / 8;
    // Inside the table: no signal. One page past it: SIGBUS.
    ensure_eq!(touch_in_child(2, epp - 1)?, None);
    ensure_eq!(
        touch_in_child(2, epp + 1)?,
        Some(rustix::process::Signal::BUS.as_raw())
    );
    Ok(())
}

pub fn private_mapping_refused() -> CaseResult {
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
