/* vmcs12.c - field lookup and VMREAD/VMWRITE semantics of VMCS12. */
#include "nested/vmcs12.h"
#include "nested/nested.h"
#include "vmx/vmx_defs.h"

/* Fields of features Nestor does not offer to a guest hypervisor: on the
 * virtual CPU they do not exist (SDM 24.11.2: VMREAD/VMWRITE fail with
 * "unsupported VMCS component"). */
static bool offered(uint32_t enc)
{
	switch (enc) {
	case VMCS_POSTED_INTR_NV: case VMCS_HLAT_PREFIX_SIZE:
	case VMCS_EXECUTIVE_VMCS_PTR:
	case VMCS_POSTED_INTR_DESC_ADDR:
	case VMCS_ENCLS_EXIT_BITMAP: case VMCS_SPP_TABLE_PTR:
	case VMCS_TERTIARY_PROC_CTLS: case VMCS_ENCLV_EXIT_BITMAP: case VMCS_GUEST_IA32_PERF_GLOBAL_CTRL:
	case VMCS_GUEST_IA32_BNDCFGS: case VMCS_GUEST_IA32_RTIT_CTL: case VMCS_GUEST_IA32_LBR_CTL:
	case VMCS_GUEST_IA32_PKRS: case VMCS_HOST_IA32_PERF_GLOBAL_CTRL: case VMCS_HOST_IA32_PKRS:
	case VMCS_PLE_GAP: case VMCS_PLE_WINDOW: case VMCS_GUEST_SMBASE:
		return false;
	default:
		return true;
	}
}

/* Encoding -> index, built on first use from the field table: key from
 * width (bits 14:13), type (11:10) and index (bits 6:1; every defined field
 * has index < 64). */
static int16_t index_of[4 * 4 * 64]; /* built once at boot, read-only after */

static unsigned key(uint32_t enc) { return ((enc >> 13) & 3) << 8 | ((enc >> 10) & 3) << 6 | ((enc >> 1) & 63); }

void vmcs12_init(void)
{
	for (unsigned k = 0; k < sizeof(index_of) / sizeof(index_of[0]); k++)
		index_of[k] = -1;
	for (unsigned i = 0; i < vmcs_num_fields; i++)
		if (offered(vmcs_all_fields[i]))
			index_of[key(vmcs_all_fields[i])] = (int16_t)i;
}

int vmcs12_index(uint32_t enc)
{
	/* Bits 31:15 and 12 must be 0, index bits 9:7 (ours are below 64); the
	 * high-access bit only exists for 64-bit fields. */
	if ((enc & 0xffff9000u) || ((enc >> 1) & 0x1ff) >= 64)
		return -1;
	if ((enc & 1) && vmcs_field_width(enc) != VMCS_W64)
		return -1;
	return index_of[key(enc)];
}

/* Fields of features the virtual CPU does not offer (indices into f[]). */
static uint64_t absent[(V12_NFIELDS + 63) / 64]; /* set once at boot, read-only after */

