/* loader.c - nestor.efi: Nestor as a UEFI application (docs/uefi.md).
 *
 * Started from the UEFI shell or a boot entry, it
 *   1. reads its command line (the load options; from the shell the first
 *      word, the program's own name, is dropped) - Nestor's options;
 *   2. allocates Nestor's memory from the firmware as EfiReservedMemoryType,
 *      below 4 GiB and 2 MiB aligned: the image, the pool (mem=) and the
 *      snapshot pool (snap_pool=).  The firmware's memory map then shows it
 *      as reserved to everything started later (Linux too);
 *   3. copies Nestor's image (embedded, efi/blob.S) there;
 *   4. builds the multiboot2 information GRUB-EFI would give: command line,
 *      memory map (from the firmware's, with Nestor's block usable for
 *      Nestor itself), ACPI RSDP, EFI system table, "boot services not
 *      exited";
 *   5. records the firmware's CPU state and jumps to Nestor
 *      (efi/handoff.S), which resumes the firmware as its guest: the call
 *      returns, now one level up, and so does this application.
 * Boot services are never exited: the firmware goes on booting the next
 * thing, as Nestor's guest. */
#include <efi.h>

#include "boot/efi_handoff.h"
#include "hypercall/abi.h"
#include "lib/cmdline.h"
#include "lib/format.h"
#include "lib/mb2.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "vmx/vmx_defs.h"

#define KERNEL_LINK_PHYS 0x200000ull /* boot/layout.h */
#define MIB2 0x200000ull

extern const uint8_t nestor_elf[], nestor_elf_end[];
uint64_t efi_handoff(struct efi_handoff *h, uint64_t entry, uint64_t mbi);

static EFI_SYSTEM_TABLE *st;
static EFI_BOOT_SERVICES *bs;

/* --- console ------------------------------------------------------------ */
static void say(const char *s)
{
	CHAR16 buf[256];
	while (*s) {
		unsigned n = 0;
		while (*s && n < 250) {
			if (*s == '\n')
				buf[n++] = '\r';
			buf[n++] = (CHAR16)(unsigned char)*s++;
		}
		buf[n] = 0;
		st->ConOut->OutputString(st->ConOut, buf);
	}
}

static EFI_STATUS fail(EFI_STATUS status, const char *what)
{
	char line[300];
	ksnprintf(line, sizeof(line), "nestor: nestor.efi: %s (EFI status 0x%llx)\n", what, (unsigned long long)status);
	say(line);
	return status ? status : EFI_LOAD_ERROR;
}

