/* hostile_io.c - string I/O of an L2 that its hypervisor (this kernel)
 * passes through, so that the Nestor below emulates it (issue 11, attacks
 * 3 and 11): an element crossing a page goes to the page the second half
 * maps to; in 64-bit mode ES and DS bases are ignored; L1's EPT refusing
 * the access is an EPT violation for L1; in 32-bit code segment limits and
 * types apply; SMAP, protection keys and the accessed/dirty flags apply as
 * to any data access.
 *
 * Level 0 runs an L2 with I/O exiting and emulates the string I/O L1 passes
 * through; at depth 0 the CPU does it itself.  The ports are deterministic:
 * PCI configuration (0xcf8/0xcfc: the host bridge's ID reads 0x12378086 on
 * Bochs' i440FX) and port 0x80. */
#include "guest/nestor.h"
#include "guest/test.h"
#include "guest/tests/hostile.h"
#include "lib/string.h"
#include "lib/x86.h"

#define PCI_ID_ADDR 0x80000000u /* bus 0, device 0, function 0, register 0 */

static void fill(uint8_t *p, uint8_t v) { memset(p, v, 4096); }

/* Bytes [off, off + n) of a page, as "aa bb cc". */
static const char *bytes(const uint8_t *p, unsigned n)
{
	static char buf[4][64];
	static int k;
	char *b = buf[k++ & 3], *o = b;
	for (unsigned i = 0; i < n && i < 16; i++) {
		static const char hex[] = "0123456789abcdef";
		*o++ = hex[p[i] >> 4];
		*o++ = hex[p[i] & 15];
		*o++ = i + 1 < n ? ' ' : 0;
	}
	if (!n)
		*o = 0;
	return b;
}

/* True when every byte of [p, p + n) is v. */
static bool all(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* --- 3. an element crossing a page ----------------------------------------- */

/* Guest-physical pages A, B (= A + 4 KiB) for the L2; L1's EPT maps B to
 * D, two pages further: what lands on B's machine page is misplaced. */
HX_TEST(io_cross_page)
{
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0], *B = hx_pages[1], *C = hx_pages[2], *D = hx_pages[3];
	*hx_ept_pte(pa(B)) = pa(D) | EPT_WB | EPT_R | EPT_W | EPT_X;
	hx_ept_flush();
	fill(A, 0xa1), fill(B, 0xb2), fill(C, 0xc3), fill(D, 0xd4);

	/* INSD of the host bridge's ID at A + 0xffe: two bytes on A, two on
	 * what B maps to (D). */
	vm.r.rax = PCI_ID_ADDR;
	vm.r.rdi = pa(A) + 0xffe;
	uint32_t rs = hx_run(hx_l2_outl_insd);
	say("INSD at A+ffe: %s; A ends %s, D (B for the L2) starts %s, B starts %s, C %s, RDI A+%llx", 
	    hx_exit_str(rs, hx_l2_outl_insd), bytes(A + 0xffc, 4), bytes(D, 4), bytes(B, 4),
	    all(C, 4096, 0xc3) ? "untouched" : "WRITTEN", (unsigned long long)(vm.r.rdi - pa(A)));
	CHECK(rs == EXIT_VMCALL && A[0xffe] == 0x86 && A[0xfff] == 0x80 && D[0] == 0x37 && D[1] == 0x12,
	      "the ID goes to A+ffe and D+0");
	CHECK(all(B, 4096, 0xb2) && all(C, 4096, 0xc3) && all(A, 0xffe, 0xa1) && all(D + 2, 4094, 0xd4),
	      "nothing else is written");

	/* INSW at A + 0xfff: one byte on each side. */
	fill(A, 0xa1), fill(B, 0xb2), fill(D, 0xd4);
	vm.r.rdx = 0xcfc;
	vm.r.rdi = pa(A) + 0xfff;
	rs = hx_run(hx_l2_insw);
	say("INSW at A+fff: %s; A ends %s, D starts %s, B starts %s", hx_exit_str(rs, hx_l2_insw), bytes(A + 0xffe, 2),
	    bytes(D, 2), bytes(B, 2));
	CHECK(rs == EXIT_VMCALL && A[0xfff] == 0x86 && D[0] == 0x80 && B[0] == 0xb2 && all(D + 1, 4095, 0xd4),
	      "INSW split between A and D");

	/* OUTSD from A + 0xffe to 0xcf8, read back: the dword is A's last two
	 * bytes and D's first two (B's would give another address). */
	fill(A, 0xa1), fill(B, 0xb2), fill(D, 0xd4);
	A[0xffe] = 0x08, A[0xfff] = 0x00, D[0] = 0x00, D[1] = 0x80; /* 0x80000008 */
	B[0] = 0x44, B[1] = 0x81;                                   /* 0x81440008 */
	vm.r.rsi = pa(A) + 0xffe;
	rs = hx_run(hx_l2_outsd_inl);
	say("OUTSD from A+ffe to 0xcf8: %s; 0xcf8 reads %08llx, RSI A+%llx", hx_exit_str(rs, hx_l2_outsd_inl),
	    (unsigned long long)(uint32_t)vm.r.rax, (unsigned long long)(vm.r.rsi - pa(A)));
	CHECK(rs == EXIT_VMCALL && (uint32_t)vm.r.rax == 0x80000008u, "OUTSD takes D's bytes");
	outl(0xcf8, 0);
	hx_l2_end();
}

