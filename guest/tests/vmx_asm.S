/* vmx_asm.S - the world switch of the guest kernel's test hypervisor, the
 * L2's interrupt stubs and the L2 code snippets of the vmx suites.
 *
 * The L2 runs the same image as the kernel (identity EPT, the kernel's page
 * tables), in 64-bit mode at CPL 0, on its own stack and IDT.  Snippets end
 * in VMCALL; the L1 resumes them past each exit it expects. */

	.text
	.code64

/* struct l2_regs (guest/vmx.h) */
#define R_RAX 0
#define R_RBX 8
#define R_RCX 16
#define R_RDX 24
#define R_RSI 32
#define R_RDI 40
#define R_RBP 48
#define R_R8 56
#define R_R9 64
#define R_R10 72
#define R_R11 80
#define R_R12 88
#define R_R13 96
#define R_R14 104
#define R_R15 112

#define VMCS_HOST_RSP 0x6c14
#define VMCS_HOST_RIP 0x6c16

	.macro LOAD_GUEST
	movq R_RAX(%rdi), %rax
	movq R_RBX(%rdi), %rbx
	movq R_RCX(%rdi), %rcx
	movq R_RDX(%rdi), %rdx
	movq R_RSI(%rdi), %rsi
	movq R_RBP(%rdi), %rbp
	movq R_R8(%rdi), %r8
	movq R_R9(%rdi), %r9
	movq R_R10(%rdi), %r10
	movq R_R11(%rdi), %r11
	movq R_R12(%rdi), %r12
	movq R_R13(%rdi), %r13
	movq R_R14(%rdi), %r14
	movq R_R15(%rdi), %r15
	movq R_RDI(%rdi), %rdi
	.endm

/* int vmx_run(struct l2_regs *regs, int mode)
 * mode: 0 VMLAUNCH, 1 VMRESUME, 2 VMLAUNCH right after MOV SS (blocking by
 * MOV SS), | 4 keep HOST_RSP/HOST_RIP as the VMCS has them.
 * Returns 0 after a VM exit (regs updated), 1 VMfailInvalid, 2 VMfailValid,
 * 4 if writing HOST_RSP/HOST_RIP failed.  HOST_RSP points at the saved regs
 * pointer, under the callee-saved registers. */
	.globl vmx_run
	.type vmx_run, @function
vmx_run:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	pushq %rdi
	testl $4, %esi
	jnz 1f
	movl $VMCS_HOST_RSP, %eax
	vmwrite %rsp, %rax
	jbe .Lwrfail
	leaq vmx_exit_stub(%rip), %rdx
	movl $VMCS_HOST_RIP, %eax
	vmwrite %rdx, %rax
	jbe .Lwrfail
1:	movw %ss, vmx_ss_slot(%rip)
	andl $3, %esi
	cmpl $1, %esi
	je 2f
	cmpl $2, %esi
	je 3f
	LOAD_GUEST
	vmlaunch
	jmp .Lfailed
2:	LOAD_GUEST
	vmresume
	jmp .Lfailed
3:	LOAD_GUEST
	movw vmx_ss_slot(%rip), %ss
	vmlaunch
.Lfailed:
	/* CF: VMfailInvalid, ZF: VMfailValid (mov/cmov leave the flags alone) */
	movl $3, %eax
	movl $1, %ecx
	cmovcl %ecx, %eax
	movl $2, %ecx
	cmovzl %ecx, %eax
	jmp .Lout
.Lwrfail:
	movl $4, %eax
.Lout:
	addq $8, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.size vmx_run, . - vmx_run

/* VM exits land here with RSP = HOST_RSP: (%rsp) is the regs pointer. */
	.globl vmx_exit_stub
	.type vmx_exit_stub, @function
vmx_exit_stub:
	xchgq %rdi, (%rsp)
	movq %rax, R_RAX(%rdi)
	pushfq                           /* the RFLAGS the exit loaded */
	popq %rax
	movq %rax, vmx_exit_rflags(%rip)
	movq %rbx, R_RBX(%rdi)
	movq %rcx, R_RCX(%rdi)
	movq %rdx, R_RDX(%rdi)
	movq %rsi, R_RSI(%rdi)
	movq %rbp, R_RBP(%rdi)
	movq %r8, R_R8(%rdi)
	movq %r9, R_R9(%rdi)
	movq %r10, R_R10(%rdi)
	movq %r11, R_R11(%rdi)
	movq %r12, R_R12(%rdi)
	movq %r13, R_R13(%rdi)
	movq %r14, R_R14(%rdi)
	movq %r15, R_R15(%rdi)
	popq %rax
	movq %rax, R_RDI(%rdi)
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	xorl %eax, %eax
	ret
	.size vmx_exit_stub, . - vmx_exit_stub

