// SPDX-License-Identifier: GPL-2.0

//! The calling task: reschedule points, fatal signals, its user address range, and the
//! kernel's own address space for the KUnit tests.

#[cfg(CONFIG_KVM_TCE_REPLAY_KUNIT_TEST)]
use kernel::{bindings, mm::Mm};
use kernel::{
    ffi::{c_char, c_int},
    prelude::*,
};

// The module's C helpers (ktr_helpers.h) for what is inline in C.
extern "C" {
    fn ktr_cond_resched(file: *const c_char, line: c_int);
    fn ktr_fatal_signal_pending() -> bool;
    fn ktr_access_ok(ua: u64, size: u64) -> bool;
}

/// A reschedule point for long loops, C's `cond_resched()`: `__might_resched()` checks (with
/// `CONFIG_DEBUG_ATOMIC_SLEEP`) that the caller, named by its file and line, may sleep, then the
/// preemption model's reschedule point runs (it may sleep without preemption or with dynamic
/// preemption; with full or lazy preemption the scheduler preempts by itself).
#[track_caller]
pub(crate) fn cond_resched() {
    let caller = core::panic::Location::caller();
    let file = kernel::file_from_location(caller);
    let line = c_int::try_from(caller.line()).unwrap_or(c_int::MAX);
    // SAFETY: `cond_resched()` may sleep, which callers allow: they hold no spinlock (mutexes at
    // most) and do not run in atomic context, what `__might_resched()` reports otherwise; `file`
    // is a NUL-terminated static string.
    unsafe { ktr_cond_resched(file.as_char_ptr(), line) };
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
