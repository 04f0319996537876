/* cr.c - differential conformance tests of the control registers.
 *
 * Legal and illegal writes to CR0, CR3, CR4 and CR8, the ring-3 accesses,
 * SMSW/LMSW/CLTS and the registers that do not exist.  Each attempt prints
 * what happened (ok and the value read back, or the exception); each test
 * leaves the registers as it found them.  CR4.VMXE differs under Nestor (no
 * VMX offered): it is printed with env() only. */
#include "guest/test.h"
#include "lib/format.h"
#include "lib/x86.h"

uint64_t sa_cr4_pulse(uint64_t value, uint64_t restore);
void sa_rd_cr1(void *), sa_wr_cr5(void *), sa_rd_cr7(void *), sa_rd_cr9(void *), sa_rd_cr15(void *);
void sa_lock_cr0(void *), sa_smsw32(void *), sa_smsw16(void *), sa_smsw_mem(void *), sa_lmsw(void *);
void sa_clts(void *);

static bool is_gp0(bool hit, const struct fault *f) { return hit && f->vector == EXC_GP && f->error_code == 0; }

struct crw {
	int cr;
	uint64_t val;
};
static void crw_fn(void *p)
{
	struct crw *w = p;
	switch (w->cr) {
	case 0: write_cr0(w->val); break;
	case 2: write_cr2(w->val); break;
	case 3: write_cr3(w->val); break;
	case 4: write_cr4(w->val); break;
	case 8: write_cr8(w->val); break;
	}
}
static bool try_write(int cr, uint64_t val, struct fault *f)
{
	struct crw w = { cr, val };
	return catch_fault(crw_fn, &w, f);
}

/* --- CR0 ------------------------------------------------------------------ */
TEST(cr, cr0_legal)
{
	uint64_t cr0 = read_cr0();
	const uint64_t cache = cr0 & ~(CR0_CD | CR0_NW);
	const struct {
		const char *name;
		uint64_t val;
	} t[] = {
		{ "^ MP", cr0 ^ CR0_MP }, { "^ EM", cr0 ^ CR0_EM }, { "^ TS", cr0 ^ CR0_TS }, { "^ ET", cr0 ^ CR0_ET },
		{ "^ NE", cr0 ^ CR0_NE }, { "^ WP", cr0 ^ CR0_WP }, { "^ AM", cr0 ^ CR0_AM },
		{ "CD=0 NW=0", cache }, { "CD=1 NW=0", cache | CR0_CD }, { "CD=1 NW=1", cache | CR0_CD | CR0_NW },
		/* With NE changed too, a hypervisor emulates the write (NE is fixed
		 * under VMX): CD and NW must still take effect. */
		{ "^NE CD0 NW0", cache ^ CR0_NE }, { "^NE CD1 NW0", (cache | CR0_CD) ^ CR0_NE },
		{ "^NE CD1 NW1", (cache | CR0_CD | CR0_NW) ^ CR0_NE },
		{ "^ bit 6", cr0 ^ (1ul << 6) }, { "^ bit 15", cr0 ^ (1ul << 15) }, { "^ bit 17", cr0 ^ (1ul << 17) },
		{ "^ bit 28", cr0 ^ (1ul << 28) },
	};
	char buf[40];
	say("cr0 %08llx", (unsigned long long)cr0);
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct fault f;
		uint64_t v = t[i].val;
		bool hit = try_write(0, v, &f);
		uint64_t now = read_cr0();
		write_cr0(cr0);
		say("cr0 %-9s -> %s, reads %08llx", t[i].name, fault_str(buf, sizeof(buf), hit, &f),
		    (unsigned long long)now);
		/* ET is hardwired to 1; reserved bits 31:0 are ignored. */
		uint64_t expect = (v | CR0_ET) & 0xe005003full;
		CHECK(!hit, "legal CR0 write %llx faulted", (unsigned long long)v);
		CHECK(now == expect, "CR0 reads %llx after writing %llx", (unsigned long long)now,
		      (unsigned long long)v);
	}
	CHECK(read_cr0() == cr0, "CR0 not restored");
}

