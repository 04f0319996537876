/* hostile_msr.c - a guest hypervisor whose L2 and VMCS attack the MSRs of
 * the levels below (issue 11, attacks 2, 4, 5 and 6): an MTRR write from
 * L2 (level 0 rebuilt its EPT and wrote the pointer into the VMCS running
 * L2), VM-entry/VM-exit MSR-load lists applied to level 0's own MSRs, the
 * VM-exit MSR-store list storing level 0's MSRs, and MSR lists longer than
 * the CPU's recommended maximum. */
#include "guest/nestor.h"
#include "guest/test.h"
#include "guest/tests/hostile.h"
#include "lib/string.h"
#include "lib/x86.h"

struct msr_entry {
	uint32_t index, reserved;
	uint64_t value;
};

/* Up to 512 * 8 entries (IA32_VMX_MISC[27:25] = 7) plus one. */
#define MAX_ENTRIES (4096 + 1)
static struct msr_entry list_a[MAX_ENTRIES] __attribute__((aligned(16)));
static struct msr_entry list_b[MAX_ENTRIES] __attribute__((aligned(16)));
static struct msr_entry list_c[MAX_ENTRIES] __attribute__((aligned(16)));

/* --- 2. an MTRR write from L2 must not change the EPT L2 runs under ------- */

/* L2 rewrites MSR `msr` with its own value, then reads a page L1's EPT
 * does not map: the CPU gives L1 an EPT violation. */
static void mtrr_case(const char *what, uint32_t msr)
{
	uint8_t *page = hx_pages[0];
	*hx_ept_pte(pa(page)) = 0; /* not present for the L2 */
	hx_ept_flush();
	vm.r.rcx = msr;
	vm.r.rbx = pa(page) + 0x40;
	uint32_t rs = hx_run(hx_l2_wrmsr_read);
	bool wrote = rip_off(hx_l2_wrmsr_read) == 4; /* RDMSR, WRMSR done: at the load */
	say("%s: %s, qualification %llx, guest-physical page+%llx", what, hx_exit_str(rs, hx_l2_wrmsr_read),
	    (unsigned long long)vm.x.qual, (unsigned long long)(vm.x.gpa - pa(page)));
	CHECK(rs == EXIT_EPT_VIOLATION && wrote && vm.x.gpa == pa(page) + 0x40 && (vm.x.qual & 0x3f) == 1,
	      "%s: L1's EPT denies the read: EPT violation expected", what);
	*hx_ept_pte(pa(page)) = pa(page) | EPT_WB | EPT_R | EPT_W | EPT_X;
	hx_ept_flush();
}

HX_TEST(mtrr_write_from_l2)
{
	if (!hx_l2_begin())
		return;
	mtrr_case("MTRR_DEF_TYPE rewritten", MSR_IA32_MTRR_DEF_TYPE);
	/* A variable-range MTRR that is not in use (mask V = 0). */
	uint64_t cap = 0;
	rdmsr_safe(MSR_IA32_MTRRCAP, &cap);
	unsigned n = cap & 0xff, found = 0;
	for (unsigned i = 0; i < n && !found; i++) {
		uint64_t mask = 0;
		if (rdmsr_safe(0x201 + 2 * i, &mask) && !(mask & (1u << 11)))
			found = 0x201 + 2 * i;
	}
	if (found)
		mtrr_case("an unused variable-range MTRR mask rewritten", found);
	else
		say("no unused variable-range MTRR");
	/* And the L2 still runs under L1's EPT after a plain re-entry. */
	vm.r.rbx = pa(hx_pages[1]);
	*hx_ept_pte(pa(hx_pages[1])) = 0;
	hx_ept_flush();
	uint32_t rs = hx_run(hx_l2_read);
	say("a read denied by L1's EPT afterwards: %s", hx_exit_str(rs, hx_l2_read));
	CHECK(rs == EXIT_EPT_VIOLATION, "EPT violation expected");
	hx_l2_end();
}

/* --- 4. the VM-entry/VM-exit MSR-load lists are the L2's and L1's -------- */

/* Reads EFER, LSTAR, KERNEL_GS_BASE, STAR, SFMASK into R8..R12 (hostile_asm.S). */
extern const char hx_l2_read_msrs[];

static const uint64_t L2_LSTAR = 0xffff800011112000ull, L2_KGS = 0x0000123456789000ull,
		      L2_STAR = 0x0023001000000000ull, L2_FMASK = 0x4700;

