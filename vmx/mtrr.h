/* mtrr.h - memory types from the MTRRs (SDM Vol. 3A, 12.11), for EPT.
 * With EPT the CPU ignores the MTRRs for guest accesses: the EPT entry's
 * memory type plays their role, so Nestor computes it from the MTRRs.
 * Pure logic over a snapshot of the MTRR MSRs, unit-tested on the host. */
#ifndef VMX_MTRR_H
#define VMX_MTRR_H

#include <stdbool.h>
#include <stdint.h>

#define MTRR_MAX_VAR 16

struct mtrr_state {
	uint64_t cap;      /* IA32_MTRRCAP */
	uint64_t def_type; /* IA32_MTRR_DEF_TYPE */
	uint64_t fixed[11];/* 0x250, 0x258, 0x259, 0x268..0x26f */
	uint64_t var_base[MTRR_MAX_VAR], var_mask[MTRR_MAX_VAR];
	unsigned nvar;
	uint64_t phys_mask; /* (1 << MAXPHYADDR) - 1 */
};

#define MTRR_DEF_E (1ull << 11)
#define MTRR_DEF_FE (1ull << 10)
#define MTRR_CAP_FIX (1ull << 8)
#define MTRR_VAR_VALID (1ull << 11)

/* Whether msr is one of the MTRRs (SDM Vol. 3A 12.11.2). */
static inline bool mtrr_is_msr(uint32_t msr)
{
	return msr == 0x2ff /* IA32_MTRR_DEF_TYPE */ || (msr >= 0x250 && msr <= 0x26f) ||
	       (msr >= 0x200 && msr < 0x200 + 2 * MTRR_MAX_VAR);
}

/* Memory type of [start, start + len) (len a power of two, start aligned
 * to it), or -1 when the type is not the same over the whole range. */
int mtrr_type_of(const struct mtrr_state *m, uint64_t start, uint64_t len);

/* Reads the MTRR MSRs of this CPU (not for host tests). */
void mtrr_read(struct mtrr_state *m);

/* The guest's MTRRs are virtual (vmx/exit_msr.c): with EPT the CPU applies
 * the EPT's memory types to guest accesses, never the MTRRs, which then
 * only type Nestor's own accesses - a guest must not make Nestor's VMCSs
 * and tables uncacheable or write-combining.  RDMSR/WRMSR of an MTRR on
 * the state m: 0, or -1 for #GP(0) (no such MSR on this CPU, a reserved
 * bit, an invalid memory type). */
int mtrr_msr_read(const struct mtrr_state *m, uint32_t msr, uint64_t *val);
int mtrr_msr_write(struct mtrr_state *m, uint32_t msr, uint64_t val);

#endif
