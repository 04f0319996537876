/* hostile_walk.c - the page walk a Nestor does in software for an L2's
 * string instructions (vmx/guest_mem.c gla_xlate), on the paths
 * hostile_io.c leaves alone: large pages and their reserved bits in
 * 4-level paging, an L2 in 32-bit paging (4-byte entries, PSE and PSE-36
 * 4 MiB pages, CR0.WP, CPL 3) and in PAE paging (PDPTEs from the VMCS,
 * bits 62:52 and XD), L1's EPT refusing the access after the walk set
 * the entries' accessed/dirty flags, and string stores into memory that
 * is not RAM from 32-bit code and with 32- and 16-bit addresses, in both
 * directions and single-stepped (vmx/exit_ept.c string_store); the L2's
 * CR0/CR4 against their read shadows, an L2 in real mode and in
 * virtual-8086 mode, an element across into a page that faults, where its
 * #PF goes, OUTS with a segment override, address-size prefixes
 * (vmx/exit_io.c string_io); a PAE L2 of a hypervisor without EPT (its
 * PDPTEs, nested/enter.c).
 *
 * The L2's REP INSB reads the host bridge's ID through PCI configuration
 * (0xcfc after 0xcf8 = 0x80000000): 0x86 for every byte.  L1 passes the
 * I/O through, so below it a Nestor emulates it, walking the L2's page
 * tables; at depth 0 Bochs does it itself.  Page-fault error codes are
 * those of SDM Vol. 3A 4.7: P 1, W/R 2, U/S 4, RSVD 8. */
#include "guest/nestor.h"
#include "guest/test.h"
#include "guest/tests/hostile.h"
#include "lib/format.h"
#include "lib/string.h"
#include "lib/x86.h"

#define PCI_ID_ADDR 0x80000000u
#define GUEST_PDPTE0 0x280a /* then PDPTE1..3, 2 apart */
#define PG_P 1ull
#define PG_W 2ull
#define PG_U 4ull
#define PG_A 0x20ull
#define PG_D 0x40ull
#define PG_PS 0x80ull
#define PG_AD (PG_A | PG_D)

extern const char hx_w32_rep_stosd[], hx_w32_a16_rep_stosd[];

static bool all(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* REP INSB of two bytes from 0xcfc to gla, by code (64- or 32-bit). */
static uint32_t ins2(const void *code, uint64_t gla, uint64_t rflags)
{
	vm.r.rdx = 0xcfc;
	vm.r.rdi = gla;
	vm.r.rcx = 2;
	vm_at(code, rflags);
	return vm_go();
}

/* REP OUTSB of two bytes from gla to port 0x80, by code (64- or 32-bit). */
static uint32_t outs2(const void *code, uint64_t gla, uint64_t rflags)
{
	vm.r.rdx = 0x80;
	vm.r.rsi = gla;
	vm.r.rcx = 2;
	vm_at(code, rflags);
	return vm_go();
}

/* The outcome of a run, for the transcript: done, the #PF, the EPT
 * violation (qualification bits 8:0; where, relative to `base`), or the
 * exit. */
static const char *outcome(uint32_t rs, const void *code, uint64_t gla, uint64_t base)
{
	static char buf[4][128];
	static int k;
	char *b = buf[k++ & 3];
	if (rs == EXIT_VMCALL)
		ksnprintf(b, 128, "done, RCX %llu", (unsigned long long)(uint32_t)vm.r.rcx);
	else if (rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == EXC_PF)
		ksnprintf(b, 128, "#PF(%x) at %s, RCX %llu", vm.x.intr_err,
			  vm.x.qual == gla ? "the element" : "ANOTHER ADDRESS", (unsigned long long)(uint32_t)vm.r.rcx);
	else if (rs == EXIT_EPT_VIOLATION)
		ksnprintf(b, 128, "EPT violation at +%llx, qualification %llx, linear address %s, RCX %llu",
			  (unsigned long long)(vm.x.gpa - base), (unsigned long long)(vm.x.qual & 0x1ff),
			  vm.x.gla == gla ? "the element" : "ANOTHER", (unsigned long long)(uint32_t)vm.r.rcx);
	else
		return hx_exit_str(rs, code);
	return b;
}

static bool is_pf(uint32_t rs, uint32_t err, uint64_t gla)
{
	return rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == EXC_PF && vm.x.intr_err == err && vm.x.qual == gla &&
	       (uint32_t)vm.r.rcx == 2;
}

static bool is_done(uint32_t rs) { return rs == EXIT_VMCALL && (uint32_t)vm.r.rcx == 0; }

/* Two bytes of the ID at p, nothing else of the page changed (was 0xa1). */
static bool got_id(const uint8_t *page, unsigned off)
{
	return page[off] == 0x86 && page[off + 1] == 0x86 && all(page, off, 0xa1) &&
	       all(page + off + 2, 4096 - off - 2, 0xa1);
}

static void set_wp(bool on)
{
	uint64_t cr0 = on ? vmr(GUEST_CR0) | CR0_WP : vmr(GUEST_CR0) & ~CR0_WP;
	vmw(GUEST_CR0, cr0);
	vmw(CR0_SHADOW, cr0);
}

/* --- 4-level paging: PS where it is reserved, 1 GiB and 2 MiB pages -------- */

/* The L2's own PML4: the kernel's, with slot 3 (linear 1.5 TiB) ours. */
static uint64_t w_pml4[512] __attribute__((aligned(4096)));
#define W3 (3ull << 39)

/* SDM 4.5.4 (table 4-14..4-20) and 4.7: PS is reserved in a PML4E, and in
 * a PDPTE when the CPU has no 1 GiB pages (CPUID 0x80000001 EDX[26]);
 * bits 29:13 of a 1 GiB page's PDPTE and 20:13 of a 2 MiB page's PDE are
 * reserved; a reserved bit set is #PF with RSVD and P.  SDM 4.8: the CPU
 * sets the accessed flag of every entry it uses and the dirty flag of the
 * leaf on a write; SDM 28.3.3.2 / table 28-7: when L1's EPT refuses that
 * update it is an EPT violation, a write (bit 1) to a paging-structure
 * entry (bit 8 clear) with the linear address valid (bit 7). */
HX_TEST(walk_large_pages)
{
	bool g1 = hx_have_1g_pages();
	env("1 GiB pages %s", g1 ? "present" : "absent");
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0];
	uint64_t *pdpt = (uint64_t *)hx_pages[4], *pd = (uint64_t *)hx_pages[5];
	CHECK(pa(A) < (1ull << 30), "the test pages lie in the first GiB");
	memcpy(w_pml4, (const void *)(read_cr3() & ~0xfffull), 4096);
	memset(pdpt, 0, 4096);
	memset(pd, 0, 4096);
	vmw(GUEST_CR3, pa(w_pml4));
	outl(0xcf8, PCI_ID_ADDR);
	const uint64_t big = W3 + pa(A) + 0x10, mid = W3 + (pa(A) & 0x1fffff) + 0x10;

	memset(A, 0xa1, 4096);
	w_pml4[3] = pa(pdpt) | PG_PS | PG_W | PG_P;
	uint32_t rs = ins2(hx_l2_rep_insb, big, RFLAGS_FIXED);
	say("REP INSB under a PML4E with PS: %s", outcome(rs, hx_l2_rep_insb, big, 0));
	CHECK(is_pf(rs, 0xb, big) && all(A, 4096, 0xa1), "#PF(RSVD, W, P) expected");

	/* A 1 GiB page at 0, accessed and dirty clear. */
	w_pml4[3] = pa(pdpt) | PG_W | PG_P;
	pdpt[0] = PG_PS | PG_W | PG_P;
	rs = ins2(hx_l2_rep_insb, big, RFLAGS_FIXED);
	say("REP INSB into a 1 GiB page: %s; PDPTE A %u D %u", outcome(rs, hx_l2_rep_insb, big, 0),
	    (unsigned)!!(pdpt[0] & PG_A), (unsigned)!!(pdpt[0] & PG_D));
	if (g1)
		CHECK(is_done(rs) && got_id(A, 0x10) && (pdpt[0] & PG_AD) == PG_AD && (w_pml4[3] & PG_A),
		      "the INS writes through the 1 GiB page, A and D set");
	else
		CHECK(is_pf(rs, 0xb, big) && all(A, 4096, 0xa1), "#PF(RSVD, W, P) expected without 1 GiB pages");
	memset(A, 0xa1, 4096);
	pdpt[0] = PG_PS | PG_W | PG_P | (1ull << 13);
	rs = ins2(hx_l2_rep_insb, big, RFLAGS_FIXED);
	say("REP INSB into a 1 GiB page with bit 13 set: %s", outcome(rs, hx_l2_rep_insb, big, 0));
	CHECK(is_pf(rs, 0xb, big) && all(A, 4096, 0xa1), "#PF(RSVD, W, P) expected");

	/* A 2 MiB page over the test pages. */
	pdpt[0] = pa(pd) | PG_W | PG_P;
	pd[0] = (pa(A) & ~0x1fffffull) | PG_PS | PG_W | PG_P;
	rs = ins2(hx_l2_rep_insb, mid, RFLAGS_FIXED);
	say("REP INSB into a 2 MiB page: %s; PDE A %u D %u", outcome(rs, hx_l2_rep_insb, mid, 0),
	    (unsigned)!!(pd[0] & PG_A), (unsigned)!!(pd[0] & PG_D));
	CHECK(is_done(rs) && got_id(A, 0x10) && (pd[0] & PG_AD) == PG_AD, "the INS writes, A and D set");
	static const unsigned bits2m[] = { 13, 20 };
	for (unsigned i = 0; i < 2; i++) {
		memset(A, 0xa1, 4096);
		pd[0] = (pa(A) & ~0x1fffffull) | PG_PS | PG_W | PG_P | (1ull << bits2m[i]);
		rs = ins2(hx_l2_rep_insb, mid, RFLAGS_FIXED);
		say("REP INSB into a 2 MiB page with bit %u set: %s", bits2m[i], outcome(rs, hx_l2_rep_insb, mid, 0));
		CHECK(is_pf(rs, 0xb, mid) && all(A, 4096, 0xa1), "#PF(RSVD, W, P) expected");
	}

	/* L1's EPT makes the page directory read-only: the CPU reads the PDE
	 * and, its accessed and dirty flags being set, writes nothing there.
	 * (With a flag clear the SDM (28.3.3.2, table 28-7) has the update
	 * be an EPT violation, qualification 0xaa - a write to a paging-
	 * structure entry, R and X granted, linear address valid - and so
	 * do the Nestors below; Bochs 2.7 writes the flag through the
	 * read-only mapping and the INS completes, so that case is not
	 * compared here.) */
	*hx_ept_pte(pa(pd)) = pa(pd) | EPT_WB | EPT_R | EPT_X;
	hx_ept_flush();
	memset(A, 0xa1, 4096);
	pd[0] = (pa(A) & ~0x1fffffull) | PG_PS | PG_W | PG_P | PG_AD;
	rs = ins2(hx_l2_rep_insb, mid, RFLAGS_FIXED);
	say("REP INSB into a 2 MiB page, A and D set, the PDE read-only in L1's EPT: %s",
	    outcome(rs, hx_l2_rep_insb, mid, pa(pd)));
	CHECK(is_done(rs) && got_id(A, 0x10), "no flag to write: the INS goes through");
	*hx_ept_pte(pa(pd)) = pa(pd) | EPT_WB | EPT_R | EPT_W | EPT_X;
	hx_ept_flush();
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- an L2 in legacy paging: 32-bit code, IA-32e mode off --------------------- */

/* The L2 in protected mode with paging: PAE or 32-bit paging (with PSE) at
 * CR3, flat 32-bit segments at CPL 0, CR0.WP set; no SMEP, SMAP or keys. */
static void l2_legacy(bool pae, uint64_t cr3)
{
	vm_ctl(ENTRY_CTLS, 0, ENTRY_IA32E);
	vmw(GUEST_EFER, vmr(GUEST_EFER) & ~(uint64_t)(EFER_LME | EFER_LMA));
	uint64_t cr4 = vmr(GUEST_CR4) & ~(CR4_PAE | CR4_PSE | CR4_PCIDE | CR4_LA57 | CR4_SMEP | CR4_SMAP | CR4_PKE |
					   CR4_PKS | CR4_CET);
	cr4 |= pae ? CR4_PAE : CR4_PSE;
	vmw(GUEST_CR4, cr4);
	vmw(CR4_SHADOW, cr4 & ~CR4_VMXE);
	vmw(GUEST_CR3, cr3);
	vmw(GUEST_CS_SEL, G_KCODE32);
	vmw(GUEST_CS_AR, 0xc09b);
	set_wp(true);
}

/* CPL 3 (selectors' RPL and DPL 3; with IOPL 3 it may do I/O) or 0. */
static void l2_cpl32(int cpl)
{
	vmw(GUEST_CS_SEL, G_KCODE32 | (unsigned)cpl);
	vmw(GUEST_CS_AR, cpl ? 0xc0fb : 0xc09b);
	vmw(GUEST_SS_SEL, G_KDATA | (unsigned)cpl);
	vmw(GUEST_SS_AR, cpl ? 0xc0f3 : 0xc093);
}

/* 32-bit paging: 0-3 GiB identity in 4 MiB pages (user, so that CPL 3 runs
 * there too), PDE 768 (linear 3 GiB, T) to a page table in hx_pages[4],
 * PDE 769 (T4) for 4 MiB pages of the tests. */
static uint32_t pd32[1024] __attribute__((aligned(4096)));
#define T32 0xc0000000u
#define T4 0xc0400000u

static uint32_t *legacy32_begin(void)
{
	uint32_t *pt = (uint32_t *)hx_pages[4];
	for (uint32_t i = 0; i < 1024; i++)
		pd32[i] = i < 768 ? (i << 22) | (uint32_t)(PG_PS | PG_AD | PG_U | PG_W | PG_P) : 0;
	memset(pt, 0, 4096);
	pd32[768] = (uint32_t)pa(pt) | (uint32_t)(PG_U | PG_W | PG_P);
	l2_legacy(false, pa(pd32));
	return pt;
}

/* SDM 4.3 (tables 4-4 to 4-6): 4-byte entries; with CR4.PSE a PDE with PS
 * maps 4 MiB, its bits 20:13 being physical-address bits 39:32 (PSE-36,
 * CPUID.1:EDX[17]) up to MAXPHYADDR, bit 21 and the bits beyond
 * MAXPHYADDR reserved.  SDM 4.6: a supervisor write to a read-only page
 * faults only with CR0.WP; a user access needs U/S in both levels and a
 * user write R/W in both, whatever CR0.WP. */
HX_TEST(walk_32bit)
{
	bool pse36 = cpuid(1, 0).edx & (1u << 17);
	unsigned mpa = hx_maxphyaddr();
	env("PSE-36 %s, MAXPHYADDR %u", pse36 ? "present" : "absent", mpa);
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0], *B = hx_pages[1], *C = hx_pages[2];
	CHECK(pa(A) < (3ull << 30), "the test pages lie below 3 GiB");
	uint32_t *pt = legacy32_begin();
	const void *ins = hx_l2_c32_rep_insb;
	outl(0xcf8, PCI_ID_ADDR);
	memset(A, 0xa1, 4096), memset(B, 0xa1, 4096), memset(C, 0xa1, 4096);

	pt[0] = (uint32_t)pa(A) | (uint32_t)(PG_W | PG_P);
	pt[1] = (uint32_t)pa(B) | (uint32_t)PG_P;
	pt[3] = (uint32_t)pa(C) | (uint32_t)(PG_U | PG_W | PG_P);
	uint32_t rs = ins2(ins, T32 + 0x10, RFLAGS_FIXED);
	say("32-bit paging, REP INSB through fresh entries: %s; PDE A %u D %u, PTE A %u D %u",
	    outcome(rs, ins, T32 + 0x10, 0), (unsigned)!!(pd32[768] & PG_A), (unsigned)!!(pd32[768] & PG_D),
	    (unsigned)!!(pt[0] & PG_A), (unsigned)!!(pt[0] & PG_D));
	CHECK(is_done(rs) && got_id(A, 0x10) && (pd32[768] & PG_AD) == PG_A && (pt[0] & PG_AD) == PG_AD,
	      "INS writes; A in the PDE, A and D in the PTE");
	rs = outs2(hx_l2_c32_rep_outsb, T32 + 0x1020, RFLAGS_FIXED);
	say("REP OUTSB from a fresh read-only PTE: %s; PTE A %u D %u", outcome(rs, hx_l2_c32_rep_outsb, 0, 0),
	    (unsigned)!!(pt[1] & PG_A), (unsigned)!!(pt[1] & PG_D));
	CHECK(is_done(rs) && (pt[1] & PG_AD) == PG_A, "OUTS sets A only");

	/* A supervisor write to a read-only page: CR0.WP decides. */
	rs = ins2(ins, T32 + 0x1010, RFLAGS_FIXED);
	say("REP INSB into a read-only page, CPL 0, CR0.WP=1: %s", outcome(rs, ins, T32 + 0x1010, 0));
	CHECK(is_pf(rs, 3, T32 + 0x1010) && all(B, 4096, 0xa1), "#PF(W, P) expected");
	set_wp(false);
	rs = ins2(ins, T32 + 0x1010, RFLAGS_FIXED);
	say("the same with CR0.WP=0: %s; PTE D %u", outcome(rs, ins, T32 + 0x1010, 0), (unsigned)!!(pt[1] & PG_D));
	CHECK(is_done(rs) && got_id(B, 0x10) && (pt[1] & PG_D), "the write goes through, D set");
	memset(B, 0xa1, 4096);
	rs = ins2(ins, T32 + 0x2010, RFLAGS_FIXED);
	say("REP INSB into a not-present PTE: %s", outcome(rs, ins, T32 + 0x2010, 0));
	CHECK(is_pf(rs, 2, T32 + 0x2010), "#PF(W) expected");

	/* CPL 3 (CR0.WP still 0: it does not matter to user accesses). */
	l2_cpl32(3);
	static const struct {
		const char *what;
		uint32_t off, err;
	} u[] = { { "a supervisor page", 0x10, 7 }, { "a read-only user page", 0x1010, 7 },
		  { "a not-present page", 0x2010, 6 }, { "a writable user page", 0x3010, 0 } };
	pt[1] |= (uint32_t)PG_U;
	for (unsigned i = 0; i < 4; i++) {
		rs = ins2(ins, T32 + u[i].off, RFLAGS_FIXED | RFLAGS_IOPL);
		say("CPL 3 REP INSB into %s: %s", u[i].what, outcome(rs, ins, T32 + u[i].off, 0));
		CHECK(u[i].err ? is_pf(rs, u[i].err, T32 + u[i].off) : is_done(rs) && got_id(C, 0x10), "%s",
		      u[i].what);
	}
	/* A user PTE under a supervisor PDE. */
	pd32[768] &= ~(uint32_t)PG_U;
	rs = ins2(ins, T32 + 0x3020, RFLAGS_FIXED | RFLAGS_IOPL);
	say("CPL 3 REP INSB into a user PTE under a supervisor PDE: %s", outcome(rs, ins, T32 + 0x3020, 0));
	CHECK(is_pf(rs, 7, T32 + 0x3020), "#PF(U, W, P) expected");
	pd32[768] |= (uint32_t)PG_U;
	l2_cpl32(0);
	set_wp(true);

	/* 4 MiB pages. */
	memset(A, 0xa1, 4096);
	const uint32_t big = (uint32_t)(pa(A) & 0xffc00000u), a4 = T4 + (uint32_t)(pa(A) & 0x3fffff) + 0x30;
	pd32[769] = big | (uint32_t)(PG_PS | PG_W | PG_P);
	rs = ins2(ins, a4, RFLAGS_FIXED);
	say("REP INSB into a 4 MiB page: %s; PDE A %u D %u", outcome(rs, ins, a4, 0), (unsigned)!!(pd32[769] & PG_A),
	    (unsigned)!!(pd32[769] & PG_D));
	CHECK(is_done(rs) && got_id(A, 0x30) && (pd32[769] & PG_AD) == PG_AD, "the INS writes, A and D set");
	memset(A, 0xa1, 4096);
	pd32[769] = big | (uint32_t)(PG_PS | PG_W | PG_P) | (1u << 21);
	rs = ins2(ins, a4, RFLAGS_FIXED);
	say("REP INSB into a 4 MiB page with bit 21 set: %s", outcome(rs, ins, a4, 0));
	CHECK(is_pf(rs, 0xb, a4) && all(A, 4096, 0xa1), "#PF(RSVD, W, P) expected");
	/* Bit 13: physical-address bit 32 with PSE-36, where L1's EPT maps
	 * nothing: an EPT violation at 4 GiB + the page. */
	pd32[769] = big | (uint32_t)(PG_PS | PG_W | PG_P) | (1u << 13);
	rs = ins2(ins, a4, RFLAGS_FIXED);
	say("REP INSB into a 4 MiB page with bit 13 (address bit 32) set: %s",
	    outcome(rs, ins, a4, (1ull << 32) + big));
	if (pse36)
		CHECK(rs == EXIT_EPT_VIOLATION && vm.x.gpa == (1ull << 32) + pa(A) + 0x30 &&
			      (vm.x.qual & 0x1ff) == 0x182 && all(A, 4096, 0xa1),
		      "EPT violation (write, nothing granted, final translation) at 4 GiB + the element expected");
	else
		CHECK(is_pf(rs, 0xb, a4), "#PF(RSVD, W, P) expected");
	if (pse36 && mpa < 40) {
		unsigned bit = 13 + mpa - 32; /* address bit MAXPHYADDR */
		pd32[769] = big | (uint32_t)(PG_PS | PG_W | PG_P) | (1u << bit);
		rs = ins2(ins, a4, RFLAGS_FIXED);
		say("REP INSB into a 4 MiB page with address bit MAXPHYADDR set: %s", outcome(rs, ins, a4, 0));
		CHECK(is_pf(rs, 0xb, a4) && all(A, 4096, 0xa1), "#PF(RSVD, W, P) expected");
	}
	outl(0xcf8, 0);
	hx_l2_end();
}

