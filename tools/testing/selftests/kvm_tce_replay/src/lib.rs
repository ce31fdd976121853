// SPDX-License-Identifier: GPL-2.0

//! kselftest-style harness of kvm-tce-replay: the cases that play the guest (hcalls as ioctls)
//! and the VMM (capabilities, attach, mmap) against the real module, with what its three programs
//! share: the test (`kvm_tce_replay_test`, TAP), the benchmark (`kvm_tce_replay_bench`) and the
//! fuzzer (`kvm_tce_replay_fuzz`).

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
#[path = "../../../../../rust/pure/num.rs"]
#[allow(dead_code)]
mod num;
#[path = "../../../../../rust/pure/window.rs"]
#[allow(dead_code)]
mod window;

// The ABI is the client crate's (the same rust/pure files), mounted where the pure files and the
// cases look for it.
use kvm_tce_replay::{uapi, uapi_test};

pub mod bench;
pub mod cases;
mod fixture;
mod isolate;
mod kvm;
pub mod nested_guest;
pub mod tap;
mod vfio;

#[cfg(test)]
mod header_check;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_device_skips_the_suite() {
        assert_eq!(
            run_on("/nonexistent/kvm-tce-replay", cases::all(), None),
            tap::KSFT_SKIP
        );
        // A device there and nothing selected: nothing failed.
        assert_eq!(
            run_on("/", cases::all(), Some("no such case")),
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

/// Fails the case unless `expr` (a `Result` of the client crate or of rustix) failed with errno
/// `E` + `NAME`: `ensure_err!(t.put(0, junk), INVAL)`, as iommufd_utils.h's `test_err_*` check
/// an ioctl's errno.
#[macro_export]
macro_rules! ensure_err {
    ($expr:expr, $errno:ident $(,)?) => {{
        let got = ($expr)
            .map(|_| ())
            .map_err(|e| kvm_tce_replay::Error::from(e).errno());
        $crate::ensure!(
            got == Err(rustix::io::Errno::$errno),
            "{} gave {:?}, expected E{}",
            stringify!($expr),
            got,
            stringify!($errno)
        );
    }};
}

/// Prints a kselftest diagnostic line (`# ...`).
#[macro_export]
macro_rules! diag {
    ($($arg:tt)+) => {
        println!("# {}", format!($($arg)+))
    };
}

/// Runs the cases whose names contain `filter` (all without one) against the module's device;
/// returns the kselftest exit code.
pub fn run_suite(filter: Option<&str>) -> i32 {
    run_on(kvm_tce_replay::DEVICE, cases::all(), filter)
}

/// Runs the selected `cases` against the device at `device`, each isolated in a child; the cases
/// that need the mock backend skip when the module has it off or lacks it.
fn run_on<'a>(
    device: &str,
    cases: impl Iterator<Item = &'a cases::Case>,
    filter: Option<&str>,
) -> i32 {
    let selected: Vec<_> = cases
        .filter(|c| filter.is_none_or(|f| c.name.contains(f)))
        .collect();
    // No device, nothing to test: the whole suite is skipped, as kselftests do.
    if !std::path::Path::new(device).exists() {
        println!("TAP version 13");
        println!("1..0 # SKIP {device}: no such device (is the module loaded?)");
        return tap::KSFT_SKIP;
    }
    let mock = if selected.iter().any(|c| c.needs == cases::Needs::Mock) {
        kvm_tce_replay::TceReplay::new_with_path(device).map(|d| d.mock_backend())
    } else {
        Ok(kvm_tce_replay::MockBackend::Available)
    };
    let mut tap = Tap::new(selected.len());
    for case in selected {
        let outcome = match (case.needs, &mock) {
            (cases::Needs::Mock, Ok(kvm_tce_replay::MockBackend::Disabled)) => {
                tap::Outcome::Skip("the mock backend is off (module parameter mock=0)".into())
            }
            (cases::Needs::Mock, Ok(kvm_tce_replay::MockBackend::Absent)) => tap::Outcome::Skip(
                "no mock backend (a module built without CONFIG_KVM_TCE_REPLAY_MOCK)".into(),
            ),
            _ => isolate::run(case.run, isolate::LIMIT),
        };
        tap.result(case.name, &outcome);
    }
    tap.finish()
}

/// The helpers a case runs in a child process of its own (`/proc/self/exe child-... ARGS`): runs
/// the one `mode` names, which exits; returns if `mode` names none.
pub fn run_child(mode: &str, args: &[String]) {
    let num = |i: usize| -> u64 { args.get(i).and_then(|a| a.parse().ok()).unwrap_or(0) };
    match mode {
        "child-touch" => cases::mmap::child_touch(num(0) as i32, num(1) as usize, num(2) as usize),
        "child-memlock" => cases::hostile::child_memlock(num(0)),
        "child-attach" => cases::hostile::child_attach(num(0) as i32),
        "child-indirect" => cases::hostile::child_indirect(num(0) as i32),
        "child-foreign" => cases::hostile::child_foreign(num(0) as i32, num(1) as i32),
        _ => {}
    }
}
