/* vmxfuzz.c - differential VMX fuzzing (suite vmxfuzz, not in the default
 * suite list): the case loop, the capabilities both depths offer, running
 * an L2 and handling its exits as a small hypervisor would, printing every
 * outcome, and putting the machine back in order between cases.
 *
 *   build/guest.elf suite=vmxfuzz fuzz_seed=7 fuzz_cases=200
 *
 * prints one line per case: its number, what was mutated, the outcome of
 * each VMX instruction, and for each VM exit its reason, qualification,
 * event information, instruction length and a digest of the L2 state the
 * exit saved.  Depth 0 (bare Bochs) is the reference; under Nestor the
 * lines must be byte-identical (docs/testing.md, "The VMX fuzzer").  A case
 * is replayed alone with fuzz_first=N fuzz_cases=1, with every field
 * printed by fuzz_verbose. */
#include "guest/tests/vmxfuzz.h"
#include "guest/test.h"
#include "lib/format.h"
#include "lib/string.h"
#include "lib/x86.h"
#include <stdarg.h>

struct vmxfuzz_opts vmxfuzz_opts = { .seed = 1, .cases = 50, .first = 0, .classes = FZ_C_ALL, .verbose = false };
struct fz_caps fzc;
bool fz_in_vmx, fz_nmi_touched, fz_link_set, fz_nonreg_set, fz_inj_set;

/* --- random numbers ------------------------------------------------------- */
uint64_t rnd(struct rng *r)
{
	/* xorshift64* (Vigna): small, fast, good enough to pick mutations. */
	uint64_t x = r->s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545f4914f6cdd1dull;
}

uint64_t rnd_bit(struct rng *r, uint64_t mask)
{
	unsigned n = 0; /* (no popcount: freestanding without libgcc) */
	for (uint64_t m = mask; m; m &= m - 1)
		n++;
	if (!n)
		return 0;
	unsigned k = rnd_below(r, n);
	for (unsigned i = 0; i < 64; i++)
		if ((mask >> i) & 1) {
			if (!k)
				return 1ull << i;
			k--;
		}
	return 0;
}

/* Each case has its own stream, so that one case can be replayed alone. */
static void rng_seed(struct rng *r, uint64_t seed, uint64_t n)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15ull + n * 0xbf58476d1ce4e5b9ull + 0x94d049bb133111ebull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	r->s = (z ^ (z >> 31)) | 1;
}

void fz_add(struct fz_line *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (l->len < sizeof(l->buf) - 1) {
		int n = kvsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
		l->len += (unsigned)n;
		if (l->len > sizeof(l->buf) - 1)
			l->len = sizeof(l->buf) - 1;
	}
	va_end(ap);
}

/* --- VMREAD/VMWRITE without checks ---------------------------------------- */
struct fz_rw {
	uint64_t enc, val;
	int s;
	bool write;
};
static void fz_rw_fn(void *p)
{
	struct fz_rw *x = p;
	x->s = x->write ? vmwrite_insn(x->enc, x->val) : vmread_insn(x->enc, &x->val);
}
int fz_vmwrite(uint32_t field, uint64_t val)
{
	struct fz_rw x = { field, val, -1, true };
	struct fault f;
	return catch_fault(fz_rw_fn, &x, &f) ? -1 : x.s;
}
uint64_t fz_vmread(uint32_t field)
{
	struct fz_rw x = { field, ~0ull, -1, false };
	struct fault f;
	if (catch_fault(fz_rw_fn, &x, &f) || x.s != VM_SUCCEED)
		return ~0ull;
	return x.val;
}

/* --- the capabilities both depths offer ------------------------------------
 * Nestor offers a subset of the CPU's VMX (docs/nested.md, "The virtual CPU
 * L1 sees"); its lists are mirrored here and intersected with the MSRs read
 * at run time, so that every depth draws from the same settings.  Bits that
 * must be 0 everywhere: those Bochs 2.7 implements on no CPU model
 * (cpu/vmx.h) and Nestor does not offer, and offered ones the MSR refuses. */
#define FZ_PIN_OFFERED (PIN_EXTINT | PIN_NMI | PIN_VIRTUAL_NMI | PIN_PREEMPT)
#define FZ_PROC_OFFERED                                                                                       \
	(PROC_INTR_WINDOW | (1u << 3) | PROC_HLT | PROC_INVLPG | (1u << 10) | (1u << 11) | PROC_RDTSC |       \
	 PROC_CR3_LOAD | PROC_CR3_STORE | PROC_CR8_LOAD | PROC_CR8_STORE | PROC_NMI_WINDOW | PROC_MOV_DR |      \
	 PROC_UNCOND_IO | PROC_IO_BITMAPS | PROC_MSR_BITMAPS | (1u << 29) | PROC_PAUSE | PROC_SECONDARY |       \
	 PROC_TPR_SHADOW)
