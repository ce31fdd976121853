// SPDX-License-Identifier: GPL-2.0

//! A VMM of the harness's own on /dev/kvm, for the KVM oracle (cases/kvm_oracle.rs): one KVM-HV
//! VM whose guest memory is two slots, one vCPU running kvm/guest.s (which plays a script of
//! hypercalls from guest memory), KVM's own TCE tables (`KVM_CREATE_SPAPR_TCE_64` on the VM fd,
//! read through their mmap) and the hypercalls KVM leaves to userspace (`KVM_EXIT_PAPR_HCALL`),
//! handed to the caller as QEMU's `spapr_hypercall()` gets them.

use crate::vfio::step;
use crate::Stop;
use kvm_tce_replay::raw;
use kvm_tce_replay::uapi::{KvmCreateSpaprTce64, KvmEnableCap, KvmUserspaceMemoryRegion};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{open, Mode, OFlags};
use rustix::io::{Errno, Result};
use rustix::ioctl::opcode;
use rustix::mm::{mmap, mmap_anonymous, munmap, MapFlags, ProtFlags};

/// The guest image (kvm/guest.s assembled by build.rs): empty where the target is not POWER.
const GUEST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/guest.bin"));

/// `KVM_CAP_PPC_PAPR`: the vCPU runs a PAPR guest (KVM-HV runs nothing else).
const KVM_CAP_PPC_PAPR: u32 = 68;
/// `KVM_CAP_PPC_ENABLE_HCALL`: the VM's in-kernel handling of one hypercall, on or off.
const KVM_CAP_PPC_ENABLE_HCALL: u32 = 104;
/// `KVM_CAP_SPAPR_TCE_64`.
const KVM_CAP_SPAPR_TCE_64: u32 = 125;
/// `KVM_EXIT_PAPR_HCALL`.
const KVM_EXIT_PAPR_HCALL: u32 = 19;

const KVMIO: u8 = 0xAE;
const KVM_GET_API_VERSION: u32 = opcode::none(KVMIO, 0x00) as u32;
const KVM_CREATE_VM: u32 = opcode::none(KVMIO, 0x01) as u32;
const KVM_CHECK_EXTENSION: u32 = opcode::none(KVMIO, 0x03) as u32;
const KVM_GET_VCPU_MMAP_SIZE: u32 = opcode::none(KVMIO, 0x04) as u32;
const KVM_CREATE_VCPU: u32 = opcode::none(KVMIO, 0x41) as u32;
const KVM_SET_USER_MEMORY_REGION: u32 =
    opcode::write::<KvmUserspaceMemoryRegion>(KVMIO, 0x46) as u32;
const KVM_RUN: u32 = opcode::none(KVMIO, 0x80) as u32;
const KVM_GET_REGS: u32 = opcode::read::<Regs>(KVMIO, 0x81) as u32;
const KVM_SET_REGS: u32 = opcode::write::<Regs>(KVMIO, 0x82) as u32;
const KVM_ENABLE_CAP: u32 = opcode::write::<KvmEnableCap>(KVMIO, 0xa3) as u32;
const KVM_CREATE_DEVICE: u32 = opcode::read_write::<CreateDevice>(KVMIO, 0xe0) as u32;
const KVM_SET_DEVICE_ATTR: u32 = opcode::write::<DeviceAttr>(KVMIO, 0xe1) as u32;
const KVM_CREATE_SPAPR_TCE_64: u32 = opcode::write::<KvmCreateSpaprTce64>(KVMIO, 0xa8) as u32;

/// PAPR hypercalls and return codes (arch/powerpc/include/asm/hvcall.h).
pub const H_GET_TCE: u64 = 0x1c;
pub const H_PUT_TCE: u64 = 0x20;
pub const H_STUFF_TCE: u64 = 0x138;
pub const H_PUT_TCE_INDIRECT: u64 = 0x13c;
pub const H_SUCCESS: u64 = 0;
pub const H_PARAMETER: u64 = -4i64 as u64;
pub const H_TOO_HARD: u64 = 9999;

