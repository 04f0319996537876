/* dma.c - device DMA while a copy-on-write snapshot is kept.
 *
 * A device writes memory without going through the EPT, so a page a
 * bus-master transfer fills would change unsaved.  Nestor passes devices
 * through, but it can see every transfer start: on a PCI IDE controller
 * (the one a PC and Bochs have) a bus-master transfer starts when the
 * Start bit of a channel's command register is written (Programming
 * Interface for Bus Master IDE Controller, rev. 1.0, section 2).  While
 * copy-on-write snapshots are kept, writes to the two command registers
 * exit; one that starts a transfer into memory first saves every page its
 * PRD table names.  Transfers already running when the snapshot is taken
 * are saved the same way.  Legacy ISA DMA (8237) is not followed: no
 * device in the configurations Nestor is tested on uses it. */
#include "lib/log.h"
#include "lib/x86.h"
#include "snap/internal.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "vmx/vcpu.h"

#define PCI_CONFIG_ADDR 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_CLASS_IDE 0x0101
#define PCI_BAR4 0x20
#define BM_CMD_START (1u << 0)
#define BM_CMD_TO_MEMORY (1u << 3) /* "read" in the spec: the device writes memory */
#define BM_STATUS_ACTIVE (1u << 0)
#define PRD_EOT (1u << 31)
#define PRD_MAX 512 /* entries followed in one table */

/* Configuration space through mechanism #1; the guest's address register
 * is put back (it owns the port: nothing of it runs meanwhile). */
static uint32_t pci_read(unsigned dev, unsigned fn, unsigned off)
{
	uint32_t saved = inl(PCI_CONFIG_ADDR);
	outl(PCI_CONFIG_ADDR, 0x80000000u | dev << 11 | fn << 8 | (off & 0xfc));
	uint32_t v = inl(PCI_CONFIG_DATA);
	outl(PCI_CONFIG_ADDR, saved);
	return v;
}

/* The bus-master registers of the first IDE controller on bus 0, or 0. */
static uint16_t find_bus_master(void)
{
	for (unsigned dev = 0; dev < 32; dev++)
		for (unsigned fn = 0; fn < 8; fn++) {
			uint32_t id = pci_read(dev, fn, 0);
			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break;
				continue;
			}
			uint32_t class = pci_read(dev, fn, 8);
			if (class >> 16 != PCI_CLASS_IDE || !(class & 0x8000)) /* prog-if bit 7: bus master */
				continue;
			uint32_t bar = pci_read(dev, fn, PCI_BAR4);
			if ((bar & 1) && (bar & 0xfff0))
				return (uint16_t)(bar & 0xfff0);
		}
	return 0;
}

/* Saves the pages the channel's PRD table (at prd) lets the device write. */
static void save_targets(struct vm *vm, uint32_t prd)
{
	for (unsigned i = 0; i < PRD_MAX; i++) {
		uint32_t e[2];
		if (!gpa_read(vm, (prd & ~3u) + 8ull * i, e, sizeof(e)))
			return;
		uint64_t len = e[1] & 0xffff ? e[1] & 0xffff : 0x10000;
		if (gpa_is_ram(vm, e[0] & ~1u, len))
			guest_mem_before_write(vm, e[0] & ~1u, len);
		if (e[1] & PRD_EOT)
			return;
	}
}

static void set_exits(struct vm *vm, uint16_t port, bool on)
{
	uint8_t *bm = port < 0x8000 ? vm->io_bitmap_a : vm->io_bitmap_b;
	unsigned bit = port & 0x7fff;
	if (on)
		bm[bit / 8] |= (uint8_t)(1u << (bit % 8));
	else
		bm[bit / 8] &= (uint8_t)~(1u << (bit % 8));
	__atomic_add_fetch(&vm->watch.gen, 1, __ATOMIC_SEQ_CST); /* copies merged with it are stale */
	bitmaps_changed_below(vm);
}

void snap_dma_watch(struct vm *vm, bool on)
{
	struct snap_state *st = vm->snap;
	if (on) {
		st->bm_port = find_bus_master();
		if (!st->bm_port)
			return;
		for (unsigned ch = 0; ch < 2; ch++) {
			uint16_t base = st->bm_port + 8 * ch;
			set_exits(vm, base, true);
			/* A transfer into memory already under way. */
			if ((inb(base + 2) & BM_STATUS_ACTIVE) && (inb(base) & BM_CMD_TO_MEMORY))
				save_targets(vm, inl(base + 4));
		}
	} else if (st->bm_port) {
		set_exits(vm, st->bm_port, false);
		set_exits(vm, st->bm_port + 8, false);
		st->bm_port = 0;
	}
}

void snap_io_out(struct vcpu *v, uint16_t port, uint32_t value)
{
	struct snap_state *st = v->vm->snap;
	if (!st || !st->bm_port || (port != st->bm_port && port != st->bm_port + 8))
		return;
	/* The command register is the low byte, whatever the access size. */
	if ((value & BM_CMD_START) && (value & BM_CMD_TO_MEMORY) && snap_cow_active(v->vm))
		save_targets(v->vm, inl(port + 4));
}
