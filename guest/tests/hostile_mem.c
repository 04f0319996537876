/* hostile_mem.c - memory that does not exist, used as a weapon (issue 11,
 * attacks 7, 9, 10 and 11): thousands of reads of unbacked addresses (level
 * 0 allocated EPT tables for each until its pool ran out), event delivery
 * writing into memory that is not RAM (Nestor took the delivery's write for
 * the instruction's), the xAPIC moved onto a page of the guest's or of
 * nobody's, instructions with odd prefixes writing into memory that is not
 * RAM (the decoder got their length wrong), and L1's EPT with reserved bits
 * in its table entries.  On a PC, memory that does not exist reads all ones
 * and drops writes; everything else about the instruction happens. */
#include "guest/nestor.h"
#include "guest/test.h"
#include "guest/tests/hostile.h"
#include "lib/string.h"
#include "lib/x86.h"

/* --- 7. pool exhaustion ------------------------------------------------------ */

/* Reads (and some writes) at `n` addresses `step` apart from `first`,
 * through the window's 2 MiB slots; returns how many read all ones. */
static uint64_t sweep(uint64_t first, uint64_t step, unsigned n, unsigned writes, uint64_t *bad_at)
{
	uint64_t ones = 0;
	for (unsigned done = 0; done < n;) {
		unsigned batch = n - done < 512 ? n - done : 512;
		for (unsigned i = 0; i < batch; i++)
			hx_map2m_noflush(i, first + (uint64_t)(done + i) * step);
		hx_tlb_flush();
		for (unsigned i = 0; i < batch; i++) {
			/* A different offset in each 2 MiB page (different EPT tables). */
			uint64_t off = ((uint64_t)(done + i) * 0x1238) & 0x1ffff8;
			volatile uint64_t *p = (volatile uint64_t *)(HX_WIN2M + (uint64_t)i * (2ull << 20) + off);
			if (done + i < writes)
				*p = 0x0123456789abcdefull;
			uint64_t v = *p;
			if (v == ~0ull)
				ones++;
			else if (!*bad_at)
				*bad_at = first + (uint64_t)(done + i) * step + off;
		}
		done += batch;
	}
	return ones;
}

/* The same from an L2 whose EPT (L1's) maps those addresses, under four
 * EPT roots in turn: level 0 keeps a shadow EPT per root, up to 1024 pages
 * each - on 769c975 the four took all of level 0's pool at their peak (it
 * recovered by clearing one); then L1 reads unbacked memory itself. */
static void reads_from_l2(void)
{
	if (!hx_have_1g_pages()) {
		/* The L2's window needs 1 GiB pages. */
		say("not tested (no 1 GiB pages)");
		return;
	}
	if (!hx_l2_begin())
		return;
	const unsigned gibs = 2, per_root = 1016, roots = 4;
	unsigned ones = 0, exits = 0;
	/* Guest-physical 16..17 GiB: L1's EPT sends them to host-physical
	 * 32..33 GiB (nothing there); the L2 sees them at HX_WIN1G.  Just
	 * under 1024 shadow pages per root. */
	for (unsigned g = 0; g < gibs; g++) {
		hx_ept_map_gib(g, 16 + g, (32ull + g) << 30);
		hx_map1g(g, (16ull + g) << 30);
	}
	hx_ept_flush();
	for (unsigned k = 0; k < roots; k++) {
		vmw(EPT_POINTER, hx_eptp_alt(k));
		hx_ept_flush_single(); /* this root only: the others stay cached */
		for (unsigned i = 0; i < per_root; i++) {
			vm.r.rbx = HX_WIN1G + (uint64_t)i * (2ull << 20) + (((uint64_t)i * 0x1238) & 0x1ffff8);
			vm.r.rax = 0;
			uint32_t rs = hx_run(hx_l2_read);
			exits += rs == EXIT_VMCALL;
			ones += rs == EXIT_VMCALL && vm.r.rax == ~0ull;
		}
	}
	say("an L2 read %u unbacked addresses 2 MiB apart under each of %u EPT roots: %u VMCALL exits, %u read all ones",
	    per_root, roots, exits, ones);
	CHECK(exits == per_root * roots && ones == per_root * roots, "all ones expected");
	hx_l2_end();
	/* The L2's shadows may not have taken what L1's own accesses need:
	 * L1 reads memory that is not there either. */
	volatile uint64_t *p = hx_map2m(0, 40ull << 30);
	uint64_t v = p[0x123];
	say("then L1 reads an unbacked address at 40 GiB: %016llx", (unsigned long long)v);
	CHECK(v == ~0ull, "all ones expected");
	hx_window_off();
}

