/* cpuid.c - differential conformance tests of CPUID.
 *
 * Every leaf and sub-leaf the CPU reports is printed, so a hypervisor that
 * changes any CPUID answer shows in the transcript.  The bits a Nestor level
 * changes on purpose (leaf 1 ECX[31] "hypervisor present" and ECX[5] VMX,
 * the 0x40000000 range) are masked in say() lines and printed raw with env(). */
#include "guest/test.h"
#include "lib/x86.h"

#define L1_ECX_VMX (1u << 5)
#define L1_ECX_HYPERVISOR (1u << 31)
#define L1_ECX_MASKED (L1_ECX_VMX | L1_ECX_HYPERVISOR)

/* The answer with the bits that differ under a hypervisor cleared. */
static struct cpuid_regs masked(uint32_t leaf, struct cpuid_regs r)
{
	if (leaf == 1)
		r.ecx &= ~L1_ECX_MASKED;
	return r;
}

static void show(uint32_t leaf, uint32_t sub, struct cpuid_regs r)
{
	struct cpuid_regs m = masked(leaf, r);
	say("%08x.%02x: %08x %08x %08x %08x%s", leaf, sub, m.eax, m.ebx, m.ecx, m.edx,
	    leaf == 1 ? " (ecx & ~0x80000020)" : "");
	if (leaf == 1)
		env("%08x.%02x: raw ecx %08x (hypervisor bit %u, vmx bit %u)", leaf, sub, r.ecx, r.ecx >> 31,
		    (r.ecx >> 5) & 1);
}

static bool is_zero(struct cpuid_regs r) { return !(r.eax | r.ebx | r.ecx | r.edx); }
static bool same(struct cpuid_regs a, struct cpuid_regs b)
{
	return a.eax == b.eax && a.ebx == b.ebx && a.ecx == b.ecx && a.edx == b.edx;
}

/* Prints every sub-leaf of one leaf that the architecture defines. */
static void dump_leaf(uint32_t leaf)
{
	struct cpuid_regs r0 = cpuid(leaf, 0);
	show(leaf, 0, r0);
	switch (leaf) {
	case 4: /* deterministic cache parameters: until cache type 0 */
		for (uint32_t s = 1; s < 16; s++) {
			struct cpuid_regs r = cpuid(leaf, s);
			show(leaf, s, r);
			if ((r.eax & 0x1f) == 0)
				break;
		}
		break;
	case 7: case 0x14: case 0x17: case 0x18: case 0x1d: /* EAX = highest sub-leaf */
		for (uint32_t s = 1; s <= r0.eax && s < 16; s++)
			show(leaf, s, cpuid(leaf, s));
		break;
	case 0xb: case 0x1f: /* topology: until level type 0 */
		for (uint32_t s = 1; s < 8; s++) {
			struct cpuid_regs r = cpuid(leaf, s);
			show(leaf, s, r);
			CHECK(r.edx == r0.edx, "x2APIC id differs between sub-leaves 0 and %u", s);
			if (((r.ecx >> 8) & 0xff) == 0)
				break;
		}
		break;
	case 0xd: { /* XSAVE: sub-leaf 1, then one per supported state component */
		struct cpuid_regs r1 = cpuid(leaf, 1);
		show(leaf, 1, r1);
		uint64_t comps = ((uint64_t)r0.edx << 32 | r0.eax) | ((uint64_t)r1.edx << 32 | r1.ecx);
		unsigned zero_ok = 0, others = 0;
		for (uint32_t s = 2; s < 63; s++) {
			struct cpuid_regs r = cpuid(leaf, s);
			if (comps & (1ull << s)) {
				/* No size check: Bochs answers 0 for PKRU (9). */
				show(leaf, s, r);
			} else {
				others++;
				zero_ok += is_zero(r);
			}
		}
		say("%08x: %u unsupported sub-leaves, %u of them all zero", leaf, others, zero_ok);
		CHECK(zero_ok == others, "sub-leaves of unsupported XSAVE components must be zero");
		break;
	}
	case 0xf: /* RDT monitoring */
		if (r0.edx & 2)
			show(leaf, 1, cpuid(leaf, 1));
		break;
	case 0x10: /* RDT allocation: one sub-leaf per resource in EBX */
		for (uint32_t s = 1; s < 32; s++)
			if (r0.ebx & (1u << s))
				show(leaf, s, cpuid(leaf, s));
		break;
	case 0x12: /* SGX: sub-leaves 1, then EPC sections until type 0 */
		show(leaf, 1, cpuid(leaf, 1));
		for (uint32_t s = 2; s < 10; s++) {
			struct cpuid_regs r = cpuid(leaf, s);
			show(leaf, s, r);
			if ((r.eax & 0xf) == 0)
				break;
		}
		break;
	}
}

