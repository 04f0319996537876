/* modes.c - the processor modes and paging modes a guest may use, and the
 * state it observes in each: the trampoline in modes_tramp.S goes from long mode
 * down to 32-bit protected mode (without paging, with 32-bit paging, with
 * PAE paging), 16-bit protected mode and real mode, and back; 64-bit C code
 * checks 4-level paging with a mapping that is not the identity, and what
 * INVLPG and CR3 loads do to a changed entry.
 *
 * Low memory used (free RAM at depth 0 and under Nestor alike):
 *   [0x5000, 0x5100) 32-bit IDT   [0x6000, 0x7000) stack
 *   [0x7000, 0x8000) variables and the log
 *   [0x8000, 0xa000) trampoline   [0x10000, 0x16000) page tables
 *   [0x20000, 0x22000) the two test pages A and B */
#include "guest/test.h"
#include "lib/string.h"
#include "lib/x86.h"

/* Keep in step with modes_tramp.S. */
#define MT_BASE 0x8000
#define V_RSP 0x7000
#define V_RMIDT 0x7028
#define V_LOG 0x7030
#define V_BIOS 0x7034
#define V_IDT32 0x7040
#define IDT32 0x5000
#define LOG_START 0x7100
#define LOG_END 0x8000
#define PD32 0x10000
#define PT32 0x11000
#define PDPT_PAE 0x12000
#define PDPT_BAD 0x12020
#define PD_PAE0 0x13000
#define PT_PAE 0x14000
#define PD_PAE1 0x15000
#define BIOS_MAP 0x16000
#define PAGE_A 0x20000
#define PAGE_B 0x21000
#define LOW_START 0x5000
#define LOW_END 0x22000

#define SIG_A 0xa0a0a0a1u
#define SIG_B 0xb0b0b0b2u

#define PTE_P 0x1ull
#define PTE_W 0x2ull
#define PTE_U 0x4ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_PS 0x80ull
#define PTE_G 0x100ull

extern const char modes_tramp_start[], modes_tramp_end[], modes_tramp_stubs[];
extern uint64_t pml4[512];

/* A pointer to low physical memory (identity-mapped), hidden from the
 * compiler's null-pointer arithmetic warnings. */
static void *phys(uint64_t a)
{
	__asm__("" : "+r"(a));
	return (void *)a;
}
static volatile uint32_t *p32(uint64_t a) { return phys(a); }
static volatile uint64_t *p64(uint64_t a) { return phys(a); }

struct rec {
	uint32_t name, value;
};

static struct rec recs[(LOG_END - LOG_START) / 8];
static unsigned n_recs;
static uint64_t cr0_0, cr4_0, efer_0;

static bool low_memory_free(void)
{
	for (unsigned i = 0; i < boot_info.n_mmap; i++) {
		const struct mb2_mmap_entry *e = &boot_info.mmap[i];
		if (e->type == MB2_MEM_AVAILABLE && e->base <= LOW_START && e->base + e->len >= LOW_END)
			return true;
	}
	return false;
}

/* Does the real-mode IVT have a BIOS handler for INT 12h? */
static bool bios_int12(void)
{
	uint32_t v = *p32(0x12 * 4);
	return (v >> 16) >= 0xc000;
}

static void prepare(bool bios)
{
	uint64_t len = (uint64_t)(modes_tramp_end - modes_tramp_start);
	memset(phys(LOW_START), 0, MT_BASE - LOW_START);
	memset(phys(BIOS_MAP), 0, 0x1000);
	memcpy(phys(MT_BASE), modes_tramp_start, len);
	*(volatile uint16_t *)phys(V_RMIDT) = 0x3ff;
	*p32(V_RMIDT + 2) = 0;
	/* 32-bit IDT: vectors 0-31, interrupt gates to the stubs. */
	for (unsigned v = 0; v < 32; v++) {
		uint32_t a = MT_BASE + (uint32_t)(modes_tramp_stubs - modes_tramp_start) + 16 * v;
		*p64(IDT32 + 8 * v) = (a & 0xffff) | (uint64_t)G_KCODE32 << 16 | 0x8eull << 40 |
				      (uint64_t)(a >> 16) << 48;
	}
	*(volatile uint16_t *)phys(V_IDT32) = 32 * 8 - 1;
	*p32(V_IDT32 + 2) = IDT32;
	*p32(V_LOG) = LOG_START;
	*p32(V_BIOS) = bios;

	/* 32-bit paging: 4 MiB identity page for the code, the stack and the
	 * tables; virtual 0x400000 -> B and 0x401000 -> A (4 KiB pages);
	 * virtual 0x800000 -> 4 MiB page at physical 0. */
	memset(phys(PD32), 0, 0x6000);
	volatile uint32_t *pd32 = p32(PD32), *pt32 = p32(PT32);
	pd32[0] = 0x00000000 | PTE_PS | PTE_W | PTE_P;
	pd32[1] = PT32 | PTE_W | PTE_P;
	pd32[2] = 0x00000000 | PTE_PS | PTE_W | PTE_P;
	pt32[0] = PAGE_B | PTE_W | PTE_P;
	pt32[1] = PAGE_A | PTE_W | PTE_P;
	pt32[3] = PAGE_A | PTE_P; /* read-only; pt32[2] not present */
	/* PAE: 2 MiB identity page; virtual 0x200000 -> B, 0x201000 -> A;
	 * PDPTE 1: virtual 0x40000000 -> 2 MiB page at physical 0. */
	volatile uint64_t *pdpt = p64(PDPT_PAE), *pd0 = p64(PD_PAE0), *pt = p64(PT_PAE), *pd1 = p64(PD_PAE1);
	pdpt[0] = PD_PAE0 | PTE_P;
	pdpt[1] = PD_PAE1 | PTE_P;
	pd0[0] = 0 | PTE_PS | PTE_W | PTE_P;
	pd0[1] = PT_PAE | PTE_W | PTE_P;
	pt[0] = PAGE_B | PTE_W | PTE_P;
	pt[1] = PAGE_A | PTE_W | PTE_P;
	pt[3] = PAGE_A | PTE_W | PTE_P | 1ull << 63; /* XD, reserved with NXE=0 */
	pd1[0] = 0 | PTE_PS | PTE_W | PTE_P;
	p64(PDPT_BAD)[0] = PD_PAE0 | PTE_W | PTE_P; /* bit 1 is reserved */

	memset(phys(PAGE_A), 0, 0x2000);
	*p32(PAGE_A) = SIG_A;
	*p32(PAGE_B) = SIG_B;
}

