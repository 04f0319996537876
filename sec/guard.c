/* guard.c - the guard: PCI functions made non-existent for every level
 * above this one (sec/guard.h, docs/security-functions.md).
 *
 * Its decision is always "block": the configuration space reads all ones
 * (vendor 0xffff: no function there, PCI 3.0 6.2.1) and drops writes, so
 * the guest can neither find nor move nor enable it; its I/O ports read
 * all ones and drop writes; its memory BARs are absent from the EPT.
 * What it cannot stop: the device's interrupts (no interrupt remapping
 * here) - a guarded device must be kept quiet by its owner, as level 0's
 * debug NIC is (polled, interrupts masked at the device). */
#include "boot/config.h"
#include "boot/platform.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/string.h"
#include "sec/drvcheck.h"
#include "sec/guard.h"
#include "sec/sec.h"

static enum sec_verdict guard_decide(const struct sec_function *f, struct vcpu *v, struct sec_access *a)
{
	return SEC_BLOCK;
}

static const struct sec_function guard = { "guard", guard_decide };

int guard_device(uint16_t bdf, const char *owner, char *err, size_t errlen)
{
	if (sec_watch(&guard, bdf, SEC_MEM_ABSENT, err, errlen))
		return -1;
	pr_info("guard: %02x:%02x.%x is %s's, non-existent for the levels above\n", bdf >> 8, (bdf >> 3) & 0x1f,
		bdf & 7, owner);
	return 0;
}

void sec_init(void)
{
	drvcheck_init();
	/* guard=BB:DD.F[,BB:DD.F...] */
	char err[160];
	for (const char *p = config.guard; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		uint16_t bdf;
		if (sec_parse_bdf(p, len, &bdf)) {
			pr_err("bad command line: guard=: '%.*s' is not a PCI address BB:DD.F (hexadecimal)\n", (int)len, p);
			machine_end(true);
		}
		if (guard_device(bdf, "the command line", err, sizeof(err))) {
			pr_err("bad command line: %s\n", err);
			machine_end(true);
		}
		p += len + (e ? 1 : 0);
	}
}
