#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds the ppc64le guest kernel of tools/qemu/uml-guest.sh's virtio run (guest.config on
# tinyconfig) from the cached kernel source, in $CACHE/qemu-guest-kernel-<version>-<key>; prints
# the vmlinux path. Not tools/kernel/build.sh: that one's kernels are the suite's. Runs inside the
# toolchain root.
. "$(dirname "$0")/../lib.sh"

frag="$TOP/tools/qemu/guest.config"
srcdir=$(kernel_source)
ver=${srcdir##*/src-}
out="$CACHE/qemu-guest-kernel-$ver-$(sha256sum <"$frag" | cut -c1-12)"
exec 9>"$out.lock"
flock 9
if [ ! -e "$out/.complete" ]; then
	start=$(date +%s)
	log "guest-kernel: building the ppc64le virtio guest kernel in $out (nice -n 19; Documentation says how long it takes)"
	rm -rf "$out"
	mkdir -p "$out"
	mk() { nice -n 19 make -C "$srcdir" O="$out" ARCH=powerpc LLVM=-19 "$@"; }
	configure_kernel "$srcdir" "$out" tinyconfig "ARCH=powerpc LLVM=-19" "$frag"
	mk -j2 vmlinux 2>&1 | grep -E '^\s*LD\s.*vmlinux$|error:|warning:' >&2 || true
	[ -e "$out/vmlinux" ] || die "guest kernel build failed"
	touch "$out/.complete"
	log "guest-kernel: built in $(( $(date +%s) - start )) s"
fi
echo "$out/vmlinux"
