#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`: boots the VM of ARCH in benchmark mode and writes the table and the CSV to
# tools/bench/results/ARCH/. Runs inside the toolchain root; never fails on a missed target.
. "$(dirname "$0")/lib.sh"

arch=${1:-x86_64}
if [ "${BENCH_REPORT_ONLY:-}" != 1 ]; then
	TIMEOUT=${TIMEOUT:-3600} "$TOP/tools/vm/run.sh" "$arch" bench
fi
out="$TOP/tools/bench/results/$arch"
"$CHECKOUT/target/release/benchreport" "$(vm_log "$arch" bench)" "$out"
"$CHECKOUT/target/release/benchplot" "$(vm_log "$arch" bench)" "$out/bench.png" \
	/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
log "bench: wrote $out/bench.md, $out/bench.csv, $out/bench.png (and curve.png when measured); Documentation/benchmark.rst includes the table"
