// sources: mm/regions.c
/* Unit tests of the range-set logic behind memory planning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "mm/regions.h"

static struct region_set s;

static void expect(unsigned n, const uint64_t *pairs)
{
	assert_int_equal(s.n, n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(s.r[i].start, pairs[2 * i]);
		assert_int_equal(s.r[i].end, pairs[2 * i + 1]);
	}
}

static void add_merges(void **state)
{
	(void)state;
	rs_clear(&s);
	rs_add(&s, 100, 200);
	rs_add(&s, 300, 400);
	rs_add(&s, 0, 50);
	expect(3, (uint64_t[]){ 0, 50, 100, 200, 300, 400 });
	rs_add(&s, 200, 300); /* touching both neighbours */
	expect(2, (uint64_t[]){ 0, 50, 100, 400 });
	rs_add(&s, 40, 120);
	expect(1, (uint64_t[]){ 0, 400 });
	rs_add(&s, 5, 5); /* empty */
	expect(1, (uint64_t[]){ 0, 400 });
	assert_int_equal(rs_total(&s), 400);
}

static void remove_splits(void **state)
{
	(void)state;
	rs_clear(&s);
	rs_add(&s, 0, 1000);
	rs_remove(&s, 100, 200);
	expect(2, (uint64_t[]){ 0, 100, 200, 1000 });
	rs_remove(&s, 50, 250); /* spans the hole */
	expect(2, (uint64_t[]){ 0, 50, 250, 1000 });
	rs_remove(&s, 0, 50);
	expect(1, (uint64_t[]){ 250, 1000 });
	rs_remove(&s, 900, 2000);
	expect(1, (uint64_t[]){ 250, 900 });
	rs_remove(&s, 0, 5000);
	expect(0, NULL);
}

static void queries(void **state)
{
	(void)state;
	rs_clear(&s);
	rs_add(&s, 0x1000, 0x5000);
	rs_add(&s, 0x8000, 0x9000);
	assert_true(rs_contains(&s, 0x1000, 0x5000));
	assert_true(rs_contains(&s, 0x2000, 0x3000));
	assert_false(rs_contains(&s, 0x4000, 0x8800));
	assert_true(rs_overlaps(&s, 0x4fff, 0x6000));
	assert_false(rs_overlaps(&s, 0x5000, 0x8000));
}

static void find_top(void **state)
{
	(void)state;
	uint64_t at;
	rs_clear(&s);
	rs_add(&s, 0x100000, 0x0fff0000);
	rs_add(&s, 0x10000000, 0x10100000);
	/* Highest 2 MiB-aligned 16 MiB block: in the first range (second is too small). */
	assert_int_equal(rs_find_top(&s, 16 << 20, 2 << 20, 1ull << 32, &at), 0);
	assert_int_equal(at, 0x0ee00000);
	/* The small block fits the second range. */
	assert_int_equal(rs_find_top(&s, 0x80000, 0x1000, 1ull << 32, &at), 0);
	assert_int_equal(at, 0x10080000);
	/* Limit cuts the ranges. */
	assert_int_equal(rs_find_top(&s, 0x100000, 0x100000, 0x800000, &at), 0);
	assert_int_equal(at, 0x700000);
	assert_int_equal(rs_find_top(&s, 1ull << 30, 4096, 1ull << 32, &at), -1);
	assert_int_equal(rs_find_top(&s, 4096, 3, 1ull << 32, &at), -1); /* bad align */
}

static void overflow_is_reported(void **state)
{
	(void)state;
	rs_clear(&s);
	for (unsigned i = 0; i < REGIONS_MAX; i++)
		assert_int_equal(rs_add(&s, i * 10, i * 10 + 5), 0);
	assert_int_equal(rs_add(&s, 100000, 100005), -1);
	assert_int_equal(rs_remove(&s, 1, 2), -1); /* split needs a slot */
	assert_int_equal(s.n, REGIONS_MAX);
}

static void random_against_bitmap(void **state)
{
	(void)state;
	/* Apply random adds and removes to a set and to a byte map; compare. */
	enum { N = 512 };
	unsigned char map[N];
	srand(1);
	for (int round = 0; round < 200; round++) {
		rs_clear(&s);
		for (int i = 0; i < N; i++)
			map[i] = 0;
		for (int op = 0; op < 30; op++) {
			uint64_t a = rand() % N, b = rand() % N;
			if (a > b) {
				uint64_t t = a;
				a = b;
				b = t;
			}
			int add = rand() & 1;
			int r = add ? rs_add(&s, a, b) : rs_remove(&s, a, b);
			assert_int_equal(r, 0);
			for (uint64_t i = a; i < b; i++)
				map[i] = add;
		}
		for (int i = 0; i < N; i++)
			assert_int_equal(rs_contains(&s, i, i + 1), map[i]);
		for (unsigned i = 0; i + 1 < s.n; i++)
			assert_true(s.r[i].end < s.r[i + 1].start); /* sorted, disjoint, not touching */
	}
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(add_merges),         cmocka_unit_test(remove_splits),
		cmocka_unit_test(queries),            cmocka_unit_test(find_top),
		cmocka_unit_test(overflow_is_reported), cmocka_unit_test(random_against_bitmap),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
