/* vmcs_own.h - which VMCS is current, and which one a write belongs to.
 *
 * The CPU writes VMWRITEs into whatever VMCS was loaded last.  A vCPU of
 * Nestor owns several - VMCS01 for its guest, one per level whose VMX it
 * emulates (the VMCS that runs that level's guest), shadow VMCSs - and an
 * exit handler may load another one for a moment (a shadow VMCS, VMCS01 on
 * a reflected exit).  Writing one level's state into another level's VMCS
 * is how a guest escapes (issue 11, attacks 1 and 2), so:
 *  - every VMPTRLD goes through vmcs_load(), which records what is current;
 *  - a write meant for a given VMCS names it (vmcs_write_in());
 *  - before Nestor resumes a level, vmcs_check_running() verifies that the
 *    loaded VMCS is the one that runs that level, and ends the run with a
 *    report otherwise (never enters the wrong level);
 *  - in checked builds (NESTOR_CHECKED) the helpers that edit the running
 *    level's guest state assert it too (VMCS_ASSERT_RUNNING). */
#ifndef VMX_VMCS_OWN_H
#define VMX_VMCS_OWN_H

#include <stdbool.h>
#include <stdint.h>
#include "vmx/vcpu.h"

/* The VMCS that runs `level` (1 = our guest; above, the VMCS the level
 * below runs its guest in). */
static inline uint64_t vmcs_of_level(const struct vcpu *v, unsigned level)
{
	return level <= 1 ? v->vmcs_phys : v->lv[level - 1]->vmcs02_phys;
}

/* Makes `phys` the current VMCS; false (and nothing current) on failure.
 * Inline: most calls find it current already, or switch with one VMPTRLD. */
static inline bool vmcs_load(struct vcpu *v, uint64_t phys)
{
	if (v->loaded_vmcs == phys)
		return true;
	bool ok = vmptrld(phys) == VMX_OK;
	v->loaded_vmcs = ok ? phys : ~0ull;
	return ok;
}
/* VMCLEAR of one of our VMCSs; when it was current, none is afterwards. */
bool vmcs_clear(struct vcpu *v, uint64_t phys);
/* VMWRITE into a given VMCS, the current one unchanged afterwards. */
void vmcs_write_in(struct vcpu *v, uint64_t phys, uint32_t field, uint64_t val);
/* Before resuming: the loaded VMCS must run v->cur (one compare on the
 * common path; the report is out of line). */
__attribute__((noreturn, cold)) void vmcs_wrong(struct vcpu *v, const char *where);
static inline void vmcs_check_running(struct vcpu *v)
{
	if (__builtin_expect(v->loaded_vmcs != vmcs_of_level(v, v->cur), 0))
		vmcs_wrong(v, "VM entry");
}

#ifdef NESTOR_CHECKED
#define VMCS_ASSERT_RUNNING(v)                                                        \
	do {                                                                          \
		if (__builtin_expect((v)->loaded_vmcs != vmcs_of_level((v), (v)->cur), 0)) \
			vmcs_wrong((struct vcpu *)(v), __func__);                       \
	} while (0)
#else
#define VMCS_ASSERT_RUNNING(v) ((void)(v))
#endif

#endif