/* Runs the whole trampoline and copies its log. */
static bool run_trampoline(void)
{
	cr0_0 = read_cr0();
	cr4_0 = read_cr4();
	efer_0 = rdmsr(MSR_EFER);
	n_recs = 0;
	if (!low_memory_free()) {
		CHECK(false, "[%x, %x) is not available RAM", LOW_START, LOW_END);
		return false;
	}
	if ((uint64_t)(modes_tramp_end - modes_tramp_start) > 0x2000) {
		CHECK(false, "trampoline too big: %lld bytes", (long long)(modes_tramp_end - modes_tramp_start));
		return false;
	}
	bool bios = bios_int12();
	prepare(bios);
	void (*entry)(void) = (void (*)(void))phys(MT_BASE);
	entry();
	uint32_t end = *p32(V_LOG);
	CHECK(end > LOG_START && end <= LOG_END, "log end %x", end);
	for (uint32_t a = LOG_START; a < end && n_recs < sizeof(recs) / sizeof(recs[0]); a += 8)
		recs[n_recs++] = (struct rec){ *p32(a), *p32(a + 4) };
	uint64_t cr0 = read_cr0(), cr4 = read_cr4(), efer = rdmsr(MSR_EFER);
	CHECK(cr0 == cr0_0 && cr4 == cr4_0 && efer == efer_0, "back in long mode: cr0 %llx cr4 %llx efer %llx",
	      (unsigned long long)cr0, (unsigned long long)cr4, (unsigned long long)efer);
	return true;
}

