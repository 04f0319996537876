/* hostile_asm.S - code of the hostile suite that C cannot express: calls
 * with every register chosen and recorded, L2 snippets (each ends in
 * VMCALL), instructions with odd prefixes, handlers that must not touch
 * the stack. */

	.text
	.code64

/* struct hx_regs (hostile_hc.c): rax rbx rcx rdx rsi rdi rbp r8-r15 rflags */
#define X_RAX 0
#define X_RBX 8
#define X_RCX 16
#define X_RDX 24
#define X_RSI 32
#define X_RDI 40
#define X_RBP 48
#define X_R8 56
#define X_R9 64
#define X_R10 72
#define X_R11 80
#define X_R12 88
#define X_R13 96
#define X_R14 104
#define X_R15 112
#define X_RFLAGS 120

/* void hx_vmcall_regs(const struct hx_regs *in, struct hx_regs *out):
 * every general register and the arithmetic flags from *in, VMCALL, then
 * every register and RFLAGS into *out.  A fault unwinds through
 * catch_fault (which restores the callee-saved registers). */
	.globl hx_vmcall_regs
	.type hx_vmcall_regs, @function
hx_vmcall_regs:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	pushq %rsi
	pushq X_RFLAGS(%rdi)
	popfq
	movq X_RAX(%rdi), %rax
	movq X_RBX(%rdi), %rbx
	movq X_RCX(%rdi), %rcx
	movq X_RDX(%rdi), %rdx
	movq X_RSI(%rdi), %rsi
	movq X_RBP(%rdi), %rbp
	movq X_R8(%rdi), %r8
	movq X_R9(%rdi), %r9
	movq X_R10(%rdi), %r10
	movq X_R11(%rdi), %r11
	movq X_R12(%rdi), %r12
	movq X_R13(%rdi), %r13
	movq X_R14(%rdi), %r14
	movq X_R15(%rdi), %r15
	movq X_RDI(%rdi), %rdi
	vmcall
	pushfq
	pushq %rdi
	movq 16(%rsp), %rdi              /* out */
	movq %rax, X_RAX(%rdi)
	movq %rbx, X_RBX(%rdi)
	movq %rcx, X_RCX(%rdi)
	movq %rdx, X_RDX(%rdi)
	movq %rsi, X_RSI(%rdi)
	movq %rbp, X_RBP(%rdi)
	movq %r8, X_R8(%rdi)
	movq %r9, X_R9(%rdi)
	movq %r10, X_R10(%rdi)
	movq %r11, X_R11(%rdi)
	movq %r12, X_R12(%rdi)
	movq %r13, X_R13(%rdi)
	movq %r14, X_R14(%rdi)
	movq %r15, X_R15(%rdi)
	popq %rax
	movq %rax, X_RDI(%rdi)
	popq %rax
	movq %rax, X_RFLAGS(%rdi)
	addq $8, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.size hx_vmcall_regs, . - hx_vmcall_regs

/* --- L2 snippets ---------------------------------------------------------- */
	.macro SNIPPET name
	.balign 16
	.globl \name
\name:
	.endm

/* One element of string I/O: port DX, RDI destination / RSI source. */
SNIPPET hx_l2_insd
	insl (%dx), %es:(%rdi)
	vmcall
	ud2
SNIPPET hx_l2_insw
	insw (%dx), %es:(%rdi)
	vmcall
	ud2
SNIPPET hx_l2_outsd
	outsl %ds:(%rsi), (%dx)
	vmcall
	ud2
SNIPPET hx_l2_rep_insb
	rep insb (%dx), %es:(%rdi)
	vmcall
	ud2
SNIPPET hx_l2_rep_outsb
	rep outsb %ds:(%rsi), (%dx)
	vmcall
	ud2
/* PKRU = EAX, then REP INSB of R8 bytes from port R9 to (RDI). */
SNIPPET hx_l2_wrpkru_rep_insb
	xorl %ecx, %ecx
	xorl %edx, %edx
	wrpkru
	movq %r8, %rcx
	movq %r9, %rdx
	rep insb (%dx), %es:(%rdi)
	vmcall
	ud2
SNIPPET hx_l2_rep_stosb
	rep stosb %al, %es:(%rdi)
	vmcall
	ud2
/* PCI configuration: EAX = address to 0xcf8, then INSD from 0xcfc to (RDI). */
SNIPPET hx_l2_outl_insd
	movw $0xcf8, %dx
	outl %eax, %dx
	movw $0xcfc, %dx
	insl (%dx), %es:(%rdi)
	vmcall
	ud2
/* OUTSD from (RSI) to 0xcf8, then read 0xcf8 back into EAX. */
SNIPPET hx_l2_outsd_inl
	movw $0xcf8, %dx
	outsl %ds:(%rsi), (%dx)
	xorl %eax, %eax
	inl %dx, %eax
	vmcall
	ud2
