/* trap.h - the hypervisor's IDT and exception reports. */
#ifndef BOOT_TRAP_H
#define BOOT_TRAP_H

#include "lib/trap_frame.h"

void idt_init(void);
void idt_load(void);
const char *exception_name(unsigned vector);

/* Handler for an interrupt vector (>= 32); must EOI itself. */
typedef void (*irq_handler)(struct trap_frame *f);
void trap_set_handler(unsigned vector, irq_handler h);

/* Called for NMIs that arrive while Nestor itself runs, with the frame it
 * returns to (which the hook may point elsewhere). */
void trap_set_nmi_hook(void (*hook)(struct trap_frame *f));

#endif
