// SPDX-License-Identifier: GPL-2.0

//! The guest's memory as the VMM registers it with `KVM_SET_USER_MEMORY_REGION`: slots mapping
//! guest-physical ranges to the VMM's user addresses, and the translation of a TCE's guest
//! address through them (KVM's `kvmppc_tce_to_ua`). Core-only: shared by the module and the
//! userspace tests.

use crate::uapi::KvmUserspaceMemoryRegion;

/// Number of slots a context holds (KVM on powerpc allows 512; a VMM of a pseries guest uses a
/// handful).
pub(crate) const MEMSLOTS: usize = 32;

/// Why a region was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotError {
    /// Flags set, a slot number out of range, a misaligned or wrapping range (`EINVAL`).
    Invalid,
    /// The guest range overlaps another slot's (`EEXIST`).
    Overlap,
}

/// One slot: `size` bytes of guest memory from `gpa` on, at user address `ua` in the VMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    gpa: u64,
    size: u64,
    ua: u64,
}

impl Slot {
    fn end(&self) -> u64 {
        self.gpa + self.size
    }
}

/// The slots of a context.
///
/// # Invariants
///
/// Every slot has `size > 0`, `gpa`, `size` and `ua` aligned to `page_size`, neither range
/// wraps, and no two slots' guest ranges overlap.
#[derive(Clone, Debug, Default)]
pub(crate) struct Memslots {
    slots: [Option<Slot>; MEMSLOTS],
}

impl Memslots {
    /// Applies `KVM_SET_USER_MEMORY_REGION`: creates, moves or resizes slot `r.slot`, or deletes
    /// it when `memory_size` is 0; `page_size` is the host's. A refused region changes nothing.
    pub(crate) fn set(
        &mut self,
        r: &KvmUserspaceMemoryRegion,
        page_size: u64,
    ) -> Result<(), SlotError> {
        let index = usize::try_from(r.slot).map_err(|_| SlotError::Invalid)?;
        if r.flags != 0 || index >= MEMSLOTS {
            return Err(SlotError::Invalid);
        }
        if r.memory_size == 0 {
            // INVARIANT: removing a slot keeps the others as they were.
            self.slots[index] = None;
            return Ok(());
        }
        let mask = page_size - 1;
        if (r.guest_phys_addr | r.memory_size | r.userspace_addr) & mask != 0
            || r.guest_phys_addr.checked_add(r.memory_size).is_none()
            || r.userspace_addr.checked_add(r.memory_size).is_none()
        {
            return Err(SlotError::Invalid);
        }
        let new = Slot {
            gpa: r.guest_phys_addr,
            size: r.memory_size,
            ua: r.userspace_addr,
        };
        let overlaps =
            self.slots.iter().enumerate().any(|(i, s)| {
                s.is_some_and(|s| i != index && s.gpa < new.end() && new.gpa < s.end())
            });
        if overlaps {
            return Err(SlotError::Overlap);
        }
        // INVARIANT: `new` is aligned, does not wrap and overlaps no other slot.
        self.slots[index] = Some(new);
        Ok(())
    }

    /// The user address of guest-physical `gpa` through which `len` bytes from it are mapped,
    /// or `None` if no single slot holds them all.
    pub(crate) fn to_ua(&self, gpa: u64, len: u64) -> Option<u64> {
        let end = gpa.checked_add(len)?;
        self.slots
            .iter()
            .flatten()
            .find(|s| s.gpa <= gpa && end <= s.end())
            .map(|s| s.ua + (gpa - s.gpa))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(slot: u32, gpa: u64, size: u64, ua: u64) -> KvmUserspaceMemoryRegion {
        KvmUserspaceMemoryRegion {
            slot,
            flags: 0,
            guest_phys_addr: gpa,
            memory_size: size,
            userspace_addr: ua,
        }
    }

    const PS: u64 = 4096;

    #[test]
    fn translates_inside_one_slot_only() {
        let mut m = Memslots::default();
        m.set(&region(0, 0, 1 << 20, 0x7f00_0000_0000), PS).unwrap();
        m.set(&region(1, 1 << 20, 1 << 20, 0x1000_0000), PS)
            .unwrap();
        assert_eq!(m.to_ua(0x1234, 8), Some(0x7f00_0000_1234));
        assert_eq!(m.to_ua((1 << 20) + 0x10000, 0x10000), Some(0x1001_0000));
        // A page that straddles two slots is in neither.
        assert_eq!(m.to_ua((1 << 20) - 0x1000, 0x2000), None);
        assert_eq!(m.to_ua(2 << 20, 1), None);
        assert_eq!(m.to_ua(u64::MAX, 2), None);
    }

    #[test]
    fn refuses_bad_regions_and_changes_nothing() {
        let mut m = Memslots::default();
        m.set(&region(3, 0x10000, 0x10000, 0x20000), PS).unwrap();
        let before = m.clone().slots;
        let bad = [
            (region(MEMSLOTS as u32, 0, PS, 0), SlotError::Invalid),
            (region(0, 1, PS, 0), SlotError::Invalid),
            (region(0, 0, PS + 1, 0), SlotError::Invalid),
            (region(0, 0, PS, 7), SlotError::Invalid),
            (region(0, u64::MAX - PS + 1, PS, 0), SlotError::Invalid),
            (region(0, 0, PS, u64::MAX - PS + 1), SlotError::Invalid),
            (region(0, 0x18000, 0x10000, 0), SlotError::Overlap),
            (region(0, 0, 0x20000, 0), SlotError::Overlap),
        ];
        for (r, e) in bad {
            assert_eq!(m.set(&r, PS), Err(e), "{r:?}");
        }
        let mut flagged = region(0, 0, PS, 0);
        flagged.flags = 1;
        assert_eq!(m.set(&flagged, PS), Err(SlotError::Invalid));
        assert_eq!(m.slots, before);
    }

    #[test]
    fn moves_resizes_and_deletes() {
        let mut m = Memslots::default();
        m.set(&region(0, 0, 0x10000, 0x100000), PS).unwrap();
        // The same slot may be moved over its own old range.
        m.set(&region(0, 0x8000, 0x10000, 0x200000), PS).unwrap();
        assert_eq!(m.to_ua(0, 1), None);
        assert_eq!(m.to_ua(0x8000, 1), Some(0x200000));
        m.set(&region(0, 0, 0, 0), PS).unwrap();
        assert_eq!(m.to_ua(0x8000, 1), None);
    }
}
