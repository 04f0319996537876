/* hostile.c - the shared pieces of the hostile suite (see hostile.h): the
 * guest's memory facts, a window of its linear space with pages of its
 * choice, and an L2 with an EPT of its own. */
#include "guest/tests/hostile.h"
#include "guest/nestor.h"
#include "guest/test.h"
#include "lib/format.h"
#include "lib/string.h"
#include "lib/x86.h"

/* The marker a copy of the image may have a test name patched after. */
static const volatile char hx_only[64] = "hostile-only:";

bool hx_skip(const char *name)
{
	const volatile char *sel = hx_only + 13;
	if (!sel[0])
		return false;
	size_t i = 0;
	for (; name[i] && sel[i] == name[i]; i++)
		;
	return !(name[i] == 0 && sel[i] == 0);
}

bool hx_nestor(void) { return nestor_present(); }

static uint8_t cmos(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

uint64_t hx_ram_end(void)
{
	uint64_t above16 = cmos(0x34) | (uint64_t)cmos(0x35) << 8;
	uint64_t above1 = cmos(0x30) | (uint64_t)cmos(0x31) << 8;
	uint64_t end = above16 ? (16ull << 20) + (above16 << 16) : (1ull << 20) + (above1 << 10);
	return end > (3ull << 30) ? 3ull << 30 : end;
}

unsigned hx_maxphyaddr(void)
{
	return cpuid(0x80000000, 0).eax >= 0x80000008 ? cpuid(0x80000008, 0).eax & 0xff : 36;
}

static const struct mb2_mmap_entry *map_entry(uint64_t a)
{
	for (unsigned i = 0; i < boot_info.n_mmap; i++) {
		const struct mb2_mmap_entry *e = &boot_info.mmap[i];
		if (a >= e->base && a < e->base + e->len)
			return e;
	}
	return 0;
}

/* A page of RAM the memory map does not give us (and that is not a
 * firmware table): a Nestor's own memory. */
static bool hidden_page(uint64_t p)
{
	const struct mb2_mmap_entry *e = map_entry(p);
	return !e || (e->type != MB2_MEM_AVAILABLE && e->type != MB2_MEM_ACPI_RECLAIMABLE && e->type != MB2_MEM_NVS);
}

uint64_t hx_nonram_page(void)
{
	uint64_t end = hx_ram_end();
	for (uint64_t p = 1ull << 20; p < end; p += 4096)
		if (hidden_page(p))
			return p;
	/* No RAM is hidden from us: an address above RAM that nothing decodes. */
	return ((end + (256ull << 20) - 1) & ~((256ull << 20) - 1)) + (256ull << 20);
}

uint64_t hx_ram_before_hole(void)
{
	uint64_t end = hx_ram_end();
	for (uint64_t p = 1ull << 20; p + 4096 < end; p += 4096) {
		const struct mb2_mmap_entry *e = map_entry(p);
		if (e && e->type == MB2_MEM_AVAILABLE && hidden_page(p + 4096))
			return p;
	}
	return 0;
}

/* --- the window ------------------------------------------------------------ */
static uint64_t win_pdpt[512] __attribute__((aligned(4096)));
static uint64_t win_pd4k[512] __attribute__((aligned(4096)));
static uint64_t win_pt[512] __attribute__((aligned(4096)));
static uint64_t win_pd2m[512] __attribute__((aligned(4096)));
static bool win_on;

static uint64_t *kernel_pml4(void) { return (uint64_t *)(read_cr3() & ~0xfffull); }

void hx_tlb_flush(void) { write_cr3(read_cr3()); }

static void window_on(void)
{
	if (win_on)
		return;
	memset(win_pdpt, 0, sizeof(win_pdpt));
	memset(win_pd4k, 0, sizeof(win_pd4k));
	memset(win_pt, 0, sizeof(win_pt));
	memset(win_pd2m, 0, sizeof(win_pd2m));
	win_pdpt[0] = pa(win_pd4k) | 7;
	win_pd4k[0] = pa(win_pt) | 7;
	win_pdpt[1] = pa(win_pd2m) | 7;
	kernel_pml4()[1] = pa(win_pdpt) | 7;
	win_on = true;
}

void *hx_map4k(unsigned slot, uint64_t phys, uint64_t flags)
{
	window_on();
	win_pt[slot & 511] = (phys & ~0xfffull) | flags;
	hx_tlb_flush();
	return (void *)(HX_WIN4K + (uint64_t)(slot & 511) * 4096);
}

uint64_t *hx_pte4k(unsigned slot)
{
	window_on();
	return &win_pt[slot & 511];
}

void *hx_map2m(unsigned slot, uint64_t phys)
{
	window_on();
	win_pd2m[slot & 511] = (phys & ~0x1fffffull) | 0x87;
	hx_tlb_flush();
	return (void *)(HX_WIN2M + (uint64_t)(slot & 511) * (2ull << 20));
}

void hx_map2m_noflush(unsigned slot, uint64_t phys)
{
	window_on();
	win_pd2m[slot & 511] = (phys & ~0x1fffffull) | 0x87;
}

bool hx_have_1g_pages(void) { return cpuid(0x80000001, 0).edx & (1u << 26); }

void *hx_map1g(unsigned slot, uint64_t phys)
{
	window_on();
	win_pdpt[2 + slot % 510] = (phys & ~0x3fffffffull) | 0x87;
	hx_tlb_flush();
	return (void *)(HX_WIN1G + (uint64_t)(slot % 510) * (1ull << 30));
}

void hx_window_off(void)
{
	if (!win_on)
		return;
	kernel_pml4()[1] = 0;
	hx_tlb_flush();
	win_on = false;
}

/* --- the L2's EPT ------------------------------------------------------------- */
uint8_t hx_pages[HX_NPAGES][4096] __attribute__((aligned(32768)));
static uint64_t ept_pml4[512] __attribute__((aligned(4096)));
static uint64_t ept_pdpt[512] __attribute__((aligned(4096)));
static uint64_t ept_pd[4 * 512] __attribute__((aligned(4096)));
static uint64_t ept_pt[512] __attribute__((aligned(4096)));
static uint64_t ept_pd_high[512] __attribute__((aligned(4096)));
static uint64_t ept_pt_high[512] __attribute__((aligned(4096)));

#define EPT_LEAF (EPT_WB | EPT_R | EPT_W | EPT_X)

void hx_ept_rebuild(void)
{
	memset(ept_pml4, 0, sizeof(ept_pml4));
	memset(ept_pdpt, 0, sizeof(ept_pdpt));
	memset(ept_pd_high, 0, sizeof(ept_pd_high));
	ept_pml4[0] = pa(ept_pdpt) | EPT_R | EPT_W | EPT_X;
	for (int i = 0; i < 4; i++)
		ept_pdpt[i] = pa(&ept_pd[i * 512]) | EPT_R | EPT_W | EPT_X;
	ept_pdpt[HX_EPT_HIGH >> 30] = pa(ept_pd_high) | EPT_R | EPT_W | EPT_X;
	for (uint64_t j = 0; j < 2048; j++)
		ept_pd[j] = (j << 21) | (1ull << 7) | EPT_LEAF;
	uint64_t base = pa(hx_pages) & ~0x1fffffull;
	for (uint64_t k = 0; k < 512; k++)
		ept_pt[k] = (base + k * 4096) | EPT_LEAF;
	ept_pd[base >> 21] = pa(ept_pt) | EPT_R | EPT_W | EPT_X;
	/* HX_EPT_HIGH + 2 MiB: the hx_pages region again, through a page table. */
	for (uint64_t k = 0; k < 512; k++)
		ept_pt_high[k] = (base + k * 4096) | EPT_LEAF;
	ept_pd_high[1] = pa(ept_pt_high) | EPT_R | EPT_W | EPT_X;
}

uint64_t *hx_ept_pte(uint64_t gpa) { return &ept_pt[(gpa >> 12) & 511]; }

uint64_t *hx_ept_entry(int level, uint64_t gpa)
{
	switch (level) {
	case 4: return &ept_pml4[(gpa >> 39) & 511];
	case 3: return &ept_pdpt[(gpa >> 30) & 511];
	case 2: return gpa >= HX_EPT_HIGH ? &ept_pd_high[(gpa >> 21) & 511] : &ept_pd[(gpa >> 21) & 2047];
	default: return gpa >= HX_EPT_HIGH ? &ept_pt_high[(gpa >> 12) & 511] : hx_ept_pte(gpa);
	}
}

void hx_ept_map_high(unsigned slot2m, uint64_t hpa)
{
	ept_pd_high[slot2m & 511] = (hpa & ~0x1fffffull) | (1ull << 7) | EPT_LEAF;
}

static uint64_t ept_pd_gib[4][512] __attribute__((aligned(4096)));

void hx_ept_map_gib(unsigned k, unsigned gib, uint64_t hpa)
{
	for (uint64_t j = 0; j < 512; j++)
		ept_pd_gib[k & 3][j] = ((hpa & ~0x1fffffull) + (j << 21)) | (1ull << 7) | EPT_LEAF;
	ept_pdpt[gib & 511] = pa(ept_pd_gib[k & 3]) | EPT_R | EPT_W | EPT_X;
}

uint64_t hx_eptp(void) { return pa(ept_pml4) | (3ull << 3) | 6; }

/* Other EPT roots over the same tables (another EPTP, the same mappings). */
static uint64_t ept_pml4_alt[4][512] __attribute__((aligned(4096)));

uint64_t hx_eptp_alt(unsigned k)
{
	memset(ept_pml4_alt[k & 3], 0, 4096);
	ept_pml4_alt[k & 3][0] = ept_pml4[0];
	return pa(ept_pml4_alt[k & 3]) | (3ull << 3) | 6;
}

void hx_ept_flush(void)
{
	static struct inv_desc d;
	d.lo = vmr(EPT_POINTER);
	d.hi = 0;
	bool all = vcaps.ept_vpid & CAP_INVEPT_ALL;
	struct vres r = vx(VX_INVEPT, all ? 2 : 1, pa(&d));
	CHECK(vr_ok(&r), "INVEPT: %s", r.s);
}

void hx_ept_flush_single(void)
{
	static struct inv_desc d;
	d.lo = vmr(EPT_POINTER);
	d.hi = 0;
	struct vres r = vx(VX_INVEPT, 1, pa(&d));
	CHECK(vr_ok(&r), "INVEPT single-context: %s", r.s);
}

bool hx_l2_begin(void)
{
	if (!vm_begin())
		return false;
	vm_ctl(PROC2_CTLS, 0, PROC2_VPID);
	vmw(EXCEPTION_BITMAP, 0xffffffff);
	hx_ept_rebuild();
	vmw(EPT_POINTER, hx_eptp());
	hx_ept_flush();
	return true;
}

void hx_l2_end(void)
{
	vmx_end();
	hx_window_off();
}

uint32_t hx_run(const void *code)
{
	vm_at(code, RFLAGS_FIXED);
	return vm_go();
}

const char *hx_exit_str(uint32_t reason, const void *snippet)
{
	static char buf[96];
	if (reason == GO_FAILED)
		ksnprintf(buf, sizeof(buf), "entry instruction failed: %s", vm.go.s);
	else if (reason & EXIT_FAILED_ENTRY)
		ksnprintf(buf, sizeof(buf), "entry failure, reason %u (%s), qualification %llu", reason & 0xffff,
			  exit_name(reason & 0xffff), (unsigned long long)vm.x.qual);
	else
		ksnprintf(buf, sizeof(buf), "exit %u (%s) at +%ld", reason, exit_name(reason),
			  snippet ? rip_off(snippet) : 0l);
	return buf;
}
