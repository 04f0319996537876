/* internal.h - what the files of nested/ share.
 *
 * Most functions take the struct nested of the level whose VMX is concerned
 * ("n"): in it L1 is that level, L2 the level above, VMCS01 the VMCS that
 * runs L1 (n->vmcs01_phys) and VMCS02 the one that runs L2. */
#ifndef NESTED_INTERNAL_H
#define NESTED_INTERNAL_H

#include "nested/nested.h"
#include "vmx/vcpu.h"
#include "vmx/vmx_defs.h"

/* VPID of level j >= 2 (level 1 uses vm->vpid = 1): all VPIDs level j-1
 * gives map to it; its INVVPIDs flush it. */
static inline uint16_t level_vpid(unsigned level) { return (uint16_t)level; }

/* Dirty tracking of VMCS12 fields (index into vmcs12->f). */
static inline void v12_mark(uint64_t *bits, int idx) { bits[idx / 64] |= 1ull << (idx % 64); }
static inline bool v12_test(const uint64_t *bits, int idx) { return (bits[idx / 64] >> (idx % 64)) & 1; }
/* One field of the current VMCS into a VMCS12 slot, marked in `mark` when it
 * differs.  Called with constants (an X-macro list of fields), each field is
 * four instructions: an immediate encoding, VMREAD, a compare with a fixed
 * slot, an untaken branch (issue 16: 7 per field from a table, 15 before). */
static inline __attribute__((always_inline)) void v12_pull(uint64_t *f, uint64_t *mark, uint32_t enc, unsigned idx)
{
	uint64_t val = vmread(enc);
	if (__builtin_expect(val != f[idx], 0)) {
		f[idx] = val;
		mark[idx / 64] |= 1ull << (idx % 64);
	}
}

/* VMCS12's secondary controls in force: 0 unless "activate secondary
 * controls" is set (SDM 26.2.1.1). */
static inline uint32_t v12_proc2(const struct vmcs12 *c)
{
	return (V12(c, PROC_BASED_CTLS) & PROC_SECONDARY_CTLS) ? (uint32_t)V12(c, PROC_BASED_CTLS2) : 0;
}

/* True when n's current VMCS12 runs its L2 under an EPT of its own. */
static inline bool v12_uses_ept(const struct nested *n) { return v12_proc2(n->vmcs12) & PROC2_EPT; }

/* The virtual CPU has the "load CET state" controls (and the CET fields). */
static inline bool nested_offers_cet(void) { return (nested_caps()->true_entry >> 32) & ENTRY_LOAD_CET_STATE; }

/* insn.c */
void vmx_succeed(struct vcpu *v);
void vmx_fail_invalid(struct vcpu *v);
void vmx_fail(struct vcpu *v, struct nested *n, unsigned error);
uint64_t gpr_read(struct vcpu *v, unsigned r);
void gpr_write(struct vcpu *v, unsigned r, uint64_t val);
void vmcs12_flush(struct vcpu *v, struct nested *n);
/* A VMREAD/VMWRITE exit of n's L2 (VMCS02 current) that VMCS12's VMCS
 * shadowing makes an access to the shadow VMCS: done, true; false when L1
 * gets the exit. */
bool nested_shadowed_vmx_access(struct vcpu *v, struct nested *n, bool write);
/* A VMFUNC exit of n's L2: an EPTP switch done, true; false when L1 gets
 * the exit. */
bool nested_vmfunc(struct vcpu *v, struct nested *n);

/* How the CPU below reads the INVEPT/INVVPID type register (caps.c). */
void nested_probe_inv_type(const struct vmx_caps *r);
bool nested_inv_type_needs_rexw(void);

/* VMCS12's rare guest-state fields, left in VMCS02 by a reflected exit,
 * copied into VMCS12 before anything reads it (nested/exit.c). */
void nested_sync_rare(struct vcpu *v, struct nested *n);

/* Tables computed once at boot. */
void nested_enter_init(void);

/* enter.c */
/* VMCS12 fields the entry checks read (controls and host state). */
extern uint64_t nested_checked_mask[(V12_NFIELDS + 63) / 64];
void nested_vmentry(struct vcpu *v, struct nested *n, bool resume);
/* bitmaps.c: VMCS02's port and MSR exits - all, ours, or ours merged with
 * L1's - made current at each entry (VMCS02 current); rewrite: VMCS12
 * changed beyond direct fields, VMCS02's primary controls rewritten.
 * Inline, the check of the common entry (nothing to do, or without a
 * merged MSR bitmap the x2APIC MSRs the CPU virtualizes, read again). */
