/* modes_tramp.S - the trampoline of the 'modes' suite (guest/tests/modes.c).
 *
 * Copied to MT_BASE (0x8000) and entered from 64-bit C as a function, it
 * walks down long mode -> 32-bit protected mode without paging -> 32-bit
 * paging (4 KiB and 4 MiB pages) -> PAE paging (4 KiB and 2 MiB pages) ->
 * 16-bit protected mode -> real mode (optionally INT 12h) and back up
 * through 32-bit protected mode and compatibility mode to long mode, and
 * returns.  At each stage it appends (name, value) records to a log in low
 * memory that the C side prints.  Names starting "env " are environment
 * facts.  The C side prepares everything in memory first: the page tables,
 * the test pages, the variables below.
 *
 * Exceptions: in compatibility mode the IDT is still the 64-bit one and
 * none may happen; in legacy protected mode (32- and 16-bit) a 32-bit IDT
 * that modes.c builds at IDT32 sends every vector to fault_stubs, which
 * note the vector, error code and CR2 and resume at V_RESUME: tests arm it
 * (ARM), run an instruction that must fault, and record the outcome
 * (FAULTREC, vector << 16 | error code; ff << 16 if nothing happened).  In
 * real mode the IVT is the BIOS's and no exception may happen.  Interrupts
 * stay disabled throughout (a BIOS call restores IF with its IRET). */

#define MT_BASE 0x8000          /* where the trampoline runs */
#define MT(x) ((x) - modes_tramp_start + MT_BASE)

/* Variables, shared with modes.c. */
#define V_RSP 0x7000            /* 64-bit stack pointer */
#define V_CR3 0x7008
#define V_CR4 0x7010
#define V_IDTR 0x7018           /* 10 bytes: the 64-bit IDTR */
#define V_RMIDT 0x7028          /* 6 bytes: limit 0x3ff, base 0 */
#define V_LOG 0x7030            /* the next free record */
#define V_BIOS 0x7034           /* non-zero: call INT 12h in real mode */
#define V_IDT32 0x7040          /* 6 bytes: the 32-bit IDTR */
#define V_RESUME 0x7048         /* where a fault handler resumes */
#define V_FVEC 0x704c           /* the last fault: vector, error code, CR2 */
#define V_FERR 0x7050
#define V_FCR2 0x7054
#define STACK_TOP 0x7000        /* 32/16-bit stack: [0x6000, 0x7000) */

#define PD32 0x10000            /* 32-bit paging: page directory */
#define PDPT_PAE 0x12000        /* PAE: page-directory-pointer table */
#define PDPT_BAD 0x12020        /* PAE: one with a reserved bit set */
#define BIOS_MAP 0x16000        /* the BIOS's memory map (modes.c) */
#define PAGE_A 0x20000          /* test pages */
#define PAGE_B 0x21000
#define WRAP_SEG 0x11ff         /* real-mode segment for the IP wrap */

#define EFER 0xc0000080
#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_CODE32 0x18
#define SEL_CODE16 0x20
#define SEL_DATA16 0x28

/* REC "name", value: append a record; value is a register other than
 * %edi, or an immediate.  Works in 32-bit and 16-bit code (all addresses
 * involved are below 64 KiB). */
.macro REC name, val
	.pushsection .rodata.modes_names, "a"
.Lname\@:
	.asciz "\name"
	.popsection
	pushl %edi
	movl V_LOG, %edi
	movl $.Lname\@, (%edi)
	movl \val, 4(%edi)
	addl $8, %edi
	movl %edi, V_LOG
	popl %edi
.endm

/* After a BIOS call in real mode: its FLAGS pushed, ES back on BIOS_MAP
 * (the BIOS may change it), AX kept. */
.macro BIOS_RESULT
	pushfw
	pushw %ax
	movw $(BIOS_MAP >> 4), %ax
	movw %ax, %es
	popw %ax
.endm

/* ARM; faulting instruction; 9: FAULTREC "name" */
.macro ARM
	movl $MT(9f), V_RESUME
	movl $0xff, V_FVEC
	movl $0xffff, V_FERR
.endm

.macro FAULTREC name
	pushl %eax
	movl V_FVEC, %eax
	shll $16, %eax
	movw V_FERR, %ax
	REC "\name", %eax
	popl %eax
.endm

/* Flags an arithmetic instruction defines: OF SF ZF AF PF CF. */
#define ARITH_FLAGS 0x8d5

	.section .rodata.modes_tramp, "a"
	.globl modes_tramp_start, modes_tramp_end

	.code64
