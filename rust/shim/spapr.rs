// SPDX-License-Identifier: GPL-2.0

//! The raw C of the real IOMMU backend (powerpc, `CONFIG_SPAPR_TCE_IOMMU`): the `iommu_table`
//! of a VFIO group, its exchange and invalidation, its userspace view, and the preregistered
//! memory (`mm_iommu_*`) that turns the VMM's user addresses into host-physical ones.

use crate::pure::{
    hwmap::HwGeometry,
    num::{u64_as_usize, usize_as_u64},
};
use core::{
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};
use kernel::{
    bindings,
    ffi::{c_int, c_long, c_uint, c_ulong, c_void},
    fs::{File, LocalFile},
    mm::Mm,
    prelude::*,
    sync::{aref::ARef, rcu},
};

// The module's C accessors (rust/spapr_helpers.c): the structs are opaque to the bindings.
// Pointers to structs that are not FFI-safe in the bindings are declared as `c_void`.
extern "C" {
    fn ktr_iommu_table_geometry(
        tbl: *mut bindings::iommu_table,
        page_shift: *mut u32,
        offset: *mut u64,
        size: *mut u64,
    );
    fn ktr_iommu_group_table(grp: *mut c_void, i: c_uint) -> *mut bindings::iommu_table;
    fn ktr_iommu_table_useraddr(
        tbl: *mut bindings::iommu_table,
        entry: c_ulong,
        alloc: bool,
    ) -> *mut u64;
}

/// IOMMU_TABLE_GROUP_MAX_TABLES: the tables of a table group (the accessor gives NULL past the
/// last).
const GROUP_TABLES: c_uint = 2;

extern "C" {
    fn vfio_file_iommu_group(file: *mut c_void) -> *mut c_void;
    fn iommu_group_put(group: *mut c_void);
    fn iommu_group_dma_owner_claimed(group: *mut c_void) -> bool;
    fn iommu_tce_table_get(tbl: *mut bindings::iommu_table) -> *mut bindings::iommu_table;
    fn iommu_tce_table_put(tbl: *mut bindings::iommu_table) -> c_int;
    fn iommu_tce_xchg_no_kill(
        mm: *mut c_void,
        tbl: *mut bindings::iommu_table,
        entry: c_ulong,
        hpa: *mut c_ulong,
        direction: *mut c_int,
    ) -> c_long;
    fn iommu_tce_kill(tbl: *mut bindings::iommu_table, entry: c_ulong, pages: c_ulong);
    fn mm_iommu_lookup(mm: *mut c_void, ua: c_ulong, size: c_ulong) -> *mut c_void;
    fn mm_iommu_ua_to_hpa(
        mem: *mut c_void,
        ua: c_ulong,
        pageshift: c_uint,
        hpa: *mut c_ulong,
    ) -> c_long;
    fn mm_iommu_mapped_inc(mem: *mut c_void) -> c_long;
    fn mm_iommu_mapped_dec(mem: *mut c_void);
}

/// A hardware TCE table of the IOMMU table group behind a VFIO group.
///
/// # Invariants
///
/// `tbl` holds a reference taken with `iommu_tce_table_get`, given back on drop: the table's
/// memory and operations outlive any removal of it from its group. (It does not keep the group
/// open: each attach holds its own [`VfioGroup`].)
pub(crate) struct IommuTable {
    tbl: NonNull<bindings::iommu_table>,
}

// SAFETY: an `iommu_table` is shared by the DMA API, VFIO and KVM on every CPU; its operations
// take its own locks, and its reference count is atomic.
unsafe impl Send for IommuTable {}
// SAFETY: as above.
unsafe impl Sync for IommuTable {}

/// A VFIO group as one attach holds it: its file, which keeps the group open (and so its
/// container's windows in place: VFIO releases them when the last group leaves), and a
/// reference to its `iommu_group`, which keeps the group's table group alive.
///
/// # Invariants
///
/// `group` is the file's `iommu_group`, with a reference of ours (dropped by `GroupRef`).
pub(crate) struct VfioGroup {
    _file: ARef<File>,
    group: GroupRef,
}

