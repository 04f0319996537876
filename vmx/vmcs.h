/* vmcs.h - VMCS field encodings (from the table in vmcs_fields.h), their
 * properties, and the VMX instructions. */
#ifndef VMX_VMCS_H
#define VMX_VMCS_H

#include <stdbool.h>
#include <stdint.h>
#include "vmx/vmcs_fields.h"

enum vmcs_field {
#define X(name, enc) VMCS_##name = enc,
	VMCS_FIELDS(X)
#undef X
};

/* SDM 24.11.2: properties encoded in a field's encoding. */
enum vmcs_width { VMCS_W16 = 0, VMCS_W64 = 1, VMCS_W32 = 2, VMCS_WNAT = 3 };
enum vmcs_type { VMCS_T_CONTROL = 0, VMCS_T_EXIT_INFO = 1, VMCS_T_GUEST = 2, VMCS_T_HOST = 3 };
static inline enum vmcs_width vmcs_field_width(uint32_t enc) { return (enc >> 13) & 3; }
static inline enum vmcs_type vmcs_field_type(uint32_t enc) { return (enc >> 10) & 3; }
static inline bool vmcs_field_is_high(uint32_t enc) { return enc & 1; }
static inline unsigned vmcs_field_index(uint32_t enc) { return (enc >> 1) & 0x1ff; }

/* Name of a field (NULL if unknown) and the number of fields in the table. */
const char *vmcs_field_name(uint32_t enc);
extern const uint32_t vmcs_all_fields[];
extern const unsigned vmcs_num_fields;

/* --- VMX instructions --------------------------------------------------
 * Each returns 0 on success, 1 for VMfailInvalid (CF=1), 2 for VMfailValid
 * (ZF=1; the error number is in VM_INSTRUCTION_ERROR). */
#define VMX_OK 0
#define VMX_FAIL_INVALID 1
#define VMX_FAIL_VALID 2

#define VMX_RESULT(insn, ...)                                                           \
	({                                                                              \
		uint8_t cf_, zf_;                                                       \
		__asm__ volatile(insn "; setc %0; setz %1" : "=qm"(cf_), "=qm"(zf_) __VA_ARGS__); \
		cf_ ? VMX_FAIL_INVALID : zf_ ? VMX_FAIL_VALID : VMX_OK;                  \
	})

static inline int vmxon(uint64_t phys) { return VMX_RESULT("vmxon %2", : "m"(phys) : "cc", "memory"); }
static inline int vmxoff(void) { return VMX_RESULT("vmxoff", : : "cc"); }
static inline int vmclear(uint64_t phys) { return VMX_RESULT("vmclear %2", : "m"(phys) : "cc", "memory"); }
static inline int vmptrld(uint64_t phys) { return VMX_RESULT("vmptrld %2", : "m"(phys) : "cc", "memory"); }
static inline uint64_t vmptrst(void)
{
	uint64_t p;
	__asm__ volatile("vmptrst %0" : "=m"(p));
	return p;
}

static inline uint64_t vmread(uint32_t enc)
{
	uint64_t v;
	__asm__ volatile("vmread %1, %0" : "=r"(v) : "r"((uint64_t)enc) : "cc");
	return v;
}
/* vmread that reports failure (for dumps of fields a CPU may not have). */
static inline int vmread_checked(uint32_t enc, uint64_t *v)
{
	return VMX_RESULT("vmread %3, %2", , "=r"(*v) : "r"((uint64_t)enc) : "cc");
}
/* Hot-path VMWRITE: the caller knows the field exists and is writable. */
static inline void vmwrite(uint32_t enc, uint64_t v)
{
	__asm__ volatile("vmwrite %1, %0" : : "r"((uint64_t)enc), "rm"(v) : "cc");
}
static inline int vmwrite_checked(uint32_t enc, uint64_t v)
{
	return VMX_RESULT("vmwrite %3, %2", : "r"((uint64_t)enc), "rm"(v) : "cc");
}

struct invept_desc {
	uint64_t eptp, reserved;
};
static inline int invept(uint64_t type, uint64_t eptp)
{
	struct invept_desc d = { eptp, 0 };
	return VMX_RESULT("invept %2, %3", : "m"(d), "r"(type) : "cc", "memory");
}
struct invvpid_desc {
	uint64_t vpid, gla;
};
static inline int invvpid(uint64_t type, uint16_t vpid, uint64_t gla)
{
	struct invvpid_desc d = { vpid, gla };
	return VMX_RESULT("invvpid %2, %3", : "m"(d), "r"(type) : "cc", "memory");
}

#endif
