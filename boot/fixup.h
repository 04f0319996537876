/* fixup.h - run one privileged instruction and catch the exception it raises.
 *
 * Nestor often answers a guest by asking the CPU below: it performs the
 * guest's WRMSR or XSETBV itself and, if the CPU refuses with #GP or #UD,
 * injects that same exception.  So the guest gets exactly the CPU's answer
 * without Nestor re-implementing every rule.  Each *_safe() helper places its
 * instruction address and a recovery address in the .fixup section; the
 * exception handler (boot/trap.c) resumes at the recovery address with the
 * exception vector in RSI (the helpers preset RSI to 0).  Each returns 0 or
 * the vector of the exception the CPU raised. */
#ifndef BOOT_FIXUP_H
#define BOOT_FIXUP_H

#include <stdint.h>

struct fixup_entry {
	uint64_t insn, recover;
};

/* Looks up rip; returns the recovery address or 0. */
uint64_t fixup_find(uint64_t rip);

/* The instruction at label 1 may fault; on a fault the handler resumes at
 * label 2 with the vector in RSI.  No fault: RSI keeps its value (0). */
#define FIXUP_INSN(insn)                         \
	"1: " insn "\n\t"                        \
	"2:\n\t"                                 \
	".pushsection .fixup, \"a\"\n\t"         \
	".balign 8\n\t"                          \
	".quad 1b, 2b\n\t"                       \
	".popsection\n\t"

static inline int rdmsr_safe(uint32_t msr, uint64_t *val)
{
	uint32_t lo = 0, hi = 0;
	uint64_t vec = 0;
	__asm__ volatile(FIXUP_INSN("rdmsr") : "=a"(lo), "=d"(hi), "+S"(vec) : "c"(msr) : "memory");
	*val = ((uint64_t)hi << 32) | lo;
	return (int)vec;
}

static inline int wrmsr_safe(uint32_t msr, uint64_t val)
{
	uint64_t vec = 0;
	__asm__ volatile(FIXUP_INSN("wrmsr")
			 : "+S"(vec)
			 : "c"(msr), "a"((uint32_t)val), "d"((uint32_t)(val >> 32))
			 : "memory");
	return (int)vec;
}

static inline int xsetbv_safe(uint32_t idx, uint64_t val)
{
	uint64_t vec = 0;
	__asm__ volatile(FIXUP_INSN("xsetbv")
			 : "+S"(vec)
			 : "c"(idx), "a"((uint32_t)val), "d"((uint32_t)(val >> 32))
			 : "memory");
	return (int)vec;
}

#endif
