#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds the guest's static userspace (the test, benchmark and fuzzer programs, the nested run's
# L2 /init, the ktr CLI and /init) for ARCH; prints the directory of the binaries on stdout. Runs inside the toolchain root.
. "$(dirname "$0")/lib.sh"

arch=${1:-x86_64}
export CARGO_TARGET_DIR="$CHECKOUT/target"
case $arch in
x86_64)
	target=x86_64-unknown-linux-gnu
	extra=()
	;;
ppc64le)
	target=powerpc64le-unknown-linux-gnu
	export RUSTC_BOOTSTRAP=1
	export CARGO_TARGET_POWERPC64LE_UNKNOWN_LINUX_GNU_LINKER=powerpc64le-linux-gnu-gcc
	extra=(-Zbuild-std=std,panic_abort)
	;;
*) die "unknown ARCH $arch" ;;
esac
log "userspace: building the test, benchmark and fuzzer, ktr and /init for $arch"
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --locked --release \
	--manifest-path "$TOP/tools/Cargo.toml" --target "$target" "${extra[@]}" \
	-p kvm_tce_replay_test -p ktr -p ktr-vm --bin kvm_tce_replay_test --bin kvm_tce_replay_bench \
	--bin kvm_tce_replay_fuzz --bin kvm_tce_replay_guest --bin ktr --bin init >&2 ||
	die "userspace build failed"
# The host's log checker.
cargo build -q --locked --release --manifest-path "$TOP/tools/Cargo.toml" -p ktr-vm --bin logcheck --bin benchreport --bin benchplot --bin flamegraph >&2 ||
	die "logcheck build failed"
echo "$CARGO_TARGET_DIR/$target/release"
