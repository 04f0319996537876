/* multiboot.c - loading multiboot2 and multiboot (v1) kernels as GRUB does
 * (Multiboot2 specification 1.0, sections 3.1-3.6; Multiboot 0.6.96,
 * sections 3.1-3.3). */
#include "boot/boot_regs.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/mb1.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "loader/loader.h"
#include "mm/mm.h"

#ifndef NESTOR_VERSION
#define NESTOR_VERSION "dev"
#endif

struct image_info {
	bool have_addr;      /* address tag / a.out kludge */
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr;
	bool have_entry;
	uint32_t entry;
	bool relocatable;
	uint32_t min_addr, max_addr, align, preference;
	long header_off;
};

#define ERR(...)                                   \
	do {                                       \
		ksnprintf(err, errlen, __VA_ARGS__); \
		return -1;                         \
	} while (0)

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

static int parse_mb2_header(const uint8_t *img, size_t size, const struct mb2_info *mb, struct image_info *ii,
			    char *err, size_t errlen)
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

static int parse_mb1_header(const uint8_t *img, size_t size, struct image_info *ii, char *err, size_t errlen)
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

struct seg {
	uint64_t paddr, offset, filesz, memsz;
};

static int elf_segments(const uint8_t *img, size_t size, struct seg *segs, unsigned *nsegs, uint64_t *entry,
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
		struct seg s;
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
		if (*nsegs == 16)
			ERR("more than 16 loadable ELF segments");
		segs[(*nsegs)++] = s;
	}
	if (*nsegs == 0)
		ERR("ELF file has no loadable segment");
	return 0;
}

/* --- the boot information ----------------------------------------------- */

static void meminfo(const struct mb2_mmap_entry *m, unsigned n, uint32_t *lower, uint32_t *upper)
{
	*lower = *upper = 0;
	for (unsigned i = 0; i < n; i++) {
		if (m[i].type != MB2_MEM_AVAILABLE)
			continue;
		if (m[i].base == 0)
			*lower = (uint32_t)((m[i].len > 0xa0000 ? 0xa0000 : m[i].len) >> 10);
		if (m[i].base <= 0x100000 && m[i].base + m[i].len > 0x100000)
			*upper = (uint32_t)((m[i].base + m[i].len - 0x100000) >> 10);
	}
}

struct buf {
	uint8_t *p;
	size_t len, cap;
	bool overflow;
};

static void *put(struct buf *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		b->overflow = true;
		return NULL;
	}
	void *at = b->p + b->len;
	if (data)
		memcpy(at, data, n);
	else
		memset(at, 0, n);
	b->len += n;
	return at;
}

static void align8(struct buf *b)
{
	while (b->len & 7)
		put(b, NULL, 1);
}

static void tag(struct buf *b, uint32_t type, const void *body, uint32_t blen)
{
	uint32_t hdr[2] = { type, 8 + blen };
	put(b, hdr, 8);
	put(b, body, blen);
	align8(b);
}

static const char *loader_name(void) { return "Nestor " NESTOR_VERSION; }