void vmcs12_set_features(const struct nested_caps *c)
{
	uint32_t pin = c->true_pin >> 32, proc = c->true_proc >> 32, exit = c->true_exit >> 32,
		 entry = c->true_entry >> 32, proc2 = (proc & PROC_SECONDARY_CTLS) ? c->proc2 >> 32 : 0;
	/* The CET fields exist with either "load CET state" control (SDM 24.4.1). */
	bool cet = (exit & EXIT_LOAD_CET_STATE) || (entry & ENTRY_LOAD_CET_STATE);
	const struct {
		uint32_t enc;
		bool offered;
	} dep[] = {
		{ VMCS_PROC_BASED_CTLS2, proc & PROC_SECONDARY_CTLS },
		{ VMCS_VPID, proc2 & PROC2_VPID },
		{ VMCS_EPT_POINTER, proc2 & PROC2_EPT },
		{ VMCS_GUEST_PHYSICAL_ADDR, proc2 & PROC2_EPT },
		{ VMCS_GUEST_PDPTE0, proc2 & PROC2_EPT },
		{ VMCS_GUEST_PDPTE1, proc2 & PROC2_EPT },
		{ VMCS_GUEST_PDPTE2, proc2 & PROC2_EPT },
		{ VMCS_GUEST_PDPTE3, proc2 & PROC2_EPT },
		{ VMCS_XSS_EXIT_BITMAP, proc2 & PROC2_XSAVES },
		{ VMCS_VIRTUAL_APIC_ADDR, proc & PROC_TPR_SHADOW },
		{ VMCS_TPR_THRESHOLD, proc & PROC_TPR_SHADOW },
		{ VMCS_APIC_ACCESS_ADDR, proc2 & PROC2_VIRT_APIC_ACCESS },
		{ VMCS_PML_ADDR, proc2 & PROC2_PML },
		{ VMCS_TSC_MULTIPLIER, proc2 & PROC2_TSC_SCALING },
		{ VMCS_VMFUNC_CONTROLS, proc2 & PROC2_VMFUNC },
		{ VMCS_VE_INFO_ADDR, proc2 & PROC2_EPT_VE },
		{ VMCS_EPTP_INDEX, proc2 & PROC2_EPT_VE },
		{ VMCS_EPTP_LIST_ADDR, (proc2 & PROC2_VMFUNC) && (c->vmfunc & 1) },
		{ VMCS_VMREAD_BITMAP, proc2 & PROC2_VMCS_SHADOWING },
		{ VMCS_VMWRITE_BITMAP, proc2 & PROC2_VMCS_SHADOWING },
		{ VMCS_GUEST_PML_INDEX, proc2 & PROC2_PML },
		{ VMCS_GUEST_PREEMPTION_TIMER, pin & PIN_PREEMPTION_TIMER },
		{ VMCS_GUEST_IA32_PAT, (exit & (EXIT_SAVE_PAT | EXIT_LOAD_PAT)) || (entry & ENTRY_LOAD_PAT) },
		{ VMCS_HOST_IA32_PAT, (exit & (EXIT_SAVE_PAT | EXIT_LOAD_PAT)) || (entry & ENTRY_LOAD_PAT) },
		{ VMCS_GUEST_IA32_EFER, (exit & (EXIT_SAVE_EFER | EXIT_LOAD_EFER)) || (entry & ENTRY_LOAD_EFER) },
		{ VMCS_HOST_IA32_EFER, (exit & (EXIT_SAVE_EFER | EXIT_LOAD_EFER)) || (entry & ENTRY_LOAD_EFER) },
		{ VMCS_GUEST_INTR_STATUS, proc2 & PROC2_VIRT_INTR_DELIVERY },
		{ VMCS_EOI_EXIT_BITMAP0, proc2 & PROC2_VIRT_INTR_DELIVERY },
		{ VMCS_EOI_EXIT_BITMAP1, proc2 & PROC2_VIRT_INTR_DELIVERY },
		{ VMCS_EOI_EXIT_BITMAP2, proc2 & PROC2_VIRT_INTR_DELIVERY },
		{ VMCS_EOI_EXIT_BITMAP3, proc2 & PROC2_VIRT_INTR_DELIVERY },
		{ VMCS_GUEST_IA32_S_CET, cet },
		{ VMCS_GUEST_SSP, cet },
		{ VMCS_GUEST_IA32_INTR_SSP_TABLE_ADDR, cet },
		{ VMCS_HOST_IA32_S_CET, cet },
		{ VMCS_HOST_SSP, cet },
		{ VMCS_HOST_IA32_INTR_SSP_TABLE_ADDR, cet },
	};
	for (unsigned i = 0; i < sizeof(dep) / sizeof(dep[0]); i++) {
		int idx = vmcs12_index(dep[i].enc);
		if (idx >= 0 && !dep[i].offered)
			absent[idx / 64] |= 1ull << (idx % 64);
	}
}

bool vmcs12_field_exists(uint32_t enc)
{
	int idx = vmcs12_index(enc);
	return idx >= 0 && !((absent[idx / 64] >> (idx % 64)) & 1);
}

uint64_t vmcs12_slot_read(uint64_t slot, uint32_t enc)
{
	if (vmcs_field_is_high(enc))
		return slot >> 32;
	switch (vmcs_field_width(enc)) {
	case VMCS_W16: return slot & 0xffff;
	case VMCS_W32: return slot & 0xffffffff;
	default: return slot;
	}
}

uint64_t vmcs12_slot_write(uint64_t slot, uint32_t enc, uint64_t val)
{
	if (vmcs_field_is_high(enc))
		return (slot & 0xffffffffull) | (val << 32);
	switch (vmcs_field_width(enc)) {
	case VMCS_W16: return val & 0xffff;
	case VMCS_W32: return val & 0xffffffff;
	default: return val;
	}
}

uint64_t vmcs12_read(const struct vmcs12 *c, uint32_t enc) { return vmcs12_slot_read(c->f[vmcs12_index(enc)], enc); }

void vmcs12_write(struct vmcs12 *c, uint32_t enc, uint64_t val)
{
	uint64_t *slot = &c->f[vmcs12_index(enc)];
	*slot = vmcs12_slot_write(*slot, enc, val);
}

unsigned vmcs12_max_index(void)
{
	unsigned max = 0;
	for (unsigned i = 0; i < vmcs_num_fields; i++)
		if (offered(vmcs_all_fields[i]) && vmcs_field_index(vmcs_all_fields[i]) > max)
			max = vmcs_field_index(vmcs_all_fields[i]);
	return max;
}