#define FZ_PROC2_OFFERED                                                                                      \
	(PROC2_EPT | (1u << 2) | PROC2_RDTSCP | PROC2_VPID | (1u << 6) | PROC2_UNRESTRICTED | (1u << 11) |     \
	 (1u << 12) | (1u << 16) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 0) | (1u << 4) | (1u << 13) |    \
	 (1u << 14) | (1u << 18) | (1u << 25) | (1u << 8) | (1u << 9))
#define FZ_EXIT_OFFERED                                                                                       \
	(EXIT_SAVE_DEBUG | EXIT_HOST_64 | EXIT_ACK_INTR | EXIT_SAVE_PAT | EXIT_LOAD_PAT | EXIT_SAVE_EFER |     \
	 EXIT_LOAD_EFER | EXIT_SAVE_PREEMPT | EXIT_LOAD_CET)
#define FZ_ENTRY_OFFERED (ENTRY_LOAD_DEBUG | ENTRY_IA32E | ENTRY_LOAD_PAT | ENTRY_LOAD_EFER | ENTRY_LOAD_CET)
#define FZ_EPT_OFFERED                                                                                        \
	(1ull | CAP_EPT_WALK4 | (1ull << 8) | CAP_EPT_WB | CAP_EPT_2M | (1ull << 17) | CAP_INVEPT | CAP_EPT_AD |  \
	 CAP_INVEPT_SINGLE | CAP_INVEPT_ALL | CAP_INVVPID | CAP_INVVPID_ADDR | CAP_INVVPID_SINGLE |               \
	 CAP_INVVPID_ALL | CAP_INVVPID_SINGLE_G)
/* IA32_VMX_MISC fields Nestor passes on: timer rate, LMA storing, activity
 * states, CR3 targets, MSR-list size, VMWRITE to exit information,
 * zero-length injection. */
#define FZ_MISC_OFFERED                                                                                       \
	(0x1full | (1ull << 5) | (7ull << 6) | (0x1ffull << 16) | (7ull << 25) | (1ull << 29) | (1ull << 30))
/* Never implemented by Bochs 2.7 (pin 7-31; primary 0, 17, 18; secondary
 * 19, 21, 24, 26-31; exit 23-27, 30, 31; entry 16-19, 21, 23-31). */
#define FZ_PIN_NEVER 0xffffff80u
#define FZ_PROC_NEVER ((1u << 0) | (1u << 17) | (1u << 18))
#define FZ_PROC2_NEVER ((1u << 19) | (1u << 21) | (1u << 24) | 0xfc000000u)
#define FZ_EXIT_NEVER (0x0f800000u | (1u << 30) | (1u << 31))
#define FZ_ENTRY_NEVER (0x000f0000u | (1u << 21) | 0xff800000u)

static uint32_t bad_bits(uint64_t msr, uint32_t offered, uint32_t never)
{
	uint32_t must = (uint32_t)msr, may = (uint32_t)(msr >> 32);
	return ((never & ~offered) | (offered & ~may)) & ~must;
}

static void fz_caps_init(void)
{
	memset(&fzc, 0, sizeof(fzc));
	fzc.pin0 = (uint32_t)vcaps.pin;
	fzc.pin1 = (uint32_t)(vcaps.pin >> 32) & (FZ_PIN_OFFERED | fzc.pin0);
	fzc.proc0 = (uint32_t)vcaps.proc;
	fzc.proc1 = (uint32_t)(vcaps.proc >> 32) & (FZ_PROC_OFFERED | fzc.proc0);
	fzc.proc2_1 = (uint32_t)(vcaps.proc2 >> 32) & FZ_PROC2_OFFERED;
	fzc.exit0 = (uint32_t)vcaps.exit;
	fzc.exit1 = (uint32_t)(vcaps.exit >> 32) & (FZ_EXIT_OFFERED | fzc.exit0);
	fzc.entry0 = (uint32_t)vcaps.entry;
	fzc.entry1 = (uint32_t)(vcaps.entry >> 32) & (FZ_ENTRY_OFFERED | fzc.entry0);
	fzc.pin_bad = bad_bits(vcaps.pin, FZ_PIN_OFFERED, FZ_PIN_NEVER);
	fzc.proc_bad = bad_bits(vcaps.proc, FZ_PROC_OFFERED, FZ_PROC_NEVER);
	fzc.proc2_bad = bad_bits(vcaps.proc2, FZ_PROC2_OFFERED, FZ_PROC2_NEVER);
	fzc.exit_bad = bad_bits(vcaps.exit, FZ_EXIT_OFFERED, FZ_EXIT_NEVER);
	fzc.entry_bad = bad_bits(vcaps.entry, FZ_ENTRY_OFFERED, FZ_ENTRY_NEVER);
	fzc.ept = vcaps.ept_vpid & FZ_EPT_OFFERED;
	fzc.misc = vcaps.misc & FZ_MISC_OFFERED;
	fzc.cr3_targets = (unsigned)((vcaps.misc >> 16) & 0x1ff);
	fzc.maxphyaddr = vcaps.maxphyaddr;
	fzc.cr0_fixed0 = vcaps.cr0_fixed0;
	fzc.cr0_fixed1 = vcaps.cr0_fixed1;
	fzc.cr4_fixed0 = vcaps.cr4_fixed0;
	fzc.cr4_fixed1 = vcaps.cr4_fixed1;
}