/* PAE paging: the PDPTEs are in the VMCS (loaded at VM entry with EPT,
 * SDM 27.3.1.6); 0-3 GiB identity in 2 MiB pages, PDPTE 3 (T32) to a page
 * directory in hx_pages[5].  SDM 4.4.2 (tables 4-8 to 4-11): 8-byte
 * entries, bits 62:MAXPHYADDR reserved, bit 63 (XD) reserved without
 * EFER.NXE, bits 20:13 of a 2 MiB page reserved. */
static uint64_t pae_pd[3][512] __attribute__((aligned(4096)));
static uint64_t pae_pdpt[4] __attribute__((aligned(32)));

HX_TEST(walk_pae)
{
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0], *B = hx_pages[1];
	uint64_t *pt = (uint64_t *)hx_pages[4], *pd = (uint64_t *)hx_pages[5];
	for (unsigned i = 0; i < 3; i++) {
		for (uint64_t j = 0; j < 512; j++)
			pae_pd[i][j] = ((i * 512ull + j) << 21) | PG_PS | PG_AD | PG_W | PG_P;
		pae_pdpt[i] = pa(pae_pd[i]) | PG_P;
	}
	memset(pt, 0, 4096);
	memset(pd, 0, 4096);
	pae_pdpt[3] = pa(pd) | PG_P;
	l2_legacy(true, pa(pae_pdpt));
	for (unsigned i = 0; i < 4; i++)
		vmw(GUEST_PDPTE0 + 2 * i, pae_pdpt[i]);
	const void *ins = hx_l2_c32_rep_insb;
	outl(0xcf8, PCI_ID_ADDR);
	memset(A, 0xa1, 4096), memset(B, 0xa1, 4096);

	pd[0] = pa(pt) | PG_W | PG_P;
	pt[0] = pa(A) | PG_W | PG_P;
	pt[1] = pa(B) | PG_P;
	uint32_t rs = ins2(ins, T32 + 0x10, RFLAGS_FIXED);
	say("PAE paging, REP INSB through fresh entries: %s; PDE A %u D %u, PTE A %u D %u",
	    outcome(rs, ins, T32 + 0x10, 0), (unsigned)!!(pd[0] & PG_A), (unsigned)!!(pd[0] & PG_D),
	    (unsigned)!!(pt[0] & PG_A), (unsigned)!!(pt[0] & PG_D));
	CHECK(is_done(rs) && got_id(A, 0x10) && (pd[0] & PG_AD) == PG_A && (pt[0] & PG_AD) == PG_AD,
	      "INS writes; A in the PDE, A and D in the PTE");
	rs = ins2(ins, T32 + 0x1010, RFLAGS_FIXED);
	say("REP INSB into a read-only page, CPL 0, CR0.WP=1: %s", outcome(rs, ins, T32 + 0x1010, 0));
	CHECK(is_pf(rs, 3, T32 + 0x1010) && all(B, 4096, 0xa1), "#PF(W, P) expected");
	set_wp(false);
	rs = ins2(ins, T32 + 0x1010, RFLAGS_FIXED);
	say("the same with CR0.WP=0: %s", outcome(rs, ins, T32 + 0x1010, 0));
	CHECK(is_done(rs) && got_id(B, 0x10), "the write goes through");
	set_wp(true);

	/* 2 MiB pages (PDE 1: T32 + 2 MiB). */
	const uint64_t big = pa(A) & ~0x1fffffull, a2 = T32 + (2u << 20) + (pa(A) & 0x1fffff) + 0x20;
	uint64_t efer = vmr(GUEST_EFER);
	static const struct {
		const char *what;
		uint64_t bits;
		bool nxe, ok;
	} c[] = {
		{ "", 0, true, true },
		{ " with bit 13 set", 1ull << 13, true, false },
		{ " with bit 62 set", 1ull << 62, true, false },
		{ " with XD set, EFER.NXE=1", 1ull << 63, true, true },
		{ " with XD set, EFER.NXE=0", 1ull << 63, false, false },
	};
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(A, 0xa1, 4096);
		pd[1] = big | PG_PS | PG_W | PG_P | c[i].bits;
		vmw(GUEST_EFER, c[i].nxe ? efer | EFER_NXE : efer & ~(uint64_t)EFER_NXE);
		rs = ins2(ins, a2, RFLAGS_FIXED);
		say("REP INSB into a 2 MiB page%s: %s; PDE A %u D %u", c[i].what, outcome(rs, ins, a2, 0),
		    (unsigned)!!(pd[1] & PG_A), (unsigned)!!(pd[1] & PG_D));
		if (c[i].ok)
			CHECK(is_done(rs) && got_id(A, 0x20) && (pd[1] & PG_AD) == PG_AD, "the INS writes%s", c[i].what);
		else
			CHECK(is_pf(rs, 0xb, a2) && all(A, 4096, 0xa1), "#PF(RSVD, W, P) expected%s", c[i].what);
	}
	vmw(GUEST_EFER, efer);

	/* PDPTE 3 not present (in the VMCS; memory still has it). */
	vmw(GUEST_PDPTE0 + 6, 0);
	rs = ins2(ins, T32 + 0x10, RFLAGS_FIXED);
	say("REP INSB under a not-present PDPTE: %s", outcome(rs, ins, T32 + 0x10, 0));
	CHECK(is_pf(rs, 2, T32 + 0x10), "#PF(W) expected");
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- string stores into memory that is not RAM, from 32-bit code ------------ */