/// The number the guest's `sc 1` carries when its script is done (guest.s; no hcall of PAPR's).
const KTR_ORACLE_DONE: u64 = 0x7f00;
/// The r3 of the guest's interrupt report (guest.s).
const GUEST_INTERRUPT: u64 = u64::MAX;

/// The guest's MSR: 64-bit (SF), machine checks on (ME), little-endian (LE), recoverable (RI);
/// real mode (IR and DR off) and external interrupts off (EE).
const GUEST_MSR: u64 = 1 << 63 | 1 << 12 | 1 << 1 | 1;

/// Where the script lives (guest.s's r20), and its most records.
pub const SCRIPT_GPA: u64 = 0x1_0000;
pub const SCRIPT_MAX: usize = 1023;
/// A record of the script: `{nr, r4, r5, r6, r7, out r3, out r4, 0}`.
const RECORD_WORDS: usize = 8;

/// `struct kvm_regs` of powerpc.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Regs {
    pc: u64,
    cr: u64,
    ctr: u64,
    lr: u64,
    xer: u64,
    msr: u64,
    srr0: u64,
    srr1: u64,
    pid: u64,
    sprg: [u64; 8],
    gpr: [u64; 32],
}

/// `struct kvm_create_device`.
#[repr(C)]
struct CreateDevice {
    kind: u32,
    fd: u32,
    flags: u32,
}

/// `struct kvm_device_attr`.
#[repr(C)]
struct DeviceAttr {
    flags: u32,
    group: u32,
    attr: u64,
    addr: u64,
}

/// `struct kvm_vfio_spapr_tce`.
#[repr(C)]
struct VfioSpaprTce {
    groupfd: i32,
    tablefd: i32,
}

/// `KVM_DEV_TYPE_VFIO`, its group `KVM_DEV_VFIO_FILE` and that group's attributes.
const KVM_DEV_TYPE_VFIO: u32 = 4;
const KVM_DEV_VFIO_FILE: u32 = 1;
const KVM_DEV_VFIO_FILE_ADD: u64 = 1;
const KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE: u64 = 3;

/// The head of `struct kvm_run` and its `papr_hcall` member (the union starts at 32).
#[repr(C)]
struct RunHead {
    request_interrupt_window: u8,
    immediate_exit: u8,
    padding1: [u8; 6],
    exit_reason: u32,
    ready_for_interrupt_injection: u8,
    if_flag: u8,
    flags: u16,
    cr8: u64,
    apic_base: u64,
    hcall_nr: u64,
    hcall_ret: u64,
    hcall_args: [u64; 9],
}

fn ioctl_ref<T>(fd: BorrowedFd<'_>, op: u32, arg: &mut T) -> Result<i32> {
    // SAFETY: every caller in this file passes a KVM command and the struct it encodes (or, for
    // KVM_SET_DEVICE_ATTR, a struct whose `addr` points to what the attribute reads).
    Ok(unsafe { raw::ioctl_with_mut_ref(fd, op, arg) }?)
}

fn ioctl_val(fd: BorrowedFd<'_>, op: u32, value: usize) -> Result<i32> {
    // SAFETY: every caller in this file passes a command that reads its argument as an integer.
    Ok(unsafe { raw::ioctl_with_val(fd, op, value) }?)
}

#[cfg(target_arch = "powerpc64")]
unsafe extern "C" {
    /// kvm/run.s: `ioctl(fd, op, 0)` keeping the caller's non-volatile FP and vector registers.
    fn ktr_kvm_run(fd: i32, op: u64) -> i64;
}

/// `KVM_RUN` on `vcpu`. On POWER through kvm/run.s, which keeps the non-volatile FP and vector
/// registers that KVM-HV under QEMU's TCG sometimes returns zeroed.
fn kvm_run(vcpu: BorrowedFd<'_>) -> Result<()> {
    #[cfg(target_arch = "powerpc64")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: ktr_kvm_run() only issues the system call, with its argument 0 (KVM_RUN takes
        // none), and restores what it saved; `vcpu` is an open fd.
        let r = unsafe { ktr_kvm_run(vcpu.as_raw_fd(), u64::from(KVM_RUN)) };
        if r < 0 {
            return Err(Errno::from_raw_os_error(-r as i32));
        }
        Ok(())
    }
    #[cfg(not(target_arch = "powerpc64"))]
    ioctl_val(vcpu, KVM_RUN, 0).map(|_| ())
}

