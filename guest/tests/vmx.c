/* vmx.c - conformance of the VMX instructions (suite vmx).
 *
 * The guest kernel acts as a hypervisor: VMXON/VMXOFF, the VMCS pointer
 * instructions, VMREAD/VMWRITE, the launch state, the checks VM entry makes
 * on the controls, the host state and the guest state, INVEPT/INVVPID.
 * Every attempt prints its outcome (VMsucceed, VMfailInvalid,
 * VMfailValid(N), #UD, #GP(0), exit reason and qualification) and checks
 * what the SDM requires.  The same kernel runs on Bochs' VMX (depth 0) and
 * on Nestor's emulated VMX (depth 1): the capability MSRs and whatever
 * depends on them are printed with env() only, and every control value is
 * computed from the MSRs.  Each test leaves VMX operation and restores CR0,
 * CR4, GDTR, IDTR. */
#include "guest/nestor.h"
#include "guest/vmx.h"
#include "guest/test.h"
#include "lib/format.h"
#include "lib/string.h"
#include "lib/x86.h"

static bool is_gp0(const struct vres *r) { return vr_fault(r, EXC_GP, 0); }
static bool is_ud(const struct vres *r) { return vr_fault(r, EXC_UD, 0); }

struct crw {
	int cr;
	uint64_t v;
};
static void crw_fn(void *p)
{
	struct crw *w = p;
	if (w->cr == 0)
		write_cr0(w->v);
	else
		write_cr4(w->v);
}
/* Writes CR0 or CR4; returns the outcome ("ok", "#GP(0)"). */
static const char *try_cr(int cr, uint64_t v, char *buf, size_t n, bool *gp0)
{
	struct crw w = { cr, v };
	struct fault f;
	bool hit = catch_fault(crw_fn, &w, &f);
	*gp0 = hit && f.vector == EXC_GP && f.error_code == 0;
	return fault_str(buf, n, hit, &f);
}

static unsigned low_zero(uint32_t allowed1)
{
	for (unsigned i = 0; i < 32; i++)
		if (!((allowed1 >> i) & 1))
			return i;
	return 32;
}
static unsigned low_one(uint32_t allowed0)
{
	for (unsigned i = 0; i < 32; i++)
		if ((allowed0 >> i) & 1)
			return i;
	return 32;
}

/* --- capabilities -------------------------------------------------------------- */
TEST(vmx, caps)
{
	bool cpu = (cpuid(1, 0).ecx >> 5) & 1;
	say("CPUID.1:ECX.VMX %u", cpu);
	CHECK(cpu, "VMX not reported");
	if (!vmx_read_caps()) {
		say("VMX capability MSRs not readable");
		CHECK(false, "no VMX MSRs");
		return;
	}
	uint64_t fc = vcaps.feature_control, b = vcaps.basic;
	say("IA32_FEATURE_CONTROL: locked %u, VMX outside SMX %u", (unsigned)(fc & 1), (unsigned)((fc >> 2) & 1));
	CHECK((fc & 5) == 5, "IA32_FEATURE_CONTROL %llx", (unsigned long long)fc);
	env("IA32_VMX_BASIC %016llx (revision %#x), MISC %016llx, VMCS_ENUM %016llx", (unsigned long long)b,
	    vcaps.rev, (unsigned long long)vcaps.misc, (unsigned long long)vcaps.vmcs_enum);
	env("pin-based %016llx primary %016llx secondary %016llx", (unsigned long long)vcaps.pin,
	    (unsigned long long)vcaps.proc, (unsigned long long)vcaps.proc2);
	env("exit %016llx entry %016llx EPT/VPID %016llx", (unsigned long long)vcaps.exit,
	    (unsigned long long)vcaps.entry, (unsigned long long)vcaps.ept_vpid);

	unsigned size = (b >> 32) & 0x1fff, mt = (b >> 50) & 0xf;
	bool basic_ok = vcaps.rev && !((b >> 31) & 1) && size && size <= 4096 && !((b >> 48) & 1) && (mt == 0 || mt == 6);
	say("IA32_VMX_BASIC: revision, region size (1-4096), 64-bit addresses, memory type UC/WB: %s",
	    basic_ok ? "valid" : "INVALID");
	CHECK(basic_ok, "IA32_VMX_BASIC %llx", (unsigned long long)b);

	say("CR0 fixed0 %llx fixed1 %llx, CR4 fixed0 %llx fixed1 %llx", (unsigned long long)vcaps.cr0_fixed0,
	    (unsigned long long)vcaps.cr0_fixed1, (unsigned long long)vcaps.cr4_fixed0,
	    (unsigned long long)vcaps.cr4_fixed1);
	CHECK((vcaps.cr0_fixed0 & ~vcaps.cr0_fixed1) == 0 && (vcaps.cr4_fixed0 & ~vcaps.cr4_fixed1) == 0,
	      "a fixed-1 bit is not allowed to be 1");
	CHECK((vcaps.cr0_fixed0 & (CR0_PE | CR0_NE | CR0_PG)) == (CR0_PE | CR0_NE | CR0_PG), "CR0 fixed0 %llx",
	      (unsigned long long)vcaps.cr0_fixed0);
	CHECK(vcaps.cr4_fixed0 & CR4_VMXE, "CR4 fixed0 %llx", (unsigned long long)vcaps.cr4_fixed0);

	uint64_t m = vcaps.misc;
	say("MISC: VMX-preemption timer rate %u", (unsigned)(m & 0x1f));
	env("MISC: LMA saved %u, activity states %x, CR3 targets %u, MSR lists %u, VMWRITE to exit info %u, "
	    "zero-length injection %u",
	    (unsigned)((m >> 5) & 1), (unsigned)((m >> 6) & 7), (unsigned)((m >> 16) & 0x1ff),
	    512 * (unsigned)(((m >> 25) & 7) + 1), (unsigned)((m >> 29) & 1), (unsigned)((m >> 30) & 1));
	env("VMCS_ENUM: highest index %u", (unsigned)((vcaps.vmcs_enum >> 1) & 0x1ff));

	const struct {
		const char *name;
		uint64_t msr;
		uint32_t core;
	} c[] = {
		{ "pin-based", vcaps.pin, CORE_PIN },     { "primary", vcaps.proc, CORE_PROC },
		{ "secondary", vcaps.proc2, CORE_PROC2 }, { "VM-exit", vcaps.exit, CORE_EXIT },
		{ "VM-entry", vcaps.entry, CORE_ENTRY },
	};
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint32_t lo = (uint32_t)c[i].msr, hi = (uint32_t)(c[i].msr >> 32), miss = ctl_missing(c[i].msr, c[i].core);
		say("%s controls: allowed-0 settings allowed %s, core set %s", c[i].name, (lo & ~hi) ? "NO" : "yes",
		    miss ? "INCOMPLETE" : "complete");
		if (miss)
			env("%s controls missing %08x", c[i].name, miss);
		CHECK((lo & ~hi) == 0, "%s: bits %x must be 1 but may not be", c[i].name, lo & ~hi);
		CHECK(miss == 0, "%s: core controls %x missing", c[i].name, miss);
	}

	/* SDM A.2-A.5: the default1 classes read as must-be-1 in the non-TRUE
	 * MSRs; the TRUE MSRs may only relax them. */
	static const uint32_t def1[4] = { 0x16, 0x0401e172, 0x00036dff, 0x000011ff };
	const uint64_t tru[4] = { vcaps.pin, vcaps.proc, vcaps.exit, vcaps.entry };
	bool d1 = true, relax = true;
	for (int i = 0; i < 4; i++) {
		uint64_t v = 0;
		d1 = d1 && rdmsr_safe(MSR_VMX_PINBASED + i, &v);
		d1 = d1 && ((uint32_t)v & def1[i]) == def1[i];
		relax = relax && ((uint32_t)tru[i] & ~(uint32_t)v) == 0 && (tru[i] >> 32) == (v >> 32) &&
			(((uint32_t)v ^ (uint32_t)tru[i]) & ~def1[i]) == 0;
	}
	say("default1 controls must be 1 in the non-TRUE MSRs: %s; TRUE MSRs only relax them: %s", d1 ? "yes" : "NO",
	    relax ? "yes" : "NO");
	CHECK(d1 && relax, "default1 classes");

	const uint64_t need = CAP_EPT_WALK4 | CAP_EPT_WB | CAP_EPT_2M | CAP_INVEPT | CAP_INVEPT_SINGLE |
			      CAP_INVEPT_ALL | CAP_INVVPID | CAP_INVVPID_SINGLE | CAP_INVVPID_ALL | CAP_INVVPID_SINGLE_G;
	say("EPT/VPID capabilities of the core set: %s", (vcaps.ept_vpid & need) == need ? "complete" : "INCOMPLETE");
	CHECK((vcaps.ept_vpid & need) == need, "EPT/VPID capabilities %llx", (unsigned long long)vcaps.ept_vpid);
	/* SDM A.6: MISC[5] is 1 whenever unrestricted guest can be 1. */
	CHECK(!((vcaps.proc2 >> 32) & PROC2_UNRESTRICTED) || ((m >> 5) & 1), "unrestricted guest without MISC[5]");
}

