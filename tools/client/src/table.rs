// SPDX-License-Identifier: GPL-2.0

//! A TCE table fd: the guest's hcalls as ioctls (`H_PUT_TCE`, `H_PUT_TCE_INDIRECT`,
//! `H_STUFF_TCE`, `H_GET_TCE`), the population bitmap, the statistics and a shared mapping.

use crate::raw::{ioctl_arg, Pod};
use crate::uapi::*;
use crate::window::Window;
use crate::{Errno, Result, TableStats};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};

/// A TCE table (window), as [`crate::TceReplay::create_tce_table`] returns it: `size` TCEs of
/// `1 << page_shift` bytes from bus page `offset` on. Closing it (dropping it) detaches its
/// groups.
///
/// Entries are numbered from the window's start (entry 0 is at bus address
/// `offset << page_shift`); the `*_ioba` methods take the I/O bus address instead, as the
/// hcalls do.
#[derive(Debug)]
pub struct TceTable {
    fd: OwnedFd,
    window: Window,
}

impl TceTable {
    /// A table from a table fd and the geometry it was created with (for instance an fd
    /// received from another process). `EINVAL` if the geometry is not one the module accepts.
    ///
    /// ```no_run
    /// use kvm_tce_replay::{TceReplay, TceTable, TceTableArgs};
    /// use std::os::fd::OwnedFd;
    ///
    /// let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let again = TceTable::new(OwnedFd::from(table), 16, 0, 1 << 20)?;
    /// assert_eq!(again.size(), 1 << 20);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn new(fd: OwnedFd, page_shift: u32, offset: u64, size: u64) -> Result<Self> {
        let window = Window::new(page_shift, offset, size).map_err(|_| Errno::INVAL)?;
        Ok(Self { fd, window })
    }

    /// As [`TceTable::new`], for a geometry the module accepted.
    pub(crate) fn from_fd(fd: OwnedFd, page_shift: u32, offset: u64, size: u64) -> Self {
        let window = Window::new(page_shift, offset, size).expect("the module accepted it");
        Self { fd, window }
    }

    /// log2 of the IOMMU page size.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 4, 1 << 20))?;
    /// assert_eq!((table.page_shift(), table.offset(), table.size()), (16, 4, 1 << 20));
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn page_shift(&self) -> u32 {
        self.window.page_shift()
    }

    /// The bus offset of the window, in IOMMU pages.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 12, 1 << 20, 1 << 20))?;
    /// assert_eq!(table.offset(), 1 << 20);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn offset(&self) -> u64 {
        self.window.offset()
    }

    /// The number of TCEs in the window.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 12, 0, 1000))?;
    /// assert_eq!(table.size(), 1000);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn size(&self) -> u64 {
        self.window.size()
    }

    /// The I/O bus address of `entry`.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 2, 1 << 20))?;
    /// assert_eq!(table.ioba(1), 3 << 16);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn ioba(&self, entry: u64) -> u64 {
        self.window.ioba(entry)
    }

    fn call<T: Pod>(&self, op: u32, mut arg: T) -> Result<T> {
        ioctl_arg(&self.fd, op, &mut arg)?;
        Ok(arg)
    }

    /// `H_PUT_TCE` at entry `entry`: a valid TCE (page address with [`crate::TCE_PCI_READ`] or
    /// [`crate::TCE_PCI_WRITE`]) must point into a memory slot (`EFAULT` otherwise) and have no
    /// other bit below the page size (`EINVAL`); a TCE without permission bits clears or
    /// poisons the entry. Every attached group is updated before it returns.
    ///
    /// ```no_run
    /// use kvm_tce_replay::{Errno, TceReplay, TceTableArgs};
    ///
    /// let ktr = TceReplay::new()?;
    /// ktr.set_user_memory_region(0, 0, 1 << 30, 1 << 30)?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// table.put(0, 0x1_0000 | 3)?;
    /// // Not aligned to the 64 KiB page.
    /// assert_eq!(table.put(1, 0x1000 | 3).unwrap_err().errno(), Errno::INVAL);
    /// // Outside the guest memory.
    /// assert_eq!(table.put(1, (1 << 40) | 3).unwrap_err().errno(), Errno::FAULT);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn put(&self, entry: u64, tce: u64) -> Result<()> {
        self.put_ioba(self.ioba(entry), tce)
    }

    /// `H_PUT_TCE` at I/O bus address `ioba` (aligned to the page size, inside the window).
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{Errno, TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// assert_eq!(table.put_ioba(8, 0).unwrap_err().errno(), Errno::INVAL);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn put_ioba(&self, ioba: u64, tce: u64) -> Result<()> {
        self.call(KTR_PUT_TCE, KtrPutTce { ioba, tce }).map(drop)
    }

    /// `H_GET_TCE` of entry `entry`.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// assert_eq!(table.get(7)?, 0);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn get(&self, entry: u64) -> Result<u64> {
        self.get_ioba(self.ioba(entry))
    }

    /// `H_GET_TCE` at I/O bus address `ioba`.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{Errno, TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 16))?;
    /// assert_eq!(table.get_ioba(16 << 16).unwrap_err().errno(), Errno::INVAL);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn get_ioba(&self, ioba: u64) -> Result<u64> {
        Ok(self.call(KTR_GET_TCE, KtrGetTce { ioba, tce: 0 })?.tce)
    }

    /// `H_STUFF_TCE`: sets `npages` entries from `entry` on to `tce`, which may only clear or
    /// poison (a value with a permission bit is `EINVAL`).
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// table.stuff(0, 0, 1 << 20)?;
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn stuff(&self, entry: u64, tce: u64, npages: u64) -> Result<()> {
        self.stuff_ioba(self.ioba(entry), tce, npages)
    }

    /// `H_STUFF_TCE` from I/O bus address `ioba`.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{Errno, TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 16))?;
    /// assert_eq!(table.stuff_ioba(0, 3, 1).unwrap_err().errno(), Errno::INVAL);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn stuff_ioba(&self, ioba: u64, tce_value: u64, npages: u64) -> Result<()> {
        let req = KtrStuffTce {
            ioba,
            tce_value,
            npages,
        };
        self.call(KTR_STUFF_TCE, req).map(drop)
    }

    /// `H_PUT_TCE_INDIRECT`: `tces` (at most [`KTR_INDIRECT_MAX`], 512; `EINVAL` beyond) from
    /// `entry` on, copied into a 4 KiB-aligned list as the hcall takes it. All are checked
    /// before any is stored.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// # ktr.set_user_memory_region(0, 0, 1 << 30, 1 << 30)?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let tces: Vec<u64> = (0..512).map(|i| (i << 16) | 3).collect();
    /// table.put_indirect(1024, &tces)?;
    /// assert_eq!(table.get(1024 + 511)?, (511 << 16) | 3);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn put_indirect(&self, entry: u64, tces: &[u64]) -> Result<()> {
        let mut list = TceList::new();
        list.0
            .get_mut(..tces.len())
            .ok_or(Errno::INVAL)?
            .copy_from_slice(tces);
        self.put_indirect_list(entry, &list, tces.len() as u64)
    }

    /// `H_PUT_TCE_INDIRECT`: the first `npages` TCEs of `list` from `entry` on.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceList, TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let list = TceList::new();
    /// table.put_indirect_list(0, &list, 512)?;
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn put_indirect_list(&self, entry: u64, list: &TceList, npages: u64) -> Result<()> {
        self.put_indirect_raw(self.ioba(entry), list.0.as_ptr() as u64, npages)
    }

    /// `H_PUT_TCE_INDIRECT` with the argument as given: `npages` TCEs read by the kernel from
    /// the user address `tces` (4 KiB aligned; an address that cannot be read is `EFAULT`).
    /// The kernel only reads the list, so any address is safe to pass.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{Errno, TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let err = table.put_indirect_raw(0, 0x1000, 2).unwrap_err();
    /// assert_eq!(err.errno(), Errno::FAULT);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn put_indirect_raw(&self, ioba: u64, tces: u64, npages: u64) -> Result<()> {
        let req = KtrPutTceIndirect { ioba, tces, npages };
        self.call(KTR_PUT_TCE_INDIRECT, req).map(drop)
    }

    /// Sets `n` entries from `entry` on to `tce`, which may be a valid TCE (that
    /// `H_STUFF_TCE` refuses): `H_PUT_TCE_INDIRECT`, 512 at a time.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// # ktr.set_user_memory_region(0, 0, 1 << 30, 1 << 30)?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// table.fill(0, 0x1_0000 | 1, 1000)?;
    /// assert_eq!(table.get(999)?, 0x1_0001);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn fill(&self, entry: u64, tce: u64, n: u64) -> Result<()> {
        let mut list = TceList::new();
        list.0.fill(tce);
        let mut at = entry;
        while at < entry + n {
            let k = (entry + n - at).min(KTR_INDIRECT_MAX);
            self.put_indirect_list(at, &list, k)?;
            at += k;
        }
        Ok(())
    }

    /// `KTR_TABLE_STATS`: the table's counters and its last replay's.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 31))?;
    /// let s = table.stats()?;
    /// assert_eq!((s.window_entries, s.pages_allocated, s.replays), (1 << 31, 0, 0));
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn stats(&self) -> Result<TableStats> {
        self.call(KTR_TABLE_STATS, TableStats::default())
    }

    /// `KTR_GET_POPULATED`: which of the TCE pages `first_page .. first_page + npages` are
    /// allocated (`EINVAL` for `npages` 0 or a range past the table's pages).
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// # ktr.set_user_memory_region(0, 0, 1 << 30, 1 << 30)?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let epp = table.populated(0, 1)?.entries_per_page();
    /// table.put(3 * epp, 0x1_0000 | 3)?;
    /// let pages = table.populated(0, 8)?;
    /// assert_eq!(pages.iter().collect::<Vec<_>>(), [3]);
    /// assert!(pages.contains(3) && !pages.contains(2));
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn populated(&self, first_page: u64, npages: u64) -> Result<Populated> {
        let len = usize::try_from(npages.div_ceil(64)).map_err(|_| Errno::INVAL)?;
        let mut words = vec![0u64; len];
        let req = KtrPopulated {
            first_page,
            npages,
            bitmap: words.as_mut_ptr() as u64,
            entries_per_page: 0,
        };
        let out = self.call(KTR_GET_POPULATED, req)?;
        Ok(Populated {
            first_page,
            npages,
            words,
            entries_per_page: out.entries_per_page,
        })
    }

    /// For tests: `KTR_GET_POPULATED` into the words at the user address `bitmap`, as given
    /// (an unaligned or unmapped one included); returns the entries per TCE page.
    ///
    /// # Safety
    ///
    /// The kernel writes `ceil(npages / 64)` u64 words at `bitmap` when it accepts the range:
    /// they must be memory of this process that nothing else reads or writes meanwhile, or
    /// memory the kernel cannot write (then the call fails with `EFAULT`).
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{Errno, TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// // SAFETY: nothing is mapped at address 8.
    /// let err = unsafe { table.populated_raw(0, 1, 8) }.unwrap_err();
    /// assert_eq!(err.errno(), Errno::FAULT);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub unsafe fn populated_raw(&self, first_page: u64, npages: u64, bitmap: u64) -> Result<u64> {
        let req = KtrPopulated {
            first_page,
            npages,
            bitmap,
            entries_per_page: 0,
        };
        Ok(self.call(KTR_GET_POPULATED, req)?.entries_per_page)
    }

    /// Maps `pages` pages (of the kernel's page size) of the TCE array from TCE page
    /// `first_page` on, read-write and shared, as QEMU maps a table. A write through the map
    /// allocates the page; an access the kernel cannot back raises SIGBUS.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// # ktr.set_user_memory_region(0, 0, 1 << 30, 1 << 30)?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let map = table.map(0, 1)?;
    /// table.put(2, 0x2_0000 | 3)?;
    /// assert_eq!(map.read(2), 0x2_0003);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn map(&self, first_page: usize, pages: usize) -> Result<TceMap> {
        TceMap::new(self.as_fd(), first_page, pages)
    }
}

