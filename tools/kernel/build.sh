#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds the test kernel for ARCH (x86_64, ppc64le or um), cached by source version and config
# fragments. For um (UML, where kernel code runs natively) the module is built in, in tree, through
# the project's Kconfig: the source is a hard-linked copy of the kernel's with drivers/kvm_tce_replay
# pointing at this repository, and the build is brought up to date with the module on every call.
# An ARCH's tools/kernel/ARCH-*.patch (ppc64le: Rust's WARN on powerpc) apply to a hard-linked copy
# of the source, and are part of the cache key.
# Runs inside the toolchain root (tools/run-in-root); prints the kernel build directory on stdout.
. "$(dirname "$0")/../lib.sh"

arch=${1:-x86_64}
base=tinyconfig
frags="$TOP/tools/kernel/common.config $TOP/tools/kernel/$arch.config"
case $arch in
x86_64) karch=x86_64; image=arch/x86/boot/bzImage; targets="bzImage modules" ;;
ppc64le) karch=powerpc; image=vmlinux; targets="vmlinux modules" ;;
um) karch=um; image=linux; targets="linux"; base=defconfig; frags="$TOP/tools/kernel/um.config" ;;
*) die "unknown ARCH $arch (x86_64, ppc64le or um)" ;;
esac

srcdir=$(kernel_source)
ver=${srcdir##*/src-}
patches=$(ls "$TOP/tools/kernel/$arch"-*.patch 2>/dev/null || true)
key=$(cat $frags $patches | sha256sum | cut -c1-12)
if [ -n "$patches" ]; then
	# patch writes each file it changes anew, so the shared source keeps its own.
	tree="$CACHE/src-$arch-$ver-$(cat $patches | sha256sum | cut -c1-12)"
	if [ ! -e "$tree/.complete" ]; then
		log "kernel: making the patched source for $arch (hard links)"
		rm -rf "$tree"
		cp -al "$srcdir" "$tree"
		rm "$tree/.complete"
		for p in $patches; do
			patch -s -p1 -d "$tree" <"$p" || die "${p##*/} does not apply"
		done
		touch "$tree/.complete"
	fi
	srcdir=$tree
fi
if [ "$arch" = um ]; then
	# The kernel's source with the module in tree; the link follows this checkout.
	tree="$CACHE/src-um-$ver"
	if [ ! -e "$tree/.complete" ]; then
		log "kernel: making the in-tree source for um (hard links)"
		rm -rf "$tree"
		cp -al "$srcdir" "$tree"
		rm "$tree/.complete" # the source's marker, hard-linked
		# sed -i writes new files, so the shared source keeps its own.
		sed -i 's|^endmenu$|source "drivers/kvm_tce_replay/Kconfig"\n\nendmenu|' "$tree/drivers/Kconfig"
		sed -i '$a obj-$(CONFIG_KVM_TCE_REPLAY) += kvm_tce_replay/rust/' "$tree/drivers/Makefile"
		touch "$tree/.complete"
	fi
	srcdir=$tree
fi
out="$CACHE/kernel-$arch-$ver-$key"
exec 9>"$out.lock"
flock 9 # one build of a given kernel at a time
# The um kernel builds the module of this checkout.
[ "$arch" != um ] || ln -sfn "$TOP" "$srcdir/drivers/kvm_tce_replay"
# The module's sources as the um kernel was last built with them.
module_sources() { (cd "$TOP" && find Kconfig include rust -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }
if [ ! -e "$out/.complete" ]; then
	start=$(date +%s)
	log "kernel: building $arch ($ver, fragment $key) in $out; minutes (Documentation/testing.rst has the times measured)"
	rm -rf "$out"; mkdir -p "$out"
	mk() { make -C "$srcdir" O="$out" ARCH=$karch LLVM=-19 "$@"; }
	# shellcheck disable=SC2086 # $frags is a list of files
	configure_kernel "$srcdir" "$out" "$base" "ARCH=$karch LLVM=-19" $frags
	mk -j"$(nproc)" $targets 2>&1 | grep -E '^\s*(LD|RUSTC|OBJCOPY)\b.*(vmlinux|bzImage|kernel)$|error|warning:' >&2 || true
	[ -e "$out/$image" ] || die "kernel build failed (rerun: make -C $srcdir O=$out ARCH=$karch LLVM=-19)"
	ln -sf "$image" "$out/image"
	[ "$arch" != um ] || module_sources >"$out/.module-sources"
	touch "$out/.complete"
	log "kernel: built $arch in $(( $(date +%s) - start )) s"
elif [ "$arch" = um ]; then
	# The module is part of this kernel: rebuild what changed. make goes by mtimes, which do not
	# tell one checkout's sources from another's (the link above moves between them): when the
	# module's sources are not those of the last build, its objects go first.
	sources=$(module_sources)
	if [ "$(cat "$out/.module-sources" 2>/dev/null)" != "$sources" ]; then
		rm -rf "$out/drivers/kvm_tce_replay"
	fi
	make -s -C "$srcdir" O="$out" ARCH=$karch LLVM=-19 -j"$(nproc)" $targets >&2 ||
		die "um kernel rebuild failed"
	echo "$sources" >"$out/.module-sources"
fi
echo "$out"
