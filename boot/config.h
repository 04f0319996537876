/* config.h - Nestor's command-line options (documented in docs/options.md).
 * Filled once at boot from the multiboot2 command line, read-only after. */
#ifndef BOOT_CONFIG_H
#define BOOT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

struct nestor_config {
	unsigned loglevel;  /* enum log_level */
	bool e9log;
	uint64_t mem;       /* bytes reserved for Nestor's pool */
	unsigned end;       /* enum end_action */
	bool help;
	unsigned selftest; /* enum selftest */
	uint64_t fail_alloc; /* the pool allocation made to fail (0: none) */
	uint64_t fail_alloc_run; /* once the guest runs, its N-th allocation and all later fail (0: none) */
	unsigned guest_format; /* enum guest_format (loader/loader.h) */
	uint64_t boot_drive;
	bool nested;
	unsigned vmcs_shadowing; /* enum vmcs_shadowing */
	unsigned nested_hide; /* NESTED_HIDE_* bits: VMX features not offered to the guest */
	bool delegate;
	bool hypervisor_bit; /* CPUID.1:ECX[31] shown to the guest */
	uint64_t snap_pool;  /* bytes of RAM for snapshots (0: none) */
	unsigned snap_method; /* enum snap_method (snap/snap.h): the default method */
	char debugnic[16];    /* debugnic=: on|off|00:DD.F, level 0's debug NIC (net/debugnic.h) */
	char guard[128];      /* guard=: PCI functions hidden from the levels above (sec/guard.c) */
	char drvcheck[16];    /* drvcheck=: the PCI function whose driver is checked (sec/drvcheck.c) */
	bool drvcheck_trace;  /* drvcheck_trace=: allow and log every access instead */
	unsigned gdb; /* enum gdb_mode: level 0's GDB remote stub (debug/, docs/gdb.md) */
};

/* When the guest hypervisor's VMREAD/VMWRITE use the CPU's VMCS shadowing
 * (nested/shadow.c): auto - on the machine's own VMX, not on a VMX that a
 * hypervisor below emulates (docs/nested.md: there the VMPTRLDs that keep
 * the shadow VMCS in step cost more than the exits it saves). */
enum vmcs_shadowing { SHADOWING_AUTO, SHADOWING_ON, SHADOWING_OFF };

/* Where level 0's GDB stub listens (debug/gdb_stub.c): nowhere, COM2, or
 * UDP port 1234 of the debug NIC (net/debugnic.h). */
enum gdb_mode { GDB_OFF, GDB_SERIAL, GDB_UDP };

enum selftest {
	SELFTEST_NONE,
	SELFTEST_PAGE_FAULT,
	SELFTEST_PANIC,
	/* Failures of the entry path, made before the first entry (vmx/vm.c). */
	SELFTEST_WRONG_VMCS,
	SELFTEST_ENTRY_REFUSED,
	SELFTEST_ENTRY_FAILURE,
};

extern struct nestor_config config;

/* Parses cmdline into config; on error returns -1 with a message. */
int config_parse(const char *cmdline, char *err, unsigned errlen);
void config_print_help(void);

#endif
