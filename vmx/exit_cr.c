/* exit_cr.c - control-register accesses (SDM Vol. 3C 27.1.3 qualification,
 * Vol. 2B "MOV - Move to/from Control Registers").
 *
 * Only bits in the guest/host masks exit: for CR0 the bits VMX fixes (NE
 * and the reserved upper half; PE/PG are the guest's under unrestricted
 * guest), for CR4 VMXE and the bits VMX does not allow.  A write that exits
 * is emulated in full, with every check MOV to CR0/CR4 makes; the guest's
 * VMXE lives in the read shadow (the real one is always 1). */
#include "boot/cpu.h"
#include "lib/log.h"
#include "lib/x86.h"
#include "nested/nested.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"

uint64_t guest_cr0(void)
{
	uint64_t mask = vmread(VMCS_CR0_GUEST_HOST_MASK);
	return (vmread(VMCS_GUEST_CR0) & ~mask) | (vmread(VMCS_CR0_READ_SHADOW) & mask);
}

uint64_t guest_cr4(void)
{
	uint64_t mask = vmread(VMCS_CR4_GUEST_HOST_MASK);
	return (vmread(VMCS_GUEST_CR4) & ~mask) | (vmread(VMCS_CR4_READ_SHADOW) & mask);
}

int guest_cpl(void) { return (vmread(VMCS_GUEST_SS_AR) >> 5) & 3; }

static uint64_t read_gpr(struct vcpu *v, unsigned r)
{
	return r == RSP ? vmread(VMCS_GUEST_RSP) : v->gpr[r];
}

/* PAE paging (not IA-32e) loads the four PDPTEs from CR3 when paging is
 * (re)enabled; a present entry with reserved bits set is #GP(0). */
static bool load_pdptes(struct vcpu *v, uint64_t cr3)
{
	uint64_t pdpt[4];
	if (!gpa_read(v->vm, cr3 & 0xffffffe0ull, pdpt, sizeof(pdpt)))
		return false;
	uint64_t rsvd = (~0ull << maxphyaddr) | 0x1e6; /* bits 2:1, 8:5 and above MAXPHYADDR */
	for (int i = 0; i < 4; i++)
		if ((pdpt[i] & 1) && (pdpt[i] & rsvd))
			return false;
	for (int i = 0; i < 4; i++)
		vmwrite(VMCS_GUEST_PDPTE0 + 2 * i, pdpt[i]);
	return true;
}

static void flush_guest_tlb(struct vcpu *v)
{
	if (v->vm->vpid)
		invvpid(1, v->vm->vpid, 0); /* single context */
}

