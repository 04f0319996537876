/* bios.h - the guest's INT 15h memory-map calls, answered (vmx/bios.c). */
#ifndef VMX_BIOS_H
#define VMX_BIOS_H
#include <stdbool.h>
#include <stdint.h>
#include "lib/mb2.h"
#include "vmx/vcpu.h"

/* Points the IVT's INT 15h vector at Nestor's hook when a BIOS handles it,
 * with `map` (n entries) as the memory map E820 answers; before the guest
 * runs.  0, or -1 out of pool memory. */
int bios_hook_init(struct vm *vm, const struct mb2_mmap_entry *map, unsigned n);
/* The hook page's EPT entry (not executable), after every EPT build. */
int bios_ept_overrides(struct vm *vm);
/* An instruction fetch at gpa refused by the EPT: true when it was the
 * hook's (handled), false when gpa is not in the hook page. */
bool bios_exec_violation(struct vcpu *v, uint64_t gpa);
/* The BIOS's own INT 15h vector (segment << 16 | offset), for a Nestor
 * above (NESTOR_HC_BIOS_INT15): 0, or -1 when this level did not hook. */
int bios_int15_vector(const struct vm *vm, uint32_t *vec);

#endif
