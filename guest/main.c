/* main.c - the guest test kernel: boot information, options, tests, result. */
#include "guest/kernel.h"
#include "guest/test.h"
#include "guest/tests/vmxfuzz.h"
#include "lib/cmdline.h"
#include "guest/tests/pci.h"
#include "lib/format.h"
#include "lib/mb1.h"
#include "lib/serial.h"
#include "lib/string.h"
#include "lib/x86.h"

bool booted_mb1;
struct mb2_info boot_info;
const char *guest_cmdline = "";

static char suites[256];
static bool list_only;
static unsigned crash;
static const char *const crash_names[] = { "none", "triple", "hang", "exception", "fail", NULL };

static const struct opt_desc options[] = {
	{ "suite", OPT_STRING, suites, 0, sizeof(suites), NULL, "comma-separated suites to run (default all)" },
	{ "list", OPT_FLAG, &list_only, 0, 0, NULL, "list the tests instead of running them" },
	{ "crash", OPT_CHOICE, &crash, 0, 0, crash_names, "harness self-tests: misbehave on purpose" },
	/* the vmxfuzz suite's (guest/tests/vmxfuzz.c) */
	{ "fuzz_seed", OPT_UINT, &vmxfuzz_opts.seed, 0, ~0ull, NULL, "vmxfuzz: seed" },
	{ "fuzz_cases", OPT_UINT, &vmxfuzz_opts.cases, 0, 1000000, NULL, "vmxfuzz: number of cases" },
	{ "fuzz_first", OPT_UINT, &vmxfuzz_opts.first, 0, ~0ull, NULL, "vmxfuzz: number of the first case" },
	{ "fuzz_classes", OPT_UINT, &vmxfuzz_opts.classes, 1, 7, NULL, "vmxfuzz: case classes (bit mask)" },
	{ "fuzz_verbose", OPT_FLAG, &vmxfuzz_opts.verbose, 0, 0, NULL, "vmxfuzz: print every field of every exit" },
	/* the pci suite's (guest/tests/pci.c) */
	{ "pci_dev", OPT_STRING, pci_opts.dev, 0, sizeof(pci_opts.dev), NULL, "pci: the function aimed at, BB:DD.F" },
	{ "pci_io", OPT_UINT, &pci_opts.io, 0, 0xffff, NULL, "pci: a port base of it" },
	{ "pci_mem", OPT_UINT, &pci_opts.mem, 0, 0xffffffffull, NULL, "pci: a memory BAR of it" },
	{ "pci_present", OPT_UINT, &pci_opts.present, 0, 2, NULL, "pci: 1 it must be there, 0 not, 2 no check" },
	{ "nic_mode", OPT_STRING, pci_opts.nic_mode, 0, sizeof(pci_opts.nic_mode), NULL,
	  "nic: good, early_ims, bad_ring, io_window, odd_insn" },
	{ "nic_blocked", OPT_UINT, &pci_opts.nic_blocked, 0, 2, NULL, "nic: 1 must end blocked, 0 not, 2 no check" },
};

void guest_main(uint32_t magic, uint32_t info);

static uint8_t mbi_copy[16384] __attribute__((aligned(8)));

/* Turns a multiboot (v1) information structure into the mb2_info the tests
 * read, so both boot protocols are tested through one view. */
