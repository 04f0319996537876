/* sec.h - the security-function interface (issue 14,
 * docs/security-functions.md).
 *
 * A security function is compiled into Nestor and enabled per level by an
 * option.  It watches PCI functions of the machine its level sees; for
 * each it is asked about every access its guest makes to the function's
 * configuration space (ports 0xCF8/0xCFC; Bochs' i440FX has no MMCONFIG)
 * and I/O BARs, and told about accesses to its memory BARs.  It answers:
 *
 *   SEC_ALLOW    the access reaches the device;
 *   SEC_EMULATE  the function did it: a read returns a.value, a write is
 *                consumed;
 *   SEC_BLOCK    as if nothing were there: reads all ones, writes dropped.
 *
 * Every block is logged (level, device, register, value) by this layer,
 * the first SEC_LOG_LIMIT of them line by line, then counted; the end of
 * the run prints the count.
 *
 * Composition across levels needs no code: each level's functions act on
 * the accesses of its own guest through that level's own I/O bitmaps and
 * EPT, and a level's own accesses go through the level below like any
 * guest's - so each level sees only what the levels below let through.
 *
 * Memory BARs: SEC_MEM_ABSENT (the guard) leaves them out of the EPT: reads
 * all ones, writes dropped, accesses logged; SEC_MEM_TRAP (the driver
 * check) traps them: every load and store of the guest is decided on one
 * at a time, until the function maps the BAR directly (sec_map_direct). */
#ifndef SEC_SEC_H
#define SEC_SEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vcpu;

enum sec_verdict { SEC_ALLOW, SEC_EMULATE, SEC_BLOCK };
enum sec_space { SEC_PCI_CONFIG, SEC_PORT, SEC_MEMORY };

struct sec_access {
	enum sec_space space;
	bool write;
	unsigned size;   /* bytes */
	unsigned level;  /* the level that made it (1: the first guest) */
	uint16_t bdf;    /* the PCI function (lib/pci.h) */
	int bar;         /* SEC_PORT, SEC_MEMORY: which BAR (6: the ROM) */
	uint32_t reg;    /* SEC_PCI_CONFIG: register; else the offset in the BAR */
	uint64_t addr;   /* SEC_PORT: the port; SEC_MEMORY: the physical address */
	uint32_t value;  /* a write's value; a read's with SEC_EMULATE */
};

struct sec_function {
	const char *name; /* its option's name, e.g. "guard" */
	/* Decides on a.  A SEC_MEMORY access of size 0 is one it is only
	 * told of, already refused (non-existent for the guest): to absent
	 * memory, by a level above the guest, or by an instruction the layer
	 * does not decode on a trapped page (anything but MOV/MOVZX). */
	enum sec_verdict (*decide)(const struct sec_function *f, struct vcpu *v, struct sec_access *a);
};

/* How the memory BARs of a watched function are treated. */
enum sec_mem_mode { SEC_MEM_ABSENT, SEC_MEM_TRAP };

/* Watch PCI function bdf for f, at boot before the guest is set up: its
 * BARs are sized now, its configuration space and I/O ports exit, its
 * memory follows mode.  Returns 0 or -1 with a message in err. */
int sec_watch(const struct sec_function *f, uint16_t bdf, enum sec_mem_mode mode, char *err, size_t errlen);

/* From f's decide(): memory BAR `bar` of bdf is mapped for the guest from
 * now on, without exits.  Returns 0, or -1 (logged) when it cannot be. */
int sec_map_direct(const struct sec_function *f, struct vcpu *v, uint16_t bdf, int bar);

/* "BB:DD.F" -> bdf; -1 if malformed. */
int sec_parse_bdf(const char *s, size_t len, uint16_t *bdf);

/* boot/main.c, before vm_run(): the functions the command line enables. */
void sec_init(void);

#endif
