// SPDX-License-Identifier: GPL-2.0

//! The guest's memory as the VMM registers it with `KVM_SET_USER_MEMORY_REGION`: slots mapping
//! guest-physical ranges to the VMM's user addresses, with the rules of 7.3's
//! `kvm_set_memory_region`, and the translation of a TCE's guest address through them (KVM's
//! `kvmppc_tce_to_ua`). Core-only: shared by the module and the userspace tests.

use super::uapi::KvmUserspaceMemoryRegion;

/// Number of slots a context holds, as `KVM_CHECK_EXTENSION(KVM_CAP_NR_MEMSLOTS)` reports it
/// (powerpc KVM's `KVM_USER_MEM_SLOTS` before 6.x made it SHRT_MAX; QEMU asks for the number).
pub(crate) const MEMSLOTS: usize = 512;

/// Most pages of one slot (`KVM_MEM_MAX_NR_PAGES`).
const MAX_PAGES: u64 = (1 << 31) - 1;

/// Why a region was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotError {
    /// Flags set, a slot number out of range, a misaligned, wrapping or too large range, a slot
    /// changed in size or user address, or the deletion of an empty slot (`EINVAL`).
    Invalid,
    /// The guest range overlaps another slot's (`EEXIST`).
    Overlap,
}

/// One slot: `size` bytes of guest memory from `gpa` on, at user address `ua` in the VMM;
/// `size == 0` is an empty slot (so that all-zero memory is an empty [`Memslots`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slot {
    gpa: u64,
    size: u64,
    ua: u64,
}

impl Slot {
    fn end(&self) -> u64 {
        self.gpa + self.size
    }

    fn contains(&self, gpa: u64, end: u64) -> bool {
        self.gpa <= gpa && end <= self.end()
    }
}

/// The slots of a context. All-zero bytes are an empty set of slots (the module allocates it
/// zeroed: it is too large for the kernel stack).
///
/// # Invariants
///
/// Every non-empty slot has `gpa`, `size` and `ua` aligned to the page size, neither range
/// wraps, and no two slots' guest ranges overlap; `sorted[..len]` are the numbers of the
/// non-empty slots in ascending guest address.
#[derive(Clone, Debug)]
pub(crate) struct Memslots {
    slots: [Slot; MEMSLOTS],
    sorted: [u16; MEMSLOTS],
    len: usize,
}

impl Default for Memslots {
    fn default() -> Self {
        Self {
            slots: [Slot::default(); MEMSLOTS],
            sorted: [0; MEMSLOTS],
            len: 0,
        }
    }
}

impl Memslots {
    /// Applies `KVM_SET_USER_MEMORY_REGION`: creates or moves slot `r.slot` (an existing slot
    /// keeps its size and user address), or deletes it when `memory_size` is 0; `page_size` is
    /// the host's. Whether the user range is one the VMM may use (`access_ok`) is the caller's
    /// check. A refused region changes nothing.
    pub(crate) fn set(
        &mut self,
        r: &KvmUserspaceMemoryRegion,
        page_size: u64,
    ) -> Result<(), SlotError> {
        let index = usize::try_from(r.slot).map_err(|_| SlotError::Invalid)?;
        if r.flags != 0 || index >= MEMSLOTS {
            return Err(SlotError::Invalid);
        }
        let old = self.slots[index];
        if r.memory_size == 0 {
            if old.size == 0 {
                return Err(SlotError::Invalid);
            }
            // INVARIANT: removing a slot keeps the others as they were.
            self.slots[index] = Slot::default();
            self.reindex();
            return Ok(());
        }
        let mask = page_size - 1;
        if (r.guest_phys_addr | r.memory_size | r.userspace_addr) & mask != 0
            || r.guest_phys_addr.checked_add(r.memory_size).is_none()
            || r.userspace_addr.checked_add(r.memory_size).is_none()
            || r.memory_size / page_size > MAX_PAGES
        {
            return Err(SlotError::Invalid);
        }
        let new = Slot {
            gpa: r.guest_phys_addr,
            size: r.memory_size,
            ua: r.userspace_addr,
        };
        if old.size != 0 && (old.size != new.size || old.ua != new.ua) {
            return Err(SlotError::Invalid);
        }
        let overlaps = self
            .slots
            .iter()
            .enumerate()
            .any(|(i, s)| s.size != 0 && i != index && s.gpa < new.end() && new.gpa < s.end());
        if overlaps {
            return Err(SlotError::Overlap);
        }
        // INVARIANT: `new` is aligned, does not wrap and overlaps no other slot.
        self.slots[index] = new;
        self.reindex();
        Ok(())
    }

    /// Rebuilds `sorted` after a change of `slots`.
    fn reindex(&mut self) {
        let mut len = 0;
        for (i, s) in self.slots.iter().enumerate() {
            if s.size != 0 {
                // CAST: i < MEMSLOTS = 512 fits a u16.
                self.sorted[len] = i as u16;
                len += 1;
            }
        }
        let slots = &self.slots;
        self.sorted[..len].sort_unstable_by_key(|&i| slots[usize::from(i)].gpa);
        // INVARIANT: the non-empty slots, by guest address.
        self.len = len;
    }

