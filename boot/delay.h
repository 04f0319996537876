/* delay.h - busy waits of a given duration (see delay.c). */
#ifndef BOOT_DELAY_H
#define BOOT_DELAY_H

#include <stdint.h>

/* Measures the TSC's rate against the PIT (10 ms).  Once, on the bootstrap
 * processor, before another CPU runs Nestor: the PIT is not used after. */
void delay_calibrate(void);

/* TSC ticks per microsecond (0 before delay_calibrate). */
uint64_t delay_tsc_per_us(void);

/* Waits at least us microseconds: on the TSC once calibrated, before that
 * on channel 2 of the PIT (its gate and the speaker bits of port 0x61 put
 * back as they were). */
void udelay(uint32_t us);

#endif
