/* vmx.h - the guest test kernel as a small VMX hypervisor: shared pieces of
 * the vmx and vmx_exits suites (guest/tests/vmx*.c, vmx_asm.S).
 *
 * The constants are written out here on purpose rather than shared with
 * Nestor's vmx/ headers: the suite tests Nestor's virtual VT-x and must not
 * inherit its mistakes. */
#ifndef GUEST_VMX_H
#define GUEST_VMX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "guest/kernel.h"

/* --- capability MSRs (SDM appendix A) ------------------------------------ */
#define MSR_VMX_BASIC 0x480
#define MSR_VMX_PINBASED 0x481
#define MSR_VMX_PROCBASED 0x482
#define MSR_VMX_EXIT 0x483
#define MSR_VMX_ENTRY 0x484
#define MSR_VMX_MISC 0x485
#define MSR_VMX_CR0_FIXED0 0x486
#define MSR_VMX_CR0_FIXED1 0x487
#define MSR_VMX_CR4_FIXED0 0x488
#define MSR_VMX_CR4_FIXED1 0x489
#define MSR_VMX_VMCS_ENUM 0x48a
#define MSR_VMX_PROCBASED2 0x48b
#define MSR_VMX_EPT_VPID_CAP 0x48c
#define MSR_VMX_TRUE_PINBASED 0x48d
#define MSR_VMX_TRUE_PROCBASED 0x48e
#define MSR_VMX_TRUE_EXIT 0x48f
#define MSR_VMX_TRUE_ENTRY 0x490

/* --- controls ------------------------------------------------------------ */
#define PIN_EXTINT (1u << 0)
#define PIN_NMI (1u << 3)
#define PIN_VIRTUAL_NMI (1u << 5)
#define PIN_PREEMPT (1u << 6)

#define PROC_INTR_WINDOW (1u << 2)
#define PROC_HLT (1u << 7)
#define PROC_TPR_SHADOW (1u << 21)
#define PROC_INVLPG (1u << 9)
#define PROC_RDPMC (1u << 11)
#define PROC_RDTSC (1u << 12)
#define PROC_CR3_LOAD (1u << 15)
#define PROC_CR3_STORE (1u << 16)
#define PROC_CR8_LOAD (1u << 19)
#define PROC_CR8_STORE (1u << 20)
#define PROC_NMI_WINDOW (1u << 22)
#define PROC_MOV_DR (1u << 23)
#define PROC_UNCOND_IO (1u << 24)
#define PROC_IO_BITMAPS (1u << 25)
#define PROC_MSR_BITMAPS (1u << 28)
#define PROC_PAUSE (1u << 30)
#define PROC_SECONDARY (1u << 31)

#define PROC2_EPT (1u << 1)
#define PROC2_RDTSCP (1u << 3)
#define PROC2_VPID (1u << 5)
#define PROC2_UNRESTRICTED (1u << 7)
#define PROC2_RDRAND_EXIT (1u << 11)
#define PROC2_INVPCID (1u << 12)
#define PROC2_SHADOW_VMCS (1u << 14)
#define PROC2_RDSEED_EXIT (1u << 16)
#define PROC2_PML (1u << 17)

#define EXIT_SAVE_DEBUG (1u << 2)
#define EXIT_HOST_64 (1u << 9)
#define EXIT_ACK_INTR (1u << 15)
#define EXIT_SAVE_PAT (1u << 18)
#define EXIT_LOAD_PAT (1u << 19)
#define EXIT_SAVE_EFER (1u << 20)
#define EXIT_LOAD_EFER (1u << 21)
#define EXIT_SAVE_PREEMPT (1u << 22)
#define EXIT_LOAD_CET (1u << 28)

#define ENTRY_LOAD_DEBUG (1u << 2)
#define ENTRY_IA32E (1u << 9)
#define ENTRY_LOAD_PAT (1u << 14)
#define ENTRY_LOAD_EFER (1u << 15)
#define ENTRY_LOAD_CET (1u << 20)

/* The core feature set both depths offer (and the only one the suites use). */
#define CORE_PIN (PIN_EXTINT | PIN_NMI | PIN_VIRTUAL_NMI | PIN_PREEMPT)
#define CORE_PROC                                                                                       \
	(PROC_INTR_WINDOW | PROC_HLT | PROC_INVLPG | PROC_RDTSC | PROC_CR3_LOAD | PROC_CR3_STORE |      \
	 PROC_CR8_LOAD | PROC_CR8_STORE | PROC_NMI_WINDOW | PROC_MOV_DR | PROC_UNCOND_IO | PROC_IO_BITMAPS | \
	 PROC_MSR_BITMAPS | PROC_PAUSE | PROC_SECONDARY)
