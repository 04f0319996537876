// sources: nested/checks.c nested/vmcs12.c vmx/vmcs.c
// max_len: 1024
/* fuzz_vmcs12_checks.c - the software VM-entry checks of VMCS12
 * (nested/checks.c: vmcs12_check_controls, vmcs12_check_host,
 * vmcs12_eptp_valid) against a reference written here from the SDM
 * (Vol. 3C 26.2.1 controls, 26.2.2-26.2.4 host state, 25.6.11 EPTP).
 *
 * Input: byte 0 picks the capabilities (one of three Bochs models as Nestor
 * offers them, or one derived from a model by the input, caps_models.h),
 * byte 1 the physical-address width (32-52), byte 2 flags: bit 0 "raw"
 * (field slots keep the bits above their width, as after a VMPTRLD of a
 * region the guest scribbled on - SDM: undefined, only crash-freedom and
 * the invariants below are required), bit 1 start from an all-zero VMCS12
 * instead of a valid one; then records (field index mod the number of
 * fields, 8-byte value) applied to the VMCS12.
 *
 * Checked, besides no crash and no UB:
 *   - the verdicts of both checks agree with the reference (not in raw mode);
 *   - vmcs12_eptp_valid agrees with the reference for the EPT pointer field;
 *   - deterministic;
 *   - a field the SDM does not involve never changes a verdict: guest-state
 *     fields other than guest CR0 and the read-only fields for both checks,
 *     host-state fields for the control checks, and control fields other
 *     than the VM-exit and VM-entry controls for the host checks.
 * (The deviations these harnesses found are fixed in checks.c.) */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/x86.h"
#include "nested/checks.h"
#include "vmx/vmx_defs.h"
#include "caps_models.h"

static void fail(const char *what)
{
	fprintf(stderr, "VMCS12 checks property violated: %s\n", what);
	abort();
}

static uint64_t width_mask(uint32_t enc)
{
	switch (vmcs_field_width(enc)) {
	case VMCS_W16: return 0xffff;
	case VMCS_W32: return 0xffffffff;
	default: return ~0ull;
	}
}

/* Field values as VMREAD returns them (SDM 30.3): the field's width. */
static const struct vmcs12 *cur;
#define F(name) (cur->f[V12_##name] & width_mask(VMCS_##name))

/* Bits 63:47 all equal.  The shift is done unsigned: shifting a signed
 * value's bits out of its range is undefined behaviour in C. */
static bool canonical(uint64_t a) { return (uint64_t)((int64_t)(a << 16) >> 16) == a; }

static bool allowed(uint64_t cap, uint32_t v) { return (v & (uint32_t)cap) == (uint32_t)cap && !(v & ~(uint32_t)(cap >> 32)); }

/* Bits at or above the physical-address width. */
static uint64_t beyond(uint64_t a, unsigned maxphy) { return maxphy >= 64 ? 0 : a >> maxphy; }

/* SDM 25.6.11 / 26.2.1.1: an EPT pointer the virtual CPU accepts. */
static bool ref_eptp(uint64_t p, const struct check_env *e)
{
	uint64_t cap = e->caps->ept_vpid;
	unsigned mt = p & 7;
	if (!((mt == 0 && (cap & EPT_CAP_UC)) || (mt == 6 && (cap & EPT_CAP_WB))))
		return false;
	/* Bits 5:3: walk length minus 1; Nestor offers 4-level walks only,
	 * when IA32_VMX_EPT_VPID_CAP[6] says they exist. */
	if (((p >> 3) & 7) != 3 || !(cap & EPT_CAP_WALK4))
		return false;
	if ((p & (1ull << 6)) && !(cap & EPT_CAP_AD))
		return false;
	/* Bit 7 (supervisor shadow stacks) is not offered: reserved like 11:8. */
	return !(p & 0xf80) && !beyond(p, e->maxphyaddr);
}

static bool ref_msr_area(uint64_t addr, uint32_t count, unsigned maxphy)
{
	/* SDM 26.2.1.2/3: 16-byte aligned, last byte within the width. */
	return count == 0 || (!(addr & 15) && !beyond(addr + 16ull * count - 1, maxphy));
}

static bool ref_page(uint64_t a, unsigned maxphy) { return !(a & 0xfff) && !beyond(a, maxphy); }

