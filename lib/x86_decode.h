/* x86_decode.h - decoding the form of an x86 instruction (see x86_decode.c).
 * Used where the CPU does not tell Nestor the length of the instruction it
 * must emulate (EPT violations); pure logic, unit-tested on the host against
 * the GNU assembler's encodings. */
#ifndef LIB_X86_DECODE_H
#define LIB_X86_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct x86_insn {
	uint8_t length;
	uint8_t map;    /* 0: one-byte, 1: 0F, 2: 0F38, 3: 0F3A (also for VEX/EVEX); EVEX 5, 6 */
	uint8_t opcode;
	uint8_t vex;    /* 0 none, 2/3 VEX bytes, 4 EVEX */
	uint8_t rex;    /* the REX prefix in effect (right before the opcode), or 0 */
	uint8_t rep;    /* 0, 0xf2 or 0xf3 */
	bool lock, prefix_66;
	int8_t seg;     /* segment override 0-5 (ES CS SS DS FS GS), -1 none; in
			 * 64-bit mode only FS and GS override */
	/* Operand-size attribute (REX.W/VEX.W/EVEX.W, else the mode's default
	 * flipped by 66, also where 66 is a mandatory prefix) and address
	 * size, in bytes. */
	uint8_t operand_size, address_size;
	bool has_modrm, has_sib;
	uint8_t modrm, mod, reg, rm, sib; /* reg/rm include REX.R/REX.B; mod is 3
					   * for MOV CR/DR, which ignore it */
	uint8_t disp_size, imm_size;
	bool truncated; /* ran out of bytes */
};

/* Decodes the instruction at b (avail bytes readable) for a CPU in 16-,
 * 32- or 64-bit mode.  Returns 0, or -1 when the bytes run out, the
 * instruction would exceed 15 bytes, or the encoding is invalid. */
int x86_decode(const uint8_t *b, size_t avail, int mode, struct x86_insn *in);

#endif
