/* snapshot.c - the snapshot hypercalls (hypercall/abi.h): take, restore,
 * drop, info.  The guest asks for a snapshot of itself; a restore brings it
 * back to the instruction after that request, which then returns
 * NESTOR_SNAP_RESTORED instead of NESTOR_OK (like setjmp/longjmp).
 *
 * Nothing half-done is ever kept: a snapshot is refused before anything is
 * saved when the pool cannot hold it all - a copy-on-write snapshot
 * reserves a pool page for every guest page, so the copies it may need
 * later never fail - and a restore finds every page it needs. */
#include "boot/config.h"
#include "hypercall/abi.h"
#include "hypercall/hypercall.h"
#include "boot/platform.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "mm/mm.h"
#include "snap/internal.h"
#include "vmx/exits.h"
#include "vmx/vcpu.h"
#include "vmx/vmcs.h"

const char *const snap_method_names[] = { "cow", "copy", NULL };

static uint64_t meta_pages(const struct snap_state *st)
{
	uint64_t map = st->npfn * sizeof(uint32_t), dirty = (st->npfn + 63) / 64 * 8;
	return (map + dirty + PAGE_SIZE - 1) / PAGE_SIZE + snap_cpu_pages();
}

static struct snapshot *find(struct snap_state *st, uint64_t id)
{
	if (!st || id < 1 || id > SNAP_MAX || !st->s[id - 1].used)
		return NULL;
	return &st->s[id - 1];
}

/* Every guest RAM page copied into the pool now (the full copy). */
static void copy_all(struct vm *vm, struct snapshot *s)
{
	struct snap_state *st = vm->snap;
	for (unsigned r = 0; r < vm->guest_ram.n; r++)
		for (uint64_t a = vm->guest_ram.r[r].start; a < vm->guest_ram.r[r].end; a += PAGE_SIZE) {
			uint32_t idx;
			if (snap_pool_alloc(st, &idx))
				panic("snapshot: pool exhausted after the check (a bug)");
			page_copy(snap_pool_page(st, idx), phys_to_virt(a));
			st->refs[idx] = 1;
			s->map[a / PAGE_SIZE] = idx + 1;
			s->held++;
		}
}

int64_t snap_take(struct vcpu *v, uint64_t method)
{
	struct vm *vm = v->vm;
	struct snap_state *st = vm->snap;
	uint64_t t0 = rdtsc();
	if (method > NESTOR_SNAP_COPY)
		return NESTOR_EINVAL;
	unsigned m = method == NESTOR_SNAP_DEFAULT ? config.snap_method
		     : method == NESTOR_SNAP_COW  ? SNAP_METHOD_COW
						  : SNAP_METHOD_COPY;
	if (!st)
		return NESTOR_ENOSPC; /* no pool (snap_pool=0) */
	struct snapshot *s = NULL;
	for (unsigned i = 0; i < SNAP_MAX && !s; i++)
		if (!st->s[i].used)
			s = &st->s[i];
	if (!s)
		return NESTOR_ENOSPC;
	if (vm->delegated) {
		/* The Nestor below emulates our guest's VMX and runs its guests:
		 * their writes and the guest's VMX state would escape us.  Take
		 * the emulation back first - possible while the guest is outside
		 * VMX operation; it stays with us afterwards. */
		uint64_t rbx = 0, rcx = 0, rdx = 0;
		int64_t r = nestor_vmcall(NESTOR_HC_UNDELEGATE_VMX, &rbx, &rcx, &rdx, 0, 0);
		if (r != NESTOR_OK)
			return NESTOR_EBUSY;
		vm->delegated = false;
		pr_info("snapshot: this level emulates its guest's VMX again (delegation ended)\n");
	}
	/* The whole need, checked before anything is saved. */
	uint64_t meta = meta_pages(st), need = meta + st->ram_pages;
	if (st->pmm.used + st->reserved + need > st->pmm.npages)
		return NESTOR_ENOSPC;
	uint64_t meta_phys = pmm_alloc(&st->pmm, meta, 1);
	if (!meta_phys)
		return NESTOR_ENOSPC; /* free pages, but not meta of them in a row */
	struct cpu_snapshot *cpu = phys_to_virt(meta_phys);
	uint64_t n = meta * PAGE_SIZE / 8;
	void *dst = cpu;
	__asm__ volatile("rep stosq" : "+D"(dst), "+c"(n) : "a"(0ull) : "memory"); /* 8 bytes a tick */
	int64_t status = nested_snapshot_save(v, snap_cpu_vmx(cpu));
	if (status != NESTOR_OK) {
		pmm_free(&st->pmm, meta_phys, meta);
		return status;
	}
	memset(s, 0, sizeof(*s));
	s->used = true;
	s->method = m;
	s->cpu = cpu;
	s->meta_phys = meta_phys;
	s->meta_pages = meta;
	s->map = (uint32_t *)((uint8_t *)cpu + snap_cpu_pages() * PAGE_SIZE);
	s->dirty = (uint64_t *)(s->map + st->npfn);
	/* The state to come back to: after this VMCALL. */
	skip_instruction(v);
	snap_cpu_save(v, cpu);
	if (m == SNAP_METHOD_COPY) {
		copy_all(vm, s);
	} else {
		s->reserve_left = st->ram_pages;
		st->reserved += s->reserve_left;
		if (st->ncow++ == 0)
			snap_dma_watch(vm, true);
		snap_protect_all(vm);
	}
	s->pause_ticks = rdtsc() - t0;
	v->gpr[RBX] = (uint64_t)(s - st->s) + 1;
	return NESTOR_OK;
}

