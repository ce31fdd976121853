// SPDX-License-Identifier: GPL-2.0

//! The userspace ABI of kvm-tce-replay: ioctl numbers and argument structs, shared as one source
//! by the module and the userspace harness and mirrored by `include/uapi/linux/kvm_tce_replay.h`.
//!
//! The KVM-compatible part (`KVM_CHECK_EXTENSION`, `KVM_ENABLE_CAP`, `KVM_CREATE_SPAPR_TCE_64`)
//! uses KVM's numbers and layouts; what KVM lacks uses its own ioctl type, [`KTR_IO`]. The
//! test-only ABI (mock groups, benchmark walks) is in `uapi_test.rs`.

// `pub`: the userspace client crate (tools/client) re-exports these as its public ABI; in the
// module they are reachable only inside the crate.
#![allow(unreachable_pub, reason = "re-exported by the userspace client crate")]

use core::mem::size_of;

/// The `_IOC` encoding of the architecture this file is compiled for (asm-generic/ioctl.h or
/// arch/powerpc/include/uapi/asm/ioctl.h).
mod ioc {
    #[cfg(any(target_arch = "powerpc", target_arch = "powerpc64"))]
    const SIZEBITS: u32 = 13;
    #[cfg(any(target_arch = "powerpc", target_arch = "powerpc64"))]
    pub(super) const NONE: u32 = 1;
    #[cfg(any(target_arch = "powerpc", target_arch = "powerpc64"))]
    pub(super) const WRITE: u32 = 4;

    #[cfg(not(any(target_arch = "powerpc", target_arch = "powerpc64")))]
    const SIZEBITS: u32 = 14;
    #[cfg(not(any(target_arch = "powerpc", target_arch = "powerpc64")))]
    pub(super) const NONE: u32 = 0;
    #[cfg(not(any(target_arch = "powerpc", target_arch = "powerpc64")))]
    pub(super) const WRITE: u32 = 1;

    pub(super) const READ: u32 = 2;

    /// `_IOC(dir, type, nr, size)`.
    pub(super) const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
        assert!(size < (1 << SIZEBITS));
        // CAST: an ioctl argument's size fits the 14 bits of _IOC_SIZE.
        (dir << (16 + SIZEBITS)) | ((size as u32) << 16) | (ty << 8) | nr
    }
}

pub(crate) const fn io(ty: u32, nr: u32) -> u32 {
    ioc::ioc(ioc::NONE, ty, nr, 0)
}
pub(crate) const fn iow<T>(ty: u32, nr: u32) -> u32 {
    ioc::ioc(ioc::WRITE, ty, nr, size_of::<T>())
}
pub(crate) const fn ior<T>(ty: u32, nr: u32) -> u32 {
    ioc::ioc(ioc::READ, ty, nr, size_of::<T>())
}
pub(crate) const fn iowr<T>(ty: u32, nr: u32) -> u32 {
    ioc::ioc(ioc::READ | ioc::WRITE, ty, nr, size_of::<T>())
}

/// KVM's ioctl type.
pub const KVMIO: u32 = 0xAE;
/// The ioctl type of what KVM lacks (free in Documentation/userspace-api/ioctl/ioctl-number.rst).
pub const KTR_IO: u32 = 0xB9;

/// KVM's capability number for the number of memory slots.
pub const KVM_CAP_NR_MEMSLOTS: u32 = 10;
/// KVM's capability number for 64-bit TCE tables.
pub const KVM_CAP_SPAPR_TCE_64: u32 = 125;
/// The new capability: attaching an IOMMU group replays the table's valid TCEs into it.
/// Far above every `KVM_CAP_*` of the 7.3 uapi (the highest is 251), so it cannot collide.
pub const KVM_CAP_SPAPR_TCE_REPLAY: u32 = 0x7443;

/// `struct kvm_enable_cap`, as in include/uapi/linux/kvm.h.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvmEnableCap {
    /// The capability to enable.
    pub cap: u32,
    /// Must be 0.
    pub flags: u32,
    /// Must be 0 for [`KVM_CAP_SPAPR_TCE_REPLAY`].
    pub args: [u64; 4],
    /// Must be 0.
    pub pad: [u8; 64],
}

impl KvmEnableCap {
    /// A request to enable `cap`, with every other field zero.
    #[allow(dead_code, reason = "used by userspace")]
    pub const fn new(cap: u32) -> Self {
        Self {
            cap,
            flags: 0,
            args: [0; 4],
            pad: [0; 64],
        }
    }
}

/// `struct kvm_create_spapr_tce_64`, as in include/uapi/linux/kvm.h.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvmCreateSpaprTce64 {
    /// Logical I/O bus number of the window; unique in its context.
    pub liobn: u64,
    /// log2 of the IOMMU page size, 12..=34.
    pub page_shift: u32,
    /// Must be 0.
    pub flags: u32,
    /// Bus offset of the window, in IOMMU pages.
    pub offset: u64,
    /// Number of TCEs in the window.
    pub size: u64,
}

