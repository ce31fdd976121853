// SPDX-License-Identifier: GPL-2.0

//! The module's one thin layer over raw C: anonymous-inode files with our own file operations,
//! the mmap fault handlers (write-notify included), an insert-only sparse map over the XArray,
//! the kernel address of a page, `cond_resched` and fatal signals, the RLIMIT_MEMLOCK charge of
//! a context's pages and `access_ok`. Everything outside this file is safe Rust.

use core::{
    marker::PhantomData,
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, AtomicU64, Ordering},
};
use kernel::{
    bindings,
    error::from_err_ptr,
    ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void},
    fs::{file::FileDescriptorReservation, File, LocalFile},
    mm::{
        virt::{VmaNew, VmaRef},
        Mm,
    },
    page::{Page, PAGE_SIZE},
    prelude::*,
    sync::{aref::ARef, Arc, ArcBorrow},
    types::{ForeignOwnable, Opaque},
};

#[cfg(CONFIG_KVM_TCE_REPLAY_SPAPR)]
pub(crate) mod spapr;

#[cfg(CONFIG_HIGHMEM)]
compile_error!("TCE pages are used through the kernel's direct map, which needs !CONFIG_HIGHMEM");

extern "C" {
    fn anon_inode_getfile(
        name: *const c_char,
        fops: *const c_void,
        private: *mut c_void,
        flags: c_int,
    ) -> *mut c_void;
    fn anon_inode_create_getfile(
        name: *const c_char,
        fops: *const c_void,
        private: *mut c_void,
        flags: c_int,
        context_inode: *const c_void,
    ) -> *mut c_void;
}

// The module's own C helpers (ktr_helpers.h) for what is inline in C. `struct mm_struct` and
// `struct vm_fault` go as `void *`: their bindings hold a type rustc does not deem FFI-safe.
extern "C" {
    fn ktr_fatal_signal_pending() -> bool;
    fn ktr_access_ok(ua: u64, size: u64) -> bool;
    fn ktr_charge_memlock(mm: *mut c_void, pages: c_ulong) -> c_int;
    fn ktr_uncharge_memlock(mm: *mut c_void, pages: c_ulong);
    fn ktr_lock_fault_page(vmf: *mut c_void) -> bindings::vm_fault_t;
    fn ktr_xa_reserve(xa: *mut bindings::xarray, index: c_ulong) -> c_int;
    fn ktr_xa_release(xa: *mut bindings::xarray, index: c_ulong);
}

/// An object behind an anonymous-inode file descriptor (a TCE table, a mock IOMMU group).
pub(crate) trait AnonFile: Send + Sync + Sized + 'static {
    /// Name of the anonymous inode, as `/proc/PID/fd` shows it.
    const NAME: &'static CStr;

    /// The file operations of this type: a `static` made with [`FileOps::new`], whose address
    /// identifies the type of a file.
    fn fops() -> &'static FileOps;

    /// An ioctl on the file.
    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize>;

    /// For a mappable object, the record of its file's user mappings: the file then gets an
    /// inode of its own, so that its mappings can be told apart from other files'.
    fn user_mappings(&self) -> Option<&UserMappings> {
        None
    }
}

/// The user mappings of one mappable file: the `address_space` of the file's own inode.
///
/// # Invariants
///
/// `mapping` is null or points to the `address_space` of the live file that owns the object
/// holding this; it is set when the file is created and cleared when it is released.
pub(crate) struct UserMappings {
    mapping: AtomicPtr<bindings::address_space>,
}

