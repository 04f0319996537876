/* nested.h - VMX for a guest hypervisor: Nestor's emulation of VT-x.
 *
 * Vocabulary (as in KVM): L0 is this Nestor, L1 its guest (a hypervisor),
 * L2 the guest L1 runs.  VMCS01 runs L1, VMCS12 is the VMCS L1 builds for
 * L2 (in L1's memory, cached here), VMCS02 is the VMCS that really runs L2:
 * VMCS12 merged with what L0 itself needs.  Every transition of L2 goes
 * through L0, which decides for each L2 exit "do I want it?" (its own
 * business: shadow EPT faults, NMIs) and otherwise "does L1 want it?" (by
 * VMCS12's controls and bitmaps) - reflecting it to L1 as a VM exit, or
 * handling it on L2's behalf exactly as the CPU would have for L1.
 *
 * One struct nested is the VMX of one level.  Normally there is one, for
 * level 1 (our guest).  When a guest hypervisor delegates (docs/depth.md:
 * it asks us to emulate VMX for its own guest), there is one per level we
 * emulate VMX for: lv[j] holds level j's VMX, and in it "L1" is level j and
 * "L2" level j+1; its VMCS01 is the VMCS that runs level j (VMCS01 for
 * j = 1, lv[j-1]'s VMCS02 above). */
#ifndef NESTED_NESTED_H
#define NESTED_NESTED_H

#include <stdbool.h>
#include <stdint.h>
#include "nested/vmcs12.h"
#include "vmx/caps.h"

struct vcpu;
struct vm;

#define SEPT_SLOTS 4
/* Levels above one Nestor whose VMX it may emulate (1 + delegations). */
#define NESTED_MAX_LEVELS 15

/* One shadow EPT: EPT02 = EPT12 (L1's, for L2) composed with EPT01 - with,
 * for a level above 1, every EPT of the levels below. */
struct shadow_ept {
	uint64_t eptp12; /* L1's EPT pointer it shadows; 0 = free slot */
	uint64_t eptp01; /* ... composed with the EPT that runs L1 */
	uint64_t *root;  /* EPT02 PML4 (Nestor's pool) */
	uint64_t eptp02;
	uint64_t pages;  /* paging-structure pages in use */
	uint64_t last_use;
};

/* Which VMCS fields a guest hypervisor reads/writes through the shadow VMCS
 * (nested/shadow.c): computed once per vCPU, shared by its levels. */
struct shadow_tables {
	uint8_t *vmread_bitmap, *vmwrite_bitmap;
	unsigned n_shadow_fields;
	uint64_t shadowed[(V12_NFIELDS + 63) / 64]; /* VMCS12 indices read without exiting */
	uint32_t *write_fields;   /* ... and written without exiting */
	int16_t *write_idx;       /* their VMCS12 indices */
	unsigned n_write_fields;
	bool all_write_fields;    /* every field of write_shadowed[]: the unrolled copy */
};

struct nested {
	unsigned level;        /* whose VMX this is: 1 = our guest */
	uint64_t vmcs01_phys;  /* the VMCS that runs that level */
	bool vmxon;            /* L1 is in VMX operation */
	bool guest_mode;       /* L2 (or a level above it) is running */
	bool delegated;        /* L1 asked us to emulate VMX for L2 too */
	uint64_t bound_vmcs12; /* ... for the L2 of this VMCS12 (~0: not yet entered) */
	uint64_t vmxon_ptr;
	uint64_t current_ptr;  /* L1's current VMCS (guest-physical), or ~0 */
	struct vmcs12 *vmcs12; /* cache of the current VMCS12 */

