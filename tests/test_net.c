// sources: net/net.c
/* Unit tests of the debug NIC's network stack (net/net.c): ARP answers and
 * learning, UDP in both directions with their checksums, and frames that a
 * hostile or broken peer could send - each must be dropped, never read past
 * its end (ASan watches every frame, allocated to its exact length). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "net/net.h"

static const uint8_t our_mac[6] = { 0xb0, 0xc4, 0x20, 0, 0, 1 };
static const uint8_t gw_mac[6] = { 0x52, 0x55, 0x0a, 0, 2, 2 };

static uint8_t sent[2048];
static size_t sent_len;
static int n_sent;
static uint32_t rx_ip;
static uint16_t rx_sport, rx_dport;
static char rx_data[2048];
static size_t rx_len;
static int n_rx;

static int fake_xmit(void *ctx, const void *frame, size_t len)
{
	(void)ctx;
	assert_true(len <= sizeof(sent));
	memcpy(sent, frame, len);
	sent_len = len;
	n_sent++;
	return 0;
}

static void fake_udp(struct net_if *nif, uint32_t ip, uint16_t sport, uint16_t dport, const uint8_t *d, size_t len)
{
	(void)nif;
	rx_ip = ip, rx_sport = sport, rx_dport = dport;
	memcpy(rx_data, d, len);
	rx_len = len;
	n_rx++;
}

static struct net_if nif;

static int setup(void **state)
{
	(void)state;
	memset(&nif, 0, sizeof(nif));
	memcpy(nif.mac, our_mac, 6);
	nif.ip = NET_SLIRP_GUEST;
	nif.mask = NET_SLIRP_MASK;
	nif.gateway = NET_SLIRP_GATEWAY;
	nif.xmit = fake_xmit;
	nif.udp_rx = fake_udp;
	n_sent = n_rx = 0;
	return 0;
}

/* Hands a copy of exactly len bytes to the stack. */
static void input(const uint8_t *f, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);
	memcpy(c, f, len);
	net_input(&nif, c, len);
	free(c);
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

static size_t arp_frame(uint8_t *f, unsigned op, const uint8_t *dst, uint32_t sip, uint32_t tip)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, gw_mac, 6);
	put16(f + 12, 0x0806);
	uint8_t *a = f + 14;
	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6, a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, gw_mac, 6);
	put32(a + 14, sip);
	memset(a + 18, 0, 6);
	put32(a + 24, tip);
	return 14 + 28;
}

/* A UDP datagram from src to us, checksums right. */
static size_t udp_frame(uint8_t *f, uint32_t src, uint16_t sport, uint16_t dport, const char *data)
{
	size_t dl = strlen(data);
	memcpy(f, our_mac, 6);
	memcpy(f + 6, gw_mac, 6);
	put16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (unsigned)(28 + dl));
	ip[8] = 64;
	ip[9] = 17;
	put32(ip + 12, src);
	put32(ip + 16, NET_SLIRP_GUEST);
	put16(ip + 10, net_checksum(ip, 20, 0));
	uint8_t *u = ip + 20;
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, (unsigned)(8 + dl));
	put16(u + 6, 0);
	memcpy(u + 8, data, dl);
	uint32_t sum = (src >> 16) + (src & 0xffff) + (NET_SLIRP_GUEST >> 16) + (NET_SLIRP_GUEST & 0xffff) + 17 +
		       (uint32_t)(8 + dl);
	uint16_t c = net_checksum(u, 8 + dl, sum);
	put16(u + 6, c ? c : 0xffff);
	return 14 + 28 + dl;
}

