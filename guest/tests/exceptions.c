/* exceptions.c - differential conformance tests of exception delivery.
 *
 * Each case raises one exception and prints its vector, error code, CR2
 * where relevant and the saved RIP relative to the faulting instruction
 * (+0 for a fault, +length for a trap), never an absolute address.  The
 * page-fault cases use private 4 KiB page tables hung under PML4 entry 1
 * (linear 0x8000000000, unused by the identity map) and removed afterwards;
 * IDT gates and control registers changed by a case are restored. */
#include "guest/test.h"
#include "lib/format.h"
#include "lib/string.h"
#include "lib/x86.h"

#define P(name) void name(void *); extern const char name##_insn[]
P(sa_div0); P(sa_idiv32); P(sa_idiv64); P(sa_div_quot); P(sa_int3); P(sa_int_3); P(sa_icebp);
P(sa_ud2); P(sa_push_es); P(sa_into); P(sa_lock_nop); P(sa_syscall); P(sa_load_noncanon);
P(sa_stack_noncanon); P(sa_ljmp); P(sa_lcall); P(sa_load_ds); P(sa_load_ss); P(sa_int_20); P(sa_int_41);
P(sa_int_ff); P(sa_hlt); P(sa_cli); P(sa_in80); P(sa_misaligned_ac); P(sa_single_step); P(sa_fninit);
P(sa_fwait); P(sa_xorps); P(sa_read8); P(sa_write8); P(sa_call_arg); P(sa_insb8); P(sa_outsb8);
#undef P
extern const char sa_ret_code[];
extern const char __image_start[], __image_end[];


/* "#GP(50) rip=insn+0" or "ok"; rip relative to insn. */
static const char *describe(char *buf, size_t n, bool hit, const struct fault *f, const void *insn)
{
	if (!hit) {
		ksnprintf(buf, n, "no exception");
		return buf;
	}
	const char *v = exception_mnemonic(f->vector);
	int64_t d = (int64_t)(f->rip - (uint64_t)insn);
	if (exception_has_error_code(f->vector))
		ksnprintf(buf, n, "%s(%llx) rip=insn%+lld", v, (unsigned long long)f->error_code, (long long)d);
	else
		ksnprintf(buf, n, "%s rip=insn%+lld", v, (long long)d);
	return buf;
}

/* Runs fn at CPL 0 (user = false) or 3, prints the outcome, checks it. */
static void expect(const char *what, void (*fn)(void *), void *arg, bool user, const void *insn, int vector,
		   uint64_t error_code, int rip_delta)
{
	struct fault f;
	char buf[64];
	bool hit = user ? run_user(fn, arg, &f) : catch_fault(fn, arg, &f);
	say("%-34s %s", what, describe(buf, sizeof(buf), hit, &f, insn));
	if (vector < 0) {
		CHECK(!hit, "%s: unexpected exception %u", what, f.vector);
		return;
	}
	CHECK(hit && f.vector == vector, "%s: expected vector %d", what, vector);
	if (hit && exception_has_error_code(f.vector))
		CHECK(f.error_code == error_code, "%s: expected error code %llx", what,
		      (unsigned long long)error_code);
	if (hit)
		CHECK((int64_t)(f.rip - (uint64_t)insn) == rip_delta, "%s: expected rip=insn%+d", what, rip_delta);
}
#define NONE -1

/* --- #DE #DB #BP #UD ---------------------------------------------------------- */
TEST(exceptions, de)
{
	expect("div by zero", sa_div0, 0, false, sa_div0_insn, EXC_DE, 0, 0);
	expect("idiv 32-bit INT_MIN / -1", sa_idiv32, 0, false, sa_idiv32_insn, EXC_DE, 0, 0);
	expect("idiv 64-bit INT_MIN / -1", sa_idiv64, 0, false, sa_idiv64_insn, EXC_DE, 0, 0);
	expect("div quotient overflow", sa_div_quot, 0, false, sa_div_quot_insn, EXC_DE, 0, 0);
	expect("div by zero at CPL 3", sa_div0, 0, true, sa_div0_insn, EXC_DE, 0, 0);
}

TEST(exceptions, db)
{
	write_dr6(0xffff0ff0);
	expect("icebp (int1)", sa_icebp, 0, false, sa_icebp_insn, EXC_DB, 0, 1);
	say("dr6 after icebp %08llx", (unsigned long long)read_dr6());
	write_dr6(0xffff0ff0);
	expect("single step after popf TF=1", sa_single_step, 0, false, sa_single_step_insn, EXC_DB, 0, 1);
	uint64_t dr6 = read_dr6();
	say("dr6 after single step %08llx", (unsigned long long)dr6);
	CHECK(dr6 & (1u << 14), "DR6.BS not set after a single-step trap");
	write_dr6(0xffff0ff0);
}

/* IDT gate access (the IDT is the framework's; gates are restored). */
static uint8_t *gate(unsigned v)
{
	struct dtr d;
	__asm__ volatile("sidt %0" : "=m"(d));
	return (uint8_t *)d.base + 16 * v;
}

