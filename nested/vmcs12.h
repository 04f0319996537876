/* vmcs12.h - the VMCS that a guest hypervisor (L1) sees: VMCS12.
 *
 * Architecturally a VMCS region's format is the implementation's choice and
 * software may only use VMREAD/VMWRITE on it.  Nestor's format, in L1's
 * memory (4 KiB region):
 *   offset 0   revision identifier (bits 30:0) and shadow-VMCS indicator (31)
 *   offset 4   VMX-abort indicator
 *   offset 8   launch state (0 clear, 1 launched) and a format tag
 *   offset 64  one 8-byte slot per field, in the order of vmx/vmcs_fields.h
 * The current VMCS12 is cached in Nestor's memory and written back on
 * VMCLEAR, on VMPTRLD of another VMCS and on VMXOFF. */
#ifndef NESTED_VMCS12_H
#define NESTED_VMCS12_H

#include <stdbool.h>
#include <stdint.h>
#include "vmx/vmcs.h"

enum {
#define X(name, enc) V12_##name,
	VMCS_FIELDS(X)
#undef X
	V12_NFIELDS
};

#define VMCS12_FORMAT_TAG 0x4e53u /* "NS" */
#define VMCS12_FIELDS_OFFSET 64

struct vmcs12 {
	uint32_t revision;
	uint32_t abort;
	uint32_t launch_state;
	uint32_t format;
	uint64_t reserved[6];
	uint64_t f[V12_NFIELDS];
};
_Static_assert(sizeof(struct vmcs12) <= 4096, "VMCS12 must fit a 4 KiB region");
_Static_assert(__builtin_offsetof(struct vmcs12, f) == VMCS12_FIELDS_OFFSET, "VMCS12 layout");

/* Builds the encoding index (once, at boot). */
void vmcs12_init(void);

/* Index of a field encoding in f[] (the "high" half of a 64-bit field maps
 * to the field itself), or -1 when the encoding is not a field of the
 * virtual CPU (VMREAD/VMWRITE then fail with error 12). */
int vmcs12_index(uint32_t enc);

/* Whether a field exists for L1: it has an index, and the feature it
 * belongs to is offered (SDM 24.11.2 / appendix B: e.g. the VPID field
 * exists only where "enable VPID" may be 1).  VMREAD/VMWRITE of a field
 * that does not exist fail with error 12.  vmcs12_set_features() sets the
 * offered features once at boot (nested_init); fields stay indexed either
 * way, so that Nestor's own code may keep them. */
struct nested_caps;
void vmcs12_set_features(const struct nested_caps *c);
bool vmcs12_field_exists(uint32_t enc);

/* VMREAD/VMWRITE semantics (SDM 30.3): a read returns the field zero-
 * extended (the upper half for a "high" access); a write keeps the bits the
 * field holds (16, 32 or 64; 32 for a "high" access, into the upper half). */
uint64_t vmcs12_read(const struct vmcs12 *c, uint32_t enc);
void vmcs12_write(struct vmcs12 *c, uint32_t enc, uint64_t val);
/* The same on one field's 8-byte slot (a VMCS12 in memory, e.g. the shadow
 * VMCS an L2 reads through VMCS shadowing): the value read, the new slot. */
uint64_t vmcs12_slot_read(uint64_t slot, uint32_t enc);
uint64_t vmcs12_slot_write(uint64_t slot, uint32_t enc, uint64_t val);

/* Highest field index (bits 9:1 of an encoding) of the virtual CPU, for
 * IA32_VMX_VMCS_ENUM. */
unsigned vmcs12_max_index(void);

/* Direct access by name for Nestor's own code: V12(c, GUEST_RIP). */
#define V12(c, name) ((c)->f[V12_##name])

#endif
