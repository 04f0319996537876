/* setjmp.S - minimal setjmp/longjmp for unwinding out of fault handlers.
 * jmpbuf: rbx rbp r12 r13 r14 r15 rsp rip rflags */
	.text
	.code64
	.globl g_setjmp
g_setjmp:
	movq %rbx, 0(%rdi)
	movq %rbp, 8(%rdi)
	movq %r12, 16(%rdi)
	movq %r13, 24(%rdi)
	movq %r14, 32(%rdi)
	movq %r15, 40(%rdi)
	leaq 8(%rsp), %rax               /* rsp after our return */
	movq %rax, 48(%rdi)
	movq (%rsp), %rax                /* our return address */
	movq %rax, 56(%rdi)
	pushfq
	popq %rax
	movq %rax, 64(%rdi)
	xorl %eax, %eax
	ret

	.globl g_longjmp
g_longjmp:
	movq 0(%rdi), %rbx
	movq 8(%rdi), %rbp
	movq 16(%rdi), %r12
	movq 24(%rdi), %r13
	movq 32(%rdi), %r14
	movq 40(%rdi), %r15
	movq 48(%rdi), %rsp
	pushq 64(%rdi)
	popfq
	movl %esi, %eax
	jmpq *56(%rdi)

/* user_trampoline: entered at CPL 3 with RDI = fn, RSI = arg; calls fn(arg)
 * and returns to the kernel through int $0x80 (see run_user). */
	.globl user_trampoline
user_trampoline:
	movq %rdi, %rax
	movq %rsi, %rdi
	call *%rax
	int $0x80
	ud2
