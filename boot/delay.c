/* delay.c - microsecond waits: the TSC, its rate measured once at boot
 * against channel 2 of the 8254 PIT.
 *
 * The PIT is one device for every CPU of the machine, every level of a
 * stack and the guest: two CPUs counting on channel 2 at once restart each
 * other's count (measured: 4 CPUs waiting in a rendezvous at two levels
 * together spun for minutes), and a guest calibrating its own clocks on it
 * (Linux does) would see Nestor's counts.  So the PIT is used once, on the
 * bootstrap processor before any other CPU runs Nestor, to learn how many
 * TSC ticks make a microsecond; every wait after that reads the TSC, which
 * is per CPU and runs at a constant rate (invariant TSC on the CPUs VT-x
 * with EPT came with; on Bochs one tick per instruction).
 *
 * Channel 2 is the one software may use freely (its gate is bit 0 of port
 * 0x61, its output bit 5); mode 0 counts down once and raises the output at
 * zero.  Its rate is fixed: 1 193 182 Hz. */
#include "boot/delay.h"
#include "lib/x86.h"

#define PIT_HZ 1193182u
#define PORT_B 0x61
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define CALIBRATE_US 10000u

/* TSC ticks per microsecond; 0 until delay_calibrate (written once, on the
 * bootstrap processor, before the other CPUs start). */
static uint64_t tsc_per_us;

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

static void pit_udelay(uint32_t us)
{
	uint64_t ticks = ((uint64_t)us * PIT_HZ + 999999) / 1000000;
	while (ticks) {
		uint16_t n = ticks > 0xffff ? 0xffff : (uint16_t)ticks;
		one_shot(n ? n : 1);
		ticks -= n;
	}
}

void delay_calibrate(void)
{
	uint64_t t0 = rdtsc();
	pit_udelay(CALIBRATE_US);
	uint64_t per_us = (rdtsc() - t0) / CALIBRATE_US;
	/* A TSC slower than 1 MHz (none is) still waits at least as long. */
	tsc_per_us = per_us ? per_us : 1;
}

uint64_t delay_tsc_per_us(void) { return tsc_per_us; }

void udelay(uint32_t us)
{
	if (!tsc_per_us) {
		pit_udelay(us);
		return;
	}
	uint64_t start = rdtsc(), span = (uint64_t)us * tsc_per_us;
	while (rdtsc() - start < span)
		pause();
}
