/* vmcs.c - names of VMCS fields, from the one table. */
#include "vmx/vmcs.h"

const uint32_t vmcs_all_fields[] = {
#define X(name, enc) enc,
	VMCS_FIELDS(X)
#undef X
};
const unsigned vmcs_num_fields = sizeof(vmcs_all_fields) / sizeof(vmcs_all_fields[0]);

static const char *const names[] = {
#define X(name, enc) #name,
	VMCS_FIELDS(X)
#undef X
};

const char *vmcs_field_name(uint32_t enc)
{
	for (unsigned i = 0; i < vmcs_num_fields; i++)
		if (vmcs_all_fields[i] == enc)
			return names[i];
	return "UNKNOWN_FIELD";
}