/* --- the kernel's own state, restored after every VM exit ----------------- */
static const uint32_t saved_msrs[] = {
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP, MSR_IA32_PAT, MSR_EFER, MSR_STAR,
	MSR_LSTAR,            MSR_CSTAR,             MSR_FMASK,             MSR_FS_BASE,  MSR_GS_BASE, MSR_KERNEL_GS_BASE,
	MSR_TSC_AUX,
};
#define N_SAVED_MSRS (sizeof(saved_msrs) / sizeof(saved_msrs[0]))
static struct {
	uint64_t cr0, cr3, cr4, msr[N_SAVED_MSRS];
	bool msr_ok[N_SAVED_MSRS];
	struct dtr gdtr, idtr;
} kstate;

static inline void sgdt_(struct dtr *d) { __asm__ volatile("sgdt %0" : "=m"(*d)); }
static inline void sidt_(struct dtr *d) { __asm__ volatile("sidt %0" : "=m"(*d)); }

static void kstate_save(void)
{
	kstate.cr0 = read_cr0();
	kstate.cr3 = read_cr3();
	kstate.cr4 = read_cr4();
	for (unsigned i = 0; i < N_SAVED_MSRS; i++)
		kstate.msr_ok[i] = rdmsr_safe(saved_msrs[i], &kstate.msr[i]);
	sgdt_(&kstate.gdtr);
	sidt_(&kstate.idtr);
}

struct wrm {
	uint32_t msr;
	uint64_t v;
};
static void wrm_fn(void *p)
{
	struct wrm *w = p;
	wrmsr(w->msr, w->v);
}

/* A VM exit loads the host state of the VMCS, which a case may have made
 * valid but different (CR0/CR4 bits, selectors, PAT, EFER.SCE, bases,
 * descriptor-table limits 0xffff, TR limit 0x67): back to the kernel's. */
static void kstate_restore(void)
{
	write_cr0(kstate.cr0 | (fz_in_vmx ? fzc.cr0_fixed0 : 0));
	write_cr4(kstate.cr4 | (fz_in_vmx ? fzc.cr4_fixed0 : 0));
	write_cr3(kstate.cr3);
	lgdt(&kstate.gdtr);
	lidt(&kstate.idtr);
	/* TR: make the TSS descriptor available again, then load it. */
	uint64_t *gdt = (uint64_t *)kstate.gdtr.base;
	gdt[G_TSS >> 3] &= ~(2ull << 40);
	ltr(G_TSS);
	__asm__ volatile("movl %0, %%ds\n\tmovl %0, %%es\n\tmovl %0, %%ss\n\tmovl %1, %%fs\n\tmovl %1, %%gs"
			 ::"r"((uint32_t)G_KDATA), "r"(0u) : "memory");
	for (unsigned i = 0; i < N_SAVED_MSRS; i++) {
		if (!kstate.msr_ok[i])
			continue;
		struct wrm w = { saved_msrs[i], kstate.msr[i] };
		struct fault f;
		catch_fault(wrm_fn, &w, &f);
	}
	__asm__ volatile("movq %0, %%dr7" ::"r"(0x400ull));
}

/* --- entering VMX operation for a case ------------------------------------- */
static bool fz_vmxon(void)
{
	write_cr0(kstate.cr0 | fzc.cr0_fixed0);
	write_cr4(kstate.cr4 | fzc.cr4_fixed0);
	vmcs_init_page(vmxon_region, vcaps.rev);
	struct vres r = vx(VX_VMXON, pa(vmxon_region), 0);
	fz_in_vmx = vr_ok(&r);
	return fz_in_vmx;
}

/* Every region a case may have made current is cleared, so that the next
 * case starts from memory alone (SDM 24.11.1: VMCLEAR before reuse). */