TEST(cr, cr0_illegal)
{
	uint64_t cr0 = read_cr0();
	const struct {
		const char *name;
		uint64_t val;
	} t[] = {
		{ "bit 32 set", cr0 | (1ull << 32) },
		{ "bit 63 set", cr0 | (1ull << 63) },
		{ "NW=1 CD=0", (cr0 & ~CR0_CD) | CR0_NW },
		{ "PE=0 PG=1", cr0 & ~CR0_PE },
		{ "PG=0 (long mode)", cr0 & ~CR0_PG },
		{ "PG=0 PE=0 (long mode)", cr0 & ~(CR0_PG | CR0_PE) },
	};
	char buf[40];
	/* Each also with NE changed, which makes a hypervisor emulate the
	 * write and make every check itself. */
	for (unsigned i = 0; i < 2 * sizeof(t) / sizeof(t[0]); i++) {
		struct fault f;
		unsigned k = i / 2;
		bool ne = i & 1;
		bool hit = try_write(0, ne ? t[k].val ^ CR0_NE : t[k].val, &f);
		uint64_t now = read_cr0();
		if (!hit)
			write_cr0(cr0);
		say("cr0 <- %s%s -> %s", t[k].name, ne ? ", NE changed" : "", fault_str(buf, sizeof(buf), hit, &f));
		CHECK(is_gp0(hit, &f), "%s: expected #GP(0)", t[k].name);
		CHECK(now == cr0, "%s changed CR0 to %llx", t[k].name, (unsigned long long)now);
	}
}

/* CET requires CR0.WP: clearing WP with CR4.CET set is #GP(0). */
static bool have_cet(void)
{
	struct cpuid_regs r = cpuid(0, 0);
	if (r.eax < 7)
		return false;
	r = cpuid(7, 0);
	return (r.ecx & (1u << 7)) || (r.edx & (1u << 20));
}

TEST(cr, smsw_lmsw_clts)
{
	uint64_t cr0 = read_cr0(), v;
	struct fault f;
	char buf[40];
	bool hit = catch_fault(sa_smsw32, &v, &f);
	say("smsw r32 -> %s, %016llx", fault_str(buf, sizeof(buf), hit, &f), (unsigned long long)v);
	CHECK(!hit && (uint32_t)v == (uint32_t)cr0, "SMSW r32 %llx, CR0 %llx", (unsigned long long)v,
	      (unsigned long long)cr0);
	hit = catch_fault(sa_smsw16, &v, &f);
	say("smsw r16 -> %s, %016llx", fault_str(buf, sizeof(buf), hit, &f), (unsigned long long)v);
	CHECK(!hit && v == (0xffffffffffff0000ull | (cr0 & 0xffff)), "SMSW r16 %llx", (unsigned long long)v);
	hit = catch_fault(sa_smsw_mem, &v, &f);
	say("smsw m16 -> %s, %016llx", fault_str(buf, sizeof(buf), hit, &f), (unsigned long long)v);
	CHECK(!hit && v == (0xffffffffffff0000ull | (cr0 & 0xffff)), "SMSW m16 %llx", (unsigned long long)v);

	/* LMSW loads PE MP EM TS only, and cannot clear PE. */
	uint64_t msw = 0xfffe; /* PE=0, MP EM TS = 1, every other bit set */
	hit = catch_fault(sa_lmsw, &msw, &f);
	uint64_t now = read_cr0();
	write_cr0(cr0);
	say("lmsw fffe -> %s, cr0 %08llx", fault_str(buf, sizeof(buf), hit, &f), (unsigned long long)now);
	CHECK(!hit && now == (cr0 | CR0_MP | CR0_EM | CR0_TS), "LMSW fffe: CR0 %llx", (unsigned long long)now);
	msw = 0;
	write_cr0(cr0 | CR0_MP | CR0_EM | CR0_TS);
	hit = catch_fault(sa_lmsw, &msw, &f);
	now = read_cr0();
	write_cr0(cr0);
	say("lmsw 0000 -> %s, cr0 %08llx", fault_str(buf, sizeof(buf), hit, &f), (unsigned long long)now);
	CHECK(!hit && now == ((cr0 & ~(CR0_MP | CR0_EM | CR0_TS)) | CR0_PE), "LMSW 0: CR0 %llx",
	      (unsigned long long)now);

	write_cr0(cr0 | CR0_TS);
	hit = catch_fault(sa_clts, 0, &f);
	now = read_cr0();
	write_cr0(cr0);
	say("clts with TS=1 -> %s, cr0 %08llx", fault_str(buf, sizeof(buf), hit, &f), (unsigned long long)now);
	CHECK(!hit && now == (cr0 & ~CR0_TS), "CLTS: CR0 %llx", (unsigned long long)now);
	CHECK(read_cr0() == cr0, "CR0 not restored");
}

