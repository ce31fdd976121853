// SPDX-License-Identifier: GPL-2.0

//! Host side of a VM run: `logcheck LOG [--no-totals | --nested]` exits 0 if the run passed, 1
//! otherwise (`--no-totals`: a run without TAP; `--nested`: the suite run by kselftest's runner).

use ktr_vm::{check_log, Mode};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(mode)) = (args.next(), args.next()) else {
        eprintln!("usage: logcheck LOG MODE");
        std::process::exit(2);
    };
    let Some(tap) = Mode::from_name(&mode).map(Mode::tap) else {
        eprintln!("logcheck: unknown mode {mode}");
        std::process::exit(2);
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
