/* checks.c - the VM-entry checks of VMCS12 that Nestor makes in software
 * (SDM 26.2: controls, host state) and the EPT12 walk (SDM 28.3.2), as pure
 * functions (see checks.h).  The guest-state checks are the CPU's: VMCS02's
 * guest area is a copy of VMCS12's. */
#include "nested/checks.h"
#include "lib/x86.h"
#include "vmx/vmx_defs.h"

static uint64_t width_mask(const struct check_env *e)
{
	return ~((1ull << e->maxphyaddr) - 1);
}

/* Bits 63:47 all equal.  The shift is done unsigned: shifting a signed
 * value's bits out of its range is undefined behaviour in C. */

/* A control value within what the virtual CPU allows (SDM 26.2.1.1). */
static bool ctl_ok(uint64_t cap, uint32_t val)
{
	uint32_t must = (uint32_t)cap, may = (uint32_t)(cap >> 32);
	return (val & must) == must && !(val & ~may);
}

static bool page_addr_ok(uint64_t a, const struct check_env *e) { return !(a & 0xfff) && !(a & width_mask(e)); }

bool vmcs12_eptp_valid(uint64_t eptp, const struct check_env *e)
{
	const struct nested_caps *c = e->caps;
	unsigned mt = eptp & 7;
	if (!((mt == MT_UC && (c->ept_vpid & EPT_CAP_UC)) || (mt == MT_WB && (c->ept_vpid & EPT_CAP_WB))))
		return false;
	/* Page-walk length 4, if the CPU supports it (IA32_VMX_EPT_VPID_CAP[6]). */
	if (((eptp >> 3) & 7) != 3 || !(c->ept_vpid & EPT_CAP_WALK4))
		return false;
	if ((eptp & (1ull << 6)) && !(c->ept_vpid & EPT_CAP_AD))
		return false;
	return !(eptp & 0xf80) && !(eptp & width_mask(e));
}

static bool msr_area_ok(uint64_t addr, uint32_t count, const struct check_env *e)
{
	return count == 0 || (!(addr & 15) && !((addr + 16ull * count - 1) & width_mask(e)));
}

/* SDM 26.2.1.3: with IA32_VMX_BASIC[56] clear, the exceptions that push an
 * error code.  Not #CP (21): it has one only on CPUs with CET, which set
 * BASIC[56] and so skip this rule (KVM and Bochs 2.7 read it the same). */
static bool has_error_code_vector(unsigned v) { return v == 8 || (v >= 10 && v <= 14) || v == 17; }