TEST(cpuid, basic)
{
	uint32_t max = cpuid(0, 0).eax;
	CHECK(max >= 1 && max < 0x100, "highest basic leaf 0x%x", max);
	if (max >= 0x100)
		max = 0x20;
	for (uint32_t leaf = 0; leaf <= max; leaf++)
		dump_leaf(leaf);
}

TEST(cpuid, extended)
{
	uint32_t max = cpuid(0x80000000, 0).eax;
	CHECK(max >= 0x80000001 && max < 0x80000100, "highest extended leaf 0x%x", max);
	if (max < 0x80000000 || max >= 0x80000100)
		max = 0x80000000;
	for (uint32_t leaf = 0x80000000; leaf <= max; leaf++)
		show(leaf, 0, cpuid(leaf, 0));
	if (max >= 0x80000004) {
		char brand[49];
		for (uint32_t i = 0; i < 3; i++) {
			struct cpuid_regs r = cpuid(0x80000002 + i, 0);
			__builtin_memcpy(brand + 16 * i, &r, 16);
		}
		brand[48] = 0;
		const char *b = brand;
		while (*b == ' ')
			b++;
		say("brand '%s'", b);
	}
	struct cpuid_regs e1 = cpuid(0x80000001, 0);
	CHECK(e1.edx & (1u << 29), "we run in long mode but CPUID.80000001H:EDX.LM is 0");
	CHECK(e1.edx & (1u << 11), "SYSCALL not reported in 64-bit mode");
	if (max >= 0x80000008) {
		struct cpuid_regs e8 = cpuid(0x80000008, 0);
		unsigned pa = e8.eax & 0xff, va = (e8.eax >> 8) & 0xff;
		say("physical address bits %u, linear address bits %u", pa, va);
		CHECK(pa >= 36 && pa <= 52, "MAXPHYADDR %u", pa);
		CHECK(va == 48 || va == 57, "linear address width %u", va);
	}
}

/* What the bits of leaf 1 that depend on the current state say. */
TEST(cpuid, leaf1_state)
{
	struct cpuid_regs r = cpuid(1, 0);
	uint64_t cr4 = read_cr4(), apic = rdmsr(MSR_IA32_APIC_BASE);
	say("family/model/stepping %08x, osxsave %u, apic %u, initial apic id %u", r.eax, (r.ecx >> 27) & 1,
	    (r.edx >> 9) & 1, r.ebx >> 24);
	CHECK(((r.ecx >> 27) & 1) == ((cr4 & CR4_OSXSAVE) ? 1u : 0u), "CPUID.1:ECX.OSXSAVE != CR4.OSXSAVE");
	CHECK(((r.edx >> 9) & 1) == ((apic >> 11) & 1), "CPUID.1:EDX.APIC != IA32_APIC_BASE.EN");
	CHECK(r.edx & (1u << 6), "no PAE, yet we run in long mode");
	if (r.ecx & (1u << 26)) { /* XSAVE: toggling CR4.OSXSAVE shows in CPUID */
		write_cr4(cr4 ^ CR4_OSXSAVE);
		struct cpuid_regs t = cpuid(1, 0);
		write_cr4(cr4);
		say("with CR4.OSXSAVE toggled: osxsave %u", (t.ecx >> 27) & 1);
		CHECK(((t.ecx >> 27) & 1) == ((cr4 & CR4_OSXSAVE) ? 0u : 1u), "OSXSAVE did not follow CR4");
		CHECK(same(masked(1, t), masked(1, (struct cpuid_regs){ r.eax, r.ebx, r.ecx ^ (1u << 27), r.edx })),
		      "toggling CR4.OSXSAVE changed other leaf 1 bits");
	}
}

/* Intel: a leaf above the highest basic or extended leaf answers like the
 * highest basic leaf. */
