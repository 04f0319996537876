/* guard.h - level 0's guard: PCI functions made non-existent for every
 * level above (issue 14, docs/security-functions.md).
 *
 * A device is guarded by the `guard=` option or by a driver of Nestor's
 * own (the debug NIC, net/) that calls guard_device() at boot, before the
 * guest is set up.  Its configuration space then reads all ones and drops
 * writes, its I/O and memory BARs (read at set-up) are non-existent, and
 * every attempt is logged. */
#ifndef SEC_GUARD_H
#define SEC_GUARD_H

#include <stddef.h>
#include <stdint.h>

/* Guard PCI function bdf (lib/pci.h) for owner (a short name for logs).
 * Returns 0, or -1 with a message in err (table full). */
int guard_device(uint16_t bdf, const char *owner, char *err, size_t errlen);

#endif
