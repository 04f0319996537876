/* vmx_shadow.c - VMCS shadowing seen from the L2 (suite vmx_exits; SDM
 * 24.10, 26.2.1.1, 26.3.1.5, 30.3): with "VMCS shadowing", an L2's VMREAD
 * and VMWRITE of a field whose bit is clear in the VMREAD/VMWRITE bitmap
 * do not exit - they reach the shadow VMCS the link pointer references.
 * The L1 here fills a shadow VMCS, lets the L2 read and write it through
 * the bitmaps, and prints what the L2 got, what exits, and the errors. */
#include "guest/vmx.h"
#include "guest/test.h"
#include "lib/string.h"
#include "lib/x86.h"

static uint8_t shadow_vmcs[4096] __attribute__((aligned(4096)));
static uint8_t vmread_bits[4096] __attribute__((aligned(4096)));
static uint8_t vmwrite_bits[4096] __attribute__((aligned(4096)));
static uint64_t l2_quad; /* the L2's memory operand */

#define UNSUPPORTED_FIELD 0x7ffeu /* index 511: no CPU has it */

static void let_through(uint8_t *bits, uint32_t enc) { bits[enc / 8] &= (uint8_t)~(1u << (enc % 8)); }
static void make_exit(uint8_t *bits, uint32_t enc) { bits[enc / 8] |= (uint8_t)(1u << (enc % 8)); }

static const char *outcome(uint64_t rflags)
{
	return (rflags & RFLAGS_CF) ? "VMfailInvalid" : (rflags & RFLAGS_ZF) ? "VMfailValid" : "VMsucceed";
}

/* The shadow VMCS made current for a VMREAD or VMWRITE of the L1's own,
 * then vmcs_a again. */
static bool current(const uint8_t *page)
{
	struct vres r = vx(VX_VMPTRLD, pa(page), 0);
	CHECK(vr_ok(&r), "VMPTRLD: %s", r.s);
	return vr_ok(&r);
}
static uint64_t shadow_vmr(uint32_t enc)
{
	uint64_t v = current(shadow_vmcs) ? vmr(enc) : ~0ull;
	current(vmcs_a);
	return v;
}

/* Runs l2_shadow: read `rd` into RAX, write `val` into `wr`, read `rd2`
 * into l2_quad; prints the three outcomes. */
static uint32_t run(const char *what, uint64_t rd, uint64_t wr, uint64_t val, uint64_t rd2)
{
	vm_at(l2_shadow, RFLAGS_FIXED);
	vm.r.rbx = rd;
	vm.r.r8 = wr;
	vm.r.rdx = val;
	vm.r.r9 = rd2;
	vm.r.r10 = pa(&l2_quad);
	vm.r.rax = 0x5a5a;
	l2_quad = 0x5a5a;
	uint32_t rs = vm_go();
	if (rs != EXIT_VMCALL) {
		say("%s: exit %u (%s) at +%ld", what, rs, exit_name(rs), rip_off(l2_shadow));
		return rs;
	}
	say("%s: VMREAD %llx -> %s, RAX %llx; VMWRITE %llx <- %llx -> %s; VMREAD %llx to memory -> %s, %llx", what,
	    (unsigned long long)rd, outcome(vm.r.rcx), (unsigned long long)vm.r.rax, (unsigned long long)wr,
	    (unsigned long long)val, outcome(vm.r.rsi), (unsigned long long)rd2, outcome(vm.r.rdi),
	    (unsigned long long)l2_quad);
	return rs;
}