/* --- VMXON / VMXOFF -------------------------------------------------------------- */
TEST(vmx, vmxon)
{
	if (!vmx_prepare())
		return;
	char buf[40];
	bool gp;
	const uint64_t cr0 = read_cr0(), cr4 = read_cr4();
	const uint64_t cr0v = cr0 | vcaps.cr0_fixed0, cr4v = cr4 | vcaps.cr4_fixed0;
	vmcs_init_page(vmxon_region, vcaps.rev);

	write_cr4(cr4 & ~CR4_VMXE);
	struct vres r = vx(VX_VMXON, pa(vmxon_region), 0);
	say("VMXON with CR4.VMXE=0: %s", r.s);
	CHECK(is_ud(&r), "expected #UD");
	r = vx_user(VX_VMXON, pa(vmxon_region), 0);
	say("VMXON with CR4.VMXE=0 at CPL 3: %s", r.s);
	CHECK(is_ud(&r), "expected #UD (checked before the CPL)");
	r = vx(VX_VMXOFF, 0, 0);
	say("VMXOFF outside VMX operation: %s", r.s);
	CHECK(is_ud(&r), "expected #UD");

	write_cr0(cr0v);
	write_cr4(cr4v);
	r = vx_user(VX_VMXON, pa(vmxon_region), 0);
	say("VMXON at CPL 3: %s", r.s);
	CHECK(is_gp0(&r), "expected #GP(0)");
	if (vcaps.cr0_fixed0 & CR0_NE) {
		write_cr0(cr0v & ~CR0_NE);
		r = vx(VX_VMXON, pa(vmxon_region), 0);
		write_cr0(cr0v);
		say("VMXON with CR0.NE=0 (a CR0 fixed-1 bit): %s", r.s);
		CHECK(is_gp0(&r), "expected #GP(0)");
		if (vr_ok(&r))
			vx(VX_VMXOFF, 0, 0);
	}

	const struct {
		const char *name;
		uint64_t p;
	} bad[] = {
		{ "a VMXON pointer not 4 KiB aligned", pa(vmxon_region) + 0x80 },
		{ "a VMXON pointer beyond the physical-address width", 1ull << vcaps.maxphyaddr },
		{ "a VMXON pointer with bit 63 set", pa(vmxon_region) | (1ull << 63) },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = vx(VX_VMXON, bad[i].p, 0);
		say("VMXON with %s: %s", bad[i].name, r.s);
		CHECK(vr_invalid(&r), "expected VMfailInvalid");
		if (vr_ok(&r))
			vx(VX_VMXOFF, 0, 0);
	}
	*(uint32_t *)vmxon_region = (vcaps.rev + 1) & 0x7fffffff;
	r = vx(VX_VMXON, pa(vmxon_region), 0);
	say("VMXON with a wrong revision identifier: %s", r.s);
	CHECK(vr_invalid(&r), "expected VMfailInvalid");
	if (vr_ok(&r))
		vx(VX_VMXOFF, 0, 0);
	*(uint32_t *)vmxon_region = vcaps.rev | 0x80000000u;
	r = vx(VX_VMXON, pa(vmxon_region), 0);
	say("VMXON with bit 31 of the revision identifier set: %s", r.s);
	CHECK(vr_invalid(&r), "expected VMfailInvalid");
	if (vr_ok(&r))
		vx(VX_VMXOFF, 0, 0);

	*(uint32_t *)vmxon_region = vcaps.rev;
	r = vx(VX_VMXON, pa(vmxon_region), 0);
	say("VMXON: %s", r.s);
	CHECK(vr_ok(&r), "expected VMsucceed");
	if (!vr_ok(&r)) {
		vmx_end();
		return;
	}
	r = vx(VX_VMPTRST, 0, 0);
	say("VMPTRST after VMXON: %s, %016llx", r.s, (unsigned long long)r.out);
	CHECK(vr_ok(&r) && r.out == ~0ull, "expected no current VMCS");
	r = vx(VX_VMXON, pa(vmxon_region), 0);
	say("VMXON in VMX root operation, no current VMCS: %s", r.s);
	CHECK(vr_invalid(&r), "expected VMfailInvalid");
	vmcs_init_page(vmcs_a, vcaps.rev);
	struct vres c = vx(VX_VMCLEAR, pa(vmcs_a), 0), l = vx(VX_VMPTRLD, pa(vmcs_a), 0);
	CHECK(vr_ok(&c) && vr_ok(&l), "VMCLEAR %s VMPTRLD %s", c.s, l.s);
	r = vx(VX_VMXON, pa(vmxon_region), 0);
	say("VMXON in VMX root operation with a current VMCS: %s", r.s);
	CHECK(vr_valid(&r, 15), "expected VMfailValid(15)");
	r = vx_user(VX_VMXON, pa(vmxon_region), 0);
	say("VMXON in VMX root operation at CPL 3: %s", r.s);
	CHECK(is_gp0(&r), "expected #GP(0)");
	r = vx_user(VX_VMXOFF, 0, 0);
	say("VMXOFF at CPL 3: %s", r.s);
	CHECK(is_gp0(&r), "expected #GP(0)");

	const char *o = try_cr(4, cr4v & ~CR4_VMXE, buf, sizeof(buf), &gp);
	say("clearing CR4.VMXE in VMX operation: %s, CR4.VMXE reads %u", o, (unsigned)((read_cr4() >> 13) & 1));
	CHECK(gp && (read_cr4() & CR4_VMXE), "expected #GP(0)");
	if (vcaps.cr0_fixed0 & CR0_NE) {
		o = try_cr(0, cr0v & ~CR0_NE, buf, sizeof(buf), &gp);
		say("clearing CR0.NE in VMX operation: %s, CR0.NE reads %u", o, (unsigned)((read_cr0() >> 5) & 1));
		CHECK(gp && (read_cr0() & CR0_NE), "expected #GP(0)");
		write_cr0(cr0v);
	}

	r = vx(VX_VMXOFF, 0, 0);
	say("VMXOFF: %s", r.s);
	CHECK(vr_ok(&r), "expected VMsucceed");
	r = vx(VX_VMXOFF, 0, 0);
	say("VMXOFF again: %s", r.s);
	CHECK(is_ud(&r), "expected #UD");
	r = vx(VX_VMPTRST, 0, 0);
	say("VMPTRST after VMXOFF: %s", r.s);
	CHECK(is_ud(&r), "expected #UD");
	r = vx(VX_VMXON, pa(vmxon_region), 0);
	struct vres s = vx(VX_VMPTRST, 0, 0);
	say("VMXON again: %s; VMPTRST %s, %016llx", r.s, s.s, (unsigned long long)s.out);
	CHECK(vr_ok(&r) && vr_ok(&s) && s.out == ~0ull, "VMXON must leave no current VMCS");
	r = vx(VX_VMXOFF, 0, 0);
	o = try_cr(4, cr4v & ~CR4_VMXE, buf, sizeof(buf), &gp);
	say("VMXOFF %s; clearing CR4.VMXE then: %s", r.s, o);
	CHECK(vr_ok(&r) && !strcmp(o, "ok"), "CR4.VMXE must be clearable outside VMX operation");
	vmx_end();
}

