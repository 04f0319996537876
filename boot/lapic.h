/* lapic.h - Nestor's own use of the local APIC: this CPU's APIC ID and
 * inter-processor interrupts (INIT, SIPI, NMI) to other CPUs; and, for the
 * guest, the state an INIT leaves and what a snapshot holds.
 *
 * The guest owns the local APIC (it is passed through, vmx/vmx.c): Nestor
 * programs nothing in it and only sends IPIs, leaving the ICR as it found
 * it - except when it emulates an INIT for the guest (lapic_init_reset) or
 * restores a snapshot (lapic_restore).  Works in xAPIC and x2APIC mode,
 * whichever the CPU is in at the time (the guest may switch). */
#ifndef BOOT_LAPIC_H
#define BOOT_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

/* ICR low bits (SDM 3A 11.6.1). */
#define ICR_FIXED (0u << 8)
#define ICR_NMI (4u << 8)
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)
#define ICR_ASSERT (1u << 14)
#define ICR_LEVEL (1u << 15)
#define ICR_BUSY (1u << 12) /* xAPIC delivery status */

/* The ICR: xAPIC register offsets, x2APIC MSR (SDM 3A 11.4.1, 11.12.1.2). */
#define XAPIC_ICR_LOW 0x300
#define XAPIC_ICR_HIGH 0x310
#define X2APIC_MSR_ICR 0x830

/* The APIC ID of the calling CPU (x2APIC: 32 bits; xAPIC: 8). */
uint32_t lapic_id(void);
/* Sends icr_low to the CPU with APIC ID dest; false when the xAPIC did not
 * accept it (delivery status still busy after a bounded wait). */
bool lapic_send(uint32_t dest, uint32_t icr_low);
/* The calling CPU's local APIC to the state an INIT leaves (SDM 3A
 * 11.4.7.3): every register as at power-up except the APIC ID; the mode
 * (xAPIC or x2APIC) and IA32_APIC_BASE unchanged (11.12.5.1).  For the INITs
 * Nestor emulates: a real one cannot reach a CPU in VMX operation. */
void lapic_init_reset(void);

/* The registers of the calling CPU's local APIC that software sets (SDM 3A
 * table 11-1), as a snapshot holds them (snap/cpu.c). */
#define LAPIC_STATE_LVTS 7
struct lapic_state {
	bool valid, x2apic, timer_running;
	unsigned max_lvt;
	uint32_t tpr, ldr, dfr, svr, lvt[LAPIC_STATE_LVTS], timer_initial, timer_divide;
	uint64_t tsc_deadline;
};
void lapic_save(struct lapic_state *st);
/* False when the APIC is no longer enabled in the saved mode: nothing is
 * written then. */
bool lapic_restore(const struct lapic_state *st);

#endif