modes_tramp_start:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	pushfq
	movq %rsp, V_RSP
	movq %cr3, %rax
	movq %rax, V_CR3
	movq %cr4, %rax
	movq %rax, V_CR4
	sidt V_IDTR
	/* To compatibility mode: a 32-bit code segment, still IA-32e. */
	pushq $SEL_CODE32
	pushq $MT(compat32)
	lretq

	.code32
compat32:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl $STACK_TOP, %esp
	movl $EFER, %ecx
	rdmsr
	REC "compat efer", %eax
	movw %cs, %ax
	movzwl %ax, %eax
	REC "compat cs", %eax

	/* Paging off: leaves IA-32e mode (EFER.LMA clears). */
	movl %cr0, %eax
	andl $0x7fffffff, %eax
	movl %eax, %cr0
	jmp 1f
1:	movl $EFER, %ecx
	rdmsr
	REC "pm32 efer with LME still set", %eax
	andl $~0x100, %eax
	wrmsr
	movl %cr4, %eax
	andl $~0x20, %eax               /* PAE off */
	movl %eax, %cr4
	lidt V_IDT32

	/* --- 32-bit protected mode, no paging --- */
	movl %cr0, %eax
	REC "pm32 cr0", %eax
	movl %cr4, %eax
	REC "pm32 cr4", %eax
	movl $EFER, %ecx
	rdmsr
	REC "pm32 efer", %eax
	movw %cs, %ax
	movzwl %ax, %eax
	REC "pm32 cs", %eax
	movw %ss, %ax
	movzwl %ax, %eax
	REC "pm32 ss", %eax
	movl $1, %eax                   /* 12! */
	movl $12, %ecx
2:	imull %ecx, %eax
	loop 2b
	REC "pm32 12!", %eax
	movl $0x7fffffff, %eax
	addl $1, %eax
	pushfl
	popl %eax
	andl $ARITH_FLAGS, %eax
	REC "pm32 flags of 7fffffff+1", %eax
	movl %esp, %ebx
	pushl $0
	subl %esp, %ebx
	popl %eax
	REC "pm32 push size", %ebx
	movl PAGE_A, %eax
	REC "pm32 [A]", %eax
	movl PAGE_B, %eax
	REC "pm32 [B]", %eax

	/* Faults of legacy protected mode. */
	movl $EFER, %ecx
	rdmsr
	orl $0x100, %eax                /* LME without PAE */
	wrmsr
	ARM
	movl %cr0, %eax
	orl $0x80000000, %eax
	movl %eax, %cr0
9:	FAULTREC "pm32 #GP setting PG with LME=1 PAE=0"
	movl %cr0, %eax
	REC "pm32 cr0 after that", %eax
	movl $EFER, %ecx
	rdmsr
	andl $~0x100, %eax
	wrmsr
	ARM
	movl %cr0, %eax
	andl $~1, %eax
	orl $0x80000000, %eax
	movl %eax, %cr0
9:	FAULTREC "pm32 #GP setting PG with PE=0"
	ARM
	ud2
9:	FAULTREC "pm32 #UD ud2"
	movl $SEL_DATA16, %eax          /* limit ffff */
	movl %eax, %ds
	ARM
	movl 0xfffe, %eax
9:	movl $SEL_DATA, %eax
	movl %eax, %ds
	FAULTREC "pm32 #GP dword read at ds:fffe, limit ffff"
	ARM
	int $0x21
9:	FAULTREC "pm32 int 21h (vector 33 beyond the IDT limit): #GP"

	/* --- 32-bit paging: 4 KiB pages and 4 MiB pages (CR4.PSE) --- */
	movl $PD32, %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $0x10, %eax
	movl %eax, %cr4
	movl %cr0, %eax
	orl $0x80000000, %eax
	movl %eax, %cr0
	jmp 1f
1:	movl %cr0, %eax
	REC "pg32 cr0", %eax
	movl %cr3, %eax
	REC "pg32 cr3", %eax
	movl %cr4, %eax
	REC "pg32 cr4", %eax
	movl $EFER, %ecx
	rdmsr
	REC "pg32 efer", %eax
	movl 0x400000, %eax
	REC "pg32 [400000] (PTE to B)", %eax
	movl 0x401000, %eax
	REC "pg32 [401000] (PTE to A)", %eax
	movl 0x800000 + PAGE_A, %eax
	REC "pg32 [820000] (4 MiB page at 0)", %eax
	movl $0x32323232, 0x400010
	movl 0x400010, %eax
	REC "pg32 [400010] after write", %eax
	ARM
	movl 0x402000, %eax