/* What the SDM says each record must hold (from the state at entry). */
static bool expected(const char *name, uint32_t *want, uint32_t *mask)
{
	uint32_t cr0 = (uint32_t)cr0_0, cr4 = (uint32_t)cr4_0, efer = (uint32_t)efer_0;
	uint32_t pg = (uint32_t)CR0_PG;
	static const struct {
		const char *name;
		uint32_t value;
	} fixed[] = {
		{ "compat cs", 0x18 },
		{ "pm32 cs", 0x18 },
		{ "pm32 ss", 0x10 },
		{ "pm32 12!", 479001600 },
		{ "pm32 flags of 7fffffff+1", 0x894 }, /* OF SF AF PF */
		{ "pm32 push size", 4 },
		{ "pm32 [A]", SIG_A },
		{ "pm32 [B]", SIG_B },
		{ "pg32 cr3", PD32 },
		{ "pg32 [400000] (PTE to B)", SIG_B },
		{ "pg32 [401000] (PTE to A)", SIG_A },
		{ "pg32 [820000] (4 MiB page at 0)", SIG_A },
		{ "pg32 [400010] after write", 0x32323232 },
		{ "pm32 [B+10] after paged write", 0x32323232 },
		{ "pae cr3", PDPT_PAE },
		{ "pae [200000] (PTE to B)", SIG_B },
		{ "pae [201000] (PTE to A)", SIG_A },
		{ "pae [40021000] (2 MiB page at 0, PDPTE 1)", SIG_B },
		{ "pae [201010] after write", 0x64646464 },
		{ "pm32 [A+10] after paged write", 0x64646464 },
		{ "pm16 cs", 0x20 },
		{ "pm16 ss", 0x28 },
		{ "pm16 ffff+2 (16-bit)", 1 },
		{ "pm16 flags of ffff+2", 0x11 }, /* AF CF */
		{ "pm16 push size", 2 },
		{ "rm cs", 0 },
		{ "rm [2000:0000]", SIG_A },
		{ "rm [1fff:1010] (= B)", SIG_B },
		{ "rm [2100:0004] after write via 1fff:1014", 0x16161616 },
		{ "rm 1000*1001 (dx:ax)", 1001000 },
		{ "rm 1000000/77 (rem:quot)", 1u << 16 | 12987 },
		{ "rm push size", 2 },
		{ "rm cpuid at ip fffe: went on at 0000", 1 },
		{ "pm32 #GP setting PG with LME=1 PAE=0", 0x000d0000 },
		{ "pm32 #GP setting PG with PE=0", 0x000d0000 },
		{ "pm32 #UD ud2", 0x00060000 },
		{ "pm32 #GP dword read at ds:fffe, limit ffff", 0x000d0000 },
		{ "pm32 int 21h (vector 33 beyond the IDT limit): #GP", 0x000d0000 | (0x21 * 8 + 2) },
		{ "pg32 #PF read of a not-present PTE", 0x000e0000 },
		{ "pg32 cr2 of the read", 0x402000 },
		{ "pg32 #PF write to a read-only PTE, CR0.WP=1", 0x000e0003 },
		{ "pg32 cr2 of the write", 0x403000 },
		{ "pae #PF read of a not-present PTE", 0x000e0000 },
		{ "pae cr2 of the read", 0x202000 },
		{ "pae #PF PTE with bit 63 (XD) set and EFER.NXE=0", 0x000e0009 },
		{ "pae #GP loading CR3 with a reserved PDPTE bit", 0x000d0000 },
		{ "pae cr3 after that", PDPT_PAE },
		{ "pae #GP MOV to CR0 (CD, NW, NE) with a reserved bit in PDPTE 0", 0x000d0000 },
		{ "pae #GP paging on (NE toggled) with a reserved bit in PDPTE 0", 0x000d0000 },
		{ "pae [201010] with paging on again (NE toggled)", 0x64646464 },
		{ "pg32 rep insb across two pages: ecx", 0 },
		{ "pg32 rep insb across two pages: edi", PAGE_B + 2 },
		{ "pg32 [A+ffc] after it", 0xffff0000 }, /* port 0x8900 reads as ones */
		{ "pg32 [B] after it", (SIG_B & 0xffff0000u) | 0xffff },
		{ "pg32 #PF rep outsb into a not-present page", 0x000e0000 },
		{ "pg32 rep outsb: ecx after the fault", 2 },
		{ "pg32 rep outsb: esi after the fault", 0x402000 },
		{ "pg32 cr2 of the outsb", 0x402000 },
		{ "pg32 #PF rep insb to a read-only PTE, CR0.WP=1", 0x000e0003 },
		{ "pg32 rep insb: ecx after the fault", 2 },
		{ "pg32 #PF insw at the end of a read-only page", 0x000e0003 },
		{ "pg32 cr2 of the insw", 0x403ffe },
		{ "pae #PF rep outsb into a not-present page", 0x000e0000 },
		{ "pae rep outsb: ecx after the fault", 2 },
		{ "pae cr2 of the outsb", 0x202000 },
		{ "pae #PF rep insb to a PTE with XD set and EFER.NXE=0", 0x000e000b },
		{ "pae rep insb: ecx after the fault", 2 },
		{ "rm rep outsb with SI wrapping: esi", 0x5a5a0002 },
		{ "rm rep outsb with SI wrapping: ecx", 0x5a5a0000 },
		{ "pae #GP MOV to CR4 (VMXE, PGE) with a reserved bit in PDPTE 0", 0x000d0000 },
		{ "pm16 #GP dword read at fffe, limit ffff", 0x000d0000 },
		{ "pm16 rep outsb with SI wrapping: esi", 0x5a5a0002 },
		{ "pm16 rep outsb with SI wrapping: ecx", 0x5a5a0000 },
		{ "pm16 #GP addr32 rep outsb past the DS limit", 0x000d0000 },
		{ "pm16 addr32 rep outsb: esi after the fault", 0x10000 },
		{ "pm16 addr32 rep outsb: ecx after the fault", 2 },
		{ "pm16 #UD ud2", 0x00060000 },
	};
	*mask = ~0u;
	for (unsigned i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (!strcmp(name, fixed[i].name)) {
			*want = fixed[i].value;
			return true;
		}
	}
	const struct {
		const char *name;
		uint32_t value;
	} derived[] = {
		{ "compat efer", efer },
		{ "pm32 efer with LME still set", efer & ~EFER_LMA },
		{ "pm32 cr0", cr0 & ~pg },
		{ "pm32 cr0 after that", cr0 & ~pg },
		{ "pm32 cr4", cr4 & ~(uint32_t)CR4_PAE },
		{ "pm32 efer", efer & ~(EFER_LME | EFER_LMA) },
		{ "pg32 cr0", cr0 | pg },
		{ "pg32 cr4", (cr4 & ~(uint32_t)CR4_PAE) | (uint32_t)CR4_PSE },
		{ "pg32 efer", efer & ~(EFER_LME | EFER_LMA) },
		{ "pae cr0", cr0 | pg },
		{ "pae cr4", cr4 | (uint32_t)CR4_PAE },
		{ "pae efer", efer & ~(EFER_LME | EFER_LMA) },
		{ "pae cr0 with CD, NW and NE toggled", (cr0 | pg) ^ 0x60000020u },
		{ "pae cr4 with VMXE and PGE toggled", (cr4 | (uint32_t)CR4_PAE) ^ 0x2080u },
		{ "pae cr0 after that", cr0 | pg },
		{ "pae cr4 after that", cr4 | (uint32_t)CR4_PAE },
		{ "pae cr0 with NE toggled", (cr0 | pg) ^ 0x20u },
		{ "pae cr0 paging off by a write that toggles NE", cr0 & ~pg },
		{ "pm16 cr0", cr0 & ~pg },
		{ "rm cr0", cr0 & ~(pg | (uint32_t)CR0_PE) },
		{ "pm32 again cr0", cr0 & ~pg },
		{ "pm32 efer with LME set, paging off", (efer & ~EFER_LMA) | EFER_LME },
		{ "compat again efer", efer | EFER_LME | EFER_LMA },
	};
	for (unsigned i = 0; i < sizeof(derived) / sizeof(derived[0]); i++) {
		if (!strcmp(name, derived[i].name)) {
			*want = derived[i].value;
			return true;
		}
	}
	if (!strcmp(name, "rm flags after xor")) {
		*want = 0x46; /* ZF PF, bit 1; IF=0 IOPL=0; AF is undefined */
		*mask = ~0x10u;
		return true;
	}
	return false;
}