/* --- #UD outside VMX operation, #GP(0) at CPL 3 ----------------------------------- */
static struct inv_desc ept_desc, vpid_desc;

struct op {
	const char *name;
	enum vx_insn insn;
	uint64_t a, b;
};

/* Prints "label: NAME outcome, NAME outcome..." over as few lines as fit;
 * counts the outcomes that are not `want` (a vector, or -1 for VMfailInvalid). */
static unsigned run_ops(const char *label, const struct op *ops, unsigned n, bool user, int want)
{
	char line[200];
	unsigned len = 0, bad = 0;
	line[0] = 0;
	for (unsigned i = 0; i < n; i++) {
		struct vres r = user ? vx_user(ops[i].insn, ops[i].a, ops[i].b) : vx(ops[i].insn, ops[i].a, ops[i].b);
		bool ok = want < 0 ? vr_invalid(&r) : vr_fault(&r, (unsigned)want, 0);
		bad += !ok;
		char item[48];
		ksnprintf(item, sizeof(item), "%s%s %s", len ? ", " : "", ops[i].name, r.s);
		if (len + strlen(item) > 90) {
			say("%s: %s", label, line);
			len = 0;
			ksnprintf(item, sizeof(item), "%s %s", ops[i].name, r.s);
		}
		memcpy(line + len, item, strlen(item) + 1);
		len += strlen(item);
	}
	if (len)
		say("%s: %s", label, line);
	return bad;
}

TEST(vmx, ud_and_gp)
{
	if (!vmx_prepare())
		return;
	write_cr0(read_cr0() | vcaps.cr0_fixed0);
	write_cr4(read_cr4() | vcaps.cr4_fixed0);
	vmcs_init_page(vmcs_a, vcaps.rev);
	vmcs_init_page(vmxon_region, vcaps.rev);
	ept_desc = (struct inv_desc){ 0, 0 };
	vpid_desc = (struct inv_desc){ 1, 0 };
	const struct op ops[] = {
		{ "VMXOFF", VX_VMXOFF, 0, 0 },
		{ "VMCLEAR", VX_VMCLEAR, pa(vmcs_a), 0 },
		{ "VMPTRLD", VX_VMPTRLD, pa(vmcs_a), 0 },
		{ "VMPTRST", VX_VMPTRST, 0, 0 },
		{ "VMREAD", VX_VMREAD, GUEST_RIP, 0 },
		{ "VMWRITE", VX_VMWRITE, GUEST_RIP, 0 },
		{ "VMLAUNCH", VX_VMLAUNCH, 0, 0 },
		{ "VMRESUME", VX_VMRESUME, 0, 0 },
		{ "INVEPT", VX_INVEPT, 2, pa(&ept_desc) },
		{ "INVVPID", VX_INVVPID, 2, pa(&vpid_desc) },
	};
	const unsigned n = sizeof(ops) / sizeof(ops[0]);
	/* VMCALL is Nestor's hypercall instruction: its outcome in the kernel
	 * depends on what runs below by design (env, checked on bare VMX). */
	const bool bare = !nestor_present();
	unsigned bad = run_ops("outside VMX operation", ops, n, false, EXC_UD);
	CHECK(bad == 0, "%u instructions did not raise #UD", bad);
	struct vres c = vx(VX_VMCALL, 0, 0);
	env("VMCALL outside VMX operation: %s", c.s);
	CHECK(!bare || is_ud(&c), "expected #UD");

	struct vres r = vx(VX_VMXON, pa(vmxon_region), 0), l = vx(VX_VMPTRLD, pa(vmcs_a), 0);
	CHECK(vr_ok(&r) && vr_ok(&l), "VMXON %s VMPTRLD %s", r.s, l.s);
	if (!vr_ok(&r)) {
		vmx_end();
		return;
	}
	bad = run_ops("VMX root operation, CPL 3", ops, n, true, EXC_GP);
	CHECK(bad == 0, "%u instructions did not raise #GP(0)", bad);
	c = vx_user(VX_VMCALL, 0, 0);
	env("VMCALL in VMX root operation at CPL 3: %s", c.s);
	CHECK(!bare || is_gp0(&c), "expected #GP(0)");
	/* SDM: VMCALL in VMX root operation without the dual-monitor treatment
	 * is VMfail(1): VMfailInvalid without a current VMCS.  (With a clear
	 * current VMCS Bochs 2.7 panics: not tried.) */
	r = vx(VX_VMCLEAR, pa(vmcs_a), 0);
	c = vx(VX_VMCALL, 0, 0);
	env("VMCALL in VMX root operation, CPL 0, no current VMCS: %s", c.s);
	CHECK(!bare || vr_invalid(&c), "expected VMfailInvalid");
	vmx_end();
}

/* --- VMCLEAR / VMPTRLD / VMPTRST --------------------------------------------------- */
static uint64_t current_vmcs(void)
{
	struct vres r = vx(VX_VMPTRST, 0, 0);
	return vr_ok(&r) ? r.out : 0x5a5a5a5a5a5a5a5aull;
}
static const char *which(uint64_t p)
{
	return p == pa(vmcs_a) ? "A" : p == pa(vmcs_b) ? "B" : p == ~0ull ? "none" : "OTHER";
}