impl VfioGroup {
    /// The group's identity (its `iommu_group`).
    pub(crate) fn id(&self) -> usize {
        self.group.0.addr()
    }

    /// Whether `tbl` is still one of the group's tables: VFIO_IOMMU_SPAPR_TCE_REMOVE (or the
    /// group leaving its container) takes it out, and then it is an orphan that no DMA goes
    /// through and that nothing will clear again.
    pub(crate) fn has(&self, tbl: &IommuTable) -> bool {
        // SAFETY: the group is alive (our reference), and so is its table group (its iommudata,
        // released with the group). The accessor reads a pointer of `tables[]` (READ_ONCE),
        // which VFIO changes under its container lock: a removal racing with this check is seen
        // by the next one. Only the pointer is compared.
        (0..GROUP_TABLES)
            .any(|i| unsafe { ktr_iommu_group_table(self.group.0, i) } == tbl.tbl.as_ptr())
    }
}

impl IommuTable {
    /// The first table of the VFIO group behind `fd` whose geometry `fits` accepts, as KVM's
    /// `kvm_spapr_tce_attach_iommu_group` picks it, with the group held for the attach: EBADF if
    /// `fd` is not open, EINVAL if it is no VFIO group, if its DMA is not owned by VFIO (in no
    /// container: its tables are then the kernel's own), or if no table fits.
    pub(crate) fn of_vfio_group(
        fd: i32,
        fits: impl Fn(&HwGeometry) -> bool,
    ) -> Result<(Self, VfioGroup)> {
        let fd = u32::try_from(fd).map_err(|_| EBADF)?;
        let local = LocalFile::fget(fd).map_err(|_| EBADF)?;
        // SAFETY: this thread is in no `fdget_pos` region of the file: it is in an ioctl of
        // another file.
        let file = unsafe { LocalFile::assume_no_fdget_pos(local) };
        // SAFETY: the file is alive; a file that is no VFIO group gives NULL, a VFIO group gives
        // its iommu_group with a reference (`iommu_group_ref_get`), dropped by `GroupRef`.
        let group_ref = GroupRef(unsafe { vfio_file_iommu_group(file.as_ptr().cast()) });
        let group = group_ref.0;
        if group.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: the group is alive (our reference). VFIO claims the group's DMA when it joins a
        // container (`iommu_group_claim_dma_owner`), which takes the kernel's tables out of it.
        if !unsafe { iommu_group_dma_owner_claimed(group) } {
            return Err(EINVAL);
        }
        let held = VfioGroup {
            _file: file,
            group: group_ref,
        };
        for i in 0..GROUP_TABLES {
            // SAFETY: the group is alive (our reference) and so is its table group. Its
            // `tables[]` change under the container's lock, which we cannot take (VFIO's
            // `tce_iommu_create_window`/`_remove_window`): like KVM's
            // `kvm_spapr_tce_attach_iommu_group`, which reads them under no lock either, we
            // take a reference at once, before reading the table, so that it outlives any
            // later removal, which every map checks for ([`VfioGroup::has`]).
            let tbl = unsafe {
                let tbl = ktr_iommu_group_table(group, i);
                if tbl.is_null() {
                    continue;
                }
                iommu_tce_table_get(tbl)
            };
            let Some(tbl) = NonNull::new(tbl) else {
                continue;
            };
            // INVARIANT: we took the reference; `drop` gives it back whether the table fits or
            // not.
            let table = Self { tbl };
            if fits(&table.geometry()) {
                return Ok((table, held));
            }
        }
        Err(EINVAL)
    }

    /// The table's identity.
    pub(crate) fn id(&self) -> usize {
        self.tbl.as_ptr().addr()
    }

    /// The table's geometry.
    pub(crate) fn geometry(&self) -> HwGeometry {
        // SAFETY: we hold a reference to the table.
        unsafe { geometry(self.tbl.as_ptr()) }
    }

