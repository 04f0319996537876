/* pci.c - what a guest finds of the PCI bus, and what it can do to one
 * function through every path to it: configuration space (mechanism #1,
 * including its odd corners), its I/O ports (IN/OUT and string I/O) and
 * its memory BAR (loads, stores, string stores).
 *
 * A device a Nestor guards (guard=, docs/security-functions.md) must be
 * exactly as on the machine without it, so the guard's test runs this
 * suite on bare Bochs without the device and at depths 1-3 with it, and
 * compares; the same suite with the device and no guard checks that
 * Nestor passes it through unchanged.  The function, its ports and its
 * memory come from the command line (pci_dev=, pci_io=, pci_mem=). */
#include "guest/test.h"
#include "guest/tests/pci.h"
#include "lib/pci.h"
#include "lib/string.h"
#include "lib/x86.h"

struct pci_opts pci_opts = { .present = 2, .nic_blocked = 2 };

static uint16_t target(bool *ok)
{
	const char *s = pci_opts.dev;
	unsigned v[3] = { 0, 0, 0 }, k = 0;
	*ok = false;
	for (; *s; s++) {
		char c = *s;
		if (c == ':' || c == '.') {
			if (++k > 2)
				return 0;
			continue;
		}
		unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 99;
		if (d > 15)
			return 0;
		v[k] = v[k] * 16 + d;
	}
	*ok = k == 2 && v[1] < 32 && v[2] < 8;
	return PCI_BDF(v[0], v[1], v[2]);
}

/* Bus 0 as an OS scans it: function 0 first, the others only for a
 * multi-function device (header type bit 7). */
TEST(pci, enumerate)
{
	bool ok;
	uint16_t want = target(&ok);
	bool found = false;
	unsigned n = 0;
	for (unsigned dev = 0; dev < 32; dev++) {
		for (unsigned fn = 0; fn < 8; fn++) {
			uint16_t bdf = PCI_BDF(0, dev, fn);
			uint32_t id = pci_read32(bdf, PCI_VENDOR_ID);
			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break;
				continue;
			}
			uint32_t cls = pci_read32(bdf, PCI_CLASS_REV), hdr = pci_read32(bdf, 0x0c);
			say("00:%02x.%x %04x:%04x class %06x rev %02x header %02x", dev, fn, id & 0xffff, id >> 16, cls >> 8,
			    cls & 0xff, (hdr >> 16) & 0xff);
			n++;
			found |= ok && bdf == want;
			if (fn == 0 && !(hdr & (0x80u << 16)))
				break;
		}
	}
	say("%u functions", n);
	if (ok && pci_opts.present != 2)
		CHECK(found == (pci_opts.present == 1), "%s %s", pci_opts.dev, found ? "is there" : "is not there");
}

static void show_config(uint16_t bdf, const char *when)
{
	say("%s: id %08x command/status %08x class %08x BAR0 %08x BAR1 %08x ROM %08x irq %08x", when,
	    pci_read32(bdf, 0x00), pci_read32(bdf, 0x04), pci_read32(bdf, 0x08), pci_read32(bdf, 0x10),
	    pci_read32(bdf, 0x14), pci_read32(bdf, 0x30), pci_read32(bdf, 0x3c));
}

/* Every way to its configuration space: dword, word and byte data ports,
 * an unaligned dword, CF8's reserved bits 30:24 (ignored by the i440FX),
 * BAR sizing, and writes that would move or enable it. */
