/* entry.S - multiboot2 header and the road from 32-bit protected mode to C.
 *
 * The loader enters _start32 in 32-bit protected mode, paging off, with
 * EAX = multiboot2 magic and EBX = physical address of the boot information,
 * at whatever physical address it chose for us.  This code therefore only uses
 * addresses computed relative to where it really runs (EBP = load delta).
 * It builds throw-away page tables (identity map of the low 4 GiB plus the
 * image at KERNEL_VIRT_BASE), enters long mode and calls boot_main(). */
#include "boot/layout.h"

#define MB2_ARCH_I386 0
#define MB2_HDR_TAG_RELOCATABLE 10
#define MB2_HDR_TAG_END 0
#define MB2_LOAD_PREFER_HIGH 2

	.section .multiboot2, "a"
	.balign 8
mb2_header:
	.long 0xe85250d6                 /* magic */
	.long MB2_ARCH_I386              /* architecture */
	.long mb2_header_end - mb2_header
	.long -(0xe85250d6 + MB2_ARCH_I386 + (mb2_header_end - mb2_header))
	/* Relocatable tag (multiboot2 spec 3.1.10): load us anywhere between 16 MiB
	 * and 3 GiB, 2 MiB aligned, preferably high, so the low memory that guests
	 * expect (real-mode area, the usual 1 MiB kernel address, the 16 MiB Linux
	 * decompression address) stays free for them. */
	.balign 8
	.short MB2_HDR_TAG_RELOCATABLE
	.short 0
	.long 24
	.long 0x01000000                 /* min_addr */
	.long 0xc0000000                 /* max_addr */
	.long KERNEL_ALIGN               /* align */
	.long MB2_LOAD_PREFER_HIGH       /* preference */
	.balign 8
	.short MB2_HDR_TAG_END
	.short 0
	.long 8
mb2_header_end:

	.section .boot.text, "ax"
	.code32
	.globl _start32
_start32:
	/* Record the loader's machine state first (see boot/boot_regs.h).
	 * This needs a few bytes of the loader's stack (GRUB provides one). */
	pushl %ebp
	pushfl
	call 1f
1:	popl %ebp
	subl $1b, %ebp                   /* EBP = load delta */
	movl %eax, boot_regs + 0(%ebp)
	movl %ebx, boot_regs + 4(%ebp)
	movl %ecx, boot_regs + 8(%ebp)
	movl %edx, boot_regs + 12(%ebp)
	movl %esi, boot_regs + 16(%ebp)
	movl %edi, boot_regs + 20(%ebp)
	popl %ecx
	movl %ecx, boot_regs + 32(%ebp)  /* eflags */
	popl %ecx
	movl %ecx, boot_regs + 24(%ebp)  /* ebp */
	movl %esp, boot_regs + 28(%ebp)
	movl %cr0, %ecx
	movl %ecx, boot_regs + 36(%ebp)
	movl %cr4, %ecx
	movl %ecx, boot_regs + 40(%ebp)
	movw %cs, boot_regs + 44(%ebp)
	movw %ds, boot_regs + 46(%ebp)
	movw %es, boot_regs + 48(%ebp)
	movw %fs, boot_regs + 50(%ebp)
	movw %gs, boot_regs + 52(%ebp)
	movw %ss, boot_regs + 54(%ebp)
	sgdt boot_regs + 56(%ebp)
	sidt boot_regs + 62(%ebp)
	cli
	cld
	movl %eax, %edi                  /* keep magic and MBI for boot_main */
	movl %ebx, %esi

	/* A tiny stack inside the image (physical) for the calls below. */
	leal boot32_stack_top(%ebp), %esp

	/* Long mode needs CPUID leaf 0x80000001 EDX.LM; without it say so on COM1
	 * and stop (we have no console code yet, so write the bytes directly). */
	movl $0x80000000, %eax
	cpuid
	cmpl $0x80000001, %eax
	jb no_long_mode
	movl $0x80000001, %eax
	cpuid
	btl $29, %edx
	jnc no_long_mode

	/* Zero the boot page tables (they live in the image, not in .bss,
	 * so this code never depends on the loader clearing anything). */
	pushl %edi
	leal boot_pt_start(%ebp), %edi
	movl $(boot_pt_end - boot_pt_start) / 4, %ecx
	xorl %eax, %eax
	rep stosl
	popl %edi

	/* PML4[0] -> identity PDPT (covers 0..512 GiB, we fill 4 GiB);
	 * PML4[511] -> high PDPT whose entry 510 maps 0xffffffff80000000. */
	leal boot_pdpt_low(%ebp), %eax
	orl $3, %eax
	movl %eax, boot_pml4(%ebp)
	leal boot_pdpt_high(%ebp), %eax
	orl $3, %eax
	movl %eax, boot_pml4 + 511 * 8(%ebp)

	/* Identity map 0..4 GiB with 2 MiB pages: 4 page directories. */
	xorl %ecx, %ecx
