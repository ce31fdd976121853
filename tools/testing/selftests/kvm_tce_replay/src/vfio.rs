// SPDX-License-Identifier: GPL-2.0

//! VFIO as QEMU drives it for the real-backend cases: the sPAPR TCE v2 container and its windows,
//! preregistered memory, the IOMMU groups of QEMU's edu devices (bound to vfio-pci by the VM's
//! /init, named in `VFIO_SELFTESTS_BDF` as VFIO's selftests name theirs), and edu's DMA engine.

use crate::Stop;
use kvm_tce_replay::raw;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{open, Mode, OFlags};
use rustix::io::{pread, pwrite, Errno, Result};
use rustix::ioctl::opcode;
use rustix::mm::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use std::path::Path;
use std::time::{Duration, Instant};

/// QEMU's educational PCI device: vendor, device.
const EDU: (&str, &str) = ("0x1234", "0x11e8");

/// VFIO's ioctl type; its commands are numbered from 100 (include/uapi/linux/vfio.h).
const fn vfio(nr: u8) -> u32 {
    opcode::none(b';', 100 + nr) as u32
}
const VFIO_SET_IOMMU: u32 = vfio(2);
const VFIO_GROUP_SET_CONTAINER: u32 = vfio(4);
const VFIO_GROUP_GET_DEVICE_FD: u32 = vfio(6);
const VFIO_DEVICE_GET_REGION_INFO: u32 = vfio(8);
const VFIO_IOMMU_SPAPR_TCE_GET_INFO: u32 = vfio(12);
const VFIO_IOMMU_MAP_DMA: u32 = vfio(13);
const VFIO_IOMMU_ENABLE: u32 = vfio(15);
const VFIO_IOMMU_SPAPR_REGISTER_MEMORY: u32 = vfio(17);
const VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: u32 = vfio(18);
const VFIO_IOMMU_SPAPR_TCE_CREATE: u32 = vfio(19);
const VFIO_IOMMU_SPAPR_TCE_REMOVE: u32 = vfio(20);
const VFIO_SPAPR_TCE_V2_IOMMU: usize = 7;
const VFIO_PCI_BAR0_REGION_INDEX: u32 = 0;
const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;
/// `VFIO_DMA_MAP_FLAG_READ | _WRITE`.
pub const DMA_MAP_RW: u32 = 3;

/// `struct vfio_iommu_spapr_tce_info` with its `ddw` member.
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct SpaprTceInfo {
    argsz: u32,
    flags: u32,
    pub dma32_window_start: u32,
    pub dma32_window_size: u32,
    /// Bit n set: IOMMU pages of 2^n bytes.
    pub ddw_pgsizes: u64,
    pub ddw_max_windows: u32,
    pub ddw_levels: u32,
}

#[repr(C)]
#[derive(Default)]
struct RegisterMemory {
    argsz: u32,
    flags: u32,
    vaddr: u64,
    size: u64,
}

#[repr(C)]
#[derive(Default)]
struct TceCreate {
    argsz: u32,
    flags: u32,
    page_shift: u32,
    resv1: u32,
    window_size: u64,
    levels: u32,
    resv2: u32,
    start_addr: u64,
}

#[repr(C)]
#[derive(Default)]
struct TceRemove {
    argsz: u32,
    flags: u32,
    start_addr: u64,
}

#[repr(C)]
#[derive(Default)]
struct DmaMap {
    argsz: u32,
    flags: u32,
    vaddr: u64,
    iova: u64,
    size: u64,
}

#[repr(C)]
#[derive(Default)]
struct RegionInfo {
    argsz: u32,
    flags: u32,
    index: u32,
    cap_offset: u32,
    size: u64,
    offset: u64,
}

fn argsz<T>() -> u32 {
    u32::try_from(size_of::<T>()).expect("a VFIO struct is small")
}

