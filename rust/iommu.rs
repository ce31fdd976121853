// SPDX-License-Identifier: GPL-2.0

//! The IOMMU group backends a table attaches to: what a backend must provide (its hardware
//! table's geometry and identity, exchanges of entries, their invalidation, the clear at
//! detach), the attachment bookkeeping they share, and the runs a replay writes them in.

use crate::{
    pure::num::usize_as_u64,
    pure::{hwmap::HwGeometry, window::Window},
    shim,
};

#[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
pub(crate) mod mock;
#[cfg(CONFIG_KVM_TCE_REPLAY_SPAPR)]
pub(crate) mod spapr;
use core::ops::Range;
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// A hardware TCE table behind an IOMMU group: the mock one (tests) or a real `iommu_table`.
pub(crate) trait IommuBackend: Send + Sync {
    /// The hardware table's geometry.
    fn geometry(&self) -> HwGeometry;

    /// The hardware table's identity: groups of one identity are one group to a table.
    fn id(&self) -> usize;

    /// Checks, before anything is stored, that valid TCE `tce` (in a memory slot) can be
    /// mapped, as KVM's kvmppc_tce_validate() looks up the preregistered memory of every
    /// attached table: EFAULT if not. The mock maps anything.
    fn check_map(&self, _tce: u64) -> Result {
        Ok(())
    }

    /// Exchanges hardware entry `index` (0 is the entry at `it_offset`) for `value` and returns
    /// the old one, like `iommu_tce_xchg_no_kill`. Clearing an entry never allocates.
    fn xchg(&self, index: u64, value: u64) -> Result<u64>;

    /// Writes `values` into the consecutive hardware entries from `first` on, dropping the old
    /// values: a replay's run of exchanges. Stops at the first error.
    fn write_run(&self, first: u64, values: &[u64]) -> Result {
        for (index, &value) in (first..).zip(values) {
            self.xchg(index, value)?;
        }
        Ok(())
    }

    /// Writes a replay's runs: run `i` is `runs[i].1` values of `values`, in order, into the
    /// entries from `runs[i].0` on. Stops at the first error. One [`IommuBackend::write_run`]
    /// each unless the backend does better (the mock takes its lock once for them all).
    fn write_runs(&self, runs: &[(u64, usize)], values: &[u64]) -> Result {
        let mut rest = values;
        for &(first, n) in runs {
            let (run, later) = rest.split_at(n.min(rest.len()));
            self.write_run(first, run)?;
            rest = later;
        }
        Ok(())
    }

    /// Invalidates the IOMMU's caches of `count` entries from `first` on after exchanges, like
    /// `iommu_tce_kill`.
    fn kill(&self, _first: u64, _count: u64) {}

    /// Clears every hardware entry a table of window `w` may have written, which lie in the
    /// window-entry ranges `written` (under its allocated pages): the group is being detached
    /// from it and no longer receives its updates.
    fn clear(&self, w: &Window, written: &mut dyn Iterator<Item = Range<u64>>);

    /// The group's attachment state.
    fn binding(&self) -> &Binding;
}

/// The table a group is attached to.
pub(crate) struct Attached {
    /// Identity of the table (its address; the table holds the group while attached).
    pub(crate) table: usize,
}

/// What one attach holds until its own detach undoes it, as KVM's kvm-vfio device holds the file
/// of each `KVM_DEV_VFIO_FILE_ADD` until its `KVM_DEV_VFIO_FILE_DEL`.
pub(crate) struct Holder {
    /// The identity of the group the attach came through: a VFIO group's `iommu_group` (groups
    /// of one container share its hardware tables), a mock group's hardware table.
    pub(crate) group: usize,
    /// The VFIO group, held open while attached.
    #[cfg(CONFIG_KVM_TCE_REPLAY_SPAPR)]
    pub(crate) vfio: Option<shim::spapr::VfioGroup>,
}

impl Holder {
    /// The holder of an attach of a mock group (hardware table `id`): it holds nothing.
    #[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
    pub(crate) fn mock(id: usize) -> Self {
        Self {
            group: id,
            #[cfg(CONFIG_KVM_TCE_REPLAY_SPAPR)]
            vfio: None,
        }
    }
}

/// The attachment state of a hardware table, serialising its attaches and detaches (held across
/// a replay, outside the table's lock).
#[pin_data]
pub(crate) struct Binding {
    /// The binding lock, level 2 of the lock order (table.rs): protects the attachment.
    #[pin]
    pub(crate) state: Mutex<Option<Attached>>,
    /// One holder per attach not undone (none while detached): a leaf of the lock order, changed
    /// under `state`'s lock, read alone by the backend's writes.
    #[pin]
    pub(crate) holders: Mutex<KVec<Holder>>,
}

