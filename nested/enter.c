/* enter.c - VMLAUNCH/VMRESUME of L1: the checks of SDM 26.1-26.2 done in
 * software (controls: VMfailValid 7, host state: VMfailValid 8), then
 * VMCS02 is built from VMCS12 and L0's own needs, and L2 is entered.  The
 * guest-state checks (26.3) are left to the CPU, which applies them to
 * VMCS02's guest area - a copy of VMCS12's - and reports a failure as an
 * entry-failure exit that is reflected to L1. */
#include "boot/cpu.h"
#include "boot/fixup.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "mm/mm.h"
#include "nested/checks.h"
#include "nested/internal.h"
#include "snap/snap.h"
#include "vmx/exits.h"
#include "vmx/prof.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"
#include "vmx/vmcs_own.h"
#include "vmx/vmx.h"

static uint64_t width_mask(void)
{
	return ~((1ull << maxphyaddr) - 1);
}

/* The inputs of the pure checks (nested/checks.c) besides VMCS12. */
static struct check_env env(void) { return (struct check_env){ nested_caps(), maxphyaddr }; }

bool nested_eptp_valid(uint64_t eptp)
{
	struct check_env e = env();
	return vmcs12_eptp_valid(eptp, &e);
}

/* The part of SDM 26.2.4 that depends on L1's own state, not on VMCS12's
 * fields: the host address-space size must match L1's IA-32e mode. */
static const char *check_host_mode(const struct vmcs12 *c)
{
	bool host64 = V12(c, VMEXIT_CTLS) & EXIT_HOST_ADDR_SPACE_SIZE;
	bool l1_long = vmread(VMCS_GUEST_IA32_EFER) & EFER_LMA; /* L1 runs in IA-32e mode */
	if (host64 != l1_long)
		return host64 ? "64-bit host from outside IA-32e mode" : "32-bit host from IA-32e mode";
	return NULL;
}

/* --- building VMCS02 ------------------------------------------------------- */

/* Fields copied as they are from VMCS12 to VMCS02: the guest state and the
 * controls L0 does not combine with its own. */
static const uint32_t direct_fields[] = {
	VMCS_GUEST_ES_SEL, VMCS_GUEST_CS_SEL, VMCS_GUEST_SS_SEL, VMCS_GUEST_DS_SEL, VMCS_GUEST_FS_SEL,
	VMCS_GUEST_GS_SEL, VMCS_GUEST_LDTR_SEL, VMCS_GUEST_TR_SEL, VMCS_GUEST_ES_LIMIT, VMCS_GUEST_CS_LIMIT,
	VMCS_GUEST_SS_LIMIT, VMCS_GUEST_DS_LIMIT, VMCS_GUEST_FS_LIMIT, VMCS_GUEST_GS_LIMIT, VMCS_GUEST_LDTR_LIMIT,
	VMCS_GUEST_TR_LIMIT, VMCS_GUEST_GDTR_LIMIT, VMCS_GUEST_IDTR_LIMIT, VMCS_GUEST_ES_AR, VMCS_GUEST_CS_AR,
	VMCS_GUEST_SS_AR, VMCS_GUEST_DS_AR, VMCS_GUEST_FS_AR, VMCS_GUEST_GS_AR, VMCS_GUEST_LDTR_AR,
	VMCS_GUEST_TR_AR, VMCS_GUEST_INTERRUPTIBILITY, VMCS_GUEST_ACTIVITY_STATE, VMCS_GUEST_IA32_SYSENTER_CS,
	VMCS_GUEST_CR0, VMCS_GUEST_CR3, VMCS_GUEST_CR4, VMCS_GUEST_ES_BASE, VMCS_GUEST_CS_BASE, VMCS_GUEST_SS_BASE,
	VMCS_GUEST_DS_BASE, VMCS_GUEST_FS_BASE, VMCS_GUEST_GS_BASE, VMCS_GUEST_LDTR_BASE, VMCS_GUEST_TR_BASE,
	VMCS_GUEST_GDTR_BASE, VMCS_GUEST_IDTR_BASE, VMCS_GUEST_RSP, VMCS_GUEST_RIP, VMCS_GUEST_RFLAGS,
	VMCS_GUEST_PENDING_DBG_EXCEPTIONS, VMCS_GUEST_IA32_SYSENTER_ESP, VMCS_GUEST_IA32_SYSENTER_EIP,
	VMCS_GUEST_PDPTE0, VMCS_GUEST_PDPTE1, VMCS_GUEST_PDPTE2, VMCS_GUEST_PDPTE3,
	VMCS_VMENTRY_INTR_INFO, VMCS_VMENTRY_EXCEPTION_ERRCODE, VMCS_VMENTRY_INSTR_LEN, VMCS_EXCEPTION_BITMAP,
	VMCS_PF_ERROR_CODE_MASK, VMCS_PF_ERROR_CODE_MATCH, VMCS_CR3_TARGET_COUNT, VMCS_CR3_TARGET0,
	VMCS_CR3_TARGET1, VMCS_CR3_TARGET2, VMCS_CR3_TARGET3, VMCS_GUEST_PREEMPTION_TIMER,
};

/* The same, as a bitmap over VMCS12 indices, computed at boot; and the
 * fields the software checks of a VM entry read (controls, host state). */
static uint64_t direct_mask[(V12_NFIELDS + 63) / 64];
uint64_t nested_checked_mask[(V12_NFIELDS + 63) / 64];

void nested_enter_init(void)
{
	for (unsigned i = 0; i < sizeof(direct_fields) / sizeof(direct_fields[0]); i++)
		v12_mark(direct_mask, vmcs12_index(direct_fields[i]));
	for (unsigned i = 0; i < vmcs_num_fields; i++) {
		enum vmcs_type t = vmcs_field_type(vmcs_all_fields[i]);
		if (vmcs12_index(vmcs_all_fields[i]) >= 0 && (t == VMCS_T_CONTROL || t == VMCS_T_HOST))
			v12_mark(nested_checked_mask, vmcs12_index(vmcs_all_fields[i]));
	}
}

/* Whether VMCS12's controls and host state may differ from when they last
 * passed the checks: only VMWRITEs (and Nestor's own changes) mark fields
 * dirty, and a VMCS not entered last is checked in full. */
static bool checks_needed(const struct nested *n)
{
	if (!n->checks_passed || n->all_dirty || n->vmcs02_vmcs12 != n->current_ptr)
		return true;
	for (int w = 0; w < (V12_NFIELDS + 63) / 64; w++)
		if (n->dirty[w] & nested_checked_mask[w])
			return true;
	return false;
}

/* A page of this vCPU's that stands in for one the CPU would use past
 * every EPT where L1 gave it no RAM - never memory a level below hides: it
 * reads all ones, as memory that is not there.  0 when out of pool memory. */
