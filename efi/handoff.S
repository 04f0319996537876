/* handoff.S - the moment nestor.efi gives the CPU to Nestor, and the point
 * where the firmware, now Nestor's guest, comes back (boot/efi_handoff.h).
 *
 * uint64_t efi_handoff(struct efi_handoff *h, uint64_t entry, uint64_t mbi)
 *
 * Saves the registers the caller expects kept, records in *h the stack
 * pointer, RFLAGS and the resume address, and jumps to Nestor's
 * _start_efi64 (RDI = MBI, RSI = h) with interrupts off.  Nestor later
 * enters its guest at the resume address with this stack and RFLAGS: the
 * registers come back from the stack and the call returns RAX as Nestor
 * set it: 0, now in VMX non-root operation.  A Nestor that stops before it
 * takes the machine (bad options, help) returns here without VMX, having
 * put the firmware's state back (boot/entry.S, efi_return_to_firmware), with
 * an EFI error status in RAX. */
#define H_RIP 40
#define H_RSP 48
#define H_RFLAGS 56

	.text
	.globl efi_handoff
efi_handoff:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	pushfq
	popq %rax
	movq %rax, H_RFLAGS(%rdi)
	movq %rsp, H_RSP(%rdi)
	leaq 1f(%rip), %rax
	movq %rax, H_RIP(%rdi)
	cli
	movq %rsi, %rax
	movq %rdi, %rsi
	movq %rdx, %rdi
	jmp *%rax
1:	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	ret

	.section .note.GNU-stack, "", @progbits
