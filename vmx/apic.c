/* apic.c - the guest's IA32_APIC_BASE (SDM Vol. 3A 11.4.4).
 *
 * The xAPIC's registers appear at the physical address in IA32_APIC_BASE,
 * and software may move them.  Passed through, a guest could move the real
 * xAPIC over Nestor's own memory - Nestor's accesses there would then hit
 * APIC registers (issue 11, attack 10).  So the real xAPIC never moves:
 * the guest's base is virtual.  Its MSR reads give the guest's base; a
 * write goes to the CPU with the real base in place of the guest's (so the
 * CPU decides about every other bit: enable, x2APIC, reserved bits), and a
 * moved base is an EPT mapping: the guest's page to the real xAPIC, the
 * real xAPIC's address to nothing (a PC decodes nothing there any more:
 * reads all ones, writes dropped).  Levels above see it through the EPTs
 * composed on ours. */
#include "boot/cpu.h"
#include "boot/fixup.h"
#include "lib/log.h"
#include "lib/x86.h"
#include "nested/nested.h"
#include "vmx/ept.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "vmx/vmx.h"

#define APIC_EN (1ull << 11)

static uint64_t base_mask(void) { return ((1ull << maxphyaddr) - 1) & ~0xfffull; }

void apic_init(struct vcpu *v)
{
	struct vm *vm = v->vm;
	uint64_t val = 0;
	rdmsr_safe(MSR_IA32_APIC_BASE, &val);
	vm->apic_real = val & base_mask();
	vm->apic_gpa = vm->apic_real;
	vm->apic_absent = ~0ull;
	msr_intercept(vm, MSR_IA32_APIC_BASE, true, true);
}

int apic_base_read(struct vcpu *v, uint64_t *val)
{
	if (rdmsr_safe(MSR_IA32_APIC_BASE, val))
		return -1;
	*val = (*val & ~base_mask()) | v->vm->apic_gpa;
	return 0;
}

uint64_t apic_page_rights(const struct vm *vm) { return vm->apic_trap ? EPT_R : EPT_R | EPT_W; }

int apic_ept_overrides(struct vm *vm)
{
	if (vm->apic_gpa == vm->apic_real && !vm->apic_trap)
		return 0;
	/* The real xAPIC's page: nothing (not present; a read maps the page
	 * of ones, a write is dropped - vmx/exit_ept.c).  The guest's base:
	 * the real xAPIC, uncached, never executable; read-only when its
	 * writes are trapped (vmx/exit_apic.c). */
	if (vm->apic_gpa != vm->apic_real && ept_set_page(vm, vm->apic_real, 0))
		return -1;
	return ept_set_page(vm, vm->apic_gpa, vm->apic_real | apic_page_rights(vm) | ((uint64_t)MT_UC << EPT_MT_SHIFT));
}

int apic_base_write(struct vcpu *v, uint64_t val)
{
	struct vm *vm = v->vm;
	uint64_t old;
	if (rdmsr_safe(MSR_IA32_APIC_BASE, &old))
		return -1;
	/* Bits above the physical-address width are reserved: the CPU sees
	 * them as written, only the base field is replaced. */
	if (wrmsr_safe(MSR_IA32_APIC_BASE, (val & ~base_mask()) | vm->apic_real))
		return -1;
	uint64_t now = old;
	rdmsr_safe(MSR_IA32_APIC_BASE, &now);
	/* The CPU took the write (Bochs 2.7 ignores writes while the xAPIC is
	 * globally disabled: then the base does not move either). */
	bool taken = (old & APIC_EN) || now != old;
	uint64_t base = val & base_mask();
	if (!taken || base == vm->apic_gpa)
		return 0;
	vm->apic_gpa = base;
	vm->apic_absent = base == vm->apic_real ? ~0ull : vm->apic_real;
	pr_info("guest moves its xAPIC to 0x%llx (the real one stays at 0x%llx)\n", (unsigned long long)base,
		(unsigned long long)vm->apic_real);
	/* Back to the plain identity map, then the pages moved. */
	if (vm_ept_rebuild(v, NULL, true))
		vm_end_run(v, true, "out of pool memory rebuilding the EPT");
	return 0;
}
