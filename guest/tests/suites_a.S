/* suites_a.S - assembly helpers of the cr, msr and exceptions suites.
 *
 * Each probe is a function fn(void *arg) for catch_fault()/run_user().  The
 * instruction expected to fault carries a global label NAME_insn, so a test
 * prints the saved RIP relative to the instruction (fault: +0, trap: +len)
 * and never an absolute address. */

	.text
	.code64

	.macro PROBE name
	.balign 16
	.globl \name
	.type \name, @function
\name:
	.endm

	.macro INSN name
	.globl \name\()_insn
\name\()_insn:
	.endm

/* uint64_t sa_cr4_pulse(uint64_t value, uint64_t restore): CR4 = value, read
 * it back, CR4 = restore; returns what was read.  Nothing but registers is
 * touched while CR4 = value (so SMAP cannot fault on the stack). */
PROBE sa_cr4_pulse
	movq %rdi, %cr4
	movq %cr4, %rax
	movq %rsi, %cr4
	ret

/* Accesses to control registers that do not exist: #UD. */
PROBE sa_rd_cr1
	movq %cr1, %rax
	ret
PROBE sa_wr_cr5
	xorl %eax, %eax
	movq %rax, %cr5
	ret
PROBE sa_rd_cr7
	movq %cr7, %rax
	ret
PROBE sa_rd_cr9
	movq %cr9, %rax
	ret
PROBE sa_rd_cr15
	movq %cr15, %rax
	ret
/* LOCK MOV from CR0: AMD's alternative encoding of CR8, #UD on Intel. */
PROBE sa_lock_cr0
	.byte 0xf0, 0x0f, 0x20, 0xc0
	ret

/* SMSW / LMSW / CLTS.  arg: uint64_t *; SMSW stores there. */
PROBE sa_smsw32
	movq $-1, %rax
	smsw %eax
	movq %rax, (%rdi)
	ret
PROBE sa_smsw16
	movq $-1, %rax
	smsw %ax
	movq %rax, (%rdi)
	ret
PROBE sa_smsw_mem
	movq $-1, (%rdi)
	smsww (%rdi)
	ret
PROBE sa_lmsw
	movw (%rdi), %ax
	lmsw %ax
	ret
PROBE sa_clts
	clts
	ret

/* --- exceptions ----------------------------------------------------------- */
PROBE sa_div0
	movl $1, %eax
	xorl %edx, %edx
	xorl %ecx, %ecx
INSN sa_div0
	divl %ecx
	ret
PROBE sa_idiv32
	movl $0x80000000, %eax
	cltd
	movl $-1, %ecx
INSN sa_idiv32
	idivl %ecx
	ret
PROBE sa_idiv64
	movabsq $0x8000000000000000, %rax
	cqto
	movq $-1, %rcx
INSN sa_idiv64
	idivq %rcx
	ret
PROBE sa_div_quot
	movl $2, %edx                    /* 2:0 / 1 does not fit 32 bits */
	xorl %eax, %eax
	movl $1, %ecx
INSN sa_div_quot
	divl %ecx
	ret
PROBE sa_int3
INSN sa_int3
	int3
	ret
PROBE sa_int_3
INSN sa_int_3
	.byte 0xcd, 0x03                 /* int $3, the two-byte form */
	ret
PROBE sa_icebp
INSN sa_icebp
	.byte 0xf1                       /* INT1 / ICEBP */
	ret
PROBE sa_ud2
INSN sa_ud2
	ud2
	ret
PROBE sa_push_es
INSN sa_push_es
	.byte 0x06                       /* PUSH ES: invalid in 64-bit mode */
	ret
PROBE sa_into
INSN sa_into
	.byte 0xce                       /* INTO: invalid in 64-bit mode */
	ret
PROBE sa_lock_nop
INSN sa_lock_nop
	.byte 0xf0, 0x90                 /* LOCK NOP */
	ret
PROBE sa_syscall
INSN sa_syscall
	syscall
	ret
/* arg: the non-canonical address */
PROBE sa_load_noncanon
INSN sa_load_noncanon
	movq (%rdi), %rax
	ret