impl UserMappings {
    /// Before the file exists.
    pub(crate) const fn new() -> Self {
        Self {
            mapping: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Drops the PTEs of page `pgoff` from every user mapping of the file, so that the next
    /// access faults in the page as it is now (used when a page mapped as the zero page gets
    /// allocated). The caller runs on behalf of the file: an ioctl on it or a fault on a
    /// mapping of it, which keeps the file alive.
    pub(crate) fn unmap_page(&self, pgoff: u64) {
        let mapping = self.mapping.load(Ordering::Acquire);
        let Ok(pgoff) = c_ulong::try_from(pgoff) else {
            return;
        };
        if mapping.is_null() {
            return;
        }
        // SAFETY: by the type invariant and the caller's guarantee the mapping is alive.
        unsafe { bindings::unmap_mapping_pages(mapping, pgoff, 1, false) };
    }
}

/// An object whose file can be mmapped: pages are inserted on fault.
pub(crate) trait Mappable: AnonFile {
    /// Number of pages that can be faulted in; past them, accesses raise SIGBUS.
    fn pages(&self) -> usize;

    /// Finds the page at page offset `pgoff` (allocating it for a write fault) and calls
    /// `insert` with it, or with `None` to map the zero page read-only, atomically with respect
    /// to the object's page allocations. The page is mapped writable only for a write fault:
    /// the first write to a page mapped by a read comes to [`Mappable::mkwrite`].
    fn fault(&self, pgoff: usize, write: bool, insert: &mut dyn FnMut(Option<&Page>)) -> Result;

    /// Userspace is about to write the mapped page at `pgoff` for the first time through this
    /// mapping (write-notify).
    fn mkwrite(&self, pgoff: usize) -> Result;
}

/// The file operations of an [`AnonFile`] type.
pub(crate) struct FileOps(bindings::file_operations);

// SAFETY: the operations are never modified after construction and only hold function pointers
// and the module pointer, which may be used from any thread.
unsafe impl Sync for FileOps {}

struct Ops<T>(PhantomData<T>);

impl<T: AnonFile> Ops<T> {
    /// # Safety
    ///
    /// `file` is a file created by [`install_fd`] for `T`, so its private data is an `Arc<T>`.
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: by the function's safety requirement; the last reference to the file is going
        // away, so the `Arc<T>` it owns is given back exactly once.
        let this = unsafe { <Arc<T> as ForeignOwnable>::from_foreign((*file).private_data) };
        if let Some(m) = this.user_mappings() {
            // INVARIANT: the file and its inode are going away.
            m.mapping.store(ptr::null_mut(), Ordering::Release);
        }
        drop(this);
        0
    }

    /// # Safety
    ///
    /// As for [`Self::release`]; the file is alive for the duration of the call.
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: the private data is an `Arc<T>` that lives as long as the file.
        let this = unsafe { <Arc<T> as ForeignOwnable>::borrow((*file).private_data) };
        match T::ioctl(this, cmd, arg) {
            Ok(ret) => ret as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }
}

impl<T: Mappable> Ops<T> {
    const VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
        fault: Some(Self::fault),
        page_mkwrite: Some(Self::page_mkwrite),
        pfn_mkwrite: Some(Self::pfn_mkwrite),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// As for [`Self::release`]; `vma` is a new mapping of `file` being set up.
    unsafe extern "C" fn mmap(
        file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: the caller passes a VMA under construction, with the mmap lock held.
        let area = unsafe { VmaNew::from_raw(vma) };
        if area.flags() & bindings::VM_SHARED == 0 {
            return EINVAL.to_errno();
        }
        // A mixed map of normal pages and the zero page; VM_IO keeps GUP away, which is what
        // allows the zero page in a writable shared mapping (vm_mixed_zeropage_allowed()).
        area.set_io();
        area.set_dontexpand();
        area.set_dontdump();
        area.set_mixedmap();
        // SAFETY: the VMA is being set up and not yet visible; the private data is the file's
        // `Arc<T>`, which outlives the VMA because the VMA holds a reference to the file.
        unsafe {
            (*vma).vm_ops = &Self::VM_OPS;
            (*vma).vm_private_data = (*file).private_data;
        }
        0
    }