/* Guest page pfn back to the snapshot's copy of it; whatever else keeps a
 * copy-on-write snapshot saves it first. */
static void put_back(struct vm *vm, const struct snapshot *s, uint64_t pfn)
{
	void *page = phys_to_virt(pfn * PAGE_SIZE), *copy = snap_pool_page(vm->snap, s->map[pfn] - 1);
	if (page_equal(page, copy))
		return;
	snap_before_write(vm, pfn * PAGE_SIZE, PAGE_SIZE);
	page_copy(page, copy);
}

int64_t snap_restore(struct vcpu *v, uint64_t id, uint64_t value)
{
	struct vm *vm = v->vm;
	struct snap_state *st = vm->snap;
	struct snapshot *s = find(st, id);
	if (!s)
		return NESTOR_ENOENT;
	if (s->method == SNAP_METHOD_COW) {
		/* Only the pages written since the snapshot, or since its last
		 * restore; then the guest's writes are watched again. */
		for (uint64_t w = 0; w < (st->npfn + 63) / 64; w++)
			for (uint64_t bits = s->dirty[w]; bits; bits &= bits - 1) {
				uint64_t pfn = w * 64 + (uint64_t)__builtin_ctzll(bits);
				if (s->map[pfn])
					put_back(vm, s, pfn);
			}
		memset(s->dirty, 0, (st->npfn + 63) / 64 * 8);
		snap_protect_all(vm);
	} else {
		for (uint64_t pfn = 0; pfn < st->npfn; pfn++)
			if (s->map[pfn])
				put_back(vm, s, pfn);
		nested_drop_shadows(v);
	}
	if (snap_cpu_restore(v, s->cpu))
		vm_end_run(v, true, "snapshot: the vCPU state could not be put back");
	/* The guest's page tables are those of the snapshot: translations it
	 * cached since are gone (every VPID: its guests' too). */
	if (vm->vpid)
		invvpid(2, 0, 0);
	cpuid_forget_xsave(v);
	s->restores++;
	v->gpr[RAX] = NESTOR_SNAP_RESTORED;
	v->gpr[RBX] = id;
	v->gpr[RCX] = value;
	return NESTOR_SNAP_RESTORED;
}

int64_t snap_drop(struct vcpu *v, uint64_t id)
{
	struct vm *vm = v->vm;
	struct snap_state *st = vm->snap;
	struct snapshot *s = find(st, id);
	if (!s)
		return NESTOR_ENOENT;
	for (uint64_t pfn = 0; pfn < st->npfn; pfn++)
		if (s->map[pfn])
			snap_pool_put(st, s->map[pfn] - 1);
	if (s->method == SNAP_METHOD_COW) {
		st->reserved -= s->reserve_left;
		if (--st->ncow == 0) {
			snap_unprotect_all(vm);
			snap_dma_watch(vm, false);
		}
	}
	if (pmm_free(&st->pmm, s->meta_phys, s->meta_pages))
		panic("snapshot: bookkeeping pages freed twice");
	memset(s, 0, sizeof(*s));
	return NESTOR_OK;
}

int64_t snap_info(struct vcpu *v, uint64_t id)
{
	struct snap_state *st = v->vm->snap;
	if (id == 0) {
		v->gpr[RBX] = st ? st->pmm.used : 0;
		v->gpr[RCX] = st ? st->pmm.npages : 0;
		v->gpr[RDX] = st ? st->reserved : 0;
		return NESTOR_OK;
	}
	struct snapshot *s = find(st, id);
	if (!s)
		return NESTOR_ENOENT;
	v->gpr[RBX] = s->held;
	v->gpr[RCX] = s->method == SNAP_METHOD_COW ? NESTOR_SNAP_COW : NESTOR_SNAP_COPY;
	v->gpr[RDX] = s->pause_ticks;
	return NESTOR_OK;
}
