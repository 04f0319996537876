/* nic.c - a minimal driver for Bochs' e1000 (Intel 82540EM), bringing it
 * up as Linux's e1000 does in outline (8254x SDM 14.3-14.6): mask the
 * interrupts, stop the receiver and transmitter, reset, read the MAC the
 * reset loaded from the EEPROM, set up one receive and one transmit ring
 * in the kernel's own memory, enable them.  It is the guest-kernel half of
 * the driver check's test (drvcheck=, docs/security-functions.md): the
 * good bring-up must look the same with and without a checker below;
 * nic_mode= makes it go wrong in one way each (then a checker blocks the
 * device: it reads all ones).  Nothing is ever sent or received (the ring
 * tails stay at their heads). */
#include "guest/test.h"
#include "guest/tests/pci.h"
#include "lib/pci.h"
#include "lib/string.h"
#include "lib/x86.h"

#define CTRL 0x0000
#define STATUS 0x0008
#define IMS 0x00d0
#define IMC 0x00d8
#define RCTL 0x0100
#define TCTL 0x0400
#define RDBAL 0x2800
#define RDBAH 0x2804
#define RDLEN 0x2808
#define RDH 0x2810
#define RDT 0x2818
#define TDBAL 0x3800
#define TDBAH 0x3804
#define TDLEN 0x3808
#define TDH 0x3810
#define TDT 0x3818
#define RAL0 0x5400
#define RAH0 0x5404
#define CTRL_RST (1u << 26)
#define RCTL_EN (1u << 1)
#define TCTL_EN (1u << 1)
#define TCTL_PSP (1u << 3)

/* Eight 16-byte descriptors each: the smallest ring (RDLEN and TDLEN are
 * multiples of 128 bytes, SDM 13.4.28). */
static uint8_t rx_ring[128] __attribute__((aligned(128)));
static uint8_t tx_ring[128] __attribute__((aligned(128)));

static volatile uint32_t *regs;

static uint32_t rd(unsigned r) { return regs[r / 4]; }
static void wr(unsigned r, uint32_t v) { regs[r / 4] = v; }

TEST(nic, bring_up)
{
	bool ok = pci_opts.dev[0] && pci_opts.mem;
	if (!ok) {
		say("no pci_dev= and pci_mem=: nothing to do");
		return;
	}
	const char *mode = pci_opts.nic_mode[0] ? pci_opts.nic_mode : "good";
	uint16_t bdf = PCI_BDF(0, 2, 0);
	regs = (volatile uint32_t *)pci_opts.mem;
	say("mode %s: id %08x", mode, pci_read32(bdf, PCI_VENDOR_ID));
	pci_write16(bdf, PCI_COMMAND, (uint16_t)(pci_read16(bdf, PCI_COMMAND) | PCI_CMD_MEM | PCI_CMD_MASTER));

	if (!strcmp(mode, "early_ims"))
		wr(IMS, ~0u); /* unmasking interrupts before any reset */
	if (!strcmp(mode, "io_window") && pci_opts.io) {
		outl((uint16_t)pci_opts.io, RCTL); /* IOADDR aimed at RCTL: every register through ports */
		say("io window: RCTL %08x", inl((uint16_t)(pci_opts.io + 4)));
	}
	wr(IMC, ~0u);
	wr(RCTL, 0);
	wr(TCTL, TCTL_PSP);
	say("status before reset: %08x", rd(STATUS) & 0xffff0fff); /* bits 15:12 (PCI-X, 66 MHz) vary by model */
	wr(CTRL, rd(CTRL) | CTRL_RST);
	unsigned spins = 0;
	while ((rd(CTRL) & CTRL_RST) && spins < 1000)
		spins++;
	wr(IMC, ~0u);
	say("reset done: %s, MAC %08x %08x", spins < 1000 ? "yes" : "no", rd(RAL0), rd(RAH0));

	uint64_t rx = (uint64_t)rx_ring, tx = (uint64_t)tx_ring;
	if (!strcmp(mode, "bad_ring"))
		rx = 0xfff00000; /* the BIOS ROM: not memory of ours */
	wr(TDBAL, (uint32_t)tx);
	wr(TDBAH, (uint32_t)(tx >> 32));
	wr(TDLEN, sizeof(tx_ring));
	wr(TDH, 0);
	wr(TDT, 0);
	wr(RDBAL, (uint32_t)rx);
	wr(RDBAH, (uint32_t)(rx >> 32));
	wr(RDLEN, sizeof(rx_ring));
	wr(RDH, 0);
	wr(RDT, 0);
	wr(TCTL, TCTL_EN | TCTL_PSP);
	wr(RCTL, RCTL_EN);
	/* After the grant the registers are the device's own. */
	uint32_t rctl = rd(RCTL), tctl = rd(TCTL), rdlen = rd(RDLEN);
	say("enabled: RCTL %08x TCTL %08x RDLEN %08x", rctl, tctl, rdlen);
	bool blocked = rctl == ~0u && tctl == ~0u;
	say("device %s", blocked ? "blocked (reads all ones)" : "answers");
	if (pci_opts.nic_blocked != 2)
		CHECK(blocked == (pci_opts.nic_blocked == 1), "the device %s", blocked ? "is blocked" : "answers");
	/* Quiet again: receiver and transmitter off, interrupts masked. */
	wr(RCTL, 0);
	wr(TCTL, 0);
	wr(IMC, ~0u);
}
