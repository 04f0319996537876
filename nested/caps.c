/* nested_caps_ro.c - the VMX capabilities of the virtual CPU Nestor gives L1
 * (SDM Vol. 3D appendix A): what the CPU below allows, restricted to what
 * Nestor emulates - never more. */
#include "nested/internal.h"
#include "lib/x86.h"
#include "vmx/vmcs.h"
#include "vmx/vmx_defs.h"

struct nested_caps nested_caps_ro; /* computed once at boot, read-only after */
static bool enabled = true;
static bool shadowing = true;
static bool inv_type_rexw; /* the CPU reads a 32-bit INVEPT/INVVPID type without REX.W */

/* Controls Nestor knows how to merge into VMCS02 and route exits for. */
#define PIN_OFFERED (PIN_EXTINT_EXITING | PIN_NMI_EXITING | PIN_VIRTUAL_NMIS | PIN_PREEMPTION_TIMER)
#define PROC_OFFERED                                                                                         \
	(PROC_INTR_WINDOW | PROC_TSC_OFFSETTING | PROC_HLT_EXITING | PROC_INVLPG_EXITING | PROC_MWAIT_EXITING |  \
	 PROC_RDPMC_EXITING | PROC_RDTSC_EXITING | PROC_CR3_LOAD_EXITING | PROC_CR3_STORE_EXITING |              \
	 PROC_CR8_LOAD_EXITING | PROC_CR8_STORE_EXITING | PROC_NMI_WINDOW | PROC_MOV_DR_EXITING |                \
	 PROC_UNCOND_IO_EXITING | PROC_USE_IO_BITMAPS | PROC_USE_MSR_BITMAPS | PROC_MONITOR_EXITING |            \
	 PROC_PAUSE_EXITING | PROC_SECONDARY_CTLS | PROC_TPR_SHADOW | PROC_MONITOR_TRAP_FLAG)
#define PROC2_OFFERED                                                                                        \
	(PROC2_EPT | PROC2_DESC_TABLE_EXITING | PROC2_RDTSCP | PROC2_VPID | PROC2_WBINVD_EXITING |                \
	 PROC2_UNRESTRICTED_GUEST | PROC2_RDRAND_EXITING | PROC2_INVPCID | PROC2_RDSEED_EXITING | PROC2_XSAVES |  \
	 PROC2_USER_WAIT_PAUSE | PROC2_PCONFIG | PROC2_VIRT_APIC_ACCESS | PROC2_VIRT_X2APIC | PROC2_PML | \
	 PROC2_VMCS_SHADOWING | PROC2_TSC_SCALING | PROC2_VMFUNC | PROC2_EPT_VE | PROC2_APIC_REG_VIRT |          \
	 PROC2_VIRT_INTR_DELIVERY)
#define EXIT_OFFERED                                                                                         \
	(EXIT_SAVE_DEBUG_CTLS | EXIT_HOST_ADDR_SPACE_SIZE | EXIT_ACK_INTR_ON_EXIT | EXIT_SAVE_PAT | EXIT_LOAD_PAT | \
	 EXIT_SAVE_EFER | EXIT_LOAD_EFER | EXIT_SAVE_PREEMPTION_TIMER | EXIT_LOAD_CET_STATE)
#define ENTRY_OFFERED \
	(ENTRY_LOAD_DEBUG_CTLS | ENTRY_IA32E_MODE | ENTRY_LOAD_PAT | ENTRY_LOAD_EFER | ENTRY_LOAD_CET_STATE)

/* The "default1" classes of SDM A.2-A.5: set in the non-TRUE MSRs. */
#define PIN_DEFAULT1 0x00000016u
#define PROC_DEFAULT1 0x0401e172u
#define EXIT_DEFAULT1 0x00036dffu
#define ENTRY_DEFAULT1 0x000011ffu

static uint64_t restrict_ctl(uint64_t real, uint32_t offered)
{
	uint32_t must = (uint32_t)real, may = (uint32_t)(real >> 32) & (offered | must);
	return ((uint64_t)may << 32) | must;
}

static uint64_t with_default1(uint64_t ctl, uint32_t d1) { return ctl | d1 | ((uint64_t)d1 << 32); }