HX_TEST(msr_load_lists)
{
	if (!hx_l2_begin())
		return;
	bool nx = cpuid(0x80000001, 0).edx & (1u << 20);
	uint64_t efer = rdmsr(MSR_EFER);
	uint64_t l1_lstar = rdmsr(MSR_LSTAR), l1_kgs = rdmsr(MSR_KERNEL_GS_BASE), l1_star = rdmsr(MSR_STAR),
		 l1_fmask = rdmsr(MSR_FMASK);
	/* The VMCS gives the L2 EFER.NXE; the entry list takes it away again
	 * (an EFER without NXE is what ended level 0 on 0613119). */
	uint64_t efer_vmcs = nx ? efer | EFER_NXE : efer, efer_list = efer & ~(uint64_t)EFER_NXE;
	vmw(GUEST_EFER, efer_vmcs);
	struct msr_entry *in = list_a, *out = list_b;
	memset(list_a, 0, 16 * 5);
	memset(list_b, 0, 16 * 3);
	in[0] = (struct msr_entry){ MSR_EFER, 0, efer_list };
	in[1] = (struct msr_entry){ MSR_LSTAR, 0, L2_LSTAR };
	in[2] = (struct msr_entry){ MSR_KERNEL_GS_BASE, 0, L2_KGS };
	in[3] = (struct msr_entry){ MSR_STAR, 0, L2_STAR };
	in[4] = (struct msr_entry){ MSR_FMASK, 0, L2_FMASK };
	/* The exit list gives L1 its LSTAR and KERNEL_GS_BASE back, not STAR
	 * and SFMASK (those keep the L2's values, as on a CPU). */
	out[0] = (struct msr_entry){ MSR_LSTAR, 0, l1_lstar };
	out[1] = (struct msr_entry){ MSR_KERNEL_GS_BASE, 0, l1_kgs };
	vmw(ENTRY_MSR_LOAD_ADDR, pa(in));
	vmw(ENTRY_MSR_LOAD_COUNT, 5);
	vmw(EXIT_MSR_LOAD_ADDR, pa(out));
	vmw(EXIT_MSR_LOAD_COUNT, 2);
	uint32_t rs = hx_run(hx_l2_read_msrs);
	say("entry list (EFER without NXE, LSTAR, KERNEL_GS_BASE, STAR, SFMASK): %s",
	    hx_exit_str(rs, hx_l2_read_msrs));
	CHECK(rs == EXIT_VMCALL, "the L2 runs to its VMCALL");
	say("the L2 read EFER %s the VMCS's (NXE %s), LSTAR %s, KERNEL_GS_BASE %s, STAR %s, SFMASK %s",
	    vm.r.r8 == efer_list ? "= the list's, not" : "!= the list's", (vm.r.r8 & EFER_NXE) ? "set" : "clear",
	    vm.r.r9 == L2_LSTAR ? "loaded" : "NOT LOADED", vm.r.r10 == L2_KGS ? "loaded" : "NOT LOADED",
	    vm.r.r11 == L2_STAR ? "loaded" : "NOT LOADED", vm.r.r12 == L2_FMASK ? "loaded" : "NOT LOADED");
	CHECK(vm.r.r8 == efer_list && vm.r.r9 == L2_LSTAR && vm.r.r10 == L2_KGS && vm.r.r11 == L2_STAR &&
		      vm.r.r12 == L2_FMASK,
	      "L2 MSRs: EFER %llx LSTAR %llx KGS %llx STAR %llx FMASK %llx", (unsigned long long)vm.r.r8,
	      (unsigned long long)vm.r.r9, (unsigned long long)vm.r.r10, (unsigned long long)vm.r.r11,
	      (unsigned long long)vm.r.r12);
	/* After the exit: EFER from the host-state area, LSTAR and
	 * KERNEL_GS_BASE from the exit list, STAR and SFMASK as the L2 left
	 * them; the VMCS saved the L2's EFER. */
	uint64_t e1 = rdmsr(MSR_EFER), g = vmr(GUEST_EFER);
	uint64_t lstar = rdmsr(MSR_LSTAR), kgs = rdmsr(MSR_KERNEL_GS_BASE), star = rdmsr(MSR_STAR),
		 fmask = rdmsr(MSR_FMASK);
	say("L1 after the exit: EFER %s, saved guest EFER %s, LSTAR %s, KERNEL_GS_BASE %s, STAR %s, SFMASK %s",
	    e1 == efer ? "its own" : "CHANGED", g == efer_list ? "the L2's" : "OTHER",
	    lstar == l1_lstar ? "its own" : "OTHER", kgs == l1_kgs ? "its own" : "OTHER",
	    star == L2_STAR ? "the L2's" : "OTHER", fmask == L2_FMASK ? "the L2's" : "OTHER");
	CHECK(e1 == efer && g == efer_list && lstar == l1_lstar && kgs == l1_kgs && star == L2_STAR &&
		      fmask == L2_FMASK,
	      "after the exit: EFER %llx saved %llx LSTAR %llx KGS %llx STAR %llx FMASK %llx", (unsigned long long)e1,
	      (unsigned long long)g, (unsigned long long)lstar, (unsigned long long)kgs, (unsigned long long)star,
	      (unsigned long long)fmask);
	wrmsr(MSR_STAR, l1_star);
	wrmsr(MSR_FMASK, l1_fmask);

	/* FS/GS base may not be loaded by a list: VM-entry failure (reason 34,
	 * qualification = the entry's number), the MSRs before it loaded. */
	in[0] = (struct msr_entry){ MSR_STAR, 0, L2_STAR };
	in[1] = (struct msr_entry){ MSR_GS_BASE, 0, 0x1000 };
	vmw(ENTRY_MSR_LOAD_COUNT, 2);
	vmw(EXIT_MSR_LOAD_COUNT, 0);
	vmw(GUEST_EFER, efer);
	rs = hx_run(hx_l2_read_msrs);
	say("entry list with GS_BASE as entry 2: %s; STAR %s", hx_exit_str(rs, hx_l2_read_msrs),
	    rdmsr(MSR_STAR) == L2_STAR ? "loaded" : "not loaded");
	CHECK(rs == (EXIT_FAILED_ENTRY | 34) && vm.x.qual == 2, "VM-entry failure 34 at entry 2 expected");
	wrmsr(MSR_STAR, l1_star);
	hx_l2_end();
}