/* --- CR4 ------------------------------------------------------------------ */
struct pulse {
	uint64_t val, restore, read;
};
static void pulse_fn(void *p)
{
	struct pulse *q = p;
	q->read = sa_cr4_pulse(q->val, q->restore);
}

/* Page directory entry that maps the 2 MiB around p (the identity map). */
static uint64_t *pde_of(const void *p)
{
	uint64_t a = (uint64_t)p;
	uint64_t *pml4 = (uint64_t *)(read_cr3() & 0x000ffffffffff000ull);
	uint64_t *pdpt = (uint64_t *)(pml4[(a >> 39) & 511] & 0x000ffffffffff000ull);
	uint64_t *pd = (uint64_t *)(pdpt[(a >> 30) & 511] & 0x000ffffffffff000ull);
	return &pd[(a >> 21) & 511];
}

/* Sets CR4 = cr4 ^ bit, reads it back and restores CR4 in one go. */
static bool toggle_cr4(uint64_t cr4, uint64_t bit, uint64_t *read, struct fault *f)
{
	struct pulse q = { cr4 ^ bit, cr4, ~0ull };
	uint64_t *pde = 0, saved = 0;
	if (bit == CR4_SMEP) {
		/* With SMEP the code doing the pulse must be on a supervisor page. */
		pde = pde_of((const void *)sa_cr4_pulse);
		saved = *pde;
		*pde = saved & ~4ull;
		invlpg((const void *)sa_cr4_pulse);
	}
	bool hit = catch_fault(pulse_fn, &q, f);
	if (pde) {
		*pde = saved;
		invlpg((const void *)sa_cr4_pulse);
	}
	*read = q.read;
	return hit;
}

TEST(cr, cr4_bits)
{
	static const char *const names[32] = { "VME", "PVI", "TSD", "DE", "PSE", "PAE", "MCE", "PGE",
					       "PCE", "OSFXSR", "OSXMMEXCPT", "UMIP", "LA57", "VMXE", "SMXE", "15",
					       "FSGSBASE", "PCIDE", "OSXSAVE", "KL", "SMEP", "SMAP", "PKE", "CET",
					       "PKS", "UINTR", "26", "LASS", "LAM_SUP", "29", "30", "31" };
	struct cpuid_regs l1 = cpuid(1, 0), l7 = { 0, 0, 0, 0 };
	if (cpuid(0, 0).eax >= 7)
		l7 = cpuid(7, 0);
	uint64_t cr0 = read_cr0(), cr4 = read_cr4();
	/* Which bits CPUID says may be set. */
	uint64_t ok = CR4_TSD | CR4_PCE | CR4_MCE | CR4_PAE;
	ok |= (l1.edx & (1u << 1)) ? CR4_VME | CR4_PVI : 0;
	ok |= (l1.edx & (1u << 2)) ? CR4_DE : 0;
	ok |= (l1.edx & (1u << 3)) ? CR4_PSE : 0;
	ok |= (l1.edx & (1u << 7)) ? CR4_MCE : 0;
	ok |= (l1.edx & (1u << 13)) ? CR4_PGE : 0;
	ok |= (l1.edx & (1u << 24)) ? CR4_OSFXSR : 0;
	ok |= (l1.edx & (1u << 25)) ? CR4_OSXMMEXCPT : 0;
	ok |= (l1.ecx & (1u << 6)) ? CR4_SMXE : 0;
	ok |= (l1.ecx & (1u << 17)) ? CR4_PCIDE : 0;
	ok |= (l1.ecx & (1u << 26)) ? CR4_OSXSAVE : 0;
	ok |= (l7.ebx & (1u << 0)) ? CR4_FSGSBASE : 0;
	ok |= (l7.ebx & (1u << 7)) ? CR4_SMEP : 0;
	ok |= (l7.ebx & (1u << 20)) ? CR4_SMAP : 0;
	ok |= (l7.ecx & (1u << 2)) ? CR4_UMIP : 0;
	ok |= (l7.ecx & (1u << 3)) ? CR4_PKE : 0;
	ok |= (l7.ecx & (1u << 23)) ? (1ul << 19) : 0; /* Key Locker */
	ok |= (l7.ecx & (1u << 31)) ? (1ul << 24) : 0; /* PKS */
	ok |= (l7.edx & (1u << 5)) ? (1ul << 25) : 0;  /* UINTR */
	ok |= have_cet() ? (1ul << 23) : 0;
	char buf[40];
	say("cr4 %08llx, cr0.WP %u", (unsigned long long)cr4, (cr0 & CR0_WP) ? 1 : 0);
	for (unsigned b = 0; b < 64; b++) {
		if (b > 32 && b != 63)
			continue;
		uint64_t bit = 1ull << b, read;
		struct fault f;
		bool hit = toggle_cr4(cr4, bit, &read, &f);
		bool set = !(cr4 & bit);
		const char *name = b < 32 ? names[b] : b == 32 ? "FRED" : "63";
		if (bit == CR4_VMXE) {
			env("cr4 %s %-10s -> %s", set ? "set  " : "clear", name, fault_str(buf, sizeof(buf), hit, &f));
			continue;
		}
		if (hit)
			say("cr4 %s %-10s -> %s", set ? "set  " : "clear", name, fault_str(buf, sizeof(buf), hit, &f));
		else
			say("cr4 %s %-10s -> ok, reads %08llx", set ? "set  " : "clear", name,
			    (unsigned long long)read);
		/* Must fault: a bit CPUID does not report, clearing PAE or
		 * changing LA57 in long mode, CET while CR0.WP = 0. */
		bool must_fault = !(ok & bit) || bit == CR4_PAE || bit == CR4_LA57 ||
				  (b == 23 && !(cr0 & CR0_WP));
		if (must_fault)
			CHECK(is_gp0(hit, &f), "CR4 bit %u (%s): expected #GP(0)", b, name);
		else
			CHECK(!hit && read == (cr4 ^ bit), "CR4 bit %u (%s): %s, reads %llx", b, name,
			      fault_str(buf, sizeof(buf), hit, &f), (unsigned long long)read);
		CHECK(read_cr4() == cr4, "CR4 not restored after bit %u", b);
	}
}

