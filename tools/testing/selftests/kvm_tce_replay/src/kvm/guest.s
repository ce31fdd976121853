/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The KVM oracle's guest (src/kvm.rs): plays a script of hypercalls from guest memory.
 *
 * Loaded at guest-physical 0 and entered at 0 in real mode, 64-bit, little-endian, with
 * interrupts off. r20 holds the script's guest address: a count at 0, then from 64 that many
 * records of 64 bytes, { nr, r4, r5, r6, r7, out r3, out r4, 0 }. Each record is issued with
 * `sc 1` and the returned r3 and r4 stored in it. Then `sc 1` with r3 = KTR_ORACLE_DONE
 * reports to the VMM, which may write a new script and resume: the guest plays it from the
 * start. An interrupt of the guest's own (none is expected) reports its vector in r6 and SRR0
 * and SRR1 in r4 and r5 with r3 = -1.
 */

	.equ	KTR_ORACLE_DONE, 0x7f00

	.machine power9
	.abiversion 2
	.section .text
	.globl	_start
_start:
	b	play

	/* Every interrupt vector of the real-mode guest: report which, and stop. */
	.irp	v, 0x100,0x200,0x300,0x380,0x400,0x480,0x500,0x600,0x700,0x800,0x900,0x980,0xa00,0xb00,0xc00,0xd00,0xe00,0xe20,0xe40,0xe60,0xe80,0xf00,0xf20,0xf40,0xf60
	.org	\v
	li	3, -1
	li	6, \v
	mfsrr0	4
	mfsrr1	5
	sc	1
	b	.
	.endr

	.org	0x1000
play:
	ld	21, 0(20)		/* the number of records */
	addi	22, 20, 64		/* the first record */
1:	cmpdi	21, 0
	beq	2f
	ld	3, 0(22)
	ld	4, 8(22)
	ld	5, 16(22)
	ld	6, 24(22)
	ld	7, 32(22)
	sc	1
	std	3, 40(22)
	std	4, 48(22)
	addi	22, 22, 64
	addi	21, 21, -1
	b	1b
2:	li	3, KTR_ORACLE_DONE
	sc	1
	b	play
