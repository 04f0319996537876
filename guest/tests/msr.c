/* msr.c - differential conformance tests of RDMSR/WRMSR, RDTSC(P), RDPMC.
 *
 * Reads of the architectural MSRs (value or exception), write/read-back of
 * the writable ones, the #GP(0) cases (unknown MSRs, reserved bits,
 * non-canonical addresses, CPL 3), the time-stamp counter and RDPMC.
 * IA32_FEATURE_CONTROL and the VMX capability MSRs differ under Nestor (no
 * VMX offered): they are printed with env() only.  Every MSR written is
 * restored. */
#include "guest/test.h"
#include "lib/format.h"
#include "lib/x86.h"

static bool is_gp0(bool hit, const struct fault *f) { return hit && f->vector == EXC_GP && f->error_code == 0; }

/* RCX is passed whole, so tests can check that RCX[63:32] is ignored. */
struct msrop {
	uint64_t rcx, val;
};
static void rd_fn(void *p)
{
	struct msrop *o = p;
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(o->rcx));
	o->val = (uint64_t)hi << 32 | lo;
}
static void wr_fn(void *p)
{
	struct msrop *o = p;
	__asm__ volatile("wrmsr" ::"c"(o->rcx), "a"((uint32_t)o->val), "d"((uint32_t)(o->val >> 32)) : "memory");
}
static bool try_rd(uint64_t msr, uint64_t *val, struct fault *f)
{
	struct msrop o = { msr, ~0ull };
	bool hit = catch_fault(rd_fn, &o, f);
	*val = o.val;
	return hit;
}
static bool try_wr(uint64_t msr, uint64_t val, struct fault *f)
{
	struct msrop o = { msr, val };
	return catch_fault(wr_fn, &o, f);
}

static struct cpuid_regs leaf(uint32_t l, uint32_t s)
{
	uint32_t max = cpuid(l & 0x80000000, 0).eax;
	if (l > max)
		return (struct cpuid_regs){ 0, 0, 0, 0 };
	return cpuid(l, s);
}

/* Prints "msr NAME: value" or the exception; returns true if it read. */
static bool show(uint32_t msr, const char *name, uint64_t *out)
{
	struct fault f;
	uint64_t v;
	char buf[40];
	bool hit = try_rd(msr, &v, &f);
	if (hit)
		say("%08x %-16s %s", msr, name, fault_str(buf, sizeof(buf), hit, &f));
	else
		say("%08x %-16s %016llx", msr, name, (unsigned long long)v);
	if (out)
		*out = v;
	return !hit;
}

