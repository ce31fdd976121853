#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Creates the Debian trixie toolchain root (cached, keyed by its package list) when missing.
. "$(dirname "$0")/../lib.sh"

[ -e "$TROOT/.complete" ] && exit 0
start=$(date +%s)
log "toolchain: creating Debian trixie root $TROOT (a few minutes)"
if ! command -v debootstrap >/dev/null; then
	log "toolchain: installing debootstrap on the host"
	apt-get update -qq || apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
mkdir -p "$CACHE"
tmp="$TROOT.tmp"
rm -rf "$tmp"
debootstrap --variant=minbase trixie "$tmp" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 ||
	{ tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
cat >"$tmp/etc/apt/sources.list" <<SRC
deb http://deb.debian.org/debian trixie main
deb http://deb.debian.org/debian trixie-updates main
deb http://deb.debian.org/debian-security trixie-security main
deb http://deb.debian.org/debian trixie-backports main
SRC
cp /etc/ssl/certs/ca-certificates.crt "$tmp/etc/ssl/certs/host-ca.crt" 2>/dev/null ||
	{ mkdir -p "$tmp/etc/ssl/certs"; cp /etc/ssl/certs/ca-certificates.crt "$tmp/etc/ssl/certs/host-ca.crt"; }
bpo=$(sed -n 's/^bpo://p' "$ROOT_PKGS" | tr '\n' ' ')
main=$(grep -v -e '^#' -e '^bpo:' -e '^$' "$ROOT_PKGS" | tr '\n' ' ')
log "toolchain: apt-get install (backports: $bpo)"
unshare --mount --propagation private -- /bin/bash -euc '
	R=$1 bpo=$2 main=$3
	mount --rbind /proc "$R/proc"; mount --rbind /dev "$R/dev"; mount --rbind /sys "$R/sys"
	export DEBIAN_FRONTEND=noninteractive
	for i in 1 2 3 4 5; do chroot "$R" apt-get update -qq && break; sleep 5; done
	chroot "$R" apt-get install -y -qq --no-install-recommends -t trixie-backports $bpo
	chroot "$R" apt-get install -y -qq --no-install-recommends $main
	chroot "$R" apt-get clean
' mkroot "$tmp" "$bpo" "$main" >"$CACHE/apt.log" 2>&1 ||
	{ tail -30 "$CACHE/apt.log" >&2; die "apt-get in the root failed (log: $CACHE/apt.log)"; }
touch "$tmp/.complete"
rm -rf "$TROOT"
mv "$tmp" "$TROOT"
log "toolchain: root ready in $(( $(date +%s) - start )) s"