/* Builds the multiboot2 information for a guest at guest address base. */
static void build_mb2(struct buf *b, const struct vm *vm, const struct mb2_info *mb,
		      const struct moved_module *mods, unsigned nmods, bool relocated, uint32_t load_base)
{
	put(b, NULL, 8); /* total_size, reserved: filled in below */
	tag(b, MB2_TAG_CMDLINE, mods[0].string, strlen(mods[0].string) + 1);
	tag(b, MB2_TAG_LOADER_NAME, loader_name(), strlen(loader_name()) + 1);
	for (unsigned i = 1; i < nmods; i++) {
		uint32_t hdr[4] = { MB2_TAG_MODULE, 16 + strlen(mods[i].string) + 1, mods[i].start, mods[i].end };
		put(b, hdr, 16);
		put(b, mods[i].string, strlen(mods[i].string) + 1);
		align8(b);
	}
	struct mb2_mmap_entry m[MB2_MAX_MMAP];
	unsigned n = guest_memory_map(vm, mb, m, MB2_MAX_MMAP);
	uint32_t mi[2];
	meminfo(m, n, &mi[0], &mi[1]);
	tag(b, MB2_TAG_BASIC_MEMINFO, mi, 8);
	uint32_t mh[4] = { MB2_TAG_MMAP, 16 + 24 * n, 24, 0 };
	put(b, mh, 16);
	for (unsigned i = 0; i < n; i++) {
		uint8_t e[24] = { 0 };
		memcpy(e, &m[i].base, 8);
		memcpy(e + 8, &m[i].len, 8);
		memcpy(e + 16, &m[i].type, 4);
		put(b, e, 24);
	}
	if (relocated)
		tag(b, MB2_TAG_LOAD_BASE_ADDR, &load_base, 4);
	/* Tags that describe the machine (ACPI, SMBIOS, boot device, EFI...)
	 * are passed on as the loader below gave them. */
	for (uint32_t off = 8; off + 8 <= mb->total_size;) {
		uint32_t type, size;
		memcpy(&type, mb->raw + off, 4);
		memcpy(&size, mb->raw + off + 4, 4);
		if (type == MB2_TAG_END || size < 8)
			break;
		switch (type) {
		case MB2_TAG_CMDLINE: case MB2_TAG_LOADER_NAME: case MB2_TAG_MODULE: case MB2_TAG_BASIC_MEMINFO:
		case MB2_TAG_MMAP: case MB2_TAG_ELF_SECTIONS: case MB2_TAG_LOAD_BASE_ADDR:
			break;
		default:
			put(b, mb->raw + off, size);
			align8(b);
		}
		off += (size + 7) & ~7u;
	}
	uint32_t end[2] = { MB2_TAG_END, 8 };
	put(b, end, 8);
	uint32_t total = (uint32_t)b->len;
	memcpy(b->p, &total, 4);
}

/* Builds the multiboot (v1) information: the structure, then its strings,
 * module list and memory map, all addressed from guest address base. */
static uint32_t build_mb1(struct buf *b, uint32_t base, const struct vm *vm, const struct mb2_info *mb,
			  const struct moved_module *mods, unsigned nmods)
{
	struct mb1_info *info = put(b, NULL, sizeof(struct mb1_info));
	if (!info)
		return 0;
	struct mb2_mmap_entry m[MB2_MAX_MMAP];
	unsigned n = guest_memory_map(vm, mb, m, MB2_MAX_MMAP);
	info->flags = MB1_INFO_MEM | MB1_INFO_CMDLINE | MB1_INFO_MODS | MB1_INFO_MMAP | MB1_INFO_LOADER_NAME;
	uint32_t lower, upper;
	meminfo(m, n, &lower, &upper);
	info->mem_lower = lower;
	info->mem_upper = upper;
	info->cmdline = base + (uint32_t)b->len;
	put(b, mods[0].string, strlen(mods[0].string) + 1);
	info->boot_loader_name = base + (uint32_t)b->len;
	put(b, loader_name(), strlen(loader_name()) + 1);
	align8(b);
	info->mods_count = nmods - 1;
	info->mods_addr = base + (uint32_t)b->len;
	struct mb1_module *mm = put(b, NULL, sizeof(struct mb1_module) * (nmods - 1));
	for (unsigned i = 1; i < nmods && mm; i++) {
		mm[i - 1].mod_start = mods[i].start;
		mm[i - 1].mod_end = mods[i].end;
		mm[i - 1].string = base + (uint32_t)b->len;
		put(b, mods[i].string, strlen(mods[i].string) + 1);
	}
	align8(b);
	info->mmap_addr = base + (uint32_t)b->len;
	for (unsigned i = 0; i < n; i++) {
		struct mb1_mmap_entry e = { 20, m[i].base, m[i].len, m[i].type };
		put(b, &e, sizeof(e));
	}
	info->mmap_length = base + (uint32_t)b->len - info->mmap_addr;
	return MB1_BOOTLOADER_MAGIC;
}

