/* exit_msr.c - RDMSR/WRMSR that exit (SDM Vol. 3C 25.1.3, 24.6.9).
 *
 * Most MSRs are passed through by the MSR bitmap.  What exits:
 *  - IA32_FEATURE_CONTROL and the VMX capability MSRs: the virtual CPU's
 *    values when Nestor offers VMX (read-only: writes #GP, as on a CPU whose
 *    firmware locked them), #GP(0) otherwise as on a CPU without VMX;
 *  - the MTRRs: virtual (vmx/mtrr.h), the EPT's memory types follow them;
 *  - IA32_APIC_BASE: virtual (vmx/apic.c);
 *  - IA32_S_CET and IA32_INTERRUPT_SSP_TABLE_ADDR (a guest hypervisor's
 *    guest's, let through): in the VMCS too, which may load them;
 *  - IA32_TSC read by a guest hypervisor's guest that its hypervisor lets
 *    through: the TSC with that VMCS's offset and multiplier;
 *  - MSRs outside the two ranges the bitmap covers: Nestor asks the CPU
 *    (RDMSR/WRMSR with exception fixup) and gives the guest its answer. */
#include "boot/fixup.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "nested/nested.h"
#include "vmx/ept.h"
#include "vmx/exits.h"
#include "vmx/vmcs.h"

static bool hidden_vmx_msr(uint32_t msr)
{
	return msr == MSR_IA32_FEATURE_CONTROL || (msr >= MSR_VMX_BASIC && msr <= MSR_VMX_VMFUNC);
}

/* MSRs that VT-x switches through the VMCS guest-state area: for the
 * guest they live in these fields, not in the real registers. */
static uint32_t vmcs_field_of(uint32_t msr)
{
	switch (msr) {
	case MSR_EFER: return VMCS_GUEST_IA32_EFER;
	case MSR_IA32_PAT: return VMCS_GUEST_IA32_PAT;
	case MSR_IA32_SYSENTER_CS: return VMCS_GUEST_IA32_SYSENTER_CS;
	case MSR_IA32_SYSENTER_ESP: return VMCS_GUEST_IA32_SYSENTER_ESP;
	case MSR_IA32_SYSENTER_EIP: return VMCS_GUEST_IA32_SYSENTER_EIP;
	case MSR_FS_BASE: return VMCS_GUEST_FS_BASE;
	case MSR_GS_BASE: return VMCS_GUEST_GS_BASE;
	case 0x1d9: return VMCS_GUEST_IA32_DEBUGCTL;
	default: return 0;
	}
}


/* WRMSR of a VMCS-switched MSR, with the checks the CPU makes (SDM Vol. 4
 * and the WRMSR reference); false = #GP(0). */
static bool write_vmcs_msr(uint32_t msr, uint32_t field, uint64_t val)
{
	switch (msr) {
	case MSR_EFER: {
		struct cpuid_regs x = cpuid(0x80000001, 0);
		uint64_t allowed = EFER_LMA | ((x.edx & (1u << 11)) ? EFER_SCE : 0) | ((x.edx & (1u << 29)) ? EFER_LME : 0) |
				   ((x.edx & (1u << 20)) ? EFER_NXE : 0);
		uint64_t old = vmread(field);
		if ((val & ~allowed) || (((val ^ old) & EFER_LME) && (guest_cr0() & CR0_PG)))
			return false;
		val = (val & ~(uint64_t)EFER_LMA) | (old & EFER_LMA); /* LMA is the CPU's */
		break;
	}
	case MSR_IA32_PAT:
		for (int i = 0; i < 8; i++) {
			unsigned t = (val >> (8 * i)) & 0xff;
			if (t == 2 || t == 3 || t > 7)
				return false;
		}
		break;
	case MSR_IA32_SYSENTER_ESP: case MSR_IA32_SYSENTER_EIP: case MSR_FS_BASE: case MSR_GS_BASE:
		if (!x86_canonical(val))
			return false;
		break;
	case MSR_IA32_SYSENTER_CS:
		val &= 0xffffffff;
		break;
	default: {
		/* DEBUGCTL: ask the CPU which bits it takes (Nestor itself runs with
		 * 0, which VM exits load anyway). */
		if (wrmsr_safe(msr, val))
			return false;
		rdmsr_safe(msr, &val);
		wrmsr_safe(msr, 0);
	}
	}
	vmwrite(field, val);
	return true;
}

uint32_t msr_vmcs_field(uint32_t msr) { return vmcs_field_of(msr); }

/* IA32_TSC as the running guest reads it: in VMX non-root operation with
 * "use TSC offsetting" the CPU scales the TSC by the VMCS's multiplier
 * ("use TSC scaling") and adds its offset (SDM 25.3).  The VMCS is that of
 * the level that runs - VMCS02 for a guest hypervisor's guest, whose RDMSR
 * exits to us when its hypervisor lets it through. */
static uint64_t guest_tsc(void)
{
	uint64_t tsc = rdtsc();
	uint32_t proc = (uint32_t)vmread(VMCS_PROC_BASED_CTLS);
	if (!(proc & PROC_TSC_OFFSETTING))
		return tsc;
	if ((proc & PROC_SECONDARY_CTLS) && (vmread(VMCS_PROC_BASED_CTLS2) & PROC2_TSC_SCALING))
		tsc = (uint64_t)(((unsigned __int128)tsc * vmread(VMCS_TSC_MULTIPLIER)) >> 48);
	return tsc + vmread(VMCS_TSC_OFFSET);
}