HX_TEST(unbacked_reads_pool)
{
	unsigned mpa = hx_maxphyaddr();
	env("MAXPHYADDR %u", mpa);
	/* From 4 GiB (above RAM and above the 4 GiB every level maps) up. */
	const uint64_t base = 4ull << 30;
	unsigned n2m = 6144; /* 12 GiB of 2 MiB pages */
	unsigned n1g = mpa > 36 ? (unsigned)(((1ull << mpa) - (16ull << 30)) >> 30) : 0;
	if (n1g > 1024)
		n1g = 1024;
	uint64_t bad = 0;
	uint64_t ones = sweep(base, 2ull << 20, n2m, 64, &bad);
	say("%u reads 2 MiB apart from 4 GiB (64 after a write): %s", n2m,
	    ones == n2m ? "all ones" : "NOT ALL ONES");
	CHECK(ones == n2m, "%llu of %u read all ones (first other at %llx)", (unsigned long long)ones, n2m,
	      (unsigned long long)bad);
	ones = sweep(16ull << 30, 1ull << 30, n1g, 16, &bad);
	env("%u reads 1 GiB apart from 16 GiB", n1g);
	say("reads 1 GiB apart up to MAXPHYADDR: %s", ones == n1g ? "all ones" : "NOT ALL ONES");
	CHECK(ones == n1g, "%llu of %u read all ones (first other at %llx)", (unsigned long long)ones, n1g,
	      (unsigned long long)bad);
	/* And again: nothing was kept that makes a second round different. */
	ones = sweep(base, 2ull << 20, n2m, 0, &bad);
	say("the 2 MiB sweep again: %s", ones == n2m ? "all ones" : "NOT ALL ONES");
	CHECK(ones == n2m, "second sweep");
	hx_window_off();
	reads_from_l2();
}

/* --- 9. event delivery into memory that is not RAM --------------------------- */
extern const char hx_nostack_stubs[], hx_deliver_ud2[], hx_deliver_int3[];
extern volatile uint64_t hx_ev_count, hx_ev_vector, hx_ev_fall;
void hx_deliver(uint64_t rsp, int which);

struct __attribute__((packed)) gate {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, zero;
};
static struct gate nostack_idt[256] __attribute__((aligned(4096)));

/* UD2 (which = 0) or INT3 (1) with RSP at `rsp`, handled by a handler
 * that uses no stack; what a CPU shows: it runs once, the instruction
 * after is not reached, the frame is not there to read. */
static void deliver_case(const char *what, uint64_t rsp, volatile uint64_t *frame)
{
	for (int which = 0; which < 2; which++) {
		for (int v = 0; v < 256; v++) {
			uint64_t a = (uint64_t)(hx_nostack_stubs + 16 * v);
			nostack_idt[v] = (struct gate){ a & 0xffff, G_KCODE64, 0, 0x8e, (a >> 16) & 0xffff, a >> 32, 0 };
		}
		struct dtr saved, mine = { sizeof(nostack_idt) - 1, (uint64_t)nostack_idt };
		__asm__ volatile("sidt %0" : "=m"(saved));
		uint64_t fl = read_rflags();
		cli();
		hx_ev_count = hx_ev_vector = hx_ev_fall = 0;
		lidt(&mine);
		hx_deliver(rsp, which);
		lidt(&saved);
		if (fl & RFLAGS_IF)
			sti();
		bool ones = true;
		for (int i = 0; i < 6; i++)
			ones = ones && frame[i] == ~0ull;
		say("%s, %s: the handler ran %llu time(s) for %s, the next instruction %s, the frame reads %s", what,
		    which ? "INT3" : "UD2", (unsigned long long)hx_ev_count,
		    exception_mnemonic((unsigned)hx_ev_vector), hx_ev_fall ? "RAN" : "did not run",
		    ones ? "all ones" : "SOMETHING");
		CHECK(hx_ev_count == 1 && hx_ev_vector == (which ? EXC_BP : EXC_UD) && !hx_ev_fall && ones,
		      "%s: one delivery, nothing else", what);
	}
}

