/* xsetbv.c - XCR0 through XSETBV/XGETBV, the CPUID leaf 0xD that describes
 * it, the faults the SDM requires (#UD without CR4.OSXSAVE, #GP(0) for
 * illegal values, an invalid XCR index, or CPL > 0), and the extended state
 * (YMM registers) surviving instructions a hypervisor intercepts (CPUID and
 * XSETBV always exit under VT-x).
 *
 * Every test leaves XCR0 and CR4 as it found them. */
#include "guest/test.h"
#include "lib/string.h"
#include "lib/x86.h"

#define XSAVE_X87 (1ull << 0)
#define XSAVE_SSE (1ull << 1)
#define XSAVE_AVX (1ull << 2)
#define XSAVE_BNDREGS (1ull << 3)
#define XSAVE_BNDCSR (1ull << 4)
#define XSAVE_OPMASK (1ull << 5)
#define XSAVE_ZMM_HI256 (1ull << 6)
#define XSAVE_HI16_ZMM (1ull << 7)
#define XSAVE_AVX512 (XSAVE_OPMASK | XSAVE_ZMM_HI256 | XSAVE_HI16_ZMM)
#define XSAVE_PKRU (1ull << 9)

/* --- helpers (assembly: the C code is built without SSE) ----------------- */

/* Loads YMM0-15 from in[512], executes CPUID twice and rewrites XCR0 with
 * its own value (all three exit to a hypervisor), stores YMM0-15 to out. */
void xsetbv_ymm_roundtrip(const void *in, void *out);
/* Stores YMM0-15 to out[512]. */
void xsetbv_ymm_store(void *out);
__asm__(".pushsection .text\n"
	".globl xsetbv_ymm_roundtrip\n"
	"xsetbv_ymm_roundtrip:\n"
	"	pushq %rbx\n"
	"	.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"	vmovdqu \\i*32(%rdi), %ymm\\i\n"
	"	.endr\n"
	"	movq %rsi, %r8\n"
	"	xorl %eax, %eax\n"
	"	xorl %ecx, %ecx\n"
	"	cpuid\n"
	"	movl $0xd, %eax\n"
	"	xorl %ecx, %ecx\n"
	"	cpuid\n"
	"	xorl %ecx, %ecx\n"
	"	xgetbv\n"
	"	xsetbv\n"
	"	movq %r8, %rdi\n"
	"	popq %rbx\n"
	"	jmp xsetbv_ymm_store\n"
	".globl xsetbv_ymm_store\n"
	"xsetbv_ymm_store:\n"
	"	.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"	vmovdqu %ymm\\i, \\i*32(%rdi)\n"
	"	.endr\n"
	"	ret\n"
	".popsection\n");

struct xcr_op {
	uint32_t idx;
	uint64_t val;
};

static void op_xsetbv(void *p)
{
	const struct xcr_op *o = p;
	__asm__ volatile("xsetbv" ::"c"(o->idx), "a"((uint32_t)o->val), "d"((uint32_t)(o->val >> 32)) : "memory");
}

static void op_xgetbv(void *p)
{
	struct xcr_op *o = p;
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(o->idx));
	o->val = (uint64_t)hi << 32 | lo;
}

static uint8_t xarea[4096] __attribute__((aligned(64)));

static void op_xsave(void *p)
{
	uint64_t mask = (uint64_t)p;
	__asm__ volatile("xsave64 %0" : "+m"(xarea) : "a"((uint32_t)mask), "d"((uint32_t)(mask >> 32)));
}

static void op_xrstor(void *p)
{
	uint64_t mask = (uint64_t)p;
	__asm__ volatile("xrstor64 %0" ::"m"(xarea), "a"((uint32_t)mask), "d"((uint32_t)(mask >> 32)) : "memory");
}

static void op_vxorps(void *p) { __asm__ volatile("vxorps %ymm0, %ymm0, %ymm0"); }

static bool has_xsave(void) { return cpuid(1, 0).ecx & (1u << 26); }
static bool cpuid_osxsave(void) { return cpuid(1, 0).ecx & (1u << 27); }
static uint64_t xcr0_supported(void)
{
	struct cpuid_regs r = cpuid(0xd, 0);
	return (uint64_t)r.edx << 32 | r.eax;
}

