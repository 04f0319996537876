/* sec.c - the security-function layer: watched PCI functions, the
 * decisions on their accesses, the log of blocks (sec/sec.h). */
#include "boot/acpi_probe.h"
#include "boot/config.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/pci.h"
#include "lib/spinlock.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "sec/sec.h"
#include "vmx/filter.h"
#include "vmx/vcpu.h"

#define MAX_WATCHED 8
#define N_BARS 8 /* BAR0-5, the expansion ROM, and its configuration space in ECAM */
#define ROM_BAR 6
#define ECAM_BAR 7
#define SEC_LOG_LIMIT 64 /* lines per kind of access (config, port, memory) */

struct bar {
	bool io;
	uint64_t base, size; /* size 0: not implemented or not assigned */
};

struct watched {
	const struct sec_function *f;
	uint16_t bdf;
	uint32_t id; /* vendor | device << 16, as at boot */
	struct bar bar[N_BARS];
};

/* Boot-time data, read-only once the guest runs. */
static struct watched watched[MAX_WATCHED];
static unsigned n_watched;

/* Configuration mechanism #1 is two steps (CF8, then CFC): with several
 * vCPUs one could select a watched function between another's check and
 * its data access.  Every guest access to either port exits and is made
 * under this lock, so a check and its access are one step. */
static spinlock_t pci_lock;

static const char *const bar_names[N_BARS] = { "BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "ECAM" };

int sec_parse_bdf(const char *s, size_t len, uint16_t *bdf)
{
	/* BB:DD.F, hexadecimal bus and device. */
	unsigned v[3] = { 0, 0, 0 }, k = 0, digits = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d >= 0 && digits < 2) {
			v[k] = v[k] * 16 + (unsigned)d;
			digits++;
		} else if (digits && ((k == 0 && c == ':') || (k == 1 && c == '.'))) {
			k++;
			digits = 0;
		} else {
			return -1;
		}
	}
	if (k != 2 || !digits || v[1] > 31 || v[2] > 7)
		return -1;
	*bdf = PCI_BDF(v[0], v[1], v[2]);
	return 0;
}

static void print_bdf(char *buf, size_t n, uint16_t bdf)
{
	ksnprintf(buf, n, "%02x:%02x.%x", PCI_BUS(bdf), PCI_DEV(bdf), PCI_FN(bdf));
}

/* PCI 3.0, 6.2.5.1: write all ones, read back the writable bits, restore;
 * decoding off meanwhile so that no half-written address decodes. */
static uint32_t bar_probe(uint16_t bdf, unsigned reg, uint32_t ones)
{
	uint32_t old = pci_read32(bdf, reg);
	pci_write32(bdf, reg, ones);
	uint32_t mask = pci_read32(bdf, reg);
	pci_write32(bdf, reg, old);
	return mask;
}

static void read_bars(struct watched *w)
{
	uint16_t bdf = w->bdf;
	uint16_t cmd = pci_read16(bdf, PCI_COMMAND);
	pci_write16(bdf, PCI_COMMAND, cmd & ~(PCI_CMD_IO | PCI_CMD_MEM));
	/* Only a type-0 header has six BARs and a ROM at 0x30 (a bridge's
	 * windows are not watched: guard the functions behind it). */
	bool type0 = (pci_read32(bdf, 0x0c) >> 16 & 0x7f) == 0;
	for (unsigned i = 0; type0 && i < 6; i++) {
		unsigned reg = PCI_BAR0 + 4 * i;
		uint32_t lo = pci_read32(bdf, reg), mask = bar_probe(bdf, reg, ~0u);
		struct bar *b = &w->bar[i];
		if (lo & 1) { /* I/O: 16-bit ports on x86 */
			b->io = true;
			b->base = lo & 0xfffc;
			b->size = (uint16_t)(~(mask & 0xfffc) + 1);
			continue;
		}
		b->base = lo & ~0xfull;
		uint64_t m = mask & ~0xfull;
		if (((lo >> 1) & 3) == 2 && i < 5) { /* 64-bit: the next BAR is the high half */
			uint32_t hi = pci_read32(bdf, reg + 4), mhi = bar_probe(bdf, reg + 4, ~0u);
			b->base |= (uint64_t)hi << 32;
			m |= (uint64_t)mhi << 32;
			b->size = m ? ~m + 1 : 0;
			i++;
		} else {
			b->size = m ? (uint32_t)(~(uint32_t)m + 1) : 0;
		}
	}
	if (type0) {
		uint32_t rom = pci_read32(bdf, PCI_ROM_BAR), mask = bar_probe(bdf, PCI_ROM_BAR, ~1u) & 0xfffff800;
		w->bar[ROM_BAR].base = rom & 0xfffff800;
		w->bar[ROM_BAR].size = mask ? (uint32_t)(~mask + 1) : 0;
	}
	pci_write16(bdf, PCI_COMMAND, cmd);
	for (unsigned i = 0; i < N_BARS; i++)
		if (!w->bar[i].base)
			w->bar[i].size = 0; /* not assigned: nothing decodes */
}

