/* exit.c - the life of one VM exit: dispatch by table, statistics, and the
 * clean report for what Nestor does not handle.
 *
 * vmx_exit_stub (entry.S) saved the guest registers and calls
 * vmx_handle_exit(); the handler for the basic exit reason runs; pending
 * events are delivered; the time spent is counted per reason; the stub
 * resumes the guest. */
#include "boot/integrity.h"
#include "boot/platform.h"
#include "boot/smp.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "nested/nested.h"
#include "vmx/prof.h"
#include "vmx/debug_hook.h"
#include "vmx/dump.h"
#include "vmx/exit_reasons.h"
#include "vmx/exits.h"
#include "vmx/filter.h"
#include "vmx/vmcs.h"
#include "vmx/vmcs_own.h"
#include "vmx/vm.h"
#include "vmx/vmx.h"

static void unhandled_exit(struct vcpu *v);

const struct vmx_debug_ops *vmx_debug; /* debug/gdb_stub.c registers it (gdb=) */

/* The handler of every basic exit reason Nestor handles (SDM appendix C);
 * anything else is reported as unexpected.  Every slot has a handler (the
 * range initializer below), so dispatch needs no NULL test. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
static const exit_fn exit_table[EXIT_STATS_MAX] = {
	[0 ... EXIT_STATS_MAX - 1] = unhandled_exit,
	[EXIT_EXCEPTION_NMI] = exit_exception_nmi,
	[EXIT_TRIPLE_FAULT] = exit_triple_fault,
	[EXIT_INIT] = exit_init,
	[EXIT_SIPI] = exit_sipi,
	[EXIT_NMI_WINDOW] = exit_nmi_window,
	[EXIT_TASK_SWITCH] = exit_task_switch,
	[EXIT_CPUID] = exit_cpuid,
	[EXIT_GETSEC] = exit_getsec,
	[EXIT_HLT] = exit_hlt,
	[EXIT_INVD] = exit_cache_flush,
	[EXIT_VMCALL] = exit_vmcall,
	[EXIT_VMCLEAR] = exit_vmx_insn,
	[EXIT_VMLAUNCH] = exit_vmx_insn,
	[EXIT_VMPTRLD] = exit_vmx_insn,
	[EXIT_VMPTRST] = exit_vmx_insn,
	[EXIT_VMREAD] = exit_vmx_insn,
	[EXIT_VMRESUME] = exit_vmx_insn,
	[EXIT_VMWRITE] = exit_vmx_insn,
	[EXIT_VMXOFF] = exit_vmx_insn,
	[EXIT_VMXON] = exit_vmx_insn,
	[EXIT_CR_ACCESS] = exit_cr_access,
	[EXIT_IO] = exit_io,
	[EXIT_RDMSR] = exit_rdmsr,
	[EXIT_WRMSR] = exit_wrmsr,
	[EXIT_EPT_VIOLATION] = exit_ept_violation,
	[EXIT_EPT_MISCONFIG] = exit_ept_misconfig,
	[EXIT_INVEPT] = exit_vmx_insn,
	[EXIT_INVVPID] = exit_vmx_insn,
	[EXIT_WBINVD] = exit_cache_flush,
	[EXIT_XSETBV] = exit_xsetbv,
	[EXIT_VMFUNC] = exit_vmx_insn,
};
#pragma GCC diagnostic pop

uint64_t vcpu_total_exits(const struct vcpu *v)
{
	uint64_t t = 0;
	for (unsigned r = 0; r < EXIT_STATS_MAX; r++)
		t += v->stats.count[r];
	return t;
}

const char *exit_reason_name(unsigned reason)
{
	if (reason < EXIT_REASON_NAMES_MAX && exit_reason_names[reason])
		return exit_reason_names[reason];
	return "unknown";
}

/* SDM 25.3 / 27.x: emulating an instruction means advancing RIP, dropping
 * STI/MOV-SS blocking, and raising the single-step trap if RFLAGS.TF. */
void skip_instruction(struct vcpu *v) { skip_instruction_len(v, vmread(VMCS_EXIT_INSTR_LEN)); }

