/* task_asm.S - the 32-bit protected-mode side of the 'task' suite
 * (guest/tests/task.c).
 *
 * task_run() leaves long mode for 32-bit protected mode without paging (as
 * modes_tramp.S does), loads the suite's GDT, IDT and its first task's TR
 * (ts_main_sel), sets known registers and jumps to the scenario's action
 * (ts_action), which switches tasks.  Whichever task ends the scenario
 * jumps to ts_exit32 (at CPL 3 through INT 0x30), which goes back to long
 * mode, restores the kernel's GDT, IDT and TR, and returns.  Tasks record
 * their state with SNAP (ts_snaps); the default exception handlers
 * (interrupt gates) record the exception in ts_fault and end the scenario.
 * The code runs in place (the image is identity-mapped below 4 GiB). */

#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_CODE32 0x18
#define SEL_UDATA 0x33
#define EFER 0xc0000080
#define APIC_EOI 0xfee000b0
#define APIC_ICR 0xfee00300
#define SNAP_SIZE 84

/* SNAP tag: appends this task's state to ts_snaps (all registers kept). */
.macro SNAP tag
	pushl $\tag
	call snap32
	leal 4(%esp), %esp
.endm

.macro LABEL name
	.globl \name
\name:
.endm

	.text
	.code64
	.globl task_run
task_run:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	pushfq
	cli
	movq %rsp, ts_rsp64(%rip)
	movq %cr0, %rax
	movl %eax, ts_cr0_64(%rip)
	movq %cr3, %rax
	movl %eax, ts_cr3_64(%rip)
	movq %cr4, %rax
	movl %eax, ts_cr4_64(%rip)
	sgdt ts_gdt64(%rip)
	sidt ts_idt64(%rip)
	lgdt ts_gdtr32(%rip)
	pushq $SEL_CODE32
	pushq $1f
	lretq

	.code32
1:	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl $ts_main_stack_top, %esp
	/* Paging off leaves IA-32e mode; then LME and PAE off. */
	movl %cr0, %eax
	andl $0x7fffffff, %eax
	movl %eax, %cr0
	jmp 2f
2:	movl $EFER, %ecx
	rdmsr
	andl $~0x100, %eax
	wrmsr
	movl %cr4, %eax
	andl $~0x20, %eax
	movl %eax, %cr4
	lidt ts_idtr32
	movw ts_main_sel, %ax
	ltr %ax
	xorl %eax, %eax
	lldt %ax
	clts
	movl $0x11111111, %eax
	movl $0x22222222, %ecx
	movl $0x33333333, %edx
	movl $0x44444444, %ebx
	movl $0x55555555, %ebp
	movl $0x66666666, %esi
	movl $0x77777777, %edi
	pushl $2
	popfl
	jmp *ts_action

/* The end of every scenario, from any task at CPL 0. */
	.globl ts_exit32
ts_exit32:
	cli
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl $ts_exit_stack_top, %esp
	ljmp $SEL_CODE32, $1f
1:	movl %cr0, %eax
	andl $0x7fffffff, %eax
	movl %eax, %cr0
	jmp 2f
2:	movl ts_cr4_64, %eax
	movl %eax, %cr4
	movl ts_cr3_64, %eax
	movl %eax, %cr3
	movl $EFER, %ecx
	rdmsr
	orl $0x100, %eax
	wrmsr
	movl ts_cr0_64, %eax
	movl %eax, %cr0
	ljmp $SEL_CODE64, $3f

	.code64
3:	lgdt ts_gdt64(%rip)
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	/* The kernel's TSS descriptor (0x40) is still marked busy. */
	movq ts_gdt64+2(%rip), %rax
	andb $~2, 0x45(%rax)
	movw $0x40, %ax
	ltr %ax
	lidt ts_idt64(%rip)
	movq ts_rsp64(%rip), %rsp
	popfq
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	ret

	.code32