/* Its 4 KiB of memory-mapped configuration space (PCI Express Base 7.2.2),
 * when the MCFG maps its bus in segment 0 (CF8/CFC reach segment 0 only). */
static void find_ecam(struct watched *w)
{
	for (unsigned i = 0; machine_mcfg_err == ACPI_OK && i < machine_mcfg.n; i++) {
		const struct acpi_mcfg_entry *e = &machine_mcfg.e[i];
		unsigned bus = PCI_BUS(w->bdf);
		if (e->segment == 0 && bus >= e->bus_start && bus <= e->bus_end) {
			w->bar[ECAM_BAR].base = e->base + ((uint64_t)(bus - e->bus_start) << 20) +
						((uint64_t)(w->bdf & 0xff) << 12);
			w->bar[ECAM_BAR].size = 4096;
			return;
		}
	}
}

/* --- decisions and the log ------------------------------------------- */

static uint32_t ones(unsigned size) { return size >= 4 ? ~0u : (1u << (8 * size)) - 1; }

static const char *space_name(const struct sec_access *a, char *buf, size_t n)
{
	char bdf[16];
	print_bdf(bdf, sizeof(bdf), a->bdf);
	if (a->space == SEC_PCI_CONFIG)
		ksnprintf(buf, n, "%s config 0x%02x", bdf, a->reg);
	else if (a->space == SEC_PORT)
		ksnprintf(buf, n, "port 0x%llx (%s %s+0x%x)", (unsigned long long)a->addr, bdf, bar_names[a->bar], a->reg);
	else
		ksnprintf(buf, n, "memory 0x%llx (%s %s+0x%x)", (unsigned long long)a->addr, bdf, bar_names[a->bar],
			  a->reg);
	return buf;
}

static void log_block(const struct sec_function *f, struct vcpu *v, const struct sec_access *a, const char *what)
{
	__atomic_add_fetch(&v->vm->sec_blocked, 1, __ATOMIC_RELAXED);
	uint64_t n = __atomic_add_fetch(&v->vm->sec_logged[a->space], 1, __ATOMIC_RELAXED);
	if (n > SEC_LOG_LIMIT)
		return;
	char where[96];
	space_name(a, where, sizeof(where));
	const char *more = n == SEC_LOG_LIMIT ? "; further blocks of this kind are only counted" : "";
	if (a->space == SEC_MEMORY && what)
		pr_warn("%s: level %u %s %s: non-existent%s\n", f->name, a->level, what, where, more);
	else if (a->space == SEC_MEMORY && a->write)
		pr_warn("%s: level %u writes 0x%x to %s (%u-bit): blocked%s\n", f->name, a->level, a->value, where,
			8 * a->size, more);
	else if (a->space == SEC_MEMORY)
		pr_warn("%s: level %u reads %s (%u-bit): blocked, reads all ones%s\n", f->name, a->level, where,
			8 * a->size, more);
	else if (a->write)
		pr_warn("%s: level %u writes 0x%x to %s (%u-bit): blocked%s\n", f->name, a->level,
			a->value & ones(a->size), where, 8 * a->size, more);
	else
		pr_warn("%s: level %u reads %s (%u-bit): blocked, reads all ones%s\n", f->name, a->level, where,
			8 * a->size, more);
}

/* Asks w's function; true when it took the access (blocked or emulated). */
static bool decide(const struct watched *w, struct vcpu *v, struct sec_access *a, uint32_t *val)
{
	a->level = v->vm->level + v->cur;
	a->bdf = w->bdf;
	if (a->write)
		a->value = *val;
	switch (w->f->decide(w->f, v, a)) {
	case SEC_ALLOW:
		return false;
	case SEC_EMULATE:
		if (!a->write)
			*val = a->value & ones(a->size);
		return true;
	case SEC_BLOCK:
	default:
		log_block(w->f, v, a, NULL);
		if (!a->write)
			*val = ones(a->size);
		return true;
	}
}

