// SPDX-License-Identifier: GPL-2.0

//! Statistics of tables and their replays, read through `KTR_TABLE_STATS` and, for every live
//! table together with the module's memory accounting, through debugfs
//! (`/sys/kernel/debug/kvm_tce_replay/tables`).

use crate::{accounting, pure::uapi::KtrTableStats, shim};
use core::{
    fmt,
    sync::atomic::{AtomicU64, Ordering},
};
use kernel::{prelude::*, sync::Arc};

/// The counters of one table, shared by the table and the debugfs listing.
pub(crate) struct TableStats {
    pub(crate) liobn: u64,
    pub(crate) window_entries: u64,
    pub(crate) entries_per_page: u64,
    pub(crate) pages_allocated: AtomicU64,
    pub(crate) groups_attached: AtomicU64,
    pub(crate) replays: AtomicU64,
    pub(crate) last_walked: AtomicU64,
    pub(crate) last_tces: AtomicU64,
    pub(crate) last_hw_entries: AtomicU64,
    pub(crate) last_ns: AtomicU64,
    pub(crate) last_visited: AtomicU64,
    pub(crate) last_skipped: AtomicU64,
    /// Faults on the table's mappings answered with SIGBUS.
    pub(crate) faults_refused: AtomicU64,
}

/// What one replay did.
#[derive(Clone, Copy, Default)]
pub(crate) struct ReplayStats {
    /// TCE pages, page slots or entries visited, by strategy.
    pub(crate) walked: u64,
    /// Valid TCEs written to the group.
    pub(crate) tces: u64,
    /// Hardware entries written.
    pub(crate) hw_entries: u64,
    /// Duration in nanoseconds.
    pub(crate) ns: u64,
    /// Entry slots looked at inside the walked pages.
    pub(crate) visited: u64,
    /// Entries skipped as invalid.
    pub(crate) skipped: u64,
}

shim::global_mutex! {
    /// The registry of live tables for debugfs: a leaf of the lock order (table.rs).
    static LIVE: Mutex<KVec<Arc<TableStats>>> = KVec::new();
}

impl TableStats {
    /// The counters of a new table, listed in debugfs until [`TableStats::unregister`].
    pub(crate) fn register(
        liobn: u64,
        window_entries: u64,
        entries_per_page: u64,
    ) -> Result<Arc<Self>> {
        let stats = Arc::new(
            Self {
                liobn,
                window_entries,
                entries_per_page,
                pages_allocated: AtomicU64::new(0),
                groups_attached: AtomicU64::new(0),
                replays: AtomicU64::new(0),
                last_walked: AtomicU64::new(0),
                last_tces: AtomicU64::new(0),
                last_hw_entries: AtomicU64::new(0),
                last_ns: AtomicU64::new(0),
                last_visited: AtomicU64::new(0),
                last_skipped: AtomicU64::new(0),
                faults_refused: AtomicU64::new(0),
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        LIVE.lock().push(stats.clone(), GFP_KERNEL_ACCOUNT)?;
        Ok(stats)
    }

    /// Takes the table out of the debugfs listing.
    pub(crate) fn unregister(this: &Arc<Self>) {
        LIVE.lock().retain(|s| !Arc::ptr_eq(s, this));
    }

    /// Records a finished replay.
    pub(crate) fn record(&self, r: ReplayStats) {
        self.last_walked.store(r.walked, Ordering::Relaxed);
        self.last_tces.store(r.tces, Ordering::Relaxed);
        self.last_hw_entries.store(r.hw_entries, Ordering::Relaxed);
        self.last_ns.store(r.ns, Ordering::Relaxed);
        self.last_visited.store(r.visited, Ordering::Relaxed);
        self.last_skipped.store(r.skipped, Ordering::Relaxed);
        self.replays.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters in the ABI's layout.
    pub(crate) fn to_uapi(&self) -> KtrTableStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        KtrTableStats {
            window_entries: self.window_entries,
            entries_per_page: self.entries_per_page,
            pages_allocated: get(&self.pages_allocated),
            groups_attached: get(&self.groups_attached),
            replays: get(&self.replays),
            last_pages_walked: get(&self.last_walked),
            last_tces_replayed: get(&self.last_tces),
            last_hw_entries_written: get(&self.last_hw_entries),
            last_replay_ns: get(&self.last_ns),
            last_entries_visited: get(&self.last_visited),
            last_tces_skipped: get(&self.last_skipped),
            faults_refused: get(&self.faults_refused),
        }
    }
}

/// The debugfs file `tables`: the module's memory and one line per live table.
pub(crate) struct Summary;

impl fmt::Debug for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "memory: tables {} B, mock groups {} B",
            accounting::TABLES.get(),
            accounting::MOCK.get()
        )?;
        for t in LIVE.lock().iter() {
            let s = t.to_uapi();
            writeln!(
                f,
                "liobn {:#x}: entries {} pages_allocated {} groups {} replays {} last: walked {} visited {} tces {} skipped {} hw_entries {} ns {} faults_refused {}",
                t.liobn,
                s.window_entries,
                s.pages_allocated,
                s.groups_attached,
                s.replays,
                s.last_pages_walked,
                s.last_entries_visited,
                s.last_tces_replayed,
                s.last_tces_skipped,
                s.last_hw_entries_written,
                s.last_replay_ns,
                s.faults_refused
            )?;
        }
        Ok(())
    }
}