TEST(cpuid, above_max)
{
	uint32_t max = cpuid(0, 0).eax, emax = cpuid(0x80000000, 0).eax;
	struct cpuid_regs top = cpuid(max, 0);
	static const uint32_t probes_base[] = { 1, 2, 0x100 };
	for (unsigned i = 0; i < sizeof(probes_base) / sizeof(probes_base[0]); i++) {
		uint32_t leaf = max + probes_base[i];
		struct cpuid_regs r = cpuid(leaf, 0);
		say("leaf max+0x%x: %08x %08x %08x %08x (%s)", probes_base[i], r.eax, r.ebx, r.ecx, r.edx,
		    same(r, top) ? "= highest basic leaf" : "other");
		CHECK(same(r, top), "leaf 0x%x does not answer like leaf 0x%x", leaf, max);
	}
	static const uint32_t probes_ext[] = { 1, 0x10 };
	for (unsigned i = 0; i < sizeof(probes_ext) / sizeof(probes_ext[0]); i++) {
		uint32_t leaf = emax + probes_ext[i];
		struct cpuid_regs r = cpuid(leaf, 0);
		say("leaf extmax+0x%x: %08x %08x %08x %08x (%s)", probes_ext[i], r.eax, r.ebx, r.ecx, r.edx,
		    same(r, top) ? "= highest basic leaf" : "other");
		CHECK(same(r, top), "leaf 0x%x does not answer like leaf 0x%x", leaf, max);
	}
	/* Ranges no Intel CPU defines. */
	static const uint32_t others[] = { 0x20000000, 0x8fffffff, 0xc0000000, 0xffffffff };
	for (unsigned i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		struct cpuid_regs r = cpuid(others[i], 0);
		say("leaf %08x: %08x %08x %08x %08x (%s)", others[i], r.eax, r.ebx, r.ecx, r.edx,
		    same(r, top) ? "= highest basic leaf" : "other");
	}
}

/* The hypervisor range is Nestor's at depth n: environment only. */
TEST(cpuid, hypervisor_range)
{
	struct cpuid_regs r = cpuid(0x40000000, 0);
	char sig[13];
	__builtin_memcpy(sig, &r.ebx, 4);
	__builtin_memcpy(sig + 4, &r.ecx, 4);
	__builtin_memcpy(sig + 8, &r.edx, 4);
	for (int i = 0; i < 12; i++)
		if (sig[i] < 0x20 || sig[i] > 0x7e)
			sig[i] = '.';
	sig[12] = 0;
	bool present = cpuid(1, 0).ecx & L1_ECX_HYPERVISOR;
	env("hypervisor bit %u; 40000000: %08x %08x %08x %08x '%s'", present, r.eax, r.ebx, r.ecx, r.edx, sig);
	if (present && r.eax >= 0x40000001 && r.eax < 0x40000100)
		for (uint32_t leaf = 0x40000001; leaf <= r.eax; leaf++) {
			struct cpuid_regs h = cpuid(leaf, 0);
			env("%08x: %08x %08x %08x %08x", leaf, h.eax, h.ebx, h.ecx, h.edx);
		}
}

/* --- CPUID at CPL 3 ---------------------------------------------------- */
#define MAX_PROBES 96
static struct {
	uint32_t n;
	uint32_t leaf[MAX_PROBES], sub[MAX_PROBES];
	struct cpuid_regs r[MAX_PROBES];
} probes;

static void cpuid_all(void *arg)
{
	(void)arg;
	for (uint32_t i = 0; i < probes.n; i++)
		probes.r[i] = cpuid(probes.leaf[i], probes.sub[i]);
}

static void add_probe(uint32_t leaf, uint32_t sub)
{
	if (probes.n < MAX_PROBES) {
		probes.leaf[probes.n] = leaf;
		probes.sub[probes.n] = sub;
		probes.n++;
	}
}

TEST(cpuid, user_mode)
{
	uint32_t max = cpuid(0, 0).eax, emax = cpuid(0x80000000, 0).eax;
	probes.n = 0;
	for (uint32_t l = 0; l <= max && l < 0x40; l++) {
		add_probe(l, 0);
		add_probe(l, 1);
	}
	for (uint32_t l = 0x80000000; l <= emax && l < 0x80000020; l++)
		add_probe(l, 0);
	add_probe(max + 1, 0);
	struct fault f;
	bool faulted = run_user(cpuid_all, 0, &f);
	say("%u CPUID probes at CPL 3: %s", probes.n, faulted ? "faulted" : "no fault");
	CHECK(!faulted, "CPUID at CPL 3 raised vector %u", f.vector);
	unsigned differ = 0;
	for (uint32_t i = 0; i < probes.n; i++) {
		struct cpuid_regs k = cpuid(probes.leaf[i], probes.sub[i]);
		if (!same(k, probes.r[i])) {
			differ++;
			say("%08x.%02x differs at CPL 3: %08x %08x %08x %08x", probes.leaf[i], probes.sub[i],
			    probes.r[i].eax, probes.r[i].ebx, probes.r[i].ecx, probes.r[i].edx);
		}
	}
	say("%u answers differ between CPL 0 and CPL 3", differ);
	CHECK(differ == 0, "CPUID answers depend on CPL");
}