/* SDM 26.2.1: the VM-execution, VM-exit and VM-entry control fields. */
static bool ref_controls(const struct check_env *e)
{
	const struct nested_caps *c = e->caps;
	unsigned m = e->maxphyaddr;
	uint32_t pin = F(PIN_BASED_CTLS), proc = F(PROC_BASED_CTLS), exit = F(VMEXIT_CTLS), entry = F(VMENTRY_CTLS);
	uint32_t proc2 = (proc & PROC_SECONDARY_CTLS) ? F(PROC_BASED_CTLS2) : 0;
	/* 26.2.1.1: TRUE capability MSRs (IA32_VMX_BASIC[55] is set). */
	if (!allowed(c->true_pin, pin) || !allowed(c->true_proc, proc) || !allowed(c->true_exit, exit) ||
	    !allowed(c->true_entry, entry) || ((proc & PROC_SECONDARY_CTLS) && !allowed(c->proc2, proc2)))
		return false;
	if (F(CR3_TARGET_COUNT) > ((c->misc >> 16) & 0x1ff))
		return false;
	if ((proc & PROC_USE_IO_BITMAPS) && (!ref_page(F(IO_BITMAP_A), m) || !ref_page(F(IO_BITMAP_B), m)))
		return false;
	if ((proc & PROC_USE_MSR_BITMAPS) && !ref_page(F(MSR_BITMAP), m))
		return false;
	if ((pin & PIN_VIRTUAL_NMIS) && !(pin & PIN_NMI_EXITING))
		return false;
	if ((proc & PROC_NMI_WINDOW) && !(pin & PIN_VIRTUAL_NMIS))
		return false;
	if ((proc2 & PROC2_VPID) && F(VPID) == 0)
		return false;
	if ((proc2 & PROC2_EPT) && !ref_eptp(F(EPT_POINTER), e))
		return false;
	if ((proc2 & PROC2_UNRESTRICTED_GUEST) && !(proc2 & PROC2_EPT))
		return false;
	/* 26.2.1.2 */
	if ((exit & EXIT_SAVE_PREEMPTION_TIMER) && !(pin & PIN_PREEMPTION_TIMER))
		return false;
	if (!ref_msr_area(F(VMEXIT_MSR_STORE_ADDR), F(VMEXIT_MSR_STORE_COUNT), m) ||
	    !ref_msr_area(F(VMEXIT_MSR_LOAD_ADDR), F(VMEXIT_MSR_LOAD_COUNT), m))
		return false;
	/* 26.2.1.3 */
	if (!ref_msr_area(F(VMENTRY_MSR_LOAD_ADDR), F(VMENTRY_MSR_LOAD_COUNT), m))
		return false;
	uint32_t info = F(VMENTRY_INTR_INFO);
	if (!(info & INTR_INFO_VALID))
		return true;
	unsigned type = (info >> 8) & 7, vec = info & 0xff;
	if (info & 0x7ffff000u) /* bits 30:12 */
		return false;
	bool mtf = (c->true_proc >> 32) & PROC_MONITOR_TRAP_FLAG;
	if (type == 1 || (type == 7 && (!mtf || vec != 0)))
		return false;
	if ((type == INTR_TYPE_NMI && vec != 2) || (type == INTR_TYPE_HW_EXCEPTION && vec > 31) ||
	    (type == INTR_TYPE_OTHER && vec != 0))
		return false;
	bool deliver = info & INTR_INFO_ERRCODE_VALID;
	bool pe = (F(GUEST_CR0) & CR0_PE) || !(proc2 & PROC2_UNRESTRICTED_GUEST);
	bool basic56 = c->basic & (1ull << 56);
	bool has_ec = vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21;
	/* Deliver-error-code is 1 if all of: hardware exception, CR0.PE (or
	 * not unrestricted), BASIC[56] clear, a vector with an error code;
	 * 0 if any of: not a hardware exception, real mode, BASIC[56] clear
	 * and a vector without one. */
	if (type == INTR_TYPE_HW_EXCEPTION && pe && !basic56 && has_ec && !deliver)
		return false;
	if (deliver && (type != INTR_TYPE_HW_EXCEPTION || !pe || (!basic56 && !has_ec)))
		return false;
	/* Bits 31:16 of the error code are 0 (bit 15 is SGX's in #PF codes;
	 * older SDMs said 31:15). */
	if (deliver && (F(VMENTRY_EXCEPTION_ERRCODE) & 0xffff0000u))
		return false;
	if (type == INTR_TYPE_SW_INTR || type == INTR_TYPE_PRIV_SW_EXCEPTION || type == INTR_TYPE_SW_EXCEPTION) {
		uint32_t len = F(VMENTRY_INSTR_LEN);
		if (len > 15 || (len == 0 && !(c->misc & (1ull << 30))))
			return false;
	}
	return true;
}