extern const char hx_w32_rep_movsd[];

/* An L2 in 32-bit paging whose REP STOSD/MOVSD runs from RAM into a page
 * that is not RAM or back: the elements that reach it exit to the Nestor
 * below, which emulates them (vmx/exit_ept.c string_store, the L2's page
 * walk in gla_xlate) until the destination is RAM again; on a PC the
 * bytes that fall on RAM are written and the others dropped (SDM Vol. 1
 * 3.3.7.1 has 16-bit addresses wrap in 64 KiB and update DI and CX only,
 * the upper halves of EDI and ECX unchanged; Vol. 2B STOS/MOVS: DF=1
 * steps down).  T32 + 0xf000 is RAM (R0), T32 + 0x10000 not RAM, T32 +
 * 0x11000 and T32 + 0x1000 RAM (R2): with ES based at T32 + 0x1000, a
 * 16-bit DI of 0xfff8 is not RAM and 0 is R2.  (Not compared: a dword at
 * EDI 0xfffffffe of a flat 4 GiB ES, which Bochs 2.7 writes across the
 * 4 GiB wrap where the SDM (Vol. 3A 5.3) has #GP(0) for a doubleword at
 * an offset above the limit - 3, as the Nestors below give.) */
HX_TEST(stores_nonram_32)
{
	if (!hx_l2_begin())
		return;
	uint8_t *R0 = hx_pages[6], *R2 = hx_pages[7];
	uint32_t *pt = legacy32_begin();
	pt[0x1] = (uint32_t)pa(R2) | (uint32_t)(PG_W | PG_P);
	pt[0xf] = (uint32_t)pa(R0) | (uint32_t)(PG_W | PG_P);
	pt[0x10] = (uint32_t)hx_nonram_page() | (uint32_t)(PG_W | PG_P);
	pt[0x11] = (uint32_t)pa(R2) | (uint32_t)(PG_W | PG_P);
	static const struct {
		const char *what;
		int kind;              /* 0 STOSD, 1 STOSD with 16-bit addresses, 2 MOVSD from R0 + 0x100 */
		uint32_t edi, ecx;     /* EDI from T32 (or the 16-bit DI with 0x1234 above) */
		bool down, r2;         /* DF; the RAM page shown: R2's start, else R0's end */
		uint32_t want_edi;
		uint8_t want[8];
	} c[] = {
		{ "REP STOSD from RAM into not RAM", 0, 0x10000 - 6, 3, false, false, 0x10006,
		  { 0xa1, 0xa1, 0x55, 0x66, 0x77, 0x88, 0x55, 0x66 } },
		{ "REP STOSD from not RAM into RAM", 0, 0x11000 - 6, 3, false, true, 0x11006,
		  { 0x77, 0x88, 0x55, 0x66, 0x77, 0x88, 0xa1, 0xa1 } },
		{ "REP STOSD down from RAM into not RAM", 0, 0x11000 + 2, 3, true, true, 0x10ff6,
		  { 0x77, 0x88, 0x55, 0x66, 0x77, 0x88, 0xa1, 0xa1 } },
		{ "REP STOSD down from not RAM into RAM", 0, 0x10000 + 2, 3, true, false, 0xfff6,
		  { 0xa1, 0xa1, 0x55, 0x66, 0x77, 0x88, 0x55, 0x66 } },
		{ "REP MOVSD from RAM into not RAM", 2, 0x10000 - 6, 3, false, false, 0x10006,
		  { 0xa1, 0xa1, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45 } },
		{ "16-bit REP STOSD from DI fff8 (not RAM) over the wrap into RAM", 1, 0xfff8, 4, false, true, 0x0008,
		  { 0x55, 0x66, 0x77, 0x88, 0x55, 0x66, 0x77, 0x88 } },
		{ "16-bit REP STOSD down from DI 4 (RAM) over the wrap into not RAM", 1, 0x0004, 4, true, true, 0xfff4,
		  { 0x55, 0x66, 0x77, 0x88, 0x55, 0x66, 0x77, 0x88 } },
		{ "16-bit STOSD at DI fffe, straddling 64 KiB", 1, 0xfffe, 1, false, true, 0x0002,
		  { 0x77, 0x88, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1 } },
	};
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(R0, 0xa1, 4096), memset(R2, 0xa1, 4096);
		if (c[i].kind == 2)
			for (unsigned k = 0; k < 16; k++)
				R0[0x100 + k] = (uint8_t)(0x40 + k);
		const void *code = c[i].kind == 1 ? hx_w32_a16_rep_stosd : c[i].kind == 2 ? hx_w32_rep_movsd :
							       hx_w32_rep_stosd;
		bool a16 = c[i].kind == 1;
		vmw(GUEST_ES_BASE, a16 ? T32 + 0x1000 : 0);
		vm.r.rax = 0x88776655;
		vm.r.rdi = a16 ? 0x12340000u | c[i].edi : T32 + c[i].edi;
		vm.r.rcx = a16 ? 0x56780000u | c[i].ecx : c[i].ecx;
		vm.r.rsi = T32 + 0xf100;
		vm_at(code, RFLAGS_FIXED | (c[i].down ? RFLAGS_DF : 0));
		uint32_t rs = vm_go();
		const uint8_t *r = c[i].r2 ? R2 : R0 + 4096 - 8;
		uint32_t edi = (uint32_t)vm.r.rdi - (a16 ? 0x12340000u : T32), ecx = (uint32_t)vm.r.rcx;
		say("%s: %s, EDI %s%x, ECX %x; %s %02x %02x %02x %02x %02x %02x %02x %02x", c[i].what,
		    hx_exit_str(rs, code), a16 ? "0x1234:" : "T+", edi, ecx, c[i].r2 ? "RAM above starts" : "RAM below ends",
		    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
		/* Every other byte of R0 and R2 as it was. */
		bool rest = c[i].r2 ? all(R2 + 8, 4096 - 8, 0xa1) && all(R0, 4096, 0xa1) :
				      all(R2, 4096, 0xa1) && all(R0, 0x100, 0xa1) &&
					      all(R0 + 0x110, 4096 - 8 - 0x110, 0xa1);
		CHECK(rs == EXIT_VMCALL && edi == c[i].want_edi && ecx == (a16 ? 0x56780000u : 0) &&
			      !memcmp(r, c[i].want, 8) && rest,
		      "%s: registers and RAM as on a PC", c[i].what);
	}
	vmw(GUEST_ES_BASE, 0);
	hx_l2_end();
}

/* The same from 64-bit code with an address-size prefix (0x67): EDI and
 * ECX are used, and their 32-bit results are zero-extended into RDI and
 * RCX (SDM Vol. 1 3.3.7 and 3.4.1.1), whatever the upper halves held.  The
 * L2's linear 3 GiB + 0xf000.. is R0, not RAM, R2 as above (its PML4 the
 * kernel's with a PDPT of its own for the first 512 GiB). */
extern const char hx_w64_a32_rep_stosd[];

HX_TEST(stores_nonram_a32)
{
	if (!hx_l2_begin())
		return;
	uint8_t *R0 = hx_pages[6], *R2 = hx_pages[7];
	uint64_t *pdpt = (uint64_t *)hx_pages[3], *pd = (uint64_t *)hx_pages[4], *pt = (uint64_t *)hx_pages[5];
	memcpy(w_pml4, (const void *)(read_cr3() & ~0xfffull), 4096);
	memcpy(pdpt, (const void *)(w_pml4[0] & 0x000ffffffffff000ull), 4096);
	memset(pd, 0, 4096);
	memset(pt, 0, 4096);
	w_pml4[0] = pa(pdpt) | PG_U | PG_W | PG_P;
	pdpt[3] = pa(pd) | PG_U | PG_W | PG_P;
	pd[0] = pa(pt) | PG_W | PG_P;
	pt[0xf] = pa(R0) | PG_W | PG_P;
	pt[0x10] = hx_nonram_page() | PG_W | PG_P;
	pt[0x11] = pa(R2) | PG_W | PG_P;
	vmw(GUEST_CR3, pa(w_pml4));
	static const struct {
		const char *what;
		uint32_t edi;
		bool down, r2;
		uint32_t want_edi;
		uint8_t want[8];
	} c[] = {
		{ "REP STOSD (32-bit addresses) from RAM into not RAM", 0x10000 - 6, false, false, 0x10006,
		  { 0xa1, 0xa1, 0x55, 0x66, 0x77, 0x88, 0x55, 0x66 } },
		{ "REP STOSD (32-bit addresses) down from not RAM into RAM", 0x10000 + 2, true, false, 0xfff6,
		  { 0xa1, 0xa1, 0x55, 0x66, 0x77, 0x88, 0x55, 0x66 } },
		{ "REP STOSD (32-bit addresses) from not RAM into RAM", 0x11000 - 6, false, true, 0x11006,
		  { 0x77, 0x88, 0x55, 0x66, 0x77, 0x88, 0xa1, 0xa1 } },
	};
	const void *code = hx_w64_a32_rep_stosd;
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(R0, 0xa1, 4096), memset(R2, 0xa1, 4096);
		vm.r.rax = 0x88776655;
		vm.r.rdi = 0xffff000000000000ull | (T32 + c[i].edi);
		vm.r.rcx = 0xffff000000000003ull;
		vm_at(code, RFLAGS_FIXED | (c[i].down ? RFLAGS_DF : 0));
		uint32_t rs = vm_go();
		const uint8_t *r = c[i].r2 ? R2 : R0 + 4096 - 8;
		say("%s: %s, RDI %s%llx, RCX %llx; %s %02x %02x %02x %02x %02x %02x %02x %02x", c[i].what,
		    hx_exit_str(rs, code), vm.r.rdi >> 32 ? "HIGH BITS, " : "T+", (unsigned long long)(vm.r.rdi - T32),
		    (unsigned long long)vm.r.rcx, c[i].r2 ? "RAM above starts" : "RAM below ends", r[0], r[1], r[2], r[3],
		    r[4], r[5], r[6], r[7]);
		bool rest = c[i].r2 ? all(R2 + 8, 4096 - 8, 0xa1) && all(R0, 4096, 0xa1) :
				      all(R2, 4096, 0xa1) && all(R0, 4096 - 8, 0xa1);
		CHECK(rs == EXIT_VMCALL && vm.r.rdi == T32 + c[i].want_edi && vm.r.rcx == 0 && !memcmp(r, c[i].want, 8) &&
			      rest,
		      "%s: registers and RAM as on a PC", c[i].what);
	}
	hx_l2_end();
}

/* --- L1's EPT refusing the access itself ----------------------------------- */

/* The linear address is translated first, its accessed flags (and on a
 * write the leaf's dirty flag, SDM 4.8) set in the process, and then its
 * guest-physical address goes through L1's EPT (SDM 28.2.3.3), whose
 * refusal is an EPT violation of the final translation (qualification
 * bit 8) with the linear address valid (bit 7): the L2's entries keep the
 * flags.  Bochs sets the dirty flag too although the write does not
 * happen; the SDM does not say otherwise, and the transcript compares it.
 * On 0af9069 the Nestors below checked the EPT first and set no flag. */
