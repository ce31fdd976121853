// SPDX-License-Identifier: GPL-2.0

//! The VM's /init: mounts proc, sys, devtmpfs and debugfs, loads the module with finit_module
//! (unless the kernel has it built in, as the UML kernel does; `mock=1` unless the command line
//! says `ktr.mock=0`), runs the programs of the mode the kernel command line names (`ktr.mode=`:
//! the test, the benchmark, the fuzzer, `ktr probe` and `ktr demo`, or the installed kselftest
//! tree's runner), reports the taint, unloads the module with delete_module and powers off. Prints
//! `KTR:` marker lines. Like the setup script of VFIO's selftests, it binds QEMU's edu device to
//! vfio-pci when there is one and names it to the test in `VFIO_SELFTESTS_BDF`.

use ktr_vm::Mode as VmMode;
use rustix::fs::{open, Mode, OFlags};
use rustix::mount::{mount, MountFlags};
use rustix::system::{delete_module, finit_module, reboot, RebootCommand};
use std::process::Command;

const MODULE: &str = "/kvm_tce_replay.ko";
const MODULE_NAME: &std::ffi::CStr = c"kvm_tce_replay";
const TEST: &str = "/bin/kvm_tce_replay_test";
const BENCH: &str = "/bin/kvm_tce_replay_bench";
const FUZZ: &str = "/bin/kvm_tce_replay_fuzz";
const KTR: &str = "/bin/ktr";
/// The installed kselftest tree's runner (the kselftest mode): run by busybox's shell.
const KSELFTEST: &str = "/kselftest/run_kselftest.sh";
const DEVICE: &str = "/dev/kvm-tce-replay";

/// How the module came to be there.
#[derive(PartialEq)]
enum Loaded {
    Module,
    BuiltIn,
    No,
}

fn mounts() {
    for (src, target, fstype) in [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
        ("debugfs", "/sys/kernel/debug", "debugfs"),
        ("tmpfs", "/tmp", "tmpfs"),
    ] {
        let _ = std::fs::create_dir_all(target);
        if let Err(e) = mount(src, target, fstype, MountFlags::empty(), None) {
            println!("KTR: error: mount {target}: {e}");
        }
    }
    // The links udev would make: kselftest's runner writes to /dev/stdout.
    for (link, to) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        if let Err(e) = std::os::unix::fs::symlink(to, link) {
            println!("KTR: error: symlink {link}: {e}");
        }
    }
}

/// What the kernel command line asks of /init.
struct CommandLine {
    /// `ktr.mode=`: which programs run (the suite's for a name no mode has).
    mode: VmMode,
    /// `ktr.args=` (comma separated): their arguments.
    args: Vec<String>,
    /// `ktr.mock=0` loads the module without its mock backend.
    mock: bool,
}

/// `ktr.mode=`, `ktr.args=` and `ktr.mock=` from the kernel command line.
fn command_line() -> CommandLine {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let mut mode = VmMode::Test;
    let mut args = Vec::new();
    let mut mock = true;
    for word in cmdline.split_whitespace() {
        if let Some(m) = word.strip_prefix("ktr.mode=") {
            mode = VmMode::from_name(m).unwrap_or(VmMode::Test);
        } else if let Some(m) = word.strip_prefix("ktr.mock=") {
            mock = m != "0";
        } else if let Some(a) = word.strip_prefix("ktr.args=") {
            args = a
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
    }
    CommandLine { mode, args, mock }
}

fn load_module(mock: bool) -> Loaded {
    if !std::path::Path::new(MODULE).exists() && std::path::Path::new(DEVICE).exists() {
        println!("KTR: module built in");
        return Loaded::BuiltIn;
    }
    let fd = match open(MODULE, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            println!("KTR: error: open {MODULE}: {e}");
            return Loaded::No;
        }
    };
    let params = if mock { c"mock=1" } else { c"mock=0" };
    match finit_module(&fd, params, 0) {
        Ok(()) => {
            println!("KTR: module loaded");
            Loaded::Module
        }
        Err(e) => {
            println!("KTR: error: finit_module: {e}");
            Loaded::No
        }
    }
}

