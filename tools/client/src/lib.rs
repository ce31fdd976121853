// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers of the ioctls of `/dev/kvm-tce-replay`, in the style of rust-vmm's
//! [kvm-ioctls](https://github.com/rust-vmm/kvm-ioctls): sPAPR (POWER) TCE tables whose IOMMU
//! group attach replays the valid TCEs in the kernel.
//!
//! A [`TceReplay`] is one open of the device, the equivalent of a KVM VM fd: it answers
//! [`TceReplay::check_extension`], enables the replay ([`TceReplay::enable_replay`]), registers
//! guest memory ([`TceReplay::set_user_memory_region`]), creates TCE tables
//! ([`TceReplay::create_tce_table`]) and attaches IOMMU groups to them ([`TceReplay::attach`]).
//! A [`TceTable`] takes the guest's hcalls (`H_PUT_TCE` and its kin) and can be mapped
//! ([`TceTable::map`]). Every call returns [`Result`], whose [`Error`] keeps the errno; the
//! meaning of each errno for each ioctl is in the project's Documentation/api.rst.
//!
//! The ioctl numbers and argument structs are the module's own source ([`uapi`], and
//! `uapi_test` for the test-only ABI), compiled into this crate as they are into the module.
//!
//! With the cargo feature `mock`, the test-only mock IOMMU groups ([`MockGroup`]) of a module
//! built with `CONFIG_KVM_TCE_REPLAY_MOCK` and loaded with `mock=1` are available too.
//!
//! ```no_run
//! use kvm_tce_replay::{Cap, TceReplay, TceTableArgs, TCE_PCI_READ, TCE_PCI_WRITE};
//!
//! let ktr = TceReplay::new()?;
//! assert!(ktr.check_extension(Cap::SpaprTceReplay)?);
//! ktr.enable_replay()?;
//! // 1 GiB of guest memory at guest-physical 0.
//! let ram = vec![0u8; 1 << 30];
//! ktr.set_user_memory_region(0, 0, 1 << 30, ram.as_ptr() as u64)?;
//! // A window of 2^20 TCEs of 64 KiB at bus address 0.
//! let table = ktr.create_tce_table(TceTableArgs::new(0x8000_0001, 16, 0, 1 << 20))?;
//! table.put(5, 0x5_0000 | TCE_PCI_READ | TCE_PCI_WRITE)?;
//! assert_eq!(table.get(5)?, 0x5_0003);
//! assert_eq!(table.map(0, 1)?.read(5), 0x5_0003);
//! # Ok::<(), kvm_tce_replay::Error>(())
//! ```

#![deny(missing_docs)]

/// `AsFd`, `AsRawFd` and `From<$t> for OwnedFd` for a type that owns its fd in field `$fd`.
macro_rules! fd_type {
    ($t:ty, $fd:tt) => {
        impl rustix::fd::AsFd for $t {
            fn as_fd(&self) -> rustix::fd::BorrowedFd<'_> {
                self.$fd.as_fd()
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.$fd.as_raw_fd()
            }
        }

        impl From<$t> for rustix::fd::OwnedFd {
            fn from(owner: $t) -> Self {
                owner.$fd
            }
        }
    };
}

mod error;
#[cfg(feature = "mock")]
mod mock;
pub mod raw;
mod table;

/// The module's userspace ABI (rust/pure/uapi.rs, the one source the module compiles too):
/// ioctl numbers and `#[repr(C)]` argument structs.
#[path = "../../../rust/pure/uapi.rs"]
pub mod uapi;

/// The module's test-only ABI (rust/pure/uapi_test.rs): mock IOMMU groups and the benchmarks'
/// replay strategies. Not a stable ABI.
#[cfg(feature = "mock")]
#[path = "../../../rust/pure/uapi_test.rs"]
pub mod uapi_test;

/// The window checks and index math of rust/pure/window.rs (the module's source).
#[path = "../../../rust/pure/bitwalk.rs"]
#[allow(dead_code, reason = "the crate walks set bits only")]
mod bitwalk;
#[path = "../../../rust/pure/window.rs"]
#[allow(dead_code, reason = "the crate uses the window's geometry only")]
mod window;

pub use error::{Error, Result};
#[cfg(feature = "mock")]
pub use mock::{mock_levels, MockBackend, MockGroup};
pub use rustix::io::Errno;
pub use table::{Populated, TceList, TceMap, TceTable};
/// The arguments of [`TceReplay::create_tce_table`] (`struct kvm_create_spapr_tce_64`).
pub use uapi::KvmCreateSpaprTce64 as TceTableArgs;
pub use uapi::{KtrMemStats as MemStats, KtrTableStats as TableStats};