    /// # Safety
    ///
    /// `vmf` is a fault on a VMA set up by [`Self::mmap`].
    unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: the fault describes a live VMA of ours, whose private data is an `Arc<T>`.
        let (this, pgoff, write) = unsafe {
            let f = &(*vmf).__bindgen_anon_1;
            let this = <Arc<T> as ForeignOwnable>::borrow((*f.vma).vm_private_data);
            let write = (*vmf).flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0;
            (this, f.pgoff, write)
        };
        if pgoff >= this.pages() {
            return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        }
        let mut ret = bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        let mut insert = |page: Option<&Page>| {
            ret = match page {
                // SAFETY: `vmf` is the current fault; the page belongs to the object, which
                // outlives the VMA. The mapping write-notifies (it has `page_mkwrite`), so its
                // `vm_page_prot` is read-only and only a write fault maps the page writable.
                Some(page) => unsafe {
                    bindings::vmf_insert_page_mkwrite(vmf, page.as_ptr(), write)
                },
                // SAFETY: as above; `__zero_page` is set once at boot, and with `mkwrite` false
                // it is mapped read-only, so a write comes to `pfn_mkwrite`.
                None => unsafe {
                    bindings::vmf_insert_page_mkwrite(vmf, bindings::__zero_page, false)
                },
            };
        };
        match this.fault(pgoff, write, &mut insert) {
            Ok(()) => ret,
            Err(e) if e == ENOMEM => bindings::vm_fault_reason_VM_FAULT_OOM,
            Err(_) => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
        }
    }

    /// The first write to one of our pages mapped by a read fault (write-notify): tell the
    /// object, then make the PTE writable, which the core does with the page locked.
    ///
    /// # Safety
    ///
    /// As for [`Self::fault`]; `vmf->page` is the page of the PTE being made writable.
    unsafe extern "C" fn page_mkwrite(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: as in `fault`.
        let (this, pgoff) = unsafe {
            let f = &(*vmf).__bindgen_anon_1;
            let this = <Arc<T> as ForeignOwnable>::borrow((*f.vma).vm_private_data);
            (this, f.pgoff)
        };
        if pgoff >= this.pages() {
            return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        }
        match this.mkwrite(pgoff) {
            // SAFETY: `vmf->page` is the faulting page, referenced by `do_wp_page` for the call;
            // it is in no file, so `do_page_mkwrite` needs it locked by us (VM_FAULT_LOCKED)
            // rather than retrying for a page mapping that never comes.
            Ok(()) => unsafe { ktr_lock_fault_page(vmf.cast()) },
            Err(e) if e == ENOMEM => bindings::vm_fault_reason_VM_FAULT_OOM,
            Err(_) => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
        }
    }

    /// A write to a read-only PTE of ours without a `struct page` behind it, which is only ever
    /// the zero page: allocate the table page, drop the zero page's PTE and let the access fault
    /// again.
    ///
    /// # Safety
    ///
    /// As for [`Self::fault`].
    unsafe extern "C" fn pfn_mkwrite(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: as in `fault`; the PTE lock is not held while `pfn_mkwrite` runs.
        let (this, pgoff, area, address) = unsafe {
            let f = &(*vmf).__bindgen_anon_1;
            let this = <Arc<T> as ForeignOwnable>::borrow((*f.vma).vm_private_data);
            (this, f.pgoff, VmaRef::from_raw(f.vma), f.address)
        };
        if pgoff >= this.pages() {
            return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        }
        // Allocating the page drops the zero page from every mapping (`UserMappings`); the zap
        // is for this mapping in any case.
        match this.fault(pgoff, true, &mut |_| {}) {
            Ok(()) => {
                area.zap_vma_range(address, PAGE_SIZE);
                bindings::vm_fault_reason_VM_FAULT_NOPAGE
            }
            Err(e) if e == ENOMEM => bindings::vm_fault_reason_VM_FAULT_OOM,
            Err(_) => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
        }
    }
}

impl FileOps {
    /// The file operations of `T`: release, ioctl and no mmap.
    pub(crate) const fn new<T: AnonFile>() -> Self {
        Self(bindings::file_operations {
            owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
            release: Some(Ops::<T>::release),
            unlocked_ioctl: Some(Ops::<T>::ioctl),
            #[cfg(CONFIG_COMPAT)]
            compat_ioctl: Some(bindings::compat_ptr_ioctl),
            ..pin_init::zeroed()
        })
    }

    /// The file operations of `T` with mmap: pages inserted on fault, see [`Mappable`].
    pub(crate) const fn new_mappable<T: Mappable>() -> Self {
        let mut ops = Self::new::<T>();
        ops.0.mmap = Some(Ops::<T>::mmap);
        ops
    }
}