HX_TEST(walk_ept_final)
{
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0], *B = hx_pages[1];
	memset(A, 0xa1, 4096), memset(B, 0xa1, 4096);
	*hx_ept_pte(pa(A)) = pa(A) | EPT_WB | EPT_R | EPT_X; /* no write */
	*hx_ept_pte(pa(B)) = pa(B) | EPT_WB | EPT_X;         /* no read */
	hx_ept_flush();
	outl(0xcf8, PCI_ID_ADDR);
	/* 4-level paging: fresh window entries. */
	uint8_t *wa = hx_map4k(2, pa(A), HX_PTE_P | HX_PTE_W), *wb = hx_map4k(3, pa(B), HX_PTE_P | HX_PTE_W);
	uint32_t rs = ins2(hx_l2_rep_insb, (uint64_t)wa + 0x10, RFLAGS_FIXED);
	uint64_t pte = *hx_pte4k(2);
	say("REP INSB into a page L1's EPT makes read-only, fresh PTE: %s; PTE A %u D %u",
	    outcome(rs, hx_l2_rep_insb, (uint64_t)wa + 0x10, pa(A)), (unsigned)!!(pte & PG_A), (unsigned)!!(pte & PG_D));
	CHECK(rs == EXIT_EPT_VIOLATION && vm.x.gpa == pa(A) + 0x10 && (vm.x.qual & 0x1ff) == 0x1aa &&
		      vm.x.gla == (uint64_t)wa + 0x10 && (uint32_t)vm.r.rcx == 2 && (pte & PG_A) && all(A, 4096, 0xa1),
	      "EPT violation (write, R and X granted, final translation), the PTE accessed");
	rs = outs2(hx_l2_rep_outsb, (uint64_t)wb + 0x20, RFLAGS_FIXED);
	pte = *hx_pte4k(3);
	say("REP OUTSB from a page L1's EPT makes execute-only, fresh PTE: %s; PTE A %u D %u",
	    outcome(rs, hx_l2_rep_outsb, (uint64_t)wb + 0x20, pa(B)), (unsigned)!!(pte & PG_A), (unsigned)!!(pte & PG_D));
	CHECK(rs == EXIT_EPT_VIOLATION && vm.x.gpa == pa(B) + 0x20 && (vm.x.qual & 0x1ff) == 0x1a1 &&
		      vm.x.gla == (uint64_t)wb + 0x20 && (uint32_t)vm.r.rcx == 2 && (pte & PG_AD) == PG_A,
	      "EPT violation (read, X granted, final translation), the PTE accessed, not dirty");
	/* 32-bit paging: 4-byte entries. */
	uint32_t *pt = legacy32_begin();
	pt[0] = (uint32_t)pa(A) | (uint32_t)(PG_W | PG_P);
	rs = ins2(hx_l2_c32_rep_insb, T32 + 0x10, RFLAGS_FIXED);
	say("32-bit paging, the same REP INSB: %s; PDE A %u, PTE A %u D %u",
	    outcome(rs, hx_l2_c32_rep_insb, T32 + 0x10, pa(A)), (unsigned)!!(pd32[768] & PG_A),
	    (unsigned)!!(pt[0] & PG_A), (unsigned)!!(pt[0] & PG_D));
	CHECK(rs == EXIT_EPT_VIOLATION && vm.x.gpa == pa(A) + 0x10 && (vm.x.qual & 0x1ff) == 0x1aa &&
		      (pd32[768] & PG_A) && (pt[0] & PG_A) && all(A, 4096, 0xa1),
	      "EPT violation, the PDE and PTE accessed");
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- what governs the L2's accesses: its CR0 and CR4, not their shadows ------ */

/* L1 owns CR0.WP and CR4.SMAP (guest/host masks) and shows the L2 the
 * opposite value in the read shadows: the shadows only answer the L2's
 * reads of CR0/CR4 (SDM Vol. 3C 25.3, 24.6.6), its accesses follow the
 * real CR0.WP and CR4.SMAP (SDM 4.6).  Likewise CR0.PE shown clear does not
 * make the L2's 32-bit code 16-bit: its REP STOSD into memory that is not
 * RAM, which a Nestor below decodes and emulates, stores dwords with EDI
 * and ECX.  On bd40109 the Nestors below took the shadows' values. */
HX_TEST(walk_cr_shadows)
{
	bool smap = cpuid(7, 0).ebx & (1u << 20);
	env("SMAP %s", smap ? "present" : "absent");
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0];
	outl(0xcf8, PCI_ID_ADDR);
	uint8_t *ro = hx_map4k(4, pa(A), HX_PTE_P);
	uint64_t cr0 = vmr(GUEST_CR0), cr4 = vmr(GUEST_CR4);
	for (int real = 0; real < 2; real++) {
		memset(A, 0xa1, 4096);
		vmw(CR0_MASK, vmr(CR0_MASK) | CR0_WP);
		vmw(GUEST_CR0, real ? cr0 | CR0_WP : cr0 & ~CR0_WP);
		vmw(CR0_SHADOW, real ? cr0 & ~CR0_WP : cr0 | CR0_WP);
		uint32_t rs = ins2(hx_l2_rep_insb, (uint64_t)ro + 0x10, RFLAGS_FIXED);
		say("CR0.WP=%d (shadow %d, owned by L1), CPL 0 REP INSB into a read-only page: %s", real, !real,
		    outcome(rs, hx_l2_rep_insb, (uint64_t)ro + 0x10, 0));
		CHECK(real ? is_pf(rs, 3, (uint64_t)ro + 0x10) && all(A, 4096, 0xa1) : is_done(rs) && got_id(A, 0x10),
		      "the real CR0.WP decides");
	}
	vmw(GUEST_CR0, cr0);
	vmw(CR0_SHADOW, cr0);
	if (smap) {
		uint8_t *u = hx_map4k(5, pa(A), HX_PTE_P | HX_PTE_W | HX_PTE_U);
		for (int real = 0; real < 2; real++) {
			memset(A, 0xa1, 4096);
			vmw(CR4_MASK, vmr(CR4_MASK) | CR4_SMAP);
			vmw(GUEST_CR4, real ? cr4 | CR4_SMAP : cr4 & ~CR4_SMAP);
			vmw(CR4_SHADOW, (real ? cr4 & ~CR4_SMAP : cr4 | CR4_SMAP) & ~CR4_VMXE);
			uint32_t rs = ins2(hx_l2_rep_insb, (uint64_t)u + 0x10, RFLAGS_FIXED);
			say("CR4.SMAP=%d (shadow %d, owned by L1), CPL 0 REP INSB into a user page: %s", real, !real,
			    outcome(rs, hx_l2_rep_insb, (uint64_t)u + 0x10, 0));
			CHECK(real ? is_pf(rs, 3, (uint64_t)u + 0x10) && all(A, 4096, 0xa1) :
				     is_done(rs) && got_id(A, 0x10),
			      "the real CR4.SMAP decides");
		}
		vmw(GUEST_CR4, cr4);
		vmw(CR4_SHADOW, cr4 & ~CR4_VMXE);
	}
	/* 32-bit code; L1 owns CR0.PE and shows it clear. */
	uint8_t *R0 = hx_pages[6];
	memset(R0, 0xa1, 4096);
	uint32_t *pt = legacy32_begin();
	pt[0xf] = (uint32_t)pa(R0) | (uint32_t)(PG_W | PG_P);
	pt[0x10] = (uint32_t)hx_nonram_page() | (uint32_t)(PG_W | PG_P);
	vmw(CR0_MASK, CR0_PE);
	vmw(CR0_SHADOW, vmr(GUEST_CR0) & ~CR0_PE);
	vm.r.rax = 0x88776655;
	vm.r.rdi = T32 + 0x10000 - 6;
	vm.r.rcx = 3;
	vm_at(hx_w32_rep_stosd, RFLAGS_FIXED);
	uint32_t rs = vm_go();
	const uint8_t *r = R0 + 4096 - 8;
	say("CR0.PE shown clear, 32-bit REP STOSD from RAM into not RAM: %s, EDI T+%llx, ECX %llx; "
	    "RAM below ends %02x %02x %02x %02x %02x %02x %02x %02x",
	    hx_exit_str(rs, hx_w32_rep_stosd), (unsigned long long)((uint32_t)vm.r.rdi - T32),
	    (unsigned long long)(uint32_t)vm.r.rcx, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
	static const uint8_t want[8] = { 0xa1, 0xa1, 0x55, 0x66, 0x77, 0x88, 0x55, 0x66 };
	CHECK(rs == EXIT_VMCALL && (uint32_t)vm.r.rdi == T32 + 0x10006 && (uint32_t)vm.r.rcx == 0 &&
		      !memcmp(r, want, 8) && all(R0, 4096 - 8, 0xa1),
	      "three dwords stored with 32-bit addresses");
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- string I/O of an L2 in real mode ---------------------------------------- */

extern const char hx_w16_rep_insb[], hx_w16_a32_rep_insb[], hx_w16_rep_outsb[], hx_w16_insw[];
static uint8_t rbuf[0x11000] __attribute__((aligned(4096)));

static uint32_t run16(const void *code, uint64_t rflags)
{
	uint64_t base = pa(code) & ~0xfffull;
	vmw(GUEST_CS_BASE, base);
	vm_at(code, rflags);
	vmw(GUEST_RIP, pa(code) - base);
	return vm_go();
}

/* The L2 in real mode (unrestricted guest): CR0.PE and PG clear, IA-32e
 * off, CS/SS/DS/ES selector 0, base 0 (CS's set by run16), limit 0xffff.
 * False (and VMX left) without unrestricted guest. */
static bool l2_real_mode(void)
{
	if (!((vcaps.proc2 >> 32) & PROC2_UNRESTRICTED)) {
		say("not tested (no unrestricted guest)");
		hx_l2_end();
		return false;
	}
	const uint64_t cr0 = vmr(GUEST_CR0) & ~(CR0_PE | CR0_PG), cr4 = vmr(GUEST_CR4) & ~CR4_PCIDE;
	vm_ctl(PROC2_CTLS, PROC2_UNRESTRICTED, 0);
	vm_ctl(ENTRY_CTLS, 0, ENTRY_IA32E);
	vmw(GUEST_CR0, cr0);
	vmw(CR0_SHADOW, cr0);
	vmw(GUEST_CR4, cr4);
	vmw(CR4_SHADOW, cr4 & ~CR4_VMXE);
	vmw(GUEST_EFER, vmr(GUEST_EFER) & ~(uint64_t)(EFER_LME | EFER_LMA));
	vmw(GUEST_CS_SEL, 0);
	vmw(GUEST_CS_LIMIT, 0xffff);
	vmw(GUEST_CS_AR, 0x9b);
	for (uint32_t n = 0; n < 4; n++) {
		if (n == 1)
			continue; /* CS */
		vmw(GUEST_ES_SEL + 2 * n, 0);
		vmw(GUEST_ES_BASE + 2 * n, 0);
		vmw(GUEST_ES_LIMIT + 2 * n, 0xffff);
		vmw(GUEST_ES_AR + 2 * n, 0x93);
	}
	return true;
}

/* The exit's IP from a 16-bit snippet. */
static long ip_off(const void *code) { return (long)(vm.x.rip - (pa(code) & 0xfff)); }

/* An L2 in real mode (unrestricted guest, CR0.PE and PG clear): no paging,
 * linear addresses are guest-physical; 16-bit addresses wrap in 64 KiB and
 * update DI, SI and CX alone (SDM Vol. 1 3.3.7.1, 3.3.6); the segment limit
 * (0xffff, or what the VMCS holds: "big real mode") still applies, an
 * element beyond it is #GP(0) (Vol. 3A 20.1.3).  No error code is pushed
 * in real mode (Vol. 3A 20.1.4), and the exit's interruption information
 * has bit 11 set only for an exception that would deliver one (Vol. 3C
 * 27.2.2): the Nestors below leave it clear, Bochs 2.7 sets it, so bit 11
 * is left out of the comparison.  ES is based at a buffer of 68 KiB of
 * ours. */
HX_TEST(walk_real_mode)
{
	if (!hx_l2_begin())
		return;
	if (!l2_real_mode())
		return;
	for (uint32_t n = 0; n < 4; n++)
		if (n != 1)
			vmw(GUEST_ES_BASE + 2 * n, n == 0 || n == 3 ? pa(rbuf) : 0);
	outl(0xcf8, PCI_ID_ADDR);
	static const struct {
		const char *what;
		const char *code;
		uint32_t edi, ecx, es_limit;
		uint32_t want_edi, want_ecx; /* the #GP's, or at the VMCALL */
		bool gp;
		uint32_t written[4]; /* offsets of rbuf written (0x86), ~0 for none */
	} c[] = {
		{ "REP INSB of 4 bytes from DI fffe (16-bit addresses wrap)", hx_w16_rep_insb, 0xabcdfffe, 0x56780004,
		  0xffff, 0xabcd0002, 0x56780000, false, { 0xfffe, 0xffff, 0, 1 } },
		{ "REP INSB of 4 bytes from EDI fffe, 32-bit addresses, limit ffff", hx_w16_a32_rep_insb, 0xfffe, 4,
		  0xffff, 0x10000, 2, true, { 0xfffe, 0xffff, ~0u, ~0u } },
		{ "the same with ES limit ffffffff (big real mode)", hx_w16_a32_rep_insb, 0xfffe, 4, 0xffffffff, 0x10002, 0,
		  false, { 0xfffe, 0xffff, 0x10000, 0x10001 } },
		{ "INSW at DI ffff (the word beyond the limit)", hx_w16_insw, 0xffff, 0, 0xffff, 0xffff, 0, true,
		  { ~0u, ~0u, ~0u, ~0u } },
	};
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(rbuf, 0xa1, sizeof(rbuf));
		vmw(GUEST_ES_LIMIT, c[i].es_limit);
		vmw(GUEST_ES_AR, c[i].es_limit > 0xfffff ? 0x8093 : 0x93); /* G with a limit beyond 1 MiB */
		vm.r.rdx = 0xcfc;
		vm.r.rdi = c[i].edi;
		vm.r.rcx = c[i].ecx;
		uint32_t rs = run16(c[i].code, RFLAGS_FIXED);
		unsigned n = 0, extra = 0;
		for (unsigned k = 0; k < 4; k++)
			if (c[i].written[k] != ~0u)
				n += rbuf[c[i].written[k]] == 0x86;
		for (unsigned k = 0; k < sizeof(rbuf); k++)
			extra += rbuf[k] != 0xa1;
		say("real mode, %s: exit %u (%s) at IP+%ld, interruption information %x (bit 11 aside), EDI %x, ECX %x; "
		    "%u bytes written",
		    c[i].what, rs, exit_name(rs), ip_off(c[i].code), rs == EXIT_EXC_NMI ? vm.x.intr_info & ~0x800u : 0,
		    (uint32_t)vm.r.rdi,
		    (uint32_t)vm.r.rcx, extra);
		unsigned want_n = 0;
		for (unsigned k = 0; k < 4; k++)
			want_n += c[i].written[k] != ~0u;
		CHECK((c[i].gp ? rs == EXIT_EXC_NMI && (vm.x.intr_info & ~0x800u) == 0x8000030d : rs == EXIT_VMCALL) &&
			      (uint32_t)vm.r.rdi == c[i].want_edi && (uint32_t)vm.r.rcx == c[i].want_ecx && n == want_n &&
			      extra == want_n,
		      "%s", c[i].what);
	}
	vmw(GUEST_ES_LIMIT, 0xffff);
	vmw(GUEST_ES_AR, 0x93);
	/* REP OUTSB from DS:SI ffff, 2 bytes to port 0x80: SI wraps. */
	vm.r.rdx = 0x80;
	vm.r.rsi = 0x1234ffff;
	vm.r.rcx = 2;
	uint32_t rs = run16(hx_w16_rep_outsb, RFLAGS_FIXED);
	say("real mode, REP OUTSB of 2 bytes from SI ffff: exit %u (%s) at IP+%ld, ESI %x, ECX %x", rs, exit_name(rs),
	    ip_off(hx_w16_rep_outsb), (uint32_t)vm.r.rsi, (uint32_t)vm.r.rcx);
	CHECK(rs == EXIT_VMCALL && (uint32_t)vm.r.rsi == 0x12340001 && (uint32_t)vm.r.rcx == 0, "SI wraps");
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- an element across into a page that faults ------------------------------ */

/* INSD/OUTSD whose dword starts 2 bytes before the end of a good page and
 * ends on a page that faults: #PF with CR2 the first byte on the faulting
 * page (SDM 4.7: the linear address that caused the fault), nothing of
 * the element stored, RDI/RSI unchanged; the good page's entry is used
 * first and keeps the accessed (and, for the write, dirty) flag Bochs
 * sets there.  L1's EPT refusing the second page instead: an EPT
 * violation at its first byte. */
HX_TEST(walk_cross_fault)
{
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0], *B = hx_pages[1];
	outl(0xcf8, PCI_ID_ADDR);
	static const struct {
		const char *what;
		uint64_t second; /* flags of the second page's PTE */
		bool out, ept;
	} c[] = {
		{ "INSD into a not-present page", 0, false, false },
		{ "INSD into a read-only page (CR0.WP=1)", HX_PTE_P, false, false },
		{ "OUTSD from a not-present page", 0, true, false },
		{ "INSD into a page L1's EPT makes read-only", HX_PTE_P | HX_PTE_W, false, true },
	};
	set_wp(true);
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(A, 0xa1, 4096), memset(B, 0xa1, 4096);
		*hx_ept_pte(pa(B)) = pa(B) | EPT_WB | EPT_R | EPT_X | (c[i].ept ? 0 : EPT_W);
		hx_ept_flush();
		uint8_t *w0 = hx_map4k(8 + 2 * i, pa(A), HX_PTE_P | HX_PTE_W);
		uint8_t *w1 = hx_map4k(9 + 2 * i, pa(B), c[i].second);
		uint64_t el = (uint64_t)w0 + 0xffe;
		vm.r.rax = PCI_ID_ADDR;
		vm.r.rdi = el;
		vm.r.rsi = el;
		const void *code = c[i].out ? (const void *)hx_l2_outsd_inl : (const void *)hx_l2_outl_insd;
		uint32_t rs = hx_run(code);
		uint64_t pte = *hx_pte4k(8 + 2 * i);
		char fault[64];
		if (rs == EXIT_EXC_NMI)
			ksnprintf(fault, sizeof(fault), "vector %u, error code %x", vm.x.intr_info & 0xff, vm.x.intr_err);
		else
			ksnprintf(fault, sizeof(fault), "qualification %llx", (unsigned long long)(vm.x.qual & 0x1ff));
		uint64_t at = rs == EXIT_EPT_VIOLATION ? vm.x.gla : vm.x.qual;
		say("%s, the dword at the page's end - 2: %s, %s, at %s; first PTE A %u D %u, RDI/RSI %s", c[i].what,
		    hx_exit_str(rs, code), fault, at == (uint64_t)w1 ? "the second page's start" : "ANOTHER ADDRESS",
		    (unsigned)!!(pte & PG_A), (unsigned)!!(pte & PG_D),
		    vm.r.rdi == el && vm.r.rsi == el ? "unchanged" : "CHANGED");
		uint32_t err = c[i].out ? 0 : c[i].second ? 3 : 2;
		CHECK((c[i].ept ? rs == EXIT_EPT_VIOLATION && vm.x.gpa == pa(B) && (vm.x.qual & 0x1ff) == 0x1aa &&
					  vm.x.gla == (uint64_t)w1 :
				  rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == EXC_PF && vm.x.intr_err == err &&
					  vm.x.qual == (uint64_t)w1) &&
			      all(A, 4096, 0xa1) && all(B, 4096, 0xa1) && vm.r.rdi == el && vm.r.rsi == el && (pte & PG_A),
		      "%s: the fault of the second page, nothing stored", c[i].what);
	}
	*hx_ept_pte(pa(B)) = pa(B) | EPT_WB | EPT_R | EPT_W | EPT_X;
	hx_ept_flush();
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- single-stepping a string store into memory that is not RAM ------------- */