/* Illegal CR4 writes that also change VMXE, so that a hypervisor emulates
 * them (VMXE is its): #GP(0), CR4 unchanged. */
TEST(cr, cr4_illegal_emulated)
{
	uint64_t cr0 = read_cr0(), cr4 = read_cr4();
	const struct {
		const char *name;
		uint64_t val;
	} t[] = {
		{ "PAE cleared (long mode)", cr4 & ~CR4_PAE },
		{ "LA57 changed (long mode)", cr4 ^ CR4_LA57 },
		{ "bit 15 set", cr4 | (1ull << 15) },
		{ "bit 63 set", cr4 | (1ull << 63) },
		{ "CET with CR0.WP=0", cr4 | (1ull << 23) },
	};
	char buf[40];
	write_cr0(cr0 & ~CR0_WP);
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct fault f;
		bool hit = try_write(4, t[i].val ^ CR4_VMXE, &f);
		uint64_t now = read_cr4();
		if (!hit)
			write_cr4(cr4);
		say("cr4 <- %s, VMXE changed -> %s", t[i].name, fault_str(buf, sizeof(buf), hit, &f));
		CHECK(is_gp0(hit, &f), "%s: expected #GP(0)", t[i].name);
		CHECK(now == cr4, "%s changed CR4 to %llx", t[i].name, (unsigned long long)now);
	}
	write_cr0(cr0);
	/* PCIDE (long mode only, and only while CR3[11:0] = 0), on the same
	 * emulated path. */
	if (!(cpuid(1, 0).ecx & (1u << 17)) || (cr4 & CR4_PCIDE)) {
		say("no PCID, or PCIDE already set");
		return;
	}
	uint64_t cr3 = read_cr3();
	struct fault f;
	write_cr3(cr3 | 0x8);
	bool hit = try_write(4, (cr4 | CR4_PCIDE) ^ CR4_VMXE, &f);
	uint64_t now = read_cr4();
	write_cr4(cr4);
	write_cr3(cr3);
	say("cr4 <- PCIDE set with CR3[11:0]=008, VMXE changed -> %s", fault_str(buf, sizeof(buf), hit, &f));
	CHECK(is_gp0(hit, &f) && now == cr4, "PCIDE with CR3[11:0] != 0: expected #GP(0), CR4 %llx",
	      (unsigned long long)now);
	hit = try_write(4, (cr4 | CR4_PCIDE) ^ CR4_VMXE, &f);
	now = read_cr4();
	write_cr4(cr4);
	say("cr4 <- PCIDE set with CR3[11:0]=0, VMXE changed -> %s, PCIDE %u", fault_str(buf, sizeof(buf), hit, &f),
	    (unsigned)((now & CR4_PCIDE) != 0));
	CHECK(!hit && now == ((cr4 | CR4_PCIDE) ^ CR4_VMXE), "PCIDE with CR3[11:0] = 0: CR4 %llx",
	      (unsigned long long)now);
}

