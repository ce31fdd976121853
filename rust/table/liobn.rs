// SPDX-License-Identifier: GPL-2.0

//! The liobns of a context's live tables: a table claims its liobn when it is created and gives
//! it back when it is freed, so that a context has one table per liobn, as KVM requires
//! (`kvm_vm_ioctl_create_spapr_tce` refuses a second one with EBUSY).

use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// The liobns taken in one context (a leaf lock: see the lock order in `table.rs`).
#[pin_data]
pub(crate) struct Liobns {
    /// The liobns in use: a leaf of the lock order (table.rs).
    #[pin]
    taken: Mutex<KVec<u64>>,
}

impl Liobns {
    /// A context's empty set.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                taken <- new_mutex!(KVec::new(), "kvm_tce_replay::Liobns::taken"),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }
}

/// A liobn taken in a context, given back when dropped (with its table).
pub(crate) struct LiobnClaim {
    liobns: Arc<Liobns>,
    liobn: u64,
}

impl LiobnClaim {
    /// Takes `liobn` in `liobns`: EBUSY if a live table of the context has it already.
    pub(crate) fn new(liobns: Arc<Liobns>, liobn: u64) -> Result<Self> {
        {
            let mut taken = liobns.taken.lock();
            if taken.contains(&liobn) {
                return Err(EBUSY);
            }
            taken.push(liobn, GFP_KERNEL_ACCOUNT)?;
        }
        Ok(Self { liobns, liobn })
    }

    /// The liobn.
    pub(crate) fn liobn(&self) -> u64 {
        self.liobn
    }
}

impl Drop for LiobnClaim {
    fn drop(&mut self) {
        let liobn = self.liobn;
        self.liobns.taken.lock().retain(|l| *l != liobn);
    }
}
