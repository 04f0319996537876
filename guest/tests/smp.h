/* smp.h - what the 'smp' suite's AP trampoline (guest/tests/smp_tramp.S)
 * and its C side (guest/tests/smp.c) share.
 *
 * The trampoline is copied to SMP_TRAMP_BASE, a page below 1 MiB that a
 * SIPI vector can name (vector SMP_TRAMP_BASE >> 12).  The BSP fills the
 * slots at SMP_SLOTS, in the same page after the code, before it starts an
 * AP; the APs are started one at a time, so one set of slots does. */
#ifndef GUEST_TESTS_SMP_H
#define GUEST_TESTS_SMP_H

#define SMP_TRAMP_BASE 0x8000
#define SMP_TRAMP_MAX 0xe00 /* the code and its GDT fit below the slots */
#define SMP_SLOTS (SMP_TRAMP_BASE + SMP_TRAMP_MAX)

/* Slots (8 bytes each): the control registers the AP loads (CR4 without
 * PCIDE, EFER without LMA: the C side sets the rest), its stack, the C
 * function it calls and that function's argument. */
#define SMP_SLOT_CR0 (SMP_SLOTS + 0x00)
#define SMP_SLOT_CR3 (SMP_SLOTS + 0x08)
#define SMP_SLOT_CR4 (SMP_SLOTS + 0x10)
#define SMP_SLOT_EFER (SMP_SLOTS + 0x18)
#define SMP_SLOT_STACK (SMP_SLOTS + 0x20)
#define SMP_SLOT_ENTRY (SMP_SLOTS + 0x28)
#define SMP_SLOT_ARG (SMP_SLOTS + 0x30)

/* Trampoline GDT selectors: the same as the guest's (guest/kernel.h). */
#define SMP_SEL_CODE64 0x08
#define SMP_SEL_DATA 0x10
#define SMP_SEL_CODE32 0x18

#ifndef __ASSEMBLY__
#include <stdint.h>

extern const char smp_tramp_start[], smp_tramp_end[];

/* Where the trampoline's 64-bit code jumps: an AP's C entry (never returns). */
__attribute__((noreturn)) void smp_ap_entry(uint64_t index);
#endif

#endif