impl Binding {
    /// A group not attached to any table.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            state <- new_mutex!(None, "kvm_tce_replay::Binding::state"),
            holders <- new_mutex!(KVec::new(), "kvm_tce_replay::Binding::holders"),
        })
    }
}

shim::global_mutex! {
    /// The bound backends, one per hardware table: a leaf of the lock order (table.rs), taken
    /// alone to bind one, under a binding lock to check or drop it.
    static BOUND: Mutex<KVec<Arc<dyn IommuBackend>>> = KVec::new();
}

/// The backend through which attaches and detaches of `group`'s hardware table go: a VFIO group
/// is looked up anew by every ioctl, but its hardware table has one attachment state, as KVM's
/// `stit` entries belong to the `iommu_table`. The one already bound if there is one, else
/// `group`, now bound. The caller takes the binding lock and checks [`is_bound`] before use: a
/// detach may have unbound it meanwhile. A backend is bound while attached, and while an attach
/// holding its binding lock has it; whoever leaves it detached unbinds it ([`unbind`]).
pub(crate) fn bind(group: &Arc<dyn IommuBackend>) -> Result<Arc<dyn IommuBackend>> {
    let mut bound = BOUND.lock();
    if let Some(g) = bound.iter().find(|g| g.id() == group.id()) {
        return Ok(g.clone());
    }
    bound.push(group.clone(), GFP_KERNEL_ACCOUNT)?;
    Ok(group.clone())
}

/// Whether `group` is the bound backend of its hardware table (under its binding lock).
pub(crate) fn is_bound(group: &dyn IommuBackend) -> bool {
    BOUND.lock().iter().any(|g| core::ptr::addr_eq(&**g, group))
}

/// Unbinds `group`, left detached (under its binding lock).
pub(crate) fn unbind(group: &dyn IommuBackend) {
    let mut bound = BOUND.lock();
    let gone = bound
        .iter()
        .position(|g| core::ptr::addr_eq(&**g, group))
        .and_then(|i| bound.remove(i).ok());
    drop(bound);
    // The registry's reference goes after its lock is released (a leaf).
    drop(gone);
}

/// Lets go every holder of `group` (under its binding lock): what they hold goes after the
/// holders' lock is released (a leaf).
pub(crate) fn let_go(group: &dyn IommuBackend) {
    let gone = core::mem::take(&mut *group.binding().holders.lock());
    drop(gone);
}

/// Ends `group`'s attachment (under its binding lock `state`), once no update reaches it any
/// more: clears what the table of window `w` wrote (`written`, as for
/// [`IommuBackend::clear`]) while the attaches' holders still keep the VFIO groups (and so their
/// container's tables and memory) in place, then lets them go and unbinds it. A racing attach
/// of the same hardware table waits on the binding lock, then finds it unbound.
pub(crate) fn end_attachment(
    group: &dyn IommuBackend,
    state: &mut Option<Attached>,
    w: &Window,
    written: &mut dyn Iterator<Item = Range<u64>>,
) {
    group.clear(w, written);
    *state = None;
    let_go(group);
    unbind(group);
}

/// Work units (hardware entries written, window entries stored or looked at) between two
/// reschedule points of an update or a clear, as many as a replay's chunk (`replay.rs`) spends.
pub(crate) const BUDGET: u64 = 16384;

/// The work an update or a clear does between two reschedule points: [`BUDGET`] units, then a
/// reschedule point and, for an update, a fatal-signal check. Updates and clears run under
/// mutexes only (the table lock, a binding; a backend holds no spinlock between two exchanges),
/// where sleeping is allowed. A caller holding the table lock renews a spent budget at an entry
/// boundary after dropping the lock ([`Budget::spent`], [`Budget::renew`]); inside an entry,
/// whose subpages no other update may interleave with, [`map_entry`] renews it with the lock
/// held.
pub(crate) struct Budget {
    left: u64,
    killable: bool,
}

impl Budget {
    /// An update's budget: a fatal signal stops it (EINTR) at its next renewal.
    pub(crate) fn killable() -> Self {
        Self {
            left: BUDGET,
            killable: true,
        }
    }

    /// A clear's budget (detach, table release, the restore after a failed update): it
    /// reschedules but never stops, since a group that leaves must not keep entries, and a
    /// restore makes the groups equal to the table again.
    pub(crate) fn unkillable() -> Self {
        Self {
            left: BUDGET,
            killable: false,
        }
    }

    /// Whether the budget is spent: a caller that holds the table lock drops it before
    /// [`Budget::renew`].
    pub(crate) fn spent(&self) -> bool {
        self.left == 0
    }