	/* VMCS12 fields changed since VMCS02 was last made from it. */
	uint64_t dirty[(V12_NFIELDS + 63) / 64];
	/* VMCS12's rare guest-state fields are still in VMCS02 (nested/exit.c
	 * nested_sync_rare). */
	bool rare_stale;
	bool all_dirty;
	bool checks_passed;    /* VMCS12's controls and host state passed the entry checks */
	uint64_t l1_inherited[5]; /* L1's EFER, PAT, DR7, DEBUGCTL, EPTP when last used */
	/* VMCS12's host state as VMCS01 guest-state values (SDM 27.5), made
	 * once per VMCS12 and again after any change (enter.c host_image):
	 * valid while host_img_ptr is the current VMCS12. */
	struct host_image {
		uint64_t cr0, cr4, cr3, sysenter_cs, sysenter_esp, sysenter_eip;
		uint64_t sel[6], base[6], ar[6];
		uint64_t tr_sel, tr_base, gdtr_base, idtr_base, rsp, rip;
		/* constants, here so that each is a VMWRITE from memory too */
		uint64_t dr7, zero, limit4g, unusable, tr_limit, tr_ar, limit64k, rflags;
	} host_img;
	uint64_t host_img_ptr; /* HOST_IMG_NONE: to be made */
#define HOST_IMG_NONE 1ull     /* never a VMCS12 address (those are page-aligned or ~0) */

	void *vmcs02;
	uint64_t vmcs02_phys;
	bool vmcs02_launched;
	uint64_t vmcs02_vmcs12; /* the VMCS12 whose L2 last ran in VMCS02 */
	uint16_t last_vpid12;

	/* An entry whose guest state the CPU checks first (enter.c): VMCS02
	 * runs with a zero preemption timer and no injection until it exits;
	 * these are its settings to put back. */
	struct {
		bool armed;
		uint32_t pin, intr;
		uint64_t timer;
		uint64_t dr6; /* before the probe: a pending #DB it delivered is undone when the entry fails */
	} probe;
	/* VMCS02's VMX-preemption timer at the last entry of L2 (exit.c). */
	uint32_t timer02;

	/* VMCS02's MSR bitmap (nested/bitmaps.c): L1's and ours merged, or
	 * all ones but the x2APIC MSRs the CPU virtualizes. */
	uint8_t *msr_bitmap02;
	bool x2apic_passed;     /* its x2APIC range is not all ones */
	bool msr02_merged;      /* it is merged from L1's at msr12 ... */
	uint64_t msr12, msr12_machine;
	uint32_t msr02_x2apic;  /* ... under these x2APIC virtualization controls */
	void *apic_standin;     /* virtual-APIC page when L1's is not its RAM (enter.c) */
	uint32_t proc02;        /* primary controls of VMCS02 as programmed */
	/* VMCS02's I/O bitmaps (nested/bitmaps.c): how ports exit, the
	 * merged copy and what it was made from, what VMCS02 points to. */
	unsigned io02_mode;
	uint8_t *io02[2];
	uint64_t io12[2], io12_machine[2];
	/* When the copies were made: vm->watch.gen, and v->sept_clears (for a
	 * level >= 2, whose bitmaps' machine pages are checked again after a
	 * shadow EPT was cleared). */
	uint64_t bm02_gen, bm02_clears;
	uint64_t io02_a, io02_b;
	unsigned nmi_pending02; /* NMIs L0 must inject into L2 */
	/* L1 is stopped at the VMLAUNCH/VMRESUME that entered L2 while a
	 * level below took an exit (nested/signals.c); L2's state is kept in
	 * VMCS02.  held_launch: at a VMLAUNCH (VMCS12 reads as clear then). */
	bool held, held_launch;

	/* Hardware VMCS shadowing of VMCS12 for L1 (nested/shadow.c). */
	bool shadowing;
	void *shadow_vmcs;
	uint64_t shadow_vmcs_phys;
	const struct shadow_tables *st;

	struct shadow_ept sept[SEPT_SLOTS];
	uint64_t sept_clock;
	struct shadow_ept *cur_sept;

	uint64_t stats_reflected, stats_l0_handled;
};

/* The capability MSRs of the virtual CPU (IA32_VMX_BASIC... ) L1 sees. */
struct nested_caps {
	uint64_t basic, pin, proc, exit, entry, true_pin, true_proc, true_exit, true_entry;
	uint64_t misc, cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1, vmcs_enum, proc2, ept_vpid;
	uint64_t vmfunc; /* IA32_VMX_VMFUNC: EPTP switching where the CPU has it (exists with PROC2_VMFUNC) */
};

