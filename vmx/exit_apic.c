/* exit_apic.c - the guest's INIT IPIs, when it has several CPUs.
 *
 * The guest owns its local APIC (passed through); Nestor looks at one
 * register only, the ICR, so that an INIT never reaches a CPU running a
 * guest.  On a CPU an INIT resets the target (an AP then waits for a SIPI);
 * in VMX non-root operation it is a VM exit instead - but one that Bochs
 * 2.7 never consumes (the INIT stays pending and exits again after every
 * VM entry), and that a CPU holds while the target waits for a SIPI
 * (SDM 25.2: INIT is blocked in the wait-for-SIPI state), where it would
 * reset the vCPU right after the SIPI started it.  So INITs are emulated:
 * the target vCPU resets itself, as the CPU would - and SIPIs too: an AP
 * waits for its SIPI in Nestor (vcpu_park), not in the CPU's wait-for-SIPI
 * state, after whose SIPI exit Bochs 2.7 leaves SMIs blocked.  Every other
 * IPI (fixed, NMI...) is sent as the guest wrote it.
 *
 * How the writes are seen: the xAPIC page is read-only in the EPT (reads
 * run at full speed; writes - EOI, TPR, LVT, ICR... - exit and are done by
 * Nestor on the same CPU's xAPIC); in x2APIC mode only the ICR's MSR
 * (0x830) is intercepted.  With one CPU nothing is trapped. */
#include "boot/cpu.h"
#include "boot/delay.h"
#include "boot/fixup.h"
#include "boot/lapic.h"
#include "boot/smp.h"
#include "lib/log.h"
#include "lib/x86.h"
#include "lib/x86_decode.h"
#include "mm/mm.h"
#include "nested/nested.h"
#include "vmx/ept.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"

#define ICR_DEST_LOGICAL (1u << 11)

int apic_trap_init(struct vm *vm)
{
	vm->apic_trap = true;
	msr_intercept(vm, X2APIC_MSR_ICR, false, true);
	if (apic_ept_overrides(vm))
		return -1;
	ept_invalidate(vm);
	return 0;
}

/* INIT for vCPU t, from vCPU v. */
static void send_init(struct vcpu *v, struct vcpu *t)
{
	if (t == v) {
		/* The bootstrap processor restarts at the reset vector. */
		bool bsp = rdmsr(MSR_IA32_APIC_BASE) & (1u << 8);
		vcpu_reset(v, bsp);
		return;
	}
	vcpu_send_init(v, t);
}

/* The guest writes ICR low (dest: ICR high's destination field). */
static void icr_write(struct vcpu *v, uint32_t low, uint32_t dest, bool x2apic)
{
	unsigned mode = (low >> 8) & 7, shorthand = (low >> 18) & 3;
	struct vm *vm = v->vm;
	/* An NMI to itself (SDM 3A 11.6.1: "self"): taken by the writer as the
	 * CPU would, at the next instruction boundary where NMIs are not
	 * blocked - without the real NMI, which would find Nestor in root
	 * operation and meet Bochs 2.7's NMI blocking of the last guest that
	 * ran here (a VM entry does not clear it). */
	bool to_self = shorthand == 1 || (shorthand == 0 && !(low & ICR_DEST_LOGICAL) && dest == smp_apic_id(v->id));
	if (mode == 4 && to_self) {
		/* (From a WRMSR, whose handler skips the instruction after
		 * this, an NMI exit is not made here: held for the level.) */
		if (v->cur > 1 && !x2apic)
			nested_nmi_now(v);
		else
			vcpu_nmi_arrived(v);
		return;
	}
	if ((mode != 5 && mode != 6) || (shorthand == 0 && (low & ICR_DEST_LOGICAL))) {
		/* Not an INIT or SIPI (or a logical destination, which only the
		 * APICs can resolve): the IPI as the guest wrote it. */
		if (x2apic)
			wrmsr(X2APIC_MSR_ICR, (uint64_t)dest << 32 | low);
		else
			((volatile uint32_t *)phys_to_virt(vm->apic_real))[XAPIC_ICR_LOW / 4] = low;
		return;
	}
	/* INIT level de-assert: only for the 82489DX, ignored by the
	 * integrated APICs (SDM 3A 11.6.1). */
	if (mode == 5 && !(low & ICR_ASSERT) && (low & ICR_LEVEL))
		return;
	/* Physical destination all ones: every CPU (SDM 3A 11.6.2.1). */
	bool broadcast = shorthand == 0 && dest == (x2apic ? 0xffffffffu : 0xffu);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *t = vm->vcpus[i];
		bool hit = broadcast || (shorthand == 0 ? smp_apic_id(i) == dest
						    : shorthand == 1 ? t == v : shorthand == 2 || t != v);
		if (hit && t && mode == 5)
			send_init(v, t);
		else if (hit && t && t != v)
			vcpu_send_sipi(v, t, low & 0xff); /* a running CPU ignores it */
	}
}

