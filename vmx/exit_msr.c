/* exit_msr.c - RDMSR/WRMSR that exit (SDM Vol. 3C 25.1.3, 24.6.9).
 *
 * Most MSRs are passed through by the MSR bitmap.  What exits:
 *  - IA32_FEATURE_CONTROL and the VMX capability MSRs: VMX is not offered
 *    to the guest, and on a CPU without VMX (or SMX) these raise #GP(0);
 *  - MTRR writes: performed on the real MTRRs (the guest owns the machine's
 *    memory types), then the EPT memory types are recomputed;
 *  - MSRs outside the two ranges the bitmap covers: Nestor asks the CPU
 *    (RDMSR/WRMSR with exception fixup) and gives the guest its answer. */
#include "boot/fixup.h"
#include "lib/log.h"
#include "lib/x86.h"
#include "vmx/ept.h"
#include "vmx/exits.h"
#include "vmx/vmcs.h"

static bool hidden_vmx_msr(uint32_t msr)
{
	return msr == MSR_IA32_FEATURE_CONTROL || (msr >= MSR_VMX_BASIC && msr <= MSR_VMX_VMFUNC);
}

static bool is_mtrr(uint32_t msr)
{
	return msr == MSR_IA32_MTRR_DEF_TYPE || (msr >= 0x250 && msr <= 0x26f) ||
	       (msr >= MSR_IA32_MTRR_PHYSBASE0 && msr < MSR_IA32_MTRR_PHYSBASE0 + 2 * MTRR_MAX_VAR);
}

void exit_rdmsr(struct vcpu *v)
{
	uint32_t msr = (uint32_t)v->gpr[RCX];
	uint64_t val;
	if (hidden_vmx_msr(msr) || rdmsr_safe(msr, &val)) {
		inject_gp(v);
		return;
	}
	v->gpr[RAX] = (uint32_t)val;
	v->gpr[RDX] = val >> 32;
	skip_instruction(v);
}

void exit_wrmsr(struct vcpu *v)
{
	uint32_t msr = (uint32_t)v->gpr[RCX];
	uint64_t val = ((uint64_t)(uint32_t)v->gpr[RDX] << 32) | (uint32_t)v->gpr[RAX];
	if (hidden_vmx_msr(msr) || wrmsr_safe(msr, val)) {
		inject_gp(v);
		return;
	}
	if (is_mtrr(msr)) {
		mtrr_read(&v->vm->mtrr);
		if (ept_rebuild(v->vm))
			vm_end_run(v, true, "out of pool memory rebuilding the EPT");
	}
	skip_instruction(v);
}