TEST(vmx, vmcs_pointers)
{
	if (!vmx_begin())
		return;
	vmcs_init_page(vmcs_a, vcaps.rev);
	vmcs_init_page(vmcs_b, vcaps.rev);
	const uint64_t beyond = 1ull << vcaps.maxphyaddr, unaligned = pa(vmcs_a) + 0x100;

	struct vres r = vx(VX_VMPTRST, 0, 0);
	say("VMPTRST with no current VMCS: %s, %016llx", r.s, (unsigned long long)r.out);
	CHECK(vr_ok(&r) && r.out == ~0ull, "expected VMsucceed and all ones");
	r = vx(VX_VMCLEAR, unaligned, 0);
	struct vres r2 = vx(VX_VMPTRLD, unaligned, 0);
	say("no current VMCS: VMCLEAR of an unaligned pointer %s, VMPTRLD %s", r.s, r2.s);
	CHECK(vr_invalid(&r) && vr_invalid(&r2), "VMfail without a current VMCS is VMfailInvalid");

	r = vx(VX_VMCLEAR, pa(vmcs_a), 0);
	r2 = vx(VX_VMPTRLD, pa(vmcs_a), 0);
	say("VMCLEAR A %s, VMPTRLD A %s, current VMCS %s", r.s, r2.s, which(current_vmcs()));
	CHECK(vr_ok(&r) && vr_ok(&r2) && current_vmcs() == pa(vmcs_a), "VMPTRLD must make A current");

	const struct {
		const char *name;
		enum vx_insn insn;
		uint64_t p;
		uint32_t err;
	} bad[] = {
		{ "VMCLEAR of a pointer not 4 KiB aligned", VX_VMCLEAR, unaligned, 2 },
		{ "VMCLEAR beyond the physical-address width", VX_VMCLEAR, beyond, 2 },
		{ "VMCLEAR of the VMXON pointer", VX_VMCLEAR, pa(vmxon_region), 3 },
		{ "VMPTRLD of a pointer not 4 KiB aligned", VX_VMPTRLD, unaligned, 9 },
		{ "VMPTRLD beyond the physical-address width", VX_VMPTRLD, beyond, 9 },
		{ "VMPTRLD of the VMXON pointer", VX_VMPTRLD, pa(vmxon_region), 10 },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = vx(bad[i].insn, bad[i].p, 0);
		uint64_t cur = current_vmcs();
		say("%s: %s, current VMCS %s", bad[i].name, r.s, which(cur));
		CHECK(vr_valid(&r, bad[i].err), "expected VMfailValid(%u)", bad[i].err);
		CHECK(cur == pa(vmcs_a), "the current VMCS changed");
	}
	*(uint32_t *)vmcs_b = (vcaps.rev + 1) & 0x7fffffff;
	r = vx(VX_VMPTRLD, pa(vmcs_b), 0);
	say("VMPTRLD of a VMCS with a wrong revision identifier: %s, current VMCS %s", r.s, which(current_vmcs()));
	CHECK(vr_valid(&r, 11) && current_vmcs() == pa(vmcs_a), "expected VMfailValid(11)");
	*(uint32_t *)vmcs_b = vcaps.rev | 0x80000000u;
	r = vx(VX_VMPTRLD, pa(vmcs_b), 0);
	bool shadowing = (vcaps.proc2 >> 32) & PROC2_SHADOW_VMCS;
	say("VMPTRLD of a shadow VMCS (revision bit 31), VMCS shadowing %s: %s", shadowing ? "supported" : "not supported",
	    r.s);
	CHECK(shadowing ? vr_ok(&r) : vr_valid(&r, 11), "shadow-VMCS indicator");
	vx(VX_VMPTRLD, pa(vmcs_a), 0);
	*(uint32_t *)vmcs_b = vcaps.rev;

	r = vx(VX_VMCLEAR, pa(vmcs_b), 0);
	say("VMCLEAR of B while A is current: %s, current VMCS %s", r.s, which(current_vmcs()));
	CHECK(vr_ok(&r) && current_vmcs() == pa(vmcs_a), "VMCLEAR of another VMCS changed the current one");
	struct vres w1 = vx(VX_VMWRITE, GUEST_RIP, 0x1111), p1 = vx(VX_VMPTRLD, pa(vmcs_b), 0);
	struct vres w2 = vx(VX_VMWRITE, GUEST_RIP, 0x2222), p2 = vx(VX_VMPTRLD, pa(vmcs_a), 0);
	struct vres ra = vx(VX_VMREAD, GUEST_RIP, 0);
	vx(VX_VMPTRLD, pa(vmcs_b), 0);
	struct vres rb = vx(VX_VMREAD, GUEST_RIP, 0);
	say("fields belong to their VMCS: A's guest RIP %llx, B's %llx (current %s)", (unsigned long long)ra.out,
	    (unsigned long long)rb.out, which(current_vmcs()));
	CHECK(vr_ok(&w1) && vr_ok(&p1) && vr_ok(&w2) && vr_ok(&p2) && ra.out == 0x1111 && rb.out == 0x2222,
	      "VMCS data mixed up");

	r = vx(VX_VMCLEAR, pa(vmcs_b), 0);
	uint64_t cur = current_vmcs();
	struct vres rd = vx(VX_VMREAD, GUEST_RIP, 0), wr = vx(VX_VMWRITE, GUEST_RIP, 0);
	say("VMCLEAR of the current VMCS: %s, current VMCS %s; VMREAD %s, VMWRITE %s", r.s, which(cur), rd.s, wr.s);
	CHECK(vr_ok(&r) && cur == ~0ull && vr_invalid(&rd) && vr_invalid(&wr), "expected no current VMCS");
	vx(VX_VMPTRLD, pa(vmcs_b), 0);
	rb = vx(VX_VMREAD, GUEST_RIP, 0);
	say("VMPTRLD B again: guest RIP %llx", (unsigned long long)rb.out);
	CHECK(rb.out == 0x2222, "VMCLEAR lost the VMCS data");
	vmx_end();
}

