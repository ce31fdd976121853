// SPDX-License-Identifier: GPL-2.0

//! `kvm_tce_replay_bench`: the replay benchmark (`bench:` lines that the host's benchreport turns
//! into tables, verdicts and plots), or with `profile SCENARIO SECONDS` one of its scenarios in a
//! loop for `make profile`, or with `nested` the nested run's figures (`nested,` lines: QEMU on
//! KVM-HV in the powernv VM, edu hot-plugged into windows of 2^16 to 2^24 TCEs, both ways). Not a test: kselftest installs it beside the test without running it.

use kvm_tce_replay_test::bench;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        None => bench::run(),
        Some("profile") => bench::profile(
            args.get(1).map_or("scattered", String::as_str),
            args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1).max(1),
        ),
        Some("nested") => kvm_tce_replay_test::cases::nested_bench(),
        Some(_) => {
            eprintln!("usage: kvm_tce_replay_bench [profile SCENARIO SECONDS | nested]");
            2
        }
    };
    std::process::exit(code);
}
