/* vmx_caps.c - the VMX capability MSRs a guest hypervisor reads (SDM Vol.
 * 3D appendix A), compared across depths (issue 13 item 2).
 *
 * At depth n they are Nestor's virtual CPU's (nested/caps.c): what the CPU
 * below allows, less what Nestor does not emulate.  Each MSR is printed
 * with the bits of the features Nestor does not offer yet masked out - the
 * table below names every one, and docs/nested.md says why - so that the
 * transcripts of depth 0 and depth n are equal exactly when nothing else
 * differs; the full values are environment lines. */
#include "guest/kernel.h"
#include "guest/test.h"
#include "guest/vmx.h"
#include "lib/x86.h"

/* A control's allowed-1 bit i is bit 32 + i of its capability MSR. */
#define A1(i) (1ull << (32 + (i)))

struct not_offered {
	uint32_t msr;  /* and its TRUE twin, for the control MSRs */
	uint64_t bits; /* bits that read 0 under Nestor where the CPU has 1 */
	const char *what;
};

/* Every bit the Bochs models corei7_skylake_x, tigerlake and
 * corei7_sandy_bridge_2600k report that Nestor does not (docs/nested.md,
 * "What is not offered, and why"). */
static const struct not_offered not_offered[] = {
	{ 0x480, 0x7fffffffull, "VMCS revision identifier: Nestor's VMCS12 layout" },
	{ 0x48a, 0x3feull, "VMCS_ENUM highest field index: Nestor's VMCS12 layout" },
	{ 0x483, A1(12), "load IA32_PERF_GLOBAL_CTRL (exit)" },
	{ 0x484, A1(10), "entry to SMM" },
	{ 0x484, A1(11), "deactivate dual-monitor treatment" },
	{ 0x484, A1(13), "load IA32_PERF_GLOBAL_CTRL (entry)" },
	{ 0x48b, A1(10), "PAUSE-loop exiting" },
	{ 0x48b, A1(23), "sub-page write permissions for EPT" },
	{ 0x48c, 1ull << 23, "EPT supervisor shadow-stack control" },
};

struct capmsr {
	uint32_t msr;
	const char *name;
};
static const struct capmsr capmsrs[] = {
	{ 0x480, "IA32_VMX_BASIC" },	      { 0x481, "IA32_VMX_PINBASED_CTLS" },
	{ 0x482, "IA32_VMX_PROCBASED_CTLS" }, { 0x483, "IA32_VMX_EXIT_CTLS" },
	{ 0x484, "IA32_VMX_ENTRY_CTLS" },     { 0x485, "IA32_VMX_MISC" },
	{ 0x486, "IA32_VMX_CR0_FIXED0" },     { 0x487, "IA32_VMX_CR0_FIXED1" },
	{ 0x488, "IA32_VMX_CR4_FIXED0" },     { 0x489, "IA32_VMX_CR4_FIXED1" },
	{ 0x48a, "IA32_VMX_VMCS_ENUM" },      { 0x48b, "IA32_VMX_PROCBASED_CTLS2" },
	{ 0x48c, "IA32_VMX_EPT_VPID_CAP" },   { 0x48d, "IA32_VMX_TRUE_PINBASED_CTLS" },
	{ 0x48e, "IA32_VMX_TRUE_PROCBASED_CTLS" }, { 0x48f, "IA32_VMX_TRUE_EXIT_CTLS" },
	{ 0x490, "IA32_VMX_TRUE_ENTRY_CTLS" }, { 0x491, "IA32_VMX_VMFUNC" },
	{ 0x492, "IA32_VMX_PROCBASED_CTLS3" },
};

/* The masked bits of an MSR: its own entries, and those of its non-TRUE
 * or TRUE twin (0x48d-0x490 are 0x481-0x484's). */
static uint64_t masked(uint32_t msr)
{
	uint32_t twin = msr >= 0x48d && msr <= 0x490 ? msr - 0xc : msr;
	uint64_t m = 0;
	for (unsigned i = 0; i < sizeof(not_offered) / sizeof(not_offered[0]); i++)
		if (not_offered[i].msr == msr || not_offered[i].msr == twin)
			m |= not_offered[i].bits;
	return m;
}

TEST(vmx_caps, msrs)
{
	if (!(cpuid(1, 0).ecx & (1u << 5))) {
		say("no VMX");
		return;
	}
	unsigned differ = 0;
	for (unsigned i = 0; i < sizeof(capmsrs) / sizeof(capmsrs[0]); i++) {
		struct {
			uint32_t msr;
			uint64_t val;
		} r = { capmsrs[i].msr, 0 };
		uint64_t m = masked(r.msr);
		bool gp = !rdmsr_safe(r.msr, &r.val);
		if (m == ~0ull) {
			/* Not offered at all: #GP at depth n. */
			if (gp)
				env("%03x %-30s #GP", r.msr, capmsrs[i].name);
			else
				env("%03x %-30s %016llx", r.msr, capmsrs[i].name, (unsigned long long)r.val);
			say("%03x %-30s not compared", r.msr, capmsrs[i].name);
			differ += !gp;
			continue;
		}
		if (gp) {
			env("%03x %-30s #GP", r.msr, capmsrs[i].name);
			say("%03x %-30s absent or not offered", r.msr, capmsrs[i].name);
			continue;
		}
		env("%03x %-30s %016llx", r.msr, capmsrs[i].name, (unsigned long long)r.val);
		say("%03x %-30s %016llx (masked %016llx)", r.msr, capmsrs[i].name, (unsigned long long)(r.val & ~m),
		    (unsigned long long)m);
		differ += (r.val & m) != 0;
	}
	env("%u MSRs have bits of features not offered at depth n", differ);
	for (unsigned i = 0; i < sizeof(not_offered) / sizeof(not_offered[0]); i++)
		say("masked: %03x %016llx %s", not_offered[i].msr, (unsigned long long)not_offered[i].bits,
		    not_offered[i].what);
}
