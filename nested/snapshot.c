/* snapshot.c - the virtual VMX of a guest hypervisor across a snapshot
 * (snap/, docs/snapshots.md).
 *
 * What L1 holds of VMX lives in three places: in L1's memory (its VMCS12
 * regions), in Nestor's cache of the current VMCS12 and shadow VMCS, and in
 * what Nestor derived from both (VMCS02, shadow EPTs).  A snapshot writes
 * the cache back to L1's memory first, as a VMCLEAR would, so that memory
 * holds it all, and keeps the few facts memory cannot: in VMX operation or
 * not, the VMXON region, the current VMCS.  A restore forgets everything
 * derived and reloads the cache from the restored memory, the way VMPTRLD
 * loads a VMCS. */
#include "hypercall/abi.h"
#include "lib/string.h"
#include "nested/internal.h"
#include "vmx/vmcs.h"

void nested_drop_shadows(struct vcpu *v)
{
	if (v->nlevels >= 1 && v->lv[1])
		sept_invalidate(v, v->lv[1], 0); /* and every level above */
}

int nested_snapshot_save(struct vcpu *v, struct nested_snapshot *s)
{
	struct nested *n = v->nlevels >= 1 ? v->lv[1] : NULL;
	memset(s, 0, sizeof(*s));
	s->current_ptr = ~0ull;
	if (!n)
		return NESTOR_OK;
	/* Our guest asks from its own root mode (its guest's VMCALLs go to it);
	 * a guest whose guest's VMX we emulate by delegation keeps state in the
	 * levels above that a snapshot of it does not cover. */
	if (n->guest_mode || n->delegated)
		return NESTOR_EBUSY;
	vmcs12_flush(v, n);
	s->vmxon = n->vmxon;
	s->vmxon_ptr = n->vmxon_ptr;
	s->current_ptr = n->current_ptr;
	return NESTOR_OK;
}

int nested_snapshot_restore(struct vcpu *v, const struct nested_snapshot *s)
{
	struct nested *n = v->nlevels >= 1 ? v->lv[1] : NULL;
	if (!n)
		return 0;
	/* As after a reset (delegation ended, VMCS02 cleared, shadow EPTs
	 * gone), then the state at the snapshot with its VMCS12 read again
	 * from memory. */
	if (n->delegated)
		nested_end_delegation(v, n);
	nested_forget_vmcs02(v, n);
	sept_invalidate(v, n, 0);
	n->vmxon = s->vmxon;
	n->vmxon_ptr = s->vmxon_ptr;
	n->current_ptr = s->current_ptr;
	n->vmcs02_vmcs12 = ~0ull;
	n->bound_vmcs12 = ~0ull;
	n->all_dirty = true;
	n->host_img_ptr = HOST_IMG_NONE;
	n->checks_passed = false;
	n->nmi_pending02 = 0;
	if (n->current_ptr != ~0ull) {
		level_read(v, n->level, n->current_ptr, n->vmcs12, sizeof(struct vmcs12));
		n->rare_stale = false;
		nested_cache_to_shadow(v, n, NULL);
	}
	nested_shadow_update_controls(v, n);
	return 0;
}