HX_TEST(event_delivery_nonram)
{
	/* RSP in the middle of a page that is not RAM (a Nestor's memory at
	 * depth >= 1, an unbacked address at depth 0). */
	uint64_t n = hx_nonram_page();
	deliver_case("RSP in a page that is not RAM", n + 0x800, (volatile uint64_t *)(n + 0x800 - 48));
	/* RSP in an unbacked page above 4 GiB (above what any level maps). */
	uint8_t *w = hx_map4k(8, 20ull << 30, HX_PTE_P | HX_PTE_W);
	deliver_case("RSP at 20 GiB", (uint64_t)w + 0x800, (volatile uint64_t *)(w + 0x800 - 48));
	hx_window_off();
}

/* --- 10. the xAPIC moved ------------------------------------------------------ */
struct wr {
	uint32_t msr;
	uint64_t v;
};
static void wrmsr_fn(void *p)
{
	struct wr *w = p;
	wrmsr(w->msr, w->v);
}
static uint32_t mmio32(uint64_t a) { return *(volatile uint32_t *)a; }

/* The xAPIC at `where`: its ID and version registers there, the old base,
 * the TPR written and read back there. */
static void apic_at(const char *what, uint64_t where, uint64_t msr0)
{
	uint32_t id0 = mmio32(0xfee00020), ver0 = mmio32(0xfee00030);
	struct wr w = { MSR_IA32_APIC_BASE, where | (msr0 & 0xfff) };
	struct fault f;
	bool hit = catch_fault(wrmsr_fn, &w, &f);
	char fs[24];
	uint64_t now = rdmsr(MSR_IA32_APIC_BASE);
	uint32_t id = mmio32(where + 0x20), ver = mmio32(where + 0x30), old = mmio32(0xfee00030);
	*(volatile uint32_t *)(where + 0x80) = 0x20;
	uint32_t tpr = mmio32(where + 0x80);
	*(volatile uint32_t *)(where + 0x80) = 0;
	say("%s: WRMSR %s, base now %s, ID %s, version %s, old base reads %08x, TPR written 20 reads %02x", what,
	    fault_str(fs, sizeof(fs), hit, &f), (now & ~0xfffull) == where ? "moved" : "NOT MOVED",
	    id == id0 ? "there" : "NOT THERE", ver == ver0 ? "there" : "NOT THERE", old, tpr);
	CHECK(!hit && (now & ~0xfffull) == where && id == id0 && ver == ver0 && tpr == 0x20, "%s: the xAPIC moves",
	      what);
	w.v = msr0;
	hit = catch_fault(wrmsr_fn, &w, &f);
	CHECK(!hit && rdmsr(MSR_IA32_APIC_BASE) == msr0 && mmio32(0xfee00030) == ver0, "%s: and back", what);
}