/* Prints (and checks) the records whose name starts with one of the
 * space-separated prefixes. */
static void print_records(const char *prefixes)
{
	unsigned shown = 0;
	for (unsigned i = 0; i < n_recs; i++) {
		const char *name = (const char *)(uint64_t)recs[i].name;
		uint32_t v = recs[i].value;
		bool match = false;
		for (const char *p = prefixes; *p;) {
			const char *e = strchr(p, ' ');
			size_t n = e ? (size_t)(e - p) : strlen(p);
			if (!strncmp(name, p, n) && name[n] == ' ')
				match = true;
			if (!e)
				break;
			p = e + 1;
		}
		if (!match)
			continue;
		shown++;
		if (!strncmp(name, "env ", 4)) {
			env("%s: %u", name + 4, v);
			continue;
		}
		say("%s: %08x", name, v);
		uint32_t want, mask;
		if (expected(name, &want, &mask))
			CHECK((v & mask) == (want & mask), "%s is %08x, the SDM says %08x", name, v, want);
		else
			CHECK(false, "no expectation for '%s'", name);
	}
	CHECK(shown > 0, "no records for '%s'", prefixes);
}

TEST(modes, legacy_protected)
{
	if (run_trampoline())
		print_records("pm32");
}

TEST(modes, legacy_16bit_and_real)
{
	if (!run_trampoline())
		return;
	print_records("pm16 rm env");
	/* INT 12h answers the BIOS data area's base memory size. */
	for (unsigned i = 0; i < n_recs; i++)
		if (!strcmp((const char *)(uint64_t)recs[i].name, "env rm int 12h: base memory KiB"))
			CHECK(recs[i].value >= 512 && recs[i].value <= 640, "INT 12h says %u KiB", recs[i].value);
	if (!bios_int12())
		env("no BIOS INT 12h handler: not called");
}

/* The memory map the BIOS gives through INT 15h (E820, E801, AH=88h),
 * called in real mode by the trampoline: every way of learning it must
 * agree with the boot loader's map, which at depth n keeps each level's
 * memory out of the available RAM (issue 13: Xen reads E820 itself, and
 * put its page tables in Nestor's memory). */
struct e820 {
	uint64_t base, len;
	uint32_t type;
} __attribute__((packed));

/* The end of the run of available (or ACPI) RAM that starts at 1 MiB, in
 * the boot loader's map: what E801 and AH=88h may count. */
static uint64_t run_from_1m(void)
{
	uint64_t end = 0x100000;
	for (bool grew = true; grew;) {
		grew = false;
		for (unsigned i = 0; i < boot_info.n_mmap; i++) {
			const struct mb2_mmap_entry *e = &boot_info.mmap[i];
			bool ram = e->type == MB2_MEM_AVAILABLE || e->type == MB2_MEM_ACPI_RECLAIMABLE;
			if (ram && e->base <= end && e->base + e->len > end) {
				end = e->base + e->len;
				grew = true;
			}
		}
	}
	return end;
}

/* Whether a page keeps what is written to it (put back afterwards). */
static bool page_keeps(uint64_t pa)
{
	volatile uint64_t *q = phys(pa + 0x7f8);
	uint64_t before = *q, want = before ^ 0x5a5a5a5aa5a5a5a5ull;
	*q = want;
	bool kept = *q == want;
	*q = before;
	return kept;
}

