/* vmxfuzz_l2.S - the small fixed programs the VMX fuzzer's L2 runs (see
 * fz_programs in vmxfuzz_prog.c for their registers).  Each ends in VMCALL;
 * the L1 skips what it intercepts and resumes.  They run in 64-bit mode at
 * CPL 0 on the kernel's page tables (identity EPT), on the L2 stack and IDT
 * of vmx_lib.c, whose handlers VMCALL too. */

	.text
	.code64

	.macro PROG name
	.balign 64
	.globl \name
\name:
	.endm

PROG fz_l2_vmcall
	vmcall
	ud2

/* CPUID of the leaf in RAX, then of the leaf in R8. */
PROG fz_l2_cpuid
	cpuid
	movq %r8, %rax
	xorl %ecx, %ecx
	cpuid
	vmcall
	ud2

/* RDMSR ECX; WRMSR R8D <- R10:R9; RDMSR R8D (results in R12, R13, RAX, RDX). */
PROG fz_l2_msr
	rdmsr
	movq %rax, %r12
	movq %rdx, %r13
	movl %r8d, %ecx
	movq %r9, %rax
	movq %r10, %rdx
	wrmsr
	movl %r8d, %ecx
	rdmsr
	vmcall
	ud2

/* Port R8W: OUT byte, IN word, OUT dword; port R9W: IN byte; REP INSB of
 * R10 bytes from port R9W into (RDI). */
PROG fz_l2_io
	movw %r8w, %dx
	outb %al, %dx
	inw %dx, %ax
	outl %eax, %dx
	movw %r9w, %dx
	inb %dx, %al
	movq %r10, %rcx
	rep insb
	vmcall
	ud2

/* CR0 <- R8, CR4 <- R9, CLTS, LMSW R10W, CR3 reloaded, CR8 <- R11. */
PROG fz_l2_cr
	movq %cr0, %rax
	movq %r8, %cr0
	movq %cr4, %rbx
	movq %r9, %cr4
	clts
	lmsw %r10w
	movq %cr3, %rdx
	movq %rdx, %cr3
	movq %cr8, %rsi
	movq %r11, %cr8
	movq %cr0, %r12
	movq %cr4, %r13
	vmcall
	ud2

PROG fz_l2_hlt
	hlt
	vmcall
	ud2

PROG fz_l2_ud2
	ud2
	vmcall

PROG fz_l2_int3
	int3
	vmcall
	ud2

/* Reads (%rbx): an address the kernel's page tables do not map. */
PROG fz_l2_pf
	movq (%rbx), %rax
	vmcall
	ud2

PROG fz_l2_de
	xorl %ecx, %ecx
	xorl %edx, %edx
	movl $1, %eax
	divl %ecx
	vmcall
	ud2

PROG fz_l2_int
	int $0x41
	vmcall
	ud2

/* Reads (%rbx), writes 8(%rbx), calls *%r8 (a RET in the same page). */
PROG fz_l2_ept
	movq (%rbx), %rax
	movq %rcx, 8(%rbx)
	call *%r8
	vmcall
	ud2

/* Counts in RAX up to R8 (a run for the preemption timer). */
PROG fz_l2_loop
1:	incq %rax
	cmpq %r8, %rax
	jb 1b
	vmcall
	ud2

PROG fz_l2_sti
	sti
	nop
	nop
	cli
	vmcall
	ud2

/* DR7 read, DR0 <- R8, DR6 read, DR7 <- R9. */
PROG fz_l2_dr
	movq %dr7, %rax
	movq %r8, %dr0
	movq %dr6, %rbx
	movq %r9, %dr7
	vmcall
	ud2

/* PAUSE, INVLPG (%rbx), WBINVD, RDTSCP, RDTSC (RAX/RDX/RCX are TSC values). */
PROG fz_l2_misc
	pause
	invlpg (%rbx)
	wbinvd
	rdtscp
	rdtsc
	vmcall
	ud2

/* VMX instructions of L2: they always exit (SDM 25.1.3). */
PROG fz_l2_vmx
	vmptrst (%rbx)
	vmread %r8, %rax
	vmxon (%rbx)
	invept (%rbx), %r9
	vmcall
	ud2

/* INVD and XSETBV always exit (XCR0 <- EDX:EAX = 0:R8). */
PROG fz_l2_invd
	invd
	movq %r8, %rax
	xorl %edx, %edx
	xorl %ecx, %ecx
	xsetbv
	vmcall
	ud2

/* Descriptor-table instructions (the LIDT/LGDT reload what SIDT/SGDT read). */
PROG fz_l2_desc
	sgdt (%rbx)
	sidt 16(%rbx)
	sldt %ax
	str %cx
	lidt 16(%rbx)
	lgdt (%rbx)
	vmcall
	ud2

/* RFLAGS as L2 starts with it, and an IRET to the next instruction. */
PROG fz_l2_flags
	pushfq
	popq %rax
	movq %rsp, %rdx
	movl %ss, %ecx
	pushq %rcx
	pushq %rdx
	pushfq
	movl %cs, %ecx
	pushq %rcx
	leaq 1f(%rip), %rcx
	pushq %rcx
	iretq
1:	pushfq
	popq %rbx
	vmcall
	ud2

/* MONITOR (%rax), MWAIT: run only with MWAIT exiting or a timer. */
PROG fz_l2_mwait
	xorl %ecx, %ecx
	xorl %edx, %edx
	monitor
	xorl %eax, %eax
	mwait
	vmcall
	ud2

/* IN from port R9W, R8 times: exits L1 may pass through, under a timer. */
PROG fz_l2_ioloop
	movw %r9w, %dx
1:	inb %dx, %al
	incq %rcx
	cmpq %r8, %rcx
	jb 1b
	vmcall
	ud2

/* Sends itself an NMI through the local APIC's ICR (RBX: its base, EAX:
 * the high half, ECX: the low half), then gives it time to arrive. */
PROG fz_l2_nmi
	movl %eax, 0x310(%rbx)
	movl %ecx, 0x300(%rbx)
	nop
	nop
	nop
	nop
	nop
	nop
	vmcall
	ud2

/* RDRAND RAX, RDSEED RDX (random: masked like the TSC values), RDPMC of
 * counter R8D, INVPCID of type R9 with the descriptor at (RBX) - each
 * exits only under its control (SDM 25.1.3), INVPCID faults (#UD) unless
 * "enable INVPCID" is set. */
PROG fz_l2_rand
	rdrand %rax
	rdseed %rdx
	movl %r8d, %ecx
	rdpmc
	invpcid (%rbx), %r9
	vmcall
	ud2

	.balign 64
	.globl fz_l2_end
fz_l2_end:
