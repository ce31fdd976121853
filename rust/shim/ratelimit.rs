// SPDX-License-Identifier: GPL-2.0

//! Rate-limited warnings: `pr_warn_ratelimited!`, one kernel `struct ratelimit_state` per call
//! site, as C's `pr_warn_ratelimited()` keeps one, for the warnings a user's ioctls can trigger.

use core::sync::atomic::{AtomicU8, Ordering};
use kernel::{bindings, ffi::c_void, prelude::*, str::CStr, types::Opaque};

// The module's C helper (ktr_helpers.h) for the inline `ratelimit_default_init()`. The state
// goes as `void *`: on a uniprocessor kernel its lock's binding is an empty struct, which rustc
// does not deem FFI-safe.
extern "C" {
    fn ktr_ratelimit_init(rs: *mut c_void);
}

const UNINIT: u8 = 0;
const BUSY: u8 = 1;
const READY: u8 = 2;

/// The kernel's rate limit of one call site (`DEFINE_RATELIMIT_STATE` with the defaults: 10
/// messages every 5 s), initialised on first use ([`pr_warn_ratelimited!`] declares one).
///
/// # Invariants
///
/// Once `state` is `READY`, `rs` was initialised by `ratelimit_default_init()` and is only
/// used through `___ratelimit()`, which takes its lock.
pub(crate) struct RateLimit {
    rs: Opaque<bindings::ratelimit_state>,
    /// `UNINIT`, then `BUSY` while one caller initialises `rs`, then `READY` for good.
    state: AtomicU8,
    /// The call site, named in the kernel's "N callbacks suppressed" line.
    site: &'static CStr,
}

// SAFETY: `rs` is only used through `___ratelimit()`, which serialises with its own spinlock,
// after one initialisation that the `state` exchange grants to one caller.
unsafe impl Sync for RateLimit {}

impl RateLimit {
    /// A rate limit for call site `site`, not yet initialised.
    pub(crate) const fn new(site: &'static CStr) -> Self {
        Self {
            rs: Opaque::zeroed(),
            state: AtomicU8::new(UNINIT),
            site,
        }
    }

    /// Whether the call site may print now (`__ratelimit()`).
    pub(crate) fn allow(&self) -> bool {
        if self.state.load(Ordering::Acquire) != READY {
            self.init();
        }
        // SAFETY: `rs` is initialised (`READY`, by the type invariant); `site` is a
        // NUL-terminated static string.
        unsafe { bindings::___ratelimit(self.rs.get(), self.site.as_char_ptr()) != 0 }
    }

    #[cold]
    fn init(&self) {
        match self
            .state
            .compare_exchange(UNINIT, BUSY, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => {
                // SAFETY: the exchange lets one caller here, once, and nobody uses `rs` before
                // `READY` is stored after it (they wait below); the helper only writes `*rs`.
                unsafe { ktr_ratelimit_init(self.rs.get().cast()) };
                // INVARIANT: `rs` is initialised.
                self.state.store(READY, Ordering::Release);
            }
            // Another caller initialises it (a memset and a lock init): wait for it.
            Err(_) => {
                while self.state.load(Ordering::Acquire) != READY {
                    core::hint::spin_loop();
                }
            }
        }
    }
}

/// `pr_warn!`, but at most as often as the kernel's default rate limit lets one call site print
/// (C's `pr_warn_ratelimited()`): for warnings a user's ioctls can trigger.
macro_rules! pr_warn_ratelimited {
    ($($arg:tt)*) => {{
        static LIMIT: $crate::shim::RateLimit = $crate::shim::RateLimit::new(
            ::kernel::c_str!(::core::concat!(::core::module_path!(), ":", ::core::line!())),
        );
        if LIMIT.allow() {
            ::kernel::pr_warn!($($arg)*);
        }
    }};
}
pub(crate) use pr_warn_ratelimited;
