#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds the ppc64el sysroot that tools/qemu/build.sh ppc64le cross-builds QEMU against, in
# $CACHE/ppc64el-sysroot-<key> (key: this script, with its package list, and the toolchain
# root's key): Debian trixie's ppc64el packages below, fetched through a private apt state
# (APT::Architecture=ppc64el; the root's apt stays as it is) and unpacked with dpkg-deb -x;
# zlib and pcre2 (8-bit library only), whose ppc64el debs the mirror lacks, cross-built from
# their Debian orig tarballs and installed into it; and busybox-static, so that
# $sysroot/bin/busybox is a static ppc64le busybox (for a guest initramfs). The layout is
# merged-/usr (bin, sbin and lib are links into usr/). The C library is not in it:
# powerpc64le-linux-gnu-gcc --sysroot=$sysroot still takes libc's headers and libraries from
# the root's /usr/powerpc64le-linux-gnu (libc6-dev-ppc64el-cross). pkg-config works on it with
#   PKG_CONFIG_SYSROOT_DIR=$sysroot
#   PKG_CONFIG_LIBDIR=$sysroot/usr/lib/powerpc64le-linux-gnu/pkgconfig:$sysroot/usr/share/pkgconfig
# Runs inside the toolchain root (tools/run-in-root); prints the sysroot's path on stdout.
. "$(dirname "$0")/../lib.sh"

triplet=powerpc64le-linux-gnu
# What QEMU links (glib, libfdt; pixman and zstd for a build with more features) with the
# -dev packages their .pc files require, and busybox.
pkgs=(libglib2.0-0t64 libglib2.0-dev libgio-2.0-dev libsysprof-capture-4-dev libffi8 libffi-dev
	libmount1 libmount-dev libblkid1 libblkid-dev libselinux1 libselinux1-dev libsepol-dev
	libfdt1 libfdt-dev libpixman-1-0 libpixman-1-dev libzstd1 libzstd-dev busybox-static)
# Cross-built from source: Debian's source package names.
srcpkgs=(zlib pcre2)

key=$( (cat "$TOP/tools/qemu/sysroot.sh"; echo "$ROOT_KEY") | sha256sum | cut -c1-12)
sys="$CACHE/ppc64el-sysroot-$key"
exec 9>"$sys.lock"
flock 9 # one build of a given sysroot at a time
if [ -e "$sys/.complete" ]; then
	echo "$sys"
	exit 0
fi
start=$(date +%s)
log "sysroot: building the ppc64el sysroot in $sys"

# The private apt state: ppc64el binary packages and the sources, trixie main.
apt="$CACHE/ppc64el-apt"
mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial"
touch "$apt/state/status"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$apt/sources.list" <<SRC
deb [arch=ppc64el signed-by=$keyring] http://deb.debian.org/debian trixie main
deb-src [signed-by=$keyring] http://deb.debian.org/debian trixie main
SRC
opts=(-o Dir::State="$apt/state" -o Dir::State::status="$apt/state/status"
	-o Dir::Cache="$apt/cache" -o Dir::Etc::SourceList="$apt/sources.list"
	-o Dir::Etc::SourceParts=/nonexistent -o APT::Architecture=ppc64el
	-o APT::Architectures=ppc64el -o APT::Sandbox::User=root)
log "sysroot: apt-get update (ppc64el, trixie main)"
for i in 1 2 3 4 5; do
	apt-get "${opts[@]}" update -qq >"$apt/update.log" 2>&1 && break
	[ "$i" -lt 5 ] || { tail -5 "$apt/update.log" >&2; die "apt-get update (ppc64el) failed"; }
	sleep 5
done

rm -rf "$sys"
mkdir -p "$sys"
dl="$sys.dl"
rm -rf "$dl"
mkdir -p "$dl/debs" "$dl/src" "$dl/build"
log "sysroot: downloading ${#pkgs[@]} ppc64el packages"
(cd "$dl/debs" && apt-get "${opts[@]}" download -qq "${pkgs[@]}" >"$dl/download.log" 2>&1) ||
	{ tail -5 "$dl/download.log" >&2; die "apt-get download (ppc64el) failed"; }