/// A VFIO ioctl whose argument is `arg`, through the client crate's escape hatch.
fn ioctl_ref<T>(fd: BorrowedFd<'_>, op: u32, arg: &mut T) -> Result<i32> {
    // SAFETY: every caller in this file passes a VFIO command the struct it encodes.
    Ok(unsafe { raw::ioctl_with_mut_ref(fd, op, arg) }?)
}

/// A VFIO ioctl whose argument is an integer or a pointer to what the command reads.
fn ioctl_val(fd: BorrowedFd<'_>, op: u32, value: usize) -> Result<i32> {
    // SAFETY: every caller in this file passes an integer, or a pointer to a string the
    // command only reads.
    Ok(unsafe { raw::ioctl_with_val(fd, op, value) }?)
}

/// `r`, or a failure naming the step that failed.
pub fn step<T>(what: &str, r: Result<T>) -> std::result::Result<T, Stop> {
    r.map_err(|e| Stop::Fail(format!("{what}: {e:?}")))
}

/// The variable naming the device to test with (VFIO selftests' own).
pub const BDF_VAR: &str = "VFIO_SELFTESTS_BDF";

/// The sysfs directory of PCI device `bdf`.
fn sysfs(bdf: &str) -> std::path::PathBuf {
    Path::new("/sys/bus/pci/devices").join(bdf)
}

/// Whether `bdf` is an edu device bound to vfio-pci: the reason if not.
fn usable(bdf: &str) -> std::result::Result<(), String> {
    let path = sysfs(bdf);
    let read = |f: &str| std::fs::read_to_string(path.join(f)).unwrap_or_default();
    if (read("vendor").trim(), read("device").trim()) != EDU {
        return Err(format!(
            "{bdf} is not QEMU's edu device, whose DMA engine the case drives"
        ));
    }
    let driver = std::fs::read_link(path.join("driver")).ok();
    let driver = driver.as_deref().and_then(|d| d.file_name());
    if driver.is_none_or(|d| d != "vfio-pci") {
        return Err(format!(
            "{bdf} is bound to {driver:?}, not vfio-pci: bind it first"
        ));
    }
    Ok(())
}

/// The devices to test with: the one `VFIO_SELFTESTS_BDF` names (bound to vfio-pci by VFIO
/// selftests' scripts/setup.sh, or the VM's /init), then every other edu device bound to
/// vfio-pci; a skip if there are fewer than `n`. The cases never bind or rebind a device.
pub fn devices(n: usize) -> std::result::Result<Vec<String>, Stop> {
    let Ok(first) = std::env::var(BDF_VAR) else {
        return Err(Stop::Skip(format!(
            "no device: {BDF_VAR} names none (QEMU's edu, bound to vfio-pci)"
        )));
    };
    usable(&first).map_err(Stop::Skip)?;
    let mut all = vec![first];
    let mut others: Vec<String> = std::fs::read_dir("/sys/bus/pci/devices")
        .map_err(|e| Stop::Fail(e.to_string()))?
        .flatten()
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|b| !all.contains(b) && usable(b).is_ok())
        .collect();
    others.sort();
    all.extend(others);
    if all.len() < n {
        return Err(Stop::Skip(format!(
            "{n} edu devices bound to vfio-pci needed, {} found",
            all.len()
        )));
    }
    all.truncate(n);
    Ok(all)
}

/// Whether the machine is a POWER host (OPAL firmware: powernv), whose PHBs have IODA tables,
/// rather than a pseries guest.
pub fn powernv() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| {
        c.lines()
            .any(|l| l.starts_with("platform") && l.ends_with("PowerNV"))
    })
}

/// A skip unless the real backend can run here (powerpc) and, with `host`, on a powernv host.
pub fn need_platform(host: bool) -> std::result::Result<(), Stop> {
    if !cfg!(target_arch = "powerpc64") {
        return Err(Stop::Skip("the real backend is powerpc only".into()));
    }
    if host && !powernv() {
        return Err(Stop::Skip(
            "needs a powernv host (IODA tables), not a pseries guest".into(),
        ));
    }
    Ok(())
}