/* --- the L2's interrupt handlers ------------------------------------------
 * One 16-byte stub per vector (l2_isr_stubs + 16 * v) pushes -1 where the
 * CPU pushes no error code, then the vector.  The common part records the
 * event in l2_event, VMCALLs, and returns with IRETQ if resumed. */
	.balign 16
	.globl l2_isr_stubs
l2_isr_stubs:
	.set vec, 0
	.rept 256
	.balign 16
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21)
	.else
	pushq $-1
	.endif
	pushq $vec
	jmp l2_isr_common
	.set vec, vec + 1
	.endr

l2_isr_common:
	pushq %rax
	movq 8(%rsp), %rax
	movq %rax, l2_event(%rip)        /* vector */
	movq 16(%rsp), %rax
	movq %rax, l2_event+8(%rip)      /* error code or -1 */
	movq 24(%rsp), %rax
	movq %rax, l2_event+16(%rip)     /* return RIP */
	movq %cr2, %rax
	movq %rax, l2_event+24(%rip)     /* CR2 */
	incq l2_event+32(%rip)           /* count */
	popq %rax
	vmcall
	addq $16, %rsp
	iretq

/* --- L2 snippets ------------------------------------------------------- */
	.macro SNIPPET name
	.balign 16
	.globl \name
\name:
	.endm

SNIPPET l2_vmcall
	vmcall
	ud2

SNIPPET l2_idle
	nop
	nop
	vmcall
	ud2

/* CPUID exits; the L1 answers it; the L2 swaps RAX and RBX. */
SNIPPET l2_cpuid
	cpuid
	xchgq %rax, %rbx
	vmcall
	ud2

/* One exit per instruction with the instruction-exiting controls set.
 * RBX points at a scratch quadword; DX = 0x80. */
SNIPPET l2_insns
	cpuid
	hlt
	invlpg (%rbx)
	rdtsc
	rdtscp
	movq %cr8, %rax
	movq %rdx, %cr8
	movq %dr7, %rax
	movq %rax, %dr1
	pause
	outb %al, $0x80
	inb %dx, %al
	vmptrst (%rbx)
	vmread %rcx, %rax
	vmcall
	.globl l2_insns_end
l2_insns_end:
	ud2

/* I/O bitmaps: 0x80 passes, 0x81 and 0x9abc are in the bitmaps. */
SNIPPET l2_io
	outb %al, $0x80
	outb %al, $0x81
	movw $0x9abc, %dx
	inb %dx, %al
	outw %ax, $0x80
	movw $0xffff, %dx
	inw %dx, %ax
	vmcall
	ud2

SNIPPET l2_io_uncond
	outb %al, $0x80
	vmcall
	ud2

/* RDMSR of SYSENTER_CS (low range) and of FS_BASE (high range), three
 * times, a VMCALL after each round: vmx_exits.msr_bitmap_change. */
SNIPPET l2_msr_rounds
	.rept 3
	movl $0x174, %ecx
	rdmsr
	movl $0xc0000100, %ecx
	rdmsr
	vmcall
	.endr
	ud2

/* Segment registers and MSRs a hypervisor seldom reads after an exit
 * (under Nestor copied into VMCS12 only when read: vmx_exits.rare_state).
 * Round 1 changes them: DS null, ES and GS the data selector in SS, FS
 * null; FS base, SYSENTER ESP and EIP by WRMSR (passed through).  Round 2
 * reads back into R8-R11 what L1 changed: ES, GS, FS base, SYSENTER_EIP. */
SNIPPET l2_rare
	movw %ss, %ax
	xorl %ecx, %ecx
	movw %cx, %ds
	movw %ax, %es
	movw %cx, %fs
	movw %ax, %gs
	movl $0xc0000100, %ecx
	movl $0x5f5000, %eax
	movl $0x7, %edx
	wrmsr
	movl $0x175, %ecx
	movl $0x12340, %eax
	xorl %edx, %edx
	wrmsr
	movl $0x176, %ecx
	movl $0x56780, %eax
	wrmsr
	vmcall
	movw %es, %r8w
	movw %gs, %r9w
	movl $0xc0000100, %ecx
	rdmsr
	shlq $32, %rdx
	orq %rdx, %rax
	movq %rax, %r10
	movl $0x176, %ecx
	rdmsr
	movl %eax, %r11d
	vmcall
	ud2

/* The same two ports, bitmap A then B, three times, a VMCALL after each
 * round: vmx_exits.io_bitmap_change edits the bitmaps in between. */
