/* sept.c - shadow EPT: the EPT that really runs L2, EPT02, is the
 * composition of L1's EPT12 (L2-physical -> L1-physical, in L1's memory)
 * with L0's EPT01 (L1-physical -> machine, the identity minus Nestor).
 *
 * It starts empty and is filled on demand: on an EPT violation of L2, L0
 * walks EPT12 like the CPU would.  If EPT12 maps the address with the
 * access's rights, the 4 KiB page is entered in EPT02 (rights of all EPT12
 * levels intersected with EPT01's, EPT12's memory type) and L2 resumes; if
 * not, the violation (or misconfiguration) is reflected to L1 with the
 * qualification the CPU would have given it.  INVEPT from L1 drops the
 * shadows; since the CPU caches EPT translations the same way, L1 cannot
 * tell the difference.  Up to SEPT_SLOTS EPT12s are shadowed at once. */
#include "boot/cpu.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "mm/mm.h"
#include "nested/internal.h"
#include "vmx/ept.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"

#define SEPT_MAX_PAGES 1024 /* per shadow; beyond that it is rebuilt */

static void free_tree(struct shadow_ept *s, uint64_t *t, int level)
{
	for (unsigned i = 0; level > 1 && i < 512; i++)
		if (t[i] & EPT_RWX)
			free_tree(s, phys_to_virt(t[i] & EPT_ADDR_MASK), level - 1);
	pages_free(t, 1);
	s->pages--;
}

static void clear_shadow(struct shadow_ept *s)
{
	/* Keep the root (its address is in VMCS02); drop everything below. */
	for (unsigned i = 0; i < 512; i++) {
		if (s->root[i] & EPT_RWX)
			free_tree(s, phys_to_virt(s->root[i] & EPT_ADDR_MASK), 3);
		s->root[i] = 0;
	}
}

static void hw_invept(struct vcpu *v, struct shadow_ept *s)
{
	uint64_t type = (v->vm->caps->ept_vpid & EPT_CAP_INVEPT_SINGLE) ? 1 : 2;
	invept(type, s->eptp02);
}