/* --- VMREAD / VMWRITE ------------------------------------------------------------- */
TEST(vmx, vmread_vmwrite)
{
	if (!vmx_begin())
		return;
	vmcs_init_page(vmcs_a, vcaps.rev);
	vx(VX_VMCLEAR, pa(vmcs_a), 0);
	vx(VX_VMPTRLD, pa(vmcs_a), 0);

	const struct {
		const char *name;
		uint32_t f;
		uint64_t w, expect;
	} rt[] = {
		{ "16-bit guest ES selector", GUEST_ES_SEL, 0x12345678, 0x5678 },
		{ "16-bit VPID", VPID, 0xffffffffffff0001ull, 0x0001 },
		{ "32-bit exception bitmap", EXCEPTION_BITMAP, 0xfedcba9876543210ull, 0x76543210 },
		{ "32-bit guest ES limit", GUEST_ES_LIMIT, 0x1ffffffffull, 0xffffffff },
		{ "64-bit VMCS link pointer", VMCS_LINK_PTR, 0x0123456789abcdefull, 0x0123456789abcdefull },
		{ "64-bit guest IA32_PAT", GUEST_PAT, 0x0007040600070406ull, 0x0007040600070406ull },
		{ "natural guest RIP", GUEST_RIP, 0xffffffff80001234ull, 0xffffffff80001234ull },
		{ "natural CR0 read shadow", CR0_SHADOW, 0x8000000000000031ull, 0x8000000000000031ull },
		{ "natural host RSP", HOST_RSP, 0x00007fffffffe000ull, 0x00007fffffffe000ull },
	};
	for (unsigned i = 0; i < sizeof(rt) / sizeof(rt[0]); i++) {
		struct vres w = vx(VX_VMWRITE, rt[i].f, rt[i].w), r = vx(VX_VMREAD, rt[i].f, 0xaaaaaaaaaaaaaaaaull);
		say("%s: VMWRITE %llx %s, VMREAD %s %llx", rt[i].name, (unsigned long long)rt[i].w, w.s, r.s,
		    (unsigned long long)r.out);
		CHECK(vr_ok(&w) && vr_ok(&r) && r.out == rt[i].expect, "expected %llx", (unsigned long long)rt[i].expect);
	}

	/* The high half of a 64-bit field (encoding | 1): 32 bits, zero-extended. */
	vx(VX_VMWRITE, VMCS_LINK_PTR, 0x0123456789abcdefull);
	struct vres h = vx(VX_VMREAD, VMCS_LINK_PTR | 1, ~0ull);
	struct vres hw = vx(VX_VMWRITE, VMCS_LINK_PTR | 1, 0xaaaaaaaafedcba98ull);
	struct vres f = vx(VX_VMREAD, VMCS_LINK_PTR, 0), h2 = vx(VX_VMREAD, VMCS_LINK_PTR | 1, ~0ull);
	say("high half of the link pointer: VMREAD %s %llx; VMWRITE aaaaaaaafedcba98 %s -> field %llx, high %llx", h.s,
	    (unsigned long long)h.out, hw.s, (unsigned long long)f.out, (unsigned long long)h2.out);
	CHECK(vr_ok(&h) && h.out == 0x01234567 && vr_ok(&hw) && f.out == 0xfedcba9889abcdefull && h2.out == 0xfedcba98,
	      "high-half access");

	/* Memory operands: 64 bits are stored and loaded in 64-bit mode. */
	struct vres mr = vx(VX_VMREAD_MEM, GUEST_ES_SEL, 0xbbbbbbbbbbbbbbbbull);
	say("VMREAD of the 16-bit ES selector to memory: %s, the quadword reads %016llx", mr.s, (unsigned long long)mr.out);
	CHECK(vr_ok(&mr) && mr.out == 0x5678, "expected 0000000000005678");
	struct vres mw = vx(VX_VMWRITE_MEM, GUEST_RIP, 0xffffffffc0de0000ull), rr = vx(VX_VMREAD, GUEST_RIP, 0);
	say("VMWRITE of the guest RIP from memory: %s, reads %llx", mw.s, (unsigned long long)rr.out);
	CHECK(vr_ok(&mw) && rr.out == 0xffffffffc0de0000ull, "memory-operand VMWRITE");
	mr = vx(VX_VMREAD_MEM, GUEST_RIP, 0);
	say("VMREAD of the guest RIP to memory: %s, %llx", mr.s, (unsigned long long)mr.out);
	CHECK(vr_ok(&mr) && mr.out == 0xffffffffc0de0000ull, "memory-operand VMREAD");

	const struct {
		const char *name;
		uint64_t enc;
	} uns[] = {
		{ "guest RIP with bit 32 of the register set", (1ull << 32) | GUEST_RIP },
		{ "16-bit field, high access type", GUEST_ES_SEL | 1 },
		{ "32-bit field, high access type", EXCEPTION_BITMAP | 1 },
		{ "natural-width field, high access type", GUEST_RIP | 1 },
		{ "reserved bit 12", 0x1000 | GUEST_ES_SEL },
		{ "reserved bit 15", 0x8000 | GUEST_ES_SEL },
	};
	for (unsigned i = 0; i < sizeof(uns) / sizeof(uns[0]); i++) {
		struct vres r = vx(VX_VMREAD, uns[i].enc, 0), w = vx(VX_VMWRITE, uns[i].enc, 0);
		say("encoding %llx (%s): VMREAD %s, VMWRITE %s", (unsigned long long)uns[i].enc, uns[i].name, r.s, w.s);
		CHECK(vr_valid(&r, 12) && vr_valid(&w, 12), "expected VMfailValid(12)");
	}

	/* Read-only fields: VMfailValid(13) unless IA32_VMX_MISC[29]. */
	bool ro_ok = (vcaps.misc >> 29) & 1;
	struct vres w = vx(VX_VMWRITE, EXIT_QUAL, 0x55), r = vx(VX_VMREAD, EXIT_QUAL, 0);
	env("VMWRITE to the exit qualification (MISC[29] %u): %s, reads %llx", ro_ok, w.s, (unsigned long long)r.out);
	CHECK(ro_ok ? vr_ok(&w) && r.out == 0x55 : vr_valid(&w, 13), "read-only field write");
	w = vx(VX_VMWRITE, EXIT_REASON, 0x12);
	r = vx(VX_VMREAD, EXIT_REASON, 0);
	env("VMWRITE to the exit reason: %s, reads %llx", w.s, (unsigned long long)r.out);
	CHECK(ro_ok ? vr_ok(&w) && r.out == 0x12 : vr_valid(&w, 13), "read-only field write");

	/* Bits the fields do not hold. */
	const struct {
		const char *name;
		uint32_t f;
		uint64_t w;
	} un[] = {
		{ "ES access rights", GUEST_ES_AR, 0xffffffff },
		{ "TR access rights", GUEST_TR_AR, 0xfffe0f00 },
		{ "GDTR limit", GUEST_GDTR_LIMIT, 0xffffffff },
		{ "SYSENTER_CS", GUEST_SYSENTER_CS, 0xffffffff },
		{ "interruptibility", GUEST_INTERRUPTIBILITY, 0xffffffff },
		{ "activity state", GUEST_ACTIVITY, 0xffffffff },
		{ "pending debug exceptions", GUEST_PENDING_DBG, ~0ull },
		{ "CR3-target count", CR3_TARGET_COUNT, 0xffffffff },
	};
	for (unsigned i = 0; i < sizeof(un) / sizeof(un[0]); i++) {
		w = vx(VX_VMWRITE, un[i].f, un[i].w);
		r = vx(VX_VMREAD, un[i].f, 0);
		say("unused bits: %s: VMWRITE %llx %s, reads %llx", un[i].name, (unsigned long long)un[i].w, w.s,
		    (unsigned long long)r.out);
		CHECK(vr_ok(&w) && vr_ok(&r), "VMWRITE/VMREAD");
	}

	/* SDM: a fault on the memory operand comes after the VMCS-pointer check;
	 * for VMREAD also after the field check, for VMWRITE before it. */
	const uint64_t bad = 0x0000800000000000ull;
	struct vres m1 = vx(VX_VMREAD_PTR, GUEST_RIP, bad), m2 = vx(VX_VMREAD_PTR, GUEST_ES_SEL | 1, bad);
	struct vres m3 = vx(VX_VMWRITE_PTR, GUEST_RIP, bad), m4 = vx(VX_VMWRITE_PTR, GUEST_ES_SEL | 1, bad);
	say("non-canonical memory operand: VMREAD %s, of an unsupported field %s; VMWRITE %s, to an unsupported field %s",
	    m1.s, m2.s, m3.s, m4.s);
	CHECK(is_gp0(&m1) && vr_valid(&m2, 12) && is_gp0(&m3) && is_gp0(&m4), "fault priority");

	vx(VX_VMCLEAR, pa(vmcs_a), 0);
	m1 = vx(VX_VMREAD_PTR, GUEST_RIP, bad);
	m3 = vx(VX_VMWRITE_PTR, GUEST_RIP, bad);
	say("no current VMCS, non-canonical memory operand: VMREAD %s, VMWRITE %s", m1.s, m3.s);
	CHECK(vr_invalid(&m1) && vr_invalid(&m3), "VMfailInvalid comes first");
	r = vx(VX_VMREAD, GUEST_RIP, 0);
	w = vx(VX_VMWRITE, GUEST_RIP, 0);
	struct vres u = vx(VX_VMREAD, GUEST_ES_SEL | 1, 0);
	say("no current VMCS: VMREAD %s, VMWRITE %s, VMREAD of an unsupported field %s", r.s, w.s, u.s);
	CHECK(vr_invalid(&r) && vr_invalid(&w) && vr_invalid(&u), "expected VMfailInvalid");
	vmx_end();
}

/* --- launch state ------------------------------------------------------------------ */
static const char *outcome(uint32_t rs, char *buf, size_t n)
{
	if (rs == GO_FAILED)
		ksnprintf(buf, n, "%s", vm.go.s);
	else if (rs & EXIT_FAILED_ENTRY)
		ksnprintf(buf, n, "VM-entry failure, exit reason %u|0x80000000, qualification %llu", rs & 0xffff,
			  (unsigned long long)vm.x.qual);
	else if (l2_event.count)
		ksnprintf(buf, n, "entered, exit %u (%s) after the L2 got vector %llu", rs, exit_name(rs),
			  (unsigned long long)l2_event.vector);
	else
		ksnprintf(buf, n, "entered, exit %u (%s)", rs, exit_name(rs));
	return buf;
}

TEST(vmx, launch_state)
{
	if (!vm_begin())
		return;
	char buf[120];
	vm_at(l2_vmcall, RFLAGS_FIXED);
	uint32_t rs = vm_go_mode(RUN_RESUME);
	say("VMRESUME of a clear VMCS: %s", outcome(rs, buf, sizeof(buf)));
	CHECK(rs == GO_FAILED && vm.go.status == VM_FAIL_VALID && vm.go.err == 5, "expected VMfailValid(5)");
	rs = vm_go_mode(RUN_LAUNCH);
	say("VMLAUNCH: %s, guest RIP at the VMCALL %s", outcome(rs, buf, sizeof(buf)), rip_off(l2_vmcall) ? "no" : "yes");
	CHECK(rs == EXIT_VMCALL && rip_off(l2_vmcall) == 0, "expected a VMCALL exit");
	rs = vm_go_mode(RUN_LAUNCH);
	say("VMLAUNCH of a launched VMCS: %s", outcome(rs, buf, sizeof(buf)));
	CHECK(rs == GO_FAILED && vm.go.status == VM_FAIL_VALID && vm.go.err == 4, "expected VMfailValid(4)");
	rs = vm_go_mode(RUN_RESUME);
	say("VMRESUME: %s", outcome(rs, buf, sizeof(buf)));
	CHECK(rs == EXIT_VMCALL, "expected a VMCALL exit");

	/* SDM: VMCALL in VMX root operation without the dual-monitor treatment
	 * is VMfailValid(1) when there is a current VMCS; Bochs 2.7 gives 19
	 * ("VMCALL with a non-clear VMCS").  Nestor's hypercall: env only. */
	struct vres r = vx(VX_VMCALL, 0, 0);
	env("VMCALL in VMX root operation with a launched current VMCS: %s", r.s);

	r = vx(VX_VMCLEAR, pa(vmcs_a), 0);
	struct vres p = vx(VX_VMPTRLD, pa(vmcs_a), 0);
	rs = vm_go_mode(RUN_RESUME);
	say("VMCLEAR %s, VMPTRLD %s, VMRESUME: %s", r.s, p.s, outcome(rs, buf, sizeof(buf)));
	CHECK(rs == GO_FAILED && vm.go.status == VM_FAIL_VALID && vm.go.err == 5, "expected VMfailValid(5)");
	rs = vm_go_mode(RUN_LAUNCH);
	say("VMLAUNCH after VMCLEAR: %s", outcome(rs, buf, sizeof(buf)));
	CHECK(rs == EXIT_VMCALL, "expected a VMCALL exit");

	vx(VX_VMCLEAR, pa(vmcs_a), 0);
	rs = vm_go_mode(RUN_LAUNCH | RUN_KEEP_HOST);
	uint32_t rs2 = vm_go_mode(RUN_RESUME | RUN_KEEP_HOST);
	say("no current VMCS: VMLAUNCH %s, VMRESUME %s", rs == GO_FAILED ? vm.go.s : "entered",
	    rs2 == GO_FAILED ? vm.go.s : "entered");
	CHECK(rs == GO_FAILED && rs2 == GO_FAILED && vm.go.status == VM_FAIL_INVALID, "expected VMfailInvalid");

	vx(VX_VMPTRLD, pa(vmcs_a), 0);
	rs = vm_go_mode(RUN_LAUNCH_MOVSS);
	say("VMLAUNCH right after MOV SS: %s", outcome(rs, buf, sizeof(buf)));
	CHECK(rs == GO_FAILED && vm.go.status == VM_FAIL_VALID && vm.go.err == 26, "expected VMfailValid(26)");
	vmx_end();
}

