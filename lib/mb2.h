/* mb2.h - defensive parser of the multiboot2 boot information (MBI).
 *
 * The MBI comes from the boot loader (GRUB, or the Nestor level below when
 * Nestor runs as a guest) and is treated as untrusted input: every length is
 * checked against the buffer, every string must be NUL-terminated inside its
 * tag, and anything malformed is reported with a precise message instead of
 * being guessed at.  The parser never writes to the MBI and keeps pointers
 * into it, so callers copy the MBI to memory they own first. */
#ifndef LIB_MB2_H
#define LIB_MB2_H

#include <stddef.h>
#include <stdint.h>

#define MB2_BOOTLOADER_MAGIC 0x36d76289u
#define MB2_HEADER_MAGIC 0xe85250d6u

/* Boot information tag types (multiboot2 specification, section 3.6). */
enum {
	MB2_TAG_END = 0,
	MB2_TAG_CMDLINE = 1,
	MB2_TAG_LOADER_NAME = 2,
	MB2_TAG_MODULE = 3,
	MB2_TAG_BASIC_MEMINFO = 4,
	MB2_TAG_BOOTDEV = 5,
	MB2_TAG_MMAP = 6,
	MB2_TAG_VBE = 7,
	MB2_TAG_FRAMEBUFFER = 8,
	MB2_TAG_ELF_SECTIONS = 9,
	MB2_TAG_APM = 10,
	MB2_TAG_EFI32 = 11,
	MB2_TAG_EFI64 = 12,
	MB2_TAG_SMBIOS = 13,
	MB2_TAG_ACPI_OLD = 14,
	MB2_TAG_ACPI_NEW = 15,
	MB2_TAG_NETWORK = 16,
	MB2_TAG_EFI_MMAP = 17,
	MB2_TAG_EFI_BS = 18,
	MB2_TAG_EFI32_IH = 19,
	MB2_TAG_EFI64_IH = 20,
	MB2_TAG_LOAD_BASE_ADDR = 21,
};

/* Memory map entry types (E820 compatible). */
enum {
	MB2_MEM_AVAILABLE = 1,
	MB2_MEM_RESERVED = 2,
	MB2_MEM_ACPI_RECLAIMABLE = 3,
	MB2_MEM_NVS = 4,
	MB2_MEM_BADRAM = 5,
};

#define MB2_MAX_MMAP 128
#define MB2_MAX_MODULES 16

struct mb2_mmap_entry {
	uint64_t base, len;
	uint32_t type;
};

struct mb2_module {
	uint32_t start, end; /* physical, end exclusive */
	const char *string;
};

struct mb2_info {
	const uint8_t *raw; /* the parsed MBI itself */
	uint32_t total_size;
	const char *cmdline;     /* NULL when absent */
	const char *loader_name; /* NULL when absent */
	int have_meminfo;
	uint32_t mem_lower_kb, mem_upper_kb;
	unsigned n_mmap;
	struct mb2_mmap_entry mmap[MB2_MAX_MMAP];
	unsigned n_modules;
	struct mb2_module modules[MB2_MAX_MODULES];
	const uint8_t *rsdp_old; /* ACPI 1.0 RSDP copy (20 bytes), or NULL */
	uint32_t rsdp_old_len;
	const uint8_t *rsdp_new; /* ACPI 2.0+ RSDP copy, or NULL */
	uint32_t rsdp_new_len;
	uint64_t efi_system_table; /* EFI 64-bit system table tag (12), or 0 */
	int efi_boot_services;     /* tag 18: the firmware's boot services were not exited */
	const uint8_t *efi_mmap;   /* tag 17: the firmware's memory descriptors, or NULL */
	uint32_t efi_mmap_len, efi_desc_size;
	int have_load_base;
	uint32_t load_base; /* where the loader put a relocatable image */
};

/* Parses the MBI at mbi (avail bytes readable there). Returns 0 on success;
 * on failure returns -1 and writes a one-line reason to err. */
int mb2_parse(const void *mbi, size_t avail, struct mb2_info *out, char *err, size_t errlen);

const char *mb2_mem_type_name(uint32_t type);

#endif