HX_TEST(apic_base_relocation)
{
	uint64_t msr0 = rdmsr(MSR_IA32_APIC_BASE);
	say("IA32_APIC_BASE: base %llx, enabled %u, BSP %u, x2APIC %u, version %08x",
	    (unsigned long long)(msr0 & ~0xfffull), (unsigned)((msr0 >> 11) & 1), (unsigned)((msr0 >> 8) & 1),
	    (unsigned)((msr0 >> 10) & 1), mmio32(0xfee00030));
	if (!(msr0 & (1u << 11)) || (msr0 & (1u << 10))) {
		say("not an enabled xAPIC: not tested");
		return;
	}
	/* Onto a page of the guest's own RAM: what was there is back after. */
	uint8_t *r = hx_pages[5];
	memset(r, 0x5c, 4096);
	apic_at("onto a RAM page of ours", pa(r), msr0);
	bool intact = true;
	for (int i = 0; i < 4096; i++)
		intact = intact && r[i] == 0x5c;
	say("that RAM page afterwards: %s", intact ? "intact" : "CHANGED");
	CHECK(intact, "the RAM under the xAPIC");
	/* Onto a page that is not RAM (a Nestor's memory at depth >= 1). */
	uint64_t n = hx_nonram_page();
	apic_at("onto a page that is not RAM", n, msr0);
	volatile uint64_t *q = (volatile uint64_t *)(n + 0x80);
	say("that page afterwards reads %016llx", (unsigned long long)*q);
	CHECK(*q == ~0ull, "not RAM: all ones");
	/* Reserved bits: #GP(0), nothing changes. */
	static const uint64_t bad[] = { 1ull << 0, 1ull << 9, 1ull << 63 };
	for (unsigned i = 0; i < 3; i++) {
		struct wr w = { MSR_IA32_APIC_BASE, msr0 | bad[i] };
		struct fault f;
		char fs[24];
		bool hit = catch_fault(wrmsr_fn, &w, &f);
		say("WRMSR with reserved bit %d: %s", __builtin_ctzll(bad[i]), fault_str(fs, sizeof(fs), hit, &f));
		CHECK(hit && f.vector == EXC_GP && rdmsr(MSR_IA32_APIC_BASE) == msr0, "#GP(0) expected");
	}
	struct wr w = { MSR_IA32_APIC_BASE, msr0 | (1ull << hx_maxphyaddr()) };
	struct fault f;
	char fs[24];
	bool hit = catch_fault(wrmsr_fn, &w, &f);
	say("WRMSR with a base beyond MAXPHYADDR: %s", fault_str(fs, sizeof(fs), hit, &f));
	CHECK(hit && f.vector == EXC_GP && rdmsr(MSR_IA32_APIC_BASE) == msr0, "#GP(0) expected");
}

/* --- 11. the decoder: prefixes that do not count ----------------------------- */
unsigned hx_prefix_stores(uint64_t target);
struct prefix_arg {
	uint64_t target;
	unsigned n;
};
static void prefix_fn(void *p)
{
	struct prefix_arg *a = p;
	a->n = hx_prefix_stores(a->target);
}

HX_TEST(decoder_prefixes_nonram)
{
	/* Six stores with a REX prefix before a legacy prefix (the REX does not
	 * count) or two REX prefixes (the last counts), each followed by an
	 * INC of EAX, into a page that is not RAM. */
	struct prefix_arg a = { hx_nonram_page() + 0x100, 0 };
	struct fault f;
	char fs[24];
	bool hit = catch_fault(prefix_fn, &a, &f);
	say("stores with ignored REX prefixes into a page that is not RAM: %s, %u of 6 INCs ran",
	    fault_str(fs, sizeof(fs), hit, &f), a.n);
	CHECK(!hit && a.n == 6, "every store dropped, every INC run");
	/* The same stores into RAM, for reference: the bytes they write. */
	uint8_t *r = hx_pages[6];
	memset(r, 0, 64);
	a.target = pa(r);
	hit = catch_fault(prefix_fn, &a, &f);
	say("the same into RAM: %s, %u INCs, the bytes %02x %02x %02x %02x %02x %02x %02x %02x %02x",
	    fault_str(fs, sizeof(fs), hit, &f), a.n, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]);
	CHECK(!hit && a.n == 6, "RAM reference");
}

/* New: read-modify-write and stack instructions on memory that is not RAM
 * (769c975 skipped them "without their other effects": XCHG kept the
 * register, ADD the flags, PUSH the stack pointer, CALL did not jump). */
void hx_rmw_nonram(uint64_t target, uint64_t *out);
struct rmw_arg {
	uint64_t target, out[6];
};
static void rmw_fn(void *p)
{
	struct rmw_arg *a = p;
	hx_rmw_nonram(a->target, a->out);
}

