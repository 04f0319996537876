/* serial.h - polled 16550 UART driver (COM1 by default), 115200 8N1. */
#ifndef LIB_SERIAL_H
#define LIB_SERIAL_H

#include <stdint.h>

#define COM1_PORT 0x3f8

void serial_init(uint16_t port);
void serial_putc(uint16_t port, char c);
/* Waits until every byte written has left the transmitter. */
void serial_flush(uint16_t port);

#endif