TEST(exceptions, bp)
{
	expect("int3", sa_int3, 0, false, sa_int3_insn, EXC_BP, 0, 1);
	expect("int $3 (cd 03)", sa_int_3, 0, false, sa_int_3_insn, EXC_BP, 0, 2);
	expect("int3 at CPL 3, gate DPL 0", sa_int3, 0, true, sa_int3_insn, EXC_GP, (3 << 3) | 2, 0);
	uint8_t *g = gate(EXC_BP), type = g[5];
	g[5] = 0xee; /* DPL 3 */
	expect("int3 at CPL 3, gate DPL 3", sa_int3, 0, true, sa_int3_insn, EXC_BP, 0, 1);
	expect("int $3 at CPL 3, gate DPL 3", sa_int_3, 0, true, sa_int_3_insn, EXC_BP, 0, 2);
	g[5] = type;
}

TEST(exceptions, ud)
{
	expect("ud2", sa_ud2, 0, false, sa_ud2_insn, EXC_UD, 0, 0);
	expect("push es (64-bit mode)", sa_push_es, 0, false, sa_push_es_insn, EXC_UD, 0, 0);
	expect("into (64-bit mode)", sa_into, 0, false, sa_into_insn, EXC_UD, 0, 0);
	expect("lock nop", sa_lock_nop, 0, false, sa_lock_nop_insn, EXC_UD, 0, 0);
	expect("ud2 at CPL 3", sa_ud2, 0, true, sa_ud2_insn, EXC_UD, 0, 0);
	uint64_t efer = rdmsr(MSR_EFER);
	CHECK(!(efer & EFER_SCE), "EFER.SCE set at boot");
	if (!(efer & EFER_SCE))
		expect("syscall with EFER.SCE=0", sa_syscall, 0, true, sa_syscall_insn, EXC_UD, 0, 0);
}

/* --- #GP #SS, selectors ---------------------------------------------------------- */
struct __attribute__((packed)) farptr {
	uint32_t off;
	uint16_t sel;
};

TEST(exceptions, gp)
{
	expect("load from 8000000000000000", sa_load_noncanon, (void *)0x8000000000000000ull, false,
	       sa_load_noncanon_insn, EXC_GP, 0, 0);
	expect("load from 0000800000000000", sa_load_noncanon, (void *)0x0000800000000000ull, false,
	       sa_load_noncanon_insn, EXC_GP, 0, 0);
	expect("load non-canonical at CPL 3", sa_load_noncanon, (void *)0xfff0000000000000ull, true,
	       sa_load_noncanon_insn, EXC_GP, 0, 0);
	expect("rbp-based load non-canonical", sa_stack_noncanon, (void *)0x8000000000000000ull, false,
	       sa_stack_noncanon_insn, EXC_SS, 0, 0);
	static struct farptr fp;
	fp = (struct farptr){ 0x1000, 0x50 };
	expect("ljmp to 0x50 (past GDT limit)", sa_ljmp, &fp, false, sa_ljmp_insn, EXC_GP, 0x50, 0);
	fp.sel = G_KDATA;
	expect("ljmp to 0x10 (data segment)", sa_ljmp, &fp, false, sa_ljmp_insn, EXC_GP, 0x10, 0);
	fp.sel = 0;
	expect("lcall to null selector", sa_lcall, &fp, false, sa_lcall_insn, EXC_GP, 0, 0);
	fp.sel = G_TSS;
	expect("lcall to 0x40 (TSS, busy)", sa_lcall, &fp, false, sa_lcall_insn, EXC_GP, 0x40, 0);
	expect("mov 0x50 to ds", sa_load_ds, (void *)0x50, false, sa_load_ds_insn, EXC_GP, 0x50, 0);
	expect("mov 0x40 (TSS) to ds", sa_load_ds, (void *)(uint64_t)G_TSS, false, sa_load_ds_insn, EXC_GP, 0x40, 0);
	expect("mov 0x33 (RPL 3) to ss at CPL 0", sa_load_ss, (void *)0x33, false, sa_load_ss_insn, EXC_GP, 0x30,
	       0);
	expect("mov 0x08 (code) to ss", sa_load_ss, (void *)0x08, false, sa_load_ss_insn, EXC_GP, 0x08, 0);
	expect("mov 0x10 to ds at CPL 3", sa_load_ds, (void *)(uint64_t)G_KDATA, true, sa_load_ds_insn, EXC_GP,
	       0x10, 0);
	expect("hlt at CPL 3", sa_hlt, 0, true, sa_hlt_insn, EXC_GP, 0, 0);
	expect("cli at CPL 3 (IOPL 0)", sa_cli, 0, true, sa_cli_insn, EXC_GP, 0, 0);
	expect("in $0x80 at CPL 3 (IOPL 0)", sa_in80, 0, true, sa_in80_insn, EXC_GP, 0, 0);
}

