/* exits.h - the exit handlers, one file per exit class, and the helpers
 * they share.  Dispatch is by table in vmx/exit.c. */
#ifndef VMX_EXITS_H
#define VMX_EXITS_H

#include <stdbool.h>
#include <stdint.h>
#include "vmx/vcpu.h"

typedef void (*exit_fn)(struct vcpu *v);

/* vmx/exit.c */
void skip_instruction(struct vcpu *v);
/* Same, with a length Nestor decoded itself. */
void skip_instruction_len(struct vcpu *v, unsigned len);
const char *exit_reason_name(unsigned reason);
__attribute__((noreturn)) void vm_end_run(struct vcpu *v, bool failed, const char *why);
void vcpu_print_stats(const struct vcpu *v);
uint64_t vcpu_total_exits(const struct vcpu *v);
/* vmx/footprint.c: one line with the memory this Nestor uses, by kind. */
void vm_print_footprint(const struct vcpu *v);

/* vmx/events.c */
void inject_exception(struct vcpu *v, unsigned vector);
void inject_exception_err(struct vcpu *v, unsigned vector, uint32_t err);
/* A #PF with its linear address (CR2, or the exit qualification when a
 * guest hypervisor intercepts it). */
void inject_page_fault(struct vcpu *v, uint64_t cr2, uint32_t err);
#define inject_gp(v) inject_exception_err(v, 13, 0)
#define inject_ud(v) inject_exception(v, 6)
void reinject_idt_vectoring(struct vcpu *v);
void deliver_pending_events(struct vcpu *v);
void deliver_nmis(unsigned *pending, uint32_t *proc, bool window_exit);
void exit_exception_nmi(struct vcpu *v);
void exit_nmi_window(struct vcpu *v);
void exit_triple_fault(struct vcpu *v);

/* A string instruction's counter/index update with address size asize
 * (bytes): 16-bit writes keep the upper bits, 32-bit writes zero-extend. */
static inline uint64_t addr_reg_update(uint64_t old, uint64_t val, unsigned asize)
{
	return asize == 2 ? (old & ~0xffffull) | (val & 0xffff) : asize == 4 ? (uint32_t)val : val;
}

/* vmx/exit_cpuid.c */
void cpuid_init(struct vcpu *v);
void exit_cpuid(struct vcpu *v);
void cpuid_forget_xsave(struct vcpu *v);

/* vmx/exit_cr.c */
void exit_cr_access(struct vcpu *v);
uint64_t guest_cr0(void);
uint64_t guest_cr4(void);
uint64_t cr4_guest_allowed(void);
int guest_cpl(void);

/* vmx/exit_msr.c */
void exit_rdmsr(struct vcpu *v);
void exit_wrmsr(struct vcpu *v);
/* RDMSR/WRMSR of the level running in the current VMCS, as the CPU would
 * answer it there (VMCS-switched MSRs in the VMCS's guest fields, the
 * virtual VMX MSRs, the virtual APIC base, the rest passed through to the
 * real MSR): 0, or -1 for #GP(0).  Also how VMX MSR-load/store lists are
 * applied (nested/). */
int guest_msr_read(struct vcpu *v, uint32_t msr, uint64_t *val);
int guest_msr_write(struct vcpu *v, uint32_t msr, uint64_t val);
/* The VMCS guest-state field that holds an MSR for the guest, or 0. */
uint32_t msr_vmcs_field(uint32_t msr);

/* vmx/apic.c: IA32_APIC_BASE of the guest (the real one never moves). */
int apic_base_read(struct vcpu *v, uint64_t *val);
int apic_base_write(struct vcpu *v, uint64_t val);
void apic_init(struct vcpu *v);
/* EPT entries for a moved xAPIC, applied after every EPT build. */
int apic_ept_overrides(struct vm *vm);
/* EPT rights of the guest's xAPIC page (read-only when writes are trapped). */
uint64_t apic_page_rights(const struct vm *vm);
/* Several CPUs: the guest's xAPIC writes and x2APIC ICR writes are trapped,
 * INITs emulated (vmx/exit_apic.c).  Called once, before the guest runs. */
int apic_trap_init(struct vm *vm);
/* A write to the guest's xAPIC page (gpa in it): emulated; false when the
 * instruction is not one Nestor emulates there. */
bool apic_write_violation(struct vcpu *v, uint64_t gpa);
/* The same, from an EPT violation (gpa: the real xAPIC's address). */
void ept_apic_write(struct vcpu *v, uint64_t gpa);
/* Before resuming a guest after an EPT violation with qualification q:
 * NMI blocking that its IRET had lifted is put back (SDM 27.2.3). */
void ept_exit_restore_nmi_blocking(uint64_t q);
/* The guest's WRMSR of the x2APIC ICR (0x830) when trapped; -1: #GP. */
int apic_x2apic_icr_write(struct vcpu *v, uint64_t val);
/* Requests between vCPUs (vmx/sync.c): taken at the end of an exit; while
 * waiting on another vCPU, all but an INIT (stop, INVEPT, drop shadows). */
void vcpu_take_requests(struct vcpu *v);
/* An INIT for vCPU t (another one), taken before this returns. */
void vcpu_send_init(struct vcpu *from, struct vcpu *t);
/* A SIPI for vCPU t: it starts at the vector's page if it waits for one
 * (vcpu_park), as a CPU in wait-for-SIPI does; else nothing. */