static void xsetbv0(uint64_t v)
{
	struct xcr_op o = { 0, v };
	op_xsetbv(&o);
}

static uint64_t saved_cr4;
static uint64_t saved_xcr0;

/* CR4.OSXSAVE on; remembers CR4 and XCR0 for restore(). */
static void enable_osxsave(void)
{
	saved_cr4 = read_cr4();
	write_cr4(saved_cr4 | CR4_OSXSAVE);
	saved_xcr0 = xgetbv(0);
}

static void restore(void)
{
	if (read_cr4() & CR4_OSXSAVE)
		xsetbv0(saved_xcr0);
	write_cr4(saved_cr4);
}

/* The largest legal XCR0: x87|SSE, plus AVX, plus AVX-512 and MPX when all
 * of their components are supported. */
static uint64_t xcr0_max(void)
{
	uint64_t s = xcr0_supported(), v = XSAVE_X87 | XSAVE_SSE;
	if (s & XSAVE_AVX) {
		v |= XSAVE_AVX;
		if ((s & XSAVE_AVX512) == XSAVE_AVX512)
			v |= XSAVE_AVX512;
	}
	if ((s & (XSAVE_BNDREGS | XSAVE_BNDCSR)) == (XSAVE_BNDREGS | XSAVE_BNDCSR))
		v |= XSAVE_BNDREGS | XSAVE_BNDCSR;
	if (s & XSAVE_PKRU)
		v |= XSAVE_PKRU;
	return v;
}

#define SKIP_WITHOUT_XSAVE()                                            \
	do {                                                            \
		if (!has_xsave()) {                                     \
			say("no XSAVE (CPUID.1:ECX[26] clear): skipped"); \
			return;                                         \
		}                                                       \
	} while (0)

/* --- tests ------------------------------------------------------------------ */

TEST(xsetbv, cpuid_leaf_d)
{
	struct cpuid_regs r1 = cpuid(1, 0);
	say("CPUID.1:ECX XSAVE %u OSXSAVE %u AVX %u F16C %u", (r1.ecx >> 26) & 1, (r1.ecx >> 27) & 1,
	    (r1.ecx >> 28) & 1, (r1.ecx >> 29) & 1);
	SKIP_WITHOUT_XSAVE();
	CHECK(!(r1.ecx & (1u << 27)) == !(read_cr4() & CR4_OSXSAVE), "CPUID OSXSAVE does not follow CR4");
	struct cpuid_regs r = cpuid(0xd, 0);
	say("0xd.0: eax %08x ebx %08x ecx %08x edx %08x", r.eax, r.ebx, r.ecx, r.edx);
	CHECK((r.eax & 3) == 3, "x87 and SSE state not supported: %08x", r.eax);
	CHECK(r.ebx >= 576 && r.ecx >= r.ebx, "sizes ebx %u ecx %u", r.ebx, r.ecx);
	struct cpuid_regs s = cpuid(0xd, 1);
	say("0xd.1: eax %08x ebx %08x ecx %08x edx %08x", s.eax, s.ebx, s.ecx, s.edx);
	uint64_t sup = (uint64_t)r.edx << 32 | r.eax;
	uint64_t xss = (uint64_t)s.edx << 32 | s.ecx;
	for (unsigned i = 2; i < 63; i++) {
		if (!((sup | xss) >> i & 1))
			continue;
		struct cpuid_regs c = cpuid(0xd, i);
		say("0xd.%u: size %u offset %u ecx %08x", i, c.eax, c.ebx, c.ecx);
		/* Bochs 2.7 (tigerlake) advertises PKRU in XCR0 but reports
		 * subleaf 9 as all zeros; the SDM gives it size 8. */
		CHECK(c.eax != 0 || i == 9, "component %u supported with size 0", i);
		if (sup >> i & 1 && c.eax)
			CHECK(c.ebx + c.eax <= r.ecx, "component %u [%u, +%u) beyond the maximum size %u", i, c.ebx,
			      c.eax, r.ecx);
	}
	/* A subleaf for a component nobody supports returns zeros. */
	struct cpuid_regs z = cpuid(0xd, 62);
	say("0xd.62: %08x %08x %08x %08x", z.eax, z.ebx, z.ecx, z.edx);
}