TEST(msr, architectural)
{
	static const struct {
		uint32_t msr;
		const char *name;
	} t[] = {
		{ 0x1b, "APIC_BASE" },     { 0x8b, "BIOS_SIGN_ID" }, { 0x140, "MISC_FEATURES" },
		{ 0x174, "SYSENTER_CS" },  { 0x175, "SYSENTER_ESP" }, { 0x176, "SYSENTER_EIP" },
		{ 0x179, "MCG_CAP" },      { 0x17a, "MCG_STATUS" },  { 0x1a0, "MISC_ENABLE" },
		{ 0x1d9, "DEBUGCTL" },     { 0x277, "PAT" },         { 0x6e0, "TSC_DEADLINE" },
		{ 0xc0000080, "EFER" },    { 0xc0000081, "STAR" },   { 0xc0000082, "LSTAR" },
		{ 0xc0000083, "CSTAR" },   { 0xc0000084, "FMASK" },  { 0xc0000100, "FS_BASE" },
		{ 0xc0000101, "GS_BASE" }, { 0xc0000102, "KERNEL_GS_BASE" },
	};
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		show(t[i].msr, t[i].name, 0);
	uint64_t apic = rdmsr(MSR_IA32_APIC_BASE), efer = rdmsr(MSR_EFER);
	CHECK((apic & 0xfffff000) == 0xfee00000 && (apic & (1u << 11)) && (apic & (1u << 8)),
	      "APIC_BASE %llx: expected BSP, enabled, at fee00000", (unsigned long long)apic);
	CHECK((efer & (EFER_LME | EFER_LMA)) == (EFER_LME | EFER_LMA), "EFER %llx", (unsigned long long)efer);
	if (leaf(0x80000001, 0).edx & (1u << 27))
		show(0xc0000103, "TSC_AUX", 0);
	if (leaf(7, 0).ebx & (1u << 1))
		show(0x3b, "TSC_ADJUST", 0);
	if (leaf(7, 0).edx & (1u << 29))
		show(0x10a, "ARCH_CAPABILITIES", 0);
	if (leaf(7, 0).edx & (1u << 26))
		show(0x48, "SPEC_CTRL", 0);
	if (leaf(0xd, 1).eax & (1u << 3))
		show(0xda0, "XSS", 0);
	if (leaf(7, 0).ecx & (1u << 7)) {
		show(0x6a0, "U_CET", 0);
		show(0x6a2, "S_CET", 0);
	}
	struct fault f;
	uint64_t v;
	char buf[40];
	bool hit = try_rd(MSR_IA32_FEATURE_CONTROL, &v, &f);
	env("0000003a FEATURE_CONTROL  %s %016llx", fault_str(buf, sizeof(buf), hit, &f), (unsigned long long)v);
	for (uint32_t m = 0x480; m <= 0x491; m++) {
		hit = try_rd(m, &v, &f);
		env("%08x VMX capability   %s %016llx", m, fault_str(buf, sizeof(buf), hit, &f), (unsigned long long)v);
	}
}

/* The value as 16 hex digits, or the exception; true if it read. */
static bool msr_text(uint32_t msr, char *buf, size_t n)
{
	struct fault f;
	uint64_t v;
	bool hit = try_rd(msr, &v, &f);
	if (hit)
		fault_str(buf, n, hit, &f);
	else
		ksnprintf(buf, n, "%016llx", (unsigned long long)v);
	return !hit;
}

TEST(msr, mtrr)
{
	uint64_t cap = 0;
	if (!(leaf(1, 0).edx & (1u << 12))) {
		say("no MTRRs");
		return;
	}
	show(0xfe, "MTRRCAP", &cap);
	show(0x2ff, "MTRR_DEF_TYPE", 0);
	if (cap & (1u << 8)) {
		static const uint32_t fixed[] = { 0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b,
						  0x26c, 0x26d, 0x26e, 0x26f };
		for (unsigned i = 0; i < 11; i += 4) {
			char line[4 * 24] = "", one[24];
			size_t len = 0;
			for (unsigned j = 0; j < 4 && i + j < 11; j++) {
				msr_text(fixed[i + j], one, sizeof(one));
				len += ksnprintf(line + len, sizeof(line) - len, "%s%s", j ? " " : "", one);
			}
			say("fixed %03x: %s", fixed[i], line);
		}
	}
	unsigned vcnt = cap & 0xff, zero = 0;
	CHECK(vcnt <= 32, "VCNT %u", vcnt);
	for (unsigned i = 0; i < vcnt && i < 32; i++) {
		char base[24], mask[24];
		bool ok = msr_text(0x200 + 2 * i, base, sizeof(base)) & msr_text(0x201 + 2 * i, mask, sizeof(mask));
		if (ok && !rdmsr(0x200 + 2 * i) && !rdmsr(0x201 + 2 * i))
			zero++;
		else
			say("variable %u: base %s mask %s", i, base, mask);
	}
	say("%u of %u variable MTRR pairs are all zero", zero, vcnt);
	/* The first MSR past the variable MTRRs does not exist. */
	struct fault f;
	uint64_t v;
	char buf[40];
	bool hit = try_rd(0x200 + 2 * vcnt, &v, &f);
	say("PHYSBASE%u (past VCNT) -> %s", vcnt, fault_str(buf, sizeof(buf), hit, &f));
}