#define CORE_PROC2 (PROC2_EPT | PROC2_VPID | PROC2_UNRESTRICTED | PROC2_RDTSCP)
#define CORE_EXIT                                                                                        \
	(EXIT_HOST_64 | EXIT_SAVE_EFER | EXIT_LOAD_EFER | EXIT_SAVE_PAT | EXIT_LOAD_PAT | EXIT_ACK_INTR | \
	 EXIT_SAVE_DEBUG | EXIT_SAVE_PREEMPT)
#define CORE_ENTRY (ENTRY_IA32E | ENTRY_LOAD_DEBUG | ENTRY_LOAD_EFER | ENTRY_LOAD_PAT)

/* EPT/VPID capabilities (SDM A.10). */
#define CAP_EPT_WALK4 (1ull << 6)
#define CAP_EPT_WB (1ull << 14)
#define CAP_EPT_2M (1ull << 16)
#define CAP_INVEPT (1ull << 20)
#define CAP_EPT_AD (1ull << 21)
#define CAP_EPT_ADV_INFO (1ull << 22)
#define CAP_INVEPT_SINGLE (1ull << 25)
#define CAP_INVEPT_ALL (1ull << 26)
#define CAP_INVVPID (1ull << 32)
#define CAP_INVVPID_ADDR (1ull << 40)
#define CAP_INVVPID_SINGLE (1ull << 41)
#define CAP_INVVPID_ALL (1ull << 42)
#define CAP_INVVPID_SINGLE_G (1ull << 43)

/* --- VMCS field encodings (SDM appendix B) ------------------------------- */
enum vmcs_field {
	VPID = 0x0000, EPTP_INDEX = 0x0004, GUEST_INTR_STATUS = 0x0810,
	GUEST_ES_SEL = 0x0800, GUEST_CS_SEL = 0x0802, GUEST_SS_SEL = 0x0804, GUEST_DS_SEL = 0x0806,
	GUEST_FS_SEL = 0x0808, GUEST_GS_SEL = 0x080a, GUEST_LDTR_SEL = 0x080c, GUEST_TR_SEL = 0x080e,
	HOST_ES_SEL = 0x0c00, HOST_CS_SEL = 0x0c02, HOST_SS_SEL = 0x0c04, HOST_DS_SEL = 0x0c06,
	HOST_FS_SEL = 0x0c08, HOST_GS_SEL = 0x0c0a, HOST_TR_SEL = 0x0c0c,

	IO_BITMAP_A = 0x2000, IO_BITMAP_B = 0x2002, MSR_BITMAP = 0x2004, EXIT_MSR_STORE_ADDR = 0x2006,
	EXIT_MSR_LOAD_ADDR = 0x2008, ENTRY_MSR_LOAD_ADDR = 0x200a, VIRTUAL_APIC_ADDR = 0x2012,
	APIC_ACCESS_ADDR = 0x2014, EPT_POINTER = 0x201a, PML_ADDR = 0x200e, GUEST_PML_INDEX = 0x0812,
	EOI_EXIT_BITMAP0 = 0x201c, TSC_OFFSET = 0x2010, TSC_MULTIPLIER = 0x2032, VMFUNC_CTLS = 0x2018, EPTP_LIST_ADDR = 0x2024, VE_INFO_ADDR = 0x202a, VMREAD_BITMAP = 0x2026, VMWRITE_BITMAP = 0x2028, GUEST_PHYS_ADDR = 0x2400,
	VMCS_LINK_PTR = 0x2800, GUEST_DEBUGCTL = 0x2802, GUEST_PAT = 0x2804, GUEST_EFER = 0x2806,
	HOST_PAT = 0x2c00, HOST_EFER = 0x2c02,

