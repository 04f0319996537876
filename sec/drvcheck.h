/* drvcheck.h - the driver check (issue 14, docs/security-functions.md):
 * a level watches its guest's driver bring a NIC up, and grants it the
 * device's registers only once the bring-up followed the device's
 * expected sequence.
 *
 * The expected sequence is data: a device profile is a list of phases,
 * each a set of rules (which register, which access, which values) and
 * the access that ends it.  drvcheck.c runs any profile; drvcheck_e1000.c
 * is the one for Intel's 82540EM (Bochs' e1000) as Linux's e1000 driver
 * brings it up. */
#ifndef SEC_DRVCHECK_H
#define SEC_DRVCHECK_H

#include <stdbool.h>
#include <stdint.h>

enum drv_space { DRV_CONFIG, DRV_BAR0, DRV_IO };
enum drv_access { DRV_R = 1, DRV_W = 2, DRV_RW = 3 };
enum drv_flags {
	/* A BAR's configuration register: the write must put back the
	 * address the firmware gave (or size it: all ones), never move it. */
	DRV_BOOT_VALUE = 1,
	/* The rings the driver gave so far must lie in the guest's RAM. */
	DRV_CHECK_DMA = 2,
};

/* One rule: an access to registers [reg, reg + len) of a space, of the
 * given kinds; for a write, (value & mask) must equal want.  next: the
 * phase this access moves to (0: stays). */
struct drv_rule {
	uint8_t space;  /* enum drv_space (DRV_IO: the I/O BAR) */
	uint8_t access; /* enum drv_access */
	uint8_t flags;  /* enum drv_flags */
	uint8_t next;   /* the next phase, or 0 */
	uint32_t reg, len;
	uint32_t mask, want; /* writes only; mask 0: any value */
	const char *what;
};

struct drv_phase {
	const char *name;
	const struct drv_rule *rules;
	unsigned n_rules;
};

/* A register that holds (half of) a DMA address: its writes must, with its
 * pair and the length register, describe memory of the guest. */
struct drv_dma {
	uint32_t lo, hi, len; /* BAR0 offsets of the base low/high and length */
	const char *what;
};

struct drv_profile {
	const char *name;
	uint16_t vendor, device;
	const struct drv_rule *common; /* rules of every phase, tried first */
	unsigned n_common;
	const struct drv_phase *phases; /* phase 1 first (0 is "stay") */
	unsigned n_phases;              /* phases[0] is unused */
	unsigned granted;               /* in this phase BAR0 is mapped directly */
	const struct drv_dma *dma;
	unsigned n_dma;
};

extern const struct drv_profile drv_e1000;

void drvcheck_init(void);

#endif
