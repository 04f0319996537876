/* hostile_hc.c - hostile hypercalls: the VMX delegation calls of docs/depth.md
 * made by a guest that is no Nestor, with levels of its choice (issue 11,
 * attack 1).
 *
 * On 0613119 a depth-2 guest calling DELEGATE(0) then UNDELEGATE(0) resumed
 * with level 1's registers and level 1's VMCS12 current, and from depth 1
 * DELEGATE(0), DELEGATE(1), UNDELEGATE(1) ended level 0 ("VM entry failed:
 * VM-instruction error 5").  What a CPU shows a guest hypervisor: VMCALL
 * in VMX root operation is VMfailValid(1) (outside VMX operation #UD; Bochs
 * 2.7 panics on the former, so it is not attempted at depth 0); a
 * Nestor answers with a status instead (an env() fact) - but in every case
 * the caller's other registers, its current VMCS and the fields it wrote
 * stay as they were, and its own VMX works afterwards. */
#include "guest/nestor.h"
#include "guest/test.h"
#include "guest/tests/hostile.h"
#include "lib/string.h"
#include "lib/x86.h"

struct hx_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15, rflags;
};
void hx_vmcall_regs(const struct hx_regs *in, struct hx_regs *out);

/* The capability hash a Nestor offering this VMX computes (nested/caps.c):
 * FNV-1a 64 over the 17 MSRs in struct nested_caps order, little endian. */
static uint64_t caps_hash(void)
{
	static const uint32_t msrs[17] = { 0x480, 0x481, 0x482, 0x483, 0x484, 0x48d, 0x48e, 0x48f, 0x490,
					   0x485, 0x486, 0x487, 0x488, 0x489, 0x48a, 0x48b, 0x48c };
	uint64_t h = 0xcbf29ce484222325ull;
	for (int i = 0; i < 17; i++) {
		uint64_t v = 0;
		rdmsr_safe(msrs[i], &v);
		for (int b = 0; b < 8; b++)
			h = (h ^ ((v >> (8 * b)) & 0xff)) * 0x100000001b3ull;
	}
	return h;
}

struct call {
	struct hx_regs in, out;
};
static void call_fn(void *p)
{
	struct call *c = p;
	hx_vmcall_regs(&c->in, &c->out);
}

/* Arithmetic flags set before the call: a VMfail would change them. */
#define IN_FLAGS (RFLAGS_FIXED | RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_SF | RFLAGS_OF)

static const uint64_t FIELD_VALUE = 0x00005a5a12344321ull; /* written to GUEST_SYSENTER_ESP */

/* One delegation call; returns false if something the caller owns changed. */
static bool attack(const char *what, uint64_t fn, uint64_t rbx, uint64_t rcx, bool in_vmx)
{
	struct call c;
	memset(&c, 0, sizeof(c));
	uint64_t *in = &c.in.rax;
	for (int i = 0; i < 15; i++)
		in[i] = 0x1111111111111111ull * (uint64_t)(i + 1) ^ 0x0f0f0f0f00000000ull;
	c.in.rax = fn;
	c.in.rbx = rbx;
	c.in.rcx = rcx;
	c.in.rdx = 0;
	c.in.rsi = 0;
	c.in.rdi = 0;
	c.in.rflags = IN_FLAGS;
	struct fault f;
	memset(&f, 0, sizeof(f));
	bool hit = false;
	if (in_vmx && !hx_nestor()) {
		/* The SDM: VMfailValid(1), nothing else changes.  Bochs 2.7 panics
		 * ("VMCALL: not implemented yet"): not attempted on bare Bochs. */
		env("%s: not attempted (Bochs 2.7 panics on VMCALL in VMX root operation)", what);
		c.out = c.in;
	} else {
		hit = catch_fault(call_fn, &c, &f);
	}
	bool regs = true;
	const uint64_t *a = &c.in.rax, *b = &c.out.rax;
	for (int i = 1; i < 15 && !hit; i++)
		if (a[i] != b[i]) {
			regs = false;
			CHECK(a[i] == b[i], "%s: register %d was %llx, is %llx", what, i, (unsigned long long)a[i],
			      (unsigned long long)b[i]);
		}
	/* What the call did, as the environment below answers it. */
	char fs[24];
	if (hit)
		env("%s: %s", what, fault_str(fs, sizeof(fs), true, &f));
	else if (hx_nestor())
		env("%s: returned RAX %lld, RFLAGS %llx", what, (long long)c.out.rax,
		    (unsigned long long)c.out.rflags);
	if (!hx_nestor()) {
		/* The CPU: #UD outside VMX operation. */
		if (!in_vmx)
			CHECK(hit && f.vector == EXC_UD, "%s: VMCALL outside VMX operation: %s", what,
			      fault_str(fs, sizeof(fs), hit, &f));
	} else {
		/* A hypercall: a status in RAX, nothing else touched. */
		CHECK(!hit, "%s: the hypercall faulted: %s", what, fault_str(fs, sizeof(fs), hit, &f));
		CHECK((c.out.rflags & ~(uint64_t)RFLAGS_RF) == IN_FLAGS, "%s: RFLAGS %llx, were %llx", what,
		      (unsigned long long)c.out.rflags, (unsigned long long)IN_FLAGS);
		CHECK((int64_t)c.out.rax <= 0, "%s: status %lld", what, (long long)c.out.rax);
	}
	bool vmx_ok = true;
	if (in_vmx) {
		/* The caller's VMX: its current VMCS and a field it wrote. */
		struct vres p = vx(VX_VMPTRST, 0, 0);
		struct vres r = vx(VX_VMREAD, GUEST_SYSENTER_ESP, 0);
		vmx_ok = vr_ok(&p) && p.out == pa(vmcs_a) && vr_ok(&r) && r.out == FIELD_VALUE;
		CHECK(vmx_ok, "%s: VMPTRST %s %llx (vmcs_a %llx), VMREAD %s %llx", what, p.s, (unsigned long long)p.out,
		      (unsigned long long)pa(vmcs_a), r.s, (unsigned long long)r.out);
	}
	say("%s: other registers %s, VMX state %s", what, regs ? "kept" : "CHANGED",
	    !in_vmx ? "-" : vmx_ok ? "kept" : "CHANGED");
	return regs && vmx_ok;
}