HX_TEST(rmw_stack_nonram)
{
	struct rmw_arg a;
	memset(&a, 0, sizeof(a));
	a.target = hx_nonram_page() + 0x100;
	struct fault f;
	char fs[24];
	bool hit = catch_fault(rmw_fn, &a, &f);
	say("on a page that is not RAM: %s; XCHG gave %016llx, ADD 1 left flags %03llx, PUSH moved RSP by %lld, CALL "
	    "went %s and moved RSP by %lld",
	    fault_str(fs, sizeof(fs), hit, &f), (unsigned long long)a.out[0], (unsigned long long)(a.out[1] & 0x8d5),
	    (long long)a.out[2], a.out[3] == 0x42 ? "to its target" : "NOWHERE", (long long)a.out[4]);
	CHECK(!hit && a.out[0] == ~0ull && (a.out[1] & 0x8d5) == 0x55 && (int64_t)a.out[2] == -8 && a.out[3] == 0x42 &&
		      (int64_t)a.out[4] == -8,
	      "as on memory that reads all ones");
}

/* New: stores that cross from RAM into memory that is not RAM, or back.
 * A CPU writes the part that is RAM; 769c975 skipped a MOV whole (the RAM
 * part lost), dropped a REP STOS element whole when it began outside RAM,
 * and looped forever on one that began in RAM (string_store found its
 * destination "ordinary memory" and let the CPU retry the same fault). */
void hx_cross_mov(void *p);
void hx_cross_stos(void *p, uint64_t n);
void hx_cross_stos_down(void *p, uint64_t n);
void hx_cross_movs(void *dst, uint64_t n, const void *src);
enum cross_kind { CROSS_MOV, CROSS_STOS, CROSS_STOS_DOWN, CROSS_MOVS };
static const uint32_t cross_src[4] = { 0x44332211, 0x44332211, 0x44332211, 0x44332211 };
struct cross_arg {
	uint8_t *p;
	uint64_t n;
	enum cross_kind kind;
};
static void cross_fn(void *p)
{
	struct cross_arg *a = p;
	switch (a->kind) {
	case CROSS_MOV: hx_cross_mov(a->p); break;
	case CROSS_STOS: hx_cross_stos(a->p, a->n); break;
	case CROSS_STOS_DOWN: hx_cross_stos_down(a->p, a->n); break;
	case CROSS_MOVS: hx_cross_movs(a->p, a->n, cross_src); break;
	}
}

/* STOS/MOVS elements that reach memory that is not RAM are emulated by
 * Nestor (vmx/exit_ept.c string_store), element by element, in both
 * directions. */