	PIN_CTLS = 0x4000, PROC_CTLS = 0x4002, EXCEPTION_BITMAP = 0x4004, PF_ERR_MASK = 0x4006,
	PF_ERR_MATCH = 0x4008, CR3_TARGET_COUNT = 0x400a, EXIT_CTLS = 0x400c, EXIT_MSR_STORE_COUNT = 0x400e,
	EXIT_MSR_LOAD_COUNT = 0x4010, ENTRY_CTLS = 0x4012, ENTRY_MSR_LOAD_COUNT = 0x4014,
	ENTRY_INTR_INFO = 0x4016, ENTRY_EXC_ERR = 0x4018, ENTRY_INSN_LEN = 0x401a, TPR_THRESHOLD = 0x401c,
	PROC2_CTLS = 0x401e,
	VM_INSN_ERROR = 0x4400, EXIT_REASON = 0x4402, EXIT_INTR_INFO = 0x4404, EXIT_INTR_ERR = 0x4406,
	IDT_VEC_INFO = 0x4408, IDT_VEC_ERR = 0x440a, EXIT_INSN_LEN = 0x440c, EXIT_INSN_INFO = 0x440e,
	GUEST_ES_LIMIT = 0x4800, GUEST_CS_LIMIT = 0x4802, GUEST_SS_LIMIT = 0x4804, GUEST_DS_LIMIT = 0x4806,
	GUEST_FS_LIMIT = 0x4808, GUEST_GS_LIMIT = 0x480a, GUEST_LDTR_LIMIT = 0x480c, GUEST_TR_LIMIT = 0x480e,
	GUEST_GDTR_LIMIT = 0x4810, GUEST_IDTR_LIMIT = 0x4812,
	GUEST_ES_AR = 0x4814, GUEST_CS_AR = 0x4816, GUEST_SS_AR = 0x4818, GUEST_DS_AR = 0x481a,
	GUEST_FS_AR = 0x481c, GUEST_GS_AR = 0x481e, GUEST_LDTR_AR = 0x4820, GUEST_TR_AR = 0x4822,
	GUEST_INTERRUPTIBILITY = 0x4824, GUEST_ACTIVITY = 0x4826, GUEST_SYSENTER_CS = 0x482a,
	GUEST_PREEMPT_TIMER = 0x482e, HOST_SYSENTER_CS = 0x4c00,

	CR0_MASK = 0x6000, CR4_MASK = 0x6002, CR0_SHADOW = 0x6004, CR4_SHADOW = 0x6006, CR3_TARGET0 = 0x6008,
	EXIT_QUAL = 0x6400, GUEST_LINEAR_ADDR = 0x640a,
	GUEST_CR0 = 0x6800, GUEST_CR3 = 0x6802, GUEST_CR4 = 0x6804, GUEST_ES_BASE = 0x6806,
	GUEST_CS_BASE = 0x6808, GUEST_SS_BASE = 0x680a, GUEST_DS_BASE = 0x680c, GUEST_FS_BASE = 0x680e,
	GUEST_GS_BASE = 0x6810, GUEST_LDTR_BASE = 0x6812, GUEST_TR_BASE = 0x6814, GUEST_GDTR_BASE = 0x6816,
	GUEST_IDTR_BASE = 0x6818, GUEST_DR7 = 0x681a, GUEST_RSP = 0x681c, GUEST_RIP = 0x681e,
	GUEST_RFLAGS = 0x6820, GUEST_PENDING_DBG = 0x6822, GUEST_SYSENTER_ESP = 0x6824,
	GUEST_SYSENTER_EIP = 0x6826, GUEST_S_CET = 0x6828, GUEST_SSP = 0x682a, GUEST_ISST = 0x682c,
	HOST_CR0 = 0x6c00, HOST_CR3 = 0x6c02, HOST_CR4 = 0x6c04, HOST_FS_BASE = 0x6c06, HOST_GS_BASE = 0x6c08,
	HOST_TR_BASE = 0x6c0a, HOST_GDTR_BASE = 0x6c0c, HOST_IDTR_BASE = 0x6c0e, HOST_SYSENTER_ESP = 0x6c10,
	HOST_SYSENTER_EIP = 0x6c12, HOST_RSP = 0x6c14, HOST_RIP = 0x6c16, HOST_S_CET = 0x6c18, HOST_SSP = 0x6c1a,
	HOST_ISST = 0x6c1c,
};

/* Exit reasons used by the suites (SDM appendix C). */
enum {
	EXIT_EXC_NMI = 0, EXIT_EXTINT = 1, EXIT_INTR_WINDOW = 7, EXIT_NMI_WINDOW = 8, EXIT_CPUID = 10,
	EXIT_HLT = 12, EXIT_INVLPG = 14, EXIT_RDTSC = 16, EXIT_VMCALL = 18, EXIT_VMPTRST = 22,
	EXIT_VMREAD = 23, EXIT_CR = 28, EXIT_DR = 29, EXIT_IO = 30, EXIT_RDMSR = 31, EXIT_WRMSR = 32,
	EXIT_BAD_GUEST = 33, EXIT_PAUSE = 40, EXIT_EPT_VIOLATION = 48, EXIT_EPT_MISCONFIG = 49,
	EXIT_RDTSCP = 51, EXIT_PREEMPT = 52, EXIT_PML_FULL = 62,
};
#define EXIT_FAILED_ENTRY (1u << 31)