static void checksum_rfc1071(void **state)
{
	(void)state;
	/* RFC 1071 section 3's example: 0x0001 f203 f4f5 f6f7 sums to 0xddf2. */
	static const uint8_t d[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	assert_int_equal(net_checksum(d, sizeof(d), 0), (uint16_t)~0xddf2);
	static const uint8_t odd[] = { 0x12 };
	assert_int_equal(net_checksum(odd, 1, 0), (uint16_t)~0x1200);
}

static void arp_request_answered(void **state)
{
	(void)state;
	uint8_t f[64], bc[6];
	memset(bc, 0xff, 6);
	size_t l = arp_frame(f, 1, bc, NET_SLIRP_GATEWAY, NET_SLIRP_GUEST);
	input(f, l);
	assert_int_equal(n_sent, 1);
	assert_int_equal(sent_len, 42);
	assert_memory_equal(sent, gw_mac, 6);         /* to the asker */
	assert_int_equal(sent[14 + 7], 2);             /* a reply */
	assert_memory_equal(sent + 14 + 8, our_mac, 6); /* our MAC */
	assert_non_null(net_arp_lookup(&nif, NET_SLIRP_GATEWAY));
	/* For another address: no answer, nothing learnt. */
	setup(NULL);
	l = arp_frame(f, 1, bc, NET_SLIRP_GATEWAY, NET_IP(10, 0, 2, 16));
	input(f, l);
	assert_int_equal(n_sent, 0);
	assert_null(net_arp_lookup(&nif, NET_SLIRP_GATEWAY));
}

static void udp_round_trip(void **state)
{
	(void)state;
	uint8_t f[128];
	/* Sending before the gateway's MAC is known asks ARP instead. */
	assert_int_equal(net_udp_send(&nif, NET_SLIRP_GATEWAY, 6510, 40000, "x", 1), -1);
	assert_int_equal(n_sent, 1);
	assert_int_equal(sent[12] << 8 | sent[13], 0x0806);
	size_t l = udp_frame(f, NET_SLIRP_GATEWAY, 40000, 6510, "log");
	input(f, l);
	assert_int_equal(n_rx, 1);
	assert_int_equal(rx_ip, NET_SLIRP_GATEWAY);
	assert_int_equal(rx_sport, 40000);
	assert_int_equal(rx_dport, 6510);
	assert_int_equal(rx_len, 3);
	assert_memory_equal(rx_data, "log", 3);
	/* Learnt from the datagram: now it goes out, checksums right. */
	assert_int_equal(net_udp_send(&nif, NET_SLIRP_GATEWAY, 6510, 40000, "hello\n", 6), 0);
	assert_int_equal(sent_len, 14 + 20 + 8 + 6);
	assert_memory_equal(sent, gw_mac, 6);
	assert_int_equal(net_checksum(sent + 14, 20, 0), 0);
	uint32_t sum = (NET_SLIRP_GUEST >> 16) + (NET_SLIRP_GUEST & 0xffff) + (NET_SLIRP_GATEWAY >> 16) +
		       (NET_SLIRP_GATEWAY & 0xffff) + 17 + 14;
	assert_int_equal(net_checksum(sent + 34, 14, sum), 0);
	assert_memory_equal(sent + 42, "hello\n", 6);
	/* Off-link destinations go through the gateway's MAC. */
	assert_int_equal(net_udp_send(&nif, NET_IP(127, 0, 0, 1), 1, 2, "", 0), 0);
	assert_memory_equal(sent, gw_mac, 6);
	assert_int_equal(net_udp_send(&nif, NET_SLIRP_GATEWAY, 1, 2, sent, NET_UDP_MAX + 1), -1);
}

/* Every truncation of a good datagram, and every corrupted field: no
 * delivery, no read past the end. */
static void hostile_frames(void **state)
{
	(void)state;
	uint8_t good[128], f[128];
	size_t l = udp_frame(good, NET_SLIRP_GATEWAY, 40000, 6510, "log");
	for (size_t cut = 0; cut < l; cut++)
		input(good, cut);
	assert_int_equal(n_rx, 0);
	/* One byte flipped anywhere in the IP or UDP headers or the data:
	 * a field check or one of the two checksums catches it. */
	for (size_t i = 14; i < l; i++) {
		memcpy(f, good, l);
		f[i] ^= 0x40;
		n_rx = 0;
		input(f, l);
		assert_int_equal(n_rx, 0);
	}
	/* UDP length larger than the IP payload, with checksum 0 (unchecked). */
	memcpy(f, good, l);
	put16(f + 34 + 6, 0);
	put16(f + 34 + 4, 200);
	input(f, l);
	assert_int_equal(n_rx, 0);
	/* IP total length beyond the frame; header length below 20. */
	memcpy(f, good, l);
	put16(f + 16, 1000);
	put16(f + 24, 0);
	put16(f + 24, net_checksum(f + 14, 20, 0));
	input(f, l);
	memcpy(f, good, l);
	f[14] = 0x44;
	input(f, l);
	/* A fragment. */
	memcpy(f, good, l);
	put16(f + 20, 0x2000);
	put16(f + 24, 0);
	put16(f + 24, net_checksum(f + 14, 20, 0));
	input(f, l);
	/* To another address; to the broadcast MAC. */
	l = udp_frame(f, NET_SLIRP_GATEWAY, 40000, 6510, "log");
	memset(f, 0xff, 6);
	input(f, l);
	assert_int_equal(n_rx, 0);
	/* ARP: truncated, wrong sizes, a broadcast sender MAC - no answer. */
	uint8_t bc[6];
	memset(bc, 0xff, 6);
	size_t al = arp_frame(f, 1, bc, NET_SLIRP_GATEWAY, NET_SLIRP_GUEST);
	input(f, al - 1);
	f[14 + 4] = 7;
	input(f, al);
	arp_frame(f, 1, bc, NET_SLIRP_GATEWAY, NET_SLIRP_GUEST);
	memset(f + 14 + 8, 0xff, 6);
	input(f, al);
	arp_frame(f, 1, bc, NET_SLIRP_GUEST, NET_SLIRP_GUEST); /* claims our own address */
	input(f, al);
	assert_int_equal(n_sent, 0);
	assert_int_equal(n_rx, 0);
	assert_null(net_arp_lookup(&nif, NET_SLIRP_GATEWAY));
	assert_null(net_arp_lookup(&nif, NET_SLIRP_GUEST));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(checksum_rfc1071, setup),
		cmocka_unit_test_setup(arp_request_answered, setup),
		cmocka_unit_test_setup(udp_round_trip, setup),
		cmocka_unit_test_setup(hostile_frames, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