static uint64_t standin_page(struct nested *n)
{
	if (!n->apic_standin && !(n->apic_standin = page_alloc()))
		return 0;
	memset(n->apic_standin, 0xff, PAGE_SIZE);
	return virt_to_phys(n->apic_standin);
}

uint8_t *nested_standin_at(const struct nested *n, uint64_t machine)
{
	return n->apic_standin && machine == virt_to_phys(n->apic_standin) ? n->apic_standin : NULL;
}

/* The machine address of the virtual-APIC page, which the CPU reads and
 * writes itself: the page of the VMCS12's level when it is memory that
 * level may write, else the stand-in (what the L2 writes there lasts until
 * the next VM entry, where on a CPU it would be dropped). */
static uint64_t virtual_apic_machine(struct vcpu *v, struct nested *n, uint64_t gpa)
{
	uint64_t machine = ~0ull;
	if (n->level <= 1) {
		if (gpa_is_ram(v->vm, gpa, PAGE_SIZE))
			machine = gpa;
	} else {
		struct xlate x;
		if (nested_xlate(v, n->level, gpa, EPT_R | EPT_W, &x) == XL_OK && gpa_is_ram(v->vm, x.addr, PAGE_SIZE))
			machine = x.addr & ~0xfffull;
	}
	return machine != ~0ull ? machine : standin_page(n);
}

/* What VMCS02 combines from VMCS12, L1's current values (l1: EFER, PAT,
 * DR7, DEBUGCTL) and L0's own needs.  VMCS02 is current. */
static void prepare_derived(struct vcpu *v, struct nested *n, const uint64_t *l1, uint64_t cr0_mask01,
			    uint64_t cr4_mask01, uint32_t exit01, uint32_t entry01)
{
	const struct vmcs12 *c = n->vmcs12;
	struct vm *vm = v->vm;
	uint32_t pin12 = V12(c, PIN_BASED_CTLS), proc12 = V12(c, PROC_BASED_CTLS);
	uint32_t proc2_12 = v12_proc2(c);
	uint32_t exit12 = V12(c, VMEXIT_CTLS), entry12 = V12(c, VMENTRY_CTLS);

	/* What VMCS12 does not load stays as L1 has it (SDM 26.3.2). */
	uint64_t efer = l1[0];
	if (entry12 & ENTRY_LOAD_EFER)
		efer = V12(c, GUEST_IA32_EFER);
	else
		efer = (entry12 & ENTRY_IA32E_MODE) ? efer | EFER_LMA | EFER_LME : efer & ~(uint64_t)(EFER_LMA | EFER_LME);
	vmwrite(VMCS_GUEST_IA32_EFER, efer);
	vmwrite(VMCS_GUEST_IA32_PAT, (entry12 & ENTRY_LOAD_PAT) ? V12(c, GUEST_IA32_PAT) : l1[1]);
	vmwrite(VMCS_GUEST_DR7, (entry12 & ENTRY_LOAD_DEBUG_CTLS) ? V12(c, GUEST_DR7) : l1[2]);
	vmwrite(VMCS_GUEST_IA32_DEBUGCTL, (entry12 & ENTRY_LOAD_DEBUG_CTLS) ? V12(c, GUEST_IA32_DEBUGCTL) : l1[3]);
	vmwrite(VMCS_VMCS_LINK_PTR, ~0ull);
	if (pin12 & PIN_PREEMPTION_TIMER)
		vmwrite(VMCS_GUEST_PREEMPTION_TIMER, V12(c, GUEST_PREEMPTION_TIMER));

	/* Controls: L1's, plus what L0 needs - NMIs exit (to route them), EPT
	 * always (shadow EPT or L1's physical memory).  Ports: every one exits
	 * here; nested_bitmaps02 (bitmaps.c), after, lets through the ports
	 * and MSRs neither L1 nor we want. */
	uint32_t pin02 = pin12 | PIN_NMI_EXITING | PIN_VIRTUAL_NMIS;
	uint32_t proc02 = (proc12 & ~PROC_USE_IO_BITMAPS) | PROC_USE_MSR_BITMAPS | PROC_UNCOND_IO_EXITING |
			  PROC_SECONDARY_CTLS;
	if (n->nmi_pending02)
		proc02 |= PROC_NMI_WINDOW;
	/* PML is emulated (nested/levels.c): the CPU's would log L2's
	 * addresses into a buffer of ours.  VMCS shadowing too (insn.c): L2's
	 * VMREAD/VMWRITE exit, to reach L1's shadow VMCS, a VMCS12.  And #VE
	 * (sept.c): the CPU would convert violations of the shadow EPT. */
	uint32_t proc2_02 = (proc2_12 | PROC2_EPT) & ~(PROC2_VPID | PROC2_PML | PROC2_VMCS_SHADOWING | PROC2_EPT_VE);
	if ((proc2_12 & PROC2_VPID) && vm->vpid)
		proc2_02 |= PROC2_VPID;
	uint32_t exit02 = (exit01 & ~(EXIT_ACK_INTR_ON_EXIT | EXIT_SAVE_PREEMPTION_TIMER)) |
			  (exit12 & (EXIT_ACK_INTR_ON_EXIT | EXIT_SAVE_PREEMPTION_TIMER));
	/* L1's preemption timer runs while L2 runs, not while L0 handles an
	 * exit L1 never sees: VMCS02 always saves it, so that entering L2 again
	 * after such an exit continues the count (SDM 25.5.1).  L1 gets the
	 * saved value only if it asked (nested_reflect). */
	if ((pin12 & PIN_PREEMPTION_TIMER) && ctl_can_set(vm->caps->exit, EXIT_SAVE_PREEMPTION_TIMER))
		exit02 |= EXIT_SAVE_PREEMPTION_TIMER;
	uint32_t entry02 = ctl_adjust(vm->caps->entry, (entry12 & ENTRY_IA32E_MODE) | ENTRY_LOAD_DEBUG_CTLS |
							       ENTRY_LOAD_EFER | (entry01 & ENTRY_LOAD_PAT));
	n->proc02 = proc02;
	vmwrite(VMCS_PIN_BASED_CTLS, pin02);
	vmwrite(VMCS_PROC_BASED_CTLS, proc02);
	vmwrite(VMCS_PROC_BASED_CTLS2, proc2_02);
	vmwrite(VMCS_VMEXIT_CTLS, exit02);
	vmwrite(VMCS_VMENTRY_CTLS, entry02);
	/* L2's TSC: L1's offset and multiplier as they are - L0 neither
	 * offsets nor scales its guests' TSC, so there is nothing to compose
	 * (SDM 25.3; an RDMSR of IA32_TSC that exits to us applies them in
	 * vmx/exit_msr.c). */
	vmwrite(VMCS_TSC_OFFSET, (proc12 & PROC_TSC_OFFSETTING) ? V12(c, TSC_OFFSET) : 0);
	if (proc2_12 & PROC2_TSC_SCALING)
		vmwrite(VMCS_TSC_MULTIPLIER, V12(c, TSC_MULTIPLIER));
	/* VM functions: enabled, none of them - every VMFUNC of L2 exits to
	 * us (nested_vmfunc), one with EAX >= 64 is the CPU's #UD. */
	if (proc2_12 & PROC2_VMFUNC)
		vmwrite(VMCS_VMFUNC_CONTROLS, 0);
	/* CR0/CR4: L2 reads L1's shadow for L1's bits, its real value for the
	 * bits only L0 owns. */
	uint64_t m0 = V12(c, CR0_GUEST_HOST_MASK), m4 = V12(c, CR4_GUEST_HOST_MASK);
	vmwrite(VMCS_CR0_GUEST_HOST_MASK, m0 | cr0_mask01);
	vmwrite(VMCS_CR4_GUEST_HOST_MASK, m4 | cr4_mask01);
	vmwrite(VMCS_CR0_READ_SHADOW, (V12(c, CR0_READ_SHADOW) & m0) | (V12(c, GUEST_CR0) & ~m0));
	vmwrite(VMCS_CR4_READ_SHADOW, (V12(c, CR4_READ_SHADOW) & m4) | (V12(c, GUEST_CR4) & ~m4));
	/* Memory: L1's EPT shadowed, or L1's physical memory as L0 maps it. */
	/* L1 without an EPT of its own runs L2 in its own physical memory: the
	 * EPT that runs L1. */
	vmwrite(VMCS_EPT_POINTER, (proc2_12 & PROC2_EPT) ? sept_eptp02(v, n, V12(c, EPT_POINTER), l1[4]) : l1[4]);
	if (proc2_02 & PROC2_VPID) {
		uint16_t vpid02 = level_vpid(n->level + 1);
		vmwrite(VMCS_VPID, vpid02);
		/* A different L1 VPID is a different address space for L2. */
		if (V12(c, VPID) != n->last_vpid12) {
			invvpid(1, vpid02, 0);
			n->last_vpid12 = V12(c, VPID);
		}
	}
	if (proc2_12 & PROC2_XSAVES)
		vmwrite(VMCS_XSS_EXIT_BITMAP, V12(c, XSS_EXIT_BITMAP));
	/* TPR shadow: the CPU virtualizes L2's CR8 on L1's page and exits
	 * "TPR below threshold", which L1 gets (SDM 29.1.2, 27.1.2). */
	if (proc12 & PROC_TPR_SHADOW) {
		uint64_t page = virtual_apic_machine(v, n, V12(c, VIRTUAL_APIC_ADDR));
		if (!page)
			vm_end_run(v, true, "out of pool memory for a virtual-APIC page");
		vmwrite(VMCS_VIRTUAL_APIC_ADDR, page);
		vmwrite(VMCS_TPR_THRESHOLD, V12(c, TPR_THRESHOLD));
	}
	/* APIC-access virtualization: accesses of L2 that reach the machine
	 * page of L1's APIC-access address exit ("APIC access", to L1) or,
	 * with TPR shadow, reach VTPR (SDM 29.4).  An address that is nothing
	 * for L1 traps nothing: a page of ours no EPT maps. */
	if (proc2_12 & PROC2_VIRT_APIC_ACCESS) {
		struct xlate x;
		uint64_t a = nested_xlate(v, n->level, V12(c, APIC_ACCESS_ADDR), EPT_R, &x) == XL_OK
				     ? x.addr & ~0xfffull
				     : standin_page(n);
		if (!a)
			vm_end_run(v, true, "out of pool memory for an APIC-access page");
		vmwrite(VMCS_APIC_ACCESS_ADDR, a);
	}
	/* Virtual-interrupt delivery (SDM 29.2): the CPU does it on L1's
	 * virtual-APIC page, from RVI and SVI, which VMCS02 saves at every exit
	 * and L1 gets (nested_reflect), and L1's EOI-exit bitmap. */
	if (proc2_12 & PROC2_VIRT_INTR_DELIVERY) {
		vmwrite(VMCS_GUEST_INTR_STATUS, V12(c, GUEST_INTR_STATUS));
		for (int i = 0; i < 4; i++)
			vmwrite(VMCS_EOI_EXIT_BITMAP0 + 2 * i, c->f[V12_EOI_EXIT_BITMAP0 + i]);
	}
	/* L2 may itself be a level whose VMX we emulate (it delegated). */
	if (n->level + 1 <= v->nlevels)
		nested_shadow_update_controls(v, v->lv[n->level + 1]);
}

