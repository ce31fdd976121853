# SPDX-License-Identifier: GPL-2.0
# Shared shell helpers for the build and VM scripts: cache paths and the chroot runner.

set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KTR_CACHE:-/var/cache/kvm-tce-replay}
ROOT_PKGS="$TOP/tools/toolchain/packages.txt"
# The toolchain root is keyed by its package list and the script that makes it.
ROOT_KEY=$(cat "$ROOT_PKGS" "$TOP/tools/toolchain/mkroot.sh" | sha256sum | cut -c1-16)
TROOT="$CACHE/root-$ROOT_KEY"
# What a checkout builds and logs (the userspace's cargo target, the out-of-tree module builds,
# the VM logs) lives apart from what another checkout sharing the cache does, so that two never
# overwrite each other's binaries in the middle of a run.
CHECKOUT="$CACHE/checkout-$(printf %s "$TOP" | sha256sum | cut -c1-12)"

# The host's CPU model, as /proc/cpuinfo names it (x86: "model name", POWER: "cpu").
host_cpu() { sed -n 's/^\(model name\|cpu\)[[:space:]]*: //p' /proc/cpuinfo | head -1; }

# The unpacked Debian linux-source-7.3 of the cache, fetched and unpacked on first use; prints its
# directory ($CACHE/src-VERSION).
kernel_source() {
	local srcdir dl deb ver
	srcdir=$(ls -d "$CACHE"/src-[0-9]* 2>/dev/null | head -1 || true)
	if [ -z "$srcdir" ] || [ ! -e "$srcdir/.complete" ]; then
		log "kernel: fetching Debian's linux-source-7.3"
		dl=$(mktemp -d "$CACHE/dl.XXXX")
		(cd "$dl" && apt-get download -qq linux-source-7.3 >/dev/null) ||
			(apt-get update -qq && cd "$dl" && apt-get download -qq linux-source-7.3 >/dev/null)
		deb=$(ls "$dl"/linux-source-7.3_*.deb)
		ver=$(dpkg-deb -f "$deb" Version)
		srcdir="$CACHE/src-$ver"
		rm -rf "$srcdir"; mkdir -p "$srcdir"
		dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards '*/linux-source-7.3.tar.xz' |
			tar -xJ -C "$srcdir" --strip-components=1
		rm -rf "$dl"
		touch "$srcdir/.complete"
		log "kernel: unpacked linux-source $ver"
	fi
	echo "$srcdir"
}

# The console log of a VM run of ARCH in MODE (with MOCK=0: the run without the mock backend).
vm_log() { echo "$CHECKOUT/logs/$1-$2${MOCK:+-mock$MOCK}.log"; }

# Copies the shared libraries BINARY links (as ldd lists them) into the tree ROOT, at their paths.
copy_libs() {
	local lib
	for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
		mkdir -p "$2${lib%/*}"
		cp -L "$lib" "$2$lib"
	done
}

# Configures the kernel build in OUT from SRCDIR: `make BASE` (ARCH and LLVM as MAKE_ARGS say),
# the config FRAGMENTS merged on it, olddefconfig, and dies if a fragment's line did not survive.
# Usage: configure_kernel SRCDIR OUT BASE "MAKE_ARGS" FRAGMENT...
configure_kernel() {
	local srcdir=$1 out=$2 base=$3 margs=$4 f line
	shift 4
	# shellcheck disable=SC2086 # MAKE_ARGS is a list of make arguments
	make -C "$srcdir" O="$out" $margs "$base" >/dev/null
	(cd "$out" && "$srcdir/scripts/kconfig/merge_config.sh" -m -O "$out" .config "$@" >/dev/null)
	# shellcheck disable=SC2086
	make -C "$srcdir" O="$out" $margs olddefconfig >/dev/null
	# A later fragment's line for a symbol overrides an earlier one's ("# CONFIG_X is not set"
	# turns an option off); each symbol's last line must have survived.
	local sym
	declare -A last=()
	for f in "$@"; do
		while read -r line; do
			sym=$(echo "$line" | grep -oE 'CONFIG_[A-Z0-9_]+' | head -1)
			last[$sym]="$line	${f##*/}"
		done < <(grep -E '^(CONFIG_[A-Z0-9_]+=|# CONFIG_[A-Z0-9_]+ is not set$)' "$f")
	done
	for sym in "${!last[@]}"; do
		line=${last[$sym]%	*}
		case $line in
		'# '*) ! grep -q "^$sym=" "$out/.config" || die "kernel config kept $sym on (${last[$sym]#*	} turns it off)" ;;
		*) grep -qx "$line" "$out/.config" || die "kernel config lost $line (from ${last[$sym]#*	})" ;;
		esac
	done
}

# The knobs a user sets on make's command line or in the environment, which the scripts read
# inside the root: each one that is set passes through in_root, whatever the command.
KNOBS="PANIC_ON_WARN ARCHES BENCH_REPORT_ONLY CASE GUEST KVM MOCK SCENARIOS SECONDS_PER_SCENARIO TIMEOUT"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Run a command inside the toolchain root, with the repository and the cache
# bind-mounted at the same paths as on the host. The mounts live in a private
# mount namespace, so they disappear with it whatever way the command ends.
in_root() {
	[ -e "$TROOT/.complete" ] || die "toolchain root missing: run tools/toolchain/mkroot.sh"
	local knobs=() k
	for k in $KNOBS; do
		[ -z "${!k+set}" ] || knobs+=("$k=${!k}")
	done
	unshare --mount --propagation private -- /bin/bash -euc '
		R=$1; T=$2; C=$3; N=$4; shift 4
		knobs=("${@:1:N}"); shift "$N"
		mount --rbind /proc "$R/proc"
		mount --rbind /dev "$R/dev"
		mount --rbind /sys "$R/sys"
		mkdir -p "$R$T" "$R$C"
		mount --bind "$T" "$R$T"
		mount --bind "$C" "$R$C"
		exec chroot "$R" /usr/bin/env -i \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root TERM=dumb LANG=C.UTF-8 \
			LIBCLANG_PATH=/usr/lib/llvm-19/lib \
			CARGO_HTTP_CAINFO=/etc/ssl/certs/host-ca.crt \
			CARGO_HOME="$C/cargo-home" CARGO_TERM_PROGRESS_WHEN=never \
			KTR_CACHE="$C" ${knobs[@]+"${knobs[@]}"} \
			/bin/bash -euc "cd \"\$1\"; shift; exec \"\$@\"" in-root "$PWD" "$@"
	' in_root "$TROOT" "$TOP" "$CACHE" "${#knobs[@]}" ${knobs[@]+"${knobs[@]}"} "$@"
}
