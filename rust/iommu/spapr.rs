// SPDX-License-Identifier: GPL-2.0

//! The real IOMMU backend (powerpc): a hardware `iommu_table` of a VFIO group, written the way
//! KVM's `kvmppc_tce_iommu_do_map` / `_do_unmap` write it: a TCE's guest address goes through
//! the context's memory slots to the VMM's user address, then through the VMM's preregistered
//! memory to a host-physical address, with a mapping reference per hardware entry.

use crate::{
    guest::GuestMemory,
    iommu::{map_entry, Binding, Budget, Holder, IommuBackend},
    pure::dma::{direction_perm, tce_direction, DMA_NONE},
    pure::hwmap::HwGeometry,
    pure::num::usize_as_u64,
    pure::window::{tce_is_valid, Window, TCE_PERM_MASK},
    shim::{
        self,
        spapr::{mapped_dec, mapped_inc, preregistered, IommuTable},
    },
};
use core::ops::Range;
use kernel::{prelude::*, sync::Arc};

/// One hardware table of a VFIO group, as attached to a TCE table of a context.
#[pin_data]
pub(crate) struct SpaprGroup {
    tbl: IommuTable,
    geo: HwGeometry,
    guest: Arc<GuestMemory>,
    #[pin]
    binding: Binding,
}

impl SpaprGroup {
    /// The table of the VFIO group behind `fd` that can hold `window` (see
    /// [`IommuTable::of_vfio_group`]), and the holder of an attach through the group.
    pub(crate) fn of_vfio_group(
        guest: Arc<GuestMemory>,
        fd: i32,
        window: &Window,
    ) -> Result<(Arc<Self>, Holder)> {
        let (tbl, vfio) = IommuTable::of_vfio_group(fd, |geo| geo.compatible(window))?;
        let geo = tbl.geometry();
        let group = Arc::pin_init(
            pin_init!(Self {
                tbl,
                geo,
                guest,
                binding <- Binding::new(),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        let holder = Holder {
            group: vfio.id(),
            vfio: Some(vfio),
        };
        Ok((group, holder))
    }

    /// ENXIO unless the hardware table is still a table of a group attached through it: after
    /// VFIO_IOMMU_SPAPR_TCE_REMOVE it is an orphan, which nothing would clear again (its
    /// mappings would pin their memory past the container's release).
    fn check_live(&self) -> Result {
        let holders = self.binding.holders.lock();
        if holders
            .iter()
            .any(|h| h.vfio.as_ref().is_some_and(|v| v.has(&self.tbl)))
        {
            Ok(())
        } else {
            Err(ENXIO)
        }
    }

    fn guest(&self) -> &GuestMemory {
        &self.guest
    }

    /// Releases the mapping reference of user address `ua` (a hardware entry's old mapping).
    fn release_ua(&self, ua: u64) -> Result {
        if ua == 0 {
            return Ok(());
        }
        mapped_dec(self.guest().mm(), ua, self.geo.it_page_shift)
    }

    /// The user address of the IOMMU page valid TCE or hardware value `value` points to.
    fn ua_of(&self, value: u64) -> Result<u64> {
        let shift = self.geo.it_page_shift;
        let ua = self.guest().to_ua(value & !TCE_PERM_MASK, 1 << shift)?;
        // A slot is only host-page aligned: an IOMMU page of it must be aligned in user space
        // too, as VFIO's MAP_DMA requires of its vaddr, or the TCE would point into the middle
        // of a page (pnv_tce_xchg's BUG_ON).
        if ua & ((1 << shift) - 1) != 0 {
            return Err(EFAULT);
        }
        Ok(ua)
    }

    /// Maps hardware entry `entry` (absolute) to guest address `gpa` with the permissions of
    /// `value` (`kvmppc_tce_iommu_do_map`); returns the old address and direction.
    fn map(&self, entry: u64, value: u64) -> Result<(u64, u32)> {
        let guest = self.guest();
        let shift = self.geo.it_page_shift;
        let ua = self.ua_of(value)?;
        self.check_live()?;
        // The view may be allocated late, as KVM says (H_TOO_HARD there).
        let user = self.tbl.user_entry(entry, true).ok_or(EAGAIN)?;
        let hpa = mapped_inc(guest.mm(), ua, shift)?;
        let old = match self.tbl.xchg(guest.mm(), entry, hpa, tce_direction(value)) {
            Ok(old) => old,
            Err(e) => {
                // Nothing was exchanged: give back the reference just taken.
                let _ = mapped_dec(guest.mm(), ua, shift);
                return Err(e);
            }
        };
        // The new entry's reference is recorded whatever happens to the old one's.
        let old_ua = user.swap(ua);
        if old.1 != DMA_NONE && self.release_ua(old_ua).is_err() {
            // As KVM's kvmppc_tce_iommu_do_map, which ignores it: the old memory was
            // unregistered under us, there is no reference left to give back.
            shim::pr_warn_ratelimited!(
                "map: no preregistered memory for the old mapping of entry {entry}\n"
            );
        }
        Ok(old)
    }

    /// Clears hardware entry `entry` (absolute; `kvmppc_tce_iommu_do_unmap`); returns the old
    /// address and direction. If the old mapping's reference cannot be given back, the entry is
    /// exchanged back (as KVM does) and the error returned.
    fn unmap(&self, entry: u64) -> Result<(u64, u32)> {
        let mm = self.guest().mm();
        let old = self.tbl.xchg(mm, entry, 0, DMA_NONE)?;
        if old.1 == DMA_NONE {
            return Ok(old);
        }
        let user = self.tbl.user_entry(entry, false);
        let old_ua = user.as_ref().map_or(0, |u| u.swap(0));
        if let Err(e) = self.release_ua(old_ua) {
            if let Some(user) = &user {
                user.set(old_ua);
            }
            let _ = self.tbl.xchg(mm, entry, old.0, old.1);
            return Err(e);
        }
        Ok(old)
    }
}

impl IommuBackend for SpaprGroup {
    fn check_map(&self, tce: u64) -> Result {
        preregistered(self.guest().mm(), self.ua_of(tce)?, self.geo.it_page_shift)
    }

    fn geometry(&self) -> HwGeometry {
        self.geo
    }

    fn id(&self) -> usize {
        self.tbl.id()
    }

    fn xchg(&self, index: u64, value: u64) -> Result<u64> {
        if index >= self.geo.it_size {
            return Err(EINVAL);
        }
        let entry = self.geo.it_offset + index;
        let (hpa, dir) = if tce_is_valid(value) {
            self.map(entry, value)?
        } else {
            self.unmap(entry)?
        };
        Ok(hpa | direction_perm(dir))
    }

    fn kill(&self, first: u64, count: u64) {
        self.tbl.kill(self.geo.it_offset + first, count);
    }

    /// Clears every hardware entry of the window entries `written` (those under the table's
    /// allocated pages, which cover whatever it wrote into the group while attached),
    /// rescheduling every [`crate::iommu::BUDGET`] hardware entries.
    fn clear(&self, w: &Window, written: &mut dyn Iterator<Item = Range<u64>>) {
        let mut failed = 0u64;
        let mut budget = Budget::unkillable();
        for range in written {
            failed += usize_as_u64(
                range
                    .filter(|&entry| map_entry(self, w, entry, 0, &mut budget).is_err())
                    .count(),
            );
        }
        if failed != 0 {
            shim::pr_warn_ratelimited!(
                "detach: {failed} window entries could not be cleared in the hardware table\n"
            );
        }
    }

    fn binding(&self) -> &Binding {
        &self.binding
    }
}
