// SPDX-License-Identifier: GPL-2.0

//! The VM's /init: mounts proc, sys, devtmpfs and debugfs, loads the module with finit_module
//! (unless the kernel has it built in, as the UML kernel does), runs the harness in the mode the
//! kernel command line names (`ktr.mode=`; the demo mode runs `ktr probe` and `ktr demo`, the
//! CLI), reports the taint, unloads the module with delete_module and powers off. Prints `KTR:`
//! marker lines.

use rustix::fs::{open, Mode, OFlags};
use rustix::mount::{mount, MountFlags};
use rustix::system::{delete_module, finit_module, reboot, RebootCommand};
use std::process::Command;

const MODULE: &str = "/kvm_tce_replay.ko";
const MODULE_NAME: &std::ffi::CStr = c"kvm_tce_replay";
const HARNESS: &str = "/bin/kvm_tce_replay_test";
const KTR: &str = "/bin/ktr";
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
}

/// `ktr.mode=` and `ktr.args=` (comma separated) from the kernel command line.
fn command_line() -> (String, Vec<String>) {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let mut mode = String::from("test");
    let mut args = Vec::new();
    for word in cmdline.split_whitespace() {
        if let Some(m) = word.strip_prefix("ktr.mode=") {
            mode = m.to_string();
        } else if let Some(a) = word.strip_prefix("ktr.args=") {
            args = a
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
    }
    (mode, args)
}

fn load_module() -> Loaded {
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
    match finit_module(&fd, c"mock=1", 0) {
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
    let (mode, args) = command_line();
    // What boot left behind is not ours: forget it before the module runs.
    kmemleak("clear");
    let loaded = load_module();
    if loaded != Loaded::No {
        // Each program in turn until one fails; the last status is the run's.
        let mut exit = "0".to_string();
        for (program, argv) in programs(&mode, &args) {
            match Command::new(program).args(&argv).status().map(|s| s.code()) {
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
/// `ktr demo`; every other mode is the harness's.
fn programs(mode: &str, args: &[String]) -> Vec<(&'static str, Vec<String>)> {
    if mode == "demo" {
        vec![(KTR, vec!["probe".into()]), (KTR, vec!["demo".into()])]
    } else {
        let argv = std::iter::once(mode.to_string()).chain(args.iter().cloned());
        vec![(HARNESS, argv.collect())]
    }
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