/// The IOMMU group of a device, opened.
pub struct Group {
    pub fd: OwnedFd,
    /// Its number (/dev/vfio/N).
    pub number: String,
    /// The device's PCI address.
    pub bdf: String,
}

impl Group {
    /// The group of device `bdf`, opened.
    pub fn open(bdf: &str) -> std::result::Result<Self, Stop> {
        let link = std::fs::read_link(sysfs(bdf).join("iommu_group"))
            .map_err(|e| Stop::Fail(format!("{bdf}'s iommu_group: {e}")))?;
        let number = link
            .file_name()
            .map(|g| g.to_string_lossy().into_owned())
            .unwrap_or_default();
        let fd = step("open the group", Self::open_number(&number))?;
        Ok(Self {
            fd,
            number,
            bdf: bdf.to_string(),
        })
    }

    /// Opens /dev/vfio/`number`.
    pub fn open_number(number: &str) -> Result<OwnedFd> {
        let path = format!("/dev/vfio/{number}");
        open(path.as_str(), OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
    }
}

/// A VFIO container with the sPAPR TCE v2 IOMMU, as QEMU sets one up.
pub struct Container {
    pub fd: OwnedFd,
    pub info: SpaprTceInfo,
}

impl Container {
    /// A container holding `groups`, with the v2 IOMMU set.
    pub fn new(groups: &[&Group]) -> std::result::Result<Self, Stop> {
        let fd = step(
            "open /dev/vfio/vfio",
            open(
                "/dev/vfio/vfio",
                OFlags::RDWR | OFlags::CLOEXEC,
                Mode::empty(),
            ),
        )?;
        for g in groups {
            let mut cfd = fd.as_raw_fd();
            step(
                "VFIO_GROUP_SET_CONTAINER",
                ioctl_ref(g.fd.as_fd(), VFIO_GROUP_SET_CONTAINER, &mut cfd),
            )?;
            if std::ptr::eq(*g, groups[0]) {
                step(
                    "VFIO_SET_IOMMU",
                    ioctl_val(fd.as_fd(), VFIO_SET_IOMMU, VFIO_SPAPR_TCE_V2_IOMMU),
                )?;
            }
        }
        let mut info = SpaprTceInfo {
            argsz: argsz::<SpaprTceInfo>(),
            ..Default::default()
        };
        step(
            "VFIO_IOMMU_SPAPR_TCE_GET_INFO",
            ioctl_ref(fd.as_fd(), VFIO_IOMMU_SPAPR_TCE_GET_INFO, &mut info),
        )?;
        Ok(Self { fd, info })
    }

    /// The 32-bit default window: its bus address and size.
    pub fn dma32(&self) -> (u64, u64) {
        (
            u64::from(self.info.dma32_window_start),
            u64::from(self.info.dma32_window_size),
        )
    }

    /// `VFIO_IOMMU_SPAPR_[UN]REGISTER_MEMORY` of `len` bytes at `addr`.
    pub fn register(&self, addr: u64, len: u64, on: bool) -> Result<()> {
        let mut r = RegisterMemory {
            argsz: argsz::<RegisterMemory>(),
            flags: 0,
            vaddr: addr,
            size: len,
        };
        let op = if on {
            VFIO_IOMMU_SPAPR_REGISTER_MEMORY
        } else {
            VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY
        };
        ioctl_ref(self.fd.as_fd(), op, &mut r).map(drop)
    }

    /// `VFIO_IOMMU_SPAPR_TCE_CREATE`: a window of `size` bytes of 2^`page_shift`-byte IOMMU
    /// pages in a table of `levels` levels; its bus address. (Creating the first one makes VFIO
    /// create its pending default window too, as for QEMU.)
    pub fn create_window(&self, page_shift: u32, size: u64, levels: u32) -> Result<u64> {
        let mut create = TceCreate {
            argsz: argsz::<TceCreate>(),
            page_shift,
            window_size: size,
            levels,
            ..Default::default()
        };
        ioctl_ref(self.fd.as_fd(), VFIO_IOMMU_SPAPR_TCE_CREATE, &mut create)?;
        Ok(create.start_addr)
    }

