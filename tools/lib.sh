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

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Run a command inside the toolchain root, with the repository and the cache
# bind-mounted at the same paths as on the host. The mounts live in a private
# mount namespace, so they disappear with it whatever way the command ends.
in_root() {
	[ -e "$TROOT/.complete" ] || die "toolchain root missing: run tools/toolchain/mkroot.sh"
	unshare --mount --propagation private -- /bin/bash -euc '
		R=$1; shift; T=$1; shift; C=$1; shift
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
			KTR_CACHE="$C" TIMEOUT="${TIMEOUT:-}" KVM="${KVM:-}" ARCHES="${ARCHES:-}" MOCK="${MOCK:-}" \
			BENCH_REPORT_ONLY="${BENCH_REPORT_ONLY:-}" \
			/bin/bash -euc "cd \"\$1\"; shift; exec \"\$@\"" in-root "$PWD" "$@"
	' in_root "$TROOT" "$TOP" "$CACHE" "$@"
}
