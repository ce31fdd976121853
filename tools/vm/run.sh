#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boots the test kernel of ARCH under QEMU (x86_64; ppc64le, a pseries guest; powernv, the same
# ppc64le kernel as a POWER9 host on skiboot) or as a UML process (um, the module built in) with an initramfs of our /init, the harness's programs, the ktr CLI and the module,
# runs the programs of MODE (test, bench, profile, fuzz; demo runs `ktr probe` and `ktr demo`;
# kselftest, x86_64 only, runs the installed kselftest tree through its run_kselftest.sh with
# busybox's shell), keeps the console log and checks it.
# Usage: run.sh ARCH MODE [ARGS...]. KVM=1 uses KVM instead of TCG; TIMEOUT in seconds; MOCK=0
# loads the module without its mock backend.
. "$(dirname "$0")/../lib.sh"

arch=${1:-x86_64}
mode=${2:-test}
shift 2 || true
harness_args=$(IFS=,; echo "$*")
# powernv boots the ppc64le kernel, module and programs.
build=${arch/powernv/ppc64le}
kdir=$("$TOP/tools/kernel/build.sh" "$build")
ko=""
[ "$arch" = um ] || ko=$("$TOP/tools/module.sh" "$build")
# UML runs x86_64 userspace natively.
bin=$("$TOP/tools/userspace.sh" "${build/um/x86_64}")

logs="$CHECKOUT/logs"
mkdir -p "$logs"
stage=$(mktemp -d "$CACHE/initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,tmp}
cp "$bin/init" "$stage/init"
cp "$bin"/kvm_tce_replay_{test,bench,fuzz} "$bin/ktr" "$stage/bin/"
[ -z "$ko" ] || cp "$ko" "$stage/"
if [ "$mode" = kselftest ]; then
	[ "$arch" = x86_64 ] || die "the kselftest mode needs the x86_64 VM (busybox and coreutils of the root)"
	cp -r "$("$TOP/tools/kselftest.sh" "$arch")" "$stage/kselftest"
	# busybox's shell and utilities (a static binary), each applet a link; coreutils' timeout
	# at the path runner.sh looks for (busybox's has no --foreground), with its libraries.
	cp /bin/busybox "$stage/bin/"
	for applet in $(/bin/busybox --list); do
		[ -e "$stage/bin/$applet" ] || ln -s busybox "$stage/bin/$applet"
	done
	mkdir -p "$stage/usr/bin"
	cp /usr/bin/timeout "$stage/usr/bin/"
	copy_libs /usr/bin/timeout "$stage"
fi
if [ "$arch" = powernv ]; then
	# The nested run (cases/nested.rs): the series' QEMU built for ppc64le with its libraries at
	# their paths, and the L2 guest (tools/qemu/guest-kernel.sh's kernel, the harness's
	# kvm_tce_replay_guest as its /init).
	cp -a "$("$TOP/tools/qemu/build.sh" ppc64le)/." "$stage/"
	mkdir -p "$stage/nested" "$stage/nested/root/dev"
	cp "$("$TOP/tools/qemu/guest-kernel.sh")" "$stage/nested/vmlinux"
	cp "$bin/kvm_tce_replay_guest" "$stage/nested/root/init"
	mknod -m 600 "$stage/nested/root/dev/console" c 5 1
	(cd "$stage/nested/root" && find . | cpio -o -H newc --quiet) >"$stage/nested/initramfs.cpio"
	rm -r "$stage/nested/root"
fi
mknod -m 600 "$stage/dev/console" c 5 1
initrd="$stage.cpio"
(cd "$stage" && find . | cpio -o -H newc --quiet) >"$initrd"
trap 'rm -rf "$stage" "$initrd"' EXIT

log=$(vm_log "$arch" "$mode")
# A warning is a failure (panic_on_warn), as on syzbot.
append="panic=-1 panic_on_warn=${PANIC_ON_WARN:-1} ktr.mode=$mode ${harness_args:+ktr.args=$harness_args} ktr.mock=${MOCK:-1}"
case $arch in
x86_64)
	run=(qemu-system-x86_64 -m 2048 -smp 2 -kernel "$kdir/image")
	# The debug kernel: RCU stalls reported after 5 s (the config fragment keeps 21 s for all).
	append="console=ttyS0 rcupdate.rcu_cpu_stall_timeout=5 $append"
	if [ "${KVM:-0}" = 1 ]; then run+=(-enable-kvm -cpu host); else run+=(-accel tcg); fi
	;;
ppc64le)
	# edu: a PCI device to bind to vfio-pci, for the real backend; without dma_mask it clamps
	# bus addresses to 28 bits.
	run=(qemu-system-ppc64 -M pseries -cpu power9 -m 2048 -smp 2 -kernel "$kdir/image"
		-device edu,dma_mask=0xffffffffffffffff)
	append="console=hvc0 $append"
	;;
powernv)
	# A POWER9 host: skiboot (the root's /usr/share/qemu/skiboot.lid) starts the kernel, whose
	# PCI is PHB4s (pci-ioda.c). Two edu devices on two PHBs: two PEs, two IOMMU groups.
	run=(qemu-system-ppc64 -M powernv9 -cpu power9 -m 4096 -smp 2 -kernel "$kdir/image")
	for bus in pcie.2 pcie.3; do
		run+=(-device "edu,dma_mask=0xffffffffffffffff,bus=$bus,addr=0x0")
	done
	append="console=hvc0 $append"
	;;
um)
	# The UML kernel is a program of the toolchain root: its console is our stdout.
	run=("$kdir/image" mem=2048M con=null con0=fd:0,fd:1 initrd="$initrd" kvm_tce_replay.mock=${MOCK:-1})
	;;
esac
if [ "$arch" = um ]; then
	how="as a UML process"
	run+=($append)
else
	how="under QEMU"
	run+=(-nographic -no-reboot -initrd "$initrd" -append "$append")
fi
# The machine first, so that a log (and a failure in it) says where it came from: UML runs on
# the host's kernel and takes its fault information and FPU state from it.
host="host: Linux $(uname -r) $(uname -m), $(host_cpu), $(nproc) cores"
printf '%s\n' "$host" >"$log"
log "vm: $host"
log "vm: booting $arch (mode $mode) $how; console log: $log"
start=$(date +%s)
set +e +o pipefail
timeout "${TIMEOUT:-900}" "${run[@]}" \
	</dev/null 2>&1 | sed -u 's/\r$//' | tee -a "$log" |
	grep --line-buffered -E '^(ok|not ok|# |KTR:|probe:|demo:|bench:|TAP|1\.\.)|BUG:|WARNING:|Oops|stall|lockup|panic|kvm_tce_replay'
status=${PIPESTATUS[0]}
set -e -o pipefail
log "vm: $arch run finished in $(( $(date +%s) - start )) s"
[ "$status" = 0 ] || [ "$status" = 124 ] || log "vm: QEMU exited with status $status"
[ "$status" = 124 ] && { log "vm: FAIL: timed out after ${TIMEOUT:-900} s"; exit 1; }
"$CHECKOUT/target/release/logcheck" "$log" "$mode" || { log "vm: FAIL ($arch, $mode): see $log"; exit 1; }
log "vm: PASS ($arch, $mode)"