/* Writable MSRs: write, read back, restore. */
TEST(msr, write_readback)
{
	uint64_t canon = 0xffff8000deadb000ull;
	const struct {
		uint32_t msr;
		const char *name;
		uint64_t val;
	} t[] = {
		{ 0x174, "SYSENTER_CS", 0x1234 },
		{ 0x175, "SYSENTER_ESP", canon },
		{ 0x176, "SYSENTER_EIP", canon + 8 },
		{ 0x277, "PAT", 0x0001050400070406ull },
		{ 0xc0000081, "STAR", 0x0023001000000000ull },
		{ 0xc0000082, "LSTAR", canon + 0x10 },
		{ 0xc0000083, "CSTAR", canon + 0x18 },
		{ 0xc0000084, "FMASK", 0x47700 },
		{ 0xc0000100, "FS_BASE", canon + 0x20 },
		{ 0xc0000101, "GS_BASE", 0x00007fffffffe000ull },
		{ 0xc0000102, "KERNEL_GS_BASE", canon + 0x30 },
		{ 0x203, "MTRR_PHYSMASK1", 0 },
		{ 0x6e0, "TSC_DEADLINE", 0 },
	};
	char buf[40];
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct fault f;
		uint64_t old, now = 0;
		if (try_rd(t[i].msr, &old, &f)) {
			say("%08x %-16s read %s", t[i].msr, t[i].name, fault_str(buf, sizeof(buf), true, &f));
			continue;
		}
		uint64_t val = t[i].val;
		if (t[i].msr == 0x203) /* a mask below MAXPHYADDR, V = 0 (the pair stays off) */
			val = ((1ull << (leaf(0x80000008, 0).eax & 0xff)) - 1) & ~0xfffffffull;
		bool hit = try_wr(t[i].msr, val, &f);
		if (!hit)
			now = rdmsr(t[i].msr);
		wrmsr(t[i].msr, old);
		say("%08x %-16s <- %016llx -> %s, reads %016llx", t[i].msr, t[i].name, (unsigned long long)val,
		    fault_str(buf, sizeof(buf), hit, &f), (unsigned long long)now);
		CHECK(!hit && now == val, "%s: %s, reads %llx", t[i].name, fault_str(buf, sizeof(buf), hit, &f),
		      (unsigned long long)now);
		CHECK(rdmsr(t[i].msr) == old, "%s not restored", t[i].name);
	}
	/* EFER.SCE and EFER.NXE (if NX exists) are writable. */
	uint64_t efer = rdmsr(MSR_EFER);
	uint64_t bits = EFER_SCE | ((leaf(0x80000001, 0).edx & (1u << 20)) ? EFER_NXE : 0);
	struct fault f;
	bool hit = try_wr(MSR_EFER, efer ^ bits, &f);
	uint64_t now = rdmsr(MSR_EFER);
	wrmsr(MSR_EFER, efer);
	say("EFER ^ %llx -> %s, reads %016llx", (unsigned long long)bits, fault_str(buf, sizeof(buf), hit, &f),
	    (unsigned long long)now);
	CHECK(!hit && now == (efer ^ bits), "EFER toggle");
	CHECK(rdmsr(MSR_EFER) == efer, "EFER not restored");
	/* RCX[63:32] are ignored. */
	uint64_t pat;
	hit = try_rd(0xdead000000000277ull, &pat, &f);
	say("rdmsr rcx=dead000000000277 -> %s, %s PAT", fault_str(buf, sizeof(buf), hit, &f),
	    pat == rdmsr(MSR_IA32_PAT) ? "reads" : "does not read");
	CHECK(!hit && pat == rdmsr(MSR_IA32_PAT), "RCX[63:32] not ignored");
}

