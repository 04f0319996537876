/* mtrr_read.c - snapshot of this CPU's MTRR MSRs. */
#include "boot/cpu.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "vmx/mtrr.h"

void mtrr_read(struct mtrr_state *m)
{
	static const uint32_t fixed_msrs[11] = { 0x250, 0x258, 0x259, 0x268, 0x269, 0x26a,
						 0x26b, 0x26c, 0x26d, 0x26e, 0x26f };
	memset(m, 0, sizeof(*m)); /* padding too: states are compared whole */
	m->phys_mask = (1ull << maxphyaddr) - 1;
	m->cap = rdmsr(MSR_IA32_MTRRCAP);
	m->def_type = rdmsr(MSR_IA32_MTRR_DEF_TYPE);
	for (int i = 0; i < 11; i++)
		m->fixed[i] = (m->cap & MTRR_CAP_FIX) ? rdmsr(fixed_msrs[i]) : 0;
	m->nvar = m->cap & 0xff;
	if (m->nvar > MTRR_MAX_VAR)
		m->nvar = MTRR_MAX_VAR;
	for (unsigned i = 0; i < m->nvar; i++) {
		m->var_base[i] = rdmsr(MSR_IA32_MTRR_PHYSBASE0 + 2 * i);
		m->var_mask[i] = rdmsr(MSR_IA32_MTRR_PHYSBASE0 + 2 * i + 1);
	}
}