/* With RFLAGS.TF a REP string instruction traps after every iteration: a
 * #DB (DR6.BS, qualification bit 14) with RIP still on the instruction
 * while RCX is not zero, after it once RCX is (SDM Vol. 3A 18.3.1.4,
 * Vol. 2B REP).  The Nestors below emulate one element per exit then
 * (vmx/exit_ept.c string_store) and leave the single-step trap pending. */
HX_TEST(stores_nonram_tf)
{
	if (!hx_l2_begin())
		return;
	uint64_t nr = hx_nonram_page();
	static const uint64_t counts[] = { 3, 1 };
	for (unsigned i = 0; i < 2; i++) {
		vm.r.rax = 0x88776655;
		vm.r.rdi = nr + 0x10;
		vm.r.rcx = counts[i];
		vm_at(hx_l2_rep_stosb, RFLAGS_FIXED | RFLAGS_TF);
		uint32_t rs = vm_go();
		say("REP STOSB of %llu bytes into not RAM, RFLAGS.TF: %s, vector %u, qualification %llx, RCX %llu, RDI +%llx",
		    (unsigned long long)counts[i], hx_exit_str(rs, hx_l2_rep_stosb),
		    rs == EXIT_EXC_NMI ? vm.x.intr_info & 0xff : 0, (unsigned long long)vm.x.qual,
		    (unsigned long long)vm.r.rcx, (unsigned long long)(vm.r.rdi - nr));
		bool done = counts[i] == 1;
		CHECK(rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == EXC_DB && (vm.x.qual & 0x4000) &&
			      rip_off(hx_l2_rep_stosb) == (done ? 2 : 0) && vm.r.rcx == counts[i] - 1 &&
			      vm.r.rdi == nr + 0x11,
		      "a single-step #DB after one byte");
	}
	hx_l2_end();
}

/* --- OUTS with a segment override -------------------------------------------- */

extern const char hx_w64_fs_outsd_inl[], hx_w64_gs_outsd_inl[], hx_w32_fs_outsd_inl[];

/* OUTS reads DS:RSI unless another segment is named (SDM Vol. 2B OUTS);
 * in 64-bit mode FS and GS keep their bases (Vol. 1 3.3.7.1), even when
 * unusable for loads (the VMCS's unusable bit, Vol. 3C 24.4.1); from
 * 32-bit code the segment's limit and usability count: an unusable FS is
 * #GP(0), an offset beyond its limit #GP(0).  The dword read is a PCI
 * configuration address: 0xcf8 read back tells which bytes OUTSD took
 * (A + 0x200 holds 0x80000008, A + 0x100 0x8000000c). */
HX_TEST(io_segment_override)
{
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0];
	memset(A, 0xa1, 4096);
	static const uint8_t at200[4] = { 0x08, 0, 0, 0x80 }, at100[4] = { 0x0c, 0, 0, 0x80 };
	memcpy(A + 0x200, at200, 4);
	memcpy(A + 0x100, at100, 4);
	const uint32_t fs = 8, gs = 10; /* field offsets from the ES fields */
	static const struct {
		const char *what;
		const char *code;
		uint32_t seg, ar, limit;
		bool c32;
		uint32_t want; /* 0xcf8 read back, 0 for #GP(0) */
	} c[] = {
		{ "64-bit OUTSD from FS:100, FS based at A+100, unusable", hx_w64_fs_outsd_inl, fs, 0x10000, 0, false,
		  0x80000008 },
		{ "64-bit OUTSD from GS:100, GS based at A+100", hx_w64_gs_outsd_inl, gs, 0xc093, 0xffffffff, false,
		  0x80000008 },
		{ "32-bit OUTSD from FS:100, FS based at A+100", hx_w32_fs_outsd_inl, fs, 0xc093, 0xffffffff, true,
		  0x80000008 },
		{ "32-bit OUTSD from FS:100, FS unusable", hx_w32_fs_outsd_inl, fs, 0x10000, 0, true, 0 },
		{ "32-bit OUTSD from FS:100, FS limit 101", hx_w32_fs_outsd_inl, fs, 0x4093, 0x101, true, 0 },
	};
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		vmw(GUEST_ES_SEL + c[i].seg, c[i].ar & 0x10000 ? 0 : G_KDATA);
		vmw(GUEST_ES_BASE + c[i].seg, pa(A) + 0x100);
		vmw(GUEST_ES_LIMIT + c[i].seg, c[i].limit);
		vmw(GUEST_ES_AR + c[i].seg, c[i].ar);
		vmw(GUEST_CS_SEL, c[i].c32 ? G_KCODE32 : G_KCODE64);
		vmw(GUEST_CS_AR, c[i].c32 ? 0xc09b : 0xa09b);
		vm.r.rsi = 0x100;
		vm.r.rax = 0;
		uint32_t rs = hx_run(c[i].code);
		if (rs == EXIT_VMCALL)
			say("%s: %s, 0xcf8 reads %08x, RSI %llx", c[i].what, hx_exit_str(rs, c[i].code), (uint32_t)vm.r.rax,
			    (unsigned long long)vm.r.rsi);
		else
			say("%s: %s, vector %u, error code %x, RSI %llx", c[i].what, hx_exit_str(rs, c[i].code),
			    vm.x.intr_info & 0xff, vm.x.intr_err, (unsigned long long)vm.r.rsi);
		CHECK(c[i].want ? rs == EXIT_VMCALL && (uint32_t)vm.r.rax == c[i].want && vm.r.rsi == 0x104 :
				  rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == EXC_GP && vm.x.intr_err == 0 &&
					  vm.r.rsi == 0x100,
		      "%s", c[i].what);
		vmw(GUEST_ES_SEL + c[i].seg, 0);
		vmw(GUEST_ES_BASE + c[i].seg, 0);
		vmw(GUEST_ES_LIMIT + c[i].seg, 0);
		vmw(GUEST_ES_AR + c[i].seg, 0x10000);
	}
	vmw(GUEST_CS_SEL, G_KCODE64);
	vmw(GUEST_CS_AR, 0xa09b);
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- INS with an address-size prefix ------------------------------------------ */

