/* loader.h - starting the guest the way GRUB (or the BIOS) would.
 *
 * The first multiboot module is the guest, its string the guest's command
 * line; the other modules are the guest's modules.  A multiboot2 or
 * multiboot (v1) kernel is loaded (ELF, or the address tag / a.out kludge)
 * and entered in 32-bit protected mode with the boot information Nestor
 * builds in guest memory, describing the machine without Nestor's memory.
 * A Linux bzImage is loaded and entered through the 32-bit boot protocol
 * (boot.rst), as GRUB's "linux" command does in BIOS mode, the other
 * modules concatenated into its initrd.  A boot sector is entered in real
 * mode at 0:7c00 with the BIOS still serving it.  So Nestor at level n
 * boots level n+1 the way GRUB booted it. */
#ifndef LOADER_LOADER_H
#define LOADER_LOADER_H

#include <stddef.h>
#include "lib/mb2.h"
#include "loader/mb_parse.h"
#include "vmx/vcpu.h"
#include "vmx/vmx.h"

enum guest_format { GUEST_AUTO, GUEST_MULTIBOOT2, GUEST_MULTIBOOT, GUEST_BOOTSECTOR, GUEST_LINUX };
extern const char *const guest_format_names[];

struct load_options {
	enum guest_format format;
	unsigned boot_drive; /* DL for a boot sector */
};

/* Fills *gs with the guest's starting state, having placed everything in
 * guest memory.  Returns 0 or -1 with a message. */
int load_guest(struct vm *vm, const struct mb2_info *mb, const struct load_options *opt, struct guest_state *gs,
	       char *err, size_t errlen);

/* --- internals shared by the loader's files --- */
struct guest_layout {
	struct vm *vm;
	struct region_set free; /* guest RAM not yet used by the loader */
};
/* Highest free block of size bytes (aligned) below limit; 0 on failure. */
uint64_t layout_alloc_top(struct guest_layout *l, uint64_t size, uint64_t align, uint64_t limit);
/* Claims [start, end) if it is entirely free guest RAM; -1 otherwise. */
int layout_claim(struct guest_layout *l, uint64_t start, uint64_t end);

/* The guest's memory map: the machine's, with Nestor's memory reserved
 * instead of available.  Multiboot memory types are the e820 types, so it
 * serves every protocol (and INT 15h E820, vmx/bios.c).  Returns
 * the number of entries written (at most max). */
unsigned guest_memory_map(const struct vm *vm, const struct mb2_info *mb, struct mb2_mmap_entry *out, unsigned max);

struct moved_module {
	uint32_t start, end;
	const char *string;
};

int load_multiboot(struct vm *vm, struct guest_layout *l, const struct mb2_info *mb,
		   const struct moved_module *mods, unsigned nmods, enum guest_format format, struct guest_state *gs,
		   char *err, size_t errlen);
int load_linux(struct guest_layout *l, const struct mb2_info *mb, const struct moved_module *mods, unsigned nmods,
	       struct guest_state *gs, char *err, size_t errlen);
struct efi_handoff;
/* The UEFI firmware that started nestor.efi, resumed as the guest
 * (loader/firmware.c). */
int load_firmware(struct vm *vm, const struct efi_handoff *h, struct guest_state *gs, char *err, size_t errlen);
int load_bootsector(struct vm *vm, const struct moved_module *image, unsigned drive, struct guest_state *gs,
		    char *err, size_t errlen);

#endif