/* --- 5. the VM-exit MSR-store list stores the L2's MSRs ------------------ */
extern const char hx_l2_wrmsr[];

HX_TEST(msr_store_list)
{
	if (!hx_l2_begin())
		return;
	bool nx = cpuid(0x80000001, 0).edx & (1u << 20);
	uint64_t efer = rdmsr(MSR_EFER), l1_kgs = rdmsr(MSR_KERNEL_GS_BASE);
	static const struct {
		uint32_t msr, field;
		uint64_t value;
		const char *name;
	} m[] = {
		{ MSR_GS_BASE, GUEST_GS_BASE, 0x0000700012340000ull, "GS_BASE" },
		{ MSR_FS_BASE, GUEST_FS_BASE, 0x0000600056780000ull, "FS_BASE" },
		{ MSR_KERNEL_GS_BASE, 0, 0x00005000abcd0000ull, "KERNEL_GS_BASE" },
		{ MSR_EFER, GUEST_EFER, 0, "EFER" },
		{ MSR_IA32_SYSENTER_CS, GUEST_SYSENTER_CS, 0x0000000000000033ull, "SYSENTER_CS" },
		{ MSR_IA32_SYSENTER_ESP, GUEST_SYSENTER_ESP, 0x0000400011110000ull, "SYSENTER_ESP" },
		{ MSR_IA32_SYSENTER_EIP, GUEST_SYSENTER_EIP, 0x0000300022220000ull, "SYSENTER_EIP" },
		{ MSR_IA32_PAT, GUEST_PAT, 0x0007010600070106ull, "PAT" },
	};
	const unsigned n = sizeof(m) / sizeof(m[0]);
	uint64_t want[8];
	struct msr_entry *st = list_a;
	for (unsigned i = 0; i < n; i++) {
		want[i] = m[i].msr == MSR_EFER ? (nx ? efer | EFER_NXE : efer & ~(uint64_t)EFER_SCE) : m[i].value;
		if (m[i].field)
			vmw(m[i].field, want[i]);
		st[i] = (struct msr_entry){ m[i].msr, 0, 0x5a5a5a5a5a5a5a5aull };
	}
	vmw(EXIT_MSR_STORE_ADDR, pa(st));
	vmw(EXIT_MSR_STORE_COUNT, n);
	/* The L2 writes KERNEL_GS_BASE itself (nothing switches it). */
	vm.r.rcx = MSR_KERNEL_GS_BASE;
	vm.r.rax = (uint32_t)want[2];
	vm.r.rdx = want[2] >> 32;
	uint32_t rs = hx_run(hx_l2_wrmsr);
	say("L2 with its own GS/FS base, EFER, SYSENTER, PAT: %s", hx_exit_str(rs, hx_l2_wrmsr));
	CHECK(rs == EXIT_VMCALL, "VMCALL exit expected");
	for (unsigned i = 0; i < n; i++) {
		say("store list entry %u, %s: %016llx (%s)", i + 1, m[i].name, (unsigned long long)st[i].value,
		    st[i].value == want[i] ? "the L2's" : "NOT THE L2's");
		CHECK(st[i].value == want[i] && st[i].index == m[i].msr, "%s stored %llx, the L2 had %llx", m[i].name,
		      (unsigned long long)st[i].value, (unsigned long long)want[i]);
	}
	wrmsr(MSR_KERNEL_GS_BASE, l1_kgs);
	hx_l2_end();
}

