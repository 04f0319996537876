/* mb2.c - multiboot2 boot information parser (see mb2.h). */
#include "lib/mb2.h"
#include "lib/format.h"
#include "lib/string.h"

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* A string field must end with a NUL inside its tag. */
static const char *tag_string(const uint8_t *s, size_t room)
{
	if (room == 0 || strnlen((const char *)s, room) == room)
		return NULL;
	return (const char *)s;
}

#define FAIL(...)                                         \
	do {                                              \
		if (errlen)                               \
			ksnprintf(err, errlen, __VA_ARGS__); \
		return -1;                                \
	} while (0)

int mb2_parse(const void *mbi, size_t avail, struct mb2_info *out, char *err, size_t errlen)
{
	const uint8_t *base = mbi;
	memset(out, 0, sizeof(*out));
	if (!mbi)
		FAIL("boot information pointer is NULL");
	if (((uintptr_t)mbi & 7) != 0)
		FAIL("boot information at %p is not 8-byte aligned", mbi);
	if (avail < 16)
		FAIL("boot information buffer too small (%zu bytes)", avail);
	uint32_t total = rd32(base);
	if (total < 16)
		FAIL("boot information total_size %u is below the 16-byte minimum", total);
	if (total > avail)
		FAIL("boot information total_size %u exceeds the %zu bytes available", total, avail);
	out->total_size = total;
	out->raw = base;

	size_t off = 8;
	int saw_end = 0;
	while (off + 8 <= total) {
		const uint8_t *tag = base + off;
		uint32_t type = rd32(tag), size = rd32(tag + 4);
		if (size < 8)
			FAIL("tag type %u at offset %zu has size %u (< 8)", type, off, size);
		if (size > total - off)
			FAIL("tag type %u at offset %zu (size %u) runs past total_size %u", type, off, size, total);
		const uint8_t *body = tag + 8;
		size_t blen = size - 8;
		switch (type) {
		case MB2_TAG_END:
			if (size != 8)
				FAIL("end tag has size %u (must be 8)", size);
			saw_end = 1;
			break;
		case MB2_TAG_CMDLINE:
			if (!(out->cmdline = tag_string(body, blen)))
				FAIL("command-line tag string is not NUL-terminated");
			break;
		case MB2_TAG_LOADER_NAME:
			if (!(out->loader_name = tag_string(body, blen)))
				FAIL("boot-loader-name tag string is not NUL-terminated");
			break;
		case MB2_TAG_BASIC_MEMINFO:
			if (blen < 8)
				FAIL("basic meminfo tag too short (%u bytes)", size);
			out->have_meminfo = 1;
			out->mem_lower_kb = rd32(body);
			out->mem_upper_kb = rd32(body + 4);
			break;
		case MB2_TAG_MODULE: {
			if (blen < 8)
				FAIL("module tag too short (%u bytes)", size);
			if (out->n_modules >= MB2_MAX_MODULES)
				FAIL("more than %d modules", MB2_MAX_MODULES);
			struct mb2_module *m = &out->modules[out->n_modules];
			m->start = rd32(body);
			m->end = rd32(body + 4);
			if (m->end < m->start)
				FAIL("module %u ends (0x%x) before it starts (0x%x)", out->n_modules, m->end, m->start);
			if (!(m->string = tag_string(body + 8, blen - 8)))
				FAIL("module %u string is not NUL-terminated", out->n_modules);
			out->n_modules++;
			break;
		}
		case MB2_TAG_MMAP: {
			if (blen < 8)
				FAIL("memory map tag too short (%u bytes)", size);
			uint32_t esize = rd32(body), ever = rd32(body + 4);
			if (esize < 24 || esize % 8)
				FAIL("memory map entry_size %u is invalid (>= 24, multiple of 8)", esize);
			if (ever != 0)
				FAIL("memory map entry_version %u is unknown", ever);
			if ((blen - 8) % esize)
				FAIL("memory map tag size %u is not a whole number of %u-byte entries", size, esize);
			for (size_t e = 8; e + esize <= blen; e += esize) {
				if (out->n_mmap >= MB2_MAX_MMAP)
					FAIL("memory map has more than %d entries", MB2_MAX_MMAP);
				struct mb2_mmap_entry *m = &out->mmap[out->n_mmap++];
				m->base = rd64(body + e);
				m->len = rd64(body + e + 8);
				m->type = rd32(body + e + 16);
				if (m->base + m->len < m->base)
					FAIL("memory map entry 0x%llx+0x%llx wraps around", (unsigned long long)m->base,
					     (unsigned long long)m->len);
			}
			break;
		}
		case MB2_TAG_ACPI_OLD:
			if (blen < 20)
				FAIL("ACPI 1.0 RSDP tag too short (%u bytes)", size);
			out->rsdp_old = body;
			out->rsdp_old_len = blen;
			break;
		case MB2_TAG_ACPI_NEW:
			if (blen < 36)
				FAIL("ACPI 2.0 RSDP tag too short (%u bytes)", size);
			out->rsdp_new = body;
			out->rsdp_new_len = blen;
			break;
		case MB2_TAG_EFI64:
			if (blen < 8)
				FAIL("EFI 64-bit system table tag too short (%u bytes)", size);
			out->efi_system_table = rd64(body);
			break;
		case MB2_TAG_EFI_MMAP:
			if (blen < 8)
				FAIL("EFI memory map tag too short (%u bytes)", size);
			out->efi_desc_size = rd32(body);
			out->efi_mmap = body + 8;
			out->efi_mmap_len = blen - 8;
			if (out->efi_desc_size < 40 || out->efi_desc_size % 8)
				FAIL("EFI memory map descriptor size %u is invalid (>= 40, multiple of 8)", out->efi_desc_size);
			break;
		case MB2_TAG_EFI_BS:
			out->efi_boot_services = 1;
			break;
		case MB2_TAG_LOAD_BASE_ADDR:
			if (blen < 4)
				FAIL("load base address tag too short (%u bytes)", size);
			out->have_load_base = 1;
			out->load_base = rd32(body);
			break;
		default:
			/* Tags we do not use are skipped, as the specification requires. */
			break;
		}
		if (saw_end)
			break;
		off += ((size_t)size + 7) & ~(size_t)7;
	}
	if (!saw_end)
		FAIL("no end tag within total_size %u", total);
	return 0;
}

const char *mb2_mem_type_name(uint32_t type)
{
	switch (type) {
	case MB2_MEM_AVAILABLE: return "available";
	case MB2_MEM_RESERVED: return "reserved";
	case MB2_MEM_ACPI_RECLAIMABLE: return "ACPI reclaimable";
	case MB2_MEM_NVS: return "ACPI NVS";
	case MB2_MEM_BADRAM: return "bad RAM";
	default: return "unknown";
	}
}