2:	leal boot_pd_low(%ebp), %eax
	movl %ecx, %ebx
	shll $12, %ebx
	addl %ebx, %eax
	orl $3, %eax
	movl %eax, boot_pdpt_low(%ebp, %ecx, 8)
	incl %ecx
	cmpl $4, %ecx
	jb 2b
	xorl %ecx, %ecx                  /* entry index 0..2047 */
3:	movl %ecx, %eax
	shll $21, %eax
	orl $0x83, %eax                  /* present, writable, 2 MiB page */
	movl %eax, boot_pd_low(%ebp, %ecx, 8)
	movl $0, boot_pd_low + 4(%ebp, %ecx, 8)
	incl %ecx
	cmpl $2048, %ecx
	jb 3b

	/* High mapping: KERNEL_VIRT_BASE + i*2M -> load address + i*2M. */
	leal boot_pd_high(%ebp), %eax
	orl $3, %eax
	movl %eax, boot_pdpt_high + 510 * 8(%ebp)
	movl $__image_end_phys, %ecx     /* image size in 2 MiB pages, rounded up */
	subl $__image_start_phys, %ecx
	addl $0x1fffff, %ecx
	shrl $21, %ecx
	leal __image_start_phys(%ebp), %eax
	orl $0x83, %eax
	movl $(KERNEL_LINK_PHYS >> 21), %ebx   /* PD index of KERNEL_VIRT_BASE */
4:	movl %eax, boot_pd_high(%ebp, %ebx, 8)
	addl $0x200000, %eax
	incl %ebx
	decl %ecx
	jnz 4b

	/* Enter long mode: PAE, EFER.LME|NXE, CR3, then paging. */
	movl %cr4, %eax
	orl $(1 << 5), %eax
	movl %eax, %cr4
	leal boot_pml4(%ebp), %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx
	rdmsr
	orl $((1 << 8) | (1 << 11)), %eax
	wrmsr
	movl %cr0, %eax
	orl $((1 << 31) | (1 << 16) | 1), %eax   /* PG, WP, PE */
	movl %eax, %cr0

	/* Load a GDT with a 64-bit code segment; its descriptor holds a linear
	 * address, so patch in the real location first. */
	leal boot_gdt(%ebp), %eax
	movl %eax, boot_gdtr + 2(%ebp)
	lgdt boot_gdtr(%ebp)
	leal start64(%ebp), %eax
	pushl $0x08
	pushl %eax
	lret

no_long_mode:
	leal msg_no_lm(%ebp), %esi
5:	lodsb
	testb %al, %al
	jz 6f
	movw $0x3f8, %dx
	outb %al, %dx
	jmp 5b
6:	/* Bochs shutdown port; harmless elsewhere. Then halt for good. */
	leal msg_shutdown(%ebp), %esi
	movw $0x8900, %dx
7:	lodsb
	testb %al, %al
	jz 8f
	outb %al, %dx
	jmp 7b
8:	hlt
	jmp 8b

	/* _start_efi64: the entry from nestor.efi (efi/, boot/efi_handoff.h),
	 * already in 64-bit mode on the firmware's identity-mapped page tables,
	 * RDI = multiboot2 information, RSI = the firmware's saved state.  The
	 * same page tables as above are built (with RIP-relative addresses:
	 * this code runs where the application copied it), then the common
	 * path from start64 on. */
	.code64
	.globl _start_efi64