    /// `iommu_tce_xchg_no_kill`: writes host-physical `hpa` with DMA direction `dir` into
    /// entry `entry` (absolute, it_offset included) and returns the old address and direction.
    pub(crate) fn xchg(&self, mm: &Mm, entry: u64, hpa: u64, dir: u32) -> Result<(u64, u32)> {
        let mut hpa = u64_as_usize(hpa);
        // CAST: a DMA direction (0..=3).
        let mut dir = dir as c_int;
        // SAFETY: we hold a reference to the table; `mm` is a live mm (mmgrab'ed by the caller).
        let ret = unsafe {
            iommu_tce_xchg_no_kill(
                mm.as_raw().cast(),
                self.tbl.as_ptr(),
                u64_as_usize(entry),
                &mut hpa,
                &mut dir,
            )
        };
        if ret != 0 {
            return Err(EIO);
        }
        // CAST: the direction was written by the callee (0..=3).
        Ok((usize_as_u64(hpa), dir as u32))
    }

    /// `iommu_tce_kill`: invalidates `pages` entries from `entry` (absolute) on in the IOMMU's
    /// caches after exchanges.
    pub(crate) fn kill(&self, entry: u64, pages: u64) {
        // SAFETY: we hold a reference to the table.
        unsafe { iommu_tce_kill(self.tbl.as_ptr(), u64_as_usize(entry), u64_as_usize(pages)) };
    }

    /// The slot of entry `entry` (absolute) in the table's userspace view, where the user address
    /// behind each hardware entry is kept for its later release; with `alloc`, allocates the
    /// view's level if needed. `None` if there is no slot (the view is allocated late).
    pub(crate) fn user_entry(&self, entry: u64, alloc: bool) -> Option<UserEntry<'_>> {
        // SAFETY: we hold a reference to the table.
        let slot =
            unsafe { ktr_iommu_table_useraddr(self.tbl.as_ptr(), u64_as_usize(entry), alloc) };
        // SAFETY: a non-NULL slot is an aligned __be64 of the view, which lives as long as the
        // table.
        NonNull::new(slot).map(|p| UserEntry(unsafe { AtomicU64::from_ptr(p.as_ptr().cast()) }))
    }
}

impl Drop for IommuTable {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own one reference.
        unsafe { iommu_tce_table_put(self.tbl.as_ptr()) };
    }
}

/// The reference to an `iommu_group` that `vfio_file_iommu_group` returns, dropped with
/// `iommu_group_put` as KVM's `kvm_spapr_tce_attach_iommu_group` and
/// `kvm_spapr_tce_release_iommu_group` do (NULL: nothing to drop).
struct GroupRef(*mut c_void);

// SAFETY: an `iommu_group`'s reference count is atomic (a kobject), and it may be put on any CPU.
unsafe impl Send for GroupRef {}
// SAFETY: `&GroupRef` only gives the pointer's value.
unsafe impl Sync for GroupRef {}

impl Drop for GroupRef {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a non-NULL pointer came with a reference of ours.
            unsafe { iommu_group_put(self.0) };
        }
    }
}

/// # Safety
///
/// `tbl` must be a live `iommu_table`.
unsafe fn geometry(tbl: *mut bindings::iommu_table) -> HwGeometry {
    let mut geo = HwGeometry {
        it_page_shift: 0,
        it_offset: 0,
        it_size: 0,
    };
    // SAFETY: by the function's precondition; these fields are fixed at the table's creation.
    unsafe {
        ktr_iommu_table_geometry(
            tbl,
            &mut geo.it_page_shift,
            &mut geo.it_offset,
            &mut geo.it_size,
        )
    };
    geo
}

/// A slot of an `iommu_table`'s userspace view: the user address (big-endian) of the memory a
/// hardware entry maps, 0 for none.
pub(crate) struct UserEntry<'a>(&'a AtomicU64);

