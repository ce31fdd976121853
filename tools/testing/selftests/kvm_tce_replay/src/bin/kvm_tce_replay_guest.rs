// SPDX-License-Identifier: GPL-2.0

//! `kvm_tce_replay_guest`, the /init of the nested run's L2 pseries guest (the powernv VM's
//! QEMU on KVM-HV runs it): see the library's `nested_guest`.

fn main() {
    kvm_tce_replay_test::nested_guest::main()
}