/* --- VM-entry checks ---------------------------------------------------------------- */
enum { M_NONE, M_SET, M_OR, M_CLR, M_KEEP_HOST };
struct mod {
	int op;
	uint32_t field;
	uint64_t val;
};
struct ecase {
	const char *name;
	struct mod m[2];
	uint32_t expect;     /* VMfailValid number, or the exit qualification of a failed entry */
	int env_only;        /* 1: the outcome depends on a capability (printed with env) */
};

/* A complete VMCS, one or two fields broken, one VMLAUNCH.  Returns the
 * result of vm_go_mode. */
static uint32_t entry_try(const struct ecase *c, char *buf, size_t n)
{
	if (!vm_setup())
		return GO_FAILED - 1;
	vm_at(l2_vmcall, RFLAGS_FIXED);
	int mode = RUN_LAUNCH;
	for (int i = 0; i < 2; i++) {
		const struct mod *m = &c->m[i];
		switch (m->op) {
		case M_NONE: break;
		case M_SET: vmw(m->field, m->val); break;
		case M_OR: vmw(m->field, vmr(m->field) | m->val); break;
		case M_CLR: vmw(m->field, vmr(m->field) & ~m->val); break;
		case M_KEEP_HOST:
			vmw(HOST_RSP, vmr(GUEST_RSP));
			vmw(HOST_RIP, m->val);
			mode |= RUN_KEEP_HOST;
			break;
		}
	}
	uint32_t rs = vm_go_mode(mode);
	outcome(rs, buf, n);
	return rs;
}

static void entry_cases(const struct ecase *cs, unsigned n, bool guest)
{
	char buf[120];
	for (unsigned i = 0; i < n; i++) {
		const struct ecase *c = &cs[i];
		uint32_t rs = entry_try(c, buf, sizeof(buf));
		if (c->env_only) {
			env("%s: %s", c->name, buf);
			continue;
		}
		say("%s: %s", c->name, buf);
		if (guest)
			CHECK(rs == (EXIT_BAD_GUEST | EXIT_FAILED_ENTRY) && vm.x.qual == c->expect,
			      "expected exit reason 33|0x80000000, qualification %u", c->expect);
		else
			CHECK(rs == GO_FAILED && vm.go.status == VM_FAIL_VALID && vm.go.err == c->expect,
			      "expected VMfailValid(%u)", c->expect);
	}
}

TEST(vmx, entry_controls)
{
	if (!vmx_begin())
		return;
	const uint32_t pin1 = (uint32_t)(vcaps.pin >> 32), pin0 = (uint32_t)vcaps.pin;
	const unsigned pin_z = low_zero(pin1), pin_o = low_one(pin0), proc_z = low_zero((uint32_t)(vcaps.proc >> 32));
	const unsigned proc2_z = low_zero((uint32_t)(vcaps.proc2 >> 32)), exit_z = low_zero((uint32_t)(vcaps.exit >> 32));
	const unsigned entry_z = low_zero((uint32_t)(vcaps.entry >> 32));
	const unsigned cr3n = (unsigned)((vcaps.misc >> 16) & 0x1ff);
	env("bits used: pin-based must-be-0 %u, must-be-1 %u, primary %u, secondary %u, exit %u, entry %u; "
	    "CR3 targets %u",
	    pin_z, pin_o, proc_z, proc2_z, exit_z, entry_z, cr3n);
	const uint64_t beyond = 1ull << vcaps.maxphyaddr;
	const struct ecase cs[] = {
		{ "a pin-based control that must be 0 set", { { M_OR, PIN_CTLS, 1ull << (pin_z & 31) } }, 7, 0 },
		{ "a pin-based control that must be 1 cleared", { { M_CLR, PIN_CTLS, 1ull << (pin_o & 31) } }, 7, 0 },
		{ "a primary control that must be 0 set", { { M_OR, PROC_CTLS, 1ull << (proc_z & 31) } }, 7, 0 },
		{ "a secondary control that must be 0 set", { { M_OR, PROC2_CTLS, 1ull << (proc2_z & 31) } }, 7, 0 },
		{ "a VM-exit control that must be 0 set", { { M_OR, EXIT_CTLS, 1ull << (exit_z & 31) } }, 7, 0 },
		{ "a VM-entry control that must be 0 set", { { M_OR, ENTRY_CTLS, 1ull << (entry_z & 31) } }, 7, 0 },
		{ "CR3-target count one above the supported number", { { M_SET, CR3_TARGET_COUNT, cr3n + 1 } }, 7, 0 },
		{ "MSR-bitmap address not 4 KiB aligned", { { M_SET, MSR_BITMAP, pa(msr_bitmap) + 0x800 } }, 7, 0 },
		{ "MSR-bitmap address beyond the physical-address width", { { M_SET, MSR_BITMAP, beyond } }, 7, 0 },
		{ "I/O-bitmap A address not 4 KiB aligned",
		  { { M_OR, PROC_CTLS, PROC_IO_BITMAPS }, { M_SET, IO_BITMAP_A, pa(io_bitmap_a) + 8 } }, 7, 0 },
		{ "virtual NMIs without NMI exiting", { { M_OR, PIN_CTLS, PIN_VIRTUAL_NMI } }, 7, 0 },
		{ "NMI-window exiting without virtual NMIs", { { M_OR, PROC_CTLS, PROC_NMI_WINDOW } }, 7, 0 },
		{ "enable VPID with VPID 0", { { M_SET, VPID, 0 } }, 7, 0 },
		{ "EPTP memory type 1", { { M_SET, EPT_POINTER, (ept_pointer() & ~7ull) | 1 } }, 7, 0 },
		{ "EPTP page-walk length 5", { { M_SET, EPT_POINTER, (ept_pointer() & ~0x38ull) | (4 << 3) } }, 7, 0 },
		{ "EPTP reserved bit 11", { { M_OR, EPT_POINTER, 1ull << 11 } }, 7, 0 },
		{ "EPTP beyond the physical-address width", { { M_OR, EPT_POINTER, beyond } }, 7, 0 },
		{ "unrestricted guest without EPT",
		  { { M_OR, PROC2_CTLS, PROC2_UNRESTRICTED }, { M_CLR, PROC2_CTLS, PROC2_EPT } }, 7, 0 },
		{ "save preemption timer without the timer", { { M_OR, EXIT_CTLS, EXIT_SAVE_PREEMPT } }, 7, 0 },
		{ "injection of type 1 (reserved)", { { M_SET, ENTRY_INTR_INFO, INTR_VALID | (1u << 8) | 0x30 } }, 7, 0 },
		{ "injection of hardware exception 32", { { M_SET, ENTRY_INTR_INFO, INTR_VALID | INTR_HW_EXC | 32 } }, 7, 0 },
		{ "injection with reserved bit 12 set",
		  { { M_SET, ENTRY_INTR_INFO, INTR_VALID | INTR_EXT | (1u << 12) | 0x30 } }, 7, 0 },
		{ "injection of an NMI with vector 3", { { M_SET, ENTRY_INTR_INFO, INTR_VALID | INTR_NMI | 3 } }, 7, 0 },
		{ "injection of a software interrupt with length 16",
		  { { M_SET, ENTRY_INTR_INFO, INTR_VALID | INTR_SW_INT | 0x30 }, { M_SET, ENTRY_INSN_LEN, 16 } }, 7, 0 },
		{ "injection of #GP with error code bits 31:16 set",
		  { { M_SET, ENTRY_INTR_INFO, INTR_VALID | INTR_HW_EXC | INTR_ERRCODE | 13 },
		    { M_SET, ENTRY_EXC_ERR, 0x10000 } },
		  7, 0 },
		{ "VM-entry MSR-load address not 16-byte aligned",
		  { { M_SET, ENTRY_MSR_LOAD_COUNT, 1 }, { M_SET, ENTRY_MSR_LOAD_ADDR, pa(vmx_scratch) + 8 } }, 7, 0 },
		{ "VM-exit MSR-store area beyond the physical-address width",
		  { { M_SET, EXIT_MSR_STORE_COUNT, 1 }, { M_SET, EXIT_MSR_STORE_ADDR, beyond } }, 7, 0 },
	};
	entry_cases(cs, sizeof(cs) / sizeof(cs[0]), false);

	/* Checks whose outcome depends on a capability. */
	char buf[120];
	bool zero_len = (vcaps.misc >> 30) & 1, any_err = (vcaps.basic >> 56) & 1;
	const struct ecase c0 = { "injection of a software interrupt with length 0",
				  { { M_SET, ENTRY_INTR_INFO, INTR_VALID | INTR_SW_INT | 0x30 }, { M_SET, ENTRY_INSN_LEN, 0 } },
				  0, 1 };
	uint32_t rs = entry_try(&c0, buf, sizeof(buf));
	env("%s (MISC[30] %u): %s", c0.name, zero_len, buf);
	CHECK(zero_len ? rs == EXIT_VMCALL : (rs == GO_FAILED && vm.go.err == 7), "zero-length injection");
	const struct ecase c1 = { "injection of #UD with an error code",
				  { { M_SET, ENTRY_INTR_INFO, INTR_VALID | INTR_HW_EXC | INTR_ERRCODE | 6 } }, 0, 1 };
	rs = entry_try(&c1, buf, sizeof(buf));
	env("%s (BASIC[56] %u): %s", c1.name, any_err, buf);
	CHECK(any_err ? rs == EXIT_VMCALL : (rs == GO_FAILED && vm.go.err == 7), "error code of #UD");
	const struct ecase c2 = { "injection of #GP without an error code",
				  { { M_SET, ENTRY_INTR_INFO, INTR_VALID | INTR_HW_EXC | 13 } }, 0, 1 };
	rs = entry_try(&c2, buf, sizeof(buf));
	env("%s (BASIC[56] %u): %s", c2.name, any_err, buf);
	CHECK(any_err ? rs == EXIT_VMCALL : (rs == GO_FAILED && vm.go.err == 7), "error code of #GP");
	vmx_end();
}

