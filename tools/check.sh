#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make check`: host unit tests, formatting and lints, the capability-number check against the
# kernel's uapi, the module built with clippy, and the harness run in the VM of each ARCH.
# Runs inside the toolchain root.
. "$(dirname "$0")/lib.sh"

# powernv: the ppc64le kernel, module and programs on a POWER9 host (skiboot, PHB4 IODA tables).
arches=${ARCHES:-x86_64 ppc64le powernv um}
start=$(date +%s)
export CARGO_TARGET_DIR="$CHECKOUT/target"

log "check: rustfmt (module and userspace)"
rustfmt --check --config-path "$TOP/.rustfmt.toml" "$TOP/rust/kvm_tce_replay_main.rs"
cargo fmt --manifest-path "$TOP/tools/Cargo.toml" --all --check

# The workspace's tests include the client crate's doc tests (cargo test --doc), with its mock
# feature on (the harness and ktr enable it).
log "check: host unit tests (shared pure logic, client crate and its doc tests, ktr, harness helpers, uapi header, log checker)"
host=$(cargo test -q --locked --manifest-path "$TOP/tools/Cargo.toml" 2>&1) || { echo "$host" >&2; die "host unit tests failed"; }
echo "$host" | grep -E '^test result' >&2
passed=$(echo "$host" | sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' | paste -sd+ | bc)

log "check: clippy on the userspace crates"
cargo clippy -q --locked --manifest-path "$TOP/tools/Cargo.toml" --all-targets -- -D warnings
# The client crate without its mock feature, and its documentation (every public item is
# documented: #![deny(missing_docs)]; no broken links).
cargo clippy -q --locked --manifest-path "$TOP/tools/Cargo.toml" -p kvm-tce-replay --all-targets -- -D warnings
RUSTDOCFLAGS=-Dwarnings cargo doc -q --locked --no-deps --manifest-path "$TOP/tools/Cargo.toml" \
	-p kvm-tce-replay --all-features

srcdir=$(kernel_source)
log "check: KVM_CAP_SPAPR_TCE_REPLAY against every KVM_CAP_* of $(basename "$srcdir")'s uapi"
ours=$(sed -n 's/^#define KVM_CAP_SPAPR_TCE_REPLAY \(0x[0-9a-fA-F]*\).*/\1/p' "$TOP/include/uapi/linux/kvm_tce_replay.h")
[ -n "$ours" ] || die "KVM_CAP_SPAPR_TCE_REPLAY not found in the header"
caps=$(grep -hE '^#define KVM_CAP_[A-Z0-9_]+ +[0-9]+' "$srcdir"/include/uapi/linux/kvm.h "$srcdir"/arch/*/include/uapi/asm/kvm.h | awk '{print $3}')
[ "$(echo "$caps" | wc -l)" -gt 200 ] || die "too few KVM_CAP_* found: $(echo "$caps" | wc -l)"
if echo "$caps" | grep -qx "$((ours))"; then die "KVM_CAP_SPAPR_TCE_REPLAY ($ours) collides with a KVM capability"; fi
log "check: $((ours)) is not among $(echo "$caps" | wc -l) KVM capabilities (highest $(echo "$caps" | sort -n | tail -1))"

# The production configuration builds too (no mock backend, no test ABI), warnings as errors.
for arch in $arches; do
	case $arch in um | powernv) continue ;; esac
	log "check: the production module for $arch (no mock) with clippy"
	"$TOP/tools/module.sh" "$arch" production >/dev/null
done

for arch in $arches; do
	# On x86_64 the suite runs as kselftest runs it: built and installed by the kernel tree's
	# selftests Makefile, run by the installed tree's run_kselftest.sh (its TAP nested in the
	# runner's, behind "# ").
	mode=test how=""
	[ "$arch" != x86_64 ] || mode=kselftest how=" through the installed kselftest tree"
	log "check: VM suite on $arch$how"
	"$TOP/tools/vm/run.sh" "$arch" "$mode"
	vmlog=$(vm_log "$arch" "$mode")
	# The suite's Totals line, which the log checker picks by the mode's TAP (ktr_vm::Mode).
	vm=$("$CHECKOUT/target/release/logcheck" "$vmlog" "$mode" |
		sed -n 's/^\(# \)*# Totals: pass:\([0-9]*\) .*/\2/p' | head -1)
	[ -n "$vm" ] || die "no Totals line of the suite in $vmlog"
	# With the module built in (um), its KUnit suite ran at boot too.
	kunit=$(sed -n 's/.*# kvm_tce_replay: pass:\([0-9]*\) .*/\1/p' "$vmlog" | tail -1)
	passed=$((passed + vm + ${kunit:-0}))
	if [ "$arch" = um ]; then
		# The module without its mock backend: the cases that need it skip, the others pass.
		log "check: VM suite on um with the module's mock parameter off"
		MOCK=0 "$TOP/tools/vm/run.sh" um test
		skipped=$(grep -c '^ok .* # SKIP the mock backend is off' "$(MOCK=0 vm_log um test)" || true)
		[ "$skipped" -gt 0 ] || die "with mock=0 no case skipped for want of the mock backend"
		log "check: with mock=0, $skipped cases skipped for want of the mock backend, none failed"
	fi
done
log "check: PASS in $(( $(date +%s) - start )) s ($arches)"
echo "check: $passed passed, 0 failed"