TEST(cr, cr4_cet_wp)
{
	if (!have_cet()) {
		say("no CET");
		return;
	}
	uint64_t cr0 = read_cr0(), cr4 = read_cr4();
	struct fault f;
	char buf[40];
	write_cr0(cr0 | CR0_WP);
	bool hit = try_write(4, cr4 | (1ul << 23), &f);
	say("set CR4.CET with CR0.WP=1 -> %s", fault_str(buf, sizeof(buf), hit, &f));
	CHECK(!hit, "CET with WP=1 refused");
	if (!hit) {
		hit = try_write(0, cr0 & ~CR0_WP, &f);
		say("clear CR0.WP with CR4.CET=1 -> %s", fault_str(buf, sizeof(buf), hit, &f));
		CHECK(is_gp0(hit, &f), "clearing WP under CET: expected #GP(0)");
		write_cr4(cr4);
	}
	write_cr0(cr0);
	CHECK(read_cr0() == cr0 && read_cr4() == cr4, "CR0/CR4 not restored");
}

/* CR4.UMIP: SMSW (and SGDT...) at CPL 3 raise #GP(0). */
static void user_smsw(void *arg) { sa_smsw32(arg); }

TEST(cr, cr4_umip)
{
	uint64_t cr4 = read_cr4(), v = 0;
	struct fault f;
	char buf[40];
	bool hit = run_user(user_smsw, &v, &f);
	say("smsw at CPL 3, UMIP=0 -> %s, %08llx", fault_str(buf, sizeof(buf), hit, &f), (unsigned long long)v);
	CHECK(!hit && (uint32_t)v == (uint32_t)read_cr0(), "SMSW at CPL 3: %llx", (unsigned long long)v);
	if (cpuid(0, 0).eax < 7 || !(cpuid(7, 0).ecx & (1u << 2))) {
		say("no UMIP");
		return;
	}
	write_cr4(cr4 | CR4_UMIP);
	hit = run_user(user_smsw, &v, &f);
	write_cr4(cr4);
	say("smsw at CPL 3, UMIP=1 -> %s", fault_str(buf, sizeof(buf), hit, &f));
	CHECK(is_gp0(hit, &f), "SMSW at CPL 3 with UMIP: expected #GP(0)");
}