extern const char hx_w64_a32_rep_insb[], hx_w32_a16_rep_insb[];

/* The address size picks the index and count registers (SDM Vol. 2B INS,
 * REP): from 64-bit code 0x67 means EDI and ECX, their results
 * zero-extended into RDI and RCX (Vol. 1 3.4.1.1); from 32-bit code DI and
 * CX, 16-bit, wrapping in 64 KiB, the upper halves of EDI and ECX kept
 * (Vol. 1 3.3.6).  ES is based at a 68 KiB buffer of ours (compatibility
 * mode, the kernel's page tables). */
HX_TEST(io_address_size)
{
	if (!hx_l2_begin())
		return;
	outl(0xcf8, PCI_ID_ADDR);
	memset(rbuf, 0xa1, sizeof(rbuf));
	vm.r.rdx = 0xcfc;
	vm.r.rdi = 0xffff000000000000ull | (pa(rbuf) + 0x10);
	vm.r.rcx = 0xabcd000000000003ull;
	uint32_t rs = hx_run(hx_w64_a32_rep_insb);
	unsigned n = 0;
	for (unsigned k = 0; k < sizeof(rbuf); k++)
		n += rbuf[k] != 0xa1;
	say("64-bit REP INSB with 32-bit addresses, 3 bytes: %s, RDI %s%llx, RCX %llx; %u bytes written, at +10 %s",
	    hx_exit_str(rs, hx_w64_a32_rep_insb), vm.r.rdi >> 32 ? "HIGH BITS, " : "buffer+",
	    (unsigned long long)(vm.r.rdi - pa(rbuf)), (unsigned long long)vm.r.rcx, n,
	    rbuf[0x10] == 0x86 && rbuf[0x12] == 0x86 ? "yes" : "NO");
	CHECK(rs == EXIT_VMCALL && vm.r.rdi == pa(rbuf) + 0x13 && vm.r.rcx == 0 && n == 3 && rbuf[0x10] == 0x86 &&
		      rbuf[0x12] == 0x86,
	      "EDI and ECX used, zero-extended");
	/* 32-bit code (compatibility mode), 16-bit addresses. */
	memset(rbuf, 0xa1, sizeof(rbuf));
	vmw(GUEST_CS_SEL, G_KCODE32);
	vmw(GUEST_CS_AR, 0xc09b);
	vmw(GUEST_ES_BASE, pa(rbuf));
	static const struct {
		uint32_t di;
		bool down;
		uint32_t want_di;
		uint32_t at[3];
	} c[] = { { 0xfffe, false, 0x0001, { 0xfffe, 0xffff, 0 } }, { 0x0001, true, 0xfffe, { 1, 0, 0xffff } } };
	for (unsigned i = 0; i < 2; i++) {
		memset(rbuf, 0xa1, sizeof(rbuf));
		vm.r.rdi = 0x12340000u | c[i].di;
		vm.r.rcx = 0x56780003u;
		vm_at(hx_w32_a16_rep_insb, RFLAGS_FIXED | (c[i].down ? RFLAGS_DF : 0));
		rs = vm_go();
		n = 0;
		for (unsigned k = 0; k < sizeof(rbuf); k++)
			n += rbuf[k] != 0xa1;
		bool at = rbuf[c[i].at[0]] == 0x86 && rbuf[c[i].at[1]] == 0x86 && rbuf[c[i].at[2]] == 0x86;
		say("32-bit REP INSB with 16-bit addresses, 3 bytes from DI %x%s: %s, EDI %x, ECX %x; %u bytes written, "
		    "across the wrap %s",
		    c[i].di, c[i].down ? " down" : "", hx_exit_str(rs, hx_w32_a16_rep_insb), (uint32_t)vm.r.rdi,
		    (uint32_t)vm.r.rcx, n, at ? "yes" : "NO");
		CHECK(rs == EXIT_VMCALL && (uint32_t)vm.r.rdi == (0x12340000u | c[i].want_di) &&
			      (uint32_t)vm.r.rcx == 0x56780000u && n == 3 && at,
		      "DI and CX used, wrapping");
	}
	vmw(GUEST_ES_BASE, 0);
	vmw(GUEST_CS_SEL, G_KCODE64);
	vmw(GUEST_CS_AR, 0xa09b);
	outl(0xcf8, 0);
	hx_l2_end();
}

/* PAE paging for an L2 whose hypervisor uses no EPT: VM entry loads the
 * PDPTEs from the L2's CR3 in L1's memory, the VMCS's PDPTE fields being
 * used only with EPT (SDM Vol. 3C 26.3.2.4), and a VM exit saves them
 * only with EPT (27.3.4): here the fields hold zeros throughout.  The
 * Nestors below run such an L2 under an EPT of theirs (L1's memory), where
 * the CPU would take the PDPTEs from the VMCS; on 9c3a8a8 they gave it the
 * fields' zeros, and its first fetch faulted. */
HX_TEST(walk_pae_no_ept)
{
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0];
	uint64_t *pt = (uint64_t *)hx_pages[4], *pd = (uint64_t *)hx_pages[5];
	for (unsigned i = 0; i < 3; i++) {
		for (uint64_t j = 0; j < 512; j++)
			pae_pd[i][j] = ((i * 512ull + j) << 21) | PG_PS | PG_AD | PG_W | PG_P;
		pae_pdpt[i] = pa(pae_pd[i]) | PG_P;
	}
	memset(pt, 0, 4096);
	memset(pd, 0, 4096);
	pae_pdpt[3] = pa(pd) | PG_P;
	pd[0] = pa(pt) | PG_W | PG_P;
	pt[0] = pa(A) | PG_W | PG_P;
	pt[1] = 0;
	vm_ctl(PROC2_CTLS, 0, PROC2_EPT | PROC2_UNRESTRICTED);
	l2_legacy(true, pa(pae_pdpt));
	for (unsigned i = 0; i < 4; i++)
		vmw(GUEST_PDPTE0 + 2 * i, 0);
	outl(0xcf8, PCI_ID_ADDR);
	memset(A, 0xa1, 4096);
	uint32_t rs = ins2(hx_l2_c32_rep_insb, T32 + 0x10, RFLAGS_FIXED);
	uint64_t f3 = vmr(GUEST_PDPTE0 + 6);
	say("PAE L2 without EPT, REP INSB through PDPTE 3: %s; PDPTE3 field after the exit %s",
	    outcome(rs, hx_l2_c32_rep_insb, T32 + 0x10, 0), f3 ? "NOT ZERO" : "zero");
	CHECK(is_done(rs) && got_id(A, 0x10) && !f3, "the PDPTEs come from CR3");
	rs = ins2(hx_l2_c32_rep_insb, T32 + 0x1010, RFLAGS_FIXED);
	say("the same into a not-present PTE: %s", outcome(rs, hx_l2_c32_rep_insb, T32 + 0x1010, 0));
	CHECK(is_pf(rs, 2, T32 + 0x1010), "#PF(W) expected");
	/* PDPTE 3 not present in memory now: the next entry loads that. */
	pae_pdpt[3] = 0;
	rs = ins2(hx_l2_c32_rep_insb, T32 + 0x10, RFLAGS_FIXED);
	say("PDPTE 3 made not present in memory, entered again: %s", outcome(rs, hx_l2_c32_rep_insb, T32 + 0x10, 0));
	CHECK(is_pf(rs, 2, T32 + 0x10), "#PF(W) expected");
	/* A present PDPTE with a reserved bit (bit 1, SDM 4.4.1): the entry
	 * fails, invalid guest state with qualification 2 (26.3.1.6, 26.8). */
	pae_pdpt[3] = pa(pd) | PG_W | PG_P;
	rs = ins2(hx_l2_c32_rep_insb, T32 + 0x10, RFLAGS_FIXED);
	say("PDPTE 3 with reserved bit 1 set in memory, entered again: %s",
	    outcome(rs, hx_l2_c32_rep_insb, T32 + 0x10, 0));
	CHECK(rs == (EXIT_FAILED_ENTRY | EXIT_BAD_GUEST) && vm.x.qual == 2, "VM entry fails (PDPTE loading)");
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- the #PF of an emulated access: L1's or the L2's --------------------------- */

/* A page fault the Nestor below finds for the L2's string I/O goes where
 * the CPU's would: to L1 as an exception exit when L1's exception bitmap
 * and page-fault error-code mask/match say so (SDM Vol. 3C 25.2: with bit
 * 14 set it exits when (error & mask) == match, with bit 14 clear when
 * it differs), else into the L2 through its IDT with CR2 the address.
 * The L2's handler records vector, error code, RIP and CR2, then VMCALLs. */
HX_TEST(walk_pf_routing)
{
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0];
	memset(A, 0xa1, 4096);
	uint8_t *np = hx_map4k(6, 0, 0);                  /* not present: error code 2 */
	uint8_t *ro = hx_map4k(7, pa(A), HX_PTE_P);       /* read-only, CR0.WP: error code 3 */
	set_wp(true);
	static const struct {
		const char *what;
		bool bit14;
		uint32_t mask, match;
		bool ro;
		bool exits;
	} c[] = {
		{ "#PF not in the exception bitmap, not present", false, 0, 0, false, false },
		{ "bit 14 set, mask 1 match 1, not present", true, 1, 1, false, false },
		{ "bit 14 set, mask 1 match 1, read-only", true, 1, 1, true, true },
		{ "bit 14 clear, mask 1 match 1, not present", false, 1, 1, false, true },
		{ "bit 14 clear, mask 1 match 1, read-only", false, 1, 1, true, false },
	};
	outl(0xcf8, PCI_ID_ADDR);
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		vmw(EXCEPTION_BITMAP, c[i].bit14 ? 0xffffffffu : ~(1u << EXC_PF));
		vmw(PF_ERR_MASK, c[i].mask);
		vmw(PF_ERR_MATCH, c[i].match);
		uint64_t gla = (uint64_t)(c[i].ro ? ro : np) + 0x10;
		uint32_t err = c[i].ro ? 3 : 2;
		uint32_t rs = ins2(hx_l2_rep_insb, gla, RFLAGS_FIXED);
		if (rs == EXIT_VMCALL)
			say("%s: the L2 got vector %llu, error code %llx, at +%lld, CR2 %s", c[i].what,
			    (unsigned long long)l2_event.vector, (unsigned long long)l2_event.error,
			    (long long)(l2_event.rip - pa(hx_l2_rep_insb)), l2_event.cr2 == gla ? "the element" : "OTHER");
		else
			say("%s: %s", c[i].what, outcome(rs, hx_l2_rep_insb, gla, 0));
		CHECK(c[i].exits ? is_pf(rs, err, gla) :
				   rs == EXIT_VMCALL && l2_event.vector == EXC_PF && l2_event.error == err &&
					   l2_event.rip == pa(hx_l2_rep_insb) && l2_event.cr2 == gla,
		      "%s", c[i].what);
	}
	CHECK(all(A, 4096, 0xa1), "nothing written");
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- reserved and ignored bits of a 4-level PTE -------------------------------- */

/* SDM 4.5.4 (table 4-20) and 4.7: in a PTE bits 51:MAXPHYADDR are
 * reserved, and bit 63 (XD) when EFER.NXE is clear - #PF with RSVD and P;
 * bits 58:52 are ignored, and 62:59 (the protection key) without CR4.PKE,
 * bit 7 is PAT and bit 8 G (no fault). */
HX_TEST(walk_pte_bits)
{
	unsigned mpa = hx_maxphyaddr();
	env("MAXPHYADDR %u", mpa);
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0];
	uint64_t efer = vmr(GUEST_EFER);
	vmw(GUEST_CR4, vmr(GUEST_CR4) & ~(uint64_t)CR4_PKE);
	outl(0xcf8, PCI_ID_ADDR);
	static const struct {
		const char *what;
		int bit; /* -1: MAXPHYADDR */
		bool nxe, rsvd;
	} c[] = {
		{ "address bit MAXPHYADDR", -1, true, true },
		{ "bit 51", 51, true, true },
		{ "bit 52 (ignored)", 52, true, false },
		{ "bit 58 (ignored)", 58, true, false },
		{ "bit 62 (a key, no CR4.PKE)", 62, true, false },
		{ "XD, EFER.NXE=1", 63, true, false },
		{ "XD, EFER.NXE=0", 63, false, true },
		{ "bit 7 (PAT)", 7, true, false },
		{ "bit 8 (G)", 8, true, false },
	};
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(A, 0xa1, 4096);
		unsigned bit = c[i].bit < 0 ? mpa : (unsigned)c[i].bit;
		uint8_t *w = hx_map4k(20 + i, pa(A), HX_PTE_P | HX_PTE_W | (1ull << bit));
		vmw(GUEST_EFER, c[i].nxe ? efer | EFER_NXE : efer & ~(uint64_t)EFER_NXE);
		uint32_t rs = ins2(hx_l2_rep_insb, (uint64_t)w + 0x10, RFLAGS_FIXED);
		say("REP INSB through a PTE with %s: %s", c[i].what, outcome(rs, hx_l2_rep_insb, (uint64_t)w + 0x10, 0));
		CHECK(c[i].rsvd ? is_pf(rs, 0xb, (uint64_t)w + 0x10) && all(A, 4096, 0xa1) : is_done(rs) && got_id(A, 0x10),
		      "%s", c[i].what);
	}
	vmw(GUEST_EFER, efer);
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- string I/O of an L2 in virtual-8086 mode --------------------------------- */