enum { IO02_ALL, IO02_OURS, IO02_MERGED };
void nested_bitmaps02_update(struct vcpu *v, struct nested *n, bool rewrite);
void nested_msr_unmerged(struct vcpu *v, struct nested *n);
/* Whether something a merged copy came from may have changed. */
static inline bool nested_bitmaps02_stale(const struct vcpu *v, const struct nested *n)
{
	return n->bm02_gen != __atomic_load_n(&v->vm->watch.gen, __ATOMIC_RELAXED) ||
	       (n->level >= 2 && n->bm02_clears != v->sept_clears);
}
static inline void nested_bitmaps02(struct vcpu *v, struct nested *n, bool rewrite)
{
	if (rewrite || ((n->io02_mode == IO02_MERGED || n->msr02_merged) && nested_bitmaps02_stale(v, n)))
		nested_bitmaps02_update(v, n, rewrite);
	else if (!n->msr02_merged)
		nested_msr_unmerged(v, n);
}
void nested_forget_vmcs02(struct vcpu *v, struct nested *n);
/* VMCLEARs VMCS02 (its launch state clear, rebuilt in full next time) and
 * makes VMCS01 current, L1 running. */
void nested_reset_vmcs02(struct vcpu *v, struct nested *n);
/* The first exit of an entry the CPU checked first (enter.c, probe_arm):
 * completes the entry; true when the exit is then to be handled as L2's
 * (or as the CPU's entry failure), false when it was only the probe's or
 * the entry failed on Nestor's checks (L1 runs now). */
bool nested_probe_exit(struct vcpu *v, struct nested *n, uint32_t reason_full);
/* L1 gets a VM-entry failure (reason, qualification) for VMCS12, with
 * VMCS02 current: L1's host state loaded, VMCS02 reset (enter.c). */
void nested_entry_failure(struct vcpu *v, struct nested *n, uint32_t reason, uint64_t qual);
bool nested_eptp_valid(uint64_t eptp);
/* Loads VMCS12's host state into VMCS01 (made current) as a VM exit does
 * (SDM 27.5), and the exit MSR-load list; false on a VMX abort. */
bool load_l1_host_state(struct vcpu *v, struct nested *n);
/* VMCS01 current again, n's L1 running (no state loaded). */
void nested_leave_l2(struct vcpu *v, struct nested *n);
/* MSR lists (SDM 24.7.2): at most nested_msr_list_max() entries; loads
 * into the level in the current VMCS; 0 or the failing entry (1-based). */
static inline unsigned nested_msr_list_max(void) { return 512u * (((nested_caps()->misc >> 25) & 7) + 1); }
unsigned nested_load_msr_list_slow(struct vcpu *v, unsigned level, uint64_t addr, uint32_t count, uint64_t *touched);
/* Most lists are empty: no call then (issue 16). */
static inline unsigned nested_load_msr_list(struct vcpu *v, unsigned level, uint64_t addr, uint32_t count,
					    uint64_t *touched)
{
	return count ? nested_load_msr_list_slow(v, level, addr, count, touched) : 0;
}
/* SDM 27.7: a VMX abort of n's L1 (indicator `code`): it shuts down - the
 * run ends for our guest, a level above exits to its hypervisor with a
 * triple fault.  Called with n's VMCS01 current. */
enum { VMX_ABORT_SAVE_GUEST_MSR = 1, VMX_ABORT_LOAD_HOST_MSR = 4 };
void nested_vmx_abort(struct vcpu *v, struct nested *n, uint32_t code);

/* exit.c */
/* Reflects the current L2 exit (VMCS02 current) to L1, with the exit
 * information of VMCS02, or, when synth != NULL, with these fields. */
struct synth_exit {
	uint32_t reason;
	uint64_t qualification, guest_physical;
	uint64_t guest_linear;
	bool has_linear;
	/* Exit and IDT-vectoring interruption information (exception exits). */
	bool has_intr;
	uint32_t intr_info, intr_err, idt_info, idt_err;
};
void nested_reflect(struct vcpu *v, struct nested *n, const struct synth_exit *synth);

/* enter.c: the page of Nestor's that stands in for L1's virtual-APIC or
 * APIC-access page when machine is its address, else NULL. */
uint8_t *nested_standin_at(const struct nested *n, uint64_t machine);

/* signals.c */
/* An NMI for the levels from `from` up (cur > from): an NMI exit of the
 * lowest that takes them, else the running level's NMI.  at_exit: it is
 * the NMI exit of the running level, in VMCS02 now. */