/* --- putting it together ---------------------------------------------- */

static uint64_t place_relocatable(struct guest_layout *l, const struct image_info *ii, uint64_t size)
{
	uint64_t align = ii->align ? ii->align : 1;
	uint64_t limit = (uint64_t)ii->max_addr + 1;
	uint64_t at;
	if (ii->preference != 1) { /* none or high: as high as possible */
		if (rs_find_top(&l->free, (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), align < PAGE_SIZE ? PAGE_SIZE : align,
				limit, &at) == 0 && at >= ii->min_addr)
			return at;
		return 0;
	}
	/* low: the lowest aligned block at or above min_addr */
	for (unsigned i = 0; i < l->free.n; i++) {
		uint64_t s = l->free.r[i].start < ii->min_addr ? ii->min_addr : l->free.r[i].start;
		s = (s + align - 1) / align * align;
		if (s + size <= l->free.r[i].end && s + size <= limit)
			return s;
	}
	return 0;
}

int load_multiboot(struct vm *vm, struct guest_layout *l, const struct mb2_info *mb,
		   const struct moved_module *mods, unsigned nmods, enum guest_format format, struct guest_state *gs,
		   char *err, size_t errlen)
{
	const uint8_t *img = phys_to_virt(mods[0].start);
	size_t size = mods[0].end - mods[0].start;
	struct image_info ii = { 0 };
	bool mb2 = format == GUEST_MULTIBOOT2;
	if ((mb2 ? parse_mb2_header(img, size, mb, &ii, err, errlen) : parse_mb1_header(img, size, &ii, err, errlen)))
		return -1;

	/* What to copy where: ELF segments, or the address-tag image. */
	struct seg segs[16];
	unsigned nsegs = 0;
	uint64_t entry = 0;
	if (ii.have_addr) {
		if (ii.header_addr < ii.load_addr || ii.header_addr - ii.load_addr > (uint64_t)ii.header_off)
			ERR("address tag: header_addr 0x%x and load_addr 0x%x do not match the header's place",
			    ii.header_addr, ii.load_addr);
		uint64_t file_off = ii.header_off - (ii.header_addr - ii.load_addr);
		uint64_t load_size = ii.load_end_addr ? (uint64_t)ii.load_end_addr - ii.load_addr : size - file_off;
		if (ii.load_end_addr && ii.load_end_addr < ii.load_addr)
			ERR("address tag: load_end_addr below load_addr");
		if (file_off + load_size > size)
			ERR("address tag: the image to load runs past the end of the file");
		uint64_t end = ii.bss_end_addr ? ii.bss_end_addr : ii.load_addr + load_size;
		if (end < ii.load_addr + load_size)
			ERR("address tag: bss_end_addr below the loaded image");
		segs[0] = (struct seg){ ii.load_addr, file_off, load_size, end - ii.load_addr };
		nsegs = 1;
		if (!ii.have_entry)
			ERR("address tag without an entry address tag");
	} else if (elf_segments(img, size, segs, &nsegs, &entry, err, errlen)) {
		return -1;
	}
	if (ii.have_entry)
		entry = ii.entry;

	uint64_t lo = ~0ull, hi = 0;
	for (unsigned i = 0; i < nsegs; i++) {
		if (segs[i].paddr < lo)
			lo = segs[i].paddr;
		if (segs[i].paddr + segs[i].memsz > hi)
			hi = segs[i].paddr + segs[i].memsz;
	}
	/* A relocatable kernel goes where its tag asks; the others where they
	 * are linked, which must be free guest RAM. */
	uint64_t delta = 0;
	if (ii.relocatable) {
		uint64_t base = place_relocatable(l, &ii, hi - lo);
		if (!base)
			ERR("no room for the relocatable kernel (%llu KiB) in [0x%x, 0x%x] aligned to 0x%x",
			    (unsigned long long)((hi - lo) >> 10), ii.min_addr, ii.max_addr, ii.align);
		delta = base - lo;
	}
	uint64_t first = (lo + delta) & ~(PAGE_SIZE - 1), last = (hi + delta + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	if (layout_claim(l, first, last))
		ERR("the kernel wants [0x%llx, 0x%llx), which is not free guest RAM", (unsigned long long)(lo + delta),
		    (unsigned long long)(hi + delta));
	for (unsigned i = 0; i < nsegs; i++) {
		uint8_t *dst = phys_to_virt(segs[i].paddr + delta);
		memcpy(dst, img + segs[i].offset, segs[i].filesz);
		memset(dst + segs[i].filesz, 0, segs[i].memsz - segs[i].filesz);
	}
	entry += delta;
	if (entry >= (1ull << 32))
		ERR("the kernel's entry point 0x%llx is not a 32-bit address", (unsigned long long)entry);

	/* The boot information, at the top of free guest RAM, and a stack. */
	struct buf b = { .p = pages_alloc(4, 1), .cap = 4 * PAGE_SIZE };
	if (!b.p)
		ERR("out of pool memory building the boot information");
	uint32_t info_at = (uint32_t)layout_alloc_top(l, b.cap, PAGE_SIZE, 1ull << 32);
	uint32_t stack_top = (uint32_t)layout_alloc_top(l, 4 * PAGE_SIZE, PAGE_SIZE, 1ull << 32);
	if (!info_at || !stack_top) {
		pages_free(b.p, 4);
		ERR("no guest RAM left for the boot information");
	}
	stack_top += 4 * PAGE_SIZE;
	uint32_t magic = MB2_BOOTLOADER_MAGIC;
	if (mb2)
		build_mb2(&b, vm, mb, mods, nmods, ii.relocatable, (uint32_t)(lo + delta));
	else
		magic = build_mb1(&b, info_at, vm, mb, mods, nmods);
	if (b.overflow) {
		pages_free(b.p, 4);
		ERR("the boot information does not fit in %zu bytes", b.cap);
	}
	memcpy(phys_to_virt(info_at), b.p, b.len);
	pages_free(b.p, 4);

	/* The state GRUB handed to Nestor, now handed to the guest. */
	const struct boot_regs *r = boot_regs_get();
	memset(gs, 0, sizeof(*gs));
	gs->gpr[RAX] = magic;
	gs->gpr[RBX] = info_at;
	gs->gpr[RCX] = r->ecx;
	gs->gpr[RDX] = r->edx;
	gs->gpr[RSI] = r->esi;
	gs->gpr[RDI] = r->edi;
	gs->gpr[RBP] = r->ebp;
	gs->rsp = stack_top;
	gs->rip = entry;
	gs->rflags = r->eflags;
	gs->cr0 = (r->cr0 | CR0_PE) & ~(uint64_t)CR0_PG;
	gs->cr4 = r->cr4;
	gs->pat = rdmsr(MSR_IA32_PAT);
	const uint16_t sels[6] = { r->es, r->cs, r->ss, r->ds, r->fs, r->gs };
	for (int i = 0; i < 6; i++) {
		gs->seg[i].sel = sels[i];
		gs->seg[i].limit = 0xffffffff;
		gs->seg[i].ar = i == SEG_CS ? 0xc09b : 0xc093; /* flat 32-bit code / data */
	}
	gs->seg[SEG_LDTR].ar = 1u << 16; /* unusable */
	gs->seg[SEG_TR].limit = 0xffff;
	gs->seg[SEG_TR].ar = 0x8b;       /* busy 32-bit TSS, as VM entry requires */
	gs->gdtr_base = r->gdtr_base;
	gs->gdtr_limit = r->gdtr_limit;
	gs->idtr_base = r->idtr_base;
	gs->idtr_limit = r->idtr_limit;
	pr_info("guest: loaded at [%llx, %llx), entry %llx, boot information at %x\n",
		(unsigned long long)(lo + delta), (unsigned long long)(hi + delta), (unsigned long long)entry, info_at);
	return 0;
}
