/* nestor.c - detecting Nestor from the guest. */
#include "guest/nestor.h"
#include "lib/x86.h"

bool nestor_present(void)
{
	if (!(cpuid(1, 0).ecx & (1u << 31)))
		return false;
	struct cpuid_regs r = cpuid(NESTOR_CPUID_BASE, 0);
	return r.ebx == NESTOR_SIG_EBX && r.ecx == NESTOR_SIG_ECX && r.edx == NESTOR_SIG_EDX;
}

unsigned nestor_level(void) { return cpuid(NESTOR_CPUID_INFO, 0).eax; }