uint64_t sept_eptp02(struct vcpu *v, uint64_t eptp12)
{
	struct nested *n = &v->nested;
	uint64_t key = eptp12 & ~0xfffull;
	struct shadow_ept *victim = &n->sept[0];
	n->sept_clock++;
	for (int i = 0; i < SEPT_SLOTS; i++) {
		struct shadow_ept *s = &n->sept[i];
		if (s->root && s->eptp12 == key) {
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
		victim->eptp02 = virt_to_phys(victim->root) | EPTP_MT_WB | EPTP_WALK_4;
	} else {
		clear_shadow(victim);
		hw_invept(v, victim);
	}
	victim->eptp12 = key;
	victim->last_use = n->sept_clock;
	n->cur_sept = victim;
	return victim->eptp02;
}

void sept_invalidate(struct vcpu *v, uint64_t eptp12)
{
	struct nested *n = &v->nested;
	for (int i = 0; i < SEPT_SLOTS; i++) {
		struct shadow_ept *s = &n->sept[i];
		if (!s->root || (eptp12 && s->eptp12 != (eptp12 & ~0xfffull)))
			continue;
		clear_shadow(s);
		hw_invept(v, s);
	}
}

/* Walks EPT12 for an L2-physical address like the CPU (SDM 28.3.2).
 * Returns 0 with the L1-physical address, rights and memory type of the
 * leaf; 1 when not present or the access is not allowed (EPT violation,
 * *rights = what EPT12 grants); 2 on a misconfiguration. */
static int walk_ept12(struct vcpu *v, uint64_t eptp12, uint64_t gpa2, uint64_t *gpa1, unsigned *rights,
		      unsigned *mtype)
{
	const struct nested_caps *c = nested_caps();
	uint64_t rsvd_addr = ~((1ull << maxphyaddr) - 1) & 0x000ffffffffff000ull;
	uint64_t table = eptp12 & EPT_ADDR_MASK;
	unsigned r = 7;
	for (int level = 4; level >= 1; level--) {
		int shift = 12 + 9 * (level - 1);
		uint64_t e = ~0ull;
		gpa_read(v->vm, table + ((gpa2 >> shift) & 511) * 8, &e, 8);
		unsigned perm = e & 7;
		if (!perm) {
			*rights = 0;
			return 1;
		}
		/* Write without read; execute-only without support; reserved
		 * address bits: EPT misconfiguration (SDM 28.3.3.1). */
		if ((perm & 3) == 2 || (perm == 4 && !(c->ept_vpid & EPT_CAP_EXEC_ONLY)) || (e & rsvd_addr))
			return 2;
		r &= perm;
		bool large = (e & EPT_LARGE) && (level == 2 || (level == 3 && (c->ept_vpid & EPT_CAP_1G)));
		if (level == 4 && (e & (EPT_LARGE | 0x38)))
			return 2; /* bits 7:3 reserved in a PML4 entry */
		if (level == 1 || large) {
			unsigned mt = (e >> 3) & 7;
			if (mt == 2 || mt == 3 || mt == 7)
				return 2;
			uint64_t page = 1ull << shift;
			if (large && (e & (page - 1) & ~0xfffull & ~(uint64_t)0x7f))
				return 2; /* reserved bits below a large page's address */
			*gpa1 = (e & EPT_ADDR_MASK & ~(page - 1)) | (gpa2 & (page - 1));
			*rights = r;
			*mtype = mt | ((e & EPT_IGNORE_PAT) ? 8 : 0);
			return 0;
		}
		table = e & EPT_ADDR_MASK;
	}
	return 2;
}

int nested_translate(struct vcpu *v, uint64_t gpa2, unsigned access, uint64_t *gpa1)
{
	unsigned rights, mtype;
	int r = walk_ept12(v, V12(v->nested.vmcs12, EPT_POINTER), gpa2, gpa1, &rights, &mtype);
	return r == 0 && !(access & ~rights) ? 0 : -1;
}

static uint64_t *sept_leaf(struct vcpu *v, struct shadow_ept *s, uint64_t gpa2)
{
	uint64_t *t = s->root;
	for (int shift = 39; shift > 12; shift -= 9) {
		uint64_t *e = &t[(gpa2 >> shift) & 511];
		if (!(*e & EPT_RWX)) {
			if (s->pages >= SEPT_MAX_PAGES) {
				/* Too big: start over (like a TLB flush). */
				clear_shadow(s);
				hw_invept(v, s);
				return sept_leaf(v, s, gpa2);
			}
			uint64_t *n = page_alloc();
			if (!n)
				vm_end_run(v, true, "out of pool memory for a shadow EPT (raise mem=)");
			s->pages++;
			*e = virt_to_phys(n) | EPT_RWX;
		}
		t = phys_to_virt(*e & EPT_ADDR_MASK);
	}
	return &t[(gpa2 >> 12) & 511];
}

bool sept_violation(struct vcpu *v)
{
	struct nested *n = &v->nested;
	struct vmcs12 *c = n->vmcs12;
	uint64_t q = vmread(VMCS_EXIT_QUALIFICATION);
	uint64_t gpa2 = vmread(VMCS_GUEST_PHYSICAL_ADDR);
	uint64_t gpa1;
	unsigned rights, mtype;
	int r = walk_ept12(v, V12(c, EPT_POINTER), gpa2, &gpa1, &rights, &mtype);
	unsigned access = q & 7; /* read, write, fetch */
	if (r == 2) {
		struct synth_exit s = { EXIT_EPT_MISCONFIG, 0, gpa2 };
		nested_reflect(v, &s);
		return false;
	}
	if (r == 1 || (access & ~rights)) {
		/* L1's own violation: bits 2:0 the access, 5:3 what EPT12 allows,
		 * the linear-address bits and NMI unblocking as the CPU gave them. */
		struct synth_exit s = { EXIT_EPT_VIOLATION, (q & (7 | 0x180 | 0x1000)) | ((uint64_t)rights << 3), gpa2 };
		nested_reflect(v, &s);
		return false;
	}
	/* Allowed by EPT12: map the page in EPT02.  L1-physical memory that is
	 * Nestor's own reads as ones, like for L1 itself. */
	uint64_t page1 = gpa1 & ~0xfffull;
	if (page1 >= v->vm->ept_top || rs_overlaps(&v->vm->hidden, page1, page1 + PAGE_SIZE)) {
		/* L1 gives L2 memory L1 does not have (Nestor's): non-existent
		 * memory, as for L1 itself. */
		if (access & 4) {
			inject_ud(v);
			return true;
		}
		if (access & 2) {
			ept_drop_write(v);
			return true;
		}
	}
	uint64_t *pte = sept_leaf(v, n->cur_sept, gpa2);
	if (page1 >= v->vm->ept_top || rs_overlaps(&v->vm->hidden, page1, page1 + PAGE_SIZE))
		*pte = virt_to_phys(v->vm->ones_page) | EPT_R | ((uint64_t)MT_WB << EPT_MT_SHIFT);
	else
		*pte = page1 | rights | ((uint64_t)(mtype & 7) << EPT_MT_SHIFT) | ((mtype & 8) ? EPT_IGNORE_PAT : 0);
	/* The event being delivered when the violation hit is delivered again. */
	reinject_idt_vectoring(v);
	return true;
}
