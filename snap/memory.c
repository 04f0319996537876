/* memory.c - the snapshot pool and copy-on-write through the EPT
 * (docs/snapshots.md).
 *
 * Protection is hierarchical: EPT grants a write only when every level of
 * the walk has W (SDM Vol. 3C 28.3.2), so write-protecting all guest memory
 * clears W in the few PML4 entries - taking a cow snapshot costs almost
 * nothing however big the guest.  The first write under a protected entry
 * pushes the protection one level down (the entry regains W, its 512
 * children lose it; a large page is split first), down to the 4 KiB page
 * written, which is saved and made writable.  An invariant makes the rest
 * simple: a page writable in the EPT has been saved, and marked dirty, for
 * every cow snapshot kept. */
#include "boot/platform.h"
#include "lib/log.h"
#include "lib/string.h"
#include "mm/mm.h"
#include "nested/nested.h"
#include "snap/internal.h"
#include "vmx/ept.h"
#include "vmx/vcpu.h"
#include "vmx/exits.h"
#include "vmx/vmx_defs.h"

#define EPT_VIOLATION_WRITE (1ull << 1) /* exit qualification: a write (SDM table 27-7) */

/* --- the pool ------------------------------------------------------------ */

int snap_init(struct vm *vm, uint64_t base, uint64_t size)
{
	struct snap_state *st = zalloc(sizeof(*st));
	if (!st)
		return -1;
	uint64_t npages = size / PAGE_SIZE;
	/* Bookkeeping at the start of the pool: the allocator's bitmap, then
	 * one reference count per pool page. */
	uint64_t bm_bytes = pmm_bitmap_words(npages) * 8, ref_bytes = npages * sizeof(uint16_t);
	uint64_t head = (bm_bytes + ref_bytes + PAGE_SIZE - 1) / PAGE_SIZE;
	if (head >= npages)
		return -1;
	pmm_init(&st->pmm, base, npages, phys_to_virt(base));
	pmm_reserve(&st->pmm, base, head);
	st->refs = (uint16_t *)((uint8_t *)phys_to_virt(base) + bm_bytes);
	memset(st->refs, 0, ref_bytes);
	uint64_t top = 0;
	for (unsigned i = 0; i < vm->guest_ram.n; i++)
		if (vm->guest_ram.r[i].end > top)
			top = vm->guest_ram.r[i].end;
	st->npfn = top / PAGE_SIZE;
	st->ram_pages = rs_total(&vm->guest_ram) / PAGE_SIZE;
	vm->snap = st;
	return 0;
}

void *snap_pool_page(struct snap_state *st, uint32_t idx) { return phys_to_virt(st->pmm.base + (uint64_t)idx * PAGE_SIZE); }

int snap_pool_alloc(struct snap_state *st, uint32_t *idx)
{
	uint64_t p = pmm_alloc(&st->pmm, 1, 1);
	if (!p)
		return -1;
	*idx = (uint32_t)((p - st->pmm.base) / PAGE_SIZE);
	st->refs[*idx] = 0;
	return 0;
}

/* Drops one snapshot's hold on a pool page; the last one frees it. */
void snap_pool_put(struct snap_state *st, uint32_t idx)
{
	if (--st->refs[idx] == 0 && pmm_free(&st->pmm, st->pmm.base + (uint64_t)idx * PAGE_SIZE, 1))
		panic("snapshot pool: page %u freed twice", idx);
}

void snap_usage(const struct vm *vm, uint64_t *used_pages, uint64_t *total_pages)
{
	*used_pages = vm->snap ? vm->snap->pmm.used : 0;
	*total_pages = vm->snap ? vm->snap->pmm.npages : 0;
}