void nested_init(const struct vmx_caps *r, unsigned hide)
{
	vmcs12_init();
	nested_enter_init();
	/* Revision, 4 KiB regions, write-back, TRUE controls; INS/OUTS
	 * information and error-code flexibility as the CPU has them. */
	nested_caps_ro.basic = NESTED_VMCS_REVISION | (4096ull << 32) | (6ull << 50) | (1ull << 55) |
		     (r->basic & ((1ull << 54) | (1ull << 56)));
	nested_caps_ro.true_pin = restrict_ctl(r->pin, PIN_OFFERED);
	nested_caps_ro.true_proc = restrict_ctl(r->proc, PROC_OFFERED);
	nested_caps_ro.true_exit = restrict_ctl(r->exit, EXIT_OFFERED);
	nested_caps_ro.true_entry = restrict_ctl(r->entry, ENTRY_OFFERED);
	nested_caps_ro.pin = with_default1(nested_caps_ro.true_pin, PIN_DEFAULT1);
	nested_caps_ro.proc = with_default1(nested_caps_ro.true_proc, PROC_DEFAULT1);
	nested_caps_ro.exit = with_default1(nested_caps_ro.true_exit, EXIT_DEFAULT1);
	nested_caps_ro.entry = with_default1(nested_caps_ro.true_entry, ENTRY_DEFAULT1);
	nested_caps_ro.proc2 = restrict_ctl(r->proc2, PROC2_OFFERED);
	/* MISC: timer rate, LMA storing, activity states, CR3 targets, MSR
	 * list size, VMWRITE to exit-information fields, zero-length
	 * instruction injection - as the CPU; nothing SMM or PT related. */
	nested_caps_ro.misc = r->misc & (0x1full | (1ull << 5) | (7ull << 6) | (0x1ffull << 16) | (7ull << 25) | (1ull << 29) |
			       (1ull << 30));
	nested_caps_ro.cr0_fixed0 = r->cr0_fixed0;
	nested_caps_ro.cr0_fixed1 = r->cr0_fixed1;
	nested_caps_ro.cr4_fixed0 = r->cr4_fixed0;
	nested_caps_ro.cr4_fixed1 = r->cr4_fixed1;
	nested_caps_ro.vmcs_enum = (uint64_t)vmcs12_max_index() << 1;
	/* EPT: 4-level walks, UC/WB, 2 MiB and 1 GiB pages, accessed and dirty
	 * flags (nested/levels.c), INVEPT single and all; INVVPID all types.
	 * No advanced exit information, no supervisor shadow stack. */
	uint64_t ept_offered = EPT_CAP_EXEC_ONLY | EPT_CAP_WALK4 | EPT_CAP_UC | EPT_CAP_WB | EPT_CAP_2M | EPT_CAP_1G |
			       EPT_CAP_INVEPT | EPT_CAP_INVEPT_SINGLE | EPT_CAP_INVEPT_ALL | EPT_CAP_AD | VPID_CAP_INVVPID |
			       (1ull << 40) | VPID_CAP_SINGLE | VPID_CAP_ALL | (1ull << 43);
	nested_caps_ro.ept_vpid = r->ept_vpid & ept_offered;
	/* VM functions: EPTP switching (function 0) alone, emulated on the
	 * shadow EPTs (nested/insn.c), and only with EPT. */
	nested_caps_ro.vmfunc = r->has_vmfunc ? r->vmfunc & 1 : 0;
	if (!nested_caps_ro.vmfunc || !(nested_caps_ro.proc2 >> 32 & PROC2_EPT))
		nested_caps_ro.proc2 &= ~((uint64_t)PROC2_VMFUNC << 32), nested_caps_ro.vmfunc = 0;
	/* An older CPU, on request.  Without TRUE controls (SDM A.1: VMX_BASIC
	 * bit 55 clear, the TRUE MSRs do not exist) the default1 controls are
	 * fixed to 1: what VM entry checks are the non-TRUE MSRs.  Without VPID
	 * (SDM A.3.3, A.10) the control cannot be set and the VPID half of
	 * IA32_VMX_EPT_VPID_CAP reads 0 (INVVPID is then #UD). */
	if (hide & NESTED_HIDE_TRUE_CTLS) {
		nested_caps_ro.basic &= ~(1ull << 55);
		nested_caps_ro.true_pin = nested_caps_ro.pin;
		nested_caps_ro.true_proc = nested_caps_ro.proc;
		nested_caps_ro.true_exit = nested_caps_ro.exit;
		nested_caps_ro.true_entry = nested_caps_ro.entry;
	}
	if (hide & NESTED_HIDE_VPID) {
		nested_caps_ro.proc2 &= ~((uint64_t)PROC2_VPID << 32);
		nested_caps_ro.ept_vpid &= 0xffffffffull;
	}
	vmcs12_set_features(&nested_caps_ro);
}

