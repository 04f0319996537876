/* vmx.h - VMX operation, the guest's VMCS, and the run loop. */
#ifndef VMX_VMX_H
#define VMX_VMX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmx/vcpu.h"

/* Segment registers in VMCS order. */
enum { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_LDTR, SEG_TR };

struct segment {
	uint16_t sel;
	uint64_t base;
	uint32_t limit, ar; /* VMX access-rights format (SDM 24.4.1) */
};

/* A complete architectural starting state for the guest. */
struct guest_state {
	uint64_t gpr[16];
	uint64_t rip, rsp, rflags;
	uint64_t cr0, cr3, cr4, efer, pat;
	struct segment seg[8];
	uint64_t gdtr_base, idtr_base;
	uint32_t gdtr_limit, idtr_limit;
	/* 0 for the reset values (DR7 0x400, the rest 0); a resumed firmware's
	 * own (loader/firmware.c). */
	uint64_t dr7, debugctl, sysenter_cs, sysenter_esp, sysenter_eip;
};

int vmx_enable(struct vm *vm, struct vcpu *v, char *err, size_t errlen);
int vm_setup_bitmaps(struct vm *vm, char *err, size_t errlen);
void msr_intercept(struct vm *vm, uint32_t msr, bool read, bool write);
void io_intercept(struct vm *vm, uint16_t port);
void vmx_vcpu_setup(struct vcpu *v);
void vmx_load_guest_state(struct vcpu *v, const struct guest_state *g);
uint64_t vmx_real_cr0(const struct vmx_caps *c, uint64_t guest);
/* VM entries and exits leave CR0.CD and NW as they are (SDM 26.3.2.1,
 * 27.5.1): the guest's values live in the CPU.  Sets them from guest_cr0. */
void vmx_set_cache_bits(uint64_t guest_cr0);
uint64_t vmx_real_cr4(const struct vmx_caps *c, uint64_t guest);

/* Enters the guest for the first time; never returns (exits are handled by
 * vmx_handle_exit, called from the exit stub). */
__attribute__((noreturn)) void vmx_launch(struct vcpu *v);

/* vmx/entry.S */
void vmx_exit_stub(void);
void vmx_unblock_nmis(void);
/* From the entry path's last look at entry_recheck to its VMLAUNCH/VMRESUME
 * (an NMI there restarts at vmx_entry_window). */
extern const char vmx_entry_window[], vmx_entry_window_end[];
/* HLT unless *requests is nonzero (vmx/sync.c, vcpu_park); an NMI between
 * the look and the HLT restarts at vmx_park_window. */
void vmx_park_halt(volatile unsigned *requests);
extern const char vmx_park_window[], vmx_park_window_end[];

/* vmx/exit.c */
/* Handles one exit; returns 1 when the VMCS to enter next must be
 * VMLAUNCHed (never entered before), 0 for VMRESUME. */
int vmx_handle_exit(struct vcpu *v);
/* VMLAUNCH/VMRESUME failed: for VMCS02 that is L1's VMfailValid(7) and
 * the return value says how to enter VMCS01; otherwise it ends the run. */
int vmx_entry_failed(struct vcpu *v);
/* The entry path found entry_recheck set: what came in root operation (a
 * kick's requests, NMIs) is handled; returns how to enter (as above). */
int vmx_entry_recheck(struct vcpu *v);
/* VM-entry controls that act for one entry only: "load CET state", which
 * loads the CET registers an emulated VM transition set (nested/enter.c) -
 * kept for every entry, it would load stale values after an exit that
 * followed a guest's own WRMSR, and fail the entry of a 32-bit guest that
 * left bits 63:32 of IA32_S_CET set, where the CPU checks nothing.  Sets
 * them in the current VMCS, which runs `level`; they are cleared at that
 * VMCS's next exit or failed entry. */
#define ENTRY_ONCE_CTLS ENTRY_LOAD_CET_STATE
void vmx_entry_once(struct vcpu *v, unsigned level, uint32_t ctls);
/* Called by the entry path while the CPU's virtual-NMI flag may be set
 * (vcpu->vnmi_state, vmx/exit.c). */
void vmx_vnmi_entry(struct vcpu *v);

#endif
