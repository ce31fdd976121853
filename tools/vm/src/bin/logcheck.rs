// SPDX-License-Identifier: GPL-2.0

//! Host side of a VM run: `logcheck LOG [--no-totals]` exits 0 if the run passed, 1 otherwise.

use ktr_vm::check_log;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: logcheck LOG [--no-totals]");
        std::process::exit(2);
    };
    let need_totals = args.next().as_deref() != Some("--no-totals");
    let log = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            eprintln!("logcheck: {path}: {e}");
            std::process::exit(2);
        }
    };
    let v = check_log(&log, need_totals);
    if let Some(t) = &v.totals {
        println!("{t}");
    }
    for f in &v.failures {
        println!("FAIL: {f}");
    }
    std::process::exit(if v.passed() { 0 } else { 1 });
}
