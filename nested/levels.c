/* levels.c - the physical memory of every level, seen from L0.
 *
 * Level 1's physical memory is the machine's (the identity, minus Nestor's
 * own memory, which does not exist for it).  A level above runs under the
 * EPT its hypervisor gives it (in that hypervisor's memory), or in its
 * hypervisor's physical memory when that one uses no EPT.  Translating a
 * level's address walks those EPTs down to the machine; every translation
 * found is kept in the shadow EPT of that level (nested/sept.c), which is
 * looked at first - so a walk through n levels costs one EPT walk per level
 * only the first time.
 *
 * Where a level below the direct hypervisor hides memory, the level above
 * finds non-existent memory (reads all ones, writes dropped), exactly what
 * that Nestor would have given (docs/depth.md). */
#include "lib/string.h"
#include "mm/mm.h"
#include "snap/snap.h"
#include "boot/cpu.h"
#include "nested/checks.h"
#include "nested/internal.h"
#include "vmx/exits.h"
#include "vmx/ept.h"
#include "vmx/guest_mem.h"

/* Reads an EPT entry of the level whose EPT it is (its physical memory). */
struct walk_ctx {
	struct vcpu *v;
	unsigned owner;
};
static bool read_entry(void *p, uint64_t pa, uint64_t *entry)
{
	struct walk_ctx *w = p;
	*entry = ~0ull;
	level_read(w->v, w->owner, pa, entry, 8);
	return true;
}

/* Walks an EPT whose tables are in `owner`'s physical memory, like the CPU
 * (nested/checks.c). */
static int walk_ept(struct vcpu *v, unsigned owner, uint64_t eptp, uint64_t gpa, struct ept_leaf *out)
{
	struct walk_ctx w = { v, owner };
	struct check_env e = { nested_caps(), maxphyaddr };
	return ept12_walk(read_entry, &w, eptp, gpa, &e, out);
}

/* Level 1: the machine, minus what Nestor hides and above what EPT01 maps;
 * linear on the largest aligned block that avoids both. */
static int l1_xlate(struct vm *vm, uint64_t gpa, struct xlate *x)
{
	uint64_t page = gpa & ~0xfffull;
	if (gpa_absent(vm, gpa))
		return XL_ABSENT;
	x->addr = gpa;
	x->rights = 7;
	x->mtype = MT_WB;
	x->shift = 12;
	if (page == vm->apic_gpa && (vm->apic_gpa != vm->apic_real || vm->apic_trap)) {
		/* The guest's xAPIC page is the real xAPIC (vmx/apic.c), its
		 * writes trapped with several CPUs (vmx/exit_apic.c). */
		x->addr = vm->apic_real | (gpa & 0xfff);
		x->rights = apic_page_rights(vm);
		x->mtype = MT_UC;
		return XL_OK;
	}
	if (snap_cow_active(vm)) {
		/* Copy-on-write snapshots protect pages one by one: page-sized
		 * translations, without write where the EPT has none yet. */
		if (!snap_page_writable(vm, gpa))
			x->rights = EPT_R | EPT_X;
		return XL_OK;
	}
	for (unsigned s = 30; s > 12; s -= 9) {
		uint64_t b = gpa & ~((1ull << s) - 1);
		if (b + (1ull << s) <= vm->ept_top && !rs_overlaps(&vm->hidden, b, b + (1ull << s)) &&
		    !((vm->apic_gpa != vm->apic_real || vm->apic_trap) &&
		      ((vm->apic_gpa ^ b) >> s == 0 || (vm->apic_real ^ b) >> s == 0))) {
			x->shift = s;
			break;
		}
	}
	return XL_OK;
}