    /// The user address of guest-physical `gpa` through which `len` bytes from it are mapped,
    /// or `None` if no single slot holds them all.
    pub(crate) fn to_ua(&self, gpa: u64, len: u64) -> Option<u64> {
        let s = self.slot_of(gpa, len)?;
        Some(s.ua + (gpa - s.gpa))
    }

    /// The guest range `[start, end)` of the slot holding `len` bytes at `gpa`, if one does.
    pub(crate) fn range_of(&self, gpa: u64, len: u64) -> Option<(u64, u64)> {
        self.slot_of(gpa, len).map(|s| (s.gpa, s.end()))
    }

    fn slot_of(&self, gpa: u64, len: u64) -> Option<&Slot> {
        let end = gpa.checked_add(len)?;
        let sorted = &self.sorted[..self.len];
        // The last slot starting at or below `gpa` is the only one that can hold it.
        let at = sorted.partition_point(|&i| self.slots[usize::from(i)].gpa <= gpa);
        let s = &self.slots[usize::from(*sorted.get(at.checked_sub(1)?)?)];
        s.contains(gpa, end).then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use KvmUserspaceMemoryRegion as R;

    fn region(slot: u32, gpa: u64, size: u64, ua: u64) -> R {
        R::new(slot, gpa, size, ua)
    }

    const PS: u64 = 4096;

    #[test]
    fn translates_inside_one_slot_only() {
        let mut m = Memslots::default();
        m.set(&region(7, 0, 1 << 20, 0x7f00_0000_0000), PS).unwrap();
        m.set(&region(1, 1 << 20, 1 << 20, 0x1000_0000), PS)
            .unwrap();
        m.set(&region(300, 8 << 20, 1 << 20, 0x2000_0000), PS)
            .unwrap();
        assert_eq!(m.to_ua(0x1234, 8), Some(0x7f00_0000_1234));
        assert_eq!(m.to_ua((1 << 20) + 0x10000, 0x10000), Some(0x1001_0000));
        assert_eq!(m.to_ua((8 << 20) + 5, 1), Some(0x2000_0005));
        assert_eq!(m.range_of((8 << 20) + 5, 1), Some((8 << 20, 9 << 20)));
        // A page that straddles two slots is in neither.
        assert_eq!(m.to_ua((1 << 20) - 0x1000, 0x2000), None);
        assert_eq!(m.to_ua(2 << 20, 1), None);
        assert_eq!(m.to_ua(u64::MAX, 2), None);
        assert_eq!(m.to_ua(9 << 20, 1), None);
    }

    #[test]
    fn refuses_bad_regions_and_changes_nothing() {
        let mut m = Memslots::default();
        m.set(&region(3, 0x10000, 0x10000, 0x20000), PS).unwrap();
        let before = m.clone().slots;
        let bad = [
            // CAST: 512 fits.
            (region(MEMSLOTS as u32, 0, PS, 0), SlotError::Invalid),
            (region(0, 1, PS, 0), SlotError::Invalid),
            (region(0, 0, PS + 1, 0), SlotError::Invalid),
            (region(0, 0, PS, 7), SlotError::Invalid),
            (region(0, u64::MAX - PS + 1, PS, 0), SlotError::Invalid),
            (region(0, 0, PS, u64::MAX - PS + 1), SlotError::Invalid),
            (region(0, 0, (MAX_PAGES + 1) * PS, 0), SlotError::Invalid),
            (region(0, 0x18000, 0x10000, 0), SlotError::Overlap),
            (region(0, 0, 0x20000, 0), SlotError::Overlap),
            // Slot 3 may not change size or user address; deleting empty slot 4 is refused.
            (region(3, 0x10000, 0x20000, 0x20000), SlotError::Invalid),
            (region(3, 0x10000, 0x10000, 0x30000), SlotError::Invalid),
            (region(4, 0, 0, 0), SlotError::Invalid),
        ];
        for (r, e) in bad {
            assert_eq!(m.set(&r, PS), Err(e), "{r:?}");
        }
        let mut flagged = region(0, 0, PS, 0);
        flagged.flags = 1;
        assert_eq!(m.set(&flagged, PS), Err(SlotError::Invalid));
        assert_eq!(m.slots, before);
        assert_eq!(m.len, 1);
    }

    #[test]
    fn moves_and_deletes() {
        let mut m = Memslots::default();
        m.set(&region(0, 0, 0x10000, 0x100000), PS).unwrap();
        // The same slot may be moved over its own old range, keeping size and user address.
        m.set(&region(0, 0x8000, 0x10000, 0x100000), PS).unwrap();
        assert_eq!(m.to_ua(0, 1), None);
        assert_eq!(m.to_ua(0x8000, 1), Some(0x100000));
        m.set(&region(0, 0, 0, 0), PS).unwrap();
        assert_eq!(m.to_ua(0x8000, 1), None);
        assert_eq!(m.len, 0);
    }
}
