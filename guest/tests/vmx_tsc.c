/* vmx_tsc.c - the TSC an L2 reads (suite vmx_exits; SDM 25.3, 24.6.5):
 * with "use TSC offsetting", RDTSC and RDMSR of IA32_TSC give the TSC plus
 * the VMCS's offset; with "use TSC scaling" too, the TSC multiplied by the
 * multiplier (a fixed-point number, 48 fraction bits) first.  The values
 * themselves depend on time, so the L1 checks they fall between its own
 * RDTSCs around the VM entry and exit, offset and scaled likewise, and
 * prints whether they do. */
#include "guest/vmx.h"
#include "guest/test.h"
#include "lib/x86.h"

#define PROC_TSC_OFFSETTING (1u << 3)
#define PROC2_TSC_SCALING (1u << 25)
#define OFFSET (1ull << 44)

static uint64_t scaled(uint64_t tsc, uint64_t mult)
{
	return mult ? (uint64_t)(((unsigned __int128)tsc * mult) >> 48) : tsc;
}

/* Runs l2_tsc; true when both reads fall in the L1's window. */
static bool window(const char *what, uint64_t mult)
{
	vm_at(l2_tsc, RFLAGS_FIXED);
	uint64_t t0 = rdtsc();
	uint32_t rs = vm_go();
	uint64_t t1 = rdtsc();
	if (rs != EXIT_VMCALL) {
		say("%s: exit %u (%s)", what, rs, rs == GO_FAILED ? vm.go.s : exit_name(rs));
		return false;
	}
	uint64_t lo = scaled(t0, mult) + OFFSET, hi = scaled(t1, mult) + OFFSET;
	bool rdtsc_in = vm.r.rbx >= lo && vm.r.rbx <= hi, rdmsr_in = vm.r.rax >= lo && vm.r.rax <= hi;
	say("%s: RDTSC in the window %s, RDMSR IA32_TSC in the window %s, RDMSR after RDTSC %s", what,
	    rdtsc_in ? "yes" : "no", rdmsr_in ? "yes" : "no", vm.r.rax >= vm.r.rbx ? "yes" : "no");
	return rdtsc_in && rdmsr_in && vm.r.rax >= vm.r.rbx;
}

TEST(vmx_exits, tsc_offset_scaling)
{
	if (!vm_begin())
		return;
	vm_ctl(PROC_CTLS, PROC_TSC_OFFSETTING, 0);
	vmw(TSC_OFFSET, OFFSET);
	CHECK(window("offset 2^44", 0), "TSC with the offset");
	if (vm_lacks((rdmsr(MSR_VMX_PROCBASED2) >> 32) & PROC2_TSC_SCALING, "TSC scaling"))
		return;
	vm_ctl(PROC2_CTLS, PROC2_TSC_SCALING, 0);
	vmw(TSC_MULTIPLIER, 3ull << 47); /* 1.5 */
	CHECK(window("multiplier 1.5, offset 2^44", 3ull << 47), "TSC scaled and offset");
	vmw(TSC_MULTIPLIER, 1ull << 46); /* 0.25 */
	CHECK(window("multiplier 0.25, offset 2^44", 1ull << 46), "TSC scaled and offset");
	/* Scaling without offsetting: the TSC as it is. */
	vm_ctl(PROC_CTLS, 0, PROC_TSC_OFFSETTING);
	vm_at(l2_tsc, RFLAGS_FIXED);
	uint64_t t0 = rdtsc();
	uint32_t rs = vm_go();
	uint64_t t1 = rdtsc();
	bool raw = rs == EXIT_VMCALL && vm.r.rbx >= t0 && vm.r.rax <= t1;
	say("scaling without offsetting: the TSC unscaled %s", raw ? "yes" : "no");
	CHECK(raw, "the TSC as it is");
	vm_ctl(PROC_CTLS, PROC_TSC_OFFSETTING, 0);
	vmw(TSC_MULTIPLIER, 0);
	rs = vm_go();
	say("multiplier 0: %s", rs == GO_FAILED ? vm.go.s : exit_name(rs));
	vmx_end();
}