void skip_instruction_len(struct vcpu *v, unsigned len)
{
	VMCS_ASSERT_RUNNING(v);
	uint64_t rip = vmread(VMCS_GUEST_RIP);
	uint64_t next = rip + len;
	/* Outside 64-bit mode RIP wraps at 4 GiB (32-bit code) or 64 KiB
	 * (16-bit code); only look at the mode when a 64 KiB line is crossed. */
	if ((rip ^ next) >> 16) {
		uint32_t cs_ar = vmread(VMCS_GUEST_CS_AR);
		if (!(cs_ar & (1u << 13)) || !(vmread(VMCS_VMENTRY_CTLS) & ENTRY_IA32E_MODE))
			next &= (cs_ar & (1u << 14)) ? 0xffffffffull : 0xffffull;
	}
	vmwrite(VMCS_GUEST_RIP, next);
	uint32_t intr = vmread(VMCS_GUEST_INTERRUPTIBILITY);
	if (intr & (INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOV_SS))
		vmwrite(VMCS_GUEST_INTERRUPTIBILITY, intr & ~(INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOV_SS));
	if (vmread(VMCS_GUEST_RFLAGS) & RFLAGS_TF)
		vmwrite(VMCS_GUEST_PENDING_DBG_EXCEPTIONS, vmread(VMCS_GUEST_PENDING_DBG_EXCEPTIONS) | (1u << 14));
}

void vcpu_print_stats(const struct vcpu *v)
{
	pr_info("exit statistics: %llu exits\n", (unsigned long long)vcpu_total_exits(v));
	for (unsigned r = 0; r < EXIT_STATS_MAX; r++) {
		if (!v->stats.count[r])
			continue;
		pr_info("  %2u %-28s %10llu exits %12llu ticks (%llu per exit)\n", r, exit_reason_name(r),
			(unsigned long long)v->stats.count[r], (unsigned long long)v->stats.ticks[r],
			(unsigned long long)(v->stats.ticks[r] / v->stats.count[r]));
	}
}

void vm_end_run(struct vcpu *v, bool failed, const char *why)
{
	pr_info("guest ended the run (%s)\n", why);
	if (vmx_debug)
		vmx_debug->end(v, failed);
	struct vm *vm = v->vm;
	if (vm->ncpus > 1) {
		/* Every other vCPU stopped at the end of its exit, then each
		 * one's report, in CPU order. */
		vm_stop_others(v, 10);
		for (unsigned i = 0; i < vm->ncpus; i++) {
			const struct vcpu *t = vm->vcpus[i];
			if (!t)
				continue;
			pr_info("vCPU %u%s:\n", i, t == v ? " (ended the run)" : t->waiting_sipi ? " (waits for SIPI)" : "");
			vcpu_print_stats(t);
		}
	} else {
		vcpu_print_stats(v);
	}
	vm_print_footprint(v);
	vmx_filter_report(v);
	if (v->vm->hidden_accesses)
		pr_warn("the guest accessed Nestor's memory %llu times\n", (unsigned long long)v->vm->hidden_accesses);
	if (!integrity_check())
		failed = true;
	/* The real MTRRs type Nestor's own memory: no guest may change them. */
	struct mtrr_state now;
	mtrr_read(&now);
	if (memcmp(&now, &v->vm->mtrr_boot, sizeof(now))) {
		pr_err("integrity: the machine's MTRRs changed since boot\n");
		failed = true;
	}
	machine_end(failed);
}

static __attribute__((noreturn)) void unhandled(struct vcpu *v, uint32_t reason)
{
	pr_err("unexpected VM exit: reason %u (%s%s), qualification 0x%llx\n", reason & 0xffff,
	       exit_reason_name(reason & 0xffff), (reason & EXIT_REASON_FAILED_ENTRY) ? ", VM-entry failure" : "",
	       (unsigned long long)vmread(VMCS_EXIT_QUALIFICATION));
	vmcs_dump_guest(v);
	vm_end_run(v, true, "unexpected VM exit");
}

static void unhandled_exit(struct vcpu *v) { unhandled(v, (uint32_t)vmread(VMCS_EXIT_REASON)); }

static inline void count_exit(struct vcpu *v, unsigned reason, unsigned from, uint64_t t0)
{
	uint64_t t = rdtsc() - t0;
	_Static_assert(EXIT_STATS_LEVELS > NESTED_MAX_LEVELS + 1, "a slot for every level that can run");
	v->stats.count[reason]++;
	v->stats.ticks[reason] += t;
	v->stats.by_level[from][reason]++;
	v->stats.ticks_by_level[from][reason] += t;
}