use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use uapi::*;

/// The path of the device.
pub const DEVICE: &str = "/dev/kvm-tce-replay";

/// TCE permission bit: the device may read the page (`TCE_PCI_READ`, 1).
pub const TCE_PCI_READ: u64 = window::TCE_PCI_READ;
/// TCE permission bit: the device may write the page (`TCE_PCI_WRITE`, 2).
pub const TCE_PCI_WRITE: u64 = window::TCE_PCI_WRITE;

/// The capabilities [`TceReplay::check_extension`] answers (`KVM_CAP_*` numbers).
///
/// ```
/// use kvm_tce_replay::Cap;
///
/// assert_eq!(Cap::SpaprTce64 as u32, 125);
/// assert_eq!(Cap::SpaprTceReplay as u32, 0x7443);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum Cap {
    /// `KVM_CAP_NR_MEMSLOTS`: the number of guest memory slots (512).
    NrMemslots = KVM_CAP_NR_MEMSLOTS,
    /// `KVM_CAP_SPAPR_TCE_64`: 64-bit TCE tables (`KVM_CREATE_SPAPR_TCE_64`).
    SpaprTce64 = KVM_CAP_SPAPR_TCE_64,
    /// `KVM_CAP_SPAPR_TCE_REPLAY`: attaching an IOMMU group replays the table's valid TCEs.
    SpaprTceReplay = KVM_CAP_SPAPR_TCE_REPLAY,
}

impl KvmCreateSpaprTce64 {
    /// A window of `size` TCEs of `1 << page_shift` bytes from bus offset `offset` (in IOMMU
    /// pages), for the logical I/O bus number `liobn`; no flags.
    ///
    /// ```
    /// use kvm_tce_replay::TceTableArgs;
    ///
    /// let args = TceTableArgs::new(0x8000_0001, 16, 0, 1 << 31);
    /// assert_eq!((args.page_shift, args.flags, args.size), (16, 0, 1 << 31));
    /// ```
    pub const fn new(liobn: u64, page_shift: u32, offset: u64, size: u64) -> Self {
        Self {
            liobn,
            page_shift,
            flags: 0,
            offset,
            size,
        }
    }
}

/// One open of `/dev/kvm-tce-replay`: a context, the equivalent of a KVM VM fd.
///
/// Every ioctl on it (and on its tables) must come from the process that opened it: another
/// process gets `EIO`.
#[derive(Debug)]
pub struct TceReplay {
    fd: OwnedFd,
}

impl TceReplay {
    /// Opens [`DEVICE`] read-write, close-on-exec.
    ///
    /// ```no_run
    /// use kvm_tce_replay::TceReplay;
    ///
    /// let ktr = TceReplay::new()?;
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn new() -> Result<Self> {
        Self::new_with_path(DEVICE)
    }

    /// Opens the device at `path` read-write, close-on-exec.
    ///
    /// ```
    /// use kvm_tce_replay::{Errno, TceReplay};
    ///
    /// let err = TceReplay::new_with_path("/nonexistent/kvm-tce-replay").unwrap_err();
    /// assert_eq!(err.errno(), Errno::NOENT);
    /// ```
    pub fn new_with_path<P: AsRef<Path>>(path: P) -> Result<Self> {
        use rustix::fs::{open, Mode, OFlags};
        let fd = open(path.as_ref(), OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
        Ok(Self { fd })
    }

    /// `KVM_CHECK_EXTENSION` with any capability number: the module's answer (0: unsupported).
    ///
    /// ```no_run
    /// use kvm_tce_replay::TceReplay;
    ///
    /// let ktr = TceReplay::new()?;
    /// assert_eq!(ktr.check_extension_raw(10)?, 512); // KVM_CAP_NR_MEMSLOTS
    /// assert_eq!(ktr.check_extension_raw(1)?, 0);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn check_extension_raw(&self, cap: u32) -> Result<i32> {
        raw::ioctl_int(&self.fd, KVM_CHECK_EXTENSION, cap as usize)
    }