#define INTR_VALID (1u << 31)
#define INTR_ERRCODE (1u << 11)
#define INTR_EXT 0u
#define INTR_NMI (2u << 8)
#define INTR_HW_EXC (3u << 8)
#define INTR_SW_INT (4u << 8)
#define INTR_SW_EXC (6u << 8)

/* VM-instruction outcomes. */
enum { VM_SUCCEED = 0, VM_FAIL_INVALID = 1, VM_FAIL_VALID = 2 };

/* --- instructions (CF/ZF captured with flag outputs) --------------------- */
static inline int vm_flags(bool cf, bool zf) { return cf ? VM_FAIL_INVALID : zf ? VM_FAIL_VALID : VM_SUCCEED; }

static inline int vmxon_insn(uint64_t pa)
{
	bool cf, zf;
	__asm__ volatile("vmxon %[p]" : "=@ccc"(cf), "=@ccz"(zf) : [p] "m"(pa) : "memory");
	return vm_flags(cf, zf);
}
static inline int vmxoff_insn(void)
{
	bool cf, zf;
	__asm__ volatile("vmxoff" : "=@ccc"(cf), "=@ccz"(zf)::"memory");
	return vm_flags(cf, zf);
}
static inline int vmclear_insn(uint64_t pa)
{
	bool cf, zf;
	__asm__ volatile("vmclear %[p]" : "=@ccc"(cf), "=@ccz"(zf) : [p] "m"(pa) : "memory");
	return vm_flags(cf, zf);
}
static inline int vmptrld_insn(uint64_t pa)
{
	bool cf, zf;
	__asm__ volatile("vmptrld %[p]" : "=@ccc"(cf), "=@ccz"(zf) : [p] "m"(pa) : "memory");
	return vm_flags(cf, zf);
}
static inline int vmptrst_insn(uint64_t *pa)
{
	bool cf, zf;
	__asm__ volatile("vmptrst %[p]" : [p] "=m"(*pa), "=@ccc"(cf), "=@ccz"(zf)::"memory");
	return vm_flags(cf, zf);
}
static inline int vmread_insn(uint64_t enc, uint64_t *val)
{
	bool cf, zf;
	uint64_t v = *val;
	__asm__ volatile("vmread %[e], %[v]" : [v] "+r"(v), "=@ccc"(cf), "=@ccz"(zf) : [e] "r"(enc) : "memory");
	*val = v;
	return vm_flags(cf, zf);
}
static inline int vmread_mem_insn(uint64_t enc, uint64_t *mem)
{
	bool cf, zf;
	__asm__ volatile("vmread %[e], %[m]" : [m] "+m"(*mem), "=@ccc"(cf), "=@ccz"(zf) : [e] "r"(enc) : "memory");
	return vm_flags(cf, zf);
}
static inline int vmwrite_insn(uint64_t enc, uint64_t val)
{
	bool cf, zf;
	__asm__ volatile("vmwrite %[v], %[e]" : "=@ccc"(cf), "=@ccz"(zf) : [v] "r"(val), [e] "r"(enc) : "memory");
	return vm_flags(cf, zf);
}
static inline int vmwrite_mem_insn(uint64_t enc, const uint64_t *mem)
{
	bool cf, zf;
	__asm__ volatile("vmwrite %[m], %[e]" : "=@ccc"(cf), "=@ccz"(zf) : [m] "m"(*mem), [e] "r"(enc) : "memory");
	return vm_flags(cf, zf);
}
struct inv_desc {
	uint64_t lo, hi;
};
static inline int invept_insn(uint64_t type, const struct inv_desc *d)
{
	bool cf, zf;
	__asm__ volatile("invept %[d], %[t]" : "=@ccc"(cf), "=@ccz"(zf) : [d] "m"(*d), [t] "r"(type) : "memory");
	return vm_flags(cf, zf);
}
static inline int invvpid_insn(uint64_t type, const struct inv_desc *d)
{
	bool cf, zf;
	__asm__ volatile("invvpid %[d], %[t]" : "=@ccc"(cf), "=@ccz"(zf) : [d] "m"(*d), [t] "r"(type) : "memory");
	return vm_flags(cf, zf);
}

