# SPDX-License-Identifier: GPL-2.0
#
# ktr_kvm_run(fd, op): ioctl(fd, op, 0) for KVM_RUN, keeping the caller's non-volatile floating
# point and vector registers (f14-f31, v20-v31) in its own frame across the system call.
#
# KVM-HV in a powernv9 guest of QEMU's TCG sometimes returns from KVM_RUN with the calling
# thread's FP and VSX registers zeroed (the KVM oracle's VMM saw it once in about 1000 runs,
# src/kvm.rs): Rust code that keeps a value in one of them across the ioctl then reads garbage.
# Returns the ioctl's result, or -errno.

	.abiversion 2
	.machine power9
	.section .text
	.globl	ktr_kvm_run
	.type	ktr_kvm_run, @function
ktr_kvm_run:
	stdu	1, -384(1)
	.irp	f, 14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	stfd	\f, (32 + (\f - 14) * 8)(1)
	.endr
	.irp	v, 20,21,22,23,24,25,26,27,28,29,30,31
	li	0, (176 + (\v - 20) * 16)
	stvx	\v, 1, 0
	.endr
	li	5, 0
	li	0, 54			# __NR_ioctl
	sc
	bns	1f
	neg	3, 3
1:	.irp	f, 14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	lfd	\f, (32 + (\f - 14) * 8)(1)
	.endr
	.irp	v, 20,21,22,23,24,25,26,27,28,29,30,31
	li	0, (176 + (\v - 20) * 16)
	lvx	\v, 1, 0
	.endr
	addi	1, 1, 384
	blr
	.size	ktr_kvm_run, . - ktr_kvm_run
	.section .note.GNU-stack, "", @progbits
