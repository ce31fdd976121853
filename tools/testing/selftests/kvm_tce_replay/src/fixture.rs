// SPDX-License-Identifier: GPL-2.0

//! What the cases share on top of the client crate and that a VMM has no use for: a context with
//! the whole test guest's memory registered, the tables and mock groups of the cases' usual
//! shapes, the shared model's view of a table, and the kernel's memory counters.

use crate::hwmap::HwGeometry;
use crate::window::Window;
use kvm_tce_replay::{MockGroup, Result, TceReplay, TceTable, TceTableArgs};

/// The guest memory slot [`open`] registers: guest-physical `0 .. GUEST_RAM` (4 TiB, below
/// KVM's largest slot of 2^31 - 1 pages; every guest address the cases put in a valid TCE) at
/// user address one page up. The mock backend never touches the user memory, so it need not be
/// mapped.
pub const GUEST_RAM: u64 = 1 << 42;

/// Opens a context whose guest memory covers `0 .. GUEST_RAM`, as a VMM registers its RAM
/// before the guest can put a TCE.
pub fn open() -> Result<TceReplay> {
    let dev = TceReplay::new()?;
    let page = rustix::param::page_size() as u64;
    dev.set_user_memory_region(0, 0, GUEST_RAM, page)?;
    Ok(dev)
}

/// Whether the kernel under test is UML (its /proc/cpuinfo says so), which runs kernel code
/// natively and takes its fault information from its host.
pub fn is_uml() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains("User Mode Linux"))
}

/// The cases' shortcuts on a context.
pub trait DeviceExt {
    /// A table at bus offset 0.
    fn create_table(&self, liobn: u64, page_shift: u32, size: u64) -> Result<TceTable>;
    /// A mock group whose hardware table covers `table` with pages of `it_page_shift`.
    fn create_group_for(&self, table: &TceTable, it_page_shift: u32) -> Result<MockGroup>;
    /// As [`DeviceExt::create_group_for`], with `KtrMockGroup::flags` `flags`.
    fn create_group_with(&self, table: &TceTable, shift: u32, flags: u64) -> Result<MockGroup>;
    /// `KTR_ATTACH` with the replay strategy `walk` (`KTR_ATTACH_WALK_*`).
    fn attach_with(&self, table: &TceTable, group: &MockGroup, walk: u32) -> Result<()>;
}

impl DeviceExt for TceReplay {
    fn create_table(&self, liobn: u64, page_shift: u32, size: u64) -> Result<TceTable> {
        self.create_tce_table(TceTableArgs::new(liobn, page_shift, 0, size))
    }

    fn create_group_for(&self, table: &TceTable, it_page_shift: u32) -> Result<MockGroup> {
        self.create_mock_group_for(table, it_page_shift, 0)
    }

    fn create_group_with(&self, table: &TceTable, shift: u32, flags: u64) -> Result<MockGroup> {
        self.create_mock_group_for(table, shift, flags)
    }

    fn attach_with(&self, table: &TceTable, group: &MockGroup, walk: u32) -> Result<()> {
        self.attach_with_flags(table, group, walk)
    }
}

/// A table's window, as the shared checks and the model see it.
pub trait TableExt {
    /// The window the table was created with.
    fn window(&self) -> Window;
}

impl TableExt for TceTable {
    fn window(&self) -> Window {
        Window::new(self.page_shift(), self.offset(), self.size()).expect("the module accepted it")
    }
}

/// The hardware-table geometry that covers window `w` exactly with pages of `it_page_shift`.
pub fn covering(w: &Window, it_page_shift: u32) -> HwGeometry {
    let shift = w.page_shift() - it_page_shift;
    HwGeometry {
        it_page_shift,
        it_offset: w.offset() << shift,
        it_size: w.size() << shift,
    }
}

/// Bytes of the kernel's free memory (MemFree of /proc/meminfo).
pub fn mem_free() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("MemFree:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Pages charged to this process's `pinned_vm` (VmPin of /proc/self/status), where the module
/// charges TCE pages.
pub fn pinned_pages() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmPin:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024 / rustix::param::page_size() as u64)
}
