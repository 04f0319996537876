/* drvcheck_e1000.c - the expected bring-up of Intel's 82540EM (8086:100e,
 * Bochs' e1000) by Linux's e1000 driver: the profile drvcheck.c runs.
 *
 * Recorded with drvcheck_trace=on (Linux 6.1's e1000, Bochs 2.7) and
 * checked against the 8254x Software Developer's Manual (register names
 * and bits below are its section 13); the phases are the driver's:
 *  1. "probe": the PCI core enables the function; the driver reads the
 *     status, masks every interrupt (IMC), stops the receiver and the
 *     transmitter (RCTL, TCTL with EN clear) and resets the MAC - through
 *     the I/O window on this chip (IOADDR = CTRL, IODATA with CTRL.RST),
 *     as Linux does, or through CTRL.  Nothing else: a write to, say, the
 *     interrupt mask set (IMS) before the reset is not a driver's.
 *  2. "set-up": after the reset, the EEPROM (bit-banged through EECD),
 *     the PHY (MDIC), the address filters and tables, flow control,
 *     statistics, interrupt masks and the descriptor rings - any register;
 *     enabling the transmitter checks the rings so far; enabling the
 *     receiver (RCTL.EN) checks both and grants the device.
 *  3. "granted": BAR0 is mapped directly.
 * In every phase: configuration writes of the command register (I/O,
 * memory, bus master, INTx disable), cache line and latency, interrupt
 * line, the BARs sized or put back where the firmware put them; the I/O
 * window only ever at CTRL (IOADDR = 0: elsewhere it reaches every
 * register round the check). */
#include <stddef.h>
#include "lib/e1000.h"
#include "sec/drvcheck.h"


enum { PROBE = 1, SETUP, GRANTED };

static const struct drv_rule common[] = {
	{ DRV_CONFIG, DRV_W, 0, 0, 0x04, 2, 0xfbf8, 0, "command register: I/O, memory, bus master, INTx disable" },
	{ DRV_CONFIG, DRV_W, 0, 0, 0x04, 4, 0xfbf8, 0, "command register (and status, write-1-to-clear)" },
	{ DRV_CONFIG, DRV_W, 0, 0, 0x0c, 2, 0, 0, "cache line size, latency timer" },
	{ DRV_CONFIG, DRV_W, DRV_BOOT_VALUE, 0, 0x10, 4, 0, 0, "BAR0 sized or put back" },
	{ DRV_CONFIG, DRV_W, DRV_BOOT_VALUE, 0, 0x14, 4, 0, 0, "BAR1 sized or put back" },
	{ DRV_CONFIG, DRV_W, 0, 0, 0x18, 16, 0, 0, "BAR2-5 (not implemented) sized" },
	{ DRV_CONFIG, DRV_W, 0, 0, 0x30, 4, 1, 0, "expansion ROM sized, not enabled" },
	{ DRV_CONFIG, DRV_W, 0, 0, 0x3c, 1, 0, 0, "interrupt line" },
	{ DRV_IO, DRV_W, 0, 0, E1000_IOADDR, 4, ~0u, E1000_CTRL, "I/O window at CTRL" },
};

static const struct drv_rule probe[] = {
	{ DRV_BAR0, DRV_R, 0, 0, E1000_CTRL, 4, 0, 0, "reads CTRL" },
	{ DRV_BAR0, DRV_R, 0, 0, E1000_STATUS, 4, 0, 0, "reads STATUS" },
	{ DRV_BAR0, DRV_R, 0, 0, E1000_EECD, 4, 0, 0, "reads EECD" },
	{ DRV_BAR0, DRV_R, 0, 0, E1000_ICR, 4, 0, 0, "reads (clears) ICR" },
	{ DRV_BAR0, DRV_W, 0, 0, E1000_IMC, 4, 0, 0, "masks interrupts" },
	{ DRV_BAR0, DRV_W, 0, 0, E1000_RCTL, 4, E1000_RCTL_EN, 0, "stops the receiver" },
	{ DRV_BAR0, DRV_W, 0, 0, E1000_TCTL, 4, E1000_TCTL_EN, 0, "stops the transmitter" },
	{ DRV_BAR0, DRV_RW, 0, 0, E1000_MANC, 4, 0, 0, "manageability control" },
	{ DRV_BAR0, DRV_W, 0, SETUP, E1000_CTRL, 4, E1000_CTRL_RST, E1000_CTRL_RST, "resets the MAC (CTRL.RST)" },
	{ DRV_IO, DRV_W, 0, SETUP, E1000_IODATA, 4, E1000_CTRL_RST, E1000_CTRL_RST, "resets the MAC through the I/O window" },
};

static const struct drv_rule setup[] = {
	{ DRV_BAR0, DRV_W, DRV_CHECK_DMA, GRANTED, E1000_RCTL, 4, E1000_RCTL_EN, E1000_RCTL_EN, "enables the receiver" },
	{ DRV_BAR0, DRV_W, DRV_CHECK_DMA, 0, E1000_TCTL, 4, E1000_TCTL_EN, E1000_TCTL_EN, "enables the transmitter" },
	{ DRV_BAR0, DRV_RW, 0, 0, 0, 0x20000, 0, 0, "sets the device up" },
	{ DRV_IO, DRV_RW, 0, 0, E1000_IODATA, 4, 0, 0, "CTRL through the I/O window" },
};

static const struct drv_rule granted[] = {
	{ DRV_IO, DRV_RW, 0, 0, E1000_IODATA, 4, 0, 0, "CTRL through the I/O window" },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct drv_phase phases[] = {
	{ "none", NULL, 0 },
	[PROBE] = { "probe", probe, N(probe) },
	[SETUP] = { "set-up", setup, N(setup) },
	[GRANTED] = { "granted", granted, N(granted) },
};

static const struct drv_dma dma[] = {
	{ E1000_RDBAL, E1000_RDBAH, E1000_RDLEN, "receive ring" },
	{ E1000_TDBAL, E1000_TDBAH, E1000_TDLEN, "transmit ring" },
};

const struct drv_profile drv_e1000 = {
	.name = "e1000 (82540EM)",
	.vendor = 0x8086,
	.device = 0x100e,
	.common = common,
	.n_common = N(common),
	.phases = phases,
	.n_phases = N(phases),
	.granted = GRANTED,
	.dma = dma,
	.n_dma = N(dma),
};
