/* exit_misc.c - instructions that exit unconditionally, and INIT/SIPI.
 * SDM Vol. 3C 25.1.2 lists what always exits in VMX non-root operation. */
#include "boot/fixup.h"
#include "boot/lapic.h"
#include "hypercall/abi.h"
#include "lib/log.h"
#include "lib/x86.h"
#include "vmx/exits.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"

/* XSETBV: ask the CPU.  It checks the index, the reserved and dependent
 * XCR0 bits exactly as it would for the guest; XCR0 is not switched by VMX,
 * so after a successful XSETBV the guest's value is in place.  The checks
 * the SDM places before the VM exit (#UD without CR4.OSXSAVE, #GP at CPL > 0)
 * are repeated here: some CPUs (Bochs 2.7) exit first, and Nestor runs the
 * instruction at CPL 0. */
void exit_xsetbv(struct vcpu *v)
{
	if (!(guest_cr4() & CR4_OSXSAVE)) {
		inject_ud(v);
		return;
	}
	if (guest_cpl() != 0) {
		inject_gp(v);
		return;
	}
	uint32_t idx = (uint32_t)v->gpr[RCX];
	uint64_t val = ((uint64_t)(uint32_t)v->gpr[RDX] << 32) | (uint32_t)v->gpr[RAX];
	int vec = xsetbv_safe(idx, val);
	if (vec) {
		inject_exception_err(v, vec, 0);
		return;
	}
	cpuid_forget_xsave(v);
	skip_instruction(v);
}

/* INVD (always exits) and WBINVD (with WBINVD exiting, which a CPU could
 * force): both write back and invalidate - INVD would drop dirty cache lines
 * of Nestor too (KVM does the same). */
void exit_cache_flush(struct vcpu *v)
{
	__asm__ volatile("wbinvd" ::: "memory");
	skip_instruction(v);
}

void exit_hlt(struct vcpu *v)
{
	/* Not intercepted (HLT runs natively); kept for CPUs that force it:
	 * enter the HLT activity state, the CPU wakes the guest. */
	skip_instruction(v);
	vmwrite(VMCS_GUEST_ACTIVITY_STATE, ACTIVITY_HLT);
}

/* VMX instructions: emulated for a guest hypervisor (nested/insn.c), or
 * invalid opcodes when nested VMX is off, as on a CPU without VMX. */
void exit_vmx_insn(struct vcpu *v) { nested_vmx_instruction(v, vmread(VMCS_EXIT_REASON) & 0xffff); }

/* GETSEC with CR4.SMXE=1 exits; SMX is not offered: #UD. */
void exit_getsec(struct vcpu *v) { inject_ud(v); }

/* The architectural INIT state (SDM Vol. 3A table 10-1), entered on INIT
 * and, with CS from the vector, on SIPI. */
static void init_state(struct vcpu *v, uint16_t cs, uint64_t cs_base, uint64_t rip)
{
	struct guest_state g = { 0 };
	for (int i = 0; i < 8; i++) {
		g.seg[i].limit = 0xffff;
		g.seg[i].ar = 0x93; /* present, read/write, accessed */
	}
	g.seg[SEG_CS].sel = cs;
	g.seg[SEG_CS].base = cs_base;
	g.seg[SEG_CS].ar = 0x9b;
	g.seg[SEG_LDTR].ar = 0x82;
	g.seg[SEG_TR].ar = 0x8b;
	g.gdtr_limit = g.idtr_limit = 0xffff;
	g.cr0 = CR0_ET | CR0_CD | CR0_NW;
	g.rip = rip;
	g.rflags = RFLAGS_FIXED;
	g.pat = vmread(VMCS_GUEST_IA32_PAT); /* INIT and SIPI leave IA32_PAT as it is */
	g.gpr[RDX] = cpuid(1, 0).eax; /* processor signature */
	vmx_load_guest_state(v, &g);
	vmwrite(VMCS_GUEST_PDPTE0, 0);
}

void vcpu_reset(struct vcpu *v, bool bsp)
{
	init_state(v, 0xf000, 0xffff0000ull, 0xfff0);
	/* The local APIC is the guest's, on this CPU: an INIT resets it too;
	 * and IA32_XSS (passed through), which an INIT clears (SDM 3A table
	 * 10-1; Bochs too).  Other MSRs keep their values. */
	lapic_init_reset();
	if (cpuid(0, 0).eax >= 0xd && (cpuid(0xd, 1).eax & (1u << 3)))
		wrmsr_safe(MSR_IA32_XSS, 0);
	/* CR2 0, DR0-DR3 0 and DR6 FFFF0FF0H (table 10-1; DR7 is in the VMCS,
	 * init_state): not part of the VMCS, the CPU's are the guest's. */
	write_cr2(0);
	write_dr0(0), write_dr1(0), write_dr2(0), write_dr3(0);
	write_dr6(0xffff0ff0);
	/* An AP then waits for a SIPI in Nestor (vcpu_park, at the end of
	 * this exit), not in the VMCS's wait-for-SIPI state. */
	vmwrite(VMCS_GUEST_ACTIVITY_STATE, ACTIVITY_ACTIVE);
	/* A SIPI sent before this INIT took effect (the second of a pair,
	 * say) does not start it: only one that finds it waiting. */
	__atomic_and_fetch(&v->requests, ~(unsigned)REQ_SIPI, __ATOMIC_ACQ_REL);
	__atomic_store_n(&v->waiting_sipi, !bsp, __ATOMIC_RELEASE);
	v->entry_recheck = 1; /* the entry path parks it */
}

void vcpu_start_at(struct vcpu *v, unsigned vec)
{
	/* A snapshot took VMX emulation back from the Nestor below while this
	 * vCPU waited (snap/snapshot.c): its own CPU's turn, before the guest
	 * runs anything. */
	if (v->undelegate_at_sipi) {
		if (delegation_below(false) != NESTOR_OK)
			vm_end_run(v, true, "VMX delegation below could not be ended on this CPU after a snapshot");
		v->undelegate_at_sipi = false;
	}
	init_state(v, (uint16_t)(vec << 8), (uint64_t)vec << 12, 0);
	vmwrite(VMCS_GUEST_ACTIVITY_STATE, ACTIVITY_ACTIVE);
	v->waiting_sipi = false;
}

void exit_init(struct vcpu *v)
{
	/* An INIT resets the vCPU; an application processor then waits for a
	 * SIPI, the bootstrap processor restarts at the reset vector.  (With
	 * several CPUs the guest's INITs are emulated, vmx/exit_apic.c; one
	 * comes here only from the Nestor below, when our guest left VMX
	 * operation holding an INIT: nested/signals.c.) */
	bool bsp = rdmsr(MSR_IA32_APIC_BASE) & (1u << 8);
	vcpu_reset(v, bsp);
	pr_info("guest vCPU %u received INIT (%s)\n", v->id, bsp ? "restarts at the reset vector" : "waits for SIPI");
}

void exit_sipi(struct vcpu *v)
{
	/* The guest's SIPIs are emulated (vcpu_park): a SIPI exit means
	 * the VMCS was in the wait-for-SIPI state some other way. */
	unsigned vec = vmread(VMCS_EXIT_QUALIFICATION) & 0xff;
	pr_debug("guest vCPU %u received SIPI (vector 0x%x)\n", v->id, vec);
	vcpu_start_at(v, vec);
	/* (Bochs' NMI and SMI masking after it: vmx_handle_exit.) */
}
