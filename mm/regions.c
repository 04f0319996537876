/* regions.c - sorted disjoint range sets (see regions.h). */
#include "mm/regions.h"

void rs_clear(struct region_set *s) { s->n = 0; }

static void remove_at(struct region_set *s, unsigned i)
{
	for (unsigned j = i; j + 1 < s->n; j++)
		s->r[j] = s->r[j + 1];
	s->n--;
}

static int insert_at(struct region_set *s, unsigned i, uint64_t start, uint64_t end)
{
	if (s->n == REGIONS_MAX)
		return -1;
	for (unsigned j = s->n; j > i; j--)
		s->r[j] = s->r[j - 1];
	s->r[i].start = start;
	s->r[i].end = end;
	s->n++;
	return 0;
}

int rs_add(struct region_set *s, uint64_t start, uint64_t end)
{
	if (start >= end)
		return 0;
	/* Absorb every range that overlaps or touches [start, end). */
	unsigned i = 0;
	while (i < s->n && s->r[i].end < start)
		i++;
	while (i < s->n && s->r[i].start <= end) {
		if (s->r[i].start < start)
			start = s->r[i].start;
		if (s->r[i].end > end)
			end = s->r[i].end;
		remove_at(s, i);
	}
	return insert_at(s, i, start, end);
}

int rs_remove(struct region_set *s, uint64_t start, uint64_t end)
{
	if (start >= end)
		return 0;
	for (unsigned i = 0; i < s->n;) {
		struct region *r = &s->r[i];
		if (r->end <= start || r->start >= end) {
			i++;
			continue;
		}
		if (r->start < start && r->end > end) {
			/* The hole is strictly inside: split in two. */
			uint64_t tail_end = r->end;
			if (s->n == REGIONS_MAX)
				return -1;
			r->end = start;
			return insert_at(s, i + 1, end, tail_end);
		}
		if (r->start < start) {
			r->end = start;
			i++;
		} else if (r->end > end) {
			r->start = end;
			i++;
		} else {
			remove_at(s, i);
		}
	}
	return 0;
}

bool rs_contains(const struct region_set *s, uint64_t start, uint64_t end)
{
	if (start >= end)
		return true;
	for (unsigned i = 0; i < s->n; i++)
		if (s->r[i].start <= start && s->r[i].end >= end)
			return true;
	return false;
}

bool rs_overlaps(const struct region_set *s, uint64_t start, uint64_t end)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->r[i].start < end && s->r[i].end > start)
			return true;
	return false;
}

uint64_t rs_total(const struct region_set *s)
{
	uint64_t t = 0;
	for (unsigned i = 0; i < s->n; i++)
		t += s->r[i].end - s->r[i].start;
	return t;
}

int rs_find_top(const struct region_set *s, uint64_t size, uint64_t align, uint64_t limit, uint64_t *out)
{
	if (size == 0 || align == 0 || (align & (align - 1)))
		return -1;
	for (unsigned i = s->n; i-- > 0;) {
		uint64_t end = s->r[i].end < limit ? s->r[i].end : limit;
		if (end <= s->r[i].start || end - s->r[i].start < size)
			continue;
		uint64_t start = (end - size) & ~(align - 1);
		if (start >= s->r[i].start) {
			*out = start;
			return 0;
		}
	}
	return -1;
}