static const struct watched *watched_function(uint16_t bdf)
{
	for (unsigned i = 0; i < n_watched; i++)
		if (watched[i].bdf == bdf)
			return &watched[i];
	return NULL;
}

/* The configuration ports (PCI 3.0, 3.2.2.3.2): CF8-CFB address, CFC-CFF
 * data.  An access that touches the data ports while CF8 selects a
 * watched function - register (CF8 & 0xfc) plus the port's low bits - is
 * its function's to decide; bits 30:24 of CF8, reserved, are ignored as
 * the i440FX (and Bochs) ignore them. */
static bool config_port(struct vcpu *v, uint16_t port, unsigned size, bool write, uint32_t *val)
{
	spin_lock(&pci_lock);
	bool data = port + size > PCI_CONFIG_DATA && port <= PCI_CONFIG_DATA + 3;
	uint32_t cf8 = data ? inl(PCI_CONFIG_ADDRESS) : 0;
	const struct watched *w = (cf8 & PCI_ENABLE) ? watched_function((uint16_t)(cf8 >> 8)) : NULL;
	bool taken = false;
	if (w) {
		struct sec_access a = { .space = SEC_PCI_CONFIG, .write = write, .size = size,
					.reg = (cf8 & 0xfc) + (port >= PCI_CONFIG_DATA ? port & 3 : 0) };
		taken = decide(w, v, &a, val);
	}
	if (!taken) {
		if (write)
			out_sized(port, size, *val);
		else
			*val = in_sized(port, size);
	}
	spin_unlock(&pci_lock);
	return true;
}

/* The watched function and BAR whose ports (io) or memory an access of
 * size bytes at addr touches, or NULL.  Memory is matched on the whole
 * pages vmx/ claimed for it (vmx_filter_memory/trap round outward), so a
 * trapped page is never partly nobody's. */
static const struct watched *find_bar(bool io, uint64_t addr, unsigned size, int *bar)
{
	for (unsigned i = 0; i < n_watched; i++)
		for (unsigned b = 0; b < N_BARS; b++) {
			const struct bar *r = &watched[i].bar[b];
			uint64_t lo = io ? r->base : r->base & ~0xfffull;
			uint64_t hi = io ? r->base + r->size : (r->base + r->size + 0xfff) & ~0xfffull;
			if (r->io == io && r->size && addr + size > lo && addr < hi) {
				*bar = (int)b;
				return &watched[i];
			}
		}
	return NULL;
}

static bool filter_port(struct vcpu *v, uint16_t port, unsigned size, bool write, uint32_t *val)
{
	if (port + size > PCI_CONFIG_ADDRESS && port <= PCI_CONFIG_DATA + 3)
		return config_port(v, port, size, write, val);
	int b;
	const struct watched *w = find_bar(true, port, size, &b);
	if (!w)
		return false;
	struct sec_access a = { .space = SEC_PORT, .write = write, .size = size, .bar = b,
				.reg = (uint32_t)(port - w->bar[b].base), .addr = port };
	return decide(w, v, &a, val);
}

static void filter_memory(struct vcpu *v, uint64_t gpa, const char *what)
{
	int b;
	const struct watched *w = find_bar(false, gpa, 1, &b);
	if (!w)
		return;
	struct sec_access a = { .space = SEC_MEMORY, .bar = b, .addr = gpa, .reg = (uint32_t)(gpa - w->bar[b].base),
				.level = v->vm->level + v->cur, .bdf = w->bdf };
	w->f->decide(w->f, v, &a);
	log_block(w->f, v, &a, what);
}

static void filter_report(struct vcpu *v)
{
	if (v->vm->sec_blocked)
		pr_warn("security functions blocked %llu accesses\n", (unsigned long long)v->vm->sec_blocked);
}

