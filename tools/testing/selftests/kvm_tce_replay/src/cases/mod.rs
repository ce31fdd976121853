// SPDX-License-Identifier: GPL-2.0

//! The harness's cases, one file per area; `ALL` lists them in run order.

mod device;

use crate::CaseResult;

/// Every case, by name, in run order.
pub const ALL: &[(&str, fn() -> CaseResult)] = &[
    ("device_exists", device::device_exists),
    ("check_extension", device::check_extension),
    ("unknown_ioctl_enotty", device::unknown_ioctl_enotty),
    ("enable_cap", device::enable_cap),
];
