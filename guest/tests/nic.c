/* nic.c - a minimal driver for Bochs' e1000 (Intel 82540EM), bringing it
 * up as Linux's e1000 does in outline (8254x SDM 14.3-14.6): mask the
 * interrupts, stop the receiver and transmitter, reset, read the MAC the
 * reset loaded from the EEPROM, set up one receive and one transmit ring
 * in the kernel's own memory, enable them.  It is the guest-kernel half of
 * the driver check's test (drvcheck=, docs/security-functions.md): the
 * good bring-up must look the same with and without a checker below;
 * nic_mode= (early_ims, bad_ring, io_window, odd_insn) makes it go wrong in one way each (then a checker blocks the
 * device: it reads all ones).  Nothing is ever sent or received (the ring
 * tails stay at their heads). */
#include "guest/test.h"
#include "guest/tests/pci.h"
#include "lib/pci.h"
#include "lib/string.h"
#include "lib/e1000.h"
#include "lib/x86.h"


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

	if (!strcmp(mode, "odd_insn")) /* a read-modify-write of STATUS: no driver's access */
		__asm__ volatile("lock orl $0, (%0)" ::"r"(regs + E1000_STATUS / 4) : "memory");
	if (!strcmp(mode, "early_ims"))
		wr(E1000_IMS, ~0u); /* unmasking interrupts before any reset */
	if (!strcmp(mode, "io_window") && pci_opts.io) {
		outl((uint16_t)pci_opts.io, E1000_RCTL); /* IOADDR aimed at RCTL: every register through ports */
		say("io window: RCTL %08x", inl((uint16_t)(pci_opts.io + 4)));
	}
	wr(E1000_IMC, ~0u);
	wr(E1000_RCTL, 0);
	wr(E1000_TCTL, E1000_TCTL_PSP);
	say("status before reset: %08x", rd(E1000_STATUS) & 0xffff0fff); /* bits 15:12 (PCI-X, 66 MHz) vary by model */
	wr(E1000_CTRL, rd(E1000_CTRL) | E1000_CTRL_RST);
	unsigned spins = 0;
	while ((rd(E1000_CTRL) & E1000_CTRL_RST) && spins < 1000)
		spins++;
	wr(E1000_IMC, ~0u);
	say("reset done: %s, MAC %08x %08x", spins < 1000 ? "yes" : "no", rd(E1000_RAL0), rd(E1000_RAH0));

	uint64_t rx = (uint64_t)rx_ring, tx = (uint64_t)tx_ring;
	if (!strcmp(mode, "bad_ring"))
		rx = 0xfff00000; /* the BIOS ROM: not memory of ours */
	wr(E1000_TDBAL, (uint32_t)tx);
	wr(E1000_TDBAH, (uint32_t)(tx >> 32));
	wr(E1000_TDLEN, sizeof(tx_ring));
	wr(E1000_TDH, 0);
	wr(E1000_TDT, 0);
	wr(E1000_RDBAL, (uint32_t)rx);
	wr(E1000_RDBAH, (uint32_t)(rx >> 32));
	wr(E1000_RDLEN, sizeof(rx_ring));
	wr(E1000_RDH, 0);
	wr(E1000_RDT, 0);
	wr(E1000_TCTL, E1000_TCTL_EN | E1000_TCTL_PSP);
	wr(E1000_RCTL, E1000_RCTL_EN);
	/* After the grant the registers are the device's own. */
	uint32_t rctl = rd(E1000_RCTL), tctl = rd(E1000_TCTL), rdlen = rd(E1000_RDLEN);
	say("enabled: RCTL %08x TCTL %08x RDLEN %08x", rctl, tctl, rdlen);
	bool blocked = rctl == ~0u && tctl == ~0u;
	say("device %s", blocked ? "blocked (reads all ones)" : "answers");
	if (pci_opts.nic_blocked != 2)
		CHECK(blocked == (pci_opts.nic_blocked == 1), "the device %s", blocked ? "is blocked" : "answers");
	/* Quiet again: receiver and transmitter off, interrupts masked. */
	wr(E1000_RCTL, 0);
	wr(E1000_TCTL, 0);
	wr(E1000_IMC, ~0u);
}