impl UserEntry<'_> {
    /// Records user address `ua`.
    pub(crate) fn set(&self, ua: u64) {
        self.0.store(ua.to_be(), Ordering::Relaxed);
    }

    /// Records user address `ua` and returns the one it replaces, in one step.
    pub(crate) fn swap(&self, ua: u64) -> u64 {
        u64::from_be(self.0.swap(ua.to_be(), Ordering::Relaxed))
    }
}

/// The preregistered memory (`VFIO_IOMMU_SPAPR_REGISTER_MEMORY`) of `mm` holding the IOMMU page
/// of `1 << page_shift` bytes at user address `ua`. The caller holds the RCU read lock (`_rcu`):
/// `mm_iommu_put` unlinks a registration with `list_del_rcu` and frees it with `call_rcu`, so it
/// stays valid until the caller's read-side section ends.
fn lookup(mm: &Mm, ua: u64, page_shift: u32, _rcu: &rcu::Guard) -> Result<*mut c_void> {
    // SAFETY: `mm` is live; the lookup walks an RCU list.
    let mem = unsafe { mm_iommu_lookup(mm.as_raw().cast(), u64_as_usize(ua), 1 << page_shift) };
    if mem.is_null() {
        Err(EFAULT)
    } else {
        Ok(mem)
    }
}

/// The preregistered memory holding the IOMMU page at user address `ua` of `mm` and the page's
/// host-physical address (`mm_iommu_lookup` then `mm_iommu_ua_to_hpa`); EFAULT if the page is
/// not preregistered. Both stay valid in the caller's RCU read-side section (see [`lookup`]).
fn translate(
    mm: &Mm,
    ua: u64,
    page_shift: u32,
    rcu: &rcu::Guard,
) -> Result<(*mut c_void, c_ulong)> {
    let mem = lookup(mm, ua, page_shift, rcu)?;
    let mut hpa: c_ulong = 0;
    // SAFETY: `mem` is valid in the RCU read-side section (see `lookup`).
    if unsafe { mm_iommu_ua_to_hpa(mem, u64_as_usize(ua), page_shift, &mut hpa) } != 0 {
        return Err(EFAULT);
    }
    Ok((mem, hpa))
}

/// Whether the IOMMU page of `1 << page_shift` bytes at user address `ua` of `mm` is
/// preregistered, as KVM's kvmppc_tce_validate() asks of every attached table before it stores
/// anything; takes no reference. EFAULT if not.
pub(crate) fn preregistered(mm: &Mm, ua: u64, page_shift: u32) -> Result {
    let rcu = rcu::read_lock();
    translate(mm, ua, page_shift, &rcu).map(drop)
}

/// The host-physical address of the IOMMU page at user address `ua` of `mm`, pinned by its
/// preregistration; takes one mapping reference of that memory, given back by [`mapped_dec`]:
/// while mapped, `mm_iommu_put` does not release it (VFIO's unregistration then still succeeds,
/// but the memory stays pinned until the last mapping goes). EFAULT if the page is not
/// preregistered.
pub(crate) fn mapped_inc(mm: &Mm, ua: u64, page_shift: u32) -> Result<u64> {
    // None of the calls below sleeps: all may run in the read-side section.
    let rcu = rcu::read_lock();
    let (mem, hpa) = translate(mm, ua, page_shift, &rcu)?;
    // SAFETY: as above. Once this succeeds, the mapping reference keeps the registration (and
    // its pinned pages) alive after the section: `mm_iommu_put` refuses a mapped registration.
    if unsafe { mm_iommu_mapped_inc(mem) } != 0 {
        return Err(EBUSY);
    }
    Ok(usize_as_u64(hpa))
}

/// Gives back the mapping reference [`mapped_inc`] took for user address `ua`.
pub(crate) fn mapped_dec(mm: &Mm, ua: u64, page_shift: u32) -> Result {
    let rcu = rcu::read_lock();
    let mem = lookup(mm, ua, page_shift, &rcu)?;
    // SAFETY: `mem` is valid in the RCU read-side section, and holds a mapping reference of ours.
    unsafe { mm_iommu_mapped_dec(mem) };
    Ok(())
}
