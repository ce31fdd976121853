// SPDX-License-Identifier: GPL-2.0

//! `kvm_tce_replay_fuzz [seed=N] [time=SECONDS]`: random sequences of operations against the
//! module and the model until stopped or for `time=` seconds (`make fuzz`); exits 1 on a
//! disagreement, printed shrunk.

fn main() {
    std::process::exit(kvm_tce_replay_test::cases::fuzz::main());
}
