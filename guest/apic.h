/* apic.h - the local APIC's registers as the guest suites use them (xAPIC
 * mode, SDM 3A 11.4.1 table 11-1; ICR bits 11.6.1). */
#ifndef GUEST_APIC_H
#define GUEST_APIC_H

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

#endif
