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

/* Exits taken so far by the lowest Nestor (level 0). */
static uint64_t total_exits(void)
{
	return nestor_hypercall(NESTOR_HC_EXIT_STATS, NESTOR_STATS_TOTAL, 0, 0).rbx; /* RDX = 0: level 0 */
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

/* A Bochs shutdown-port write that is not part of the word "Shutdown":
 * every Nestor intercepts the port and passes such bytes on. */
static __attribute__((noinline)) uint64_t loop_portio(unsigned n)
{
	uint64_t t0 = rdtsc();
	for (unsigned i = 0; i < n; i++)
		__asm__ volatile("outb %%al, %%dx" : : "a"(0), "d"(0x8900), "c"(0) : "rbx", "memory");
	return rdtsc() - t0;
}

static void measure(const char *name, uint64_t (*loop)(unsigned))
{
	bool nestor = nestor_present();
	loop(1);
	loop_empty(1);
	/* Reading level 0's counter costs exits itself (the hypercall is
	 * forwarded down the stack): measure that cost with nothing in
	 * between, and take it off. */
	uint64_t overhead = 0, e0 = 0, e1 = 0;
	if (nestor) {
		uint64_t a = total_exits();
		overhead = total_exits() - a;
		e0 = total_exits();
	}
	uint64_t t = loop(N);
	if (nestor)
		e1 = total_exits();
	uint64_t base = loop_empty(N);
	uint64_t d = t - base, e = nestor ? e1 - e0 - overhead : 0;
	/* Exact division is expected in a deterministic emulator; report the
	 * remainders so a non-constant cost is visible. */
	env("%s ticks_per_op=%llu remainder=%llu exits_per_op=%llu exits_remainder=%llu", name,
	    (unsigned long long)(d / N), (unsigned long long)(d % N), (unsigned long long)(e / N),
	    (unsigned long long)(e % N));
}

TEST(bench, cpuid) { measure("cpuid", loop_cpuid); }
TEST(bench, io) { measure("io", loop_portio); }
TEST(bench, out80) { measure("out80", loop_out); }
