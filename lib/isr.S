/* isr.S - one stub per interrupt vector, all funnelling into trap_entry()
 * (shared by the hypervisor and the guest kernels).
 * Each stub pushes a dummy error code when the CPU does not push one, then
 * the vector number, so every trap frame has the same shape (struct
 * trap_frame in lib/trap_frame.h). */

	.text
	.code64
	.altmacro

	.macro STUB v
	.balign 16
isr_stub_\v:
	.if (\v == 8 || (\v >= 10 && \v <= 14) || \v == 17 || \v == 21 || \v == 29 || \v == 30)
	.else
	pushq $0
	.endif
	pushq $\v
	jmp isr_common
	.endm

	.balign 16
	.globl isr_stubs
isr_stubs:
	.set v, 0
	.rept 256
	STUB %v
	.set v, v + 1
	.endr

	.balign 16
isr_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	cld
	movq %rsp, %rdi
	call trap_entry
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp                   /* vector and error code */
	iretq

	/* The IDT builder finds stub v at isr_stubs + 16 * v; a stub that grew
	 * past 16 bytes would break that, so check the total at link time. */
	.section .rodata
	.globl isr_stubs_size
isr_stubs_size:
	.quad isr_common - isr_stubs