/* The same across into memory that is not RAM: at depth >= 1 a Nestor's
 * own memory follows the last page of the guest's RAM (on 0613119 the
 * second half of the element was written there, and read back by OUTSD). */
HX_TEST(io_cross_into_hidden)
{
	uint64_t ram = hx_ram_before_hole(), hole = ram ? ram + 4096 : hx_nonram_page();
	if (!ram)
		ram = pa(hx_pages[4]); /* depth 0: any page of ours, then a page of nothing */
	env("RAM page %llx, then %llx", (unsigned long long)ram, (unsigned long long)hole);
	if (!hx_l2_begin())
		return;
	/* The L2's window: W0 is the RAM page, W1 the page that is not RAM. */
	uint8_t *w0 = hx_map4k(0, ram, HX_PTE_P | HX_PTE_W);
	uint8_t *w1 = hx_map4k(1, hole, HX_PTE_P | HX_PTE_W);
	uint8_t saved[4];
	memcpy(saved, w0 + 0xffc, 4);
	w0[0xffc] = 0x11, w0[0xffd] = 0x22, w0[0xffe] = 0x33, w0[0xfff] = 0x44;
	vm.r.rax = PCI_ID_ADDR;
	vm.r.rdi = (uint64_t)w0 + 0xffe;
	uint32_t rs = hx_run(hx_l2_outl_insd);
	say("INSD at W0+ffe: %s; W0 ends %s, W1 starts %s", hx_exit_str(rs, hx_l2_outl_insd), bytes(w0 + 0xffc, 4),
	    bytes(w1, 4));
	CHECK(rs == EXIT_VMCALL && w0[0xffe] == 0x86 && w0[0xfff] == 0x80 && all(w1, 4096, 0xff),
	      "half the ID on W0, the rest dropped");
	/* OUTSD of the same element: W0's two bytes, then all ones. */
	vm.r.rsi = (uint64_t)w0 + 0xffe;
	rs = hx_run(hx_l2_outsd_inl);
	say("OUTSD from W0+ffe: %s; 0xcf8 reads %08llx", hx_exit_str(rs, hx_l2_outsd_inl),
	    (unsigned long long)(uint32_t)vm.r.rax);
	CHECK(rs == EXIT_VMCALL && (uint32_t)vm.r.rax == 0xffff8086u, "OUTSD reads ones beyond W0");
	outl(0xcf8, 0);
	memcpy(w0 + 0xffc, saved, 4);
	hx_l2_end();
}