    /// A reschedule point, a fatal-signal check for a killable budget (EINTR: the budget is
    /// not renewed), and a new budget.
    pub(crate) fn renew(&mut self) -> Result {
        shim::cond_resched();
        if self.killable && shim::fatal_signal_pending() {
            return Err(EINTR);
        }
        self.left = BUDGET;
        Ok(())
    }

    /// Counts `units` of work, renewing the budget first if it is spent.
    pub(crate) fn spend(&mut self, units: u64) -> Result {
        if self.spent() {
            self.renew()?;
        }
        self.left = self.left.saturating_sub(units);
        Ok(())
    }
}

/// Why [`map_entry`] did not write a whole entry.
pub(crate) enum Unfinished {
    /// A fatal signal, between two exchanges: the entry's first `written` subpages hold the
    /// new value, the others what they held.
    Killed { written: u64 },
    /// The backend failed an exchange.
    Failed(Error),
}

impl From<Unfinished> for Error {
    fn from(u: Unfinished) -> Self {
        match u {
            Unfinished::Killed { .. } => EINTR,
            Unfinished::Failed(e) => e,
        }
    }
}

/// Writes window entry `entry` holding `tce` into `group`: a valid TCE is split into hardware
/// subpages, an empty one clears them (`kvmppc_tce_iommu_map` / `_unmap`). Each subpage costs
/// one unit of `budget`, which may reschedule inside the entry and, if killable, stop it there.
/// Returns the number of hardware entries written.
pub(crate) fn map_entry(
    group: &dyn IommuBackend,
    w: &Window,
    entry: u64,
    tce: u64,
    budget: &mut Budget,
) -> Result<u64, Unfinished> {
    map_pairs(group, group.geometry().split(w, entry, tce), budget)
}

/// Writes the (hardware index, value) pairs `pairs` of one window entry into `group`, one unit
/// of `budget` each, and invalidates what it wrote.
fn map_pairs(
    group: &dyn IommuBackend,
    pairs: impl Iterator<Item = (u64, u64)>,
    budget: &mut Budget,
) -> Result<u64, Unfinished> {
    let mut written = 0;
    let mut first = None;
    let result = pairs.into_iter().try_for_each(|(index, value)| {
        budget
            .spend(1)
            .map_err(|_| Unfinished::Killed { written })?;
        first.get_or_insert(index);
        group.xchg(index, value).map_err(Unfinished::Failed)?;
        written += 1;
        Ok(())
    });
    if let Some(first) = first {
        group.kill(first, written.max(1));
    }
    result.map(|()| written)
}

/// Gives `group` back window entry `entry` as the table holds it (`value`, as
/// [`crate::table::Table::replayable`] says) after a failed update: clears every subpage first
/// (KVM's `kvmppc_clear_tce`), then maps `value` again. Mapping what the group held before
/// allocates nothing in the mock backend; if the real one cannot, the entry stays clear, as in
/// KVM, and a warning says so.
pub(crate) fn restore_entry(group: &dyn IommuBackend, w: &Window, entry: u64, value: u64) {
    let subs = 0..group.geometry().subpages(w);
    restore_subpages(group, w, entry, value, subs, false);
}

/// [`restore_entry`] after an update that stopped inside the entry (a fatal signal): only its
/// first `written` subpages hold the update's value `new`, so only they are given back `value`
/// (and not cleared first if `new` cleared them). Costs at most what the update had done.
pub(crate) fn restore_killed(
    group: &dyn IommuBackend,
    w: &Window,
    entry: u64,
    new: u64,
    value: u64,
    written: u64,
) {
    restore_subpages(group, w, entry, value, 0..written, new == 0);
}

/// Clears the subpages `subs` of window entry `entry` in `group` (unless `cleared`: they are
/// clear), then maps `value` into them; rescheduling, never stopping.
fn restore_subpages(
    group: &dyn IommuBackend,
    w: &Window,
    entry: u64,
    value: u64,
    subs: Range<u64>,
    cleared: bool,
) {
    let geo = group.geometry();
    let mut budget = Budget::unkillable();
    let mut map = |tce| {
        let pairs = geo.split_range(w, entry, tce, subs.clone());
        map_pairs(group, pairs, &mut budget).is_ok()
    };
    if !(cleared || map(0)) || (value != 0 && !map(value)) {
        let _ = map(0);
        shim::pr_warn_ratelimited!(
            "window entry {entry} left clear in a group after a failed update\n"
        );
    }
}