/* Virtual-8086 mode (RFLAGS.VM, IOPL 3 so that I/O needs no TSS bitmap):
 * CPL 3, so user-page checks apply to its accesses (SDM 4.6); segments
 * are sel * 16 with limit 0xffff, no type check (20.2.1); 16-bit
 * addresses wrap in 64 KiB; an element beyond the limit is #GP(0) - with
 * an error code, this being protected mode.  Its code is copied to a page
 * of ours at linear 0x8000 (CS 0x800), ES is 0x1000 (linear 0x10000):
 * 32-bit paging maps linear 0x1f000 to R0, 0x10000 to R2, both user pages
 * (their first 4 MiB through a page table in hx_pages[3]). */
HX_TEST(walk_v86)
{
	if (!hx_l2_begin())
		return;
	uint8_t *code = hx_pages[2], *R0 = hx_pages[6], *R2 = hx_pages[7];
	uint32_t *pt0 = (uint32_t *)hx_pages[3];
	legacy32_begin();
	for (uint32_t i = 0; i < 1024; i++)
		pt0[i] = (i << 12) | (uint32_t)(PG_U | PG_W | PG_P);
	pt0[0x8] = (uint32_t)pa(code) | (uint32_t)(PG_U | PG_P);
	pt0[0x10] = (uint32_t)pa(R2) | (uint32_t)(PG_U | PG_W | PG_P);
	pd32[0] = (uint32_t)pa(pt0) | (uint32_t)(PG_U | PG_W | PG_P);
	static const uint32_t sel[6] = { 0x1000, 0x800, 0, 0, 0, 0 }; /* ES CS SS DS FS GS */
	for (uint32_t n = 0; n < 6; n++) {
		vmw(GUEST_ES_SEL + 2 * n, sel[n]);
		vmw(GUEST_ES_BASE + 2 * n, sel[n] << 4);
		vmw(GUEST_ES_LIMIT + 2 * n, 0xffff);
		vmw(GUEST_ES_AR + 2 * n, 0xf3);
	}
	/* In virtual-8086 mode I/O always consults the TSS's I/O permission
	 * bitmap (SDM Vol. 2B INS): a TSS of ours whose bitmap allows every
	 * port. */
	uint8_t *tss = hx_pages[1];
	memset(tss, 0, 4096);
	tss[0x66] = 0x68;
	vmw(GUEST_TR_BASE, pa(tss));
	vmw(GUEST_TR_LIMIT, 0xfff);
	outl(0xcf8, PCI_ID_ADDR);
	static const struct {
		const char *what;
		const char *snippet;
		unsigned len;
		uint32_t di, cx;
		uint64_t r0_flags;
		uint32_t want_di, want_cx, err; /* err: ~0 none, else #PF(err), 0x100 #GP(0) */
	} c[] = {
		{ "REP INSB of 4 bytes from DI fffe (wraps in 64 KiB)", hx_w16_rep_insb, 7, 0xabcdfffe, 0x56780004,
		  PG_U | PG_W | PG_P, 0xabcd0002, 0x56780000, ~0u },
		{ "the same into a supervisor page", hx_w16_rep_insb, 7, 0xabcdfffe, 0x56780004, PG_W | PG_P, 0xabcdfffe,
		  0x56780004, 7 },
		{ "the same into a read-only user page", hx_w16_rep_insb, 7, 0xabcdfffe, 0x56780004, PG_U | PG_P,
		  0xabcdfffe, 0x56780004, 7 },
		{ "INSW at DI ffff (beyond the limit)", hx_w16_insw, 6, 0xffff, 0, PG_U | PG_W | PG_P, 0xffff, 0, 0x100 },
	};
	set_wp(false);
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(code, 0xcc, 4096);
		memcpy(code, c[i].snippet, c[i].len);
		memset(R0, 0xa1, 4096), memset(R2, 0xa1, 4096);
		pt0[0x1f] = (uint32_t)pa(R0) | (uint32_t)c[i].r0_flags;
		vm.r.rdx = 0xcfc;
		vm.r.rdi = c[i].di;
		vm.r.rcx = c[i].cx;
		vm_at(code, RFLAGS_FIXED | RFLAGS_VM | RFLAGS_IOPL);
		vmw(GUEST_RIP, 0);
		uint32_t rs = vm_go();
		bool wrote = R0[0xffe] == 0x86 && R0[0xfff] == 0x86 && R2[0] == 0x86 && R2[1] == 0x86;
		say("virtual-8086 mode, %s: exit %u (%s) at IP+%llx, vector %u, error code %x, EDI %x, ECX %x; %s", c[i].what,
		    rs, exit_name(rs), (unsigned long long)vm.x.rip, rs == EXIT_EXC_NMI ? vm.x.intr_info & 0xff : 0,
		    rs == EXIT_EXC_NMI ? vm.x.intr_err : 0, (uint32_t)vm.r.rdi, (uint32_t)vm.r.rcx,
		    wrote ? "the bytes on both sides of the wrap" : all(R0, 4096, 0xa1) && all(R2, 4096, 0xa1) ?
									 "nothing written" :
									 "OTHER BYTES WRITTEN");
		bool regs = (uint32_t)vm.r.rdi == c[i].want_di && (uint32_t)vm.r.rcx == c[i].want_cx;
		if (c[i].err == ~0u)
			CHECK(rs == EXIT_VMCALL && regs && wrote && all(R0, 0xffe, 0xa1) && all(R2 + 2, 4094, 0xa1), "%s",
			      c[i].what);
		else if (c[i].err == 0x100)
			CHECK(rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == EXC_GP && (vm.x.intr_info & 0x800) &&
				      vm.x.intr_err == 0 && regs && all(R0, 4096, 0xa1) && all(R2, 4096, 0xa1),
			      "%s: #GP(0)", c[i].what);
		else
			CHECK(rs == EXIT_EXC_NMI &&
				      (vm.x.intr_info & 0xff) == EXC_PF && vm.x.intr_err == c[i].err && vm.x.qual == 0x1fffe &&
				      regs && all(R0, 4096, 0xa1) && all(R2, 4096, 0xa1),
			      "%s: #PF(%x)", c[i].what, c[i].err);
	}
	set_wp(true);
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- string stores into memory that is not RAM, in real mode ----------------- */

extern const char hx_w16_rep_stosw[], hx_w16_a32_rep_stosw[];

/* A real-mode L2 (ES based at a page that is not RAM, 64 KiB of it at
 * every depth) storing words there: the Nestors below emulate every
 * element (16-bit code decoded as such, vmx/exit_ept.c string_store),
 * with 16-bit addresses wrapping in 64 KiB and DI/CX updated alone; with
 * 32-bit addresses the element past the limit 0xffff is #GP(0) (SDM Vol.
 * 3A 20.1.3; bit 11 of the exit's interruption information not compared,
 * see walk_real_mode). */
HX_TEST(stores_nonram_real)
{
	if (!hx_l2_begin())
		return;
	if (!l2_real_mode())
		return;
	vmw(GUEST_ES_BASE, hx_nonram_page());
	static const struct {
		const char *what;
		const char *code;
		uint32_t edi, ecx, want_edi, want_ecx;
		bool gp;
	} c[] = {
		{ "REP STOSW of 3 words from DI fffc (wraps)", hx_w16_rep_stosw, 0xabcdfffc, 0x56780003, 0xabcd0002,
		  0x56780000, false },
		{ "REP STOSW of 3 words from EDI fffc, 32-bit addresses", hx_w16_a32_rep_stosw, 0xfffc, 3, 0x10000, 1,
		  true },
	};
	for (unsigned i = 0; i < 2; i++) {
		vm.r.rax = 0x7b7b;
		vm.r.rdi = c[i].edi;
		vm.r.rcx = c[i].ecx;
		uint32_t rs = run16(c[i].code, RFLAGS_FIXED);
		say("real mode, %s into not RAM: exit %u (%s) at IP+%ld, interruption information %x (bit 11 aside), "
		    "EDI %x, ECX %x",
		    c[i].what, rs, exit_name(rs), ip_off(c[i].code), rs == EXIT_EXC_NMI ? vm.x.intr_info & ~0x800u : 0,
		    (uint32_t)vm.r.rdi, (uint32_t)vm.r.rcx);
		CHECK((c[i].gp ? rs == EXIT_EXC_NMI && (vm.x.intr_info & ~0x800u) == 0x8000030d : rs == EXIT_VMCALL) &&
			      (uint32_t)vm.r.rdi == c[i].want_edi && (uint32_t)vm.r.rcx == c[i].want_ecx,
		      "%s", c[i].what);
	}
	hx_l2_end();
}

/* --- paging structures in memory that is not RAM ----------------------------- */

/* An L2 whose paging structure lies in memory that is not RAM reads its
 * entries as all ones (as a PC reads such memory), so present with
 * reserved bits set in 4-level paging (bits 51:MAXPHYADDR): #PF(RSVD, W,
 * P) (SDM 4.7).  The Nestors below read it as ones too. */
HX_TEST(walk_tables_nonram)
{
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0];
	memset(A, 0xa1, 4096);
	outl(0xcf8, PCI_ID_ADDR);
	memcpy(w_pml4, (const void *)(read_cr3() & ~0xfffull), 4096);
	w_pml4[3] = hx_nonram_page() | PG_W | PG_P;
	vmw(GUEST_CR3, pa(w_pml4));
	uint32_t rs = ins2(hx_l2_rep_insb, W3 + 0x10, RFLAGS_FIXED);
	say("4-level paging, the PDPT in memory that is not RAM: %s; PML4E A %u", outcome(rs, hx_l2_rep_insb, W3 + 0x10, 0),
	    (unsigned)!!(w_pml4[3] & PG_A));
	CHECK(is_pf(rs, 0xb, W3 + 0x10), "#PF(RSVD, W, P) expected");
	/* 32-bit paging: a page table there gives PTEs of all ones, a present
	 * writable user page at 0xfffff000 (no bit of a 4-byte PTE is
	 * reserved): REP OUTSB reads through it. */
	legacy32_begin();
	pd32[770] = (uint32_t)hx_nonram_page() | (uint32_t)(PG_W | PG_P); /* PS clear: a page table */
	uint64_t gla = 0xc0800010u;
	rs = outs2(hx_l2_c32_rep_outsb, gla, RFLAGS_FIXED);
	say("32-bit paging, a page table in memory that is not RAM, REP OUTSB through it: %s, ESI +%llx",
	    outcome(rs, hx_l2_c32_rep_outsb, 0, 0), (unsigned long long)((uint32_t)vm.r.rsi - gla));
	CHECK(is_done(rs) && (uint32_t)vm.r.rsi == gla + 2, "the PTE of ones maps a page");
	pd32[770] = 0;
	CHECK(all(A, 4096, 0xa1), "nothing written to A");
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- L1's EPT accessed and dirty flags ------------------------------------------ */

/* With EPT A/D on (EPTP bit 6), every EPT entry used to translate a
 * guest-physical address gets its accessed flag (bit 8), the leaf its
 * dirty flag (bit 9) on a write - and the L2's own paging-structure
 * accesses count as writes (SDM Vol. 3C 28.3.5, 28.3.3.2; on 8f49773 the
 * Nestors below set no dirty flag for them).  An emulated REP INSB of
 * the L2 (4-level paging: its PDPT, PD, PT and the page in hx_pages, each
 * under a 4 KiB EPT entry of L1's) and a REP OUTSB must leave L1's EPT as
 * the CPU does. */
