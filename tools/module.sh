#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds the module out of tree for ARCH against the cached test kernel, with clippy and
# warnings as errors; prints the path of the .ko on stdout. Runs inside the toolchain root.
. "$(dirname "$0")/lib.sh"

arch=${1:-x86_64}
kdir=$("$TOP/tools/kernel/build.sh" "$arch")
case $arch in x86_64) karch=x86_64 ;; ppc64le) karch=powerpc ;; esac
out="$CACHE/module-$arch"
mkdir -p "$out"
start=$(date +%s.%N)
make -s -C "$kdir" M="$TOP/rust" MO="$out" ARCH="$karch" LLVM=-19 CLIPPY=1 KRUSTFLAGS=-Dwarnings modules >&2 ||
	die "module build failed"
log "module: built $arch with clippy in $(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)") s"
echo "$out/kvm_tce_replay.ko"
