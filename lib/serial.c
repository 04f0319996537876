/* serial.c - polled 16550 UART output. */
#include "lib/serial.h"
#include "lib/x86.h"

enum { THR = 0, IER = 1, FCR = 2, LCR = 3, MCR = 4, LSR = 5, DLL = 0, DLM = 1 };
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
/* A missing UART reads 0xff: bit 7 set, never a real line status here. */

void serial_init(uint16_t port)
{
	/* Reprogramming the UART while it still sends (bytes of the level
	 * below, or of a loader) would garble them. */
	for (unsigned i = 0; i < 1000000 && (inb(port + LSR) & (LSR_TEMT | 0x80)) == 0; i++)
		pause();
	outb(port + IER, 0x00);      /* no interrupts: we poll */
	outb(port + LCR, 0x80);      /* DLAB on to set the divisor */
	outb(port + DLL, 0x01);      /* 115200 / 1 */
	outb(port + DLM, 0x00);
	outb(port + LCR, 0x03);      /* 8 data bits, no parity, 1 stop bit */
	outb(port + FCR, 0xc7);      /* FIFOs on and cleared, 14-byte threshold */
	outb(port + MCR, 0x03);      /* DTR and RTS */
}

void serial_putc(uint16_t port, char c)
{
	/* Bound the wait: a missing UART reads 0xff (THRE set), a wedged one
	 * must not hang a panic report forever. */
	for (unsigned i = 0; i < 1000000 && !(inb(port + LSR) & LSR_THRE); i++)
		pause();
	outb(port + THR, (uint8_t)c);
}

void serial_flush(uint16_t port)
{
	for (unsigned i = 0; i < 1000000 && !(inb(port + LSR) & LSR_TEMT); i++)
		pause();
}