for deb in "$dl"/debs/*.deb; do
	dpkg-deb -x "$deb" "$sys"
done
# Merged /usr, as trixie's: whatever a package put in /bin, /sbin or /lib goes to /usr.
for d in bin sbin lib; do
	mkdir -p "$sys/usr/$d"
	if [ -d "$sys/$d" ] && [ ! -L "$sys/$d" ]; then
		cp -a "$sys/$d/." "$sys/usr/$d/"
		rm -rf "${sys:?}/$d"
	fi
	ln -s "usr/$d" "$sys/$d"
done
[ -x "$sys/bin/busybox" ] || die "busybox-static has no usr/bin/busybox"

# zlib and pcre2: the orig tarballs are enough (the mirror may lack a .dsc or Debian's diff, so
# that apt-get source fails on them; what it did fetch it checked against the Sources index).
log "sysroot: downloading the sources of ${srcpkgs[*]}"
(cd "$dl/src" && apt-get "${opts[@]}" source --download-only -qq "${srcpkgs[@]}" >"$dl/source.log" 2>&1) || true
for p in "${srcpkgs[@]}"; do
	ls "$dl/src/${p}_"*.orig.tar.* >/dev/null 2>&1 ||
		{ tail -5 "$dl/source.log" >&2; die "no orig tarball of $p (apt-get source $p)"; }
	mkdir "$dl/build/$p"
	tar -xf "$(ls "$dl/src/${p}_"*.orig.tar.* | head -1)" -C "$dl/build/$p" --strip-components=1
done

# zlib: its own configure script, which takes the cross compiler from CC.
log "sysroot: cross-building zlib"
(
	cd "$dl/build/zlib"
	CC=$triplet-gcc AR=$triplet-ar RANLIB=$triplet-ranlib CFLAGS="-O2 -g0" \
		./configure --prefix=/usr --libdir="/usr/lib/$triplet" --sharedlibdir="/usr/lib/$triplet"
	nice -n 19 make -j2
	make install DESTDIR="$sys"
) >"$dl/zlib.log" 2>&1 || { tail -20 "$dl/zlib.log" >&2; die "zlib cross-build failed (log: $dl/zlib.log)"; }
[ -e "$sys/usr/lib/$triplet/libz.so.1" ] && [ -e "$sys/usr/include/zlib.h" ] ||
	die "zlib did not install (log: $dl/zlib.log)"

# pcre2: autoconf; the 8-bit library (glib's and libselinux's) and its POSIX wrapper only, not
# the 16- and 32-bit ones or pcre2grep and pcre2test.
log "sysroot: cross-building pcre2 (8-bit)"
(
	cd "$dl/build/pcre2"
	CFLAGS="-O2 -g0" ./configure --host=$triplet --prefix=/usr --libdir="/usr/lib/$triplet" \
		--enable-shared --disable-static --enable-pcre2-8 --disable-pcre2-16 --disable-pcre2-32
	nice -n 19 make -j2 libpcre2-8.la libpcre2-posix.la
	make install-libLTLIBRARIES install-includeHEADERS install-nodist_includeHEADERS \
		install-pkgconfigDATA DESTDIR="$sys"
) >"$dl/pcre2.log" 2>&1 || { tail -20 "$dl/pcre2.log" >&2; die "pcre2 cross-build failed (log: $dl/pcre2.log)"; }
rm -f "$sys/usr/lib/$triplet/"*.la
[ -e "$sys/usr/lib/$triplet/libpcre2-8.so.0" ] && [ -e "$sys/usr/include/pcre2.h" ] ||
	die "pcre2 did not install (log: $dl/pcre2.log)"

# Absolute symbolic links point into the build machine: make them relative, inside the sysroot.
find "$sys" -type l -lname '/*' -print0 | while IFS= read -r -d '' l; do
	ln -sfnr "$sys$(readlink "$l")" "$l"
done
# .pc files: some upstreams' (libselinux's, libffi's) say libdir /usr/lib where Debian installs
# in /usr/lib/<triplet>; pkg-config prefixes the rest (prefix=/usr) with PKG_CONFIG_SYSROOT_DIR.
for pc in "$sys/usr/lib/$triplet/pkgconfig/"*.pc; do
	sed -i -e "s|^libdir=/usr/lib\$|libdir=/usr/lib/$triplet|" \
		-e "s|^libdir=\${exec_prefix}/lib\$|libdir=\${exec_prefix}/lib/$triplet|" "$pc"
done

# The check: pkg-config finds what QEMU needs (libfdt has no .pc: QEMU finds it as -lfdt), and a
# program links against it.
log "sysroot: checking pkg-config and a test link"
export PKG_CONFIG_SYSROOT_DIR="$sys"
export PKG_CONFIG_LIBDIR="$sys/usr/lib/$triplet/pkgconfig:$sys/usr/share/pkgconfig"
unset PKG_CONFIG_PATH
mods="glib-2.0 gmodule-no-export-2.0 zlib libpcre2-8 pixman-1 libzstd"
# shellcheck disable=SC2086 # a list of modules
flags=$(pkg-config --cflags --libs $mods) || die "pkg-config on the sysroot failed ($mods)"
cat >"$dl/check.c" <<'C'
#include <glib.h>
#include <zlib.h>
#include <libfdt.h>
int main(void) { g_print("%s %s %p\n", zlibVersion(), fdt_strerror(0), (void *)g_regex_new); return 0; }
C
# shellcheck disable=SC2086 # compiler flags
$triplet-gcc --sysroot="$sys" -o "$dl/check" "$dl/check.c" $flags -lfdt 2>"$dl/check.log" ||
	{ cat "$dl/check.log" >&2; die "a test program does not link against the sysroot"; }
rm -rf "$dl"
touch "$sys/.complete"
log "sysroot: done in $(( $(date +%s) - start )) s ($(du -sh "$sys" | cut -f1))"
echo "$sys"
