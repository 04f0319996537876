/* debugnic.c - the debug NIC's service: log streaming (debugnic.h).
 *
 * Polled, never interrupt-driven: the NIC is looked at whenever Nestor
 * prints a line (and by debugnic_poll), so a VM exit costs nothing more,
 * whether the option is on or off.  Every CPU may print: one spinlock
 * serialises the card and the stack.  The lock is taken with a bounded
 * number of tries, so a panic on a CPU that holds it still prints on COM1
 * (without the stream from then on). */
#include "net/debugnic.h"
#include "boot/config.h"
#include "boot/platform.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/spinlock.h"
#include "lib/string.h"
#include "net/ne2k.h"
#include "net/net.h"
#include "sec/guard.h"

/* At most this many frames are taken from the card per poll: a flood from
 * the wire cannot keep Nestor printing one line for long. */
#define POLL_BUDGET 8
#define LOCK_TRIES 1000000
/* Bytes from gdb waiting for the stub: several of gdb's largest packets
 * (PacketSize, debug/gdb_udp.c); a datagram that does not fit is dropped
 * whole, and gdb sends it again when no acknowledgement comes. */
#define GDB_RX_RING 8192

static struct {
	spinlock_t lock;
	bool up;
	bool stuck; /* streaming given up: the lock stayed taken, or the card stopped sending */
	struct ne2k card;
	struct net_if nif;
	uint32_t sub_ip; /* subscriber; 0: none */
	uint16_t sub_port;
	uint8_t frame[ETH_FRAME_MAX];
	/* gdb=udp (debug/gdb_udp.c): the bytes received on DEBUGNIC_GDB_PORT
	 * not read yet, a ring; gdb's port at 10.0.2.2 (0: none yet). */
	bool gdb_open;
	uint16_t gdb_peer;
	size_t gdb_head, gdb_len;
	uint8_t gdb_rx[GDB_RX_RING];
} dn;

/* A card that stops answering costs each send its full wait (ne2k.c's
 * bound): after a few failures in a row the stream is given up. */
#define MAX_TX_FAILURES 3

static int card_xmit(void *ctx, const void *frame, size_t len)
{
	static unsigned failures;
	int r = ne2k_send(ctx, frame, len);
	failures = r ? failures + 1 : 0;
	if (failures >= MAX_TX_FAILURES)
		dn.stuck = true;
	return r;
}

static void send_text(const char *s, size_t len)
{
	if (dn.sub_ip)
		net_udp_send(&dn.nif, dn.sub_ip, DEBUGNIC_PORT, dn.sub_port, s, len);
}

/* A datagram for us.  Only the host may subscribe: slirp's 10.0.2.2, which
 * is the host's loopback as slirp forwards it, so that whatever a datagram
 * claims, Nestor never streams to any other address. */
static void udp_rx(struct net_if *nif, uint32_t src_ip, uint16_t src_port, uint16_t dst_port, const uint8_t *data,
		   size_t len)
{
	(void)nif;
	if (src_ip != NET_SLIRP_GATEWAY || src_port == 0)
		return;
	if (dst_port == DEBUGNIC_GDB_PORT && dn.gdb_open) {
		if (len > GDB_RX_RING - dn.gdb_len)
			return;
		/* A new gdb (another socket): what the old one sent is stale. */
		if (src_port != dn.gdb_peer)
			dn.gdb_peer = src_port, dn.gdb_head = dn.gdb_len = 0;
		for (size_t i = 0; i < len; i++)
			dn.gdb_rx[(dn.gdb_head + dn.gdb_len + i) % GDB_RX_RING] = data[i];
		dn.gdb_len += len;
		return;
	}
	if (dst_port != DEBUGNIC_PORT)
		return;
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	char reply[64];
	if (len == 3 && !memcmp(data, "log", 3)) {
		/* A host repeats "log" until it hears from us: answer once. */
		if (dn.sub_ip == src_ip && dn.sub_port == src_port)
			return;
		dn.sub_ip = src_ip;
		dn.sub_port = src_port;
		/* Not a log line (no "nestor[" prefix): tells the subscriber
		 * that lines follow from now on. */
		int n = ksnprintf(reply, sizeof(reply), "debugnic: subscribed, one datagram per line\n");
		send_text(reply, (size_t)n);
	} else if (len == 4 && !memcmp(data, "stop", 4) && src_port == dn.sub_port) {
		int n = ksnprintf(reply, sizeof(reply), "debugnic: unsubscribed\n");
		send_text(reply, (size_t)n);
		dn.sub_ip = 0;
	}
}

static void poll_locked(void)
{
	for (int i = 0; i < POLL_BUDGET; i++) {
		int n = ne2k_recv(&dn.card, dn.frame, sizeof(dn.frame));
		if (n == 0)
			break;
		if (n > 0)
			net_input(&dn.nif, dn.frame, (size_t)n);
		else
			dn.nif.rx_dropped++;
	}
}

/* Only a CPU that stopped while holding the lock (a panic in the driver)
 * keeps it this long; then the NIC is left alone for good, so that the
 * panic's many lines do not each wait here. */
