/* events.c - exceptions and NMIs for the guest (SDM Vol. 3C 27.2.3, 26.6).
 *
 * Interrupts are not intercepted: the CPU delivers them to the guest.  What
 * Nestor must do is (1) re-inject an event whose delivery a VM exit
 * interrupted (IDT-vectoring information), (2) inject exceptions its
 * emulation raises, combining them like the CPU (double fault, triple
 * fault), and (3) deliver NMIs, which exit so that none is lost while Nestor
 * runs, through NMI windows when the guest blocks them. */
#include "lib/log.h"
#include "lib/x86.h"
#include "vmx/dump.h"
#include "vmx/exits.h"
#include "vmx/vmcs.h"
#include "vmx/vmcs_own.h"
#include "vmx/vmx.h"

static bool has_error_code(unsigned v)
{
	return v == EXC_DF || (v >= EXC_TS && v <= EXC_PF) || v == EXC_AC || v == EXC_CP;
}

static bool contributory(unsigned v) { return v == EXC_DE || (v >= EXC_TS && v <= EXC_GP); }

/* Real mode pushes no error code: the mode is the one the CPU runs, the
 * guest CR0 field's PE (a hypervisor above may show its guest another PE
 * through its read shadow), which is also what VM entry checks (SDM
 * 26.2.1.3). */
static bool pushes_error_code(unsigned vector)
{
	return has_error_code(vector) && (vmread(VMCS_GUEST_CR0) & CR0_PE);
}

/* Injects an exception into the level that runs, combined with an event
 * being delivered as the CPU would (SDM 6.15 table 6-5). */
static void raise_in_guest(struct vcpu *v, unsigned vector, uint32_t err)
{
	uint32_t prev = vmread(VMCS_VMENTRY_INTR_INFO);
	if ((prev & INTR_INFO_VALID) && ((prev >> 8) & 7) == INTR_TYPE_HW_EXCEPTION) {
		unsigned first = prev & 0xff;
		if (first == EXC_DF) {
			pr_err("guest triple fault (exception %u while delivering #DF)\n", vector);
			vmcs_dump_guest(v);
			vm_end_run(v, true, "guest triple fault");
		}
		if ((contributory(first) && contributory(vector)) ||
		    (first == EXC_PF && (vector == EXC_PF || contributory(vector)))) {
			vector = EXC_DF;
			err = 0;
		}
	}
	uint32_t info = INTR_INFO_VALID | (INTR_TYPE_HW_EXCEPTION << 8) | vector;
	/* No error code is pushed in real mode (and VM entry checks it). */
	if (pushes_error_code(vector)) {
		info |= INTR_INFO_ERRCODE_VALID;
		vmwrite(VMCS_VMENTRY_EXCEPTION_ERRCODE, err);
	}
	vmwrite(VMCS_VMENTRY_INTR_INFO, info);
}

/* A fault leaves RF set in the RFLAGS image its delivery saves (SDM
 * 17.3.1.1), and in the RFLAGS a VM exit for it saves (SDM 27.3.3): every
 * exception but #DB, #BP, #OF, #DF and #MC (traps and aborts).  Exceptions
 * the CPU raises itself do it; the ones Nestor raises must too. */
static void fault_sets_rf(unsigned vector)
{
	if (vector == EXC_DB || vector == 3 || vector == 4 || vector == EXC_DF || vector == 18)
		return;
	uint64_t rflags = vmread(VMCS_GUEST_RFLAGS);
	if (!(rflags & RFLAGS_RF))
		vmwrite(VMCS_GUEST_RFLAGS, rflags | RFLAGS_RF);
}

/* Whether the exception pushes an error code in the running level's mode. */

void inject_exception_err(struct vcpu *v, unsigned vector, uint32_t err)
{
	VMCS_ASSERT_RUNNING(v);
	fault_sets_rf(vector);
	/* A guest hypervisor that intercepts it gets it as a VM exit. */
	if (__builtin_expect(v->cur > 1, 0) && nested_exception_to_l1(v, vector, pushes_error_code(vector), err, 0))
		return;
	raise_in_guest(v, vector, err);
}

