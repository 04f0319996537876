/* sept.c - shadow EPT: the EPT that really runs L2, EPT02, is the
 * composition of L1's EPT12 (L2-physical -> L1-physical, in L1's memory)
 * with the EPT that runs L1 (EPT01, the identity minus Nestor; or, for a
 * level above 1, that level's own shadow EPT).
 *
 * It starts empty and is filled on demand: on an EPT violation of L2, L0
 * walks EPT12 like the CPU would (nested/levels.c), then L1's address down
 * to the machine.  If EPT12 maps the address with the access's rights, the
 * page enters EPT02 - as large as every level's mapping allows - with the
 * rights of all levels intersected and EPT12's memory type, and L2
 * resumes; if not, the violation (or misconfiguration) is reflected to L1
 * with the qualification the CPU would have given it.  Memory a level
 * below L1 hides does not exist for L2.  INVEPT from L1 drops the shadows;
 * since the CPU caches EPT translations the same way, L1 cannot tell the
 * difference.  Up to SEPT_SLOTS EPT12s are shadowed at once per level. */
#include "boot/cpu.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "mm/mm.h"
#include "snap/snap.h"
#include "nested/internal.h"
#include "vmx/ept.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"

#define SEPT_MAX_PAGES 1024 /* per shadow; beyond that it is rebuilt */

/* What the shadow EPTs of all levels together may hold (the guests choose
 * how much they make us build): a quarter of the pool, at least 64 pages.
 * Beyond it every shadow is dropped and rebuilt on demand, like a TLB
 * flush - costly for the guest, harmless for us. */
static uint64_t quota(void)
{
	uint64_t used, peak, total;
	pool_usage(&used, &peak, &total);
	return total / 4 > 64 ? total / 4 : 64;
}

static void free_tree(struct vcpu *v, struct shadow_ept *s, uint64_t *t, int level)
{
	for (unsigned i = 0; level > 1 && i < 512; i++)
		if ((t[i] & EPT_RWX) && !(t[i] & EPT_LARGE))
			free_tree(v, s, phys_to_virt(t[i] & EPT_ADDR_MASK), level - 1);
	pages_free(t, 1);
	s->pages--;
	v->sept_pages--;
}

/* A page for a shadow's tables, within its own bound and the quota. */
static uint64_t *shadow_page(struct vcpu *v, struct shadow_ept *s)
{
	if (s->pages >= SEPT_MAX_PAGES || v->sept_pages >= quota())
		return NULL;
	uint64_t *t = page_alloc();
	if (t) {
		s->pages++;
		v->sept_pages++;
	}
	return t;
}

static void hw_invept(struct vcpu *v, struct shadow_ept *s)
{
	uint64_t type = (v->vm->caps->ept_vpid & EPT_CAP_INVEPT_SINGLE) ? 1 : 2;
	invept(type, s->eptp02);
}

static void clear_one(struct vcpu *v, struct shadow_ept *s)
{
	/* Keep the root (its address is in a VMCS02); drop everything below. */
	v->sept_clears++;
	for (unsigned i = 0; i < 512; i++) {
		if ((s->root[i] & EPT_RWX) && !(s->root[i] & EPT_LARGE))
			free_tree(v, s, phys_to_virt(s->root[i] & EPT_ADDR_MASK), 3);
		s->root[i] = 0;
	}
	hw_invept(v, s);
}

/* The shadows of the levels above `level` are built on its shadows: when
 * one of these changes, they go too. */
static void clear_above(struct vcpu *v, unsigned level)
{
	for (unsigned j = level + 1; j <= v->nlevels; j++)
		for (int i = 0; i < SEPT_SLOTS; i++)
			if (v->lv[j]->sept[i].root)
				clear_one(v, &v->lv[j]->sept[i]);
}

static void clear_shadow(struct vcpu *v, struct nested *n, struct shadow_ept *s)
{
	clear_one(v, s);
	clear_above(v, n->level);
}

/* A shadow EPT stands for one EPT12 root, with or without its accessed
 * and dirty flags (which change the rights it shadows: nested/levels.c). */
