/* dump.h - printing VMCS state for failure reports. */
#ifndef VMX_DUMP_H
#define VMX_DUMP_H

#include "vmx/vcpu.h"

/* Prints the guest registers and every guest-state and exit-information
 * field of the current VMCS the CPU supports. */
void vmcs_dump_guest(const struct vcpu *v);

#endif
