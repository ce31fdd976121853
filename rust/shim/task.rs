// SPDX-License-Identifier: GPL-2.0

//! The calling task: reschedule points, fatal signals, its user address range, and the
//! kernel's own address space for the KUnit tests.

#[cfg(any(not(CONFIG_PREEMPTION), CONFIG_PREEMPT_DYNAMIC))]
use kernel::ffi::c_int;
#[cfg(CONFIG_KVM_TCE_REPLAY_KUNIT_TEST)]
use kernel::{bindings, mm::Mm};

// The module's C helpers (ktr_helpers.h) for what is inline in C.
extern "C" {
    fn ktr_fatal_signal_pending() -> bool;
    fn ktr_access_ok(ua: u64, size: u64) -> bool;
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
