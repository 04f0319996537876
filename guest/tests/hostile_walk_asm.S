/* hostile_walk_asm.S - L2 snippets of hostile_walk.c: string stores from
 * 32-bit code (legacy paging, IA-32e off), each ending in VMCALL. */
	.text
	.code32
/* REP STOSD of EAX, ECX dwords, to ES:EDI (32-bit addresses). */
	.balign 16
	.globl hx_w32_rep_stosd
hx_w32_rep_stosd:
	rep stosl %eax, %es:(%edi)
	vmcall
	ud2
/* The same with an address-size prefix: 16-bit addresses, ES:DI, CX. */
	.balign 16
	.globl hx_w32_a16_rep_stosd
hx_w32_a16_rep_stosd:
	.byte 0x67
	rep stosl %eax, %es:(%edi)
	vmcall
	ud2
/* REP MOVSD of ECX dwords from DS:ESI to ES:EDI. */
	.balign 16
	.globl hx_w32_rep_movsd
hx_w32_rep_movsd:
	rep movsl %ds:(%esi), %es:(%edi)
	vmcall
	ud2
	.code64
/* From 64-bit code with an address-size prefix: 32-bit addresses, EDI, ECX. */
	.balign 16
	.globl hx_w64_a32_rep_stosd
hx_w64_a32_rep_stosd:
	.byte 0x67
	rep stosl %eax, %es:(%rdi)
	vmcall
	ud2

/* Real mode (16-bit code): REP INSB from DX to ES:DI, CX bytes; the same
 * with 32-bit addresses (ES:EDI, ECX); REP OUTSB from DS:SI. */
	.code16
	.balign 16
	.globl hx_w16_rep_insb
hx_w16_rep_insb:
	rep insb (%dx), %es:(%di)
	vmcall
	ud2
	.balign 16
	.globl hx_w16_a32_rep_insb
hx_w16_a32_rep_insb:
	addr32 rep insb (%dx), %es:(%edi)
	vmcall
	ud2
	.balign 16
	.globl hx_w16_rep_outsb
hx_w16_rep_outsb:
	rep outsb %ds:(%si), (%dx)
	vmcall
	ud2
	.balign 16
	.globl hx_w16_insw
hx_w16_insw:
	insw (%dx), %es:(%di)
	vmcall
	ud2
	.code64

/* OUTSD from FS:(RSI) / GS:(RSI) to 0xcf8, then read 0xcf8 back into EAX. */
	.balign 16
	.globl hx_w64_fs_outsd_inl
hx_w64_fs_outsd_inl:
	movw $0xcf8, %dx
	outsl %fs:(%rsi), (%dx)
	xorl %eax, %eax
	inl %dx, %eax
	vmcall
	ud2
	.balign 16
	.globl hx_w64_gs_outsd_inl
hx_w64_gs_outsd_inl:
	movw $0xcf8, %dx
	outsl %gs:(%rsi), (%dx)
	xorl %eax, %eax
	inl %dx, %eax
	vmcall
	ud2
/* The FS one from 32-bit code: FS:(ESI). */
	.code32
	.balign 16
	.globl hx_w32_fs_outsd_inl
hx_w32_fs_outsd_inl:
	movw $0xcf8, %dx
	outsl %fs:(%esi), (%dx)
	xorl %eax, %eax
	inl %dx, %eax
	vmcall
	ud2
	.code64

/* REP INSB from DX with an address-size prefix: ES:EDI/ECX from 64-bit
 * code, ES:DI/CX from 32-bit code. */
	.balign 16
	.globl hx_w64_a32_rep_insb
hx_w64_a32_rep_insb:
	addr32 rep insb (%dx), %es:(%edi)
	vmcall
	ud2
	.code32
	.balign 16
	.globl hx_w32_a16_rep_insb
hx_w32_a16_rep_insb:
	addr16 rep insb (%dx), %es:(%di)
	vmcall
	ud2
	.code64

/* Real mode: REP STOSW of AX to ES:DI (CX words); the same with 32-bit
 * addresses (ES:EDI, ECX). */
	.code16
	.balign 16
	.globl hx_w16_rep_stosw
hx_w16_rep_stosw:
	rep stosw %ax, %es:(%di)
	vmcall
	ud2
	.balign 16
	.globl hx_w16_a32_rep_stosw
hx_w16_a32_rep_stosw:
	addr32 rep stosw %ax, %es:(%edi)
	vmcall
	ud2
	.code64
