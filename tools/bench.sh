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
"$CHECKOUT/target/release/benchreport" "$CHECKOUT/logs/$arch-bench.log" "$out"
"$CHECKOUT/target/release/benchplot" "$CHECKOUT/logs/$arch-bench.log" "$out/bench.png" \
	/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
# The README shows the latest table of each architecture between its markers.
awk -v a="$arch" -v f="$out/bench.md" '
	$0 == "<!-- bench:" a " -->" { print; while ((getline l < f) > 0) print l; skip = 1; next }
	$0 == "<!-- /bench:" a " -->" { skip = 0 }
	!skip' "$TOP/README.md" >"$TOP/README.md.new" && mv "$TOP/README.md.new" "$TOP/README.md"
log "bench: wrote $out/bench.md, $out/bench.csv, $out/bench.png (and curve.png when measured), and the table in README.md"