    /// `VFIO_IOMMU_SPAPR_TCE_REMOVE` of the window at bus address `start`.
    pub fn remove_window(&self, start: u64) -> Result<()> {
        let mut remove = TceRemove {
            argsz: argsz::<TceRemove>(),
            start_addr: start,
            ..Default::default()
        };
        ioctl_ref(self.fd.as_fd(), VFIO_IOMMU_SPAPR_TCE_REMOVE, &mut remove).map(drop)
    }

    /// `VFIO_IOMMU_ENABLE` (v1) then `VFIO_IOMMU_MAP_DMA` of `size` bytes of preregistered memory at
    /// `vaddr` to bus address `iova`: an entry written by VFIO itself, not through a TCE table.
    pub fn map_dma(&self, vaddr: u64, iova: u64, size: u64) -> Result<()> {
        // The v2 IOMMU is enabled by its first preregistration and has no VFIO_IOMMU_ENABLE.
        match ioctl_val(self.fd.as_fd(), VFIO_IOMMU_ENABLE, 0) {
            Ok(_) | Err(Errno::BUSY | Errno::NOTTY) => {}
            Err(e) => return Err(e),
        }
        let mut map = DmaMap {
            argsz: argsz::<DmaMap>(),
            flags: DMA_MAP_RW,
            vaddr,
            iova,
            size,
        };
        ioctl_ref(self.fd.as_fd(), VFIO_IOMMU_MAP_DMA, &mut map).map(drop)
    }
}

/// Memory the device reads and writes behind the compiler's back, accessed with volatile reads
/// and writes; unmapped on drop.
pub struct Memory {
    ptr: *mut u8,
    len: usize,
}

impl Memory {
    /// `len` bytes of new private anonymous memory; with `huge`, of hugetlbfs pages (the
    /// default huge page size).
    pub fn new(len: usize, huge: bool) -> Result<Self> {
        let flags = if huge {
            MapFlags::PRIVATE | MapFlags::HUGETLB
        } else {
            MapFlags::PRIVATE
        };
        // SAFETY: a new private anonymous mapping, used only through this value.
        let ptr = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                flags,
            )?
        };
        let mem = Self {
            ptr: ptr.cast(),
            len,
        };
        // Touch every page: preregistration pins what is there.
        for at in (0..len).step_by(4096) {
            mem.write(at, &[0]);
        }
        Ok(mem)
    }

    /// Its user address.
    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }

    pub fn len(&self) -> u64 {
        self.len as u64
    }

    pub fn write(&self, at: usize, bytes: &[u8]) {
        assert!(at + bytes.len() <= self.len);
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: inside the mapping (checked above), which lives as long as `self`.
            unsafe { self.ptr.add(at + i).write_volatile(b) };
        }
    }

    pub fn read(&self, at: usize, len: usize) -> Vec<u8> {
        assert!(at + len <= self.len);
        // SAFETY: as for `write`.
        (0..len)
            .map(|i| unsafe { self.ptr.add(at + i).read_volatile() })
            .collect()
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// A 4 KiB pattern, distinct for each `seed`.
pub fn pattern(seed: u64) -> Vec<u8> {
    (0..4096u64)
        .map(|i| ((i * 7 + seed * 131 + (i >> 8) * seed) % 251) as u8)
        .collect()
}

/// Where edu's registers (BAR 0) are reached.
enum Bar {
    /// Through its VFIO device fd, at the region's offset: the host's (or the guest's) VFIO.
    Vfio { fd: OwnedFd, offset: u64 },
    /// Mapped from sysfs's `resource0`: the nested run's L2 guest, without VFIO.
    Mapped { base: *mut u32, len: usize },
}

/// The edu device's registers.
pub struct Edu {
    bar: Bar,
    /// QEMU's edu is native-endian: big-endian registers under qemu-system-ppc64.
    big_endian: bool,
}

/// edu's identification register.
const EDU_ID: u32 = 0x0100_00ed;
/// The device's own DMA buffer: 4 KiB at this address of its space.
const EDU_BUFFER: u64 = 0x40000;

impl Edu {
    fn region(fd: BorrowedFd<'_>, index: u32) -> Result<RegionInfo> {
        let mut info = RegionInfo {
            argsz: argsz::<RegionInfo>(),
            index,
            ..Default::default()
        };
        ioctl_ref(fd, VFIO_DEVICE_GET_REGION_INFO, &mut info)?;
        Ok(info)
    }

    /// Opens the device of `group` and lets it master the bus.
    pub fn open(group: &Group) -> Result<Self> {
        let cname = std::ffi::CString::new(group.bdf.as_str()).map_err(|_| Errno::INVAL)?;
        let raw = ioctl_val(
            group.fd.as_fd(),
            VFIO_GROUP_GET_DEVICE_FD,
            cname.as_ptr() as usize,
        )?;
        // SAFETY: the kernel just returned this fd to us.
        let fd = unsafe { <OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(raw) };
        let config = Self::region(fd.as_fd(), VFIO_PCI_CONFIG_REGION_INDEX)?.offset;
        let mut cmd = [0u8; 2];
        pread(&fd, &mut cmd, config + 4)?;
        let cmd = u16::from_le_bytes(cmd) | 0x6; // memory space, bus master
        pwrite(&fd, &cmd.to_le_bytes(), config + 4)?;
        let offset = Self::region(fd.as_fd(), VFIO_PCI_BAR0_REGION_INDEX)?.offset;
        Self::identify(Bar::Vfio { fd, offset })
    }

    /// Maps the registers of the edu device at PCI address `bdf` from sysfs (its `resource0`),
    /// after letting it master the bus through its `config`: edu seen by a guest without VFIO.
    pub fn mapped(bdf: &str) -> Result<Self> {
        let dev = Path::new("/sys/bus/pci/devices").join(bdf);
        let config = open(dev.join("config"), OFlags::RDWR, Mode::empty())?;
        let mut cmd = [0u8; 2];
        pread(&config, &mut cmd, 4)?;
        let cmd = u16::from_le_bytes(cmd) | 0x6; // memory space, bus master
        pwrite(&config, &cmd.to_le_bytes(), 4)?;
        let res = open(
            dev.join("resource0"),
            OFlags::RDWR | OFlags::SYNC,
            Mode::empty(),
        )?;
        let len = 1 << 20; // edu's BAR 0
                           // SAFETY: a new shared mapping of the BAR's sysfs file, at an address the kernel
                           // chooses; it aliases no Rust object and lives until `drop` unmaps it.
        let base = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &res,
                0,
            )?
        };
        Self::identify(Bar::Mapped {
            base: base.cast(),
            len,
        })
    }

    /// Checks the identification register, in either byte order.
    fn identify(bar: Bar) -> Result<Self> {
        let mut edu = Self {
            bar,
            big_endian: false,
        };
        match edu.read(0)? {
            EDU_ID => {}
            id if id.swap_bytes() == EDU_ID => edu.big_endian = true,
            _ => return Err(Errno::NODEV),
        }
        Ok(edu)
    }

    /// Stores `bytes` (one 4- or 8-byte register, little-endian) at `reg`, in one access.
    fn store(&self, reg: u64, bytes: &[u8]) -> Result<()> {
        match &self.bar {
            Bar::Vfio { fd, offset } => pwrite(fd, bytes, offset + reg).map(drop),
            Bar::Mapped { base, len } => {
                assert!(reg as usize + bytes.len() <= *len);
                let at = base.cast::<u8>().wrapping_add(reg as usize);
                // SAFETY: `at` is inside the live mapping of the BAR (asserted) and aligned to
                // the register's size (edu's registers are); a volatile access of the register's
                // width, as the device expects.
                unsafe {
                    match bytes.len() {
                        4 => at
                            .cast::<u32>()
                            .write_volatile(u32::from_le_bytes(bytes.try_into().unwrap())),
                        _ => at
                            .cast::<u64>()
                            .write_volatile(u64::from_le_bytes(bytes.try_into().unwrap())),
                    }
                }
                Ok(())
            }
        }
    }

    fn write(&self, reg: u64, value: u32) -> Result<()> {
        let value = if self.big_endian {
            value.swap_bytes()
        } else {
            value
        };
        self.store(reg, &value.to_le_bytes())
    }

    /// A 64-bit register (the DMA addresses), in one access.
    fn write64(&self, reg: u64, value: u64) -> Result<()> {
        let value = if self.big_endian {
            value.swap_bytes()
        } else {
            value
        };
        self.store(reg, &value.to_le_bytes())
    }

    fn read(&self, reg: u64) -> Result<u32> {
        let value = match &self.bar {
            Bar::Vfio { fd, offset } => {
                let mut b = [0u8; 4];
                pread(fd, &mut b, offset + reg)?;
                u32::from_le_bytes(b)
            }
            Bar::Mapped { base, len } => {
                assert!(reg as usize + 4 <= *len);
                // SAFETY: inside the live mapping (asserted), 4-byte aligned: one volatile
                // read of the register.
                unsafe {
                    base.cast::<u8>()
                        .wrapping_add(reg as usize)
                        .cast::<u32>()
                        .read_volatile()
                }
            }
        };
        Ok(if self.big_endian {
            value.swap_bytes()
        } else {
            value
        })
    }

    /// One DMA of `len` bytes (at most 4 KiB) between bus address `iova` and the device's
    /// buffer: `to_device` reads memory, otherwise the device writes it. A bus address without
    /// a valid TCE moves nothing (the PHB refuses it); edu does not tell.
    pub fn dma(&self, iova: u64, len: u32, to_device: bool) -> Result<()> {
        let (src, dst, dir) = if to_device {
            (iova, EDU_BUFFER, 0)
        } else {
            (EDU_BUFFER, iova, 2)
        };
        self.write64(0x80, src)?;
        self.write64(0x88, dst)?;
        self.write(0x90, len)?;
        self.write(0x98, 1 | dir)?;
        let start = Instant::now();
        while self.read(0x98)? & 1 != 0 {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(Errno::TIMEDOUT);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Copies 4 KiB from bus address `from` to bus address `to` through the device's buffer.
    pub fn copy(&self, from: u64, to: u64) -> Result<()> {
        self.dma(from, 4096, true)?;
        self.dma(to, 4096, false)
    }
}

impl Drop for Edu {
    fn drop(&mut self) {
        if let Bar::Mapped { base, len } = self.bar {
            // SAFETY: the mapping `mapped` made, unmapped once; nothing borrows it past `self`.
            let _ = unsafe { munmap(base.cast(), len) };
        }
    }
}

/// The calling process's locked memory (VmLck of /proc/self/status, in KiB): what VFIO's
/// preregistration pins is accounted there until it is unregistered.
pub fn locked_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmLck:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a device named, or with one that is not a bound edu, the cases skip: they never
    /// bind a device themselves. (The only test of this crate that sets the variable.)
    #[test]
    fn no_device_to_use_is_a_skip() {
        let skip = |r: std::result::Result<Vec<String>, Stop>| matches!(r, Err(Stop::Skip(_)));
        std::env::remove_var(BDF_VAR);
        assert!(skip(devices(1)));
        std::env::set_var(BDF_VAR, "0000:ff:1f.7");
        assert!(skip(devices(1)));
        std::env::remove_var(BDF_VAR);
    }

    #[test]
    fn patterns_differ() {
        assert_ne!(pattern(1), pattern(2));
        assert_eq!(pattern(3).len(), 4096);
    }
}
