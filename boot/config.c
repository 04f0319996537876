/* config.c - the table of every Nestor command-line option. */
#include "boot/config.h"
#include "boot/platform.h"
#include "lib/cmdline.h"
#include "lib/log.h"
#include "loader/loader.h"
#include "snap/snap.h"

struct nestor_config config = {
	.loglevel = LOG_INFO,
	.mem = 16ull << 20,
	.end = END_AUTO,
	.guest_format = GUEST_AUTO,
	.boot_drive = 0x80,
	.nested = true,
	.vmcs_shadowing = SHADOWING_AUTO,
	.delegate = true,
	.hypervisor_bit = true,
};

static const char *const selftest_names[] = { "none", "page-fault", "panic", "wrong-vmcs", "entry-refused",
					       "entry-failure", NULL };

static const char *const gdb_names[] = { "off", "serial", "udp", NULL };

static const char *const vmcs_shadowing_names[] = { "auto", "on", "off", NULL };

/* In the order of the NESTED_HIDE_* bits (nested/nested.h). */
static const char *const nested_hide_names[] = { "true_ctls", "vpid", NULL };

static const struct opt_desc options[] = {
	{ "loglevel", OPT_CHOICE, &config.loglevel, 0, 0, log_level_names,
	  "messages shown on COM1: error|warn|info|debug|trace (default info)" },
	{ "e9log", OPT_FLAG, &config.e9log, 0, 0, NULL,
	  "copy every message, at every level, to debug port 0xE9 (default off)" },
	{ "mem", OPT_SIZE, &config.mem, 4ull << 20, 1ull << 30, NULL,
	  "RAM reserved for Nestor's own use, hidden from the guest (default 16M, 4M..1G, rounded up to 2M)" },
	{ "end", OPT_CHOICE, &config.end, 0, 0, end_action_names,
	  "how a run ends: auto (power off through the Bochs port when port 0xE9 answers, else halt), "
	  "shutdown, halt (default auto)" },
	{ "guest", OPT_CHOICE, &config.guest_format, 0, 0, guest_format_names,
	  "how to start the first module: auto (by its headers), multiboot2, multiboot, bootsector, linux (default "
	  "auto)" },
	{ "boot_drive", OPT_UINT, &config.boot_drive, 0, 0xff, NULL,
	  "BIOS drive number (DL) given to a boot-sector guest (default 0x80, the first hard disk)" },
	{ "nested", OPT_FLAG, &config.nested, 0, 0, NULL,
	  "offer VMX to the guest, so that it can be a hypervisor (default on)" },
	{ "vmcs_shadowing", OPT_CHOICE, &config.vmcs_shadowing, 0, 0, vmcs_shadowing_names,
	  "let the guest hypervisor's VMREAD/VMWRITE use the CPU's VMCS shadowing when it has it: auto (on the "
	  "machine's own VMX, off under another hypervisor, whose emulated VMPTRLDs make it slower), on, off "
	  "(default auto)" },
	{ "nested_hide", OPT_SET, &config.nested_hide, 0, 0, nested_hide_names,
	  "VMX features not offered to the guest hypervisor, as on an older CPU: none, or a list of "
	  "true_ctls (no TRUE control MSRs: CR3-load/store exiting and the other default1 controls forced on), "
	  "vpid (no VPIDs, no INVVPID) (default none)" },
	{ "delegate", OPT_FLAG, &config.delegate, 0, 0, NULL,
	  "on a Nestor, let the Nestor below emulate VMX for our guest, so that a stack of Nestors costs "
	  "the same at any depth (docs/depth.md; default on)" },
	{ "hypervisor_bit", OPT_FLAG, &config.hypervisor_bit, 0, 0, NULL,
	  "set CPUID.1:ECX[31] (hypervisor present) for the guest; off: the guest sees the CPU's leaf 1 unchanged "
	  "and takes the paths it takes on the machine (Nestor's leaves 0x40000000.. still answer; default on)" },
	{ "snap_pool", OPT_SIZE, &config.snap_pool, 0, 1ull << 31, NULL,
	  "RAM reserved for snapshots of the guest, hidden from it (default 0: snapshots refused; up to 2G, "
	  "rounded up to 2M)" },
	{ "snap_method", OPT_CHOICE, &config.snap_method, 0, 0, snap_method_names,
	  "how a snapshot saves memory when the guest does not say: cow (copy a page when the guest first "
	  "writes it) or copy (all at once) (default cow)" },
	{ "gdb", OPT_CHOICE, &config.gdb, 0, 0, gdb_names,
	  "level 0 only: a GDB remote stub on COM2 (0x2f8, 115200 8N1, polled), or on UDP port 1234 of the debug "
	  "NIC (udp: needs debugnic=), that stops the guest before its first instruction and waits for gdb: "
	  "off|serial|udp (docs/gdb.md; default off)" },
	{ "guard", OPT_STRING, config.guard, 0, sizeof(config.guard), NULL,
	  "PCI functions made non-existent for the guest and every level above, BB:DD.F[,BB:DD.F...] in "
	  "hexadecimal: configuration space, ports and memory BARs blocked, attempts logged (default none; "
	  "docs/security-functions.md)" },
	{ "drvcheck", OPT_STRING, config.drvcheck, 0, sizeof(config.drvcheck), NULL,
	  "check the guest driver's bring-up of a NIC, BB:DD.F: its registers (BAR0) are trapped until the "
	  "bring-up followed the device's expected sequence, then mapped directly; a wrong sequence blocks the "
	  "device for good (default none; docs/security-functions.md)" },
	{ "drvcheck_trace", OPT_FLAG, &config.drvcheck_trace, 0, 0, NULL,
	  "with drvcheck=: allow every access and log it, to record a driver's sequence (default off)" },
	{ "debugnic", OPT_STRING, config.debugnic, 0, sizeof(config.debugnic), NULL,
	  "level 0 only: drive the debug NIC (Bochs 'ne2k', PCI RTL8029), hide it from the levels above and "
	  "stream this log to the host over UDP port 6510: on|off|00:DD.F (docs/debug-nic.md; default off; "
	  "ignored with a warning above level 0)" },
	{ "selftest", OPT_CHOICE, &config.selftest, 0, 0, selftest_names,
	  "fail on purpose, to test the failure reports: none|page-fault|panic (after boot), wrong-vmcs|"
	  "entry-refused|entry-failure (at the first VM entry) (default none)" },
	{ "fail_alloc", OPT_UINT, &config.fail_alloc, 0, ~0ull, NULL,
	  "fault injection: the N-th allocation from Nestor's pool fails, once, to test the out-of-memory "
	  "paths (the end of a run prints how many there were; default 0: none)" },
	{ "fail_alloc_run", OPT_UINT, &config.fail_alloc_run, 0, ~0ull, NULL,
	  "fault injection: once the guest is entered, the N-th allocation from Nestor's pool and every later "
	  "one fail, as if the guest had used the pool up (default 0: none)" },
	{ "help", OPT_FLAG, &config.help, 0, 0, NULL, "print this list of options and stop" },
};

int config_parse(const char *cmdline, char *err, unsigned errlen)
{
	if (cmdline_parse(cmdline, options, sizeof(options) / sizeof(options[0]), err, errlen))
		return -1;
	config.mem = (config.mem + 0x1fffff) & ~0x1fffffull;
	config.snap_pool = (config.snap_pool + 0x1fffff) & ~0x1fffffull;
	return 0;
}

void config_print_help(void)
{
	pr_info("command-line options (name=value, separated by spaces):\n");
	for (unsigned i = 0; i < sizeof(options) / sizeof(options[0]); i++)
		pr_info("  %-9s %s\n", options[i].name, options[i].help);
}
