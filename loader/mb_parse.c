/* mb_parse.c - reading a multiboot kernel image (see mb_parse.h): the
 * multiboot2 and multiboot (v1) headers (Multiboot2 specification 1.0,
 * section 3.1; Multiboot 0.6.96, section 3.1) and ELF program headers. */
#include "loader/mb_parse.h"
#include "lib/format.h"
#include "lib/mb1.h"
#include "lib/string.h"

#define ERR(...)                                   \
	do {                                       \
		ksnprintf(err, errlen, __VA_ARGS__); \
		return -1;                         \
	} while (0)

long find_mb2_header(const uint8_t *img, size_t size)
{
	/* Multiboot2 spec 3.1.1: 8-byte aligned, within the first 32 KiB. */
	for (size_t off = 0; off + 16 <= size && off < 32768; off += 8) {
		const uint32_t *h = (const uint32_t *)(img + off);
		if (h[0] == MB2_HEADER_MAGIC && h[0] + h[1] + h[2] + h[3] == 0 && h[2] >= 16 &&
		    off + h[2] <= size)
			return (long)off;
	}
	return -1;
}

long find_mb1_header(const uint8_t *img, size_t size)
{
	/* Multiboot spec 3.1.1: 4-byte aligned, within the first 8 KiB. */
	for (size_t off = 0; off + 12 <= size && off < 8192; off += 4) {
		const uint32_t *h = (const uint32_t *)(img + off);
		if (h[0] == MB1_HEADER_MAGIC && h[0] + h[1] + h[2] == 0)
			return (long)off;
	}
	return -1;
}

/* MBI tags Nestor can provide when a kernel asks for them. */
static bool can_provide(uint32_t type, const struct mb2_info *mb)
{
	switch (type) {
	case MB2_TAG_END: case MB2_TAG_CMDLINE: case MB2_TAG_LOADER_NAME: case MB2_TAG_MODULE:
	case MB2_TAG_BASIC_MEMINFO: case MB2_TAG_MMAP: case MB2_TAG_LOAD_BASE_ADDR:
		return true;
	case MB2_TAG_ACPI_OLD: return mb->rsdp_old != NULL;
	case MB2_TAG_ACPI_NEW: return mb->rsdp_new != NULL;
	default: return false;
	}
}

int parse_mb2_header(const uint8_t *img, size_t size, const struct mb2_info *mb, struct image_info *ii, char *err,
		     size_t errlen)
{
	long off = find_mb2_header(img, size);
	if (off < 0)
		ERR("no multiboot2 header in the first 32 KiB");
	const uint32_t *h = (const uint32_t *)(img + off);
	if (h[1] != 0)
		ERR("multiboot2 header for architecture %u; only i386 (0) is supported", h[1]);
	ii->header_off = off;
	size_t end = off + h[2];
	for (size_t t = off + 16; t + 8 <= end;) {
		uint16_t type, flags;
		uint32_t tsize;
		memcpy(&type, img + t, 2);
		memcpy(&flags, img + t + 2, 2);
		memcpy(&tsize, img + t + 4, 4);
		if (tsize < 8 || t + tsize > end)
			ERR("multiboot2 header tag %u at offset %zu has a bad size %u", type, t - off, tsize);
		const uint8_t *b = img + t + 8;
		bool optional = flags & 1;
		switch (type) {
		case 0:
			t = end;
			continue;
		case 1: /* information request */
			for (uint32_t i = 0; i + 4 <= tsize - 8; i += 4) {
				uint32_t want;
				memcpy(&want, b + i, 4);
				if (!optional && !can_provide(want, mb))
					ERR("the kernel requires boot information tag %u, which Nestor cannot provide",
					    want);
			}
			break;
		case 2: /* address */
			if (tsize < 24)
				ERR("multiboot2 address tag too short");
			ii->have_addr = true;
			memcpy(&ii->header_addr, b, 4);
			memcpy(&ii->load_addr, b + 4, 4);
			memcpy(&ii->load_end_addr, b + 8, 4);
			memcpy(&ii->bss_end_addr, b + 12, 4);
			break;
		case 3: /* entry address */
			if (tsize < 12)
				ERR("multiboot2 entry tag too short");
			ii->have_entry = true;
			memcpy(&ii->entry, b, 4);
			break;
		case 4: case 5: case 6: /* console flags, framebuffer, module alignment */
			break;
		case 10: /* relocatable */
			if (tsize < 24)
				ERR("multiboot2 relocatable tag too short");
			ii->relocatable = true;
			memcpy(&ii->min_addr, b, 4);
			memcpy(&ii->max_addr, b + 4, 4);
			memcpy(&ii->align, b + 8, 4);
			memcpy(&ii->preference, b + 12, 4);
			break;
		default:
			if (!optional)
				ERR("the kernel requires multiboot2 header tag %u, which Nestor does not support", type);
		}
		t += (tsize + 7) & ~7u;
	}
	return 0;
}

