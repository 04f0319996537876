/* lifecycle.c - the VMX of each level: set-up, which VMCS to enter next,
 * NMIs for the levels above 1, and the CPU refusing a VMCS02. */
#include "hypercall/abi.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "mm/mm.h"
#include "nested/internal.h"
#include "vmx/exits.h"
#include "vmx/vmcs.h"
#include "vmx/vmcs_own.h"
#include "vmx/vmx.h"

/* A level's VMX as after reset: not in VMX operation, no current VMCS; its
 * VMCS02 cleared and its shadow EPTs dropped. */
static void level_reset(struct vcpu *v, struct nested *n)
{
	n->vmxon = false;
	n->guest_mode = false;
	n->delegated = false;
	n->current_ptr = ~0ull;
	n->vmcs02_vmcs12 = ~0ull;
	n->bound_vmcs12 = ~0ull;
	n->vmcs02_launched = false;
	n->all_dirty = true;
	n->rare_stale = false; /* VMCS12's cache is dropped */
	n->host_img_ptr = HOST_IMG_NONE;
	n->nmi_pending02 = 0;
	n->held = false;
	v->init_held &= ~(1u << n->level);
	vmcs_clear(v, n->vmcs02_phys);
	sept_invalidate(v, n, 0);
}

int nested_level_new(struct vcpu *v, unsigned level)
{
	if (level < 1 || level > NESTED_MAX_LEVELS || level != v->nlevels + 1)
		return -1;
	if (v->lv[level]) {
		/* Made for an earlier guest that delegated: use it again. */
		level_reset(v, v->lv[level]);
		v->nlevels = level;
		return 0;
	}
	struct nested *n = zalloc(sizeof(*n));
	if (!n)
		return -1;
	n->level = level;
	n->vmcs01_phys = level == 1 ? v->vmcs_phys : v->lv[level - 1]->vmcs02_phys;
	n->current_ptr = ~0ull;
	n->vmcs02_vmcs12 = ~0ull;
	n->bound_vmcs12 = ~0ull;
	n->host_img_ptr = HOST_IMG_NONE;
	n->vmcs12 = zalloc(sizeof(struct vmcs12));
	n->vmcs02 = page_alloc();
	n->msr_bitmap02 = page_alloc();
	if (!n->vmcs12 || !n->vmcs02 || !n->msr_bitmap02)
		return -1;
	memset(n->msr_bitmap02, 0xff, PAGE_SIZE); /* every MSR access of L2 exits to L0 */
	*(uint32_t *)n->vmcs02 = v->vm->caps->revision;
	n->vmcs02_phys = virt_to_phys(n->vmcs02);
	/* VMCS02 exits to the same place as VMCS01: same host state, and the
	 * MSR bitmap it always uses.  The running level's VMCS is current
	 * again afterwards. */
	uint64_t running = v->loaded_vmcs;
	if (!vmcs_clear(v, n->vmcs02_phys) || !vmcs_load(v, n->vmcs02_phys))
		return -1;
	vmx_vcpu_setup(v);
	vmwrite(VMCS_MSR_BITMAP, virt_to_phys(n->msr_bitmap02));
	if (!vmcs_load(v, running))
		return -1;
	if (nested_shadow_init(v, n))
		return -1;
	v->lv[level] = n;
	v->nlevels = level;
	return 0;
}

int nested_vcpu_init(struct vcpu *v)
{
	v->cur = 1;
	if (nested_shadow_tables_init(v)) /* with VMCS01 current */
		return -1;
	return nested_level_new(v, 1);
}

int nested_accept_delegation(struct vcpu *v, unsigned level, uint64_t caps_hash)
{
	/* We emulate VMX for levels 1 .. nlevels; the highest of them may hand
	 * us its guest's VMX too, before that guest uses VMX. */
	if (!nested_enabled() || level < 1 || level != v->nlevels)
		return NESTOR_EINVAL;
	if (caps_hash != nested_caps_hash()) {
		pr_warn("level %u offers a VMX different from ours: delegation refused\n", level + v->vm->level);
		return NESTOR_EINVAL;
	}
	if (level >= NESTED_MAX_LEVELS)
		return NESTOR_ENOMEM;
	/* A request for level >= 2 reaches us through level 1 (its hypervisor
	 * passes it on): it is only genuine from a level that exists, i.e.
	 * that its hypervisor has entered.  Level 1 cannot speak for a guest
	 * it never ran. */
	if (level >= 2 && v->lv[level - 1]->bound_vmcs12 == ~0ull)
		return NESTOR_EINVAL;
	struct nested *n = v->lv[level];
	if (n->guest_mode || n->vmcs02_launched)
		return NESTOR_EINVAL; /* its guest runs already, under its own VMX */
	if (nested_level_new(v, level + 1))
		return NESTOR_ENOMEM;
	n->delegated = true;
	pr_info("level %u delegates VMX emulation for its guest: level %u's VMX is emulated here\n",
		level + v->vm->level, level + 1 + v->vm->level);
	return NESTOR_OK;
}

int nested_revoke_delegation(struct vcpu *v, unsigned level)
{
	if (level < 1 || level > v->nlevels || !v->lv[level]->delegated || v->lv[level]->guest_mode)
		return NESTOR_EINVAL;
	/* Its guest's VMX state is here: only outside VMX operation can the
	 * asking level take it over (there is nothing to hand back). */
	if (level + 1 <= v->nlevels && v->lv[level + 1]->vmxon)
		return NESTOR_EBUSY;
	pr_info("level %u takes the VMX emulation of its guest back\n", level + v->vm->level);
	nested_end_delegation(v, v->lv[level]);
	return NESTOR_OK;
}

