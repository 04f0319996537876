/* hypercall.h - Nestor calling the Nestor below it (hypercall/abi.h). */
#ifndef HYPERCALL_HYPERCALL_H
#define HYPERCALL_HYPERCALL_H

#include <stdint.h>

/* VMCALL with RAX = fn and the argument registers; returns the status and
 * leaves the results in *rbx, *rcx, *rdx. */
static inline int64_t nestor_vmcall(uint64_t fn, uint64_t *rbx, uint64_t *rcx, uint64_t *rdx, uint64_t rsi,
				    uint64_t rdi)
{
	uint64_t rax = fn;
	__asm__ volatile("vmcall" : "+a"(rax), "+b"(*rbx), "+c"(*rcx), "+d"(*rdx) : "S"(rsi), "D"(rdi) : "memory");
	return (int64_t)rax;
}

#endif