PROBE sa_stack_noncanon
	pushq %rbp
	movq %rdi, %rbp
INSN sa_stack_noncanon
	movq (%rbp), %rax
	popq %rbp
	ret
/* arg: a far pointer m16:32 */
PROBE sa_ljmp
INSN sa_ljmp
	ljmpl *(%rdi)
	ret
PROBE sa_lcall
INSN sa_lcall
	lcalll *(%rdi)
	ret
/* arg: the selector, loaded into DS (then DS is restored) */
PROBE sa_load_ds
	movl %ds, %eax
	movl %edi, %edx
INSN sa_load_ds
	movl %edx, %ds
	movl %eax, %ds
	ret
PROBE sa_load_ss
	movl %ss, %eax
	movl %edi, %edx
INSN sa_load_ss
	movl %edx, %ss
	movl %eax, %ss
	ret
/* Software interrupts to vectors that push no error code. */
PROBE sa_int_20
INSN sa_int_20
	int $0x20
	ret
PROBE sa_int_41
INSN sa_int_41
	int $0x41
	ret
PROBE sa_int_ff
INSN sa_int_ff
	int $0xff
	ret
/* Privileged instructions (for CPL 3). */
PROBE sa_hlt
INSN sa_hlt
	hlt
	ret
PROBE sa_cli
INSN sa_cli
	cli
	ret
PROBE sa_in80
INSN sa_in80
	inb $0x80, %al
	ret
/* Misaligned 4-byte load with RFLAGS.AC set; arg: an aligned buffer */
PROBE sa_misaligned_ac
	pushfq
	orl $0x40000, (%rsp)
	popfq
INSN sa_misaligned_ac
	movl 1(%rdi), %eax
	pushfq
	andl $~0x40000, (%rsp)
	popfq
	ret
/* Single step: TF set by POPFQ traps after the instruction that follows. */
PROBE sa_single_step
	pushfq
	orl $0x100, (%rsp)
	popfq
INSN sa_single_step
	nop
	nop
	pushfq
	andl $~0x100, (%rsp)
	popfq
	ret
/* x87 and SSE instructions, for CR0.TS / CR0.EM / CR4.OSFXSR */
PROBE sa_fninit
INSN sa_fninit
	fninit
	ret
PROBE sa_fwait
INSN sa_fwait
	fwait
	ret
PROBE sa_xorps
INSN sa_xorps
	xorps %xmm0, %xmm0
	ret
/* Memory accesses for the page-fault tests; arg: the address */
PROBE sa_read8
INSN sa_read8
	movb (%rdi), %al
	ret
PROBE sa_write8
INSN sa_write8
	movb $0x5a, (%rdi)
	ret
/* INSB/OUTSB through (%rdi) with port 0x8900, which every Nestor
 * intercepts: the access is emulated through the guest's page tables. */
PROBE sa_insb8
	movw $0x8900, %dx
INSN sa_insb8
	insb
	ret
PROBE sa_outsb8
	movq %rdi, %rsi
	movw $0x8900, %dx
INSN sa_outsb8
	outsb
	ret
/* The same with a segment override: OUTS reads FS:/GS:RSI (64-bit mode:
 * the base of FS or GS is added), INS writes ES:RDI whatever the prefix. */
PROBE sa_fs_outsb8
	movq %rdi, %rsi
	movw $0x8900, %dx
INSN sa_fs_outsb8
	outsb %fs:(%rsi), %dx
	ret
PROBE sa_gs_outsb8
	movq %rdi, %rsi
	movw $0x8900, %dx
INSN sa_gs_outsb8
	outsb %gs:(%rsi), %dx
	ret
PROBE sa_fs_insb8
	movw $0x8900, %dx
INSN sa_fs_insb8
	.byte 0x64
	insb
	ret
PROBE sa_call_arg
INSN sa_call_arg
	call *%rdi
	ret
/* Copied into a test page: a function that only returns. */
	.globl sa_ret_code
sa_ret_code:
	ret