TEST(modes, bios_memory_map)
{
	if (!bios_int12()) {
		env("no BIOS INT 15h handler: not called");
		return;
	}
	if (!run_trampoline())
		return;
	volatile uint8_t *m = phys(BIOS_MAP);
	unsigned n = *(volatile uint32_t *)m;
	const volatile struct e820 *e = (const volatile struct e820 *)(m + 0x100);
	bool same = n == boot_info.n_mmap;
	unsigned usable = 0, kept = 0;
	for (unsigned i = 0; i < n; i++) {
		env("E820 %u: [%016llx, %016llx) type %u", i, (unsigned long long)e[i].base,
		    (unsigned long long)(e[i].base + e[i].len), e[i].type);
		same = same && i < boot_info.n_mmap && e[i].base == boot_info.mmap[i].base &&
		       e[i].len == boot_info.mmap[i].len && e[i].type == boot_info.mmap[i].type;
		if (e[i].type != MB2_MEM_AVAILABLE || e[i].base < 0x100000 || e[i].base + e[i].len > (4ull << 30))
			continue;
		/* A page in each MiB of each range of RAM it offers, and its last. */
		for (uint64_t a = e[i].base; a < e[i].base + e[i].len; a += 0x100000) {
			usable++;
			kept += page_keeps(a);
		}
		usable++;
		kept += page_keeps(e[i].base + e[i].len - 0x1000);
	}
	env("E820 walk ended with EAX %08x EBX %08x CF %u", *(volatile uint32_t *)(m + 4),
	    *(volatile uint32_t *)(m + 8), *(volatile uint16_t *)(m + 12) & 1);
	say("E820: %s entries, the same as the boot loader's map: %s", n >= 3 ? "several" : "NOT ENOUGH",
	    same ? "yes" : "NO");
	CHECK(n >= 3 && same, "%u E820 entries, %u in the boot loader's map", n, boot_info.n_mmap);
	say("E820 RAM above 1 MiB keeps what is written to it: %s", usable && kept == usable ? "yes" : "NO");
	CHECK(usable && kept == usable, "%u of %u pages of E820 RAM kept a write", kept, usable);
	env("%u pages probed", usable);
	/* The same first entry written across a page boundary (the trampoline's
	 * last call): a Nestor that answers E820 writes both pages. */
	const volatile uint8_t *x = m + 0xff6, *e0 = m + 0x100;
	bool x_same = n && *(volatile uint32_t *)(m + 32) == 0x534d4150u && !(*(volatile uint16_t *)(m + 36) & 1);
	for (unsigned i = 0; i < sizeof(struct e820) && x_same; i++)
		x_same = x[i] == e0[i];
	say("E820 into a buffer across a page boundary: the first entry again: %s", x_same ? "yes" : "NO");
	CHECK(x_same, "E820's entry across a page differs from the first one");

	/* E801: KiB from 1 to 16 MiB, then 64 KiB blocks above (AX/BX, and
	 * CX/DX); AH=88h: KiB above 1 MiB.  Neither may count past the RAM
	 * the map gives from 1 MiB. */
	const volatile uint16_t *w = (const volatile uint16_t *)m;
	uint64_t run = run_from_1m();
	env("E801: AX %04x BX %04x CX %04x DX %04x CF %u; AH=88h: AX %04x CF %u", w[8], w[9], w[10], w[11],
	    w[12] & 1, w[13], w[14] & 1);
	env("available RAM from 1 MiB up to %llx", (unsigned long long)run);
	if (!(w[12] & 1)) {
		uint64_t ab = w[9] ? (16ull << 20) + ((uint64_t)w[9] << 16) : 0x100000 + ((uint64_t)w[8] << 10);
		uint64_t cd = w[11] ? (16ull << 20) + ((uint64_t)w[11] << 16) : 0x100000 + ((uint64_t)w[10] << 10);
		say("E801 counts no more than the map: %s", ab <= run && cd <= run ? "yes" : "NO");
		CHECK(ab <= run && cd <= run, "E801 says RAM up to %llx / %llx, the map %llx", (unsigned long long)ab,
		      (unsigned long long)cd, (unsigned long long)run);
	} else {
		say("E801: not supported");
	}
	if (!(w[14] & 1)) {
		uint64_t end = 0x100000 + ((uint64_t)w[13] << 10);
		say("AH=88h counts no more than the map: %s", end <= run ? "yes" : "NO");
		CHECK(end <= run, "AH=88h says RAM up to %llx, the map %llx", (unsigned long long)end,
		      (unsigned long long)run);
	} else {
		say("AH=88h: not supported");
	}
}

TEST(modes, paging32)
{
	if (!run_trampoline())
		return;
	print_records("pg32");
	/* Accessed and dirty bits the walks set. */
	volatile uint32_t *pd32 = p32(PD32), *pt32 = p32(PT32);
	say("A/D: PDE0 (4M, code+stack) %03x, PDE1 %03x, PDE2 (4M, read) %03x, PTE0 (B, written) %03x, "
	    "PTE1 (A, read) %03x",
	    pd32[0] & 0xfff, pd32[1] & 0xfff, pd32[2] & 0xfff, pt32[0] & 0xfff, pt32[1] & 0xfff);
	CHECK((pd32[0] & 0x60) == 0x60, "PDE0 A/D %03x", pd32[0] & 0xfff);
	CHECK((pd32[1] & 0x20) == 0x20, "PDE1 A %03x", pd32[1] & 0xfff);
	CHECK((pd32[2] & 0x60) == 0x20, "PDE2 A/D %03x", pd32[2] & 0xfff);
	CHECK((pt32[0] & 0x60) == 0x60, "PTE0 A/D %03x", pt32[0] & 0xfff);
	CHECK((pt32[1] & 0x60) == 0x20, "PTE1 A/D %03x", pt32[1] & 0xfff);
}

