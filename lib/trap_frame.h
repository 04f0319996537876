/* trap_frame.h - the frame lib/isr.S builds for every interrupt and
 * exception before calling trap_entry(frame).  Shared by the hypervisor and
 * the guest kernels, which each define their own trap_entry(). */
#ifndef LIB_TRAP_FRAME_H
#define LIB_TRAP_FRAME_H

#include <stdint.h>

struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error_code;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

void trap_entry(struct trap_frame *f);

/* isr_stubs + 16 * v is the entry stub of vector v. */
extern const char isr_stubs[];
extern const uint64_t isr_stubs_size;

#endif