SNIPPET l2_io_rounds
	.rept 3
	outb %al, $0x80
	movw $0x9abc, %dx
	outb %al, %dx
	vmcall
	.endr
	ud2

/* MSR bitmaps: 0x175 read and 0x176 write pass, the others exit. */
SNIPPET l2_msr
	movl $0x175, %ecx
	rdmsr
	movl %eax, %r8d
	movl $0x174, %ecx
	rdmsr
	movl $0x176, %ecx
	movl $0x5678, %eax
	xorl %edx, %edx
	wrmsr
	movl $0x175, %ecx
	wrmsr
	movl $0xc0000100, %ecx
	rdmsr
	movl $0x40000000, %ecx
	rdmsr
	wrmsr
	vmcall
	ud2

/* CR accesses under the CR0/CR4 masks (TS; VMXE and TSD) and CR3 exiting. */
SNIPPET l2_cr
	movq %cr0, %rax
	movq %cr4, %rbx
	movq %rax, %cr0
	movq %rax, %rcx
	xorq $8, %rcx
	movq %rcx, %cr0
	clts
	movq %rbx, %cr4
	movq %rbx, %rsi
	orq $0x2000, %rsi
	movq %rsi, %cr4
	movq %cr3, %rdx
	movq %rdx, %cr3
	.globl l2_cr3_again
l2_cr3_again:
	movq %rdx, %cr3
	vmcall
	ud2

/* CR8 under TPR shadow: read VTPR (RAX), write RDX (no exit at or above
 * the threshold), read it back (RBX), write RSI (below: a trap-like exit
 * after the write). */
SNIPPET l2_cr8
	movq %cr8, %rax
	movq %rdx, %cr8
	movq %cr8, %rbx
	movq %rsi, %cr8
	.globl l2_cr8_below
l2_cr8_below:
	movq %cr8, %rcx
	vmcall
	ud2

/* The APIC-access page at RBX: read offset 0x20, write 0x300, then the
 * TPR (0x80) read into RCX and written from RDX. */
SNIPPET l2_apic_page
	movl 0x20(%rbx), %eax
	.globl l2_apic_page_write
l2_apic_page_write:
	movl %eax, 0x300(%rbx)
	.globl l2_apic_page_tpr
l2_apic_page_tpr:
	movl 0x80(%rbx), %ecx
	movl %edx, 0x80(%rbx)
	vmcall
	ud2

/* The x2APIC TPR MSR (808h): read into RBX:RDI, write RSI, read again
 * into RAX:RDX. */
SNIPPET l2_x2tpr
	movl $0x808, %ecx
	rdmsr
	movq %rax, %rbx
	movq %rdx, %rdi
	movq %rsi, %rax
	movq %rsi, %rdx
	shrq $32, %rdx
	wrmsr
	.globl l2_x2tpr_written
l2_x2tpr_written:
	rdmsr
	vmcall
	ud2

/* PAT, EFER.SCE and DR7 written by the L2 itself (nothing intercepted). */
SNIPPET l2_state
	movl $0x277, %ecx
	movl $0x00070406, %eax
	xorl %edx, %edx
	wrmsr
	movl $0xc0000080, %ecx
	rdmsr
	xorl $1, %eax
	wrmsr
	movq $0x600, %rax
	movq %rax, %dr7
	subq $0x40, %rsp
	pushq $0xc03                     /* OF DF CF */
	popfq
	vmcall
	ud2

SNIPPET l2_ud2
	ud2
	vmcall

SNIPPET l2_int3
	int3
	vmcall
	ud2

/* Reads (%rbx): RBX is a linear address the kernel does not map. */
SNIPPET l2_pf
	movq (%rbx), %rax
	vmcall
	ud2

/* Reads (%rbx), writes 8(%rbx): RBX points into ept_probe. */
SNIPPET l2_ept_rw
	movq (%rbx), %rax
	movq %rcx, 8(%rbx)
	vmcall
	ud2

/* Writes RCX to the quadword at RBX, its first instruction. */
SNIPPET l2_write_rbx
	movq %rcx, (%rbx)
	vmcall
	ud2

/* Reads the quadword at RBX. */
SNIPPET l2_read_rbx
	movq (%rbx), %rax
	vmcall
	ud2

/* VMREAD and VMWRITE in VMX non-root operation (VMCS shadowing): reads the
 * field RBX into RAX (RFLAGS after it into RCX), writes RDX into the field
 * R8 (RFLAGS into RSI), reads the field R9 into the quadword at R10
 * (RFLAGS into RDI). */
