/* vmx_cet.c - the CET state across VM entries and exits (suite vmx_exits;
 * SDM 24.4.1, 26.2.2, 26.3.1.1, 26.3.2.1, 27.3.1, 27.5.1): "load CET state"
 * on entry loads IA32_S_CET, SSP and IA32_INTERRUPT_SSP_TABLE_ADDR from the
 * guest-state area, on exit from the host-state area; every exit saves the
 * guest's; without the controls the registers stay as they are, across
 * both.  SSP has no instruction to read it without shadow stacks, so it is
 * seen through the saved guest state: the SSP an L2 inherits from its host
 * is the one the previous exit loaded.  Then the checks of both areas. */
#include "guest/vmx.h"
#include "guest/test.h"
#include "lib/x86.h"

#define MSR_S_CET 0x6a2
#define MSR_ISST 0x6a8

/* Runs l2_cet (writing w to IA32_S_CET unless 0) and prints what the L2
 * read, what the exit saved and what the L1 has afterwards. */
static bool run(const char *what, uint64_t w)
{
	vm_at(l2_cet, RFLAGS_FIXED);
	vm.r.r8 = w;
	uint32_t rs = vm_go();
	if (rs != EXIT_VMCALL) {
		say("%s: exit %u (%s)", what, rs, rs == GO_FAILED ? vm.go.s : exit_name(rs));
		return false;
	}
	say("%s: L2 read S_CET %#llx ISST %#llx; saved S_CET %#llx SSP %#llx ISST %#llx; L1 has S_CET %#llx ISST %#llx",
	    what, (unsigned long long)vm.r.rbx, (unsigned long long)vm.r.rsi, (unsigned long long)vmr(GUEST_S_CET),
	    (unsigned long long)vmr(GUEST_SSP), (unsigned long long)vmr(GUEST_ISST),
	    (unsigned long long)rdmsr(MSR_S_CET), (unsigned long long)rdmsr(MSR_ISST));
	return true;
}

/* One entry with a field set to a bad value: its outcome, then the field
 * put back. */
static void bad(const char *what, uint32_t field, uint64_t val)
{
	uint64_t old = vmr(field);
	vmw(field, val);
	vm_at(l2_vmcall, RFLAGS_FIXED);
	uint32_t rs = vm_go();
	say("%s = %#llx: %s; L1 has S_CET %#llx ISST %#llx", what, (unsigned long long)val,
	    rs == GO_FAILED ? vm.go.s : exit_name(rs), (unsigned long long)rdmsr(MSR_S_CET),
	    (unsigned long long)rdmsr(MSR_ISST));
	vmw(field, old);
}

