/* entry.S - guest test kernel entry: multiboot (v1) and multiboot2 headers,
 * 32-bit start, identity-mapped long mode, then guest_main(magic, info).
 * It must start the same way whether GRUB or a Nestor level loads it. */

#define MB1_MAGIC 0x1badb002
#define MB1_FLAGS 0x00000003 /* page-align modules, memory information */

	.section .multiboot, "a"
	.balign 4
	.long MB1_MAGIC
	.long MB1_FLAGS
	.long -(MB1_MAGIC + MB1_FLAGS)

	.section .multiboot2, "a"
	.balign 8
mb2_header:
	.long 0xe85250d6
	.long 0
	.long mb2_header_end - mb2_header
	.long -(0xe85250d6 + (mb2_header_end - mb2_header))
	.short 0, 0
	.long 8
mb2_header_end:

	.section .boot.text, "ax"
	.code32
	.globl _start32
_start32:
	cli
	cld
	movl %eax, %edi
	movl %ebx, %esi
	movl $boot_stack_top, %esp

	/* Identity map 0..4 GiB with 2 MiB pages, user-accessible (tests run
	 * code at CPL 3 too). */
	movl $pdpt + 7, pml4
	movl $pd + 7, pdpt
	movl $pd + 0x1000 + 7, pdpt + 8
	movl $pd + 0x2000 + 7, pdpt + 16
	movl $pd + 0x3000 + 7, pdpt + 24
	xorl %ecx, %ecx
1:	movl %ecx, %eax
	shll $21, %eax
	orl $0x87, %eax                  /* present, writable, user, 2 MiB */
	movl %eax, pd(, %ecx, 8)
	movl $0, pd + 4(, %ecx, 8)
	incl %ecx
	cmpl $2048, %ecx
	jb 1b

	movl %cr4, %eax
	orl $(1 << 5), %eax              /* PAE */
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx
	rdmsr
	/* EFER.LME; NXE off whatever the loader left (GRUB-EFI keeps the
	 * firmware's NXE=1): the suites set it themselves where they want it. */
	andl $~(1 << 11), %eax
	orl $(1 << 8), %eax
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax            /* PG, PE */
	movl %eax, %cr0
	lgdt gdtr32
	ljmp $0x08, $start64

	.code64
start64:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl %edi, %r12d
	movl %esi, %r13d
	movq $__bss_start, %rdi
	movq $__bss_end, %rcx
	subq %rdi, %rcx
	xorl %eax, %eax
	rep stosb
	movq $boot_stack_top, %rsp
	xorl %ebp, %ebp
	movq %r12, %rdi
	movq %r13, %rsi
	call guest_main
2:	cli
	hlt
	jmp 2b

	.section .boot.data, "aw"
	.balign 8
gdt32:
	.quad 0
	.quad 0x00af9a000000ffff         /* 0x08 64-bit code */
	.quad 0x00cf92000000ffff         /* 0x10 data */
gdtr32:
	.short gdtr32 - gdt32 - 1
	.long gdt32

	.balign 4096
	.globl pml4
pml4:	.space 4096
pdpt:	.space 4096
pd:	.space 4096 * 4
	.balign 16
	.space 16384
	.globl boot_stack_top
boot_stack_top:
