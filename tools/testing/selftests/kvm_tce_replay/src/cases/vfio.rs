// SPDX-License-Identifier: GPL-2.0

//! The real IOMMU backend end to end (ppc64le): QEMU's `edu` PCI device bound to vfio-pci, a
//! VFIO container with the sPAPR TCE v2 IOMMU and preregistered memory, as QEMU sets them up;
//! the module replays a table into the group's hardware table on attach, and the device's DMA
//! goes through the replayed TCEs.

use crate::uapi::*;
use crate::window::{TCE_PCI_READ as TCE_READ, TCE_PCI_WRITE as TCE_WRITE};
use crate::{diag, ensure, ensure_eq, ensure_err, CaseResult, Stop};
use kvm_tce_replay::{raw, TceReplay, TceTable};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{open, Mode, OFlags};
use rustix::io::{pread, pwrite, Errno, Result};
use rustix::ioctl::opcode;
use rustix::mm::{mmap_anonymous, MapFlags, ProtFlags};
use std::time::{Duration, Instant};

/// QEMU's educational PCI device: vendor, device.
const EDU: (&str, &str) = ("0x1234", "0x11e8");
/// VFIO's ioctl type and first number.
const VFIO_TYPE: u8 = b';';
const fn vfio(nr: u32) -> u32 {
    opcode::none(VFIO_TYPE, (100 + nr) as u8) as u32
}
const VFIO_SET_IOMMU: u32 = vfio(2);

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
const VFIO_GROUP_SET_CONTAINER: u32 = vfio(4);
const VFIO_GROUP_GET_DEVICE_FD: u32 = vfio(6);
const VFIO_DEVICE_GET_REGION_INFO: u32 = vfio(8);
const VFIO_IOMMU_SPAPR_TCE_GET_INFO: u32 = vfio(12);
const VFIO_IOMMU_SPAPR_TCE_CREATE: u32 = vfio(19);
const VFIO_IOMMU_SPAPR_REGISTER_MEMORY: u32 = vfio(17);
const VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: u32 = vfio(18);
const VFIO_SPAPR_TCE_V2_IOMMU: usize = 7;
const VFIO_PCI_BAR0_REGION_INDEX: u32 = 0;
const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;