TEST(vmx_exits, cet_state)
{
	if (!vm_begin())
		return;
	bool cet = (cpuid(7, 0).ecx & (1u << 7)) || (cpuid(7, 0).edx & (1u << 20));
	if (vm_lacks(cet, "CET"))
		return;
	if (vm_lacks(!ctl_missing(vcaps.entry, ENTRY_LOAD_CET) && !ctl_missing(vcaps.exit, EXIT_LOAD_CET),
		     "load CET state"))
		return;
	uint64_t s_cet0 = rdmsr(MSR_S_CET), isst0 = rdmsr(MSR_ISST);
	wrmsr(MSR_S_CET, 0x12345000ull | (1u << 4));
	wrmsr(MSR_ISST, 0xffff800000abc000ull);
	/* Neither control: the L2 has the L1's registers, the L1 the L2's. */
	CHECK(run("no loading", 0x5000), "entry and exit without loading");
	/* The entry loads. */
	vm_ctl(ENTRY_CTLS, ENTRY_LOAD_CET, 0);
	vmw(GUEST_S_CET, 0x7ffff000ull | (1u << 5));
	vmw(GUEST_SSP, 0x1000);
	vmw(GUEST_ISST, 0x00007fffffff0000ull);
	CHECK(run("entry loads", 0xfffffffffffff000ull | (1u << 4)), "entry loading");
	CHECK(run("entry loads again, L2 writes nothing", 0), "entry loading again");
	/* The exit loads. */
	vm_ctl(EXIT_CTLS, EXIT_LOAD_CET, 0);
	vmw(HOST_S_CET, 0x2000ull | (1u << 2) | (1u << 3));
	vmw(HOST_SSP, 0x2008);
	vmw(HOST_ISST, 0xffffffffffff0000ull);
	CHECK(run("both load", 0x3000), "entry and exit loading");
	/* The L2 inherits the SSP the exit loaded. */
	vm_ctl(ENTRY_CTLS, 0, ENTRY_LOAD_CET);
	CHECK(run("exit loads", 0), "exit loading");
	vm_ctl(ENTRY_CTLS, ENTRY_LOAD_CET, 0);
	/* Guest-state checks (SDM 26.3.1.1): a failed entry, L1's host state. */
	bad("guest S_CET reserved bit 6", GUEST_S_CET, 1u << 6);
	bad("guest S_CET reserved bit 9", GUEST_S_CET, 1u << 9);
	bad("guest S_CET bits 10 and 11", GUEST_S_CET, 3u << 10);
	bad("guest S_CET bit 10", GUEST_S_CET, 1u << 10);
	bad("guest S_CET not canonical", GUEST_S_CET, 1ull << 47);
	bad("guest SSP bit 0", GUEST_SSP, 0x1001);
	bad("guest SSP bit 1", GUEST_SSP, 0x1002);
	bad("guest SSP bit 2", GUEST_SSP, 0x1004);
	bad("guest SSP not canonical", GUEST_SSP, 0x0000800000000000ull);
	bad("guest ISST not canonical", GUEST_ISST, 0x0001000000000000ull);
	bad("guest ISST unaligned", GUEST_ISST, 0x1003);
	/* Host-state checks (SDM 26.2.2): VMfailValid(8). */
	bad("host S_CET reserved bit 7", HOST_S_CET, 1u << 7);
	bad("host S_CET bits 10 and 11", HOST_S_CET, 3u << 10);
	bad("host S_CET not canonical", HOST_S_CET, 0xffff7fffffff0000ull);
	bad("host SSP bit 1", HOST_SSP, 0x2002);
	bad("host SSP not canonical", HOST_SSP, 1ull << 50);
	bad("host ISST not canonical", HOST_ISST, 1ull << 48);
	/* Failed entries without "load CET state" on exit: L1 keeps its own
	 * registers when the guest state is refused, and has the L2's after a
	 * failure loading MSRs, which comes after the guest state is loaded. */
	vm_ctl(EXIT_CTLS, 0, EXIT_LOAD_CET);
	vmw(GUEST_S_CET, 0x44000);
	bad("guest SSP bit 0, exit not loading", GUEST_SSP, 0x1001);
	uint64_t *list = (uint64_t *)vmx_scratch;
	list[0] = 0x808; /* an x2APIC MSR: refused in the list (SDM 26.4) */
	list[1] = 0;
	vmw(ENTRY_MSR_LOAD_ADDR, pa(list));
	bad("MSR-load list of one x2APIC MSR, exit not loading", ENTRY_MSR_LOAD_COUNT, 1);
	/* The controls off again: no check of either area. */
	vm_ctl(ENTRY_CTLS, 0, ENTRY_LOAD_CET);
	vm_ctl(EXIT_CTLS, 0, EXIT_LOAD_CET);
	bad("guest S_CET reserved bit 6, no loading", GUEST_S_CET, 1u << 6);
	bad("host SSP bit 1, no loading", HOST_SSP, 0x2002);
	/* The L1 back to its values, its SSP to 0 through one more exit. */
	vm_ctl(EXIT_CTLS, EXIT_LOAD_CET, 0);
	vmw(HOST_S_CET, s_cet0);
	vmw(HOST_SSP, 0);
	vmw(HOST_ISST, isst0);
	CHECK(run("back", 0), "the L1's values back");
	vmx_end();
}
