/* main.c - Nestor's boot sequence, from the first C instruction to the guest. */
#include "boot/acpi_probe.h"
#include "sec/sec.h"
#include "boot/config.h"
#include "boot/cpu.h"
#include "boot/delay.h"
#include "boot/efi_handoff.h"
#include "boot/smp.h"
#include "boot/layout.h"
#include "boot/platform.h"
#include "boot/trap.h"
#include "debug/gdb.h"
#include "hypercall/abi.h"
#include "lib/log.h"
#include "lib/mb2.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "boot/integrity.h"
#include "mm/mm.h"
#include "net/debugnic.h"
#include "vmx/vm.h"

#ifndef NESTOR_VERSION
#define NESTOR_VERSION "dev"
#endif

extern const char __image_end_phys[];
#define IMAGE_SIZE ((uint64_t)__image_end_phys - KERNEL_LINK_PHYS)

/* The MBI is copied here first thing: the loader's copy lives in memory the
 * guest will own later. */
static uint8_t mbi_copy[64 * 1024] __attribute__((aligned(8)));
static struct mb2_info boot_info;

/* Our level in the stack: one above the Nestor we run on, 0 on a machine
 * with no Nestor below (bare metal, or another hypervisor).  A Nestor is
 * known by its signature even when it hides the hypervisor bit
 * (hypervisor_bit=off): on a CPU, leaf 0x40000000 is an unknown leaf and
 * answers with the highest basic leaf's data, never that signature. */
static unsigned detect_level(char hv_name[13])
{
	hv_name[0] = '\0';
	struct cpuid_regs r = cpuid(NESTOR_CPUID_BASE, 0);
	if (cpuid(1, 0).ecx & (1u << 31)) {
		/* Some hypervisor says it is there: its name, for the boot log. */
		memcpy(hv_name, &r.ebx, 4);
		memcpy(hv_name + 4, &r.ecx, 4);
		memcpy(hv_name + 8, &r.edx, 4);
		hv_name[12] = '\0';
	}
	if (!NESTOR_SIGNATURE(r.ebx, r.ecx, r.edx) || r.eax < NESTOR_CPUID_INFO)
		return 0;
	return cpuid(NESTOR_CPUID_INFO, 0).eax + 1;
}

static void print_boot_info(const struct mb2_info *mb)
{
	pr_info("boot loader: %s\n", mb->loader_name ? mb->loader_name : "(unnamed)");
	pr_info("command line: '%s'\n", mb->cmdline ? mb->cmdline : "");
	pr_info("memory map (%u entries):\n", mb->n_mmap);
	for (unsigned i = 0; i < mb->n_mmap; i++) {
		const struct mb2_mmap_entry *e = &mb->mmap[i];
		pr_info("  [%016llx, %016llx) %8llu KiB %s\n", (unsigned long long)e->base,
			(unsigned long long)(e->base + e->len), (unsigned long long)(e->len >> 10),
			mb2_mem_type_name(e->type));
	}
	for (unsigned i = 0; i < mb->n_modules; i++)
		pr_info("module %u: [%08x, %08x) '%s'\n", i, mb->modules[i].start, mb->modules[i].end,
			mb->modules[i].string);
	if (mb->rsdp_new)
		pr_info("ACPI: RSDP 2.0+ tag (%u bytes)\n", mb->rsdp_new_len);
	if (mb->rsdp_old)
		pr_info("ACPI: RSDP 1.0 tag (%u bytes)\n", mb->rsdp_old_len);
}

/* Set by boot/entry.S's _start_efi64 (nestor.efi), at its physical link
 * address in .boot. */
extern const uint64_t boot_efi_handoff[];
static struct efi_handoff efi_state;
static bool have_efi_state;
static uint64_t efi_state_phys; /* where nestor.efi left it (stop_early gives it back) */

const struct efi_handoff *boot_efi_state(void) { return have_efi_state ? &efi_state : NULL; }

/* nestor.efi's hand-off (boot/efi_handoff.h), copied while the boot page
 * tables still map the low 4 GiB where the application put it. */
static void take_efi_handoff(void)
{
	uint64_t at = *(const volatile uint64_t *)((uint64_t)boot_efi_handoff + KERNEL_VOFF);
	if (!at)
		return;
	const struct efi_handoff *h = (const struct efi_handoff *)at;
	if (at >= (1ull << 32) - sizeof(*h) || h->magic != EFI_HANDOFF_MAGIC || h->size != sizeof(*h)) {
		pr_err("nestor.efi's hand-off at 0x%llx is not one this Nestor knows (another version of nestor.efi?)\n",
		       (unsigned long long)at);
		machine_end(true);
	}
	efi_state = *h;
	efi_state_phys = at;
	have_efi_state = true;
}

/* boot/entry.S, in .boot at its physical link address. */
void efi_return_to_firmware(uint64_t handoff_phys, uint64_t status);

#define EFI_STATUS_INVALID_PARAMETER 0x8000000000000002ull
#define EFI_STATUS_OUT_OF_RESOURCES 0x8000000000000009ull
#define EFI_STATUS_ABORTED 0x8000000000000015ull

/* A stop before Nestor took the machine (options, help, memory plan).
 * Started by nestor.efi, the firmware gets the machine back as it was and
 * nestor.efi returns status to the shell (docs/uefi.md): only while the
 * boot page tables still map the low 4 GiB, where the firmware's state and
 * efi_return_to_firmware live.  Otherwise the run ends. */
