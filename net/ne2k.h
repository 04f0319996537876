/* ne2k.h - a polled driver for an NE2000-compatible PCI NIC (Realtek
 * RTL8029, 10ec:8029: Bochs' `ne2k` in a PCI slot), level 0's debug NIC.
 *
 * No interrupts: the interrupt mask stays 0, so the card never raises its
 * IRQ; the caller polls.  Not thread-safe: the caller serialises (net.c
 * holds its lock around every call). */
#ifndef NET_NE2K_H
#define NET_NE2K_H

#include <stddef.h>
#include <stdint.h>

#define NE2K_VENDOR 0x10ec
#define NE2K_DEVICE 0x8029
#define ETH_FRAME_MAX 1514 /* without the CRC, which the card adds */

struct ne2k {
	uint16_t io;     /* I/O base (BAR0) */
	uint16_t bdf;
	uint8_t mac[6];
	uint8_t next_rx; /* ring page of the next frame to read */
};

/* Finds a 10ec:8029 on PCI bus 0 (bdf_wanted < 0: the first one; else that
 * function, which must be one).  Returns 0 with *bdf, or -1. */
int ne2k_find(int bdf_wanted, uint16_t *bdf);

/* Resets and starts the card at bdf; returns 0 or -1 with a message. */
int ne2k_init(struct ne2k *n, uint16_t bdf, char *err, size_t errlen);

/* Sends one frame (14..ETH_FRAME_MAX bytes; shorter ones are padded to the
 * 60-byte minimum) and waits for the card to have sent it.  0 or -1. */
int ne2k_send(struct ne2k *n, const void *frame, size_t len);

/* Copies the next received frame into buf (at most cap bytes); returns its
 * length, 0 when none is waiting, -1 when the card's receive ring looked
 * inconsistent (it is then reset to empty). */
int ne2k_recv(struct ne2k *n, void *buf, size_t cap);

#endif
