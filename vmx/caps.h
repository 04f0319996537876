/* caps.h - what the VT-x below us offers, read from the capability MSRs.
 * Never assume a CPU model: every control Nestor uses is checked here. */
#ifndef VMX_CAPS_H
#define VMX_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmx_caps {
	uint64_t basic, misc, vmcs_enum, ept_vpid, vmfunc;
	/* Control MSRs (the TRUE variants when IA32_VMX_BASIC[55] says they
	 * exist): bits 31:0 allowed-0 settings (1 = must be 1), bits 63:32
	 * allowed-1 settings (0 = must be 0). */
	uint64_t pin, proc, proc2, exit, entry;
	uint64_t cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
	uint32_t revision;
	bool has_proc2, has_ept_vpid, has_vmfunc;
};

/* Reads everything (following the SDM's rules on which MSRs exist) and
 * enables VMX in IA32_FEATURE_CONTROL if the firmware left it unlocked.
 * Returns 0, or -1 with a precise reason in err. */
int vmx_caps_read(struct vmx_caps *c, char *err, size_t errlen);

/* A control value with the bits we want, adjusted to what the CPU allows. */
static inline uint32_t ctl_adjust(uint64_t msr, uint32_t want)
{
	return (want | (uint32_t)msr) & (uint32_t)(msr >> 32);
}
static inline bool ctl_can_set(uint64_t msr, uint32_t bits) { return ((msr >> 32) & bits) == bits; }

/* Logs a summary of the capabilities at debug level. */
void vmx_caps_log(const struct vmx_caps *c);

#endif