TEST(vmx_exits, shadow_vmcs)
{
	if (!vm_begin() || vm_lacks((rdmsr(MSR_VMX_PROCBASED2) >> 32) & PROC2_SHADOW_VMCS, "VMCS shadowing"))
		return;
	/* The shadow VMCS: a VMCS whose revision has bit 31 set (SDM 24.10),
	 * filled by the L1 while current. */
	vmcs_init_page(shadow_vmcs, vcaps.rev | 0x80000000u);
	struct vres r = vx(VX_VMCLEAR, pa(shadow_vmcs), 0);
	CHECK(vr_ok(&r), "VMCLEAR of the shadow VMCS: %s", r.s);
	if (!current(shadow_vmcs))
		return vmx_end();
	vmw(GUEST_CR3, 0x12345000);
	vmw(TSC_OFFSET, 0x1122334455667788ull);
	vmw(GUEST_ES_SEL, 0x2b);
	vmw(GUEST_RIP, 0xfedcba9876543210ull);
	if (!current(vmcs_a))
		return vmx_end();

	memset(vmread_bits, 0xff, sizeof(vmread_bits));
	memset(vmwrite_bits, 0xff, sizeof(vmwrite_bits));
	vm_ctl(PROC2_CTLS, PROC2_SHADOW_VMCS, 0);
	vmw(VMREAD_BITMAP, pa(vmread_bits));
	vmw(VMWRITE_BITMAP, pa(vmwrite_bits));

	/* VM-entry checks: the bitmaps' addresses (a control, VMfailValid 7),
	 * the link pointer's revision and shadow indicator (guest state). */
	vmw(VMREAD_BITMAP, pa(vmread_bits) + 0x10);
	uint32_t rs = vm_go();
	say("VMREAD bitmap address not 4 KiB aligned: %s", rs == GO_FAILED ? vm.go.s : exit_name(rs));
	CHECK(rs == GO_FAILED && vr_valid(&vm.go, 7), "expected VMfailValid(7)");
	vmw(VMREAD_BITMAP, pa(vmread_bits));
	vmw(VMWRITE_BITMAP, 1ull << 52);
	rs = vm_go();
	say("VMWRITE bitmap address beyond the physical-address width: %s", rs == GO_FAILED ? vm.go.s : exit_name(rs));
	CHECK(rs == GO_FAILED && vr_valid(&vm.go, 7), "expected VMfailValid(7)");
	vmw(VMWRITE_BITMAP, pa(vmwrite_bits));
	vmcs_init_page(vmcs_b, vcaps.rev);
	vmw(VMCS_LINK_PTR, pa(vmcs_b));
	rs = vm_go();
	say("link pointer to a VMCS without the shadow indicator: exit %u|%x (%s), qualification %llu", rs & 0xffff,
	    rs & EXIT_FAILED_ENTRY, exit_name(rs), (unsigned long long)vm.x.qual);
	CHECK(rs == (EXIT_FAILED_ENTRY | EXIT_BAD_GUEST) && vm.x.qual == 4, "expected an entry failure (link pointer)");

	/* No shadow VMCS (link pointer ~0): a VMREAD the bitmap lets through
	 * fails invalid; the L2 goes on. */
	vmw(VMCS_LINK_PTR, ~0ull);
	let_through(vmread_bits, GUEST_CR3);
	let_through(vmwrite_bits, GUEST_ES_SEL);
	let_through(vmread_bits, TSC_OFFSET + 1);
	rs = run("link pointer ~0", GUEST_CR3, GUEST_ES_SEL, 0x33, TSC_OFFSET + 1);
	CHECK(rs == EXIT_VMCALL && (vm.r.rcx & RFLAGS_CF) && (vm.r.rsi & RFLAGS_CF) && (vm.r.rdi & RFLAGS_CF) &&
		      vm.r.rax == 0x5a5a && l2_quad == 0x5a5a,
	      "expected VMfailInvalid three times");

	/* The shadow VMCS: reads and a write that do not exit. */
	vmw(VMCS_LINK_PTR, pa(shadow_vmcs));
	rs = run("shadow VMCS", GUEST_CR3, GUEST_ES_SEL, 0x123456789abc0063ull, TSC_OFFSET + 1);
	uint64_t es = shadow_vmr(GUEST_ES_SEL);
	say("the L1 reads the shadow VMCS's ES selector: %llx", (unsigned long long)es);
	CHECK(rs == EXIT_VMCALL && vm.r.rax == 0x12345000 && l2_quad == 0x11223344 && es == 0x63 &&
		      !(vm.r.rcx & (RFLAGS_CF | RFLAGS_ZF)) && !(vm.r.rsi & (RFLAGS_CF | RFLAGS_ZF)),
	      "shadow VMCS reads and writes");

	/* A field whose bit is set exits: the L1 emulates it and the L2 goes
	 * on.  Bits 63:15 of the encoding set exit whatever the bitmap. */
	make_exit(vmread_bits, GUEST_CR3);
	rs = run("VMREAD bit set", GUEST_CR3, GUEST_ES_SEL, 0x2b, TSC_OFFSET + 1);
	/* (The exit qualification of a register-operand VMREAD is undefined:
	 * Bochs leaves a stale displacement there.) */
	say("VMREAD bit set: exit %u (%s), instruction information %x, length %u", rs, exit_name(rs), vm.x.insn_info,
	    vm.x.len);
	CHECK(rs == EXIT_VMREAD && rip_off(l2_shadow) == 0, "expected a VMREAD exit at the first instruction");
	let_through(vmread_bits, GUEST_CR3);
	rs = run("encoding bit 32 set", (1ull << 32) | GUEST_CR3, GUEST_ES_SEL, 0x2b, TSC_OFFSET + 1);
	CHECK(rs == EXIT_VMREAD, "expected a VMREAD exit");
	make_exit(vmwrite_bits, GUEST_ES_SEL);
	rs = run("VMWRITE bit set", GUEST_CR3, GUEST_ES_SEL, 0x2b, TSC_OFFSET + 1);
	say("VMWRITE bit set: exit %u (%s), guest RIP +%ld, instruction information %x", rs, exit_name(rs),
	    rip_off(l2_shadow), vm.x.insn_info);
	CHECK(rs == 25, "expected a VMWRITE exit");
	let_through(vmwrite_bits, GUEST_ES_SEL);

	/* Errors: a field the CPU does not have (VMfailValid 12, recorded in
	 * the L1's current VMCS); a read-only field written (error 13 unless
	 * IA32_VMX_MISC[29]). */
	let_through(vmread_bits, UNSUPPORTED_FIELD);
	let_through(vmwrite_bits, EXIT_REASON);
	rs = run("unsupported field", UNSUPPORTED_FIELD, GUEST_ES_SEL, 0x2b, TSC_OFFSET + 1);
	say("VM-instruction error in the L1's VMCS: %llu", (unsigned long long)vmr(VM_INSN_ERROR));
	CHECK(rs == EXIT_VMCALL && (vm.r.rcx & RFLAGS_ZF) && vmr(VM_INSN_ERROR) == 12, "expected VMfailValid(12)");
	bool ro_ok = vcaps.misc & (1ull << 29);
	rs = run("exit reason written", GUEST_CR3, EXIT_REASON, 0x77, TSC_OFFSET + 1);
	say("VM-instruction error in the L1's VMCS: %llu; the shadow VMCS's exit reason %llx",
	    (unsigned long long)vmr(VM_INSN_ERROR), (unsigned long long)shadow_vmr(EXIT_REASON));
	CHECK(rs == EXIT_VMCALL && (ro_ok ? !(vm.r.rsi & RFLAGS_ZF) : vmr(VM_INSN_ERROR) == 13),
	      "read-only field against IA32_VMX_MISC[29]");
	/* The shadow VMCS cannot be entered (SDM 26.1) - not tried here:
	 * Bochs 2.7 enters it (docs/testing.md). */
	vmx_end();
}