bool snap_pfn_is_ram(struct vm *vm, uint64_t pfn)
{
	return pfn < vm->snap->npfn && rs_contains(&vm->guest_ram, pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
}

bool snap_cow_active(const struct vm *vm) { return vm->snap && vm->snap->ncow; }

/* --- write protection in the EPT ----------------------------------------- */

/* The shadow EPTs of the levels the guest runs were made from the EPT with
 * its old rights: they go. */
static void drop_shadows(struct vm *vm)
{
	if (vm->vcpu0)
		nested_drop_shadows(vm->vcpu0);
}

void snap_protect_all(struct vm *vm)
{
	for (unsigned i = 0; i < 512; i++)
		if ((vm->ept_pml4[i] & EPT_RWX) && !ept_is_shared_ones(vm, vm->ept_pml4[i]))
			vm->ept_pml4[i] &= ~EPT_W;
	/* Rights were taken away: cached translations must go (SDM 28.4.3.1). */
	ept_invalidate(vm);
	drop_shadows(vm);
}

static bool is_ones_leaf(struct vm *vm, uint64_t e) { return (e & EPT_ADDR_MASK) == virt_to_phys(vm->ones_page); }

static void unprotect_tree(struct vm *vm, uint64_t *t, int level)
{
	for (unsigned i = 0; i < 512; i++) {
		uint64_t e = t[i];
		if (!(e & EPT_RWX))
			continue;
		bool leaf = level == 1 || (e & EPT_LARGE);
		/* The page of ones stays read-only: writes to Nestor's memory
		 * are dropped, not written there; so do the shared tables of
		 * ones above the EPT's top, and the xAPIC while its writes are
		 * trapped (several CPUs: vmx/exit_apic.c sees the INITs). */
		if ((leaf && is_ones_leaf(vm, e)) || (!leaf && ept_is_shared_ones(vm, e)))
			continue;
		if (leaf && vm->apic_trap && (e & EPT_ADDR_MASK) == vm->apic_real)
			continue;
		t[i] = e | EPT_W;
		if (!leaf)
			unprotect_tree(vm, phys_to_virt(e & EPT_ADDR_MASK), level - 1);
	}
}

void snap_unprotect_all(struct vm *vm)
{
	/* Rights only grow: no stale translation can let anything through. */
	unprotect_tree(vm, vm->ept_pml4, 4);
	ept_watch_lost(vm); /* watched pages are writable too now */
}

/* A large page becomes a table of 512 pages one size smaller, with the same
 * translation and rights. */
static int split(struct vm *vm, uint64_t *e, unsigned shift)
{
	uint64_t *t = page_alloc();
	if (!t)
		return -1;
	vm->ept_pages++;
	uint64_t child = 1ull << (shift - 9);
	uint64_t base = *e & EPT_ADDR_MASK & ~((1ull << shift) - 1);
	uint64_t bits = *e & 0x7f; /* rights, memory type, ignore-PAT */
	for (unsigned i = 0; i < 512; i++)
		t[i] = (base + i * child) | bits | (shift - 9 > 12 ? EPT_LARGE : 0);
	*e = virt_to_phys(t) | (*e & EPT_RWX);
	return 0;
}

/* Gives the 4 KiB page at gpa write permission, pushing the protection of
 * the entries above it down to its neighbours.  -1 when gpa is not mapped
 * or the pool is short. */
static int make_writable(struct vm *vm, uint64_t gpa)
{
	uint64_t *t = vm->ept_pml4;
	bool split_done = false;
	for (unsigned shift = 39;; shift -= 9) {
		uint64_t *e = &t[(gpa >> shift) & 511];
		if (!(*e & EPT_RWX))
			return -1;
		if (shift > 12 && (*e & EPT_LARGE)) {
			if (split(vm, e, shift))
				return -1;
			split_done = true;
		}
		if (shift == 12) {
			*e |= EPT_W;
			break;
		}
		if (!(*e & EPT_W)) {
			uint64_t *c = phys_to_virt(*e & EPT_ADDR_MASK);
			for (unsigned i = 0; i < 512; i++)
				if (c[i] & EPT_RWX)
					c[i] &= ~EPT_W;
			*e |= EPT_W;
		}
		t = phys_to_virt(*e & EPT_ADDR_MASK);
	}
	/* A split keeps every translation, but the CPU may hold the large one:
	 * let it forget it, as the SDM asks after changing a page's size. */
	if (split_done)
		ept_invalidate(vm);
	return 0;
}

bool snap_page_writable(struct vm *vm, uint64_t gpa)
{
	if (!snap_cow_active(vm))
		return true;
	uint64_t *t = vm->ept_pml4;
	for (unsigned shift = 39;; shift -= 9) {
		uint64_t e = t[(gpa >> shift) & 511];
		if (!(e & EPT_RWX))
			return true; /* not mapped: nothing snapshots protect */
		if (!(e & EPT_W))
			return false;
		if (shift == 12 || (e & EPT_LARGE))
			return true;
		t = phys_to_virt(e & EPT_ADDR_MASK);
	}
}

/* --- copy on write ------------------------------------------------------- */

int snap_cow_page(struct vm *vm, uint64_t pfn)
{
	struct snap_state *st = vm->snap;
	if (snap_pfn_is_ram(vm, pfn)) {
		uint32_t copy = 0; /* pool page + 1: one copy serves every snapshot */
		for (unsigned i = 0; i < SNAP_MAX; i++) {
			struct snapshot *s = &st->s[i];
			if (!s->used || s->method != SNAP_METHOD_COW)
				continue;
			if (!s->map[pfn]) {
				if (!copy) {
					uint32_t idx;
					if (snap_pool_alloc(st, &idx))
						return -1;
					page_copy(snap_pool_page(st, idx), phys_to_virt(pfn * PAGE_SIZE));
					copy = idx + 1;
				}
				s->map[pfn] = copy;
				st->refs[copy - 1]++;
				s->held++;
				s->reserve_left--;
				st->reserved--;
			}
			s->dirty[pfn / 64] |= 1ull << (pfn % 64);
		}
	}
	return make_writable(vm, pfn * PAGE_SIZE);
}

bool snap_ept_fault(struct vcpu *v, uint64_t gpa, uint64_t q)
{
	struct vm *vm = v->vm;
	if (!vm->snap || !(q & EPT_VIOLATION_WRITE))
		return false;
	/* Writable by now: a translation the CPU kept from before the page,
	 * or all of memory, was made writable.  The guest retries. */
	if (snap_page_writable(vm, gpa))
		return true;
	if (snap_cow_page(vm, gpa / PAGE_SIZE))
		vm_end_run(v, true, "snapshot: out of pool memory saving a page (a reservation bug)");
	return true;
}

void snap_before_write(struct vm *vm, uint64_t gpa, uint64_t len)
{
	if (!snap_cow_active(vm) || !len)
		return;
	for (uint64_t p = gpa / PAGE_SIZE; p <= (gpa + len - 1) / PAGE_SIZE; p++)
		if (!snap_page_writable(vm, p * PAGE_SIZE) && snap_cow_page(vm, p))
			panic("snapshot: out of pool memory saving page 0x%llx (a reservation bug)",
			      (unsigned long long)p);
}

void snap_ept_rebuilt(struct vm *vm)
{
	if (snap_cow_active(vm))
		snap_protect_all(vm);
}
