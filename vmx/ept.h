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

/* --- watched pages (vmx/ept_watch.c) ---------------------------------------
 * Guest RAM pages whose changes Nestor must see (a guest hypervisor's I/O
 * bitmaps): mapped without write permission until the first write, which
 * drops the watch and adds one to vm->watch.gen.  Compare watch.gen with
 * the value seen when a watched page was copied to know the copy is still
 * good; watch it again when copying it again. */
/* Watches the page of gpa (flushing every vCPU's translations): 0, or -1
 * when it is not RAM of the guest, EPT_WATCH_MAX pages are watched, or the
 * pool is short - then nothing is watched and the caller must not copy. */
int ept_watch_add(struct vcpu *v, uint64_t gpa);
/* A level writes the page of gpa and took an EPT violation: true when the
 * page was watched (the watch is dropped, write granted unless a
 * copy-on-write snapshot protects it: its fault handler comes next), or
 * is writable already (another CPU's write dropped its watch): retry. */
bool ept_watch_fault(struct vm *vm, uint64_t gpa);
/* Nestor writes [gpa, gpa + len) of guest memory itself: watches there
 * end (called by guest_mem_before_write). */
void ept_watch_write(struct vm *vm, uint64_t gpa, uint64_t len);
/* The EPT's rights were remade (rebuild, snapshots lifting protection):
 * no page is watched any more, every copy is stale. */
void ept_watch_lost(struct vm *vm);

#endif