/* SDM 26.2.2-26.2.4: host-state area and address-space size. */
static bool ref_host(const struct check_env *e)
{
	const struct nested_caps *c = e->caps;
	uint64_t cr0 = F(HOST_CR0), cr4 = F(HOST_CR4);
	uint32_t exit = F(VMEXIT_CTLS), entry = F(VMENTRY_CTLS);
	bool host64 = exit & EXIT_HOST_ADDR_SPACE_SIZE;
	if ((cr0 & c->cr0_fixed0) != c->cr0_fixed0 || (cr0 & ~c->cr0_fixed1))
		return false;
	if ((cr4 & c->cr4_fixed0) != c->cr4_fixed0 || (cr4 & ~c->cr4_fixed1))
		return false;
	if ((cr4 & CR4_CET) && !(cr0 & CR0_WP))
		return false;
	if (beyond(F(HOST_CR3), e->maxphyaddr))
		return false;
	if (!canonical(F(HOST_IA32_SYSENTER_ESP)) || !canonical(F(HOST_IA32_SYSENTER_EIP)))
		return false;
	if (exit & EXIT_LOAD_PAT)
		for (int i = 0; i < 64; i += 8) {
			unsigned t = (F(HOST_IA32_PAT) >> i) & 0xff;
			if (t == 2 || t == 3 || t > 7)
				return false;
		}
	if (exit & EXIT_LOAD_EFER) {
		uint64_t efer = F(HOST_IA32_EFER);
		if ((efer & ~(uint64_t)(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)) || !!(efer & EFER_LMA) != host64 ||
		    !!(efer & EFER_LME) != host64)
			return false;
	}
	/* 26.2.3: selectors: RPL and TI 0; CS and TR not 0, SS not 0 for a 32-bit host. */
	uint64_t sel[7] = { F(HOST_ES_SEL), F(HOST_CS_SEL), F(HOST_SS_SEL), F(HOST_DS_SEL),
			    F(HOST_FS_SEL), F(HOST_GS_SEL), F(HOST_TR_SEL) };
	for (int i = 0; i < 7; i++)
		if (sel[i] & 7)
			return false;
	if (F(HOST_CS_SEL) == 0 || F(HOST_TR_SEL) == 0 || (!host64 && F(HOST_SS_SEL) == 0))
		return false;
	if (!canonical(F(HOST_FS_BASE)) || !canonical(F(HOST_GS_BASE)) || !canonical(F(HOST_GDTR_BASE)) ||
	    !canonical(F(HOST_IDTR_BASE)) || !canonical(F(HOST_TR_BASE)))
		return false;
	/* 26.2.4 */
	if (!host64 && ((entry & ENTRY_IA32E_MODE) || (cr4 & CR4_PCIDE) || (F(HOST_RIP) >> 32)))
		return false;
	if (host64 && (!(cr4 & CR4_PAE) || !canonical(F(HOST_RIP))))
		return false;
	return true;
}

/* A VMCS12 that passes both checks with these caps: controls at their
 * allowed-0 settings, a 64-bit host. */
static void valid_base(struct vmcs12 *v, const struct nested_caps *c)
{
	memset(v, 0, sizeof(*v));
	v->f[V12_PIN_BASED_CTLS] = (uint32_t)c->true_pin;
	v->f[V12_PROC_BASED_CTLS] = (uint32_t)c->true_proc;
	v->f[V12_PROC_BASED_CTLS2] = (uint32_t)c->proc2;
	v->f[V12_VMEXIT_CTLS] = (uint32_t)c->true_exit | (EXIT_HOST_ADDR_SPACE_SIZE & (uint32_t)(c->true_exit >> 32));
	v->f[V12_VMENTRY_CTLS] = (uint32_t)c->true_entry;
	v->f[V12_HOST_CR0] = c->cr0_fixed0;
	v->f[V12_HOST_CR4] = c->cr4_fixed0 | (CR4_PAE & c->cr4_fixed1);
	v->f[V12_HOST_CR3] = 0x1000;
	v->f[V12_HOST_CS_SEL] = 0x08;
	v->f[V12_HOST_SS_SEL] = v->f[V12_HOST_DS_SEL] = v->f[V12_HOST_ES_SEL] = 0x10;
	v->f[V12_HOST_TR_SEL] = 0x18;
	v->f[V12_HOST_RIP] = 0x100000;
	v->f[V12_HOST_IA32_PAT] = 0x0007040600070406ull;
	v->f[V12_HOST_IA32_EFER] = EFER_LME | EFER_LMA | EFER_SCE;
	v->f[V12_GUEST_CR0] = CR0_PE;
}

