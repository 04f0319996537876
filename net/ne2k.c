/* ne2k.c - polled NE2000 (DP8390 core) driver for the RTL8029 PCI card.
 *
 * References: National Semiconductor DP8390D datasheet ("NIC core"), its
 * register map (pages 0 and 1), the remote-DMA and the receive buffer ring
 * sections; Realtek RTL8029AS datasheet (PCI configuration, the NE2000
 * data port at base+0x10 and reset port at base+0x1f).  Bochs 2.7's model
 * (iodev/network/ne2k.cc) is what this runs on: 32 KiB of buffer memory at
 * 0x4000-0xbfff, the station address PROM at 0 with every byte doubled.
 *
 * The card is driven in byte mode (DCR.WTS = 0): every transfer is a byte,
 * odd lengths need no care, and Bochs panics on word accesses in byte mode
 * only, never the other way round.  IMR stays 0: the card never interrupts
 * (Nestor takes no interrupts of its own; its guest owns the IDT). */
#include "net/ne2k.h"
#include "lib/format.h"
#include "lib/pci.h"
#include "lib/x86.h"

/* DP8390 registers, page 0 unless noted (datasheet, "Register
 * Descriptions"). */
#define NE_CR 0x00
#define NE_PSTART 0x01 /* w */
#define NE_PSTOP 0x02  /* w */
#define NE_BNRY 0x03
#define NE_TPSR 0x04 /* w */
#define NE_TBCR0 0x05
#define NE_TBCR1 0x06
#define NE_ISR 0x07
#define NE_RSAR0 0x08
#define NE_RSAR1 0x09
#define NE_RBCR0 0x0a
#define NE_RBCR1 0x0b
#define NE_RCR 0x0c /* w */
#define NE_TCR 0x0d /* w */
#define NE_DCR 0x0e /* w */
#define NE_IMR 0x0f /* w */
#define NE_P1_PAR0 0x01 /* page 1: physical address */
#define NE_P1_CURR 0x07 /* page 1: current (write) page of the ring */
#define NE_P1_MAR0 0x08 /* page 1: multicast filter */
#define NE_DATA 0x10    /* NE2000 ASIC: remote-DMA data port */
#define NE_RESET 0x1f   /* NE2000 ASIC: a read resets the card */

#define CR_STP 0x01
#define CR_STA 0x02
#define CR_TXP 0x04
#define CR_RD_READ 0x08
#define CR_RD_WRITE 0x10
#define CR_RD_ABORT 0x20 /* "abort/complete remote DMA" */
#define CR_PAGE1 0x40

#define ISR_PRX 0x01
#define ISR_PTX 0x02
#define ISR_TXE 0x08
#define ISR_OVW 0x10
#define ISR_RDC 0x40
#define ISR_RST 0x80

#define DCR_LS 0x08  /* loopback select: 1 = normal operation */
#define DCR_FT1 0x40 /* FIFO threshold 8 bytes */
#define RCR_AB 0x04  /* accept broadcast (ARP requests) */
#define TCR_LOOP_INTERNAL 0x02

/* Buffer memory, in 256-byte pages: 6 pages (1536 bytes) for one frame to
 * send, the rest the receive ring.  Bochs' card has 32 KiB at 0x4000. */
#define TX_PAGE 0x40
#define RX_START 0x46
#define RX_STOP 0xc0

/* Busy-wait bounds, in polls of a register.  Bochs completes a remote DMA
 * at once and a transmission after the frame's time on a 10 Mb/s wire
 * (≤ 1.3 ms emulated, ~13 000 instructions at ips=10M). */
#define WAIT_POLLS 2000000u

static inline uint8_t rd(const struct ne2k *n, unsigned r) { return inb((uint16_t)(n->io + r)); }
static inline void wr(const struct ne2k *n, unsigned r, uint8_t v) { outb((uint16_t)(n->io + r), v); }

int ne2k_find(int bdf_wanted, uint16_t *bdf)
{
	for (unsigned dev = 0; dev < 32; dev++) {
		for (unsigned fn = 0; fn < 8; fn++) {
			uint16_t b = PCI_BDF(0, dev, fn);
			uint32_t id = pci_read32(b, PCI_VENDOR_ID);
			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break; /* no device: no other function either */
				continue;
			}
			if (id == ((uint32_t)NE2K_DEVICE << 16 | NE2K_VENDOR) && (bdf_wanted < 0 || bdf_wanted == b)) {
				*bdf = b;
				return 0;
			}
			/* Functions 1-7 exist only on a multi-function device. */
			if (fn == 0 && !(pci_read32(b, PCI_HEADER_TYPE & ~3u) >> 16 & 0x80))
				break;
		}
	}
	return -1;
}

