/* vm.h - Nestor's VM: create it from the boot information and run it. */
#ifndef VMX_VM_H
#define VMX_VM_H

#include "lib/mb2.h"

/* Reads the VMX capabilities, builds the VM (EPT, bitmaps, VMCS), loads the
 * guest and enters it.  Never returns: the run ends through the guest. */
__attribute__((noreturn)) void vm_run(const struct mb2_info *mb, unsigned level);

struct vcpu;
/* The failure selftest= asks for, made once before the first entry. */
void vm_selftest(struct vcpu *v);

#endif
