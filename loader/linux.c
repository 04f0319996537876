/* linux.c - booting a Linux bzImage the way GRUB does in BIOS mode, through
 * the 32-bit boot protocol of Documentation/arch/x86/boot.rst ("The
 * Linux/x86 Boot Protocol"): the kernel's own real-mode setup code is
 * skipped, and the loader does its work instead.  Nestor checks the setup
 * header, loads the protected-mode code, gathers the initrd, builds
 * boot_params (the "zero page", zero-page.rst) with the command line and the
 * e820 memory map without Nestor's memory, and enters the kernel's 32-bit
 * entry point. */
#include "lib/format.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "loader/linux_hdr.h"
#include "loader/loader.h"
#include "mm/mm.h"

#define ERR(...)                                   \
	do {                                       \
		ksnprintf(err, errlen, __VA_ARGS__); \
		return -1;                         \
	} while (0)

/* The rest of boot_params (zero-page.rst). */
enum {
	BP_SIZE = 4096,
	BP_SCREEN_INFO = 0x000, /* struct screen_info, 64 bytes */
	BP_E820_ENTRIES = 0x1e8,
	BP_E820_TABLE = 0x2d0,
	BP_E820_MAX = 128,
	BP_E820_ENTRY_SIZE = 20, /* packed { u64 addr, u64 size, u32 type } */
};

#define BOOT_CS 0x10 /* the selectors the 32-bit entry expects */
#define BOOT_DS 0x18

static void put32(uint8_t *p, unsigned off, uint32_t v) { memcpy(p + off, &v, 4); }
static void put64(uint8_t *p, unsigned off, uint64_t v) { memcpy(p + off, &v, 8); }
static uint64_t page_up(uint64_t x) { return (x + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1); }

/* The lowest block of size bytes aligned to align in the free set, at or
 * above floor and ending at or below limit; 0 if there is none. */
static uint64_t lowest_fit(const struct region_set *free, uint64_t size, uint64_t align, uint64_t floor,
			   uint64_t limit)
{
	for (unsigned i = 0; i < free->n; i++) {
		uint64_t s = free->r[i].start < floor ? floor : free->r[i].start;
		s = (s + align - 1) & ~(align - 1);
		if (s + size <= free->r[i].end && s + size <= limit)
			return s;
	}
	return 0;
}

/* boot.rst, "Loading The Rest of The Kernel", and the fields pref_address,
 * relocatable_kernel and kernel_alignment in "Details of Header Fields". */
static int place_kernel(struct guest_layout *l, const struct linux_image *k, uint64_t *at, char *err, size_t errlen)
{
	/* The kernel decompresses itself within init_size bytes from where it
	 * runs: its load address, rounded up to kernel_alignment when it is
	 * relocatable.  All of that must be free guest RAM, and stays claimed
	 * so that the initrd and boot_params go elsewhere. */
	uint64_t align = k->alignment < PAGE_SIZE ? PAGE_SIZE : k->alignment;
	uint64_t pref = k->pref_address;
	uint64_t runs_at = k->relocatable ? (pref + align - 1) & ~(align - 1) : pref;
	uint64_t first = pref & ~(uint64_t)(PAGE_SIZE - 1), last = page_up(runs_at + k->init_size);
	if (last <= FOUR_GIB && !layout_claim(l, first, last)) {
		*at = pref;
		return 0;
	}
	if (!k->relocatable)
		ERR("the kernel is not relocatable and needs [0x%llx, 0x%llx) (init_size from its pref_address), "
		    "which is not free guest RAM below 4 GiB", (unsigned long long)k->pref_address,
		    (unsigned long long)(k->pref_address + k->init_size));
	/* Else the lowest aligned block above pref_address, not the highest:
	 * the kernel never runs below the address it was built for (it moves
	 * itself up to it), a 32-bit kernel must stay in its directly mapped
	 * low memory, and the top of RAM is left to the initrd, which the
	 * kernel wants high. */
	uint64_t size = page_up(k->init_size);
	uint64_t floor = k->pref_address > ONE_MIB ? k->pref_address : ONE_MIB;
	uint64_t a = lowest_fit(&l->free, size, align, floor, FOUR_GIB);
	if (!a || layout_claim(l, a, a + size))
		ERR("no free guest RAM below 4 GiB for the kernel: %llu KiB (init_size) aligned to 0x%x at or above "
		    "0x%llx", (unsigned long long)(k->init_size >> 10), k->alignment, (unsigned long long)floor);
	*at = a;
	return 0;
}