/// Creates an anonymous-inode file for `this` (O_RDWR) and installs it in a new fd with
/// O_CLOEXEC, as KVM does for its TCE tables; returns the fd.
pub(crate) fn install_fd<T: AnonFile>(this: Arc<T>) -> Result<isize> {
    let reservation = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    let own_inode = this.user_mappings().is_some();
    let private = this.into_foreign();
    let (name, fops) = (T::NAME.as_char_ptr(), ptr::from_ref(&T::fops().0).cast());
    let flags = bindings::O_RDWR as c_int;
    // SAFETY: the name is a NUL-terminated static string, the operations are a static of `T`
    // and `private` is an `Arc<T>` that the file's release gives back.
    let file = unsafe {
        if own_inode {
            anon_inode_create_getfile(name, fops, private, flags, ptr::null())
        } else {
            anon_inode_getfile(name, fops, private, flags)
        }
    };
    let file = match from_err_ptr(file.cast::<bindings::file>()) {
        Ok(file) => file,
        Err(e) => {
            // SAFETY: the file was not created, so the `Arc<T>` is still ours.
            drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign(private) });
            return Err(e);
        }
    };
    // SAFETY: `private` is the `Arc<T>` the new file owns, alive as long as the file.
    let this = unsafe { <Arc<T> as ForeignOwnable>::borrow(private) };
    if let Some(m) = this.user_mappings() {
        // INVARIANT: the file is alive; its release clears the pointer.
        // SAFETY: `file` is the new, valid file.
        m.mapping
            .store(unsafe { (*file).f_mapping }, Ordering::Release);
    }
    // SAFETY: the anon_inode function returned a new file whose one reference we own.
    let file: ARef<File> = unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast())) };
    let fd = reservation.reserved_fd();
    reservation.fd_install(file);
    Ok(fd as isize)
}

/// The object of type `T` behind the fd `fd` of the calling process: EBADF if `fd` is not
/// open, EINVAL if it is not a file of `T`.
pub(crate) fn from_fd<T: AnonFile>(fd: i32) -> Result<Arc<T>> {
    let fd = u32::try_from(fd).map_err(|_| EBADF)?;
    let file = LocalFile::fget(fd).map_err(|_| EBADF)?;
    let raw = file.as_ptr();
    // SAFETY: `fget` holds a reference, so the file is alive; `f_op` never changes.
    if !ptr::eq(unsafe { (*raw).f_op }, &T::fops().0) {
        return Err(EINVAL);
    }
    // SAFETY: the file is one of `T`'s, so its private data is an `Arc<T>`, alive while we hold
    // the file; we take a new reference before dropping ours to the file.
    let this = unsafe { <Arc<T> as ForeignOwnable>::borrow((*raw).private_data) };
    Ok(this.into())
}

/// A sparse map from u64 indices to boxed values over the kernel's XArray, to which values are
/// only ever added: a value, once in, stays at its address until the map is dropped. That is what
/// lets [`SparseMap::get`] hand out plain references without holding any lock.
///
/// # Invariants
///
/// Every entry of `xa` is a pointer from `KBox::into_raw` of a `T`; entries are only inserted,
/// never replaced or erased, until `drop`.
#[pin_data(PinnedDrop)]
pub(crate) struct SparseMap<T> {
    #[pin]
    xa: Opaque<bindings::xarray>,
    _p: PhantomData<KBox<T>>,
}

// SAFETY: the map owns `T`s (so it is `Send` if they are) and hands out `&T` to any thread (so it
// is `Sync` if `T` is `Sync`); the XArray does its own locking.
unsafe impl<T: Send> Send for SparseMap<T> {}
// SAFETY: see above.
unsafe impl<T: Send + Sync> Sync for SparseMap<T> {}