/* --- 11. 64-bit mode ignores the ES and DS bases --------------------------- */
HX_TEST(io_segment_base_64)
{
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0], *B = hx_pages[1];
	fill(A, 0xa1), fill(B, 0xb2);
	vmw(GUEST_ES_BASE, 0x1000);
	vmw(GUEST_DS_BASE, 0x1000);
	vm.r.rax = PCI_ID_ADDR;
	vm.r.rdi = pa(A) + 0x100;
	uint32_t rs = hx_run(hx_l2_outl_insd);
	say("ES base 0x1000, INSD at A+100: %s; A+100 %s, B+100 %s", hx_exit_str(rs, hx_l2_outl_insd),
	    bytes(A + 0x100, 4), bytes(B + 0x100, 4));
	CHECK(rs == EXIT_VMCALL && A[0x100] == 0x86 && A[0x103] == 0x12 && all(B, 4096, 0xb2),
	      "the base is ignored in 64-bit mode");
	A[0x200] = 0x0c, A[0x201] = 0, A[0x202] = 0, A[0x203] = 0x80;
	B[0x200] = 0x10, B[0x201] = 0, B[0x202] = 0, B[0x203] = 0x80;
	vm.r.rsi = pa(A) + 0x200;
	rs = hx_run(hx_l2_outsd_inl);
	say("DS base 0x1000, OUTSD from A+200: %s; 0xcf8 reads %08llx", hx_exit_str(rs, hx_l2_outsd_inl),
	    (unsigned long long)(uint32_t)vm.r.rax);
	CHECK(rs == EXIT_VMCALL && (uint32_t)vm.r.rax == 0x8000000cu, "OUTSD reads A+200");
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- 11. L1's EPT refusing the string I/O's memory access ------------------ */
HX_TEST(io_ept_refusal)
{
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0], *B = hx_pages[1];
	fill(A, 0xa1), fill(B, 0xb2);
	/* A read-only, B not present, for the L2. */
	*hx_ept_pte(pa(A)) = pa(A) | EPT_WB | EPT_R | EPT_X;
	*hx_ept_pte(pa(B)) = 0;
	hx_ept_flush();
	vm.r.rdx = 0x80;
	vm.r.rdi = pa(A) + 0x10;
	vm.r.rcx = 4;
	uint32_t rs = hx_run(hx_l2_rep_insb);
	say("REP INSB into a page L1's EPT makes read-only: %s, qualification %llx, page+%llx, RCX %llu",
	    hx_exit_str(rs, hx_l2_rep_insb), (unsigned long long)vm.x.qual, (unsigned long long)(vm.x.gpa - pa(A)),
	    (unsigned long long)vm.r.rcx);
	CHECK(rs == EXIT_EPT_VIOLATION && vm.x.gpa == pa(A) + 0x10 && (vm.x.qual & 0x3f) == 0x2a && vm.r.rcx == 4,
	      "EPT violation (write, R and X granted) expected");
	CHECK(all(A, 4096, 0xa1), "nothing written");
	vm.r.rsi = pa(B) + 0x20;
	vm.r.rcx = 4;
	rs = hx_run(hx_l2_rep_outsb);
	say("REP OUTSB from a page L1's EPT does not map: %s, qualification %llx, page+%llx, RCX %llu",
	    hx_exit_str(rs, hx_l2_rep_outsb), (unsigned long long)vm.x.qual, (unsigned long long)(vm.x.gpa - pa(B)),
	    (unsigned long long)vm.r.rcx);
	CHECK(rs == EXIT_EPT_VIOLATION && vm.x.gpa == pa(B) + 0x20 && (vm.x.qual & 0x3f) == 0x01 && vm.r.rcx == 4,
	      "EPT violation (read, nothing granted) expected");
	hx_l2_end();
}

/* --- 11. 32-bit code: segment limits and types ----------------------------- */

/* Runs a 32-bit snippet in IA-32e compatibility mode with ES (or DS, SS)
 * described by base/limit/access rights. */