    /// `KVM_CHECK_EXTENSION`: the module's value for `cap` (1 for a supported flag, the number
    /// of slots for [`Cap::NrMemslots`]).
    ///
    /// ```no_run
    /// use kvm_tce_replay::{Cap, TceReplay};
    ///
    /// let ktr = TceReplay::new()?;
    /// assert_eq!(ktr.check_extension_int(Cap::NrMemslots)?, 512);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn check_extension_int(&self, cap: Cap) -> Result<i32> {
        self.check_extension_raw(cap as u32)
    }

    /// `KVM_CHECK_EXTENSION`: whether the module supports `cap`.
    ///
    /// ```no_run
    /// use kvm_tce_replay::{Cap, TceReplay};
    ///
    /// let ktr = TceReplay::new()?;
    /// assert!(ktr.check_extension(Cap::SpaprTceReplay)?);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn check_extension(&self, cap: Cap) -> Result<bool> {
        Ok(self.check_extension_int(cap)? > 0)
    }

    /// `KVM_ENABLE_CAP` with the argument as given (`EINVAL` for another capability or a
    /// non-zero field).
    ///
    /// ```no_run
    /// use kvm_tce_replay::{uapi::KvmEnableCap, Cap, Errno, TceReplay};
    ///
    /// let ktr = TceReplay::new()?;
    /// let mut req = KvmEnableCap::new(Cap::SpaprTceReplay as u32);
    /// req.args[0] = 1;
    /// assert_eq!(ktr.enable_cap(&req).unwrap_err().errno(), Errno::INVAL);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn enable_cap(&self, cap: &KvmEnableCap) -> Result<()> {
        let mut req = *cap;
        raw::ioctl_arg(&self.fd, KVM_ENABLE_CAP, &mut req).map(drop)
    }

    /// `KVM_ENABLE_CAP(KVM_CAP_SPAPR_TCE_REPLAY)`: from now on an attach replays the table's
    /// valid TCEs into the group, so the VMM can skip its own replay. Enabling twice is allowed.
    ///
    /// ```no_run
    /// use kvm_tce_replay::TceReplay;
    ///
    /// let ktr = TceReplay::new()?;
    /// ktr.enable_replay()?;
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn enable_replay(&self) -> Result<()> {
        self.enable_cap(&KvmEnableCap::new(KVM_CAP_SPAPR_TCE_REPLAY))
    }

    /// `KVM_SET_USER_MEMORY_REGION`: slot `slot` is `size` bytes of guest memory from
    /// guest-physical `gpa`, mapped by the VMM at user address `ua` (all page aligned); `size`
    /// 0 deletes the slot. A valid TCE must point into a slot.
    ///
    /// ```no_run
    /// use kvm_tce_replay::TceReplay;
    ///
    /// let ktr = TceReplay::new()?;
    /// let page = rustix::param::page_size() as u64;
    /// ktr.set_user_memory_region(0, 0, 1 << 30, page)?;
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn set_user_memory_region(&self, slot: u32, gpa: u64, size: u64, ua: u64) -> Result<()> {
        self.set_user_memory_region_raw(KvmUserspaceMemoryRegion::new(slot, gpa, size, ua))
    }

    /// `KVM_SET_USER_MEMORY_REGION` with the argument as given (flags included).
    ///
    /// ```no_run
    /// use kvm_tce_replay::{uapi::KvmUserspaceMemoryRegion, Errno, TceReplay};
    ///
    /// let ktr = TceReplay::new()?;
    /// let mut region = KvmUserspaceMemoryRegion::new(0, 0, 1 << 20, 1 << 20);
    /// region.flags = 1;
    /// let err = ktr.set_user_memory_region_raw(region).unwrap_err();
    /// assert_eq!(err.errno(), Errno::INVAL);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn set_user_memory_region_raw(&self, region: KvmUserspaceMemoryRegion) -> Result<()> {
        let mut req = region;
        raw::ioctl_arg(&self.fd, KVM_SET_USER_MEMORY_REGION, &mut req).map(drop)
    }

    /// `KVM_CREATE_SPAPR_TCE_64`: a new TCE table (window). Nothing sized by the window is
    /// allocated: TCE pages are allocated when first written.
    ///
    /// ```no_run
    /// use kvm_tce_replay::{Errno, TceReplay, TceTableArgs};
    ///
    /// let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 31))?;
    /// assert_eq!(table.stats()?.window_entries, 1 << 31);
    /// // The LIOBN is taken.
    /// let err = ktr.create_tce_table(TceTableArgs::new(1, 12, 0, 1)).unwrap_err();
    /// assert_eq!(err.errno(), Errno::BUSY);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn create_tce_table(&self, args: TceTableArgs) -> Result<TceTable> {
        let mut req = args;
        let fd = raw::new_fd(raw::ioctl_arg(&self.fd, KVM_CREATE_SPAPR_TCE_64, &mut req)?)?;
        Ok(TceTable::from_fd(
            fd,
            args.page_shift,
            args.offset,
            args.size,
        ))
    }

    /// `KTR_ATTACH`: attaches the IOMMU group `group` (a VFIO group fd, `/dev/vfio/N`, whose
    /// container has set up its IOMMU; or a [`MockGroup`]) to `table`, the equivalent of
    /// `KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE`. With the replay enabled, every valid TCE of the table
    /// is written into the group before it returns.
    ///
    /// ```no_run
    /// use kvm_tce_replay::{TceReplay, TceTableArgs};
    ///
    /// let ktr = TceReplay::new()?;
    /// ktr.enable_replay()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let group = std::fs::File::open("/dev/vfio/7").expect("a VFIO group");
    /// ktr.attach(&table, &group)?;
    /// println!("replayed {} TCEs", table.stats()?.last_tces_replayed);
    /// ktr.detach(&table, &group)?;
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn attach<G: AsFd>(&self, table: &TceTable, group: G) -> Result<()> {
        self.attach_with_flags(table, group, 0)
    }

    /// `KTR_ATTACH` with `flags`: 0, or in the test configuration a replay strategy
    /// (`uapi_test::KTR_ATTACH_WALK_*`, for benchmarks).
    ///
    /// ```no_run
    /// use kvm_tce_replay::{Errno, TceReplay, TceTableArgs};
    ///
    /// let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let group = std::fs::File::open("/dev/vfio/7").expect("a VFIO group");
    /// let err = ktr.attach_with_flags(&table, &group, 1 << 31).unwrap_err();
    /// assert_eq!(err.errno(), Errno::INVAL);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn attach_with_flags<G: AsFd>(&self, table: &TceTable, group: G, flags: u32) -> Result<()> {
        self.attach_raw(&KtrAttach {
            groupfd: group.as_fd().as_raw_fd(),
            tablefd: table.as_raw_fd(),
            flags,
            pad: 0,
        })
    }

    /// `KTR_DETACH`: detaches `group` from `table` (one reference of it: the last one clears the
    /// group's hardware table).
    ///
    /// ```no_run
    /// use kvm_tce_replay::{Errno, TceReplay, TceTableArgs};
    ///
    /// let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let group = std::fs::File::open("/dev/vfio/7").expect("a VFIO group");
    /// // Not attached.
    /// assert_eq!(ktr.detach(&table, &group).unwrap_err().errno(), Errno::NOENT);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn detach<G: AsFd>(&self, table: &TceTable, group: G) -> Result<()> {
        self.detach_raw(&KtrAttach {
            groupfd: group.as_fd().as_raw_fd(),
            tablefd: table.as_raw_fd(),
            flags: 0,
            pad: 0,
        })
    }

    /// `KTR_ATTACH` with the argument as given: any fd numbers, flags and padding (the kernel
    /// checks them all: `EBADF`, `EINVAL`).
    ///
    /// ```no_run
    /// use kvm_tce_replay::{uapi::KtrAttach, Errno, TceReplay};
    ///
    /// let ktr = TceReplay::new()?;
    /// let req = KtrAttach { groupfd: -1, tablefd: -1, flags: 0, pad: 0 };
    /// assert_eq!(ktr.attach_raw(&req).unwrap_err().errno(), Errno::BADF);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn attach_raw(&self, req: &KtrAttach) -> Result<()> {
        let mut req = *req;
        raw::ioctl_arg(&self.fd, KTR_ATTACH, &mut req).map(drop)
    }

    /// `KTR_DETACH` with the argument as given.
    ///
    /// ```no_run
    /// use kvm_tce_replay::{uapi::KtrAttach, Errno, TceReplay};
    ///
    /// let ktr = TceReplay::new()?;
    /// let req = KtrAttach { groupfd: -1, tablefd: -1, flags: 0, pad: 0 };
    /// assert_eq!(ktr.detach_raw(&req).unwrap_err().errno(), Errno::BADF);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn detach_raw(&self, req: &KtrAttach) -> Result<()> {
        let mut req = *req;
        raw::ioctl_arg(&self.fd, KTR_DETACH, &mut req).map(drop)
    }

    /// `KTR_MEM_STATS`: the bytes the module holds, module-wide, for tables and mock groups.
    ///
    /// ```no_run
    /// use kvm_tce_replay::{TceReplay, TceTableArgs};
    ///
    /// let ktr = TceReplay::new()?;
    /// let before = ktr.mem_stats()?.table_bytes;
    /// let _table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 31))?;
    /// assert!(ktr.mem_stats()?.table_bytes > before);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn mem_stats(&self) -> Result<MemStats> {
        let mut s = MemStats::default();
        raw::ioctl_arg(&self.fd, KTR_MEM_STATS, &mut s)?;
        Ok(s)
    }
}

fd_type!(TceReplay, fd);

impl From<OwnedFd> for TceReplay {
    /// A context from an fd of the device (for instance one received from another process:
    /// its ioctls then fail with `EIO`).
    fn from(fd: OwnedFd) -> Self {
        Self { fd }
    }
}
