/* vmx_mtf.c - the monitor trap flag (suite vmx_exits; SDM 25.5.2, 26.2.1.3,
 * 26.6.2): a pending MTF VM exit injected by VM entry (event type 7, vector
 * 0) exits "monitor trap flag" (37) before the L2 runs an instruction,
 * also from the HLT state; type 7 needs vector 0.  Bochs 2.7 (tigerlake,
 * the one model with the flag) implements only that injection: with the
 * control set it never exits after an instruction, where the CPU exits
 * after each - those lines are environment facts (docs/testing.md). */
#include "guest/vmx.h"
#include "guest/test.h"
#include "lib/x86.h"

#define PROC_MTF (1u << 27)
#define EXIT_MTF 37
#define PENDING_MTF (INTR_VALID | (7u << 8))

TEST(vmx_exits, monitor_trap_flag)
{
	if (!vm_begin() || vm_lacks((rdmsr(MSR_VMX_TRUE_PROCBASED) >> 32) & PROC_MTF, "monitor trap flag"))
		return;
	vm_at(l2_cpuid, RFLAGS_FIXED);
	vmw(ENTRY_INTR_INFO, PENDING_MTF | 1);
	uint32_t rs = vm_go();
	say("pending MTF VM exit with vector 1: %s", rs == GO_FAILED ? vm.go.s : exit_name(rs));
	CHECK(rs == GO_FAILED && vr_valid(&vm.go, 7), "expected VMfailValid(7)");

	vmw(ENTRY_INTR_INFO, PENDING_MTF);
	rs = vm_go();
	say("pending MTF VM exit injected: exit %u (%s) at +%ld, qualification %llx; injection valid after it %s", rs,
	    exit_name(rs), rip_off(l2_cpuid), (unsigned long long)vm.x.qual,
	    (vmr(ENTRY_INTR_INFO) & INTR_VALID) ? "yes" : "no");
	CHECK(rs == EXIT_MTF && rip_off(l2_cpuid) == 0, "expected an MTF exit before the first instruction");
	rs = vm_go();
	say("resumed: exit %u (%s) at +%ld", rs, exit_name(rs), rip_off(l2_cpuid));
	CHECK(rs == EXIT_CPUID, "expected the CPUID exit");

	/* From the HLT state. */
	vm_at(l2_hlt, RFLAGS_FIXED);
	vmw(GUEST_ACTIVITY, 1);
	vmw(ENTRY_INTR_INFO, PENDING_MTF);
	rs = vm_go();
	say("pending MTF VM exit in the HLT state: exit %u (%s) at +%ld, activity state %llu", rs, exit_name(rs),
	    rip_off(l2_hlt), (unsigned long long)vm.x.activity);
	CHECK(rs == EXIT_MTF, "expected an MTF exit");
	vmw(GUEST_ACTIVITY, 0);

	/* The control: what Bochs 2.7 does is not what the CPU does. */
	vm_ctl(PROC_CTLS, PROC_MTF, 0);
	vm_at(l2_cpuid, RFLAGS_FIXED);
	rs = vm_go();
	env("monitor trap flag set, then CPUID: exit %u (%s) at +%ld", rs, exit_name(rs), rip_off(l2_cpuid));
	vm_at(l2_tsc, RFLAGS_FIXED);
	rs = vm_go();
	env("monitor trap flag set, then RDTSC, RDMSR of IA32_TSC (emulated by a Nestor below): exit %u (%s) at +%ld", rs,
	    exit_name(rs), rip_off(l2_tsc));
	vm_ctl(PROC_CTLS, 0, PROC_MTF);
	vmx_end();
}