static uint32_t run_c32(const void *code, uint32_t seg_field_off, uint64_t base, uint32_t limit, uint32_t ar,
			uint64_t rflags)
{
	vmw(GUEST_CS_SEL, G_KCODE32);
	vmw(GUEST_CS_AR, 0xc09b);
	vmw(GUEST_ES_SEL + seg_field_off, G_KDATA);
	vmw(GUEST_ES_BASE + seg_field_off, base);
	vmw(GUEST_ES_LIMIT + seg_field_off, limit);
	vmw(GUEST_ES_AR + seg_field_off, ar);
	vm_at(code, rflags);
	uint32_t rs = vm_go();
	/* Back to the flat 64-bit state of vm_setup. */
	vmw(GUEST_CS_SEL, G_KCODE64);
	vmw(GUEST_CS_AR, 0xa09b);
	vmw(GUEST_ES_SEL + seg_field_off, G_KDATA);
	vmw(GUEST_ES_BASE + seg_field_off, 0);
	vmw(GUEST_ES_LIMIT + seg_field_off, 0xffffffff);
	vmw(GUEST_ES_AR + seg_field_off, 0xc093);
	return rs;
}

/* The exception an exception exit reports, "-" for other exits. */
static const char *exc_str(uint32_t rs)
{
	static char buf[24];
	if (rs != EXIT_EXC_NMI)
		return "-";
	struct fault x = { true, (uint8_t)vm.x.intr_info, vm.x.intr_err, 0, 0 };
	return fault_str(buf, sizeof(buf), true, &x);
}

HX_TEST(io_segment_limits_32)
{
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0], *B = hx_pages[1];
	fill(A, 0xa1), fill(B, 0xb2);
	const uint32_t es = 0, ds = 6, ss = 2; /* field offsets from the ES fields */
	(void)ss;
	/* ES covers A only (limit 0xfff, byte granular): 0x800 elements fit,
	 * the next one faults #GP(0) with EDI at the limit. */
	vm.r.rdx = 0xcfc;
	outl(0xcf8, PCI_ID_ADDR);
	vm.r.rdi = 0x800;
	vm.r.rcx = 0x1000;
	uint32_t rs = run_c32(hx_l2_c32_rep_insb, es, pa(A), 0xfff, 0x4093, RFLAGS_FIXED);
	say("REP INSB through ES limited to A: %s %s, EDI %llx, ECX %llx, B %s", hx_exit_str(rs, hx_l2_c32_rep_insb),
	    exc_str(rs), (unsigned long long)vm.r.rdi, (unsigned long long)vm.r.rcx,
	    all(B, 4096, 0xb2) ? "untouched" : "WRITTEN");
	CHECK(rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == EXC_GP && vm.x.intr_err == 0 && vm.r.rdi == 0x1000 &&
		      vm.r.rcx == 0x800 && all(B, 4096, 0xb2),
	      "#GP(0) at the ES limit expected");
	/* Expand-down ES: offsets above the limit are valid; counting down
	 * from 0x1010, the element at 0xfff faults. */
	fill(A, 0xa1);
	vm.r.rdi = 0x1010;
	vm.r.rcx = 0x40;
	rs = run_c32(hx_l2_c32_rep_insb, es, pa(A) - 0x1000, 0xfff, 0x4097, RFLAGS_FIXED | RFLAGS_DF);
	say("REP INSB downwards through an expand-down ES: %s %s, EDI %llx, ECX %llx",
	    hx_exit_str(rs, hx_l2_c32_rep_insb), exc_str(rs), (unsigned long long)vm.r.rdi,
	    (unsigned long long)vm.r.rcx);
	CHECK(rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == EXC_GP && vm.r.rdi == 0xfff && vm.r.rcx == 0x40 - 0x11,
	      "#GP(0) below the expand-down limit expected");
	/* A read-only ES cannot be INS's destination. */
	vm.r.rdi = 0x10;
	vm.r.rcx = 4;
	rs = run_c32(hx_l2_c32_rep_insb, es, pa(A), 0xfff, 0x4091, RFLAGS_FIXED);
	say("REP INSB through a read-only ES: %s %s, ECX %llx", hx_exit_str(rs, hx_l2_c32_rep_insb), exc_str(rs),
	    (unsigned long long)vm.r.rcx);
	CHECK(rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == EXC_GP && vm.r.rcx == 4, "#GP(0) expected");
	/* OUTSB through a DS limited to 0xfff: 8 bytes fit from 0xff8. */
	vm.r.rdx = 0x80;
	vm.r.rsi = 0xff8;
	vm.r.rcx = 0x10;
	rs = run_c32(hx_l2_c32_rep_outsb, ds, pa(A), 0xfff, 0x4093, RFLAGS_FIXED);
	say("REP OUTSB through DS limited to A: %s %s, ESI %llx, ECX %llx", hx_exit_str(rs, hx_l2_c32_rep_outsb),
	    exc_str(rs), (unsigned long long)vm.r.rsi, (unsigned long long)vm.r.rcx);
	CHECK(rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == EXC_GP && vm.r.rsi == 0x1000 && vm.r.rcx == 8,
	      "#GP(0) at the DS limit expected");
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- 11. SMAP, protection keys, accessed and dirty flags ------------------- */

