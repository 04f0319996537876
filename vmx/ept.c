/* ept.c - builds and edits the EPT of Nestor's guest (SDM Vol. 3C, 28.3). */
#include "vmx/ept.h"
#include "vmx/bios.h"
#include "boot/platform.h"
#include "lib/log.h"
#include "mm/mm.h"
#include "snap/snap.h"
#include "vmx/vmcs.h"
#include "vmx/exits.h"
#include "lib/string.h"

static void free_tables(struct vm *vm, uint64_t *t, int level);

static uint64_t *table(struct vm *vm)
{
	uint64_t *t = page_alloc();
	if (t)
		vm->ept_pages++;
	return t;
}

/* Returns the next-level table under entry e, creating it if needed. */
static uint64_t *walk(struct vm *vm, uint64_t *e)
{
	if (!(*e & EPT_RWX)) {
		uint64_t *t = table(vm);
		if (!t)
			return NULL;
		*e = virt_to_phys(t) | EPT_RWX;
	}
	return phys_to_virt(*e & EPT_ADDR_MASK);
}

static uint64_t leaf_bits(int type) { return EPT_RWX | ((uint64_t)type << EPT_MT_SHIFT); }

int ept_build(struct vm *vm)
{
	/* The root stays for the VM's life (see ept_rebuild). */
	if (!vm->ept_pml4 && !(vm->ept_pml4 = table(vm)))
		return -1;
	for (uint64_t gpa = 0; gpa < vm->ept_top; gpa += 0x200000) {
		uint64_t *pdpt = walk(vm, &vm->ept_pml4[(gpa >> 39) & 511]);
		uint64_t *pd = pdpt ? walk(vm, &pdpt[(gpa >> 30) & 511]) : NULL;
		if (!pd)
			return -1;
		uint64_t *pde = &pd[(gpa >> 21) & 511];
		int type = mtrr_type_of(&vm->mtrr, gpa, 0x200000);
		/* A 2 MiB page when the whole block has one type and none of it is
		 * Nestor's; otherwise 4 KiB pages. */
		if (type >= 0 && !rs_overlaps(&vm->hidden, gpa, gpa + 0x200000) &&
		    (vm->caps->ept_vpid & EPT_CAP_2M)) {
			*pde = gpa | leaf_bits(type) | EPT_LARGE;
			continue;
		}
		uint64_t *pt = walk(vm, pde);
		if (!pt)
			return -1;
		for (unsigned i = 0; i < 512; i++) {
			uint64_t a = gpa + ((uint64_t)i << 12);
			if (rs_overlaps(&vm->hidden, a, a + 0x1000)) {
				pt[i] = 0; /* not present: an access exits to Nestor */
				continue;
			}
			int t = mtrr_type_of(&vm->mtrr, a, 0x1000);
			pt[i] = a | leaf_bits(t < 0 ? MT_UC : t);
		}
	}
	vm->eptp = virt_to_phys(vm->ept_pml4) | EPTP_MT_WB | EPTP_WALK_4;
	/* Pages the guest moved (its APIC): after every build. */
	return apic_ept_overrides(vm) || bios_ept_overrides(vm);
}

int ept_map_identity(struct vm *vm, uint64_t gpa)
{
	uint64_t a = gpa & ~0xfffull;
	int t = mtrr_type_of(&vm->mtrr, a, 0x1000);
	return ept_set_page(vm, a, a | leaf_bits(t < 0 ? MT_UC : t));
}

/* The table under entry e at level `shift`, made if needed: a large page
 * becomes 512 pages one size smaller, a shared table of ones a private
 * copy (both translate the same afterwards). */
static uint64_t *table_under(struct vm *vm, uint64_t *e, unsigned shift)
{
	if ((*e & EPT_RWX) && !(*e & EPT_LARGE) && !ept_is_shared_ones(vm, *e))
		return phys_to_virt(*e & EPT_ADDR_MASK);
	uint64_t *t = table(vm);
	if (!t)
		return NULL;
	if (*e & EPT_LARGE) {
		uint64_t child = 1ull << (shift - 9);
		uint64_t base = *e & EPT_ADDR_MASK & ~((1ull << shift) - 1);
		for (unsigned i = 0; i < 512; i++)
			t[i] = (base + i * child) | (*e & 0x7f) | (shift - 9 > 12 ? EPT_LARGE : 0);
	} else if (*e & EPT_RWX) {
		memcpy(t, phys_to_virt(*e & EPT_ADDR_MASK), PAGE_SIZE);
	}
	*e = virt_to_phys(t) | EPT_RWX;
	return t;
}

int ept_set_page(struct vm *vm, uint64_t gpa, uint64_t entry)
{
	uint64_t *t = vm->ept_pml4;
	for (unsigned shift = 39; shift > 12; shift -= 9)
		if (!(t = table_under(vm, &t[(gpa >> shift) & 511], shift)))
			return -1;
	t[(gpa >> 12) & 511] = entry;
	return 0;
}

/* Non-existent memory above ept_top costs nothing per access: three shared
 * tables map any amount of it to the page of ones - a page table of 512
 * such pages, a page directory of 512 such tables, a PDPT of 512 such
 * directories (an EPT table may be referenced from many entries).  The
 * entries above them grant read only: writes and fetches still exit (they
 * are dropped / #UD).  Made once; never freed, never edited after. */