HX_TEST(stores_across_nonram)
{
	uint8_t *r0 = hx_pages[6], *r2 = hx_pages[7];
	/* Window: W0 = RAM, W1 = not RAM, W2 = RAM. */
	uint8_t *w0 = hx_map4k(16, pa(r0), HX_PTE_P | HX_PTE_W);
	hx_map4k(17, hx_nonram_page(), HX_PTE_P | HX_PTE_W);
	uint8_t *w2 = hx_map4k(18, pa(r2), HX_PTE_P | HX_PTE_W);
	struct fault f;
	char fs[24];
	static const struct {
		const char *what;
		enum cross_kind kind;
		bool into;    /* the RAM side: W0 (below W1), else W2 (above it) */
		int off;      /* the first element's first byte, from the boundary */
		uint64_t n;
	} c[] = {
		{ "MOV dword from RAM into not RAM", CROSS_MOV, true, -2, 1 },
		{ "MOV dword from not RAM into RAM", CROSS_MOV, false, -2, 1 },
		{ "REP STOSD from RAM into not RAM", CROSS_STOS, true, -6, 3 },
		{ "REP STOSD from not RAM into RAM", CROSS_STOS, false, -6, 3 },
		{ "REP STOSD down from RAM into not RAM", CROSS_STOS_DOWN, false, 2, 3 },
		{ "REP STOSD down from not RAM into RAM", CROSS_STOS_DOWN, true, -2, 3 },
		{ "REP MOVSD from RAM into not RAM", CROSS_MOVS, true, -6, 3 },
		{ "REP MOVSD from not RAM into RAM", CROSS_MOVS, false, -6, 3 },
	};
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(r0, 0xa1, 4096);
		memset(r2, 0xc3, 4096);
		uint8_t *boundary = c[i].into ? w0 + 4096 : w2;
		struct cross_arg a = { boundary + c[i].off, c[i].n, c[i].kind };
		bool hit = catch_fault(cross_fn, &a, &f);
		/* The 12 bytes of the RAM side next to the boundary, and what a
		 * CPU leaves there: the bytes of the elements that fall on RAM. */
		const uint8_t *ram = c[i].into ? r0 + 4096 - 12 : r2;
		uint8_t want[12];
		memset(want, c[i].into ? 0xa1 : 0xc3, sizeof(want));
		static const uint8_t mov[4] = { 0x11, 0x22, 0x33, 0x44 }, sto[4] = { 0x55, 0x66, 0x77, 0x88 };
		const uint8_t *v = c[i].kind == CROSS_MOV || c[i].kind == CROSS_MOVS ? mov : sto;
		int dir = c[i].kind == CROSS_STOS_DOWN ? -4 : 4;
		for (uint64_t k = 0; k < c[i].n; k++)
			for (int b = 0; b < 4; b++) {
				int at = c[i].off + dir * (int)k + b; /* from the boundary */
				int idx = c[i].into ? at + 12 : at;
				if (c[i].into ? at < 0 && idx >= 0 : at >= 0 && at < 12)
					want[idx] = v[b];
			}
		say("%s: %s; RAM %s %02x %02x %02x %02x %02x %02x %02x %02x %02x %02x %02x %02x", c[i].what,
		    fault_str(fs, sizeof(fs), hit, &f), c[i].into ? "ends" : "starts", ram[0], ram[1], ram[2], ram[3],
		    ram[4], ram[5], ram[6], ram[7], ram[8], ram[9], ram[10], ram[11]);
		CHECK(!hit && !memcmp(ram, want, sizeof(want)), "%s: the RAM part written as on a CPU", c[i].what);
	}
	hx_window_off();
}

/* Other stores that reach memory that is not RAM, done by the CPU with the
 * page in a sink (vmx/exit_ept.c step_in_sink): right after MOV SS (its
 * one-instruction blocking is lifted for the step), and straddling
 * into a not-present page - the CPU's #PF, which the step meets, is the
 * guest's, and nothing is written. */
void hx_movss_store(void *p);
static void movss_fn(void *p) { hx_movss_store(p); }
static void mov_fn(void *p) { hx_cross_mov(p); }

HX_TEST(stores_nonram_stepped)
{
	uint8_t *r0 = hx_pages[6];
	uint8_t *w0 = hx_map4k(16, pa(r0), HX_PTE_P | HX_PTE_W);
	uint8_t *w1 = hx_map4k(17, hx_nonram_page(), HX_PTE_P | HX_PTE_W);
	uint8_t *np = hx_map4k(18, 0, 0); /* not present */
	struct fault f;
	char fs[24];
	static const struct {
		const char *what;
		void (*fn)(void *);
		int window; /* 0: W0|W1 boundary, 1: W1|W2 boundary */
		int off;
	} c[] = {
		{ "MOV SS, then MOV dword into not RAM", movss_fn, 1, -64 },
		{ "MOV SS, then MOV dword from RAM into not RAM", movss_fn, 0, -2 },
		{ "MOV dword from not RAM into a not-present page", mov_fn, 1, -2 },
		{ "MOV SS, then MOV dword from not RAM into a not-present page", movss_fn, 1, -2 },
	};
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(r0, 0xa1, 4096);
		uint8_t *p = (c[i].window ? w1 + 4096 : w0 + 4096) + c[i].off;
		bool hit = catch_fault(c[i].fn, p, &f);
		const uint8_t *ram = r0 + 4096 - 4;
		if (hit && f.vector == EXC_PF)
			say("%s: #PF(%llx) at the not-present page%+lld", c[i].what, (unsigned long long)f.error_code,
			    (long long)(f.cr2 - (uint64_t)np));
		else
			say("%s: %s", c[i].what, fault_str(fs, sizeof(fs), hit, &f));
		say("  not RAM reads %02x %02x, RAM ends %02x %02x %02x %02x", w1[4096 - 2], w1[0], ram[0], ram[1], ram[2],
		    ram[3]);
		bool want_pf = c[i].window == 1 && c[i].off == -2;
		CHECK(want_pf ? hit && f.vector == EXC_PF && f.cr2 == (uint64_t)np : !hit, "%s", c[i].what);
	}
	hx_window_off();
}