static int from_mb1(uint32_t info_addr, char *err, size_t errlen)
{
	const struct mb1_info *mi = (const struct mb1_info *)(uint64_t)info_addr;
	memset(&boot_info, 0, sizeof(boot_info));
	if (mi->flags & MB1_INFO_CMDLINE)
		boot_info.cmdline = (const char *)(uint64_t)mi->cmdline;
	if (mi->flags & MB1_INFO_LOADER_NAME)
		boot_info.loader_name = (const char *)(uint64_t)mi->boot_loader_name;
	if (mi->flags & MB1_INFO_MEM) {
		boot_info.have_meminfo = 1;
		boot_info.mem_lower_kb = mi->mem_lower;
		boot_info.mem_upper_kb = mi->mem_upper;
	}
	if (mi->flags & MB1_INFO_MMAP) {
		uint64_t p = mi->mmap_addr, end = p + mi->mmap_length;
		while (p + 4 <= end && boot_info.n_mmap < MB2_MAX_MMAP) {
			const struct mb1_mmap_entry *e = (const void *)p;
			if (e->size < 20) {
				ksnprintf(err, errlen, "mb1 mmap entry size %u", e->size);
				return -1;
			}
			boot_info.mmap[boot_info.n_mmap].base = e->addr;
			boot_info.mmap[boot_info.n_mmap].len = e->len;
			boot_info.mmap[boot_info.n_mmap].type = e->type;
			boot_info.n_mmap++;
			p += e->size + 4;
		}
	}
	if (mi->flags & MB1_INFO_MODS) {
		const struct mb1_module *m = (const void *)(uint64_t)mi->mods_addr;
		for (uint32_t i = 0; i < mi->mods_count && i < MB2_MAX_MODULES; i++) {
			boot_info.modules[i].start = m[i].mod_start;
			boot_info.modules[i].end = m[i].mod_end;
			boot_info.modules[i].string = (const char *)(uint64_t)m[i].string;
			boot_info.n_modules++;
		}
	}
	return 0;
}

static void crash_now(unsigned how)
{
	gprintf("guest: crashing on purpose (crash=%s)\n", crash_names[how]);
	gflush();
	switch (how) {
	case 1: { /* triple fault: no IDT at all, then a fault */
		struct dtr none = { 0, 0 };
		lidt(&none);
		__asm__ volatile("int3");
		break;
	}
	case 2: /* hang with interrupts off: only a timeout ends this */
		cli();
		for (;;)
			hlt();
	case 3:
		__asm__ volatile("ud2");
		break;
	case 4:
		gprintf("RESULT: FAIL (crash=fail)\n");
		guest_poweroff();
	}
}

void guest_main(uint32_t magic, uint32_t info)
{
	char err[160];
	serial_init(COM1_PORT);
	cpu_setup();
	gprintf("guest: Nestor test kernel\n");

	int r = 0;
	if (magic == MB2_BOOTLOADER_MAGIC) {
		uint32_t size = *(volatile uint32_t *)(uint64_t)info;
		if (size > sizeof(mbi_copy))
			size = sizeof(mbi_copy);
		memcpy(mbi_copy, (const void *)(uint64_t)info, size);
		r = mb2_parse(mbi_copy, size, &boot_info, err, sizeof(err));
	} else if (magic == MB1_BOOTLOADER_MAGIC) {
		booted_mb1 = true;
		r = from_mb1(info, err, sizeof(err));
	} else {
		ksnprintf(err, sizeof(err), "unknown boot magic 0x%08x", magic);
		r = -1;
	}
	if (r) {
		gprintf("guest: bad boot information: %s\nRESULT: FAIL (boot information)\n", err);
		guest_poweroff();
	}
	guest_cmdline = boot_info.cmdline ? boot_info.cmdline : "";
	gprintf("guest: booted by multiboot%s, command line '%s'\n", booted_mb1 ? "" : "2", guest_cmdline);
	if (cmdline_parse(guest_cmdline, options, sizeof(options) / sizeof(options[0]), err, sizeof(err))) {
		gprintf("guest: bad command line: %s\nRESULT: FAIL (command line)\n", err);
		guest_poweroff();
	}
	if (crash)
		crash_now(crash);

	unsigned ran;
	unsigned failed = run_tests(suites, list_only, &ran);
	if (list_only) {
		gprintf("RESULT: PASS (%u tests listed)\n", ran);
		guest_poweroff();
	}
	gprintf("summary: %u tests, %u passed, %u failed\n", ran, ran - failed, failed);
	if (ran == 0)
		gprintf("RESULT: FAIL (no test matched suite='%s')\n", suites);
	else if (failed)
		gprintf("RESULT: FAIL (%u of %u tests failed)\n", failed, ran);
	else
		gprintf("RESULT: PASS\n");
	guest_poweroff();
}