/* SDM 26.2.1: VM-execution, VM-exit and VM-entry control fields. */
const char *vmcs12_check_controls(const struct vmcs12 *c, const struct check_env *e)
{
	const struct nested_caps *nc = e->caps;
	uint32_t pin = V12(c, PIN_BASED_CTLS), proc = V12(c, PROC_BASED_CTLS);
	uint32_t proc2 = (proc & PROC_SECONDARY_CTLS) ? V12(c, PROC_BASED_CTLS2) : 0;
	uint32_t exit = V12(c, VMEXIT_CTLS), entry = V12(c, VMENTRY_CTLS);
	if (!ctl_ok(nc->true_pin, pin) || !ctl_ok(nc->true_proc, proc) || !ctl_ok(nc->true_exit, exit) ||
	    !ctl_ok(nc->true_entry, entry))
		return "a pin-based, primary, exit or entry control outside the allowed settings";
	if ((proc & PROC_SECONDARY_CTLS) && !ctl_ok(nc->proc2, proc2))
		return "a secondary control outside the allowed settings";
	if (V12(c, CR3_TARGET_COUNT) > ((nc->misc >> 16) & 0x1ff))
		return "CR3-target count above the supported number";
	if ((proc & PROC_USE_IO_BITMAPS) && (!page_addr_ok(V12(c, IO_BITMAP_A), e) || !page_addr_ok(V12(c, IO_BITMAP_B), e)))
		return "I/O bitmap address not 4 KiB aligned or beyond the physical-address width";
	if ((proc & PROC_USE_MSR_BITMAPS) && !page_addr_ok(V12(c, MSR_BITMAP), e))
		return "MSR bitmap address not 4 KiB aligned or beyond the physical-address width";
	/* TPR shadow without virtual-interrupt delivery: the threshold is 4
	 * bits (its check against VTPR reads memory: enter.c); with it, the
	 * threshold is not used and not checked. */
	if ((proc & PROC_TPR_SHADOW) && !page_addr_ok(V12(c, VIRTUAL_APIC_ADDR), e))
		return "virtual-APIC address not 4 KiB aligned or beyond the physical-address width";
	if ((proc & PROC_TPR_SHADOW) && !(proc2 & PROC2_VIRT_INTR_DELIVERY) && (V12(c, TPR_THRESHOLD) & ~0xfull))
		return "TPR threshold above 15";
	if ((proc2 & PROC2_VIRT_INTR_DELIVERY) && !(pin & PIN_EXTINT_EXITING))
		return "virtual-interrupt delivery without external-interrupt exiting";
	if ((proc2 & (PROC2_APIC_REG_VIRT | PROC2_VIRT_INTR_DELIVERY)) && !(proc & PROC_TPR_SHADOW))
		return "APIC-register virtualization or virtual-interrupt delivery without TPR shadow";
	if ((proc2 & PROC2_VIRT_APIC_ACCESS) && !page_addr_ok(V12(c, APIC_ACCESS_ADDR), e))
		return "APIC-access address not 4 KiB aligned or beyond the physical-address width";
	if ((proc2 & PROC2_VIRT_X2APIC) && !(proc & PROC_TPR_SHADOW))
		return "virtualize x2APIC mode without TPR shadow";
	if ((proc2 & PROC2_VIRT_X2APIC) && (proc2 & PROC2_VIRT_APIC_ACCESS))
		return "virtualize x2APIC mode with APIC-access virtualization";
	if (!(pin & PIN_NMI_EXITING) && (pin & PIN_VIRTUAL_NMIS))
		return "virtual NMIs without NMI exiting";
	if (!(pin & PIN_VIRTUAL_NMIS) && (proc & PROC_NMI_WINDOW))
		return "NMI-window exiting without virtual NMIs";
	if ((proc2 & PROC2_VPID) && V12(c, VPID) == 0)
		return "VPID enabled with VPID 0";
	if ((proc2 & PROC2_EPT) && !vmcs12_eptp_valid(V12(c, EPT_POINTER), e))
		return "invalid EPT pointer (memory type, walk length, reserved bits)";
	if ((proc2 & PROC2_UNRESTRICTED_GUEST) && !(proc2 & PROC2_EPT))
		return "unrestricted guest without EPT";
	if ((proc2 & PROC2_PML) && !(proc2 & PROC2_EPT))
		return "page-modification logging without EPT";
	if ((proc2 & PROC2_PML) && !page_addr_ok(V12(c, PML_ADDR), e))
		return "PML address not 4 KiB aligned or beyond the physical-address width";
	/* VM functions (SDM 26.2.1.1): only those offered; EPTP switching needs
	 * EPT and a valid EPTP-list address. */
	uint64_t vmfunc = (proc2 & PROC2_VMFUNC) ? V12(c, VMFUNC_CONTROLS) : 0;
	if (vmfunc & ~nc->vmfunc)
		return "a VM function not offered enabled";
	if ((vmfunc & 1) && !(proc2 & PROC2_EPT))
		return "EPTP switching without EPT";
	if ((vmfunc & 1) && !page_addr_ok(V12(c, EPTP_LIST_ADDR), e))
		return "EPTP-list address not 4 KiB aligned or beyond the physical-address width";
	if ((proc2 & PROC2_TSC_SCALING) && V12(c, TSC_MULTIPLIER) == 0)
		return "TSC scaling with a multiplier of 0";
	if ((proc2 & PROC2_EPT_VE) && !page_addr_ok(V12(c, VE_INFO_ADDR), e))
		return "#VE information address not 4 KiB aligned or beyond the physical-address width";
	if ((proc2 & PROC2_VMCS_SHADOWING) &&
	    (!page_addr_ok(V12(c, VMREAD_BITMAP), e) || !page_addr_ok(V12(c, VMWRITE_BITMAP), e)))
		return "VMREAD/VMWRITE bitmap address not 4 KiB aligned or beyond the physical-address width";
	if (!(pin & PIN_PREEMPTION_TIMER) && (exit & EXIT_SAVE_PREEMPTION_TIMER))
		return "saving the preemption timer without activating it";
	if (!msr_area_ok(V12(c, VMEXIT_MSR_STORE_ADDR), V12(c, VMEXIT_MSR_STORE_COUNT), e) ||
	    !msr_area_ok(V12(c, VMEXIT_MSR_LOAD_ADDR), V12(c, VMEXIT_MSR_LOAD_COUNT), e) ||
	    !msr_area_ok(V12(c, VMENTRY_MSR_LOAD_ADDR), V12(c, VMENTRY_MSR_LOAD_COUNT), e))
		return "MSR store/load area not 16-byte aligned or beyond the physical-address width";
	/* Event injection (SDM 26.2.1.3). */
	uint32_t info = V12(c, VMENTRY_INTR_INFO);
	if (info & INTR_INFO_VALID) {
		unsigned type = (info >> 8) & 7, vec = info & 0xff;
		bool ug = proc2 & PROC2_UNRESTRICTED_GUEST;
		bool pe = V12(c, GUEST_CR0) & CR0_PE;
		bool any_errcode = nc->basic & (1ull << 56);
		if (info & 0x7ffff000u)
			return "reserved bits set in the VM-entry interruption information";
		/* Type 7, "other event": a pending MTF VM exit (vector 0), where the
		 * monitor trap flag can be set. */
		bool mtf = (nc->true_proc >> 32) & PROC_MONITOR_TRAP_FLAG;
		if (type == 1 || (type == INTR_TYPE_OTHER && !mtf))
			return "injected event of a reserved type";
		if (type == INTR_TYPE_OTHER && vec != 0)
			return "injected pending MTF VM exit with a vector other than 0";
		if ((type == INTR_TYPE_NMI && vec != 2) || (type == INTR_TYPE_HW_EXCEPTION && vec > 31))
			return "injected event: vector does not match its type";
		bool want_ec = type == INTR_TYPE_HW_EXCEPTION && (!ug || pe) && (any_errcode || has_error_code_vector(vec));
		bool deliver = info & INTR_INFO_ERRCODE_VALID;
		if (deliver && (type != INTR_TYPE_HW_EXCEPTION || (ug && !pe)))
			return "injected event: error code for a type or mode that has none";
		if (!any_errcode && deliver != want_ec)
			return "injected exception: error code delivered iff the vector has one";
		if (deliver && (V12(c, VMENTRY_EXCEPTION_ERRCODE) & 0xffff0000u))
			return "injected exception: error code bits 31:16 set";
		if (type == INTR_TYPE_SW_INTR || type == INTR_TYPE_PRIV_SW_EXCEPTION || type == INTR_TYPE_SW_EXCEPTION) {
			uint32_t len = V12(c, VMENTRY_INSTR_LEN);
			if (len > 15 || (len == 0 && !(nc->misc & (1ull << 30))))
				return "injected software event: instruction length not 1..15";
		}
	}
	return NULL;
}