/* boot.rst, "Details of Header Fields": ramdisk_image, ramdisk_size and
 * initrd_addr_max.  The modules after the kernel make one initrd: several
 * are concatenated, each padded to 4 bytes as GRUB does with several
 * initrds (the kernel unpacks one cpio archive after another). */
static int place_initrd(struct guest_layout *l, const struct moved_module *mods, unsigned nmods,
			const struct linux_image *k, uint32_t *at, uint32_t *len, char *err, size_t errlen)
{
	*at = *len = 0;
	if (nmods < 2)
		return 0;
	/* Every byte of the initrd must be at or below initrd_addr_max. */
	uint64_t limit = (uint64_t)k->initrd_addr_max + 1;
	if (nmods == 2 && mods[1].end <= limit) {
		*at = mods[1].start;
		*len = mods[1].end - mods[1].start;
		return 0;
	}
	uint64_t total = 0;
	for (unsigned i = 1; i < nmods; i++)
		total += ((uint64_t)mods[i].end - mods[i].start + 3) & ~3ull;
	uint64_t dst = layout_alloc_top(l, total, PAGE_SIZE, limit);
	if (!dst)
		ERR("no room for the initrd (%llu KiB) in free guest RAM below initrd_addr_max 0x%x",
		    (unsigned long long)(total >> 10), k->initrd_addr_max);
	/* The destination was free, so it overlaps none of the modules. */
	uint8_t *p = phys_to_virt(dst);
	for (unsigned i = 1; i < nmods; i++) {
		uint32_t n = mods[i].end - mods[i].start, padded = (n + 3) & ~3u;
		memcpy(p, phys_to_virt(mods[i].start), n);
		memset(p + n, 0, padded - n);
		p += padded;
	}
	*at = (uint32_t)dst;
	*len = (uint32_t)total;
	return 0;
}

/* boot.rst, "The Kernel Command Line": NUL-terminated, at most cmdline_size
 * bytes before the NUL. */
static int place_cmdline(struct guest_layout *l, const char *cmdline, const struct linux_image *k, uint32_t *at,
			 char *err, size_t errlen)
{
	size_t n = strlen(cmdline);
	if (n > k->cmdline_size)
		ERR("the command line is %zu bytes, longer than the %u this kernel takes (cmdline_size)", n,
		    k->cmdline_size);
	uint64_t a = layout_alloc_top(l, n + 1, PAGE_SIZE, FOUR_GIB);
	if (!a)
		ERR("no guest RAM left below 4 GiB for the command line");
	memcpy(phys_to_virt(a), cmdline, n + 1);
	*at = (uint32_t)a;
	return 0;
}

/* boot_params.e820_table: the machine's memory map without Nestor's memory
 * (multiboot memory types are the e820 types). */
static void fill_e820(uint8_t *bp, const struct vm *vm, const struct mb2_info *mb)
{
	struct mb2_mmap_entry m[BP_E820_MAX];
	unsigned n = guest_memory_map(vm, mb, m, BP_E820_MAX);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = bp + BP_E820_TABLE + i * BP_E820_ENTRY_SIZE;
		put64(e, 0, m[i].base);
		put64(e, 8, m[i].len);
		put32(e, 16, m[i].type);
	}
	bp[BP_E820_ENTRIES] = (uint8_t)n;
}

