/* blob.S - Nestor's ELF image inside nestor.efi (NESTOR_ELF: the path of
 * the debug-stripped build/nestor.elf, given by the Makefile). */
	.section .data
	.balign 16
	.globl nestor_elf, nestor_elf_end
nestor_elf:
	.incbin NESTOR_ELF
nestor_elf_end:

	.section .note.GNU-stack, "", @progbits