/// `struct kvm_userspace_memory_region`, as in include/uapi/linux/kvm.h: guest memory the real
/// IOMMU backend translates TCEs through.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvmUserspaceMemoryRegion {
    /// Slot number, below 512 (`memslots::MEMSLOTS`, the number `KVM_CAP_NR_MEMSLOTS` gives).
    pub slot: u32,
    /// Must be 0.
    pub flags: u32,
    /// Guest-physical address of the slot, page aligned.
    pub guest_phys_addr: u64,
    /// Size in bytes, page aligned; 0 deletes the slot.
    pub memory_size: u64,
    /// Where the VMM maps the slot, page aligned.
    pub userspace_addr: u64,
}

impl KvmUserspaceMemoryRegion {
    /// Slot `slot`: `size` bytes of guest memory from `gpa` at user address `ua`, no flags.
    #[allow(dead_code, reason = "used by userspace and the tests")]
    pub const fn new(slot: u32, gpa: u64, size: u64, ua: u64) -> Self {
        Self {
            slot,
            flags: 0,
            guest_phys_addr: gpa,
            memory_size: size,
            userspace_addr: ua,
        }
    }
}

/// `H_PUT_TCE`: one TCE at `ioba`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KtrPutTce {
    /// I/O bus address, aligned to the table's page size.
    pub ioba: u64,
    /// The new TCE.
    pub tce: u64,
}

/// `H_PUT_TCE_INDIRECT`: `npages` TCEs read from the user array at `tces`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KtrPutTceIndirect {
    /// I/O bus address of the first TCE.
    pub ioba: u64,
    /// User pointer to `npages` u64 TCEs, 4 KiB aligned like the hcall's list.
    pub tces: u64,
    /// Number of TCEs, at most [`KTR_INDIRECT_MAX`].
    pub npages: u64,
}

/// `H_STUFF_TCE`: `npages` TCEs from `ioba` on set to `tce_value`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KtrStuffTce {
    /// I/O bus address of the first TCE.
    pub ioba: u64,
    /// The value to store.
    pub tce_value: u64,
    /// Number of TCEs.
    pub npages: u64,
}

/// `H_GET_TCE`: reads the TCE at `ioba` into `tce`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KtrGetTce {
    /// In: I/O bus address.
    pub ioba: u64,
    /// Out: the TCE.
    pub tce: u64,
}

/// Which TCE pages of a range of the window are allocated, one bit per TCE page.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KtrPopulated {
    /// In: first TCE page (TCE page `p` holds entries `p * entries_per_page ..`).
    pub first_page: u64,
    /// In: number of TCE pages; the bitmap has `ceil(npages / 64)` u64 words.
    pub npages: u64,
    /// In: user pointer to the bitmap (bit `i` of word `i / 64` is page `first_page + i`).
    pub bitmap: u64,
    /// Out: TCEs per TCE page (the kernel's PAGE_SIZE / 8).
    pub entries_per_page: u64,
}

/// Statistics of a table and of its last replay.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KtrTableStats {
    /// TCEs in the window.
    pub window_entries: u64,
    /// TCEs per TCE page.
    pub entries_per_page: u64,
    /// TCE pages allocated.
    pub pages_allocated: u64,
    /// IOMMU groups attached.
    pub groups_attached: u64,
    /// Number of replays run.
    pub replays: u64,
    /// Last replay: TCE pages (or page slots, or entries, by strategy) visited.
    pub last_pages_walked: u64,
    /// Last replay: valid TCEs written to the group.
    pub last_tces_replayed: u64,
    /// Last replay: hardware entries written.
    pub last_hw_entries_written: u64,
    /// Last replay: duration in nanoseconds.
    pub last_replay_ns: u64,
    /// Last replay: TCE slots looked at inside the walked pages (populated entries, or every
    /// entry of a page that userspace wrote through mmap).
    pub last_entries_visited: u64,
    /// Last replay: entries skipped because they fail the `H_PUT_TCE` checks (written through
    /// mmap): not replayed, and the group's entries for them stay clear.
    pub last_tces_skipped: u64,
    /// Faults on the table's mappings answered with SIGBUS: a page past the table's end, or a
    /// write to a page that could not be allocated or charged.
    pub faults_refused: u64,
}

/// Attaches (or detaches) the IOMMU group `groupfd` to the TCE table `tablefd`, like
/// `KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE` (`struct kvm_vfio_spapr_tce` plus flags).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KtrAttach {
    /// The IOMMU group fd.
    pub groupfd: i32,
    /// The TCE table fd.
    pub tablefd: i32,
    /// 0 (the test configuration adds the benchmarks' replay strategies, `uapi_test.rs`).
    pub flags: u32,
    /// Must be 0.
    pub pad: u32,
}