/* The L2 uses window slot `slot` mapped to page p with flags. */
static uint8_t *l2_page(unsigned slot, void *p, uint64_t flags) { return hx_map4k(slot, pa(p), flags); }

HX_TEST(io_smap)
{
	bool smap = cpuid(7, 0).ebx & (1u << 20);
	env("SMAP %s", smap ? "present" : "absent");
	if (!smap || !hx_l2_begin()) {
		say("SMAP: not tested (the CPU model has none)");
		return;
	}
	CHECK((vcaps.cr4_fixed1 & CR4_SMAP) != 0, "CR4.SMAP not allowed in VMX operation");
	uint8_t *A = hx_pages[0];
	fill(A, 0xa1);
	uint8_t *u = l2_page(0, A, HX_PTE_P | HX_PTE_W | HX_PTE_U); /* a user page */
	vmw(GUEST_CR4, vmr(GUEST_CR4) | CR4_SMAP);
	outl(0xcf8, PCI_ID_ADDR);
	vm.r.rdx = 0xcfc;
	vm.r.rdi = (uint64_t)u + 0x10;
	vm.r.rcx = 2;
	uint32_t rs = hx_run(hx_l2_rep_insb);
	say("supervisor REP INSB into a user page, SMAP, AC=0: %s %s, CR2 %s, RCX %llu", hx_exit_str(rs, hx_l2_rep_insb),
	    exc_str(rs), vm.x.qual == (uint64_t)u + 0x10 ? "the element" : "OTHER", (unsigned long long)vm.r.rcx);
	CHECK(rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == EXC_PF && vm.x.intr_err == 3 &&
		      vm.x.qual == (uint64_t)u + 0x10 && vm.r.rcx == 2 && all(A, 4096, 0xa1),
	      "#PF(3) expected");
	vm.r.rsi = (uint64_t)u + 0x20;
	vm.r.rcx = 2;
	vm.r.rdx = 0x80;
	rs = hx_run(hx_l2_rep_outsb);
	say("supervisor REP OUTSB from a user page, SMAP, AC=0: %s %s", hx_exit_str(rs, hx_l2_rep_outsb), exc_str(rs));
	CHECK(rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == EXC_PF && vm.x.intr_err == 1, "#PF(1) expected");
	/* With AC=1 explicit supervisor accesses to user pages are allowed. */
	vm.r.rdi = (uint64_t)u + 0x10;
	vm.r.rcx = 2;
	vm.r.rdx = 0xcfc;
	vm_at(hx_l2_rep_insb, RFLAGS_FIXED | RFLAGS_AC);
	rs = vm_go();
	say("the same with AC=1: %s, A+10 %s", hx_exit_str(rs, hx_l2_rep_insb), bytes(A + 0x10, 2));
	CHECK(rs == EXIT_VMCALL && A[0x10] == 0x86 && A[0x11] == 0x86, "AC=1 allows it");
	outl(0xcf8, 0);
	hx_l2_end();
}

extern const char hx_l2_wrpkru_rep_insb[];