/* Which rule refused (each check returns one string per rule) is made
 * coverage, so that the corpus reaches every rule with each caps set
 * (libFuzzer reads counters in this section as it reads its own). */
__attribute__((section("__libfuzzer_extra_counters"), used)) static uint8_t rule_feature[2][4][64];

static void feature(int which, unsigned caps_sel, const char *rule)
{
	rule_feature[which][caps_sel & 3][rule ? 1 + ((uintptr_t)rule >> 3) % 63 : 0]++;
}

static bool verdict_ctl(const struct vmcs12 *v, const struct check_env *e) { return vmcs12_check_controls(v, e) == NULL; }
static bool verdict_host(const struct vmcs12 *v, const struct check_env *e) { return vmcs12_check_host(v, e) == NULL; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool inited;
	if (!inited) {
		vmcs12_init();
		inited = true;
	}
	struct input in = { data, size };
	struct nested_caps caps;
	unsigned sel = (unsigned)take(&in, 1);
	if ((sel & 3) == 3)
		derive_caps(&caps, &in);
	else
		caps = caps_models[(sel & 3) % 3];
	struct check_env env = { &caps, 32 + (unsigned)take(&in, 1) % 21 };
	unsigned flags = (unsigned)take(&in, 1);
	bool raw = flags & 1;

	static struct vmcs12 v, w;
	if (flags & 2)
		memset(&v, 0, sizeof(v));
	else
		valid_base(&v, &caps);
	uint64_t pattern = 0;
	while (in.n) {
		unsigned idx = (unsigned)take(&in, 1) % V12_NFIELDS;
		uint64_t val = take(&in, 8);
		v.f[idx] = raw ? val : val & width_mask(vmcs_all_fields[idx]);
		pattern ^= val;
	}
	cur = &v;

	const char *rc = vmcs12_check_controls(&v, &env), *rh = vmcs12_check_host(&v, &env);
	feature(0, sel, rc);
	feature(1, sel, rh);
	if (vmcs12_check_controls(&v, &env) != rc || vmcs12_check_host(&v, &env) != rh)
		fail("two checks of the same VMCS12 differ");
	if (!raw) {
		bool ref_c = ref_controls(&env), ref_h = ref_host(&env);
		if ((rc == NULL) != ref_c) {
			fprintf(stderr, "controls: nestor %s, SDM %s\n", rc ? rc : "valid", ref_c ? "valid" : "invalid");
			fail("control-field verdict differs from the SDM's");
		}
		if ((rh == NULL) != ref_h) {
			fprintf(stderr, "host: nestor %s, SDM %s\n", rh ? rh : "valid", ref_h ? "valid" : "invalid");
			fail("host-state verdict differs from the SDM's");
		}
		if (vmcs12_eptp_valid(F(EPT_POINTER), &env) != ref_eptp(F(EPT_POINTER), &env))
			fail("EPT pointer validity differs from the SDM's");
	}

	/* Fields the SDM does not involve change no verdict. */
	bool vc = rc == NULL, vh = rh == NULL;
	uint64_t p = pattern ^ 0x5a5a5a5a5a5a5a5aull;
	w = v;
	for (unsigned i = 0; i < V12_NFIELDS; i++) {
		enum vmcs_type t = vmcs_field_type(vmcs_all_fields[i]);
		if ((t == VMCS_T_GUEST && i != V12_GUEST_CR0) || t == VMCS_T_EXIT_INFO)
			w.f[i] = raw ? p : p & width_mask(vmcs_all_fields[i]);
	}
	if (verdict_ctl(&w, &env) != vc || verdict_host(&w, &env) != vh)
		fail("a guest-state (other than CR0) or read-only field changed a verdict");
	w = v;
	for (unsigned i = 0; i < V12_NFIELDS; i++)
		if (vmcs_field_type(vmcs_all_fields[i]) == VMCS_T_HOST)
			w.f[i] = raw ? ~p : ~p & width_mask(vmcs_all_fields[i]);
	if (verdict_ctl(&w, &env) != vc)
		fail("a host-state field changed the control-field verdict");
	w = v;
	for (unsigned i = 0; i < V12_NFIELDS; i++)
		if (vmcs_field_type(vmcs_all_fields[i]) != VMCS_T_HOST && i != V12_VMEXIT_CTLS && i != V12_VMENTRY_CTLS)
			w.f[i] = raw ? p : p & width_mask(vmcs_all_fields[i]);
	if (verdict_host(&w, &env) != vh)
		fail("a field other than host state and the exit/entry controls changed the host-state verdict");
	return 0;
}
