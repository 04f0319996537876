/* bench.c - measurements for `make bench` (not part of the default run).
 *
 * In Bochs RDTSC counts emulated instructions, so a cost in ticks is exact.
 * The cost of an operation is the difference between a loop doing it and
 * the same loop without it, over N iterations, after one warm-up round:
 *   ticks_per_op = (T(loop with op) - T(loop without)) / N
 * Under Nestor the exits taken per operation come from the exit-statistics
 * hypercall read before and after the loop (minus the first hypercall). */
#include "guest/kernel.h"
#include "guest/nestor.h"
#include "guest/test.h"
#include "lib/x86.h"

#define N 2000
#define NREASONS 80

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

/* --- which level takes which exits ---------------------------------------
 * Every Nestor level k below us keeps exit counters per running level and
 * reason.  Snapshots taken at every level around a loop, minus the same
 * around an empty loop (the snapshot hypercalls cost exits themselves, the
 * same ones both times), give exactly the exits each level takes per op. */
#define MAX_LEVELS 9
struct split_cell {
	uint64_t exits, ticks;
};
static struct split_cell split_base[MAX_LEVELS][MAX_LEVELS + 1][NREASONS];
static struct split_cell split_op[MAX_LEVELS][MAX_LEVELS + 1][NREASONS];

static struct split_cell snap_count(unsigned k, unsigned from, unsigned reason, unsigned slot)
{
	struct hc_result r = nestor_hypercall5(NESTOR_HC_EXIT_STATS, reason, 0, k, from, slot);
	return (struct split_cell){ r.rbx, r.rcx };
}

static void snap_all(unsigned slot, unsigned depth)
{
	for (unsigned k = 0; k < depth; k++)
		nestor_hypercall(NESTOR_HC_STATS_SNAPSHOT, slot, 0, k);
}

/* Exits level k took while level `from` ran, and the ticks it spent on
 * them, between the two snapshots. */
static void split_read(struct split_cell out[MAX_LEVELS][MAX_LEVELS + 1][NREASONS], unsigned depth)
{
	for (unsigned k = 0; k < depth; k++) {
		for (unsigned from = k + 1; from <= depth; from++) {
			bool any = snap_count(k, from, NESTOR_STATS_TOTAL, 2).exits !=
				   snap_count(k, from, NESTOR_STATS_TOTAL, 1).exits;
			for (unsigned r = 0; r < NREASONS; r++) {
				struct split_cell a = { 0, 0 }, b = { 0, 0 };
				if (any)
					a = snap_count(k, from, r, 1), b = snap_count(k, from, r, 2);
				out[k][from][r] = (struct split_cell){ b.exits - a.exits, b.ticks - a.ticks };
			}
		}
	}
}

/* Level 0's ticks per phase of its nested transitions between the two
 * snapshots - a profiling build's (`make prof`; 0 otherwise). */
static const char *const phase_names[NESTOR_PROF_PHASES] = NESTOR_PROF_PHASE_NAMES;
#define NPHASES NESTOR_PROF_PHASES
static struct split_cell phase_base[NPHASES], phase_op[NPHASES];

static void phases_read(struct split_cell *out)
{
	for (unsigned p = 0; p < NPHASES; p++) {
		struct split_cell a = snap_count(0, 0, NESTOR_STATS_PHASE0 + p, 1);
		struct split_cell b = snap_count(0, 0, NESTOR_STATS_PHASE0 + p, 2);
		out[p] = (struct split_cell){ b.exits - a.exits, b.ticks - a.ticks };
	}
}

static void split_run(uint64_t (*loop)(unsigned), unsigned n, unsigned depth,
		      struct split_cell out[MAX_LEVELS][MAX_LEVELS + 1][NREASONS])
{
	snap_all(1, depth);
	loop(n);
	snap_all(2, depth);
	split_read(out, depth);
	phases_read(out == split_op ? phase_op : phase_base);
}