/* Without CR4.OSXSAVE, XSETBV, XGETBV, XSAVE and VEX instructions are #UD. */
TEST(xsetbv, no_osxsave)
{
	SKIP_WITHOUT_XSAVE();
	uint64_t cr4 = read_cr4();
	write_cr4(cr4 & ~CR4_OSXSAVE);
	struct fault f;
	struct xcr_op set = { 0, 3 }, get = { 0, 0 };
	bool a = catch_fault(op_xsetbv, &set, &f);
	say("CR4.OSXSAVE=0: xsetbv(0, 3): vector %u", a ? f.vector : 255);
	CHECK(a && f.vector == EXC_UD, "xsetbv without OSXSAVE");
	a = catch_fault(op_xgetbv, &get, &f);
	say("CR4.OSXSAVE=0: xgetbv(0): vector %u", a ? f.vector : 255);
	CHECK(a && f.vector == EXC_UD, "xgetbv without OSXSAVE");
	a = catch_fault(op_xsave, (void *)3, &f);
	say("CR4.OSXSAVE=0: xsave: vector %u", a ? f.vector : 255);
	CHECK(a && f.vector == EXC_UD, "xsave without OSXSAVE");
	if (cpuid(1, 0).ecx & (1u << 28)) {
		a = catch_fault(op_vxorps, 0, &f);
		say("CR4.OSXSAVE=0: vxorps ymm: vector %u", a ? f.vector : 255);
		CHECK(a && f.vector == EXC_UD, "AVX without OSXSAVE");
	}
	say("CPUID.1:ECX.OSXSAVE %u", cpuid_osxsave());
	CHECK(!cpuid_osxsave(), "CPUID.1:ECX.OSXSAVE set with CR4.OSXSAVE clear");
	write_cr4(cr4);
}

TEST(xsetbv, legal)
{
	SKIP_WITHOUT_XSAVE();
	enable_osxsave();
	say("CR4.OSXSAVE=1: CPUID.1:ECX.OSXSAVE %u, XCR0 %llx", cpuid_osxsave(), (unsigned long long)saved_xcr0);
	CHECK(cpuid_osxsave(), "CPUID.1:ECX.OSXSAVE clear with CR4.OSXSAVE set");
	CHECK(saved_xcr0 == XSAVE_X87, "XCR0 %llx is not its reset value 1", (unsigned long long)saved_xcr0);
	uint64_t sup = xcr0_supported();
	uint64_t vals[4];
	unsigned n = 0;
	vals[n++] = XSAVE_X87 | XSAVE_SSE;
	if (sup & XSAVE_AVX)
		vals[n++] = XSAVE_X87 | XSAVE_SSE | XSAVE_AVX;
	vals[n++] = xcr0_max();
	vals[n++] = XSAVE_X87;
	for (unsigned i = 0; i < n; i++) {
		struct fault f;
		struct xcr_op o = { 0, vals[i] };
		bool hit = catch_fault(op_xsetbv, &o, &f);
		uint64_t got = xgetbv(0);
		struct cpuid_regs d = cpuid(0xd, 0);
		say("xsetbv(0, %llx): %s, xgetbv %llx, CPUID.0xd.0 ebx %u", (unsigned long long)vals[i],
		    hit ? "fault" : "ok", (unsigned long long)got, d.ebx);
		CHECK(!hit && got == vals[i], "legal XCR0 value %llx (fault %u)", (unsigned long long)vals[i],
		      f.vector);
	}
	/* XGETBV(1) (XINUSE) exists when CPUID.(0xd,1):EAX[2]. */
	struct xcr_op g1 = { 1, 0 };
	struct fault f;
	bool hit = catch_fault(op_xgetbv, &g1, &f);
	bool has_xinuse = cpuid(0xd, 1).eax & 4;
	say("xgetbv(1): %s", hit ? "fault" : "ok");
	env("xgetbv(1) = %llx", (unsigned long long)g1.val);
	CHECK(hit == !has_xinuse, "xgetbv(1) %s with XGETBV_ECX1 %u", hit ? "faults" : "works", has_xinuse);
	restore();
}

