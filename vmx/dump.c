/* dump.c - a guest-state dump driven by the VMCS field table. */
#include "vmx/dump.h"
#include "lib/log.h"
#include "vmx/vmcs.h"

void vmcs_dump_guest(const struct vcpu *v)
{
	static const char *const names[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
					       "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15" };
	pr_err("guest state:\n");
	for (int i = 0; i < 16; i += 4)
		pr_err("  %-3s %016llx %-3s %016llx %-3s %016llx %-3s %016llx\n", names[i],
		       (unsigned long long)v->gpr[i], names[i + 1], (unsigned long long)v->gpr[i + 1], names[i + 2],
		       (unsigned long long)v->gpr[i + 2], names[i + 3], (unsigned long long)v->gpr[i + 3]);
	for (unsigned i = 0; i < vmcs_num_fields; i++) {
		uint32_t f = vmcs_all_fields[i];
		enum vmcs_type t = vmcs_field_type(f);
		if (t != VMCS_T_GUEST && t != VMCS_T_EXIT_INFO)
			continue;
		uint64_t val;
		if (vmread_checked(f, &val) != 0)
			continue; /* not supported by this CPU */
		pr_err("  %-32s %016llx\n", vmcs_field_name(f), (unsigned long long)val);
	}
}
