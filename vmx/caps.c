/* caps.c - VMX capability discovery (SDM Vol. 3D, appendix A). */
#include "vmx/caps.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/x86.h"
#include "vmx/vmx_defs.h"

int vmx_caps_read(struct vmx_caps *c, char *err, size_t errlen)
{
	*c = (struct vmx_caps){ 0 };
	if (!(cpuid(1, 0).ecx & (1u << 5))) {
		ksnprintf(err, errlen, "this CPU has no VMX (CPUID.1:ECX[5] = 0)");
		return -1;
	}
	/* SDM 23.7: VMXON needs IA32_FEATURE_CONTROL locked with VMX enabled;
	 * each CPU locks its own in vmx_enable. */
	uint64_t fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
	if ((fc & FEATURE_CONTROL_LOCKED) && !(fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX)) {
		ksnprintf(err, errlen, "VMX is disabled by the firmware (IA32_FEATURE_CONTROL=0x%llx, locked)",
			  (unsigned long long)fc);
		return -1;
	}

	c->basic = rdmsr(MSR_VMX_BASIC);
	c->revision = c->basic & 0x7fffffff;
	bool true_ctls = c->basic & VMX_BASIC_TRUE_CTLS;
	c->pin = rdmsr(true_ctls ? MSR_VMX_TRUE_PINBASED : MSR_VMX_PINBASED);
	c->proc = rdmsr(true_ctls ? MSR_VMX_TRUE_PROCBASED : MSR_VMX_PROCBASED);
	c->exit = rdmsr(true_ctls ? MSR_VMX_TRUE_EXIT : MSR_VMX_EXIT);
	c->entry = rdmsr(true_ctls ? MSR_VMX_TRUE_ENTRY : MSR_VMX_ENTRY);
	c->misc = rdmsr(MSR_VMX_MISC);
	c->cr0_fixed0 = rdmsr(MSR_VMX_CR0_FIXED0);
	c->cr0_fixed1 = rdmsr(MSR_VMX_CR0_FIXED1);
	c->cr4_fixed0 = rdmsr(MSR_VMX_CR4_FIXED0);
	c->cr4_fixed1 = rdmsr(MSR_VMX_CR4_FIXED1);
	c->vmcs_enum = rdmsr(MSR_VMX_VMCS_ENUM);
	/* The secondary-controls MSR exists only if the primary controls can
	 * activate them; EPT/VPID and VMFUNC MSRs only if those can be enabled. */
	c->has_proc2 = ctl_can_set(c->proc, PROC_SECONDARY_CTLS);
	if (c->has_proc2) {
		c->proc2 = rdmsr(MSR_VMX_PROCBASED2);
		c->has_ept_vpid = ctl_can_set(c->proc2, PROC2_EPT) || ctl_can_set(c->proc2, PROC2_VPID);
		if (c->has_ept_vpid)
			c->ept_vpid = rdmsr(MSR_VMX_EPT_VPID_CAP);
		c->has_vmfunc = ctl_can_set(c->proc2, PROC2_VMFUNC);
		if (c->has_vmfunc)
			c->vmfunc = rdmsr(MSR_VMX_VMFUNC);
	}

	/* What Nestor cannot work without, named precisely. */
	const char *missing = NULL;
	if (!c->has_proc2)
		missing = "secondary processor-based controls";
	else if (!ctl_can_set(c->proc2, PROC2_EPT))
		missing = "EPT";
	else if (!ctl_can_set(c->proc2, PROC2_UNRESTRICTED_GUEST))
		missing = "unrestricted guest";
	else if (!ctl_can_set(c->proc, PROC_USE_MSR_BITMAPS))
		missing = "MSR bitmaps";
	else if (!ctl_can_set(c->proc, PROC_USE_IO_BITMAPS))
		missing = "I/O bitmaps";
	else if (!(c->ept_vpid & EPT_CAP_WALK4))
		missing = "4-level EPT page walks";
	else if (!(c->ept_vpid & EPT_CAP_WB))
		missing = "write-back EPT paging structures";
	else if (!(c->ept_vpid & EPT_CAP_INVEPT) ||
		 !(c->ept_vpid & (EPT_CAP_INVEPT_SINGLE | EPT_CAP_INVEPT_ALL)))
		missing = "INVEPT";
	else if (!ctl_can_set(c->exit, EXIT_HOST_ADDR_SPACE_SIZE))
		missing = "64-bit host (VM-exit control 'host address-space size')";
	else if (!ctl_can_set(c->exit, EXIT_SAVE_EFER | EXIT_LOAD_EFER) || !ctl_can_set(c->entry, ENTRY_LOAD_EFER))
		missing = "IA32_EFER save/load controls";
	else if (((c->basic >> 32) & 0x1fff) > 4096 || ((c->basic >> 32) & 0x1fff) == 0)
		missing = "a VMCS region size of at most 4 KiB";
	if (missing) {
		ksnprintf(err, errlen, "the CPU's VMX lacks %s, which Nestor needs", missing);
		return -1;
	}
	return 0;
}

void vmx_caps_log(const struct vmx_caps *c)
{
	pr_debug("VMX: revision 0x%x, basic 0x%llx, misc 0x%llx, EPT/VPID 0x%llx\n", c->revision,
		 (unsigned long long)c->basic, (unsigned long long)c->misc, (unsigned long long)c->ept_vpid);
	pr_debug("VMX: pin 0x%llx proc 0x%llx proc2 0x%llx exit 0x%llx entry 0x%llx\n", (unsigned long long)c->pin,
		 (unsigned long long)c->proc, (unsigned long long)c->proc2, (unsigned long long)c->exit,
		 (unsigned long long)c->entry);
	pr_debug("VMX: cr0 fixed 0x%llx/0x%llx cr4 fixed 0x%llx/0x%llx\n", (unsigned long long)c->cr0_fixed0,
		 (unsigned long long)c->cr0_fixed1, (unsigned long long)c->cr4_fixed0,
		 (unsigned long long)c->cr4_fixed1);
}
