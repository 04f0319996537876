/* smp_tramp.S - where the 'smp' suite's application processors start: the
 * page SMP_TRAMP_BASE, in real mode, after INIT-SIPI-SIPI.
 *
 * A blob, not code run in place: guest/tests/smp.c copies it to
 * SMP_TRAMP_BASE and fills the slots (guest/tests/smp.h) before it sends
 * the SIPIs.  Every address in it is absolute, computed for that page (T()):
 * real mode -> 32-bit protected mode (SDM 3A 9.9.1) -> IA-32e mode with the
 * BSP's CR4 (PAE), CR3 and EFER (LME), then CR0.PG (SDM 3A 10.8.5) -> a far
 * jump to 64-bit code, which calls smp_ap_entry(index) on the AP's stack. */
#include "guest/tests/smp.h"

#define T(x) ((x) - smp_tramp_start + SMP_TRAMP_BASE)
#define EFER_MSR 0xc0000080

	.section .rodata.smp_tramp, "a"
	.balign 16
	.globl smp_tramp_start, smp_tramp_end
	.code16
smp_tramp_start:
	cli
	cld
	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	lgdtl T(tramp_gdt_desc)
	movl %cr0, %eax
	orl $1, %eax                      /* PE */
	movl %eax, %cr0
	ljmpl $SMP_SEL_CODE32, $T(tramp_pm)

	.code32
tramp_pm:
	movl $SMP_SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl SMP_SLOT_CR4, %eax
	movl %eax, %cr4
	movl SMP_SLOT_CR3, %eax
	movl %eax, %cr3
	movl $EFER_MSR, %ecx
	movl SMP_SLOT_EFER, %eax
	movl SMP_SLOT_EFER + 4, %edx
	wrmsr
	movl SMP_SLOT_CR0, %eax           /* PG and PE: IA-32e mode */
	movl %eax, %cr0
	ljmpl $SMP_SEL_CODE64, $T(tramp_lm)

	.code64
tramp_lm:
	movl $SMP_SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movq SMP_SLOT_STACK, %rsp
	movq SMP_SLOT_ARG, %rdi
	movq SMP_SLOT_ENTRY, %rax
	xorl %ebp, %ebp
	pushq $0                          /* no return address */
	jmpq *%rax

	.balign 8
tramp_gdt:
	.quad 0
	.quad 0x00af9a000000ffff          /* 0x08: 64-bit code, DPL 0 */
	.quad 0x00cf92000000ffff          /* 0x10: data, DPL 0 */
	.quad 0x00cf9a000000ffff          /* 0x18: 32-bit code, DPL 0 */
tramp_gdt_end:
tramp_gdt_desc:
	.word tramp_gdt_end - tramp_gdt - 1
	.long T(tramp_gdt)
smp_tramp_end:
