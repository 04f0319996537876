/* exit.c - an exit of L2: who handles it, and reflecting it to L1.
 *
 * Two small decisions, in this order (as KVM's nested.c):
 *  1. does L0 want it?  Shadow-EPT faults L0 can fix, NMIs (routed by
 *     the NMI exiting of every level below, nested/signals.c), L0's own
 *     NMI windows.
 *  2. does L1 want it?  By VMCS12's controls and bitmaps (in L1's memory).
 *     If yes the exit is reflected: L2's state and the exit information go
 *     into VMCS12 and L1 resumes at VMCS12's host state, exactly as if the
 *     CPU had exited from L2 to L1.  If no, L0 handles it on L2's behalf,
 *     as the CPU would have for L1's guest (an MSR or port L1 passes
 *     through, a CR bit only L0 owns). */
#include "boot/fixup.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "mm/mm.h"
#include "nested/internal.h"
#include "nested/shadow_fields.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"
#include "vmx/vmcs_own.h"
#include "vmx/prof.h"
#include "vmx/vmx.h"

/* Guest-state fields saved into VMCS12 on every reflected exit (SDM 27.3),
 * then the exit information (not the I/O RCX, RSI, RDI, RIP: only an SMI
 * writes them, SDM 27.2.5, and no guest of ours meets one).  The rest of
 * the guest state, RARE_GUEST_FIELDS (nested/shadow_fields.h), when
 * something reads it (nested_sync_rare). */
#define EAGER_FIELDS(X)                                                                                \
	X(GUEST_CS_SEL) X(GUEST_SS_SEL) X(GUEST_CS_LIMIT) X(GUEST_SS_LIMIT) X(GUEST_CS_AR) X(GUEST_SS_AR) \
	X(GUEST_INTERRUPTIBILITY) X(GUEST_ACTIVITY_STATE) X(GUEST_IA32_SYSENTER_CS) X(GUEST_CR0)         \
	X(GUEST_CR3) X(GUEST_CR4) X(GUEST_CS_BASE) X(GUEST_SS_BASE) X(GUEST_RSP) X(GUEST_RIP)            \
	X(GUEST_RFLAGS) X(GUEST_PENDING_DBG_EXCEPTIONS) X(EXIT_REASON) X(EXIT_QUALIFICATION)             \
	X(GUEST_LINEAR_ADDR) X(GUEST_PHYSICAL_ADDR) X(EXIT_INTR_INFO) X(EXIT_INTR_ERRCODE)                \
	X(IDT_VECTORING_INFO) X(IDT_VECTORING_ERRCODE) X(EXIT_INSTR_LEN) X(EXIT_INSTR_INFO)

/* VMCS12's rare fields from the VMCS that ran n's L2, which holds them
 * while n->rare_stale (set by a reflected exit; every path that clears,
 * rebuilds or leaves that VMCS, or reads VMCS12 whole, calls this first).
 * Not shadowed, so the shadow VMCS has nothing to learn. */
void nested_sync_rare(struct vcpu *v, struct nested *n)
{
	if (!n->rare_stale)
		return;
	n->rare_stale = false;
	uint64_t prev = v->loaded_vmcs, scratch[(V12_NFIELDS + 63) / 64] = { 0 };
	vmcs_load(v, n->vmcs02_phys);
	uint64_t *f = n->vmcs12->f;
#define X(name) v12_pull(f, scratch, VMCS_##name, V12_##name);
	RARE_GUEST_FIELDS(X)
#undef X
	if (prev != ~0ull)
		vmcs_load(v, prev);
}

/* SDM 27.4: the VM-exit MSR-store area gets the MSRs of L2, which runs in
 * the current VMCS (VMCS02), read as its RDMSR would (vmx/exit_msr.c: a
 * VMCS-switched MSR from VMCS02, never Nestor's own register).  False when
 * an entry cannot be stored: a VMX abort. */
static bool store_msr_list(struct vcpu *v, unsigned level, uint64_t addr, uint32_t count)
{
	unsigned max = nested_msr_list_max();
	for (uint32_t i = 0; i < count; i++) {
		uint64_t index = ~0ull, val;
		level_read(v, level, addr + 16ull * i, &index, 8);
		uint32_t msr = (uint32_t)index;
		if (i >= max || (index >> 32) || (msr >> 8) == 0x8 || msr == 0x9e || guest_msr_read(v, msr, &val))
			return false;
		level_write(v, level, addr + 16ull * i + 8, &val, 8);
	}
	return true;
}

void nested_vmx_abort(struct vcpu *v, struct nested *n, uint32_t code)
{
	/* SDM 27.7: the abort indicator of the current VMCS12 gets the code,
	 * and n's L1 enters the shutdown state. */
	n->vmcs12->abort = code;
	if (n->current_ptr != ~0ull)
		level_write(v, n->level, n->current_ptr + __builtin_offsetof(struct vmcs12, abort), &code, 4);
	pr_warn("VMX abort of level %u (indicator %u): it shuts down\n", n->level + v->vm->level, code);
	if (n->level == 1) {
		/* Our guest shut down: like its triple fault, the run ends. */
		vm_end_run(v, true, "VMX abort of the guest hypervisor");
	}
	/* A level above shuts down: its hypervisor sees a triple-fault exit
	 * (it runs that level in the VMCS current now). */
	struct synth_exit shutdown = { .reason = EXIT_TRIPLE_FAULT };
	nested_reflect(v, v->lv[n->level - 1], &shutdown);
}

/* NMIs across an exit to L1 (SDM 27.5.5): an exit caused by an NMI blocks
 * NMIs; any other leaves the blocking as it was - the L2's own when L1 gave
 * it the CPU's (virtual NMIs 0), none when it ran with virtual NMIs (NMIs
 * are not blocked then, 26.6.1).  An NMI the L2 held while it blocked them
 * (nobody below takes NMI exits: nested/signals.c) is the CPU's: L1's now,
 * taken when L1 unblocks (vmx_exits.nmi_while_blocked).  VMCS01 is
 * current; VMCS12 holds the exit and the L2's state. */
static void l1_nmis_after_exit(struct vcpu *v, struct nested *n)
{
	const struct vmcs12 *c = n->vmcs12;
	uint32_t info = V12(c, EXIT_INTR_INFO);
	bool nmi_exit = (V12(c, EXIT_REASON) & 0xffff) == EXIT_EXCEPTION_NMI && (info & INTR_INFO_VALID) &&
			((info >> 8) & 7) == INTR_TYPE_NMI;
	bool l2_blocked = !(V12(c, PIN_BASED_CTLS) & PIN_VIRTUAL_NMIS) &&
			  (V12(c, GUEST_INTERRUPTIBILITY) & INTERRUPTIBILITY_NMI);
	if (nmi_exit || l2_blocked)
		vmwrite(VMCS_GUEST_INTERRUPTIBILITY, vmread(VMCS_GUEST_INTERRUPTIBILITY) | INTERRUPTIBILITY_NMI);
	if (n->nmi_pending02) {
		if (n->level == 1)
			v->nmi_pending += n->nmi_pending02;
		else
			v->lv[n->level - 1]->nmi_pending02 += n->nmi_pending02, v->nmi02_held = true;
		n->nmi_pending02 = 0;
	}
}

void nested_reflect(struct vcpu *v, struct nested *n, const struct synth_exit *synth)
{
	struct vmcs12 *c = n->vmcs12;
	uint32_t exit12 = V12(c, VMEXIT_CTLS);
	PROF_MARK(v, PROF_ROUTE);
	/* An exit of L2 follows an entry that succeeded - even one we make
	 * before VMCS02 first ran (an NMI or INIT for L1 right after its
	 * VMLAUNCH, nested/signals.c): VMCS12 is launched. */
	c->launch_state = 1;
	/* L2's state and the exit information, from VMCS02 (still current);
	 * what changed is copied to the shadow VMCS afterwards. */
	uint64_t changed[(V12_NFIELDS + 63) / 64] = { 0 };
#define X(name) v12_pull(c->f, changed, VMCS_##name, V12_##name);
	EAGER_FIELDS(X)
#undef X
	n->rare_stale = true;
	/* The PDPTEs, with L1's EPT and L2 using PAE paging (SDM 27.3.4);
	 * without L1's EPT, VMCS02's hold what nested/enter.c loaded. */
	bool lma = vmread(VMCS_GUEST_IA32_EFER) & EFER_LMA;
	if ((v12_proc2(c) & PROC2_EPT) && (V12(c, GUEST_CR0) & CR0_PG) && (V12(c, GUEST_CR4) & CR4_PAE) && !lma) {
		for (int i = 0; i < 4; i++) {
			uint64_t val = vmread(VMCS_GUEST_PDPTE0 + 2 * i);
			if (val != c->f[V12_GUEST_PDPTE0 + i]) {
				c->f[V12_GUEST_PDPTE0 + i] = val;
				v12_mark(changed, V12_GUEST_PDPTE0 + i);
			}
		}
	}
#define SAVE(field, value)                                  \
	do {                                                \
		uint64_t val_ = (value);                    \
		if (val_ != V12(c, field)) {                \
			V12(c, field) = val_;               \
			v12_mark(changed, V12_##field);     \
		}                                           \
	} while (0)
	if (exit12 & EXIT_SAVE_DEBUG_CTLS) {
		SAVE(GUEST_DR7, vmread(VMCS_GUEST_DR7));
		SAVE(GUEST_IA32_DEBUGCTL, vmread(VMCS_GUEST_IA32_DEBUGCTL));
	}
	if (exit12 & EXIT_SAVE_EFER)
		SAVE(GUEST_IA32_EFER, vmread(VMCS_GUEST_IA32_EFER));
	if (exit12 & EXIT_SAVE_PAT)
		SAVE(GUEST_IA32_PAT, vmread(VMCS_GUEST_IA32_PAT));
	if (exit12 & EXIT_SAVE_PREEMPTION_TIMER)
		SAVE(GUEST_PREEMPTION_TIMER, vmread(VMCS_GUEST_PREEMPTION_TIMER));
	/* RVI and SVI, with virtual-interrupt delivery (SDM 27.3.3). */
	if (v12_proc2(c) & PROC2_VIRT_INTR_DELIVERY)
		SAVE(GUEST_INTR_STATUS, vmread(VMCS_GUEST_INTR_STATUS));
	/* Every exit saves the CET state where the CPU can load it (SDM 27.3.1). */
	if (nested_offers_cet()) {
		SAVE(GUEST_IA32_S_CET, vmread(VMCS_GUEST_IA32_S_CET));
		SAVE(GUEST_SSP, vmread(VMCS_GUEST_SSP));
		SAVE(GUEST_IA32_INTR_SSP_TABLE_ADDR, vmread(VMCS_GUEST_IA32_INTR_SSP_TABLE_ADDR));
	}
	/* The PML index counts down in the cache as level 0 logs (nested/
	 * levels.c): the shadow VMCS learns it here. */
	if (v12_proc2(c) & PROC2_PML)
		v12_mark(changed, V12_GUEST_PML_INDEX);
	/* "IA-32e mode guest" follows EFER.LMA on every VM exit (SDM 27.2). */
	SAVE(VMENTRY_CTLS, lma ? V12(c, VMENTRY_CTLS) | ENTRY_IA32E_MODE : V12(c, VMENTRY_CTLS) & ~ENTRY_IA32E_MODE);
	if (synth) {
		SAVE(EXIT_REASON, synth->reason);
		SAVE(EXIT_QUALIFICATION, synth->qualification);
		SAVE(GUEST_PHYSICAL_ADDR, synth->guest_physical);
		if (synth->has_linear)
			SAVE(GUEST_LINEAR_ADDR, synth->guest_linear);
		if (synth->has_intr) {
			SAVE(EXIT_INTR_INFO, synth->intr_info);
			SAVE(EXIT_INTR_ERRCODE, synth->intr_err);
			SAVE(IDT_VECTORING_INFO, synth->idt_info);
			SAVE(IDT_VECTORING_ERRCODE, synth->idt_err);
		}
	}
	/* SDM 27.2.?: every VM exit clears the valid bit of the VM-entry
	 * interruption-information field (Abyme forgot it: events were
	 * injected twice).  VMCS02's own bit was cleared by this exit. */
	SAVE(VMENTRY_INTR_INFO, V12(c, VMENTRY_INTR_INFO) & ~INTR_INFO_VALID);
#undef SAVE
	/* Controls changed here (IA-32e mode guest, the injection valid bit)
	 * are entry-checked and go to VMCS02 again like L1's own writes. */
	for (int w = 0; w < (V12_NFIELDS + 63) / 64; w++)
		n->dirty[w] |= changed[w] & nested_checked_mask[w];
	/* VMCS02 counted L1's preemption timer down; the next VM entry starts
	 * it again from VMCS12's value, as the CPU does (SDM 26.7.4). */
	if (V12(c, PIN_BASED_CTLS) & PIN_PREEMPTION_TIMER)
		v12_mark(n->dirty, V12_GUEST_PREEMPTION_TIMER);
	n->stats_reflected++;
	uint32_t store_n = (uint32_t)V12(c, VMEXIT_MSR_STORE_COUNT);
	if (store_n && !store_msr_list(v, n->level, V12(c, VMEXIT_MSR_STORE_ADDR), store_n)) {
		/* No host state is loaded: L1 shuts down where it was. */
		nested_leave_l2(v, n);
		nested_vmx_abort(v, n, VMX_ABORT_SAVE_GUEST_MSR);
		return;
	}
	PROF_MARK(v, PROF_SAVE12);
	if (!load_l1_host_state(v, n))
		return; /* a VMX abort (exit MSR-load list) */
	l1_nmis_after_exit(v, n);
	PROF_MARK(v, PROF_LOAD_HOST);
	nested_cache_to_shadow(v, n, changed);
	PROF_MARK(v, PROF_SHADOW_OUT);
}

/* An exception Nestor raises while it emulates something for L2 (an
 * instruction, a port or MSR access L1 passed through): on the CPU it would
 * have gone through L1's exception bitmap like any other (SDM 25.2), so a
 * VM exit to L1 when L1 intercepts it - an event injected into VMCS02 would
 * bypass that.  An event being delivered when it happened (pending in
 * VMCS02's injection field) becomes the IDT-vectoring information. */
static bool l1_wants_vector(const struct vmcs12 *c, unsigned vec, uint32_t ec)
{
	bool bit = (V12(c, EXCEPTION_BITMAP) >> vec) & 1;
	if (vec != EXC_PF)
		return bit;
	bool match = (ec & V12(c, PF_ERROR_CODE_MASK)) == V12(c, PF_ERROR_CODE_MATCH);
	return match ? bit : !bit;
}

bool nested_exception_to_l1(struct vcpu *v, unsigned vector, bool has_err, uint32_t err, uint64_t cr2)
{
	if (v->cur <= 1)
		return false;
	struct nested *n = v->lv[v->cur - 1];
	if (!l1_wants_vector(n->vmcs12, vector, err))
		return false;
	uint32_t pending = vmread(VMCS_VMENTRY_INTR_INFO);
	struct synth_exit s = {
		.reason = EXIT_EXCEPTION_NMI,
		.qualification = vector == EXC_PF ? cr2 : 0,
		.has_intr = true,
		.intr_info = INTR_INFO_VALID | (INTR_TYPE_HW_EXCEPTION << 8) | vector | (has_err ? INTR_INFO_ERRCODE_VALID : 0),
		.intr_err = has_err ? err : 0,
		.idt_info = pending & INTR_INFO_VALID ? pending : 0,
		.idt_err = pending & INTR_INFO_VALID ? (uint32_t)vmread(VMCS_VMENTRY_EXCEPTION_ERRCODE) : 0,
	};
	vmwrite(VMCS_VMENTRY_INTR_INFO, 0);
	nested_reflect(v, n, &s);
	return true;
}

/* --- does L1 want it? ------------------------------------------------------ */

/* The machine page of one of L1's bitmap pages when VMCS02's merged
 * copies were made from it and nothing they came from changed since
 * (nested/bitmaps.c): L1's bits are read there with one load, not a walk
 * through the EPTs to L1's memory (issue 16: 111 instructions at level 1,
 * about 300 above).  NULL otherwise. */
static const uint8_t *known_bitmap_page(const struct vcpu *v, const struct nested *n, uint64_t page)
{
	if ((n->io02_mode != IO02_MERGED && !n->msr02_merged) || nested_bitmaps02_stale(v, n))
		return NULL;
	if (n->io02_mode == IO02_MERGED && (page == n->io12[0] || page == n->io12[1]))
		return phys_to_virt(n->io12_machine[page == n->io12[0] ? 0 : 1]);
	if (n->msr02_merged && page == n->msr12)
		return phys_to_virt(n->msr12_machine);
	return NULL;
}

static bool bitmap_bit(struct vcpu *v, const struct nested *n, uint64_t gpa, unsigned bit)
{
	uint64_t at = gpa + bit / 8;
	const uint8_t *known = known_bitmap_page(v, n, at & ~0xfffull);
	uint8_t byte = 0xff;
	if (known)
		byte = known[at & 0xfff];
	else
		level_read(v, n->level, at, &byte, 1);
	return (byte >> (bit % 8)) & 1;
}

static bool l1_wants_msr(struct vcpu *v, const struct nested *n, bool write)
{
	const struct vmcs12 *c = n->vmcs12;
	if (!(V12(c, PROC_BASED_CTLS) & PROC_USE_MSR_BITMAPS))
		return true;
	uint32_t msr = (uint32_t)v->gpr[RCX];
	unsigned base;
	if (msr <= 0x1fff)
		base = 0;
	else if (msr >= 0xc0000000 && msr <= 0xc0001fff)
		base = 1024, msr -= 0xc0000000;
	else
		return true; /* outside both ranges: always exits */
	return bitmap_bit(v, n, V12(c, MSR_BITMAP), 8 * (base + (write ? 2048 : 0)) + msr);
}

static bool l1_wants_io(struct vcpu *v, const struct nested *n)
{
	const struct vmcs12 *c = n->vmcs12;
	uint32_t proc = V12(c, PROC_BASED_CTLS);
	if (!(proc & PROC_USE_IO_BITMAPS))
		return proc & PROC_UNCOND_IO_EXITING;
	/* Every port the access touches: one bitmap bit each (SDM 25.1.3). */
	uint64_t q = vmread(VMCS_EXIT_QUALIFICATION);
	unsigned port = q >> 16, size = (q & 7) + 1;
	for (unsigned p = port; p < port + size; p++) {
		unsigned pp = p & 0xffff;
		if (p > 0xffff || bitmap_bit(v, n, pp < 0x8000 ? V12(c, IO_BITMAP_A) : V12(c, IO_BITMAP_B), pp & 0x7fff))
			return true;
	}
	return false;
}

static bool l1_wants_cr(struct vcpu *v, const struct vmcs12 *c)
{
	uint64_t q = vmread(VMCS_EXIT_QUALIFICATION);
	unsigned cr = q & 15, type = (q >> 4) & 3;
	uint32_t proc = V12(c, PROC_BASED_CTLS);
	switch (type) {
	case 0: { /* MOV to CR */
		uint64_t val = gpr_read(v, (q >> 8) & 15);
		if (cr == 0)
			return ((val ^ V12(c, CR0_READ_SHADOW)) & V12(c, CR0_GUEST_HOST_MASK)) != 0;
		if (cr == 4)
			return ((val ^ V12(c, CR4_READ_SHADOW)) & V12(c, CR4_GUEST_HOST_MASK)) != 0;
		if (cr == 3) {
			if (!(proc & PROC_CR3_LOAD_EXITING))
				return false;
			for (unsigned i = 0; i < V12(c, CR3_TARGET_COUNT) && i < 4; i++)
				if (c->f[V12_CR3_TARGET0 + i] == val)
					return false;
			return true;
		}
		if (cr == 8)
			return proc & PROC_CR8_LOAD_EXITING;
		return true;
	}
	case 1: /* MOV from CR */
		return cr == 3 ? (proc & PROC_CR3_STORE_EXITING) != 0 : cr == 8 ? (proc & PROC_CR8_STORE_EXITING) != 0 : true;
	case 2: /* CLTS */
		return (V12(c, CR0_GUEST_HOST_MASK) & CR0_TS) && (V12(c, CR0_READ_SHADOW) & CR0_TS);
	default: { /* LMSW: bits 3:0 of CR0, PE cannot be cleared */
		uint64_t src = (q >> 16) & 0xf, mask = V12(c, CR0_GUEST_HOST_MASK), shadow = V12(c, CR0_READ_SHADOW);
		if ((mask & CR0_PE) && !(shadow & CR0_PE) && (src & CR0_PE))
			return true;
		return ((src ^ shadow) & mask & 0xe) != 0;
	}
	}
}

static bool l1_wants_exception(const struct vmcs12 *c)
{
	uint32_t info = vmread(VMCS_EXIT_INTR_INFO);
	unsigned vec = info & 0xff;
	if (!((V12(c, EXCEPTION_BITMAP) >> vec) & 1) && vec != EXC_PF)
		return false;
	if (vec == EXC_PF) {
		/* SDM 25.2: #PF exits when (error & mask) == match, per bit 14. */
		uint32_t ec = vmread(VMCS_EXIT_INTR_ERRCODE);
		bool match = (ec & V12(c, PF_ERROR_CODE_MASK)) == V12(c, PF_ERROR_CODE_MATCH);
		bool bit = (V12(c, EXCEPTION_BITMAP) >> EXC_PF) & 1;
		return match ? bit : !bit;
	}
	return true;
}

bool nested_exception_exit_wanted(struct vcpu *v)
{
	return v->cur > 1 && l1_wants_exception(v->lv[v->cur - 1]->vmcs12);
}

static bool l1_wants(struct vcpu *v, const struct nested *n, unsigned reason)
{
	const struct vmcs12 *c = n->vmcs12;
	uint32_t proc = V12(c, PROC_BASED_CTLS);
	uint32_t proc2 = v12_proc2(c);
	switch (reason) {
	case EXIT_EXCEPTION_NMI: return l1_wants_exception(c);
	case EXIT_INTR_WINDOW: return proc & PROC_INTR_WINDOW;
	case EXIT_NMI_WINDOW: return proc & PROC_NMI_WINDOW;
	case EXIT_HLT: return proc & PROC_HLT_EXITING;
	case EXIT_INVLPG: return proc & PROC_INVLPG_EXITING;
	case EXIT_RDPMC: return proc & PROC_RDPMC_EXITING;
	case EXIT_RDTSC: case EXIT_RDTSCP: return proc & PROC_RDTSC_EXITING;
	case EXIT_MWAIT: return proc & PROC_MWAIT_EXITING;
	case EXIT_MONITOR: return proc & PROC_MONITOR_EXITING;
	case EXIT_PAUSE: return proc & PROC_PAUSE_EXITING;
	case EXIT_DR_ACCESS: return proc & PROC_MOV_DR_EXITING;
	case EXIT_CR_ACCESS: return l1_wants_cr(v, c);
	case EXIT_IO: return l1_wants_io(v, n);
	case EXIT_RDMSR: return l1_wants_msr(v, n, false);
	case EXIT_WRMSR: return l1_wants_msr(v, n, true);
	case EXIT_WBINVD: return proc2 & PROC2_WBINVD_EXITING;
	case EXIT_GDTR_IDTR: case EXIT_LDTR_TR: return proc2 & PROC2_DESC_TABLE_EXITING;
	case EXIT_RDRAND: return proc2 & PROC2_RDRAND_EXITING;
	case EXIT_RDSEED: return proc2 & PROC2_RDSEED_EXITING;
	case EXIT_INVPCID: return (proc & PROC_INVLPG_EXITING) && (proc2 & PROC2_INVPCID);
	default:
		/* Unconditional exits (CPUID, VMCALL, VMX instructions, XSETBV,
		 * INVD, GETSEC, task switches, triple faults, INIT, SIPI...) and
		 * those only L1 can have enabled (interrupts, preemption timer). */
		return true;
	}
}

/* --- what L0 does on L2's behalf ------------------------------------------ */

/* A CR0/CR4 write that exits only because of bits L0 masks: those are the
 * bits VMX fixes (CR0.NE, CR4.VMXE, unsupported bits).  L1 does not mask
 * them, so on the CPU the write would try to change a fixed bit in VMX
 * non-root operation: #GP(0) (SDM 25.3).  (A write to a bit L1 masks was
 * reflected before we get here.) */
static void l0_cr_write(struct vcpu *v, struct nested *n)
{
	uint64_t q = vmread(VMCS_EXIT_QUALIFICATION);
	unsigned cr = q & 15, type = (q >> 4) & 3;
	if (type == 0 && (cr == 0 || cr == 4))
		inject_gp(v);
	else
		nested_reflect(v, n, NULL); /* L0 masks nothing else: not reached */
}

/* A MOV to CR0/CR4 by a level whose VMX we emulate, while it is in VMX
 * operation, that breaks the VMX-fixed bits: #GP(0), the rule of its
 * virtual CPU (SDM 23.8) - before its own hypervisor looks at the write. */
static bool vmx_fixed_cr_violation(struct vcpu *v, const struct nested *self)
{
	uint64_t q = vmread(VMCS_EXIT_QUALIFICATION);
	unsigned cr = q & 15, type = (q >> 4) & 3;
	if (!self || !self->vmxon || (cr != 0 && cr != 4))
		return false;
	const struct nested_caps *nc = nested_caps();
	uint64_t val;
	if (type == 0)
		val = gpr_read(v, (q >> 8) & 15);
	else if (type == 3) /* LMSW: bits 3:0, PE cannot be cleared */
		val = (guest_cr0() & ~0xeull) | ((q >> 16) & 0xe) | ((guest_cr0() | (q >> 16)) & CR0_PE);
	else if (type == 2) /* CLTS */
		val = guest_cr0() & ~CR0_TS;
	else
		return false;
	if (cr == 0 || type != 0)
		return (val & nc->cr0_fixed0) != nc->cr0_fixed0 || (val & ~nc->cr0_fixed1);
	return (val & nc->cr4_fixed0) != nc->cr4_fixed0 || (val & ~nc->cr4_fixed1);
}

static bool is_vmx_instruction(unsigned reason)
{
	switch (reason) {
	case EXIT_VMCLEAR: case EXIT_VMLAUNCH: case EXIT_VMPTRLD: case EXIT_VMPTRST: case EXIT_VMREAD:
	case EXIT_VMRESUME: case EXIT_VMWRITE: case EXIT_VMXOFF: case EXIT_VMXON: case EXIT_INVEPT:
	case EXIT_INVVPID: case EXIT_VMFUNC:
		return true;
	default:
		return false;
	}
}

/* SDM 25.5.2: with the monitor trap flag in VMCS12, an instruction of L2
 * that completes is followed by an MTF VM exit to L1.  VMCS02 has the flag,
 * so the CPU makes that exit after the instructions it runs and after the
 * events it delivers; after one that level 0 emulated (it advanced RIP and
 * raised nothing), VMCS02 gets a pending MTF VM exit to inject (event type
 * 7), which the CPU turns into that exit right after the VM entry, with its
 * priority against the other events. */
static void l0_emulated(struct vcpu *v, struct nested *n, uint64_t rip0)
{
	n->stats_l0_handled++;
	if (!(V12(n->vmcs12, PROC_BASED_CTLS) & PROC_MONITOR_TRAP_FLAG) || vmread(VMCS_GUEST_RIP) == rip0 ||
	    (vmread(VMCS_VMENTRY_INTR_INFO) & INTR_INFO_VALID) || v->cur != n->level + 1)
		return;
	vmwrite(VMCS_VMENTRY_INTR_INFO, INTR_INFO_VALID | (INTR_TYPE_OTHER << 8));
}

void nested_l2_exit(struct vcpu *v, unsigned reason_full)
{
	/* The running level is n's L2; self is its own VMX if we emulate it
	 * (it is a hypervisor that delegated, docs/depth.md). */
	struct nested *n = v->lv[v->cur - 1];
	struct nested *self = v->cur <= v->nlevels ? v->lv[v->cur] : NULL;
	struct vmcs12 *c = n->vmcs12;
	unsigned reason = reason_full & 0xffff;
	if (n->probe.armed && !nested_probe_exit(v, n, reason_full))
		return;
	if (reason_full & EXIT_REASON_FAILED_ENTRY) {
		/* VMCS02's guest state - VMCS12's - failed the CPU's checks: L1
		 * gets the same entry failure (VMCS02 is cleared afterwards so
		 * its launch state is known whatever the CPU did with it). */
		nested_entry_failure(v, n, reason_full, vmread(VMCS_EXIT_QUALIFICATION));
		return;
	}
	c->launch_state = 1; /* the entry succeeded */
	/* L1's timer only counts down (SDM 25.5.1), and VMCS02 saves it on
	 * every exit.  Bochs 2.7 saves a value from an older deadline when the
	 * exit comes before a zero timer fired (an EPT violation while the
	 * entry delivers an event): then it is the value entered with. */
	if (V12(c, PIN_BASED_CTLS) & PIN_PREEMPTION_TIMER) {
		uint32_t t = (uint32_t)vmread(VMCS_GUEST_PREEMPTION_TIMER);
		if (t > n->timer02)
			vmwrite(VMCS_GUEST_PREEMPTION_TIMER, t = n->timer02);
		n->timer02 = t;
	}

	/* Where L2 is (an instruction level 0 emulates moves it on). */
	uint64_t rip0 = (V12(c, PROC_BASED_CTLS) & PROC_MONITOR_TRAP_FLAG) ? vmread(VMCS_GUEST_RIP) : 0;

	/* 1. Does L0 want it? */
	if (reason == EXIT_EXCEPTION_NMI &&
	    ((vmread(VMCS_EXIT_INTR_INFO) >> 8) & 7) == INTR_TYPE_NMI) {
		vmx_unblock_nmis();
		/* The lowest level in VMX non-root operation that takes NMI
		 * exits gets it (nested/signals.c); none: L2's own, as on bare
		 * hardware. */
		nested_route_nmi(v, 1, true);
		return;
	}
	if (reason == EXIT_NMI_WINDOW && !(V12(c, PROC_BASED_CTLS) & PROC_NMI_WINDOW)) {
		/* L0 asked for it to inject an NMI that is L2's. */
		deliver_nmis(&n->nmi_pending02, &n->proc02, true);
		return;
	}
	if (reason == EXIT_EPT_VIOLATION) {
		sept_violation(v); /* fixes the shadow EPT, reflects, or no memory */
		return;
	}
	/* L1's VMCS shadowing: an L2 VMREAD/VMWRITE its bitmaps let through
	 * reaches L1's shadow VMCS (insn.c).  (A level that delegated gave its
	 * own VMX to us, with the shadowing we give it: below.) */
	if (!self && (reason == EXIT_VMREAD || reason == EXIT_VMWRITE) &&
	    nested_shadowed_vmx_access(v, n, reason == EXIT_VMWRITE)) {
		l0_emulated(v, n, rip0);
		return;
	}
	/* VMFUNC: VMCS02 enables VM functions only where VMCS12 does, so it
	 * is L1's to allow (an EPTP switch done here) or to take. */
	if (reason == EXIT_VMFUNC) {
		if (nested_vmfunc(v, n))
			l0_emulated(v, n, rip0);
		else
			nested_reflect(v, n, NULL);
		return;
	}
	/* The VMX of a level that delegated is ours to emulate. */
	if (self && is_vmx_instruction(reason)) {
		nested_vmx_instruction(v, reason);
		l0_emulated(v, n, rip0);
		return;
	}
	if (reason == EXIT_CR_ACCESS && vmx_fixed_cr_violation(v, self)) {
		inject_gp(v);
		return;
	}
	/* 2. Does L1 want it? */
	if (l1_wants(v, n, reason)) {
		nested_reflect(v, n, NULL);
		return;
	}
	switch (reason) {
	/* x2APIC MSRs the CPU virtualizes for L2 reached it through VMCS02's
	 * bitmap (nested/bitmaps.c): what comes here is done as
	 * without the virtualization. */
	case EXIT_RDMSR: exit_rdmsr(v); break;
	case EXIT_WRMSR: exit_wrmsr(v); break;
	case EXIT_IO: exit_io(v); break;
	case EXIT_CR_ACCESS: l0_cr_write(v, n); break;
	default:
		pr_err("exit %u (%s) of level %u wanted by nobody\n", reason, exit_reason_name(reason), v->cur);
		nested_reflect(v, n, NULL);
		return;
	}
	l0_emulated(v, n, rip0);
}