static void mov_to_cr0(struct vcpu *v, uint64_t val)
{
	uint64_t old = guest_cr0();
	uint64_t efer = vmread(VMCS_GUEST_IA32_EFER);
	uint64_t cr4 = guest_cr4();
	bool long_mode = efer & EFER_LMA;
	bool cs_l = vmread(VMCS_GUEST_CS_AR) & (1u << 13);
	if (!(long_mode && cs_l))
		val &= 0xffffffffull; /* outside 64-bit mode the operand is 32 bits */
	if ((val >> 32) || ((val & CR0_PG) && !(val & CR0_PE)) || ((val & CR0_NW) && !(val & CR0_CD)) ||
	    (!(val & CR0_PG) && (cr4 & CR4_PCIDE)) || (long_mode && cs_l && !(val & CR0_PG))) {
		inject_gp(v);
		return;
	}
	/* In VMX operation the VMX-fixed bits (PE, NE, PG) cannot change. */
	if (v->lv[1]->vmxon) {
		const struct nested_caps *nc = nested_caps();
		if ((val & nc->cr0_fixed0) != nc->cr0_fixed0 || (val & ~nc->cr0_fixed1)) {
			inject_gp(v);
			return;
		}
	}
	bool paging_on = !(old & CR0_PG) && (val & CR0_PG);
	if (paging_on && (efer & EFER_LME)) {
		if (!(cr4 & CR4_PAE) || cs_l) {
			inject_gp(v);
			return;
		}
	}
	if ((val & CR0_PG) && (cr4 & CR4_PAE) && !(efer & EFER_LME) &&
	    ((val ^ old) & (CR0_PG | CR0_CD | CR0_NW))) {
		if (!load_pdptes(v, vmread(VMCS_GUEST_CR3))) {
			inject_gp(v);
			return;
		}
	}
	/* Entering or leaving IA-32e mode follows EFER.LME when PG changes. */
	if ((val ^ old) & CR0_PG) {
		uint32_t entry = vmread(VMCS_VMENTRY_CTLS);
		if ((val & CR0_PG) && (efer & EFER_LME)) {
			efer |= EFER_LMA;
			entry |= ENTRY_IA32E_MODE;
		} else if (!(val & CR0_PG)) {
			efer &= ~EFER_LMA;
			entry &= ~ENTRY_IA32E_MODE;
		}
		vmwrite(VMCS_GUEST_IA32_EFER, efer);
		vmwrite(VMCS_VMENTRY_CTLS, entry);
	}
	/* CD and NW are the CPU's while the guest runs - a write that does not
	 * exit sets them there - so an emulated write sets them there too. */
	vmx_set_cache_bits(val);
	vmwrite(VMCS_GUEST_CR0, vmx_real_cr0(v->vm->caps, val));
	vmwrite(VMCS_CR0_READ_SHADOW, val);
	if ((val ^ old) & (CR0_PG | CR0_WP | CR0_CD | CR0_NW))
		flush_guest_tlb(v);
	skip_instruction(v);
}

static void mov_to_cr3(struct vcpu *v, uint64_t val)
{
	/* Only reached when the CPU forces CR3-load exiting (no TRUE controls).
	 * In 64-bit mode the operand is 64 bits: bits above MAXPHYADDR are
	 * reserved, and bit 63 too unless CR4.PCIDE is set - then it only says
	 * "keep this PCID's translations" and is not stored (SDM Vol. 2B MOV,
	 * 4.10.4.1).  Outside 64-bit mode it is 32 bits. */
	uint64_t cr0 = guest_cr0(), cr4 = guest_cr4();
	bool long_mode = vmread(VMCS_GUEST_IA32_EFER) & EFER_LMA;
	if (long_mode && (vmread(VMCS_GUEST_CS_AR) & (1u << 13))) {
		if (cr4 & CR4_PCIDE)
			val &= ~(1ull << 63);
		if (val & ~((1ull << maxphyaddr) - 1)) {
			inject_gp(v);
			return;
		}
	} else {
		val &= 0xffffffffull;
	}
	if ((cr0 & CR0_PG) && (cr4 & CR4_PAE) && !long_mode && !load_pdptes(v, val)) {
		inject_gp(v);
		return;
	}
	vmwrite(VMCS_GUEST_CR3, val);
	flush_guest_tlb(v);
	skip_instruction(v);
}

/* CR4 bits the guest may set: those CPUID reports (what a MOV to CR4 on
 * this CPU would accept), VMXE only when nested VMX is offered. */
uint64_t cr4_guest_allowed(void)
{
	struct cpuid_regs l1 = cpuid(1, 0), l7 = cpuid(0, 0).eax >= 7 ? cpuid(7, 0) : (struct cpuid_regs){ 0 };
	uint64_t a = CR4_VME | CR4_PVI | CR4_TSD | CR4_DE | CR4_PSE | CR4_PAE | CR4_MCE | CR4_PGE | CR4_PCE |
		     CR4_OSFXSR | CR4_OSXMMEXCPT;
	if (l7.ecx & (1u << 2)) a |= CR4_UMIP;
	if (l7.ecx & (1u << 16)) a |= CR4_LA57;
	if (l7.ebx & (1u << 0)) a |= CR4_FSGSBASE;
	if (l1.ecx & (1u << 17)) a |= CR4_PCIDE;
	if (l1.ecx & (1u << 26)) a |= CR4_OSXSAVE;
	if (l7.ebx & (1u << 7)) a |= CR4_SMEP;
	if (l7.ebx & (1u << 20)) a |= CR4_SMAP;
	if (l7.ecx & (1u << 3)) a |= CR4_PKE;
	if (l7.ecx & (1u << 7)) a |= 1ull << 23; /* CET */
	if (l7.ecx & (1u << 31)) a |= 1ull << 24; /* PKS */
	if (nested_enabled())
		a |= CR4_VMXE;
	return a;
}

static void mov_to_cr4(struct vcpu *v, uint64_t val)
{
	uint64_t old = guest_cr4(), cr0 = guest_cr0();
	bool long_mode = vmread(VMCS_GUEST_IA32_EFER) & EFER_LMA;
	if ((val & ~v->vm->cr4_allowed) || (!(val & CR4_VMXE) && v->lv[1]->vmxon) ||
	    (long_mode && !(val & CR4_PAE)) || (long_mode && ((val ^ old) & CR4_LA57)) ||
	    ((val & CR4_PCIDE) && !(old & CR4_PCIDE) && (!long_mode || (vmread(VMCS_GUEST_CR3) & 0xfff))) ||
	    ((val & (1ull << 23)) && !(cr0 & CR0_WP))) {
		inject_gp(v);
		return;
	}
	/* PAE paging reloads the PDPTEs when its paging bits change. */
	uint64_t paging_bits = CR4_PAE | CR4_PSE | CR4_PGE | CR4_SMEP | CR4_SMAP | CR4_PKE;
	if ((cr0 & CR0_PG) && (val & CR4_PAE) && !long_mode && ((val ^ old) & paging_bits) &&
	    !load_pdptes(v, vmread(VMCS_GUEST_CR3))) {
		inject_gp(v);
		return;
	}
	vmwrite(VMCS_GUEST_CR4, vmx_real_cr4(v->vm->caps, val));
	vmwrite(VMCS_CR4_READ_SHADOW, val);
	if ((val ^ old) & (paging_bits | CR4_PCIDE | CR4_LA57))
		flush_guest_tlb(v);
	skip_instruction(v);
}

void exit_cr_access(struct vcpu *v)
{
	uint64_t q = vmread(VMCS_EXIT_QUALIFICATION);
	unsigned cr = q & 15, type = (q >> 4) & 3, reg = (q >> 8) & 15;
	switch (type) {
	case 0: /* MOV to CR */
		if (cr == 0)
			return mov_to_cr0(v, read_gpr(v, reg));
		if (cr == 4)
			return mov_to_cr4(v, read_gpr(v, reg));
		if (cr == 3)
			return mov_to_cr3(v, read_gpr(v, reg));
		break;
	case 1: /* MOV from CR (CR3 store exiting forced by the CPU) */
		if (cr == 3) {
			uint64_t val = vmread(VMCS_GUEST_CR3);
			if (reg == RSP)
				vmwrite(VMCS_GUEST_RSP, val);
			else
				v->gpr[reg] = val;
			return skip_instruction(v);
		}
		break;
	case 2: /* CLTS */
		return mov_to_cr0(v, guest_cr0() & ~CR0_TS);
	case 3: { /* LMSW: loads PE, MP, EM, TS; cannot clear PE */
		uint64_t src = (q >> 16) & 0xf, cr0 = guest_cr0();
		return mov_to_cr0(v, (cr0 & ~0xeull) | (src & 0xe) | ((cr0 | src) & CR0_PE));
	}
	}
	pr_err("unexpected CR access exit: qualification 0x%llx\n", (unsigned long long)q);
	vm_end_run(v, true, "unexpected CR access");
}