impl<T> SparseMap<T> {
    /// An empty map; allocates nothing.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `xa` is valid memory for an XArray, initialised here.
            xa <- Opaque::ffi_init(|xa| unsafe { bindings::xa_init_flags(xa, 0) }),
            _p: PhantomData,
        })
    }

    fn ptr_at(&self, index: u64) -> Option<NonNull<T>> {
        let index = usize::try_from(index).ok()?;
        // SAFETY: the XArray is initialised; `xa_load` takes the RCU read lock itself.
        NonNull::new(unsafe { bindings::xa_load(self.xa.get(), index) }.cast())
    }

    /// The value at `index`.
    pub(crate) fn get(&self, index: u64) -> Option<&T> {
        // SAFETY: by the type invariant the entry is a live `T` that stays put while `self` lives.
        self.ptr_at(index).map(|p| unsafe { p.as_ref() })
    }

    /// The value at `index`, made by `make` and inserted if there was none; the flag is true if
    /// this call inserted it. Callers that may race must accept that another value won.
    pub(crate) fn get_or_insert(
        &self,
        index: u64,
        make: impl FnOnce() -> Result<KBox<T>>,
    ) -> Result<(&T, bool)> {
        if let Some(v) = self.get(index) {
            return Ok((v, false));
        }
        let idx = usize::try_from(index).map_err(|_| EINVAL)?;
        let new = KBox::into_raw(make()?);
        // SAFETY: the XArray is initialised; `__xa_cmpxchg` needs its lock, taken around it (and
        // dropped by it while allocating its nodes, charged to the caller's memory cgroup).
        let old = unsafe {
            bindings::xa_lock(self.xa.get());
            let old = bindings::__xa_cmpxchg(
                self.xa.get(),
                idx,
                ptr::null_mut(),
                new.cast(),
                bindings::GFP_KERNEL_ACCOUNT,
            );
            bindings::xa_unlock(self.xa.get());
            old
        };
        // SAFETY: `xa_err` only inspects the value.
        let err = unsafe { bindings::xa_err(old) };
        if err != 0 || !old.is_null() {
            // SAFETY: `new` did not go into the map, so we still own it.
            drop(unsafe { KBox::from_raw(new) });
            if err != 0 {
                return Err(Error::from_errno(err));
            }
            // SAFETY: `old` is the entry that won, a live `T` by the type invariant.
            return Ok((unsafe { &*old.cast::<T>() }, false));
        }
        // INVARIANT: the entry is a `KBox::into_raw` pointer.
        // SAFETY: `new` is now in the map and lives as long as `self`.
        Ok((unsafe { &*new }, true))
    }

    /// Reserves `index`, which holds no value: the XArray's nodes for it are allocated now, so
    /// that filling it cannot fail; readers see nothing there until it is filled. A reservation
    /// dropped unfilled is given back.
    pub(crate) fn reserve(&self, index: u64) -> Result<Reservation<'_, T>> {
        let idx = c_ulong::try_from(index).map_err(|_| EINVAL)?;
        // SAFETY: the XArray is initialised; `xa_reserve` takes its lock. A reserved entry is a
        // zero entry, which `xa_load` and `xa_find` skip, so the type invariant holds.
        kernel::error::to_result(unsafe { ktr_xa_reserve(self.xa.get(), idx) })?;
        Ok(Reservation {
            map: self,
            index: idx,
        })
    }

    /// The first value at an index in `from..=last`, with its index.
    pub(crate) fn find(&self, from: u64, last: u64) -> Option<(u64, &T)> {
        let mut index = usize::try_from(from).ok()?;
        let last = usize::try_from(last).unwrap_or(usize::MAX);
        // SAFETY: the XArray is initialised; `xa_find` takes the RCU read lock itself.
        let p = unsafe { bindings::xa_find(self.xa.get(), &mut index, last, bindings::XA_PRESENT) };
        // SAFETY: by the type invariant the entry is a live `T` that stays put while `self` lives.
        NonNull::new(p.cast::<T>()).map(|p| (index as u64, unsafe { p.as_ref() }))
    }
}

/// A reserved, empty index of a [`SparseMap`] (see [`SparseMap::reserve`]).
pub(crate) struct Reservation<'a, T> {
    map: &'a SparseMap<T>,
    index: c_ulong,
}

