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
/* Nestor (or a device it knows of) is about to write [gpa, gpa + len) of
 * guest memory directly: copy-on-write snapshots save the pages, watched
 * pages count a change (vmx/ept_watch.c).  gpa_write calls it itself. */
void guest_mem_before_write(struct vm *vm, uint64_t gpa, uint64_t len);
/* True when the page of gpa does not exist for the guest: Nestor's memory,
 * beyond what the EPT maps, the real xAPIC's page once the guest moved it. */
bool gpa_absent(const struct vm *vm, uint64_t gpa);
/* True when [gpa, gpa + len) is guest RAM (not Nestor's, not a hole). */
bool gpa_is_ram(struct vm *vm, uint64_t gpa, uint64_t len);

/* Accesses by the level running in the current VMCS, as its CPU would make
 * them.  Linear addresses go through its paging structures (none, 32-bit,
 * PAE, 4- or 5-level) with every check of SDM 4.6 (U/S, R/W with CR0.WP,
 * NX, SMEP, SMAP with EFLAGS.AC, protection keys, reserved bits) and set the
 * accessed/dirty flags; its physical addresses go through the EPTs of the
 * levels below it.  What goes wrong is a struct gfault, raised as the CPU
 * would: a #PF (CR2 set), #GP/#SS, or - when the running level's own
 * hypervisor's EPT refuses - an EPT violation or misconfiguration exit to
 * that hypervisor. */
enum { ACC_READ = 0, ACC_WRITE = 1, ACC_FETCH = 2 };
#define ACC_IMPLICIT 4u /* an implicit supervisor access (descriptor tables, TSS) */

enum { GF_NONE, GF_EXC, GF_EPT };
struct gfault {
	int kind;
	unsigned vector;   /* GF_EXC */
	uint32_t error;
	bool has_error;
	uint64_t cr2;      /* #PF */
	uint64_t gpa, gla; /* GF_EPT: the refused access */
	unsigned ept_access;
	struct ept_refusal ept; /* what refused it */
	bool gla_valid, final;
};

/* Translates one linear address: 0 with the machine address, or -1. */
int gla_xlate(struct vcpu *v, uint64_t gla, unsigned acc, uint64_t *machine, struct gfault *f);
/* Reads or writes (acc) len bytes at a linear address, across pages; a
 * write translates every page first (at most two: len <= 4096).  0 or -1. */
int gla_copy(struct vcpu *v, uint64_t gla, void *buf, size_t len, unsigned acc, struct gfault *f);
/* Delivers a fault as the CPU would have. */
void gfault_raise(struct vcpu *v, const struct gfault *f);
/* Segment `seg` (0 ES .. 5 GS) : offset -> linear address, with the checks
 * of the running mode (64-bit: bases of FS/GS only, canonical form; else
 * type, expand-down and limit); a failure is #GP(0), #SS(0) for SS. */
int seg_linear(struct vcpu *v, unsigned seg, uint64_t offset, unsigned size, int access, uint64_t *gla,
	       struct gfault *f);
bool guest_in_64bit_mode(void);
/* The code size of the running guest: 16, 32 or 64 (for the decoder). */
int guest_code_bits(void);
/* The bytes at the guest's CS:RIP, as many of 15 as can be read (the CPU
 * fetched them a moment ago); returns how many. */
int guest_fetch(struct vcpu *v, uint8_t bytes[15]);

#endif