/* Pending NMIs go to whichever level runs next. */
static void deliver_nmis_next(struct vcpu *v)
{
	if (v->cur > 2 && v->nmi02_held)
		nested_route_held_nmis(v);
	if (v->cur > 1) {
		if (v->lv[v->cur - 1]->nmi_pending02)
			nested_deliver_nmis(v);
	} else if (v->nmi_pending) {
		deliver_pending_events(v);
	}
}

/* Exits of a level above 1, and exits of a level that enter the level
 * above it: the nested path. */
static __attribute__((noinline)) int nested_path(struct vcpu *v, uint32_t reason, uint64_t t0, unsigned from)
{
	if (from > 1) {
		nested_l2_exit(v, reason); /* route it (nested/exit.c) */
		reason &= 0xffff;
	}
	if (__builtin_expect(v->init_held | v->nmi_to_route | (v->cur > 1 ? v->nmi_pending : 0), 0))
		nested_signals(v);
	deliver_nmis_next(v);
	if (reason < EXIT_STATS_MAX)
		count_exit(v, reason, from, t0);
	vmcs_check_running(v);
	int launch = nested_launch_next(v);
	PROF_MARK(v, PROF_TAIL);
	return launch;
}

/* An EPT violation or misconfiguration is fault-like: the instruction did
 * not complete, so its own single-step trap is not pending (SDM 27.3.4;
 * one pending from a previous instruction under MOV-SS/STI blocking is).
 * Bochs 2.7 saves the BS bit all the same, and resuming would then raise
 * a #DB before the instruction runs again - a guest stepping over a page
 * Nestor fills in (shadow EPT, copy-on-write, a sink) would see one step
 * too many.  On a CPU this finds the bit clear. */
static void fault_exit_pending_dbg(void)
{
	uint64_t pdbg = vmread(VMCS_GUEST_PENDING_DBG_EXCEPTIONS);
	if ((pdbg & (1u << 14)) &&
	    !(vmread(VMCS_GUEST_INTERRUPTIBILITY) & (INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOV_SS)))
		vmwrite(VMCS_GUEST_PENDING_DBG_EXCEPTIONS, pdbg & ~(1ull << 14));
}

/* Out of line, so that the exit path without a debugger only tests the
 * pointer: true when the debugger consumed the exit. */
static __attribute__((noinline, cold)) bool debug_exit(struct vcpu *v, uint32_t reason, uint64_t t0)
{
	if (!vmx_debug->exit(v, reason))
		return false;
	if (reason < EXIT_STATS_MAX)
		count_exit(v, reason, v->cur, t0);
	vmcs_check_running(v);
	return true;
}

static int handle_exit(struct vcpu *v, uint32_t reason, uint64_t t0)
{
	if (reason == EXIT_EPT_VIOLATION || reason == EXIT_EPT_MISCONFIG)
		fault_exit_pending_dbg();
	if (__builtin_expect(v->sink.n, 0) && ept_sink_end(v, reason)) {
		vmcs_check_running(v);
		return nested_launch_next(v);
	}
	/* A debugger's breakpoints, steps and timer (vmx/debug_hook.h): one
	 * compare with memory and an untaken branch when none is registered. */
	if (__builtin_expect(vmx_debug != 0, 0) && debug_exit(v, reason, t0))
		return nested_launch_next(v);
	if (__builtin_expect(v->cur > 1, 0))
		return nested_path(v, reason, t0, v->cur);
	/* One compare rejects both failed entries (bit 31) and reasons with
	 * other high bits set or beyond the table; every table slot has a
	 * handler, the unexpected ones report. */
	if (reason >= EXIT_STATS_MAX)
		unhandled(v, reason);
	exit_table[reason](v);
	if (__builtin_expect(v->cur > 1, 0))
		return nested_path(v, reason, t0, 1); /* level 1 entered level 2 */
	if (v->nmi_pending)
		deliver_pending_events(v);
	count_exit(v, reason, 1, t0);
	vmcs_check_running(v);
	return 0;
}