/* --- software interrupts and IDT gates ------------------------------------------ */
TEST(exceptions, int_gates)
{
	expect("int $0x41 at CPL 0", sa_int_41, 0, false, sa_int_41_insn, 0x41, 0, 2);
	expect("int $0xff at CPL 0", sa_int_ff, 0, false, sa_int_ff_insn, 0xff, 0, 2);
	expect("int $0x20 at CPL 3, gate DPL 0", sa_int_20, 0, true, sa_int_20_insn, EXC_GP, (0x20 << 3) | 2, 0);
	expect("int $0x41 at CPL 3, gate DPL 0", sa_int_41, 0, true, sa_int_41_insn, EXC_GP, (0x41 << 3) | 2, 0);
	uint8_t *g = gate(0x41), type = g[5];
	g[5] = 0xee;
	expect("int $0x41 at CPL 3, gate DPL 3", sa_int_41, 0, true, sa_int_41_insn, 0x41, 0, 2);
	g[5] = 0x0e; /* not present */
	expect("int $0x41, gate not present", sa_int_41, 0, false, sa_int_41_insn, EXC_NP, (0x41 << 3) | 2, 0);
	g[5] = 0x86; /* a 16-bit interrupt gate: invalid in long mode */
	expect("int $0x41, 16-bit gate type", sa_int_41, 0, false, sa_int_41_insn, EXC_GP, (0x41 << 3) | 2, 0);
	g[5] = 0x8f; /* 64-bit trap gate */
	expect("int $0x41, trap gate", sa_int_41, 0, false, sa_int_41_insn, 0x41, 0, 2);
	g[5] = type;
	/* A vector past the IDT limit. */
	struct dtr d, small;
	__asm__ volatile("sidt %0" : "=m"(d));
	small = d;
	small.limit = 0x41 * 16 - 1;
	lidt(&small);
	expect("int $0x41 past the IDT limit", sa_int_41, 0, false, sa_int_41_insn, EXC_GP, (0x41 << 3) | 2, 0);
	lidt(&d);
	expect("int $0x41 again", sa_int_41, 0, false, sa_int_41_insn, 0x41, 0, 2);
}

/* --- #AC #NM ------------------------------------------------------------------------ */
TEST(exceptions, ac)
{
	static uint64_t buf[2] __attribute__((aligned(16)));
	uint64_t cr0 = read_cr0();
	expect("misaligned, AC=1, CR0.AM=0, CPL 3", sa_misaligned_ac, buf, true, sa_misaligned_ac_insn, NONE, 0, 0);
	write_cr0(cr0 | CR0_AM);
	expect("misaligned, AC=1, CR0.AM=1, CPL 3", sa_misaligned_ac, buf, true, sa_misaligned_ac_insn, EXC_AC, 0,
	       0);
	expect("misaligned, AC=1, CR0.AM=1, CPL 0", sa_misaligned_ac, buf, false, sa_misaligned_ac_insn, NONE, 0, 0);
	write_cr0(cr0);
}

TEST(exceptions, nm)
{
	uint64_t cr0 = read_cr0(), cr4 = read_cr4();
	write_cr0(cr0 & ~(CR0_EM | CR0_TS));
	expect("fninit, TS=0 EM=0", sa_fninit, 0, false, sa_fninit_insn, NONE, 0, 0);
	write_cr0(cr0 | CR0_TS);
	expect("fninit, TS=1", sa_fninit, 0, false, sa_fninit_insn, EXC_NM, 0, 0);
	write_cr0((cr0 | CR0_TS) & ~CR0_MP);
	expect("fwait, TS=1 MP=0", sa_fwait, 0, false, sa_fwait_insn, NONE, 0, 0);
	write_cr0(cr0 | CR0_TS | CR0_MP);
	expect("fwait, TS=1 MP=1", sa_fwait, 0, false, sa_fwait_insn, EXC_NM, 0, 0);
	write_cr0((cr0 | CR0_EM) & ~CR0_TS);
	expect("fninit, EM=1", sa_fninit, 0, false, sa_fninit_insn, EXC_NM, 0, 0);
	write_cr0(cr0 & ~(CR0_EM | CR0_TS));
	write_cr4(cr4 & ~CR4_OSFXSR);
	expect("xorps, CR4.OSFXSR=0", sa_xorps, 0, false, sa_xorps_insn, EXC_UD, 0, 0);
	write_cr4(cr4 | CR4_OSFXSR);
	write_cr0((cr0 | CR0_EM) & ~CR0_TS);
	expect("xorps, OSFXSR=1 EM=1", sa_xorps, 0, false, sa_xorps_insn, EXC_UD, 0, 0);
	write_cr0((cr0 | CR0_TS) & ~CR0_EM);
	expect("xorps, OSFXSR=1 TS=1", sa_xorps, 0, false, sa_xorps_insn, EXC_NM, 0, 0);
	write_cr0(cr0 & ~(CR0_EM | CR0_TS));
	expect("xorps, OSFXSR=1 TS=0 EM=0", sa_xorps, 0, false, sa_xorps_insn, NONE, 0, 0);
	write_cr4(cr4);
	write_cr0(cr0);
}

