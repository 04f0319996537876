// sources: lib/x86_decode.c
// max_len: 20
// libs: -lZydis
/* fuzz_decode.c - the instruction decoder (lib/x86_decode.c) against Zydis.
 *
 * Input: byte 0 picks the mode (16, 32, 64: byte % 3), the rest are the
 * bytes at RIP, all of them readable (avail = size - 1).  Zydis decodes the
 * same bytes followed by padding, so it always has the whole instruction;
 * it is the reference for what a CPU would fetch:
 *   - Zydis decodes an instruction of length Z <= avail: Nestor must decode
 *     it with the same length, opcode map and opcode, ModRM/SIB,
 *     displacement and immediate sizes, prefixes (REX, REP, LOCK, 66,
 *     effective segment override) and operand/address size.
 *   - Zydis decodes one longer than avail: Nestor must say it ran out.
 *   - Zydis refuses (undefined or #UD encodings): Nestor decodes the form
 *     or refuses, whichever; it must only stay within the bytes and 15.
 * Besides, Nestor's answer must not depend on bytes past the instruction.
 * Classes excluded from the comparison (still decoded, still checked for
 * the bounds above) are listed in excluded(). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <Zydis/Zydis.h>

#include "lib/x86_decode.h"

static ZydisDecoder zdec[3];
static const int modes[3] = { 16, 32, 64 };

static void init(void)
{
	static bool done;
	if (done)
		return;
	/* 16-bit protected mode: a Nestor "16" is real or 16-bit protected
	 * mode; they decode alike except that VEX is #UD in real mode. */
	ZydisDecoderInit(&zdec[0], ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16);
	ZydisDecoderInit(&zdec[1], ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
	ZydisDecoderInit(&zdec[2], ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	done = true;
}

/* Nestor's decoder has few branches (its opcode knowledge is in tables),
 * so its coverage alone does not lead libFuzzer to every kind of
 * instruction.  The reference's answer is made coverage too: one feature
 * per mode and mnemonic, and per mode, encoding, opcode map and opcode
 * (libFuzzer reads counters in this section as it reads its own). */
enum { ZF_MNEMONIC = 2048, ZF_OPCODE = 2048, ZF_STATUS = 64 };
_Static_assert(ZYDIS_MNEMONIC_MAX_VALUE < ZF_MNEMONIC, "one counter per mnemonic");
/* Small: libFuzzer clears and scans these counters on every execution. */
__attribute__((section("__libfuzzer_extra_counters"), used)) static uint8_t zfeature[3][ZF_MNEMONIC + ZF_OPCODE + ZF_STATUS];

static void feature(int mi, const ZydisDecodedInstruction *z, ZyanStatus st)
{
	uint8_t *f = zfeature[mi];
	if (!ZYAN_SUCCESS(st)) {
		f[ZF_MNEMONIC + ZF_OPCODE + ZYAN_STATUS_CODE(st) % ZF_STATUS]++;
		return;
	}
	f[z->mnemonic]++;
	/* Encoding, map and opcode, hashed into ZF_OPCODE counters. */
	unsigned key = ((unsigned)z->encoding * 16 + z->opcode_map) * 256 + z->opcode;
	f[ZF_MNEMONIC + (key * 2654435761u >> 21) % ZF_OPCODE]++;
}

static const uint8_t *cur;
static size_t cur_len;
static int cur_mode;

/* FUZZ_SURVEY=1 in the environment: report each kind of divergence a few
 * times and go on, to see every class at once (for development). */
static int survey = -1;

static void fail(const char *what, long nestor, long zydis)
{
	if (survey < 0)
		survey = getenv("FUZZ_SURVEY") != NULL;
	if (survey) {
		static const char *seen[64];
		static unsigned count[64];
		unsigned i = 0;
		while (i < 64 && seen[i] && strcmp(seen[i], what))
			i++;
		if (i == 64 || (seen[i] = what, count[i]++ >= 5))
			return;
	}
	fprintf(stderr, "decode divergence (mode %d): %s: nestor %ld, zydis %ld; bytes", cur_mode, what, nestor,
		zydis);
	for (size_t i = 0; i < cur_len; i++)
		fprintf(stderr, " %02x", cur[i]);
	fprintf(stderr, "\n");
	if (!survey)
		abort();
}

#define CHECK_EQ(what, n, z)                                  \
	do {                                                  \
		long n_ = (long)(n), z_ = (long)(z);           \
		if (n_ != z_)                                 \
			fail(what, n_, z_);                   \
	} while (0)

/* Encodings Nestor is not asked to decode exactly: instructions that only
 * AMD CPUs have (Nestor runs on VT-x, i.e. Intel).  The decoder must still
 * stay within the bytes for them. */
static bool excluded(const ZydisDecodedInstruction *z)
{
	if (z->encoding == ZYDIS_INSTRUCTION_ENCODING_XOP)
		return true; /* AMD XOP (8F with map >= 8): POP r/m on Intel */
	if (z->encoding == ZYDIS_INSTRUCTION_ENCODING_MVEX)
		return true; /* Knights Corner (Xeon Phi, no VT-x): #UD elsewhere */
	switch (z->meta.isa_ext) {
	case ZYDIS_ISA_EXT_KNC: case ZYDIS_ISA_EXT_KNCE: case ZYDIS_ISA_EXT_KNCV:
		return true; /* Knights Corner again (VEX-encoded mask branches) */
	case ZYDIS_ISA_EXT_SSE4A: /* EXTRQ/INSERTQ take two imm8: VMREAD/VMWRITE on Intel */
		return true;
	default:
		return false;
	}
}

static unsigned zmap(const ZydisDecodedInstruction *z)
{
	switch (z->opcode_map) {
	case ZYDIS_OPCODE_MAP_DEFAULT: return 0;
	case ZYDIS_OPCODE_MAP_0F: return 1;
	case ZYDIS_OPCODE_MAP_0F38: return 2;
	case ZYDIS_OPCODE_MAP_0F3A: return 3;
	case ZYDIS_OPCODE_MAP_MAP5: return 5;
	case ZYDIS_OPCODE_MAP_MAP6: return 6;
	default: return 99;
	}
}

static int zseg(const ZydisDecodedInstruction *z)
{
	static const struct { uint64_t attr; int seg; } s[] = {
		{ ZYDIS_ATTRIB_HAS_SEGMENT_ES, 0 }, { ZYDIS_ATTRIB_HAS_SEGMENT_CS, 1 },
		{ ZYDIS_ATTRIB_HAS_SEGMENT_SS, 2 }, { ZYDIS_ATTRIB_HAS_SEGMENT_DS, 3 },
		{ ZYDIS_ATTRIB_HAS_SEGMENT_FS, 4 }, { ZYDIS_ATTRIB_HAS_SEGMENT_GS, 5 },
	};
	for (unsigned i = 0; i < 6; i++)
		if (z->attributes & s[i].attr)
			return s[i].seg;
	return -1;
}

static void compare(const struct x86_insn *in, const ZydisDecodedInstruction *z, int mode)
{
	CHECK_EQ("length", in->length, z->length);
	bool amd3dnow = z->encoding == ZYDIS_INSTRUCTION_ENCODING_3DNOW;
	if (!amd3dnow) {
		/* 3DNow! (0F 0F /r ib): the opcode is the trailing byte, which
		 * Nestor counts as an immediate; the length is what matters. */
		CHECK_EQ("opcode map", in->map, zmap(z));
		CHECK_EQ("opcode", in->opcode, z->opcode);
		unsigned zimm = (z->raw.imm[0].size + z->raw.imm[1].size) / 8, zdisp = z->raw.disp.size / 8;
		/* MOV AL/rAX <-> moffs (A0-A3): Nestor calls the offset an
		 * immediate, Zydis a displacement. */
		if (z->opcode_map == ZYDIS_OPCODE_MAP_DEFAULT && z->opcode >= 0xa0 && z->opcode <= 0xa3 &&
		    z->encoding == ZYDIS_INSTRUCTION_ENCODING_LEGACY)
			zimm = zdisp, zdisp = 0;
		CHECK_EQ("immediate bytes", in->imm_size, zimm);
		CHECK_EQ("displacement bytes", in->disp_size, zdisp);
	}
	unsigned vex = z->encoding == ZYDIS_INSTRUCTION_ENCODING_VEX ? z->raw.vex.size
		       : z->encoding == ZYDIS_INSTRUCTION_ENCODING_EVEX ? 4 : 0;
	CHECK_EQ("vex", in->vex, vex);
	CHECK_EQ("has ModRM", in->has_modrm, !!(z->attributes & ZYDIS_ATTRIB_HAS_MODRM));
	if (in->has_modrm) {
		CHECK_EQ("ModRM", in->modrm, (z->raw.modrm.mod << 6) | (z->raw.modrm.reg << 3) | z->raw.modrm.rm);
		CHECK_EQ("has SIB", in->has_sib, !!(z->attributes & ZYDIS_ATTRIB_HAS_SIB));
	}
	/* Prefixes as the CPU takes them: Zydis lists every prefix byte. */
	unsigned rep = 0;
	bool lock = false, p66 = false;
	for (unsigned i = 0; i < z->raw.prefix_count; i++) {
		uint8_t p = z->raw.prefixes[i].value;
		if (p == 0xf2 || p == 0xf3)
			rep = p;
		lock |= p == 0xf0;
		p66 |= p == 0x66;
	}
	CHECK_EQ("rep prefix", in->rep, rep);
	CHECK_EQ("lock prefix", in->lock, lock);
	CHECK_EQ("66 prefix", in->prefix_66, p66);
	unsigned rex = 0;
	bool w = false;
	if (z->attributes & ZYDIS_ATTRIB_HAS_REX) {
		rex = 0x40 | z->raw.rex.W << 3 | z->raw.rex.R << 2 | z->raw.rex.X << 1 | z->raw.rex.B;
		w = z->raw.rex.W;
	}
	if (z->encoding == ZYDIS_INSTRUCTION_ENCODING_VEX)
		w = z->raw.vex.W;
	if (z->encoding == ZYDIS_INSTRUCTION_ENCODING_EVEX)
		w = z->raw.evex.W;
	CHECK_EQ("REX", in->rex, rex);
	/* The effective segment override, where the instruction has a memory
	 * operand it applies to (NOTRACK: a 3E prefix on an indirect branch
	 * is no override for Zydis; DS is the default anyway). */
	if ((z->attributes & ZYDIS_ATTRIB_ACCEPTS_SEGMENT) && !(z->attributes & ZYDIS_ATTRIB_HAS_NOTRACK))
		CHECK_EQ("segment override", in->seg, zseg(z));
	/* The address-size attribute.  Not compared for ENCLS/ENCLU/ENCLV
	 * (0F 01 CF/D7/C0), whose operands are registers and whose address
	 * size Zydis fixes at 32 in 16-bit code (they are #UD in real mode),
	 * and for MPX (0F 1A/1B), where 67 is ignored in 64-bit mode: the
	 * attribute stays what the prefixes say; MPX is gone from CPUs since
	 * Ice Lake and Nestor emulates none of these. */
	bool fixed_asz = z->meta.isa_ext == ZYDIS_ISA_EXT_SGX || z->meta.isa_ext == ZYDIS_ISA_EXT_SGX_ENCLV ||
			 z->meta.isa_ext == ZYDIS_ISA_EXT_MPX;
	if (!fixed_asz)
		CHECK_EQ("address size", in->address_size * 8, z->address_width);
	/* The operand-size attribute (SDM Vol. 1 3.6): REX.W/VEX.W/EVEX.W,
	 * else the mode's default flipped by a 66 prefix (also where 66 is a
	 * mandatory prefix, which Nestor does not tell apart). */
	unsigned osz = w ? 8 : ((mode == 16) != p66) ? 2 : 4;
	CHECK_EQ("operand size", in->operand_size, osz);
	/* ... which is the instruction's operand size for the string and MOV
	 * instructions whose emulation uses it (vmx/exit_ept.c). */
	if (z->encoding == ZYDIS_INSTRUCTION_ENCODING_LEGACY && z->opcode_map == ZYDIS_OPCODE_MAP_DEFAULT &&
	    (z->opcode & 1)) {
		switch (z->opcode) {
		case 0x89: case 0x8b: case 0xc7: case 0xa1: case 0xa3: case 0xa5: case 0xa7: case 0xab: case 0xad:
		case 0xaf: case 0x6d: case 0x6f:
			CHECK_EQ("operand width", in->operand_size * 8, z->operand_width);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init();
	if (size < 1)
		return 0;
	int mi = data[0] % 3, mode = modes[mi];
	size_t n = size - 1;
	/* An exact-size copy: ASan reports any read past the readable bytes. */
	uint8_t *b = malloc(n ? n : 1);
	memcpy(b, data + 1, n);
	cur = b, cur_len = n, cur_mode = mode;
	struct x86_insn in;
	int r = x86_decode(b, n, mode, &in);
	if (r == 0) {
		if (in.length < 1 || in.length > 15 || in.length > n || in.truncated)
			fail("length out of bounds", in.length, n);
		/* Bytes past the instruction change nothing. */
		struct x86_insn again;
		if (x86_decode(b, in.length, mode, &again) != 0 || memcmp(&again, &in, sizeof(in)))
			fail("decoding only the instruction's bytes differs", in.length, -1);
		if (x86_decode(b, in.length - 1, mode, &again) != -1 || !again.truncated)
			fail("one byte fewer is not truncated", in.length - 1, -1);
	} else if (r != -1) {
		fail("return value", r, -1);
	}

	uint8_t pad[32] = { 0 };
	memcpy(pad, b, n < 16 ? n : 16);
	ZydisDecodedInstruction z;
	ZyanStatus st = ZydisDecoderDecodeInstruction(&zdec[mi], NULL, pad, sizeof(pad), &z);
#ifndef FUZZ_NO_EXTRA_FEATURES /* defined to minimize the committed corpus on Nestor's coverage only */
	feature(mi, &z, st);
#endif
	if (ZYAN_SUCCESS(st) && !excluded(&z)) {
		if (z.length > n) {
			if (r != -1 || !in.truncated)
				fail("Zydis needs more bytes than there are", r == 0 ? in.length : -1, z.length);
		} else {
			if (r != 0)
				fail("Zydis decodes, Nestor refuses", r, z.length);
			compare(&in, &z, mode);
		}
	}
	free(b);
	return 0;
}
