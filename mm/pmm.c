/* pmm.c - bitmap page allocator (see pmm.h). */
#include "mm/pmm.h"
#include "lib/string.h"

static int test(const struct pmm *p, uint64_t i) { return (p->bitmap[i / 64] >> (i % 64)) & 1; }
static void set(struct pmm *p, uint64_t i) { p->bitmap[i / 64] |= 1ull << (i % 64); }
static void clr(struct pmm *p, uint64_t i) { p->bitmap[i / 64] &= ~(1ull << (i % 64)); }

void pmm_init(struct pmm *p, uint64_t base, uint64_t npages, uint64_t *bitmap)
{
	p->base = base;
	p->npages = npages;
	p->bitmap = bitmap;
	p->used = p->peak = p->hint = 0;
	memset(bitmap, 0, pmm_bitmap_words(npages) * 8);
}

static void account(struct pmm *p, int64_t delta)
{
	p->used += delta;
	if (p->used > p->peak)
		p->peak = p->used;
}

void pmm_reserve(struct pmm *p, uint64_t phys, uint64_t n)
{
	if (phys < p->base)
		return;
	uint64_t first = (phys - p->base) / PAGE_SIZE;
	for (uint64_t i = first; i < first + n && i < p->npages; i++) {
		if (!test(p, i)) {
			set(p, i);
			account(p, 1);
		}
	}
}

/* Searches [from, to) for a free aligned run of n pages. */
static uint64_t search(const struct pmm *p, uint64_t from, uint64_t to, uint64_t n, uint64_t align)
{
	uint64_t i = (from + align - 1) / align * align;
	while (i + n <= to) {
		uint64_t j = 0;
		while (j < n && !test(p, i + j))
			j++;
		if (j == n)
			return i;
		/* Skip past the used page we hit, to the next aligned start. */
		i = (i + j + 1 + align - 1) / align * align;
	}
	return UINT64_MAX;
}

uint64_t pmm_alloc(struct pmm *p, uint64_t n, uint64_t align_pages)
{
	if (n == 0 || n > p->npages)
		return 0;
	if (align_pages == 0)
		align_pages = 1;
	uint64_t i = search(p, p->hint, p->npages, n, align_pages);
	if (i == UINT64_MAX)
		i = search(p, 0, p->npages, n, align_pages);
	if (i == UINT64_MAX)
		return 0;
	for (uint64_t j = 0; j < n; j++)
		set(p, i + j);
	account(p, (int64_t)n);
	p->hint = i + n;
	return p->base + i * PAGE_SIZE;
}

int pmm_free(struct pmm *p, uint64_t phys, uint64_t n)
{
	if (phys < p->base || (phys - p->base) % PAGE_SIZE)
		return -1;
	uint64_t first = (phys - p->base) / PAGE_SIZE;
	if (first >= p->npages || n > p->npages - first)
		return -1;
	for (uint64_t j = 0; j < n; j++)
		if (!test(p, first + j))
			return -1;
	for (uint64_t j = 0; j < n; j++)
		clr(p, first + j);
	account(p, -(int64_t)n);
	if (first < p->hint)
		p->hint = first;
	return 0;
}