9:	FAULTREC "pg32 #PF read of a not-present PTE"
	movl V_FCR2, %eax
	REC "pg32 cr2 of the read", %eax
	movl %cr0, %eax
	orl $0x10000, %eax              /* WP */
	movl %eax, %cr0
	ARM
	movl $0x33333333, 0x403000
9:	FAULTREC "pg32 #PF write to a read-only PTE, CR0.WP=1"
	movl V_FCR2, %eax
	REC "pg32 cr2 of the write", %eax
	/* String I/O through 32-bit paging.  A hypervisor that intercepts
	 * the port emulates it element by element through these tables (port
	 * 0x8900 is Nestor's; at depth 2 level 0 routes every port): a buffer
	 * across two pages, a fault in the middle (RCX/RSI/RDI as far as the
	 * CPU got), a write to a read-only page with WP=1. */
	cld
	movw $0x8900, %dx
	pushl PAGE_B                    /* (through the 4 MiB identity page) */
	movl $PAGE_B - 2, %edi
	movl $4, %ecx
	rep insb
	REC "pg32 rep insb across two pages: ecx", %ecx
	movl %edi, %eax                 /* (REC uses EDI) */
	REC "pg32 rep insb across two pages: edi", %eax
	movl PAGE_B - 4, %eax
	REC "pg32 [A+ffc] after it", %eax
	movl PAGE_B, %eax
	REC "pg32 [B] after it", %eax
	popl PAGE_B
	ARM
	movl $0x401ffe, %esi
	movl $4, %ecx
	rep outsb
9:	FAULTREC "pg32 #PF rep outsb into a not-present page"
	REC "pg32 rep outsb: ecx after the fault", %ecx
	REC "pg32 rep outsb: esi after the fault", %esi
	movl V_FCR2, %eax
	REC "pg32 cr2 of the outsb", %eax
	ARM
	movl $0x403800, %edi
	movl $2, %ecx
	rep insb
9:	FAULTREC "pg32 #PF rep insb to a read-only PTE, CR0.WP=1"
	REC "pg32 rep insb: ecx after the fault", %ecx
	ARM
	movl $0x403ffe, %edi
	movw $0x8900, %dx
	insw
9:	FAULTREC "pg32 #PF insw at the end of a read-only page"
	movl V_FCR2, %eax
	REC "pg32 cr2 of the insw", %eax
	movl %cr0, %eax
	andl $~0x10000, %eax
	movl %eax, %cr0
	movl %cr0, %eax
	andl $0x7fffffff, %eax
	movl %eax, %cr0
	jmp 1f
1:	movl PAGE_B + 0x10, %eax
	REC "pm32 [B+10] after paged write", %eax
	movl %cr4, %eax
	andl $~0x10, %eax
	movl %eax, %cr4

	/* --- PAE paging: 4 KiB pages and 2 MiB pages --- */
	movl %cr4, %eax
	orl $0x20, %eax
	movl %eax, %cr4
	movl $PDPT_PAE, %eax
	movl %eax, %cr3
	movl %cr0, %eax
	orl $0x80000000, %eax
	movl %eax, %cr0
	jmp 1f
1:	movl %cr0, %eax
	REC "pae cr0", %eax
	movl %cr3, %eax
	REC "pae cr3", %eax
	movl %cr4, %eax
	REC "pae cr4", %eax
	movl $EFER, %ecx
	rdmsr
	REC "pae efer", %eax
	movl 0x200000, %eax
	REC "pae [200000] (PTE to B)", %eax
	movl 0x201000, %eax
	REC "pae [201000] (PTE to A)", %eax
	movl 0x40000000 + PAGE_B, %eax
	REC "pae [40021000] (2 MiB page at 0, PDPTE 1)", %eax
	movl $0x64646464, 0x201010
	movl 0x201010, %eax
	REC "pae [201010] after write", %eax
	ARM
	movl 0x202000, %eax
9:	FAULTREC "pae #PF read of a not-present PTE"
	movl V_FCR2, %eax
	REC "pae cr2 of the read", %eax
	ARM
	movl 0x203000, %eax
9:	FAULTREC "pae #PF PTE with bit 63 (XD) set and EFER.NXE=0"
	ARM
	movl $PDPT_BAD, %eax
	movl %eax, %cr3