fn main() {
    mounts();
    println!(
        "KTR: init on {} with page size {}",
        std::env::consts::ARCH,
        rustix::param::page_size()
    );
    let cmdline = command_line();
    // What boot left behind is not ours: forget it before the module runs.
    kmemleak("clear");
    let loaded = load_module(cmdline.mock);
    if loaded != Loaded::No {
        let vfio = vfio_device();
        // Each program in turn until one fails; the last status is the run's.
        let mut exit = "0".to_string();
        for (program, argv) in programs(cmdline.mode, &cmdline.args) {
            let mut command = Command::new(program);
            command.args(&argv).env("PATH", "/bin:/usr/bin");
            if let Some(bdf) = &vfio {
                command.env("VFIO_SELFTESTS_BDF", bdf);
            }
            match command.status().map(|s| s.code()) {
                Ok(Some(0)) => continue,
                Ok(Some(code)) => exit = code.to_string(),
                Ok(None) => exit = "signal".to_string(),
                Err(e) => {
                    println!("KTR: error: running {program}: {e}");
                    exit = "error".to_string();
                }
            }
            break;
        }
        println!("KTR: harness exit {exit}");
        let taint = std::fs::read_to_string("/proc/sys/kernel/tainted").unwrap_or_default();
        println!("KTR: tainted {}", taint.trim());
        leak_scan("after the harness");
        if loaded == Loaded::Module {
            match delete_module(MODULE_NAME, libc_o_nonblock()) {
                Ok(()) => println!("KTR: rmmod ok"),
                Err(e) => println!("KTR: rmmod failed: {e}"),
            }
            leak_scan("after rmmod");
        }
    }
    rustix::fs::sync();
    let _ = reboot(RebootCommand::PowerOff);
}

/// The programs a mode runs, with their arguments: the demo is the CLI's `ktr probe` and
/// `ktr demo`; `kselftest` is the installed kselftest tree's runner; the others are the
/// harness's programs.
fn programs(mode: VmMode, args: &[String]) -> Vec<(&'static str, Vec<String>)> {
    let args = args.to_vec();
    match mode {
        VmMode::Demo => vec![(KTR, vec!["probe".into()]), (KTR, vec!["demo".into()])],
        VmMode::Kselftest => vec![("/bin/sh", [vec![KSELFTEST.into()], args].concat())],
        VmMode::Bench => vec![(BENCH, args)],
        VmMode::Profile => vec![(BENCH, [vec![mode.name().into()], args].concat())],
        VmMode::Fuzz => vec![(FUZZ, args)],
        VmMode::Test => vec![(TEST, args)],
    }
}

/// QEMU's edu device (PCI 1234:11e8), the DMA engine of the real-backend case.
const EDU: (&str, &str) = ("0x1234", "0x11e8");

/// Binds every edu device of the VM to vfio-pci (as VFIO selftests' setup.sh does with the device
/// it is given) and returns the address of the first, which the harness gets in
/// `VFIO_SELFTESTS_BDF`; a case that needs a second device finds it bound in sysfs.
fn vfio_device() -> Option<String> {
    let mut devices: Vec<_> = std::fs::read_dir("/sys/bus/pci/devices")
        .ok()?
        .flatten()
        .map(|d| d.path())
        .collect();
    devices.sort();
    let mut first = None;
    for path in devices {
        let read = |f: &str| std::fs::read_to_string(path.join(f)).unwrap_or_default();
        if (read("vendor").trim(), read("device").trim()) != EDU {
            continue;
        }
        let bdf = path.file_name()?.to_string_lossy().into_owned();
        if !path.join("driver").exists() {
            let bound = std::fs::write(path.join("driver_override"), "vfio-pci")
                .and_then(|()| std::fs::write("/sys/bus/pci/drivers_probe", &bdf));
            match bound {
                Ok(()) => println!("KTR: {bdf} (edu) bound to vfio-pci"),
                Err(e) => println!("KTR: error: binding {bdf} (edu) to vfio-pci: {e}"),
            }
        }
        first.get_or_insert(bdf);
    }
    first
}

/// kmemleak's control file (a debug kernel; absent elsewhere).
const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";

/// Writes `command` to kmemleak's control file; false without kmemleak.
fn kmemleak(command: &str) -> bool {
    std::fs::write(KMEMLEAK, command).is_ok()
}

/// Scans for leaks (kmemleak reports objects unreferenced for at least 5 s, so it waits that
/// long first) and prints every report: the log checker fails the run on any.
fn leak_scan(when: &str) {
    if !std::path::Path::new(KMEMLEAK).exists() {
        return;
    }
    std::thread::sleep(std::time::Duration::from_secs(6));
    if !kmemleak("scan") {
        println!("KTR: kmemleak: scan {when} failed");
        return;
    }
    let report = std::fs::read_to_string(KMEMLEAK).unwrap_or_default();
    for line in report.lines() {
        println!("KTR: kmemleak: {line}");
    }
    let leaks = report.matches("unreferenced object").count();
    println!("KTR: kmemleak: {leaks} leaks {when}");
}

/// delete_module's O_NONBLOCK: fail at once with EBUSY rather than wait for users to go.
fn libc_o_nonblock() -> i32 {
    OFlags::NONBLOCK.bits() as i32
}