SNIPPET hx_l2_rdmsr
	rdmsr
	vmcall
	ud2
/* Writes MSR ECX with the value it holds, then reads (RBX). */
SNIPPET hx_l2_wrmsr_read
	rdmsr
	wrmsr
	movq (%rbx), %rax
	vmcall
	ud2
/* EFER, LSTAR, KERNEL_GS_BASE, STAR, SFMASK into R8..R12. */
	.macro RDMSR_TO msr, reg
	movl $\msr, %ecx
	rdmsr
	shlq $32, %rdx
	orq %rdx, %rax
	movq %rax, \reg
	.endm
SNIPPET hx_l2_read_msrs
	RDMSR_TO 0xc0000080, %r8
	RDMSR_TO 0xc0000082, %r9
	RDMSR_TO 0xc0000102, %r10
	RDMSR_TO 0xc0000081, %r11
	RDMSR_TO 0xc0000084, %r12
	vmcall
	ud2
SNIPPET hx_l2_wrmsr
	wrmsr
	vmcall
	ud2
SNIPPET hx_l2_read
	movq (%rbx), %rax
	vmcall
	ud2
SNIPPET hx_l2_write
	movq %rax, (%rbx)
	vmcall
	ud2

/* The same string I/O from 32-bit code (IA-32e compatibility mode), where
 * segment limits and types apply. */
	.code32
	.balign 16
	.globl hx_l2_c32_rep_insb
hx_l2_c32_rep_insb:
	rep insb (%dx), %es:(%edi)
	vmcall
	ud2
	.balign 16
	.globl hx_l2_c32_rep_outsb
hx_l2_c32_rep_outsb:
	rep outsb %ds:(%esi), (%dx)
	vmcall
	ud2
	.code64

/* --- event delivery with the stack in memory that is not RAM --------------
 * void hx_deliver(uint64_t rsp, int which): RSP = rsp, then UD2 (which 0)
 * or INT3; the handlers (hx_nostack_stubs, one per vector, 16 bytes each)
 * record the vector, count, and come back here without touching the
 * stack.  hx_ev_fall counts the instruction after the UD2/INT3: a CPU never
 * runs it. */
	.globl hx_deliver
	.type hx_deliver, @function
hx_deliver:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, hx_ev_rsp(%rip)
	leaq 9f(%rip), %rax
	movq %rax, hx_ev_resume(%rip)
	movq %rdi, %rsp
	testl %esi, %esi
	jnz 1f
	.globl hx_deliver_ud2
hx_deliver_ud2:
	ud2
	incq hx_ev_fall(%rip)
	jmp 9f
1:
	.globl hx_deliver_int3
hx_deliver_int3:
	int3
	incq hx_ev_fall(%rip)
9:	movq hx_ev_rsp(%rip), %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.size hx_deliver, . - hx_deliver

	.balign 16
	.globl hx_nostack_stubs
hx_nostack_stubs:
	.set vec, 0
	.rept 256
	.balign 16
	movq $vec, hx_ev_vector(%rip)
	jmp hx_nostack_common
	.set vec, vec + 1
	.endr
hx_nostack_common:
	incq hx_ev_count(%rip)
	movq hx_ev_rsp(%rip), %rsp
	jmpq *hx_ev_resume(%rip)

/* --- stores whose prefixes do not all count --------------------------------
 * unsigned hx_prefix_stores(uint64_t target): six stores to (RDI), each
 * followed by INC EAX; returns EAX. */
	.globl hx_prefix_stores
	.type hx_prefix_stores, @function
hx_prefix_stores:
	xorl %eax, %eax
	.byte 0x48, 0x66, 0xc7, 0x07, 0x11, 0x22              /* REX.W 66: MOV word [rdi], 0x2211 */
	incl %eax
	.byte 0x66, 0x48, 0xc7, 0x47, 0x08, 0x11, 0x22, 0x33, 0x44 /* 66 REX.W: MOV qword [rdi+8], imm32 */
	incl %eax
	.byte 0x48, 0x40, 0xc7, 0x47, 0x10, 0x55, 0x66, 0x77, 0x88 /* REX.W REX: MOV dword [rdi+16] */
	incl %eax
	.byte 0x40, 0x48, 0xc7, 0x47, 0x18, 0x99, 0xaa, 0xbb, 0xcc /* REX REX.W: MOV qword [rdi+24] */
	incl %eax
	movl $0xdddd, %ecx
	.byte 0x48, 0x66, 0x89, 0x4f, 0x20                    /* REX.W 66: MOV [rdi+32], cx */
	incl %eax
	.byte 0x41, 0x66, 0x89, 0x4f, 0x28                    /* REX.B 66: MOV [rdi+40], cx (not r15) */
	incl %eax
	ret
	.size hx_prefix_stores, . - hx_prefix_stores