bool nested_cet_control_ok(uint64_t s_cet)
{
	return !(s_cet & 0x3c0) && (s_cet & 0xc00) != 0xc00;
}

/* SDM 26.2.2-26.2.4: host-state area and address-space size. */
const char *vmcs12_check_host(const struct vmcs12 *c, const struct check_env *e)
{
	const struct nested_caps *nc = e->caps;
	uint64_t cr0 = V12(c, HOST_CR0), cr4 = V12(c, HOST_CR4);
	uint32_t exit = V12(c, VMEXIT_CTLS), entry = V12(c, VMENTRY_CTLS);
	bool host64 = exit & EXIT_HOST_ADDR_SPACE_SIZE;
	if ((cr0 & nc->cr0_fixed0) != nc->cr0_fixed0 || (cr0 & ~nc->cr0_fixed1))
		return "host CR0 violates the VMX fixed bits";
	if ((cr4 & nc->cr4_fixed0) != nc->cr4_fixed0 || (cr4 & ~nc->cr4_fixed1))
		return "host CR4 violates the VMX fixed bits";
	if ((cr4 & CR4_CET) && !(cr0 & CR0_WP))
		return "host CR4.CET without CR0.WP";
	if (V12(c, HOST_CR3) & width_mask(e))
		return "host CR3 beyond the physical-address width";
	if (!x86_canonical(V12(c, HOST_IA32_SYSENTER_ESP)) || !x86_canonical(V12(c, HOST_IA32_SYSENTER_EIP)))
		return "host SYSENTER ESP/EIP not canonical";
	if (exit & EXIT_LOAD_PAT) {
		for (int i = 0; i < 8; i++) {
			unsigned t = (V12(c, HOST_IA32_PAT) >> (8 * i)) & 0xff;
			if (t == 2 || t == 3 || t > 7)
				return "host PAT with an invalid memory type";
		}
	}
	if (exit & EXIT_LOAD_EFER) {
		uint64_t efer = V12(c, HOST_IA32_EFER);
		if ((efer & ~(uint64_t)(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)) ||
		    !!(efer & EFER_LMA) != host64 || !!(efer & EFER_LME) != host64)
			return "host EFER reserved bits, or LMA/LME not matching the host address-space size";
	}
	/* SDM 26.2.2: the CET state the exit loads - IA32_S_CET without
	 * reserved bits (9:6) nor both of bits 10 and 11, SSP with bits 1:0
	 * clear, all three canonical; for a 32-bit host, S_CET and SSP with
	 * bits 63:32 clear. */
	if (exit & EXIT_LOAD_CET_STATE) {
		uint64_t s_cet = V12(c, HOST_IA32_S_CET), ssp = V12(c, HOST_SSP);
		if (!x86_canonical(s_cet) || !x86_canonical(ssp) || !x86_canonical(V12(c, HOST_IA32_INTR_SSP_TABLE_ADDR)) ||
		    (!host64 && ((s_cet | ssp) >> 32)))
			return "host CET state: an address not canonical, or above 4 GiB for a 32-bit host";
		if (!nested_cet_control_ok(s_cet) || (ssp & 3))
			return "host CET state: IA32_S_CET reserved bits, or SSP not 4-byte aligned";
	}
	static const uint32_t sels[7] = { VMCS_HOST_ES_SEL, VMCS_HOST_CS_SEL, VMCS_HOST_SS_SEL, VMCS_HOST_DS_SEL,
					  VMCS_HOST_FS_SEL, VMCS_HOST_GS_SEL, VMCS_HOST_TR_SEL };
	for (int i = 0; i < 7; i++)
		if (c->f[vmcs12_index(sels[i])] & 7)
			return "a host selector with RPL or TI set";
	if (V12(c, HOST_CS_SEL) == 0 || V12(c, HOST_TR_SEL) == 0 || (!host64 && V12(c, HOST_SS_SEL) == 0))
		return "host CS or TR selector 0 (or SS for a 32-bit host)";
	if (!x86_canonical(V12(c, HOST_FS_BASE)) || !x86_canonical(V12(c, HOST_GS_BASE)) || !x86_canonical(V12(c, HOST_GDTR_BASE)) ||
	    !x86_canonical(V12(c, HOST_IDTR_BASE)) || !x86_canonical(V12(c, HOST_TR_BASE)))
		return "a host base address not canonical";
	if (host64) {
		if (!(cr4 & CR4_PAE) || !x86_canonical(V12(c, HOST_RIP)))
			return "64-bit host: CR4.PAE clear or RIP not canonical";
	} else {
		if ((entry & ENTRY_IA32E_MODE) || (cr4 & CR4_PCIDE) || (V12(c, HOST_RIP) >> 32))
			return "32-bit host with an IA-32e guest, PCIDE or a 64-bit RIP";
	}
	return NULL;
}