_start_efi64:
	cli
	cld
	movq %rdi, %r12
	movq %rsi, boot_efi_handoff(%rip)
	leaq _start_efi64(%rip), %rbp
	movl $_start_efi64, %eax
	subq %rax, %rbp                  /* RBP = load delta */
	leaq boot32_stack_top(%rip), %rsp

	leaq boot_pt_start(%rip), %rdi
	movl $(boot_pt_end - boot_pt_start) / 8, %ecx
	xorl %eax, %eax
	rep stosq
	leaq boot_pdpt_low(%rip), %rax
	orq $3, %rax
	movq %rax, boot_pml4(%rip)
	leaq boot_pdpt_high(%rip), %rax
	orq $3, %rax
	movq %rax, boot_pml4 + 511 * 8(%rip)
	leaq boot_pd_low(%rip), %rax     /* identity map 0..4 GiB, 2 MiB pages */
	orq $3, %rax
	leaq boot_pdpt_low(%rip), %rdi
	movl $4, %ecx
10:	movq %rax, (%rdi)
	addq $4096, %rax
	addq $8, %rdi
	decl %ecx
	jnz 10b
	leaq boot_pd_low(%rip), %rdi
	movl $0x83, %eax
	movl $2048, %ecx
11:	movq %rax, (%rdi)
	addq $0x200000, %rax
	addq $8, %rdi
	decl %ecx
	jnz 11b
	leaq boot_pd_high(%rip), %rax    /* the image at KERNEL_VIRT_BASE */
	orq $3, %rax
	movq %rax, boot_pdpt_high + 510 * 8(%rip)
	movl $__image_end_phys, %ecx
	subl $__image_start_phys, %ecx
	addl $0x1fffff, %ecx
	shrl $21, %ecx
	movl $__image_start_phys, %eax
	addq %rbp, %rax
	orq $0x83, %rax
	leaq boot_pd_high + (KERNEL_LINK_PHYS >> 21) * 8(%rip), %rdi
12:	movq %rax, (%rdi)
	addq $0x200000, %rax
	addq $8, %rdi
	decl %ecx
	jnz 12b

	movl $0xc0000080, %ecx           /* EFER.NXE (LME is the firmware's) */
	rdmsr
	orl $(1 << 11), %eax
	wrmsr
	leaq boot_pml4(%rip), %rax
	movq %rax, %cr3
	movq %cr0, %rax
	orq $(1 << 16), %rax             /* WP */
	movq %rax, %cr0
	leaq boot_gdt(%rip), %rax
	movq %rax, boot_gdtr64 + 2(%rip)
	lgdt boot_gdtr64(%rip)
	/* start64 and high64 take EDI = magic, ESI = MBI, EBP = delta. */
	movl $0x36d76289, %edi
	movl %r12d, %esi
	pushq $0x08
	leaq start64(%rip), %rax
	pushq %rax
	lretq

	/* efi_return_to_firmware(handoff RDI, status RSI): gives the machine
	 * back to the UEFI firmware that ran nestor.efi, for a stop before
	 * Nestor took it (boot/main.c, efi_stop).  Called at its physical
	 * address while the boot page tables (identity map of 0-4 GiB) are
	 * current; the firmware's stack, page tables and this code are all
	 * below 4 GiB, so each step runs mapped.  The offsets are those of
	 * struct efi_handoff (boot/efi_handoff.h, checked there). */
	.globl efi_return_to_firmware