/* --- page faults ----------------------------------------------------------------------- */
#define PF_BASE 0x0000008000000000ull
#define PF_PAGE(i) (PF_BASE + 0x1000ull * (i))
enum { PG_URW, PG_URO, PG_SRW, PG_NP, PG_UNX, PG_UX, PG_RSVD, PG_SX, PG_COUNT };
#define PTE_P 1ull
#define PTE_W 2ull
#define PTE_U 4ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_XD (1ull << 63)

static uint64_t pf_pdpt[512] __attribute__((aligned(4096)));
static uint64_t pf_pd[512] __attribute__((aligned(4096)));
static uint64_t pf_pt[512] __attribute__((aligned(4096)));
static uint8_t pf_frames[PG_COUNT][4096] __attribute__((aligned(4096)));
static uint64_t *pf_pml4e;

/* Builds the private mapping; false if PML4 entry 1 is in use. */
static bool pf_setup(void)
{
	uint64_t *pml4 = (uint64_t *)(read_cr3() & 0x000ffffffffff000ull);
	unsigned maxpa = cpuid(0x80000008, 0).eax & 0xff;
	pf_pml4e = &pml4[(PF_BASE >> 39) & 511];
	if (*pf_pml4e)
		return false;
	memset(pf_pdpt, 0, sizeof(pf_pdpt));
	memset(pf_pd, 0, sizeof(pf_pd));
	memset(pf_pt, 0, sizeof(pf_pt));
	memset(pf_frames, 0, sizeof(pf_frames));
	pf_pdpt[0] = (uint64_t)pf_pd | PTE_P | PTE_W | PTE_U;
	pf_pd[0] = (uint64_t)pf_pt | PTE_P | PTE_W | PTE_U;
	for (unsigned i = 0; i < PG_COUNT; i++)
		pf_pt[i] = (uint64_t)pf_frames[i] | PTE_P | PTE_W | PTE_U;
	pf_pt[PG_URO] &= ~PTE_W;
	pf_pt[PG_SRW] &= ~PTE_U;
	pf_pt[PG_NP] &= ~PTE_P;
	pf_pt[PG_UNX] |= PTE_XD;
	pf_pt[PG_RSVD] |= maxpa < 52 ? 1ull << maxpa : 0;
	pf_pt[PG_SX] &= ~PTE_U;
	pf_frames[PG_UNX][0] = pf_frames[PG_UX][0] = pf_frames[PG_SX][0] = (uint8_t)sa_ret_code[0];
	*pf_pml4e = (uint64_t)pf_pdpt | PTE_P | PTE_W | PTE_U;
	write_cr3(read_cr3());
	return true;
}
static void pf_teardown(void)
{
	*pf_pml4e = 0;
	write_cr3(read_cr3());
}

/* Prints and checks one page-fault case. */
static void pf_case(const char *what, void (*fn)(void *), unsigned page, bool user, const void *insn,
		    int64_t error_code)
{
	struct fault f;
	char buf[64];
	void *va = (void *)PF_PAGE(page);
	invlpg(va);
	bool hit = user ? run_user(fn, va, &f) : catch_fault(fn, va, &f);
	if (hit && f.vector == EXC_PF)
		say("%-34s #PF(%llx) cr2=base+%llx rip=%s", what, (unsigned long long)f.error_code,
		    (unsigned long long)(f.cr2 - PF_BASE),
		    f.rip == (uint64_t)insn ? "insn" : f.rip == (uint64_t)va ? "target" : "other");
	else
		say("%-34s %s", what, describe(buf, sizeof(buf), hit, &f, insn));
	if (error_code < 0) {
		CHECK(!hit, "%s: unexpected exception %u", what, f.vector);
		return;
	}
	CHECK(hit && f.vector == EXC_PF && f.error_code == (uint64_t)error_code && f.cr2 == (uint64_t)va,
	      "%s: expected #PF(%llx) at %p", what, (unsigned long long)error_code, va);
}

TEST(exceptions, pf)
{
	if (!pf_setup()) {
		say("PML4 entry 1 in use; skipped");
		CHECK(false, "cannot build the private mapping");
		return;
	}
	uint64_t cr0 = read_cr0();
	pf_case("read, not present", sa_read8, PG_NP, false, sa_read8_insn, 0x0);
	pf_case("write, not present", sa_write8, PG_NP, false, sa_write8_insn, 0x2);
	pf_case("user read, not present", sa_read8, PG_NP, true, sa_read8_insn, 0x4);
	pf_case("user write, not present", sa_write8, PG_NP, true, sa_write8_insn, 0x6);
	pf_case("read, user page", sa_read8, PG_URW, false, sa_read8_insn, -1);
	pf_case("user write, user page", sa_write8, PG_URW, true, sa_write8_insn, -1);
	pf_case("user read, supervisor page", sa_read8, PG_SRW, true, sa_read8_insn, 0x5);
	pf_case("user write, supervisor page", sa_write8, PG_SRW, true, sa_write8_insn, 0x7);
	pf_case("user write, read-only page", sa_write8, PG_URO, true, sa_write8_insn, 0x7);
	write_cr0(cr0 & ~CR0_WP);
	pf_case("write, read-only page, WP=0", sa_write8, PG_URO, false, sa_write8_insn, -1);
	write_cr0(cr0 | CR0_WP);
	pf_case("write, read-only page, WP=1", sa_write8, PG_URO, false, sa_write8_insn, 0x3);
	write_cr0(cr0);
	pf_case("call, user page", sa_call_arg, PG_UX, false, sa_call_arg_insn, -1);
	pf_case("user call, supervisor page", sa_call_arg, PG_SX, true, sa_call_arg_insn, 0x5);
	pf_case("user call, not present", sa_call_arg, PG_NP, true, sa_call_arg_insn, 0x4);
	pf_teardown();
}

