/* mtrr.c - differential tests of writes to the MTRRs (SDM Vol. 3A 12.11).
 *
 * Which writes a CPU takes and which it refuses with #GP(0) - every type
 * byte of the fixed ranges, the reserved bits of PHYSBASE/PHYSMASK and of
 * MTRR_DEF_TYPE - read back after each; then overlapping variable ranges of
 * every pair of types, partly covered large pages and mixed fixed ranges,
 * with memory read and written under each.  Under Nestor each accepted write
 * makes it recompute the memory types of its EPT (vmx/mtrr.c); the guest
 * must see only what it wrote.  Every MTRR is restored. */
#include "guest/test.h"
#include "lib/format.h"
#include "lib/x86.h"

#define MTRR_DEF 0x2ff
#define MTRR_CAP 0xfe
#define MASK_V (1ull << 11)

struct msrop {
	uint32_t msr;
	uint64_t val;
};
static void rd_fn(void *p)
{
	struct msrop *o = p;
	o->val = rdmsr(o->msr);
}
static void wr_fn(void *p)
{
	struct msrop *o = p;
	wrmsr(o->msr, o->val);
}

/* Writes val, reads it back, prints both; returns true if the write took. */
static bool put(const char *what, uint32_t msr, uint64_t val)
{
	struct msrop o = { msr, val };
	struct fault f, rf;
	char buf[40];
	bool hit = catch_fault(wr_fn, &o, &f);
	struct msrop r = { msr, 0 };
	bool rhit = catch_fault(rd_fn, &r, &rf);
	if (hit)
		say("%03x %-28s <- %016llx -> %s", msr, what, (unsigned long long)val,
		    fault_str(buf, sizeof(buf), true, &f));
	else
		say("%03x %-28s <- %016llx -> ok, reads %016llx%s", msr, what, (unsigned long long)val,
		    (unsigned long long)r.val, rhit ? " (read faults)" : "");
	return !hit;
}

static unsigned maxphyaddr(void) { return cpuid(0x80000008, 0).eax & 0xff; }

/* The variable pairs whose mask has V = 0 (free to use), at most two. */
static unsigned free_pairs(unsigned vcnt, unsigned out[2])
{
	unsigned n = 0;
	for (unsigned i = 0; i < vcnt && n < 2; i++)
		if (!(rdmsr(0x201 + 2 * i) & MASK_V))
			out[n++] = i;
	return n;
}

/* Touches the 8 MiB at 0x2000000 (inside every depth's guest RAM):
 * writes a pattern a page apart, reads it back. */
static bool touch(uint64_t salt)
{
	volatile uint64_t *p = (volatile uint64_t *)0x2000000;
	for (unsigned i = 0; i < 2048; i++)
		p[i * 512] = salt ^ i;
	for (unsigned i = 0; i < 2048; i++)
		if (p[i * 512] != (salt ^ i))
			return false;
	return true;
}

