/* lifecycle.c - per-vCPU nested state: set-up, which VMCS to enter next,
 * NMIs for L2, and the CPU refusing VMCS02. */
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "mm/mm.h"
#include "nested/internal.h"
#include "vmx/exits.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"

int nested_vcpu_init(struct vcpu *v)
{
	struct nested *n = &v->nested;
	n->current_ptr = ~0ull;
	n->vmcs02_vmcs12 = ~0ull;
	n->vmcs12 = zalloc(sizeof(struct vmcs12));
	n->vmcs02 = page_alloc();
	n->msr_bitmap02 = page_alloc();
	if (!n->vmcs12 || !n->vmcs02 || !n->msr_bitmap02)
		return -1;
	memset(n->msr_bitmap02, 0xff, PAGE_SIZE); /* every MSR access of L2 exits to L0 */
	*(uint32_t *)n->vmcs02 = v->vm->caps->revision;
	n->vmcs02_phys = virt_to_phys(n->vmcs02);
	/* VMCS02 exits to the same place as VMCS01: same host state, and the
	 * MSR bitmap it always uses. */
	if (vmclear(n->vmcs02_phys) != VMX_OK || vmptrld(n->vmcs02_phys) != VMX_OK)
		return -1;
	vmx_vcpu_setup(v);
	vmwrite(VMCS_MSR_BITMAP, virt_to_phys(n->msr_bitmap02));
	if (vmptrld(v->vmcs_phys) != VMX_OK)
		return -1;
	return nested_shadow_init(v); /* with VMCS01 current */
}

bool nested_l2_uses_ept12(const struct vcpu *v)
{
	const struct nested *n = &v->nested;
	if (!n->guest_mode)
		return false;
	uint32_t proc = V12(n->vmcs12, PROC_BASED_CTLS);
	return (proc & PROC_SECONDARY_CTLS) && (V12(n->vmcs12, PROC_BASED_CTLS2) & PROC2_EPT);
}

void nested_reset_vmcs02(struct vcpu *v)
{
	struct nested *n = &v->nested;
	vmclear(n->vmcs02_phys);
	n->vmcs02_launched = false;
	n->vmcs02_vmcs12 = ~0ull; /* rebuilt in full next time */
	n->guest_mode = false;
	vmptrld(v->vmcs_phys);
}

int nested_launch_next(struct vcpu *v)
{
	struct nested *n = &v->nested;
	if (!n->guest_mode || n->vmcs02_launched)
		return 0;
	/* Optimistic: an entry failure (reason bit 31) clears it again. */
	n->vmcs02_launched = true;
	return 1;
}

void nested_deliver_nmis(struct vcpu *v)
{
	struct nested *n = &v->nested;
	deliver_nmis(&n->nmi_pending02, &n->proc02, false);
	/* Keep L1's own NMI-window request in VMCS02. */
	if ((V12(n->vmcs12, PROC_BASED_CTLS) & PROC_NMI_WINDOW) && !(n->proc02 & PROC_NMI_WINDOW)) {
		n->proc02 |= PROC_NMI_WINDOW;
		vmwrite(VMCS_PROC_BASED_CTLS, n->proc02);
	}
}

int nested_entry_refused(struct vcpu *v, uint64_t error)
{
	/* Nestor's checks passed VMCS12 but the CPU refused the VMCS02 built
	 * from it: tell L1 its controls are invalid, and say so here. */
	pr_warn("the CPU refused VMCS02 (error %llu) built from a VMCS12 Nestor accepted\n", (unsigned long long)error);
	pr_warn("VMCS02: pin %llx proc %llx proc2 %llx exit %llx entry %llx eptp %llx\n",
		(unsigned long long)vmread(VMCS_PIN_BASED_CTLS), (unsigned long long)vmread(VMCS_PROC_BASED_CTLS),
		(unsigned long long)vmread(VMCS_PROC_BASED_CTLS2), (unsigned long long)vmread(VMCS_VMEXIT_CTLS),
		(unsigned long long)vmread(VMCS_VMENTRY_CTLS), (unsigned long long)vmread(VMCS_EPT_POINTER));
	pr_warn("VMCS02: entry info %llx errcode %llx len %llu cr3 targets %llu vpid %llu msr bitmap %llx\n",
		(unsigned long long)vmread(VMCS_VMENTRY_INTR_INFO), (unsigned long long)vmread(VMCS_VMENTRY_EXCEPTION_ERRCODE),
		(unsigned long long)vmread(VMCS_VMENTRY_INSTR_LEN), (unsigned long long)vmread(VMCS_CR3_TARGET_COUNT),
		(unsigned long long)vmread(VMCS_VPID), (unsigned long long)vmread(VMCS_MSR_BITMAP));
	/* Whatever the CPU's launch state of VMCS02 now, make it clear. */
	nested_reset_vmcs02(v);
	vmx_fail(v, VMXERR_ENTRY_INVALID_CONTROLS);
	return 0;
}

void nested_nmi_in_root(struct vcpu *v)
{
	/* While Nestor handled an exit of L2: the NMI is L2's unless L1 takes
	 * NMI exits - then L1 gets it at its next exit (it is pending in L0). */
	struct nested *n = &v->nested;
	if (V12(n->vmcs12, PIN_BASED_CTLS) & PIN_NMI_EXITING)
		v->nmi_pending++;
	else
		n->nmi_pending02++;
}
