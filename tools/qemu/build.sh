#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds qemu-system-ppc64 (TCG, pseries, minimal devices) from Debian trixie's QEMU source
# with the tce-replay series of tools/qemu/ applied. The source (unpacked by dpkg-source, with
# Debian's patches) is cached in $CACHE/qemu-<version>, the build in
# $CACHE/qemu-build-<version>-<key>, keyed by the series, the device list and the configure
# options. Runs inside the toolchain root (tools/run-in-root).
#   build.sh [x86_64]  for the root (an x86_64 host), TCG only: prints the binary's path.
#   build.sh ppc64le   cross-built for a ppc64le host (a ppc64le Linux VM), KVM and TCG, against
#       the sysroot of tools/qemu/sysroot.sh, in $CACHE/qemu-build-<version>-ppc64le-<key>.
#       Prints the path of a self-contained tree, <build>/tree, to copy as it is into the root
#       of a ppc64le initramfs: the stripped usr/bin/qemu-system-ppc64, the shared libraries it
#       needs (DT_NEEDED, recursively) at their runtime paths (lib64/ld64.so.2,
#       usr/lib/powerpc64le-linux-gnu/) and usr/share/qemu/{slof,vof}.bin.
. "$(dirname "$0")/../lib.sh"

here="$TOP/tools/qemu"
arch=${1:-x86_64}
case $arch in
x86_64 | ppc64le) ;;
*) die "usage: build.sh [x86_64|ppc64le]" ;;
esac