/* boot_params.screen_info (include/uapi/linux/screen_info.h): the text
 * mode the BIOS left, read from its data area as GRUB does in BIOS mode,
 * so that Linux finds its VGA console where it is.  Nothing when the BIOS
 * reports no text mode: Linux then uses no VGA console. */
enum {
	SI_ORIG_X = 0x00,
	SI_ORIG_Y = 0x01,
	SI_VIDEO_MODE = 0x06,
	SI_VIDEO_COLS = 0x07,
	SI_VIDEO_LINES = 0x0e,
	SI_VIDEO_IS_VGA = 0x0f,
	SI_VIDEO_POINTS = 0x10,
	BDA_VIDEO_MODE = 0x449, /* the BIOS data area (IBM PC BIOS, INT 10h) */
	BDA_VIDEO_COLS = 0x44a,
	BDA_CURSOR_PAGE0 = 0x450, /* column, then row */
	BDA_VIDEO_ROWS_M1 = 0x484,
	BDA_CHAR_HEIGHT = 0x485,
};

static void fill_screen_info(uint8_t *bp)
{
	const uint8_t *bda = phys_to_virt(0);
	uint8_t mode = bda[BDA_VIDEO_MODE] & 0x7f;
	if (mode != 2 && mode != 3 && mode != 7)
		return;
	uint8_t *si = bp + BP_SCREEN_INFO;
	si[SI_ORIG_X] = bda[BDA_CURSOR_PAGE0];
	si[SI_ORIG_Y] = bda[BDA_CURSOR_PAGE0 + 1];
	si[SI_VIDEO_MODE] = mode;
	si[SI_VIDEO_COLS] = bda[BDA_VIDEO_COLS] ? bda[BDA_VIDEO_COLS] : 80;
	si[SI_VIDEO_LINES] = bda[BDA_VIDEO_ROWS_M1] ? bda[BDA_VIDEO_ROWS_M1] + 1 : 25;
	si[SI_VIDEO_IS_VGA] = 1; /* VGA text */
	uint16_t points = bda[BDA_CHAR_HEIGHT] ? bda[BDA_CHAR_HEIGHT] : 16;
	memcpy(si + SI_VIDEO_POINTS, &points, 2);
}

struct placed {
	uint64_t kernel;
	uint32_t cmdline, initrd, initrd_len;
};

/* boot.rst, "32-bit Boot Protocol": boot_params zeroed, the setup header
 * copied from the image, then the fields a boot loader writes. */
static void build_boot_params(uint8_t *bp, const struct linux_image *k, const struct placed *p, const struct vm *vm,
			      const struct mb2_info *mb)
{
	memset(bp, 0, BP_SIZE);
	memcpy(bp + HDR_START, k->img + HDR_START, k->hdr_end - HDR_START);
	bp[HDR_TYPE_OF_LOADER] = 0xff; /* no registered loader id */
	/* LOADED_HIGH only: CAN_USE_HEAP (and heap_end_ptr) concern the
	 * real-mode setup code, which the 32-bit entry skips. */
	bp[HDR_LOADFLAGS] = LOADED_HIGH;
	put32(bp, HDR_CODE32_START, (uint32_t)p->kernel);
	put32(bp, HDR_RAMDISK_IMAGE, p->initrd);
	put32(bp, HDR_RAMDISK_SIZE, p->initrd_len);
	put32(bp, HDR_CMD_LINE_PTR, p->cmdline);
	fill_e820(bp, vm, mb);
	fill_screen_info(bp);
	/* acpi_rsdp_addr stays 0: Linux scans the BIOS areas for the RSDP,
	 * and Nestor leaves them intact. */
}

/* boot.rst, "32-bit Boot Protocol": protected mode with paging off, a GDT
 * holding flat 4 GiB __BOOT_CS (0x10, execute/read) and __BOOT_DS (0x18,
 * read/write) loaded in CS and DS/ES/SS, interrupts off, ESI = boot_params,
 * EBX = EBP = EDI = 0.  page is a free guest page for the GDT and a stack. */
