/* ept.h - the guest's EPT: identity map of the machine minus Nestor. */
#ifndef VMX_EPT_H
#define VMX_EPT_H

#include "vmx/vcpu.h"

/* Builds the identity EPT for vm (guest-physical = host-physical) over
 * [0, ept_top) with memory types from the MTRRs, leaving Nestor's memory
 * (vm->hidden) unmapped.  Returns 0 or -1 when the pool is exhausted. */
int ept_build(struct vm *vm);

/* Points the 4 KiB guest page at gpa to the read-only all-ones page (what a
 * PC returns for non-existent memory).  gpa must be a hidden page, or lie
 * above ept_top (then whole blocks go to shared tables: no memory per
 * access).  Returns -1 when the pool is exhausted. */
int ept_map_ones(struct vm *vm, uint64_t gpa);

/* True when an EPT entry points at one of the shared tables that map
 * non-existent memory above ept_top (never to be freed or edited). */
bool ept_is_shared_ones(const struct vm *vm, uint64_t entry);

void ept_invalidate(struct vm *vm);

/* Sets the 4 KiB leaf entry of gpa, splitting a large page or copying a
 * shared table on the way (the caller invalidates).  -1: pool exhausted. */
int ept_set_page(struct vm *vm, uint64_t gpa, uint64_t entry);

/* Maps the 4 KiB page of gpa to itself, as ept_build() maps memory the
 * guest may use (the caller invalidates).  -1: pool exhausted. */
int ept_map_identity(struct vm *vm, uint64_t gpa);

/* Frees the EPT and builds it again (after the memory types changed). */
int ept_rebuild(struct vm *vm);

#endif