/* --- CR3 ------------------------------------------------------------------ */
TEST(cr, cr3)
{
	extern uint64_t pml4[];
	uint64_t cr3 = read_cr3(), cr4 = read_cr4();
	unsigned maxpa = cpuid(0x80000008, 0).eax & 0xff;
	bool pcid = cpuid(1, 0).ecx & (1u << 17);
	struct fault f;
	char buf[40];
	say("cr3 is the boot PML4: %s; low 12 bits %03llx", cr3 == (uint64_t)pml4 ? "yes" : "no",
	    (unsigned long long)(cr3 & 0xfff));
	CHECK((cr3 & ~0xfffull) == (uint64_t)pml4, "CR3 %llx", (unsigned long long)cr3);
	const struct {
		const char *name;
		uint64_t val;
	} t[] = {
		{ "same", cr3 },
		{ "PWT|PCD", cr3 | 0x18 },
		{ "bits 2:0", cr3 | 0x7 },
		{ "bits 11:5", cr3 | 0xfe0 },
		{ "bit MAXPHYADDR", cr3 | (1ull << maxpa) },
		{ "bit 51", cr3 | (1ull << 51) },
		{ "bit 52", cr3 | (1ull << 52) },
		{ "bit 63 (PCIDE=0)", cr3 | (1ull << 63) },
	};
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		bool hit = try_write(3, t[i].val, &f);
		uint64_t now = read_cr3();
		write_cr3(cr3);
		if (hit)
			say("cr3 <- %-16s -> %s", t[i].name, fault_str(buf, sizeof(buf), hit, &f));
		else
			say("cr3 <- %-16s -> ok, low 12 bits %03llx, bits 63:12 %s", t[i].name,
			    (unsigned long long)(now & 0xfff), (now >> 12) == (t[i].val >> 12) ? "as written" : "other");
		bool reserved = (t[i].val >> maxpa) != 0;
		if (reserved)
			CHECK(is_gp0(hit, &f), "%s: expected #GP(0)", t[i].name);
		else
			CHECK(!hit && now == t[i].val, "%s: reads %llx", t[i].name, (unsigned long long)now);
	}
	if (!pcid) {
		say("no PCID");
		return;
	}
	/* CR4.PCIDE can only be set while CR3[11:0] = 0. */
	write_cr3(cr3 | 0x8);
	bool hit = try_write(4, cr4 | CR4_PCIDE, &f);
	write_cr4(cr4);
	write_cr3(cr3);
	say("set PCIDE with CR3[11:0]=008 -> %s", fault_str(buf, sizeof(buf), hit, &f));
	CHECK(is_gp0(hit, &f), "PCIDE with non-zero PCID: expected #GP(0)");
	write_cr4(cr4 | CR4_PCIDE);
	hit = try_write(3, cr3 | 0x5a5, &f);
	uint64_t with_pcid = read_cr3();
	bool hit2 = try_write(3, cr3 | 0x5a5 | (1ull << 63), &f);
	uint64_t noflush = read_cr3();
	write_cr3(cr3);
	hit |= try_write(4, cr4, &f);
	say("PCIDE=1: cr3 <- pcid 5a5 -> %s, reads %03llx; with bit 63 -> %s, reads %03llx, bit 63 %llu",
	    hit ? "fault" : "ok", (unsigned long long)(with_pcid & 0xfff), hit2 ? "fault" : "ok",
	    (unsigned long long)(noflush & 0xfff), (unsigned long long)(noflush >> 63));
	CHECK(!hit && !hit2, "CR3 writes with PCIDE=1 faulted");
	CHECK(with_pcid == (cr3 | 0x5a5) && noflush == (cr3 | 0x5a5), "CR3 with PCID: %llx %llx",
	      (unsigned long long)with_pcid, (unsigned long long)noflush);
	write_cr3(cr3);
	write_cr4(cr4);
	CHECK(read_cr3() == cr3 && read_cr4() == cr4, "CR3/CR4 not restored");
}

/* --- CR2, CR8 --------------------------------------------------------------- */
TEST(cr, cr2)
{
	static const uint64_t vals[] = { 0, 0x12345678, 0xdead0000beef0000ull, 0xffffffffffffffffull };
	uint64_t cr2 = read_cr2();
	for (unsigned i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		write_cr2(vals[i]);
		uint64_t now = read_cr2();
		say("cr2 <- %016llx, reads %016llx", (unsigned long long)vals[i], (unsigned long long)now);
		CHECK(now == vals[i], "CR2 reads %llx", (unsigned long long)now);
	}
	write_cr2(cr2);
}

