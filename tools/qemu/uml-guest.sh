#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The patched QEMU against a real guest whose TCE tables live in the module: a UML kernel with the
# module built in runs qemu-system-ppc64 -M pseries,tce-replay=on (TCG) as an ordinary x86_64
# program. The guest's DMA goes through its TCEs (H_PUT_TCE/H_PUT_TCE_INDIRECT/H_STUFF_TCE, which
# QEMU sends to the module; QEMU translates every DMA through the module's table mapping):
#   GUEST=vfio (default): the cached ppc64le test kernel with the suite's initramfs; its
#     /init binds QEMU's edu device to vfio-pci and its real_vfio_group case (CASE= picks
#     another) has it DMA;
#   GUEST=virtio: a small kernel (tools/qemu/guest-kernel.sh) probing virtio-blk and virtio-rng
#     with iommu_platform=on; it reads the partition table of a disk image and stops (no init).
# Prints the guest's console, the module's debugfs listing while the tables are live, and counts
# of QEMU's trace events. Runs inside the toolchain root. Usage: uml-guest.sh QEMU_BINARY
# It runs its own copy of the UML kernel ($CACHE/qemu-uml/linux, copied from the cached one once):
# tools/kernel/build.sh rebuilds the cached one for whichever checkout runs it.
. "$(dirname "$0")/../lib.sh"

qemu=${1:?usage: uml-guest.sh QEMU_BINARY}
work="$CACHE/qemu-uml"
mkdir -p "$work"
pick() { ls -d $1 2>/dev/null | head -1 || true; }
if [ ! -x "$work/linux" ]; then
	k=$(pick "$CACHE/kernel-um-*/linux")
	[ -n "$k" ] && [ -e "${k%/linux}/.complete" ] || die "no cached UML kernel (make kernel ARCH=um)"
	cp "$k" "$work/linux"
	log "uml-guest: copied the UML kernel $k"
fi
stage=$(mktemp -d "$CACHE/qemu-uml/stage.XXXXXX")
trap 'rm -rf "$stage" "$stage.cpio"' EXIT
# UML's initramfs: busybox, QEMU with its libraries and firmware, the guest's kernel and files.
r="$stage/root"
mkdir -p "$r"/{bin,dev,proc,sys,tmp,guest,usr/share/qemu}
common=(-L /usr/share/qemu -M pseries,tce-replay=on -cpu power9 -m 1024 -smp 1 -nographic
	-no-shutdown -kernel /guest/vmlinux)
case ${GUEST:-vfio} in
vfio)
	vmlinux=$(pick "$CACHE/kernel-ppc64le-*/vmlinux")
	# Where this checkout's tools/module.sh and tools/userspace.sh put them ($CHECKOUT once
	# lib.sh keeps each checkout's builds apart, the cache itself before).
	builds=${CHECKOUT:-$CACHE}
	ko="$builds/module-ppc64le-test/kvm_tce_replay.ko"
	bin="$builds/target/powerpc64le-unknown-linux-gnu/release"
	for f in "$vmlinux" "$ko" "$bin/init" "$bin/kvm_tce_replay_test"; do
		[ -n "$f" ] && [ -e "$f" ] || die "missing $f: run make vm ARCH=ppc64le first"
	done
	# The guest's initramfs, as tools/vm/run.sh makes it.
	g="$stage/guest-root"
	mkdir -p "$g"/{bin,dev,proc,sys,tmp}
	cp "$bin/init" "$g/init"
	cp "$bin/kvm_tce_replay_test" "$g/bin/"
	cp "$ko" "$g/"
	mknod -m 600 "$g/dev/console" c 5 1
	(cd "$g" && find . | cpio -o -H newc --quiet) >"$r/guest/initrd.cpio"
	args=("${common[@]}" -device edu -initrd /guest/initrd.cpio
		-append "console=hvc0 panic=-1 ktr.mode=test ktr.args=${CASE:-real_vfio_group}")
	;;
virtio)
	vmlinux=$("$TOP/tools/qemu/guest-kernel.sh")
	# 1 MiB disk, MBR with two Linux partitions (LBA 64+512 and 1024+1024): the guest prints
	# "vda: vda1 vda2" only if its DMA read the sector intact.
	disk="$r/guest/disk.img"
	truncate -s 1M "$disk"
	printf '\x00\x00\x00\x00\x83\x00\x00\x00\x40\x00\x00\x00\x00\x02\x00\x00''\x00\x00\x00\x00\x83\x00\x00\x00\x00\x04\x00\x00\x00\x04\x00\x00' |
		dd of="$disk" bs=1 seek=446 conv=notrunc status=none
	printf '\x55\xaa' | dd of="$disk" bs=1 seek=510 conv=notrunc status=none
	args=("${common[@]}" -drive if=none,id=d0,file=/guest/disk.img,format=raw
		-device virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on
		-device virtio-rng-pci,iommu_platform=on,disable-legacy=on
		-append "console=hvc0 panic=0")
	;;