/* The L2 at CPL 3 (IOPL 3, so that it may do I/O), or back at CPL 0. */
static void l2_cpl(int cpl)
{
	vmw(GUEST_CS_SEL, cpl ? G_UCODE64 : G_KCODE64);
	vmw(GUEST_CS_AR, cpl ? 0xa0fb : 0xa09b);
	vmw(GUEST_SS_SEL, cpl ? G_UDATA : G_KDATA);
	vmw(GUEST_SS_AR, cpl ? 0xc0f3 : 0xc093);
}

/* Protection keys (SDM 4.6.2).  Bochs 2.7 applies PKRU's access-disable
 * bits only to user-mode accesses (the SDM: to supervisor-mode accesses
 * to user-mode pages too), so the cases here are those both agree on: a
 * CPL-3 access with access disabled, a supervisor write with write
 * disabled and CR0.WP = 1. */
HX_TEST(io_pkru)
{
	bool pku = cpuid(7, 0).ecx & (1u << 3);
	env("protection keys %s", pku ? "present" : "absent");
	if (!pku || !hx_l2_begin()) {
		say("protection keys: not tested (the CPU model has none)");
		return;
	}
	CHECK((vcaps.cr4_fixed1 & CR4_PKE) != 0, "CR4.PKE not allowed in VMX operation");
	uint8_t *A = hx_pages[0];
	fill(A, 0xa1);
	/* A user page with protection key 1. */
	uint8_t *u = hx_map4k(0, pa(A), HX_PTE_P | HX_PTE_W | HX_PTE_U | (1ull << 59));
	vmw(GUEST_CR4, vmr(GUEST_CR4) | CR4_PKE);
	vmw(GUEST_CR0, vmr(GUEST_CR0) | CR0_WP);
	vmw(CR0_SHADOW, vmr(CR0_SHADOW) | CR0_WP);
	/* CPL 3, PKRU access-disable for key 1. */
	l2_cpl(3);
	vm.r.rax = 1u << 2;
	vm.r.r9 = 0x80;
	vm.r.rdi = (uint64_t)u + 0x10;
	vm.r.r8 = 2;
	vm_at(hx_l2_wrpkru_rep_insb, RFLAGS_FIXED | RFLAGS_IOPL);
	uint32_t rs = vm_go();
	say("CPL 3 REP INSB into a page whose key PKRU denies: %s %s, RCX %llu", hx_exit_str(rs, hx_l2_wrpkru_rep_insb),
	    exc_str(rs), (unsigned long long)vm.r.rcx);
	CHECK(rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == EXC_PF && vm.x.intr_err == 0x27 && vm.r.rcx == 2 &&
		      all(A, 4096, 0xa1),
	      "#PF(PK, U, W, P) expected");
	l2_cpl(0);
	/* CPL 0 with CR0.WP: write-disable for key 1 stops the INS. */
	vm.r.rax = 2u << 2;
	vm.r.rdi = (uint64_t)u + 0x10;
	vm.r.r8 = 2;
	rs = hx_run(hx_l2_wrpkru_rep_insb);
	say("CPL 0 REP INSB, CR0.WP=1, the key write-disabled: %s %s, RCX %llu", hx_exit_str(rs, hx_l2_wrpkru_rep_insb),
	    exc_str(rs), (unsigned long long)vm.r.rcx);
	CHECK(rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == EXC_PF && vm.x.intr_err == 0x23 && vm.r.rcx == 2 &&
		      all(A, 4096, 0xa1),
	      "#PF(PK, W, P) expected");
	hx_l2_end();
}