TEST(cr, cr8)
{
	uint64_t base = rdmsr(MSR_IA32_APIC_BASE);
	bool xapic = (base & (1u << 11)) && !(base & (1u << 10));
	volatile uint32_t *tpr = (volatile uint32_t *)((base & 0xfffff000ull) + 0x80);
	char rd[17], mm[17];
	uint64_t cr8 = read_cr8();
	say("cr8 %llu, xAPIC mode %s", (unsigned long long)cr8, xapic ? "yes" : "no");
	for (unsigned v = 0; v < 16; v++) {
		write_cr8(v);
		uint64_t now = read_cr8();
		uint32_t t = xapic ? *tpr : 0;
		rd[v] = "0123456789abcdef"[now & 15];
		mm[v] = "0123456789abcdef"[(t >> 4) & 15];
		CHECK(now == v, "CR8 reads %llu after writing %u", (unsigned long long)now, v);
		if (xapic)
			CHECK(t == (v << 4), "TPR %x after CR8 <- %u", t, v);
	}
	rd[16] = mm[16] = 0;
	say("cr8 <- 0..f reads %s; APIC TPR[7:4] %s", rd, xapic ? mm : "-");
	if (xapic) {
		*tpr = 0x9c;
		uint64_t now = read_cr8();
		say("TPR <- 9c: cr8 reads %llu, TPR reads %02x", (unsigned long long)now, *tpr);
		CHECK(now == 9, "CR8 %llu after TPR <- 0x9c", (unsigned long long)now);
	}
	static const uint64_t bad[] = { 0x10, 1ull << 63 };
	char buf[40];
	for (unsigned i = 0; i < 2; i++) {
		struct fault f;
		bool hit = try_write(8, bad[i], &f);
		say("cr8 <- %llx -> %s", (unsigned long long)bad[i], fault_str(buf, sizeof(buf), hit, &f));
		CHECK(is_gp0(hit, &f), "CR8 reserved bits: expected #GP(0)");
	}
	write_cr8(cr8);
	if (xapic)
		*tpr = (uint32_t)cr8 << 4;
	CHECK(read_cr8() == cr8, "CR8 not restored");
}

/* --- registers that do not exist, CPL 3 ------------------------------------- */
TEST(cr, undefined)
{
	static const struct {
		const char *name;
		void (*fn)(void *);
	} t[] = {
		{ "mov cr1 -> rax", sa_rd_cr1 }, { "mov rax -> cr5", sa_wr_cr5 }, { "mov cr7 -> rax", sa_rd_cr7 },
		{ "mov cr9 -> rax", sa_rd_cr9 }, { "mov cr15 -> rax", sa_rd_cr15 }, { "lock mov cr0 -> rax", sa_lock_cr0 },
	};
	char buf[40];
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct fault f;
		bool hit = catch_fault(t[i].fn, 0, &f);
		say("%-20s -> %s", t[i].name, fault_str(buf, sizeof(buf), hit, &f));
		CHECK(hit && f.vector == EXC_UD, "%s: expected #UD", t[i].name);
	}
}

static void u_rd0(void *p) { *(uint64_t *)p = read_cr0(); }
static void u_wr0(void *p) { write_cr0(*(uint64_t *)p); }
static void u_rd2(void *p) { *(uint64_t *)p = read_cr2(); }
static void u_wr2(void *p) { write_cr2(*(uint64_t *)p); }
static void u_rd3(void *p) { *(uint64_t *)p = read_cr3(); }
static void u_wr3(void *p) { write_cr3(*(uint64_t *)p); }
static void u_rd4(void *p) { *(uint64_t *)p = read_cr4(); }
static void u_wr4(void *p) { write_cr4(*(uint64_t *)p); }
static void u_rd8(void *p) { *(uint64_t *)p = read_cr8(); }
static void u_wr8(void *p) { write_cr8(*(uint64_t *)p); }

TEST(cr, user_mode)
{
	static const struct {
		const char *name;
		void (*fn)(void *);
		int cr;
	} t[] = {
		{ "read cr0", u_rd0, 0 }, { "write cr0", u_wr0, 0 }, { "read cr2", u_rd2, 2 },
		{ "write cr2", u_wr2, 2 }, { "read cr3", u_rd3, 3 }, { "write cr3", u_wr3, 3 },
		{ "read cr4", u_rd4, 4 }, { "write cr4", u_wr4, 4 }, { "read cr8", u_rd8, 8 },
		{ "write cr8", u_wr8, 8 }, { "lmsw", sa_lmsw, 0 }, { "clts", sa_clts, 0 },
	};
	char buf[40];
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t v = t[i].cr == 0 ? read_cr0() : t[i].cr == 2 ? read_cr2() : t[i].cr == 3 ? read_cr3()
			   : t[i].cr == 4 ? read_cr4() : read_cr8();
		struct fault f;
		bool hit = run_user(t[i].fn, &v, &f);
		say("CPL 3 %-9s -> %s", t[i].name, fault_str(buf, sizeof(buf), hit, &f));
		CHECK(is_gp0(hit, &f), "%s at CPL 3: expected #GP(0)", t[i].name);
	}
}