static uint64_t sept_key(uint64_t eptp12) { return eptp12 & (~0xfffull | EPTP_AD); }

uint64_t sept_eptp02(struct vcpu *v, struct nested *n, uint64_t eptp12, uint64_t eptp01)
{
	uint64_t key = sept_key(eptp12);
	struct shadow_ept *victim = &n->sept[0];
	n->sept_clock++;
	for (int i = 0; i < SEPT_SLOTS; i++) {
		struct shadow_ept *s = &n->sept[i];
		if (s->root && s->eptp12 == key && s->eptp01 == eptp01) {
			s->last_use = n->sept_clock;
			n->cur_sept = s;
			return s->eptp02;
		}
		if (!s->root || s->last_use < victim->last_use)
			victim = s;
	}
	/* A new EPT12: reuse the least recently used slot. */
	if (!victim->root) {
		victim->root = page_alloc();
		if (!victim->root)
			vm_end_run(v, true, "out of pool memory for a shadow EPT (raise mem=)");
		victim->pages = 1;
		v->sept_pages++;
		victim->eptp02 = virt_to_phys(victim->root) | EPTP_MT_WB | EPTP_WALK_4;
	} else {
		clear_shadow(v, n, victim);
	}
	victim->eptp12 = key;
	victim->eptp02 = (victim->eptp02 & ~EPTP_AD) | (eptp12 & EPTP_AD);
	victim->eptp01 = eptp01;
	victim->last_use = n->sept_clock;
	n->cur_sept = victim;
	return victim->eptp02;
}

void sept_invalidate(struct vcpu *v, struct nested *n, uint64_t eptp12)
{
	for (int i = 0; i < SEPT_SLOTS; i++) {
		struct shadow_ept *s = &n->sept[i];
		if (s->root && (!eptp12 || (s->eptp12 & ~0xfffull) == (eptp12 & ~0xfffull)))
			clear_one(v, s);
	}
	clear_above(v, n->level);
}

/* The shadow that runs n's L2 now, if n's current VMCS12 is what it shadows. */
static struct shadow_ept *active(const struct nested *n)
{
	struct shadow_ept *s = n->cur_sept;
	if (!s || !s->root || s->eptp12 != sept_key(V12(n->vmcs12, EPT_POINTER)))
		return NULL;
	return s;
}

bool sept_lookup(struct vcpu *v, struct nested *n, uint64_t gpa, unsigned access, struct xlate *x)
{
	struct shadow_ept *s = active(n);
	if (!s)
		return false;
	uint64_t *t = s->root;
	for (unsigned shift = 39; shift >= 12; shift -= 9) {
		uint64_t e = t[(gpa >> shift) & 511];
		if (!(e & EPT_RWX))
			return false;
		if (shift == 12 || (e & EPT_LARGE)) {
			uint64_t page = 1ull << shift, addr = e & EPT_ADDR_MASK & ~(page - 1);
			if ((access & ~e & 7) || addr == virt_to_phys(v->vm->ones_page))
				return false;
			x->addr = addr | (gpa & (page - 1));
			x->rights = e & 7;
			x->mtype = ((e >> EPT_MT_SHIFT) & 7) | ((e & EPT_IGNORE_PAT) ? 8 : 0);
			x->shift = shift;
			return true;
		}
		t = phys_to_virt(e & EPT_ADDR_MASK);
	}
	return false;
}

/* The entry for gpa at the level of a page of 2^*shift bytes, tables made
 * as needed; *shift is lowered where a table already covers the range. */
