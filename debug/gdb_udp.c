/* gdb_udp.c - gdb's transport over level 0's debug NIC: UDP port 1234 of
 * 10.0.2.15 (net/debugnic.h, DEBUGNIC_GDB_PORT), gdb=udp (docs/gdb.md).
 *
 * gdb's `target remote udp:HOST:PORT` uses a connected UDP socket and
 * writes each packet, each acknowledgement and each Ctrl-C as one datagram
 * (gdb's ser-tcp.c), and reads what comes back as a byte stream.  So does
 * this side: the bytes of every datagram received on the port are one
 * stream for the packet layer, and what the packet layer writes is
 * gathered and sent as one datagram whenever the stub next waits for
 * gdb (getc), flushes, or fills a datagram.  Replies go to the port of the
 * last datagram from 10.0.2.2 (the host, through slirp's forwarding).
 *
 * Every datagram must fit one Ethernet frame (net/ takes no IP fragments):
 * the stub announces a PacketSize (UDP_PACKET_SIZE) that keeps gdb's
 * packets well below NET_UDP_MAX. */
#include "debug/gdb.h"
#include "lib/x86.h"
#include "net/debugnic.h"
#include "net/net.h"

static struct {
	uint8_t in[2048];
	size_t in_pos, in_len;
	uint8_t out[NET_UDP_MAX];
	size_t out_len;
} u;

static void udp_flush(void *ctx)
{
	(void)ctx;
	if (!u.out_len)
		return;
	/* No gdb yet, or the card failed: the bytes are lost, and the packet
	 * layer sends its packet again when no acknowledgement comes. */
	debugnic_gdb_write(u.out, u.out_len);
	u.out_len = 0;
}

static int udp_getc(void *ctx, unsigned spins)
{
	udp_flush(ctx);
	for (unsigned i = 0;; i++) {
		if (u.in_pos < u.in_len)
			return u.in[u.in_pos++];
		/* Reads the card when nothing is waiting: about 58 ticks when
		 * its receive ring is empty (docs/debug-nic.md). */
		u.in_len = debugnic_gdb_read(u.in, sizeof(u.in));
		u.in_pos = 0;
		if (u.in_len)
			continue;
		if (i >= spins)
			return -1;
		pause();
	}
}

static void udp_putc(void *ctx, uint8_t c)
{
	if (u.out_len == sizeof(u.out))
		udp_flush(ctx);
	u.out[u.out_len++] = c;
}

static const struct gdb_transport udp = {
	.name = "UDP port 1234 of 10.0.2.15 (the debug NIC)",
	.getc = udp_getc,
	.putc = udp_putc,
	.flush = udp_flush,
	.packet_size = UDP_PACKET_SIZE,
};

const struct gdb_transport *gdb_udp_transport(void)
{
	return debugnic_gdb_open() ? &udp : NULL;
}