/* The accessed and dirty bits the CPU sets. */
TEST(exceptions, pf_accessed_dirty)
{
	if (!pf_setup()) {
		CHECK(false, "cannot build the private mapping");
		return;
	}
	uint64_t *pte = &pf_pt[PG_URW];
	*pte &= ~(PTE_A | PTE_D);
	pf_pd[0] &= ~(PTE_A | PTE_D);
	write_cr3(read_cr3());
	struct fault f;
	catch_fault(sa_read8, (void *)PF_PAGE(PG_URW), &f);
	uint64_t after_read = *pte, pde = pf_pd[0];
	catch_fault(sa_write8, (void *)PF_PAGE(PG_URW), &f);
	uint64_t after_write = *pte;
	say("after read: pte A=%llu D=%llu, pde A=%llu; after write: pte A=%llu D=%llu",
	    (unsigned long long)((after_read >> 5) & 1), (unsigned long long)((after_read >> 6) & 1),
	    (unsigned long long)((pde >> 5) & 1), (unsigned long long)((after_write >> 5) & 1),
	    (unsigned long long)((after_write >> 6) & 1));
	CHECK((after_read & PTE_A) && !(after_read & PTE_D) && (pde & PTE_A), "A/D after a read");
	CHECK((after_write & (PTE_A | PTE_D)) == (PTE_A | PTE_D), "A/D after a write");
	/* A faulting access sets no accessed bit on the not-present path. */
	pf_pt[PG_URO] &= ~(PTE_A | PTE_D);
	invlpg((void *)PF_PAGE(PG_URO));
	run_user(sa_write8, (void *)PF_PAGE(PG_URO), &f);
	say("user write to read-only page: #PF(%llx), pte D=%llu", (unsigned long long)f.error_code,
	    (unsigned long long)((pf_pt[PG_URO] >> 6) & 1));
	CHECK(!(pf_pt[PG_URO] & PTE_D), "D set by a faulting write");
	pf_teardown();
}

/* Execute-disable, and the XD bit as a reserved bit while EFER.NXE = 0. */
TEST(exceptions, pf_nx_reserved)
{
	if (!pf_setup()) {
		CHECK(false, "cannot build the private mapping");
		return;
	}
	unsigned maxpa = cpuid(0x80000008, 0).eax & 0xff;
	uint64_t efer = rdmsr(MSR_EFER);
	say("EFER.NXE %u", (efer & EFER_NXE) ? 1 : 0);
	if (!(efer & EFER_NXE))
		pf_case("read, XD=1 with NXE=0", sa_read8, PG_UNX, false, sa_read8_insn, 0x9);
	if (maxpa < 52) {
		pf_case("read, PTE bit MAXPHYADDR set", sa_read8, PG_RSVD, false, sa_read8_insn, 0x9);
		pf_case("user write, PTE bit MAXPHYADDR", sa_write8, PG_RSVD, true, sa_write8_insn, 0xf);
	}
	if (cpuid(0x80000001, 0).edx & (1u << 20)) {
		wrmsr(MSR_EFER, efer | EFER_NXE);
		pf_case("call, XD=1 with NXE=1", sa_call_arg, PG_UNX, false, sa_call_arg_insn, 0x11);
		pf_case("user call, XD=1 with NXE=1", sa_call_arg, PG_UNX, true, sa_call_arg_insn, 0x15);
		pf_case("read, XD=1 with NXE=1", sa_read8, PG_UNX, false, sa_read8_insn, -1);
		pf_case("user call, not present, NXE=1", sa_call_arg, PG_NP, true, sa_call_arg_insn, 0x14);
		wrmsr(MSR_EFER, efer);
	} else {
		say("no NX");
	}
	pf_teardown();
}

/* SMEP and SMAP: the kernel image is made supervisor-only for the test
 * (its PDEs lose U), so the fault handler itself keeps working. */
