// SPDX-License-Identifier: GPL-2.0

//! `kvm_tce_replay_test`, the kselftest program: runs every case (or those whose names contain
//! FILTER) against the loaded module, each in a child of its own, and prints TAP with its
//! `# Totals:` line; exits with kselftest's codes (KSFT_SKIP without the device).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let first = args.first().map(String::as_str);
    if let Some(mode) = first {
        kvm_tce_replay_test::run_child(mode, &args[1..]);
    }
    if first.is_some_and(|a| a.starts_with('-')) {
        eprintln!("usage: kvm_tce_replay_test [FILTER] [seed=N] [sequences=N] [stress=SECONDS]");
        std::process::exit(2);
    }
    // Arguments of the form key=value are the cases' own (read where they are used).
    let filter = first.filter(|a| !a.contains('='));
    std::process::exit(kvm_tce_replay_test::run_suite(filter));
}
