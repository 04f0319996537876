// sources: vmx/mtrr.c
/* Unit tests of the MTRR logic: memory types of ranges (fixed and variable
 * MTRRs, overlaps) and the guest's virtual MTRR MSRs (SDM Vol. 3A 12.11):
 * what WRMSR accepts and what it refuses with #GP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmx/mtrr.h"
#include "vmx/vmx_defs.h"

/* An MTRR set like Bochs' at boot: 8 variable ranges, fixed ranges, 36-bit
 * physical addresses, everything write-back below 4 GiB but one UC hole. */
static struct mtrr_state boot(void)
{
	struct mtrr_state m;
	memset(&m, 0, sizeof(m));
	m.cap = 0x508;
	m.nvar = 8;
	m.phys_mask = (1ull << 36) - 1;
	m.def_type = MTRR_DEF_E | MTRR_DEF_FE | MT_UC;
	for (int i = 0; i < 11; i++)
		m.fixed[i] = 0x0606060606060606ull;
	m.var_base[0] = 0x0 | MT_WB;
	m.var_mask[0] = 0xf00000000ull | MTRR_VAR_VALID; /* 4 GiB WB */
	m.var_base[1] = 0xc0000000ull | MT_UC;
	m.var_mask[1] = 0xfc0000000ull | MTRR_VAR_VALID; /* 1 GiB UC at 3 GiB */
	return m;
}

static void types(void **state)
{
	(void)state;
	struct mtrr_state m = boot();
	assert_int_equal(mtrr_type_of(&m, 0x200000, 0x200000), MT_WB);
	assert_int_equal(mtrr_type_of(&m, 0xc0000000, 0x200000), MT_UC); /* UC wins over WB */
	assert_int_equal(mtrr_type_of(&m, 0x100000000ull, 0x1000), MT_UC); /* the default */
	assert_int_equal(mtrr_type_of(&m, 0, 0x1000), MT_WB);              /* fixed */
	m.fixed[0] = 0x0000000000000006ull;                                 /* 64 KiB WB, then UC */
	assert_int_equal(mtrr_type_of(&m, 0, 0x200000), -1);
	m.def_type &= ~MTRR_DEF_E;
	assert_int_equal(mtrr_type_of(&m, 0x200000, 0x200000), MT_UC); /* MTRRs off: all UC */
}

static void msr_reads(void **state)
{
	(void)state;
	struct mtrr_state m = boot();
	uint64_t v;
	assert_int_equal(mtrr_msr_read(&m, 0x2ff, &v), 0);
	assert_int_equal(v, m.def_type);
	assert_int_equal(mtrr_msr_read(&m, 0x203, &v), 0);
	assert_int_equal(v, m.var_mask[1]);
	assert_int_equal(mtrr_msr_read(&m, 0x26f, &v), 0);
	assert_int_equal(mtrr_msr_read(&m, 0x210, &v), -1); /* 9th range: no such MSR */
	assert_int_equal(mtrr_msr_read(&m, 0x251, &v), -1); /* not an MTRR */
	m.cap &= ~MTRR_CAP_FIX;
	assert_int_equal(mtrr_msr_read(&m, 0x250, &v), -1); /* no fixed ranges */
}

static void msr_writes(void **state)
{
	(void)state;
	struct mtrr_state m = boot(), before;
	uint64_t v;
	/* Accepted, and read back. */
	assert_int_equal(mtrr_msr_write(&m, 0x2ff, MTRR_DEF_E | MT_WB), 0);
	assert_int_equal(mtrr_msr_read(&m, 0x2ff, &v), 0);
	assert_int_equal(v, MTRR_DEF_E | MT_WB);
	assert_int_equal(mtrr_msr_write(&m, 0x204, 0x80000000ull | MT_WC), 0);
	assert_int_equal(mtrr_msr_write(&m, 0x205, 0xf80000000ull | MTRR_VAR_VALID), 0);
	assert_int_equal(m.var_base[2], 0x80000000ull | MT_WC);
	assert_int_equal(mtrr_msr_write(&m, 0x268, 0x0605040100060504ull), 0);
	/* Refused: the state does not change. */
	before = m;
	static const struct {
		uint32_t msr;
		uint64_t val;
	} bad[] = {
		{ 0x2ff, MT_WB | (1ull << 8) },           /* reserved bit 8 */
		{ 0x2ff, 2 },                             /* type 2 */
		{ 0x2ff, MT_WB | (1ull << 32) },          /* reserved high bits */
		{ 0x200, 0x1000 | 7 },                    /* type 7 */
		{ 0x200, 0x1000 | MT_WB | 0x100 },        /* bits 11:8 */
		{ 0x200, (1ull << 36) | MT_WB },          /* beyond MAXPHYADDR */
		{ 0x201, 0xff0000000ull | 0x800 | 1 },    /* bits 10:0 */
		{ 0x201, (1ull << 40) | 0x800 },          /* beyond MAXPHYADDR */
		{ 0x250, 0x0606060606060603ull },         /* a fixed byte of type 3 */
		{ 0x258, 0x0806060606060606ull },         /* type 8 */
		{ 0x210, 0 },                             /* no such range */
		{ 0x251, 0 },                             /* no such MSR */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(mtrr_msr_write(&m, bad[i].msr, bad[i].val), -1);
		assert_memory_equal(&m, &before, sizeof(m));
	}
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(types),
		cmocka_unit_test(msr_reads),
		cmocka_unit_test(msr_writes),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