impl<'a, T> Reservation<'a, T> {
    /// Stores `value` at the reserved index and returns it, where it stays until the map is
    /// dropped. The nodes are there: the store allocates nothing.
    pub(crate) fn fill(self, value: KBox<T>) -> Result<&'a T> {
        let new = KBox::into_raw(value);
        let xa = self.map.xa.get();
        // SAFETY: the XArray is initialised; `__xa_store` needs its lock, taken around it. The
        // index holds the reservation (a zero entry), never a value: only this token fills it.
        let old = unsafe {
            bindings::xa_lock(xa);
            let old = bindings::__xa_store(xa, self.index, new.cast(), bindings::GFP_NOWAIT);
            bindings::xa_unlock(xa);
            old
        };
        // SAFETY: `xa_err` only inspects the value.
        let err = unsafe { bindings::xa_err(old) };
        if err != 0 {
            // SAFETY: `new` did not go into the map, so we still own it.
            drop(unsafe { KBox::from_raw(new) });
            return Err(Error::from_errno(err));
        }
        // The reservation is used up: nothing to release.
        core::mem::forget(self);
        // INVARIANT: the entry is a `KBox::into_raw` pointer.
        // SAFETY: `new` is now in the map and lives as long as it.
        Ok(unsafe { &*new })
    }
}

impl<T> Drop for Reservation<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the XArray is initialised and the index still holds our reservation.
        unsafe { ktr_xa_release(self.map.xa.get(), self.index) };
    }
}

#[pinned_drop]
impl<T> PinnedDrop for SparseMap<T> {
    fn drop(self: Pin<&mut Self>) {
        let mut from = 0;
        while let Some((index, value)) = self.find(from, u64::MAX) {
            let raw = ptr::from_ref(value).cast_mut();
            // SAFETY: by the type invariant the entry came from `KBox::into_raw`; it is freed once
            // and the XArray, destroyed right after, is not read again.
            drop(unsafe { KBox::from_raw(raw) });
            match index.checked_add(1) {
                Some(next) => from = next,
                None => break,
            }
        }
        // SAFETY: the XArray is initialised and no longer used.
        unsafe { bindings::xa_destroy(self.xa.get()) };
    }
}

/// A page of TCEs, seen through the kernel's direct map as u64 atomics (userspace may write the
/// same memory through mmap at any time), its address looked up once.
///
/// # Invariants
///
/// `words` is the direct-map address of `page`, PAGE_SIZE bytes, page aligned.
pub(crate) struct WordPage {
    page: Page,
    words: NonNull<AtomicU64>,
}

// SAFETY: the page is owned (`Page` is `Send`); `words` only points into it and is only used as
// atomics, which any thread may do.
unsafe impl Send for WordPage {}
// SAFETY: as above: shared access goes through atomics.
unsafe impl Sync for WordPage {}

impl WordPage {
    /// A zeroed page, charged to the caller's memory cgroup.
    pub(crate) fn new_zeroed() -> Result<Self> {
        let page = Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?;
        // SAFETY: without CONFIG_HIGHMEM (checked at the top of this file) `kmap_local_page`
        // returns `page_address()` and `kunmap_local` does nothing, so the address is the page's
        // permanent direct-map address, valid for as long as the page is allocated.
        let addr = unsafe {
            let addr = bindings::kmap_local_page(page.as_ptr());
            bindings::kunmap_local(addr);
            addr
        };
        let words = NonNull::new(addr.cast::<AtomicU64>()).ok_or(ENOMEM)?;
        // INVARIANT: the direct-map address of `page`.
        Ok(Self { page, words })
    }

    /// The page, for mapping it into userspace.
    pub(crate) fn page(&self) -> &Page {
        &self.page
    }

    /// The page's u64 words.
    pub(crate) fn words(&self) -> &[AtomicU64] {
        // SAFETY: by the type invariant, PAGE_SIZE bytes, aligned, alive while `self` is, and
        // only ever accessed as u64 atomics.
        unsafe { core::slice::from_raw_parts(self.words.as_ptr(), PAGE_SIZE / 8) }
    }
}

/// A reschedule point for long loops; without preemption (or with dynamic preemption) it may
/// sleep, with full or lazy preemption the scheduler preempts by itself and this is a no-op.
pub(crate) fn cond_resched() {
    #[cfg(any(not(CONFIG_PREEMPTION), CONFIG_PREEMPT_DYNAMIC))]
    {
        extern "C" {
            fn __cond_resched() -> c_int;
        }
        // SAFETY: callers hold no spinlock; `__cond_resched` may sleep.
        unsafe { __cond_resched() };
    }
}

