// SPDX-License-Identifier: GPL-2.0

//! Attaching an IOMMU group to a TCE table and detaching it, after
//! `KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE` and `kvm_spapr_tce_attach_iommu_group`, plus the replay:
//! the fds of `KTR_ATTACH` and `KTR_DETACH` resolved to a table and a backend (a mock group's
//! or a VFIO group's hardware table).
//!
//! Ordering: the attachment is published in the table first and the replay runs after, so an
//! update racing with the attach is either seen by the replay or written to the group by the
//! update itself; both write the table's current value, so nothing is lost.

#[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
use crate::iommu::mock::MockGroup;
#[cfg(CONFIG_KVM_TCE_REPLAY_SPAPR)]
use crate::iommu::spapr::SpaprGroup;
use crate::{
    guest::GuestMemory,
    iommu::{self, Attached, Holder, IommuBackend},
    pure::uapi::KtrAttach,
    replay::{replay, Walk},
    shim,
    table::Table,
};
use kernel::{prelude::*, sync::Arc};

/// What attach and detach need of the calling context.
pub(crate) struct Caller<'a> {
    /// The context's guest memory, which also tells its tables from other contexts' ones.
    pub(crate) guest: &'a Arc<GuestMemory>,
    /// `KVM_CAP_SPAPR_TCE_REPLAY` is enabled: attach replays.
    pub(crate) replay: bool,
    /// The test configuration (mock backend built and enabled): the benchmarks' walks too.
    pub(crate) test_config: bool,
}

