/* nestor.c - detecting Nestor from the guest. */
#include "guest/nestor.h"
#include "lib/x86.h"

/* By its signature alone: a Nestor may hide the hypervisor bit
 * (hypervisor_bit=off), and on a CPU leaf 0x40000000 never carries it. */
bool nestor_present(void)
{
	struct cpuid_regs r = cpuid(NESTOR_CPUID_BASE, 0);
	return NESTOR_SIGNATURE(r.ebx, r.ecx, r.edx);
}

unsigned nestor_level(void) { return cpuid(NESTOR_CPUID_INFO, 0).eax; }
