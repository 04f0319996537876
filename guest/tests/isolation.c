/* isolation.c - the memory the guest is given is all its own, and the memory
 * it is not given is out of its reach.
 *
 * 1. Every page of every available region of the memory map (above 1 MiB,
 *    outside the kernel image and what the boot loader handed over) gets a
 *    pattern unique to its address; then every page is read back.  A page
 *    missing, read-only or aliased to another page shows up as a mismatch.
 * 2. The machine's real RAM size comes from the CMOS (which a hypervisor
 *    passes through); every page of [1 MiB, end of RAM) that the map does
 *    not make available (holes, reserved ranges) and that is not an ACPI
 *    table range is read, written and read again.  On bare Bochs there is
 *    none (only the ACPI tables, skipped); under Nestor it is Nestor's own
 *    memory, which must read as all ones and ignore writes.
 * The counts depend on the memory map, so they are env() lines. */
#include "guest/test.h"
#include "lib/string.h"
#include "lib/x86.h"

extern const char __image_start[], __image_end[];

#define PAGE 4096ull
#define LOW_LIMIT (1ull << 20)
#define MAP_LIMIT (4ull << 30) /* the guest kernel identity-maps 0-4 GiB */

struct span {
	uint64_t lo, hi;
};

static struct span excl[2 * MB2_MAX_MODULES + 8];
static unsigned n_excl;

static void exclude(uint64_t lo, uint64_t hi)
{
	if (n_excl < sizeof(excl) / sizeof(excl[0]) && hi > lo)
		excl[n_excl++] = (struct span){ lo & ~(PAGE - 1), (hi + PAGE - 1) & ~(PAGE - 1) };
}

static void exclude_string(const char *s)
{
	if (s)
		exclude((uint64_t)s, (uint64_t)s + strlen(s) + 1);
}

/* What must not be overwritten: the kernel image (code, data, stacks, page
 * tables), the modules and the strings the boot information points to
 * (with multiboot v1 they stay in the loader's memory). */
static void build_exclusions(void)
{
	n_excl = 0;
	exclude(0, LOW_LIMIT);
	exclude((uint64_t)__image_start, (uint64_t)__image_end);
	exclude_string(boot_info.cmdline);
	exclude_string(boot_info.loader_name);
	for (unsigned i = 0; i < boot_info.n_modules; i++) {
		exclude(boot_info.modules[i].start, boot_info.modules[i].end);
		exclude_string(boot_info.modules[i].string);
	}
}

static bool excluded(uint64_t a)
{
	for (unsigned i = 0; i < n_excl; i++)
		if (a >= excl[i].lo && a < excl[i].hi)
			return true;
	return false;
}

/* One qword per page, at an offset that moves through the page. */
static volatile uint64_t *slot(uint64_t page) { return (volatile uint64_t *)(page + ((page >> 12) * 8 & 0xff8)); }
static uint64_t invert;
static uint64_t pattern(uint64_t page) { return (page * 0x9e3779b97f4a7c15ull) ^ 0x5aa5c33c0ff0a55aull ^ invert; }

/* Calls fn for every testable page of the available regions. */
static uint64_t for_each_page(bool (*fn)(uint64_t page, void *ctx), void *ctx)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < boot_info.n_mmap; i++) {
		const struct mb2_mmap_entry *e = &boot_info.mmap[i];
		if (e->type != MB2_MEM_AVAILABLE)
			continue;
		uint64_t lo = (e->base + PAGE - 1) & ~(PAGE - 1), hi = (e->base + e->len) & ~(PAGE - 1);
		if (hi > MAP_LIMIT)
			hi = MAP_LIMIT;
		for (uint64_t p = lo; p < hi; p += PAGE) {
			if (excluded(p))
				continue;
			if (fn(p, ctx))
				n++;
		}
	}
	return n;
}

static bool write_one(uint64_t page, void *ctx)
{
	*slot(page) = pattern(page);
	return true;
}

struct verify {
	uint64_t bad;
};

static bool verify_one(uint64_t page, void *ctx)
{
	struct verify *v = ctx;
	uint64_t got = *slot(page), want = pattern(page);
	if (got != want) {
		if (v->bad++ < 4)
			CHECK(got == want, "page %llx holds %016llx, wrote %016llx", (unsigned long long)page,
			      (unsigned long long)got, (unsigned long long)want);
	}
	return true;
}

TEST(isolation, own_memory)
{
	build_exclusions();
	uint64_t avail = 0, beyond = 0;
	for (unsigned i = 0; i < boot_info.n_mmap; i++) {
		const struct mb2_mmap_entry *e = &boot_info.mmap[i];
		if (e->type != MB2_MEM_AVAILABLE)
			continue;
		avail += e->len;
		if (e->base + e->len > MAP_LIMIT)
			beyond += e->base + e->len - (e->base > MAP_LIMIT ? e->base : MAP_LIMIT);
	}
	CHECK(avail > 0, "no available memory in the map");
	uint64_t written = for_each_page(write_one, 0);
	struct verify v = { 0 };
	for_each_page(verify_one, &v);
	env("%llu pages of %llu KiB available written and read back, %llu KiB above 4 GiB not tested",
	    (unsigned long long)written, (unsigned long long)(avail >> 10), (unsigned long long)(beyond >> 10));
	say("pattern walk over the available memory: %s", v.bad ? "MISMATCHES" : "all patterns read back");
	CHECK(v.bad == 0, "%llu pages did not read back their pattern", (unsigned long long)v.bad);
	CHECK(written >= 1024, "only %llu pages tested", (unsigned long long)written);
	/* A second round with the patterns inverted: every bit is stored. */
	invert = ~0ull;
	for_each_page(write_one, 0);
	for_each_page(verify_one, &v);
	invert = 0;
	say("inverted patterns: %s", v.bad ? "MISMATCHES" : "all read back");
	CHECK(v.bad == 0, "inverted patterns did not read back");
}

