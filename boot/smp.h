/* smp.h - the machine's CPUs: finding them (ACPI MADT), starting the
 * application processors (APs) into Nestor, and handing them work.
 *
 * CPU index 0 is the bootstrap processor (BSP); the APs get 1.. in the
 * MADT's order.  Every CPU the MADT lists as enabled is started and kept
 * in Nestor: a CPU left alone could be started by the guest (INIT-SIPI)
 * outside any virtualization.  Docs: docs/smp.md. */
#ifndef BOOT_SMP_H
#define BOOT_SMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/mb2.h"

/* Slots at the end of the trampoline (boot/ap_tramp.S, same order). */
struct __attribute__((packed)) ap_tramp_slots {
	uint32_t pm_off;
	uint16_t pm_sel, pad0;
	uint32_t lm_off;
	uint16_t lm_sel, pad1;
	uint32_t cr0, cr4;
	uint32_t cr3, pad2;
	uint64_t stack, entry, arg;
};

/* Starts every AP the MADT lists (boot/acpi_probe.c); each runs cpu_init()
 * and then waits for smp_release().  Returns 0, or -1 with a message in err
 * (a CPU that cannot be started, more CPUs than MAX_CPUS).  Without a MADT
 * the machine is taken as one CPU. */
int smp_start_aps(char *err, size_t errlen);

/* Number of CPUs running Nestor (1 + the APs started). */
unsigned smp_ncpus(void);
/* APIC ID of CPU index i. */
uint32_t smp_apic_id(unsigned i);

/* Lets every AP go on with work(ctx, index), which does not return;
 * called once, on the BSP. */
void smp_release(void (*work)(void *ctx, unsigned index), void *ctx);

/* The end of the run: every other CPU halts for good at its next NMI (in
 * Nestor's NMI handler, or at the VM exit of one), interrupts off. */
void smp_halt_others(void);
/* Called on an NMI: halts this CPU for good when the run is over. */
void smp_halt_if_ended(void);

#endif
