/* nestor.h - the guest side of Nestor's ABI: is a Nestor below, and the
 * hypercalls (hypercall/abi.h, docs/abi.md). */
#ifndef GUEST_NESTOR_H
#define GUEST_NESTOR_H

#include <stdbool.h>
#include <stdint.h>
#include "hypercall/abi.h"

/* True when the hypervisor below answers CPUID 0x40000000 as Nestor. */
bool nestor_present(void);
/* The level of the Nestor right below (0: the one on the machine). */
unsigned nestor_level(void);

struct hc_result {
	int64_t status;
	uint64_t rbx, rcx, rdx;
};

/* VMCALL with RAX = fn, RBX, RCX, RDX, RSI, RDI = a, b, c, d, e.  Only
 * under Nestor. */
static inline struct hc_result nestor_hypercall5(uint64_t fn, uint64_t a, uint64_t b, uint64_t c, uint64_t d,
						 uint64_t e)
{
	struct hc_result r;
	uint64_t rax = fn;
	__asm__ volatile("vmcall" : "+a"(rax), "+b"(a), "+c"(b), "+d"(c) : "S"(d), "D"(e) : "memory");
	r.status = (int64_t)rax;
	r.rbx = a, r.rcx = b, r.rdx = c;
	return r;
}

static inline struct hc_result nestor_hypercall(uint64_t fn, uint64_t a, uint64_t b, uint64_t c)
{
	return nestor_hypercall5(fn, a, b, c, 0, 0);
}

#endif