/* snap32: called by SNAP with the tag on the stack. */
snap32:
	pushfl
	pushal
	pushl %ds
	pushl %es
	movl $SEL_UDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl ts_nsnaps, %ebx
	cmpl $32, %ebx
	jae 9f
	imull $SNAP_SIZE, %ebx, %ebx
	addl $ts_snaps, %ebx
	/* es 0, ds 4, edi 8, esi 12, ebp 16, esp 20, ebx 24, edx 28, ecx 32,
	 * eax 36, eflags 40, return 44, tag 48; the caller's ESP is 52 up. */
	movl 48(%esp), %eax
	movl %eax, 0(%ebx)
	movl 36(%esp), %eax
	movl %eax, 4(%ebx)
	movl 32(%esp), %eax
	movl %eax, 8(%ebx)
	movl 28(%esp), %eax
	movl %eax, 12(%ebx)
	movl 24(%esp), %eax
	movl %eax, 16(%ebx)
	movl 20(%esp), %eax
	addl $12, %eax
	movl %eax, 20(%ebx)
	movl 16(%esp), %eax
	movl %eax, 24(%ebx)
	movl 12(%esp), %eax
	movl %eax, 28(%ebx)
	movl 8(%esp), %eax
	movl %eax, 32(%ebx)
	movl 40(%esp), %eax
	movl %eax, 36(%ebx)
	movl 52(%esp), %eax
	movl %eax, 40(%ebx)
	xorl %eax, %eax
	movw %cs, %ax
	movl %eax, 44(%ebx)
	movw %ss, %ax
	movl %eax, 48(%ebx)
	movw 4(%esp), %ax
	movl %eax, 52(%ebx)
	movw 0(%esp), %ax
	movl %eax, 56(%ebx)
	movw %fs, %ax
	movl %eax, 60(%ebx)
	movw %gs, %ax
	movl %eax, 64(%ebx)
	strw %ax
	movl %eax, 68(%ebx)
	sldtw %ax
	movl %eax, 72(%ebx)
	movl $-1, 76(%ebx)
	movl $-1, 80(%ebx)
	movw %cs, %ax
	testb $3, %al
	jnz 8f
	movl %cr0, %eax
	movl %eax, 76(%ebx)
	movl %cr3, %eax
	movl %eax, 80(%ebx)
8:	incl ts_nsnaps
9:	popl %es
	popl %ds
	popal
	popfl
	ret

/* --- task bodies (a TSS's EIP) --------------------------------------------- */

	.balign 16
LABEL tb_exit                   /* record, end the scenario */
	SNAP 1
	jmp ts_exit32

	.balign 16
LABEL tb_iret                   /* record, return to the previous task */
	SNAP 2
	iret
LABEL tb_iret_resumed
	SNAP 3
	jmp ts_exit32

	.balign 16
LABEL tb_fault                  /* an exception handler task */
	SNAP 4
	movl %cr2, %eax
	movl %eax, ts_cr2
	jmp ts_exit32

	.balign 16
LABEL tb_irq                    /* an interrupt handler task */
	SNAP 5
	movl $0, APIC_EOI
	iret
	jmp tb_irq

	.balign 16
LABEL tb_nmi                    /* an NMI handler task: a second NMI waits for its IRET */
	SNAP 6
	incl ts_nmi_count
	cmpl $1, ts_nmi_count
	jne 2f
	movl ts_icr_hi, %eax
	movl %eax, APIC_ICR + 0x10
	movl ts_icr_nmi, %eax
	movl %eax, APIC_ICR
1:	testl $0x1000, APIC_ICR
	jnz 1b
	SNAP 7
2:	iret
	jmp tb_nmi

	.balign 16
LABEL tb_dr7                    /* records DR7, clears it and DR0, ends the scenario */
	SNAP 1
	movl %dr7, %eax
	movl %eax, ts_dr7
	movl $0x400, %eax
	movl %eax, %dr7
	xorl %eax, %eax
	movl %eax, %dr0
	jmp ts_exit32

	.balign 16
LABEL tb_paging                 /* reads linear 0x40000000 under its own CR3 */
	movl 0x40000000, %eax
	SNAP 8
	iret
	jmp ts_exit32

	.balign 16
LABEL tb_user_io                /* CPL 3: one port the I/O map allows, one it denies */
	SNAP 9
	pushl %eax
	inb $0x80, %al
	popl %eax
	SNAP 10
	pushl %eax
LABEL tb_user_io_denied
	inb $0x84, %al
	popl %eax
	SNAP 11
	int $0x30

	.balign 16