/* --- 6. MSR lists longer than the recommended maximum --------------------- */

/* One L2 run with the three lists `count` long (0: unused); the outcome. */
static uint32_t lists_run(uint32_t entry_n, uint32_t store_n, uint32_t load_n)
{
	uint64_t cs = rdmsr(MSR_IA32_SYSENTER_CS);
	for (uint32_t i = 0; i < MAX_ENTRIES; i++) {
		list_a[i] = (struct msr_entry){ MSR_IA32_SYSENTER_CS, 0, 0x10 };
		list_b[i] = (struct msr_entry){ MSR_IA32_SYSENTER_CS, 0, 0 };
		list_c[i] = (struct msr_entry){ MSR_IA32_SYSENTER_CS, 0, cs };
	}
	vmw(ENTRY_MSR_LOAD_ADDR, pa(list_a));
	vmw(ENTRY_MSR_LOAD_COUNT, entry_n);
	vmw(EXIT_MSR_STORE_ADDR, pa(list_b));
	vmw(EXIT_MSR_STORE_COUNT, store_n);
	vmw(EXIT_MSR_LOAD_ADDR, pa(list_c));
	vmw(EXIT_MSR_LOAD_COUNT, load_n);
	vmw(GUEST_SYSENTER_CS, 0x10);
	uint32_t rs = hx_run(l2_vmcall);
	return rs;
}

HX_TEST(msr_list_counts)
{
	if (!hx_l2_begin())
		return;
	uint32_t max = 512 * (uint32_t)(((vcaps.misc >> 25) & 7) + 1);
	say("recommended maximum: %u entries per list", max);
	/* At the maximum: a CPU loads and stores them all. */
	uint32_t rs = lists_run(max, max, max);
	say("%u entries in each list: %s; the store list holds %s", max, hx_exit_str(rs, l2_vmcall),
	    list_b[max - 1].value == 0x10 ? "the L2's SYSENTER_CS" : "SOMETHING ELSE");
	CHECK(rs == EXIT_VMCALL && list_b[max - 1].value == 0x10, "the lists at their maximum work");
	/* One more in one list: Bochs 2.7 takes any count (it has no maximum);
	 * a Nestor fails the entry (reason 34) rather than work without bound
	 * inside one exit. */
	static const char *const which[3] = { "VM-entry MSR-load", "VM-exit MSR-store", "VM-exit MSR-load" };
	for (int k = 0; k < 3; k++) {
		rs = lists_run(k == 0 ? max + 1 : 0, k == 1 ? max + 1 : 0, k == 2 ? max + 1 : 0);
		env("%s list with %u entries: %s", which[k], max + 1, hx_exit_str(rs, l2_vmcall));
		if (hx_nestor())
			CHECK((rs & 0xffff) == 34 && (rs & EXIT_FAILED_ENTRY),
			      "%s list beyond the maximum: VM-entry failure 34 expected", which[k]);
		else
			CHECK(rs == EXIT_VMCALL, "%s list: Bochs takes it", which[k]);
		say("%s list one entry beyond the maximum: tried, the run goes on", which[k]);
	}
	hx_l2_end();
}
