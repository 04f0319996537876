/* internal.h - what the files of snap/ share (see snap.h). */
#ifndef SNAP_INTERNAL_H
#define SNAP_INTERNAL_H

#include "mm/pmm.h"
#include "nested/nested.h"
#include "snap/snap.h"

#define SNAP_MAX 8 /* snapshots kept at once (ids 1 .. SNAP_MAX) */

struct cpu_snapshot;

struct snapshot {
	bool used;
	unsigned method;             /* enum snap_method */
	uint32_t *map;               /* per guest page: pool page + 1 holding its copy, 0 none */
	uint64_t *dirty;             /* per guest page: written since taken or last restored (cow) */
	struct cpu_snapshot *cpu;    /* the state of vCPU 0, then 1... (snap/cpu.c) */
	uint32_t parked;             /* vCPUs that were waiting for SIPI (no state saved) */
	uint64_t meta_phys, meta_pages; /* map, dirty and cpu, one run of pool pages */
	uint64_t held;               /* guest pages it holds a copy of */
	uint64_t reserve_left;       /* pool pages it may still need (cow) */
	uint64_t pause_ticks;        /* what taking it cost the guest, in Nestor */
	uint64_t restores;
};

/* Per VM: the pool and the snapshots in it. */
struct snap_state {
	struct pmm pmm;
	uint16_t *refs;     /* per pool page: snapshots holding it */
	uint64_t npfn;      /* guest pages covered: [0, npfn << 12) */
	uint64_t ram_pages; /* guest RAM pages among them (what a snapshot saves) */
	uint64_t reserved;  /* sum of the snapshots' reserve_left */
	unsigned ncow;      /* copy-on-write snapshots kept */
	uint16_t bm_port;   /* bus-master IDE registers watched (dma.c), 0: none */
	struct snapshot s[SNAP_MAX];
};

/* Whole pages, 8 bytes at a time (a snapshot moves thousands of them). */
static inline void page_copy(void *dst, const void *src)
{
	uint64_t n = 4096 / 8;
	__asm__ volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(n)::"memory");
}
static inline bool page_equal(const void *a, const void *b)
{
	uint64_t n = 4096 / 8;
	bool eq;
	__asm__ volatile("repe cmpsq" : "+D"(a), "+S"(b), "+c"(n), "=@cce"(eq)::"memory");
	return eq;
}

/* memory.c */
bool snap_pfn_is_ram(struct vm *vm, uint64_t pfn);
/* Write protection of the whole EPT, or lifted from all of it. */
void snap_protect_all(struct vm *vm);
void snap_unprotect_all(struct vm *vm);
/* Saves page pfn for the cow snapshots that lack it, marks it dirty for
 * them and lets the guest write it.  -1 when the pool is out of pages (a
 * bug: reservations prevent it). */
int snap_cow_page(struct vm *vm, uint64_t pfn);
void *snap_pool_page(struct snap_state *st, uint32_t idx);
int snap_pool_alloc(struct snap_state *st, uint32_t *idx);
void snap_pool_put(struct snap_state *st, uint32_t idx);

/* dma.c: watch bus-master DMA starts (on while cow snapshots are kept). */
void snap_dma_watch(struct vm *vm, bool on);

/* cpu.c: the vCPU state, pages of pool needed, save, restore. */
uint64_t snap_cpu_pages(void);
void snap_cpu_save(struct vcpu *v, struct cpu_snapshot *c);
int snap_cpu_restore(struct vcpu *v, const struct cpu_snapshot *c);
struct nested_snapshot *snap_cpu_vmx(struct cpu_snapshot *c);

#endif