fd_type!(TceTable, fd);

/// The TCE pages of a range that are allocated, as [`TceTable::populated`] returns them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Populated {
    first_page: u64,
    npages: u64,
    words: Vec<u64>,
    entries_per_page: u64,
}

impl Populated {
    /// TCEs per TCE page (the kernel's page size / 8): TCE page `p` holds entries
    /// `p * entries_per_page ..`.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let page = rustix::param::page_size() as u64;
    /// assert_eq!(table.populated(0, 1)?.entries_per_page(), page / 8);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn entries_per_page(&self) -> u64 {
        self.entries_per_page
    }

    /// The bitmap as the kernel wrote it: bit `i % 64` of word `i / 64` is TCE page
    /// `first_page + i`.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// assert_eq!(table.populated(0, 65)?.words(), [0, 0]);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Whether TCE page `page` (a page number of the table, inside the range asked for) is
    /// allocated.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// assert!(!table.populated(4, 4)?.contains(5));
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn contains(&self, page: u64) -> bool {
        let Some(i) = page
            .checked_sub(self.first_page)
            .filter(|&i| i < self.npages)
        else {
            return false;
        };
        self.words[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// The allocated TCE pages, in increasing order.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// assert_eq!(table.populated(0, 16)?.iter().count(), 0);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        crate::bitwalk::SetBits::new(self.words.iter().copied())
            .take_while(|&bit| bit < self.npages)
            .map(|bit| self.first_page + bit)
    }
}