/// Detaches `group` from the table of identity `table` and window `w`, which is going away and
/// has already dropped its list of groups (see [`end_attachment`]).
pub(crate) fn release(
    group: &dyn IommuBackend,
    table: usize,
    w: &Window,
    written: &mut dyn Iterator<Item = Range<u64>>,
) {
    let mut state = group.binding().state.lock();
    if state.as_ref().is_some_and(|a| a.table == table) {
        end_attachment(group, &mut state, w, written);
    }
}

/// Hardware entries of a replay, gathered into runs of consecutive indices, several runs at a
/// time, so that a backend writes them with one call ([`IommuBackend::write_runs`]: the mock
/// takes its lock once for them all, and the misses of unrelated runs overlap) and invalidates
/// each run once.
///
/// # Invariants
///
/// `runs` splits `buf` in order: run `i` holds `runs[i].1 > 0` values for the consecutive
/// entries from `runs[i].0` on; `buf` holds at most [`Runs::MAX`] values, `runs` at most
/// [`Runs::MAX_RUNS`] runs.
pub(crate) struct Runs<'a> {
    group: &'a dyn IommuBackend,
    geo: HwGeometry,
    buf: KVec<u64>,
    runs: KVec<(u64, usize)>,
}

impl<'a> Runs<'a> {
    /// Most values gathered: 512 hardware entries (4 KiB of values).
    const MAX: usize = 512;
    /// Most runs gathered.
    const MAX_RUNS: usize = 64;

    /// An empty run buffer for `group`.
    pub(crate) fn new(group: &'a dyn IommuBackend) -> Result<Self> {
        Ok(Self {
            group,
            geo: group.geometry(),
            buf: KVec::with_capacity(Self::MAX, GFP_KERNEL_ACCOUNT)?,
            runs: KVec::with_capacity(Self::MAX_RUNS, GFP_KERNEL_ACCOUNT)?,
        })
    }

    /// Adds the hardware subpages `subs` of window entry `entry` holding the valid, checked
    /// `tce` of window `w`; returns the number of hardware entries.
    pub(crate) fn push_entry(
        &mut self,
        w: &Window,
        entry: u64,
        tce: u64,
        subs: Range<u64>,
    ) -> Result<u64> {
        let mut n = 0;
        for (index, value) in self.geo.split_range(w, entry, tce, subs) {
            self.append(index, 1, |buf| {
                buf.push_within_capacity(value).map_err(|_| EINVAL)
            })?;
            n += 1;
        }
        Ok(n)
    }

    /// The group's hardware geometry.
    pub(crate) fn geometry(&self) -> &HwGeometry {
        &self.geo
    }

    /// Adds the hardware entries `index..` holding `values` (checked): appended to the last run
    /// if they continue it, else a run of their own; written at once when long (no copy).
    pub(crate) fn push_run(&mut self, index: u64, values: &[u64]) -> Result {
        if values.is_empty() {
            return Ok(());
        }
        if values.len() * 4 >= Self::MAX {
            self.flush()?;
            let result = self.group.write_run(index, values);
            self.group.kill(index, usize_as_u64(values.len()));
            return result;
        }
        self.append(index, values.len(), |buf| {
            buf.extend_from_slice(values, GFP_KERNEL_ACCOUNT)
                .map_err(Into::into)
        })
    }

    /// Appends `n` (at most [`Runs::MAX`]) values for the entries `index..` with `fill`, to
    /// the last run if they continue it, else as a run of their own, flushing first what
    /// leaves no room for them.
    fn append(
        &mut self,
        index: u64,
        n: usize,
        fill: impl FnOnce(&mut KVec<u64>) -> Result,
    ) -> Result {
        if self.buf.len() + n > Self::MAX {
            self.flush()?;
        }
        match self.runs.last_mut() {
            Some((first, len)) if *first + usize_as_u64(*len) == index => *len += n,
            _ => {
                if self.runs.len() == Self::MAX_RUNS {
                    self.flush()?;
                }
                // INVARIANT: a new run, with room for it (flushed above otherwise).
                self.runs
                    .push_within_capacity((index, n))
                    .map_err(|_| EINVAL)?;
            }
        }
        // INVARIANT: the last run's new values, with room for them: the buffer was allocated
        // with room for `MAX` and flushed above if they did not fit, so nothing reallocates.
        fill(&mut self.buf)
    }

    /// Writes the gathered runs into the group. The replay flushes before each release of the
    /// table lock (`Replayer::run`), so a run lands before any later update of its entries.
    pub(crate) fn flush(&mut self) -> Result {
        if self.runs.is_empty() {
            return Ok(());
        }
        let result = self.group.write_runs(&self.runs, &self.buf);
        for &(first, n) in self.runs.iter() {
            self.group.kill(first, usize_as_u64(n));
        }
        self.buf.clear();
        self.runs.clear();
        result
    }
}