static uint64_t *slot_for(struct vcpu *v, struct nested *n, struct shadow_ept *s, uint64_t gpa, unsigned *shift)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		uint64_t *t = s->root;
		for (unsigned sh = 39;; sh -= 9) {
			uint64_t *e = &t[(gpa >> sh) & 511];
			if (sh == 12 || (sh == *shift && !((*e & EPT_RWX) && !(*e & EPT_LARGE)))) {
				*shift = sh;
				return e;
			}
			if (!(*e & EPT_RWX) || (*e & EPT_LARGE)) {
				/* No table here yet (a large leaf there is only a cached
				 * translation: it is re-made page by page on demand). */
				uint64_t *nt = shadow_page(v, s);
				if (!nt)
					break; /* too big, or the pool is short: start over */
				*e = virt_to_phys(nt) | EPT_RWX;
			}
			t = phys_to_virt(*e & EPT_ADDR_MASK);
		}
		/* Start over like a TLB flush: this level and those above; the
		 * second time, every shadow of every level. */
		if (attempt == 0)
			clear_shadow(v, n, s);
		else
			sept_invalidate(v, v->lv[1], 0);
	}
	vm_end_run(v, true, "out of pool memory for a shadow EPT (raise mem=)");
}

static unsigned page_shift_supported(const struct vcpu *v, unsigned shift)
{
	uint64_t cap = v->vm->caps->ept_vpid;
	if (shift >= 30 && (cap & EPT_CAP_1G))
		return 30;
	if (shift >= 21 && (cap & EPT_CAP_2M))
		return 21;
	return 12;
}

void sept_install(struct vcpu *v, struct nested *n, uint64_t gpa, const struct xlate *x)
{
	struct shadow_ept *s = active(n);
	if (!s)
		return;
	unsigned shift = page_shift_supported(v, x->shift);
	uint64_t *e = slot_for(v, n, s, gpa, &shift);
	uint64_t page = 1ull << shift;
	*e = (x->addr & EPT_ADDR_MASK & ~(page - 1)) | x->rights | ((uint64_t)(x->mtype & 7) << EPT_MT_SHIFT) |
	     ((x->mtype & 8) ? EPT_IGNORE_PAT : 0) | (shift > 12 ? EPT_LARGE : 0);
}

/* The nested level that owns the EPT the running level runs under: the
 * nearest hypervisor below it with an EPT of its own (NULL: EPT01). */
static struct nested *ept_owner(struct vcpu *v, unsigned level)
{
	for (unsigned j = level - 1; j >= 1; j--)
		if (v12_uses_ept(v->lv[j]))
			return v->lv[j];
	return NULL;
}

int sept_map_page(struct vcpu *v, struct nested *n, uint64_t gpa, uint64_t entry)
{
	struct shadow_ept *s = active(n);
	if (!s)
		return 0;
	unsigned shift = 12;
	uint64_t *e = slot_for(v, n, s, gpa, &shift);
	bool was = *e & EPT_RWX;
	*e = entry;
	/* The CPU may hold the old translation. */
	if (was)
		hw_invept(v, s);
	return 0;
}

int sept_map_ones(struct vcpu *v, struct nested *n, uint64_t gpa)
{
	return sept_map_page(v, n, gpa, virt_to_phys(v->vm->ones_page) | EPT_R | ((uint64_t)MT_WB << EPT_MT_SHIFT));
}

/* SDM 25.5.7: with "EPT-violation #VE" in VMCS12, a violation of L1's
 * EPT12 whose refusing entry has suppress-#VE (bit 63) clear, while L2 is
 * in protected mode and not delivering an event, and the word at offset 4
 * of L1's #VE information area is 0, is no VM exit: the CPU writes that
 * area (exit reason 48, the word all ones, the qualification, guest-linear
 * and guest-physical addresses, the EPTP index) and raises #VE (vector 20,
 * a fault) in L2 - through L1's exception bitmap.  VMCS02 never has the
 * control: its EPT is our shadow.  True when done. */
