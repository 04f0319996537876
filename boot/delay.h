/* delay.h - busy waits of a given duration, from the PIT (8254). */
#ifndef BOOT_DELAY_H
#define BOOT_DELAY_H

#include <stdint.h>

/* Waits at least us microseconds (channel 2 of the PIT; its gate and the
 * speaker bits of port 0x61 are put back as they were). */
void udelay(uint32_t us);

#endif