9:	FAULTREC "pae #GP loading CR3 with a reserved PDPTE bit"
	/* String I/O through PAE paging (see pg32): a fault on the second
	 * page, a reserved bit (XD with EFER.NXE=0) in the PTE. */
	cld
	movw $0x8900, %dx
	ARM
	movl $0x201ffe, %esi
	movl $4, %ecx
	rep outsb
9:	FAULTREC "pae #PF rep outsb into a not-present page"
	REC "pae rep outsb: ecx after the fault", %ecx
	movl V_FCR2, %eax
	REC "pae cr2 of the outsb", %eax
	ARM
	movl $0x203800, %edi
	movl $2, %ecx
	rep insb
9:	FAULTREC "pae #PF rep insb to a PTE with XD set and EFER.NXE=0"
	REC "pae rep insb: ecx after the fault", %ecx
	movl %cr3, %eax
	REC "pae cr3 after that", %eax
	/* MOV to CR0 and CR4 that a hypervisor must emulate (CR0.NE and
	 * CR4.VMXE are fixed under VMX) while they change bits that make PAE
	 * paging reload its PDPTEs (SDM 4.4.1: CR0.CD and NW, CR4.PGE): first with
	 * good PDPTEs, then with a reserved bit set in PDPTE 0 in memory. */
	movl %cr0, %eax
	xorl $0x60000020, %eax
	movl %eax, %cr0
	movl %cr0, %eax
	REC "pae cr0 with CD, NW and NE toggled", %eax
	xorl $0x60000020, %eax
	movl %eax, %cr0
	movl %cr4, %eax
	xorl $0x2080, %eax
	movl %eax, %cr4
	movl %cr4, %eax
	REC "pae cr4 with VMXE and PGE toggled", %eax
	xorl $0x2080, %eax
	movl %eax, %cr4
	orl $2, PDPT_PAE
	ARM
	movl %cr0, %eax
	xorl $0x60000020, %eax
	movl %eax, %cr0
9:	FAULTREC "pae #GP MOV to CR0 (CD, NW, NE) with a reserved bit in PDPTE 0"
	ARM
	movl %cr4, %eax
	xorl $0x2080, %eax
	movl %eax, %cr4
9:	FAULTREC "pae #GP MOV to CR4 (VMXE, PGE) with a reserved bit in PDPTE 0"
	andl $~2, PDPT_PAE
	movl %cr0, %eax
	REC "pae cr0 after that", %eax
	movl %cr4, %eax
	REC "pae cr4 after that", %eax
	/* Paging off and on again by MOVs to CR0 that also toggle NE (which a
	 * hypervisor emulates): the PDPTEs load when PG turns on - with a
	 * reserved bit in PDPTE 0, #GP and paging stays off; a write that
	 * toggles only NE under PAE paging loads nothing. */
	movl %cr0, %eax
	xorl $0x20, %eax
	movl %eax, %cr0
	movl %cr0, %eax
	REC "pae cr0 with NE toggled", %eax
	xorl $0x80000020, %eax
	movl %eax, %cr0
	jmp 1f
1:	movl %cr0, %eax
	REC "pae cr0 paging off by a write that toggles NE", %eax
	orl $2, PDPT_PAE
	ARM
	movl %cr0, %eax
	xorl $0x80000020, %eax
	movl %eax, %cr0
9:	FAULTREC "pae #GP paging on (NE toggled) with a reserved bit in PDPTE 0"
	andl $~2, PDPT_PAE
	movl %cr0, %eax
	xorl $0x80000020, %eax
	movl %eax, %cr0
	jmp 1f
1:	movl 0x201010, %eax
	REC "pae [201010] with paging on again (NE toggled)", %eax
	movl %cr0, %eax
	xorl $0x20, %eax
	movl %eax, %cr0
	movl %cr0, %eax
	andl $0x7fffffff, %eax
	movl %eax, %cr0
	jmp 1f
1:	movl PAGE_A + 0x10, %eax
	REC "pm32 [A+10] after paged write", %eax
	movl %cr4, %eax
	andl $~0x20, %eax
	movl %eax, %cr4

	/* --- 16-bit protected mode --- */
	ljmp $SEL_CODE16, $MT(pm16)
	.code16
