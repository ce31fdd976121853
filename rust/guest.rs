// SPDX-License-Identifier: GPL-2.0

//! The guest memory of a context, as KVM keeps it in `struct kvm`: the address space of the
//! process that opened the context (`kvm->mm`: the only one whose ioctls it answers, and the one
//! its TCE pages are charged to) and its memory slots, which every valid TCE must fall in.

use crate::{
    pure::memslots::{Memslots, SlotError},
    pure::num::usize_as_u64,
    pure::uapi::KvmUserspaceMemoryRegion,
    shim::{self, MemlockCharge},
};
use kernel::{
    mm::Mm,
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{aref::ARef, Arc, Mutex},
};

/// The guest memory of a context.
#[pin_data]
pub(crate) struct GuestMemory {
    mm: ARef<Mm>,
    /// The memory slots, under level 4 of the lock order (table.rs): taken briefly, alone or
    /// under the table lock, never while taking another lock.
    #[pin]
    slots: Mutex<KBox<Memslots>>,
}

impl GuestMemory {
    /// The guest memory of the calling process, which has no slots yet; EINVAL for a kernel
    /// thread.
    pub(crate) fn of_current() -> Result<impl PinInit<Self, Error>> {
        let current = kernel::current!();
        let mm: &Mm = current.mm().ok_or(EINVAL)?;
        Self::of_mm(mm)
    }

    /// The guest memory of the calling process, shared by its context, its tables and the real
    /// backend's groups.
    pub(crate) fn new_current() -> Result<Arc<Self>> {
        Arc::pin_init(Self::of_current()?, GFP_KERNEL_ACCOUNT)
    }

    /// Guest memory for the KUnit tests, which run in a kernel thread: the kernel's own address
    /// space (never freed, and a kernel thread has CAP_IPC_LOCK) and one slot of 16 MiB of guest
    /// memory from 0.
    #[cfg(CONFIG_KVM_TCE_REPLAY_KUNIT_TEST)]
    pub(crate) fn for_kunit() -> Result<Arc<Self>> {
        let guest = Arc::pin_init(Self::of_mm(shim::init_mm())?, GFP_KERNEL_ACCOUNT)?;
        guest.set_region(&KvmUserspaceMemoryRegion::new(0, 0, 16 << 20, 16 << 20))?;
        Ok(guest)
    }

    /// The guest memory of address space `mm`, which has no slots yet.
    pub(crate) fn of_mm(mm: &Mm) -> Result<impl PinInit<Self, Error>> {
        let mm: ARef<Mm> = ARef::from(mm);
        // Zeroed: 16 KiB of slots do not go through the stack.
        let slots = KBox::init(pin_init::init_zeroed(), GFP_KERNEL_ACCOUNT)?;
        Ok(try_pin_init!(Self {
            mm,
            slots <- new_mutex!(slots, "kvm_tce_replay::GuestMemory::slots"),
        }? Error))
    }

    /// EIO unless the caller runs in the address space that opened the context, as KVM's
    /// `kvm_vm_ioctl` and `kvm_vcpu_ioctl` require (`kvm->mm != current->mm`).
    pub(crate) fn check_caller(&self) -> Result {
        let current = kernel::current!();
        match current.mm() {
            Some(mm) if core::ptr::eq(mm.as_raw(), self.mm.as_raw()) => Ok(()),
            _ => Err(EIO),
        }
    }

    /// The address space of the context.
    #[cfg_attr(not(CONFIG_KVM_TCE_REPLAY_SPAPR), allow(dead_code))]
    pub(crate) fn mm(&self) -> &Mm {
        &self.mm
    }

    /// Charges `pages` new pages of the context to its address space, against the caller's
    /// RLIMIT_MEMLOCK (ENOMEM past it); the charge goes with the returned token.
    pub(crate) fn charge(&self, pages: usize) -> Result<MemlockCharge> {
        MemlockCharge::new(&self.mm, pages)
    }

    /// `KVM_SET_USER_MEMORY_REGION`.
    pub(crate) fn set_region(&self, r: &KvmUserspaceMemoryRegion) -> Result {
        // A deletion does not look at the user range.
        if r.memory_size != 0 && !shim::user_range_ok(r.userspace_addr, r.memory_size) {
            return Err(EINVAL);
        }
        self.slots
            .lock()
            .set(r, usize_as_u64(PAGE_SIZE))
            .map_err(|e| match e {
                SlotError::Invalid => EINVAL,
                SlotError::Overlap => EEXIST,
            })
    }

    /// The user address of `len` bytes of guest memory at `gpa`; EFAULT if no slot holds them.
    pub(crate) fn to_ua(&self, gpa: u64, len: u64) -> Result<u64> {
        self.slots.lock().to_ua(gpa, len).ok_or(EFAULT)
    }

    /// The guest range `[start, end)` of the slot holding guest address `gpa`, if any.
    pub(crate) fn slot_range(&self, gpa: u64) -> Option<(u64, u64)> {
        self.slots.lock().range_of(gpa, 1)
    }
}
