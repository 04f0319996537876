/* internal.h - what the files of nested/ share. */
#ifndef NESTED_INTERNAL_H
#define NESTED_INTERNAL_H

#include "nested/nested.h"
#include "vmx/vcpu.h"
#include "vmx/vmx_defs.h"

/* VPID of every L2 (L1's VPIDs all map to it; L1's INVVPIDs flush it). */
#define NESTED_VPID02 2

/* Dirty tracking of VMCS12 fields (index into vmcs12->f). */
static inline void v12_mark(uint64_t *bits, int idx) { bits[idx / 64] |= 1ull << (idx % 64); }
static inline bool v12_test(const uint64_t *bits, int idx) { return (bits[idx / 64] >> (idx % 64)) & 1; }

/* insn.c */
void vmx_succeed(struct vcpu *v);
void vmx_fail_invalid(struct vcpu *v);
void vmx_fail(struct vcpu *v, unsigned error);
uint64_t gpr_read(struct vcpu *v, unsigned r);
void gpr_write(struct vcpu *v, unsigned r, uint64_t val);
void vmcs12_flush(struct vcpu *v);

/* How the CPU below reads the INVEPT/INVVPID type register (caps.c). */
void nested_probe_inv_type(const struct vmx_caps *r);
bool nested_inv_type_needs_rexw(void);

/* Tables computed once at boot. */
void nested_exit_init(void);
void nested_enter_init(void);

/* enter.c */
void nested_vmentry(struct vcpu *v, bool resume);
void nested_forget_vmcs02(struct vcpu *v);
/* VMCLEARs VMCS02 (its launch state clear, rebuilt in full next time) and
 * makes VMCS01 current, L1 running. */
void nested_reset_vmcs02(struct vcpu *v);
bool nested_eptp_valid(uint64_t eptp);
/* Loads VMCS12's host state into VMCS01 (the current VMCS) as a VM exit
 * does (SDM 27.5), and the exit MSR-load list; false on a VMX abort. */
bool load_l1_host_state(struct vcpu *v);

/* exit.c */
/* Reflects the current L2 exit (VMCS02 current) to L1, with the exit
 * information of VMCS02, or, when synth != NULL, with these fields. */
struct synth_exit {
	uint32_t reason;
	uint64_t qualification, guest_physical;
};
void nested_reflect(struct vcpu *v, const struct synth_exit *synth);

/* shadow.c */
int nested_shadow_init(struct vcpu *v);
void nested_shadow_update_controls(struct vcpu *v);
void nested_shadow_to_cache(struct vcpu *v);
/* changed: fields to copy (NULL: all shadowed fields). */
void nested_cache_to_shadow(struct vcpu *v, const uint64_t *changed);
bool nested_field_shadowed(struct vcpu *v, uint32_t enc);

/* sept.c */
/* Handles an EPT violation of L2 under L1's EPT: true when fixed in the
 * shadow EPT (resume L2); false when it was reflected to L1. */
bool sept_violation(struct vcpu *v);
/* The EPT02 pointer for L1's EPT pointer, creating a shadow if needed. */
uint64_t sept_eptp02(struct vcpu *v, uint64_t eptp12);
/* INVEPT: drop the shadows of eptp12 (0: all). */
void sept_invalidate(struct vcpu *v, uint64_t eptp12);

#endif