/// A 4 KiB-aligned list of up to 512 TCEs, as `H_PUT_TCE_INDIRECT` takes it.
///
/// ```
/// use kvm_tce_replay::TceList;
///
/// let mut list = TceList::new();
/// list.0[0] = 0x1_0003;
/// assert_eq!(list.0.as_ptr() as usize % 4096, 0);
/// ```
#[repr(C, align(4096))]
pub struct TceList(pub [u64; KTR_INDIRECT_MAX as usize]);

impl TceList {
    /// A list of zeroes, on the heap.
    ///
    /// ```
    /// assert!(kvm_tce_replay::TceList::new().0.iter().all(|&t| t == 0));
    /// ```
    pub fn new() -> Box<Self> {
        Box::new(Self([0; KTR_INDIRECT_MAX as usize]))
    }
}

/// A shared mapping of part of a table's TCE array: entries read and written one aligned u64
/// at a time (volatile: the kernel writes them too). Unmapped when dropped.
#[derive(Debug)]
pub struct TceMap {
    ptr: *mut u64,
    len: usize,
}

// SAFETY: the mapping is shared memory that the kernel writes too; every access is one aligned
// volatile u64 load or store inside it, which threads may do at once as processes sharing the
// table can.
unsafe impl Send for TceMap {}
// SAFETY: as above.
unsafe impl Sync for TceMap {}