/* IA32_S_CET and the interrupt SSP table address where VM entries can load
 * them: the guest's value is the current VMCS's field - the registers'
 * since the last exit, or the value a one-shot load (vmx_entry_once) will
 * put there.  A write goes to both, with the CPU's checks. */
static uint32_t cet_field_of(const struct vcpu *v, uint32_t msr)
{
	if (!ctl_can_set(v->vm->caps->entry, ENTRY_LOAD_CET_STATE))
		return 0;
	return msr == MSR_IA32_S_CET ? VMCS_GUEST_IA32_S_CET
	     : msr == MSR_IA32_INTR_SSP_TABLE ? VMCS_GUEST_IA32_INTR_SSP_TABLE_ADDR
					      : 0;
}

/* IA32_FEATURE_CONTROL (SDM 23.7, Vol. 4 table 2-2): writable until its
 * lock bit is set, then #GP.  Bits: 0 lock, 2 VMX outside SMX, and with
 * SMX (CPUID.1:ECX[6]) 1 VMX inside SMX and 8-15 SENTER; any other bit is
 * reserved (#GP).  Bochs 2.7 does not check reserved bits (it keeps the low
 * 32 bits written); Nestor follows the SDM (docs/nested.md). */
static int feature_control_write(struct vcpu *v, uint64_t val)
{
	uint64_t ok = FEATURE_CONTROL_LOCKED | FEATURE_CONTROL_VMX_OUTSIDE_SMX;
	if (cpuid(1, 0).ecx & (1u << 6))
		ok |= 0xff02;
	if ((v->feature_control & FEATURE_CONTROL_LOCKED) || (val & ~ok))
		return -1;
	v->feature_control = val;
	return 0;
}

int guest_msr_read(struct vcpu *v, uint32_t msr, uint64_t *val)
{
	if (msr == MSR_IA32_TSC) {
		*val = guest_tsc();
		return 0;
	}
	uint32_t field = vmcs_field_of(msr);
	if (field) {
		if (msr == 0x1d9 && rdmsr_safe(msr, val))
			return -1; /* no DEBUGCTL on this CPU */
		*val = vmread(field);
		return 0;
	}
	if ((field = cet_field_of(v, msr))) {
		*val = vmread(field);
		return 0;
	}
	if (msr == MSR_IA32_FEATURE_CONTROL && nested_enabled()) {
		*val = v->feature_control;
		return 0;
	}
	if (hidden_vmx_msr(msr))
		return nested_rdmsr(msr, val); /* the virtual CPU's VMX MSRs, or #GP */
	if (msr == MSR_IA32_APIC_BASE)
		return apic_base_read(v, val);
	if (mtrr_is_msr(msr))
		return mtrr_msr_read(&v->mtrr, msr, val);
	return rdmsr_safe(msr, val) ? -1 : 0;
}

int guest_msr_write(struct vcpu *v, uint32_t msr, uint64_t val)
{
	uint32_t field = vmcs_field_of(msr);
	if (field)
		return write_vmcs_msr(msr, field, val) ? 0 : -1;
	if ((field = cet_field_of(v, msr))) {
		if (wrmsr_safe(msr, val))
			return -1;
		vmwrite(field, val);
		return 0;
	}
	if (msr == MSR_IA32_FEATURE_CONTROL && nested_enabled())
		return feature_control_write(v, val);
	if (hidden_vmx_msr(msr))
		return -1;
	if (msr == MSR_IA32_APIC_BASE)
		return apic_base_write(v, val);
	if (msr == 0x830 && v->vm->apic_trap)
		return apic_x2apic_icr_write(v, val);
	if (mtrr_is_msr(msr)) {
		/* Virtual, per vCPU: the EPT's memory types follow the last
		 * vCPU to write its own; the real MTRRs (Nestor's own memory
		 * types) never change. */
		if (mtrr_msr_write(&v->mtrr, msr, val))
			return -1;
		if (memcmp(&v->mtrr, &v->vm->mtrr, sizeof(v->mtrr)) && vm_ept_rebuild(v, &v->mtrr, false))
			vm_end_run(v, true, "out of pool memory rebuilding the EPT");
		return 0;
	}
	return wrmsr_safe(msr, val) ? -1 : 0;
}

void exit_rdmsr(struct vcpu *v)
{
	uint64_t val;
	if (guest_msr_read(v, (uint32_t)v->gpr[RCX], &val)) {
		inject_gp(v);
		return;
	}
	v->gpr[RAX] = (uint32_t)val;
	v->gpr[RDX] = val >> 32;
	skip_instruction(v);
}

void exit_wrmsr(struct vcpu *v)
{
	uint64_t val = ((uint64_t)(uint32_t)v->gpr[RDX] << 32) | (uint32_t)v->gpr[RAX];
	if (guest_msr_write(v, (uint32_t)v->gpr[RCX], val)) {
		inject_gp(v);
		return;
	}
	skip_instruction(v);
}