void nested_end_delegation(struct vcpu *v, struct nested *n)
{
	/* The guest whose VMX we emulated is gone (its VMCS was cleared) or
	 * takes it back: so is its VMX state here, and that of the levels it
	 * ran.  A new guest may ask again.  Whatever level runs now keeps
	 * running in its own VMCS (this is called from n's L1's VMCLEAR, with
	 * n's L1 running, and from a hypercall of any level at or below it). */
	uint64_t running = v->loaded_vmcs;
	for (unsigned j = n->level + 1; j <= v->nlevels; j++)
		level_reset(v, v->lv[j]);
	vmcs_load(v, running);
	n->delegated = false;
	n->bound_vmcs12 = ~0ull;
	/* VMCS02 carried what level n+1's own VMX operation needed (VMCS
	 * shadowing, CR0 bits): made anew from VMCS12 at the next entry. */
	n->all_dirty = true;
	n->host_img_ptr = HOST_IMG_NONE;
	v->nlevels = n->level;
}

void nested_reset_vmcs02(struct vcpu *v, struct nested *n)
{
	nested_sync_rare(v, n); /* before VMCS02 holding them goes */
	vmcs_clear(v, n->vmcs02_phys);
	n->vmcs02_launched = false;
	n->probe.armed = false;
	n->vmcs02_vmcs12 = ~0ull; /* rebuilt in full next time */
	n->guest_mode = false;
	v->cur = n->level;
	vmcs_load(v, n->vmcs01_phys);
}

int nested_launch_next(struct vcpu *v)
{
	if (v->cur <= 1)
		return 0;
	struct nested *n = v->lv[v->cur - 1];
	if (n->vmcs02_launched)
		return 0;
	/* Optimistic: an entry failure (reason bit 31) clears it again. */
	n->vmcs02_launched = true;
	return 1;
}

void nested_deliver_nmis(struct vcpu *v)
{
	struct nested *n = v->lv[v->cur - 1];
	deliver_nmis(&n->nmi_pending02, &n->proc02, false);
	/* Keep L1's own NMI-window request in VMCS02. */
	if ((V12(n->vmcs12, PROC_BASED_CTLS) & PROC_NMI_WINDOW) && !(n->proc02 & PROC_NMI_WINDOW)) {
		n->proc02 |= PROC_NMI_WINDOW;
		vmwrite(VMCS_PROC_BASED_CTLS, n->proc02);
	}
}

int nested_entry_refused(struct vcpu *v, uint64_t error)
{
	struct nested *n = v->lv[v->cur - 1];
	/* Nestor's checks passed VMCS12 but the CPU refused the VMCS02 built
	 * from it: tell L1 its controls are invalid, and say so here. */
	pr_warn("the CPU refused the VMCS02 of level %u (error %llu) built from a VMCS12 Nestor accepted\n",
		v->cur, (unsigned long long)error);
	pr_warn("VMCS02: pin %llx proc %llx proc2 %llx exit %llx entry %llx eptp %llx\n",
		(unsigned long long)vmread(VMCS_PIN_BASED_CTLS), (unsigned long long)vmread(VMCS_PROC_BASED_CTLS),
		(unsigned long long)vmread(VMCS_PROC_BASED_CTLS2), (unsigned long long)vmread(VMCS_VMEXIT_CTLS),
		(unsigned long long)vmread(VMCS_VMENTRY_CTLS), (unsigned long long)vmread(VMCS_EPT_POINTER));
	pr_warn("VMCS02: entry info %llx errcode %llx len %llu cr3 targets %llu vpid %llu msr bitmap %llx\n",
		(unsigned long long)vmread(VMCS_VMENTRY_INTR_INFO), (unsigned long long)vmread(VMCS_VMENTRY_EXCEPTION_ERRCODE),
		(unsigned long long)vmread(VMCS_VMENTRY_INSTR_LEN), (unsigned long long)vmread(VMCS_CR3_TARGET_COUNT),
		(unsigned long long)vmread(VMCS_VPID), (unsigned long long)vmread(VMCS_MSR_BITMAP));
	/* Whatever the CPU's launch state of VMCS02 now, make it clear. */
	nested_reset_vmcs02(v, n);
	vmx_fail(v, n, VMXERR_ENTRY_INVALID_CONTROLS);
	return 0;
}

void nested_nmi_now(struct vcpu *v)
{
	/* As if it came while L2 ran: an NMI exit to L1 when L1 takes them
	 * (SDM 25.2), else L2's at its next instruction boundary. */
	struct nested *n = v->lv[v->cur - 1];
	if (V12(n->vmcs12, PIN_BASED_CTLS) & PIN_NMI_EXITING) {
		struct synth_exit s = { .reason = EXIT_EXCEPTION_NMI,
					.has_intr = true,
					.intr_info = INTR_INFO_VALID | (INTR_TYPE_NMI << 8) | EXC_NMI };
		nested_reflect(v, n, &s);
	} else {
		n->nmi_pending02++;
		v->nmi02_held = true;
	}
}

void nested_nmi_in_root(struct vcpu *v)
{
	/* While Nestor handled an exit of a level above 1: which level gets it
	 * is decided at the end of that exit, when the levels are in order. */
	v->nmi_to_route++;
}
