#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make profile`: the benchmark's replay scenarios on UML (kernel code runs natively as a host
# process), sampled from the host side with perf (software clock: there is no hardware PMU
# here). For each scenario it writes tools/bench/results/um/profile-SCENARIO.txt (perf report:
# the top symbols with their call chains) and profile-SCENARIO.svg (a flame graph). Runs inside
# the toolchain root, whose mount namespace also holds the UML binary perf must read.
. "$(dirname "$0")/lib.sh"

secs=${SECONDS_PER_SCENARIO:-12}
out="$TOP/tools/bench/results/um"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Build first, so that the VM's boot is all that runs before the samples.
"$TOP/tools/kernel/build.sh" um >/dev/null
"$TOP/tools/userspace.sh" x86_64 >/dev/null
log=$(vm_log um profile)
for scenario in ${SCENARIOS:-scattered dense contiguous}; do
	rm -f "$log"
	log "profile: $scenario: booting UML, then $secs s of replays under perf"
	"$TOP/tools/vm/run.sh" um profile "$scenario" "$secs" >"$tmp/vm.out" 2>&1 &
	vm=$!
	until grep -q '^profile: start' "$log" 2>/dev/null; do
		kill -0 "$vm" 2>/dev/null || { cat "$tmp/vm.out" >&2; die "profile: the VM ended before the replays"; }
		sleep 0.2
	done
	pid=$(pgrep -o -f "^$CACHE/kernel-um-.*/image") || die "profile: no UML kernel process"
	perf record -q -e cpu-clock -F 4999 -g -p "$pid" -o "$tmp/perf.data" -- sleep $((secs - 1)) 2>/dev/null
	wait "$vm" || { cat "$tmp/vm.out" >&2; die "profile: the VM run failed"; }
	replays=$(sed -n 's/^profile: stop: //p' "$log")
	{
		echo "# make profile: $scenario on UML, $replays (perf record -e cpu-clock -F 4999 -g, $((secs - 1)) s)"
		echo "# top symbols (self time), each with its call chains, callers last, folded"
		perf report -i "$tmp/perf.data" --stdio --no-children --sort sym --percent-limit 2 \
			--max-stack 12 -g folded,1,callee 2>/dev/null | grep -v -e '^$' -e '^# [^Oo.]' |
			"$CHECKOUT/target/release/flamegraph" demangle
	} >"$out/profile-$scenario.txt"
	perf script -i "$tmp/perf.data" >"$tmp/script.txt" 2>/dev/null
	"$CHECKOUT/target/release/flamegraph" "$tmp/script.txt" "$out/profile-$scenario.svg" \
		"kvm-tce-replay replay on UML: $scenario ($replays)"
	log "profile: $scenario: $replays; wrote $out/profile-$scenario.txt and .svg"
	grep -E '^ +[0-9.]+%' "$out/profile-$scenario.txt" | head -8 >&2
done