static void measure_split(const char *name, uint64_t (*loop)(unsigned), unsigned depth)
{
	if (depth > MAX_LEVELS - 1)
		return;
	split_run(loop, 0, depth, split_base); /* warm-up */
	split_run(loop, 0, depth, split_base);
	split_run(loop, N, depth, split_op);
	for (unsigned k = 0; k < depth; k++)
		for (unsigned from = k + 1; from <= depth; from++)
			for (unsigned r = 0; r < NREASONS; r++) {
				uint64_t d = split_op[k][from][r].exits - split_base[k][from][r].exits;
				uint64_t t = split_op[k][from][r].ticks - split_base[k][from][r].ticks;
				if (d)
					env("%s split taken_by=%u running=%u reason=%u exits_per_op=%llu remainder=%llu "
					    "ticks_per_op=%llu",
					    name, k, from, r, (unsigned long long)(d / N), (unsigned long long)(d % N),
					    (unsigned long long)(t / N));
			}
	for (unsigned p = 0; p < NPHASES; p++) {
		uint64_t c = phase_op[p].exits - phase_base[p].exits, t = phase_op[p].ticks - phase_base[p].ticks;
		if (c)
			env("%s profile phase=%s passes_per_op=%llu ticks_per_op=%llu remainder=%llu", name, phase_names[p],
			    (unsigned long long)(c / N), (unsigned long long)(t / N), (unsigned long long)(t % N));
	}
}

/* Ticks (*d) and level-0 exits (*e) of N operations. */
static void measure_once(uint64_t (*loop)(unsigned), bool nestor, uint64_t *d, uint64_t *e)
{
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
	*d = t - base;
	*e = nestor ? e1 - e0 - overhead : 0;
}

static void measure(const char *name, uint64_t (*loop)(unsigned))
{
	bool nestor = nestor_present();
	uint64_t d, e;
	/* The first round pays for what runs for the first time at every level
	 * (shadow-EPT faults, first touches): only the second one counts. */
	measure_once(loop, nestor, &d, &e);
	measure_once(loop, nestor, &d, &e);
	/* Exact division is expected in a deterministic emulator; report the
	 * remainders so a non-constant cost is visible. */
	env("%s ticks_per_op=%llu remainder=%llu exits_per_op=%llu exits_remainder=%llu", name,
	    (unsigned long long)(d / N), (unsigned long long)(d % N), (unsigned long long)(e / N),
	    (unsigned long long)(e % N));
	if (nestor)
		measure_split(name, loop, nestor_level() + 1);
}

/* RDMSR of IA32_SYSENTER_CS, which no Nestor intercepts. */
static __attribute__((noinline)) uint64_t loop_rdmsr(unsigned n)
{
	uint64_t t0 = rdtsc();
	for (unsigned i = 0; i < n; i++)
		__asm__ volatile("rdmsr" : : "a"(0), "c"(0x174) : "rbx", "rdx", "memory");
	return rdtsc() - t0;
}

TEST(bench, cpuid) { measure("cpuid", loop_cpuid); }
TEST(bench, io) { measure("io", loop_portio); }
TEST(bench, out80) { measure("out80", loop_out); }
TEST(bench, rdmsr) { measure("rdmsr", loop_rdmsr); }

/* --- first touch of a page -----------------------------------------------
 * What the hypervisor below pays the first time the guest uses a page of
 * its RAM: nothing extra on Bochs or under Nestor, whose EPTs map all of a
 * guest's memory up front; under Linux's KVM an EPT violation and a page
 * of the VMM's anonymous memory per 4 KiB (bench KVM_EPTFAULT<d>).  The
 * pages: the 1 MiB that ends 1 MiB below the top of the highest RAM region
 * under 4 GiB, which nothing touched before (the kernel and its boot
 * information are low). */
#define TOUCH_PAGES 256

static __attribute__((noinline)) uint64_t loop_touch(volatile uint8_t *base, unsigned n)
{
	uint64_t t0 = rdtsc();
	for (unsigned i = 0; i < n; i++)
		base[(uint64_t)i * 4096] = 1;
	return rdtsc() - t0;
}

TEST(bench, first_touch)
{
	uint64_t top = 0;
	for (unsigned i = 0; i < boot_info.n_mmap; i++) {
		const struct mb2_mmap_entry *e = &boot_info.mmap[i];
		uint64_t end = e->base + e->len;
		if (e->type == 1 && e->len >= (4u << 20) && end <= (1ull << 32) && end > top)
			top = end;
	}
	if (!top) {
		say("no RAM region of 4 MiB below 4 GiB");
		return;
	}
	volatile uint8_t *base = (volatile uint8_t *)(uintptr_t)((top - (2u << 20)) & ~0xfffull);
	uint64_t first = loop_touch(base, TOUCH_PAGES), again = loop_touch(base, TOUCH_PAGES);
	uint64_t d = first > again ? first - again : 0;
	env("first_touch ticks_per_op=%llu remainder=%llu", (unsigned long long)(d / TOUCH_PAGES),
	    (unsigned long long)(d % TOUCH_PAGES));
}