fn new_fd(raw_fd: i32) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: KVM just returned this fd; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(raw_fd) }
}

/// An anonymous or file mapping, unmapped on drop.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn anonymous(len: usize) -> Result<Self> {
        // SAFETY: a new private anonymous mapping aliases nothing.
        let ptr = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }?;
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    fn file(fd: BorrowedFd<'_>, len: usize, prot: ProtFlags) -> Result<Self> {
        // SAFETY: a new shared mapping of `fd` at an address the kernel picks aliases nothing of
        // ours; reading it (through `read_u64`) faults in what the file's owner provides.
        let ptr = unsafe { mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0) }?;
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    fn read_u64(&self, offset: usize) -> u64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= self.len);
        // SAFETY: in bounds and aligned (checked); the mapping lives as long as `self`.
        unsafe { std::ptr::read_volatile(self.ptr.add(offset).cast::<u64>()) }
    }

    fn bytes(&self, offset: usize, len: usize) -> *mut u8 {
        assert!(offset.checked_add(len).is_some_and(|end| end <= self.len));
        // SAFETY: in bounds (checked).
        unsafe { self.ptr.add(offset) }
    }

    fn write_u64(&self, offset: usize, value: u64) {
        assert!(offset.is_multiple_of(8) && offset + 8 <= self.len);
        // SAFETY: in bounds and aligned (checked); writable (only anonymous mappings are
        // written, and those are read-write).
        unsafe { std::ptr::write_volatile(self.ptr.add(offset).cast::<u64>(), value) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr + len` is the mapping this value made; nothing borrows it past drop.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// A guest memory slot: guest-physical `gpa .. gpa + size` backed by an anonymous mapping.
pub struct Slot {
    pub gpa: u64,
    pub size: u64,
    map: Mapping,
}

impl Slot {
    /// The user address of the slot's first byte, as `KVM_SET_USER_MEMORY_REGION` takes it.
    pub fn ua(&self) -> u64 {
        self.map.ptr as u64
    }

    fn offset(&self, gpa: u64) -> Option<usize> {
        (gpa >= self.gpa && gpa - self.gpa < self.size).then(|| (gpa - self.gpa) as usize)
    }
}

/// A TCE table KVM keeps (`KVM_CREATE_SPAPR_TCE_64`), its entries read through its mmap (which
/// allocates every TCE page it reads, as kvm_spapr_tce_fault() does).
pub struct KvmTable {
    /// Closing it frees KVM's table.
    fd: OwnedFd,
    map: Mapping,
}

impl KvmTable {
    /// Entry `i` of the window (0 is the window's first).
    pub fn read(&self, i: u64) -> u64 {
        self.map.read_u64(i as usize * 8)
    }
}

/// A VM's guest memory: its slots, as the VMM reads and writes them.
pub struct GuestMem {
    pub slots: Vec<Slot>,
}

impl GuestMem {
    /// The slot and offset of guest address `gpa`, if a slot holds it.
    fn find(&self, gpa: u64) -> Option<(&Slot, usize)> {
        self.slots
            .iter()
            .find_map(|s| s.offset(gpa).map(|o| (s, o)))
    }

    /// The user address of guest address `gpa`, as `kvmppc_tce_to_ua()` finds it.
    pub fn ua(&self, gpa: u64) -> Option<u64> {
        self.find(gpa).map(|(s, o)| s.ua() + o as u64)
    }

    /// Writes the u64 at guest address `gpa` (in a slot, 8-byte aligned), little-endian.
    pub fn write(&self, gpa: u64, value: u64) {
        let (slot, offset) = self.find(gpa).expect("a guest address in a slot");
        slot.map.write_u64(offset, value);
    }

    /// Writes `bytes` at guest address `gpa` (in one slot).
    pub fn write_bytes(&self, gpa: u64, bytes: &[u8]) {
        let (slot, offset) = self.find(gpa).expect("a guest address in a slot");
        let dst = slot.map.bytes(offset, bytes.len());
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: `dst .. dst + len` is inside the slot's read-write mapping (checked by
            // `bytes`); a device may write it too, hence the volatile access.
            unsafe { std::ptr::write_volatile(dst.add(i), b) };
        }
    }

    /// Reads `len` bytes at guest address `gpa` (in one slot).
    pub fn read_bytes(&self, gpa: u64, len: usize) -> Vec<u8> {
        let (slot, offset) = self.find(gpa).expect("a guest address in a slot");
        let src = slot.map.bytes(offset, len);
        // SAFETY: as in `write_bytes`.
        (0..len)
            .map(|i| unsafe { std::ptr::read_volatile(src.add(i)) })
            .collect()
    }

    /// Reads the u64 at guest address `gpa` (in a slot, 8-byte aligned).
    pub fn read(&self, gpa: u64) -> u64 {
        let (slot, offset) = self.find(gpa).expect("a guest address in a slot");
        slot.map.read_u64(offset)
    }
}

/// One KVM VM with one vCPU running kvm/guest.s, and its guest memory.
pub struct Vm {
    vm: OwnedFd,
    vcpu: OwnedFd,
    run: Mapping,
    pub mem: GuestMem,
    /// The guest's hypercalls KVM answered or left to us, over the VM's life.
    pub hcalls: u64,
    /// How many of them KVM left to userspace (`KVM_EXIT_PAPR_HCALL`).
    pub exits: u64,
}

/// The reason KVM cannot be the oracle here, if it cannot.
pub fn unavailable() -> Option<String> {
    if GUEST.is_empty() {
        return Some("not a POWER target: no guest to run".into());
    }
    let kvm = match open("/dev/kvm", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            return Some(format!(
                "/dev/kvm: {e:?} (no KVM-HV in this kernel or machine)"
            ))
        }
    };
    for cap in [
        KVM_CAP_PPC_PAPR,
        KVM_CAP_SPAPR_TCE_64,
        KVM_CAP_PPC_ENABLE_HCALL,
    ] {
        if !matches!(ioctl_val(kvm.as_fd(), KVM_CHECK_EXTENSION, cap as usize), Ok(v) if v > 0) {
            return Some(format!("KVM lacks capability {cap}"));
        }
    }
    // KVM-HV in a pseries guest whose hypervisor offers no nested HV (QEMU's cap-nested-hv)
    // loads, answers the capabilities and refuses every VM.
    match ioctl_val(kvm.as_fd(), KVM_CREATE_VM, 0) {
        Ok(vm) => {
            drop(new_fd(vm));
            None
        }
        Err(e) => Some(format!(
            "KVM_CREATE_VM: {e:?} (KVM-HV cannot run a guest here)"
        )),
    }
}

impl Vm {
    /// A VM (KVM's default type: HV where the host can) with guest memory in `slots` (guest
    /// address and size, each a multiple of the host page) and the guest image at 0 in the
    /// first, its vCPU set up to play the script at [`SCRIPT_GPA`]; `hcalls` enabled in KVM.
    pub fn new(slots: &[(u64, u64)], hcalls: &[u64]) -> std::result::Result<Self, Stop> {
        let kvm = step(
            "open /dev/kvm",
            open("/dev/kvm", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()),
        )?;
        let version = step(
            "KVM_GET_API_VERSION",
            ioctl_val(kvm.as_fd(), KVM_GET_API_VERSION, 0),
        )?;
        crate::ensure_eq!(version, 12);
        let vm = new_fd(step(
            "KVM_CREATE_VM",
            ioctl_val(kvm.as_fd(), KVM_CREATE_VM, 0),
        )?);
        let mut made = Vec::new();
        for (i, &(gpa, size)) in slots.iter().enumerate() {
            let map = step("guest memory", Mapping::anonymous(size as usize))?;
            let mut region = KvmUserspaceMemoryRegion {
                slot: i as u32,
                flags: 0,
                guest_phys_addr: gpa,
                memory_size: size,
                userspace_addr: map.ptr as u64,
            };
            step(
                "KVM_SET_USER_MEMORY_REGION",
                ioctl_ref(vm.as_fd(), KVM_SET_USER_MEMORY_REGION, &mut region),
            )?;
            made.push(Slot { gpa, size, map });
        }
        for &hcall in hcalls {
            let mut cap = KvmEnableCap::new(KVM_CAP_PPC_ENABLE_HCALL);
            cap.args = [hcall, 1, 0, 0];
            step(
                "KVM_ENABLE_CAP(PPC_ENABLE_HCALL)",
                ioctl_ref(vm.as_fd(), KVM_ENABLE_CAP, &mut cap),
            )?;
        }
        let vcpu = new_fd(step(
            "KVM_CREATE_VCPU",
            ioctl_val(vm.as_fd(), KVM_CREATE_VCPU, 0),
        )?);
        let mut papr = KvmEnableCap::new(KVM_CAP_PPC_PAPR);
        step(
            "KVM_ENABLE_CAP(PPC_PAPR)",
            ioctl_ref(vcpu.as_fd(), KVM_ENABLE_CAP, &mut papr),
        )?;
        let size = step(
            "KVM_GET_VCPU_MMAP_SIZE",
            ioctl_val(kvm.as_fd(), KVM_GET_VCPU_MMAP_SIZE, 0),
        )?;
        let run = step(
            "mmap kvm_run",
            Mapping::file(
                vcpu.as_fd(),
                size as usize,
                ProtFlags::READ | ProtFlags::WRITE,
            ),
        )?;
        let vm = Self {
            vm,
            vcpu,
            run,
            mem: GuestMem { slots: made },
            hcalls: 0,
            exits: 0,
        };
        for (i, chunk) in GUEST.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            vm.mem.write(i as u64 * 8, u64::from_le_bytes(word));
        }
        let mut regs = vm.regs()?;
        regs.pc = 0;
        regs.msr = GUEST_MSR;
        regs.gpr[20] = SCRIPT_GPA;
        step(
            "KVM_SET_REGS",
            ioctl_ref(vm.vcpu.as_fd(), KVM_SET_REGS, &mut regs),
        )?;
        Ok(vm)
    }

    fn regs(&self) -> std::result::Result<Regs, Stop> {
        let mut regs = Regs {
            pc: 0,
            cr: 0,
            ctr: 0,
            lr: 0,
            xer: 0,
            msr: 0,
            srr0: 0,
            srr1: 0,
            pid: 0,
            sprg: [0; 8],
            gpr: [0; 32],
        };
        step(
            "KVM_GET_REGS",
            ioctl_ref(self.vcpu.as_fd(), KVM_GET_REGS, &mut regs),
        )?;
        Ok(regs)
    }

    /// A table of KVM's own with geometry `args`.
    pub fn create_tce_table(&self, args: KvmCreateSpaprTce64) -> Result<KvmTable> {
        let mut a = args;
        let fd = new_fd(ioctl_ref(self.vm.as_fd(), KVM_CREATE_SPAPR_TCE_64, &mut a)?);
        let page = rustix::param::page_size() as u64;
        let len = (args.size * 8).div_ceil(page) * page;
        let map = Mapping::file(fd.as_fd(), len as usize, ProtFlags::READ)?;
        Ok(KvmTable { fd, map })
    }

    /// A KVM VFIO device (`KVM_DEV_TYPE_VFIO`) with `group` added and set to KVM's `table`, as
    /// QEMU's vfio_kvm_device_add_group() and vfio_spapr_container_add_section_window() do;
    /// KVM's table then writes the group's hardware table on every update.
    pub fn attach_vfio(&self, group: BorrowedFd<'_>, table: &KvmTable) -> Result<OwnedFd> {
        use std::os::fd::AsRawFd;
        let mut create = CreateDevice {
            kind: KVM_DEV_TYPE_VFIO,
            fd: 0,
            flags: 0,
        };
        ioctl_ref(self.vm.as_fd(), KVM_CREATE_DEVICE, &mut create)?;
        let dev = new_fd(create.fd as i32);
        let mut groupfd = group.as_raw_fd();
        let mut add = DeviceAttr {
            flags: 0,
            group: KVM_DEV_VFIO_FILE,
            attr: KVM_DEV_VFIO_FILE_ADD,
            addr: &mut groupfd as *mut i32 as u64,
        };
        ioctl_ref(dev.as_fd(), KVM_SET_DEVICE_ATTR, &mut add)?;
        let mut spapr = VfioSpaprTce {
            groupfd: group.as_raw_fd(),
            tablefd: table.fd.as_raw_fd(),
        };
        let mut set = DeviceAttr {
            flags: 0,
            group: KVM_DEV_VFIO_FILE,
            attr: KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE,
            addr: &mut spapr as *mut VfioSpaprTce as u64,
        };
        ioctl_ref(dev.as_fd(), KVM_SET_DEVICE_ATTR, &mut set)?;
        Ok(dev)
    }

    fn head(&self) -> *mut RunHead {
        assert!(self.run.len >= size_of::<RunHead>());
        self.run.ptr.cast()
    }

    /// Plays `script` (at most [`SCRIPT_MAX`] hypercalls `[nr, r4, r5, r6, r7]`) in the guest:
    /// KVM answers what it handles; `exit(nr, args)` answers the rest, returning r3 and, if
    /// `Some`, r4, reading guest memory through the `GuestMem` it is given. Returns each hypercall's r3 and r4 as the guest saw them.
    pub fn play(
        &mut self,
        script: &[[u64; 5]],
        mut exit: impl FnMut(&GuestMem, u64, &[u64; 9]) -> (u64, Option<u64>),
    ) -> std::result::Result<Vec<(u64, u64)>, Stop> {
        crate::ensure!(
            script.len() <= SCRIPT_MAX,
            "a script of {} records",
            script.len()
        );
        let record = |i: usize, w: usize| SCRIPT_GPA + 64 + (i * RECORD_WORDS + w) as u64 * 8;
        self.mem.write(SCRIPT_GPA, script.len() as u64);
        for (i, call) in script.iter().enumerate() {
            for (w, &v) in call.iter().enumerate() {
                self.mem.write(record(i, w), v);
            }
            for w in 5..RECORD_WORDS {
                self.mem.write(record(i, w), 0xdead_beef);
            }
        }
        loop {
            match kvm_run(self.vcpu.as_fd()) {
                Ok(_) => {}
                Err(Errno::INTR | Errno::AGAIN) => continue,
                Err(e) => return Err(Stop::Fail(format!("KVM_RUN: {e:?}"))),
            }
            let head = self.head();
            // SAFETY: `head` points to the vCPU's kvm_run, mapped read-write for the life of
            // `self`; KVM writes it only inside KVM_RUN, which has returned.
            let (reason, nr, args) =
                unsafe { ((*head).exit_reason, (*head).hcall_nr, (*head).hcall_args) };
            if reason != KVM_EXIT_PAPR_HCALL {
                let regs = self.regs()?;
                return Err(Stop::Fail(format!(
                    "KVM_RUN exit reason {reason}, guest pc {:#x} msr {:#x}",
                    regs.pc, regs.msr
                )));
            }
            let (ret, r4) = match nr {
                KTR_ORACLE_DONE => break,
                GUEST_INTERRUPT => {
                    return Err(Stop::Fail(format!(
                        "the guest took interrupt {:#x} at {:#x} (SRR1 {:#x})",
                        args[2], args[0], args[1]
                    )))
                }
                _ => {
                    self.exits += 1;
                    exit(&self.mem, nr, &args)
                }
            };
            // SAFETY: as above; KVM reads it at the next KVM_RUN (r3 from `ret`, r4.. from
            // `args`).
            unsafe {
                (*head).hcall_ret = ret;
                if let Some(r4) = r4 {
                    (*head).hcall_args[0] = r4;
                }
            }
        }
        self.hcalls += script.len() as u64;
        Ok((0..script.len())
            .map(|i| (self.mem.read(record(i, 5)), self.mem.read(record(i, 6))))
            .collect())
    }
}
