/* loader.c - choose how to start the guest, and lay out guest memory. */
#include "boot/efi_handoff.h"
#include "loader/loader.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/mb1.h"
#include "lib/string.h"
#include "mm/mm.h"

const char *const guest_format_names[] = { "auto", "multiboot2", "multiboot", "bootsector", "linux", NULL };

uint64_t layout_alloc_top(struct guest_layout *l, uint64_t size, uint64_t align, uint64_t limit)
{
	uint64_t at;
	if (size == 0)
		size = 1;
	size = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	if (rs_find_top(&l->free, size, align < PAGE_SIZE ? PAGE_SIZE : align, limit, &at))
		return 0;
	rs_remove(&l->free, at, at + size);
	return at;
}

int layout_claim(struct guest_layout *l, uint64_t start, uint64_t end)
{
	if (!rs_contains(&l->free, start, end))
		return -1;
	rs_remove(&l->free, start, end);
	return 0;
}

unsigned guest_memory_map(const struct vm *vm, const struct mb2_info *mb, struct mb2_mmap_entry *out, unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < mb->n_mmap && n < max; i++) {
		const struct mb2_mmap_entry *e = &mb->mmap[i];
		if (e->type != MB2_MEM_AVAILABLE) {
			out[n++] = *e;
			continue;
		}
		/* Available RAM is cut where Nestor's memory lies in it, which
		 * is reserved (a hole could be taken for a device's registers). */
		struct region_set ram, hid;
		rs_clear(&ram);
		rs_clear(&hid);
		rs_add(&ram, e->base, e->base + e->len);
		for (unsigned h = 0; h < vm->hidden.n; h++)
			rs_remove(&ram, vm->hidden.r[h].start, vm->hidden.r[h].end);
		rs_add(&hid, e->base, e->base + e->len);
		for (unsigned k = 0; k < ram.n; k++)
			rs_remove(&hid, ram.r[k].start, ram.r[k].end);
		for (unsigned a = 0, h = 0; (a < ram.n || h < hid.n) && n < max;) {
			bool take_ram = h == hid.n || (a < ram.n && ram.r[a].start < hid.r[h].start);
			const struct region *r = take_ram ? &ram.r[a++] : &hid.r[h++];
			out[n++] = (struct mb2_mmap_entry){ r->start, r->end - r->start,
							    take_ram ? e->type : MB2_MEM_RESERVED };
		}
	}
	return n;
}

static bool is_bootsector(const uint8_t *img, size_t size) { return size >= 512 && img[510] == 0x55 && img[511] == 0xaa; }

/* A Linux kernel image (boot.rst, "The Real-Mode Kernel Header"): boot_flag
 * 0xAA55 at 0x1fe and "HdrS" at 0x202.  Tested before the boot sector,
 * whose signature is the same boot_flag. */
static bool is_linux(const uint8_t *img, size_t size)
{
	return is_bootsector(img, size) && size >= 0x206 && !memcmp(img + 0x202, "HdrS", 4);
}

int load_guest(struct vm *vm, const struct mb2_info *mb, const struct load_options *opt, struct guest_state *gs,
	       char *err, size_t errlen)
{
	/* Started by nestor.efi: the guest is the firmware that ran it. */
	if (boot_efi_state())
		return load_firmware(vm, boot_efi_state(), gs, err, errlen);
	if (mb->n_modules == 0) {
		ksnprintf(err, errlen, "no guest: give the guest as the first module (GRUB: module2 FILE ARGS)");
		return -1;
	}
	struct guest_layout l = { .vm = vm };
	/* The loader works in guest RAM above 1 MiB (below is the real-mode
	 * world of the BIOS) and never over a module it has not moved yet. */
	l.free = vm->guest_ram;
	rs_remove(&l.free, 0, 0x100000);
	for (unsigned i = 0; i < mb->n_modules; i++) {
		const struct mb2_module *m = &mb->modules[i];
		if (!rs_contains(&vm->guest_ram, m->start, m->end)) {
			ksnprintf(err, errlen, "module %u [%x, %x) is not in guest RAM", i, m->start, m->end);
			return -1;
		}
		rs_remove(&l.free, m->start & ~(PAGE_SIZE - 1), (m->end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1));
	}
	/* Move every module to the top of guest RAM, out of the way of the
	 * addresses kernels are linked at. */
	struct moved_module mods[MB2_MAX_MODULES];
	for (unsigned i = 0; i < mb->n_modules; i++) {
		const struct mb2_module *m = &mb->modules[i];
		uint64_t size = m->end - m->start;
		uint64_t at = layout_alloc_top(&l, size, PAGE_SIZE, 1ull << 32);
		if (!at) {
			ksnprintf(err, errlen, "no room in guest RAM below 4 GiB for module %u (%llu KiB)", i,
				  (unsigned long long)(size >> 10));
			return -1;
		}
		memmove(phys_to_virt(at), phys_to_virt(m->start), size);
		mods[i].start = (uint32_t)at;
		mods[i].end = (uint32_t)(at + size);
		mods[i].string = m->string;
	}
	/* Where they were is free now, whole pages: every module has moved,
	 * and the boot information that named them is Nestor's own copy. */
	for (unsigned i = 0; i < mb->n_modules; i++) {
		uint64_t s = mb->modules[i].start & ~(PAGE_SIZE - 1);
		uint64_t e = (mb->modules[i].end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
		if (s < 0x100000)
			s = 0x100000;
		if (s < e)
			rs_add(&l.free, s, e);
	}

	const uint8_t *img = phys_to_virt(mods[0].start);
	size_t size = mods[0].end - mods[0].start;
	enum guest_format f = opt->format;
	if (f == GUEST_AUTO) {
		if (find_mb2_header(img, size) >= 0)
			f = GUEST_MULTIBOOT2;
		else if (find_mb1_header(img, size) >= 0)
			f = GUEST_MULTIBOOT;
		else if (is_linux(img, size))
			f = GUEST_LINUX;
		else if (is_bootsector(img, size))
			f = GUEST_BOOTSECTOR;
		else {
			ksnprintf(err, errlen, "module 0 ('%s') is neither a multiboot kernel, a Linux kernel nor a "
				  "boot sector", mods[0].string);
			return -1;
		}
	}
	pr_info("guest: %s, %zu bytes, command line '%s'\n", guest_format_names[f], size, mods[0].string);
	if (f == GUEST_BOOTSECTOR) {
		if (!is_bootsector(img, size)) {
			ksnprintf(err, errlen, "module 0 has no boot signature (0x55 0xaa at offset 510)");
			return -1;
		}
		return load_bootsector(vm, &mods[0], opt->boot_drive, gs, err, errlen);
	}
	if (f == GUEST_LINUX)
		return load_linux(&l, mb, mods, mb->n_modules, gs, err, errlen);
	return load_multiboot(vm, &l, mb, mods, mb->n_modules, f, gs, err, errlen);
}