HX_TEST(walk_ept_ad)
{
	if (!hx_l2_begin())
		return;
	bool ad = vcaps.ept_vpid & CAP_EPT_AD;
	env("EPT A/D %s", ad ? "offered" : "not offered");
	if (!ad) {
		say("EPT accessed and dirty flags: not tested (not offered)");
		hx_l2_end();
		return;
	}
	uint8_t *A = hx_pages[0], *B = hx_pages[1];
	uint64_t *pt = (uint64_t *)hx_pages[3], *pdpt = (uint64_t *)hx_pages[4], *pd = (uint64_t *)hx_pages[5];
	memcpy(w_pml4, (const void *)(read_cr3() & ~0xfffull), 4096);
	memset(pdpt, 0, 4096), memset(pd, 0, 4096), memset(pt, 0, 4096);
	w_pml4[3] = pa(pdpt) | PG_W | PG_P;
	pdpt[0] = pa(pd) | PG_W | PG_P;
	pd[0] = pa(pt) | PG_W | PG_P;
	pt[0] = pa(A) | PG_W | PG_P;
	pt[1] = pa(B) | PG_W | PG_P;
	vmw(GUEST_CR3, pa(w_pml4));
	vmw(EPT_POINTER, hx_eptp() | (1ull << 6));
	const uint64_t epte_ad = 3ull << 8;
	uint8_t *const pages[4] = { (uint8_t *)pdpt, (uint8_t *)pd, (uint8_t *)pt, A };
	static const char *const names[4] = { "PDPT", "PD", "PT", "page" };
	outl(0xcf8, PCI_ID_ADDR);
	for (int out = 0; out < 2; out++) {
		for (unsigned i = 0; i < 4; i++)
			*hx_ept_pte(pa(pages[i])) &= ~epte_ad;
		*hx_ept_pte(pa(B)) &= ~epte_ad;
		/* The L2's own flags set already: only EPT's are in question. */
		w_pml4[3] |= PG_A, pdpt[0] |= PG_A, pd[0] |= PG_A, pt[0] |= PG_AD, pt[1] |= PG_AD;
		hx_ept_flush();
		uint64_t gla = W3 + (out ? 0x1020 : 0x10);
		uint32_t rs = out ? outs2(hx_l2_rep_outsb, gla, RFLAGS_FIXED) :
				    ins2(hx_l2_rep_insb, gla, RFLAGS_FIXED);
		char flags[128], *o = flags;
		for (unsigned i = 0; i < 4; i++) {
			uint64_t e = *hx_ept_pte(pa(i == 3 && out ? B : pages[i]));
			o += ksnprintf(o, sizeof(flags) - (size_t)(o - flags), "%s%s A %u D %u", i ? ", " : "", names[i],
				       (unsigned)((e >> 8) & 1), (unsigned)((e >> 9) & 1));
		}
		say("REP %s, EPT A/D on: %s; L1's EPT PTEs: %s", out ? "OUTSB" : "INSB",
		    outcome(rs, out ? (const void *)hx_l2_rep_outsb : (const void *)hx_l2_rep_insb, gla, 0), flags);
		bool ok = is_done(rs);
		for (unsigned i = 0; i < 4; i++) {
			uint64_t e = *hx_ept_pte(pa(i == 3 && out ? B : pages[i]));
			bool want_d = i < 3 || !out;
			ok = ok && (e & (1ull << 8)) && !!(e & (1ull << 9)) == want_d;
		}
		CHECK(ok, "accessed everywhere, dirty for the paging structures and a written page");
	}
	/* The PT read-only in L1's EPT: reading the PTE is a write for it, an
	 * EPT violation with bit 1 (write) set in its qualification and bit 8
	 * clear (not the final translation).  The SDM (table 28-7) sets bit 0
	 * too for such an access, as the Nestors below do; Bochs 2.7 does
	 * not: bit 0 is left out of the comparison. */
	*hx_ept_pte(pa(pt)) = pa(pt) | EPT_WB | EPT_R | EPT_X;
	hx_ept_flush();
	uint32_t rs = ins2(hx_l2_rep_insb, W3 + 0x10, RFLAGS_FIXED);
	say("the PT read-only in L1's EPT, EPT A/D on, REP INSB: %s, at the PTE %s, qualification %llx (bit 0 aside)",
	    hx_exit_str(rs, hx_l2_rep_insb), vm.x.gpa == pa(pt) ? "yes" : "NO",
	    (unsigned long long)(vm.x.qual & 0x1fe));
	CHECK(rs == EXIT_EPT_VIOLATION && vm.x.gpa == pa(pt) && (vm.x.qual & 0x1fe) == 0xaa && vm.x.gla == W3 + 0x10,
	      "EPT violation: a write to a paging-structure entry (R and X granted, linear address valid)");
	*hx_ept_pte(pa(pt)) = pa(pt) | EPT_WB | EPT_R | EPT_W | EPT_X;
	hx_ept_flush();
	outl(0xcf8, 0);
	hx_l2_end();
}

/* The same walk with page-modification logging (SDM Vol. 3C 28.3.6): every
 * EPT dirty flag set, the L2's paging-structure pages' included, writes
 * the page's guest-physical address at the PML index, which counts down.
 * Every other EPT entry is made accessed and dirty first, so that the
 * log holds exactly the walk's pages, in the order the walk dirties them
 * (PDPT, PD, PT, then the page).  (Bochs 2.7 logs the address with its
 * offset where the SDM clears bits 11:0: compared page-aligned.) */
HX_TEST(walk_ept_pml)
{
	if (!hx_l2_begin())
		return;
	if (!(vcaps.ept_vpid & CAP_EPT_AD) || !((vcaps.proc2 >> 32) & PROC2_PML)) {
		say("page-modification logging: not tested (not offered)");
		hx_l2_end();
		return;
	}
	uint8_t *A = hx_pages[0], *log = hx_pages[2];
	uint64_t *pt = (uint64_t *)hx_pages[3], *pdpt = (uint64_t *)hx_pages[4], *pd = (uint64_t *)hx_pages[5];
	memcpy(w_pml4, (const void *)(read_cr3() & ~0xfffull), 4096);
	memset(pdpt, 0, 4096), memset(pd, 0, 4096), memset(pt, 0, 4096), memset(log, 0, 4096);
	w_pml4[3] = pa(pdpt) | PG_W | PG_P | PG_A;
	pdpt[0] = pa(pd) | PG_W | PG_P | PG_A;
	pd[0] = pa(pt) | PG_W | PG_P | PG_A;
	pt[0] = pa(A) | PG_W | PG_P | PG_AD;
	vmw(GUEST_CR3, pa(w_pml4));
	const uint64_t epte_ad = 3ull << 8;
	for (uint64_t g = 0; g < (4ull << 30); g += 2ull << 20)
		*hx_ept_entry(2, g) |= epte_ad;
	for (uint64_t k = 0; k < 512; k++)
		*hx_ept_pte((pa(hx_pages) & ~0x1fffffull) + k * 4096) |= epte_ad;
	uint8_t *const pages[4] = { (uint8_t *)pdpt, (uint8_t *)pd, (uint8_t *)pt, A };
	for (unsigned i = 0; i < 4; i++)
		*hx_ept_pte(pa(pages[i])) &= ~epte_ad;
	vmw(EPT_POINTER, hx_eptp() | (1ull << 6));
	hx_ept_flush();
	vm_ctl(PROC2_CTLS, PROC2_PML, 0);
	vmw(PML_ADDR, pa(log));
	vmw(GUEST_PML_INDEX, 511);
	outl(0xcf8, PCI_ID_ADDR);
	uint32_t rs = ins2(hx_l2_rep_insb, W3 + 0x10, RFLAGS_FIXED);
	unsigned index = (unsigned)vmr(GUEST_PML_INDEX) & 0xffff;
	const uint64_t *e = (const uint64_t *)log;
	static const char *const names[4] = { "PDPT", "PD", "PT", "page" };
	char got[128], *o = got;
	unsigned n = index < 511 ? 511 - index : 0;
	bool order = n == 4;
	for (unsigned i = 0; i < n && i < 8; i++) {
		uint64_t p = e[511 - i] & ~0xfffull;
		const char *what = "OTHER";
		for (unsigned k = 0; k < 4; k++)
			if (p == pa(pages[k]))
				what = names[k];
		order = order && i < 4 && p == pa(pages[i]);
		o += ksnprintf(o, sizeof(got) - (size_t)(o - got), "%s%s", i ? ", " : "", what);
	}
	if (!n)
		ksnprintf(got, sizeof(got), "nothing");
	say("REP INSB, EPT A/D and PML on: %s; PML index %u, logged: %s", outcome(rs, hx_l2_rep_insb, W3 + 0x10, 0), index,
	    got);
	CHECK(is_done(rs) && order, "the PDPT, PD, PT and page logged in that order");
	vm_ctl(PROC2_CTLS, 0, PROC2_PML);
	outl(0xcf8, 0);
	hx_l2_end();
}

/* --- protection keys --------------------------------------------------------- */

static void wrpkru(uint32_t v) { __asm__ volatile("wrpkru" : : "a"(v), "c"(0), "d"(0) : "memory"); }

/* SDM 4.6.2: with CR4.PKE, IA-32e paging and a user page, PKRU's bits for
 * the page's key (bits 62:59 of the leaf) govern data accesses: access-
 * disable (bit 2k) any access, write-disable (bit 2k+1) user writes and
 * supervisor writes with CR0.WP; a refusal is #PF with PK (bit 5).
 * Fetches are never checked.  PKRU is not VMCS state: L1 and its L2 share
 * it, and the Nestors below read it as it is when they walk the L2's tables
 * (vmx/guest_mem.c read_pkr).  Not compared, Bochs 2.7 deviating
 * (docs/testing.md): access-disable for supervisor accesses, PKRU on
 * supervisor pages. */
HX_TEST(walk_pkeys)
{
	bool pku = cpuid(7, 0).ecx & (1u << 3);
	env("protection keys %s", pku ? "present" : "absent");
	if (!pku) {
		say("no protection keys: not run");
		return;
	}
	if (!hx_l2_begin())
		return;
	uint8_t *A = hx_pages[0];
	uint8_t *u = hx_map4k(4, pa(A), HX_PTE_P | HX_PTE_W | HX_PTE_U | (1ull << 59)); /* key 1 */
	uint64_t my_cr4 = read_cr4(), cr0 = vmr(GUEST_CR0), cr4 = vmr(GUEST_CR4);
	/* L1 needs CR4.PKE for WRPKRU, after every exit too (host CR4). */
	write_cr4(my_cr4 | CR4_PKE);
	vmw(HOST_CR4, my_cr4 | CR4_PKE);
	outl(0xcf8, PCI_ID_ADDR);
	static const struct {
		const char *what;
		uint32_t pkru;
		bool pke, wp, cpl3, outs;
		uint32_t err; /* 0: done */
	} t[] = {
		{ "PKRU 0, CPL 0 INS into a user page of key 1", 0, true, true, false, false, 0 },
		{ "PKRU WD1, CR0.WP=1, CPL 0 INS", 0x8, true, true, false, false, 0x23 },
		{ "PKRU WD1, CR0.WP=0, CPL 0 INS", 0x8, true, false, false, false, 0 },
		{ "PKRU WD1, CR0.WP=0, CPL 3 INS", 0x8, true, false, true, false, 0x27 },
		{ "PKRU WD1, CPL 3 OUTS", 0x8, true, true, true, true, 0 },
		{ "PKRU AD1, CPL 3 OUTS", 0x4, true, true, true, true, 0x25 },
		{ "PKRU AD1, CPL 3 INS", 0x4, true, true, true, false, 0x27 },
		{ "PKRU AD1, CR4.PKE=0, CPL 3 INS", 0x4, false, true, true, false, 0 },
		{ "PKRU: every key but 1 disabled, CPL 3 INS", 0xfffffff3u, true, true, true, false, 0 },
	};
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(A, 0xa1, 4096);
		uint64_t c4 = t[i].pke ? cr4 | CR4_PKE : cr4 & ~(uint64_t)CR4_PKE;
		vmw(GUEST_CR4, c4);
		vmw(CR4_SHADOW, c4 & ~CR4_VMXE);
		set_wp(t[i].wp);
		/* CPL 3 in 64-bit mode, with IOPL 3 for the port. */
		vmw(GUEST_CS_SEL, t[i].cpl3 ? G_UCODE64 : G_KCODE64);
		vmw(GUEST_CS_AR, t[i].cpl3 ? 0xa0fb : 0xa09b);
		vmw(GUEST_SS_SEL, t[i].cpl3 ? G_UDATA : G_KDATA);
		vmw(GUEST_SS_AR, t[i].cpl3 ? 0xc0f3 : 0xc093);
		uint64_t gla = (uint64_t)u + 0x10, rflags = RFLAGS_FIXED | (t[i].cpl3 ? RFLAGS_IOPL : 0);
		wrpkru(t[i].pkru);
		uint32_t rs = t[i].outs ? outs2(hx_l2_rep_outsb, gla, rflags) : ins2(hx_l2_rep_insb, gla, rflags);
		wrpkru(0);
		const void *code = t[i].outs ? hx_l2_rep_outsb : hx_l2_rep_insb;
		say("%s: %s", t[i].what, outcome(rs, code, gla, 0));
		if (t[i].err)
			CHECK(is_pf(rs, t[i].err, gla) && all(A, 4096, 0xa1), "#PF(%x) expected", t[i].err);
		else
			CHECK(is_done(rs) && (t[i].outs || got_id(A, 0x10)), "the access goes through");
	}
	vmw(GUEST_CS_SEL, G_KCODE64);
	vmw(GUEST_CS_AR, 0xa09b);
	vmw(GUEST_SS_SEL, G_KDATA);
	vmw(GUEST_SS_AR, 0xc093);
	vmw(GUEST_CR4, cr4);
	vmw(CR4_SHADOW, cr4 & ~CR4_VMXE);
	vmw(GUEST_CR0, cr0);
	vmw(CR0_SHADOW, cr0);
	vmw(HOST_CR4, my_cr4);
	write_cr4(my_cr4);
	outl(0xcf8, 0);
	hx_l2_end();
}