/* EPT accessed and dirty flags (SDM 28.3.5), when the EPT pointer enables
 * them: a translation used sets the accessed flag of every entry on its
 * way, a write the dirty flag of the leaf - in the EPT's owner's memory,
 * as the CPU would.  A page whose leaf is not dirty is shadowed without
 * write permission, so that the first write (the CPU's own page-walk
 * accesses count as writes then, and the shadow EPT's pointer enables the
 * flags too) comes back here.
 *
 * Page-modification logging (SDM 29.3.6), when VMCS12 enables it: before
 * setting a flag, a PML index outside 0-511 is a log-full VM exit instead
 * (no flag set, the access not done); a dirty flag set writes the page's
 * guest-physical address into the log at the index, which then counts
 * down.  (Bochs 2.7 makes the log-full exit at any EPT translation, even
 * one that sets no flag, and logs the address with its offset: the suites
 * and the fuzzer stay where the two agree, docs/nested.md.)
 * Returns -1 for a log-full event, else the rights to shadow. */
static int ept_ad_update(struct vcpu *v, struct nested *n, uint64_t gpa, struct ept_leaf *l, unsigned access)
{
	unsigned owner = n->level; /* the hypervisor whose EPT and log these are */
	bool write = access & EPT_W;
	bool pml = v12_proc2(n->vmcs12) & PROC2_PML;
	bool dirtied = false;
	for (unsigned i = 0; i < l->n; i++) {
		bool leaf = i + 1 == l->n;
		uint64_t want = l->entry[i] | EPT_ACCESSED | (leaf && write ? EPT_DIRTY : 0);
		if (want == l->entry[i])
			continue;
		if (pml && V12(n->vmcs12, GUEST_PML_INDEX) > 511)
			return -1;
		level_write(v, owner, l->entry_pa[i], &want, 8);
		dirtied = leaf && !(l->entry[i] & EPT_DIRTY) && (want & EPT_DIRTY);
		l->entry[i] = want;
	}
	if (pml && dirtied) {
		uint16_t index = (uint16_t)V12(n->vmcs12, GUEST_PML_INDEX);
		uint64_t page = gpa & ~0xfffull;
		level_write(v, owner, V12(n->vmcs12, PML_ADDR) + 8ull * index, &page, 8);
		V12(n->vmcs12, GUEST_PML_INDEX) = (uint16_t)(index - 1);
	}
	return (l->entry[l->n - 1] & EPT_DIRTY) ? (int)l->rights : (int)(l->rights & ~EPT_W);
}

int nested_xlate(struct vcpu *v, unsigned level, uint64_t gpa, unsigned access, struct xlate *x)
{
	if (level <= 1) {
		int r = l1_xlate(v->vm, gpa, x);
		/* A write to a page a copy-on-write snapshot protects: ours. */
		return r == XL_OK && (access & ~x->rights) ? XL_SNAP : r;
	}
	struct nested *n = v->lv[level - 1];
	if (!v12_uses_ept(n))
		return nested_xlate(v, level - 1, gpa, access, x);
	if (sept_lookup(v, n, gpa, access, x))
		return XL_OK;
	struct ept_leaf l;
	int r = walk_ept(v, level - 1, V12(n->vmcs12, EPT_POINTER), gpa, &l);
	if (r != 0 || (access & ~l.rights)) {
		x->misconfig = r == 2;
		x->top_rights = r == 2 ? 0 : l.rights;
		x->suppress_ve = !l.n || (l.entry[l.n - 1] >> 63);
		x->apic = false;
		/* The xAPIC page, which a Nestor of several CPUs maps read-only
		 * for its guest to see its INITs (vmx/exit_apic.c). */
		struct xlate b;
		if (r == 0 && v->vm->apic_trap && nested_xlate(v, level - 1, l.addr, 0, &b) == XL_OK &&
		    (b.addr & ~0xfffull) == v->vm->apic_real) {
			x->addr = b.addr;
			x->apic = true;
		}
		return XL_TOP;
	}
	struct xlate below;
	int rb = nested_xlate(v, level - 1, l.addr, access, &below);
	if (rb == XL_SNAP || (rb == XL_TOP && below.apic)) {
		/* A write to a page a copy-on-write snapshot protects, or one a
		 * level below the running one's hypervisor refuses at the
		 * xAPIC: that level's policy is ours, done here (it gave us
		 * its guest's VMX, docs/depth.md). */
		x->addr = below.addr;
		return XL_SNAP;
	}
	if (rb != XL_OK)
		return XL_ABSENT;
	if (V12(n->vmcs12, EPT_POINTER) & EPTP_AD) {
		int rights = ept_ad_update(v, n, gpa, &l, access);
		if (rights < 0)
			return XL_PML_FULL;
		l.rights = (unsigned)rights;
	}
	x->addr = below.addr;
	x->rights = l.rights & below.rights;
	x->mtype = l.mtype;
	x->shift = l.shift < below.shift ? l.shift : below.shift;
	sept_install(v, n, gpa, x);
	return XL_OK;
}

