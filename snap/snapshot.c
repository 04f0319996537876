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
#include "boot/platform.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "mm/mm.h"
#include "snap/internal.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "vmx/vcpu.h"
#include "vmx/vmcs.h"

const char *const snap_method_names[] = { "cow", "copy", NULL };

static uint64_t meta_pages(const struct vm *vm, const struct snap_state *st)
{
	uint64_t map = st->npfn * sizeof(uint32_t), dirty = (st->npfn + 63) / 64 * 8;
	return (map + dirty + PAGE_SIZE - 1) / PAGE_SIZE + snap_cpu_pages() * vm->ncpus;
}

/* vCPU i's state in snapshot s. */
static struct cpu_snapshot *slot(const struct snapshot *s, unsigned i)
{
	return (struct cpu_snapshot *)((uint8_t *)s->cpu + (uint64_t)i * snap_cpu_pages() * PAGE_SIZE);
}

/* --- several CPUs: each vCPU saves and puts back its own state, on its
 * own CPU (its VMCS is current there), while the initiator holds the
 * others stopped at the end of an exit (vmx/sync.c). */
struct cpu_work {
	struct cpu_snapshot *c;
	int64_t status;
};

static void work_save_vmx(struct vcpu *t, void *arg)
{
	struct cpu_work *w = arg;
	w->status = nested_snapshot_save(t, snap_cpu_vmx(w->c));
}

static void work_save(struct vcpu *t, void *arg) { snap_cpu_save(t, ((struct cpu_work *)arg)->c); }

/* What a restore does on every vCPU's CPU: its state back, and no
 * translation of the guest's cached since (every VPID: its guests' too). */
static void work_restore(struct vcpu *t, void *arg)
{
	struct cpu_work *w = arg;
	w->status = snap_cpu_restore(t, w->c) ? NESTOR_EINVAL : NESTOR_OK;
	if (t->vm->vpid)
		invvpid(2, 0, 0);
	cpuid_forget_xsave(t);
}

/* VMX delegation to the Nestor below, ended or given back, for one vCPU. */
static void work_undelegate(struct vcpu *t, void *arg)
{
	(void)t;
	((struct cpu_work *)arg)->status = delegation_below(false);
}

static void work_delegate(struct vcpu *t, void *arg)
{
	(void)t;
	((struct cpu_work *)arg)->status = delegation_below(true);
}

/* work for vCPU t on t's CPU: here when t is the asking vCPU v, else by
 * the stopped t itself (vmx/sync.c). */
static void run_on(struct vcpu *v, struct vcpu *t, void (*work)(struct vcpu *, void *), struct cpu_work *w)
{
	if (t == v)
		work(v, w);
	else
		vm_run_on(t, work, w);
}

/* A vCPU that waited for SIPI in the snapshot waits for one again. */
static void work_wait_sipi(struct vcpu *t, void *arg)
{
	(void)arg;
	vcpu_reset(t, false);
}

/* Every other vCPU stopped at the end of an exit, or false (all resumed). */
static bool stop_others(struct vcpu *v)
{
	if (v->vm->ncpus == 1)
		return true;
	vm_stop_others(v, 1000);
	if (vm_others_stopped_whole(v))
		return true;
	vm_resume_others(v, 0);
	return false;
}

