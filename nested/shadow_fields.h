/* shadow_fields.h - which VMCS fields a guest hypervisor reads and writes
 * through the shadow VMCS without exiting (nested/shadow.c), as a policy
 * over the one field table.  Shared with the host tools (the transition
 * model, tools/nestor-model.c), so both always agree. */
#ifndef NESTED_SHADOW_FIELDS_H
#define NESTED_SHADOW_FIELDS_H

#include <stdbool.h>
#include <stdint.h>
#include "vmx/vmcs.h"

/* Controls L1 rewrites often enough to be worth shadowing. */
static const uint32_t shadowed_controls[] = {
	VMCS_PIN_BASED_CTLS, VMCS_PROC_BASED_CTLS, VMCS_PROC_BASED_CTLS2, VMCS_EXCEPTION_BITMAP,
	VMCS_VMEXIT_CTLS, VMCS_VMENTRY_CTLS, VMCS_VMENTRY_INTR_INFO, VMCS_VMENTRY_EXCEPTION_ERRCODE,
	VMCS_VMENTRY_INSTR_LEN, VMCS_CR0_GUEST_HOST_MASK, VMCS_CR4_GUEST_HOST_MASK, VMCS_CR0_READ_SHADOW,
	VMCS_CR4_READ_SHADOW, VMCS_TSC_OFFSET,
};

/* Fields L1 writes on most exits: VMWRITE goes to the shadow VMCS without
 * exiting.  Every other shadowed field is read without exiting, and its
 * VMWRITE exits (and is tracked), so that the shadow-to-cache copy before
 * each VM entry stays short. */
#define WRITE_SHADOWED(X)                                                                                 \
	X(GUEST_RIP) X(GUEST_RSP) X(GUEST_RFLAGS) X(GUEST_INTERRUPTIBILITY) X(GUEST_ACTIVITY_STATE)        \
	X(GUEST_PENDING_DBG_EXCEPTIONS) X(VMENTRY_INTR_INFO) X(VMENTRY_EXCEPTION_ERRCODE) X(VMENTRY_INSTR_LEN) \
	X(PROC_BASED_CTLS) X(GUEST_CR0) X(GUEST_CR3) X(GUEST_CR4) X(CR0_READ_SHADOW) X(CR4_READ_SHADOW)    \
	X(GUEST_IA32_EFER) X(VMENTRY_CTLS)
static const uint32_t write_shadowed[] = {
#define X(name) VMCS_##name,
	WRITE_SHADOWED(X)
#undef X
};

/* Guest-state fields a hypervisor seldom reads after an exit: the segments
 * but CS and SS, LDTR, TR, GDTR, IDTR, the SYSENTER ESP/EIP MSRs.  A
 * reflected exit leaves them in the VMCS that ran L2 and copies them into
 * VMCS12 only when something reads VMCS12 (nested_sync_rare): a VMREAD of
 * one of them exits, they are not in the shadow VMCS (issue 16: 120
 * instructions per reflected exit; KVM's nested.c does the same). */
#define RARE_GUEST_FIELDS(X)                                                                            \
	X(GUEST_ES_SEL) X(GUEST_DS_SEL) X(GUEST_FS_SEL) X(GUEST_GS_SEL) X(GUEST_LDTR_SEL) X(GUEST_TR_SEL) \
	X(GUEST_ES_LIMIT) X(GUEST_DS_LIMIT) X(GUEST_FS_LIMIT) X(GUEST_GS_LIMIT) X(GUEST_LDTR_LIMIT)       \
	X(GUEST_TR_LIMIT) X(GUEST_GDTR_LIMIT) X(GUEST_IDTR_LIMIT) X(GUEST_ES_AR) X(GUEST_DS_AR)           \
	X(GUEST_FS_AR) X(GUEST_GS_AR) X(GUEST_LDTR_AR) X(GUEST_TR_AR) X(GUEST_ES_BASE) X(GUEST_DS_BASE)   \
	X(GUEST_FS_BASE) X(GUEST_GS_BASE) X(GUEST_LDTR_BASE) X(GUEST_TR_BASE) X(GUEST_GDTR_BASE)          \
	X(GUEST_IDTR_BASE) X(GUEST_IA32_SYSENTER_ESP) X(GUEST_IA32_SYSENTER_EIP)

static inline bool is_rare_guest_field(uint32_t enc)
{
	switch (enc) {
#define X(name) case VMCS_##name:
	RARE_GUEST_FIELDS(X)
#undef X
		return true;
	default:
		return false;
	}
}

static inline bool shadow_list_has(const uint32_t *list, unsigned n, uint32_t enc)
{
	for (unsigned i = 0; i < n; i++)
		if (list[i] == enc)
			return true;
	return false;
}

/* Read without exiting: guest state but the rare fields, exit information
 * (when the CPU lets VMWRITE fill it, IA32_VMX_MISC[29]), and the controls
 * above. */
static inline bool shadowable(uint32_t enc)
{
	enum vmcs_type t = vmcs_field_type(enc);
	return (t == VMCS_T_GUEST && !is_rare_guest_field(enc)) || t == VMCS_T_EXIT_INFO ||
	       shadow_list_has(shadowed_controls, sizeof(shadowed_controls) / sizeof(shadowed_controls[0]), enc);
}

static inline bool is_write_shadowed(uint32_t enc)
{
	return shadow_list_has(write_shadowed, sizeof(write_shadowed) / sizeof(write_shadowed[0]), enc);
}

#endif