static void fz_clear_all(void)
{
	if (!fz_in_vmx)
		return;
	const uint8_t *pages[] = { vmcs_a, vmcs_b, fz_page_a, fz_page_b };
	for (unsigned i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		vx(VX_VMCLEAR, pa(pages[i]), 0);
}

/* --- NMI blocking left behind -----------------------------------------------
 * Bochs 2.7 keeps the blocking by NMI (virtual NMIs: its virtual-NMI
 * blocking) of a guest after its VM exit, and a later VM entry with bit 3
 * of the interruptibility state clear does not end it, as the SDM says it
 * does (26.6.1): only an IRET in a guest does.  Under Nestor every L2 runs
 * with virtual NMIs, so a block one L2 left would reach another - and at
 * depth 0 another kind of block.  After a case that may have left one, an
 * L2 IRETs once with virtual NMIs and once without, which ends both at
 * every depth. */
static void nmi_unblock(void)
{
	iret_to_self(); /* an NMI exit leaves the kernel's NMIs blocked until an IRET */
	for (int virt = 1; virt >= 0; virt--) {
		if (!vm_try_setup())
			return;
		if (virt && (fzc.pin1 & (PIN_NMI | PIN_VIRTUAL_NMI)) == (PIN_NMI | PIN_VIRTUAL_NMI))
			vm_ctl(PIN_CTLS, PIN_NMI | PIN_VIRTUAL_NMI, 0);
		vm_at(l2_iret, RFLAGS_FIXED);
		vmw(GUEST_INTERRUPTIBILITY, 8);
		vm_go();
		kstate_restore();
		vx(VX_VMCLEAR, pa(vmcs_a), 0);
	}
}

/* --- printing an exit --------------------------------------------------------- */
/* Guest state a VM exit saves (SDM 27.3) and the controls it may change:
 * hashed into the line, printed field by field with fuzz_verbose. */
static const struct {
	const char *name;
	uint32_t enc;
} digest_fields[] = {
	{ "es", GUEST_ES_SEL },     { "cs", GUEST_CS_SEL },       { "ss", GUEST_SS_SEL },
	{ "ds", GUEST_DS_SEL },     { "fs", GUEST_FS_SEL },       { "gs", GUEST_GS_SEL },
	{ "ldtr", GUEST_LDTR_SEL }, { "tr", GUEST_TR_SEL },       { "es.lim", GUEST_ES_LIMIT },
	{ "cs.lim", GUEST_CS_LIMIT }, { "ss.lim", GUEST_SS_LIMIT }, { "ds.lim", GUEST_DS_LIMIT },
	{ "fs.lim", GUEST_FS_LIMIT }, { "gs.lim", GUEST_GS_LIMIT }, { "ldtr.lim", GUEST_LDTR_LIMIT },
	{ "tr.lim", GUEST_TR_LIMIT }, { "gdtr.lim", GUEST_GDTR_LIMIT }, { "idtr.lim", GUEST_IDTR_LIMIT },
	{ "es.ar", GUEST_ES_AR },   { "cs.ar", GUEST_CS_AR },     { "ss.ar", GUEST_SS_AR },
	{ "ds.ar", GUEST_DS_AR },   { "fs.ar", GUEST_FS_AR },     { "gs.ar", GUEST_GS_AR },
	{ "ldtr.ar", GUEST_LDTR_AR }, { "tr.ar", GUEST_TR_AR },   { "sysenter.cs", GUEST_SYSENTER_CS },
	{ "cr0", GUEST_CR0 },       { "cr3", GUEST_CR3 },         { "cr4", GUEST_CR4 },
	{ "es.base", GUEST_ES_BASE }, { "cs.base", GUEST_CS_BASE }, { "ss.base", GUEST_SS_BASE },
	{ "ds.base", GUEST_DS_BASE }, { "fs.base", GUEST_FS_BASE }, { "gs.base", GUEST_GS_BASE },
	{ "ldtr.base", GUEST_LDTR_BASE }, { "tr.base", GUEST_TR_BASE }, { "gdtr.base", GUEST_GDTR_BASE },
	{ "idtr.base", GUEST_IDTR_BASE }, { "dr7", GUEST_DR7 },     { "rsp", GUEST_RSP },
	{ "rip", GUEST_RIP },       { "rflags", GUEST_RFLAGS },   { "pending.dbg", GUEST_PENDING_DBG },
	{ "sysenter.esp", GUEST_SYSENTER_ESP }, { "sysenter.eip", GUEST_SYSENTER_EIP },
	{ "debugctl", GUEST_DEBUGCTL }, { "pat", GUEST_PAT },     { "efer", GUEST_EFER },
	{ "link", VMCS_LINK_PTR },  { "timer", GUEST_PREEMPT_TIMER }, { "entry.ctls", ENTRY_CTLS },
	{ "entry.intr", ENTRY_INTR_INFO }, { "intr.status", GUEST_INTR_STATUS }, { "s_cet", GUEST_S_CET }, { "ssp", GUEST_SSP }, { "isst", GUEST_ISST },
};
#define N_DIGEST (sizeof(digest_fields) / sizeof(digest_fields[0]))

static uint32_t fnv32(uint32_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		h = (h ^ (uint8_t)(v >> (8 * i))) * 16777619u;
	return h;
}

/* Exits with an instruction length that L1 may skip (SDM 27.2.5). */
static bool insn_exit(uint32_t b)
{
	switch (b) {
	case 10: case 12: case 13: case 14: case 15: case 16: case 18: case 19: case 20: case 21: case 22:
	case 23: case 24: case 25: case 26: case 27: case 28: case 29: case 30: case 31: case 32: case 36:
	case 39: case 40: case 46: case 47: case 50: case 51: case 53: case 54: case 55: case 57: case 58:
	case 61:
		return true;
	default:
		return false;
	}
}
/* Exits whose instruction-information field is defined (SDM 27.2.5). */
static bool insn_info_exit(uint32_t b)
{
	return (b >= 19 && b <= 27 && b != 20 && b != 24) || b == 46 || b == 47 || b == 50 || b == 53 || b == 57 ||
	       b == 58 || b == 61;
}

static const char *prog_base;

static void print_exit(struct fz_line *l, uint32_t reason)
{
	const struct exit_info *x = &vm.x;
	uint32_t b = reason & 0xffff;
	/* Bochs 2.7 gives the exits of the instructions whose qualification is
	 * their displacement (SDM 27.2.1: VMX instructions, descriptor-table
	 * instructions) a stale displacement when the operand is a register,
	 * where the SDM says 0: not printed then. */
	bool stale = insn_info_exit(b) && (x->insn_info & (1u << 10));
	/* Which of two failing guest-state checks the CPU reports is not
	 * architectural: Bochs 2.7 checks the VMCS link pointer (qualification
	 * 4) before the activity, interruptibility and pending-debug state and
	 * the rules on the event to inject (RFLAGS.IF for an external
	 * interrupt...), the SDM lists it after them, Nestor checks it after
	 * the CPU's own checks and its own injection checks.  With the link
	 * and one of those made invalid the qualification is not compared. */
	bool either = reason == (0x80000000u | 33) && fz_link_set && (fz_nonreg_set || fz_inj_set) &&
		      (x->qual == 0 || x->qual == 4);
	if (either)
		fz_add(l, " x=%x q=0|4", reason);
	else
		fz_add(l, stale ? " x=%x q=?" : " x=%x q=%llx", reason, (unsigned long long)x->qual);
	if (x->intr_info & INTR_VALID) {
		fz_add(l, " ii=%x", x->intr_info);
		if (x->intr_info & INTR_ERRCODE)
			fz_add(l, " ie=%x", x->intr_err);
	}
	if (x->idt_info & INTR_VALID) {
		fz_add(l, " iv=%x", x->idt_info);
		if (x->idt_info & INTR_ERRCODE)
			fz_add(l, " ive=%x", x->idt_err);
	}
	if (insn_exit(b) || b == 0)
		fz_add(l, " l=%u", x->len);
	if (insn_info_exit(b))
		fz_add(l, " in=%x", x->insn_info);
	if (b == EXIT_EPT_VIOLATION || b == EXIT_EPT_MISCONFIG)
		fz_add(l, " gpa=%llx", (unsigned long long)x->gpa);
	if (b == EXIT_EPT_VIOLATION && (x->qual & (1u << 7)))
		fz_add(l, " gla=%llx", (unsigned long long)x->gla);
	/* Where a preemption timer stops L2, and the count it saves, move by
	 * a few ticks per exit the levels below handle (see m_timer). */
	bool timer = fz_vmread(PIN_CTLS) & PIN_PREEMPT;
	/* So does where an NMI the L2 sent itself arrives: the APIC delivers
	 * it a few instructions later, more under Nestor's exits. */
	bool inexact = b == EXIT_PREEMPT || (b == EXIT_EXC_NMI && (x->intr_info & 0x700) == INTR_NMI);
	unsigned vec = x->intr_info & 0xff;
	bool fault_exit = b == EXIT_EXC_NMI && (x->intr_info & 0x700) == (3u << 8) && vec != 1 && vec != 3 && vec != 4 &&
			  vec != 8 && vec != 18;
	long off = (long)(x->rip - (uint64_t)prog_base);
	if (inexact)
		fz_add(l, " @~");
	else if (off >= -4096 && off <= 4096)
		fz_add(l, " @%ld", off);
	else
		fz_add(l, " @%llx", (unsigned long long)x->rip);
	if (fz_vmread(GUEST_INTERRUPTIBILITY) & 8)
		fz_nmi_touched = true;
	uint32_t h = 2166136261u;
	for (unsigned i = 0; i < N_DIGEST; i++) {
		uint64_t v = fz_vmread(digest_fields[i].enc);
		/* Where an inexact exit stops L2: its RIP, and its RSP (inside
		 * an event delivery or a push, seed 65 case 2 on tigerlake). */
		if ((timer && digest_fields[i].enc == GUEST_PREEMPT_TIMER) ||
		    (inexact && (digest_fields[i].enc == GUEST_RIP || digest_fields[i].enc == GUEST_RSP)))
			v = 0;
		if (inexact && digest_fields[i].enc == GUEST_RFLAGS)
			v &= ~0x8d5ull; /* the arithmetic flags of where it stopped */
		/* Bochs 2.7 saves RF as it was in the RFLAGS of an exit for a
		 * fault-class exception; SDM 27.3.3 saves it as delivery would
		 * push it: 1 (17.3.1.1).  Nestor follows the SDM for the faults
		 * it raises itself (an emulated WRMSR's #GP), so RF is not
		 * compared there. */
		if (fault_exit && digest_fields[i].enc == GUEST_RFLAGS)
			v &= ~RFLAGS_RF;
		/* Bochs 2.7 neither loads nor saves IA32_DEBUGCTL (it reads the
		 * field and drops it): without "load debug controls" the field
		 * keeps what the L1 wrote where the CPU saves the L2's value (the
		 * L1's); with it, both are the value loaded (seed 234, case 178 on
		 * corei7_skylake_x). */
		if (digest_fields[i].enc == GUEST_DEBUGCTL && !(fz_vmread(ENTRY_CTLS) & ENTRY_LOAD_DEBUG))
			v = 0;
		h = fnv32(h, v);
		if (vmxfuzz_opts.verbose)
			say("  exit %x: %s=%llx", reason, digest_fields[i].name, (unsigned long long)v);
	}
	fz_add(l, " s=%08x", h);
}

static uint32_t b_of(uint32_t reason) { return reason & 0xffff; }

/* mask: RAX, RCX, RDX hold TSC values or counts of a timed run. */
static void print_regs(struct fz_line *l, bool mask)
{
	const struct l2_regs *r = &vm.r;
	uint32_t h = 2166136261u;
	const uint64_t v[] = { mask ? 0 : r->rax, r->rbx, mask ? 0 : r->rcx, mask ? 0 : r->rdx, r->rsi, r->rdi,
			       r->rbp, r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15 };
	for (unsigned i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		h = fnv32(h, v[i]);
	fz_add(l, " r=%08x", h);
	if (vmxfuzz_opts.verbose)
		say("  regs: rax %llx rbx %llx rcx %llx rdx %llx rsi %llx rdi %llx", (unsigned long long)v[0],
		    (unsigned long long)v[1], (unsigned long long)v[2], (unsigned long long)v[3], (unsigned long long)v[4],
		    (unsigned long long)v[5]);
}

/* With EPT accessed and dirty flags on: those of the entries that map the
 * probe page, the program and the kernel's page tables after the run. */
static void print_ept_ad(struct fz_line *l)
{
	uint64_t eptp = fz_vmread(EPT_POINTER);
	if (eptp == ~0ull || !(eptp & (1ull << 6)) || (eptp & ~0xfffull) != (ept_pointer() & ~0xfffull))
		return;
	uint64_t e[3] = { *ept_probe_pte(), *ept_leaf_of(pa(fz_programs[0].code)), *ept_leaf_of(read_cr3()) };
	fz_add(l, " ad=%llx%llx%llx", (unsigned long long)((e[0] >> 8) & 3), (unsigned long long)((e[1] >> 8) & 3),
	       (unsigned long long)((e[2] >> 8) & 3));
}

/* The page-modification log: the index, and the pages logged since the
 * case began (their low 12 bits cleared: Bochs 2.7 logs the address with
 * its offset, docs/nested.md). */
static void print_pml(struct fz_line *l)
{
	uint64_t proc2 = fz_vmread(PROC2_CTLS);
	if (proc2 == ~0ull || !(proc2 & PROC2_PML) || fz_vmread(PML_ADDR) != pa(fz_pml_log))
		return;
	unsigned index = (unsigned)fz_vmread(GUEST_PML_INDEX);
	uint32_t h = 2166136261u;
	for (unsigned i = fz_pml_start; i > index && i < 512; i--)
		h = fnv32(h, fz_pml_log[i] & ~0xfffull);
	fz_add(l, " pml=%x,%08x", index, h);
	if (vmxfuzz_opts.verbose)
		for (unsigned i = fz_pml_start; i > index && i < 512; i--)
			say("  pml log %u: %llx", i, (unsigned long long)(fz_pml_log[i] & ~0xfffull));
}

/* The exit MSR-store area: what the exit stored (its entries' values). */
static void print_msr_store(struct fz_line *l)
{
	uint32_t n = (uint32_t)fz_vmread(EXIT_MSR_STORE_COUNT);
	if (n == 0 || n > 8 || fz_vmread(EXIT_MSR_STORE_ADDR) != pa(fz_msr_area[1]))
		return;
	uint32_t h = 2166136261u;
	for (uint32_t i = 0; i < n; i++)
		h = fnv32(fnv32(h, fz_msr_area[1][2 * i]), fz_msr_area[1][2 * i + 1]);
	fz_add(l, " ms=%08x", h);
	if (vmxfuzz_opts.verbose)
		for (uint32_t i = 0; i < n; i++)
			say("  msr store %u: %llx = %llx", i, (unsigned long long)fz_msr_area[1][2 * i],
			    (unsigned long long)fz_msr_area[1][2 * i + 1]);
}

/* --- one case of class ENTRY: mutated VMCS, an L2 program, its exits ------- */
#define MAX_EXITS 8

static void entry_case(struct rng *r, struct fz_line *l, bool msr_lists)
{
	if (!vm_setup()) {
		fz_add(l, " setup failed");
		return;
	}
	/* A new EPT and VPID context every case, as a hypervisor that reuses
	 * its tables must (SDM 28.4.3). */
	static struct inv_desc d;
	d.lo = d.hi = 0;
	vx(VX_INVEPT, 2, pa(&d));
	vx(VX_INVVPID, 2, pa(&d));

	unsigned prog = 0;
	fz_add(l, msr_lists ? " L" : " E");
	fz_mutate(r, l, &prog, msr_lists);
	prog_base = fz_programs[prog].code;
	int mode = -1;
	/* A mutated HOST_RIP/RSP must survive until VMLAUNCH: vmx_run then
	 * keeps the host fields as they are. */
	if (fz_vmread(HOST_RIP) != 0)
		mode = RUN_LAUNCH | RUN_KEEP_HOST;
	for (unsigned n = 0; n < MAX_EXITS; n++) {
		uint32_t reason = mode >= 0 ? vm_go_mode(mode) : vm_go();
		mode = -1;
		kstate_restore();
		if (reason == GO_FAILED) {
			fz_add(l, " go=%s", vm.go.s);
			return;
		}
		print_exit(l, reason);
		print_regs(l, fz_programs[prog].masks_rax_rdx || b_of(reason) == EXIT_PREEMPT);
		print_ept_ad(l);
		print_pml(l);
		print_msr_store(l);
		uint32_t b = reason & 0xffff;
		if ((reason & EXIT_FAILED_ENTRY) || b == EXIT_VMCALL || b == 2)
			return;
		/* What a hypervisor does next, chosen by the seed. */
		if (b == EXIT_EXC_NMI) {
			if (rnd_chance(r, 1, 2))
				return;
			/* Reflect the exception into L2 (SDM 26.6: event injection). */
			uint32_t ii = vm.x.intr_info & ~(1u << 12);
			fz_vmwrite(ENTRY_INTR_INFO, ii);
			fz_vmwrite(ENTRY_EXC_ERR, vm.x.intr_err);
			fz_vmwrite(ENTRY_INSN_LEN, vm.x.len);
			fz_add(l, " inj");
		} else if (b == EXIT_EPT_VIOLATION || b == EXIT_EPT_MISCONFIG) {
			if (rnd_chance(r, 1, 3))
				return;
			/* Grant the access and flush: the L2 retries it. */
			*ept_probe_pte() = (pa(ept_probe) & ~0xfffull) | EPT_WB | EPT_R | EPT_W | EPT_X;
			static struct inv_desc e;
			e.lo = ept_pointer();
			e.hi = 0;
			struct vres v = vx(VX_INVEPT, rnd_chance(r, 1, 2) ? 1 : 2, pa(&e));
			char o[24];
			fz_add(l, " fix=%s", fz_outcome(&v, o, sizeof(o)));
		} else if (b == EXIT_INTR_WINDOW || b == EXIT_NMI_WINDOW) {
			vm_ctl(PROC_CTLS, 0, b == EXIT_INTR_WINDOW ? PROC_INTR_WINDOW : PROC_NMI_WINDOW);
		} else if (b == EXIT_PREEMPT) {
			if (rnd_chance(r, 1, 2))
				return;
			fz_vmwrite(GUEST_PREEMPT_TIMER, rnd_chance(r, 1, 2) ? 0 : 3000); /* see m_timer */
		} else if (insn_exit(b)) {
			/* Emulate the bare minimum, then skip the instruction. */
			if (b == EXIT_CPUID) {
				vm.r.rax = 0x11;
				vm.r.rbx = 0x22;
				vm.r.rcx = 0x33;
				vm.r.rdx = 0x44;
			} else if (b == EXIT_RDMSR) {
				vm.r.rax = 0x5a5a;
				vm.r.rdx = 0;
			} else if (b == EXIT_IO && (vm.x.qual & 8)) {
				vm.r.rax = (vm.r.rax & ~0xffull) | 0xab;
			}
			vm_skip();
		} else {
			return;
		}
		/* Now and then an entry instruction in the wrong launch state. */
		if (rnd_chance(r, 1, 16)) {
			struct vres v = vx(VX_VMLAUNCH, 0, 0);
			char o[24];
			fz_add(l, " relaunch=%s", fz_outcome(&v, o, sizeof(o)));
		}
	}
	fz_add(l, " ...");
}

/* --- the test ---------------------------------------------------------------- */
TEST(vmxfuzz, run)
{
	if (!vmx_prepare())
		return;
	fz_caps_init();
	kstate_save();
	/* The capability sets the generator draws from: identical at every
	 * depth, or Nestor offers something else than docs/nested.md says. */
	say("caps pin %x/%x proc %x/%x proc2 %x exit %x/%x entry %x/%x ept %llx misc %llx", fzc.pin0, fzc.pin1,
	    fzc.proc0, fzc.proc1, fzc.proc2_1, fzc.exit0, fzc.exit1, fzc.entry0, fzc.entry1,
	    (unsigned long long)fzc.ept, (unsigned long long)fzc.misc);
	say("caps must-be-0 pin %x proc %x proc2 %x exit %x entry %x", fzc.pin_bad, fzc.proc_bad, fzc.proc2_bad,
	    fzc.exit_bad, fzc.entry_bad);
	/* Every VMX capability MSR, the non-TRUE ones and VMFUNC too: their
	 * values differ between depths by design (revision, offered set), so
	 * they are environment facts (0x491, VMFUNC, exists only at depth 0). */
	uint32_t have = 0;
	for (uint32_t m = 0x480; m <= 0x491; m++) {
		uint64_t v;
		have |= (uint32_t)rdmsr_safe(m, &v) << (m - 0x480);
		env("MSR %x = %llx", m, (unsigned long long)v);
	}
	env("VMX capability MSRs readable: %x", have);
	env("raw pin %llx proc %llx proc2 %llx exit %llx entry %llx ept %llx misc %llx", (unsigned long long)vcaps.pin,
	    (unsigned long long)vcaps.proc, (unsigned long long)vcaps.proc2, (unsigned long long)vcaps.exit,
	    (unsigned long long)vcaps.entry, (unsigned long long)vcaps.ept_vpid, (unsigned long long)vcaps.misc);
	const uint64_t seed = vmxfuzz_opts.seed, classes = vmxfuzz_opts.classes & FZ_C_ALL;
	say("seed %llu, cases %llu from %llu, classes %llx", (unsigned long long)seed,
	    (unsigned long long)vmxfuzz_opts.cases, (unsigned long long)vmxfuzz_opts.first, (unsigned long long)classes);
	CHECK(classes != 0, "no case class selected");
	if (!classes)
		return;
	fz_in_vmx = false;
	unsigned done = 0;
	for (uint64_t k = vmxfuzz_opts.first; k < vmxfuzz_opts.first + vmxfuzz_opts.cases; k++) {
		struct rng r;
		rng_seed(&r, seed, k);
		struct fz_line l;
		l.len = 0;
		l.buf[0] = 0;
		fz_add(&l, "%llu", (unsigned long long)k);
		if (!fz_in_vmx && !fz_vmxon()) {
			fz_add(&l, " VMXON failed");
			say("%s", l.buf);
			CHECK(false, "cannot enter VMX operation");
			break;
		}
		/* The class: entries three times out of four. */
		unsigned cls;
		do {
			unsigned pick = rnd_below(&r, 8);
			cls = pick < 5 ? FZ_C_ENTRY : pick < 7 ? FZ_C_INSN : FZ_C_MSRLIST;
		} while (!(classes & cls));
		if (cls == FZ_C_INSN)
			fz_insn_case(&r, &l);
		else
			entry_case(&r, &l, cls == FZ_C_MSRLIST);
		kstate_restore();
		fz_clear_all();
		/* An instruction case may leave VMX operation on any region
		 * (VMXON of vmcs_a): the next case starts from a fresh VMXON. */
		if (cls == FZ_C_INSN && fz_in_vmx) {
			vx(VX_VMXOFF, 0, 0);
			fz_in_vmx = false;
			kstate_restore();
		}
		if (fz_nmi_touched && fz_in_vmx)
			nmi_unblock();
		fz_nmi_touched = false;
		fz_link_set = fz_nonreg_set = fz_inj_set = false;
		say("%s", l.buf);
		done++;
	}
	fz_clear_all();
	if (fz_in_vmx)
		vx(VX_VMXOFF, 0, 0);
	fz_in_vmx = false;
	kstate_restore();
	vmx_end();
	say("%u cases", done);
}
