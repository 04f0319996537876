/* checks.h - the software VM-entry checks of VMCS12 (SDM 26.2) and the
 * EPT12 walk (SDM 28.3.2), as pure functions of their inputs: no VMCS, no
 * guest memory access except through the callback, no global state.  The
 * hypervisor calls them with the virtual CPU's capabilities; host fuzzers
 * (tests/fuzz/) call them with random inputs. */
#ifndef NESTED_CHECKS_H
#define NESTED_CHECKS_H

#include <stdbool.h>
#include <stdint.h>
#include "nested/nested.h"
#include "nested/vmcs12.h"

/* What the checks depend on besides VMCS12: the virtual CPU's capability
 * MSRs and its physical-address width. */
struct check_env {
	const struct nested_caps *caps;
	unsigned maxphyaddr;
};

/* SDM 26.2.1: controls.  NULL when valid, else the rule broken (VMfailValid 7). */
const char *vmcs12_check_controls(const struct vmcs12 *c, const struct check_env *e);
/* SDM 26.2.2-26.2.4: host state.  NULL or the rule broken (VMfailValid 8). */
const char *vmcs12_check_host(const struct vmcs12 *c, const struct check_env *e);
/* An IA32_S_CET value WRMSR and VM entry accept besides canonicality: no
 * reserved bit (9:6), not both SUPPRESS (10) and TRACKER (11). */
bool nested_cet_control_ok(uint64_t s_cet);
/* An EPT pointer the virtual CPU accepts (memory type, walk length, A/D,
 * reserved bits). */
bool vmcs12_eptp_valid(uint64_t eptp, const struct check_env *e);

/* One EPT leaf: the address a guest-physical address maps to. */
struct ept_leaf {
	uint64_t addr;
	unsigned rights; /* bit 0 R, 1 W, 2 X, intersected along the walk */
	unsigned mtype;  /* memory type, bit 3: ignore PAT */
	unsigned shift;  /* log2 of the page size */
	/* The entries the walk used, PML4E first, and where they are (the
	 * owner's physical addresses): n of them, the last the leaf. */
	unsigned n;
	uint64_t entry[4], entry_pa[4];
};
enum { EPT_WALK_OK = 0, EPT_WALK_NOT_PRESENT = 1, EPT_WALK_MISCONFIG = 2 };
/* Reads the 8-byte entry at a physical address of the EPT's owner; false
 * when it cannot (the walk then sees a not-present entry). */
typedef bool (*ept_read_fn)(void *ctx, uint64_t pa, uint64_t *entry);
/* Walks a 4-level EPT like the CPU: EPT_WALK_OK with the leaf,
 * EPT_WALK_NOT_PRESENT (out->rights: what was granted until then), or
 * EPT_WALK_MISCONFIG. */
int ept12_walk(ept_read_fn read, void *ctx, uint64_t eptp, uint64_t gpa, const struct check_env *e,
	       struct ept_leaf *out);

#endif