void nested_route_nmi(struct vcpu *v, unsigned from, bool at_exit);
/* n's L1 enters L2 while L2 is stopped at its own entry (held): true when
 * the levels above go on as they were (nested_continue_held, after
 * VMCS02 is prepared and cur is L2); *nmi: an NMI L1 injects, to route. */
bool nested_entering_held(struct vcpu *v, struct nested *n, bool *nmi);
void nested_continue_held(struct vcpu *v, bool nmi);
/* n's L1 left VMX operation holding an INIT: it acts now. */
void nested_init_after_vmxoff(struct vcpu *v, struct nested *n);

/* shadow.c */
int nested_shadow_tables_init(struct vcpu *v);
int nested_shadow_init(struct vcpu *v, struct nested *n);
/* Writes into the current VMCS, which runs n's L1, what L0 adds for that
 * level's own VMX operation: CR0.PE/PG owned in VMX operation, VMCS
 * shadowing while it has a current VMCS. */
void nested_shadow_update_controls(struct vcpu *v, struct nested *n);
void nested_shadow_to_cache(struct vcpu *v, struct nested *n);
/* changed: fields to copy (NULL: all shadowed fields). */
void nested_cache_to_shadow(struct vcpu *v, struct nested *n, const uint64_t *changed);
bool nested_field_shadowed(const struct nested *n, uint32_t enc);

/* sept.c */
/* An EPT violation of the running level (above 1): fixed in the shadow
 * EPT, reflected to its hypervisor, or memory that does not exist for it. */
void sept_violation(struct vcpu *v);
/* The EPT02 pointer for n's L2 under EPT12 eptp12, creating a shadow if
 * needed. */
uint64_t sept_eptp02(struct vcpu *v, struct nested *n, uint64_t eptp12, uint64_t eptp01);
struct xlate;
/* A translation of n's L2 kept in the shadow that runs it: looked up
 * (true when there, with the rights of access), or entered. */
bool sept_lookup(struct vcpu *v, struct nested *n, uint64_t gpa, unsigned access, struct xlate *x);
void sept_install(struct vcpu *v, struct nested *n, uint64_t gpa, const struct xlate *x);
/* INVEPT by n's L1: drop the shadows of eptp12 (0: all), and every shadow
 * of the levels above (they are built on it). */
void sept_invalidate(struct vcpu *v, struct nested *n, uint64_t eptp12);

/* levels.c */
/* Reads/writes the physical memory of a level (1 = our guest), through the
 * EPTs of the levels below it; memory a level hides reads as ones and
 * ignores writes.  False when the address is beyond what L0 maps. */
bool level_read(struct vcpu *v, unsigned level, uint64_t gpa, void *buf, size_t len);
bool level_write(struct vcpu *v, unsigned level, uint64_t gpa, const void *buf, size_t len);

/* One translation of a level's physical address to the machine's. */
struct xlate {
	uint64_t addr;       /* machine address */
	unsigned rights;     /* EPT rights along the way (bit 0 R, 1 W, 2 X) */
	unsigned mtype;      /* the top EPT's memory type, bit 3: ignore PAT */
	unsigned shift;      /* log2 of the largest page the mapping is linear on */
	unsigned top_rights; /* XL_TOP: what the refusing EPT grants */
	bool misconfig;      /* XL_TOP: an EPT misconfiguration, not a violation */
	bool apic;           /* XL_TOP: the refused page is the real xAPIC (addr) */
	bool suppress_ve;    /* XL_TOP: bit 63 of the refusing EPT entry (suppress #VE) */
};
enum { XL_OK, XL_TOP, XL_ABSENT, XL_SNAP, XL_PML_FULL };
/* XL_SNAP: a write to a page of our guest that a copy-on-write snapshot
 * protects (x->addr: that page, for snap_cow); XL_TOP: level-1's EPT for this level refuses the access (an EPT
 * violation or misconfiguration of that hypervisor); XL_ABSENT: a level
 * further down hides the memory (non-existent for this level);
 * XL_PML_FULL: an accessed or dirty flag to set with the PML index of
 * level-1's VMCS12 for this level out of range (a page-modification
 * log-full exit to that hypervisor). */
int nested_xlate(struct vcpu *v, unsigned level, uint64_t gpa, unsigned access, struct xlate *x);
/* Allocates and sets up the VMX of one more level (lv[level]). */
int nested_level_new(struct vcpu *v, unsigned level);
/* n's L1 cleared the VMCS of the guest it delegated for: forget the VMX of
 * the levels above (docs/depth.md). */
void nested_end_delegation(struct vcpu *v, struct nested *n);

#endif
