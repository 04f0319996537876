/* exit_cpuid.c - CPUID (SDM Vol. 2A, CPUID; exits unconditionally).
 *
 * The guest sees the CPU below, with these changes: the hypervisor-present
 * bit (CPUID.1:ECX[31]) is set, VMX (CPUID.1:ECX[5]) is there only when
 * Nestor offers nested VMX (nested=on), and leaves 0x40000000-0x400000ff
 * describe Nestor (hypercall/abi.h): leaf 0x40000002 describes every level
 * of a stack, each level answering for itself.  The
 * bits that follow CR4 (OSXSAVE, OSPKE) are the guest's.
 *
 * Answers of the CPU below are cached per vCPU (leaf, subleaf): a Nestor
 * that is itself a guest then answers its guest's CPUID without exiting to
 * the level below - that is what keeps nested CPUID cheap. */
#include "boot/config.h"
#include "hypercall/abi.h"
#include "nested/nested.h"
#include "lib/x86.h"
#include "vmx/exits.h"
#include "vmx/vmcs.h"

/* Leaves whose answer depends on ECX (Intel SDM CPUID). */
static inline __attribute__((always_inline)) bool indexed_leaf(uint32_t leaf)
{
	switch (leaf) {
	case 0x4: case 0x7: case 0xb: case 0xd: case 0xf: case 0x10: case 0x12: case 0x14:
	case 0x17: case 0x18: case 0x1b: case 0x1d: case 0x1e: case 0x1f: case 0x20: case 0x23:
	case 0x24: case 0x8000001d: case 0x80000020:
		return true;
	default:
		return false;
	}
}

void cpuid_init(struct vcpu *v)
{
	for (unsigned i = 0; i < CPUID_CACHE_SLOTS; i++)
		v->cpuid_cache[i].valid = 0;
}

/* Leaf 0xd's sizes depend on XCR0 (and IA32_XSS), which the guest changes:
 * forget cached 0xd answers when it does. */
void cpuid_forget_xsave(struct vcpu *v)
{
	for (unsigned i = 0; i < CPUID_CACHE_SLOTS; i++)
		if (v->cpuid_cache[i].leaf == 0xd)
			v->cpuid_cache[i].valid = 0;
}

static inline const struct cpuid_cache_entry *below(struct vcpu *v, uint32_t leaf, uint32_t subleaf)
{
	unsigned slot = (leaf ^ (leaf >> 26) ^ (subleaf << 3)) % CPUID_CACHE_SLOTS;
	struct cpuid_cache_entry *e = &v->cpuid_cache[slot];
	if (__builtin_expect(!(e->valid && e->leaf == leaf && e->subleaf == subleaf), 0)) {
		struct cpuid_regs r = cpuid(leaf, subleaf);
		*e = (struct cpuid_cache_entry){ leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx, 1, 0 };
	}
	return e;
}

/* Leaf 0x40000002: the Nestor at level `want` describes itself; a lower
 * level is asked by executing CPUID here (it exits to the level below,
 * which does the same), so every level fills in its own answer. */
static struct cpuid_regs level_leaf(struct vcpu *v, uint32_t want)
{
	struct cpuid_regs r = { 0xffffffffu, 0, 0, 0 };
	if (want < v->vm->level)
		return cpuid(NESTOR_CPUID_LEVELS, want);
	if (want == v->vm->level) {
		r.eax = want;
		r.ebx = (uint32_t)vcpu_total_exits(v);
		r.ecx = (v->vm->delegated ? NESTOR_LEVEL_DELEGATES : 0) | (nested_enabled() ? NESTOR_LEVEL_NESTED : 0);
		r.edx = v->vm->delegated ? 0 : v->nlevels;
	}
	return r;
}

static struct cpuid_regs nestor_leaf(struct vcpu *v, uint32_t leaf, uint32_t ecx)
{
	struct cpuid_regs r = { 0, 0, 0, 0 };
	if (leaf == NESTOR_CPUID_BASE) {
		r.eax = NESTOR_CPUID_LEVELS;
		r.ebx = NESTOR_SIG_EBX;
		r.ecx = NESTOR_SIG_ECX;
		r.edx = NESTOR_SIG_EDX;
	} else if (leaf == NESTOR_CPUID_INFO) {
		r.eax = v->vm->level;
		r.ebx = NESTOR_ABI_VERSION;
		r.ecx = nested_enabled() ? NESTOR_FEATURE_DELEGATE : 0;
	} else if (leaf == NESTOR_CPUID_LEVELS) {
		r = level_leaf(v, ecx);
	}
	return r;
}

/* The answers that depend on the guest's state or on Nestor: out of line,
 * so the common case stays a cache lookup.  Works on the guest's registers. */
static __attribute__((noinline)) void cpuid_adjusted(struct vcpu *v, uint32_t leaf)
{
	uint32_t ecx_in = (uint32_t)v->gpr[RCX];
	uint32_t subleaf = indexed_leaf(leaf) ? ecx_in : 0;
	const struct cpuid_cache_entry *e = below(v, leaf, subleaf);
	v->gpr[RAX] = e->eax;
	v->gpr[RBX] = e->ebx;
	v->gpr[RCX] = e->ecx;
	v->gpr[RDX] = e->edx;
	if ((leaf & 0xffffff00) == NESTOR_CPUID_BASE) {
		struct cpuid_regs r = nestor_leaf(v, leaf, ecx_in);
		v->gpr[RAX] = r.eax, v->gpr[RBX] = r.ebx, v->gpr[RCX] = r.ecx, v->gpr[RDX] = r.edx;
	} else if (leaf == 1) {
		uint64_t cr4 = vmread(VMCS_GUEST_CR4);
		uint32_t ecx = e->ecx;
		if (config.hypervisor_bit)
			ecx |= 1u << 31; /* hypervisor present */
		if (!nested_enabled())
			ecx &= ~(1u << 5); /* VMX only when Nestor emulates it */
		v->gpr[RCX] = (ecx & ~(1u << 27)) | ((cr4 & CR4_OSXSAVE) ? 1u << 27 : 0);
	} else if (leaf == 7 && subleaf == 0) {
		uint64_t cr4 = vmread(VMCS_GUEST_CR4);
		v->gpr[RCX] = (e->ecx & ~(1u << 4)) | ((cr4 & CR4_PKE) ? 1u << 4 : 0);
	}
}

void exit_cpuid(struct vcpu *v)
{
	uint32_t leaf = (uint32_t)v->gpr[RAX];
	if (__builtin_expect(leaf == 1 || leaf == 7 || (leaf & 0xffffff00) == NESTOR_CPUID_BASE, 0)) {
		cpuid_adjusted(v, leaf);
	} else {
		uint32_t subleaf = indexed_leaf(leaf) ? (uint32_t)v->gpr[RCX] : 0;
		const struct cpuid_cache_entry *e = below(v, leaf, subleaf);
		v->gpr[RAX] = e->eax;
		v->gpr[RBX] = e->ebx;
		v->gpr[RCX] = e->ecx;
		v->gpr[RDX] = e->edx;
	}
	skip_instruction(v);
}