/* Longer string stores into memory that is not RAM - more elements than
 * Nestor emulates in one exit (128), a source through FS, a single STOSW
 * straddling into RAM, a source that faults - end with the registers, the
 * RAM bytes and the faults a CPU gives. */
struct hx_str_regs {
	uint64_t rdi, rsi, rcx;
};
void hx_str_stosb(void *p, uint64_t n, struct hx_str_regs *r);
void hx_str_fs_movsb(void *dst, uint64_t n, struct hx_str_regs *r, const void *src);
void hx_str_stosw1(void *p, uint64_t n, struct hx_str_regs *r);

struct str_arg {
	void (*fn)(void *, uint64_t, struct hx_str_regs *);
	void *p;
	uint64_t n;
	const void *src;
	struct hx_str_regs r;
};
static void str_fn(void *p)
{
	struct str_arg *a = p;
	if (a->src)
		hx_str_fs_movsb(a->p, a->n, &a->r, a->src);
	else
		a->fn(a->p, a->n, &a->r);
}

HX_TEST(long_stores_nonram)
{
	uint8_t *r0 = hx_pages[6], *r2 = hx_pages[7];
	uint8_t *w0 = hx_map4k(16, pa(r0), HX_PTE_P | HX_PTE_W);
	uint8_t *w1 = hx_map4k(17, hx_nonram_page(), HX_PTE_P | HX_PTE_W);
	hx_map4k(18, pa(r2), HX_PTE_P | HX_PTE_W);
	uint8_t *np = hx_map4k(19, 0, 0); /* not present */
	uint64_t fs = rdmsr(MSR_FS_BASE);
	struct fault f;
	char fs_str[24];
	memset(r0, 0xa1, 4096);
	memset(r2, 0xc3, 4096);
	for (unsigned i = 0; i < 64; i++)
		r0[i] = (uint8_t)(0x40 + i);
	static const struct {
		const char *what;
		int kind; /* 0 STOSB, 1 FS MOVSB, 2 STOSW */
		int start; /* from the start of W1 */
		uint64_t n;
		int src; /* FS base: 0 W0 (RAM), 1 the not-present page */
	} c[] = {
		{ "REP STOSB of 300 bytes, 100 in RAM then 200 not", 0, -100, 300, 0 },
		{ "REP STOSB of 1000 bytes into not RAM", 0, 0, 1000, 0 },
		{ "REP MOVSB of 40 bytes from FS:10 into not RAM", 1, 0x20, 40, 0 },
		{ "STOSW at the last byte of not RAM", 2, 4095, 1, 0 },
		{ "REP MOVSB from a not-present FS page into not RAM", 1, 0x20, 8, 1 },
	};
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct str_arg a = { 0 };
		a.p = w1 + c[i].start;
		a.n = c[i].n;
		a.fn = c[i].kind == 2 ? hx_str_stosw1 : hx_str_stosb;
		if (c[i].kind == 1) {
			wrmsr(MSR_FS_BASE, c[i].src ? (uint64_t)np : (uint64_t)w0);
			a.src = (const void *)0x10;
		}
		bool hit = catch_fault(str_fn, &a, &f);
		wrmsr(MSR_FS_BASE, fs);
		int64_t rdi = (int64_t)(a.r.rdi - (uint64_t)w1);
		if (hit && f.vector == EXC_PF)
			say("%s: #PF(%llx) at FS+%llx", c[i].what, (unsigned long long)f.error_code,
			    (unsigned long long)(f.cr2 - (uint64_t)np));
		else
			say("%s: %s; RDI W1%+lld, RCX %llu, RSI %llx", c[i].what, fault_str(fs_str, sizeof(fs_str), hit, &f),
			    (long long)rdi, c[i].kind == 2 ? 0ull : (unsigned long long)a.r.rcx,
			    c[i].kind == 1 ? (unsigned long long)a.r.rsi : 0ull);
	}
	/* The RAM around W1: what the first store left below it, the STOSW's
	 * second byte above it; every other byte as it was. */
	unsigned ram_5a = 0, ram_other = 0;
	for (unsigned i = 0; i < 4096; i++) {
		uint8_t want = i >= 4096 - 100 ? 0x5a : i < 64 ? (uint8_t)(0x40 + i) : 0xa1;
		ram_5a += i >= 4096 - 100 && r0[i] == 0x5a;
		ram_other += r0[i] != want;
	}
	say("RAM below: %u bytes 5a, %u other bytes changed; RAM above starts %02x %02x", ram_5a, ram_other, r2[0],
	    r2[1]);
	CHECK(ram_5a == 100 && ram_other == 0 && r2[0] == 0x7b && r2[1] == 0xc3, "RAM around the not-RAM page");
	hx_window_off();
}

