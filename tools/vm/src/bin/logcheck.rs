// SPDX-License-Identifier: GPL-2.0

//! Host side of a VM run: `logcheck LOG [--no-totals | --nested]` exits 0 if the run passed, 1
//! otherwise (`--no-totals`: a run without TAP; `--nested`: the suite run by kselftest's runner).

use ktr_vm::{check_log, Tap};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: logcheck LOG [--no-totals | --nested]");
        std::process::exit(2);
    };
    let tap = match args.next().as_deref() {
        None => Tap::Suite,
        Some("--no-totals") => Tap::None,
        Some("--nested") => Tap::Nested,
        Some(other) => {
            eprintln!("logcheck: unknown option {other}");
            std::process::exit(2);
        }
    };
    let log = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            eprintln!("logcheck: {path}: {e}");
            std::process::exit(2);
        }
    };
    let v = check_log(&log, tap);
    if let Some(t) = &v.totals {
        println!("{t}");
    }
    for f in &v.failures {
        println!("FAIL: {f}");
    }
    std::process::exit(if v.passed() { 0 } else { 1 });
}