/* The current VMCS's guest IA32_S_CET, SSP and interrupt-SSP-table address. */
static void cet_read(uint64_t val[3])
{
	val[0] = vmread(VMCS_GUEST_IA32_S_CET);
	val[1] = vmread(VMCS_GUEST_SSP);
	val[2] = vmread(VMCS_GUEST_IA32_INTR_SSP_TABLE_ADDR);
}

/* CET state (SDM 26.3.2.1): with "load CET state" in VMCS12, L2 starts
 * with VMCS12's IA32_S_CET, SSP and interrupt-SSP-table address, which
 * VMCS02 loads for this entry only (vmx_entry_once) - and checks, as guest
 * state.  Without, L2 keeps L1's registers, which nothing changed since L1's
 * VMLAUNCH or VMRESUME exited; VMCS02's fields say so all the same, for an
 * exit made before L2 ran (nested/signals.c). */
static void cet_enter(struct vcpu *v, struct nested *n, const uint64_t *l1cet)
{
	const struct vmcs12 *c = n->vmcs12;
	bool load = V12(c, VMENTRY_CTLS) & ENTRY_LOAD_CET_STATE;
	vmwrite(VMCS_GUEST_IA32_S_CET, load ? V12(c, GUEST_IA32_S_CET) : l1cet[0]);
	vmwrite(VMCS_GUEST_SSP, load ? V12(c, GUEST_SSP) : l1cet[1]);
	vmwrite(VMCS_GUEST_IA32_INTR_SSP_TABLE_ADDR, load ? V12(c, GUEST_IA32_INTR_SSP_TABLE_ADDR) : l1cet[2]);
	if (load)
		vmx_entry_once(v, n->level + 1, ENTRY_LOAD_CET_STATE);
}

/* Makes VMCS02 (current afterwards) reflect VMCS12: everything when it was
 * made from another VMCS12, else only what changed since the last entry -
 * usually just RIP (the dirty bits; see nested/shadow.c). */
static void prepare_vmcs02(struct vcpu *v, struct nested *n)
{
	const struct vmcs12 *c = n->vmcs12;
	/* L1's values that survive into L2, and L0's controls: from VMCS01
	 * (with the EPT that runs L1). */
	uint64_t l1[5] = { vmread(VMCS_GUEST_IA32_EFER), vmread(VMCS_GUEST_IA32_PAT), vmread(VMCS_GUEST_DR7),
			   vmread(VMCS_GUEST_IA32_DEBUGCTL), vmread(VMCS_EPT_POINTER) };
	/* L0's own CR bits for any guest (not those it adds while L1 is in VMX
	 * operation: those concern L1 only). */
	uint64_t cr0_mask01 = v->cr0_mask_base, cr4_mask01 = v->cr4_mask_base;
	uint32_t exit01 = vmread(VMCS_VMEXIT_CTLS), entry01 = vmread(VMCS_VMENTRY_CTLS);
	bool all = n->all_dirty || n->vmcs02_vmcs12 != n->current_ptr;
	/* Made whole from VMCS12: VMCS12 must be whole first. */
	if (all)
		nested_sync_rare(v, n);
	/* Word by word, unrolled: memcmp's byte loop cost 272 ticks here,
	 * a loop 35 (issue 16). */
	const uint64_t *was = n->l1_inherited;
	bool derived = all | (l1[0] != was[0]) | (l1[1] != was[1]) | (l1[2] != was[2]) | (l1[3] != was[3]) |
		       (l1[4] != was[4]);
	bool cet = nested_offers_cet();
	uint64_t l1cet[3] = { 0, 0, 0 };
	if (cet)
		cet_read(l1cet);
	vmcs_load(v, n->vmcs02_phys);
	n->vmcs02_vmcs12 = n->current_ptr;
	for (int w = 0; w < (V12_NFIELDS + 63) / 64; w++) {
		uint64_t bits = all ? ~0ull : n->dirty[w];
		n->dirty[w] = 0;
		while (bits) {
			int idx = w * 64 + __builtin_ctzll(bits);
			bits &= bits - 1;
			if (idx >= V12_NFIELDS)
				break;
			if (v12_test(direct_mask, idx))
				vmwrite(vmcs_all_fields[idx], c->f[idx]);
			else if (vmcs12_index(vmcs_all_fields[idx]) >= 0)
				derived = true;
		}
	}
	if (derived)
		prepare_derived(v, n, l1, cr0_mask01, cr4_mask01, exit01, entry01);
	if (cet)
		cet_enter(v, n, l1cet);
	nested_bitmaps02(v, n, derived);
	/* Without an EPT of L1's, VM entry loads a PAE L2's PDPTEs from its
	 * CR3 in L1's memory (SDM 26.3.2.4); VMCS02 always has an EPT, with
	 * which the CPU would take VMCS12's PDPTE fields: loaded here, at
	 * every entry as the CPU does (hostile.walk_pae_no_ept). */
	bool ept12 = v12_proc2(c) & PROC2_EPT;
	if (!ept12 && (V12(c, GUEST_CR0) & CR0_PG) && (V12(c, GUEST_CR4) & CR4_PAE) &&
	    !(V12(c, VMENTRY_CTLS) & ENTRY_IA32E_MODE)) {
		uint64_t pdpte[4];
		level_read(v, n->level, V12(c, GUEST_CR3) & 0xffffffe0ull, pdpte, sizeof(pdpte));
		for (int i = 0; i < 4; i++)
			vmwrite(VMCS_GUEST_PDPTE0 + 2 * i, pdpte[i]);
	}
	for (int i = 0; i < 5; i++)
		n->l1_inherited[i] = l1[i];
	n->all_dirty = false;
}

/* SDM 26.3.1.5: the VMCS link pointer - aligned, within the width, a VMCS
 * of our revision whose shadow-VMCS indicator (bit 31) is the "VMCS
 * shadowing" control; outside SMM it must not be the current VMCS. */
static bool link_pointer_ok(struct vcpu *v, const struct nested *n)
{
	const struct vmcs12 *c = n->vmcs12;
	uint64_t link = V12(c, VMCS_LINK_PTR);
	if (link == ~0ull)
		return true;
	uint32_t rev = ~0u;
	if ((link & 0xfff) || (link & width_mask()) || !level_read(v, n->level, link, &rev, 4))
		return false;
	bool shadowing = v12_proc2(c) & PROC2_VMCS_SHADOWING;
	return rev == (NESTED_VMCS_REVISION | (shadowing ? 0x80000000u : 0)) && link != n->current_ptr;
}

/* The most entries of an MSR list Nestor processes: the CPU's recommended
 * maximum, 512 * (IA32_VMX_MISC[27:25] + 1) (SDM 24.7.2, A.6).  Beyond it
 * the architecture promises nothing; Nestor fails the VM entry (entry
 * lists) or aborts (exit lists), as KVM does - never unbounded work in one
 * exit. */

/* SDM 26.4 (VM entry) and 27.6 (VM exit): loads an MSR area into the level
 * that runs in the current VMCS, as its WRMSR would (vmx/exit_msr.c: an
 * MSR the VMCS switches goes to that VMCS's guest-state field, never into
 * Nestor's own registers).  `level` owns the area's memory; `touched`, when
 * given, gets the VMCS12 fields a load changed behind VMCS12's back.
 * Returns the failing entry (1-based), or 0. */
unsigned nested_load_msr_list_slow(struct vcpu *v, unsigned level, uint64_t addr, uint32_t count, uint64_t *touched)
{
	unsigned max = nested_msr_list_max();
	for (uint32_t i = 0; i < count; i++) {
		if (i >= max)
			return i + 1;
		uint64_t e[2];
		if (!level_read(v, level, addr + 16ull * i, e, 16))
			return i + 1;
		uint32_t msr = (uint32_t)e[0];
		/* Bits 63:32 reserved; FS/GS base, SMBASE, x2APIC and microcode
		 * update MSRs may not be loaded this way (SDM 26.4). */
		if ((e[0] >> 32) || msr == MSR_FS_BASE || msr == MSR_GS_BASE || msr == 0x9e || (msr >> 8) == 0x8 ||
		    msr == 0x79 || guest_msr_write(v, msr, e[1]))
			return i + 1;
		uint32_t field = msr_vmcs_field(msr);
		if (touched && field && vmcs12_index(field) >= 0)
			v12_mark(touched, vmcs12_index(field));
	}
	return 0;
}

/* The VM-entry failure L1 sees for a bad guest state or MSR list, found by
 * the CPU on VMCS02 or by Nestor's own checks (VMCS02 current): an exit with bit 31 of the reason
 * set, L1's host state loaded (SDM 26.8).  Unlike a VM exit, it leaves the
 * VM-entry interruption information as it was (SDM 26.7). */
void nested_entry_failure(struct vcpu *v, struct nested *n, uint32_t reason, uint64_t qual)
{
	struct vmcs12 *c = n->vmcs12;
	V12(c, EXIT_REASON) = reason | EXIT_REASON_FAILED_ENTRY;
	V12(c, EXIT_QUALIFICATION) = qual;
	if (!load_l1_host_state(v, n))
		return; /* a VMX abort */
	n->guest_mode = true; /* so that the reset below applies */
	nested_reset_vmcs02(v, n);
	nested_cache_to_shadow(v, n, NULL);
}

static bool probe_start(struct vcpu *v, struct nested *n);
static bool entry_software_checks(struct vcpu *v, struct nested *n);

/* SDM 26.2.1.1: with TPR shadow and neither APIC-access virtualization
 * nor virtual-interrupt delivery, the TPR threshold may not
 * exceed VTPR[7:4] - in memory, so checked at every entry.  (With APIC-
 * access virtualization the entry virtualizes the TPR instead, and may
 * exit at once: the CPU does that on VMCS02.) */
static bool vtpr_ok(struct vcpu *v, const struct nested *n)
{
	const struct vmcs12 *c = n->vmcs12;
	uint32_t proc = V12(c, PROC_BASED_CTLS);
	if (!(proc & PROC_TPR_SHADOW) || (v12_proc2(c) & (PROC2_VIRT_APIC_ACCESS | PROC2_VIRT_INTR_DELIVERY)))
		return true;
	uint8_t vtpr = 0;
	level_read(v, n->level, V12(c, VIRTUAL_APIC_ADDR) + 0x80, &vtpr, 1);
	return (V12(c, TPR_THRESHOLD) & 0xf) <= (unsigned)(vtpr >> 4);
}

void nested_vmentry(struct vcpu *v, struct nested *n, bool resume)
{
	PROF_MARK(v, PROF_ROUTE);
	if (!n->vmxon) {
		inject_ud(v);
		return;
	}
	if (guest_cpl() != 0) {
		inject_gp(v);
		return;
	}
	/* SDM 26.1: no current VMCS, or a shadow VMCS (bit 31 of its revision
	 * identifier: SDM 24.10) - VMfailInvalid.  (Bochs 2.7 enters a shadow
	 * VMCS: docs/testing.md.) */
	if (n->current_ptr == ~0ull || (n->vmcs12->revision & 0x80000000u))
		return vmx_fail_invalid(v);
	nested_shadow_to_cache(v, n); /* what L1 wrote without exiting */
	PROF_MARK(v, PROF_SHADOW_IN);
	if (vmread(VMCS_GUEST_INTERRUPTIBILITY) & INTERRUPTIBILITY_MOV_SS)
		return vmx_fail(v, n, VMXERR_ENTRY_MOV_SS_BLOCKING);
	struct vmcs12 *c = n->vmcs12;
	if (!resume && c->launch_state)
		return vmx_fail(v, n, VMXERR_VMLAUNCH_NOT_CLEAR);
	if (resume && !c->launch_state)
		return vmx_fail(v, n, VMXERR_VMRESUME_NOT_LAUNCHED);
	const char *why;
	if (!vtpr_ok(v, n)) {
		pr_debug("VM entry of level %u: invalid control (TPR threshold above VTPR)\n", n->level + 1);
		return vmx_fail(v, n, VMXERR_ENTRY_INVALID_CONTROLS);
	}
	if (checks_needed(n)) {
		struct check_env e = env();
		n->checks_passed = false;
		if ((why = vmcs12_check_controls(c, &e))) {
			pr_debug("VM entry of level %u: invalid control (%s)\n", n->level + 1, why);
			return vmx_fail(v, n, VMXERR_ENTRY_INVALID_CONTROLS);
		}
		if ((why = vmcs12_check_host(c, &e))) {
			pr_debug("VM entry of level %u: invalid host state (%s; host CR0 %llx CR4 %llx)\n", n->level + 1,
				 why, (unsigned long long)V12(c, HOST_CR0), (unsigned long long)V12(c, HOST_CR4));
			return vmx_fail(v, n, VMXERR_ENTRY_INVALID_HOST_STATE);
		}
		n->checks_passed = true;
	}
	if ((why = check_host_mode(c))) {
		pr_debug("VM entry of level %u: invalid host state (%s)\n", n->level + 1, why);
		return vmx_fail(v, n, VMXERR_ENTRY_INVALID_HOST_STATE);
	}
	/* A level that delegated runs one guest: the VMX we emulate for it
	 * belongs to that guest (docs/depth.md). */
	if (n->delegated && n->bound_vmcs12 != ~0ull && n->bound_vmcs12 != n->current_ptr) {
		pr_warn("level %u delegated VMX emulation but enters a second VMCS: refused\n", n->level);
		return vmx_fail(v, n, VMXERR_ENTRY_INVALID_CONTROLS);
	}
	bool nmi, held = nested_entering_held(v, n, &nmi);
	PROF_MARK(v, PROF_CHECKS);
	prepare_vmcs02(v, n);
	PROF_MARK(v, PROF_VMCS02);
	/* A copy-on-write snapshot saves the virtual-APIC page before the CPU
	 * writes it, which no EPT stops. */
	if (n->proc02 & PROC_TPR_SHADOW) {
		uint64_t page = vmread(VMCS_VIRTUAL_APIC_ADDR);
		uint8_t *standin = nested_standin_at(n, page);
		if (standin)
			memset(standin, 0xff, PAGE_SIZE);
		else
			guest_mem_before_write(v->vm, page, PAGE_SIZE);
	}
	n->timer02 = (uint32_t)vmread(VMCS_GUEST_PREEMPTION_TIMER);
	n->guest_mode = true;
	v->cur = n->level + 1;
	if (held) {
		/* L2 was stopped inside its own entry and L1 did not change
		 * it: the levels above go on as they were (nested/signals.c). */
		nested_continue_held(v, nmi);
		return;
	}
	/* SDM 26.3.1.1: an IA-32e mode guest has CR0.PG and CR4.PAE set.  The
	 * CPU checks it on VMCS02 - but Bochs 2.7 checks only PAE and, with PG
	 * clear, panics (change_cpu_mode) where the entry must fail: made here,
	 * the guest hypervisor gets the failure whatever the CPU below. */
	if ((V12(c, VMENTRY_CTLS) & ENTRY_IA32E_MODE) &&
	    (!(V12(c, GUEST_CR0) & CR0_PG) || !(V12(c, GUEST_CR4) & CR4_PAE))) {
		nested_entry_failure(v, n, EXIT_ENTRY_FAIL_GUEST, 0);
		return;
	}
	if (probe_start(v, n))
		return; /* the CPU checks the guest state first (below), or it failed */
	if (!entry_software_checks(v, n))
		return;
	if (n->delegated)
		n->bound_vmcs12 = n->current_ptr;
	PROF_MARK(v, PROF_ENTER);
}

/* The checks of VM entry that VMCS02 cannot make for VMCS12, in the SDM's
 * order: the VMCS link pointer (26.3.1.5, the last guest-state check),
 * then the MSR lists (26.4).  False, with L1 given the entry failure, when
 * one fails. */
