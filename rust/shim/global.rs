// SPDX-License-Identifier: GPL-2.0

//! Module-wide mutexes in `static`s that initialise themselves on first use, so that no caller
//! writes the `unsafe` of `kernel::sync::global_lock!`'s `init`.

use core::sync::atomic::{AtomicU8, Ordering};
use kernel::sync::lock::{GlobalGuard, GlobalLock, GlobalLockBackend};

const UNINIT: u8 = 0;
const BUSY: u8 = 1;
const READY: u8 = 2;

/// A [`GlobalLock`] that [`Global::lock`] initialises the first time (declared with
/// [`global_mutex!`]).
pub(crate) struct Global<B: GlobalLockBackend> {
    lock: GlobalLock<B>,
    /// `UNINIT`, then `BUSY` while one caller initialises the lock, then `READY` for good.
    state: AtomicU8,
}

impl<B: GlobalLockBackend> Global<B> {
    /// Only for [`global_mutex!`].
    ///
    /// # Safety
    ///
    /// There is one static of this type for `B`.
    #[doc(hidden)]
    pub(crate) const unsafe fn new(data: B::Item) -> Self {
        Self {
            // SAFETY: one static for `B`, as the caller promises; `lock` initialises the lock
            // before anything else uses it.
            lock: unsafe { GlobalLock::new(data) },
            state: AtomicU8::new(UNINIT),
        }
    }

    /// Locks the mutex, initialising it first if nobody has.
    pub(crate) fn lock(&'static self) -> GlobalGuard<B> {
        if self.state.load(Ordering::Acquire) != READY {
            self.init();
        }
        self.lock.lock()
    }

    #[cold]
    fn init(&'static self) {
        match self
            .state
            .compare_exchange(UNINIT, BUSY, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => {
                // SAFETY: the exchange lets one caller here, once; nobody locks the mutex
                // before `READY` is stored after it (they wait below).
                unsafe { self.lock.init() };
                self.state.store(READY, Ordering::Release);
            }
            // Another caller initialises it (`__mutex_init` does not sleep): wait for it.
            Err(_) => {
                while self.state.load(Ordering::Acquire) != READY {
                    core::hint::spin_loop();
                }
            }
        }
    }
}

/// `static NAME: Mutex<T> = VALUE;` as `kernel::sync::global_lock!` declares it (its lockdep
/// class and name `NAME`), but a [`Global`]: safe to lock from the first use on.
macro_rules! global_mutex {
    ($(#[$meta:meta])* $vis:vis static $name:ident: Mutex<$t:ty> = $value:expr;) => {
        #[doc = ::core::concat!("Backend type of [`", ::core::stringify!($name), "`].")]
        #[allow(non_camel_case_types, unreachable_pub, clippy::upper_case_acronyms)]
        $vis enum $name {}

        impl ::kernel::sync::lock::GlobalLockBackend for $name {
            const NAME: &'static ::kernel::str::CStr =
                ::kernel::c_str!(::core::stringify!($name));
            type Item = $t;
            type Backend = ::kernel::sync::lock::mutex::MutexBackend;

            fn get_lock_class() -> ::core::pin::Pin<&'static ::kernel::sync::LockClassKey> {
                ::kernel::static_lock_class!()
            }
        }

        $(#[$meta])*
        $vis static $name: $crate::shim::Global<$name> = {
            let init: $t = $value;
            // SAFETY: the one static of the backend type declared just above.
            unsafe { $crate::shim::Global::new(init) }
        };
    };
}
pub(crate) use global_mutex;
