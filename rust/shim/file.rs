// SPDX-License-Identifier: GPL-2.0

//! Anonymous-inode files with our own file operations, as KVM makes its TCE table fds: an
//! object's [`AnonFile`] methods become its fd's `release` and `unlocked_ioctl`, and, for an
//! object that can be mapped, `mmap` and the VMA's fault handlers (write-notify included).

use core::{
    marker::PhantomData,
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{
    bindings,
    error::{from_err_ptr, VTABLE_DEFAULT_ERROR},
    ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void},
    fs::{file::FileDescriptorReservation, File, LocalFile},
    mm::virt::{VmaNew, VmaRef},
    page::{Page, PAGE_SIZE},
    prelude::*,
    sync::{aref::ARef, Arc, ArcBorrow},
    types::ForeignOwnable,
};

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

// The module's C helper (ktr_helpers.h) for what is inline in C. `struct vm_fault` goes as
// `void *`: its binding holds a type rustc does not deem FFI-safe.
extern "C" {
    fn ktr_lock_fault_page(vmf: *mut c_void) -> bindings::vm_fault_t;
}

/// An object behind an anonymous-inode file descriptor (a TCE table, a mock IOMMU group): its
/// methods become the file's operations, as `kernel::miscdevice::MiscDevice`'s do. The mmap
/// methods are optional: an object that implements [`AnonFile::fault`] (and with it
/// [`AnonFile::pages`], [`AnonFile::mkwrite`] and [`AnonFile::user_mappings`]) can be mapped,
/// with pages inserted on fault.
#[vtable]
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
    fn user_mappings(&self) -> &UserMappings {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Number of pages that can be mapped; a page past them is never in a mapping (the object's
    /// [`AnonFile::fault`] refuses it), so making one writable raises SIGBUS.
    fn pages(&self) -> usize {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Finds the page at page offset `pgoff` (allocating it for a write fault) and calls
    /// `insert` with it, or with `None` to map the zero page read-only, atomically with respect
    /// to the object's page allocations. The page is mapped writable only for a write fault:
    /// the first write to a page mapped by a read comes to [`AnonFile::mkwrite`]. `pgoff` is
    /// any page of the mapping, which may extend past [`AnonFile::pages`]; an error (one past
    /// them included) is SIGBUS for the faulting access, ENOMEM an OOM.
    fn fault(&self, _pgoff: usize, _write: bool, _insert: &mut dyn FnMut(Option<&Page>)) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Userspace is about to write the mapped page at `pgoff` for the first time through this
    /// mapping (write-notify).
    fn mkwrite(&self, _pgoff: usize) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The user mappings of one mappable file: the `address_space` of the file's own inode, which
/// this holds a reference to, so that it stays valid for as long as the object does, file or
/// no file.
///
/// # Invariants
///
/// `inode` is null (no file yet, or never: a KUnit table) or an inode this holds a reference
/// to (`ihold`), given back (`iput`) when this is dropped; it is set once, when the file is
/// created, and then never changes.
pub(crate) struct UserMappings {
    inode: AtomicPtr<bindings::inode>,
}

impl UserMappings {
    /// Before the file exists.
    pub(crate) const fn new() -> Self {
        Self {
            inode: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Drops the PTEs of page `pgoff` from every user mapping of the file, so that the next
    /// access faults in the page as it is now (used when a page mapped as the zero page gets
    /// allocated). Nothing to do before the file exists; once the file is gone, it has no
    /// mappings left (each holds the file).
    pub(crate) fn unmap_page(&self, pgoff: u64) {
        let inode = self.inode.load(Ordering::Acquire);
        let Ok(pgoff) = c_ulong::try_from(pgoff) else {
            return;
        };
        if inode.is_null() {
            return;
        }
        // SAFETY: by the type invariant we hold a reference to the inode, so it and its
        // `i_mapping` (the file's `f_mapping`, where its mappings are) are alive.
        unsafe { bindings::unmap_mapping_pages((*inode).i_mapping, pgoff, 1, false) };
    }
}

impl Drop for UserMappings {
    fn drop(&mut self) {
        let inode = *self.inode.get_mut();
        if !inode.is_null() {
            // SAFETY: by the type invariant, the reference taken when the file was created,
            // given back once; the object is being dropped in process context (a file's
            // release, an ioctl's reference), where `iput` may sleep.
            unsafe { bindings::iput(inode) };
        }
    }
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
        // away, so the `Arc<T>` it owns is given back exactly once. The object's reference to
        // the file's inode (`UserMappings`) goes with the object.
        drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign((*file).private_data) });
        0
    }

    /// # Safety
    ///
    /// As for [`Self::release`]; the file is alive for the duration of the call.
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: the private data is an `Arc<T>` that lives as long as the file.
        let this = unsafe { <Arc<T> as ForeignOwnable>::borrow((*file).private_data) };
        match T::ioctl(this, cmd, arg) {
            // CAST: isize and c_long are both 64 bits.
            Ok(ret) => ret as c_long,
            // CAST: an errno widens.
            Err(e) => e.to_errno() as c_long,
        }
    }
}

impl<T: AnonFile> Ops<T> {
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
        // A mixed map of normal pages and the zero page. VM_IO makes the slow GUP path refuse
        // the VMA (check_vma_flags()), which is what allows the zero page in a writable shared
        // mapping (vm_mixed_zeropage_allowed()). GUP-fast does not look at the VMA: it takes
        // references on our pages where they are mapped (vmsplice), and such a reference keeps
        // a page alive after its table frees it (a page is freed with its last reference).
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
    /// The file operations of `T`: release, ioctl, and mmap if `T` implements
    /// [`AnonFile::fault`].
    pub(crate) const fn new<T: AnonFile>() -> Self {
        Self(bindings::file_operations {
            owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
            release: Some(Ops::<T>::release),
            unlocked_ioctl: Some(Ops::<T>::ioctl),
            #[cfg(CONFIG_COMPAT)]
            compat_ioctl: Some(bindings::compat_ptr_ioctl),
            mmap: if T::HAS_FAULT {
                Some(Ops::<T>::mmap)
            } else {
                None
            },
            ..pin_init::zeroed()
        })
    }
}

/// Creates an anonymous-inode file for `this` (O_RDWR) and installs it in a new fd with
/// O_CLOEXEC, as KVM does for its TCE tables; returns the fd.
pub(crate) fn install_fd<T: AnonFile>(this: Arc<T>) -> Result<isize> {
    let reservation = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    let own_inode = T::HAS_USER_MAPPINGS;
    let private = this.into_foreign();
    let (name, fops) = (T::NAME.as_char_ptr(), ptr::from_ref(&T::fops().0).cast());
    // CAST: O_RDWR is 2.
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
    if T::HAS_USER_MAPPINGS {
        // SAFETY: `file` is the new, valid file, which holds a reference to its inode, so
        // `ihold` may take another.
        let inode = unsafe {
            let inode = (*file).f_inode;
            bindings::ihold(inode);
            inode
        };
        // INVARIANT: the reference just taken, set once: the file is new.
        this.user_mappings().inode.store(inode, Ordering::Release);
    }
    // SAFETY: the anon_inode function returned a new file whose one reference we own.
    let file: ARef<File> = unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast())) };
    let fd = reservation.reserved_fd();
    reservation.fd_install(file);
    // CAST: an fd widens.
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