/* MSRs that do not exist: #GP(0). */
TEST(msr, unknown)
{
	static const uint32_t t[] = { 0x12345678, 0x00000002, 0x00001000, 0x00002000, 0x40000100, 0x4fffffff,
				      0x80000000, 0xc0000000, 0xc0000200, 0xc0010000, 0xc0011000, 0xffffffff,
				      0x00000802, 0x00000808 };
	char buf[40], buf2[40];
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct fault f, g;
		uint64_t v;
		bool r = try_rd(t[i], &v, &f);
		bool w = try_wr(t[i], 0, &g);
		say("%08x: rdmsr -> %s, wrmsr 0 -> %s", t[i], fault_str(buf, sizeof(buf), r, &f),
		    fault_str(buf2, sizeof(buf2), w, &g));
		/* 0x802/0x808 are x2APIC registers: #GP while in xAPIC mode. */
		CHECK(is_gp0(r, &f) && is_gp0(w, &g), "MSR %x: expected #GP(0)", t[i]);
	}
}

/* Reserved bits, invalid memory types, non-canonical addresses: #GP(0). */
TEST(msr, reserved_bits)
{
	uint64_t efer = rdmsr(MSR_EFER), pat = rdmsr(MSR_IA32_PAT), def = rdmsr(MSR_IA32_MTRR_DEF_TYPE);
	uint64_t apic = rdmsr(MSR_IA32_APIC_BASE);
	unsigned maxpa = leaf(0x80000008, 0).eax & 0xff;
	const struct {
		uint32_t msr;
		const char *name;
		uint64_t val;
	} t[] = {
		{ 0xc0000080, "EFER bit 1", efer | 2 },
		{ 0xc0000080, "EFER bit 9", efer | (1ull << 9) },
		{ 0xc0000080, "EFER bit 12", efer | (1ull << 12) },
		{ 0xc0000080, "EFER bit 63", efer | (1ull << 63) },
		{ 0xc0000080, "EFER LME=0 PG=1", efer & ~(uint64_t)EFER_LME },
		{ 0x277, "PAT type 2", (pat & ~0xffull) | 2 },
		{ 0x277, "PAT type 3", (pat & ~0xff00ull) | 0x300 },
		{ 0x277, "PAT type 8", (pat & ~0xff0000ull) | 0x080000 },
		{ 0x277, "PAT bit 63", pat | (1ull << 63) },
		{ 0x2ff, "DEF_TYPE type 2", (def & ~0xffull) | 2 },
		{ 0x2ff, "DEF_TYPE bit 12", def | (1ull << 12) },
		{ 0xc0000100, "FS_BASE non-canon", 0x0000800000000000ull },
		{ 0xc0000101, "GS_BASE non-canon", 0x8000000000000000ull },
		{ 0xc0000102, "KGS_BASE non-can", 0x1234567812345678ull },
		{ 0xc0000082, "LSTAR non-canon", 0x0000800000000000ull },
		{ 0xc0000083, "CSTAR non-canon", 0x0000800000000000ull },
		{ 0x175, "SYSENTER_ESP nc", 0x0000800000000000ull },
		{ 0x176, "SYSENTER_EIP nc", 0x0000800000000000ull },
		{ 0xc0000103, "TSC_AUX bit 32", 1ull << 32 }, /* Bochs accepts it (SDM: #GP) */
		{ 0x1b, "APIC_BASE bit 0", apic | 1 },
		{ 0x1b, "APIC_BASE MAXPA", apic | (1ull << maxpa) },
	};
	char buf[40];
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct fault f;
		uint64_t old;
		if (try_rd(t[i].msr, &old, &f)) {
			say("%-18s read %s", t[i].name, fault_str(buf, sizeof(buf), true, &f));
			continue;
		}
		bool hit = try_wr(t[i].msr, t[i].val, &f);
		uint64_t now = rdmsr(t[i].msr);
		if (!hit)
			wrmsr(t[i].msr, old);
		if (hit)
			say("%-18s <- %016llx -> %s", t[i].name, (unsigned long long)t[i].val,
			    fault_str(buf, sizeof(buf), hit, &f));
		else
			say("%-18s <- %016llx -> ok, reads %016llx", t[i].name, (unsigned long long)t[i].val,
			    (unsigned long long)now);
		if (t[i].msr == 0xc0000103)
			continue; /* Bochs 2.7 deviates: no #GP, see above */
		CHECK(is_gp0(hit, &f), "%s: expected #GP(0)", t[i].name);
		CHECK(now == old, "%s changed the MSR to %llx", t[i].name, (unsigned long long)now);
	}
}

