/* nested.h - VMX for a guest hypervisor: Nestor's emulation of VT-x.
 *
 * Vocabulary (as in KVM): L0 is this Nestor, L1 its guest (a hypervisor),
 * L2 the guest L1 runs.  VMCS01 runs L1, VMCS12 is the VMCS L1 builds for
 * L2 (in L1's memory, cached here), VMCS02 is the VMCS that really runs L2:
 * VMCS12 merged with what L0 itself needs.  Every transition of L2 goes
 * through L0, which decides for each L2 exit "do I want it?" (its own
 * business: shadow EPT faults, NMIs) and otherwise "does L1 want it?" (by
 * VMCS12's controls and bitmaps) - reflecting it to L1 as a VM exit, or
 * handling it on L2's behalf exactly as the CPU would have for L1. */
#ifndef NESTED_NESTED_H
#define NESTED_NESTED_H

#include <stdbool.h>
#include <stdint.h>
#include "nested/vmcs12.h"
#include "vmx/caps.h"

struct vcpu;
struct vm;

#define SEPT_SLOTS 4

/* One shadow EPT: EPT02 = EPT12 (L1's, for L2) composed with EPT01. */
struct shadow_ept {
	uint64_t eptp12; /* L1's EPT pointer it shadows; 0 = free slot */
	uint64_t *root;  /* EPT02 PML4 (Nestor's pool) */
	uint64_t eptp02;
	uint64_t pages;  /* paging-structure pages in use */
	uint64_t last_use;
};

struct nested {
	bool vmxon;            /* L1 is in VMX operation */
	bool guest_mode;       /* L2 is running (VMCS02 is current) */
	uint64_t vmxon_ptr;
	uint64_t current_ptr;  /* L1's current VMCS (guest-physical), or ~0 */
	struct vmcs12 *vmcs12; /* cache of the current VMCS12 */

	/* VMCS12 fields changed since VMCS02 was last made from it. */
	uint64_t dirty[(V12_NFIELDS + 63) / 64];
	bool all_dirty;
	uint64_t l1_inherited[4]; /* L1's EFER, PAT, DR7, DEBUGCTL when last used */

	void *vmcs02;
	uint64_t vmcs02_phys;
	bool vmcs02_launched;
	uint64_t vmcs02_vmcs12; /* the VMCS12 whose L2 last ran in VMCS02 */
	uint16_t last_vpid12;

	uint8_t *msr_bitmap02;  /* VMCS02's MSR bitmap: all ones */
	uint32_t proc02;        /* primary controls of VMCS02 as programmed */
	unsigned nmi_pending02; /* NMIs L0 must inject into L2 */

	/* Hardware VMCS shadowing of VMCS12 for L1 (nested/shadow.c). */
	bool shadowing;
	void *shadow_vmcs;
	uint64_t shadow_vmcs_phys;
	uint8_t *vmread_bitmap, *vmwrite_bitmap;
	uint32_t *shadow_fields;  /* read without exiting */
	int16_t *shadow_idx;      /* their VMCS12 indices */
	unsigned n_shadow_fields;
	uint32_t *write_fields;   /* ... and written without exiting */
	int16_t *write_idx;
	unsigned n_write_fields;

	struct shadow_ept sept[SEPT_SLOTS];
	uint64_t sept_clock;
	struct shadow_ept *cur_sept;

	uint64_t stats_reflected, stats_l0_handled;
};

/* The capability MSRs of the virtual CPU (IA32_VMX_BASIC... ) L1 sees. */
struct nested_caps {
	uint64_t basic, pin, proc, exit, entry, true_pin, true_proc, true_exit, true_entry;
	uint64_t misc, cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1, vmcs_enum, proc2, ept_vpid;
};

#define NESTED_VMCS_REVISION 0x4e53u

/* Boot: compute the virtual capabilities from the real ones. */
void nested_init(const struct vmx_caps *real);
const struct nested_caps *nested_caps(void);
bool nested_enabled(void);
void nested_set_enabled(bool on);
/* Use the CPU's VMCS shadowing for L1 when it has it (vmcs_shadowing=). */
bool nested_shadowing_wanted(void);
void nested_set_shadowing(bool on);

/* Per vCPU set-up (VMCS02, bitmaps); 0 or -1 when out of memory. */
int nested_vcpu_init(struct vcpu *v);

/* MSRs of the virtual VMX (FEATURE_CONTROL, 0x480-0x491): 0 with *val, or
 * -1 when the MSR does not exist for the guest (#GP). */
int nested_rdmsr(uint32_t msr, uint64_t *val);

/* VMX instruction exits of L1 (VMXON ... INVVPID, VMLAUNCH/VMRESUME). */
void nested_vmx_instruction(struct vcpu *v, unsigned reason);

/* An exit while L2 runs. */
void nested_l2_exit(struct vcpu *v, unsigned reason);
/* NMIs L0 owes L2. */
void nested_deliver_nmis(struct vcpu *v);
/* 1 when the VMCS about to be entered was never launched (VMLAUNCH). */
int nested_launch_next(struct vcpu *v);
/* The CPU refused VMCS02 (VMfailValid error): L1 gets VMfailValid(7);
 * returns how to enter VMCS01. */
int nested_entry_refused(struct vcpu *v, uint64_t error);
/* An NMI that arrived while Nestor ran with L2 active. */
void nested_nmi_in_root(struct vcpu *v);

/* L2-physical -> L1-physical through L1's EPT (when L2 runs under EPT12),
 * for the rights in access (bit 0 read, 1 write, 2 fetch); 0 or -1. */
int nested_translate(struct vcpu *v, uint64_t gpa2, unsigned access, uint64_t *gpa1);
/* True when the guest now running is an L2 under L1's EPT. */
bool nested_l2_uses_ept12(const struct vcpu *v);

#endif