/* --- ELF64 (only what is needed to place Nestor's image) ----------------- */
struct elf64_ehdr {
	uint8_t ident[16];
	uint16_t type, machine;
	uint32_t version;
	uint64_t entry, phoff, shoff;
	uint32_t flags;
	uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct elf64_phdr {
	uint32_t type, flags;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
};
struct elf64_shdr {
	uint32_t name, type;
	uint64_t flags, addr, offset, size;
	uint32_t link, info;
	uint64_t addralign, entsize;
};
struct elf64_sym {
	uint32_t name;
	uint8_t info, other;
	uint16_t shndx;
	uint64_t value, size;
};
#define PT_LOAD 1
#define SHT_SYMTAB 2

static const struct elf64_ehdr *elf(void) { return (const struct elf64_ehdr *)nestor_elf; }
static uint64_t elf_size(void) { return (uint64_t)(nestor_elf_end - nestor_elf); }

static const struct elf64_phdr *phdr(unsigned i)
{
	return (const struct elf64_phdr *)(nestor_elf + elf()->phoff + (uint64_t)i * elf()->phentsize);
}

/* Physical link address of symbol name, or 0. */
static uint64_t elf_symbol(const char *name)
{
	const struct elf64_ehdr *e = elf();
	for (unsigned i = 0; i < e->shnum; i++) {
		const struct elf64_shdr *s = (const void *)(nestor_elf + e->shoff + (uint64_t)i * e->shentsize);
		if (s->type != SHT_SYMTAB || s->link >= e->shnum)
			continue;
		const struct elf64_shdr *strs = (const void *)(nestor_elf + e->shoff + (uint64_t)s->link * e->shentsize);
		for (uint64_t o = 0; o + sizeof(struct elf64_sym) <= s->size; o += sizeof(struct elf64_sym)) {
			const struct elf64_sym *y = (const void *)(nestor_elf + s->offset + o);
			if (y->name < strs->size && !strcmp((const char *)nestor_elf + strs->offset + y->name, name))
				return y->value;
		}
	}
	return 0;
}

/* The image's extent from KERNEL_LINK_PHYS (what the hypervisor calls
 * IMAGE_SIZE), checked against the blob. */
static int image_extent(uint64_t *size)
{
	const struct elf64_ehdr *e = elf();
	if (elf_size() < sizeof(*e) || memcmp(e->ident, "\177ELF\2\1", 6) || e->machine != 62 ||
	    e->phentsize != sizeof(struct elf64_phdr) || e->phoff + (uint64_t)e->phnum * e->phentsize > elf_size() ||
	    e->shentsize != sizeof(struct elf64_shdr) || e->shoff + (uint64_t)e->shnum * e->shentsize > elf_size())
		return -1;
	uint64_t top = 0;
	for (unsigned i = 0; i < e->phnum; i++) {
		const struct elf64_phdr *p = phdr(i);
		if (p->type != PT_LOAD)
			continue;
		if (p->paddr < KERNEL_LINK_PHYS || p->offset + p->filesz > elf_size() || p->filesz > p->memsz)
			return -1;
		if (p->paddr + p->memsz > top)
			top = p->paddr + p->memsz;
	}
	*size = top - KERNEL_LINK_PHYS;
	return top ? 0 : -1;
}

/* --- command line ---------------------------------------------------------- */
/* The load options as ASCII; from the shell they start with the program's
 * own name ("nestor.efi", "fs0:\nestor.efi", "nestor"), which is dropped:
 * a first word without '=' that is "nestor" or has '.', ':' or '\'. */
static int command_line(EFI_HANDLE image, char *out, size_t max)
{
	EFI_GUID lip = LOADED_IMAGE_PROTOCOL;
	EFI_LOADED_IMAGE *li = NULL;
	out[0] = '\0';
	if (bs->HandleProtocol(image, &lip, (void **)&li) != EFI_SUCCESS || !li)
		return -1;
	const CHAR16 *w = li->LoadOptions;
	size_t n = li->LoadOptionsSize / sizeof(CHAR16), o = 0;
	for (size_t i = 0; w && i < n && w[i]; i++) {
		if (w[i] > 0x7e || (w[i] < 0x20 && w[i] != '\t'))
			return -1;
		if (o + 1 >= max)
			return -1;
		out[o++] = w[i] == '\t' ? ' ' : (char)w[i];
	}
	out[o] = '\0';
	/* The first word, if it names a program rather than an option. */
	size_t first = 0;
	while (out[first] == ' ')
		first++;
	size_t end = first;
	bool program = false, option = false;
	while (out[end] && out[end] != ' ') {
		if (out[end] == '.' || out[end] == ':' || out[end] == '\\')
			program = true;
		option |= out[end] == '=';
		end++;
	}
	program &= !option; /* guard=00:03.0 is an option */
	if (end - first == 6 && !memcmp(out + first, "nestor", 6))
		program = true;
	if (program)
		memmove(out, out + end, strlen(out + end) + 1);
	while (out[0] == ' ')
		memmove(out, out + 1, strlen(out));
	return 0;
}

/* The value of a size option (mem=, snap_pool=) as Nestor will read it,
 * rounded up to 2 MiB as Nestor does (boot/config.c); dflt if absent or
 * malformed (Nestor then reports the error itself). */
static uint64_t size_option(const char *cl, const char *name, uint64_t dflt)
{
	size_t nl = strlen(name);
	uint64_t v = dflt;
	for (const char *p = cl; *p;) {
		while (*p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ' ')
			e++;
		uint64_t x;
		if ((size_t)(e - p) > nl + 1 && !memcmp(p, name, nl) && p[nl] == '=' &&
		    !parse_size(p + nl + 1, (size_t)(e - p) - nl - 1, &x) && x <= (1ull << 31))
			v = x;
		p = e;
	}
	return (v + MIB2 - 1) & ~(MIB2 - 1);
}

/* --- the multiboot2 information ---------------------------------------------- */
struct mbi_writer {
	uint8_t *buf;
	uint32_t len, max;
};

static void *tag(struct mbi_writer *w, uint32_t type, uint32_t size)
{
	uint32_t at = (w->len + 7) & ~7u;
	if (at + size + 8 > w->max)
		return NULL;
	uint8_t *p = w->buf + at;
	memset(p, 0, size);
	((uint32_t *)p)[0] = type;
	((uint32_t *)p)[1] = size;
	w->len = at + size;
	return p;
}

static uint32_t mb2_type(UINT32 efi)
{
	switch (efi) {
	case EfiLoaderCode: case EfiLoaderData: case EfiBootServicesCode: case EfiBootServicesData:
	case EfiConventionalMemory:
		return MB2_MEM_AVAILABLE;
	case EfiACPIReclaimMemory: return MB2_MEM_ACPI_RECLAIMABLE;
	case EfiACPIMemoryNVS: return MB2_MEM_NVS;
	case EfiUnusableMemory: return MB2_MEM_BADRAM;
	default: return MB2_MEM_RESERVED;
	}
}

/* A multiboot2 memory-map entry as written (version 0, 24 bytes). */
struct map_entry {
	uint64_t base, len;
	uint32_t type, reserved;
};

/* Appends [base, end) of type t to the multiboot2 map (e points at the
 * entries), merged with the previous entry when they touch. */
static int map_add(struct map_entry *e, unsigned *n, unsigned max, uint64_t base, uint64_t end, uint32_t t)
{
	if (base >= end)
		return 0;
	if (*n && e[*n - 1].type == t && e[*n - 1].base + e[*n - 1].len == base) {
		e[*n - 1].len += end - base;
		return 0;
	}
	if (*n >= max)
		return -1;
	e[*n].base = base;
	e[*n].len = end - base;
	e[*n].type = t;
	e[*n].reserved = 0;
	(*n)++;
	return 0;
}

static void *config_table(EFI_GUID *g)
{
	for (UINTN i = 0; i < st->NumberOfTableEntries; i++)
		if (!memcmp(&st->ConfigurationTable[i].VendorGuid, g, sizeof(*g)))
			return st->ConfigurationTable[i].VendorTable;
	return NULL;
}

/* --- the firmware's state ------------------------------------------------- */
static void capture_state(struct efi_handoff *h)
{
	struct dtr gdtr, idtr;
	__asm__ volatile("sgdt %0" : "=m"(gdtr));
	__asm__ volatile("sidt %0" : "=m"(idtr));
	h->gdtr_base = gdtr.base;
	h->gdtr_limit = gdtr.limit;
	h->idtr_base = idtr.base;
	h->idtr_limit = idtr.limit;
	h->cr0 = read_cr0();
	h->cr3 = read_cr3();
	h->cr4 = read_cr4();
	h->dr7 = read_dr7();
	h->efer = rdmsr(MSR_EFER);
	h->pat = rdmsr(MSR_IA32_PAT);
	h->fs_base = rdmsr(MSR_FS_BASE);
	h->gs_base = rdmsr(MSR_GS_BASE);
	h->kernel_gs_base = rdmsr(MSR_KERNEL_GS_BASE);
	h->debugctl = rdmsr(0x1d9); /* IA32_DEBUGCTL */
	h->sysenter_cs = rdmsr(MSR_IA32_SYSENTER_CS);
	h->sysenter_esp = rdmsr(MSR_IA32_SYSENTER_ESP);
	h->sysenter_eip = rdmsr(MSR_IA32_SYSENTER_EIP);
	uint16_t s;
	__asm__ volatile("mov %%es, %0" : "=r"(s)); h->sel[0] = s;
	__asm__ volatile("mov %%cs, %0" : "=r"(s)); h->sel[1] = s;
	__asm__ volatile("mov %%ss, %0" : "=r"(s)); h->sel[2] = s;
	__asm__ volatile("mov %%ds, %0" : "=r"(s)); h->sel[3] = s;
	__asm__ volatile("mov %%fs, %0" : "=r"(s)); h->sel[4] = s;
	__asm__ volatile("mov %%gs, %0" : "=r"(s)); h->sel[5] = s;
	__asm__ volatile("sldt %0" : "=r"(s)); h->sel[6] = s;
	__asm__ volatile("str %0" : "=r"(s)); h->sel[7] = s;
	/* The descriptors behind them, read from the GDT (an LDT selector is
	 * not expected in firmware: TI=1 segments are left as null). */
	const uint64_t *gdt = (const uint64_t *)h->gdtr_base;
	for (int i = 0; i < 8; i++) {
		uint16_t sel = h->sel[i];
		unsigned slot = i < 6 ? (unsigned)i : (unsigned)(6 + 2 * (i - 6));
		if ((sel & ~3u) == 0 || (sel & 4) || (uint32_t)(sel | 7) > h->gdtr_limit)
			continue;
		h->desc[slot] = gdt[sel >> 3];
		if (i >= 6 && (uint32_t)((sel | 7) + 8) <= h->gdtr_limit)
			h->desc[slot + 1] = gdt[(sel >> 3) + 1];
	}
}

/* After the hand-off: the Nestor now below answers CPUID's hypervisor
 * leaves with its level (hypercall/abi.h).  The line has Nestor's log
 * prefix: a message of Nestor's, not of the firmware's. */
static void level_line(void)
{
	struct cpuid_regs r = cpuid(NESTOR_CPUID_BASE, 0);
	if (!NESTOR_SIGNATURE(r.ebx, r.ecx, r.edx) || r.eax < NESTOR_CPUID_INFO) {
		say("nestor: nestor.efi: no Nestor answers after the hand-off\n");
		return;
	}
	unsigned a = cpuid(NESTOR_CPUID_INFO, 0).eax;
	char line[160];
	ksnprintf(line, sizeof(line), "nestor[%u]: nestor.efi: level %u runs; the firmware goes on as its guest\n", a, a);
	say(line);
}

/* What Nestor would refuse at once on this CPU (boot/, vmx/caps.c), asked
 * before the hand-off: after it, a refusal ends the machine; before it, the
 * shell gets an error and the firmware goes on without Nestor. */
static const char *vmx_refusal(void)
{
	if (!(cpuid(1, 0).ecx & (1u << 5)))
		return "this CPU has no VMX (CPUID.1:ECX[5] = 0): Nestor needs Intel VT-x";
	uint64_t fc = rdmsr(MSR_IA32_FEATURE_CONTROL); /* exists where VMX does */
	if ((fc & FEATURE_CONTROL_LOCKED) && !(fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX))
		return "VMX is disabled by the firmware (IA32_FEATURE_CONTROL locked with VMX off): enable VT-x in its setup";
	/* EPT: secondary controls allowed, then EPT among them (allowed-1
	 * settings in the upper halves, SDM A.3.2-A.3.3). */
	if (!((rdmsr(MSR_VMX_PROCBASED) >> 32) & PROC_SECONDARY_CTLS) || !((rdmsr(MSR_VMX_PROCBASED2) >> 32) & PROC2_EPT))
		return "the CPU's VMX lacks EPT, which Nestor needs";
	return NULL;
}

/* --- efi_main ------------------------------------------------------------- */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab);

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	st = systab;
	bs = systab->BootServices;
	static char cmdline[2048];
	if (command_line(image, cmdline, sizeof(cmdline)))
		return fail(EFI_INVALID_PARAMETER, "the command line is not printable ASCII or longer than 2047 bytes");

	const char *no = vmx_refusal();
	if (no)
		return fail(EFI_UNSUPPORTED, no);

	uint64_t image_size;
	uint64_t entry = elf_symbol("_start_efi64");
	if (image_extent(&image_size) || !entry || entry < KERNEL_LINK_PHYS)
		return fail(EFI_LOAD_ERROR, "the Nestor image inside this application is damaged");
	uint64_t image_span = (image_size + MIB2 - 1) & ~(MIB2 - 1);
	uint64_t pool = size_option(cmdline, "mem", 16ull << 20);
	uint64_t snap = size_option(cmdline, "snap_pool", 0);
	uint64_t region_size = image_span + pool + snap;

	/* Nestor's block: 2 MiB aligned below 4 GiB (its boot page tables map
	 * that much); what the alignment leaves over goes back. */
	EFI_PHYSICAL_ADDRESS at = 0xffffffffull;
	UINTN pages = (UINTN)((region_size + MIB2) >> 12);
	EFI_STATUS s = bs->AllocatePages(AllocateMaxAddress, EfiReservedMemoryType, pages, &at);
	if (s != EFI_SUCCESS)
		return fail(s, "not enough memory below 4 GiB for Nestor (image, mem=, snap_pool=)");
	uint64_t base = (at + MIB2 - 1) & ~(MIB2 - 1);
	if (base > at)
		bs->FreePages(at, (UINTN)((base - at) >> 12));
	if (at + ((uint64_t)pages << 12) > base + region_size)
		bs->FreePages(base + region_size, (UINTN)((at + ((uint64_t)pages << 12) - base - region_size) >> 12));

	/* The image: every loadable segment at its place relative to base. */
	for (unsigned i = 0; i < elf()->phnum; i++) {
		const struct elf64_phdr *p = phdr(i);
		if (p->type != PT_LOAD)
			continue;
		uint8_t *dst = (uint8_t *)(base + p->paddr - KERNEL_LINK_PHYS);
		memcpy(dst, nestor_elf + p->offset, p->filesz);
		memset(dst + p->filesz, 0, p->memsz - p->filesz);
	}

	/* The hand-off and the MBI below 4 GiB, where Nestor's boot page
	 * tables reach (it copies both first thing). */
	EFI_PHYSICAL_ADDRESS info = 0xffffffffull;
	const UINTN info_pages = 16;
	s = bs->AllocatePages(AllocateMaxAddress, EfiLoaderData, info_pages, &info);
	if (s != EFI_SUCCESS)
		return fail(s, "no memory below 4 GiB for the boot information");
	struct efi_handoff *h = (struct efi_handoff *)info;
	memset(h, 0, sizeof(*h));
	struct mbi_writer w = { .buf = (uint8_t *)info + 4096, .len = 8, .max = (uint32_t)(info_pages - 1) * 4096 };

	char *t = tag(&w, MB2_TAG_CMDLINE, 8 + (uint32_t)strlen(cmdline) + 1);
	if (t)
		memcpy(t + 8, cmdline, strlen(cmdline) + 1);
	static const char name[] = "nestor.efi (UEFI)";
	if ((t = tag(&w, MB2_TAG_LOADER_NAME, 8 + sizeof(name))))
		memcpy(t + 8, name, sizeof(name));
	EFI_GUID acpi20 = ACPI_20_TABLE_GUID, acpi10 = ACPI_TABLE_GUID;
	const uint8_t *rsdp = config_table(&acpi20);
	if (rsdp && (t = tag(&w, MB2_TAG_ACPI_NEW, 8 + 36)))
		memcpy(t + 8, rsdp, 36);
	else if ((rsdp = config_table(&acpi10)) && (t = tag(&w, MB2_TAG_ACPI_OLD, 8 + 20)))
		memcpy(t + 8, rsdp, 20);
	if ((t = tag(&w, MB2_TAG_EFI64, 16)))
		*(uint64_t *)(t + 8) = (uint64_t)systab;
	tag(&w, MB2_TAG_EFI_BS, 8);

	/* The memory map last: nothing is allocated after it is read. */
	static uint8_t efimap[64 * 1024];
	UINTN mapsize = sizeof(efimap), key, dsize;
	UINT32 dver;
	s = bs->GetMemoryMap(&mapsize, (EFI_MEMORY_DESCRIPTOR *)efimap, &key, &dsize, &dver);
	if (s != EFI_SUCCESS)
		return fail(s, "cannot read the firmware's memory map");
	uint8_t *mt = tag(&w, MB2_TAG_MMAP, 16 + MB2_MAX_MMAP * 24);
	if (!mt)
		return fail(EFI_BUFFER_TOO_SMALL, "the boot information does not fit in 60 KiB");
	((uint32_t *)mt)[2] = 24;
	((uint32_t *)mt)[3] = 0;
	struct map_entry *e = (struct map_entry *)(mt + 16);
	unsigned n = 0;
	for (UINTN o = 0; o + dsize <= mapsize; o += dsize) {
		const EFI_MEMORY_DESCRIPTOR *d = (const void *)(efimap + o);
		uint64_t s0 = d->PhysicalStart, e0 = s0 + (d->NumberOfPages << 12);
		uint32_t ty = mb2_type(d->Type);
		uint64_t cut0 = s0 > base ? s0 : base, cut1 = e0 < base + region_size ? e0 : base + region_size;
		int bad = 0;
		if (cut0 < cut1) {
			/* Nestor's own block: usable RAM for Nestor, which hides it. */
			bad |= map_add(e, &n, MB2_MAX_MMAP, s0, cut0, ty);
			bad |= map_add(e, &n, MB2_MAX_MMAP, cut0, cut1, MB2_MEM_AVAILABLE);
			bad |= map_add(e, &n, MB2_MAX_MMAP, cut1, e0, ty);
		} else {
			bad |= map_add(e, &n, MB2_MAX_MMAP, s0, e0, ty);
		}
		if (bad)
			return fail(EFI_BUFFER_TOO_SMALL, "the firmware's memory map has too many entries");
	}
	((uint32_t *)mt)[1] = 16 + n * 24;
	w.len = (uint32_t)(mt - w.buf) + 16 + n * 24;
	tag(&w, MB2_TAG_END, 8);
	((uint32_t *)w.buf)[0] = w.len;
	((uint32_t *)w.buf)[1] = 0;

	h->magic = EFI_HANDOFF_MAGIC;
	h->size = sizeof(*h);
	h->region_start = base;
	h->region_end = base + region_size;
	h->image_phys = base;
	capture_state(h);
	uint64_t r = efi_handoff(h, base + entry - KERNEL_LINK_PHYS, (uint64_t)w.buf);
	bs->FreePages(info, info_pages);
	if (r) {
		/* Nestor stopped before it took the machine and gave it back:
		 * its block is the firmware's again. */
		bs->FreePages(base, (UINTN)(region_size >> 12));
		return fail(r, r == EFI_ABORTED ? "Nestor printed its options on its console and stopped"
						: "Nestor stopped before taking the machine: its reason is on its console");
	}

	/* Here the firmware runs as Nestor's guest. */
	level_line();
	return EFI_SUCCESS;
}
