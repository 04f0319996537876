/* gdb_serial.c - gdb's transport on COM2 (0x2f8), 115200 8N1, polled.
 *
 * Nothing else in Nestor uses COM2, and it is not intercepted for the
 * guest either: with gdb=serial the guest must leave COM2 alone.  Bochs
 * connects it to a TCP socket (`com2: enabled=1, mode=socket-server,
 * dev=127.0.0.1:PORT`, docs/gdb.md). */
#include "debug/gdb.h"
#include "lib/serial.h"
#include "lib/x86.h"

#define COM2_PORT 0x2f8
enum { RBR = 0, THR = 0, LSR = 5 };
#define LSR_DR 0x01   /* a byte was received */
#define LSR_THRE 0x20 /* the transmit holding register is empty */

static int com2_getc(void *ctx, unsigned spins)
{
	(void)ctx;
	for (unsigned i = 0;; i++) {
		uint8_t lsr = inb(COM2_PORT + LSR);
		/* 0xff: no UART there. */
		if (lsr != 0xff && (lsr & LSR_DR))
			return inb(COM2_PORT + RBR);
		if (i >= spins)
			return -1;
		pause();
	}
}

static void com2_putc(void *ctx, uint8_t c)
{
	(void)ctx;
	serial_putc(COM2_PORT, (char)c);
}

static void com2_flush(void *ctx)
{
	(void)ctx;
	serial_flush(COM2_PORT);
}

static const struct gdb_transport com2 = {
	.name = "COM2",
	.getc = com2_getc,
	.putc = com2_putc,
	.flush = com2_flush,
};

const struct gdb_transport *gdb_serial_transport(void)
{
	/* A missing UART reads 0xff: no COM2 (Bochs: no com2: line). */
	if (inb(COM2_PORT + LSR) == 0xff)
		return NULL;
	serial_init(COM2_PORT);
	return &com2;
}