/// Module-wide memory accounting.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KtrMemStats {
    /// Bytes the module has allocated for tables and their pages and live now.
    pub table_bytes: u64,
    /// Bytes the module has allocated for mock groups and live now.
    pub mock_bytes: u64,
}

/// Most TCEs one `KTR_PUT_TCE_INDIRECT` takes (one 4 KiB list, as H_PUT_TCE_INDIRECT).
pub const KTR_INDIRECT_MAX: u64 = 512;

/// `KVM_CHECK_EXTENSION` (device fd): argument is the capability; returns > 0 if supported.
pub const KVM_CHECK_EXTENSION: u32 = io(KVMIO, 0x03);
/// `KVM_ENABLE_CAP` (device fd).
pub const KVM_ENABLE_CAP: u32 = iow::<KvmEnableCap>(KVMIO, 0xa3);
/// `KVM_CREATE_SPAPR_TCE_64` (device fd): returns a table fd.
pub const KVM_CREATE_SPAPR_TCE_64: u32 = iow::<KvmCreateSpaprTce64>(KVMIO, 0xa8);
/// `KVM_SET_USER_MEMORY_REGION` (device fd; with the real IOMMU backend only).
pub const KVM_SET_USER_MEMORY_REGION: u32 = iow::<KvmUserspaceMemoryRegion>(KVMIO, 0x46);

/// Device fd: attaches a group to a table.
pub const KTR_ATTACH: u32 = iow::<KtrAttach>(KTR_IO, 0x02);
/// Device fd: detaches a group from a table.
pub const KTR_DETACH: u32 = iow::<KtrAttach>(KTR_IO, 0x03);
/// Device fd: module-wide memory accounting.
pub const KTR_MEM_STATS: u32 = ior::<KtrMemStats>(KTR_IO, 0x04);

/// Table fd: `H_PUT_TCE`.
pub const KTR_PUT_TCE: u32 = iow::<KtrPutTce>(KTR_IO, 0x10);
/// Table fd: `H_PUT_TCE_INDIRECT`.
pub const KTR_PUT_TCE_INDIRECT: u32 = iow::<KtrPutTceIndirect>(KTR_IO, 0x11);
/// Table fd: `H_STUFF_TCE`.
pub const KTR_STUFF_TCE: u32 = iow::<KtrStuffTce>(KTR_IO, 0x12);
/// Table fd: `H_GET_TCE`.
pub const KTR_GET_TCE: u32 = iowr::<KtrGetTce>(KTR_IO, 0x13);
/// Table fd: bitmap of allocated TCE pages.
pub const KTR_GET_POPULATED: u32 = iowr::<KtrPopulated>(KTR_IO, 0x14);
/// Table fd: statistics.
pub const KTR_TABLE_STATS: u32 = ior::<KtrTableStats>(KTR_IO, 0x15);

/// Every struct of the ABI, once, with its C name and its size: `ktr_uapi_structs!(m! a::b)`
/// calls `m!` with `a::b::Type = "c_name" (size), ...`. The lists that must name them all (the
/// sizes checked below, the module's plain-data markers, the client crate's `Pod`, the header
/// check against the C header) are made from this one.
#[macro_export]
macro_rules! ktr_uapi_structs {
    ($m:ident! $($p:ident)::+) => {
        $m! {
            $($p)::+::KvmEnableCap = "kvm_enable_cap" (104),
            $($p)::+::KvmCreateSpaprTce64 = "kvm_create_spapr_tce_64" (32),
            $($p)::+::KvmUserspaceMemoryRegion = "kvm_userspace_memory_region" (32),
            $($p)::+::KtrPutTce = "ktr_put_tce" (16),
            $($p)::+::KtrPutTceIndirect = "ktr_put_tce_indirect" (24),
            $($p)::+::KtrStuffTce = "ktr_stuff_tce" (24),
            $($p)::+::KtrGetTce = "ktr_get_tce" (16),
            $($p)::+::KtrPopulated = "ktr_populated" (32),
            $($p)::+::KtrTableStats = "ktr_table_stats" (96),
            $($p)::+::KtrAttach = "ktr_attach" (16),
            $($p)::+::KtrMemStats = "ktr_mem_stats" (16),
        }
    };
}

/// Checks at compile time that each struct has its listed size (no padding added or lost).
macro_rules! assert_sizes {
    ($($t:path = $c:literal ($n:literal)),* $(,)?) => {
        const _: () = { $(assert!(size_of::<$t>() == $n);)* };
    };
}
#[allow(
    unused_imports,
    reason = "uapi_test.rs uses it, which only the test configurations compile"
)]
pub(crate) use assert_sizes;

ktr_uapi_structs!(assert_sizes! self);