TEST(exceptions, smep_smap)
{
	struct cpuid_regs l7 = cpuid(0, 0).eax >= 7 ? cpuid(7, 0) : (struct cpuid_regs){ 0, 0, 0, 0 };
	bool smep = l7.ebx & (1u << 7), smap = l7.ebx & (1u << 20);
	say("SMEP %u, SMAP %u", smep, smap);
	if (!smep && !smap)
		return;
	if (!pf_setup()) {
		CHECK(false, "cannot build the private mapping");
		return;
	}
	uint64_t *pml4 = (uint64_t *)(read_cr3() & 0x000ffffffffff000ull);
	uint64_t *pdpt = (uint64_t *)(pml4[0] & 0x000ffffffffff000ull);
	uint64_t *pd = (uint64_t *)(pdpt[0] & 0x000ffffffffff000ull);
	unsigned first = (uint64_t)__image_start >> 21, last = ((uint64_t)__image_end - 1) >> 21;
	uint64_t saved[8];
	CHECK(last - first < 8 && ((uint64_t)__image_end >> 30) == 0, "image too large");
	if (last - first >= 8) {
		pf_teardown();
		return;
	}
	for (unsigned i = first; i <= last; i++) {
		saved[i - first] = pd[i];
		pd[i] &= ~PTE_U;
	}
	uint64_t cr4 = read_cr4();
	write_cr3(read_cr3());
	write_cr4(cr4 | (smep ? CR4_SMEP : 0) | (smap ? CR4_SMAP : 0));
	if (smep) {
		pf_case("SMEP: call, user page", sa_call_arg, PG_UX, false, sa_call_arg_insn, 0x11);
		pf_case("SMEP: call, supervisor page", sa_call_arg, PG_SX, false, sa_call_arg_insn, -1);
	}
	if (smap) {
		pf_case("SMAP: read, user page", sa_read8, PG_URW, false, sa_read8_insn, 0x1);
		pf_case("SMAP: write, user page", sa_write8, PG_URW, false, sa_write8_insn, 0x3);
		__asm__ volatile("stac" ::: "memory");
		pf_case("SMAP: read, user page, AC=1", sa_read8, PG_URW, false, sa_read8_insn, -1);
		__asm__ volatile("clac" ::: "memory");
		pf_case("SMAP: read, supervisor page", sa_read8, PG_SRW, false, sa_read8_insn, -1);
	}
	write_cr4(cr4);
	for (unsigned i = first; i <= last; i++)
		pd[i] = saved[i - first];
	pf_teardown();
}

/* The same checks on accesses a hypervisor makes for the guest: INSB and
 * OUTSB with a port Nestor intercepts (0x8900), so that the memory access
 * is emulated through the guest's 4-level paging (vmx/guest_mem.c): present,
 * R/W with CR0.WP, reserved bits, SMAP with EFLAGS.AC, protection keys. */
TEST(exceptions, pf_emulated_access)
{
	if (!pf_setup()) {
		CHECK(false, "cannot build the private mapping");
		return;
	}
	uint64_t cr0 = read_cr0(), cr4 = read_cr4();
	write_cr0(cr0 | CR0_WP);
	pf_case("insb, user page", sa_insb8, PG_URW, false, sa_insb8_insn, -1);
	pf_case("insb, supervisor page", sa_insb8, PG_SRW, false, sa_insb8_insn, -1);
	pf_case("insb, read-only page, WP=1", sa_insb8, PG_URO, false, sa_insb8_insn, 0x3);
	pf_case("insb, not present", sa_insb8, PG_NP, false, sa_insb8_insn, 0x2);
	pf_case("insb, reserved bit", sa_insb8, PG_RSVD, false, sa_insb8_insn, 0xb);
	pf_case("outsb, not present", sa_outsb8, PG_NP, false, sa_outsb8_insn, 0x0);
	pf_case("outsb, reserved bit", sa_outsb8, PG_RSVD, false, sa_outsb8_insn, 0x9);
	/* XD is a reserved bit while EFER.NXE = 0. */
	pf_case("outsb, execute-disable page", sa_outsb8, PG_UNX, false, sa_outsb8_insn,
		(rdmsr(MSR_EFER) & EFER_NXE) ? -1 : 0x9);
	write_cr0(cr0 & ~CR0_WP);
	pf_case("insb, read-only page, WP=0", sa_insb8, PG_URO, false, sa_insb8_insn, -1);
	write_cr0(cr0);
	struct cpuid_regs l7 = cpuid(0, 0).eax >= 7 ? cpuid(7, 0) : (struct cpuid_regs){ 0, 0, 0, 0 };
	/* The guest kernel's own pages are user pages: supervisor pages while
	 * SMAP is on (as in smep_smap). */
	uint64_t *pml4 = (uint64_t *)(read_cr3() & 0x000ffffffffff000ull);
	uint64_t *pdpt = (uint64_t *)(pml4[0] & 0x000ffffffffff000ull);
	uint64_t *pd = (uint64_t *)(pdpt[0] & 0x000ffffffffff000ull);
	unsigned first = (uint64_t)__image_start >> 21, last = ((uint64_t)__image_end - 1) >> 21;
	if ((l7.ebx & (1u << 20)) && last - first < 8) {
		uint64_t saved[8];
		for (unsigned i = first; i <= last; i++) {
			saved[i - first] = pd[i];
			pd[i] &= ~PTE_U;
		}
		write_cr3(read_cr3());
		write_cr4(cr4 | CR4_SMAP);
		pf_case("SMAP: insb, user page", sa_insb8, PG_URW, false, sa_insb8_insn, 0x3);
		pf_case("SMAP: outsb, user page", sa_outsb8, PG_URW, false, sa_outsb8_insn, 0x1);
		__asm__ volatile("stac" ::: "memory");
		pf_case("SMAP: insb, user page, AC=1", sa_insb8, PG_URW, false, sa_insb8_insn, -1);
		__asm__ volatile("clac" ::: "memory");
		write_cr4(cr4);
		for (unsigned i = first; i <= last; i++)
			pd[i] = saved[i - first];
		write_cr3(read_cr3());
	} else {
		say("no SMAP");
	}
	if (l7.ecx & (1u << 3)) {
		/* Key 1 on the user page, write-disabled in PKRU.  (Not
		 * access-disable: for a supervisor access to a user page the SDM
		 * (4.6.2) faults, Bochs 2.7 does not - it checks PKRU.AD only at
		 * CPL 3; Nestor follows the SDM, docs/testing.md.) */
		pf_pt[PG_URW] |= 1ull << 59;
		invlpg((void *)PF_PAGE(PG_URW));
		write_cr4(cr4 | CR4_PKE);
		__asm__ volatile("wrpkru" ::"a"(1u << 3), "c"(0), "d"(0));
		pf_case("PKE: outsb, key 1 write-disabled", sa_outsb8, PG_URW, false, sa_outsb8_insn, -1);
		pf_case("PKE: insb, key 1 write-disabled, WP=0", sa_insb8, PG_URW, false, sa_insb8_insn, -1);
		write_cr0(cr0 | CR0_WP);
		pf_case("PKE: insb, key 1 write-disabled, WP=1", sa_insb8, PG_URW, false, sa_insb8_insn, 0x23);
		write_cr0(cr0);
		__asm__ volatile("wrpkru" ::"a"(0u), "c"(0), "d"(0));
		write_cr4(cr4);
		pf_pt[PG_URW] &= ~(1ull << 59);
	} else {
		say("no protection keys");
	}
	pf_teardown();
}