static int wait_isr(const struct ne2k *n, uint8_t bits)
{
	for (unsigned i = 0; i < WAIT_POLLS; i++)
		if (rd(n, NE_ISR) & bits)
			return 0;
	return -1;
}

/* Sets up a remote DMA (datasheet, "Remote DMA"): count bytes at addr. */
static void dma_setup(const struct ne2k *n, uint16_t addr, uint16_t count, uint8_t cmd)
{
	wr(n, NE_CR, CR_STA | CR_RD_ABORT);
	wr(n, NE_ISR, ISR_RDC);
	wr(n, NE_RBCR0, (uint8_t)count);
	wr(n, NE_RBCR1, (uint8_t)(count >> 8));
	wr(n, NE_RSAR0, (uint8_t)addr);
	wr(n, NE_RSAR1, (uint8_t)(addr >> 8));
	wr(n, NE_CR, CR_STA | cmd);
}

static void dma_read(const struct ne2k *n, uint16_t addr, void *buf, uint16_t count)
{
	if (!count)
		return;
	dma_setup(n, addr, count, CR_RD_READ);
	uint8_t *p = buf;
	for (uint16_t i = 0; i < count; i++)
		p[i] = rd(n, NE_DATA);
	wr(n, NE_ISR, ISR_RDC);
}

int ne2k_init(struct ne2k *n, uint16_t bdf, char *err, size_t errlen)
{
	/* BAR0 is the card's I/O window (RTL8029AS datasheet, PCI
	 * configuration space: BAR0 I/O, 32 bytes). */
	uint32_t bar = pci_read32(bdf, PCI_BAR0);
	if (!(bar & 1) || (bar & ~3u) == 0 || (bar & ~3u) > 0xffe0) {
		ksnprintf(err, errlen, "BAR0 0x%08x is not an assigned I/O window", bar);
		return -1;
	}
	n->bdf = bdf;
	n->io = (uint16_t)(bar & ~3u);
	uint16_t cmd = pci_read16(bdf, PCI_COMMAND);
	if (!(cmd & PCI_CMD_IO))
		pci_write16(bdf, PCI_COMMAND, (uint16_t)(cmd | PCI_CMD_IO));

	/* Reset: a read of the reset port, then ISR.RST (NE2000 ASIC). */
	wr(n, NE_RESET, rd(n, NE_RESET));
	if (wait_isr(n, ISR_RST)) {
		ksnprintf(err, errlen, "no reset acknowledge at I/O 0x%x", n->io);
		return -1;
	}
	wr(n, NE_ISR, 0xff);

	/* The initialisation sequence of the DP8390 datasheet ("Initialization
	 * Procedure"), stopped and in internal loopback until started. */
	wr(n, NE_CR, CR_STP | CR_RD_ABORT);
	wr(n, NE_DCR, DCR_FT1 | DCR_LS);
	wr(n, NE_RBCR0, 0);
	wr(n, NE_RBCR1, 0);
	wr(n, NE_RCR, RCR_AB);
	wr(n, NE_TCR, TCR_LOOP_INTERNAL);
	wr(n, NE_TPSR, TX_PAGE);
	wr(n, NE_PSTART, RX_START);
	wr(n, NE_BNRY, RX_START);
	wr(n, NE_PSTOP, RX_STOP);
	wr(n, NE_ISR, 0xff);
	wr(n, NE_IMR, 0); /* never an interrupt */

	/* The station address: PROM bytes 0-11, each address byte twice. */
	uint8_t prom[12];
	dma_read(n, 0, prom, sizeof(prom));
	for (int i = 0; i < 6; i++)
		n->mac[i] = prom[2 * i];

	wr(n, NE_CR, CR_PAGE1 | CR_STP | CR_RD_ABORT);
	for (int i = 0; i < 6; i++)
		wr(n, NE_P1_PAR0 + (unsigned)i, n->mac[i]);
	for (int i = 0; i < 8; i++)
		wr(n, NE_P1_MAR0 + (unsigned)i, 0); /* no multicast */
	n->next_rx = RX_START + 1;
	wr(n, NE_P1_CURR, n->next_rx);

	wr(n, NE_CR, CR_STA | CR_RD_ABORT);
	wr(n, NE_ISR, 0xff);
	wr(n, NE_TCR, 0); /* normal transmission */
	if ((n->mac[0] & 1) || !(n->mac[0] | n->mac[1] | n->mac[2] | n->mac[3] | n->mac[4] | n->mac[5])) {
		ksnprintf(err, errlen, "no usable station address in the PROM");
		return -1;
	}
	return 0;
}