impl TceMap {
    /// Maps `pages` pages of the table `fd` from TCE page `first` on, read-write and shared.
    fn new(fd: BorrowedFd<'_>, first: usize, pages: usize) -> Result<Self> {
        use rustix::mm::{mmap, MapFlags, ProtFlags};
        let page = rustix::param::page_size();
        let len = pages.checked_mul(page).ok_or(Errno::INVAL)?;
        let offset = first.checked_mul(page).ok_or(Errno::INVAL)? as u64;
        // SAFETY: a new mapping at an address the kernel chooses, aliasing nothing of ours.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                offset,
            )?
        };
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The number of entries mapped.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let page = rustix::param::page_size();
    /// assert_eq!(table.map(0, 2)?.len(), 2 * page / 8);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len / 8
    }

    /// The address of entry 0 (for handing the mapping to code that reads it itself).
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let map = table.map(0, 1)?;
    /// // SAFETY: entry 0 is inside the mapping, which lives as long as `map`.
    /// assert_eq!(unsafe { map.as_ptr().read_volatile() }, map.read(0));
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn as_ptr(&self) -> *const u64 {
        self.ptr
    }

    /// Whether no entry is mapped.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// assert!(!table.map(0, 1)?.is_empty());
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entry `entry` of the mapping (entry 0 is the first entry of its first page), or `None`
    /// past its end.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let map = table.map(0, 1)?;
    /// assert_eq!(map.get(0), Some(0));
    /// assert_eq!(map.get(map.len()), None);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn get(&self, entry: usize) -> Option<u64> {
        // SAFETY: inside the mapping; volatile because the kernel writes it too.
        (entry < self.len()).then(|| unsafe { self.ptr.add(entry).read_volatile() })
    }

    /// Entry `entry` of the mapping. Panics past its end.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// assert_eq!(table.map(0, 1)?.read(0), 0);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn read(&self, entry: usize) -> u64 {
        self.get(entry).expect("entry inside the mapping")
    }

    /// Writes entry `entry` (panics past the end of the mapping). The write changes the table
    /// but, as in KVM, reaches attached groups only at the next replay, which checks it as
    /// `H_PUT_TCE` would.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let map = table.map(0, 1)?;
    /// map.write(1, 0x1_0003);
    /// assert_eq!(table.get(1)?, 0x1_0003);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn write(&self, entry: usize, value: u64) {
        assert!(entry < self.len(), "entry inside the mapping");
        // SAFETY: inside the mapping.
        unsafe { self.ptr.add(entry).write_volatile(value) }
    }
}