TEST(modes, paging_pae)
{
	if (!run_trampoline())
		return;
	print_records("pae");
	volatile uint64_t *pdpt = p64(PDPT_PAE), *pd0 = p64(PD_PAE0), *pt = p64(PT_PAE), *pd1 = p64(PD_PAE1);
	say("A/D: PDPTE0 %03llx PDPTE1 %03llx, PDE0 (2M, code+stack) %03llx, PDE1 %03llx, PTE0 (B, read) %03llx, "
	    "PTE1 (A, written) %03llx, PD1 PDE0 (2M, read) %03llx",
	    (unsigned long long)(pdpt[0] & 0xfff), (unsigned long long)(pdpt[1] & 0xfff),
	    (unsigned long long)(pd0[0] & 0xfff), (unsigned long long)(pd0[1] & 0xfff),
	    (unsigned long long)(pt[0] & 0xfff), (unsigned long long)(pt[1] & 0xfff),
	    (unsigned long long)(pd1[0] & 0xfff));
	CHECK((pdpt[0] & 0xfff) == 1 && (pdpt[1] & 0xfff) == 1, "PDPTEs changed");
	CHECK((pd0[0] & 0x60) == 0x60, "PDE0 A/D");
	CHECK((pd0[1] & 0x20) == 0x20, "PDE1 A");
	CHECK((pt[0] & 0x60) == 0x20, "PTE0 A/D");
	CHECK((pt[1] & 0x60) == 0x60, "PTE1 A/D");
	CHECK((pd1[0] & 0x60) == 0x20, "PD1 PDE0 A/D");
}

TEST(modes, round_trip)
{
	if (!run_trampoline())
		return;
	print_records("compat");
	uint64_t cr0 = read_cr0(), cr4 = read_cr4(), efer = rdmsr(MSR_EFER);
	uint16_t cs, ss, ds;
	__asm__ volatile("mov %%cs, %0\n\tmov %%ss, %1\n\tmov %%ds, %2" : "=r"(cs), "=r"(ss), "=r"(ds));
	say("back in 64-bit mode: cr0 %llx cr4 %llx efer %llx cs %x ss %x ds %x, %u records",
	    (unsigned long long)cr0, (unsigned long long)cr4, (unsigned long long)efer, cs, ss, ds, n_recs);
	/* Twice more: the same records every time. */
	struct rec first[sizeof(recs) / sizeof(recs[0])];
	unsigned n = n_recs;
	memcpy(first, recs, sizeof(first));
	run_trampoline();
	run_trampoline();
	CHECK(n == n_recs && !memcmp(first, recs, n * sizeof(recs[0])), "a second round trip logs differently");
}

/* --- 4-level paging with mappings that are not the identity --------------- */

#define VBASE 0x0000008000000000ull /* PML4 entry 1: unused by the kernel */

static uint64_t l3[512] __attribute__((aligned(4096)));
static uint64_t l2[512] __attribute__((aligned(4096)));
static uint64_t l1[512] __attribute__((aligned(4096)));
static uint8_t pages[3][4096] __attribute__((aligned(4096)));

static volatile uint64_t *va(uint64_t off) { return (volatile uint64_t *)(VBASE + off); }
static uint64_t sig(unsigned i) { return 0x1111111111111111ull * (i + 1); }
static void reload_cr3(void) { write_cr3(read_cr3()); }

static void op_read(void *p) { (void)*(volatile uint64_t *)p; }
static void op_write(void *p) { *(volatile uint64_t *)p = 0x5757575757575757ull; }
static void op_exec(void *p) { ((void (*)(void))p)(); }

static void say_fault(const char *what, bool hit, const struct fault *f, uint64_t want_err, uint64_t want_cr2)
{
	say("%s: %s vector %u error %llx cr2 %s", what, hit ? "fault" : "no fault", hit ? f->vector : 0,
	    (unsigned long long)f->error_code, hit && f->cr2 == want_cr2 ? "= address" : "OTHER");
	CHECK(hit && f->vector == EXC_PF && f->error_code == want_err && f->cr2 == want_cr2,
	      "%s: wanted #PF error %llx at %llx, got vector %u error %llx cr2 %llx", what,
	      (unsigned long long)want_err, (unsigned long long)want_cr2, f->vector,
	      (unsigned long long)f->error_code, (unsigned long long)f->cr2);
}

