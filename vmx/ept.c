/* ept.c - builds and edits the EPT of Nestor's guest (SDM Vol. 3C, 28.3). */
#include "vmx/ept.h"
#include "boot/platform.h"
#include "lib/log.h"
#include "mm/mm.h"
#include "snap/snap.h"
#include "vmx/vmcs.h"

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
	vm->ept_pml4 = table(vm);
	if (!vm->ept_pml4)
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
	return 0;
}

uint64_t *ept_pte(struct vm *vm, uint64_t gpa)
{
	uint64_t *t = vm->ept_pml4;
	for (int shift = 39; shift > 12; shift -= 9) {
		uint64_t e = t[(gpa >> shift) & 511];
		if (!(e & EPT_RWX) || (e & EPT_LARGE))
			return NULL;
		t = phys_to_virt(e & EPT_ADDR_MASK);
	}
	return &t[(gpa >> 12) & 511];
}

int ept_map_ones(struct vm *vm, uint64_t gpa)
{
	/* Beyond ept_top nothing is mapped yet: create the tables on the way. */
	uint64_t *t = vm->ept_pml4;
	for (int shift = 39; shift > 12; shift -= 9) {
		uint64_t *e = &t[(gpa >> shift) & 511];
		if (*e & EPT_LARGE)
			panic("ept_map_ones: 0x%llx is inside a large page", (unsigned long long)gpa);
		if (!(t = walk(vm, e)))
			return -1;
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
		if ((t[i] & EPT_RWX) && !(t[i] & EPT_LARGE))
			free_tables(vm, phys_to_virt(t[i] & EPT_ADDR_MASK), level - 1);
	pages_free(t, 1);
	vm->ept_pages--;
}

int ept_rebuild(struct vm *vm)
{
	free_tables(vm, vm->ept_pml4, 4);
	if (ept_build(vm))
		return -1;
	vmwrite(VMCS_EPT_POINTER, vm->eptp);
	ept_invalidate(vm);
	snap_ept_rebuilt(vm); /* copy-on-write protection, on the new tables */
	return 0;
}