static uint8_t cmos(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static const struct mb2_mmap_entry *map_entry(uint64_t a)
{
	for (unsigned i = 0; i < boot_info.n_mmap; i++) {
		const struct mb2_mmap_entry *e = &boot_info.mmap[i];
		if (a >= e->base && a < e->base + e->len)
			return e;
	}
	return 0;
}

/* Probes one page outside the map: it must read all ones and drop the write
 * (if it turns out to be memory, it gets its value back). */
struct probe {
	uint64_t probed, ones, stuck, hole;
};

static void probe_page(uint64_t p, const struct mb2_mmap_entry *e, struct probe *r)
{
	volatile uint64_t *q = slot(p);
	uint64_t before = *q, want = pattern(p);
	*q = want;
	uint64_t after = *q;
	if (after == want)
		*q = before;
	r->probed++;
	r->hole += !e;
	r->ones += before == ~0ull && after == ~0ull;
	if (after == want) {
		if (r->stuck++ < 4)
			CHECK(after != want, "page %llx outside the map is writable memory (type %u)",
			      (unsigned long long)p, e ? e->type : 0);
	} else if (before != ~0ull || after != ~0ull) {
		CHECK(before == ~0ull && after == ~0ull, "page %llx reads %016llx then %016llx",
		      (unsigned long long)p, (unsigned long long)before, (unsigned long long)after);
	}
}

TEST(isolation, beyond_the_map)
{
	uint64_t above16 = cmos(0x34) | (uint64_t)cmos(0x35) << 8;
	uint64_t above1 = cmos(0x30) | (uint64_t)cmos(0x31) << 8;
	uint64_t ram_end = above16 ? (16ull << 20) + (above16 << 16) : LOW_LIMIT + (above1 << 10);
	if (ram_end > MAP_LIMIT)
		ram_end = MAP_LIMIT;
	say("CMOS: RAM ends at %llu MiB", (unsigned long long)(ram_end >> 20));

	/* Every page of [1 MiB, end of RAM) the map does not give the guest:
	 * holes and reserved ranges (Nestor's memory at depth n), except the
	 * firmware's ACPI tables (at depth 0 they are real, do not touch). */
	struct probe r = { 0, 0, 0, 0 };
	uint64_t skipped = 0, span_start = 0;
	unsigned spans = 0;
	for (uint64_t p = LOW_LIMIT; p <= ram_end; p += PAGE) {
		const struct mb2_mmap_entry *e = p < ram_end ? map_entry(p) : 0;
		bool acpi = e && (e->type == MB2_MEM_ACPI_RECLAIMABLE || e->type == MB2_MEM_NVS);
		bool probe = p < ram_end && !acpi && !(e && e->type == MB2_MEM_AVAILABLE);
		if (probe && !span_start)
			span_start = p;
		if (!probe && span_start) {
			if (spans++ < 8)
				env("probing [%llx, %llx) (%s)", (unsigned long long)span_start, (unsigned long long)p,
				    map_entry(span_start) ? mb2_mem_type_name(map_entry(span_start)->type)
							  : "not in the map");
			span_start = 0;
		}
		skipped += acpi;
		if (probe)
			probe_page(p, e, &r);
	}
	env("%llu pages probed (%llu not in the map), %llu read all ones and dropped the write, %llu kept it; "
	    "%llu ACPI pages skipped",
	    (unsigned long long)r.probed, (unsigned long long)r.hole, (unsigned long long)r.ones,
	    (unsigned long long)r.stuck, (unsigned long long)skipped);
	say("RAM outside the map: %s",
	    r.stuck ? "WRITABLE" : r.probed == r.ones ? "out of reach" : "NOT ALL ONES");

	/* Addresses no RAM or device decodes (every 256 MiB from the end of
	 * RAM to 3 GiB, below the PCI devices): all ones, writes dropped. */
	unsigned n = 0, good = 0;
	uint64_t first = 0, last = 0;
	for (uint64_t a = (ram_end + (256ull << 20) - 1) & ~((256ull << 20) - 1); a < (3ull << 30);
	     a += 256ull << 20) {
		volatile uint64_t *q = (volatile uint64_t *)(a + 0x1238);
		uint64_t before = *q;
		*q = 0x0123456789abcdefull;
		uint64_t after = *q;
		if (!n++)
			first = a;
		last = a;
		good += before == ~0ull && after == ~0ull;
		CHECK(before == ~0ull && after == ~0ull, "unbacked address %llx reads %016llx, then %016llx",
		      (unsigned long long)a, (unsigned long long)before, (unsigned long long)after);
	}
	say("unbacked addresses %llx..%llx (%u): %u read all ones and drop writes", (unsigned long long)first,
	    (unsigned long long)last, n, good);
}