TEST(vmx, entry_host_state)
{
	if (!vmx_begin())
		return;
	const uint64_t noncanon = 0x0000800000000000ull, beyond = 1ull << vcaps.maxphyaddr;
	const struct ecase cs[] = {
		{ "host CR0.NE=0 (a fixed-1 bit)", { { M_CLR, HOST_CR0, CR0_NE } }, 8, 0 },
		{ "host CR0 bit 32 set (a fixed-0 bit)", { { M_OR, HOST_CR0, 1ull << 32 } }, 8, 0 },
		{ "host CR4.VMXE=0", { { M_CLR, HOST_CR4, CR4_VMXE } }, 8, 0 },
		{ "host CR4.PAE=0 with a 64-bit host", { { M_CLR, HOST_CR4, CR4_PAE } }, 8, 0 },
		{ "host CR3 beyond the physical-address width", { { M_OR, HOST_CR3, beyond } }, 8, 0 },
		{ "host CS selector 0", { { M_SET, HOST_CS_SEL, 0 } }, 8, 0 },
		{ "host SS selector with RPL 3", { { M_SET, HOST_SS_SEL, G_KDATA | 3 } }, 8, 0 },
		{ "host DS selector with TI set", { { M_SET, HOST_DS_SEL, G_KDATA | 4 } }, 8, 0 },
		{ "host TR selector 0", { { M_SET, HOST_TR_SEL, 0 } }, 8, 0 },
		{ "host FS base not canonical", { { M_SET, HOST_FS_BASE, noncanon } }, 8, 0 },
		{ "host GDTR base not canonical", { { M_SET, HOST_GDTR_BASE, noncanon } }, 8, 0 },
		{ "host TR base not canonical", { { M_SET, HOST_TR_BASE, noncanon } }, 8, 0 },
		{ "host SYSENTER_EIP not canonical", { { M_SET, HOST_SYSENTER_EIP, noncanon } }, 8, 0 },
		{ "host RIP not canonical", { { M_KEEP_HOST, 0, noncanon } }, 8, 0 },
		{ "host EFER.LMA=0 with a 64-bit host", { { M_CLR, HOST_EFER, EFER_LMA } }, 8, 0 },
		{ "host EFER reserved bit 1", { { M_OR, HOST_EFER, 2 } }, 8, 0 },
		{ "host PAT entry 0 of type 2", { { M_SET, HOST_PAT, 0x0007040600070402ull } }, 8, 0 },
		{ "host address-space size 0 in IA-32e mode", { { M_CLR, EXIT_CTLS, EXIT_HOST_64 } }, 8, 0 },
	};
	entry_cases(cs, sizeof(cs) / sizeof(cs[0]), false);
	vmx_end();
}