/* Whether the context entered next waits for SIPI (a guest hypervisor's
 * guest; ours waits in vcpu_park): NMIs do not reach it (vmx/sync.c). */
static void note_parked(struct vcpu *v)
{
	__atomic_store_n(&v->parked, v->cur > 1 && vmread(VMCS_GUEST_ACTIVITY_STATE) == ACTIVITY_WAIT_SIPI,
			 __ATOMIC_RELEASE);
}

/* The entry path found entry_recheck set - by an NMI in root operation
 * (on_nmi), an INIT held for a level (nested_guest_init), our guest's AP
 * reset to wait for SIPI (vcpu_reset): what other vCPUs asked (requests,
 * vmx/sync.c), what is held for a level above 1 (an INIT, NMIs), the SIPI
 * wait.  Off the path of every exit. */
int vmx_entry_recheck(struct vcpu *v)
{
	v->entry_recheck = 0;
	int launch = v->entry_launch;
	if (__builtin_expect(v->selftest_armed, 0))
		vm_selftest(v);
	if (v->requests) {
		vcpu_take_requests(v);
		vmcs_check_running(v);
	}
	if (((v->init_held | v->nmi_pending) && v->cur > 1) || v->nmi_to_route) {
		/* Maybe not entered after all: an exit to a level below. */
		if (launch && v->cur > 1)
			v->lv[v->cur - 1]->vmcs02_launched = false;
		nested_signals(v);
		launch = nested_launch_next(v);
		vmcs_check_running(v);
	}
	deliver_nmis_next(v);
	/* Our guest's AP after an INIT: held here until its SIPI. */
	if (v->waiting_sipi && v->cur <= 1)
		vcpu_park(v);
	if (v->smp)
		note_parked(v);
	/* Whatever was done here, only the VMCS that runs v->cur is entered. */
	vmcs_check_running(v);
	return launch;
}

/* With several CPUs: what other vCPUs sent (kicks) and asked (requests,
 * vmx/sync.c) around the exit itself. */
static __attribute__((noinline)) int handle_exit_smp(struct vcpu *v, uint32_t reason, uint64_t t0)
{
	if (reason == EXIT_EXCEPTION_NMI)
		smp_halt_if_ended(); /* the run is over on another CPU */
	/* Bochs 2.7 leaves NMIs and SMIs masked after a SIPI exit (its
	 * wait-for-SIPI state masks them, the exit skips the unmasking),
	 * whichever level the SIPI was for: an IRET unmasks NMIs - on a CPU,
	 * where nothing is blocked, it changes nothing - and the SMI blocking
	 * it then saves in the guest state of every exit is cleared below. */
	if (reason == EXIT_SIPI) {
		vmx_unblock_nmis();
		v->smi_block_fix = true;
	}
	/* No guest of Nestor runs in SMM, where alone "blocking by SMI" may
	 * be 1 (SDM 26.3.1.5); Bochs 2.7 saves it after a SIPI (exit_sipi). */
	if (v->smi_block_fix) {
		uint64_t intr = vmread(VMCS_GUEST_INTERRUPTIBILITY);
		if (intr & INTERRUPTIBILITY_SMI)
			vmwrite(VMCS_GUEST_INTERRUPTIBILITY, intr & ~(uint64_t)INTERRUPTIBILITY_SMI);
	}
	int launch;
	if (reason == EXIT_EXCEPTION_NMI && v->kicked &&
	    ((vmread(VMCS_EXIT_INTR_INFO) >> 8) & 7) == INTR_TYPE_NMI && vcpu_kicked(v)) {
		/* Another vCPU's NMI, not the guest's: only to look. */
		vmx_unblock_nmis();
		reinject_idt_vectoring(v);
		launch = nested_launch_next(v);
	} else {
		launch = handle_exit(v, reason, t0);
	}
	/* What other vCPUs asked (vmx/sync.c); what follows from it is seen
	 * by the entry path (entry_recheck). */
	if (v->requests) {
		vcpu_take_requests(v);
		vmcs_check_running(v);
	}
	note_parked(v);
	return launch;
}