/* --- 11. reserved bits in L1's EPT table entries (misconfigurations) -------- */
HX_TEST(ept12_reserved_bits)
{
	if (!hx_l2_begin())
		return;
	/* The L2 reads guest-physical HX_EPT_HIGH + 2 MiB + 0x18: under the
	 * PDPTE of the high region and a PDE pointing to a page table, used
	 * by nothing else.  A PML4E covers everything: there the L2's first
	 * access, the read of its PML4 at CR3, finds it. */
	uint64_t off = pa(hx_pages[0]) & 0x1fffff;
	uint8_t *w = (uint8_t *)hx_map2m(1, HX_EPT_HIGH + (2ull << 20)) + off;
	const uint64_t gpa = HX_EPT_HIGH + (2ull << 20) + off;
	static const struct {
		int level, bit;
	} c[] = { { 4, 3 }, { 4, 4 }, { 4, 5 }, { 4, 6 }, { 4, 7 }, { 3, 3 }, { 3, 4 }, { 3, 5 }, { 3, 6 },
		  { 2, 3 }, { 2, 4 }, { 2, 5 }, { 2, 6 } };
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint64_t *e = hx_ept_entry(c[i].level, gpa), saved = *e;
		*e |= 1ull << c[i].bit;
		hx_ept_flush();
		vm.r.rbx = (uint64_t)w + 0x18;
		uint32_t rs = hx_run(hx_l2_read);
		uint64_t want = c[i].level == 4 ? read_cr3() & ~0xfffull : gpa + 0x18;
		const char *where = vm.x.gpa != want ? "ELSEWHERE" : c[i].level == 4 ? "the L2's PML4" : "the data";
		say("bit %d set in the %s: %s at %s", c[i].bit,
		    c[i].level == 4 ? "PML4E" : c[i].level == 3 ? "PDPTE" : "PDE (to a page table)",
		    hx_exit_str(rs, hx_l2_read), where);
		CHECK(rs == EXIT_EPT_MISCONFIG && vm.x.gpa == want, "EPT misconfiguration expected");
		*e = saved;
		hx_ept_flush();
	}
	/* And with the entries right, the L2 reads the page. */
	hx_pages[0][0x18] = 0x77;
	vm.r.rbx = (uint64_t)w + 0x18;
	uint32_t rs = hx_run(hx_l2_read);
	say("entries restored: %s, read %llx", hx_exit_str(rs, hx_l2_read), (unsigned long long)(vm.r.rax & 0xff));
	CHECK(rs == EXIT_VMCALL && (vm.r.rax & 0xff) == 0x77, "the read works");
	hx_l2_end();
}