static void resume_others(struct vcpu *v, unsigned after)
{
	if (v->vm->ncpus > 1)
		vm_resume_others(v, after);
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

static int64_t take(struct vcpu *v, uint64_t method)
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
		 * VMX operation; it stays with us afterwards.  The level below
		 * keeps delegation per CPU: each vCPU asks on its own; one
		 * that waits for SIPI runs nothing meanwhile, and asks at its
		 * SIPI, before its guest runs (vmx/exit_misc.c). */
		unsigned i;
		struct cpu_work w = { 0 };
		for (i = 0; i < vm->ncpus && w.status == NESTOR_OK; i++) {
			struct vcpu *t = vm->vcpus[i];
			if (t && t != v && t->parked)
				t->undelegate_at_sipi = true;
			else if (t)
				run_on(v, t, work_undelegate, &w);
		}
		if (w.status != NESTOR_OK) {
			/* Refused on vCPU i - 1 (its guest is in VMX operation
			 * there): the ones before it delegate again, as they did. */
			for (unsigned j = 0; j + 1 < i; j++) {
				struct vcpu *t = vm->vcpus[j];
				if (t && t->undelegate_at_sipi) {
					t->undelegate_at_sipi = false; /* it never ended */
				} else if (t) {
					run_on(v, t, work_delegate, &w);
					if (w.status != NESTOR_OK)
						vm_end_run(v, true, "snapshot: VMX delegation below could not be given back");
				}
			}
			return NESTOR_EBUSY;
		}
		vm->delegated = false;
		pr_info("snapshot: this level emulates its guest's VMX again (delegation ended)\n");
	}
	/* The whole need, checked before anything is saved. */
	uint64_t meta = meta_pages(vm, st), need = meta + st->ram_pages;
	if (st->pmm.used + st->reserved + need > st->pmm.npages)
		return NESTOR_ENOSPC;
	uint64_t meta_phys = pmm_alloc(&st->pmm, meta, 1);
	if (!meta_phys)
		return NESTOR_ENOSPC; /* free pages, but not meta of them in a row */
	struct cpu_snapshot *cpu = phys_to_virt(meta_phys);
	uint64_t n = meta * PAGE_SIZE / 8;
	void *dst = cpu;
	__asm__ volatile("rep stosq" : "+D"(dst), "+c"(n) : "a"(0ull) : "memory"); /* 8 bytes a tick */
	memset(s, 0, sizeof(*s));
	s->cpu = cpu;
	/* Every vCPU's VMX state first: a guest hypervisor running its guest
	 * on one of them cannot be saved (NESTOR_EBUSY), and nothing is kept. */
	int64_t status = NESTOR_OK;
	for (unsigned i = 0; i < vm->ncpus && status == NESTOR_OK; i++) {
		struct vcpu *t = vm->vcpus[i];
		if (!t)
			continue;
		if (t != v && t->parked) {
			s->parked |= 1u << i;
			continue;
		}
		struct cpu_work w = { .c = slot(s, i) };
		run_on(v, t, work_save_vmx, &w);
		status = w.status;
	}
	if (status != NESTOR_OK) {
		memset(s, 0, sizeof(*s));
		pmm_free(&st->pmm, meta_phys, meta);
		return status;
	}
	s->used = true;
	s->method = m;
	s->meta_phys = meta_phys;
	s->meta_pages = meta;
	s->map = (uint32_t *)((uint8_t *)cpu + snap_cpu_pages() * vm->ncpus * PAGE_SIZE);
	s->dirty = (uint64_t *)(s->map + st->npfn);
	/* The state to come back to: after this VMCALL here, where each of
	 * the others stopped. */
	skip_instruction(v);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct cpu_work w = { .c = slot(s, i) };
		if (vm->vcpus[i] && !(s->parked & (1u << i)))
			run_on(v, vm->vcpus[i], work_save, &w);
	}
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

int64_t snap_take(struct vcpu *v, uint64_t method)
{
	/* With several CPUs, all of them stopped for the whole snapshot (and
	 * their EPT translations flushed after: copy-on-write protects it). */
	if (!stop_others(v))
		return NESTOR_EBUSY;
	int64_t r = take(v, method);
	resume_others(v, r == NESTOR_OK ? REQ_INVEPT : 0);
	return r;
}

/* Guest page pfn back to the snapshot's copy of it; whatever else keeps a
 * copy-on-write snapshot saves it first. */
static void put_back(struct vm *vm, const struct snapshot *s, uint64_t pfn)
{
	void *page = phys_to_virt(pfn * PAGE_SIZE), *copy = snap_pool_page(vm->snap, s->map[pfn] - 1);
	if (page_equal(page, copy))
		return;
	guest_mem_before_write(vm, pfn * PAGE_SIZE, PAGE_SIZE);
	page_copy(page, copy);
}

static int64_t restore(struct vcpu *v, struct snapshot *s, uint64_t id, uint64_t value)
{
	struct vm *vm = v->vm;
	struct snap_state *st = vm->snap;
	/* A vCPU that ran in the snapshot and waits for SIPI now cannot be
	 * made to run from here: refused before anything changes. */
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *t = vm->vcpus[i];
		if (t && t != v && t->parked && !(s->parked & (1u << i)))
			return NESTOR_EBUSY;
	}
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
	int64_t status = NESTOR_OK;
	for (unsigned i = 0; i < vm->ncpus && status == NESTOR_OK; i++) {
		struct vcpu *t = vm->vcpus[i];
		struct cpu_work w = { .c = slot(s, i) };
		if (!t || (t != v && t->parked))
			continue; /* waited for SIPI then too */
		if (s->parked & (1u << i))
			run_on(v, t, work_wait_sipi, &w); /* the asking vCPU too, if it waited then */
		else
			run_on(v, t, work_restore, &w);
		status = w.status;
	}
	if (status != NESTOR_OK)
		vm_end_run(v, true, "snapshot: a vCPU's state could not be put back");
	s->restores++;
	v->gpr[RAX] = NESTOR_SNAP_RESTORED;
	v->gpr[RBX] = id;
	v->gpr[RCX] = value;
	return NESTOR_SNAP_RESTORED;
}

int64_t snap_restore(struct vcpu *v, uint64_t id, uint64_t value)
{
	struct snapshot *s = find(v->vm->snap, id);
	if (!s)
		return NESTOR_ENOENT;
	if (!stop_others(v))
		return NESTOR_EBUSY;
	int64_t r = restore(v, s, id, value);
	/* Memory and EPT changed under the others: no translation of before;
	 * a full copy put back drops every shadow EPT (ours in restore). */
	unsigned after = REQ_INVEPT | (s->method == SNAP_METHOD_COPY ? REQ_DROP_SHADOWS : 0);
	resume_others(v, r == NESTOR_SNAP_RESTORED ? after : 0);
	return r;
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