#define NESTED_VMCS_REVISION 0x4e53u

/* Boot: compute the virtual capabilities from the real ones. */
/* VMX features withheld from the guest hypervisor (option nested_hide). */
enum { NESTED_HIDE_TRUE_CTLS = 1u << 0, NESTED_HIDE_VPID = 1u << 1 };
void nested_init(const struct vmx_caps *real, unsigned hide);
/* The VMX Nestor offers, computed once at boot (nested/caps.c). */
extern struct nested_caps nested_caps_ro;
static inline const struct nested_caps *nested_caps(void) { return &nested_caps_ro; }
bool nested_enabled(void);
void nested_set_enabled(bool on);
/* Use the CPU's VMCS shadowing for L1 when it has it (vmcs_shadowing=). */
bool nested_shadowing_wanted(void);
void nested_set_shadowing(bool on);

/* Per vCPU set-up (level 1's VMX); 0 or -1 when out of memory. */
int nested_vcpu_init(struct vcpu *v);
/* Delegation (docs/depth.md): the guest level `level` (1 = our guest) asks
 * us to emulate VMX for its own guest too.  caps_hash: what the asking
 * level offers its guest (nested_caps_hash()).  Returns a NESTOR_E* status. */
int nested_accept_delegation(struct vcpu *v, unsigned level, uint64_t caps_hash);
/* The reverse (NESTOR_HC_UNDELEGATE_VMX): level `level` emulates its
 * guest's VMX itself again; NESTOR_EBUSY while that guest is in VMX
 * operation, NESTOR_EINVAL when it did not delegate. */
int nested_revoke_delegation(struct vcpu *v, unsigned level);
/* A level that delegated its guest's VMX to us changed the I/O or MSR
 * bitmaps it gives that guest (NESTOR_HC_BITMAPS_CHANGED). */
void nested_bitmaps_changed(struct vcpu *v);
/* A hash of the virtual VMX capabilities this Nestor offers. */
uint64_t nested_caps_hash(void);

/* MSRs of the virtual VMX (FEATURE_CONTROL, 0x480-0x491): 0 with *val, or
 * -1 when the MSR does not exist for the guest (#GP). */
int nested_rdmsr(uint32_t msr, uint64_t *val);

/* VMX instruction exits of the running level (VMXON ... INVVPID,
 * VMLAUNCH/VMRESUME), whose VMX we emulate. */
void nested_vmx_instruction(struct vcpu *v, unsigned reason);

/* An exit while a level above 1 runs. */
void nested_l2_exit(struct vcpu *v, unsigned reason);
/* NMIs L0 owes the running level. */
void nested_deliver_nmis(struct vcpu *v);
/* 1 when the VMCS about to be entered was never launched (VMLAUNCH). */
int nested_launch_next(struct vcpu *v);
/* The CPU refused a VMCS02 (VMfailValid error): its L1 gets VMfailValid(7);
 * returns how to enter that L1's VMCS. */
int nested_entry_refused(struct vcpu *v, uint64_t error);
/* An exception raised by Nestor's emulation for a level above 1 that the
 * level's hypervisor intercepts (its exception bitmap): reflected to it as
 * an exception exit (true); false: inject it into the running level. */
bool nested_exception_to_l1(struct vcpu *v, unsigned vector, bool has_err, uint32_t err, uint64_t cr2);
/* Whether the exception exit of the level that runs (above 1) is its
 * hypervisor's by VMCS12's exception bitmap: level 0 intercepts #BP and #DB
 * for its GDB stub (debug/gdb_stub.c), which delivers the others itself. */
bool nested_exception_exit_wanted(struct vcpu *v);
/* An NMI that arrived while Nestor ran with a level above 1 active: routed
 * at the end of the exit (nested_signals). */
