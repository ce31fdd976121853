// SPDX-License-Identifier: GPL-2.0

//! An insert-only sparse map over the kernel's XArray: a value, once in, stays at its address
//! until the map is dropped, so lookups hand out plain references without a lock.

use crate::pure::num::usize_as_u64;
use core::{
    marker::PhantomData,
    ptr::{self, NonNull},
};
use kernel::{
    bindings,
    ffi::{c_int, c_uint, c_ulong, c_void},
    prelude::*,
    types::Opaque,
};

// The module's C helpers (ktr_helpers.h) for the XArray's inline reservation functions.
extern "C" {
    fn ktr_xa_reserve(xa: *mut bindings::xarray, index: c_ulong) -> c_int;
    fn ktr_xa_release(xa: *mut bindings::xarray, index: c_ulong);
    fn ktr_xa_mark_locked(xa: *mut bindings::xarray, index: c_ulong);
    fn ktr_xa_find_batch(
        xa: *mut bindings::xarray,
        index: c_ulong,
        last: c_ulong,
        entries: *mut *mut c_void,
        indices: *mut c_ulong,
        n: c_uint,
        size: usize,
    ) -> c_uint;
}

/// A sparse map from u64 indices to boxed values over the kernel's XArray, to which values are
/// only ever added: a value, once in, stays at its address until the map is dropped. That is what
/// lets [`SparseMap::get`] hand out plain references without holding any lock.
///
/// # Invariants
///
/// Every entry of `xa` is a pointer from `KBox::into_raw` of a `T`; entries are only inserted,
/// never replaced or erased, until `drop`. Every entry carries `XA_MARK_0`, set under the
/// `xa_lock` with the store, which is how [`SparseMap::iter`] finds them.
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
    /// this call inserted it. Callers that may race must accept that another value won. EBUSY if
    /// `index` is reserved ([`SparseMap::reserve`]): it holds no value, and its reservation's
    /// owner fills it.
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
        // SAFETY: the XArray is initialised; `__xa_insert` and `__xa_set_mark` (in the helper)
        // need its lock, taken around them (and dropped by `__xa_insert` while allocating its
        // nodes, charged to the caller's memory cgroup). `__xa_insert` stores `new` only if the
        // index holds nothing, neither a value nor a reservation (a zero entry, which it
        // reports as -EBUSY, where `__xa_cmpxchg` would report it as the NULL it compares
        // with): 0 means `new` went in.
        let err = unsafe {
            bindings::xa_lock(self.xa.get());
            let err =
                bindings::__xa_insert(self.xa.get(), idx, new.cast(), bindings::GFP_KERNEL_ACCOUNT);
            if err == 0 {
                // INVARIANT: the new entry is marked before the lock is dropped.
                ktr_xa_mark_locked(self.xa.get(), idx);
            }
            bindings::xa_unlock(self.xa.get());
            err
        };
        if err != 0 {
            // SAFETY: `new` did not go into the map, so we still own it.
            drop(unsafe { KBox::from_raw(new) });
            let err = Error::from_errno(err);
            // Occupied: by a value that won a race, or by a reservation (no value).
            return match self.get(index) {
                Some(v) if err == EBUSY => Ok((v, false)),
                _ => Err(err),
            };
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
        NonNull::new(p.cast::<T>()).map(|p| (usize_as_u64(index), unsafe { p.as_ref() }))
    }

    /// The values at indices in `from..=last`, in index order, found [`BATCH`] at a time
    /// by one walk of the XArray each (not one descent from the root per value) through the
    /// nodes' bitmaps of `XA_MARK_0`, each batch's values prefetched so that their cache misses
    /// overlap. A value inserted behind the iterator's position after its batch was found is not
    /// seen.
    pub(crate) fn iter(&self, from: u64, last: u64) -> Iter<'_, T> {
        Iter {
            map: self,
            next: usize::try_from(from).ok(),
            last: usize::try_from(last).unwrap_or(usize::MAX),
            entries: [ptr::null_mut(); BATCH],
            indices: [0; BATCH],
            len: 0,
            at: 0,
        }
    }
}

/// Values an [`Iter`] finds per walk of the XArray.
const BATCH: usize = 32;

/// The values of a [`SparseMap`] from an index on (see [`SparseMap::iter`]).
///
/// # Invariants
///
/// `entries[at..len]` are entries of `map` (live `T`s, by `SparseMap`'s invariant) at
/// `indices[at..len]`; `next` is where the next batch starts, `None` past the end.
pub(crate) struct Iter<'a, T> {
    map: &'a SparseMap<T>,
    next: Option<usize>,
    last: usize,
    entries: [*mut c_void; BATCH],
    indices: [c_ulong; BATCH],
    len: usize,
    at: usize,
}

impl<T> Iter<'_, T> {
    fn refill(&mut self) {
        let Some(from) = self.next.filter(|&n| n <= self.last) else {
            (self.len, self.at) = (0, 0);
            return;
        };
        // SAFETY: the XArray is initialised; the helper walks it under the RCU read lock,
        // writes at most `BATCH` entries and indices into the arrays, which hold that many, and
        // prefetches the `size_of::<T>()` bytes of each entry found (a hint to the CPU only).
        let found = unsafe {
            ktr_xa_find_batch(
                self.map.xa.get(),
                from,
                self.last,
                self.entries.as_mut_ptr(),
                self.indices.as_mut_ptr(),
                // CAST: 32.
                BATCH as c_uint,
                size_of::<T>(),
            )
        };
        // CAST: at most BATCH.
        let found = found as usize;
        // INVARIANT: the helper filled `found` entries with their indices, in index order.
        (self.len, self.at) = (found, 0);
        self.next = if found < BATCH {
            None
        } else {
            self.indices[found - 1].checked_add(1)
        };
    }
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = (u64, &'a T);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at == self.len {
            self.refill();
        }
        if self.at >= self.len {
            return None;
        }
        let entry = NonNull::new(self.entries[self.at])?;
        let index = self.indices[self.at];
        self.at += 1;
        // SAFETY: by the type invariant the entry is a live `T` that stays put while the map
        // lives, which `'a` borrows.
        Some((usize_as_u64(index), unsafe { entry.cast::<T>().as_ref() }))
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
        // SAFETY: the XArray is initialised; `__xa_store` and `__xa_set_mark` (in the helper)
        // need its lock, taken around them. The index holds the reservation (a zero entry),
        // never a value: only this token fills it. `xa_err` only inspects the value.
        let old = unsafe {
            bindings::xa_lock(xa);
            let old = bindings::__xa_store(xa, self.index, new.cast(), bindings::GFP_NOWAIT);
            if bindings::xa_err(old) == 0 {
                // INVARIANT: the new entry is marked before the lock is dropped.
                ktr_xa_mark_locked(xa, self.index);
            }
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