pm16:
	movw $SEL_DATA16, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movl $STACK_TOP, %esp
	movl %cr0, %eax
	REC "pm16 cr0", %eax
	movw %cs, %ax
	movzwl %ax, %eax
	REC "pm16 cs", %eax
	movw %ss, %ax
	movzwl %ax, %eax
	REC "pm16 ss", %eax
	movw $0xffff, %ax
	addw $2, %ax
	pushfw
	popw %bx
	movzwl %ax, %eax
	REC "pm16 ffff+2 (16-bit)", %eax
	andl $ARITH_FLAGS, %ebx
	REC "pm16 flags of ffff+2", %ebx
	movw %sp, %bx
	pushw $0
	subw %sp, %bx
	popw %ax
	movzwl %bx, %ebx
	REC "pm16 push size", %ebx
	ARM
	movl 0xfffe, %eax
9:	FAULTREC "pm16 #GP dword read at fffe, limit ffff"
	/* String I/O that Nestor emulates (port 0x8900) with a 16-bit code
	 * segment: SI wraps at 64 KiB with the 16-bit address size; with a
	 * 32-bit one the DS limit (ffff) faults after two bytes. */
	movw $0x8900, %dx
	movl $0x5a5afffe, %esi
	movl $0x5a5a0004, %ecx
	rep outsb
	REC "pm16 rep outsb with SI wrapping: esi", %esi
	REC "pm16 rep outsb with SI wrapping: ecx", %ecx
	ARM
	movl $0xfffe, %esi
	movl $4, %ecx
	addr32 rep outsb
9:	FAULTREC "pm16 #GP addr32 rep outsb past the DS limit"
	REC "pm16 addr32 rep outsb: esi after the fault", %esi
	REC "pm16 addr32 rep outsb: ecx after the fault", %ecx
	ARM
	ud2
9:	FAULTREC "pm16 #UD ud2"

	/* --- real mode --- */
	movl %cr0, %eax
	andl $~1, %eax
	movl %eax, %cr0
	ljmp $0, $MT(rm)
rm:
	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movl $STACK_TOP, %esp
	lidt V_RMIDT
	movl %cr0, %eax
	REC "rm cr0", %eax
	movw %cs, %ax
	movzwl %ax, %eax
	REC "rm cs", %eax
	movw $PAGE_A >> 4, %ax          /* segment * 16 + offset */
	movw %ax, %es
	movl %es:0, %eax
	REC "rm [2000:0000]", %eax
	movw $(PAGE_A >> 4) - 1, %ax
	movw %ax, %es
	movl %es:0x1010, %eax
	REC "rm [1fff:1010] (= B)", %eax
	movl $0x16161616, %es:0x1014
	movw $PAGE_B >> 4, %ax
	movw %ax, %fs
	movl %fs:4, %eax
	REC "rm [2100:0004] after write via 1fff:1014", %eax
	/* String I/O with 16-bit addresses: SI wraps at 64 KiB (reads of
	 * 2100:fffe, 2100:ffff, 2100:0000, 2100:0001). */
	pushw %ds
	movw $PAGE_B >> 4, %ax
	movw %ax, %ds
	movw $0x8900, %dx
	movl $0x5a5afffe, %esi
	movl $0x5a5a0004, %ecx
	cld
	rep outsb
	popw %ds
	REC "rm rep outsb with SI wrapping: esi", %esi
	REC "rm rep outsb with SI wrapping: ecx", %ecx
	xorw %ax, %ax
	movw %ax, %es
	movw %ax, %fs
	movw $1000, %ax
	movw $1001, %cx
	mulw %cx                        /* dx:ax = 1001000 */
	shll $16, %edx
	movw %ax, %dx
	REC "rm 1000*1001 (dx:ax)", %edx
	movw $0x000f, %dx
	movw $0x4240, %ax
	movw $77, %cx
	divw %cx                        /* 1000000 / 77 */
	shll $16, %edx
	movw %ax, %dx
	REC "rm 1000000/77 (rem:quot)", %edx
	movw %sp, %bx
	pushw $0
	subw %sp, %bx
	popw %ax
	movzwl %bx, %ebx
	REC "rm push size", %ebx
	xorl %eax, %eax
	pushfw
	popw %ax
	REC "rm flags after xor", %eax
	/* An instruction that exits (CPUID) at IP fffe: IP wraps to 0000 - a
	 * hypervisor that advances RIP past it must wrap it too.  Segment
	 * WRAP_SEG spans [0x11ff0, 0x21fee]: offset 0 is in PT32's unused
	 * last entries, offset fffe at the end of page B; both put back. */
	movw $WRAP_SEG, %ax
	movw %ax, %es
	pushw %es:0xfffe
	pushw %es:0
	pushw %es:2
	pushw %es:4
	movw $0xa20f, %es:0xfffe        /* cpuid */
	movb $0xea, %es:0               /* ljmp $0, $MT(rm_wrapped) */
	movw $MT(rm_wrapped), %es:1
	movw $0, %es:3
	xorl %eax, %eax
	ljmp $WRAP_SEG, $0xfffe