/* A load or store to a trapped memory BAR (SEC_MEM_TRAP). */
static bool filter_mmio(struct vcpu *v, uint64_t gpa, unsigned size, bool write, uint64_t *val)
{
	int b;
	const struct watched *w = find_bar(false, gpa, size, &b);
	if (!w)
		return false; /* (not a BAR of ours: cannot happen) */
	struct sec_access a = { .space = SEC_MEMORY, .write = write, .size = size, .bar = b, .addr = gpa,
				.reg = (uint32_t)(gpa - w->bar[b].base) };
	/* Memory-mapped configuration space: the same decisions as through
	 * CF8/CFC. */
	if (b == ECAM_BAR)
		a.space = SEC_PCI_CONFIG;
	uint32_t v32 = (uint32_t)*val;
	bool taken = decide(w, v, &a, &v32);
	if (taken && !write)
		*val = size == 8 ? (v32 == ~0u ? ~0ull : v32) : v32;
	return taken;
}

static const struct vmx_filter sec_filter = { filter_port, filter_memory, filter_mmio, filter_report };

int sec_map_direct(const struct sec_function *f, struct vcpu *v, uint16_t bdf, int bar)
{
	const struct watched *w = watched_function(bdf);
	if (!w || w->f != f || bar < 0 || bar >= ROM_BAR || w->bar[bar].io || !w->bar[bar].size) {
		pr_err("%s: cannot map BAR%d of %04x directly: not a memory BAR it watches\n", f->name, bar, bdf);
		return -1;
	}
	if (vmx_filter_map_direct(v, w->bar[bar].base, w->bar[bar].base + w->bar[bar].size)) {
		pr_err("%s: out of pool memory mapping BAR%d directly: it stays trapped\n", f->name, bar);
		return -1;
	}
	return 0;
}

int sec_watch(const struct sec_function *f, uint16_t bdf, enum sec_mem_mode mode, char *err, size_t errlen)
{
	char name[16];
	print_bdf(name, sizeof(name), bdf);
	if (watched_function(bdf)) {
		ksnprintf(err, errlen, "%s: %s is already watched", f->name, name);
		return -1;
	}
	if (n_watched == MAX_WATCHED) {
		ksnprintf(err, errlen, "%s: at most %u PCI functions can be watched", f->name, MAX_WATCHED);
		return -1;
	}
	/* An MCFG we could not read may map configuration space where we
	 * cannot hide it: refuse rather than watch half the ways in. */
	if (machine_mcfg_err != ACPI_OK && machine_mcfg_err != ACPI_ERR_NO_MCFG) {
		ksnprintf(err, errlen, "%s: %s: the MCFG is unreadable (%s)", f->name, name, acpi_strerror(machine_mcfg_err));
		return -1;
	}
	struct watched *w = &watched[n_watched];
	*w = (struct watched){ .f = f, .bdf = bdf, .id = pci_read32(bdf, PCI_VENDOR_ID) };
	if ((w->id & 0xffff) != 0xffff)
		read_bars(w);
	find_ecam(w);
	if (n_watched++ == 0) {
		vmx_filter_register(&sec_filter);
		vmx_filter_ports(PCI_CONFIG_ADDRESS, 8);
	}
	char what[160];
	size_t at = 0;
	what[0] = 0;
	for (unsigned i = 0; i < N_BARS; i++) {
		const struct bar *b = &w->bar[i];
		if (!b->size)
			continue;
		/* The ROM is never the guest's to use through a trap:
		 * absent.  The ECAM page is trapped like CF8/CFC. */
		bool trap = mode == SEC_MEM_TRAP && i != ROM_BAR;
		if (b->io ? vmx_filter_ports((uint16_t)b->base, (uint32_t)b->size)
			  : trap ? vmx_filter_trap(b->base, b->base + b->size)
				 : vmx_filter_memory(b->base, b->base + b->size)) {
			ksnprintf(err, errlen, "%s: %s %s: too many claims", f->name, name, bar_names[i]);
			return -1;
		}
		if (at < sizeof(what))
			at += (size_t)ksnprintf(what + at, sizeof(what) - at, ", %s %s 0x%llx-0x%llx", bar_names[i],
						b->io ? "ports" : "memory", (unsigned long long)b->base,
						(unsigned long long)(b->base + b->size - 1));
		if (trap && at < sizeof(what))
			at += (size_t)ksnprintf(what + at, sizeof(what) - at, " (trapped)");
	}
	if ((w->id & 0xffff) == 0xffff)
		pr_warn("%s: no PCI function at %s (its configuration space is watched all the same)\n", f->name, name);
	else
		pr_info("%s: %s (%04x:%04x): configuration space%s\n", f->name, name, w->id & 0xffff, w->id >> 16, what);
	return 0;
}
