/* ap_tramp.S - where an application processor starts: the page its SIPI
 * vector names, in real mode.  From there to long mode and into Nestor's
 * image (smp_ap_main in boot/smp.c).
 *
 * This is a blob, not code run in place: boot/smp.c copies it to a page
 * below 1 MiB and fills the slots at its end (struct ap_tramp_slots in
 * boot/smp.h, same order) before each AP is started.  Everything in it is
 * relative to where it runs: real-mode addresses relative to CS (the page),
 * the far jump through a pointer smp.c patches, and RIP-relative loads in
 * 64-bit code. */

#define TR(x) ((x) - ap_tramp_start)
#define EFER_MSR 0xc0000080
#define EFER_LME (1 << 8)
#define EFER_NXE (1 << 11)

	.section .rodata
	.balign 16
	.globl ap_tramp_start, ap_tramp_end, ap_tramp_slots, ap_tramp_pm, ap_tramp_gdt, ap_tramp_gdt_desc
ap_tramp_start:
	.code16
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	xorl %ebx, %ebx
	movw %ax, %bx
	shll $4, %ebx                     /* EBX = the page's linear address */
	/* SDM 3A 9.9.1: protected mode first (a flat 32-bit CS), then 9.8.5:
	 * with paging off, PAE and a PML4 in CR3, EFER.LME, then CR0.PG:
	 * IA-32e mode, compatibility mode until a far jump loads a 64-bit
	 * CS.  NXE: Nestor's page tables use the XD bit. */
	lgdtl TR(ap_tramp_gdt_desc)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl *TR(slot_pm_jump)

	.code32
ap_tramp_pm:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl TR(slot_cr4)(%ebx), %eax
	movl %eax, %cr4
	movl TR(slot_cr3)(%ebx), %eax
	movl %eax, %cr3
	movl $EFER_MSR, %ecx
	rdmsr
	orl $(EFER_LME | EFER_NXE), %eax
	wrmsr
	movl TR(slot_cr0)(%ebx), %eax
	movl %eax, %cr0
	ljmpl *TR(slot_lm_jump)(%ebx)

	.code64
	.globl ap_tramp_lm
ap_tramp_lm:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movq slot_stack(%rip), %rsp
	movq slot_arg(%rip), %rdi
	movq slot_entry(%rip), %rax
	xorl %ebp, %ebp
	pushq $0                          /* no return address: a clean backtrace */
	jmpq *%rax

	.balign 8
ap_tramp_gdt:
	.quad 0
	.quad 0x00af9a000000ffff          /* 0x08: 64-bit code, DPL 0 */
	.quad 0x00cf92000000ffff          /* 0x10: data, DPL 0 */
	.quad 0x00cf9a000000ffff          /* 0x18: 32-bit code, DPL 0 */
ap_tramp_gdt_end:
ap_tramp_gdt_desc:
	.word ap_tramp_gdt_end - ap_tramp_gdt - 1
	.long 0                           /* base: patched (page + TR(ap_tramp_gdt)) */

	.balign 8
ap_tramp_slots:
slot_pm_jump:
	.long 0                           /* offset: page + TR(ap_tramp_pm) */
	.word 0x18
	.word 0
slot_lm_jump:
	.long 0                           /* offset: page + TR(ap_tramp_lm) */
	.word 0x08
	.word 0
slot_cr0:
	.long 0
slot_cr4:
	.long 0
slot_cr3:
	.long 0                           /* the APs' page tables: below 4 GiB */
	.long 0
slot_stack:
	.quad 0
slot_entry:
	.quad 0
slot_arg:
	.quad 0
ap_tramp_end:
