/* x86_decode.c - x86 instruction decoder: prefixes, opcode map, ModRM,
 * SIB, displacement and immediate, hence the length (SDM Vol. 2, chapter 2
 * and appendix A).  Legacy, REX, VEX and EVEX encodings; 16/32/64-bit modes.
 * It decodes the form, not the meaning: the caller decides what an
 * instruction does. */
#include "lib/x86_decode.h"
#include "lib/string.h"

/* One bit per opcode: has a ModRM byte (one-byte map, legacy/compat). */
static const uint8_t modrm_1[32] = {
	/* 00-0f */ 0x0f, 0x0f, /* 10-1f */ 0x0f, 0x0f, /* 20-2f */ 0x0f, 0x0f, /* 30-3f */ 0x0f, 0x0f,
	/* 40-4f */ 0x00, 0x00, /* 50-5f */ 0x00, 0x00, /* 60-6f */ 0x0c, 0x0a, /* 70-7f */ 0x00, 0x00,
	/* 80-8f */ 0xff, 0xff, /* 90-9f */ 0x00, 0x00, /* a0-af */ 0x00, 0x00, /* b0-bf */ 0x00, 0x00,
	/* c0-cf */ 0xf3, 0x00, /* d0-df */ 0x0f, 0xff, /* e0-ef */ 0x00, 0x00, /* f0-ff */ 0xc0, 0xc0,
};

/* Two-byte map (0F xx): opcodes WITHOUT a ModRM byte. */
static const uint8_t no_modrm_2[32] = {
	/* 00-0f */ 0xe0, 0x4b, /* 10-1f */ 0x00, 0x00, /* 20-2f */ 0x00, 0x00, /* 30-3f */ 0xff, 0x00,
	/* 40-4f */ 0x00, 0x00, /* 50-5f */ 0x00, 0x00, /* 60-6f */ 0x00, 0x00, /* 70-7f */ 0x80, 0x00,
	/* 80-8f */ 0xff, 0xff, /* 90-9f */ 0x00, 0x00, /* a0-af */ 0x07, 0x07, /* b0-bf */ 0x00, 0x00,
	/* c0-cf */ 0x00, 0xff, /* d0-df */ 0x00, 0x00, /* e0-ef */ 0x00, 0x00, /* f0-ff */ 0x00, 0x00,
};

static bool bit(const uint8_t *map, uint8_t op) { return (map[op >> 3] >> (op & 7)) & 1; }

/* Two-byte opcodes with an 8-bit immediate. */
static bool imm8_2(uint8_t op)
{
	return (op >= 0x70 && op <= 0x73) || op == 0xa4 || op == 0xac || op == 0xba || op == 0xc2 ||
	       (op >= 0xc4 && op <= 0xc6) || op == 0x0f;
}