/// The kernel's own address space, for the KUnit tests' contexts.
#[cfg(CONFIG_KVM_TCE_REPLAY_KUNIT_TEST)]
pub(crate) fn init_mm() -> &'static Mm {
    // SAFETY: `init_mm` is a static `mm_struct` that is never freed, so it outlives any use; its
    // `mm_count` starts at 1, so `mmgrab`/`mmdrop` never free it either.
    unsafe { Mm::from_raw(&raw mut bindings::init_mm) }
}

/// Whether the calling task has a fatal signal pending: long loops stop between chunks.
pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: reads the current task's pending signals, which is always allowed.
    unsafe { ktr_fatal_signal_pending() }
}

/// Whether `size` bytes at `ua` are a range of user addresses (`access_ok`, untagged).
pub(crate) fn user_range_ok(ua: u64, size: u64) -> bool {
    // SAFETY: `access_ok` only compares the range with the task's address limit.
    unsafe { ktr_access_ok(ua, size) }
}

/// Pages charged to an address space's `pinned_vm` against RLIMIT_MEMLOCK, given back when
/// dropped.
///
/// # Invariants
///
/// `pages` pages were added to `mm`'s `pinned_vm` by `ktr_charge_memlock`.
pub(crate) struct MemlockCharge {
    mm: ARef<Mm>,
    pages: c_ulong,
}

impl MemlockCharge {
    /// Charges `pages` pages to `mm`: ENOMEM past the caller's RLIMIT_MEMLOCK, unless it has
    /// CAP_IPC_LOCK. Never sleeps (see ktr_helpers.c).
    pub(crate) fn new(mm: &Mm, pages: usize) -> Result<Self> {
        let pages = c_ulong::try_from(pages).map_err(|_| ENOMEM)?;
        // SAFETY: `mm` is a live address space (the reference keeps at least its `mm_count`).
        kernel::error::to_result(unsafe { ktr_charge_memlock(mm.as_raw().cast(), pages) })?;
        // INVARIANT: charged just above.
        Ok(Self {
            mm: mm.into(),
            pages,
        })
    }
}

impl Drop for MemlockCharge {
    fn drop(&mut self) {
        // SAFETY: by the type invariant; `ARef<Mm>` (mmgrab) keeps the `mm_struct` and its
        // `pinned_vm` alive even after the address space is torn down.
        unsafe { ktr_uncharge_memlock(self.mm.as_raw().cast(), self.pages) };
    }
}

// SAFETY: all-zero bytes are an empty set of slots (documented on the type): every slot's size is
// 0 and none is indexed.
unsafe impl pin_init::Zeroable for crate::pure::memslots::Memslots {}

/// Marks the uapi structs as plain data that can be copied from and to userspace.
macro_rules! plain_data {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: a `repr(C)` struct of integers and integer arrays without padding (the sizes
        // are checked in uapi.rs): every bit pattern is valid and every byte is initialised.
        unsafe impl kernel::transmute::FromBytes for $t {}
        // SAFETY: as above.
        unsafe impl kernel::transmute::AsBytes for $t {}
    )*};
}

plain_data!(
    crate::pure::uapi::KvmEnableCap,
    crate::pure::uapi::KvmCreateSpaprTce64,
    crate::pure::uapi::KvmUserspaceMemoryRegion,
    crate::pure::uapi::KtrPutTce,
    crate::pure::uapi::KtrPutTceIndirect,
    crate::pure::uapi::KtrStuffTce,
    crate::pure::uapi::KtrGetTce,
    crate::pure::uapi::KtrPopulated,
    crate::pure::uapi::KtrTableStats,
    crate::pure::uapi::KtrAttach,
    crate::pure::uapi::KtrMemStats,
);

#[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
plain_data!(
    crate::pure::uapi_test::KtrMockGroup,
    crate::pure::uapi_test::KtrMockRead,
    crate::pure::uapi_test::KtrMockStats,
);
