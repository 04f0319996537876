/* net.h - a minimal Ethernet/ARP/IPv4/UDP stack for level 0's debug NIC.
 *
 * One interface, one address, no routing beyond one gateway, no IP
 * fragments, no TCP, no ICMP.  Everything read from the wire is checked
 * against the frame's real length before use (the peer is not trusted).
 * The stack does no locking and no allocation: its caller (net/debugnic.c)
 * serialises every call.  It has no hardware dependency - frames go out
 * through the xmit function - so the host unit tests can drive it. */
#ifndef NET_NET_H
#define NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An IPv4 address in host order. */
#define NET_IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

/* Slirp's defaults (Bochs iodev/network/eth_slirp.cc): network 10.0.2.0/24,
 * the gateway and host alias 10.0.2.2, the guest 10.0.2.15. */
#define NET_SLIRP_GUEST NET_IP(10, 0, 2, 15)
#define NET_SLIRP_GATEWAY NET_IP(10, 0, 2, 2)
#define NET_SLIRP_MASK NET_IP(255, 255, 255, 0)

#define NET_ARP_SLOTS 4
#define NET_UDP_MAX 1472 /* 1500 - IPv4 header - UDP header */

struct net_if;
typedef int (*net_xmit_fn)(void *ctx, const void *frame, size_t len);
/* A UDP datagram for us: source address and port, our port, its data. */
typedef void (*net_udp_fn)(struct net_if *nif, uint32_t src_ip, uint16_t src_port, uint16_t dst_port,
			   const uint8_t *data, size_t len);

struct net_arp_entry {
	uint32_t ip; /* 0: free */
	uint8_t mac[6];
};

struct net_if {
	uint8_t mac[6];
	uint32_t ip, mask, gateway;
	net_xmit_fn xmit;
	void *xmit_ctx;
	net_udp_fn udp_rx;
	void *user;
	uint16_t ip_id;
	unsigned arp_next; /* slot the next new entry replaces */
	struct net_arp_entry arp[NET_ARP_SLOTS];
	/* Counters, for the end-of-run report. */
	uint64_t rx_frames, rx_dropped, tx_frames, tx_failed;
};

/* Handles one received Ethernet frame (without CRC): ARP requests for our
 * address are answered, ARP replies and on-link senders learnt, UDP to our
 * address handed to udp_rx.  Anything else, or malformed, is dropped. */
void net_input(struct net_if *nif, const uint8_t *frame, size_t len);

/* Sends a UDP datagram (at most NET_UDP_MAX bytes) to dst_ip: on-link
 * directly, else through the gateway.  When the next hop's MAC address is
 * not known yet, an ARP request goes out instead and -1 is returned (the
 * datagram is dropped: callers here resend or lose a log line). */
int net_udp_send(struct net_if *nif, uint32_t dst_ip, uint16_t src_port, uint16_t dst_port, const void *data,
		 size_t len);

/* Broadcasts an ARP request for ip (also tells the network our address). */
int net_arp_request(struct net_if *nif, uint32_t ip);

/* The MAC address known for ip, or NULL. */
const uint8_t *net_arp_lookup(const struct net_if *nif, uint32_t ip);

/* The Internet checksum (RFC 1071) of len bytes, starting from sum. */
uint16_t net_checksum(const void *data, size_t len, uint32_t sum);

#endif
