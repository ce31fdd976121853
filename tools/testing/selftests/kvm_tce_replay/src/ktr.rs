// SPDX-License-Identifier: GPL-2.0

//! Typed wrappers of the module's ioctls over rustix: the device (a context, like a KVM VM fd),
//! TCE table fds and mock IOMMU group fds.

use crate::hwmap::HwGeometry;
use crate::uapi::*;
use crate::uapi_test::*;
use crate::window::Window;
use rustix::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::io::{Errno, Result};
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};

/// Ioctls issued, for the fuzzer's report.
pub static IOCTLS: AtomicU64 = AtomicU64::new(0);

/// Path of the misc device.
pub const DEVICE: &str = "/dev/kvm-tce-replay";

/// One ioctl whose argument is a pointer or an integer and whose return value is kept.
struct Call {
    op: u32,
    arg: *mut c_void,
}

// SAFETY: `arg` is either an integer the kernel does not dereference, or a pointer to a live
// value of the size encoded in `op`, as the callers below guarantee.
unsafe impl Ioctl for Call {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.op as Opcode
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.arg
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> Result<IoctlOutput> {
        Ok(out)
    }
}

/// `ioctl(fd, op, &mut arg)`; `op` must encode `T`'s size.
pub fn ioctl_ref<T>(fd: BorrowedFd<'_>, op: u32, arg: &mut T) -> Result<i32> {
    IOCTLS.fetch_add(1, Ordering::Relaxed);
    let call = Call {
        op,
        arg: (arg as *mut T).cast(),
    };
    // SAFETY: `arg` is a live, exclusively borrowed `T`.
    unsafe { rustix::ioctl::ioctl(fd, call) }
}

/// `ioctl(fd, op, value)` for ioctls that take an integer.
pub fn ioctl_val(fd: BorrowedFd<'_>, op: u32, value: usize) -> Result<i32> {
    IOCTLS.fetch_add(1, Ordering::Relaxed);
    let call = Call {
        op,
        arg: value as *mut c_void,
    };
    // SAFETY: the kernel reads `value` as an integer for these ioctls, or fails cleanly.
    unsafe { rustix::ioctl::ioctl(fd, call) }
}