/// EINVAL unless `table` belongs to the caller's context, as KVM requires of the table of a
/// VFIO group.
fn check_context(caller: &Caller<'_>, table: &Table) -> Result {
    if table.owned_by(caller.guest) {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// The hardware table of the mock group behind `fd` for `table` (`None` if `fd` is another
/// file), with the holder of an attach through it: for an attach, the first that can hold the
/// window (EINVAL if none can); for a detach, the one attached to `table` (else the first, which
/// detach finds not attached).
#[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
fn mock_group(
    fd: i32,
    table: &Table,
    is_attach: bool,
) -> Result<Option<(Arc<dyn IommuBackend>, Holder)>> {
    let group = match shim::from_fd::<MockGroup>(fd) {
        Ok(group) => group,
        Err(e) if e == EINVAL => return Ok(None),
        Err(e) => return Err(e),
    };
    let hw: Arc<dyn IommuBackend> = if is_attach {
        group.table_for(table.window())?
    } else {
        let tables = group.tables()?;
        tables
            .iter()
            .find(|t| table.attached(t.id()).is_some())
            .or(tables.first())
            .cloned()
            .ok_or(EINVAL)?
    };
    let holder = Holder::mock(hw.id());
    Ok(Some((hw, holder)))
}

#[cfg(not(CONFIG_KVM_TCE_REPLAY_MOCK))]
fn mock_group(
    _fd: i32,
    _table: &Table,
    _is_attach: bool,
) -> Result<Option<(Arc<dyn IommuBackend>, Holder)>> {
    Ok(None)
}

/// The hardware table of the VFIO group behind `fd` that can hold `table`'s window, with the
/// group held for an attach.
#[cfg(CONFIG_KVM_TCE_REPLAY_SPAPR)]
fn vfio_group(
    caller: &Caller<'_>,
    fd: i32,
    table: &Table,
) -> Result<Option<(Arc<dyn IommuBackend>, Holder)>> {
    let (hw, holder) = SpaprGroup::of_vfio_group(caller.guest.clone(), fd, table.window())?;
    Ok(Some((hw, holder)))
}

/// Without the real backend, an open fd that is no mock group is no group.
#[cfg(not(CONFIG_KVM_TCE_REPLAY_SPAPR))]
fn vfio_group(
    _caller: &Caller<'_>,
    fd: i32,
    _table: &Table,
) -> Result<Option<(Arc<dyn IommuBackend>, Holder)>> {
    match shim::from_fd::<Table>(fd) {
        Err(e) if e == EBADF => Err(e),
        _ => Ok(None),
    }
}

/// The IOMMU group behind `fd` for `table` (a mock group or a VFIO group) and the holder of an
/// attach through it. EBADF if `fd` is not open, EINVAL if it is no group (or, for a VFIO group,
/// has no table for the window).
fn group(
    caller: &Caller<'_>,
    fd: i32,
    table: &Table,
    is_attach: bool,
) -> Result<(Arc<dyn IommuBackend>, Holder)> {
    match mock_group(fd, table, is_attach)? {
        Some(group) => Ok(group),
        None => vfio_group(caller, fd, table)?.ok_or(EINVAL),
    }
}

/// Detaches `group` from `table` while holding the group's binding lock (`state`): from now on
/// updates no longer reach it; its hardware table is cleared, then it is let go.
fn detach_locked(table: &Table, group: &dyn IommuBackend, state: &mut Option<Attached>) {
    table.unpublish(group);
    iommu::end_attachment(group, state, table.window(), &mut table.written_ranges());
}

/// `KTR_ATTACH`: attaches the group of `req.groupfd` to the table of `req.tablefd`; with replay
/// enabled, replays the table into it.
pub(crate) fn attach(caller: &Caller<'_>, req: &KtrAttach) -> Result {
    if req.pad != 0 {
        return Err(EINVAL);
    }
    let walk = Walk::from_flags(req.flags, caller.test_config)?;
    let table = shim::from_fd::<Table>(req.tablefd)?;
    let (found, holder) = group(caller, req.groupfd, &table, true)?;
    check_context(caller, &table)?;
    if !found.geometry().compatible(table.window()) {
        return Err(EINVAL);
    }
    loop {
        // The hardware table's one backend: `found`, or the one already bound.
        let group = iommu::bind(&found)?;
        let mut state = group.binding().state.lock();
        if !iommu::is_bound(&*group) {
            // Detached and let go while we waited: bind anew.
            continue;
        }
        // Every path from here returns: `holder` is moved once.
        let binding = group.binding();
        match &*state {
            // Attaching again (the same group, or another sharing its hardware table) holds one
            // more and replays nothing.
            Some(a) if a.table == table.id() => {
                return Ok(binding.holders.lock().push(holder, GFP_KERNEL_ACCOUNT)?);
            }
            // One TCE table per hardware table.
            Some(_) => return Err(EBUSY),
            None => {}
        }
        if let Err(e) = binding.holders.lock().push(holder, GFP_KERNEL_ACCOUNT) {
            iommu::unbind(&*group);
            return Err(e.into());
        }
        // Publish first: from here on every update reaches the group too.
        if let Err(e) = table.publish(group.clone()) {
            iommu::let_go(&*group);
            iommu::unbind(&*group);
            return Err(e);
        }
        *state = Some(Attached { table: table.id() });
        if caller.replay {
            match replay(&table, &*group, walk) {
                Ok(stats) => table.stats().record(stats),
                Err(e) => {
                    // The group ends detached and cleared: a mock group's whole hardware table, a
                    // real one's entries under the table's allocated pages (see `clear`).
                    detach_locked(&table, &*group, &mut state);
                    return Err(e);
                }
            }
        }
        return Ok(());
    }
}

/// `KTR_DETACH`: undoes one attach of the group of `req.groupfd` to the table of
/// `req.tablefd`, letting go what it held; the last one detaches it and clears its hardware
/// table. ENOENT if the group is not attached to the table.
pub(crate) fn detach(caller: &Caller<'_>, req: &KtrAttach) -> Result {
    if req.pad != 0 || req.flags != 0 {
        return Err(EINVAL);
    }
    let table = shim::from_fd::<Table>(req.tablefd)?;
    let (found, holder) = group(caller, req.groupfd, &table, false)?;
    check_context(caller, &table)?;
    loop {
        let group = table.attached(found.id()).ok_or(ENOENT)?;
        let mut state = group.binding().state.lock();
        if !iommu::is_bound(&*group) {
            // Detached while we waited (and perhaps attached again): look again.
            continue;
        }
        if !state.as_ref().is_some_and(|a| a.table == table.id()) {
            return Err(ENOENT);
        }
        let mut holders = group.binding().holders.lock();
        // This group's own attach (another group of the same container may have attached too).
        let mine = holders
            .iter()
            .position(|h| h.group == holder.group)
            .ok_or(ENOENT)?;
        if holders.len() > 1 {
            let _undone = holders.remove(mine)?;
            // The group is let go after the holders' lock is released (a leaf).
            drop(holders);
            return Ok(());
        }
        drop(holders);
        detach_locked(&table, &*group, &mut state);
        return Ok(());
    }
}
