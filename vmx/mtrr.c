/* mtrr.c - MTRR memory-type lookup (see mtrr.h). */
#include "vmx/mtrr.h"
#include <stddef.h>
#include "vmx/vmx_defs.h"

/* Fixed ranges (SDM 12.11.2.2): 8 x 64 KiB from 0, 16 x 16 KiB from 0x80000,
 * 64 x 4 KiB from 0xC0000; each MSR holds 8 one-byte types. */
static int fixed_type(const struct mtrr_state *m, uint64_t a)
{
	unsigned idx;
	if (a < 0x80000)
		idx = a >> 16;
	else if (a < 0xc0000)
		idx = 8 + ((a - 0x80000) >> 14);
	else
		idx = 24 + ((a - 0xc0000) >> 12);
	return (m->fixed[idx / 8] >> (8 * (idx % 8))) & 0xff;
}

/* Type at one address from the variable ranges (SDM 12.11.4.1: UC wins,
 * WT wins over WB, other overlaps are undefined - we take UC). */
static int var_type(const struct mtrr_state *m, uint64_t a)
{
	int type = -1;
	for (unsigned i = 0; i < m->nvar; i++) {
		uint64_t mask = m->var_mask[i];
		if (!(mask & MTRR_VAR_VALID))
			continue;
		mask &= m->phys_mask & ~0xfffull;
		if ((a & mask) != (m->var_base[i] & mask))
			continue;
		int t = m->var_base[i] & 0xff;
		if (type < 0 || type == t)
			type = t;
		else if (type == MT_UC || t == MT_UC)
			type = MT_UC;
		else if ((type == MT_WT && t == MT_WB) || (type == MT_WB && t == MT_WT))
			type = MT_WT;
		else
			type = MT_UC;
	}
	return type < 0 ? (int)(m->def_type & 0xff) : type;
}

int mtrr_type_of(const struct mtrr_state *m, uint64_t start, uint64_t len)
{
	if (!(m->def_type & MTRR_DEF_E))
		return MT_UC;
	int fixed_on = (m->def_type & MTRR_DEF_FE) && (m->cap & MTRR_CAP_FIX);
	if (fixed_on && start < 0x100000) {
		/* Fixed ranges are at least 4 KiB; the range must lie below 1 MiB. */
		if (start + len > 0x100000)
			return -1;
		int t = fixed_type(m, start);
		for (uint64_t a = start; a < start + len; a += 0x1000)
			if (fixed_type(m, a) != t)
				return -1;
		return t;
	}
	/* A variable range whose granularity (lowest mask bit) is smaller than
	 * len may cover only part of the range: then compare every granule. */
	uint64_t step = len;
	for (unsigned i = 0; i < m->nvar; i++) {
		uint64_t mask = m->var_mask[i];
		if (!(mask & MTRR_VAR_VALID))
			continue;
		mask &= m->phys_mask & ~0xfffull;
		uint64_t gran = mask ? (mask & -mask) : 0x1000;
		if (gran < step)
			step = gran;
	}
	int t = var_type(m, start);
	for (uint64_t a = start + step; a < start + len; a += step)
		if (var_type(m, a) != t)
			return -1;
	return t;
}

/* --- the guest's MTRRs (SDM Vol. 3A 12.11.2) -------------------------------- */

static bool type_ok(unsigned t) { return t == MT_UC || t == MT_WC || t == MT_WT || t == MT_WP || t == MT_WB; }

static bool fixed_ok(uint64_t v)
{
	for (int i = 0; i < 8; i++)
		if (!type_ok((v >> (8 * i)) & 0xff))
			return false;
	return true;
}

/* The fixed-range MSRs in the order of mtrr_state.fixed[]. */
static int fixed_index(uint32_t msr)
{
	if (msr == 0x250)
		return 0;
	if (msr == 0x258 || msr == 0x259)
		return 1 + (msr - 0x258);
	if (msr >= 0x268 && msr <= 0x26f)
		return 3 + (msr - 0x268);
	return -1;
}

/* Which slot an MTRR MSR is: its field, or NULL when this CPU has no such
 * MSR (RDMSR/WRMSR raise #GP). */
static uint64_t *slot(struct mtrr_state *m, uint32_t msr)
{
	if (msr == 0x2ff)
		return &m->def_type;
	int f = fixed_index(msr);
	if (f >= 0)
		return (m->cap & MTRR_CAP_FIX) ? &m->fixed[f] : NULL;
	if (msr >= 0x200 && msr < 0x200 + 2 * m->nvar)
		return (msr & 1) ? &m->var_mask[(msr - 0x200) / 2] : &m->var_base[(msr - 0x200) / 2];
	return NULL;
}

int mtrr_msr_read(const struct mtrr_state *m, uint32_t msr, uint64_t *val)
{
	uint64_t *p = slot((struct mtrr_state *)m, msr);
	if (!p)
		return -1;
	*val = *p;
	return 0;
}

int mtrr_msr_write(struct mtrr_state *m, uint32_t msr, uint64_t val)
{
	uint64_t *p = slot(m, msr);
	uint64_t above = ~m->phys_mask; /* bits beyond MAXPHYADDR */
	if (!p)
		return -1;
	if (msr == 0x2ff) {
		/* Bits 7:0 the default type, 10 FE, 11 E; the rest reserved. */
		if ((val & ~(0xffull | MTRR_DEF_FE | MTRR_DEF_E)) || !type_ok(val & 0xff))
			return -1;
	} else if (fixed_index(msr) >= 0) {
		if (!fixed_ok(val))
			return -1;
	} else if (msr & 1) {
		/* PHYSMASK: bit 11 valid, bits 10:0 and beyond the width reserved. */
		if ((val & 0x7ff) || (val & above))
			return -1;
	} else {
		/* PHYSBASE: bits 7:0 the type, 11:8 and beyond the width reserved. */
		if ((val & 0xf00) || (val & above) || !type_ok(val & 0xff))
			return -1;
	}
	*p = val;
	return 0;
}