LABEL tb_user_jmp_gate          /* CPL 3: JMP through a DPL 0 task gate */
	ljmp $0xa8, $0
	int $0x30

	.balign 16
LABEL tb_user_int               /* CPL 3: INT through a DPL 0 task gate */
	int $0x40
	int $0x30

/* --- actions (run by the first task, CPL 0) ------------------------------- */

	.balign 16
LABEL act_jmp_a
	ljmp $0x58, $0
	.balign 16
LABEL act_call_a
	lcall $0x58, $0
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_jmp_b
	ljmp $0x60, $0
	.balign 16
LABEL act_call_b
	lcall $0x60, $0
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_jmp_gate
	ljmp $0xa8, $0
	.balign 16
LABEL act_call_gate
	lcall $0xa8, $0
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_int40
	int $0x40
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_int41
	int $0x41
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_int3
	int3
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_int1                  /* INT1 (ICEBP) */
	.byte 0xf1
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_gp                    /* #GP(0x1234): an LDT selector, LDTR null */
	movl $0x1234, %eax
LABEL act_gp_insn
	movl %eax, %ds
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_rdmsr                 /* #GP(0) raised by the hypervisor (an MSR that exits and does not exist) */
	movl $0x12345678, %ecx
LABEL act_rdmsr_insn
	rdmsr
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_ud
	ud2
	.balign 16
LABEL act_iret_nt               /* IRET with NT=1 to the back link */
	pushfl
	orl $0x4000, (%esp)
	popfl
LABEL act_iret_nt_insn
	iret
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_call_t16
	lcall $0xa0, $0
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_call_u
	lcall $0x68, $0
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_jmp_tbit              /* a jump to a TSS with the T bit set */
	movl $0xffff0ff0, %eax
	movl %eax, %dr6
	ljmp $0x58, $0
	.balign 16
LABEL act_irq                   /* a fixed self IPI through a task gate */
	movl $0, APIC_ICR + 0x10
	movl ts_icr_fixed, %eax
	movl %eax, APIC_ICR
1:	testl $0x1000, APIC_ICR
	jnz 1b
	sti
	nop
LABEL act_irq_window_end
	cli
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_nmi                   /* an NMI to ourselves through a task gate */
	movl ts_icr_hi, %eax
	movl %eax, APIC_ICR + 0x10
	movl ts_icr_nmi, %eax
	movl %eax, APIC_ICR
1:	cmpl $2, ts_nmi_count
	jb 1b
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_paging                /* paging on (ts_pg_cr4/cr3), a CALL to a task with its own CR3 */
	movl ts_pg_cr4, %eax
	movl %eax, %cr4
	movl ts_pg_cr3, %eax
	movl %eax, %cr3
	movl %cr0, %eax
	orl $0x80000000, %eax
	movl %eax, %cr0
	jmp 1f
1:	movl 0x40000000, %eax
	SNAP 21
	lcall $0x58, $0
	movl 0x40000000, %eax
	SNAP 22
	jmp ts_exit32
	.balign 16
LABEL act_paging_then           /* paging on (ts_pg_cr4/cr3) with CR0.WP, then the action ts_action2 */
	movl ts_pg_cr4, %eax
	movl %eax, %cr4
	movl ts_pg_cr3, %eax
	movl %eax, %cr3
	movl %cr0, %eax
	orl $0x80010000, %eax
	movl %eax, %cr0
	jmp 1f
1:	movl $0x11111111, %eax
	pushl $2
	popfl
	jmp *ts_action2
	.balign 16
LABEL act_pf                    /* #PF: linear 0x40002000 is not present under the suite's tables */
	movl 0x40002000, %eax
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_code16_call           /* to 16-bit code (selector 0xd0), which CALLs A */
	ljmp $0xd0, $(ts16_main_call - ts16_code)
	.balign 16
LABEL act_code16_int            /* to 16-bit code, which does INT 40h */
	ljmp $0xd0, $(ts16_main_int - ts16_code)
	.balign 16
LABEL act_dr7                   /* breakpoint 0 enabled locally and globally, LE, GE: JMP to A */
	movl $0xfffff000, %eax
	movl %eax, %dr0
	movl ts_dr7, %eax
	movl %eax, %dr7
	movl $0x11111111, %eax
	ljmp $0x58, $0
	.balign 16