/* --- one attempt of a VMX instruction, with its outcome ------------------ */
enum vx_insn {
	VX_VMXON, VX_VMXOFF, VX_VMCLEAR, VX_VMPTRLD, VX_VMPTRST, VX_VMREAD, VX_VMREAD_MEM, VX_VMWRITE,
	VX_VMWRITE_MEM, VX_INVEPT, VX_INVVPID, VX_VMLAUNCH, VX_VMRESUME, VX_VMCALL,
	VX_VMREAD_PTR, VX_VMWRITE_PTR, /* memory operand at address b */
};
struct vres {
	bool fault;
	struct fault f;
	int status;      /* VM_SUCCEED... when no fault */
	uint32_t err;    /* VM-instruction error after VMfailValid */
	uint64_t out;    /* VMREAD / VMPTRST result */
	char s[24];      /* "VMsucceed", "VMfailValid(12)", "#UD", "#GP(0)" */
};
/* Runs insn with operands a (pointer, encoding, type) and b (value,
 * descriptor address) at CPL 0, or at CPL 3 with user set. */
struct vres vx(enum vx_insn insn, uint64_t a, uint64_t b);
struct vres vx_user(enum vx_insn insn, uint64_t a, uint64_t b);
bool vr_ok(const struct vres *r);
bool vr_invalid(const struct vres *r);
bool vr_valid(const struct vres *r, uint32_t err);
bool vr_fault(const struct vres *r, unsigned vector, uint64_t ec);

/* --- capabilities -------------------------------------------------------- */
struct vmx_caps {
	bool vmx;                   /* CPUID.1:ECX.VMX and the MSRs readable */
	uint64_t feature_control, basic, misc, cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1, vmcs_enum;
	uint64_t pin, proc, exit, entry; /* the TRUE MSRs when BASIC[55] */
	uint64_t proc2, ept_vpid;        /* 0 when not readable */
	uint32_t rev;
	unsigned maxphyaddr;
};
extern struct vmx_caps vcaps;
bool vmx_read_caps(void);
/* RDMSR that survives #GP; false (and *v = 0) if it faulted. */
bool rdmsr_safe(uint32_t msr, uint64_t *v);
/* (want | allowed-0) & allowed-1 of a control MSR. */
uint32_t ctl_adjust(uint64_t msr, uint32_t want);
/* The bits of want the MSR does not allow. */
static inline uint32_t ctl_missing(uint64_t msr, uint32_t want) { return want & ~(uint32_t)(msr >> 32); }

/* --- the test hypervisor ------------------------------------------------- */
extern uint8_t vmxon_region[4096], vmcs_a[4096], vmcs_b[4096], vmx_scratch[4096];
extern uint8_t msr_bitmap[4096], io_bitmap_a[4096], io_bitmap_b[4096], ept_probe[4096];
static inline uint64_t pa(const void *p) { return (uint64_t)p; }

/* Reads the capabilities and saves CR0, CR4, GDTR, IDTR for vmx_end();
 * false (with a failed check) without VMX. */
bool vmx_prepare(void);
/* vmx_prepare, then enters VMX operation (CR0 and CR4 fixed bits, VMXON);
 * false (with a failed check) if that is impossible. */
bool vmx_begin(void);
/* Leaves VMX operation if still in it, restores CR0, CR4, GDTR, IDTR and
 * the PIC masks. */
void vmx_end(void);
/* Prepares a VMCS page (zero, revision identifier). */
void vmcs_init_page(uint8_t *page, uint32_t rev);

/* Guest registers an L2 runs with (RSP, RIP, RFLAGS are in the VMCS). */
struct l2_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
};
/* vmx_run modes */
#define RUN_LAUNCH 0
#define RUN_RESUME 1
#define RUN_LAUNCH_MOVSS 2
#define RUN_KEEP_HOST 4 /* do not write HOST_RSP/HOST_RIP */
/* Enters the guest of the current VMCS; 0 after a VM exit (or a VM-entry
 * failure), VM_FAIL_INVALID/VM_FAIL_VALID + 0 if VMLAUNCH/VMRESUME failed. */
int vmx_run(struct l2_regs *r, int mode);
/* RFLAGS as the last VM exit loaded it (saved by the exit stub). */
extern uint64_t vmx_exit_rflags;