void inject_page_fault(struct vcpu *v, uint64_t cr2, uint32_t err)
{
	VMCS_ASSERT_RUNNING(v);
	fault_sets_rf(EXC_PF);
	/* Intercepted: the fault address is the exit qualification, and CR2
	 * keeps the value it has (SDM 27.1). */
	if (v->cur > 1 && nested_exception_to_l1(v, EXC_PF, pushes_error_code(EXC_PF), err, cr2))
		return;
	write_cr2(cr2);
	raise_in_guest(v, EXC_PF, err);
}

void inject_exception(struct vcpu *v, unsigned vector) { inject_exception_err(v, vector, 0); }

void reinject_idt_vectoring(struct vcpu *v)
{
	VMCS_ASSERT_RUNNING(v);
	uint32_t info = vmread(VMCS_IDT_VECTORING_INFO);
	if (!(info & INTR_INFO_VALID))
		return;
	unsigned type = (info >> 8) & 7;
	/* Bit 12 is undefined here and reserved on entry. */
	vmwrite(VMCS_VMENTRY_INTR_INFO, info & ~INTR_INFO_NMI_UNBLOCKED_IRET);
	if (info & INTR_INFO_ERRCODE_VALID)
		vmwrite(VMCS_VMENTRY_EXCEPTION_ERRCODE, vmread(VMCS_IDT_VECTORING_ERRCODE));
	if (type == INTR_TYPE_SW_INTR || type == INTR_TYPE_PRIV_SW_EXCEPTION || type == INTR_TYPE_SW_EXCEPTION)
		vmwrite(VMCS_VMENTRY_INSTR_LEN, vmread(VMCS_EXIT_INSTR_LEN));
}

/* Delivers one of *pending NMIs into the guest of the current VMCS when it
 * can take it, else asks for an NMI-window exit (*proc tracks the primary
 * controls as programmed).  window_exit: called for an NMI-window exit. */
void deliver_nmis(unsigned *pending, uint32_t *proc, bool window_exit)
{
	uint32_t want = *proc;
	if (window_exit)
		want &= ~PROC_NMI_WINDOW;
	if (*pending) {
		uint32_t intr = vmread(VMCS_GUEST_INTERRUPTIBILITY);
		bool busy = vmread(VMCS_VMENTRY_INTR_INFO) & INTR_INFO_VALID;
		if (busy || (intr & (INTERRUPTIBILITY_NMI | INTERRUPTIBILITY_MOV_SS | INTERRUPTIBILITY_STI))) {
			want |= PROC_NMI_WINDOW; /* come back when the guest can take it */
		} else {
			vmwrite(VMCS_VMENTRY_INTR_INFO, INTR_INFO_VALID | (INTR_TYPE_NMI << 8) | EXC_NMI);
			if (vmread(VMCS_GUEST_ACTIVITY_STATE) == ACTIVITY_HLT)
				vmwrite(VMCS_GUEST_ACTIVITY_STATE, ACTIVITY_ACTIVE);
			(*pending)--;
			want = *pending ? want | PROC_NMI_WINDOW : want & ~PROC_NMI_WINDOW;
		}
	}
	if (want != *proc) {
		*proc = want;
		vmwrite(VMCS_PROC_BASED_CTLS, want);
	}
}

void deliver_pending_events(struct vcpu *v)
{
	if (v->vm->delegated && guest_nmis_below(v))
		return;
	deliver_nmis(&v->nmi_pending, &v->proc_ctls, false);
}

void exit_nmi_window(struct vcpu *v) { deliver_nmis(&v->nmi_pending, &v->proc_ctls, true); }

void exit_exception_nmi(struct vcpu *v)
{
	uint32_t info = vmread(VMCS_EXIT_INTR_INFO);
	if (((info >> 8) & 7) == INTR_TYPE_NMI) {
		/* SDM 27.2.3: the NMI exited before delivery; it is the guest's.
		 * The CPU now blocks NMIs as if it had delivered one to us: lift
		 * that, or the guest would never see another NMI. */
		vmx_unblock_nmis();
		v->nmi_pending++;
		reinject_idt_vectoring(v);
		return;
	}
	pr_err("unexpected exception exit: vector %u, error code 0x%llx\n", info & 0xff,
	       (unsigned long long)vmread(VMCS_EXIT_INTR_ERRCODE));
	vmcs_dump_guest(v);
	vm_end_run(v, true, "unexpected exception exit");
}

void exit_triple_fault(struct vcpu *v)
{
	pr_err("guest triple fault: the guest's CPU shut down\n");
	vmcs_dump_guest(v);
	vm_end_run(v, true, "guest triple fault");
}