/* --- CPL 3 ---------------------------------------------------------------- */
static void u_rdmsr(void *p) { *(uint64_t *)p = rdmsr(MSR_IA32_PAT); }
static void u_wrmsr(void *p) { wrmsr(MSR_IA32_PAT, *(uint64_t *)p); }
static void u_rdtsc(void *p) { *(uint64_t *)p = rdtsc(); }
static void u_rdtscp(void *p)
{
	uint32_t lo, hi, aux;
	__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
	*(uint64_t *)p = aux;
}
static void u_rdpmc(void *p)
{
	uint32_t lo, hi;
	__asm__ volatile("rdpmc" : "=a"(lo), "=d"(hi) : "c"((uint32_t)*(uint64_t *)p));
	*(uint64_t *)p = (uint64_t)hi << 32 | lo;
}

TEST(msr, user_mode)
{
	uint64_t v = rdmsr(MSR_IA32_PAT);
	struct fault f;
	char buf[40];
	bool hit = run_user(u_rdmsr, &v, &f);
	say("rdmsr PAT at CPL 3 -> %s", fault_str(buf, sizeof(buf), hit, &f));
	CHECK(is_gp0(hit, &f), "RDMSR at CPL 3: expected #GP(0)");
	v = rdmsr(MSR_IA32_PAT);
	hit = run_user(u_wrmsr, &v, &f);
	say("wrmsr PAT at CPL 3 -> %s", fault_str(buf, sizeof(buf), hit, &f));
	CHECK(is_gp0(hit, &f), "WRMSR at CPL 3: expected #GP(0)");
}

/* --- the time-stamp counter ----------------------------------------------------- */
TEST(msr, tsc)
{
	uint64_t a = rdtsc(), m = rdmsr(MSR_IA32_TSC), b = rdtsc();
	say("rdtsc <= rdmsr(TSC) <= rdtsc: %s", a < m && m < b ? "yes" : "no");
	CHECK(a < m && m < b, "TSC not increasing");
	uint64_t cr4 = read_cr4(), v = 0;
	struct fault f;
	char buf[40];
	bool hit = run_user(u_rdtsc, &v, &f);
	say("rdtsc at CPL 3, TSD=0 -> %s", fault_str(buf, sizeof(buf), hit, &f));
	CHECK(!hit && v > b, "RDTSC at CPL 3 with TSD=0");
	write_cr4(cr4 | CR4_TSD);
	hit = run_user(u_rdtsc, &v, &f);
	uint64_t k = rdtsc(); /* CPL 0 is not affected */
	write_cr4(cr4);
	say("rdtsc at CPL 3, TSD=1 -> %s; at CPL 0 -> ok", fault_str(buf, sizeof(buf), hit, &f));
	CHECK(is_gp0(hit, &f) && k > b, "RDTSC at CPL 3 with TSD=1: expected #GP(0)");

	if (!(leaf(0x80000001, 0).edx & (1u << 27))) {
		say("no RDTSCP");
		return;
	}
	uint64_t aux = rdmsr(MSR_TSC_AUX);
	wrmsr(MSR_TSC_AUX, 0x5a5a1234);
	hit = run_user(u_rdtscp, &v, &f);
	say("rdtscp at CPL 3, TSD=0 -> %s, ecx %08llx", fault_str(buf, sizeof(buf), hit, &f), (unsigned long long)v);
	CHECK(!hit && v == 0x5a5a1234, "RDTSCP: ecx %llx", (unsigned long long)v);
	write_cr4(cr4 | CR4_TSD);
	hit = run_user(u_rdtscp, &v, &f);
	write_cr4(cr4);
	say("rdtscp at CPL 3, TSD=1 -> %s", fault_str(buf, sizeof(buf), hit, &f));
	CHECK(is_gp0(hit, &f), "RDTSCP at CPL 3 with TSD=1: expected #GP(0)");
	if (leaf(7, 0).ecx & (1u << 22)) {
		uint64_t id;
		__asm__ volatile("rdpid %0" : "=r"(id));
		say("rdpid -> %08llx", (unsigned long long)id);
		CHECK(id == 0x5a5a1234, "RDPID %llx", (unsigned long long)id);
	}
	wrmsr(MSR_TSC_AUX, aux);
}