struct exit_info {
	uint32_t reason, intr_info, intr_err, idt_info, idt_err, len, insn_info, interruptibility, activity;
	uint64_t qual, gpa, gla, rip, rsp, rflags;
};
struct vm {
	bool launched;
	struct l2_regs r;
	struct exit_info x;
	unsigned setup_errors;
	uint32_t pin, proc, proc2, exit, entry; /* the values vm_setup wrote */
	struct vres go;                         /* outcome of a failed VMLAUNCH/VMRESUME */
};
extern struct vm vm;

/* Builds a complete VMCS in vmcs_a (VMCLEAR, VMPTRLD) for a 64-bit L2
 * sharing the kernel's page tables, with EPT (identity 0-4 GiB, 2 MiB
 * pages, 4 KiB pages around ept_probe) and VPID 1, MSR bitmaps (nothing
 * intercepted), no other exiting than the controls' defaults. */
bool vm_setup(void);
/* vmx_begin, then vm_setup; false (in no VMX operation) if either fails. */
bool vm_begin(void);
/* A feature the CPU may lack: when it does, says so ("no WHAT", the same
 * at every depth) and leaves VMX operation; true then. */
bool vm_lacks(bool have, const char *what);
/* The virtual-APIC page vm_setup points VMCS at (TPR shadow, off). */
extern uint8_t vm_vapic[4096];
/* The APIC-access page it points VMCS at (virtualize APIC accesses, off). */
extern uint8_t vm_apic_access[4096];
void iret_to_self(void); /* IRET to the next instruction: ends any NMI blocking */
bool vm_try_setup(void); /* vm_setup without a check: false when the CPU refuses */
/* VMWRITE that must succeed (a failure is a failed check). */
void vmw(uint32_t field, uint64_t val);
/* VMREAD; ~0 (and a failed check) if it fails. */
uint64_t vmr(uint32_t field);
/* Points the guest at code: RIP, a fresh stack, RFLAGS, no blocking. */
void vm_at(const void *rip, uint64_t rflags);
/* VMLAUNCH or VMRESUME as the launch state requires; returns the exit
 * reason (bit 31 set for failed entries) with vm.x filled in, or GO_FAILED
 * if the instruction failed (outcome in vm.go). */
#define GO_FAILED 0xffffffffu
uint32_t vm_go(void);
/* Same with an explicit vmx_run mode. */
uint32_t vm_go_mode(int mode);
/* Advances the guest RIP past the exiting instruction. */
void vm_skip(void);
/* Sets and clears control bits of a 32-bit control field. */
void vm_ctl(uint32_t field, uint32_t set, uint32_t clear);
/* Offset of the guest RIP from a snippet label. */
static inline long rip_off(const void *label) { return (long)(vm.x.rip - (uint64_t)label); }
const char *exit_name(uint32_t reason);

/* EPT: the page-table entry that maps ept_probe (4 KiB, identity, WB). */
uint64_t *ept_probe_pte(void);
uint64_t ept_pointer(void);
#define EPT_R 1ull
#define EPT_W 2ull
#define EPT_X 4ull
#define EPT_WB (6ull << 3)

/* The L2's interrupt handlers record what they got here, then VMCALL. */
struct l2_event {
	uint64_t vector, error, rip, cr2, count;
};
extern volatile struct l2_event l2_event;
extern const char l2_isr_stubs[];

/* PIC masking (so no external interrupt reaches an L2 with IF=1). */
void pic_mask_all(void);

/* L2 code snippets (vmx_asm.S). */
extern const char l2_vmcall[], l2_idle[], l2_cpuid[], l2_insns[], l2_insns_end[], l2_io[], l2_io_uncond[],
	l2_io_rounds[], l2_msr_rounds[], l2_rare[];
extern const char l2_msr[], l2_cr[], l2_cr3_again[], l2_ud2[], l2_int3[], l2_pf[], l2_ept_rw[], l2_ept_x[];
extern const char l2_self_nmi[], l2_self_nmi_sent[], l2_real[], l2_cr8[], l2_cr8_below[], l2_apic_page[];
extern const char l2_shadow[], l2_tsc[], l2_vmfunc[], l2_cet[], l2_mem_ops[], l2_msr_ops[], l2_ops_end[];
extern const char l2_apic_page_write[], l2_apic_page_tpr[], l2_x2tpr[], l2_x2tpr_written[], l2_read_rbx[], l2_write_rbx[];
/* The EPT entry (any level) that maps pa last in vm_setup's EPT. */
uint64_t *ept_leaf_of(uint64_t pa);
extern const char l2_state[], l2_sti[], l2_iret[], l2_iret_done[], l2_loop[], l2_loop_end[], l2_hlt[];

#endif
