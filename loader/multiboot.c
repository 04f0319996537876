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

#define ERR(...)                                   \
	do {                                       \
		ksnprintf(err, errlen, __VA_ARGS__); \
		return -1;                         \
	} while (0)

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

/* Nestor, and the loader that loaded it: the command lines are passed on
 * as that loader gave them (GRUB 2 gives no image name in them), and a
 * kernel that tells the conventions apart by the name (Xen strips a first
 * word unless the name says GRUB 2) must find it. */
static const char *loader_name(const struct mb2_info *mb, char *buf, size_t len)
{
	const char *below = mb->loader_name;
	if (!below) {
		ksnprintf(buf, len, "Nestor %s", NESTOR_VERSION);
		return buf;
	}
	/* A Nestor below names its own loader: name that one, once. */
	static const char by[] = " (loaded by ";
	size_t n = strlen(below);
	if (!strncmp(below, "Nestor ", 7) && n && below[n - 1] == ')') {
		for (const char *p = below; *p; p++)
			if (!strncmp(p, by, sizeof(by) - 1)) {
				below = p + sizeof(by) - 1;
				n = strlen(below) - 1;
				break;
			}
	}
	ksnprintf(buf, len, "Nestor %s (loaded by %.*s)", NESTOR_VERSION, (int)n, below);
	return buf;
}

/* The EFI memory map tag (17) as the guest must see it: every page Nestor
 * hides (its image, pools) is EfiReservedMemoryType, as the firmware's own
 * allocation would be; a descriptor that overlaps one is split.  Tag:
 * type, size, descriptor size, version, then the descriptors (UEFI 2.x
 * EFI_MEMORY_DESCRIPTOR: type, physical start, virtual start, pages,
 * attributes). */
#define EFI_MD_MIN 40
static void put_efi_mmap(struct buf *b, const struct vm *vm, const uint8_t *t, uint32_t size)
{
	uint32_t dsize;
	if (size < 16)
		return;
	memcpy(&dsize, t + 8, 4);
	if (dsize < EFI_MD_MIN || dsize > 256)
		return; /* not a map we can rewrite: the guest gets none */
	uint32_t *hdr = put(b, t, 16);
	if (!hdr)
		return;
	size_t start = b->len - 16;
	for (uint32_t off = 16; off + dsize <= size; off += dsize) {
		const uint8_t *d = t + off;
		uint64_t ps, pages;
		memcpy(&ps, d + 8, 8);
		memcpy(&pages, d + 24, 8);
		uint64_t e = ps + (pages << 12), cur = ps;
		if (pages > (1ull << 40) || e < ps)
			continue; /* a descriptor that wraps: left out */
		while (cur < e) {
			/* The next piece: inside a hidden range, or up to the next one. */
			uint64_t next = e;
			bool hidden = false;
			for (unsigned i = 0; i < vm->hidden.n; i++) {
				const struct region *h = &vm->hidden.r[i];
				if (h->start <= cur && cur < h->end) {
					hidden = true;
					next = h->end < e ? h->end : e;
					break;
				}
				if (h->start > cur && h->start < next)
					next = h->start;
			}
			uint8_t *o = put(b, d, dsize);
			if (!o)
				return;
			uint64_t vs;
			memcpy(&vs, d + 16, 8);
			vs += cur - ps;
			uint64_t np = (next - cur) >> 12;
			if (hidden) {
				uint32_t reserved = 0; /* EfiReservedMemoryType */
				memcpy(o, &reserved, 4);
			}
			memcpy(o + 8, &cur, 8);
			memcpy(o + 16, &vs, 8);
			memcpy(o + 24, &np, 8);
			cur = next;
		}
	}
	uint32_t total = (uint32_t)(b->len - start);
	memcpy(b->p + start + 4, &total, 4);
	align8(b);
}

/* Builds the multiboot2 information for a guest at guest address base. */
static void build_mb2(struct buf *b, const struct vm *vm, const struct mb2_info *mb,
		      const struct moved_module *mods, unsigned nmods, bool relocated, uint32_t load_base)
{
	put(b, NULL, 8); /* total_size, reserved: filled in below */
	tag(b, MB2_TAG_CMDLINE, mods[0].string, strlen(mods[0].string) + 1);
	char name[256];
	loader_name(mb, name, sizeof(name));
	tag(b, MB2_TAG_LOADER_NAME, name, strlen(name) + 1);
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
		/* The firmware's boot services are the level below's business:
		 * a guest of Nestor never gets them (nor their image handles). */
		case MB2_TAG_EFI_BS: case MB2_TAG_EFI32_IH: case MB2_TAG_EFI64_IH:
			break;
		case MB2_TAG_EFI_MMAP:
			put_efi_mmap(b, vm, mb->raw + off, size);
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
	char name[256];
	loader_name(mb, name, sizeof(name));
	put(b, name, strlen(name) + 1);
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
	struct load_seg segs[MB_MAX_SEGS];
	unsigned nsegs = 0;
	uint64_t entry = 0;
	if (mb_image_segments(img, size, &ii, segs, &nsegs, &entry, err, errlen))
		return -1;

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