static bool entry_software_checks(struct vcpu *v, struct nested *n)
{
	struct vmcs12 *c = n->vmcs12;
	if (!link_pointer_ok(v, n)) {
		nested_entry_failure(v, n, EXIT_ENTRY_FAIL_GUEST, 4);
		return false;
	}
	/* Lists longer than the CPU's recommended maximum: the architecture
	 * leaves the outcome undefined; Nestor refuses the entry (reason 34,
	 * the first entry beyond the maximum) rather than abort later on an
	 * exit list - bounded work, and the guest hypervisor lives on (that
	 * failure loads no exit MSR-load list longer than the maximum). */
	unsigned max = nested_msr_list_max();
	if (V12(c, VMENTRY_MSR_LOAD_COUNT) > max || V12(c, VMEXIT_MSR_STORE_COUNT) > max ||
	    V12(c, VMEXIT_MSR_LOAD_COUNT) > max) {
		nested_entry_failure(v, n, EXIT_ENTRY_FAIL_MSR, max + 1);
		return false;
	}
	/* The MSR-load list applies to the guest state loaded - in VMCS02,
	 * current now (SDM 26.4).  What the list put in VMCS-switched MSRs is
	 * made again from VMCS12 next time. */
	unsigned bad = nested_load_msr_list(v, n->level, V12(c, VMENTRY_MSR_LOAD_ADDR), V12(c, VMENTRY_MSR_LOAD_COUNT),
					    n->dirty);
	if (bad) {
		nested_entry_failure(v, n, EXIT_ENTRY_FAIL_MSR, bad);
		return false;
	}
	return true;
}

/* SDM 26.3 comes before 26.4: when both the guest state and an MSR-load
 * list (or the link pointer) are wrong, the CPU reports the guest state.
 * The guest state is checked by the CPU on VMCS02, the rest by Nestor - so
 * when there is a rest to check, VMCS02 is first entered with a zero
 * VMX-preemption timer and no event injection: it fails on its guest state,
 * or exits before its first instruction (SDM 26.7.4), and Nestor's checks
 * follow (nested_probe_exit).  The checks that involve the event to inject are
 * made before (injection_state_ok).  Entries with a link pointer of ~0 and empty
 * MSR lists - those of every hypervisor we know - skip it; so do guests in
 * the shutdown and wait-for-SIPI states, which the timer does not end on
 * Bochs 2.7, and CPUs without the timer. */
/* The guest-state checks that involve the event to inject (SDM 26.3.1.4,
 * 26.3.1.5): made here, since the probe enters without it. */
static bool injection_state_ok(const struct vmcs12 *c)
{
	uint32_t info = V12(c, VMENTRY_INTR_INFO);
	if (!(info & INTR_INFO_VALID))
		return true;
	unsigned type = (info >> 8) & 7, vec = info & 0xff;
	uint32_t intr = V12(c, GUEST_INTERRUPTIBILITY), act = V12(c, GUEST_ACTIVITY_STATE);
	if (type == INTR_TYPE_EXT_INTR &&
	    (!(V12(c, GUEST_RFLAGS) & RFLAGS_IF) || (intr & (INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOV_SS))))
		return false;
	if (type == INTR_TYPE_NMI && ((intr & INTERRUPTIBILITY_MOV_SS) ||
				      ((V12(c, PIN_BASED_CTLS) & PIN_VIRTUAL_NMIS) && (intr & INTERRUPTIBILITY_NMI))))
		return false;
	/* In the HLT state only external interrupts, NMIs, #DB and #MC, and
	 * a pending MTF VM exit. */
	if (act == ACTIVITY_HLT && type != INTR_TYPE_EXT_INTR && type != INTR_TYPE_NMI && type != INTR_TYPE_OTHER &&
	    !(type == INTR_TYPE_HW_EXCEPTION && (vec == EXC_DB || vec == EXC_MC)))
		return false;
	return true;
}

static bool probe_start(struct vcpu *v, struct nested *n)
{
	struct vmcs12 *c = n->vmcs12;
	/* An INIT held for L1 is an exit right after this entry, once the CPU
	 * checked L2's guest state (nested/signals.c) - after an event this
	 * entry injects is delivered, so then at L2's next exit. */
	bool init = (v->init_held & (1u << n->level)) && !(V12(c, VMENTRY_INTR_INFO) & INTR_INFO_VALID);
	if (!init && V12(c, VMCS_LINK_PTR) == ~0ull && !V12(c, VMENTRY_MSR_LOAD_COUNT) &&
	    !V12(c, VMEXIT_MSR_STORE_COUNT) && !V12(c, VMEXIT_MSR_LOAD_COUNT))
		return false;
	/* An activity state the virtual CPU does not have (MISC bits 8:6) is
	 * a guest-state failure (SDM 26.3.1.5) - before the MSR lists, which
	 * the probe cannot come first for here (vmxfuzz seed 207, case 47 on
	 * corei7_skylake_x: state 5 and a bad MSR-load entry gave reason 34). */
	uint32_t act = V12(c, GUEST_ACTIVITY_STATE);
	if (act > ACTIVITY_HLT && (act > ACTIVITY_WAIT_SIPI || !(nested_caps()->misc & (1u << (5 + act))))) {
		nested_entry_failure(v, n, EXIT_ENTRY_FAIL_GUEST, 0);
		return true;
	}
	if (!ctl_can_set(v->vm->caps->pin, PIN_PREEMPTION_TIMER) || act > ACTIVITY_HLT)
		return false;
	if (!injection_state_ok(c)) {
		nested_entry_failure(v, n, EXIT_ENTRY_FAIL_GUEST, 0);
		return true;
	}
	n->probe.armed = true;
	n->probe.dr6 = read_dr6();
	n->probe.pin = (uint32_t)vmread(VMCS_PIN_BASED_CTLS);
	n->probe.intr = (uint32_t)vmread(VMCS_VMENTRY_INTR_INFO);
	n->probe.timer = vmread(VMCS_GUEST_PREEMPTION_TIMER);
	vmwrite(VMCS_PIN_BASED_CTLS, n->probe.pin | PIN_PREEMPTION_TIMER);
	vmwrite(VMCS_GUEST_PREEMPTION_TIMER, 0);
	vmwrite(VMCS_VMENTRY_INTR_INFO, 0);
	return true;
}

bool nested_probe_exit(struct vcpu *v, struct nested *n, uint32_t reason_full)
{
	n->probe.armed = false;
	vmwrite(VMCS_PIN_BASED_CTLS, n->probe.pin);
	vmwrite(VMCS_GUEST_PREEMPTION_TIMER, n->probe.timer);
	vmwrite(VMCS_VMENTRY_INTR_INFO, n->probe.intr);
	if (reason_full & EXIT_REASON_FAILED_ENTRY)
		return true; /* the CPU's verdict on the guest state: L1's */
	if (!entry_software_checks(v, n)) {
		/* A pending debug exception of L2's guest state (a trap, whose
		 * priority is above the timer's) was delivered before the probe's
		 * exit: on the CPU the entry fails before any of it, so DR6 is
		 * put back (vmxfuzz seed 83, case 26 on corei7_skylake_x: an
		 * MSR-load failure that left DR6.B2 set).  What the delivery
		 * pushed on L2's stack stays (docs/nested.md). */
		write_dr6(n->probe.dr6);
		return false;
	}
	if (n->delegated)
		n->bound_vmcs12 = n->current_ptr;
	n->vmcs12->launch_state = 1;
	/* Our timer: VMCS02 is entered again, as L1 asked.  Any other exit
	 * came before it, with no instruction run: L2's own. */
	return (reason_full & 0xffff) != EXIT_PREEMPTION_TIMER;
}

void nested_forget_vmcs02(struct vcpu *v, struct nested *n)
{
	if (!n->guest_mode)
		nested_reset_vmcs02(v, n);
}

/* --- the way back: VMCS12's host state into VMCS01 (SDM 27.5) ------------ */

/* The CR0/CR4 read shadow of the VMCS that runs n's L1 for a new value of
 * that register.  For level 1 Nestor emulates every bit (the shadow is the
 * value); above, the bits the level below masks read as its shadow. */
static uint64_t l1_read_shadow(struct vcpu *v, const struct nested *n, unsigned cr, uint64_t val)
{
	if (n->level == 1)
		return val;
	const struct vmcs12 *below = v->lv[n->level - 1]->vmcs12;
	uint64_t mask = cr == 0 ? V12(below, CR0_GUEST_HOST_MASK) : V12(below, CR4_GUEST_HOST_MASK);
	uint64_t shadow = cr == 0 ? V12(below, CR0_READ_SHADOW) : V12(below, CR4_READ_SHADOW);
	return (shadow & mask) | (val & ~mask);
}

/* Whether VM entry accepts this CET state as guest state (SDM 26.3.1.1). */
static bool cet_loadable(uint64_t s_cet, uint64_t ssp, uint64_t isst, bool ia32e)
{
	return x86_canonical(s_cet) && x86_canonical(ssp) && x86_canonical(isst) && nested_cet_control_ok(s_cet) &&
	       !(ssp & 3) && (ia32e || !((s_cet | ssp) >> 32));
}

/* CET state on the way back to L1 (SDM 27.5.1, 26.8; VMCS01 current, l2 =
 * VMCS02's CET fields: L2's registers after an exit, or what the failed
 * entry had loaded).  With "load CET state", VMCS12's host values; without,
 * L1 goes on with L2's registers - after an exit, and after an entry that
 * failed loading MSRs (reason 34), which comes after the guest state was
 * loaded; an entry failing before that leaves L1's own.  After an exit the
 * CPU's registers already hold L2's values; otherwise VMCS01 loads the
 * values for its next entry only - not a value such an entry would refuse
 * (a 32-bit L1 with bits 63:32 of IA32_S_CET set, say: it keeps what the
 * registers have rather than fail). */
static void cet_exit(struct vcpu *v, struct nested *n, const uint64_t *l2)
{
	const struct vmcs12 *c = n->vmcs12;
	uint32_t reason = (uint32_t)V12(c, EXIT_REASON);
	bool failed = reason & EXIT_REASON_FAILED_ENTRY, load = true;
	uint64_t val[3];
	if (V12(c, VMEXIT_CTLS) & EXIT_LOAD_CET_STATE) {
		val[0] = V12(c, HOST_IA32_S_CET);
		val[1] = V12(c, HOST_SSP);
		val[2] = V12(c, HOST_IA32_INTR_SSP_TABLE_ADDR);
	} else if (!failed || (reason & 0xffff) == EXIT_ENTRY_FAIL_MSR) {
		memcpy(val, l2, sizeof(val));
		load = failed;
	} else {
		cet_read(val);
	}
	vmwrite(VMCS_GUEST_IA32_S_CET, val[0]);
	vmwrite(VMCS_GUEST_SSP, val[1]);
	vmwrite(VMCS_GUEST_IA32_INTR_SSP_TABLE_ADDR, val[2]);
	if (load && cet_loadable(val[0], val[1], val[2], vmread(VMCS_VMENTRY_CTLS) & ENTRY_IA32E_MODE))
		vmx_entry_once(v, n->level, ENTRY_LOAD_CET_STATE);
}

void nested_leave_l2(struct vcpu *v, struct nested *n)
{
	vmcs_load(v, n->vmcs01_phys);
	n->guest_mode = false;
	v->cur = n->level;
}

/* The values VMCS12's host state gives VMCS01's guest state (SDM 27.5.1,
 * 27.5.2): made when VMCS12 is new or written, so that each exit to L1 is
 * one VMWRITE per field from it (issue 16: computing them at every exit
 * was half of the 262 instructions of the way back). */
static void host_image(struct vcpu *v, struct nested *n)
{
	const struct vmcs12 *c = n->vmcs12;
	const struct vmx_caps *caps = v->vm->caps;
	struct host_image *h = &n->host_img;
	bool host64 = V12(c, VMEXIT_CTLS) & EXIT_HOST_ADDR_SPACE_SIZE;
	h->cr0 = vmx_real_cr0(caps, V12(c, HOST_CR0));
	h->cr4 = vmx_real_cr4(caps, V12(c, HOST_CR4));
	h->cr3 = V12(c, HOST_CR3);
	h->sysenter_cs = V12(c, HOST_IA32_SYSENTER_CS);
	h->sysenter_esp = V12(c, HOST_IA32_SYSENTER_ESP);
	h->sysenter_eip = V12(c, HOST_IA32_SYSENTER_EIP);
	/* Segments: flat, with the selectors from the host-state area. */
	static const uint16_t host_sel[6] = { V12_HOST_ES_SEL, V12_HOST_CS_SEL, V12_HOST_SS_SEL,
					      V12_HOST_DS_SEL, V12_HOST_FS_SEL, V12_HOST_GS_SEL };
	for (int i = 0; i < 6; i++) {
		uint16_t sel = (uint16_t)c->f[host_sel[i]];
		h->sel[i] = sel;
		if (i == SEG_CS)
			h->ar[i] = 0x9b | (1u << 12) | (host64 ? (1u << 13) : (1u << 14)) | (1u << 15);
		else if (sel == 0)
			h->ar[i] = 1u << 16; /* unusable */
		else
			h->ar[i] = 0x93 | (1u << 14) | (1u << 15);
		h->base[i] = i == SEG_FS ? V12(c, HOST_FS_BASE) : i == SEG_GS ? V12(c, HOST_GS_BASE) : 0;
	}
	h->tr_sel = V12(c, HOST_TR_SEL);
	h->tr_base = V12(c, HOST_TR_BASE);
	h->gdtr_base = V12(c, HOST_GDTR_BASE);
	h->idtr_base = V12(c, HOST_IDTR_BASE);
	h->rsp = V12(c, HOST_RSP);
	h->rip = V12(c, HOST_RIP);
	h->dr7 = 0x400;
	h->zero = 0; /* also ACTIVITY_ACTIVE */
	_Static_assert(ACTIVITY_ACTIVE == 0, "the active state is 0");
	h->limit4g = 0xffffffff;
	h->unusable = 1u << 16;
	h->tr_limit = 0x67;
	h->tr_ar = 0x8b;
	h->limit64k = 0xffff;
	h->rflags = RFLAGS_FIXED;
	n->host_img_ptr = n->current_ptr;
}

bool load_l1_host_state(struct vcpu *v, struct nested *n)
{
	struct vmcs12 *c = n->vmcs12;
	uint32_t exit12 = V12(c, VMEXIT_CTLS);
	bool host64 = exit12 & EXIT_HOST_ADDR_SPACE_SIZE;
	bool cet = nested_offers_cet();
	uint64_t l2cet[3] = { 0, 0, 0 };
	if (cet)
		cet_read(l2cet);
	if (__builtin_expect(n->host_img_ptr != n->current_ptr, 0))
		host_image(v, n);
	const struct host_image *h = &n->host_img;

	nested_leave_l2(v, n);
	uint64_t cr0 = V12(c, HOST_CR0), cr4 = V12(c, HOST_CR4);
	vmwrite(VMCS_GUEST_CR0, h->cr0);
	vmwrite(VMCS_GUEST_CR4, h->cr4);
	/* The read shadows: the value itself at level 1; above, the bits the
	 * level below masks (which it may change at any time) read as its. */
	if (n->level == 1) {
		vmwrite(VMCS_CR0_READ_SHADOW, cr0);
		vmwrite(VMCS_CR4_READ_SHADOW, cr4);
	} else {
		vmwrite(VMCS_CR0_READ_SHADOW, l1_read_shadow(v, n, 0, cr0));
		vmwrite(VMCS_CR4_READ_SHADOW, l1_read_shadow(v, n, 4, cr4));
	}
	vmwrite(VMCS_GUEST_CR3, h->cr3);
	vmwrite(VMCS_GUEST_DR7, h->dr7);
	vmwrite(VMCS_GUEST_IA32_DEBUGCTL, h->zero);
	vmwrite(VMCS_GUEST_IA32_SYSENTER_CS, h->sysenter_cs);
	vmwrite(VMCS_GUEST_IA32_SYSENTER_ESP, h->sysenter_esp);
	vmwrite(VMCS_GUEST_IA32_SYSENTER_EIP, h->sysenter_eip);
	uint64_t efer = vmread(VMCS_GUEST_IA32_EFER);
	if (exit12 & EXIT_LOAD_EFER)
		efer = V12(c, HOST_IA32_EFER);
	else
		efer = host64 ? efer | EFER_LMA | EFER_LME : efer & ~(uint64_t)(EFER_LMA | EFER_LME);
	vmwrite(VMCS_GUEST_IA32_EFER, efer);
	uint32_t entry01 = vmread(VMCS_VMENTRY_CTLS);
	vmwrite(VMCS_VMENTRY_CTLS, host64 ? entry01 | ENTRY_IA32E_MODE : entry01 & ~ENTRY_IA32E_MODE);
	if (exit12 & EXIT_LOAD_PAT)
		vmwrite(VMCS_GUEST_IA32_PAT, V12(c, HOST_IA32_PAT));
	if (cet)
		cet_exit(v, n, l2cet);
#define SEG(i, S)                                            \
	vmwrite(VMCS_GUEST_##S##_SEL, h->sel[i]);            \
	vmwrite(VMCS_GUEST_##S##_BASE, h->base[i]);          \
	vmwrite(VMCS_GUEST_##S##_LIMIT, h->limit4g);         \
	vmwrite(VMCS_GUEST_##S##_AR, h->ar[i]);
	SEG(SEG_ES, ES) SEG(SEG_CS, CS) SEG(SEG_SS, SS) SEG(SEG_DS, DS) SEG(SEG_FS, FS) SEG(SEG_GS, GS)
#undef SEG
	vmwrite(VMCS_GUEST_LDTR_SEL, h->zero);
	vmwrite(VMCS_GUEST_LDTR_AR, h->unusable);
	vmwrite(VMCS_GUEST_TR_SEL, h->tr_sel);
	vmwrite(VMCS_GUEST_TR_BASE, h->tr_base);
	vmwrite(VMCS_GUEST_TR_LIMIT, h->tr_limit);
	vmwrite(VMCS_GUEST_TR_AR, h->tr_ar);
	vmwrite(VMCS_GUEST_GDTR_BASE, h->gdtr_base);
	vmwrite(VMCS_GUEST_GDTR_LIMIT, h->limit64k);
	vmwrite(VMCS_GUEST_IDTR_BASE, h->idtr_base);
	vmwrite(VMCS_GUEST_IDTR_LIMIT, h->limit64k);
	vmwrite(VMCS_GUEST_RSP, h->rsp);
	vmwrite(VMCS_GUEST_RIP, h->rip);
	vmwrite(VMCS_GUEST_RFLAGS, h->rflags);
	vmwrite(VMCS_GUEST_INTERRUPTIBILITY, h->zero);
	vmwrite(VMCS_GUEST_ACTIVITY_STATE, h->zero); /* active */
	vmwrite(VMCS_GUEST_PENDING_DBG_EXCEPTIONS, h->zero);
	vmwrite(VMCS_VMENTRY_INTR_INFO, h->zero);
	/* A 32-bit PAE host needs its PDPTEs; a 64-bit one does not. */
	if (!host64 && (cr4 & CR4_PAE)) {
		uint64_t pdpte[4];
		level_read(v, n->level, V12(c, HOST_CR3) & 0xffffffe0ull, pdpte, sizeof(pdpte));
		for (int i = 0; i < 4; i++)
			vmwrite(VMCS_GUEST_PDPTE0 + 2 * i, pdpte[i]);
	}
	/* The exit MSR-load list, into L1 (VMCS01 is current); a failure is a
	 * VMX abort (SDM 27.7). */
	/* A list beyond the maximum was refused at VM entry (nested_vmentry):
	 * the entry failure that says so loads no MSR. */
	uint32_t load_n = V12(c, VMEXIT_MSR_LOAD_COUNT);
	if (load_n > nested_msr_list_max())
		load_n = 0;
	if (nested_load_msr_list(v, n->level, V12(c, VMEXIT_MSR_LOAD_ADDR), load_n, NULL)) {
		nested_vmx_abort(v, n, VMX_ABORT_LOAD_HOST_MSR);
		return false;
	}
	return true;
}
