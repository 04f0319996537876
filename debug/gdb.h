/* gdb.h - a GDB remote-serial-protocol stub in level 0 (docs/gdb.md).
 *
 * Three layers, each knowing only the one below:
 *  - a transport (struct gdb_transport) moves bytes: COM2 polled
 *    (debug/gdb_serial.c), or UDP over level 0's debug NIC (net/,
 *    debug/gdb_udp.c);
 *  - the packet layer (debug/gdb.c) frames packets ($data#cs), checks and
 *    acknowledges them, escapes and unescapes binary data;
 *  - the stub (debug/gdb_stub.c) answers the packets with the state of the
 *    level that runs, and takes breakpoint, step and timer exits through
 *    the hook vmx/ offers (vmx/debug_hook.h). */
#ifndef DEBUG_GDB_H
#define DEBUG_GDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A byte pipe to gdb.  getc returns a byte, or -1 when none came within
 * about `spins` polls (0: do not wait); putc blocks until the byte is
 * accepted; flush waits until everything written has left. */
struct gdb_transport {
	const char *name;
	int (*getc)(void *ctx, unsigned spins);
	void (*putc)(void *ctx, uint8_t c);
	void (*flush)(void *ctx);
	void *ctx;
	unsigned packet_size; /* PacketSize announced to gdb; 0: GDB_PACKET_MAX */
};

/* The transport on COM2 (debug/gdb_serial.c), or NULL without a UART there. */
const struct gdb_transport *gdb_serial_transport(void);

/* The transport on the debug NIC's UDP port 1234 (debug/gdb_udp.c), or
 * NULL when the debug NIC is not up (debugnic=). */
const struct gdb_transport *gdb_udp_transport(void);
/* What gdb may send at most over UDP: a packet and its framing in one
 * Ethernet frame (net/ takes no IP fragments). */
#define UDP_PACKET_SIZE 1024

/* --- packet layer (debug/gdb.c) ---------------------------------------- */

#define GDB_PACKET_MAX 4096 /* PacketSize we announce: the payload at most */

struct gdb_link {
	const struct gdb_transport *t;
	bool no_ack; /* QStartNoAckMode accepted */
};

/* Waits for the next packet: its payload (escapes undone, NUL-ended) in
 * buf, its length returned.  A Ctrl-C byte (0x03) outside a packet
 * returns -2 (an interrupt request); a bad checksum is NAKed and the
 * packet awaited again. */
int gdb_recv(struct gdb_link *l, char *buf, size_t cap);
/* Sends one packet (escaping $, #, } and *), then waits for its '+'
 * (resending on '-', at most a few times) unless acks are off.  False
 * when gdb never acknowledged. */
bool gdb_send(struct gdb_link *l, const char *data, size_t len);
bool gdb_send_str(struct gdb_link *l, const char *s);
/* Whether a Ctrl-C (0x03) is waiting, without blocking. */
bool gdb_poll_interrupt(struct gdb_link *l);

/* Hex helpers shared by the stub. */
int gdb_hexval(char c);
char *gdb_put_hex(char *out, const void *bytes, size_t n);
/* Parses hex digits at *p (advancing it); false when none. */
bool gdb_parse_hex(const char **p, uint64_t *val);

/* --- the stub (debug/gdb_stub.c) ---------------------------------------- */

/* At boot, once, after debugnic_boot: with gdb=serial or gdb=udp at level
 * 0, registers the stub's hooks with vmx/ (vmx/debug_hook.h); otherwise
 * nothing (a warning at a level above 0, whose COM2 is its guest's).
 * gdb=udp without debugnic= is a bad command line. */
void gdb_boot(unsigned level);

#endif