/* Virtual-NMI blocking (SDM 24.4.2, 26.6.1.2, 27.3.4) belongs to a VMCS:
 * a VM entry loads it from the guest's interruptibility state, a VM exit
 * saves it there.  Bochs 2.7 keeps it in one flag per CPU that an entry
 * sets but never clears and an exit leaves alone; only an IRET in a guest
 * clears it.  So the blocking of one VMCS's guest - an NMI injected, its
 * handler not yet returned (an L2 that exits from its NMI handler) - shows
 * at the next exit of whichever VMCS ran next, as if that level blocked
 * NMIs; and a level that executes no IRET (a Nestor: the NMIs of its guest
 * are injected by the Nestor below, it has no handler to return from) stays
 * "blocked" for good: no NMI, kick or INIT reaches it again (found at depth
 * 3 by smp.nmi_vmx then smp_x2apic.ipis).  On a CPU a VMCS entered without
 * blocking and without an NMI to inject cannot exit blocked - every NMI
 * exits (NMI exiting is always on with virtual NMIs), Nestor injects them
 * all - so there that blocking is dropped; it is never seen elsewhere.
 * Cost: one VMREAD per exit; the entry path (vmx/entry.S) calls
 * vmx_vnmi_entry only while the flag may be set. */
static inline void vnmi_after_exit(struct vcpu *v)
{
	uint64_t intr = vmread(VMCS_GUEST_INTERRUPTIBILITY);
	bool blocked = intr & INTERRUPTIBILITY_NMI;
	if (__builtin_expect(blocked && v->vnmi_state == VNMI_SUSPECT, 0))
		vmwrite(VMCS_GUEST_INTERRUPTIBILITY, intr & ~(uint64_t)INTERRUPTIBILITY_NMI);
	v->vnmi_state = blocked ? VNMI_SET : VNMI_CLEAR;
}

void vmx_vnmi_entry(struct vcpu *v)
{
	uint32_t inject = (uint32_t)vmread(VMCS_VMENTRY_INTR_INFO);
	bool nmi = (inject & INTR_INFO_VALID) && ((inject >> 8) & 7) == INTR_TYPE_NMI;
	bool own = nmi || (vmread(VMCS_GUEST_INTERRUPTIBILITY) & INTERRUPTIBILITY_NMI);
	v->vnmi_state = own ? VNMI_SET : VNMI_SUSPECT;
}

void vmx_entry_once(struct vcpu *v, unsigned level, uint32_t ctls)
{
	vmwrite(VMCS_VMENTRY_CTLS, vmread(VMCS_VMENTRY_CTLS) | ctls);
	v->entry_once |= (uint16_t)(1u << level);
}

/* The VMCS that ran v->cur was entered (or failed to be): its one-shot
 * controls have acted. */
static void entry_once_done(struct vcpu *v)
{
	if (!(v->entry_once & (1u << v->cur)))
		return;
	v->entry_once &= (uint16_t)~(1u << v->cur);
	vmwrite(VMCS_VMENTRY_CTLS, vmread(VMCS_VMENTRY_CTLS) & ~(uint64_t)ENTRY_ONCE_CTLS);
}

int vmx_handle_exit(struct vcpu *v)
{
	uint64_t t0 = rdtsc();
	PROF_START(v, t0);
	uint32_t reason = (uint32_t)vmread(VMCS_EXIT_REASON);
	if (__builtin_expect(v->entry_once, 0))
		entry_once_done(v);
	if (v->vnmis)
		vnmi_after_exit(v);
	if (__builtin_expect(v->smp, 0))
		return handle_exit_smp(v, reason, t0);
	return handle_exit(v, reason, t0);
}

int vmx_entry_failed(struct vcpu *v)
{
	uint64_t error = vmread(VMCS_VM_INSTRUCTION_ERROR);
	if (v->entry_once)
		entry_once_done(v);
	if (v->cur > 1) {
		int launch = nested_entry_refused(v, error);
		vmcs_check_running(v);
		return launch;
	}
	pr_err("VM entry failed: VM-instruction error %llu\n", (unsigned long long)error);
	vmcs_dump_guest(v);
	vm_end_run(v, true, "VM entry failed");
}

void vmx_launch_on(struct vcpu *v, uint64_t stack_top) __attribute__((noreturn));

void vmx_launch(struct vcpu *v) { vmx_launch_on(v, (uint64_t)(v->host_stack - 16)); }