static void entry_state(struct guest_state *gs, uint64_t entry, uint32_t boot_params, uint32_t page)
{
	uint64_t *gdt = phys_to_virt(page);
	memset(gdt, 0, PAGE_SIZE);
	gdt[BOOT_CS / 8] = 0x00cf9a000000ffffull;
	gdt[BOOT_DS / 8] = 0x00cf92000000ffffull;

	memset(gs, 0, sizeof(*gs));
	gs->gpr[RSI] = boot_params;
	gs->rip = entry;
	/* The protocol asks for no stack and the kernel sets up its own; this
	 * one, at the top of the GDT's page, only keeps ESP sane. */
	gs->rsp = page + PAGE_SIZE;
	gs->rflags = RFLAGS_FIXED;
	gs->cr0 = CR0_PE | CR0_ET;
	gs->pat = rdmsr(MSR_IA32_PAT);
	for (int i = 0; i < 6; i++) {
		gs->seg[i].sel = i == SEG_CS ? BOOT_CS : BOOT_DS;
		gs->seg[i].limit = 0xffffffff;
		/* The descriptors above, marked accessed as VM entry requires. */
		gs->seg[i].ar = i == SEG_CS ? 0xc09b : 0xc093;
	}
	gs->seg[SEG_LDTR].ar = 1u << 16; /* unusable */
	gs->seg[SEG_TR].limit = 0xffff;
	gs->seg[SEG_TR].ar = 0x8b;       /* busy 32-bit TSS, as VM entry requires */
	gs->gdtr_base = page;
	gs->gdtr_limit = 4 * 8 - 1;
}

int load_linux(struct guest_layout *l, const struct mb2_info *mb, const struct moved_module *mods, unsigned nmods,
	       struct guest_state *gs, char *err, size_t errlen)
{
	struct linux_image k;
	if (linux_check_header(phys_to_virt(mods[0].start), mods[0].end - mods[0].start, &k, err, errlen))
		return -1;
	struct placed p;
	if (place_kernel(l, &k, &p.kernel, err, errlen))
		return -1;
	/* "Loading The Rest of The Kernel": the protected-mode code follows
	 * the setup sectors in the file; its 32-bit entry is its start. */
	memcpy(phys_to_virt(p.kernel), k.img + k.setup_size, k.prot_size);
	if (place_initrd(l, mods, nmods, &k, &p.initrd, &p.initrd_len, err, errlen) ||
	    place_cmdline(l, mods[0].string, &k, &p.cmdline, err, errlen))
		return -1;
	uint32_t bp_at = (uint32_t)layout_alloc_top(l, BP_SIZE, PAGE_SIZE, FOUR_GIB);
	uint32_t page = (uint32_t)layout_alloc_top(l, PAGE_SIZE, PAGE_SIZE, FOUR_GIB);
	if (!bp_at || !page)
		ERR("no guest RAM left below 4 GiB for boot_params");
	build_boot_params(phys_to_virt(bp_at), &k, &p, l->vm, mb);
	entry_state(gs, p.kernel, bp_at, page);

	char initrd[64] = "no initrd";
	if (nmods > 1)
		ksnprintf(initrd, sizeof(initrd), "initrd [%x, %x) from %u module%s", p.initrd,
			  p.initrd + p.initrd_len, nmods - 1, nmods > 2 ? "s" : "");
	pr_info("guest: Linux boot protocol %u.%02u, kernel at %llx (init_size %llu KiB), boot_params at %x, "
		"command line at %x, %s\n", k.version >> 8, k.version & 0xff, (unsigned long long)p.kernel,
		(unsigned long long)(k.init_size >> 10), bp_at, p.cmdline, initrd);
	return 0;
}
