/* pmm.h - physical page allocator over one contiguous pool.
 *
 * Nestor takes a single block of RAM at boot (its size set by mem=) and
 * hands out 4 KiB pages from it with a bitmap: first fit, optional
 * alignment, contiguous runs on request.  The pool is hidden from the guest
 * as a whole, so nothing the allocator returns is ever guest-visible.
 * The core is pure logic over caller-provided storage, unit-tested on the
 * host; the kernel wraps one instance with a lock (mm/mm.h). */
#ifndef MM_PMM_H
#define MM_PMM_H

#include <stdint.h>

#define PAGE_SIZE 4096ull
#define PAGE_SHIFT 12

struct pmm {
	uint64_t base;    /* physical address of page 0 */
	uint64_t npages;
	uint64_t *bitmap; /* 1 bit per page, 1 = in use */
	uint64_t used, peak;
	uint64_t hint;    /* where the next search starts */
};

/* Words of bitmap storage needed for npages. */
static inline uint64_t pmm_bitmap_words(uint64_t npages) { return (npages + 63) / 64; }

void pmm_init(struct pmm *p, uint64_t base, uint64_t npages, uint64_t *bitmap);
/* Marks [phys, phys + n pages) in use (for pages the pool's user set aside). */
void pmm_reserve(struct pmm *p, uint64_t phys, uint64_t n);
/* Allocates n contiguous pages whose first page number (relative to the
 * pool) is a multiple of align_pages; returns the physical address or 0. */
uint64_t pmm_alloc(struct pmm *p, uint64_t n, uint64_t align_pages);
/* Frees a run; returns -1 (and changes nothing) if any page was not in use
 * or lies outside the pool - a double free is reported, not ignored. */
int pmm_free(struct pmm *p, uint64_t phys, uint64_t n);

#endif