int apic_x2apic_icr_write(struct vcpu *v, uint64_t val)
{
	/* Not in x2APIC mode the MSR does not exist; an INIT, SIPI or NMI with
	 * reserved bits set is refused as the CPU would (SDM 3A 11.12.9: bits
	 * 12, 13, 16, 17, 20-31); any other IPI is the CPU's to check. */
	if (!(rdmsr(MSR_IA32_APIC_BASE) & (1ull << 10)))
		return -1;
	uint32_t low = (uint32_t)val;
	unsigned mode = (low >> 8) & 7;
	if (mode != 4 && mode != 5 && mode != 6)
		return wrmsr_safe(X2APIC_MSR_ICR, val) ? -1 : 0;
	if (low & 0xfff33000u)
		return -1;
	icr_write(v, low, (uint32_t)(val >> 32), true);
	return 0;
}

/* The value a MOV or XCHG to memory stores (SDM 2A: 89 /r, C7 /0 id,
 * A3 moffs, 87 /r); false for any other instruction. */
static bool store_value(struct vcpu *v, const struct x86_insn *in, const uint8_t *bytes, uint32_t *val)
{
	/* The xAPIC's registers are 32 bits wide, accessed 32 bits at a time
	 * (SDM 3A 11.4.1); other sizes are not emulated. */
	if (in->operand_size != 4)
		return false;
	if (in->map == 0 && in->opcode == 0xa3) {
		*val = (uint32_t)v->gpr[RAX];
		return true;
	}
	if (in->map != 0 || !in->has_modrm || in->mod == 3)
		return false;
	if (in->opcode == 0x89 || in->opcode == 0x87) {
		*val = (uint32_t)(in->reg == RSP ? vmread(VMCS_GUEST_RSP) : v->gpr[in->reg]);
		return true;
	}
	if (in->opcode == 0xc7 && (in->reg & 7) == 0 && in->imm_size == 4) {
		const uint8_t *imm = bytes + in->length - 4;
		*val = (uint32_t)imm[0] | (uint32_t)imm[1] << 8 | (uint32_t)imm[2] << 16 | (uint32_t)imm[3] << 24;
		return true;
	}
	return false;
}

bool apic_write_violation(struct vcpu *v, uint64_t gpa)
{
	struct vm *vm = v->vm;
	uint8_t bytes[15];
	struct x86_insn in;
	size_t n = (size_t)guest_fetch(v, bytes);
	uint32_t val;
	if (x86_decode(bytes, n, guest_code_bits(), &in) || !store_value(v, &in, bytes, &val))
		return false;
	unsigned off = (unsigned)(gpa & 0xffc);
	volatile uint32_t *reg = (volatile uint32_t *)phys_to_virt(vm->apic_real) + off / 4;
	if (in.opcode == 0x87) {
		/* XCHG also loads the register's old value (32 bits zero-extend). */
		uint32_t old = *reg;
		if (in.reg == RSP)
			vmwrite(VMCS_GUEST_RSP, old);
		else
			v->gpr[in.reg] = old;
	}
	/* Past the instruction first: what the write causes (an NMI exit to a
	 * guest hypervisor...) comes after it. */
	skip_instruction_len(v, in.length);
	if (off == XAPIC_ICR_LOW)
		icr_write(v, val, ((volatile uint32_t *)phys_to_virt(vm->apic_real))[XAPIC_ICR_HIGH / 4] >> 24, false);
	else
		*reg = val;
	return true;
}