*) die "GUEST is vfio or virtio" ;;
esac
printf '%s\n' "${args[@]}" >"$r/guest/args"
cp /bin/busybox "$r/bin/"
for l in sh mount cat grep sleep kill poweroff tee echo ls sed tr head; do ln -s busybox "$r/bin/$l"; done
cp "$qemu" "$r/bin/qemu-system-ppc64"
copy_libs "$qemu" "$r"
cp /usr/share/qemu/vof.bin /usr/share/qemu/slof.bin "$r/usr/share/qemu/"
cp "$vmlinux" "$r/guest/vmlinux"
mknod -m 600 "$r/dev/console" c 5 1
cat >"$r/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
stats() { echo "UML: tables $1: $(tr '\n' ';' </sys/kernel/debug/kvm_tce_replay/tables)"; }
ls -l /dev/kvm-tce-replay
# One argument a line (the append line has spaces).
set --
while read -r a; do set -- "$@" "$a"; done </guest/args
echo "UML: qemu-system-ppc64 $*"
# -no-shutdown: QEMU stays, its tables live, after the guest powers off. The trace events
# (log backend, -D) count the guest's TCE hypercalls, the module's attach, the DMA translations.
qemu-system-ppc64 "$@" \
	-trace 'spapr_iommu_pci_*' -trace 'spapr_iommu_xlate' -trace 'spapr_tce_replay_*' \
	-trace 'spapr_iommu_new_table' -D /tmp/trace.log </dev/null >/tmp/guest.log 2>&1 &
pid=$!
n=0
from=1
while kill -0 $pid 2>/dev/null; do
	sleep 2
	n=$((n + 2))
	sed -n "${from},\$p" /tmp/guest.log
	from=$(( $(sed -n '$=' /tmp/guest.log) + 1 ))
	[ $((n % 4)) = 0 ] && stats "after $n s"
	grep -q -e 'reboot: Power down' -e 'Kernel panic' /tmp/guest.log && break
done
sed -n "${from},\$p" /tmp/guest.log
stats "after the guest powered off (QEMU still running)"
t=/tmp/trace.log
count() { grep -c "$@" $t; }
echo "UML: QEMU trace: $(grep -c . $t) events"
echo "UML: trace: $(count '^spapr_tce_replay_enabled ') device opened and enabled," \
	"$(count '^spapr_tce_replay_set_slot ') memory slots, $(count '^spapr_iommu_new_table ') tables created"
for h in put:H_PUT_TCE indirect:H_PUT_TCE_INDIRECT stuff:H_STUFF_TCE; do
	echo "UML: trace: ${h#*:} $(count "^spapr_iommu_pci_${h%:*} ") calls," \
		"$(grep "^spapr_iommu_pci_${h%:*} " $t | grep -c 'ret=0$') returned H_SUCCESS"
done
echo "UML: trace: $(grep '^spapr_iommu_pci_put ' $t | grep -cE 'tce=0x[0-9a-f]*[1235679abdef] ') H_PUT_TCE" \
	"of a valid TCE; $(count '^spapr_iommu_xlate ') DMA translations," \
	"$(grep '^spapr_iommu_xlate ' $t | grep -vc 'perm=0 ') through a valid TCE"
grep -m 2 '^spapr_tce_replay_' $t
grep '^spapr_iommu_pci_put ' $t | grep -m 3 -E 'tce=0x[0-9a-f]*[1235679abdef] '
grep -m 2 '^spapr_iommu_pci_indirect ' $t
grep '^spapr_iommu_xlate ' $t | grep -m 3 -v 'perm=0 '
kill $pid 2>/dev/null
sleep 1
stats "after QEMU exited"
poweroff -f
INIT
chmod +x "$r/init"
(cd "$r" && find . | cpio -o -H newc --quiet) >"$stage.cpio"
log "uml-guest: UML initramfs $(( $(stat -c %s "$stage.cpio") / 1048576 )) MiB; booting UML (timeout ${TIMEOUT:-1800} s)"
start=$(date +%s)
set +e
timeout "${TIMEOUT:-1800}" "$work/linux" mem=3000M con=null con0=fd:0,fd:1 initrd="$stage.cpio" \
	</dev/null 2>&1 | sed -u 's/\r$//' | tee "$work/uml-guest-${GUEST:-vfio}.log"
status=${PIPESTATUS[0]}
set -e
log "uml-guest: finished in $(( $(date +%s) - start )) s (exit $status); log: $work/uml-guest-${GUEST:-vfio}.log"