#[repr(C)]
#[derive(Default)]
struct SpaprTceInfo {
    argsz: u32,
    flags: u32,
    dma32_window_start: u32,
    dma32_window_size: u32,
    ddw_pgsizes: u64,
    ddw_max_windows: u32,
    ddw_levels: u32,
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
struct RegionInfo {
    argsz: u32,
    flags: u32,
    index: u32,
    cap_offset: u32,
    size: u64,
    offset: u64,
}

fn argsz<T>() -> u32 {
    size_of::<T>() as u32
}

/// The device to test with, as VFIO's selftests name it: the PCI address in
/// `VFIO_SELFTESTS_BDF`, already bound to vfio-pci (by VFIO selftests' scripts/setup.sh, or the
/// VM's /init). The case skips without one, and never binds or rebinds a device itself.
const BDF_VAR: &str = "VFIO_SELFTESTS_BDF";

/// The device's PCI address and its IOMMU group number; a skip if there is no device to use.
fn vfio_device() -> std::result::Result<(String, String), Stop> {
    let Ok(name) = std::env::var(BDF_VAR) else {
        return Err(Stop::Skip(format!(
            "no device: {BDF_VAR} names none (QEMU's edu, bound to vfio-pci)"
        )));
    };
    let path = std::path::Path::new("/sys/bus/pci/devices").join(&name);
    let read = |f: &str| std::fs::read_to_string(path.join(f)).unwrap_or_default();
    if (read("vendor").trim(), read("device").trim()) != EDU {
        return Err(Stop::Skip(format!(
            "{name} is not QEMU's edu device, whose DMA engine the case drives"
        )));
    }
    let driver = std::fs::read_link(path.join("driver")).ok();
    let driver = driver.as_deref().and_then(|d| d.file_name());
    if driver.is_none_or(|d| d != "vfio-pci") {
        return Err(Stop::Skip(format!(
            "{name} is bound to {driver:?}, not vfio-pci: bind it first"
        )));
    }
    let group = std::fs::read_link(path.join("iommu_group")).map_err(|e| fail(&e))?;
    let group = group
        .file_name()
        .map(|g| g.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((name, group))
}

/// `r`, or a failure naming the step that failed.
fn step<T>(what: &str, r: Result<T>) -> std::result::Result<T, Stop> {
    r.map_err(|e| Stop::Fail(format!("{what}: {e:?}")))
}

fn fail(e: &dyn std::fmt::Display) -> Stop {
    Stop::Fail(e.to_string())
}

/// The edu device's registers through its VFIO device fd.
struct Edu {
    fd: OwnedFd,
    bar0: u64,
    /// QEMU's edu is native-endian: big-endian registers under qemu-system-ppc64.
    big_endian: bool,
}

/// edu's identification register.
const EDU_ID: u32 = 0x0100_00ed;

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

    /// Opens the device and lets it master the bus.
    fn open(group: BorrowedFd<'_>, name: &str) -> Result<Self> {
        let cname = std::ffi::CString::new(name).map_err(|_| Errno::INVAL)?;
        let raw = ioctl_val(group, VFIO_GROUP_GET_DEVICE_FD, cname.as_ptr() as usize)?;
        // SAFETY: the kernel just returned this fd to us.
        let fd = unsafe { <OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(raw) };
        let config = Self::region(fd.as_fd(), VFIO_PCI_CONFIG_REGION_INDEX)?.offset;
        let mut cmd = [0u8; 2];
        pread(&fd, &mut cmd, config + 4)?;
        let cmd = u16::from_le_bytes(cmd) | 0x6; // memory space, bus master
        pwrite(&fd, &cmd.to_le_bytes(), config + 4)?;
        let bar0 = Self::region(fd.as_fd(), VFIO_PCI_BAR0_REGION_INDEX)?.offset;
        let mut edu = Self {
            fd,
            bar0,
            big_endian: false,
        };
        match edu.read(0)? {
            EDU_ID => {}
            id if id.swap_bytes() == EDU_ID => edu.big_endian = true,
            _ => return Err(Errno::NODEV),
        }
        Ok(edu)
    }

    fn write(&self, reg: u64, value: u32) -> Result<()> {
        let value = if self.big_endian {
            value.swap_bytes()
        } else {
            value
        };
        pwrite(&self.fd, &value.to_le_bytes(), self.bar0 + reg).map(drop)
    }

    fn read(&self, reg: u64) -> Result<u32> {
        let mut b = [0u8; 4];
        pread(&self.fd, &mut b, self.bar0 + reg)?;
        let value = u32::from_le_bytes(b);
        Ok(if self.big_endian {
            value.swap_bytes()
        } else {
            value
        })
    }

    /// One DMA of `len` bytes between bus address `iova` and the device's buffer (at 0x40000 in
    /// its own space): `to_device` reads memory, otherwise the device writes it.
    fn dma(&self, iova: u32, len: u32, to_device: bool) -> Result<()> {
        let (src, dst, dir) = if to_device {
            (iova, 0x40000, 0)
        } else {
            (0x40000, iova, 2)
        };
        self.write(0x80, src)?;
        self.write(0x88, dst)?;
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
}

/// Memory a device writes behind the compiler's back: accessed with volatile reads and writes.
struct Dma(*mut u8, usize);

impl Dma {
    fn write(&self, at: usize, bytes: &[u8]) {
        assert!(at + bytes.len() <= self.1);
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: inside the mapping (checked above), which lives as long as the process.
            unsafe { self.0.add(at + i).write_volatile(b) };
        }
    }

    fn read(&self, at: usize, len: usize) -> Vec<u8> {
        assert!(at + len <= self.1);
        // SAFETY: as for `write`.
        (0..len)
            .map(|i| unsafe { self.0.add(at + i).read_volatile() })
            .collect()
    }
}

/// VFIO's preregistration of `len` bytes at `addr` (`VFIO_IOMMU_SPAPR_[UN]REGISTER_MEMORY`).
fn register(container: &OwnedFd, addr: u64, len: u64, on: bool) -> Result<()> {
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
    ioctl_ref(container.as_fd(), op, &mut r).map(drop)
}

pub fn real_vfio_group() -> CaseResult {
    if !cfg!(target_arch = "powerpc64") {
        return Err(Stop::Skip("the real backend is powerpc only".into()));
    }
    let (name, group_no) = vfio_device()?;
    let rw = OFlags::RDWR | OFlags::CLOEXEC;
    let container = step(
        "open /dev/vfio/vfio",
        open("/dev/vfio/vfio", rw, Mode::empty()),
    )?;
    let path = format!("/dev/vfio/{group_no}");
    let group = step("open the group", open(path.as_str(), rw, Mode::empty()))?;
    let mut cfd = container.as_raw_fd();
    step(
        "VFIO_GROUP_SET_CONTAINER",
        ioctl_ref(group.as_fd(), VFIO_GROUP_SET_CONTAINER, &mut cfd),
    )?;
    step(
        "VFIO_SET_IOMMU",
        ioctl_val(container.as_fd(), VFIO_SET_IOMMU, VFIO_SPAPR_TCE_V2_IOMMU),
    )?;
    let mut info = SpaprTceInfo {
        argsz: argsz::<SpaprTceInfo>(),
        ..Default::default()
    };
    step(
        "VFIO_IOMMU_SPAPR_TCE_GET_INFO",
        ioctl_ref(container.as_fd(), VFIO_IOMMU_SPAPR_TCE_GET_INFO, &mut info),
    )?;
    let (start, size) = (
        u64::from(info.dma32_window_start),
        u64::from(info.dma32_window_size),
    );
    // Creating a window makes VFIO create its pending default window first, as for QEMU: 4 KiB
    // pages over the 32-bit range, which the test uses (the new 64-bit window is not needed).
    let mut create = TceCreate {
        argsz: argsz::<TceCreate>(),
        page_shift: 16,
        window_size: 1 << 30,
        levels: 1,
        ..Default::default()
    };
    let ddw = ioctl_ref(container.as_fd(), VFIO_IOMMU_SPAPR_TCE_CREATE, &mut create);
    diag!("VFIO_IOMMU_SPAPR_TCE_CREATE of a 64-bit window: {ddw:?}");
    diag!("edu {name} in IOMMU group {group_no}: 32-bit window {start:#x}+{size:#x}");

    // Guest memory: two host pages, preregistered with VFIO and given to the context as a slot.
    let page = rustix::param::page_size() as u64;
    // SAFETY: a new private anonymous mapping, used only through the returned address.
    let mem = unsafe {
        mmap_anonymous(
            std::ptr::null_mut(),
            2 * page as usize,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )?
    };
    let buf = Dma(mem.cast::<u8>(), 2 * page as usize);
    let pattern: Vec<u8> = (0..4096).map(|i| (i * 7 % 251) as u8).collect();
    buf.write(0, &pattern);
    let ua = mem as u64;
    step("register memory", register(&container, ua, 2 * page, true))?;
    let dev = TceReplay::new()?;
    let gpa = 0x1000_0000;
    dev.set_user_memory_region_raw(KvmUserspaceMemoryRegion {
        slot: 0,
        flags: 0,
        guest_phys_addr: gpa,
        memory_size: 2 * page,
        userspace_addr: ua,
    })?;
    let table = dev.create_tce_table(KvmCreateSpaprTce64 {
        liobn: 0x8000_0000,
        page_shift: 12,
        flags: 0,
        offset: start >> 12,
        size: size >> 12,
    })?;
    let (src, dst, late) = (0x10000u64, 0x20000u64, 0x30000u64);
    table.put_ioba(start + src, gpa | TCE_READ)?;
    table.put_ioba(start + dst, (gpa + page) | TCE_WRITE)?;
    // A TCE outside every slot is refused, as KVM's H_PUT_TCE does.
    ensure_err!(
        table.put_ioba(start + 0x40000, (gpa + 8 * page) | TCE_READ),
        FAULT
    );
    // A TCE in a slot whose memory is not preregistered is taken while no group is attached;
    // the replay then fails with EFAULT and the group ends detached.
    dev.set_user_memory_region_raw(KvmUserspaceMemoryRegion {
        slot: 1,
        flags: 0,
        guest_phys_addr: gpa + 4 * page,
        memory_size: page,
        userspace_addr: ua + 4 * page,
    })?;
    table.put_ioba(start + 0x40000, (gpa + 4 * page) | TCE_READ)?;
    dev.enable_replay()?;
    ensure_eq!(attach_vfio(&dev, &table, &group, true), Err(Errno::FAULT));
    ensure_eq!(attach_vfio(&dev, &table, &group, false), Err(Errno::NOENT));
    table.put_ioba(start + 0x40000, 0)?;

    step("attach", attach_vfio(&dev, &table, &group, true))?;
    let st = table.stats()?;
    ensure_eq!((st.last_tces_replayed, st.last_hw_entries_written), (2, 2));
    // The hardware table takes one TCE table: another of the same window is refused.
    let second = dev.create_tce_table(KvmCreateSpaprTce64 {
        liobn: 0x8000_0001,
        page_shift: 12,
        flags: 0,
        offset: start >> 12,
        size: size >> 12,
    })?;
    ensure_eq!(attach_vfio(&dev, &second, &group, true), Err(Errno::BUSY));
    ensure_eq!(attach_vfio(&dev, &second, &group, false), Err(Errno::NOENT));
    drop(second);

    // The device's DMA goes through the replayed TCEs: memory -> device -> memory.
    let edu = step("open the device", Edu::open(group.as_fd(), &name))?;
    step("DMA to the device", edu.dma(src as u32, 4096, true))?;
    step("DMA from the device", edu.dma(dst as u32, 4096, false))?;
    let b = page as usize;
    ensure!(
        buf.read(b, 4096) == pattern,
        "DMA through the replayed TCEs lost the data"
    );
    // An update after the attach reaches the hardware table too.
    table.put_ioba(start + late, (gpa + page + 4096) | TCE_WRITE)?;
    edu.dma(late as u32, 4096, false)?;
    ensure!(
        buf.read(b + 4096, 4096) == pattern,
        "DMA through an updated TCE lost the data"
    );
    diag!("edu DMA through 2 replayed TCEs and 1 updated TCE: 12 KiB moved intact");

    // Detach clears the hardware entries: the device's writes no longer reach memory.
    step("detach", attach_vfio(&dev, &table, &group, false))?;
    buf.write(b + 4096, &[0; 4096]);
    step("DMA after detach", edu.dma(late as u32, 4096, false))?;
    ensure!(
        buf.read(b + 4096, 4096).iter().all(|&x| x == 0),
        "a DMA reached memory after detach"
    );
    register(&container, ua, 2 * page, false)?;
    Ok(())
}

/// `KTR_ATTACH` (or `KTR_DETACH`) of the VFIO group `group` to `table`.
fn attach_vfio(dev: &TceReplay, table: &TceTable, group: &OwnedFd, attach: bool) -> Result<()> {
    let r = if attach {
        dev.attach(table, group)
    } else {
        dev.detach(table, group)
    };
    Ok(r?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a device named, or with one that is not a bound edu, the case skips: it never
    /// binds a device itself. (The only test of this crate that sets the variable.)
    #[test]
    fn no_device_to_use_is_a_skip() {
        let skip = |r: std::result::Result<(String, String), Stop>| matches!(r, Err(Stop::Skip(_)));
        std::env::remove_var(BDF_VAR);
        assert!(skip(vfio_device()));
        std::env::set_var(BDF_VAR, "0000:ff:1f.7");
        assert!(skip(vfio_device()));
        std::env::remove_var(BDF_VAR);
    }
}

super::register! {
    device real_vfio_group,
}