TEST(vmx, entry_guest_state)
{
	if (!vmx_begin())
		return;
	const uint64_t noncanon = 0x0000800000000000ull, beyond = 1ull << vcaps.maxphyaddr;
	const struct ecase cs[] = {
		{ "guest RFLAGS bit 1 clear", { { M_SET, GUEST_RFLAGS, 0 } }, 0, 0 },
		{ "guest RFLAGS reserved bit 15 set", { { M_SET, GUEST_RFLAGS, 0x8002 } }, 0, 0 },
		{ "guest RFLAGS.VM=1 in IA-32e mode", { { M_SET, GUEST_RFLAGS, 0x20002 } }, 0, 0 },
		{ "guest CR0.PG=1 with PE=0", { { M_CLR, GUEST_CR0, CR0_PE } }, 0, 0 },
		{ "guest CR0.PG=1 with PE=0, unrestricted guest",
		  { { M_CLR, GUEST_CR0, CR0_PE }, { M_OR, PROC2_CTLS, PROC2_UNRESTRICTED } }, 0, 0 },
		{ "guest CR0.NE=0", { { M_CLR, GUEST_CR0, CR0_NE } }, 0, 0 },
		{ "guest CR4.VMXE=0", { { M_CLR, GUEST_CR4, CR4_VMXE } }, 0, 0 },
		{ "guest CR4.PAE=0 in IA-32e mode", { { M_CLR, GUEST_CR4, CR4_PAE } }, 0, 0 },
		{ "guest CR3 beyond the physical-address width", { { M_OR, GUEST_CR3, beyond } }, 0, 0 },
		{ "guest DR7 bit 32 set", { { M_OR, GUEST_DR7, 1ull << 32 } }, 0, 0 },
		{ "guest CS of a data type", { { M_SET, GUEST_CS_AR, 0xa093 } }, 0, 0 },
		{ "guest CS with L=1 and D=1", { { M_SET, GUEST_CS_AR, 0xe09b } }, 0, 0 },
		{ "guest SS with DPL 3", { { M_SET, GUEST_SS_AR, 0xc0f3 } }, 0, 0 },
		{ "guest DS not present", { { M_SET, GUEST_DS_AR, 0xc013 } }, 0, 0 },
		{ "guest TR unusable", { { M_SET, GUEST_TR_AR, 0x1008b } }, 0, 0 },
		{ "guest TR a 16-bit TSS in IA-32e mode", { { M_SET, GUEST_TR_AR, 0x83 } }, 0, 0 },
		{ "guest LDTR usable with type 3", { { M_SET, GUEST_LDTR_AR, 0x83 } }, 0, 0 },
		{ "guest GDTR base not canonical", { { M_SET, GUEST_GDTR_BASE, noncanon } }, 0, 0 },
		{ "guest IDTR limit 0x10000", { { M_SET, GUEST_IDTR_LIMIT, 0x10000 } }, 0, 0 },
		{ "guest SYSENTER_ESP not canonical", { { M_SET, GUEST_SYSENTER_ESP, noncanon } }, 0, 0 },
		{ "guest EFER.LMA=0 with IA-32e mode guest", { { M_CLR, GUEST_EFER, EFER_LMA } }, 0, 0 },
		{ "guest PAT entry 0 of type 2", { { M_SET, GUEST_PAT, 0x0007040600070402ull } }, 0, 0 },
		{ "guest activity state 4", { { M_SET, GUEST_ACTIVITY, 4 } }, 0, 0 },
		{ "guest blocking by STI and by MOV SS", { { M_SET, GUEST_INTERRUPTIBILITY, 3 } }, 0, 0 },
		{ "guest blocking by STI with IF=0", { { M_SET, GUEST_INTERRUPTIBILITY, 1 } }, 0, 0 },
		{ "guest interruptibility reserved bit 5", { { M_SET, GUEST_INTERRUPTIBILITY, 1u << 5 } }, 0, 0 },
		{ "guest pending debug exceptions reserved bit 4", { { M_SET, GUEST_PENDING_DBG, 1u << 4 } }, 0, 0 },
		{ "VMCS link pointer not 4 KiB aligned", { { M_SET, VMCS_LINK_PTR, pa(vmcs_b) + 0x10 } }, 4, 0 },
		{ "VMCS link pointer to a wrong revision", { { M_SET, VMCS_LINK_PTR, pa(vmcs_b) } }, 4, 0 },
		{ "external interrupt injected with IF=0", { { M_SET, ENTRY_INTR_INFO, INTR_VALID | INTR_EXT | 0x30 } }, 0, 0 },
	};
	vmcs_init_page(vmcs_b, (vcaps.rev + 1) & 0x7fffffff);
	entry_cases(cs, sizeof(cs) / sizeof(cs[0]), true);
	/* SDM 26.7: a VM-entry failure does not clear the valid bit of the
	 * VM-entry interruption information (the last case injected). */
	uint64_t info = vmr(ENTRY_INTR_INFO);
	say("after that failed entry the VM-entry interruption information reads %llx", (unsigned long long)info);
	CHECK(info == (INTR_VALID | INTR_EXT | 0x30), "the failed entry changed the field");

	/* SDM 26.3.1.4: in 64-bit mode RIP must be canonical (bits 63:N equal). */
	char buf[120];
	const struct ecase c = { "guest RIP not canonical in 64-bit mode", { { M_SET, GUEST_RIP, noncanon } }, 0, 0 };
	entry_try(&c, buf, sizeof(buf));
	say("%s: %s", c.name, buf);
	vmx_end();
}

/* --- INVEPT / INVVPID -------------------------------------------------------------- */
static struct inv_desc inv_d;

static struct vres inv(enum vx_insn insn, uint64_t type, uint64_t lo, uint64_t hi)
{
	inv_d.lo = lo;
	inv_d.hi = hi;
	return vx(insn, type, pa(&inv_d));
}

TEST(vmx, invept_invvpid)
{
	if (!vm_begin())
		return;
	const uint64_t eptp = ept_pointer(), beyond = 1ull << vcaps.maxphyaddr;
	const struct {
		const char *name;
		enum vx_insn insn;
		uint64_t type, lo, hi;
		uint32_t err; /* 0: VMsucceed */
	} t[] = {
		{ "INVEPT single-context", VX_INVEPT, 1, eptp, 0, 0 },
		{ "INVEPT all-context", VX_INVEPT, 2, 0, 0, 0 },
		{ "INVEPT type 0", VX_INVEPT, 0, eptp, 0, 28 },
		{ "INVEPT type 3", VX_INVEPT, 3, eptp, 0, 28 },
		{ "INVEPT single-context, EPTP memory type 1", VX_INVEPT, 1, (eptp & ~7ull) | 1, 0, 28 },
		{ "INVEPT single-context, EPTP walk length 5", VX_INVEPT, 1, (eptp & ~0x38ull) | (4 << 3), 0, 28 },
		{ "INVEPT single-context, EPTP reserved bit 11", VX_INVEPT, 1, eptp | (1ull << 11), 0, 28 },
		{ "INVEPT single-context, EPTP beyond the address width", VX_INVEPT, 1, eptp | beyond, 0, 28 },
		{ "INVVPID single-context, VPID 1", VX_INVVPID, 1, 1, 0, 0 },
		{ "INVVPID all-context", VX_INVVPID, 2, 0, 0, 0 },
		{ "INVVPID single-context retaining globals, VPID 1", VX_INVVPID, 3, 1, 0, 0 },
		{ "INVVPID individual-address, VPID 1, non-canonical", VX_INVVPID, 0, 1, 0x0000800000000000ull, 28 },
		{ "INVVPID individual-address, VPID 0", VX_INVVPID, 0, 0, 0x1000, 28 },
		{ "INVVPID single-context, VPID 0", VX_INVVPID, 1, 0, 0, 28 },
		{ "INVVPID single-context retaining globals, VPID 0", VX_INVVPID, 3, 0, 0, 28 },
		{ "INVVPID single-context, descriptor bits 63:16 set", VX_INVVPID, 1, 0x10001, 0, 28 },
		{ "INVVPID all-context, descriptor bits 63:16 set", VX_INVVPID, 2, 0x10000, 0, 28 },
		{ "INVVPID type 4", VX_INVVPID, 4, 1, 0, 28 },
	};
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct vres r = inv(t[i].insn, t[i].type, t[i].lo, t[i].hi);
		say("%s: %s", t[i].name, r.s);
		CHECK(t[i].err ? vr_valid(&r, t[i].err) : vr_ok(&r), "expected %s", t[i].err ? "VMfailValid(28)" : "VMsucceed");
	}
	bool addr = vcaps.ept_vpid & CAP_INVVPID_ADDR;
	struct vres r = inv(VX_INVVPID, 0, 1, 0x1000);
	env("INVVPID individual-address, VPID 1 (type %s): %s", addr ? "supported" : "not supported", r.s);
	CHECK(addr ? vr_ok(&r) : vr_valid(&r, 28), "individual-address INVVPID");
	/* Not checked: the SDM's pseudo-code ignores bits 127:64 of the INVEPT
	 * descriptor; a type is the whole 64-bit register in 64-bit mode, so
	 * 2^32+n is an unsupported type (VMfailValid(28)). */
	r = inv(VX_INVEPT, 2, 0, 0xffffffffffffffffull);
	say("INVEPT all-context, descriptor bits 127:64 set: %s", r.s);
	r = inv(VX_INVEPT, (1ull << 32) | 1, eptp, 0);
	struct vres r2 = inv(VX_INVVPID, (1ull << 32) | 2, 0, 0);
	say("INVEPT type 2^32+1: %s; INVVPID type 2^32+2: %s", r.s, r2.s);

	vx(VX_VMCLEAR, pa(vmcs_a), 0);
	struct vres a = inv(VX_INVEPT, 0, eptp, 0), b = inv(VX_INVVPID, 4, 1, 0);
	struct vres c = inv(VX_INVEPT, 2, 0, 0), d = inv(VX_INVVPID, 2, 0, 0);
	say("no current VMCS: INVEPT type 0 %s, INVVPID type 4 %s, INVEPT all-context %s, INVVPID all-context %s", a.s,
	    b.s, c.s, d.s);
	CHECK(vr_invalid(&a) && vr_invalid(&b) && vr_ok(&c) && vr_ok(&d), "INVEPT/INVVPID without a current VMCS");
	vmx_end();
}
