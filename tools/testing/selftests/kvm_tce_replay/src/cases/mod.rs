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

/// What a case needs of the module besides its device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Nothing more: a production module passes it.
    Device,
    /// The mock backend (`CONFIG_KVM_TCE_REPLAY_MOCK`, loaded with `mock=1`): the case skips
    /// without it.
    Mock,
}

/// A case: its name, what it needs and its function.
pub struct Case {
    pub name: &'static str,
    pub needs: Needs,
    pub run: fn() -> CaseResult,
}

const fn device(name: &'static str, run: fn() -> CaseResult) -> Case {
    Case {
        name,
        needs: Needs::Device,
        run,
    }
}

const fn mock(name: &'static str, run: fn() -> CaseResult) -> Case {
    Case {
        name,
        needs: Needs::Mock,
        run,
    }
}

/// Every case, by name, in run order.
pub const ALL: &[Case] = &[
    device("device_exists", device::device_exists),
    device("check_extension", device::check_extension),
    device("unknown_ioctl_enotty", device::unknown_ioctl_enotty),
    device("enable_cap", device::enable_cap),
    device("ioctl_encoding", device::ioctl_encoding),
    device("memory_regions", device::memory_regions),
    device("create_checks", table::create_checks),
    device("table_fd_flags", table::table_fd_flags),
    device("ddw_128tib_memory", table::ddw_128tib_memory),
    device("put_get_round_trip", table::put_get_round_trip),
    device("put_checks", table::put_checks),
    device("stuff_round_trip", table::stuff_round_trip),
    device("indirect_round_trip", table::indirect_round_trip),
    device("indirect_checks", table::indirect_checks),
    device("clear_does_not_allocate", table::clear_does_not_allocate),
    device("populated_bitmap", table::populated_bitmap),
    device("debugfs_stats", table::debugfs_stats),
    device("mmap_read_empty_window", mmap::read_empty_window),
    device("mmap_write_through", mmap::write_through_mmap),
    device("mmap_sigbus_past_the_end", mmap::sigbus_past_the_end),
    device("mmap_private_refused", mmap::private_mapping_refused),
    mock("attach_replays_exactly", attach::attach_replays_exactly),
    mock("replay_strategies_agree", attach::replay_strategies_agree),
    mock(
        "no_replay_without_capability",
        attach::no_replay_without_capability,
    ),
    mock("double_attach_and_detach", attach::double_attach_and_detach),
    mock(
        "updates_reach_every_group",
        attach::updates_reach_every_group,
    ),
    mock("attach_checks", attach::attach_checks),
    mock("mock_group_checks", attach::mock_group_checks),
    mock("mock_keep_levels", attach::mock_keep_levels),
    mock(
        "replay_checks_each_entry_of_a_run",
        attach::replay_checks_each_entry_of_a_run,
    ),
    mock(
        "replay_failure_rolls_back",
        attach::replay_failure_rolls_back,
    ),
    mock("ddw_128tib_replay", attach::ddw_128tib_replay),
    device("real_vfio_group", vfio::real_vfio_group),
    mock(
        "junk_through_mmap_is_skipped",
        hostile::junk_through_mmap_is_skipped,
    ),
    mock(
        "failed_update_changes_nothing",
        hostile::failed_update_changes_nothing,
    ),
    device(
        "memlock_bounds_tce_pages",
        hostile::memlock_bounds_tce_pages,
    ),
    mock("kill_interrupts_replay", hostile::kill_interrupts_replay),
    device(
        "foreign_process_gets_eio",
        hostile::foreign_process_gets_eio,
    ),
    device(
        "memslots_and_poison_match_kvm",
        hostile::memslots_and_poison_match_kvm,
    ),
    mock(
        "read_mapping_keeps_population",
        hostile::read_mapping_keeps_population,
    ),
    mock("two_windows_two_tables", hostile::two_windows_two_tables),
    mock("fail_nth_sweep", fail_nth::fail_nth_sweep),
    mock("model_check", model::model_check),
    mock("fuzz_budget", fuzz::fuzz_budget),
    mock(
        "concurrent_puts_during_attach",
        stress::concurrent_puts_during_attach,
    ),
    mock("close_in_every_order", stress::close_in_every_order),
    mock("stress_everything", stress::stress_everything),
];
