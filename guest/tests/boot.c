/* boot.c - what the kernel was handed at boot, and the CPU state it runs in. */
#include "guest/test.h"
#include "lib/string.h"
#include "lib/x86.h"

extern const char __image_start[], __image_end[];

TEST(boot, protocol)
{
	say("booted by multiboot%s", booted_mb1 ? " (version 1)" : "2");
	env("boot loader: %s", boot_info.loader_name ? boot_info.loader_name : "(none)");
	say("command line: '%s'", guest_cmdline);
}

TEST(boot, memory_map)
{
	uint64_t avail = 0;
	bool image_in_ram = false;
	CHECK(boot_info.n_mmap > 0, "no memory map");
	for (unsigned i = 0; i < boot_info.n_mmap; i++) {
		const struct mb2_mmap_entry *e = &boot_info.mmap[i];
		env("[%016llx, %016llx) %s", (unsigned long long)e->base, (unsigned long long)(e->base + e->len),
		    mb2_mem_type_name(e->type));
		if (e->type != MB2_MEM_AVAILABLE)
			continue;
		avail += e->len;
		if (e->base <= (uint64_t)__image_start && e->base + e->len >= (uint64_t)__image_end)
			image_in_ram = true;
	}
	env("available: %llu KiB", (unsigned long long)(avail >> 10));
	CHECK(image_in_ram, "the kernel image [%p, %p) is not inside available RAM", __image_start, __image_end);
	CHECK(avail >= (16ull << 20), "only %llu KiB of RAM", (unsigned long long)(avail >> 10));
}

/* The EFI memory map a loader on UEFI passes (tag 17, GRUB-EFI; Nestor
 * passes it on rewritten, loader/multiboot.c): no page it calls usable
 * (loader, boot-services or conventional memory) is outside the available
 * RAM of the memory map - so at depth n Nestor's memory is reserved in both. */
TEST(boot, efi_memory_map)
{
	if (!boot_info.efi_mmap) {
		say("no EFI memory map");
		return;
	}
	unsigned n = 0, usable = 0, outside = 0;
	for (uint32_t o = 0; o + boot_info.efi_desc_size <= boot_info.efi_mmap_len; o += boot_info.efi_desc_size) {
		const uint8_t *d = boot_info.efi_mmap + o;
		uint32_t type;
		uint64_t start, pages;
		memcpy(&type, d, 4);
		memcpy(&start, d + 8, 8);
		memcpy(&pages, d + 24, 8);
		n++;
		if (!(type >= 1 && type <= 4) && type != 7) /* LoaderCode/Data, BootServicesCode/Data, Conventional */
			continue;
		usable++;
		uint64_t end = start + (pages << 12);
		bool inside = false;
		for (unsigned i = 0; i < boot_info.n_mmap && !inside; i++) {
			const struct mb2_mmap_entry *e = &boot_info.mmap[i];
			inside = e->type == MB2_MEM_AVAILABLE && e->base <= start && end <= e->base + e->len;
		}
		if (!inside && start >= 0x100000) { /* below 1 MiB the two maps differ by tradition */
			outside++;
			say("usable EFI range [%016llx, %016llx) type %u is not available RAM", (unsigned long long)start,
			    (unsigned long long)end, type);
		}
	}
	env("EFI memory map: %u descriptors, %u usable", n, usable);
	say("every usable EFI range above 1 MiB is available RAM: %s", outside ? "no" : "yes");
	CHECK(outside == 0, "%u usable EFI ranges outside the memory map's RAM", outside);
}

TEST(boot, modules)
{
	say("%u modules", boot_info.n_modules);
	for (unsigned i = 0; i < boot_info.n_modules; i++) {
		const struct mb2_module *m = &boot_info.modules[i];
		say("module %u: %u bytes, '%s'", i, m->end - m->start, m->string);
		env("module %u at [%08x, %08x)", i, m->start, m->end);
		CHECK(m->end >= m->start, "module %u ends before it starts", i);
		CHECK((m->start & 0xfff) == 0, "module %u not page aligned (%08x)", i, m->start);
	}
}

TEST(boot, cpu_state)
{
	uint64_t cr0 = read_cr0(), cr4 = read_cr4(), efer = rdmsr(MSR_EFER);
	say("cr0=%016llx cr4=%016llx efer=%016llx", (unsigned long long)cr0, (unsigned long long)cr4,
	    (unsigned long long)efer);
	CHECK(efer & EFER_LMA, "not in long mode");
	CHECK((cr0 & (CR0_PG | CR0_PE)) == (CR0_PG | CR0_PE), "paging off");
}

TEST(boot, cpu_vendor)
{
	struct cpuid_regs r = cpuid(0, 0);
	char v[13];
	__builtin_memcpy(v, &r.ebx, 4);
	__builtin_memcpy(v + 4, &r.edx, 4);
	__builtin_memcpy(v + 8, &r.ecx, 4);
	v[12] = 0;
	say("vendor '%s', highest basic leaf 0x%x", v, r.eax);
	CHECK(r.eax >= 1, "no CPUID leaf 1");
}