int x86_decode(const uint8_t *b, size_t avail, int mode, struct x86_insn *in)
{
	memset(in, 0, sizeof(*in));
	in->seg = -1;
	size_t n = 0, max = avail < 15 ? avail : 15;
	bool opsize16 = false, addr_override = false;
#define NEXT() (n < max ? b[n++] : (in->truncated = true, -1))
	int c;
	/* Prefixes (SDM Vol. 2, 2.1.1 and 2.2.1): legacy prefixes in any
	 * order and, in 64-bit mode, REX.  A REX prefix counts only when the
	 * opcode (or escape) follows it: a legacy prefix after it cancels it,
	 * another REX replaces it.  In 64-bit mode the ES, CS, SS and DS
	 * overrides are null prefixes (SDM Vol. 1, 3.3.7.1): only FS and GS
	 * override the segment. */
	for (;;) {
		if ((c = NEXT()) < 0)
			return -1;
		if (mode == 64 && (c & 0xf0) == 0x40) {
			in->rex = (uint8_t)c;
			continue;
		}
		switch (c) {
		case 0x26: case 0x2e: case 0x36: case 0x3e:
			if (mode != 64)
				in->seg = (int8_t)((c >> 3) & 3); /* 26 ES, 2E CS, 36 SS, 3E DS */
			break;
		case 0x64: in->seg = 4; break;
		case 0x65: in->seg = 5; break;
		case 0x66: opsize16 = true; in->prefix_66 = true; break;
		case 0x67: addr_override = true; break;
		case 0xf0: in->lock = true; break;
		case 0xf2: in->rep = 0xf2; break;
		case 0xf3: in->rep = 0xf3; break;
		default:
			goto opcode;
		}
		in->rex = 0;
	}
opcode:
	in->address_size = mode == 64 ? (addr_override ? 4 : 8) : mode == 32 ? (addr_override ? 2 : 4)
									      : (addr_override ? 4 : 2);
	bool rex_w = in->rex & 8;
	in->operand_size = rex_w ? 8 : (mode == 16) != opsize16 ? 2 : 4;

	unsigned imm = 0;
	bool has_modrm;
	/* VEX (C4/C5) and EVEX (62): in 64-bit mode always; elsewhere only when
	 * the next byte has mod = 11 (otherwise LES/LDS/BOUND). */
	if ((c == 0xc4 || c == 0xc5 || c == 0x62) && (mode == 64 || (n < max && (b[n] & 0xc0) == 0xc0))) {
		uint8_t p0, p1;
		if (c == 0xc5) {
			if ((c = NEXT()) < 0)
				return -1;
			in->map = 1;
			in->vex = 2;
		} else if (c == 0xc4) {
			int q0 = NEXT(), q1 = NEXT();
			if (q0 < 0 || q1 < 0)
				return -1;
			p0 = (uint8_t)q0, p1 = (uint8_t)q1;
			in->map = p0 & 0x1f;
			in->vex = 3;
			if (p1 & 0x80)
				in->operand_size = 8;
		} else {
			int q0 = NEXT(), q1 = NEXT(), q2 = NEXT();
			if (q0 < 0 || q1 < 0 || q2 < 0)
				return -1;
			p0 = (uint8_t)q0, p1 = (uint8_t)q1;
			in->map = p0 & 7;
			in->vex = 4; /* EVEX */
			if (p1 & 0x80)
				in->operand_size = 8;
		}
		if ((c = NEXT()) < 0)
			return -1;
		in->opcode = (uint8_t)c;
		/* Maps 1-3 (0F, 0F38, 0F3A); EVEX also 5 and 6 (AVX512-FP16). */
		if (in->map < 1 || in->map > (in->vex == 4 ? 6 : 3) || in->map == 4)
			return -1;
		/* Every VEX/EVEX instruction has ModRM except VZEROUPPER/ALL. */
		has_modrm = !(in->map == 1 && c == 0x77);
		if (in->map == 3 || (in->map == 1 && imm8_2((uint8_t)c)))
			imm = 1;
	} else if (c == 0x0f) {
		if ((c = NEXT()) < 0)
			return -1;
		if (c == 0x38 || c == 0x3a) {
			in->map = c == 0x38 ? 2 : 3;
			if ((c = NEXT()) < 0)
				return -1;
			in->opcode = (uint8_t)c;
			has_modrm = true;
			imm = in->map == 3 ? 1 : 0;
		} else {
			in->map = 1;
			in->opcode = (uint8_t)c;
			has_modrm = !bit(no_modrm_2, (uint8_t)c);
			if (imm8_2((uint8_t)c))
				imm = 1;
			else if (c >= 0x80 && c <= 0x8f) /* Jcc rel16/32 */
				imm = in->operand_size == 2 && mode != 64 ? 2 : 4;
		}
	} else {
		in->map = 0;
		in->opcode = (uint8_t)c;
		has_modrm = bit(modrm_1, (uint8_t)c);
		unsigned z = in->operand_size == 2 ? 2 : 4; /* imm16/32 */
		switch (c) {
		case 0x04: case 0x0c: case 0x14: case 0x1c: case 0x24: case 0x2c: case 0x34: case 0x3c:
		case 0x6a: case 0x6b: case 0x80: case 0x82: case 0x83: case 0xa8: case 0xc0: case 0xc1:
		case 0xcd: case 0xd4: case 0xd5: case 0xe4: case 0xe5: case 0xe6: case 0xe7: case 0xeb:
		case 0xe0: case 0xe1: case 0xe2: case 0xe3: case 0xc6:
			imm = 1;
			break;
		case 0x05: case 0x0d: case 0x15: case 0x1d: case 0x25: case 0x2d: case 0x35: case 0x3d:
		case 0x68: case 0x69: case 0x81: case 0xa9: case 0xc7:
			imm = z;
			break;
		case 0xe8: case 0xe9: /* rel16/32: 32 in 64-bit mode */
			imm = mode == 64 ? 4 : z;
			break;
		case 0xc2: case 0xca:
			imm = 2;
			break;
		case 0xc8:
			imm = 3;
			break;
		case 0x9a: case 0xea:
			if (mode == 64)
				return -1;
			imm = z + 2;
			break;
		case 0xa0: case 0xa1: case 0xa2: case 0xa3: /* moffs: address-size */
			imm = in->address_size;
			break;
		default:
			if (c >= 0x70 && c <= 0x7f)
				imm = 1;
			else if (c >= 0xb0 && c <= 0xb7)
				imm = 1;
			else if (c >= 0xb8 && c <= 0xbf)
				imm = rex_w ? 8 : z;
			break;
		}
	}
	if (has_modrm) {
		if ((c = NEXT()) < 0)
			return -1;
		in->has_modrm = true;
		in->modrm = (uint8_t)c;
		in->mod = c >> 6;
		/* MOV to/from control and debug registers (0F 20-23) ignore the
		 * mod bits: always a register operand (SDM Vol. 2, MOV CR/DR). */
		if (in->map == 1 && !in->vex && in->opcode >= 0x20 && in->opcode <= 0x23)
			in->mod = 3;
		in->reg = ((c >> 3) & 7) | ((in->rex & 4) ? 8 : 0);
		in->rm = (c & 7) | ((in->rex & 1) ? 8 : 0);
		unsigned disp = 0;
		if (in->mod != 3) {
			if (in->address_size == 2) {
				disp = in->mod == 1 ? 1 : in->mod == 2 ? 2 : ((c & 7) == 6 ? 2 : 0);
			} else {
				if ((c & 7) == 4) {
					int sib = NEXT();
					if (sib < 0)
						return -1;
					in->has_sib = true;
					in->sib = (uint8_t)sib;
					if (in->mod == 0 && (sib & 7) == 5)
						disp = 4;
				}
				if (in->mod == 1)
					disp = 1;
				else if (in->mod == 2 || (in->mod == 0 && (c & 7) == 5))
					disp = 4;
			}
		}
		in->disp_size = (uint8_t)disp;
		for (unsigned i = 0; i < disp; i++)
			if (NEXT() < 0)
				return -1;
		/* Group 3 (F6/F7): TEST has an immediate, the others do not. */
		if (in->map == 0 && (in->opcode == 0xf6 || in->opcode == 0xf7) && ((in->modrm >> 3) & 7) < 2)
			imm = in->opcode == 0xf6 ? 1 : (in->operand_size == 2 ? 2 : 4);
		/* XBEGIN (C7 F8) takes rel16/32, XABORT (C6 F8) imm8: covered above. */
	}
	in->imm_size = (uint8_t)imm;
	for (unsigned i = 0; i < imm; i++)
		if (NEXT() < 0)
			return -1;
	in->length = (uint8_t)n;
	return 0;
#undef NEXT
}
