/* bench.c - measurements for `make bench` (not part of the default run).
 *
 * In Bochs RDTSC counts emulated instructions, so a cost in ticks is exact.
 * The cost of an operation is the difference between a loop doing it and
 * the same loop without it, over N iterations, after one warm-up round:
 *   ticks_per_op = (T(loop with op) - T(loop without)) / N
 * Under Nestor the exits taken per operation come from the exit-statistics
 * hypercall read before and after the loop (minus the first hypercall). */
#include "guest/nestor.h"
#include "guest/test.h"
#include "lib/x86.h"

#define N 2000

static uint64_t total_exits(void)
{
	return nestor_hypercall(NESTOR_HC_EXIT_STATS, NESTOR_STATS_TOTAL, 0, 0).rbx;
}

/* Both loops have the same shape; only the instruction inside differs. */
static __attribute__((noinline)) uint64_t loop_cpuid(unsigned n)
{
	uint64_t t0 = rdtsc();
	for (unsigned i = 0; i < n; i++)
		__asm__ volatile("cpuid" : : "a"(0), "c"(0) : "rbx", "rdx", "memory");
	return rdtsc() - t0;
}

static __attribute__((noinline)) uint64_t loop_empty(unsigned n)
{
	uint64_t t0 = rdtsc();
	for (unsigned i = 0; i < n; i++)
		__asm__ volatile("" : : "a"(0), "c"(0) : "rbx", "rdx", "memory");
	return rdtsc() - t0;
}

/* An I/O port write that Nestor does not intercept (POST code port). */
static __attribute__((noinline)) uint64_t loop_out(unsigned n)
{
	uint64_t t0 = rdtsc();
	for (unsigned i = 0; i < n; i++)
		__asm__ volatile("outb %%al, $0x80" : : "a"(0), "c"(0) : "rbx", "rdx", "memory");
	return rdtsc() - t0;
}

static void measure(const char *name, uint64_t (*loop)(unsigned))
{
	bool nestor = nestor_present();
	loop(1);
	loop_empty(1);
	uint64_t e0 = nestor ? total_exits() : 0;
	uint64_t t = loop(N);
	uint64_t e1 = nestor ? total_exits() : 0;
	uint64_t base = loop_empty(N);
	uint64_t d = t - base;
	/* Exact division is expected in a deterministic emulator; report the
	 * remainder so a non-constant cost is visible. */
	env("%s ticks_per_op=%llu remainder=%llu exits_per_op=%llu exits_remainder=%llu", name,
	    (unsigned long long)(d / N), (unsigned long long)(d % N),
	    (unsigned long long)(nestor ? (e1 - e0 - 1) / N : 0), (unsigned long long)(nestor ? (e1 - e0 - 1) % N : 0));
}

TEST(bench, cpuid) { measure("cpuid", loop_cpuid); }
TEST(bench, io) { measure("io", loop_out); }
