/* pci.h - PCI configuration space through configuration mechanism #1
 * (ports 0xCF8/0xCFC, PCI Local Bus Specification 3.0, 3.2.2.3.2).
 * Shared by the hypervisor and the guest test kernels.
 *
 * A function is named by its BDF: bus << 8 | device << 3 | function.
 * CF8 is machine-wide state: the hypervisor touches configuration space
 * only at boot, before its guest runs, or restores CF8 afterwards. */
#ifndef LIB_PCI_H
#define LIB_PCI_H

#include <stdint.h>
#include "lib/x86.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_ENABLE (1u << 31)

#define PCI_BDF(bus, dev, fn) ((uint16_t)(((bus) << 8) | ((dev) << 3) | (fn)))
#define PCI_BUS(bdf) ((unsigned)(bdf) >> 8)
#define PCI_DEV(bdf) (((unsigned)(bdf) >> 3) & 0x1f)
#define PCI_FN(bdf) ((unsigned)(bdf) & 7)

/* Standard header registers (type 0). */
#define PCI_VENDOR_ID 0x00
#define PCI_COMMAND 0x04
#define PCI_CLASS_REV 0x08
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_ROM_BAR 0x30
#define PCI_INTERRUPT_LINE 0x3c

#define PCI_CMD_IO (1u << 0)
#define PCI_CMD_MEM (1u << 1)
#define PCI_CMD_MASTER (1u << 2)

static inline uint32_t pci_cfg_addr(uint16_t bdf, unsigned reg) { return PCI_ENABLE | (uint32_t)bdf << 8 | (reg & 0xfc); }

static inline uint32_t pci_read32(uint16_t bdf, unsigned reg)
{
	outl(PCI_CONFIG_ADDRESS, pci_cfg_addr(bdf, reg));
	return inl(PCI_CONFIG_DATA);
}

static inline void pci_write32(uint16_t bdf, unsigned reg, uint32_t v)
{
	outl(PCI_CONFIG_ADDRESS, pci_cfg_addr(bdf, reg));
	outl(PCI_CONFIG_DATA, v);
}

static inline uint16_t pci_read16(uint16_t bdf, unsigned reg)
{
	return (uint16_t)(pci_read32(bdf, reg) >> (8 * (reg & 2)));
}

static inline void pci_write16(uint16_t bdf, unsigned reg, uint16_t v)
{
	outl(PCI_CONFIG_ADDRESS, pci_cfg_addr(bdf, reg));
	outw((uint16_t)(PCI_CONFIG_DATA + (reg & 2)), v);
}

#endif
