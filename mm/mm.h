/* mm.h - Nestor's memory: where it lives, its page pool, address helpers.
 *
 * At boot Nestor owns exactly two blocks of RAM: its image (where the loader
 * put it) and one pool (size mem=, taken from the top of free RAM).  Both
 * are hidden from the guest.  Everything Nestor allocates at run time (page
 * tables, EPT, VMCS, bitmaps) comes from the pool. */
#ifndef MM_MM_H
#define MM_MM_H

#include <stdint.h>
#include "boot/layout.h"
#include "lib/mb2.h"
#include "mm/pmm.h"
#include "mm/regions.h"

struct mem_layout {
	uint64_t image_start, image_end; /* physical */
	uint64_t pool_start, pool_end;   /* physical */
	uint64_t snap_start, snap_end;   /* the snapshot pool (snap_pool=), physical; empty when 0 */
	uint64_t phys_top;               /* end of the highest memory-map entry */
	struct region_set ram;           /* usable RAM per the memory map */
	struct region_set hidden;        /* Nestor's own memory: image + pools */
};

extern struct mem_layout mem; /* written once at boot, read-only after */

/* Plans memory from the boot information: usable RAM, then the pool at the
 * top of what is free (not the image, the MBI, the modules, or below 1 MiB),
 * then, when snap_size is not 0, the snapshot pool right below it.  Both
 * are hidden from the guest.  When own_end is not 0, both come out of
 * [own_start, own_end) only (the memory nestor.efi allocated from the UEFI
 * firmware, which still owns the rest).  Returns 0 or -1 with a message. */
int mm_plan(const struct mb2_info *mbi, uint64_t mbi_phys, uint64_t image_phys, uint64_t image_size,
	    uint64_t pool_size, uint64_t snap_size, uint64_t own_start, uint64_t own_end, char *err, unsigned errlen);
/* Builds Nestor's final page tables (direct map + image with W^X) in the
 * pool and switches to them.  The low identity map disappears. */
void mm_switch_page_tables(void);

static inline void *phys_to_virt(uint64_t p) { return (void *)(PHYS_MAP_BASE + p); }
uint64_t virt_to_phys(const void *v);

/* Zeroed 4 KiB pages from the pool; NULL when the pool is exhausted. */
void *page_alloc(void);
void *pages_alloc(uint64_t n, uint64_t align_pages);
void pages_free(void *p, uint64_t n);
/* Zeroed memory for an object of size bytes, in whole pages (never freed). */
static inline void *zalloc(uint64_t size) { return pages_alloc((size + PAGE_SIZE - 1) / PAGE_SIZE, 1); }
/* Fault injection (option fail_alloc=): the n-th call of pages_alloc
 * since boot returns NULL, once; 0 turns it off.  pool_allocs() is the
 * number of calls so far (printed at the end of a run). */
void pool_fail_at(uint64_t n);
/* Fault injection (option fail_alloc_run=): from the n-th call from now
 * (n >= 1) every call returns NULL, as if the pool were exhausted. */
void pool_fail_from(uint64_t n);
uint64_t pool_allocs(void);
/* Pool usage, in pages. */
void pool_usage(uint64_t *used, uint64_t *peak, uint64_t *total);

#endif
