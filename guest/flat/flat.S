/* flat.S - a flat-binary kernel with both a multiboot (v1) header using the
 * a.out kludge and a multiboot2 header with address and entry tags: it tests
 * that a loader places an image with no ELF information where its header
 * says, zeroes its bss and enters it correctly.  It prints what it checked on
 * COM1, then "RESULT: PASS" or "RESULT: FAIL ...", and powers off Bochs. */
	.code32
	.section .text
	.globl _start
image_start:

mb1_header:
	.long 0x1badb002
	.long 0x00010003                /* page-align, meminfo, address fields */
	.long -(0x1badb002 + 0x00010003)
	.long mb1_header                /* header_addr */
	.long image_start               /* load_addr */
	.long data_end                  /* load_end_addr */
	.long bss_end                   /* bss_end_addr */
	.long _start                    /* entry_addr */

	.balign 8
mb2_header:
	.long 0xe85250d6
	.long 0
	.long mb2_end - mb2_header
	.long -(0xe85250d6 + (mb2_end - mb2_header))
	.short 2, 0                     /* address tag */
	.long 24
	.long mb2_header, image_start, data_end, bss_end
	.short 3, 0                     /* entry address tag */
	.long 12
	.long _start
	.long 0                         /* pad to 8 */
	.short 0, 0
	.long 8
mb2_end:

_start:
	cli
	cld
	movl $stack_top, %esp
	movl %eax, magic
	movl %ebx, info
	call serial_init
	movl $s_hello, %esi
	call puts
	movl magic, %eax
	call puthex
	call newline

	/* The data pattern must have been copied intact. */
	movl $pattern, %esi
	xorl %ecx, %ecx
1:	movl (%esi, %ecx, 4), %eax
	movl %ecx, %edx
	imull $0x01010101, %edx
	xorl $0x5a5aa5a5, %edx
	cmpl %edx, %eax
	jne bad_data
	incl %ecx
	cmpl $1024, %ecx
	jb 1b
	movl $s_data_ok, %esi
	call puts

	/* The bss must be zero. */
	movl $bss_start, %esi
2:	cmpl $bss_checked_end, %esi
	jae 3f
	cmpl $0, (%esi)
	jne bad_bss
	addl $4, %esi
	jmp 2b
3:	movl $s_bss_ok, %esi
	call puts

	/* The magic must be one of the two protocols'. */
	movl magic, %eax
	cmpl $0x36d76289, %eax
	je 4f
	cmpl $0x2badb002, %eax
	jne bad_magic
4:	movl $s_pass, %esi
	call puts
	jmp poweroff

bad_data:
	movl $s_bad_data, %esi
	jmp fail
bad_bss:
	movl $s_bad_bss, %esi
	jmp fail
bad_magic:
	movl $s_bad_magic, %esi
fail:	call puts
poweroff:
	/* Wait for the UART to drain, then "Shutdown" on port 0x8900. */
	movw $0x3fd, %dx
5:	inb %dx, %al
	testb $0x40, %al
	jz 5b
	movl $s_shutdown, %esi
	movw $0x8900, %dx
6:	lodsb
	testb %al, %al
	jz 7f
	outb %al, %dx
	jmp 6b
7:	hlt
	jmp 7b

serial_init:
	movw $0x3f9, %dx
	xorb %al, %al
	outb %al, %dx                   /* no interrupts */
	movw $0x3fb, %dx
	movb $0x80, %al
	outb %al, %dx                   /* DLAB */
	movw $0x3f8, %dx
	movb $1, %al
	outb %al, %dx                   /* 115200 */
	movw $0x3f9, %dx
	xorb %al, %al
	outb %al, %dx
	movw $0x3fb, %dx
	movb $3, %al
	outb %al, %dx                   /* 8N1 */
	ret

putc:	/* AL */
	pushl %edx
	pushl %eax
	movw $0x3fd, %dx
1:	inb %dx, %al
	testb $0x20, %al
	jz 1b
	popl %eax
	movw $0x3f8, %dx
	outb %al, %dx
	popl %edx
	ret

puts:	/* ESI */
	lodsb
	testb %al, %al
	jz 1f
	call putc
	jmp puts
1:	ret

newline:
	movb $'\n', %al
	jmp putc

puthex:	/* EAX */
	movl $8, %ecx
	movl %eax, %edx
1:	roll $4, %edx
	movl %edx, %eax
	andl $15, %eax
	movb hexdigits(%eax), %al
	call putc
	loop 1b
	ret

	.section .data
hexdigits: .ascii "0123456789abcdef"
s_hello: .asciz "flat: started with magic "
s_data_ok: .asciz "flat: data pattern intact\n"
s_bss_ok: .asciz "flat: bss zeroed\n"
s_pass: .asciz "RESULT: PASS\n"
s_bad_data: .asciz "RESULT: FAIL (data pattern damaged)\n"
s_bad_bss: .asciz "RESULT: FAIL (bss not zeroed)\n"
s_bad_magic: .asciz "RESULT: FAIL (unknown boot magic)\n"
s_shutdown: .asciz "Shutdown"
	.balign 4
pattern:
	.set i, 0
	.rept 1024
	.long (i * 0x01010101) ^ 0x5a5aa5a5
	.set i, i + 1
	.endr
data_end:

	.section .bss
	.balign 4
bss_start:                              /* checked: must be all zero */
	.space 8192
bss_checked_end:
magic:	.long 0
info:	.long 0
	.space 16384
stack_top:
bss_end:
