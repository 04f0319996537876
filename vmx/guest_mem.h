/* guest_mem.h - Nestor's accesses to guest memory, as the guest sees it.
 *
 * Guest-physical memory is identity-mapped, except Nestor's own memory,
 * which reads as all ones and ignores writes, like non-existent memory on a
 * PC.  Every guest pointer Nestor follows goes through these helpers: the
 * guest can never make Nestor read or write its own memory. */
#ifndef VMX_GUEST_MEM_H
#define VMX_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmx/vcpu.h"

/* Guest-physical reads and writes; false when the range leaves the
 * guest-physical space Nestor maps (ept_top). */
bool gpa_read(struct vm *vm, uint64_t gpa, void *buf, size_t len);
bool gpa_write(struct vm *vm, uint64_t gpa, const void *buf, size_t len);
/* True when [gpa, gpa + len) is guest RAM (not Nestor's, not a hole). */
bool gpa_is_ram(struct vm *vm, uint64_t gpa, uint64_t len);

/* Guest-linear to machine-physical through the guest's paging structures
 * (none, 32-bit, PAE, 4- or 5-level), with the access rights of the
 * current CPL, and for an L2 under L1's EPT through EPT12 too.  Returns 0,
 * or -1 with the #PF error code in *pf_err (0 when EPT12 refused). */
enum { ACC_READ = 0, ACC_WRITE = 1, ACC_FETCH = 2 };
int gla_to_gpa(struct vcpu *v, uint64_t gla, int access, uint64_t *gpa, uint32_t *pf_err);

/* Reads len bytes at a guest-linear address (may cross pages). */
int gla_read(struct vcpu *v, uint64_t gla, void *buf, size_t len, int access, uint32_t *pf_err,
	     uint64_t *fault_gla);

#endif
