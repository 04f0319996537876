/* vmcs12.c - field lookup and VMREAD/VMWRITE semantics of VMCS12. */
#include "nested/vmcs12.h"

/* Fields of features Nestor does not offer to a guest hypervisor: on the
 * virtual CPU they do not exist (SDM 24.11.2: VMREAD/VMWRITE fail with
 * "unsupported VMCS component"). */
static bool offered(uint32_t enc)
{
	switch (enc) {
	case VMCS_POSTED_INTR_NV: case VMCS_EPTP_INDEX: case VMCS_HLAT_PREFIX_SIZE: case VMCS_GUEST_INTR_STATUS:
	case VMCS_GUEST_PML_INDEX: case VMCS_PML_ADDR: case VMCS_EXECUTIVE_VMCS_PTR: case VMCS_VIRTUAL_APIC_ADDR:
	case VMCS_APIC_ACCESS_ADDR: case VMCS_POSTED_INTR_DESC_ADDR: case VMCS_VMFUNC_CONTROLS:
	case VMCS_EOI_EXIT_BITMAP0: case VMCS_EOI_EXIT_BITMAP1: case VMCS_EOI_EXIT_BITMAP2:
	case VMCS_EOI_EXIT_BITMAP3: case VMCS_EPTP_LIST_ADDR: case VMCS_VMREAD_BITMAP: case VMCS_VMWRITE_BITMAP:
	case VMCS_VE_INFO_ADDR: case VMCS_ENCLS_EXIT_BITMAP: case VMCS_SPP_TABLE_PTR: case VMCS_TSC_MULTIPLIER:
	case VMCS_TERTIARY_PROC_CTLS: case VMCS_ENCLV_EXIT_BITMAP: case VMCS_GUEST_IA32_PERF_GLOBAL_CTRL:
	case VMCS_GUEST_IA32_BNDCFGS: case VMCS_GUEST_IA32_RTIT_CTL: case VMCS_GUEST_IA32_LBR_CTL:
	case VMCS_GUEST_IA32_PKRS: case VMCS_HOST_IA32_PERF_GLOBAL_CTRL: case VMCS_HOST_IA32_PKRS:
	case VMCS_TPR_THRESHOLD: case VMCS_PLE_GAP: case VMCS_PLE_WINDOW: case VMCS_GUEST_SMBASE:
	case VMCS_GUEST_IA32_S_CET: case VMCS_GUEST_SSP: case VMCS_GUEST_IA32_INTR_SSP_TABLE_ADDR:
	case VMCS_HOST_IA32_S_CET: case VMCS_HOST_SSP: case VMCS_HOST_IA32_INTR_SSP_TABLE_ADDR:
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

uint64_t vmcs12_read(const struct vmcs12 *c, uint32_t enc)
{
	uint64_t v = c->f[vmcs12_index(enc)];
	if (vmcs_field_is_high(enc))
		return v >> 32;
	switch (vmcs_field_width(enc)) {
	case VMCS_W16: return v & 0xffff;
	case VMCS_W32: return v & 0xffffffff;
	default: return v;
	}
}

void vmcs12_write(struct vmcs12 *c, uint32_t enc, uint64_t val)
{
	uint64_t *slot = &c->f[vmcs12_index(enc)];
	if (vmcs_field_is_high(enc)) {
		*slot = (*slot & 0xffffffffull) | (val << 32);
		return;
	}
	switch (vmcs_field_width(enc)) {
	case VMCS_W16: *slot = val & 0xffff; break;
	case VMCS_W32: *slot = val & 0xffffffff; break;
	default: *slot = val; break;
	}
}

unsigned vmcs12_max_index(void)
{
	unsigned max = 0;
	for (unsigned i = 0; i < vmcs_num_fields; i++)
		if (offered(vmcs_all_fields[i]) && vmcs_field_index(vmcs_all_fields[i]) > max)
			max = vmcs_field_index(vmcs_all_fields[i]);
	return max;
}