/* Accessed and dirty flags, and large pages, on the accesses a hypervisor
 * makes for the guest (INSB writes, OUTSB reads, port 0x8900 intercepted:
 * vmx/guest_mem.c).  The CPU sets A in every paging-structure entry it uses
 * and D in the leaf on a write (SDM 4.8), for 4 KiB, 2 MiB and 1 GiB pages;
 * PDE/PDPTE bits 20:13 / 29:13 of a large page are reserved (4.5.4).  What
 * each entry has after the access is printed. */
#define PTE_PS 0x80ull
#define PF_2M (PF_BASE + (1ull << 21))	 /* pf_pd[1]: a 2 MiB page */
#define PF_1G (PF_BASE + (1ull << 30))	 /* pf_pdpt[1]: a 1 GiB page */

static void ad_clear(uint64_t **e, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		*e[i] &= ~(PTE_A | PTE_D);
	write_cr3(read_cr3());
}

static void ad_case(const char *what, void (*fn)(void *), void *va, const void *insn, uint64_t **e,
		    const char *const *names, unsigned n, int64_t error_code)
{
	struct fault f;
	char buf[64], ad[96];
	ad_clear(e, n);
	bool hit = catch_fault(fn, va, &f);
	size_t k = 0;
	for (unsigned i = 0; i < n && k < sizeof(ad); i++)
		k += (size_t)ksnprintf(ad + k, sizeof(ad) - k, " %s %s%s", names[i], (*e[i] & PTE_A) ? "A" : "-",
				       (*e[i] & PTE_D) ? "D" : "-");
	if (hit && f.vector == EXC_PF)
		say("%-30s #PF(%llx);%s", what, (unsigned long long)f.error_code, ad);
	else
		say("%-30s %s;%s", what, describe(buf, sizeof(buf), hit, &f, insn), ad);
	if (error_code < 0)
		CHECK(!hit, "%s: unexpected exception %u", what, f.vector);
	else
		CHECK(hit && f.vector == EXC_PF && f.error_code == (uint64_t)error_code, "%s: expected #PF(%llx)",
		      what, (unsigned long long)error_code);
}

