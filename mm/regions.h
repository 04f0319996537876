/* regions.h - sets of physical address ranges, kept sorted and disjoint.
 * Used to turn the firmware's memory map into "RAM Nestor may use" and
 * "RAM the guest may see".  Pure logic, unit-tested on the host. */
#ifndef MM_REGIONS_H
#define MM_REGIONS_H

#include <stdbool.h>
#include <stdint.h>

#define REGIONS_MAX 128

struct region {
	uint64_t start, end; /* [start, end) */
};

struct region_set {
	unsigned n;
	struct region r[REGIONS_MAX];
};

void rs_clear(struct region_set *s);
/* Adds [start, end), merging with touching ranges; -1 when the set is full. */
int rs_add(struct region_set *s, uint64_t start, uint64_t end);
/* Removes [start, end), splitting ranges; -1 when a split would overflow. */
int rs_remove(struct region_set *s, uint64_t start, uint64_t end);
/* True when every byte of [start, end) is in the set. */
bool rs_contains(const struct region_set *s, uint64_t start, uint64_t end);
/* True when some byte of [start, end) is in the set. */
bool rs_overlaps(const struct region_set *s, uint64_t start, uint64_t end);
uint64_t rs_total(const struct region_set *s);
/* Finds the highest block of size bytes, aligned to align (a power of two),
 * lying in the set and entirely below limit; returns its start in *out, or
 * -1 when there is none.  The set is not changed. */
int rs_find_top(const struct region_set *s, uint64_t size, uint64_t align, uint64_t limit, uint64_t *out);

#endif