SNIPPET l2_shadow
	vmread %rbx, %rax
	pushfq
	popq %rcx
	vmwrite %rdx, %r8
	pushfq
	popq %rsi
	vmread %r9, (%r10)
	pushfq
	popq %rdi
	vmcall
	ud2

/* The TSC as the L2 reads it: RDTSC into RBX, RDMSR of IA32_TSC into RAX. */
SNIPPET l2_tsc
	rdtsc
	shlq $32, %rdx
	orq %rdx, %rax
	movq %rax, %rbx
	movl $0x10, %ecx
	rdmsr
	shlq $32, %rdx
	orq %rdx, %rax
	vmcall
	ud2

/* A list of operations at R9, 24 bytes each: kind (0 read, 1 write, 2
 * end), address, value.  l2_mem_ops reads or writes the dword at RBX plus
 * the address, l2_msr_ops the MSR; a read stores what it got in the value.
 * Then VMCALL at l2_ops_end. */
SNIPPET l2_mem_ops
1:	movq (%r9), %rax
	cmpq $2, %rax
	je l2_ops_end
	movq 8(%r9), %rsi
	testq %rax, %rax
	jnz 2f
	movl (%rbx,%rsi), %eax
	movq %rax, 16(%r9)
	addq $24, %r9
	jmp 1b
2:	movl 16(%r9), %eax
	movl %eax, (%rbx,%rsi)
	addq $24, %r9
	jmp 1b

SNIPPET l2_msr_ops
1:	movq (%r9), %rax
	cmpq $2, %rax
	je l2_ops_end
	movl 8(%r9), %ecx
	testq %rax, %rax
	jnz 2f
	rdmsr
	shlq $32, %rdx
	orq %rdx, %rax
	movq %rax, 16(%r9)
	addq $24, %r9
	jmp 1b
2:	movq 16(%r9), %rax
	movq %rax, %rdx
	shrq $32, %rdx
	wrmsr
	addq $24, %r9
	jmp 1b
	.globl l2_ops_end
l2_ops_end:
	vmcall
	ud2

/* Reads IA32_S_CET into RBX and IA32_INTERRUPT_SSP_TABLE_ADDR into RSI,
 * then writes R8 to IA32_S_CET unless it is 0. */
SNIPPET l2_cet
	movl $0x6a2, %ecx
	rdmsr
	shlq $32, %rdx
	orq %rdx, %rax
	movq %rax, %rbx
	movl $0x6a8, %ecx
	rdmsr
	shlq $32, %rdx
	orq %rdx, %rax
	movq %rax, %rsi
	testq %r8, %r8
	jz 1f
	movl $0x6a2, %ecx
	movq %r8, %rax
	movq %r8, %rdx
	shrq $32, %rdx
	wrmsr
1:	vmcall
	ud2

/* VMFUNC (EAX function, ECX index) between two reads of the quadword at
 * RBX, into R8 before and R9 after. */
SNIPPET l2_vmfunc
	movq (%rbx), %r8
	vmfunc
	movq (%rbx), %r9
	vmcall
	ud2

/* Calls a RET placed in ept_probe. */
SNIPPET l2_ept_x
	call *%rbx
	vmcall
	ud2

SNIPPET l2_sti
	sti
	nop
	nop
	vmcall
	ud2

/* An IRET to the next instruction (unblocks virtual NMIs). */
SNIPPET l2_iret
	movq %rsp, %rax
	pushq $0x10
	pushq %rax
	pushfq
	pushq $0x08
	leaq l2_iret_done(%rip), %rax
	pushq %rax
	iretq
	.globl l2_iret_done
l2_iret_done:
	nop
	vmcall
	ud2

SNIPPET l2_loop
	jmp l2_loop
	.globl l2_loop_end
l2_loop_end:
	ud2

SNIPPET l2_hlt
	hlt
	vmcall
	ud2

/* Writes the local APIC's ICR (RBX = APIC base, EAX = high, ECX = low). */
SNIPPET l2_self_nmi
	movl %eax, 0x310(%rbx)
	movl %ecx, 0x300(%rbx)
	.globl l2_self_nmi_sent
l2_self_nmi_sent:
	nop
	nop
	nop
	vmcall
	ud2

/* Real mode (unrestricted guest), CS based at the page of the snippet. */
	.code16
	.balign 16
	.globl l2_real
l2_real:
	movl %cr0, %eax
	cpuid
	movw $0x1234, %bx
	vmcall
	ud2
	.code64

	.data
vmx_ss_slot:
	.short 0
	.balign 8
	.globl vmx_exit_rflags
vmx_exit_rflags:
	.quad 0