/* --- read-modify-write and stack instructions on memory that is not RAM ----
 * void hx_rmw_nonram(uint64_t target, uint64_t out[5]):
 * out[0] = RAX after XCHG RAX, (target); out[1] = RFLAGS after ADD dword
 * (target), 1; out[2] = how PUSH moved an RSP in target's page; out[3] =
 * 0x42 if a CALL with such an RSP reached its target; out[4] = how that
 * CALL moved RSP. */
	.globl hx_rmw_nonram
	.type hx_rmw_nonram, @function
hx_rmw_nonram:
	pushq %rbx
	movq $0x1234, %rax
	xchgq %rax, (%rdi)
	movq %rax, 0(%rsi)
	xorl %eax, %eax                  /* flags: ZF PF set, CF clear */
	addl $1, (%rdi)
	pushfq
	popq %rax
	movq %rax, 8(%rsi)
	movq %rsp, %rbx
	leaq 0x800(%rdi), %rsp
	pushq $0x77
	movq %rsp, %rax
	movq %rbx, %rsp
	leaq 0x800(%rdi), %rcx
	subq %rcx, %rax
	movq %rax, 16(%rsi)
	movq $-1, %rdx
	leaq 0x800(%rdi), %rsp
	call 1f
	movq $-1, %rdx                   /* only if the CALL did not jump */
	jmp 2f
1:	movq $0x42, %rdx
2:	movq %rsp, %rax
	movq %rbx, %rsp
	movq %rdx, 24(%rsi)
	subq %rcx, %rax
	movq %rax, 32(%rsi)
	popq %rbx
	ret
	.size hx_rmw_nonram, . - hx_rmw_nonram

/* Stores across a page boundary: void hx_cross_mov(void *p) writes the
 * dword 0x44332211 at p; void hx_cross_stos(void *p, uint64_t n) stores n
 * dwords 0x88776655 from p upwards (EFLAGS.DF clear). */
	.globl hx_cross_mov
hx_cross_mov:
	movl $0x44332211, (%rdi)
	ret
	.globl hx_cross_stos
hx_cross_stos:
	movq %rsi, %rcx
	movl $0x88776655, %eax
	rep stosl %eax, %es:(%rdi)
	ret
/* void hx_cross_stos_down(void *p, uint64_t n): the same with EFLAGS.DF
 * set, from p downwards.  void hx_cross_movs(void *dst, uint64_t n, const
 * void *src): REP MOVSD of n dwords. */
	.globl hx_cross_stos_down
hx_cross_stos_down:
	movq %rsi, %rcx
	movl $0x88776655, %eax
	std
	rep stosl %eax, %es:(%rdi)
	cld
	ret
	.globl hx_cross_movs
hx_cross_movs:
	movq %rsi, %rcx
	movq %rdx, %rsi
	rep movsl %ds:(%rsi), %es:(%rdi)
	ret

/* Longer string stores, each returning what it leaves in its registers
 * (struct hx_str_regs {rdi, rsi, rcx}, at the third argument):
 * hx_str_stosb(p, n, regs): REP STOSB of n bytes 0x5a at p;
 * hx_str_fs_movsb(dst, n, regs, src): REP MOVSB from FS:src (64-bit mode:
 * FS's base is added) to dst; hx_str_stosw1(p, 0, regs): one STOSW, no REP. */
	.globl hx_str_stosb, hx_str_fs_movsb, hx_str_stosw1
hx_str_stosb:
	movq %rdx, %r8
	movq %rsi, %rcx
	movb $0x5a, %al
	rep stosb %al, %es:(%rdi)
	jmp 1f
hx_str_fs_movsb:
	movq %rdx, %r8
	movq %rsi, %rax
	movq %rcx, %rsi
	movq %rax, %rcx
	rep movsb %fs:(%rsi), %es:(%rdi)
	jmp 1f
hx_str_stosw1:
	movq %rdx, %r8
	movw $0x7b7b, %ax
	stosw %ax, %es:(%rdi)
1:	movq %rdi, 0(%r8)
	movq %rsi, 8(%r8)
	movq %rcx, 16(%r8)
	ret

	.data
	.balign 8
hx_ev_rsp:	.quad 0
hx_ev_resume:	.quad 0
	.globl hx_ev_count, hx_ev_vector, hx_ev_fall
hx_ev_count:	.quad 0
hx_ev_vector:	.quad 0
hx_ev_fall:	.quad 0
	.text

/* A store into memory that is not RAM right after an instruction that
 * blocks interrupts for one instruction: void hx_movss_store(void *p)
 * writes the dword 0x44332211 at p right after a MOV SS. */
	.text
	.globl hx_movss_store
hx_movss_store:
	movw %ss, %ax
	movw %ax, %ss
	movl $0x44332211, (%rdi)
	ret
