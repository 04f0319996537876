/* net.c - Ethernet II, ARP (RFC 826), IPv4 (RFC 791) and UDP (RFC 768) for
 * the debug NIC; see net.h.  Multi-byte fields are big-endian on the wire
 * and read byte by byte: no alignment or endianness assumption. */
#include "net/net.h"
#include "lib/string.h"

#define ETH_HLEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP 0x0806
#define ARP_LEN 28 /* Ethernet/IPv4 ARP packet (RFC 826) */
#define IP_HLEN 20 /* without options; we send none */
#define UDP_HLEN 8
#define IP_PROTO_UDP 17

static const uint8_t broadcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

uint16_t net_checksum(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;
	for (; len > 1; len -= 2, p += 2)
		sum += get16(p);
	if (len)
		sum += (uint32_t)p[0] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static bool on_link(const struct net_if *nif, uint32_t ip) { return (ip & nif->mask) == (nif->ip & nif->mask); }

/* Addresses a host may have: on our network, neither its network nor its
 * broadcast address, nor ours. */
static bool unicast_peer(const struct net_if *nif, uint32_t ip)
{
	return on_link(nif, ip) && ip != nif->ip && (ip & ~nif->mask) != 0 && (ip & ~nif->mask) != ~nif->mask;
}

const uint8_t *net_arp_lookup(const struct net_if *nif, uint32_t ip)
{
	for (unsigned i = 0; i < NET_ARP_SLOTS; i++)
		if (ip && nif->arp[i].ip == ip)
			return nif->arp[i].mac;
	return NULL;
}

static void arp_learn(struct net_if *nif, uint32_t ip, const uint8_t *mac)
{
	if (!unicast_peer(nif, ip) || (mac[0] & 1))
		return; /* never map an address to a multicast/broadcast MAC */
	for (unsigned i = 0; i < NET_ARP_SLOTS; i++)
		if (nif->arp[i].ip == ip) {
			memcpy(nif->arp[i].mac, mac, 6);
			return;
		}
	struct net_arp_entry *e = &nif->arp[nif->arp_next];
	nif->arp_next = (nif->arp_next + 1) % NET_ARP_SLOTS;
	e->ip = ip;
	memcpy(e->mac, mac, 6);
}

static int xmit(struct net_if *nif, const uint8_t *frame, size_t len)
{
	int r = nif->xmit(nif->xmit_ctx, frame, len);
	if (r)
		nif->tx_failed++;
	else
		nif->tx_frames++;
	return r;
}

static int arp_send(struct net_if *nif, uint16_t op, const uint8_t *dst_mac, const uint8_t *target_mac,
		    uint32_t target_ip)
{
	uint8_t f[ETH_HLEN + ARP_LEN];
	memcpy(f, dst_mac, 6);
	memcpy(f + 6, nif->mac, 6);
	put16(f + 12, ETHERTYPE_ARP);
	uint8_t *a = f + ETH_HLEN;
	put16(a, 1);              /* hardware: Ethernet */
	put16(a + 2, ETHERTYPE_IPV4);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, nif->mac, 6);
	put32(a + 14, nif->ip);
	memcpy(a + 18, target_mac, 6);
	put32(a + 24, target_ip);
	return xmit(nif, f, sizeof(f));
}

int net_arp_request(struct net_if *nif, uint32_t ip)
{
	static const uint8_t zero[6];
	return arp_send(nif, 1, broadcast_mac, zero, ip);
}

static void arp_input(struct net_if *nif, const uint8_t *a, size_t len)
{
	if (len < ARP_LEN || get16(a) != 1 || get16(a + 2) != ETHERTYPE_IPV4 || a[4] != 6 || a[5] != 4)
		return;
	uint16_t op = get16(a + 6);
	uint32_t sender_ip = get32(a + 14), target_ip = get32(a + 24);
	if (op != 1 && op != 2)
		return;
	/* RFC 826, "Packet Reception": update a sender we know; add it when
	 * the packet is for us. */
	if (net_arp_lookup(nif, sender_ip) || target_ip == nif->ip)
		arp_learn(nif, sender_ip, a + 8);
	if (op == 1 && target_ip == nif->ip && unicast_peer(nif, sender_ip) && !(a[8] & 1))
		arp_send(nif, 2, a + 8, a + 8, sender_ip);
}