void nested_nmi_in_root(struct vcpu *v);
/* Our guest's level `level` (1 = our guest) receives an INIT: true when
 * that level is in VMX operation under our emulation - then the INIT is
 * held and becomes an INIT exit of its guest when that runs (SDM 25.2),
 * or acts when it leaves VMX operation; false: not ours to hold. */
bool nested_guest_init(struct vcpu *v, unsigned level);
/* Our guest's level `level` (2 or more: its hypervisor delegated its VMX to
 * us) receives an NMI (NESTOR_HC_GUEST_NMI): delivered to it when it runs;
 * routed from it (nested_route_held_nmis) once it runs a guest. */
void nested_guest_nmi(struct vcpu *v, unsigned level);
/* NMIs held for a level that has entered its guest since: as an NMI that
 * arrives while that guest runs - an NMI exit to the lowest level from
 * there that takes them, else the running level's own. */
void nested_route_held_nmis(struct vcpu *v);
/* At the end of an exit, with a level above 1 about to run: the held
 * INITs and the NMIs to route go to the levels that get them. */
void nested_signals(struct vcpu *v);
/* An NMI for the running level above 1 at this instruction boundary (it
 * sent itself one, vmx/exit_apic.c): an NMI exit to its hypervisor when
 * that one takes them, else its own. */
void nested_nmi_now(struct vcpu *v);

/* The running level's physical address -> machine address, through the
 * EPTs of every level below it, for the rights in access (bit 0 read, 1
 * write, 2 fetch).  0, or -1 when the running level's own hypervisor
 * refuses the access (its EPT: an EPT violation).  Memory a lower level
 * hides gives the address of a page of ones (reads all ones, writes land in
 * Nestor's memory and are dropped). */
int nested_to_machine(struct vcpu *v, uint64_t gpa, unsigned access, uint64_t *machine);
/* The same, with what the running level's hypervisor's EPT grants when it
 * refuses (-1). */
struct ept_refusal {
	unsigned rights; /* bits 2:0 R W X along its EPT */
	bool misconfig;
	bool pml_full; /* not a refusal: its page-modification log is full */
};
int nested_translate(struct vcpu *v, uint64_t gpa, unsigned access, uint64_t *machine, struct ept_refusal *r);
/* True when the running level's hypervisor runs it under an EPT with
 * accessed and dirty flags: its paging-structure accesses are then writes
 * for that EPT (SDM 28.3.5, 28.3.3.2). */
bool nested_walk_writes(struct vcpu *v);
/* An access of the running level (above 1) that its hypervisor's EPT
 * refused (r): the EPT violation (qualification qual, linear address gla),
 * misconfiguration or page-modification log-full exit that hypervisor
 * gets. */
void nested_ept_fault(struct vcpu *v, uint64_t gpa, uint64_t gla, uint64_t qual, const struct ept_refusal *r);
/* Snapshots (snap/): the virtual VMX state of our guest that its memory
 * does not hold. */
struct nested_snapshot {
	bool vmxon;
	uint64_t vmxon_ptr, current_ptr;
};
/* Writes the VMCS12 cache back to the guest's memory and records the rest;
 * NESTOR_EBUSY when the guest's VMX cannot be saved now (it delegated its
 * guest's VMX to us). */
int nested_snapshot_save(struct vcpu *v, struct nested_snapshot *s);
/* After the guest's memory was restored: its VMX as at the snapshot,
 * everything derived from it made anew.  0, or -1. */
int nested_snapshot_restore(struct vcpu *v, const struct nested_snapshot *s);
/* The shadow EPTs of every level: the guest's EPT rights changed. */
void nested_drop_shadows(struct vcpu *v);

/* Maps the 4 KiB page at gpa of n's L2 to the page of ones, read-only, in
 * the shadow EPT that runs it (memory that does not exist for it). */
int sept_map_ones(struct vcpu *v, struct nested *n, uint64_t gpa);
/* Sets the 4 KiB entry of gpa in the shadow EPT that runs n's L2. */
int sept_map_page(struct vcpu *v, struct nested *n, uint64_t gpa, uint64_t entry);

#endif
