/* hostile_vmx.c - VMCS states a CPU refuses that a Nestor must refuse too
 * (issue 11, attack 8): host CR4.CET = 1 with host CR0.WP = 0.
 *
 * SDM 26.2.2: "If bit 23 in the CR4 field (corresponding to CET) is 1, bit
 * 16 in the CR0 field (WP) must be 1" - VMfailValid(8).  On 0613119 a
 * Nestor let the entry through and ended level 0 at the next exit.  Bochs
 * 2.7 deviates: it checks the rule only with the "load CET state" exit
 * control, which Nestor does not offer; so at depth 0 the outcome is an
 * env() fact, and the SDM's answer is checked where a Nestor is below. */
#include "guest/nestor.h"
#include "guest/test.h"
#include "guest/tests/hostile.h"
#include "lib/x86.h"

HX_TEST(host_cet_without_wp)
{
	bool cet = (cpuid(7, 0).ecx & (1u << 7)) || (cpuid(7, 0).edx & (1u << 20));
	env("CET %s", cet ? "present" : "absent");
	if (!cet) {
		say("no CET on this CPU model: not tested");
		return;
	}
	if (!vm_begin())
		return;
	if (!(vcaps.cr4_fixed1 & CR4_CET)) {
		say("CR4.CET not allowed in VMX operation: not tested");
		vmx_end();
		return;
	}
	uint64_t cr0 = vmr(HOST_CR0), cr4 = vmr(HOST_CR4);
	vmw(HOST_CR4, cr4 | CR4_CET);
	vmw(HOST_CR0, cr0 & ~CR0_WP);
	vm_at(l2_vmcall, RFLAGS_FIXED);
	uint32_t rs = vm_go();
	env("VMLAUNCH with host CR4.CET=1, CR0.WP=0: %s", hx_exit_str(rs, l2_vmcall));
	if (hx_nestor())
		CHECK(rs == GO_FAILED && vr_valid(&vm.go, 8), "VMfailValid(8) expected: %s", vm.go.s);
	/* If the CPU took it (Bochs), the exit loaded them: put ours back. */
	write_cr4(read_cr4() & ~CR4_CET);
	write_cr0(read_cr0() | CR0_WP);
	say("VMLAUNCH with host CR4.CET=1 and CR0.WP=0: tried");
	/* The same VMCS with a valid host state enters and exits. */
	vmw(HOST_CR4, cr4);
	vmw(HOST_CR0, cr0);
	vm_at(l2_vmcall, RFLAGS_FIXED);
	rs = vm_go();
	say("with CR0.WP=1: %s", hx_exit_str(rs, l2_vmcall));
	CHECK(rs == EXIT_VMCALL, "VMCALL exit expected");
	vmx_end();
}

/* An IA-32e mode guest with CR0.PG clear (PE clear too, unrestricted
 * guest): SDM 26.3.1.1 fails the entry (reason 33).  Bochs 2.7 checks only
 * CR4.PAE and panics at the guest's first instruction - so at depth 0 the
 * entry is not tried, and where a Nestor is below it must give the
 * failure (it checks the rule itself: the CPU below may not). */
HX_TEST(ia32e_guest_without_paging)
{
	if (!hx_nestor()) {
		env("bare Bochs 2.7 panics on this entry: not tried");
		say("VMLAUNCH of an IA-32e mode guest with CR0.PG=0: checked where a Nestor is below");
		return;
	}
	if (!vm_begin())
		return;
	if (!(rdmsr(0x48b) & ((uint64_t)PROC2_UNRESTRICTED << 32))) {
		env("no unrestricted guest: not tried");
		say("VMLAUNCH of an IA-32e mode guest with CR0.PG=0: checked where a Nestor is below");
		vmx_end();
		return;
	}
	vm_ctl(PROC2_CTLS, PROC2_UNRESTRICTED | PROC2_EPT, 0);
	uint64_t cr0 = vmr(GUEST_CR0);
	vmw(GUEST_CR0, cr0 & ~(CR0_PG | CR0_PE));
	vm_at(l2_vmcall, RFLAGS_FIXED);
	uint32_t rs = vm_go();
	env("VMLAUNCH of an IA-32e mode guest with CR0.PG=0 PE=0: %s, qualification %llx", hx_exit_str(rs, l2_vmcall),
	    (unsigned long long)vm.x.qual);
	CHECK(rs == (EXIT_FAILED_ENTRY | EXIT_BAD_GUEST) && vm.x.qual == 0, "entry failure 33 expected");
	vmw(GUEST_CR0, cr0);
	vm_at(l2_vmcall, RFLAGS_FIXED);
	rs = vm_go();
	env("with CR0.PG=1 again: %s", hx_exit_str(rs, l2_vmcall));
	CHECK(rs == EXIT_VMCALL, "VMCALL exit expected");
	say("VMLAUNCH of an IA-32e mode guest with CR0.PG=0: checked where a Nestor is below");
	vmx_end();
}
