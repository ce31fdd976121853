// SPDX-License-Identifier: GPL-2.0

//! Cases of the device itself: the node, capability probing and enabling, unknown ioctls.

use crate::fixture;
use crate::uapi::*;
use crate::{ensure, ensure_eq, ensure_err, CaseResult};
use kvm_tce_replay::{raw, TceReplay, DEVICE};
use rustix::fs::{stat, FileType};
use rustix::io::Errno;

pub fn device_exists() -> CaseResult {
    let st = stat(DEVICE)?;
    ensure_eq!(
        FileType::from_raw_mode(st.st_mode),
        FileType::CharacterDevice
    );
    ensure_eq!(st.st_mode & 0o777, 0o600);
    fixture::open()?;
    Ok(())
}

pub fn check_extension() -> CaseResult {
    let dev = fixture::open()?;
    ensure!(
        dev.check_extension_raw(KVM_CAP_SPAPR_TCE_64)? > 0,
        "SPAPR_TCE_64 not reported"
    );
    ensure!(
        dev.check_extension_raw(KVM_CAP_SPAPR_TCE_REPLAY)? > 0,
        "TCE_REPLAY not reported"
    );
    for unknown in [
        0,
        1,
        63,
        124,
        126,
        251,
        KVM_CAP_SPAPR_TCE_REPLAY + 1,
        u32::MAX,
    ] {
        ensure_eq!(dev.check_extension_raw(unknown)?, 0);
    }
    Ok(())
}

pub fn unknown_ioctl_enotty() -> CaseResult {
    let dev = fixture::open()?;
    for op in [
        0,
        KVM_CHECK_EXTENSION + 1,
        KVM_CREATE_SPAPR_TCE_64 ^ 0x0100_0000,
        KTR_PUT_TCE,
    ] {
        // SAFETY: the module refuses an unknown command before reading its argument.
        let r = unsafe { raw::ioctl_with_val(&dev, op, 0) };
        ensure_err!(r, NOTTY);
    }
    Ok(())
}

pub fn enable_cap() -> CaseResult {
    let dev = fixture::open()?;
    ensure_err!(
        dev.enable_cap(&KvmEnableCap::new(KVM_CAP_SPAPR_TCE_64)),
        INVAL
    );
    let mut bad = KvmEnableCap::new(KVM_CAP_SPAPR_TCE_REPLAY);
    bad.flags = 1;
    ensure_err!(dev.enable_cap(&bad), INVAL);
    let mut bad = KvmEnableCap::new(KVM_CAP_SPAPR_TCE_REPLAY);
    bad.args[3] = 1;
    ensure_err!(dev.enable_cap(&bad), INVAL);
    let mut bad = KvmEnableCap::new(KVM_CAP_SPAPR_TCE_REPLAY);
    bad.pad[63] = 1;
    ensure_err!(dev.enable_cap(&bad), INVAL);
    dev.enable_replay()?;
    // Enabling twice is harmless, as for KVM capabilities that are plain switches.
    dev.enable_replay()?;
    Ok(())
}

/// The ioctl numbers use this architecture's `_IOC` encoding (powerpc's differs from x86's).
pub fn ioctl_encoding() -> CaseResult {
    use rustix::ioctl::{opcode, Opcode};
    let expected: u32 = if cfg!(any(target_arch = "powerpc64", target_arch = "powerpc")) {
        0x8020_aea8
    } else {
        0x4020_aea8
    };
    ensure_eq!(KVM_CREATE_SPAPR_TCE_64, expected);
    ensure_eq!(
        KVM_CREATE_SPAPR_TCE_64 as Opcode,
        opcode::write::<KvmCreateSpaprTce64>(KVMIO as u8, 0xa8)
    );
    ensure_eq!(
        KTR_GET_TCE as Opcode,
        opcode::read_write::<KtrGetTce>(KTR_IO as u8, 0x13)
    );
    crate::diag!(
        "{}: PAGE_SIZE {}, KVM_CREATE_SPAPR_TCE_64 = {:#x}",
        std::env::consts::ARCH,
        rustix::param::page_size(),
        KVM_CREATE_SPAPR_TCE_64
    );
    Ok(())
}

/// `KVM_SET_USER_MEMORY_REGION` checks and records memory slots like KVM, on every
/// architecture (valid TCEs must point into them); `KVM_CAP_NR_MEMSLOTS` says how many.
pub fn memory_regions() -> CaseResult {
    let dev = TceReplay::new()?;
    let page = rustix::param::page_size() as u64;
    ensure_eq!(dev.check_extension_raw(10), Ok(512));
    dev.set_user_memory_region_raw(KvmUserspaceMemoryRegion::new(0, 0, 16 * page, 1 << 40))?;
    let mut flagged = KvmUserspaceMemoryRegion::new(1, 16 * page, page, 0);
    flagged.flags = 1;
    for (bad, errno) in [
        (flagged, Errno::INVAL),
        (
            KvmUserspaceMemoryRegion::new(512, 16 * page, page, 0),
            Errno::INVAL,
        ),
        (KvmUserspaceMemoryRegion::new(5, 0, 0, 0), Errno::INVAL),
        (
            KvmUserspaceMemoryRegion::new(1, 16 * page + 1, page, 0),
            Errno::INVAL,
        ),
        (
            KvmUserspaceMemoryRegion::new(1, 16 * page, page / 2, 0),
            Errno::INVAL,
        ),
        (
            KvmUserspaceMemoryRegion::new(1, 16 * page, page, 3),
            Errno::INVAL,
        ),
        (
            KvmUserspaceMemoryRegion::new(1, u64::MAX - page + 1, page, 0),
            Errno::INVAL,
        ),
        (
            KvmUserspaceMemoryRegion::new(1, 15 * page, 2 * page, 0),
            Errno::EXIST,
        ),
    ] {
        ensure_eq!(dev.set_user_memory_region_raw(bad), Err(errno.into()));
    }
    // Slot 0 may move over its own range; slot 1 then fits where slot 0 was.
    dev.set_user_memory_region_raw(KvmUserspaceMemoryRegion::new(
        0,
        8 * page,
        16 * page,
        1 << 40,
    ))?;
    ensure_err!(
        dev.set_user_memory_region_raw(KvmUserspaceMemoryRegion::new(1, 0, 9 * page, 0)),
        EXIST
    );
    dev.set_user_memory_region_raw(KvmUserspaceMemoryRegion::new(1, 0, 8 * page, 1 << 41))?;
    // Deleting slot 0 frees its range.
    dev.set_user_memory_region_raw(KvmUserspaceMemoryRegion::new(0, 0, 0, 0))?;
    dev.set_user_memory_region_raw(KvmUserspaceMemoryRegion::new(
        2,
        8 * page,
        16 * page,
        1 << 42,
    ))?;
    Ok(())
}

super::register! {
    device device_exists,
    device check_extension,
    device unknown_ioctl_enotty,
    device enable_cap,
    device ioctl_encoding,
    device memory_regions,
}