static void udp_input(struct net_if *nif, const uint8_t *eth_src, const uint8_t *ip, size_t ihl, size_t total)
{
	const uint8_t *u = ip + ihl;
	size_t avail = total - ihl;
	if (avail < UDP_HLEN)
		return;
	size_t ulen = get16(u + 4);
	if (ulen < UDP_HLEN || ulen > avail)
		return;
	if (get16(u + 6)) {
		/* The checksum covers a pseudo-header (RFC 768): addresses,
		 * protocol, UDP length. */
		uint32_t sum = get16(ip + 12) + get16(ip + 14) + get16(ip + 16) + get16(ip + 18) + IP_PROTO_UDP + (uint32_t)ulen;
		if (net_checksum(u, ulen, sum) != 0)
			return;
	}
	/* A sender on our link is one hop away: its frame's source is its MAC
	 * (RFC 1122 2.3.2.1 allows learning from traffic) - learnt only from a
	 * datagram that passed every check. */
	uint32_t src = get32(ip + 12);
	if (unicast_peer(nif, src))
		arp_learn(nif, src, eth_src);
	if (nif->udp_rx)
		nif->udp_rx(nif, get32(ip + 12), get16(u), get16(u + 2), u + UDP_HLEN, ulen - UDP_HLEN);
}

static bool ip_input(struct net_if *nif, const uint8_t *eth_src, const uint8_t *ip, size_t len)
{
	if (len < IP_HLEN || ip[0] >> 4 != 4)
		return false;
	size_t ihl = (size_t)(ip[0] & 0xf) * 4;
	size_t total = get16(ip + 2);
	if (ihl < IP_HLEN || total < ihl || total > len) /* frames may carry padding after total */
		return false;
	if (net_checksum(ip, ihl, 0) != 0)
		return false;
	if (get16(ip + 6) & 0x3fff) /* MF set or a fragment offset: no reassembly here */
		return false;
	if (get32(ip + 16) != nif->ip || ip[9] != IP_PROTO_UDP)
		return false;
	udp_input(nif, eth_src, ip, ihl, total);
	return true;
}

void net_input(struct net_if *nif, const uint8_t *frame, size_t len)
{
	nif->rx_frames++;
	bool used = false;
	if (len >= ETH_HLEN && (!memcmp(frame, nif->mac, 6) || !memcmp(frame, broadcast_mac, 6)) && !(frame[6] & 1)) {
		uint16_t type = get16(frame + 12);
		if (type == ETHERTYPE_ARP) {
			arp_input(nif, frame + ETH_HLEN, len - ETH_HLEN);
			used = true;
		} else if (type == ETHERTYPE_IPV4 && frame[0] != 0xff) {
			used = ip_input(nif, frame + 6, frame + ETH_HLEN, len - ETH_HLEN);
		}
	}
	if (!used)
		nif->rx_dropped++;
}

int net_udp_send(struct net_if *nif, uint32_t dst_ip, uint16_t src_port, uint16_t dst_port, const void *data,
		 size_t len)
{
	static uint8_t f[ETH_HLEN + IP_HLEN + UDP_HLEN + NET_UDP_MAX]; /* callers are serialised */
	if (len > NET_UDP_MAX)
		return -1;
	uint32_t hop = on_link(nif, dst_ip) ? dst_ip : nif->gateway;
	const uint8_t *mac = net_arp_lookup(nif, hop);
	if (!mac) {
		net_arp_request(nif, hop);
		return -1;
	}
	memcpy(f, mac, 6);
	memcpy(f + 6, nif->mac, 6);
	put16(f + 12, ETHERTYPE_IPV4);
	uint8_t *ip = f + ETH_HLEN;
	ip[0] = 0x45; /* version 4, 5 words */
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(IP_HLEN + UDP_HLEN + len));
	put16(ip + 4, nif->ip_id++);
	put16(ip + 6, 0x4000); /* don't fragment */
	ip[8] = 64;            /* TTL */
	ip[9] = IP_PROTO_UDP;
	put16(ip + 10, 0);
	put32(ip + 12, nif->ip);
	put32(ip + 16, dst_ip);
	put16(ip + 10, net_checksum(ip, IP_HLEN, 0));
	uint8_t *u = ip + IP_HLEN;
	put16(u, src_port);
	put16(u + 2, dst_port);
	put16(u + 4, (uint16_t)(UDP_HLEN + len));
	put16(u + 6, 0);
	memcpy(u + UDP_HLEN, data, len);
	uint32_t sum = (nif->ip >> 16) + (nif->ip & 0xffff) + (dst_ip >> 16) + (dst_ip & 0xffff) + IP_PROTO_UDP +
		       (uint32_t)(UDP_HLEN + len);
	uint16_t c = net_checksum(u, UDP_HLEN + len, sum);
	put16(u + 6, c ? c : 0xffff); /* 0 means "no checksum" (RFC 768) */
	return xmit(nif, f, ETH_HLEN + IP_HLEN + UDP_HLEN + len);
}
