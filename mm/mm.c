/* mm.c - memory plan, the pool, and Nestor's own page tables. */
#include "mm/mm.h"
#include "boot/platform.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/spinlock.h"
#include "lib/string.h"
#include "lib/x86.h"

struct mem_layout mem;

static struct {
	spinlock_t lock;
	struct pmm pmm;
	int ready_virt; /* page tables switched: use the direct map */
	uint64_t allocs;     /* pages_alloc calls so far */
	uint64_t fail_at;    /* fault injection: this call returns NULL (0: none) */
	uint64_t fail_from;  /* fault injection: this call and all later ones do (0: none) */
} pool;

/* Before the switch the boot page tables identity-map the low 4 GiB. */
static void *pool_ptr(uint64_t phys) { return pool.ready_virt ? phys_to_virt(phys) : (void *)phys; }

extern const char __text_start[], __text_end[], __rodata_start[], __rodata_end[], __data_start[],
	__data_end[];

uint64_t virt_to_phys(const void *v)
{
	uint64_t a = (uint64_t)v;
	if (a >= KERNEL_VIRT_BASE)
		return a - KERNEL_VIRT_BASE + mem.image_start;
	if (a >= PHYS_MAP_BASE && a < PHYS_MAP_BASE + PHYS_MAP_MAX)
		return a - PHYS_MAP_BASE;
	panic("virt_to_phys: %p is neither in the image nor in the direct map", v);
}