/* WRMSR to the TSC moves it (and TSC_ADJUST by as much, if present). */
TEST(msr, tsc_write)
{
	const uint64_t jump = 1ull << 40;
	bool adjust = leaf(7, 0).ebx & (1u << 1);
	uint64_t adj0 = adjust ? rdmsr(0x3b) : 0;
	uint64_t t0 = rdtsc();
	wrmsr(MSR_IA32_TSC, t0 + jump);
	uint64_t t1 = rdtsc();
	uint64_t adj1 = adjust ? rdmsr(0x3b) : 0;
	wrmsr(MSR_IA32_TSC, t1 - jump);
	uint64_t adj2 = adjust ? rdmsr(0x3b) : 0;
	bool moved = t1 > t0 + jump && t1 < t0 + jump + 1000000;
	say("TSC <- TSC + 2^40: rdtsc follows %s", moved ? "yes" : "no");
	CHECK(moved, "TSC did not move: %llx -> %llx", (unsigned long long)t0, (unsigned long long)t1);
	if (adjust) {
		int64_t d = (int64_t)(adj1 - adj0);
		bool near = d > (int64_t)jump - 1000000 && d <= (int64_t)jump;
		say("TSC_ADJUST moved by about 2^40: %s; back near its start: %s", near ? "yes" : "no",
		    (int64_t)(adj2 - adj0) > -1000000 && (int64_t)(adj2 - adj0) < 1000000 ? "yes" : "no");
	}
}

TEST(msr, rdpmc)
{
	struct cpuid_regs pmu = leaf(0xa, 0);
	unsigned n = (pmu.eax >> 8) & 0xff, nfixed = pmu.edx & 0x1f;
	say("PMU version %u, %u counters, %u fixed", pmu.eax & 0xff, n, nfixed);
	static const uint64_t ctr[] = { 0, 1, (1u << 30), (1u << 30) + 1, 0x100 };
	char buf[40];
	for (unsigned i = 0; i < sizeof(ctr) / sizeof(ctr[0]); i++) {
		struct fault f;
		uint64_t v = ctr[i];
		bool hit = catch_fault(u_rdpmc, &v, &f);
		if (hit)
			say("rdpmc %08llx at CPL 0 -> %s", (unsigned long long)ctr[i], fault_str(buf, sizeof(buf), hit, &f));
		else
			say("rdpmc %08llx at CPL 0 -> ok, %016llx", (unsigned long long)ctr[i], (unsigned long long)v);
	}
	uint64_t cr4 = read_cr4(), v = 0;
	struct fault f;
	bool hit = run_user(u_rdpmc, &v, &f);
	say("rdpmc 0 at CPL 3, PCE=0 -> %s", fault_str(buf, sizeof(buf), hit, &f));
	CHECK(is_gp0(hit, &f), "RDPMC at CPL 3 with PCE=0: expected #GP(0)");
	write_cr4(cr4 | CR4_PCE);
	v = 0;
	hit = run_user(u_rdpmc, &v, &f);
	write_cr4(cr4);
	say("rdpmc 0 at CPL 3, PCE=1 -> %s", fault_str(buf, sizeof(buf), hit, &f));
}
