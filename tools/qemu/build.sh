#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds qemu-system-ppc64 (TCG, pseries, minimal devices) from Debian trixie's QEMU source
# with the tce-replay series of tools/qemu/ applied. The source (unpacked by dpkg-source, with
# Debian's patches) is cached in $CACHE/qemu-<version>, the build in
# $CACHE/qemu-build-<version>-<key>, keyed by the series, the device list and this script.
# Runs inside the toolchain root (tools/run-in-root); prints the binary's path on stdout.
. "$(dirname "$0")/../lib.sh"

here="$TOP/tools/qemu"

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
key=$( (cd "$here" && cat series $patches ppc64-softmmu.mak && echo "${config[*]}") | sha256sum | cut -c1-12)
out="$CACHE/qemu-build-$ver-$key"
# Out of the build directory: from there QEMU would look for firmware in build/qemu-bundle.
bin="$out/bin/qemu-system-ppc64"
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
	log "qemu: configure (ppc64-softmmu, TCG, no default features or devices)"
	(cd "$out/build" && ../configure "${config[@]}" >"$out/configure.log" 2>&1) ||
		{ tail -30 "$out/configure.log" >&2; die "configure failed (log: $out/configure.log)"; }
	log "qemu: compiling (nice -n 19, -j2)"
	(cd "$out/build" && nice -n 19 ninja -j2 qemu-system-ppc64 2>&1) | tee "$out/build.log" | progress || true
	[ -x "$out/build/qemu-system-ppc64" ] || die "qemu build failed (log: $out/build.log)"
	install -D "$out/build/qemu-system-ppc64" "$bin"
	touch "$out/.complete"
	log "qemu: built in $(( $(date +%s) - start )) s"
fi
echo "$bin"