static bool lock_bounded(void)
{
	if (dn.stuck)
		return false;
	for (int i = 0; i < LOCK_TRIES && !dn.stuck; i++)
		if (!__atomic_exchange_n(&dn.lock.locked, 1, __ATOMIC_ACQUIRE))
			return true;
	dn.stuck = true;
	return false;
}

void debugnic_poll(void)
{
	if (!dn.up || !lock_bounded())
		return;
	poll_locked();
	spin_unlock(&dn.lock);
}

bool debugnic_gdb_open(void)
{
	if (!dn.up)
		return false;
	dn.gdb_open = true;
	return true;
}

size_t debugnic_gdb_read(uint8_t *buf, size_t cap)
{
	if (!dn.up || !lock_bounded())
		return 0;
	if (!dn.gdb_len)
		poll_locked();
	size_t n = dn.gdb_len < cap ? dn.gdb_len : cap;
	for (size_t i = 0; i < n; i++)
		buf[i] = dn.gdb_rx[(dn.gdb_head + i) % GDB_RX_RING];
	dn.gdb_head = (dn.gdb_head + n) % GDB_RX_RING;
	dn.gdb_len -= n;
	spin_unlock(&dn.lock);
	return n;
}

int debugnic_gdb_write(const void *data, size_t len)
{
	if (!dn.up || !dn.gdb_peer || !lock_bounded())
		return -1;
	int r = net_udp_send(&dn.nif, NET_SLIRP_GATEWAY, DEBUGNIC_GDB_PORT, dn.gdb_peer, data, len);
	spin_unlock(&dn.lock);
	return r;
}

/* The log's line sink (lib/log.h): runs with the console lock held, so it
 * must not print. */
static void log_line(const char *line, size_t len)
{
	if (!lock_bounded())
		return;
	poll_locked();
	send_text(line, len);
	spin_unlock(&dn.lock);
}

/* "BB:DD.F" in hexadecimal (lspci's notation), bus 0 only. */
static int parse_bdf(const char *s, int *bdf)
{
	unsigned v[3] = { 0, 0, 0 };
	const char seps[3] = { ':', '.', '\0' };
	for (int f = 0; f < 3; f++) {
		int digits = 0;
		for (; *s && *s != seps[f]; s++, digits++) {
			char c = *s;
			unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
				     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
				     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
							    : 99;
			if (d > 15 || digits >= 2)
				return -1;
			v[f] = v[f] * 16 + d;
		}
		if (!digits || *s != seps[f])
			return -1;
		if (*s)
			s++;
	}
	if (v[0] != 0 || v[1] > 31 || v[2] > 7)
		return -1;
	*bdf = (int)(v[1] << 3 | v[2]);
	return 0;
}

void debugnic_boot(unsigned level)
{
	const char *opt = config.debugnic;
	int want;
	if (!opt[0] || !strcmp(opt, "off"))
		return;
	if (!strcmp(opt, "on"))
		want = -1;
	else if (parse_bdf(opt, &want)) {
		pr_err("bad command line: debugnic=%s: expected on, off or a PCI address 00:DD.F (hexadecimal)\n", opt);
		machine_end(true);
	}
	if (level > 0) {
		pr_warn("debugnic=%s ignored: the debug NIC is level 0's, hidden from level %u\n", opt, level);
		return;
	}

	/* A missing or broken card costs the log stream, not the run: Nestor
	 * goes on without it (and the card, if any, stays the guest's). */
	char err[120];
	uint16_t bdf;
	if (ne2k_find(want, &bdf)) {
		pr_warn("debugnic: no RTL8029 (10ec:8029, Bochs 'ne2k' in a PCI slot) %s%s: running without\n",
			want < 0 ? "on PCI bus 0" : "at ", want < 0 ? "" : opt);
		return;
	}
	if (ne2k_init(&dn.card, bdf, err, sizeof(err))) {
		pr_warn("debugnic: %02x:%02x.%x: %s: running without\n", bdf >> 8, (bdf >> 3) & 0x1f, bdf & 7, err);
		return;
	}
	/* Hidden from every level above before any guest runs. */
	if (guard_device(bdf, "debugnic", err, sizeof(err))) {
		pr_err("debugnic: guard: %s\n", err);
		machine_end(true);
	}
	dn.nif = (struct net_if){
		.ip = NET_SLIRP_GUEST,
		.mask = NET_SLIRP_MASK,
		.gateway = NET_SLIRP_GATEWAY,
		.xmit = card_xmit,
		.xmit_ctx = &dn.card,
		.udp_rx = udp_rx,
	};
	memcpy(dn.nif.mac, dn.card.mac, 6);
	/* Resolves the gateway, and tells slirp our address at once. */
	net_arp_request(&dn.nif, NET_SLIRP_GATEWAY);
	dn.up = true;
	const uint8_t *m = dn.card.mac;
	pr_info("debugnic: %02x:%02x.%x RTL8029 at I/O 0x%x, MAC %02x:%02x:%02x:%02x:%02x:%02x, 10.0.2.15 UDP %u: "
		"send \"log\" to stream this log\n",
		bdf >> 8, (bdf >> 3) & 0x1f, bdf & 7, dn.card.io, m[0], m[1], m[2], m[3], m[4], m[5], DEBUGNIC_PORT);
	log_set_line_sink(log_line);
}
