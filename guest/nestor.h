/* nestor.h - the guest side of Nestor's ABI: is a Nestor below, and the
 * hypercalls (hypercall/abi.h, docs/abi.md). */
#ifndef GUEST_NESTOR_H
#define GUEST_NESTOR_H

#include <stdbool.h>
#include <stdint.h>
#include "hypercall/abi.h"

/* True when the hypervisor below answers CPUID 0x40000000 as Nestor. */
bool nestor_present(void);

struct hc_result {
	int64_t status;
	uint64_t rbx, rcx, rdx;
};

/* VMCALL with RAX = fn, RBX, RCX, RDX = a, b, c.  Only under Nestor. */
static inline struct hc_result nestor_hypercall(uint64_t fn, uint64_t a, uint64_t b, uint64_t c)
{
	struct hc_result r;
	uint64_t rax = fn;
	__asm__ volatile("vmcall" : "+a"(rax), "+b"(a), "+c"(b), "+d"(c) : : "memory");
	r.status = (int64_t)rax;
	r.rbx = a, r.rcx = b, r.rdx = c;
	return r;
}

#endif