rm_wrapped:
	movw $WRAP_SEG, %ax
	movw %ax, %es
	popw %es:4
	popw %es:2
	popw %es:0
	popw %es:0xfffe
	xorw %ax, %ax
	movw %ax, %es
	REC "rm cpuid at ip fffe: went on at 0000", $1
	cmpl $0, V_BIOS
	je 1f
	int $0x12
	movzwl %ax, %eax
	REC "env rm int 12h: base memory KiB", %eax
	/* The BIOS's memory map (modes.c: bios_memory_map), into BIOS_MAP
	 * (segment BIOS_MAP >> 4): the E820 entries from offset 0x100, 20
	 * bytes each (at most 64), their count at 0 and the EAX, EBX and
	 * flags of the call that ended the walk at 4, 8, 12; E801's AX, BX,
	 * CX, DX and flags at 16..24; AH=88h's AX and flags at 26, 28; the
	 * E820 call across a page below. */
	movw $(BIOS_MAP >> 4), %ax
	movw %ax, %es
	xorl %eax, %eax
	movl %eax, %es:0
	xorl %ebx, %ebx
	movw $0x100, %di
2:	movl $0xe820, %eax
	movl $0x534d4150, %edx
	movl $20, %ecx
	int $0x15
	BIOS_RESULT
	popw %dx
	movl %eax, %es:4
	movl %ebx, %es:8
	movw %dx, %es:12
	testb $1, %dl                   /* CF: an error */
	jnz 3f
	cmpl $0x534d4150, %eax
	jne 3f
	incl %es:0
	addw $20, %di
	testl %ebx, %ebx
	jz 3f
	cmpl $64, %es:0
	jb 2b
3:	movw $0xe801, %ax
	xorw %bx, %bx
	xorw %cx, %cx
	xorw %dx, %dx
	int $0x15
	BIOS_RESULT
	movw %ax, %es:16
	movw %bx, %es:18
	movw %cx, %es:20
	movw %dx, %es:22
	popw %ax
	movw %ax, %es:24
	movb $0x88, %ah
	int $0x15
	BIOS_RESULT
	movw %ax, %es:26
	popw %ax
	movw %ax, %es:28
	/* The first E820 entry again, into a buffer across the page boundary
	 * at BIOS_MAP + 0x1000 (ES:0ff6..1009); EAX and flags at 32, 36. */
	xorl %ebx, %ebx
	movw $0xff6, %di
	movl $0xe820, %eax
	movl $0x534d4150, %edx
	movl $20, %ecx
	int $0x15
	BIOS_RESULT
	popw %dx
	movl %eax, %es:32
	movw %dx, %es:36
	xorw %ax, %ax                   /* the BIOS may have changed them */
	movw %ax, %ds
	movw %ax, %es
	cli
1:
	/* --- back up: protected mode, then long mode --- */
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE32, $MT(pm32b)
	.code32
pm32b:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl $STACK_TOP, %esp
	lidt V_IDT32
	movl %cr0, %eax
	REC "pm32 again cr0", %eax
	movl V_CR4, %eax                /* PAE on */
	movl %eax, %cr4
	movl V_CR3, %eax
	movl %eax, %cr3
	movl $EFER, %ecx
	rdmsr
	orl $0x100, %eax                /* LME */
	wrmsr
	rdmsr
	REC "pm32 efer with LME set, paging off", %eax
	movl %cr0, %eax
	orl $0x80000000, %eax
	movl %eax, %cr0
	/* Paging on with LME: compatibility mode, LMA set. */
	movl $EFER, %ecx
	rdmsr
	REC "compat again efer", %eax
	ljmp $SEL_CODE64, $MT(lm64)

	.code64
lm64:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	lidt V_IDTR
	movq V_RSP, %rsp
	popfq
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	ret

/* Legacy protected mode exception handlers (32-bit interrupt gates). */
	.code32
	.balign 16
	.globl modes_tramp_stubs
modes_tramp_stubs:
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
	pushl %eax
	movl 4(%esp), %eax
	movl %eax, V_FVEC
	movl 8(%esp), %eax
	movl %eax, V_FERR
	movl %cr2, %eax
	movl %eax, V_FCR2
	movl V_RESUME, %eax
	movl %eax, 12(%esp)
	popl %eax
	addl $8, %esp
	iretl
modes_tramp_end:
