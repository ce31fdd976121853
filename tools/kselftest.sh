#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The kselftest target as a kernel tree takes it: links the Makefile, config files and settings of
# tools/testing/selftests/kvm_tce_replay/ into the cached kernel source's selftests, then builds
# and installs it with the kernel's own selftests Makefile (static binaries, for the VM's
# initramfs, which has no libc). Prints the installed kselftest tree (run_kselftest.sh and
# kselftest-list.txt at its top) on stdout. Runs inside the toolchain root.
# Usage: kselftest.sh [ARCH] (x86_64: the other test VMs have no shell to run it with).
. "$(dirname "$0")/lib.sh"

arch=${1:-x86_64}
[ "$arch" = x86_64 ] || die "kselftest: x86_64 only"
"$TOP/tools/kernel/build.sh" "$arch" >/dev/null
srcdir=$(kernel_source)
ours="$TOP/tools/testing/selftests/kvm_tce_replay"
out="$CHECKOUT/kselftest-$arch"

# The links in the shared source follow this checkout while it builds and installs.
exec 9>"$CACHE/kselftest.lock"
flock 9
target="$srcdir/tools/testing/selftests/kvm_tce_replay"
rm -rf "$target"
mkdir -p "$target"
for f in Makefile config config.ppc64le settings .gitignore; do
	ln -s "$ours/$f" "$target/$f"
done
log "kselftest: make -C $srcdir/tools/testing/selftests TARGETS=kvm_tce_replay O=$out/build install"
rm -rf "$out/install"
RUSTFLAGS="-C target-feature=+crt-static" \
	make -s -C "$srcdir/tools/testing/selftests" TARGETS=kvm_tce_replay ARCH="$arch" \
	O="$out/build" KSFT_INSTALL_PATH="$out/install" install >&2 ||
	die "kselftest: build or install failed"
list=$(cat "$out/install/kselftest-list.txt")
[ "$list" = "kvm_tce_replay:kvm_tce_replay_test" ] || die "kselftest: unexpected test list: $list"
log "kselftest: installed in $out/install: $(cd "$out/install" && find . -type f | sort | tr '\n' ' ')"
echo "$out/install"