/* Asks the CPU how it reads the INVVPID type register in 64-bit mode: an
 * all-context INVVPID with bit 32 set in the type, encoded without REX.W,
 * succeeds on a CPU that reads only 32 bits. */
void nested_probe_inv_type(const struct vmx_caps *r)
{
	if (!(r->ept_vpid & VPID_CAP_INVVPID) || !(r->ept_vpid & VPID_CAP_ALL))
		return;
	struct invvpid_desc d = { 0, 0 };
	uint64_t type = (1ull << 32) | 2;
	uint8_t cf, zf;
	/* 66 0f 38 81 /r without REX.W: invvpid (%rax), %ecx-or-%rcx */
	__asm__ volatile(".byte 0x66, 0x0f, 0x38, 0x81, 0x08\n\tsetc %0\n\tsetz %1"
			 : "=qm"(cf), "=qm"(zf)
			 : "a"(&d), "c"(type)
			 : "cc", "memory");
	inv_type_rexw = !cf && !zf;
}

bool nested_inv_type_needs_rexw(void) { return inv_type_rexw; }


uint64_t nested_caps_hash(void)
{
	/* FNV-1a over the capability MSRs, in their struct order. */
	const uint8_t *p = (const uint8_t *)&nested_caps_ro;
	uint64_t h = 0xcbf29ce484222325ull;
	for (unsigned i = 0; i < sizeof(nested_caps_ro); i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}
bool nested_enabled(void) { return enabled; }
void nested_set_enabled(bool on) { enabled = on; }
bool nested_shadowing_wanted(void) { return shadowing; }
void nested_set_shadowing(bool on) { shadowing = on; }

int nested_rdmsr(uint32_t msr, uint64_t *val)
{
	if (!enabled)
		return -1;
	/* Without TRUE controls (nested_hide=true_ctls) their MSRs do not exist. */
	if (msr >= MSR_VMX_TRUE_PINBASED && msr <= MSR_VMX_TRUE_ENTRY && !(nested_caps_ro.basic & (1ull << 55)))
		return -1;
	switch (msr) {
	case MSR_VMX_BASIC: *val = nested_caps_ro.basic; return 0;
	case MSR_VMX_PINBASED: *val = nested_caps_ro.pin; return 0;
	case MSR_VMX_PROCBASED: *val = nested_caps_ro.proc; return 0;
	case MSR_VMX_EXIT: *val = nested_caps_ro.exit; return 0;
	case MSR_VMX_ENTRY: *val = nested_caps_ro.entry; return 0;
	case MSR_VMX_MISC: *val = nested_caps_ro.misc; return 0;
	case MSR_VMX_CR0_FIXED0: *val = nested_caps_ro.cr0_fixed0; return 0;
	case MSR_VMX_CR0_FIXED1: *val = nested_caps_ro.cr0_fixed1; return 0;
	case MSR_VMX_CR4_FIXED0: *val = nested_caps_ro.cr4_fixed0; return 0;
	case MSR_VMX_CR4_FIXED1: *val = nested_caps_ro.cr4_fixed1; return 0;
	case MSR_VMX_VMCS_ENUM: *val = nested_caps_ro.vmcs_enum; return 0;
	case MSR_VMX_PROCBASED2: *val = nested_caps_ro.proc2; return 0;
	case MSR_VMX_EPT_VPID_CAP: *val = nested_caps_ro.ept_vpid; return 0;
	case MSR_VMX_TRUE_PINBASED: *val = nested_caps_ro.true_pin; return 0;
	case MSR_VMX_TRUE_PROCBASED: *val = nested_caps_ro.true_proc; return 0;
	case MSR_VMX_TRUE_EXIT: *val = nested_caps_ro.true_exit; return 0;
	case MSR_VMX_TRUE_ENTRY: *val = nested_caps_ro.true_entry; return 0;
	case MSR_VMX_VMFUNC: /* exists where VM functions can be enabled */
		if (!(nested_caps_ro.proc2 >> 32 & PROC2_VMFUNC))
			return -1;
		*val = nested_caps_ro.vmfunc;
		return 0;
	default: return -1;
	}
}