TEST(exceptions, emulated_access_ad)
{
	if (!pf_setup()) {
		CHECK(false, "cannot build the private mapping");
		return;
	}
	static const char *const names[] = { "PML4E", "PDPTE", "PDE", "PTE" };
	uint64_t *e4[] = { pf_pml4e, &pf_pdpt[0], &pf_pd[0], &pf_pt[PG_URW] };
	void *va = (void *)PF_PAGE(PG_URW);
	ad_case("insb, 4 KiB page", sa_insb8, va, sa_insb8_insn, e4, names, 4, -1);
	ad_case("outsb, 4 KiB page", sa_outsb8, va, sa_outsb8_insn, e4, names, 4, -1);
	/* A 2 MiB page over the frame of PG_URW (the byte written is the same). */
	uint64_t frame = (uint64_t)pf_frames[PG_URW];
	pf_pd[1] = (frame & ~0x1fffffull) | PTE_PS | PTE_P | PTE_W | PTE_U;
	uint64_t *e2[] = { pf_pml4e, &pf_pdpt[0], &pf_pd[1] };
	void *va2 = (void *)(PF_2M + (frame & 0x1fffff));
	ad_case("insb, 2 MiB page", sa_insb8, va2, sa_insb8_insn, e2, names, 3, -1);
	ad_case("outsb, 2 MiB page", sa_outsb8, va2, sa_outsb8_insn, e2, names, 3, -1);
	pf_pd[1] |= 1ull << 13; /* reserved in a 2 MiB PDE */
	ad_case("insb, 2 MiB page, bit 13", sa_insb8, va2, sa_insb8_insn, e2, names, 3, 0xb);
	pf_pd[1] = 0;
	if (cpuid(0x80000001, 0).edx & (1u << 26)) {
		CHECK(frame < (1ull << 30), "frame above 1 GiB");
		pf_pdpt[1] = PTE_PS | PTE_P | PTE_W | PTE_U; /* physical 0 - 1 GiB */
		uint64_t *e1[] = { pf_pml4e, &pf_pdpt[1] };
		void *va1 = (void *)(PF_1G + frame);
		ad_case("insb, 1 GiB page", sa_insb8, va1, sa_insb8_insn, e1, names, 2, -1);
		ad_case("outsb, 1 GiB page", sa_outsb8, va1, sa_outsb8_insn, e1, names, 2, -1);
		pf_pdpt[1] |= 1ull << 13; /* reserved in a 1 GiB PDPTE */
		ad_case("outsb, 1 GiB page, bit 13", sa_outsb8, va1, sa_outsb8_insn, e1, names, 2, 0x9);
		pf_pdpt[1] = 0;
	} else {
		say("no 1 GiB pages");
	}
	write_cr3(read_cr3());
	pf_teardown();
}

/* Segment overrides on the same emulated accesses (64-bit mode, SDM 3.4.4):
 * OUTSB through FS and GS adds their base; INSB writes ES:RDI, a prefix
 * does not change that.  The faults show which address was used. */
extern const char sa_fs_outsb8_insn[], sa_gs_outsb8_insn[], sa_fs_insb8_insn[];
void sa_fs_outsb8(void *), sa_gs_outsb8(void *), sa_fs_insb8(void *);

static void seg_case(const char *what, void (*fn)(void *), void *arg, const void *insn, int64_t error_code,
		     uint64_t cr2)
{
	struct fault f;
	char buf[64];
	bool hit = catch_fault(fn, arg, &f);
	if (hit && f.vector == EXC_PF)
		say("%-36s #PF(%llx) cr2=base+%llx", what, (unsigned long long)f.error_code,
		    (unsigned long long)(f.cr2 - PF_BASE));
	else
		say("%-36s %s", what, describe(buf, sizeof(buf), hit, &f, insn));
	if (error_code < 0)
		CHECK(!hit, "%s: unexpected exception %u", what, f.vector);
	else if (error_code == 0x100)
		CHECK(hit && f.vector == EXC_GP && f.error_code == 0, "%s: expected #GP(0)", what);
	else
		CHECK(hit && f.vector == EXC_PF && f.error_code == (uint64_t)error_code && f.cr2 == cr2,
		      "%s: expected #PF(%llx) at %llx", what, (unsigned long long)error_code, (unsigned long long)cr2);
}

TEST(exceptions, emulated_access_segments)
{
	if (!pf_setup()) {
		CHECK(false, "cannot build the private mapping");
		return;
	}
	uint64_t fs = rdmsr(MSR_FS_BASE), gs = rdmsr(MSR_GS_BASE);
	uint64_t np = PF_PAGE(PG_NP), ok = PF_PAGE(PG_URW);
	invlpg((void *)np);
	wrmsr(MSR_FS_BASE, np - 0x40);
	seg_case("fs outsb, base + rsi not present", sa_fs_outsb8, (void *)0x40, sa_fs_outsb8_insn, 0x0, np);
	wrmsr(MSR_FS_BASE, ok - 0x40);
	seg_case("fs outsb, base + rsi present", sa_fs_outsb8, (void *)0x40, sa_fs_outsb8_insn, -1, 0);
	wrmsr(MSR_GS_BASE, np);
	seg_case("gs outsb, base not present", sa_gs_outsb8, (void *)0x7, sa_gs_outsb8_insn, 0x0, np + 7);
	wrmsr(MSR_GS_BASE, 0x00007ffffffffff0ull);
	seg_case("gs outsb, base + rsi non-canonical", sa_gs_outsb8, (void *)0x20, sa_gs_outsb8_insn, 0x100, 0);
	wrmsr(MSR_GS_BASE, gs);
	wrmsr(MSR_FS_BASE, np);
	seg_case("fs insb (ES:RDI), rdi present", sa_fs_insb8, (void *)ok, sa_fs_insb8_insn, -1, 0);
	seg_case("fs insb (ES:RDI), rdi not present", sa_fs_insb8, (void *)np, sa_fs_insb8_insn, 0x2, np);
	wrmsr(MSR_FS_BASE, fs);
	pf_teardown();
}
