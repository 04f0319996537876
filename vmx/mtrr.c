/* mtrr.c - MTRR memory-type lookup (see mtrr.h). */
#include "vmx/mtrr.h"
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
