/* kernel.h - the guest test kernel's runtime: console, CPU set-up, faults. */
#ifndef GUEST_KERNEL_H
#define GUEST_KERNEL_H

#include <stdbool.h>
#include <stdint.h>
#include "lib/mb2.h"
#include "lib/trap_frame.h"

/* Segment selectors of the guest's GDT (guest/cpu.c). */
#define G_KCODE64 0x08
#define G_KDATA 0x10
#define G_KCODE32 0x18
#define G_CODE16 0x20
#define G_DATA16 0x28
#define G_UDATA 0x33
#define G_UCODE64 0x3b
#define G_TSS 0x40

/* Console: COM1, and nothing else, so depth 0 and depth n see the same. */
void gputc(char c);
void gprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gflush(void);

void cpu_setup(void);

/* Ends the run through the Bochs shutdown port (or halts). */
__attribute__((noreturn)) void guest_poweroff(void);

/* --- catching faults ---------------------------------------------------- */
struct fault {
	bool hit;
	uint8_t vector;
	uint64_t error_code;
	uint64_t cr2;
	uint64_t rip;
};

/* Runs fn(arg); if it raises an exception, returns true with *f filled in,
 * having unwound to here.  Nests are not supported (one level). */
bool catch_fault(void (*fn)(void *), void *arg, struct fault *f);
/* Runs fn(arg) at CPL 3 (fault catching as above); fn returns normally. */
bool run_user(void (*fn)(void *), void *arg, struct fault *f);

/* Interrupt handlers for tests: called for vector (>= 32, or 2 for NMI)
 * with the trap frame; they must acknowledge the interrupt themselves. */
typedef void (*guest_irq_fn)(struct trap_frame *f);
void guest_set_handler(unsigned vector, guest_irq_fn fn);

/* Set when the kernel was started by a multiboot (v1) loader. */
extern bool booted_mb1;
extern struct mb2_info boot_info; /* filled from mb1 or mb2 */

#endif