int mm_plan(const struct mb2_info *mbi, uint64_t mbi_phys, uint64_t image_phys, uint64_t image_size,
	    uint64_t pool_size, uint64_t snap_size, uint64_t own_start, uint64_t own_end, char *err, unsigned errlen)
{
	struct region_set bad;
	rs_clear(&mem.ram);
	rs_clear(&bad);
	mem.phys_top = 0;
	if (mbi->n_mmap == 0) {
		ksnprintf(err, errlen, "the boot loader gave no memory map");
		return -1;
	}
	for (unsigned i = 0; i < mbi->n_mmap; i++) {
		const struct mb2_mmap_entry *e = &mbi->mmap[i];
		struct region_set *dst = e->type == MB2_MEM_AVAILABLE ? &mem.ram : &bad;
		if (rs_add(dst, e->base, e->base + e->len)) {
			ksnprintf(err, errlen, "memory map too fragmented");
			return -1;
		}
		if (e->base + e->len > mem.phys_top)
			mem.phys_top = e->base + e->len;
	}
	/* Where firmware lists overlapping entries, the non-RAM type wins. */
	for (unsigned i = 0; i < bad.n; i++)
		rs_remove(&mem.ram, bad.r[i].start, bad.r[i].end);
	/* Usable RAM comes in whole pages. */
	struct region_set pages;
	rs_clear(&pages);
	for (unsigned i = 0; i < mem.ram.n; i++) {
		uint64_t s = (mem.ram.r[i].start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
		uint64_t e = mem.ram.r[i].end & ~(PAGE_SIZE - 1);
		rs_add(&pages, s, e);
	}
	mem.ram = pages;

	mem.image_start = image_phys;
	mem.image_end = image_phys + image_size;
	if (!rs_contains(&mem.ram, mem.image_start, mem.image_end)) {
		ksnprintf(err, errlen, "the image [0x%llx, 0x%llx) is not in usable RAM",
			  (unsigned long long)mem.image_start, (unsigned long long)mem.image_end);
		return -1;
	}

	/* The pool may not touch: low memory, the image, the MBI, modules. */
	struct region_set free = mem.ram;
	rs_remove(&free, 0, 0x100000);
	rs_remove(&free, mem.image_start, mem.image_end);
	rs_remove(&free, mbi_phys & ~(PAGE_SIZE - 1), mbi_phys + mbi->total_size);
	for (unsigned i = 0; i < mbi->n_modules; i++)
		rs_remove(&free, mbi->modules[i].start & ~(PAGE_SIZE - 1), mbi->modules[i].end);
	if (own_end) {
		/* Memory given to Nestor by its loader (nestor.efi): nothing else. */
		rs_remove(&free, 0, own_start);
		rs_remove(&free, own_end, ~0ull);
	}
	/* Below 4 GiB: the boot page tables only map that much (see entry.S). */
	uint64_t base;
	if (rs_find_top(&free, pool_size, 0x200000, 1ull << 32, &base)) {
		ksnprintf(err, errlen, "no free block of %llu KiB below 4 GiB for the pool (mem=); free RAM: %llu KiB",
			  (unsigned long long)(pool_size >> 10), (unsigned long long)(rs_total(&free) >> 10));
		return -1;
	}
	mem.pool_start = base;
	mem.pool_end = base + pool_size;
	rs_clear(&mem.hidden);
	rs_add(&mem.hidden, mem.image_start, mem.image_end);
	rs_add(&mem.hidden, mem.pool_start, mem.pool_end);
	mem.snap_start = mem.snap_end = 0;
	if (snap_size) {
		/* The snapshot pool: guest pages saved by snapshots (snap/). */
		rs_remove(&free, mem.pool_start, mem.pool_end);
		if (rs_find_top(&free, snap_size, 0x200000, 1ull << 32, &base)) {
			ksnprintf(err, errlen,
				  "no free block of %llu KiB below 4 GiB for the snapshot pool (snap_pool=); free RAM "
				  "besides Nestor's pool: %llu KiB",
				  (unsigned long long)(snap_size >> 10), (unsigned long long)(rs_total(&free) >> 10));
			return -1;
		}
		mem.snap_start = base;
		mem.snap_end = base + snap_size;
		rs_add(&mem.hidden, mem.snap_start, mem.snap_end);
	}

	/* The bitmap lives in the first pages of the pool itself. */
	uint64_t npages = pool_size / PAGE_SIZE;
	uint64_t bm_bytes = pmm_bitmap_words(npages) * 8;
	pmm_init(&pool.pmm, mem.pool_start, npages, pool_ptr(mem.pool_start));
	pmm_reserve(&pool.pmm, mem.pool_start, (bm_bytes + PAGE_SIZE - 1) / PAGE_SIZE);
	return 0;
}

void *pages_alloc(uint64_t n, uint64_t align_pages)
{
	spin_lock(&pool.lock);
	uint64_t k = ++pool.allocs;
	bool inject = k == pool.fail_at || (pool.fail_from && k >= pool.fail_from);
	uint64_t p = inject ? 0 : pmm_alloc(&pool.pmm, n, align_pages);
	spin_unlock(&pool.lock);
	if (inject && (k == pool.fail_at || k == pool.fail_from))
		pr_warn("fail_alloc: pool allocation %llu (%llu pages)%s fails on purpose\n", (unsigned long long)k,
			(unsigned long long)n, k == pool.fail_from ? " and every later one" : "");
	if (!p)
		return NULL;
	void *v = pool_ptr(p);
	memset(v, 0, n * PAGE_SIZE);
	return v;
}

void *page_alloc(void) { return pages_alloc(1, 1); }

void pages_free(void *v, uint64_t n)
{
	uint64_t p = pool.ready_virt ? virt_to_phys(v) : (uint64_t)v;
	spin_lock(&pool.lock);
	int r = pmm_free(&pool.pmm, p, n);
	spin_unlock(&pool.lock);
	if (r)
		panic("pages_free: bad free of %llu pages at 0x%llx", (unsigned long long)n, (unsigned long long)p);
}

void pool_fail_at(uint64_t n) { pool.fail_at = n; }

void pool_fail_from(uint64_t n)
{
	spin_lock(&pool.lock);
	pool.fail_from = pool.allocs + n;
	spin_unlock(&pool.lock);
}

uint64_t pool_allocs(void)
{
	spin_lock(&pool.lock);
	uint64_t n = pool.allocs;
	spin_unlock(&pool.lock);
	return n;
}

void pool_usage(uint64_t *used, uint64_t *peak, uint64_t *total)
{
	*used = pool.pmm.used;
	*peak = pool.pmm.peak;
	*total = pool.pmm.npages;
}

/* --- Nestor's own page tables ------------------------------------------- */

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_PS (1ull << 7)
#define PTE_G (1ull << 8)
#define PTE_NX (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull

static uint64_t *table_alloc(void)
{
	uint64_t *t = page_alloc();
	if (!t)
		panic("out of pool memory while building page tables (raise mem=)");
	return t;
}

/* Physical address of a table we allocated (identity mapped right now). */
static uint64_t tphys(const uint64_t *t) { return (uint64_t)t; }

static uint64_t *next_table(uint64_t *t, unsigned idx)
{
	if (!(t[idx] & PTE_P))
		t[idx] = tphys(table_alloc()) | PTE_P | PTE_W;
	return (uint64_t *)(t[idx] & PTE_ADDR);
}

static void map_image_range(uint64_t *pml4, const char *vstart, const char *vend, uint64_t flags)
{
	for (uint64_t v = (uint64_t)vstart; v < (uint64_t)vend; v += PAGE_SIZE) {
		uint64_t *pdpt = next_table(pml4, (v >> 39) & 511);
		uint64_t *pd = next_table(pdpt, (v >> 30) & 511);
		uint64_t *pt = next_table(pd, (v >> 21) & 511);
		pt[(v >> 12) & 511] = (v - KERNEL_VIRT_BASE + mem.image_start) | flags;
	}
}

static uint64_t direct_map_top(void)
{
	/* All physical memory, and at least the 4 GiB that hold the local
	 * APIC and other MMIO, in whole GiBs. */
	uint64_t top = mem.phys_top > (1ull << 32) ? mem.phys_top : (1ull << 32);
	top = (top + (1ull << 30) - 1) & ~((1ull << 30) - 1);
	return top > PHYS_MAP_MAX ? PHYS_MAP_MAX : top;
}

void mm_switch_page_tables(void)
{
	uint64_t *pml4 = table_alloc();

	/* Direct map of all physical memory (direct_map_top), 2 MiB pages,
	 * never executable. */
	uint64_t top = direct_map_top();
	for (uint64_t p = 0; p < top; p += 0x200000) {
		uint64_t *pdpt = next_table(pml4, ((PHYS_MAP_BASE + p) >> 39) & 511);
		uint64_t *pd = next_table(pdpt, ((PHYS_MAP_BASE + p) >> 30) & 511);
		pd[((PHYS_MAP_BASE + p) >> 21) & 511] = p | PTE_P | PTE_W | PTE_PS | PTE_NX;
	}

	/* The image, 4 KiB pages, with W^X: code RX, rodata R, data RW. */
	const char *boot_v = (const char *)KERNEL_VIRT_BASE;
	map_image_range(pml4, boot_v, __text_start, PTE_P | PTE_W | PTE_NX); /* boot stub, data only now */
	map_image_range(pml4, __text_start, __text_end, PTE_P);
	map_image_range(pml4, __rodata_start, __rodata_end, PTE_P | PTE_NX);
	map_image_range(pml4, __data_start, __data_end, PTE_P | PTE_W | PTE_NX);

	write_cr3(tphys(pml4));
	/* From now on the pool (and its bitmap) is reached through the direct map. */
	pool.pmm.bitmap = phys_to_virt((uint64_t)pool.pmm.bitmap);
	pool.ready_virt = 1;
}
