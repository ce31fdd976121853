// SPDX-License-Identifier: GPL-2.0

//! Assembles, for a powerpc64 target, the KVM oracle's guest (src/kvm/guest.s) into the flat
//! image src/kvm.rs loads at guest-physical 0, and its VMM's KVM_RUN call (src/kvm/run.s) into a
//! static library, with binutils (the toolchain root's powerpc64le-linux-gnu-*, or the native
//! ones on a POWER host). Elsewhere, where no KVM-HV can run it, the image is empty.

use std::path::PathBuf;
use std::process::Command;

fn run(tool: &str, args: &[&str]) {
    let status = Command::new(tool)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(status.success(), "{tool} {args:?}: {status}");
}

fn main() {
    const SRC: &str = "src/kvm/guest.s";
    const RUN: &str = "src/kvm/run.s";
    println!("cargo::rerun-if-changed={SRC}");
    println!("cargo::rerun-if-changed={RUN}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let image = out.join("guest.bin");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("powerpc64") {
        std::fs::write(&image, []).expect("OUT_DIR is writable");
        return;
    }
    let prefix = if cfg!(target_arch = "powerpc64") {
        ""
    } else {
        "powerpc64le-linux-gnu-"
    };
    let obj = out.join("guest.o");
    let (obj, image) = (obj.to_str().unwrap(), image.to_str().unwrap());
    run(
        &format!("{prefix}as"),
        &["--fatal-warnings", "-mpower9", "-mlittle", SRC, "-o", obj],
    );
    run(
        &format!("{prefix}objcopy"),
        &["-O", "binary", "-j", ".text", obj, image],
    );
    let run_obj = out.join("run.o");
    let lib = out.join("libktr_kvm_run.a");
    let (run_obj, lib_path) = (run_obj.to_str().unwrap(), lib.to_str().unwrap());
    run(
        &format!("{prefix}as"),
        &[
            "--fatal-warnings",
            "-mpower9",
            "-mlittle",
            RUN,
            "-o",
            run_obj,
        ],
    );
    let _ = std::fs::remove_file(&lib);
    run(&format!("{prefix}ar"), &["crs", lib_path, run_obj]);
    println!("cargo::rustc-link-search=native={}", out.display());
    println!("cargo::rustc-link-lib=static=ktr_kvm_run");
}