# Debian's source package, through a private apt state with deb-src lines (the root's own
# sources.list has none and stays as it is). The candidate is trixie's (not backports').
fetch_source() {
	local apt="$CACHE/qemu-apt" opts ver dsc tmp
	mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
	cat >"$apt/sources.list" <<SRC
deb-src http://deb.debian.org/debian trixie main
deb-src http://deb.debian.org/debian trixie-updates main
deb-src http://deb.debian.org/debian-security trixie-security main
SRC
	opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
		-o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache")
	log "qemu: fetching Debian trixie's QEMU source (apt-get source)"
	for i in 1 2 3 4 5; do apt-get "${opts[@]}" update -qq && break; sleep 5; done
	tmp=$(mktemp -d "$CACHE/qemu-dl.XXXX")
	(cd "$tmp" && apt-get "${opts[@]}" source --download-only -qq qemu >/dev/null 2>&1) ||
		{ rm -rf "$tmp"; die "apt-get source qemu failed"; }
	dsc=$(ls "$tmp"/qemu_*.dsc)
	ver=$(sed -n 's/^Version: //p' "$dsc")
	ver=${ver#*:} # no epoch in the path
	# apt checked the files against the signed Sources index; no keyring here.
	dpkg-source --no-check -x "$dsc" "$tmp/src" >"$tmp/dpkg-source.log" 2>&1 ||
		{ tail -5 "$tmp/dpkg-source.log" >&2; rm -rf "$tmp"; die "dpkg-source -x failed"; }
	rm -rf "$CACHE/qemu-$ver"
	mv "$tmp/src" "$CACHE/qemu-$ver"
	rm -rf "$tmp"
	touch "$CACHE/qemu-$ver/.complete"
	log "qemu: unpacked qemu $ver (Debian's patches applied) in $CACHE/qemu-$ver"
}

# The shared libraries FILE needs (its DT_NEEDED entries), one a line.
needed() { "$triplet-readelf" -d "$1" | sed -n 's/^.*(NEEDED).*\[\(.*\)\]$/\1/p'; }

# Makes the self-contained tree of a ppc64le build in $out/tree (see the top).
make_tree() {
	local tree="$out/tree" libdir="usr/lib/$triplet" todo f n lib d
	local search=("$sys/usr/lib/$triplet" "/usr/$triplet/lib")
	declare -A seen=()
	rm -rf "$tree"
	install -D -m 755 "$out/build/qemu-system-ppc64" "$tree/usr/bin/qemu-system-ppc64"
	"$triplet-strip" "$tree/usr/bin/qemu-system-ppc64"
	"$triplet-readelf" -h "$tree/usr/bin/qemu-system-ppc64" |
		grep -q 'Machine:.*PowerPC64' || die "qemu: the binary is not a PowerPC64 ELF"
	mkdir -p "$tree/lib64" "$tree/$libdir" "$tree/usr/share/qemu"
	# The dynamic loader at the binary's PT_INTERP; it finds the libraries in its built-in
	# /usr/lib/<triplet>, which needs no ld.so.cache.
	cp -L "/usr/$triplet/lib/ld64.so.2" "$tree/lib64/ld64.so.2"
	seen[ld64.so.2]=1
	# libgcc_s.so.1 is no DT_NEEDED: glibc dlopens it to unwind in pthread_exit and
	# pthread_cancel.
	todo=("$tree/usr/bin/qemu-system-ppc64" "libgcc_s.so.1")
	while [ ${#todo[@]} -gt 0 ]; do
		f=${todo[0]}
		todo=("${todo[@]:1}")
		if [[ $f == */* ]]; then
			# shellcheck disable=SC2046 # sonames have no blanks
			set -- $(needed "$f")
		else
			set -- "$f"
			f=glibc
		fi
		for n; do
			[ -z "${seen[$n]-}" ] || continue
			seen[$n]=1
			lib=
			for d in "${search[@]}"; do
				[ -e "$d/$n" ] && { lib="$d/$n"; break; }
			done
			[ -n "$lib" ] || die "qemu: $n (needed by ${f##*/}) is neither in $sys nor in /usr/$triplet/lib"
			cp -L "$lib" "$tree/$libdir/$n"
			todo+=("$tree/$libdir/$n")
		done
	done
	# The firmware: SLOF (-M pseries) and VOF (-M pseries,x-vof=on), the root's.
	cp -L /usr/share/qemu/slof.bin /usr/share/qemu/vof.bin "$tree/usr/share/qemu/"
	# The check: each file's DT_NEEDED is in the tree.
	for f in "$tree/usr/bin/qemu-system-ppc64" "$tree/$libdir/"*; do
		for n in $(needed "$f"); do
			[ -e "$tree/$libdir/$n" ] || [ -e "$tree/lib64/$n" ] ||
				die "qemu: $n (needed by ${f##*/}) is not in the tree"
		done
	done
}

# ninja's status lines ([n/N]) as progress lines, one in 100, and every error.
progress() {
	local line
	while IFS= read -r line; do
		if [[ $line =~ ^\[([0-9]+)/([0-9]+)\] ]]; then
			if (( BASH_REMATCH[1] % 100 == 0 || BASH_REMATCH[1] == BASH_REMATCH[2] )); then
				log "qemu: compiled ${BASH_REMATCH[1]}/${BASH_REMATCH[2]}"
			fi
		elif [[ $line == *error:* || $line == FAILED* ]]; then
			printf '%s\n' "$line" >&2
		fi
	done
}

src=$(ls -d "$CACHE"/qemu-[0-9]* 2>/dev/null | head -1 || true)
if [ -z "$src" ] || [ ! -e "$src/.complete" ]; then
	fetch_source
	src=$(ls -d "$CACHE"/qemu-[0-9]* | head -1)
fi
ver=${src##*/qemu-}
patches=$(grep -v -e "^#" -e "^$" "$here/series" || true)
# TCG only, no GUI, docs, tools or user mode; the devices of ppc64-softmmu.mak. Debian's +ds
# source has no firmware blobs: SLOF and VOF come from /usr/share/qemu (qemu-system-ppc of the
# root), hence not relocatable.
config=(--target-list=ppc64-softmmu --without-default-features --without-default-devices
	--with-devices-ppc64=ktr --enable-tcg --enable-fdt=system --disable-docs --disable-tools
	--disable-user --disable-download --disable-install-blobs --disable-werror --prefix=/usr
	--firmwarepath=/usr/share/qemu --disable-relocatable)
cfgenv=()
if [ "$arch" = ppc64le ]; then
	triplet=powerpc64le-linux-gnu
	sys=$("$here/sysroot.sh")
	# KVM too (the point of running on a POWER host), the cross compiler on the sysroot, whose
	# path is in the key: another sysroot, another build. (configure links with the
	# --extra-cflags too.)
	config+=(--enable-kvm --cross-prefix="$triplet-" --extra-cflags="--sysroot=$sys")
fi
key=$( (cd "$here" && cat series $patches ppc64-softmmu.mak && echo "${config[*]}") | sha256sum | cut -c1-12)
if [ "$arch" = ppc64le ]; then
	out="$CACHE/qemu-build-$ver-ppc64le-$key"
	# pkg-config on the sysroot: a wrapper, so that meson finds the same when ninja reruns it.
	cfgenv=(PKG_CONFIG="$out/pkg-config")
else
	out="$CACHE/qemu-build-$ver-$key"
	# Out of the build directory: from there QEMU would look for firmware in build/qemu-bundle.
	bin="$out/bin/qemu-system-ppc64"
fi
exec 9>"$out.lock"
flock 9 # one build of a given series at a time
if [ ! -e "$out/.complete" ]; then
	start=$(date +%s)
	log "qemu: building qemu-system-ppc64 ($ver, series $key) in $out; minutes (tools/qemu/README has the time measured)"
	rm -rf "$out"
	cp -a "$src" "$out"
	rm "$out/.complete" # the source's marker
	for p in $patches; do
		log "qemu: applying $p"
		patch -d "$out" -p1 -s --no-backup-if-mismatch <"$here/$p" || die "$p does not apply"
	done
	cp "$here/ppc64-softmmu.mak" "$out/configs/devices/ppc64-softmmu/ktr.mak"
	mkdir "$out/build"
	if [ "$arch" = ppc64le ]; then
		cat >"$out/pkg-config" <<PC
#!/bin/sh
# pkg-config on the ppc64el sysroot $sys (tools/qemu/build.sh ppc64le).
export PKG_CONFIG_SYSROOT_DIR="$sys"
export PKG_CONFIG_LIBDIR="$sys/usr/lib/$triplet/pkgconfig:$sys/usr/share/pkgconfig"
unset PKG_CONFIG_PATH
exec pkg-config "\$@"
PC
		chmod +x "$out/pkg-config"
		log "qemu: configure (ppc64-softmmu for a ppc64le host, KVM and TCG, no default features or devices)"
	else
		log "qemu: configure (ppc64-softmmu, TCG, no default features or devices)"
	fi
	(cd "$out/build" &&
		env ${cfgenv[@]+"${cfgenv[@]}"} ../configure "${config[@]}" >"$out/configure.log" 2>&1) ||
		{ tail -30 "$out/configure.log" >&2; die "configure failed (log: $out/configure.log)"; }
	log "qemu: compiling (nice -n 19, -j2)"
	(cd "$out/build" && nice -n 19 ninja -j2 qemu-system-ppc64 2>&1) | tee "$out/build.log" | progress || true
	[ -x "$out/build/qemu-system-ppc64" ] || die "qemu build failed (log: $out/build.log)"
	if [ "$arch" = ppc64le ]; then
		make_tree
		log "qemu: the tree $out/tree: $(du -sh "$out/tree" | cut -f1)," \
			"$(ls "$out/tree/usr/lib/$triplet" | wc -l) libraries"
	else
		install -D "$out/build/qemu-system-ppc64" "$bin"
	fi
	touch "$out/.complete"
	log "qemu: built in $(( $(date +%s) - start )) s"
fi
if [ "$arch" = ppc64le ]; then
	echo "$out/tree"
else
	echo "$bin"
fi