fn new_fd(raw: i32) -> Result<OwnedFd> {
    if raw < 0 {
        return Err(Errno::BADF);
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// An open of the device: one context.
pub struct Device(pub OwnedFd);

/// The guest memory slot [`Device::open`] registers: guest-physical `0 .. GUEST_RAM` (4 TiB,
/// below KVM's largest slot of 2^31 - 1 pages; every guest address the cases put in a valid
/// TCE) at user address one page up. The mock backend never touches the user memory, so it
/// need not be mapped.
pub const GUEST_RAM: u64 = 1 << 42;

/// `KVM_SET_USER_MEMORY_REGION`'s argument: slot `slot`, `size` bytes of guest memory from `gpa`
/// at user address `ua`.
pub fn region(slot: u32, gpa: u64, size: u64, ua: u64) -> KvmUserspaceMemoryRegion {
    KvmUserspaceMemoryRegion::new(slot, gpa, size, ua)
}

impl Device {
    /// Opens a context whose guest memory covers `0 .. GUEST_RAM`, as a VMM registers its RAM
    /// before the guest can put a TCE.
    pub fn open() -> Result<Self> {
        let dev = Self::open_bare()?;
        let page = rustix::param::page_size() as u64;
        dev.set_memory_region(region(0, 0, GUEST_RAM, page))?;
        Ok(dev)
    }

    /// Opens a context without guest memory.
    pub fn open_bare() -> Result<Self> {
        use rustix::fs::{open, Mode, OFlags};
        Ok(Self(open(
            DEVICE,
            OFlags::RDWR | OFlags::CLOEXEC,
            Mode::empty(),
        )?))
    }

    pub fn check_extension(&self, cap: u32) -> Result<i32> {
        ioctl_val(self.0.as_fd(), KVM_CHECK_EXTENSION, cap as usize)
    }

    pub fn enable_cap_raw(&self, mut req: KvmEnableCap) -> Result<i32> {
        ioctl_ref(self.0.as_fd(), KVM_ENABLE_CAP, &mut req)
    }

    /// `KVM_SET_USER_MEMORY_REGION`.
    pub fn set_memory_region(&self, mut req: KvmUserspaceMemoryRegion) -> Result<i32> {
        ioctl_ref(self.0.as_fd(), KVM_SET_USER_MEMORY_REGION, &mut req)
    }

    pub fn enable_replay(&self) -> Result<()> {
        self.enable_cap_raw(KvmEnableCap::new(KVM_CAP_SPAPR_TCE_REPLAY))
            .map(drop)
    }
}

impl Device {
    /// `KVM_CREATE_SPAPR_TCE_64`.
    pub fn create_table_raw(&self, mut req: KvmCreateSpaprTce64) -> Result<Table> {
        let fd = ioctl_ref(self.0.as_fd(), KVM_CREATE_SPAPR_TCE_64, &mut req)?;
        Ok(Table {
            fd: new_fd(fd)?,
            page_shift: req.page_shift,
            offset: req.offset,
            size: req.size,
        })
    }

    /// A table at bus offset 0.
    pub fn create_table(&self, liobn: u64, page_shift: u32, size: u64) -> Result<Table> {
        self.create_table_raw(KvmCreateSpaprTce64 {
            liobn,
            page_shift,
            flags: 0,
            offset: 0,
            size,
        })
    }

    /// `KTR_CREATE_MOCK_GROUP`.
    pub fn create_group_raw(&self, mut req: KtrMockGroup) -> Result<Group> {
        let fd = ioctl_ref(self.0.as_fd(), KTR_CREATE_MOCK_GROUP, &mut req)?;
        Ok(Group(new_fd(fd)?))
    }

    /// A mock group whose hardware table covers `table` with pages of `it_page_shift`.
    pub fn create_group_for(&self, table: &Table, it_page_shift: u32) -> Result<Group> {
        self.create_group_with(table, it_page_shift, 0)
    }

    /// As [`Device::create_group_for`], with `KtrMockGroup::flags` `flags`.
    pub fn create_group_with(
        &self,
        table: &Table,
        it_page_shift: u32,
        flags: u64,
    ) -> Result<Group> {
        let hw = covering(&table.window(), it_page_shift);
        self.create_group_raw(KtrMockGroup {
            it_page_shift,
            levels: mock_levels(hw.it_size),
            it_offset: hw.it_offset,
            it_size: hw.it_size,
            flags,
        })
    }

    fn attach_op(&self, op: u32, table: &Table, group: &Group, flags: u32) -> Result<()> {
        use std::os::fd::AsRawFd;
        let mut req = KtrAttach {
            groupfd: group.0.as_raw_fd(),
            tablefd: table.fd.as_raw_fd(),
            flags,
            pad: 0,
        };
        ioctl_ref(self.0.as_fd(), op, &mut req).map(drop)
    }

    /// `KTR_ATTACH` with the normal walk.
    pub fn attach(&self, table: &Table, group: &Group) -> Result<()> {
        self.attach_op(KTR_ATTACH, table, group, KTR_ATTACH_WALK_POPULATED)
    }

    /// `KTR_ATTACH` with a replay strategy.
    pub fn attach_with(&self, table: &Table, group: &Group, walk: u32) -> Result<()> {
        self.attach_op(KTR_ATTACH, table, group, walk)
    }

    /// `KTR_DETACH`.
    pub fn detach(&self, table: &Table, group: &Group) -> Result<()> {
        self.attach_op(KTR_DETACH, table, group, 0)
    }

    /// `KTR_ATTACH`/`KTR_DETACH` with a raw argument.
    pub fn attach_raw(&self, op: u32, mut req: KtrAttach) -> Result<()> {
        ioctl_ref(self.0.as_fd(), op, &mut req).map(drop)
    }

    /// `KTR_MEM_STATS`.
    pub fn mem_stats(&self) -> Result<KtrMemStats> {
        let mut s = KtrMemStats::default();
        ioctl_ref(self.0.as_fd(), KTR_MEM_STATS, &mut s)?;
        Ok(s)
    }
}

/// Levels of a mock hardware table of `it_size` entries, each level one page of u64 slots.
pub fn mock_levels(it_size: u64) -> u32 {
    let bits = rustix::param::page_size().trailing_zeros() - 3;
    (64 - (it_size - 1).leading_zeros()).div_ceil(bits).max(1)
}

/// A TCE table fd and the geometry it was created with.
pub struct Table {
    pub fd: OwnedFd,
    pub page_shift: u32,
    pub offset: u64,
    pub size: u64,
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

impl Table {
    /// The table's window, as the shared checks see it.
    pub fn window(&self) -> Window {
        Window::new(self.page_shift, self.offset, self.size).expect("the module accepted it")
    }

    /// The I/O bus address of entry `entry`.
    pub fn ioba(&self, entry: u64) -> u64 {
        (self.offset + entry) << self.page_shift
    }

    pub fn put_ioba(&self, ioba: u64, tce: u64) -> Result<()> {
        let mut req = KtrPutTce { ioba, tce };
        ioctl_ref(self.fd.as_fd(), KTR_PUT_TCE, &mut req).map(drop)
    }

    pub fn put(&self, entry: u64, tce: u64) -> Result<()> {
        self.put_ioba(self.ioba(entry), tce)
    }

    pub fn get_ioba(&self, ioba: u64) -> Result<u64> {
        let mut req = KtrGetTce { ioba, tce: 0 };
        ioctl_ref(self.fd.as_fd(), KTR_GET_TCE, &mut req)?;
        Ok(req.tce)
    }

    pub fn get(&self, entry: u64) -> Result<u64> {
        self.get_ioba(self.ioba(entry))
    }

    pub fn stuff_ioba(&self, ioba: u64, tce_value: u64, npages: u64) -> Result<()> {
        let mut req = KtrStuffTce {
            ioba,
            tce_value,
            npages,
        };
        ioctl_ref(self.fd.as_fd(), KTR_STUFF_TCE, &mut req).map(drop)
    }

    pub fn stuff(&self, entry: u64, tce: u64, npages: u64) -> Result<()> {
        self.stuff_ioba(self.ioba(entry), tce, npages)
    }

    /// Sets `n` TCEs from `entry` on to `tce`, a valid TCE `H_STUFF_TCE` refuses: through
    /// `H_PUT_TCE_INDIRECT`, 512 at a time.
    pub fn fill(&self, entry: u64, tce: u64, n: u64) -> Result<()> {
        let mut list = TceList::new();
        list.0.fill(tce);
        let mut at = entry;
        while at < entry + n {
            let k = (entry + n - at).min(512);
            self.put_indirect_raw(self.ioba(at), list.0.as_ptr() as u64, k)?;
            at += k;
        }
        Ok(())
    }

    /// `KTR_PUT_TCE_INDIRECT` from a 4 KiB-aligned list, as the hcall takes it.
    pub fn put_indirect(&self, entry: u64, tces: &[u64]) -> Result<()> {
        let mut list = TceList::new();
        list.0[..tces.len()].copy_from_slice(tces);
        self.put_indirect_raw(self.ioba(entry), list.0.as_ptr() as u64, tces.len() as u64)
    }

    pub fn put_indirect_raw(&self, ioba: u64, tces: u64, npages: u64) -> Result<()> {
        let mut req = KtrPutTceIndirect { ioba, tces, npages };
        ioctl_ref(self.fd.as_fd(), KTR_PUT_TCE_INDIRECT, &mut req).map(drop)
    }

    pub fn stats(&self) -> Result<KtrTableStats> {
        let mut s = KtrTableStats::default();
        ioctl_ref(self.fd.as_fd(), KTR_TABLE_STATS, &mut s)?;
        Ok(s)
    }

    /// `KTR_GET_POPULATED`: the bitmap words and the entries per TCE page.
    pub fn populated(&self, first_page: u64, npages: u64) -> Result<(Vec<u64>, u64)> {
        let mut words = vec![0u64; npages.div_ceil(64) as usize];
        let epp = self.populated_raw(first_page, npages, words.as_mut_ptr() as u64)?;
        Ok((words, epp))
    }

    /// `KTR_GET_POPULATED` into the words at `bitmap`; returns the entries per TCE page.
    pub fn populated_raw(&self, first_page: u64, npages: u64, bitmap: u64) -> Result<u64> {
        let mut req = KtrPopulated {
            first_page,
            npages,
            bitmap,
            entries_per_page: 0,
        };
        ioctl_ref(self.fd.as_fd(), KTR_GET_POPULATED, &mut req)?;
        Ok(req.entries_per_page)
    }
}

/// A 4 KiB-aligned list of up to 512 TCEs, as H_PUT_TCE_INDIRECT takes it.
#[repr(C, align(4096))]
pub struct TceList(pub [u64; 512]);

impl TceList {
    pub fn new() -> Box<Self> {
        Box::new(Self([0; 512]))
    }
}

/// A mock IOMMU group fd.
pub struct Group(pub OwnedFd);

impl Group {
    /// Entries `first .. first + count` of hardware table `table`, in one `KTR_MOCK_READ`.
    pub fn read_table_raw(&self, table: u64, first: u64, count: u64) -> Result<Vec<u64>> {
        let mut out = vec![0u64; count as usize];
        let mut req = KtrMockRead {
            first,
            count,
            entries: out.as_mut_ptr() as u64,
            table,
        };
        ioctl_ref(self.0.as_fd(), KTR_MOCK_READ, &mut req)?;
        Ok(out)
    }

    /// Entries `first .. first + count` of the first hardware table, in one `KTR_MOCK_READ`.
    pub fn read_raw(&self, first: u64, count: u64) -> Result<Vec<u64>> {
        self.read_table_raw(0, first, count)
    }

    /// Entries `first .. first + count` of hardware table `table`, in as many reads as needed.
    pub fn read_table(&self, table: u64, first: u64, count: u64) -> Result<Vec<u64>> {
        let mut out = Vec::with_capacity(count as usize);
        let mut at = first;
        while at < first + count {
            let n = (first + count - at).min(KTR_MOCK_READ_MAX);
            out.extend(self.read_table_raw(table, at, n)?);
            at += n;
        }
        Ok(out)
    }

    /// Entries `first .. first + count` of the first hardware table.
    pub fn read(&self, first: u64, count: u64) -> Result<Vec<u64>> {
        self.read_table(0, first, count)
    }

    /// Counters of hardware table `table`.
    pub fn stats_table(&self, table: u64) -> Result<KtrMockStats> {
        let mut s = KtrMockStats {
            table,
            ..KtrMockStats::default()
        };
        ioctl_ref(self.0.as_fd(), KTR_MOCK_STATS, &mut s)?;
        Ok(s)
    }

    /// Counters of the first hardware table.
    pub fn stats(&self) -> Result<KtrMockStats> {
        self.stats_table(0)
    }

    /// `KTR_MOCK_ADD_TABLE`: a second hardware table; returns its index.
    pub fn add_table(&self, mut req: KtrMockGroup) -> Result<i32> {
        ioctl_ref(self.0.as_fd(), KTR_MOCK_ADD_TABLE, &mut req)
    }

    /// The `n`-th next hardware page allocation fails (0: none).
    pub fn fail_alloc(&self, mut n: u64) -> Result<()> {
        ioctl_ref(self.0.as_fd(), KTR_MOCK_FAIL_ALLOC, &mut n).map(drop)
    }
}

/// A shared mapping of a table's TCE array.
pub struct Mapping {
    ptr: *mut u64,
    len: usize,
}

// SAFETY: the mapping is shared memory that the kernel writes too; every access is one aligned
// volatile u64 load or store inside it, which threads may do at once as processes sharing the
// table can.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `pages` pages of `table` read-write and shared, as QEMU does.
    pub fn new(table: &Table, pages: usize) -> Result<Self> {
        Self::at(table, 0, pages)
    }

    /// Maps `pages` pages of `table` from TCE page `first` on, read-write and shared.
    pub fn at(table: &Table, first: usize, pages: usize) -> Result<Self> {
        use rustix::mm::{mmap, MapFlags, ProtFlags};
        let page = rustix::param::page_size();
        let len = pages * page;
        // SAFETY: a new mapping at an address the kernel chooses.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &table.fd,
                (first * page) as u64,
            )?
        };
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Entries mapped.
    pub fn entries(&self) -> usize {
        self.len / 8
    }

    pub fn read(&self, entry: usize) -> u64 {
        assert!(entry < self.entries());
        // SAFETY: inside the mapping; volatile because the kernel writes it too.
        unsafe { self.ptr.add(entry).read_volatile() }
    }

    pub fn write(&self, entry: usize, value: u64) {
        assert!(entry < self.entries());
        // SAFETY: inside the mapping.
        unsafe { self.ptr.add(entry).write_volatile(value) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped.
        let _ = unsafe { rustix::mm::munmap(self.ptr.cast(), self.len) };
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