static int ones_tables(struct vm *vm)
{
	if (vm->ones_pdpt)
		return 0;
	uint64_t *pt = page_alloc(), *pd = page_alloc(), *pdpt = page_alloc();
	if (!pt || !pd || !pdpt)
		return -1;
	vm->ept_pages += 3;
	for (unsigned i = 0; i < 512; i++) {
		pt[i] = virt_to_phys(vm->ones_page) | EPT_R | ((uint64_t)MT_WB << EPT_MT_SHIFT);
		pd[i] = virt_to_phys(pt) | EPT_R;
		pdpt[i] = virt_to_phys(pd) | EPT_R;
	}
	vm->ones_pt = pt;
	vm->ones_pd = pd;
	vm->ones_pdpt = pdpt;
	return 0;
}

bool ept_is_shared_ones(const struct vm *vm, uint64_t entry)
{
	uint64_t a = entry & EPT_ADDR_MASK;
	return vm->ones_pdpt && (a == virt_to_phys(vm->ones_pdpt) || a == virt_to_phys(vm->ones_pd) ||
				 a == virt_to_phys(vm->ones_pt));
}

int ept_map_ones(struct vm *vm, uint64_t gpa)
{
	if (gpa >= vm->ept_top) {
		/* Above what the EPT maps, whole 512 GiB or 1 GiB blocks are
		 * non-existent (ept_top is 1 GiB aligned): point the entry at the
		 * shared tables.  Not present before, so nothing was cached. */
		if (ones_tables(vm))
			return -1;
		uint64_t ones = virt_to_phys(vm->ones_page) | EPT_R | ((uint64_t)MT_WB << EPT_MT_SHIFT);
		/* Beside a moved xAPIC, page by page. */
		if (vm->apic_gpa != vm->apic_real && vm->apic_gpa >= vm->ept_top && (vm->apic_gpa >> 39) == (gpa >> 39))
			return ept_set_page(vm, gpa, ones);
		uint64_t *l4 = &vm->ept_pml4[(gpa >> 39) & 511];
		if ((gpa >> 39) << 39 >= vm->ept_top) {
			/* The whole 512 GiB are nothing: share (again, if a private
			 * copy was made for a moment - vmx/exit_ept.c). */
			if ((*l4 & EPT_RWX) && !ept_is_shared_ones(vm, *l4))
				free_tables(vm, phys_to_virt(*l4 & EPT_ADDR_MASK), 3);
			*l4 = virt_to_phys(vm->ones_pdpt) | EPT_R;
			return 0;
		}
		/* A 512 GiB block the EPT maps in part: it has a PDPT of its
		 * own, and ept_top is 1 GiB aligned. */
		uint64_t *l3 = &((uint64_t *)phys_to_virt(*l4 & EPT_ADDR_MASK))[(gpa >> 30) & 511];
		if ((*l3 & EPT_RWX) && !ept_is_shared_ones(vm, *l3))
			free_tables(vm, phys_to_virt(*l3 & EPT_ADDR_MASK), 2);
		*l3 = virt_to_phys(vm->ones_pd) | EPT_R;
		return 0;
	}
	/* A page Nestor hides: its 4 KiB entry exists, not present (ept_build
	 * maps every 2 MiB block that holds hidden pages with a page table). */
	uint64_t *t = vm->ept_pml4;
	for (int shift = 39; shift > 12; shift -= 9) {
		uint64_t e = t[(gpa >> shift) & 511];
		if (!(e & EPT_RWX) || (e & EPT_LARGE) || ept_is_shared_ones(vm, e))
			panic("ept_map_ones: 0x%llx is not a hidden page", (unsigned long long)gpa);
		t = phys_to_virt(e & EPT_ADDR_MASK);
	}
	/* The entry was not present, and the CPU never caches a translation
	 * that is not present (SDM 28.4.1): no INVEPT needed. */
	t[(gpa >> 12) & 511] = virt_to_phys(vm->ones_page) | EPT_R | ((uint64_t)MT_WB << EPT_MT_SHIFT);
	return 0;
}

void ept_invalidate(struct vm *vm)
{
	/* Single-context when supported, else all contexts (SDM 30.3 INVEPT). */
	uint64_t type = (vm->caps->ept_vpid & EPT_CAP_INVEPT_SINGLE) ? 1 : 2;
	if (invept(type, vm->eptp) != VMX_OK)
		panic("INVEPT type %llu failed", (unsigned long long)type);
}

static void free_tables(struct vm *vm, uint64_t *t, int level)
{
	for (unsigned i = 0; level > 1 && i < 512; i++)
		if ((t[i] & EPT_RWX) && !(t[i] & EPT_LARGE) && !ept_is_shared_ones(vm, t[i]))
			free_tables(vm, phys_to_virt(t[i] & EPT_ADDR_MASK), level - 1);
	pages_free(t, 1);
	vm->ept_pages--;
}

int ept_rebuild(struct vm *vm)
{
	/* Everything below the root is made anew; the root - whose address is
	 * the EPT pointer in VMCS01 and in every VMCS that runs a level in our
	 * guest's physical memory - stays, so no VMCS needs a new pointer
	 * (writing one into the current VMCS would put the level running now,
	 * perhaps a guest's guest, under our EPT: issue 11, attack 2). */
	for (unsigned i = 0; i < 512; i++) {
		uint64_t e = vm->ept_pml4[i];
		if ((e & EPT_RWX) && !(e & EPT_LARGE) && !ept_is_shared_ones(vm, e))
			free_tables(vm, phys_to_virt(e & EPT_ADDR_MASK), 3);
		vm->ept_pml4[i] = 0;
	}
	if (ept_build(vm))
		return -1;
	ept_invalidate(vm);
	ept_watch_lost(vm);   /* the new tables watch nothing */
	snap_ept_rebuilt(vm); /* copy-on-write protection, on the new tables */
	return 0;
}