LABEL act_code16_wrap           /* to the JMP to A that ends at offset FFFFh of the segment 0xd8 */
	ljmp $0xd8, $0xfffb
	.balign 16
LABEL act16_back                /* back from 16-bit code */
	SNAP 20
	jmp ts_exit32
	.balign 16
LABEL act_end

/* --- default exception handlers (32-bit interrupt gates) ------------------ */

	.balign 16
	.globl ts_stubs
ts_stubs:
	.set vec, 0
	.rept 32
	.balign 16
	.if (vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21)
	.else
	pushl $0
	.endif
	pushl $vec
	jmp fault_common
	.set vec, vec + 1
	.endr
fault_common:                   /* vector, error code, eip, cs, eflags */
	pushal
	movl $SEL_UDATA, %eax
	movl %eax, %ds
	movl 32(%esp), %eax
	movl %eax, ts_fault + 4
	movl 36(%esp), %eax
	movl %eax, ts_fault + 8
	movl 40(%esp), %eax
	movl %eax, ts_fault + 12
	movl 44(%esp), %eax
	movl %eax, ts_fault + 16
	movl 48(%esp), %eax
	movl %eax, ts_fault + 20
	xorl %eax, %eax
	strw %ax
	movl %eax, ts_fault + 24
	movl %dr6, %eax
	movl %eax, ts_fault + 28
	movl $1, ts_fault
	jmp ts_exit32

/* --- a 16-bit task (a 16-bit code segment based at ts16_code) ------------- */

	.code16
	.balign 16
	.globl ts16_code
ts16_code:
	addr32 movw %ax, ts16_rec + 0
	addr32 movw %cx, ts16_rec + 2
	addr32 movw %dx, ts16_rec + 4
	addr32 movw %bx, ts16_rec + 6
	addr32 movw %sp, ts16_rec + 8
	addr32 movw %bp, ts16_rec + 10
	addr32 movw %si, ts16_rec + 12
	addr32 movw %di, ts16_rec + 14
	pushfw
	popw %ax
	addr32 movw %ax, ts16_rec + 16
	movw %cs, %ax
	addr32 movw %ax, ts16_rec + 18
	movw %ss, %ax
	addr32 movw %ax, ts16_rec + 20
	movw %ds, %ax
	addr32 movw %ax, ts16_rec + 22
	movw %es, %ax
	addr32 movw %ax, ts16_rec + 24
	movw %fs, %ax
	addr32 movw %ax, ts16_rec + 26
	movw %gs, %ax
	addr32 movw %ax, ts16_rec + 28
	strw %ax
	addr32 movw %ax, ts16_rec + 30
	movl %cr0, %eax
	addr32 movl %eax, ts16_rec + 32
	.globl ts16_iret
ts16_iret:
	iret
	ljmpl $SEL_CODE32, $ts_exit32

/* A 16-bit exception handler task: records SP, FLAGS and TR, then JMPs to
 * A, which ends the scenario from a 32-bit task. */
	.globl ts16_handler
ts16_handler:
	addr32 movw %sp, ts16_rec + 8
	pushfw
	popw %ax
	addr32 movw %ax, ts16_rec + 16
	strw %ax
	addr32 movw %ax, ts16_rec + 30
	ljmp $0x58, $0

/* The first task in 16-bit code (offsets in the segment of ts16_code). */
	.globl ts16_main_call
ts16_main_call:
	lcall $0x58, $0
	ljmpl $SEL_CODE32, $act16_back
	.globl ts16_main_int
ts16_main_int:
	int $0x40
	ljmpl $SEL_CODE32, $act16_back

/* A 5-byte JMP to A, run at offset FFFBh of a segment based 0xfffb below
 * it (selector 0xd8): the next instruction's offset is 10000h. */
	.globl ts16_wrap
ts16_wrap:
	ljmp $0x58, $0

/* --- stacks ------------------------------------------------------------- */

	.bss
	.balign 16
	.space 1024
	.globl ts_main_stack_top
ts_main_stack_top:
	.space 1024
ts_exit_stack_top:
