/* boot.S - a real-mode boot-sector guest for a hard-disk image.
 *
 * The BIOS (depth 0) or the top Nestor level (depth n) loads sector 0 at
 * 0000:7c00 and jumps to it with the boot drive in DL.
 *
 * Stage 1 (this sector) sets up COM1 (115200 8N1, directly through the
 * ports), reads stage 2 (LBA 1-2) to 0000:7e00 with INT 13h AH=02h and
 * checks its two signatures.  Stage 2 reports the drive and what the BIOS
 * disk services say about it (AH=08h parameters, AH=41h extensions check),
 * reads data sectors with AH=02h (CHS) and AH=42h (extended, LBA) - among
 * them the last sector both ways - checks each sector's signature, LBA and
 * checksum, reads past the end of the disk (which must fail), prints
 * "RESULT: PASS" or "RESULT: FAIL (reason)" and ends the run through the
 * Bochs shutdown port.
 *
 * Everything printed is a function of the disk and the BIOS only (no
 * register garbage, stack pointers or leftovers of a previous loader: the
 * registers a call does not define are set first), so the transcript is the
 * same at every depth.
 *
 * The image (build/bootsector.img) is one cylinder of 16 heads x 63
 * sectors: this sector, stage 2 (LBA 1-2), then LBA 3..1007.  LBA 3-126
 * and 1007 are data sectors: "NESTORDK", the LBA as a dword, 249 pattern
 * words, and a last word that makes the 16-bit sum of the 256 words zero. */

#define COM1 0x3f8
#define SECTORS 1008            /* 1 cylinder x 16 heads x 63 sectors */
#define STAGE2_SECTORS 2
#define FIRST_DATA (1 + STAGE2_SECTORS)
#define BUF 0x1000              /* segment of the read buffer */

	.code16
	.section .text
	.globl _start
_start:
	ljmp $0, $start             /* CS:IP = 0000:7cxx whatever the loader used */
start:
	cli
	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw $0x7c00, %sp
	sti
	cld
	movb %dl, drive

	/* COM1: (register, value) pairs - once whatever the previous owner
	 * (the BIOS, or Nestor's console) sent has left the UART: changing
	 * the line settings under a byte in flight garbles it. */
	call wait_tx
	movw $uart_init, %si
	movw $7, %cx
1:	lodsw
	movw $COM1, %dx
	addb %al, %dl
	movb %ah, %al
	outb %al, %dx
	loop 1b

	movw $s_hello, %si
	call puts
	movzbw drive, %ax
	call hex16
	call newline

	/* Stage 2: CHS 0/0/2, to 0000:7e00, two signatures. */
	movw $0x0200 + STAGE2_SECTORS, %ax
	movw $0x0002, %cx
	movb $0, %dh
	movb drive, %dl
	movw $stage2, %bx
	int $0x13
	movw $s_stage2, %di
	jc fail_di
	movw $stage2, %si
	movw $stage2_end - 8, %di
	movw $4, %cx
	repe cmpsw
	movw $s_stage2, %di
	jne fail_di
	jmp stage2_main

fail:
	movw $s_disk, %di
fail_di:                        /* RESULT: FAIL (reason at DI) */
	movw $s_fail, %si
	call puts
	movw %di, %si
	call puts
	movw $s_fail_end, %si
	call puts
shutdown:
	call wait_tx                /* all of our output first */
	movw $s_shutdown, %si
	movw $8, %cx
	movw $0x8900, %dx
	rep outsb
2:	cli
	hlt
	jmp 2b

/* Waits until the UART's transmitter is empty (bounded: a missing UART
 * reads all ones anyway). */
wait_tx:
	movw $COM1 + 5, %dx
	xorw %cx, %cx
1:	inb %dx, %al
	testb $0x40, %al
	loopz 1b
	ret

newline:
	movb $'\n', %al
	jmp putc

puts:
	lodsb
	testb %al, %al
	jz 1f
	call putc
	jmp puts
1:	ret

hex16:
	pushw %cx
	movw $4, %cx
1:	rolw $4, %ax
	pushw %ax
	andb $0x0f, %al
	addb $0x90, %al
	daa
	adcb $0x40, %al
	daa
	call putc
	popw %ax
	loop 1b
	popw %cx
	ret

putc:
	pushw %dx
	pushw %ax
	movw $COM1 + 5, %dx
1:	inb %dx, %al
	testb $0x20, %al
	jz 1b
	popw %ax
	movw $COM1, %dx
	outb %al, %dx
	popw %dx
	ret

uart_init:                      /* register offset, value */
	.byte 1, 0x00               /* no interrupts */
	.byte 3, 0x80               /* DLAB */
	.byte 0, 0x01               /* divisor 1: 115200 */
	.byte 1, 0x00
	.byte 3, 0x03               /* 8N1 */
	.byte 2, 0xc7               /* FIFOs on and cleared */
	.byte 4, 0x03               /* DTR, RTS */

drive:	.byte 0
s_shutdown:
	.ascii "Shutdown"
s_hello:	.asciz "boot: sector guest, boot drive dl="
s_fail:	.asciz "RESULT: FAIL ("
s_fail_end:	.asciz ")\n"
s_disk:	.asciz "disk services"
s_stage2:	.asciz "stage 2 read"

	.org 510
	.word 0xaa55

/* --- stage 2: LBA 1-2, at 0000:7e00 ---------------------------------------- */
stage2:
	.ascii "NESTOR2>"
stage2_main:
	/* Drive parameters: 16 heads, 63 sectors per track. */
	movw $0x0800, %ax
	call announce0
	call int13
	cmpb $15, %dh
	jne fail
	andb $0x3f, %cl
	cmpb $63, %cl
	jne fail
	movw $s_geometry, %si
	call puts
	movb %ch, %al               /* highest cylinder: CL[7:6]:CH */
	movb %cl, %ah
	shrb $6, %ah
	incw %ax
	call hex16
	movw $s_heads, %si
	call puts
	movb %dh, %al
	movb $0, %ah
	incw %ax
	call hex16
	call puts                   /* " sectors " */
	movb %cl, %al
	andw $0x3f, %ax
	call hex16
	call newline

	/* EDD extensions, with packet access. */
	movw $0x4100, %ax
	call announce0
	call int13
	cmpw $0xaa55, %bx
	jne fail
	testb $1, %cl
	jz fail

	/* The reads of the table, each into BUF and checked. */
	movw $reads, %bp
1:	movw (%bp), %ax             /* AH function, AL count */
	movw 2(%bp), %cx            /* CHS: cylinder, sector */
	movb 4(%bp), %dh            /* CHS: head */
	movw 6(%bp), %di            /* LBA */
	movb %al, dap_count
	movw %di, dap_lba
	call announce
	pushw $BUF
	popw %es
	movw $dap, %si
	call int13_nocheck
	sbbb %bl, %bl               /* 0, or ff if CF */
	cmpb 5(%bp), %bl
	jne fail
	testb %bl, %bl
	jnz 2f
	movzbw (%bp), %cx
	movw 6(%bp), %ax
	call verify
2:	addw $8, %bp
	cmpw $reads_end, %bp
	jb 1b

	movw $s_pass, %si
	call puts
	jmp shutdown

/* Checks CX sectors at ES:0000 (ES advances), the first being LBA AX:
 * signature, LBA, 16-bit sum of the words zero. */
verify:
1:	xorw %di, %di
	movw $sig, %si
	pushw %cx
	movw $8, %cx
	repe cmpsb
	jne 9f
	cmpw %es:(%di), %ax
	jne 9f
	cmpw $0, %es:2(%di)
	jne 9f
	xorw %dx, %dx
	xorw %di, %di
	movw $256, %cx
2:	addw %es:(%di), %dx
	scasw                       /* DI += 2 */
	loop 2b
	testw %dx, %dx
	jnz 9f
	popw %cx
	movw %es, %dx
	addw $0x20, %dx
	movw %dx, %es
	incw %ax
	loop 1b
	ret
9:	movw $s_data, %di
	jmp fail_di

/* Prints "int13 ax=AX lba=DI"; keeps every register.  announce0 first
 * clears CX, DX and DI (for the calls without inputs there). */
announce0:
	xorw %cx, %cx
	xorw %dx, %dx
	xorw %di, %di
announce:
	pushaw
	movw $s_int13, %si
	pushw %ax
	call puts
	popw %ax
	call hex16
	call puts                   /* " lba=", right after */
	movw %di, %ax
	call hex16
	popaw
	ret

/* INT 13h with AH, AL, CX, DH, ES (and DS:SI for AH=42h) set: BX is 0 (the
 * buffer offset; 55aah for AH=41h), DL the boot drive.  Prints the results;
 * int13 fails on CF. */
int13:
	call int13_nocheck
	jc fail
	ret
int13_nocheck:
	movb drive, %dl
	xorw %bx, %bx
	cmpb $0x41, %ah
	jne 1f
	movw $0x55aa, %bx
1:	int $0x13
/* Prints ": cf=C ax=.... cx=.... dx=.... bx=....\n"; preserves every
 * register and the flags. */
dump:
	pushfw
	pushaw                      /* di si bp sp bx dx cx ax from (%sp) up */
	movw %sp, %bp
	movw $s_cf, %si
	call puts
	movb 16(%bp), %al
	andb $1, %al
	addb $'0', %al
	call putc
	leaw 14(%bp), %bx
1:	call puts                   /* the register names follow s_cf */
	movw (%bx), %ax
	call hex16
	decw %bx
	decw %bx
	cmpb $0, (%si)
	jne 1b
	call newline
	popaw
	popfw
	ret

/* AL count, AH function, CX and DH for CHS, expected CF (0 / ff), LBA. */
reads:
	.byte 60, 0x02, 0x04, 0x00, 0, 0        /* CHS 0/0/4: LBA 3-62 */
	.word FIRST_DATA
	.byte 64, 0x42, 0, 0, 0, 0              /* LBA 63-126 (heads 1, 2) */
	.word 63
	.byte 1, 0x02, 0x3f, 0x00, 15, 0        /* CHS 0/15/63: the last */
	.word SECTORS - 1
	.byte 1, 0x42, 0, 0, 0, 0               /* the last by LBA */
	.word SECTORS - 1
	.byte 1, 0x42, 0, 0, 0, 0xff            /* past the end: refused */
	.word SECTORS
reads_end:

dap:	.byte 0x10, 0
dap_count:
	.word 0
	.word 0, BUF                /* buffer */
dap_lba:
	.long 0, 0

sig:	.ascii "NESTORDK"
s_int13:	.asciz "int13 ax="
	.asciz " lba="
s_cf:	.asciz ": cf="
	.asciz " ax="
	.asciz " cx="
	.asciz " dx="
	.asciz " bx="
	.byte 0
s_geometry:	.asciz "geometry: cylinders "
s_heads:	.asciz " heads "
	.asciz " sectors "
s_pass:	.asciz "RESULT: PASS\n"
s_data:	.asciz "data"

	.org 512 * (1 + STAGE2_SECTORS) - 8
stage2_end_sig:
	.ascii "NESTOR2>"
stage2_end:

/* --- the data sectors ----------------------------------------------------- */
	.altmacro
.macro SECTOR n
	.ascii "NESTORDK"
	.long \n
	.set sum, 0x454e + 0x5453 + 0x524f + 0x4b44 + ((\n) & 0xffff) + ((\n) >> 16)
	.set k, 0
	.rept 249
	.set w, ((\n) * 0x9e37 + k * 0x0101 + 0x1234) & 0xffff
	.word w
	.set sum, sum + w
	.set k, k + 1
	.endr
	.word (-sum) & 0xffff
.endm

	.set lba, FIRST_DATA
	.rept 127 - FIRST_DATA
	SECTOR %lba
	.set lba, lba + 1
	.endr
	.fill (SECTORS - 1 - 127) * 512, 1, 0
	SECTOR %(SECTORS - 1)