int nested_translate(struct vcpu *v, uint64_t gpa, unsigned access, uint64_t *machine, struct ept_refusal *r)
{
	if (v->cur <= 1) {
		*machine = gpa; /* gpa_read/gpa_write deal with Nestor's memory */
		return 0;
	}
	struct xlate x;
	switch (nested_xlate(v, v->cur, gpa, access, &x)) {
	case XL_SNAP: /* gpa_write saves the page first */
	case XL_OK:
		*machine = x.addr;
		return 0;
	case XL_PML_FULL:
		/* Its log is full: a log-full exit to it, not the access. */
		if (r)
			*r = (struct ept_refusal){ .pml_full = true };
		return -1;
	case XL_TOP:
		/* The running level's own hypervisor refuses (its EPT). */
		if (v12_uses_ept(v->lv[v->cur - 1])) {
			if (r) {
				r->rights = x.top_rights;
				r->misconfig = x.misconfig;
				r->pml_full = false;
			}
			return -1;
		}
		/* refused further down: memory that does not exist */
		__attribute__((fallthrough));
	default:
		/* Nestor's page of ones: reads find ones, writes are dropped. */
		*machine = virt_to_phys(v->vm->ones_page) | (gpa & 0xfff);
		return 0;
	}
}

bool nested_walk_writes(struct vcpu *v)
{
	if (v->cur <= 1)
		return false;
	const struct nested *n = v->lv[v->cur - 1];
	return v12_uses_ept(n) && (V12(n->vmcs12, EPT_POINTER) & EPTP_AD);
}

int nested_to_machine(struct vcpu *v, uint64_t gpa, unsigned access, uint64_t *machine)
{
	return nested_translate(v, gpa, access, machine, NULL);
}

void nested_ept_fault(struct vcpu *v, uint64_t gpa, uint64_t gla, uint64_t qual, const struct ept_refusal *r)
{
	struct synth_exit s = { .reason = EXIT_EPT_VIOLATION, .qualification = qual, .guest_physical = gpa,
				.guest_linear = gla, .has_linear = (qual >> 7) & 1 };
	if (r->misconfig)
		s = (struct synth_exit){ .reason = EXIT_EPT_MISCONFIG, .guest_physical = gpa };
	if (r->pml_full)
		s = (struct synth_exit){ .reason = EXIT_PML_FULL };
	nested_reflect(v, v->lv[v->cur - 1], &s);
}

static bool level_copy(struct vcpu *v, unsigned level, uint64_t gpa, uint8_t *buf, size_t len, bool write)
{
	if (level <= 1)
		return write ? gpa_write(v->vm, gpa, buf, len) : gpa_read(v->vm, gpa, buf, len);
	while (len) {
		size_t n = PAGE_SIZE - (gpa & (PAGE_SIZE - 1));
		if (n > len)
			n = len;
		struct xlate x;
		int r = nested_xlate(v, level, gpa, write ? 2 : 1, &x);
		if (r == XL_OK || r == XL_SNAP) /* XL_SNAP: gpa_write saves the page first */
			write ? gpa_write(v->vm, x.addr, buf, n) : gpa_read(v->vm, x.addr, buf, n);
		else if (!write)
			memset(buf, 0xff, n); /* not there for this level */
		buf += n, gpa += n, len -= n;
	}
	return true;
}

bool level_read(struct vcpu *v, unsigned level, uint64_t gpa, void *buf, size_t len)
{
	return level_copy(v, level, gpa, buf, len, false);
}

bool level_write(struct vcpu *v, unsigned level, uint64_t gpa, const void *buf, size_t len)
{
	return level_copy(v, level, gpa, (uint8_t *)buf, len, true);
}
