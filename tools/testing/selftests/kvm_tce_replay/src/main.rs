// SPDX-License-Identifier: GPL-2.0

//! kselftest-style harness of kvm-tce-replay: plays the guest (hcalls as ioctls) and the VMM
//! (capabilities, attach, mmap) against the real module and prints TAP.

#[path = "../../../../../rust/pure/bitwalk.rs"]
#[allow(dead_code)]
mod bitwalk;
#[path = "../../../../../rust/pure/dma.rs"]
#[allow(dead_code)]
mod dma;
#[path = "../../../../../rust/pure/hwmap.rs"]
#[allow(dead_code)]
mod hwmap;
#[path = "../../../../../rust/pure/memslots.rs"]
#[allow(dead_code)]
mod memslots;
#[path = "../../../../../rust/pure/window.rs"]
#[allow(dead_code)]
mod window;

// The ABI is the client crate's (the same rust/pure files), mounted where the pure files and the
// cases look for it.
use kvm_tce_replay::{uapi, uapi_test};

mod bench;
mod cases;
mod fixture;
mod isolate;
mod tap;

#[cfg(test)]
mod header_check;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_device_skips_the_suite() {
        assert_eq!(
            run_on("/nonexistent/kvm-tce-replay", cases::ALL, None),
            tap::KSFT_SKIP
        );
        // A device there and nothing selected: nothing failed.
        assert_eq!(
            run_on("/", cases::ALL, Some("no such case")),
            tap::KSFT_PASS
        );
    }
}
#[cfg(test)]
mod layers;

use tap::Tap;

/// A case's failure or skip, with the reason.
#[derive(Debug)]
pub enum Stop {
    Fail(String),
    Skip(String),
}

impl From<rustix::io::Errno> for Stop {
    fn from(e: rustix::io::Errno) -> Self {
        Stop::Fail(format!("unexpected error {e:?}"))
    }
}

impl From<kvm_tce_replay::Error> for Stop {
    fn from(e: kvm_tce_replay::Error) -> Self {
        e.errno().into()
    }
}

/// What a case returns.
pub type CaseResult = Result<(), Stop>;

/// Fails the case with a message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::Stop::Fail(format!("{} (at {}:{})", format!($($msg)+), file!(), line!())));
        }
    };
}

/// Fails the case unless `left == right`.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr $(,)?) => {{
        let (l, r) = (&$left, &$right);
        $crate::ensure!(l == r, "{} == {:?}, expected {:?}", stringify!($left), l, r);
    }};
}

/// Prints a kselftest diagnostic line (`# ...`).
#[macro_export]
macro_rules! diag {
    ($($arg:tt)+) => {
        println!("# {}", format!($($arg)+))
    };
}

fn run(cases: &[cases::Case], filter: Option<&str>) -> i32 {
    run_on(kvm_tce_replay::DEVICE, cases, filter)
}

/// Runs the selected `cases` against the device at `device`, each isolated in a child.
fn run_on(device: &str, cases: &[cases::Case], filter: Option<&str>) -> i32 {
    let selected: Vec<_> = cases
        .iter()
        .filter(|(name, _)| filter.is_none_or(|f| name.contains(f)))
        .collect();
    // No device, nothing to test: the whole suite is skipped, as kselftests do.
    if !std::path::Path::new(device).exists() {
        println!("TAP version 13");
        println!("1..0 # SKIP {device}: no such device (is the module loaded?)");
        return tap::KSFT_SKIP;
    }
    let mut tap = Tap::new(selected.len());
    for (name, case) in selected {
        tap.result(name, &isolate::run(*case, isolate::LIMIT));
    }
    tap.finish()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("test");
    let num = |i: usize| -> u64 { args.get(i).and_then(|a| a.parse().ok()).unwrap_or(0) };
    let code = match mode {
        "test" => run(cases::ALL, args.get(1).map(String::as_str)),
        "bench" => bench::run(),
        "profile" => bench::profile(
            args.get(1).map_or("scattered", String::as_str),
            num(2).max(1),
        ),
        "fuzz" => cases::fuzz::main(),
        "child-touch" => cases::mmap::child_touch(num(1) as usize, num(2) as usize),
        "child-memlock" => cases::hostile::child_memlock(num(1)),
        "child-attach" => cases::hostile::child_attach(num(1) as i32),
        "child-foreign" => cases::hostile::child_foreign(num(1) as i32, num(2) as i32),
        _ => {
            eprintln!(
                "usage: kvm_tce_replay_test [test [FILTER] [seed=N] | bench | profile SCENARIO SECONDS | fuzz [seed=N] [time=S]]"
            );
            2
        }
    };
    std::process::exit(code);
}
