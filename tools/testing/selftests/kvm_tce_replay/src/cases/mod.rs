// SPDX-License-Identifier: GPL-2.0

//! The harness's cases, one file per area; `ALL` lists them in run order.

mod attach;
mod device;
mod fail_nth;
pub mod fuzz;
pub mod hostile;
pub mod mmap;
mod model;
mod stress;
mod table;
mod vfio;

use crate::CaseResult;

/// A case: its name and its function.
pub type Case = (&'static str, fn() -> CaseResult);

/// Every case, by name, in run order.
pub const ALL: &[Case] = &[
    ("device_exists", device::device_exists),
    ("check_extension", device::check_extension),
    ("unknown_ioctl_enotty", device::unknown_ioctl_enotty),
    ("enable_cap", device::enable_cap),
    ("ioctl_encoding", device::ioctl_encoding),
    ("memory_regions", device::memory_regions),
    ("create_checks", table::create_checks),
    ("table_fd_flags", table::table_fd_flags),
    ("seed_window_memory", table::seed_window_memory),
    ("put_get_round_trip", table::put_get_round_trip),
    ("put_checks", table::put_checks),
    ("stuff_round_trip", table::stuff_round_trip),
    ("indirect_round_trip", table::indirect_round_trip),
    ("indirect_checks", table::indirect_checks),
    ("clear_does_not_allocate", table::clear_does_not_allocate),
    ("populated_bitmap", table::populated_bitmap),
    ("debugfs_stats", table::debugfs_stats),
    ("mmap_read_empty_window", mmap::read_empty_window),
    ("mmap_write_through", mmap::write_through_mmap),
    ("mmap_sigbus_past_the_end", mmap::sigbus_past_the_end),
    ("mmap_private_refused", mmap::private_mapping_refused),
    ("attach_replays_exactly", attach::attach_replays_exactly),
    ("replay_strategies_agree", attach::replay_strategies_agree),
    (
        "no_replay_without_capability",
        attach::no_replay_without_capability,
    ),
    ("double_attach_and_detach", attach::double_attach_and_detach),
    (
        "updates_reach_every_group",
        attach::updates_reach_every_group,
    ),
    ("attach_checks", attach::attach_checks),
    ("mock_group_checks", attach::mock_group_checks),
    ("mock_keep_levels", attach::mock_keep_levels),
    (
        "replay_checks_each_entry_of_a_run",
        attach::replay_checks_each_entry_of_a_run,
    ),
    (
        "replay_failure_rolls_back",
        attach::replay_failure_rolls_back,
    ),
    ("seed_window_replay", attach::seed_window_replay),
    ("real_vfio_group", vfio::real_vfio_group),
    (
        "junk_through_mmap_is_skipped",
        hostile::junk_through_mmap_is_skipped,
    ),
    (
        "failed_update_changes_nothing",
        hostile::failed_update_changes_nothing,
    ),
    (
        "memlock_bounds_tce_pages",
        hostile::memlock_bounds_tce_pages,
    ),
    ("kill_interrupts_replay", hostile::kill_interrupts_replay),
    (
        "foreign_process_gets_eio",
        hostile::foreign_process_gets_eio,
    ),
    (
        "memslots_and_poison_match_kvm",
        hostile::memslots_and_poison_match_kvm,
    ),
    (
        "read_mapping_keeps_population",
        hostile::read_mapping_keeps_population,
    ),
    ("two_windows_two_tables", hostile::two_windows_two_tables),
    ("fail_nth_sweep", fail_nth::fail_nth_sweep),
    ("model_check", model::model_check),
    ("fuzz_budget", fuzz::fuzz_budget),
    (
        "concurrent_puts_during_attach",
        stress::concurrent_puts_during_attach,
    ),
    ("close_in_every_order", stress::close_in_every_order),
    ("stress_everything", stress::stress_everything),
];