/* --- the EPT12 walk (SDM 28.3.2, misconfigurations 28.3.3.1) --------------- */

static bool mtype_valid(unsigned mt) { return mt != 2 && mt != 3 && mt != 7; }

int ept12_walk(ept_read_fn read, void *ctx, uint64_t eptp, uint64_t gpa, const struct check_env *env,
	       struct ept_leaf *out)
{
	const struct nested_caps *c = env->caps;
	uint64_t rsvd_addr = ~((1ull << env->maxphyaddr) - 1) & 0x000ffffffffff000ull;
	uint64_t table = eptp & EPT_ADDR_MASK;
	unsigned r = 7;
	out->n = 0;
	for (int level = 4; level >= 1; level--) {
		int shift = 12 + 9 * (level - 1);
		uint64_t e, pa = table + ((gpa >> shift) & 511) * 8;
		if (!read(ctx, pa, &e))
			e = 0;
		out->entry[out->n] = e;
		out->entry_pa[out->n++] = pa;
		unsigned perm = e & 7;
		if (!perm) {
			out->rights = 0; /* what the violation reports as granted */
			return EPT_WALK_NOT_PRESENT;
		}
		/* Write without read; execute-only without support; reserved
		 * address bits (any level). */
		if ((perm & 3) == 2 || (perm == 4 && !(c->ept_vpid & EPT_CAP_EXEC_ONLY)) || (e & rsvd_addr))
			return EPT_WALK_MISCONFIG;
		r &= perm;
		bool leaf = level == 1 || (e & EPT_LARGE);
		if (leaf && level > 1 &&
		    (level == 4 || (level == 3 && !(c->ept_vpid & EPT_CAP_1G)) || (level == 2 && !(c->ept_vpid & EPT_CAP_2M))))
			return EPT_WALK_MISCONFIG; /* bit 7 reserved where no page of that size exists */
		if (!leaf) {
			/* An entry that references a table: bits 7:3 (PML4E) or 6:3
			 * (PDPTE, PDE; bit 7 is clear here) are reserved. */
			if (e & 0x78)
				return EPT_WALK_MISCONFIG;
			table = e & EPT_ADDR_MASK;
			continue;
		}
		unsigned mt = (e >> 3) & 7;
		if (!mtype_valid(mt))
			return EPT_WALK_MISCONFIG;
		uint64_t page = 1ull << shift;
		/* Address bits below a large page's size are reserved. */
		if (level > 1 && (e & (page - 1) & ~0xfffull))
			return EPT_WALK_MISCONFIG;
		out->addr = (e & EPT_ADDR_MASK & ~(page - 1)) | (gpa & (page - 1));
		out->rights = r;
		out->mtype = mt | ((e & EPT_IGNORE_PAT) ? 8 : 0);
		out->shift = shift;
		return EPT_WALK_OK;
	}
	return EPT_WALK_MISCONFIG; /* not reached */
}