static __attribute__((noreturn)) void stop_early(bool failed, uint64_t efi_status, uint32_t load_delta)
{
	if (!have_efi_state)
		machine_end(failed);
	pr_info("nestor.efi started this level: the firmware gets the machine back (EFI status 0x%llx)\n",
		(unsigned long long)efi_status);
	void (*back)(uint64_t, uint64_t) = (void (*)(uint64_t, uint64_t))((uint64_t)efi_return_to_firmware + load_delta);
	back(efi_state_phys, efi_status);
	__builtin_unreachable();
}

void boot_main(uint32_t magic, uint32_t mbi_phys, uint32_t load_delta);

void boot_main(uint32_t magic, uint32_t mbi_phys, uint32_t load_delta)
{
	uint64_t image_phys = (uint32_t)(KERNEL_LINK_PHYS + load_delta);
	char hv_name[13], err[160];

	log_init();
	platform_detect();
	unsigned level = detect_level(hv_name);
	log_set_prefix_level(level);
	idt_init();
	cpu_init(0);

	pr_info("Nestor %s - recursive VT-x hypervisor - level %u\n", NESTOR_VERSION, level);
	if (hv_name[0] && level == 0)
		pr_info("running under another hypervisor ('%s')\n", hv_name);
	pr_info("image at physical 0x%llx, %llu KiB\n", (unsigned long long)image_phys,
		(unsigned long long)(IMAGE_SIZE >> 10));

	if (magic != MB2_BOOTLOADER_MAGIC) {
		pr_err("not started by a multiboot2 loader (EAX=0x%08x, expected 0x%08x)\n", magic,
		       MB2_BOOTLOADER_MAGIC);
		machine_end(true);
	}
	/* Copy the MBI (identity-mapped by the boot page tables) before parsing. */
	uint32_t mbi_size = *(volatile uint32_t *)(uint64_t)mbi_phys;
	if (mbi_size > sizeof(mbi_copy)) {
		pr_err("boot information is %u bytes; at most %zu supported\n", mbi_size, sizeof(mbi_copy));
		machine_end(true);
	}
	memcpy(mbi_copy, (const void *)(uint64_t)mbi_phys, mbi_size < 16 ? 16 : mbi_size);
	if (mb2_parse(mbi_copy, sizeof(mbi_copy), &boot_info, err, sizeof(err))) {
		pr_err("bad boot information: %s\n", err);
		machine_end(true);
	}
	print_boot_info(&boot_info);
	take_efi_handoff();
	if (have_efi_state)
		pr_info("started by nestor.efi: the UEFI firmware (system table 0x%llx, boot services %s) becomes the "
			"guest; Nestor's memory [%llx, %llx)\n",
			(unsigned long long)boot_info.efi_system_table, boot_info.efi_boot_services ? "running" : "exited",
			(unsigned long long)efi_state.region_start, (unsigned long long)efi_state.region_end);

	if (config_parse(boot_info.cmdline, err, sizeof(err))) {
		pr_err("bad command line: %s\n", err);
		pr_err("boot with 'help' on the command line for the list of options\n");
		stop_early(true, EFI_STATUS_INVALID_PARAMETER, load_delta);
	}
	log_set_level(config.loglevel);
	log_set_e9(config.e9log);
	platform_set_end_action(config.end);
	if (config.help) {
		config_print_help();
		stop_early(false, EFI_STATUS_ABORTED, load_delta);
	}

	/* Under UEFI the firmware still owns its memory: Nestor's pools come
	 * out of what nestor.efi allocated for it. */
	uint64_t own_start = have_efi_state ? efi_state.region_start : 0;
	uint64_t own_end = have_efi_state ? efi_state.region_end : 0;
	if (mm_plan(&boot_info, mbi_phys, image_phys, IMAGE_SIZE, config.mem, config.snap_pool, own_start, own_end, err,
		    sizeof(err))) {
		pr_err("memory: %s\n", err);
		stop_early(true, EFI_STATUS_OUT_OF_RESOURCES, load_delta);
	}
	mm_switch_page_tables();
	pool_fail_at(config.fail_alloc);
	pr_info("memory: %llu KiB usable RAM; Nestor owns [%llx, %llx) (image) and [%llx, %llx) (pool, %llu KiB)\n",
		(unsigned long long)(rs_total(&mem.ram) >> 10), (unsigned long long)mem.image_start,
		(unsigned long long)mem.image_end, (unsigned long long)mem.pool_start,
		(unsigned long long)mem.pool_end, (unsigned long long)((mem.pool_end - mem.pool_start) >> 10));
	acpi_probe(&boot_info);

	if (config.selftest == SELFTEST_PAGE_FAULT)
		__asm__ volatile("movq $1, 0x10" ::: "memory"); /* nothing is mapped at 0 any more */
	if (config.selftest == SELFTEST_PANIC)
		panic("selftest=panic on the command line");

	/* The TSC's rate, while this CPU alone may use the PIT: every wait
	 * after this one reads the TSC (boot/delay.c). */
	delay_calibrate();
	pr_debug("TSC: %llu ticks per microsecond\n", (unsigned long long)delay_tsc_per_us());

	/* Every CPU into Nestor before anything of the guest runs. */
	if (smp_start_aps(err, sizeof(err))) {
		pr_err("CPUs: %s\n", err);
		machine_end(true);
	}

	sec_init(); /* security functions: guard= (sec/) */
	debugnic_boot(level); /* debugnic=: level 0's debug NIC, log over UDP (net/) */
	gdb_boot(level); /* gdb=: registers the stub's hooks (debug/gdb.h); gdb=udp needs the debug NIC up */
	integrity_init();
	vm_run(&boot_info, level);
}
