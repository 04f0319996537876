/* vmcs_own.c - the current VMCS of a vCPU (see vmcs_own.h). */
#include "vmx/vmcs_own.h"
#include "lib/log.h"
#include "vmx/dump.h"
#include "vmx/exits.h"
#include "vmx/vmcs.h"

bool vmcs_clear(struct vcpu *v, uint64_t phys)
{
	if (v->loaded_vmcs == phys)
		v->loaded_vmcs = ~0ull;
	return vmclear(phys) == VMX_OK;
}

void vmcs_write_in(struct vcpu *v, uint64_t phys, uint32_t field, uint64_t val)
{
	uint64_t prev = v->loaded_vmcs;
	if (prev == phys) {
		vmwrite(field, val);
		return;
	}
	vmcs_load(v, phys);
	vmwrite(field, val);
	vmcs_load(v, prev);
}

void vmcs_wrong(struct vcpu *v, const char *where)
{
	pr_err("%s: VMCS 0x%llx is current but level %u runs in VMCS 0x%llx: refusing to enter it\n", where,
	       (unsigned long long)v->loaded_vmcs, v->cur + v->vm->level, (unsigned long long)vmcs_of_level(v, v->cur));
	vm_end_run(v, true, "VMCS ownership violated");
}