static bool ept_violation_to_ve(struct vcpu *v, struct nested *n, uint64_t qual, uint64_t gpa, const struct xlate *x)
{
	const struct vmcs12 *c = n->vmcs12;
	if (!(v12_proc2(c) & PROC2_EPT_VE) || x->misconfig || x->suppress_ve)
		return false;
	if (!(vmread(VMCS_GUEST_CR0) & CR0_PE) || (vmread(VMCS_IDT_VECTORING_INFO) & INTR_INFO_VALID))
		return false;
	uint64_t area = V12(c, VE_INFO_ADDR);
	uint32_t busy = ~0u;
	level_read(v, n->level, area + 4, &busy, 4);
	if (busy)
		return false;
	struct __attribute__((packed)) {
		uint32_t reason, busy;
		uint64_t qualification, linear, physical;
		uint16_t eptp_index;
	} info = { EXIT_EPT_VIOLATION, ~0u, qual, vmread(VMCS_GUEST_LINEAR_ADDR), gpa, (uint16_t)V12(c, EPTP_INDEX) };
	level_write(v, n->level, area, &info, sizeof(info));
	/* L2 resumes at the faulting instruction: an IRET that unblocked NMIs
	 * before it faulted has not completed (SDM 27.2.3). */
	ept_exit_restore_nmi_blocking(qual);
	inject_exception(v, EXC_VE);
	return true;
}

void sept_violation(struct vcpu *v)
{
	unsigned m = v->cur;
	struct nested *n = v->lv[m - 1];
	uint64_t q = vmread(VMCS_EXIT_QUALIFICATION);
	uint64_t gpa = vmread(VMCS_GUEST_PHYSICAL_ADDR);
	unsigned access = q & 7; /* read, write, fetch */
	struct xlate x;
	int r = nested_xlate(v, m, gpa, access, &x);
	if (r == XL_PML_FULL) {
		/* L1's page-modification log is full (SDM 29.3.6): the exit says
		 * only whether an IRET unblocked NMIs. */
		struct synth_exit s = { .reason = EXIT_PML_FULL, .qualification = q & 0x1000 };
		nested_reflect(v, n, &s);
		return;
	}
	if (r == XL_TOP && x.apic && (access & EPT_W) && n->delegated && (x.addr & 0xfff) != 0x300) {
		/* A write to the xAPIC that the running level's hypervisor - a
		 * Nestor that gave us its guest's VMX, and so are the levels
		 * below it - refuses only to watch the ICR's command word: it
		 * would do the write itself on the same APIC, and each level
		 * below in turn.  Done here at once (docs/depth.md). */
		n->stats_l0_handled++;
		ept_apic_write(v, x.addr);
		return;
	}
	if (r == XL_TOP && v12_uses_ept(n)) {
		/* L1's own violation: bits 2:0 the access, 5:3 what EPT12 allows,
		 * the linear-address bits and NMI unblocking as the CPU gave them. */
		struct synth_exit s = { .reason = EXIT_EPT_VIOLATION,
					.qualification = (q & (7 | 0x180 | 0x1000)) | ((uint64_t)x.top_rights << 3),
					.guest_physical = gpa };
		if (x.misconfig)
			s = (struct synth_exit){ .reason = EXIT_EPT_MISCONFIG, .guest_physical = gpa };
		else if (ept_violation_to_ve(v, n, s.qualification, gpa, &x)) {
			n->stats_l0_handled++;
			return;
		}
		nested_reflect(v, n, &s);
		return;
	}
	/* Not reflected: level 0 resumes L2 itself. */
	ept_exit_restore_nmi_blocking(q);
	if (r == XL_SNAP && v->vm->apic_trap && (x.addr & ~0xfffull) == v->vm->apic_real) {
		/* A write to the xAPIC: ours to do (vmx/exit_apic.c). */
		ept_apic_write(v, x.addr);
		return;
	}
	if (r == XL_SNAP) {
		/* Our own copy-on-write: save the page, let the level retry
		 * (and the event it was delivering, again). */
		snap_ept_fault(v, x.addr, EPT_W);
		reinject_idt_vectoring(v);
		return;
	}
	struct nested *owner = ept_owner(v, m);
	if (r != XL_OK) {
		/* Memory a level below L1 hides: it does not exist for L2. */
		ept_absent_access(v, gpa, q, owner);
		return;
	}
	if (!owner) {
		/* EPT01 maps all that exists: a violation there is a bug. */
		exit_ept_violation(v);
		return;
	}
	sept_install(v, owner, gpa, &x);
	/* The event being delivered when the violation hit is delivered again. */
	reinject_idt_vectoring(v);
}
