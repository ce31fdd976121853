#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`: boots the VM of ARCH in benchmark mode and writes the table and the CSV to
# tools/bench/results/ARCH/. Runs inside the toolchain root; never fails on a missed target.
. "$(dirname "$0")/lib.sh"

arch=${1:-x86_64}
if [ "$arch" = nested ]; then
	# The nested run's figures (cases/nested.rs): QEMU on KVM-HV in the powernv VM, edu
	# hot-plugged into windows of 2^16 to 2^24 TCEs, KVM's tables beside the module's. The raw
	# console log is kept with the table.
	out="$TOP/tools/bench/results/powernv/nested"
	if [ "${BENCH_REPORT_ONLY:-}" != 1 ]; then
		TIMEOUT=${TIMEOUT:-3600} "$TOP/tools/vm/run.sh" powernv bench nested
		mkdir -p "$out"
		cp "$(vm_log powernv bench)" "$out/console.log"
	fi
	python3 "$TOP/tools/bench/nested-report.py" "$out/console.log" "$out"
	"$CHECKOUT/target/release/benchplot" --nested "$out/bench.csv" "$out/bench.png" \
		/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
	log "bench: wrote $out/bench.md, $out/bench.csv and $out/bench.png (raw: $out/console.log)"
	exit 0
fi
if [ "${BENCH_REPORT_ONLY:-}" != 1 ]; then
	TIMEOUT=${TIMEOUT:-3600} "$TOP/tools/vm/run.sh" "$arch" bench
fi
out="$TOP/tools/bench/results/$arch"
"$CHECKOUT/target/release/benchreport" "$(vm_log "$arch" bench)" "$out"
"$CHECKOUT/target/release/benchplot" "$(vm_log "$arch" bench)" "$out/bench.png" \
	/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
log "bench: wrote $out/bench.md, $out/bench.csv, $out/bench.png (and curve.png when measured); Documentation/benchmark.rst includes the table"
