// SPDX-License-Identifier: GPL-2.0

//! Attaching an IOMMU group to a TCE table and detaching it, after
//! `KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE` and `kvm_spapr_tce_attach_iommu_group`, plus the replay.
//!
//! Ordering: the attachment is published in the table first and the replay runs after, so an
//! update racing with the attach is either seen by the replay or written to the group by the
//! update itself; both write the table's current value, so nothing is lost.

use crate::{
    device::Context,
    iommu::{self, Attached, IommuBackend},
    replay::{replay, Walk},
    table::Table,
};
use core::ptr;
use kernel::{prelude::*, sync::Arc};

/// EINVAL unless `table` belongs to `ctx`, as KVM requires of the table of a VFIO group.
fn check_context(ctx: &Context, table: &Table) -> Result {
    if ptr::eq(table.claim().context(), ctx) {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// Detaches `group` from `table` while holding the group's attach lock (`binding`): from now on
/// updates no longer reach it, and its hardware table is cleared.
fn detach_locked(table: &Table, group: &dyn IommuBackend, binding: &mut Option<Attached>) {
    table.unpublish(group);
    *binding = None;
    iommu::unregister(group);
    group.clear(table);
}

/// Attaches `group` to `table`; with replay enabled in `ctx`, replays the table into it.
pub(crate) fn attach(
    ctx: &Context,
    table: &Table,
    group: Arc<dyn IommuBackend>,
    walk: Walk,
) -> Result {
    check_context(ctx, table)?;
    if !group.geometry().compatible(table.window()) {
        return Err(EINVAL);
    }
    // A real group is looked up anew by each ioctl: if its hardware table is attached, to this
    // table or another, that attachment is the group.
    let group = iommu::attached(&*group).unwrap_or(group);
    let mut binding = group.binding().state.lock();
    match &mut *binding {
        // Attaching again takes a reference and replays nothing.
        Some(a) if a.table == table.id() => {
            a.refs = a.refs.checked_add(1).ok_or(EOVERFLOW)?;
            return Ok(());
        }
        // One TCE table per hardware table.
        Some(_) => return Err(EBUSY),
        None => {}
    }
    iommu::register(&group)?;
    // Publish first: from here on every update reaches the group too.
    if let Err(e) = table.publish(group.clone()) {
        iommu::unregister(&*group);
        return Err(e);
    }
    *binding = Some(Attached {
        table: table.id(),
        refs: 1,
    });
    if ctx.replay_enabled() {
        match replay(table, &*group, walk) {
            Ok(stats) => table.stats().record(stats),
            Err(e) => {
                // The group ends detached and cleared: a mock group's whole hardware table, a
                // real one's entries under the table's allocated pages (see `clear`).
                detach_locked(table, &*group, &mut binding);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Undoes one attach of `group` to `table`; the last one detaches it and clears its hardware
/// table. ENOENT if the group is not attached to the table.
pub(crate) fn detach(ctx: &Context, table: &Table, group: Arc<dyn IommuBackend>) -> Result {
    check_context(ctx, table)?;
    let group = table.attached(group.id()).ok_or(ENOENT)?;
    let mut binding = group.binding().state.lock();
    match &mut *binding {
        Some(a) if a.table == table.id() && a.refs > 1 => {
            a.refs -= 1;
            return Ok(());
        }
        Some(a) if a.table == table.id() => {}
        _ => return Err(ENOENT),
    }
    detach_locked(table, &*group, &mut binding);
    Ok(())
}
