/* console.c - guest console on COM1, and powering off. */
#include "guest/kernel.h"
#include "lib/format.h"
#include "lib/serial.h"
#include "lib/x86.h"
#include <stdarg.h>

void gputc(char c) { serial_putc(COM1_PORT, c); }

static void sink(void *ctx, char c)
{
	(void)ctx;
	gputc(c);
}

void gprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vformat(sink, 0, fmt, ap);
	va_end(ap);
}

void gflush(void) { serial_flush(COM1_PORT); }

void guest_poweroff(void)
{
	gflush();
	cli();
	for (const char *s = "Shutdown"; *s; s++)
		outb(BOCHS_SHUTDOWN_PORT, (uint8_t)*s);
	for (;;)
		hlt();
}
