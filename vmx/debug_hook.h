/* debug_hook.h - the one narrow door from vmx/ to a debugger (debug/gdb_stub.c).
 *
 * vmx/ knows nothing of gdb: a debugger registers these hooks once at
 * boot, before the guest runs.  With no debugger (gdb=off, the default) the
 * pointer stays NULL and the cost on every VM exit is one load and one
 * predictable branch (vmx/exit.c, handle_exit). */
#ifndef VMX_DEBUG_HOOK_H
#define VMX_DEBUG_HOOK_H

#include <stdbool.h>
#include <stdint.h>

struct vcpu;

struct vmx_debug_ops {
	/* Before the first VM entry of the guest (the debugger may stop it
	 * there, before its first instruction). */
	void (*first_entry)(struct vcpu *v);
	/* At the start of every VM exit (after a sink page's own exit):
	 * true when the debugger consumed the exit (a breakpoint, a step,
	 * its own timer) and the level that ran resumes as is. */
	bool (*exit)(struct vcpu *v, uint32_t reason);
	/* The run ends (vm_end_run): tell the debugger, failed or not. */
	void (*end)(struct vcpu *v, bool failed);
};

/* NULL unless a debugger registered itself: written once at boot. */
extern const struct vmx_debug_ops *vmx_debug;

#endif