TEST(modes, paging64)
{
	uint64_t cr0 = read_cr0(), cr4 = read_cr4();
	memset(l3, 0, sizeof(l3));
	memset(l2, 0, sizeof(l2));
	memset(l1, 0, sizeof(l1));
	for (unsigned i = 0; i < 3; i++) {
		memset(pages[i], 0, sizeof(pages[i]));
		*(uint64_t *)pages[i] = sig(i);
	}
	uint64_t p0 = (uint64_t)pages[0], p1 = (uint64_t)pages[1], p2 = (uint64_t)pages[2];
	const uint64_t rwu = PTE_P | PTE_W | PTE_U;
	CHECK(pml4[1] == 0, "PML4 entry 1 in use: %llx", (unsigned long long)pml4[1]);
	pml4[1] = (uint64_t)l3 | rwu;
	l3[0] = (uint64_t)l2 | rwu;
	l2[0] = (uint64_t)l1 | rwu;
	l1[0] = p0 | PTE_P | PTE_W;
	l1[1] = p1 | PTE_P | PTE_W;
	reload_cr3();

	uint64_t r0 = *va(0), r1 = *va(0x1000);
	say("V+0 -> page 0: %016llx, V+1000 -> page 1: %016llx", (unsigned long long)r0, (unsigned long long)r1);
	CHECK(r0 == sig(0) && r1 == sig(1), "4-level translation");
	uint64_t after_read = l1[0] & 0xfff;
	*va(8) = 0x0808080808080808ull;
	say("PTE flags after a read %03llx, after a write %03llx; the write landed in page 0: %s",
	    (unsigned long long)after_read, (unsigned long long)(l1[0] & 0xfff),
	    *(uint64_t *)(pages[0] + 8) == 0x0808080808080808ull ? "yes" : "NO");
	CHECK(after_read == (PTE_P | PTE_W | PTE_A) && (l1[0] & 0xfff) == (PTE_P | PTE_W | PTE_A | PTE_D),
	      "A/D bits");
	CHECK((l2[0] & PTE_A) && (l3[0] & PTE_A) && (pml4[1] & PTE_A), "A bits of the upper levels");

	/* Change the PTE: the TLB may still hold the old translation until
	 * INVLPG (whether it does is not architectural: env). */
	l1[0] = p2 | PTE_P | PTE_W;
	uint64_t stale = *va(0);
	env("after the PTE changed, before INVLPG: page %d", stale == sig(0) ? 0 : stale == sig(2) ? 2 : -1);
	CHECK(stale == sig(0) || stale == sig(2), "read %llx", (unsigned long long)stale);
	invlpg((void *)va(0));
	uint64_t fresh = *va(0);
	say("after INVLPG: %016llx (page 2)", (unsigned long long)fresh);
	CHECK(fresh == sig(2), "INVLPG did not take the new PTE");
	l1[0] = p0 | PTE_P | PTE_W;
	reload_cr3();
	fresh = *va(0);
	say("PTE back to page 0, CR3 reloaded: %016llx", (unsigned long long)fresh);
	CHECK(fresh == sig(0), "CR3 load did not flush");

	/* Global pages survive CR3 loads (maybe), not INVLPG nor CR4.PGE=0. */
	write_cr4(cr4 | CR4_PGE);
	l1[1] = p1 | PTE_P | PTE_W | PTE_G;
	invlpg((void *)va(0x1000));
	r1 = *va(0x1000);
	l1[1] = p2 | PTE_P | PTE_W | PTE_G;
	reload_cr3();
	stale = *va(0x1000);
	env("global PTE changed, after a CR3 load: page %d", stale == sig(1) ? 1 : stale == sig(2) ? 2 : -1);
	invlpg((void *)va(0x1000));
	fresh = *va(0x1000);
	l1[1] = p0 | PTE_P | PTE_W | PTE_G;
	write_cr4(cr4);
	uint64_t after_pge = *va(0x1000);
	say("global page: before %016llx, after INVLPG %016llx, after clearing CR4.PGE %016llx",
	    (unsigned long long)r1, (unsigned long long)fresh, (unsigned long long)after_pge);
	CHECK(r1 == sig(1) && fresh == sig(2) && after_pge == sig(0), "global page invalidation");

	/* Page faults. */
	struct fault f;
	l1[1] = 0;
	invlpg((void *)va(0x1000));
	bool hit = catch_fault(op_read, (void *)va(0x1010), &f);
	say_fault("read of a not-present page", hit, &f, 0, VBASE + 0x1010);
	hit = catch_fault(op_write, (void *)va(0x1020), &f);
	say_fault("write to a not-present page", hit, &f, 2, VBASE + 0x1020);
	hit = catch_fault(op_exec, (void *)va(0x1000), &f);
	say_fault("fetch from a not-present page (EFER.NXE=0)", hit, &f, 0, VBASE + 0x1000);

	l1[1] = p1 | PTE_P; /* read-only */
	invlpg((void *)va(0x1000));
	hit = catch_fault(op_write, (void *)va(0x1030), &f);
	say("write to a read-only page with CR0.WP=%llu: %s", (unsigned long long)(cr0 >> 16 & 1),
	    hit ? "fault" : "allowed");
	CHECK(hit == !!(cr0 & CR0_WP), "CR0.WP=%llu", (unsigned long long)(cr0 >> 16 & 1));
	write_cr0(cr0 | CR0_WP);
	hit = catch_fault(op_write, (void *)va(0x1038), &f);
	write_cr0(cr0);
	say_fault("write to a read-only page with CR0.WP=1", hit, &f, 3, VBASE + 0x1038);

	l1[1] = p1 | PTE_P | PTE_W; /* supervisor only */
	invlpg((void *)va(0x1000));
	hit = run_user(op_read, (void *)va(0x1040), &f);
	say_fault("CPL 3 read of a supervisor page", hit, &f, 5, VBASE + 0x1040);
	l1[1] = p1 | rwu;
	invlpg((void *)va(0x1000));
	hit = run_user(op_read, (void *)va(0x1040), &f);
	say("CPL 3 read of a user page: %s", hit ? "fault" : "ok");
	CHECK(!hit, "user page not readable at CPL 3 (vector %u error %llx)", f.vector,
	      (unsigned long long)f.error_code);

	unsigned maxphy = cpuid(0x80000000, 0).eax >= 0x80000008 ? cpuid(0x80000008, 0).eax & 0xff : 36;
	say("MAXPHYADDR %u", maxphy);
	if (maxphy < 52) {
		l1[1] = p1 | PTE_P | PTE_W | 1ull << maxphy;
		invlpg((void *)va(0x1000));
		hit = catch_fault(op_read, (void *)va(0x1048), &f);
		say_fault("read through a PTE with a reserved address bit", hit, &f, 9, VBASE + 0x1048);
	}
	l1[1] = p1 | PTE_P | PTE_W;
	invlpg((void *)va(0x1000));

	/* Large pages: a 2 MiB page and (if supported) a 1 GiB page onto low
	 * physical memory, compared with the identity map. */
	l2[1] = 0 | PTE_PS | PTE_P | PTE_W;
	reload_cr3();
	volatile uint64_t *big = va(0x200000 + (uint64_t)pages[0] % 0x200000);
	say("2 MiB page onto physical 0: reads %s",
	    *big == *(uint64_t *)((uint64_t)pages[0] & 0x1fffff) ? "the same as the identity map" : "OTHER");
	CHECK(*big == *(volatile uint64_t *)phys((uint64_t)pages[0] & 0x1fffff), "2 MiB page");
	bool gb = cpuid(0x80000001, 0).edx & (1u << 26);
	say("1 GiB pages: %s", gb ? "supported" : "not supported");
	if (gb) {
		l3[1] = (uint64_t)0 | PTE_PS | PTE_P | PTE_W;
		reload_cr3();
		uint64_t off = (uint64_t)pages[1];
		volatile uint64_t *g = va(0x40000000 + off);
		say("1 GiB page: V+40000000+page 1 reads %016llx", (unsigned long long)*g);
		CHECK(*g == sig(1), "1 GiB page");
		*g = 0x4747474747474747ull;
		CHECK(*(volatile uint64_t *)pages[1] == 0x4747474747474747ull, "write through the 1 GiB page");
		say("1 GiB PDPTE flags %03llx", (unsigned long long)(l3[1] & 0xfff));
		CHECK((l3[1] & 0xfff) == (PTE_PS | PTE_P | PTE_W | PTE_A | PTE_D), "1 GiB page A/D");
	}

	pml4[1] = 0;
	reload_cr3();
	write_cr4(cr4);
	write_cr0(cr0);
}