int ne2k_send(struct ne2k *n, const void *frame, size_t len)
{
	if (len < 14 || len > ETH_FRAME_MAX)
		return -1;
	/* One frame at a time: the previous one has left (Bochs reports a
	 * transmission started while one is in progress). */
	for (unsigned i = 0; rd(n, NE_CR) & CR_TXP; i++)
		if (i >= WAIT_POLLS)
			return -1;
	uint16_t count = (uint16_t)(len < 60 ? 60 : len);
	dma_setup(n, TX_PAGE << 8, count, CR_RD_WRITE);
	const uint8_t *p = frame;
	for (size_t i = 0; i < count; i++)
		wr(n, NE_DATA, i < len ? p[i] : 0);
	int r = wait_isr(n, ISR_RDC);
	wr(n, NE_ISR, ISR_RDC);
	if (r)
		return -1;
	wr(n, NE_TPSR, TX_PAGE);
	wr(n, NE_TBCR0, (uint8_t)count);
	wr(n, NE_TBCR1, (uint8_t)(count >> 8));
	wr(n, NE_ISR, ISR_PTX | ISR_TXE);
	wr(n, NE_CR, CR_STA | CR_TXP | CR_RD_ABORT);
	r = wait_isr(n, ISR_PTX | ISR_TXE);
	uint8_t isr = rd(n, NE_ISR);
	wr(n, NE_ISR, ISR_PTX | ISR_TXE);
	return r || !(isr & ISR_PTX) ? -1 : 0;
}

/* Empties the ring: everything up to the card's current page is dropped. */
static void ring_reset(struct ne2k *n, uint8_t curr)
{
	n->next_rx = curr;
	wr(n, NE_BNRY, (uint8_t)(curr == RX_START ? RX_STOP - 1 : curr - 1));
}

int ne2k_recv(struct ne2k *n, void *buf, size_t cap)
{
	wr(n, NE_CR, CR_PAGE1 | CR_STA | CR_RD_ABORT);
	uint8_t curr = rd(n, NE_P1_CURR);
	wr(n, NE_CR, CR_STA | CR_RD_ABORT);
	if (curr < RX_START || curr >= RX_STOP) {
		/* Not a value this driver's ring allows: start it afresh. */
		ring_reset(n, RX_START);
		wr(n, NE_CR, CR_PAGE1 | CR_STA | CR_RD_ABORT);
		wr(n, NE_P1_CURR, RX_START);
		wr(n, NE_CR, CR_STA | CR_RD_ABORT);
		return -1;
	}
	if (n->next_rx == curr)
		return 0;

	/* The 4-byte header the card writes before each frame (datasheet,
	 * "Storage Format"): receive status, next page, byte count (the
	 * frame and 4 more bytes: the CRC on a real card). */
	uint8_t hdr[4];
	dma_read(n, (uint16_t)(n->next_rx << 8), hdr, 4);
	unsigned count = hdr[2] | (unsigned)hdr[3] << 8;
	uint8_t next = hdr[1];
	/* The header comes from the wire's side of the card: check it all. */
	unsigned pages = (count + 4 + 255) / 256;
	unsigned expect = n->next_rx + pages;
	if (expect >= RX_STOP)
		expect -= RX_STOP - RX_START;
	if (!(hdr[0] & 1) || next < RX_START || next >= RX_STOP || count < 4 + 14 || count > 4 + ETH_FRAME_MAX + 4 ||
	    next != expect) {
		ring_reset(n, curr);
		return -1;
	}
	unsigned len = count - 4;
	if (len > ETH_FRAME_MAX)
		len = ETH_FRAME_MAX; /* a CRC the card kept: not frame data */
	if (len > cap)
		len = (unsigned)cap;
	/* The frame may wrap from the ring's end to its start. */
	uint16_t start = (uint16_t)((n->next_rx << 8) + 4);
	unsigned first = (RX_STOP << 8) - start;
	if (first > len)
		first = len;
	dma_read(n, start, buf, (uint16_t)first);
	dma_read(n, RX_START << 8, (uint8_t *)buf + first, (uint16_t)(len - first));

	n->next_rx = next;
	/* BNRY trails the next frame by one page, so the card never
	 * overwrites a frame not read yet. */
	wr(n, NE_BNRY, (uint8_t)(next == RX_START ? RX_STOP - 1 : next - 1));
	wr(n, NE_ISR, ISR_PRX | ISR_OVW);
	return (int)len;
}