int parse_mb1_header(const uint8_t *img, size_t size, struct image_info *ii, char *err, size_t errlen)
{
	long off = find_mb1_header(img, size);
	if (off < 0)
		ERR("no multiboot header in the first 8 KiB");
	const struct mb1_header *h = (const struct mb1_header *)(img + off);
	/* Spec 3.1.2: a loader must refuse requirement bits (0-15) it does not
	 * know.  Video modes (bit 2) are a request Nestor cannot honour. */
	uint32_t known = MB1_HF_PAGE_ALIGN | MB1_HF_MEMINFO;
	if (h->flags & 0xffff & ~known)
		ERR("the kernel requires multiboot features 0x%x that Nestor does not support", h->flags & 0xffff & ~known);
	ii->header_off = off;
	if (h->flags & MB1_HF_AOUT_KLUDGE) {
		if ((size_t)off + sizeof(*h) - 16 > size)
			ERR("multiboot header truncated");
		ii->have_addr = true;
		ii->header_addr = h->header_addr;
		ii->load_addr = h->load_addr;
		ii->load_end_addr = h->load_end_addr;
		ii->bss_end_addr = h->bss_end_addr;
		ii->have_entry = true;
		ii->entry = h->entry_addr;
	}
	return 0;
}

/* --- ELF ------------------------------------------------------------------ */


int elf_segments(const uint8_t *img, size_t size, struct load_seg *segs, unsigned *nsegs, uint64_t *entry,
		 char *err, size_t errlen)
{
	if (size < 52 || memcmp(img, "\177ELF", 4))
		ERR("not an ELF file and no address tag: cannot load it");
	bool is64 = img[4] == 2;
	if ((img[4] != 1 && img[4] != 2) || img[5] != 1)
		ERR("ELF file is neither 32- nor 64-bit little-endian");
	uint16_t machine, phentsize, phnum;
	uint64_t phoff;
	memcpy(&machine, img + 18, 2);
	if (is64) {
		if (size < 64)
			ERR("ELF header truncated");
		memcpy(entry, img + 24, 8);
		memcpy(&phoff, img + 32, 8);
		memcpy(&phentsize, img + 54, 2);
		memcpy(&phnum, img + 56, 2);
		if (machine != 62)
			ERR("64-bit ELF for machine %u, not x86-64", machine);
	} else {
		uint32_t e, p;
		memcpy(&e, img + 24, 4);
		memcpy(&p, img + 28, 4);
		*entry = e;
		phoff = p;
		memcpy(&phentsize, img + 42, 2);
		memcpy(&phnum, img + 44, 2);
		if (machine != 3)
			ERR("32-bit ELF for machine %u, not i386", machine);
	}
	if (phentsize < (is64 ? 56 : 32) || phoff > size || (uint64_t)phnum * phentsize > size - phoff)
		ERR("ELF program headers out of the file");
	*nsegs = 0;
	for (unsigned i = 0; i < phnum; i++) {
		const uint8_t *ph = img + phoff + (uint64_t)i * phentsize;
		uint32_t type;
		memcpy(&type, ph, 4);
		if (type != 1 /* PT_LOAD */)
			continue;
		struct load_seg s;
		if (is64) {
			memcpy(&s.offset, ph + 8, 8);
			memcpy(&s.paddr, ph + 24, 8);
			memcpy(&s.filesz, ph + 32, 8);
			memcpy(&s.memsz, ph + 40, 8);
		} else {
			uint32_t o, p, f, m;
			memcpy(&o, ph + 4, 4);
			memcpy(&p, ph + 12, 4);
			memcpy(&f, ph + 16, 4);
			memcpy(&m, ph + 20, 4);
			s.offset = o, s.paddr = p, s.filesz = f, s.memsz = m;
		}
		if (s.memsz == 0)
			continue;
		if (s.filesz > s.memsz || s.offset > size || s.filesz > size - s.offset)
			ERR("ELF segment %u lies outside the file", i);
		if (s.paddr + s.memsz < s.paddr || s.paddr + s.memsz > (1ull << 32))
			ERR("ELF segment %u is not below 4 GiB (p_paddr 0x%llx)", i, (unsigned long long)s.paddr);
		if (*nsegs == MB_MAX_SEGS)
			ERR("more than %d loadable ELF segments", MB_MAX_SEGS);
		segs[(*nsegs)++] = s;
	}
	if (*nsegs == 0)
		ERR("ELF file has no loadable segment");
	return 0;
}

/* --- what goes where -------------------------------------------------- */

int mb_image_segments(const uint8_t *img, size_t size, const struct image_info *ii, struct load_seg *segs,
		      unsigned *nsegs, uint64_t *entry, char *err, size_t errlen)
{
	*nsegs = 0;
	*entry = 0;
	if (ii->have_addr) {
		/* The header's place in the file ties file offsets to addresses. */
		if (ii->header_addr < ii->load_addr || ii->header_addr - ii->load_addr > (uint64_t)ii->header_off)
			ERR("address tag: header_addr 0x%x and load_addr 0x%x do not match the header's place",
			    ii->header_addr, ii->load_addr);
		uint64_t file_off = ii->header_off - (ii->header_addr - ii->load_addr);
		uint64_t load_size = ii->load_end_addr ? (uint64_t)ii->load_end_addr - ii->load_addr : size - file_off;
		if (ii->load_end_addr && ii->load_end_addr < ii->load_addr)
			ERR("address tag: load_end_addr below load_addr");
		if (file_off + load_size > size)
			ERR("address tag: the image to load runs past the end of the file");
		uint64_t end = ii->bss_end_addr ? ii->bss_end_addr : ii->load_addr + load_size;
		if (end < ii->load_addr + load_size)
			ERR("address tag: bss_end_addr below the loaded image");
		segs[0] = (struct load_seg){ ii->load_addr, file_off, load_size, end - ii->load_addr };
		*nsegs = 1;
		if (!ii->have_entry)
			ERR("address tag without an entry address tag");
	} else if (elf_segments(img, size, segs, nsegs, entry, err, errlen)) {
		return -1;
	}
	if (ii->have_entry)
		*entry = ii->entry;
	return 0;
}