HX_TEST(io_accessed_dirty)
{
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0], *B = hx_pages[1];
	fill(A, 0xa1), fill(B, 0xb2);
	/* Fresh window entries: accessed and dirty clear. */
	uint8_t *wa = l2_page(2, A, HX_PTE_P | HX_PTE_W);
	uint8_t *wb = l2_page(3, B, HX_PTE_P | HX_PTE_W);
	vm.r.rdx = 0x80;
	vm.r.rdi = (uint64_t)wa + 0x10;
	vm.r.rcx = 2;
	uint32_t rs = hx_run(hx_l2_rep_insb);
	uint64_t pa_ = *hx_pte4k(2), pb = *hx_pte4k(3);
	say("REP INSB through a fresh PTE: %s, accessed %u dirty %u", hx_exit_str(rs, hx_l2_rep_insb),
	    (unsigned)!!(pa_ & HX_PTE_A), (unsigned)!!(pa_ & HX_PTE_D));
	CHECK(rs == EXIT_VMCALL && (pa_ & HX_PTE_A) && (pa_ & HX_PTE_D), "INS sets A and D");
	vm.r.rsi = (uint64_t)wb + 0x10;
	vm.r.rcx = 2;
	rs = hx_run(hx_l2_rep_outsb);
	pb = *hx_pte4k(3);
	say("REP OUTSB through a fresh PTE: %s, accessed %u dirty %u", hx_exit_str(rs, hx_l2_rep_outsb),
	    (unsigned)!!(pb & HX_PTE_A), (unsigned)!!(pb & HX_PTE_D));
	CHECK(rs == EXIT_VMCALL && (pb & HX_PTE_A) && !(pb & HX_PTE_D), "OUTS sets A only");
	hx_l2_end();
}

/* --- 6. bounded work: REP INS and the preemption timer --------------------- */

static bool timer_setup(uint32_t value)
{
	if (!((vcaps.pin >> 32) & PIN_PREEMPT)) {
		say("no VMX-preemption timer");
		return false;
	}
	vm_ctl(PIN_CTLS, PIN_PREEMPT, 0);
	vmw(GUEST_PREEMPT_TIMER, value);
	return true;
}

HX_TEST(preempt_rep_ins)
{
	if (!hx_l2_begin())
		return;
	if (timer_setup(20)) {
		/* 64 Ki bytes of port 0x80 into memory that is not RAM. */
		const uint64_t count = 0x10000;
		vm.r.rdx = 0x80;
		vm.r.rdi = hx_nonram_page() & ~0xfffffull;
		vm.r.rcx = count;
		uint32_t rs = hx_run(hx_l2_rep_insb);
		say("REP INSB of %llu bytes, preemption timer 20: %s, RCX %s", (unsigned long long)count,
		    hx_exit_str(rs, hx_l2_rep_insb), vm.r.rcx > 0 && vm.r.rcx < count ? "partly consumed" : "NOT PARTLY");
		env("RCX left %llu", (unsigned long long)vm.r.rcx);
		CHECK(rs == EXIT_PREEMPT && rip_off(hx_l2_rep_insb) == 0 && vm.r.rcx > 0 && vm.r.rcx < count,
		      "the timer interrupts the REP INSB");
	}
	hx_l2_end();
}

/* New: REP STOS into memory that does not exist for the L2 (above what the
 * levels below map): on 769c975 level 0 emulated every element in one exit
 * (vmx/exit_ept.c string_store), whatever the count and L1's timer. */
HX_TEST(preempt_rep_stos_nonram)
{
	if (!hx_l2_begin())
		return;
	if (timer_setup(20)) {
		const uint64_t count = 0x10000;
		unsigned mpa = hx_maxphyaddr();
		uint64_t hpa = mpa > 36 ? 32ull << 30 : 12ull << 30; /* no RAM there */
		hx_ept_map_high(0, hpa);
		hx_ept_flush();
		uint8_t *w = hx_map2m(0, HX_EPT_HIGH);
		vm.r.rax = 0x5a;
		vm.r.rdi = (uint64_t)w;
		vm.r.rcx = count;
		uint32_t rs = hx_run(hx_l2_rep_stosb);
		say("REP STOSB of %llu bytes into non-existent memory, preemption timer 20: %s, RCX %s",
		    (unsigned long long)count, hx_exit_str(rs, hx_l2_rep_stosb),
		    vm.r.rcx > 0 && vm.r.rcx < count ? "partly consumed" : "NOT PARTLY");
		env("RCX left %llu", (unsigned long long)vm.r.rcx);
		CHECK(rs == EXIT_PREEMPT && rip_off(hx_l2_rep_stosb) == 0 && vm.r.rcx > 0 && vm.r.rcx < count,
		      "the timer interrupts the REP STOSB");
	}
	hx_l2_end();
}
