// sources: mm/pmm.c
/* Unit tests of the page allocator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "mm/pmm.h"

#define BASE 0x10000000ull

static struct pmm p;
static uint64_t bm[64];

static void basic(void **state)
{
	(void)state;
	pmm_init(&p, BASE, 100, bm);
	uint64_t a = pmm_alloc(&p, 1, 1), b = pmm_alloc(&p, 1, 1);
	assert_int_equal(a, BASE);
	assert_int_equal(b, BASE + PAGE_SIZE);
	assert_int_equal(p.used, 2);
	assert_int_equal(pmm_free(&p, a, 1), 0);
	assert_int_equal(pmm_free(&p, a, 1), -1); /* double free reported */
	assert_int_equal(pmm_alloc(&p, 1, 1), a);  /* reused */
	assert_int_equal(p.peak, 2);
}

static void alignment_and_runs(void **state)
{
	(void)state;
	pmm_init(&p, BASE, 1024, bm);
	pmm_alloc(&p, 1, 1);
	uint64_t big = pmm_alloc(&p, 512, 512); /* 2 MiB aligned run */
	assert_int_equal(big, BASE + 512 * PAGE_SIZE);
	assert_int_equal(pmm_alloc(&p, 600, 1), 0); /* no room left for 600 */
	uint64_t mid = pmm_alloc(&p, 511, 1);
	assert_int_equal(mid, BASE + PAGE_SIZE);
	assert_int_equal(pmm_alloc(&p, 1, 1), 0); /* full */
	assert_int_equal(p.used, 1024);
	assert_int_equal(pmm_free(&p, big, 512), 0);
	assert_int_equal(p.used, 512);
}

static void bad_frees(void **state)
{
	(void)state;
	pmm_init(&p, BASE, 16, bm);
	uint64_t a = pmm_alloc(&p, 4, 1);
	assert_int_equal(pmm_free(&p, a + 1, 1), -1);             /* not page aligned */
	assert_int_equal(pmm_free(&p, BASE - PAGE_SIZE, 1), -1);  /* below the pool */
	assert_int_equal(pmm_free(&p, BASE + 15 * PAGE_SIZE, 2), -1); /* past the end */
	assert_int_equal(pmm_free(&p, a, 5), -1);                 /* partly free: nothing changes */
	assert_int_equal(p.used, 4);
	assert_int_equal(pmm_free(&p, a, 4), 0);
	assert_int_equal(pmm_alloc(&p, 0, 1), 0);
	assert_int_equal(pmm_alloc(&p, 17, 1), 0);
}

static void reserve(void **state)
{
	(void)state;
	pmm_init(&p, BASE, 8, bm);
	pmm_reserve(&p, BASE, 2);
	pmm_reserve(&p, BASE, 2); /* idempotent */
	assert_int_equal(p.used, 2);
	assert_int_equal(pmm_alloc(&p, 1, 1), BASE + 2 * PAGE_SIZE);
}

static void random_no_overlap(void **state)
{
	(void)state;
	enum { NP = 2048 };
	static unsigned char owner[NP];
	struct { uint64_t at, n; } live[256];
	int nlive = 0;
	pmm_init(&p, BASE, NP, bm);
	srand(2);
	for (int i = 0; i < NP; i++)
		owner[i] = 0;
	for (int op = 0; op < 20000; op++) {
		if (nlive < 256 && (rand() % 3)) {
			uint64_t n = 1 + rand() % 16, al = 1u << (rand() % 4);
			uint64_t at = pmm_alloc(&p, n, al);
			if (!at)
				continue;
			uint64_t pg = (at - BASE) / PAGE_SIZE;
			assert_int_equal(pg % al, 0);
			for (uint64_t j = 0; j < n; j++) {
				assert_int_equal(owner[pg + j], 0);
				owner[pg + j] = 1;
			}
			live[nlive].at = at;
			live[nlive++].n = n;
		} else if (nlive) {
			int k = rand() % nlive;
			assert_int_equal(pmm_free(&p, live[k].at, live[k].n), 0);
			uint64_t pg = (live[k].at - BASE) / PAGE_SIZE;
			for (uint64_t j = 0; j < live[k].n; j++)
				owner[pg + j] = 0;
			live[k] = live[--nlive];
		}
	}
	uint64_t used = 0;
	for (int i = 0; i < NP; i++)
		used += owner[i];
	assert_int_equal(p.used, used);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(basic),     cmocka_unit_test(alignment_and_runs), cmocka_unit_test(bad_frees),
		cmocka_unit_test(reserve),   cmocka_unit_test(random_no_overlap),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
