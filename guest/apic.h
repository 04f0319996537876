/* apic.h - the local APIC's registers as the guest suites use them (xAPIC
 * mode, SDM 3A 11.4.1 table 11-1; ICR bits 11.6.1). */
#ifndef GUEST_APIC_H
#define GUEST_APIC_H

#include <stdint.h>
#include "lib/x86.h"

#define APIC_BASE 0xfee00000ull /* where the firmware leaves it */
#define APIC_ID 0x20
#define APIC_TPR 0x80
#define APIC_EOI 0xb0
#define APIC_SVR 0xf0
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310

#define ICR_FIXED (0u << 8)
#define ICR_NMI (4u << 8)
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)
#define ICR_PENDING (1u << 12) /* delivery status */
#define ICR_ASSERT (1u << 14)
#define ICR_LEVEL (1u << 15)
#define ICR_SELF (1u << 18)    /* destination shorthand: self */

/* The legacy PIC still maps the timer to vector 8 (the BIOS's layout):
 * suites that turn interrupts on mask both PICs, and put the masks back. */
static inline void pic_save_and_mask(uint8_t saved[2])
{
	saved[0] = inb(0x21);
	saved[1] = inb(0xa1);
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

static inline void pic_restore(const uint8_t saved[2])
{
	outb(0x21, saved[0]);
	outb(0xa1, saved[1]);
}

#endif
