// SPDX-License-Identifier: GPL-2.0

//! The test-only ABI of kvm-tce-replay, compiled only with `CONFIG_KVM_TCE_REPLAY_MOCK` (as
//! iommufd keeps its mock domain in drivers/iommu/iommufd/iommufd_test.h): mock IOMMU groups and
//! the benchmarks' replay strategies. Shared by the module and the harness, mirrored by
//! rust/kvm_tce_replay_test.h. Not a stable ABI.

// `pub`: the userspace client crate (tools/client) re-exports these as its public ABI; in the
// module they are reachable only inside the crate.
#![allow(unreachable_pub, reason = "re-exported by the userspace client crate")]

use super::uapi::{assert_sizes, iow, iowr, KTR_IO};
use core::mem::size_of;

/// Creates a mock IOMMU group with its own hardware-table geometry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KtrMockGroup {
    /// log2 of the hardware IOMMU page size, 12..=34.
    pub it_page_shift: u32,
    /// Levels of the hardware table, 1..=5.
    pub levels: u32,
    /// Bus offset of the hardware table, in hardware pages.
    pub it_offset: u64,
    /// Hardware entries of the table.
    pub it_size: u64,
    /// Must be 0.
    pub flags: u64,
}

/// Reads hardware entries `first .. first + count` of a mock group into the user array `entries`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KtrMockRead {
    /// First hardware entry (0 is the entry at the table's bus offset).
    pub first: u64,
    /// Number of entries, at most [`KTR_MOCK_READ_MAX`].
    pub count: u64,
    /// User pointer to `count` u64s.
    pub entries: u64,
    /// Which hardware table of the group: 0, or 1 once added (`KTR_MOCK_ADD_TABLE`).
    pub table: u64,
}

/// Writes hardware entries `first .. first + count` of a mock group from the user array
/// `entries`, outside any TCE table, as VFIO's `VFIO_IOMMU_MAP_DMA` writes a container's table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KtrMockWrite {
    /// First hardware entry (0 is the entry at the table's bus offset).
    pub first: u64,
    /// Number of entries, at most [`KTR_MOCK_WRITE_MAX`].
    pub count: u64,
    /// User pointer to `count` u64s, the entries' new values.
    pub entries: u64,
    /// Which hardware table of the group: 0, or 1 once added (`KTR_MOCK_ADD_TABLE`).
    pub table: u64,
}

/// Counters of a mock IOMMU group.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KtrMockStats {
    /// Hardware entries written (exchanges that stored a valid TCE).
    pub entries_written: u64,
    /// Exchanges of any kind (map or clear).
    pub exchanges: u64,
    /// Non-zero hardware entries now.
    pub entries_valid: u64,
    /// Pages of the multi-level hardware table allocated.
    pub pages_allocated: u64,
    /// 1 while attached to a table.
    pub attached: u64,
    /// In: which hardware table of the group (0 or 1).
    pub table: u64,
}

/// Most entries one `KTR_MOCK_READ` returns.
pub const KTR_MOCK_READ_MAX: u64 = 1 << 16;

/// Most entries one `KTR_MOCK_WRITE` writes.
pub const KTR_MOCK_WRITE_MAX: u64 = 4096;

/// `KtrMockGroup::flags`: a detach clears the hardware table's entries but keeps its levels (as
/// powernv keeps a table's levels); by default a detach frees them.
pub const KTR_MOCK_KEEP_LEVELS: u64 = 1 << 0;

/// Replay strategy of an attach: the normal walk over allocated pages and populated entries.
#[allow(dead_code, reason = "used by userspace; the module tests for 0")]
pub const KTR_ATTACH_WALK_POPULATED: u32 = 0;
/// Replay strategy of an attach: every entry of the window (what QEMU's own replay costs).
pub const KTR_ATTACH_WALK_ENTRIES: u32 = 1;
/// Replay strategy of an attach: every TCE-page slot of the window (a KVM-style pages[] array).
pub const KTR_ATTACH_WALK_SLOTS: u32 = 2;

/// Device fd: creates a mock IOMMU group, returns its fd.
pub const KTR_CREATE_MOCK_GROUP: u32 = iow::<KtrMockGroup>(KTR_IO, 0x01);

/// Group fd: reads hardware entries of one of its tables.
pub const KTR_MOCK_READ: u32 = iow::<KtrMockRead>(KTR_IO, 0x20);
/// Group fd: counters of one of its tables.
pub const KTR_MOCK_STATS: u32 = iowr::<KtrMockStats>(KTR_IO, 0x21);
/// Group fd: the next `n`-th page allocation of its first hardware table fails (0: never).
pub const KTR_MOCK_FAIL_ALLOC: u32 = iow::<u64>(KTR_IO, 0x22);
/// Group fd: adds a second hardware table (window) of the given geometry, as a DDW is created
/// beside the default 32-bit window; returns its index (1).
pub const KTR_MOCK_ADD_TABLE: u32 = iow::<KtrMockGroup>(KTR_IO, 0x23);
/// Group fd: writes hardware entries of one of its tables from userspace, outside any TCE
/// table (as `VFIO_IOMMU_MAP_DMA` does).
pub const KTR_MOCK_WRITE: u32 = iow::<KtrMockWrite>(KTR_IO, 0x24);

/// The test-only structs, as `ktr_uapi_structs!` lists the ABI's.
#[macro_export]
macro_rules! ktr_uapi_test_structs {
    ($m:ident! $($p:ident)::+) => {
        $m! {
            $($p)::+::KtrMockGroup = "ktr_mock_group" (32),
            $($p)::+::KtrMockRead = "ktr_mock_read" (32),
            $($p)::+::KtrMockStats = "ktr_mock_stats" (48),
            $($p)::+::KtrMockWrite = "ktr_mock_write" (32),
        }
    };
}

ktr_uapi_test_structs!(assert_sizes! self);
