/* boot.c - what the kernel was handed at boot, and the CPU state it runs in. */
#include "guest/test.h"
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