impl Drop for TceMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; no reference into it outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages 70 .. 70 + 130 with pages 70, 133, 134 and 199 allocated, as the kernel writes the
    /// bitmap: bit `i % 64` of word `i / 64` for page `70 + i`.
    fn sample() -> Populated {
        let mut words = vec![0u64; 3];
        for i in [0u64, 63, 64, 129] {
            words[(i / 64) as usize] |= 1 << (i % 64);
        }
        Populated {
            first_page: 70,
            npages: 130,
            words,
            entries_per_page: 512,
        }
    }

    #[test]
    fn populated_pages_are_relative_to_the_first() {
        let p = sample();
        assert_eq!(p.iter().collect::<Vec<_>>(), [70, 133, 134, 199]);
        assert!(p.contains(70) && p.contains(199));
        assert!(!p.contains(71) && !p.contains(132));
        // Outside the range asked for: never set, even where the words have bits.
        assert!(!p.contains(0) && !p.contains(200) && !p.contains(u64::MAX));
        assert_eq!(p.entries_per_page(), 512);
        assert_eq!(p.words().len(), 3);
    }

    #[test]
    fn tce_list_is_a_page_aligned_hcall_list() {
        assert_eq!(std::mem::size_of::<TceList>(), 4096);
        assert_eq!(std::mem::align_of::<TceList>(), 4096);
    }

    #[test]
    fn a_table_of_an_impossible_geometry_is_einval() {
        let fd = rustix::fs::open("/dev/null", rustix::fs::OFlags::RDONLY, 0.into()).unwrap();
        // Page shift 11 (below 4 KiB), then a window past U64_MAX >> page_shift.
        let e = TceTable::new(fd, 11, 0, 1).unwrap_err();
        assert_eq!(e.errno(), Errno::INVAL);
        let fd = rustix::fs::open("/dev/null", rustix::fs::OFlags::RDONLY, 0.into()).unwrap();
        assert!(TceTable::new(fd, 16, 1, u64::MAX >> 16).is_err());
        let fd = rustix::fs::open("/dev/null", rustix::fs::OFlags::RDONLY, 0.into()).unwrap();
        let t = TceTable::new(fd, 16, 2, 10).unwrap();
        assert_eq!((t.ioba(0), t.ioba(3)), (2 << 16, 5 << 16));
    }
}