TEST(pci, config_space)
{
	bool ok;
	uint16_t bdf = target(&ok);
	if (!ok) {
		say("no pci_dev=: nothing to do");
		return;
	}
	show_config(bdf, "before");
	uint32_t a = pci_cfg_addr(bdf, 0);
	outl(PCI_CONFIG_ADDRESS, a);
	say("words %04x %04x bytes %02x %02x %02x %02x", inw(0xcfc), inw(0xcfe), inb(0xcfc), inb(0xcfd), inb(0xcfe),
	    inb(0xcff));
	say("dword at 0xcfe: %08x", inl(0xcfe));
	outl(PCI_CONFIG_ADDRESS, a | 0x7f000000);
	say("with CF8 bits 30:24 set: %08x", inl(0xcfc));
	/* Sizing BAR0 and BAR1 as a driver does, then putting them back. */
	for (unsigned reg = 0x10; reg <= 0x14; reg += 4) {
		uint32_t old = pci_read32(bdf, reg);
		pci_write32(bdf, reg, ~0u);
		uint32_t mask = pci_read32(bdf, reg);
		pci_write32(bdf, reg, old);
		say("BAR at 0x%02x: %08x, sizing mask %08x, after %08x", reg, old, mask, pci_read32(bdf, reg));
	}
	/* Enabling it and moving its interrupt line, then restoring. */
	uint32_t cmd = pci_read32(bdf, PCI_COMMAND), irq = pci_read32(bdf, PCI_INTERRUPT_LINE);
	pci_write16(bdf, PCI_COMMAND, (uint16_t)(cmd | 7));
	outl(PCI_CONFIG_ADDRESS, pci_cfg_addr(bdf, PCI_INTERRUPT_LINE));
	outb(0xcfc, 0x0b);
	show_config(bdf, "enabled");
	pci_write32(bdf, PCI_INTERRUPT_LINE, irq);
	pci_write16(bdf, PCI_COMMAND, (uint16_t)cmd);
	show_config(bdf, "after");
	outl(PCI_CONFIG_ADDRESS, 0);
}

/* Its ports: IN of each size, an OUT and the read after it, INS/OUTS. */
TEST(pci, ports)
{
	uint16_t base = (uint16_t)pci_opts.io;
	if (!base) {
		say("no pci_io=: nothing to do");
		return;
	}
	say("in: %02x %04x %08x", inb(base), inw(base), inl(base));
	/* For an e1000 the I/O window is IOADDR/IODATA: reading STATUS (8). */
	outl(base, 8);
	say("after out: %08x %08x", inl(base), inl((uint16_t)(base + 4)));
	uint32_t buf[4] = { 0x11111111, 0x22222222, 0x33333333, 0x44444444 };
	uint32_t *dst = buf;
	uint64_t n = 2;
	__asm__ volatile("cld; rep insl" : "+D"(dst), "+c"(n) : "d"(base) : "memory");
	say("insl: %08x %08x %08x", buf[0], buf[1], buf[2]);
	uint32_t out[2] = { 0, 8 };
	const uint32_t *src = out;
	n = 2;
	__asm__ volatile("cld; rep outsl" : "+S"(src), "+c"(n) : "d"(base) : "memory");
	say("after outsl: %08x", inl(base));
}

/* Its memory: loads of each size, a store and the load after it, a
 * string store, and a read-modify-write. */
TEST(pci, memory)
{
	if (!pci_opts.mem) {
		say("no pci_mem=: nothing to do");
		return;
	}
	volatile uint8_t *m = (volatile uint8_t *)pci_opts.mem;
	/* No 64-bit loads: the e1000's registers are 32-bit, and Bochs 2.7
	 * answers a 64-bit one with four bytes of its own stack. */
	say("loads: %02x %04x %08x %08x", m[0], *(volatile uint16_t *)(m + 2), *(volatile uint32_t *)(m + 8),
	    *(volatile uint32_t *)(m + 0x10));
	/* e1000: offset 0 is CTRL, 0xd0 IMS (writes set bits), 0xd8 IMC. */
	*(volatile uint32_t *)(m + 0xd8) = ~0u;
	say("after store: %08x %08x", *(volatile uint32_t *)(m + 0xd0), *(volatile uint32_t *)(m + 0x8));
	volatile uint8_t *d = m + 0x400;
	uint64_t n = 4;
	__asm__ volatile("cld; rep stosl" : "+D"(d), "+c"(n) : "a"(0) : "memory");
	say("after stos: %08x", *(volatile uint32_t *)(m + 0x400));
	__asm__ volatile("lock orl $0, (%0)" ::"r"(m + 0x8) : "memory");
	say("after lock or: %08x", *(volatile uint32_t *)(m + 0x8));
}