HX_TEST(delegation_hypercalls)
{
	if (!vmx_prepare())
		return;
	uint64_t hash = caps_hash();
	env("VMX capability hash %016llx", (unsigned long long)hash);

	/* Outside VMX operation (a Nestor may take these from a level that is
	 * not running a guest yet). */
	attack("outside VMX: DELEGATE(0)", NESTOR_HC_DELEGATE_VMX, 0, hash, false);
	attack("outside VMX: UNDELEGATE(0)", NESTOR_HC_UNDELEGATE_VMX, 0, 0, false);
	attack("outside VMX: GUEST_INIT(0)", NESTOR_HC_GUEST_INIT, 0, 0, false);
	attack("outside VMX: GUEST_INIT(~0)", NESTOR_HC_GUEST_INIT, ~0ull, 0, false);
	/* An NMI for the guest of a level that did not delegate. */
	attack("outside VMX: GUEST_NMI(0)", NESTOR_HC_GUEST_NMI, 0, 0, false);
	vmx_end();

	/* In VMX operation with a current VMCS that has a field written. */
	if (!vm_begin())
		return;
	vmw(GUEST_SYSENTER_ESP, FIELD_VALUE);
	attack("DELEGATE(0)", NESTOR_HC_DELEGATE_VMX, 0, hash, true);
	attack("UNDELEGATE(0)", NESTOR_HC_UNDELEGATE_VMX, 0, 0, true);
	attack("DELEGATE(0) again", NESTOR_HC_DELEGATE_VMX, 0, hash, true);
	/* An INIT for the guest of a level that delegated (or did not): its
	 * guest is not in VMX operation, or the level is out of range. */
	attack("GUEST_INIT(0)", NESTOR_HC_GUEST_INIT, 0, 0, true);
	attack("GUEST_INIT(1)", NESTOR_HC_GUEST_INIT, 1, 0, true);
	attack("GUEST_INIT(~0)", NESTOR_HC_GUEST_INIT, ~0ull, 0, true);
	/* NMIs for a level that does not exist or did not delegate (one for our
	 * own guest, GUEST_NMI(0), would be delivered to it: not an attack). */
	attack("GUEST_NMI(1)", NESTOR_HC_GUEST_NMI, 1, 0, true);
	attack("GUEST_NMI(~0)", NESTOR_HC_GUEST_NMI, ~0ull, 0, true);
	attack("DELEGATE(1)", NESTOR_HC_DELEGATE_VMX, 1, hash, true);
	attack("UNDELEGATE(1)", NESTOR_HC_UNDELEGATE_VMX, 1, 0, true);
	attack("UNDELEGATE(0) again", NESTOR_HC_UNDELEGATE_VMX, 0, 0, true);
	attack("UNDELEGATE(2)", NESTOR_HC_UNDELEGATE_VMX, 2, 0, true);
	attack("DELEGATE(2)", NESTOR_HC_DELEGATE_VMX, 2, hash, true);
	attack("DELEGATE(~0)", NESTOR_HC_DELEGATE_VMX, ~0ull, hash, true);
	attack("UNDELEGATE(0) at last", NESTOR_HC_UNDELEGATE_VMX, 0, 0, true);

	/* The guest's own VMX still works: an L2 with a CPUID exit. */
	vm_at(l2_cpuid, RFLAGS_FIXED);
	vm.r.rax = 0;
	vm.r.rcx = 0;
	uint32_t rs = vm_go();
	say("afterwards, an L2: %s", hx_exit_str(rs, l2_cpuid));
	CHECK(rs == EXIT_CPUID && rip_off(l2_cpuid) == 0, "CPUID exit expected");
	if (rs == EXIT_CPUID) {
		vm.r.rax = 0x1234;
		vm.r.rbx = 0x5678;
		vm_skip();
		rs = vm_go();
		say("resumed: %s, RAX %llx RBX %llx", hx_exit_str(rs, l2_cpuid), (unsigned long long)vm.r.rax,
		    (unsigned long long)vm.r.rbx);
		CHECK(rs == EXIT_VMCALL && vm.r.rax == 0x5678 && vm.r.rbx == 0x1234, "the L2 swaps RAX and RBX");
	}
	vmx_end();
}