/* --- leaving long mode the wrong way: #GP(0), nothing changes ----------- */

static void op_cr0(void *p) { write_cr0(*(uint64_t *)p); }
static void op_cr4(void *p) { write_cr4(*(uint64_t *)p); }
static void op_efer(void *p) { wrmsr(MSR_EFER, *(uint64_t *)p); }

TEST(modes, illegal_transitions)
{
	uint64_t cr0 = read_cr0(), cr4 = read_cr4(), efer = rdmsr(MSR_EFER);
	static const struct {
		const char *what;
		int reg; /* 0 cr0, 4 cr4, 8 efer */
		uint64_t clear;
	} cases[] = {
		{ "clear CR0.PG in 64-bit mode", 0, CR0_PG },
		{ "clear CR0.PE with CR0.PG set", 0, CR0_PE },
		{ "clear CR4.PAE in IA-32e mode", 4, CR4_PAE },
		{ "clear EFER.LME with paging on", 8, EFER_LME },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fault f;
		uint64_t v;
		bool hit;
		switch (cases[i].reg) {
		case 0:
			v = cr0 & ~cases[i].clear;
			hit = catch_fault(op_cr0, &v, &f);
			break;
		case 4:
			v = cr4 & ~cases[i].clear;
			hit = catch_fault(op_cr4, &v, &f);
			break;
		default:
			v = efer & ~cases[i].clear;
			hit = catch_fault(op_efer, &v, &f);
			break;
		}
		bool same = read_cr0() == cr0 && read_cr4() == cr4 && rdmsr(MSR_EFER) == efer;
		say("%s: vector %u error %llx, state %s", cases[i].what, hit ? f.vector : 255,
		    (unsigned long long)f.error_code, same ? "unchanged" : "CHANGED");
		CHECK(hit && f.vector == EXC_GP && f.error_code == 0 && same, "%s", cases[i].what);
	}
	/* Writing the same values back is fine (no mode change). */
	struct fault f;
	uint64_t v = efer;
	bool hit = catch_fault(op_efer, &v, &f);
	v = cr0;
	hit |= catch_fault(op_cr0, &v, &f);
	say("rewriting EFER and CR0 unchanged: %s", hit ? "fault" : "ok");
	CHECK(!hit, "rewriting the current EFER/CR0 faulted (vector %u)", f.vector);
	/* EFER.LMA is read-only: writing it as 0 is ignored. */
	v = efer & ~(uint64_t)EFER_LMA;
	hit = catch_fault(op_efer, &v, &f);
	say("writing EFER with LMA clear: %s, EFER now %llx", hit ? "fault" : "ok",
	    (unsigned long long)rdmsr(MSR_EFER));
	CHECK(!hit && rdmsr(MSR_EFER) == efer, "EFER.LMA write");
}
