/* delay.c - microsecond waits on channel 2 of the 8254 PIT.
 *
 * Before Nestor knows any clock's rate, the PIT's is fixed: 1 193 182 Hz.
 * Channel 2 is the one software may use freely (its gate is bit 0 of port
 * 0x61, its output bit 5); mode 0 counts down once and raises the output at
 * zero.  Used only to start the other CPUs (SDM 3A 9.4.4.1's waits). */
#include "boot/delay.h"
#include "lib/x86.h"

#define PIT_HZ 1193182u
#define PORT_B 0x61
#define PIT_CH2 0x42
#define PIT_CMD 0x43

static void one_shot(uint16_t count)
{
	uint8_t b = inb(PORT_B);
	outb(PORT_B, (uint8_t)((b & ~0x03) | 0x00)); /* gate low, speaker off */
	outb(PIT_CMD, 0xb0);                         /* channel 2, lobyte/hibyte, mode 0, binary */
	outb(PIT_CH2, (uint8_t)count);
	outb(PIT_CH2, (uint8_t)(count >> 8));
	outb(PORT_B, (uint8_t)((b & ~0x03) | 0x01)); /* gate high: count */
	while (!(inb(PORT_B) & 0x20))
		pause();
	outb(PORT_B, b);
}

void udelay(uint32_t us)
{
	uint64_t ticks = ((uint64_t)us * PIT_HZ + 999999) / 1000000;
	while (ticks) {
		uint16_t n = ticks > 0xffff ? 0xffff : (uint16_t)ticks;
		one_shot(n ? n : 1);
		ticks -= n;
	}
}
