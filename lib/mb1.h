/* mb1.h - multiboot (version 1) structures (multiboot specification 0.6.96),
 * used by the guest loader (which builds them) and the guest kernels (which
 * read them). */
#ifndef LIB_MB1_H
#define LIB_MB1_H

#include <stdint.h>

#define MB1_HEADER_MAGIC 0x1badb002u
#define MB1_BOOTLOADER_MAGIC 0x2badb002u

/* Header flags. */
#define MB1_HF_PAGE_ALIGN (1u << 0)
#define MB1_HF_MEMINFO (1u << 1)
#define MB1_HF_VIDEO (1u << 2)
#define MB1_HF_AOUT_KLUDGE (1u << 16)

struct mb1_header {
	uint32_t magic, flags, checksum;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr; /* AOUT_KLUDGE */
	uint32_t mode_type, width, height, depth;                                  /* VIDEO */
};

/* Info flags. */
#define MB1_INFO_MEM (1u << 0)
#define MB1_INFO_BOOTDEV (1u << 1)
#define MB1_INFO_CMDLINE (1u << 2)
#define MB1_INFO_MODS (1u << 3)
#define MB1_INFO_MMAP (1u << 6)
#define MB1_INFO_LOADER_NAME (1u << 9)

struct mb1_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper;
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
	uint32_t apm_table;
	uint32_t vbe[6];
	uint8_t fb[22];
} __attribute__((packed));

struct mb1_module {
	uint32_t mod_start, mod_end, string, reserved;
};

/* Each entry is preceded by its size (not counting the size field). */
struct mb1_mmap_entry {
	uint32_t size;
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

#endif