void vcpu_send_sipi(struct vcpu *from, struct vcpu *t, unsigned vector);
/* A vCPU whose guest waits for SIPI (vcpu_reset) stays in Nestor, halted,
 * serving the others' requests, until a SIPI; it returns with the vCPU at
 * the SIPI's vector (vcpu_start_at).  Not the CPU's wait-for-SIPI state:
 * after a SIPI exit Bochs 2.7 leaves SMIs blocked, to be mended on every
 * exit after (docs/smp.md). */
void vcpu_park(struct vcpu *v);
/* The guest starts at vector's page after a SIPI (SDM 10.4). */
void vcpu_start_at(struct vcpu *v, unsigned vector);
/* Every other running vCPU stopped at the end of its exit (waiting ms
 * milliseconds at most for each), until vm_resume_others, which also asks
 * them for `after` (REQ_*). */
void vm_stop_others(struct vcpu *v, unsigned ms);
/* Every other vCPU takes the requests req (REQ_*) before this returns
 * (a parked one before it runs again). */
void vm_ask_others(struct vcpu *v, unsigned req);
void vm_resume_others(struct vcpu *v, unsigned after);
/* This CPU's VMX delegation to the Nestor below, asked (on) or ended
 * (NESTOR_HC_DELEGATE_VMX / _UNDELEGATE_VMX; the level below keeps it per
 * CPU, docs/depth.md): a NESTOR_* status. */
int64_t delegation_below(bool on);
/* Our guest, whose VMX the Nestor below emulates (we delegated), received
 * an INIT on this CPU (NESTOR_HC_GUEST_INIT): true when that Nestor holds
 * it for the guest's VMX operation, false when the guest is not in VMX
 * operation and ours to reset. */
bool guest_init_below(void);
/* Our own I/O or MSR bitmaps changed: the Nestor below, if we delegated
 * our guest's VMX to it, merged copies of them (NESTOR_HC_BITMAPS_CHANGED). */
void bitmaps_changed_below(const struct vm *vm);
/* Our guest's pending NMIs, its VMX delegated: handed to the Nestor below
 * (NESTOR_HC_GUEST_NMI), which knows whether the guest runs a guest of its
 * own, where the NMI goes then.  False when that Nestor refuses (the rest
 * stay pending here). */
bool guest_nmis_below(struct vcpu *v);
/* Between vm_stop_others and vm_resume_others: whether every other vCPU
 * that runs stopped at the end of an exit (a parked one runs nothing);
 * and work done by stopped vCPU t on its own CPU, finished on return. */
bool vm_others_stopped_whole(struct vcpu *v);
void vm_run_on(struct vcpu *t, void (*work)(struct vcpu *t, void *arg), void *arg);
/* ept_rebuild with the other vCPUs stopped and flushed after, under the
 * memory types of `types` when not NULL (copied to vm->mtrr); their shadow
 * EPTs (and ours) dropped too when drop_shadows. */
int vm_ept_rebuild(struct vcpu *v, const struct mtrr_state *types, bool drop_shadows);
/* An NMI for the guest context running on v's CPU (the level running, or
 * held for its hypervisor): delivered at the next entry. */
void vcpu_nmi_arrived(struct vcpu *v);
/* An NMI that is a kick from another vCPU of ours: consumes it. */
bool vcpu_kicked(struct vcpu *v);

/* vmx/exit_io.c */
void exit_io(struct vcpu *v);

/* vmx/exit_misc.c */
void exit_xsetbv(struct vcpu *v);
void exit_cache_flush(struct vcpu *v); /* INVD, WBINVD */
void exit_hlt(struct vcpu *v);
void exit_vmx_insn(struct vcpu *v);
void exit_init(struct vcpu *v);
/* The vCPU after INIT (SDM 3A table 10-1): the reset vector for the
 * bootstrap processor, waiting for SIPI for the others. */
void vcpu_reset(struct vcpu *v, bool bsp);
void exit_sipi(struct vcpu *v);
void exit_getsec(struct vcpu *v);

/* vmx/exit_task.c */
void exit_task_switch(struct vcpu *v);

/* vmx/exit_ept.c */
void exit_ept_violation(struct vcpu *v);
void exit_ept_misconfig(struct vcpu *v);
/* The instruction at RIP wrote non-existent memory at gpa (owner: the
 * nested level whose shadow EPT maps it, NULL for EPT01): STOS/MOVS are
 * emulated, any other instruction runs once with the page in a sink. */
void ept_drop_write(struct vcpu *v, uint64_t gpa, struct nested *owner);
/* An access (EPT qualification q) by the running level to memory that does
 * not exist for it: logged; reads find ones (the page of ones is mapped in
 * EPT01, or in owner's shadow EPT), writes are dropped, fetches #UD. */
void ept_absent_access(struct vcpu *v, uint64_t gpa, uint64_t q, struct nested *owner);
/* At the exit after an event delivery wrote into non-existent memory: the
 * pages are non-existent again; true when the exit was only Nestor's own
 * preemption-timer exit (nothing to handle). */
bool ept_sink_end(struct vcpu *v, uint32_t reason);

/* hypercall/hypercall.c */
void exit_vmcall(struct vcpu *v);

#endif
