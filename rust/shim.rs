// SPDX-License-Identifier: GPL-2.0

//! The module's one thin layer over raw C, split like rust/kernel by what it wraps:
//! anonymous-inode files and their mmap ([`file`]), an insert-only sparse map over the XArray
//! ([`xarray`]), TCE pages through the direct map ([`page`]), the calling task ([`task`]),
//! module-wide mutexes ([`global`]), the RLIMIT_MEMLOCK charge ([`memlock`]), plain-data markers
//! ([`plain`]), rate-limited warnings ([`ratelimit`]) and the real backend's `iommu_table`
//! ([`spapr`]). Everything outside this folder is safe Rust.

mod file;
mod global;
mod memlock;
mod page;
mod plain;
mod ratelimit;
#[cfg(CONFIG_KVM_TCE_REPLAY_SPAPR)]
pub(crate) mod spapr;
mod task;
mod xarray;

pub(crate) use file::{from_fd, install_fd, AnonFile, FileOps, UserMappings};
pub(crate) use global::{global_mutex, Global};
pub(crate) use memlock::MemlockCharge;
pub(crate) use page::WordPage;
pub(crate) use ratelimit::{pr_warn_ratelimited, RateLimit};
#[cfg(CONFIG_KVM_TCE_REPLAY_KUNIT_TEST)]
pub(crate) use task::init_mm;
pub(crate) use task::{cond_resched, fatal_signal_pending, user_range_ok};
pub(crate) use xarray::{Iter as SparseIter, SparseMap};