TEST(msr, mtrr_writes)
{
	if (!(cpuid(1, 0).edx & (1u << 12))) {
		say("no MTRRs");
		return;
	}
	uint64_t cap = rdmsr(MTRR_CAP), def = rdmsr(MTRR_DEF);
	uint64_t above = ~((1ull << maxphyaddr()) - 1);

	/* MTRR_DEF_TYPE: the type (0, 1, 4, 5, 6 valid), FE, E; the rest reserved. */
	static const uint8_t types[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 0xff };
	for (unsigned i = 0; i < sizeof(types); i++) {
		char what[32];
		ksnprintf(what, sizeof(what), "DEF_TYPE type %u", types[i]);
		put(what, MTRR_DEF, (def & ~0xffull) | types[i]);
		wrmsr(MTRR_DEF, def);
	}
	put("DEF_TYPE E=0 (all UC)", MTRR_DEF, def & ~(1ull << 11));
	CHECK(touch(1), "memory with the MTRRs off");
	put("DEF_TYPE FE=0", MTRR_DEF, def & ~(1ull << 10));
	CHECK(touch(2), "memory with the fixed ranges off");
	put("DEF_TYPE bit 9", MTRR_DEF, def | (1ull << 9));
	put("DEF_TYPE bit 32", MTRR_DEF, def | (1ull << 32));
	wrmsr(MTRR_DEF, def);

	/* Fixed ranges: eight type bytes each, every byte checked. */
	if (cap & (1u << 8)) {
		static const uint32_t fixed[] = { 0x250, 0x258, 0x259, 0x268, 0x269, 0x26a,
						  0x26b, 0x26c, 0x26d, 0x26e, 0x26f };
		for (unsigned i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
			uint64_t old = rdmsr(fixed[i]);
			char what[32];
			ksnprintf(what, sizeof(what), "FIX all WB");
			CHECK(put(what, fixed[i], 0x0606060606060606ull), "fixed MTRR %x refused WB", fixed[i]);
			/* A bad type (2, 3, 7, 8) in byte i % 8. */
			unsigned b = i % 8, bad = (unsigned[]){ 2, 3, 7, 8 }[i % 4];
			ksnprintf(what, sizeof(what), "FIX byte %u type %u", b, bad);
			CHECK(!put(what, fixed[i], (0x0606060606060606ull & ~(0xffull << (8 * b))) | (uint64_t)bad << (8 * b)),
			      "fixed MTRR %x took type %u", fixed[i], bad);
			/* Mixed types inside one MSR: the EPT must split its pages. */
			put("FIX mixed UC/WB/WT/WC/WP", fixed[i], 0x0600040105000106ull);
			CHECK(touch(3 + i), "memory with mixed fixed ranges");
			wrmsr(fixed[i], old);
		}
	} else {
		say("no fixed-range MTRRs");
	}

	/* Variable ranges: reserved bits, then overlaps. */
	unsigned pair[2], vcnt = cap & 0xff;
	unsigned n = free_pairs(vcnt, pair);
	say("%u free variable pairs (of %u)", n, vcnt);
	if (n < 2)
		return;
	uint32_t b0 = 0x200 + 2 * pair[0], m0 = b0 + 1, b1 = 0x200 + 2 * pair[1], m1 = b1 + 1;
	uint64_t old[4] = { rdmsr(b0), rdmsr(m0), rdmsr(b1), rdmsr(m1) };
	for (unsigned i = 0; i < sizeof(types); i++) {
		char what[32];
		ksnprintf(what, sizeof(what), "PHYSBASE type %u", types[i]);
		put(what, b0, 0x2000000 | types[i]);
	}
	put("PHYSBASE bit 8", b0, 0x2000006 | (1ull << 8));
	put("PHYSBASE bit 11", b0, 0x2000006 | (1ull << 11));
	put("PHYSBASE above MAXPHYADDR", b0, 0x2000006 | (above & ~(above << 1)));
	put("PHYSBASE bit 63", b0, 0x2000006 | (1ull << 63));
	put("PHYSMASK bit 0", m0, 0xffe000000ull | 1);
	put("PHYSMASK bit 10", m0, 0xffe000000ull | (1ull << 10));
	put("PHYSMASK above MAXPHYADDR", m0, ((~above) & ~0x7fffffull) | (above & ~(above << 1)));
	wrmsr(b0, old[0]), wrmsr(m0, old[1]);

	/* Overlaps (SDM 12.11.4.1): UC wins, WT wins over WB, the rest is
	 * undefined.  Range 0: 8 MiB at 0x2000000; range 1: 1 MiB inside it,
	 * so that a 2 MiB page is only partly covered. */
	static const uint8_t over[][2] = { { 6, 6 }, { 6, 0 }, { 0, 6 }, { 6, 4 }, { 4, 6 }, { 6, 1 }, { 5, 6 }, { 4, 4 } };
	uint64_t mask8m = ((~above) & ~0x7fffffull) | MASK_V, mask1m = ((~above) & ~0xfffffull) | MASK_V;
	for (unsigned i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
		char what[32];
		ksnprintf(what, sizeof(what), "overlap %u over %u: base 0", over[i][1], over[i][0]);
		put(what, b0, 0x2000000 | over[i][0]);
		put("  mask 0 (8 MiB)", m0, mask8m);
		put("  base 1", b1, 0x2300000 | over[i][1]);
		put("  mask 1 (1 MiB)", m1, mask1m);
		CHECK(touch(0x100 + i), "memory under overlapping ranges %u/%u", over[i][0], over[i][1]);
		wrmsr(m1, old[3]), wrmsr(m0, old[1]);
	}
	wrmsr(b0, old[0]), wrmsr(m0, old[1]), wrmsr(b1, old[2]), wrmsr(m1, old[3]);
	/* The first MSR past the variable pairs, and one between the fixed ones. */
	put("past the variable pairs", 0x200 + 2 * vcnt, 0);
	put("between fixed 259 and 268", 0x25a, 0);
}