TEST(xsetbv, illegal)
{
	SKIP_WITHOUT_XSAVE();
	enable_osxsave();
	uint64_t sup = xcr0_supported();
	struct {
		uint32_t idx;
		uint64_t val;
		const char *why;
	} cases[16];
	unsigned n = 0;
#define ADD(i, v, w) (cases[n].idx = (i), cases[n].val = (v), cases[n].why = (w), n++)
	ADD(0, 0, "bit 0 clear");
	ADD(0, XSAVE_SSE, "x87 clear");
	ADD(0, XSAVE_X87 | 1ull << 63, "reserved bit 63");
	ADD(0, XSAVE_X87 | XSAVE_SSE | 1ull << 10, "bit 10 (unsupported)");
	for (unsigned b = 2; b < 63; b++) {
		if (!(sup >> b & 1)) {
			ADD(0, XSAVE_X87 | XSAVE_SSE | 1ull << b, "lowest unsupported bit");
			break;
		}
	}
	if (sup & XSAVE_AVX)
		ADD(0, XSAVE_X87 | XSAVE_AVX, "AVX without SSE");
	if ((sup & XSAVE_AVX512) == XSAVE_AVX512) {
		ADD(0, XSAVE_X87 | XSAVE_SSE | XSAVE_AVX | XSAVE_OPMASK, "opmask without ZMM");
		ADD(0, XSAVE_X87 | XSAVE_SSE | XSAVE_AVX512, "AVX-512 without AVX");
	}
	if ((sup & (XSAVE_BNDREGS | XSAVE_BNDCSR)) == (XSAVE_BNDREGS | XSAVE_BNDCSR))
		ADD(0, XSAVE_X87 | XSAVE_BNDREGS, "BNDREGS without BNDCSR");
	ADD(1, XSAVE_X87 | XSAVE_SSE, "ECX=1");
	ADD(2, XSAVE_X87, "ECX=2");
	ADD(0xffffffff, XSAVE_X87, "ECX=ffffffff");
#undef ADD
	/* Start from a legal value other than the reset value. */
	xsetbv0(XSAVE_X87 | XSAVE_SSE);
	for (unsigned i = 0; i < n; i++) {
		struct fault f;
		struct xcr_op o = { cases[i].idx, cases[i].val };
		bool hit = catch_fault(op_xsetbv, &o, &f);
		uint64_t now = xgetbv(0);
		say("xsetbv(%x, %llx) [%s]: vector %u error %llx, XCR0 stays %llx", cases[i].idx,
		    (unsigned long long)cases[i].val, cases[i].why, hit ? f.vector : 255,
		    (unsigned long long)f.error_code, (unsigned long long)now);
		CHECK(hit && f.vector == EXC_GP && f.error_code == 0, "%s: no #GP(0)", cases[i].why);
		CHECK(now == (XSAVE_X87 | XSAVE_SSE), "%s: XCR0 changed to %llx", cases[i].why,
		      (unsigned long long)now);
	}
	struct xcr_op g = { 2, 0 };
	struct fault f;
	bool hit = catch_fault(op_xgetbv, &g, &f);
	say("xgetbv(2): vector %u error %llx", hit ? f.vector : 255, (unsigned long long)f.error_code);
	CHECK(hit && f.vector == EXC_GP && f.error_code == 0, "xgetbv(2) no #GP(0)");
	restore();
}

static uint64_t user_xgetbv;
static void u_xgetbv(void *p) { user_xgetbv = xgetbv(0); }

TEST(xsetbv, cpl3)
{
	SKIP_WITHOUT_XSAVE();
	enable_osxsave();
	xsetbv0(XSAVE_X87 | XSAVE_SSE);
	struct fault f;
	struct xcr_op o = { 0, XSAVE_X87 };
	bool hit = run_user(op_xsetbv, &o, &f);
	say("CPL3 xsetbv(0, 1): vector %u error %llx, XCR0 %llx", hit ? f.vector : 255,
	    (unsigned long long)f.error_code, (unsigned long long)xgetbv(0));
	CHECK(hit && f.vector == EXC_GP && f.error_code == 0, "xsetbv at CPL 3");
	CHECK(xgetbv(0) == (XSAVE_X87 | XSAVE_SSE), "XCR0 changed by a CPL 3 xsetbv");
	/* XGETBV is not privileged. */
	user_xgetbv = 0;
	hit = run_user(u_xgetbv, 0, &f);
	say("CPL3 xgetbv(0): %s, %llx", hit ? "fault" : "ok", (unsigned long long)user_xgetbv);
	CHECK(!hit && user_xgetbv == (XSAVE_X87 | XSAVE_SSE), "xgetbv at CPL 3");
	/* Without OSXSAVE the #UD comes before the privilege check. */
	write_cr4(read_cr4() & ~CR4_OSXSAVE);
	hit = run_user(op_xsetbv, &o, &f);
	say("CPL3 xsetbv with CR4.OSXSAVE=0: vector %u", hit ? f.vector : 255);
	CHECK(hit && f.vector == EXC_UD, "xsetbv at CPL 3 without OSXSAVE");
	write_cr4(read_cr4() | CR4_OSXSAVE);
	restore();
}