efi_return_to_firmware:
	cli
	movq %rdi, %r10
	movq %rsi, %r11
	/* The iretq frame on the firmware's own stack, below its RSP. */
	movq 48(%r10), %rsp              /* rsp */
	movzwl 192(%r10), %eax           /* sel[2]: SS */
	pushq %rax
	pushq 48(%r10)                   /* RSP */
	pushq 56(%r10)                   /* RFLAGS */
	movzwl 190(%r10), %eax           /* sel[1]: CS */
	pushq %rax
	pushq 40(%r10)                   /* RIP */
	/* Descriptor tables from pseudo-descriptors built below the frame. */
	subq $16, %rsp
	movw 184(%r10), %ax              /* gdtr_limit, gdtr_base */
	movw %ax, (%rsp)
	movq 168(%r10), %rax
	movq %rax, 2(%rsp)
	lgdt (%rsp)
	movw 186(%r10), %ax              /* idtr_limit, idtr_base */
	movw %ax, (%rsp)
	movq 176(%r10), %rax
	movq %rax, 2(%rsp)
	lidt (%rsp)
	addq $16, %rsp
	movq 72(%r10), %rax              /* cr3 */
	movq %rax, %cr3
	movq 80(%r10), %rax              /* cr4 */
	movq %rax, %cr4
	movq 64(%r10), %rax              /* cr0 */
	movq %rax, %cr0
	movl $0xc0000080, %ecx           /* EFER */
	movl 96(%r10), %eax
	movl 100(%r10), %edx
	wrmsr
	movw 188(%r10), %ax              /* sel[0]: ES */
	movw %ax, %es
	movw 194(%r10), %ax              /* sel[3]: DS */
	movw %ax, %ds
	movw 196(%r10), %ax              /* sel[4]: FS */
	movw %ax, %fs
	movw 198(%r10), %ax              /* sel[5]: GS */
	movw %ax, %gs
	movl $0xc0000100, %ecx           /* FS, GS and kernel GS bases, after the selectors */
	movl 112(%r10), %eax
	movl 116(%r10), %edx
	wrmsr
	movl $0xc0000101, %ecx
	movl 120(%r10), %eax
	movl 124(%r10), %edx
	wrmsr
	movl $0xc0000102, %ecx
	movl 128(%r10), %eax
	movl 132(%r10), %edx
	wrmsr
	movq %r11, %rax                  /* what efi_handoff returns */
	iretq

start64:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	/* Now jump to the high virtual alias and switch to the C stack. */
	movabsq $high64, %rax
	jmp *%rax

	.section .boot.data, "aw"
	.balign 8
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff         /* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff         /* 0x10: data */
boot_gdt_end:
boot_gdtr:
	.short boot_gdt_end - boot_gdt - 1
	.long 0
boot_gdtr64:
	.short boot_gdt_end - boot_gdt - 1
	.quad 0
	/* Physical address of the struct efi_handoff when nestor.efi started
	 * us, 0 otherwise (boot/efi_handoff.h). */
	.balign 8
	.globl boot_efi_handoff
boot_efi_handoff:
	.quad 0
msg_no_lm:
	.asciz "nestor: FATAL: this CPU has no long mode (CPUID 0x80000001 EDX.LM=0)\n"
msg_shutdown:
	.asciz "Shutdown"
	.balign 4
	.globl boot_regs
boot_regs:
	.space 68

	.balign 16
	.space 256
boot32_stack_top:

	.balign 4096
boot_pt_start:
boot_pml4:	.space 4096
boot_pdpt_low:	.space 4096
boot_pdpt_high:	.space 4096
boot_pd_high:	.space 4096
boot_pd_low:	.space 4096 * 4
boot_pt_end:

	.text
	.code64
high64:
	/* Upper register halves are undefined after the mode switch: zero-extend
	 * what we carried over (EDI magic, ESI MBI, EBP load delta) into
	 * registers that survive the .bss clearing below. */
	movl %edi, %r12d
	movl %esi, %r13d
	movl %ebp, %r14d
	/* Clear .bss ourselves: not every loader is trusted to. */
	movabsq $__bss_start, %rdi
	movabsq $__bss_end, %rcx
	subq %rdi, %rcx
	xorl %eax, %eax
	rep stosb
	movabsq $boot_stack_top, %rsp
	xorl %ebp, %ebp                  /* end of the frame-pointer chain */
	movq %r12, %rdi
	movq %r13, %rsi
	movq %r14, %rdx
	call boot_main
9:	cli
	hlt
	jmp 9b

	.bss
	.balign 16
	.globl boot_stack
boot_stack:
	.space BOOT_STACK_SIZE
boot_stack_top:
