/* signals.c - NMIs and INITs: to the level the CPU would give them to.
 *
 * With delegation (docs/depth.md) several levels run on one CPU: while
 * level m runs, every level j < m whose VMX we emulate is in VMX non-root
 * operation - inside the VMLAUNCH or VMRESUME that entered level j+1.  So
 * an NMI that reaches the CPU is an NMI exit of the lowest of them that
 * takes NMI exits (SDM 25.2; a Nestor takes them all: its kicks, vmx/sync.c,
 * are NMIs), and an INIT for level j, held while level j was in VMX root
 * operation, is an INIT exit of level j+1 to level j.
 *
 * Giving level k an exit while a level above k+1 runs: every level in
 * between stops at its entry instruction.  Level k+1 is shown at its
 * VMLAUNCH/VMRESUME (its state in the VMCS that runs it is that of its last
 * exit, the entry), and the state of the level above it stays in our
 * VMCS02 - nothing is lost.  When level k enters level k+1 again without
 * having changed it, the levels in between simply go on inside their
 * entries (nested_continue_held): none of them sees anything.  If level k
 * changed anything in its VMCS12 (or injected other than an NMI), level k+1
 * runs from where it is and executes its entry instruction again - our
 * VMCS02 still holds the state of the level above, which goes on; only an
 * MSR-load list of that entry is applied again.  An NMI level k injects into
 * a level stopped so is an NMI that came while that level's guest ran: it
 * is routed again from there, as KVM does for the L1 of an L2 that runs. */
#include "lib/log.h"
#include "lib/x86.h"
#include "nested/internal.h"
#include "vmx/exits.h"
#include "vmx/vmcs.h"
#include "vmx/vmcs_own.h"
#include "vmx/vmx.h"

/* The event VMCS02 was about to inject (an exit's event being delivered,
 * re-injected by us) is the IDT-vectoring information of an exit we make
 * at this point (SDM 27.2.4); level k now owns delivering it. */
static void take_pending_injection(struct synth_exit *s)
{
	uint32_t pending = (uint32_t)vmread(VMCS_VMENTRY_INTR_INFO);
	s->has_intr = true;
	if (pending & INTR_INFO_VALID) {
		s->idt_info = pending;
		s->idt_err = (uint32_t)vmread(VMCS_VMENTRY_EXCEPTION_ERRCODE);
		vmwrite(VMCS_VMENTRY_INTR_INFO, 0);
	}
}

/* Level k gets exit s of level k+1 now; cur > k (level k+1 or one above it
 * runs, its VMCS current). */
static void exit_to_level(struct vcpu *v, unsigned k, struct synth_exit *s)
{
	for (unsigned h = v->cur - 1; h > k; h--) {
		struct nested *n = v->lv[h];
		/* Level h stops at its entry instruction: the VMCS that runs it
		 * still holds its state of then, and its last exit. */
		vmcs_load(v, n->vmcs01_phys);
		n->held = true;
		n->held_launch = (vmread(VMCS_EXIT_REASON) & 0xffff) == EXIT_VMLAUNCH;
		if (n->held_launch)
			n->vmcs12->launch_state = 0; /* for it, the VMLAUNCH is still to come */
		n->guest_mode = false;
	}
	if (v->cur > k + 1)
		pr_debug("vCPU %u: exit %u of level %u to level %u; levels %u-%u stop at their entry\n", v->id, s->reason,
			 k + 1 + v->vm->level, k + v->vm->level, k + 1 + v->vm->level, v->cur - 1 + v->vm->level);
	vmcs_load(v, v->lv[k]->vmcs02_phys);
	v->cur = k + 1;
	take_pending_injection(s);
	nested_reflect(v, v->lv[k], s);
}

void nested_route_nmi(struct vcpu *v, unsigned from, bool at_exit)
{
	unsigned top = v->cur;
	for (unsigned k = from; k < top; k++) {
		if (!(V12(v->lv[k]->vmcs12, PIN_BASED_CTLS) & PIN_NMI_EXITING))
			continue;
		if (at_exit && k == top - 1) {
			/* The hardware's own NMI exit, with its information. */
			nested_reflect(v, v->lv[k], NULL);
			return;
		}
		if (at_exit)
			reinject_idt_vectoring(v); /* an event the NMI interrupted */
		struct synth_exit s = { .reason = EXIT_EXCEPTION_NMI,
					.intr_info = INTR_INFO_VALID | (INTR_TYPE_NMI << 8) | EXC_NMI };
		exit_to_level(v, k, &s);
		return;
	}
	/* Nobody below takes NMI exits: the running level's own NMI. */
	if (at_exit)
		reinject_idt_vectoring(v);
	v->lv[top - 1]->nmi_pending02++;
	v->nmi02_held = true;
}

bool nested_entering_held(struct vcpu *v, struct nested *n, bool *nmi)
{
	if (n->level + 1 > v->nlevels || !v->lv[n->level + 1]->held)
		return false;
	const struct vmcs12 *c = n->vmcs12;
	uint32_t inject = V12(c, VMENTRY_INTR_INFO);
	*nmi = (inject & INTR_INFO_VALID) && ((inject >> 8) & 7) == INTR_TYPE_NMI;
	/* Nothing changed in VMCS12 but, maybe, the NMI. */
	bool unchanged = !n->all_dirty && n->vmcs02_vmcs12 == n->current_ptr;
	for (int w = 0; unchanged && w < (V12_NFIELDS + 63) / 64; w++) {
		uint64_t d = n->dirty[w];
		if (w == V12_VMENTRY_INTR_INFO / 64)
			d &= ~(1ull << (V12_VMENTRY_INTR_INFO % 64));
		unchanged = !d;
	}
	/* An entry with work of its own (MSR lists, a link pointer: the
	 * probe) or another event to deliver is an entry like any other. */
	bool plain = V12(c, VMCS_LINK_PTR) == ~0ull && !V12(c, VMENTRY_MSR_LOAD_COUNT) &&
		     !V12(c, VMEXIT_MSR_STORE_COUNT) && !V12(c, VMEXIT_MSR_LOAD_COUNT);
	if (unchanged && plain && (*nmi || !(inject & INTR_INFO_VALID))) {
		if (*nmi) /* not injected into level n+1: routed (nested_continue_held) */
			n->dirty[V12_VMENTRY_INTR_INFO / 64] &= ~(1ull << (V12_VMENTRY_INTR_INFO % 64));
		return true;
	}
	/* Level n+1 runs from its state: it executes its entry instruction
	 * again (the levels above stay as they are until it does). */
	v->lv[n->level + 1]->held = false;
	return false;
}

void nested_continue_held(struct vcpu *v, bool nmi)
{
	unsigned first = v->cur, h = first;
	for (; h <= v->nlevels && v->lv[h]->held; h++) {
		struct nested *m = v->lv[h];
		m->held = false;
		if (m->held_launch)
			m->vmcs12->launch_state = 1;
		m->guest_mode = true;
	}
	v->cur = h;
	vmcs_load(v, v->lv[h - 1]->vmcs02_phys);
	if (nmi)
		nested_route_nmi(v, first, false);
}

void nested_guest_nmi(struct vcpu *v, unsigned level)
{
	if (level < 2 || level > v->nlevels + 1)
		return;
	v->lv[level - 1]->nmi_pending02++;
	v->nmi02_held = true;
	v->entry_recheck = 1;
}

void nested_route_held_nmis(struct vcpu *v)
{
	/* NMIs pending for level k+1 (lv[k]) while a level above it runs. */
	for (unsigned k = 1; k + 1 < v->cur; k++) {
		struct nested *n = v->lv[k];
		while (n->nmi_pending02 && k + 1 < v->cur) {
			n->nmi_pending02--;
			nested_route_nmi(v, k + 1, false);
		}
	}
	bool held = false;
	for (unsigned k = 1; k <= v->nlevels; k++)
		held |= v->lv[k]->nmi_pending02 != 0;
	v->nmi02_held = held;
}

bool nested_guest_init(struct vcpu *v, unsigned level)
{
	if (level < 1 || level > v->nlevels || !v->lv[level]->vmxon)
		return false;
	v->init_held |= 1u << level;
	v->entry_recheck = 1; /* its guest may be about to run: the entry path looks */
	return true;
}

void nested_init_after_vmxoff(struct vcpu *v, struct nested *n)
{
	v->init_held &= ~(1u << n->level);
	/* Out of VMX operation the INIT acts (SDM 25.2 / 3A 9.1): level 1 is
	 * ours to reset; a level above is its hypervisor's, which gets the
	 * INIT exit the CPU would give it. */
	if (n->level == 1) {
		vcpu_reset(v, rdmsr(MSR_IA32_APIC_BASE) & (1u << 8));
		return;
	}
	struct synth_exit s = { .reason = EXIT_INIT };
	exit_to_level(v, n->level - 1, &s);
}

void nested_signals(struct vcpu *v)
{
	/* Our guest's own NMIs, held while it blocked them: its guest runs
	 * now, so they come to it as they would to a CPU there. */
	if (v->cur > 1 && v->nmi_pending) {
		v->nmi_to_route += v->nmi_pending;
		v->nmi_pending = 0;
	}
	/* INIT first (SDM 3A 6.9: it outranks NMI).  Held while level s is in
	 * VMX root operation (s == cur) or its guest waits for SIPI. */
	for (unsigned s = 1; s < v->cur; s++) {
		if (!(v->init_held & (1u << s)))
			continue;
		if (s + 1 == v->cur) {
			/* Right after an entry the CPU first checks the guest
			 * state (the probe's exit, nested/enter.c) and delivers
			 * the event it injects (as KVM, the INIT waits). */
			if (v->lv[s]->probe.armed || (vmread(VMCS_VMENTRY_INTR_INFO) & INTR_INFO_VALID) ||
			    vmread(VMCS_GUEST_ACTIVITY_STATE) == ACTIVITY_WAIT_SIPI)
				break;
		}
		v->init_held &= ~(1u << s);
		struct synth_exit e = { .reason = EXIT_INIT };
		exit_to_level(v, s, &e);
		break;
	}
	while (v->nmi_to_route) {
		v->nmi_to_route--;
		if (v->cur > 1) {
			nested_route_nmi(v, 1, false);
		} else {
			v->nmi_pending++;
			deliver_pending_events(v);
		}
	}
}