/* YMM state under XCR0 = x87|SSE|AVX: it survives CPUID and XSETBV, XSAVE
 * stores it where CPUID.0xd.2 says, XRSTOR of an all-init header clears it,
 * and VEX instructions #UD once XCR0 drops AVX. */
TEST(xsetbv, avx_state)
{
	SKIP_WITHOUT_XSAVE();
	if (!(xcr0_supported() & XSAVE_AVX)) {
		say("no AVX state: skipped");
		return;
	}
	static uint8_t in[512], out[512];
	enable_osxsave();
	xsetbv0(XSAVE_X87 | XSAVE_SSE | XSAVE_AVX);
	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 3);
	memset(out, 0, sizeof(out));
	xsetbv_ymm_roundtrip(in, out);
	say("YMM0-15 after CPUID and XSETBV: %s", memcmp(in, out, sizeof(in)) ? "CHANGED" : "preserved");
	CHECK(!memcmp(in, out, sizeof(in)), "YMM registers changed across CPUID/XSETBV");

	memset(xarea, 0, sizeof(xarea));
	struct fault f;
	bool hit = catch_fault(op_xsave, (void *)7, &f);
	uint64_t bv = *(uint64_t *)(xarea + 512);
	uint32_t avx_off = cpuid(0xd, 2).ebx;
	bool lo_ok = true, hi_ok = true;
	for (unsigned r = 0; r < 16; r++) {
		lo_ok &= !memcmp(xarea + 160 + 16 * r, in + 32 * r, 16);
		hi_ok &= !memcmp(xarea + avx_off + 16 * r, in + 32 * r + 16, 16);
	}
	say("xsave(7): %s, XSTATE_BV[2:1] %llx, XMM in legacy area %s, upper YMM at %u %s", hit ? "fault" : "ok",
	    (unsigned long long)(bv >> 1 & 3), lo_ok ? "ok" : "WRONG", avx_off, hi_ok ? "ok" : "WRONG");
	env("XSTATE_BV %llx", (unsigned long long)bv);
	CHECK(!hit && (bv & 6) == 6 && lo_ok && hi_ok, "xsave image");

	/* XRSTOR with XSTATE_BV = 0: SSE and AVX to their initial (zero) state. */
	memset(xarea + 512, 0, 64);
	hit = catch_fault(op_xrstor, (void *)6, &f);
	memset(out, 0xcc, sizeof(out));
	xsetbv_ymm_store(out);
	bool zero = true;
	for (unsigned i = 0; i < sizeof(out); i++)
		zero &= out[i] == 0;
	say("xrstor(6) of an init header: %s, YMM0-15 %s", hit ? "fault" : "ok", zero ? "zero" : "NOT zero");
	CHECK(!hit && zero, "xrstor init");

	xsetbv0(XSAVE_X87 | XSAVE_SSE);
	hit = catch_fault(op_vxorps, 0, &f);
	say("XCR0=3: vxorps ymm: vector %u", hit ? f.vector : 255);
	CHECK(hit && f.vector == EXC_UD, "AVX with XCR0.AVX clear");
	xsetbv0(XSAVE_X87 | XSAVE_SSE | XSAVE_AVX);
	hit = catch_fault(op_vxorps, 0, &f);
	say("XCR0=7: vxorps ymm: %s", hit ? "fault" : "ok");
	CHECK(!hit, "AVX with XCR0=7 (vector %u)", f.vector);
	restore();
}
