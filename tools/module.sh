#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds the module out of tree for ARCH against the cached test kernel, with clippy and
# warnings as errors; prints the path of the .ko on stdout. Runs inside the toolchain root.
# Usage: module.sh ARCH [production]: the test configuration (mock backend) by default, the
# production one (no mock, no test ABI) with `production`.
. "$(dirname "$0")/lib.sh"

arch=${1:-x86_64}
config=${2:-test}
mock=1
[ "$config" = test ] || mock=0
kdir=$("$TOP/tools/kernel/build.sh" "$arch")
case $arch in x86_64) karch=x86_64 ;; ppc64le) karch=powerpc ;; esac
out="$CHECKOUT/module-$arch-$config"
mkdir -p "$out"
start=$(date +%s.%N)
make -s -C "$kdir" M="$TOP/rust" MO="$out" ARCH="$karch" LLVM=-19 CLIPPY=1 KRUSTFLAGS=-Dwarnings \
	KTR_MOCK=$mock modules >&2 ||
	die "module build failed"
log "module: built $arch ($config configuration) with clippy in $(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)") s"
echo "$out/kvm_tce_replay.ko"
