// sources: lib/acpi.c
// max_len: 4096
/* fuzz_acpi.c - the ACPI MADT parser (lib/acpi.c) against a reference
 * written here from the ACPI specification (6.5: 5.2.5 RSDP, 5.2.6 header,
 * 5.2.7 RSDT, 5.2.8 XSDT, 5.2.12 MADT) and acpi.h's limits.
 *
 * Input: byte 0 = flags: bits 6:0 the number of RSDP bytes (at most what
 * follows), bit 7 "changing memory"; then the RSDP (copied to a heap block
 * of exactly its size, so ASan sees any read past it); the rest is physical
 * memory at address 0, mirrored at the top of the address space (its last
 * byte at 2^64 - 1) so that tables there reach the wrap-around.
 *
 * Checked: every read asks for 1 to 256 bytes, in a range that neither
 * wraps nor ends at 2^64, a bounded number of times; with static memory,
 * the same verdict as the reference (error code, or on success every field
 * of the result) and the same answer twice; with changing memory (each read
 * flips a byte of memory after it), only what must hold whatever memory
 * says: a valid error code with an all-zero result, or counts within their
 * arrays, unused array slots zero, 8-bit IDs from local APIC entries, the
 * MADT's length within its bounds, online-capable only from revision 5. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/acpi.h"

static void fail(const char *what)
{
	fprintf(stderr, "ACPI property violated: %s\n", what);
	abort();
}

static uint8_t *mem;
static size_t mlen;
static bool changing;
static unsigned long nreads;

/* Where n bytes at pa are in the memory (low copy or top mirror), or NULL.
 * Ranges whose end passes UINT64_MAX are never readable. */
static uint8_t *where(uint64_t pa, uint64_t n)
{
	if (mlen == 0 || n > UINT64_MAX - pa)
		return NULL;
	if (pa < mlen && n <= mlen - pa)
		return mem + pa;
	uint64_t top = 0 - (uint64_t)mlen;
	if (pa >= top && n <= mlen - (pa - top))
		return mem + (pa - top);
	return NULL;
}

static bool read_phys(void *ctx, uint64_t pa, void *buf, size_t len)
{
	if (ctx != &mem)
		fail("context");
	if (len == 0 || len > 256)
		fail("read length");
	if (len > UINT64_MAX - pa)
		fail("a read range that wraps or ends at 2^64");
	if (++nreads > 4u * ACPI_MAX_TABLE_LEN)
		fail("unbounded reads");
	uint8_t *p = where(pa, len);
	if (!p)
		return false;
	memcpy(buf, p, len);
	if (changing)
		mem[(nreads * 7919) % mlen] ^= (uint8_t)(0x55 + nreads);
	return true;
}

/* --- the reference, on the flat memory -------------------------------------- */
static uint32_t g32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t g64(const uint8_t *p) { return g32(p) | (uint64_t)g32(p + 4) << 32; }

static bool sums_to_zero(const uint8_t *p, uint64_t n)
{
	unsigned s = 0;
	for (uint64_t i = 0; i < n; i++)
		s += p[i];
	return (s & 0xff) == 0;
}

/* A system description table at pa: its bytes, or an error. */
static enum acpi_err ref_table(uint64_t pa, const char *sig, uint32_t min, enum acpi_err esig, enum acpi_err elen,
			       enum acpi_err esum, const uint8_t **t)
{
	const uint8_t *h = where(pa, 36);
	if (!h)
		return ACPI_ERR_READ;
	if (memcmp(h, sig, 4))
		return esig;
	uint32_t len = g32(h + 4);
	if (len < min || len > ACPI_MAX_TABLE_LEN)
		return elen;
	if (!where(pa, len))
		return ACPI_ERR_READ;
	if (!sums_to_zero(h, len))
		return esum;
	*t = h;
	return ACPI_OK;
}

static unsigned min_len(unsigned type)
{
	static const unsigned m[17] = { 8, 12, 10, 8, 6, 12, 16, 17, 16, 16, 12, 2, 2, 2, 2, 2, 16 };
	return type < 17 ? m[type] : 2;
}

static enum acpi_err reference(const uint8_t *rsdp, size_t rlen, struct acpi_madt_info *o)
{
	memset(o, 0, sizeof(*o));
	if (rlen < 20)
		return ACPI_ERR_RSDP_SHORT;
	if (memcmp(rsdp, "RSD PTR ", 8))
		return ACPI_ERR_RSDP_SIGNATURE;
	if (!sums_to_zero(rsdp, 20))
		return ACPI_ERR_RSDP_CHECKSUM;
	o->rsdp_revision = rsdp[15];
	uint64_t root = g32(rsdp + 16);
	bool x = false;
	if (rsdp[15] >= 2 && rlen >= 36) {
		uint32_t l = g32(rsdp + 20);
		if (l < 36 || l > rlen)
			return ACPI_ERR_RSDP_LENGTH;
		if (!sums_to_zero(rsdp, l))
			return ACPI_ERR_RSDP_XCHECKSUM;
		if (g64(rsdp + 24)) {
			root = g64(rsdp + 24);
			x = true;
		}
	}
	if (!root)
		return ACPI_ERR_NO_ROOT;
	o->xsdt = x;
	o->root_pa = root;
	const uint8_t *rt, *mt = NULL;
	enum acpi_err e = ref_table(root, x ? "XSDT" : "RSDT", 36, ACPI_ERR_ROOT_SIGNATURE, ACPI_ERR_ROOT_LENGTH,
				    ACPI_ERR_ROOT_CHECKSUM, &rt);
	if (e)
		return e;
	unsigned es = x ? 8 : 4;
	uint32_t len = g32(rt + 4);
	if ((len - 36) % es)
		return ACPI_ERR_ROOT_LENGTH;
	if ((len - 36) / es > ACPI_MAX_TABLES)
		return ACPI_ERR_TOO_MANY_TABLES;
	uint64_t madt = 0;
	for (uint32_t off = 36; off < len && !mt; off += es) {
		uint64_t pa = x ? g64(rt + off) : g32(rt + off);
		const uint8_t *s = where(pa, 4);
		if (!s)
			return ACPI_ERR_READ;
		if (!memcmp(s, "APIC", 4)) {
			e = ref_table(pa, "APIC", 44, ACPI_ERR_NO_MADT, ACPI_ERR_MADT_LENGTH, ACPI_ERR_MADT_CHECKSUM, &mt);
			if (e)
				return e;
			madt = pa;
		}
	}
	if (!mt)
		return ACPI_ERR_NO_MADT;
	o->madt_pa = madt;
	o->madt_len = len = g32(mt + 4);
	o->madt_revision = mt[8];
	o->lapic_addr = g32(mt + 36);
	o->flags = g32(mt + 40);
	for (uint32_t off = 44; off < len; off += mt[off + 1]) {
		if (len - off < 2)
			return ACPI_ERR_MADT_ENTRY_OVERRUN;
		const uint8_t *p = mt + off;
		if (p[1] < min_len(p[0]))
			return ACPI_ERR_MADT_ENTRY_LENGTH;
		if (p[1] > len - off)
			return ACPI_ERR_MADT_ENTRY_OVERRUN;
		if (p[0] == 0 || p[0] == 9) {
			if (o->n_cpus == ACPI_MAX_CPUS) {
				o->cpus_dropped++;
				continue;
			}
			struct acpi_cpu *c = &o->cpus[o->n_cpus++];
			uint32_t fl = p[0] == 0 ? g32(p + 4) : g32(p + 8);
			c->x2apic = p[0] == 9;
			c->apic_id = p[0] == 0 ? p[3] : g32(p + 4);
			c->uid = p[0] == 0 ? p[2] : g32(p + 12);
			c->enabled = fl & 1;
			c->online_capable = (fl & 2) && mt[8] >= 5;
		} else if (p[0] == 1) {
			if (o->n_ioapics == ACPI_MAX_IOAPICS) {
				o->ioapics_dropped++;
				continue;
			}
			struct acpi_ioapic *io = &o->ioapics[o->n_ioapics++];
			io->id = p[2];
			io->addr = g32(p + 4);
			io->gsi_base = g32(p + 8);
		} else if (p[0] == 2) {
			if (o->n_isos == ACPI_MAX_ISOS) {
				o->isos_dropped++;
				continue;
			}
			struct acpi_iso *is = &o->isos[o->n_isos++];
			is->bus = p[2];
			is->source = p[3];
			is->gsi = g32(p + 4);
			is->flags = (uint16_t)(p[8] | p[9] << 8);
		} else if (p[0] == 5) {
			o->lapic_addr = g64(p + 4);
			o->lapic_override = true;
		}
	}
	return ACPI_OK;
}

/* --- properties ------------------------------------------------------------- */
static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void check_result(enum acpi_err r, const struct acpi_madt_info *a)
{
	if ((unsigned)r >= ACPI_ERR_COUNT || !acpi_strerror(r))
		fail("error code");
	if (r != ACPI_OK) {
		if (!all_zero(a, sizeof(*a)))
			fail("a result left after an error");
		return;
	}
	if (a->n_cpus > ACPI_MAX_CPUS || a->n_ioapics > ACPI_MAX_IOAPICS || a->n_isos > ACPI_MAX_ISOS)
		fail("counts");
	if ((a->cpus_dropped && a->n_cpus != ACPI_MAX_CPUS) || (a->ioapics_dropped && a->n_ioapics != ACPI_MAX_IOAPICS) ||
	    (a->isos_dropped && a->n_isos != ACPI_MAX_ISOS))
		fail("entries dropped with room left");
	if (!all_zero(a->cpus + a->n_cpus, sizeof(a->cpus[0]) * (ACPI_MAX_CPUS - a->n_cpus)) ||
	    !all_zero(a->ioapics + a->n_ioapics, sizeof(a->ioapics[0]) * (ACPI_MAX_IOAPICS - a->n_ioapics)) ||
	    !all_zero(a->isos + a->n_isos, sizeof(a->isos[0]) * (ACPI_MAX_ISOS - a->n_isos)))
		fail("unused slots written");
	for (unsigned i = 0; i < a->n_cpus; i++) {
		if (!a->cpus[i].x2apic && (a->cpus[i].apic_id > 255 || a->cpus[i].uid > 255))
			fail("a local APIC entry with more than 8-bit IDs");
		if (a->cpus[i].online_capable && a->madt_revision < 5)
			fail("online-capable before MADT revision 5");
	}
	if (a->madt_len < ACPI_MADT_FIXED_LEN || a->madt_len > ACPI_MAX_TABLE_LEN)
		fail("MADT length");
	if (!a->lapic_override && a->lapic_addr > UINT32_MAX)
		fail("a 64-bit LAPIC address without an override");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t rlen = data[0] & 0x7f;
	changing = data[0] & 0x80;
	if (rlen > size - 1)
		rlen = size - 1;
	uint8_t *rsdp = malloc(rlen ? rlen : 1);
	memcpy(rsdp, data + 1, rlen);
	mlen = size - 1 - rlen;
	mem = malloc(mlen ? mlen : 1);
	memcpy(mem, data + 1 + rlen, mlen);

	static struct acpi_madt_info a, b, ref;
	nreads = 0;
	enum acpi_err r = acpi_parse_madt(rsdp, rlen, read_phys, &mem, &a);
	check_result(r, &a);
	if (!changing) {
		enum acpi_err rr = reference(rsdp, rlen, &ref);
		if (rr != r) {
			fprintf(stderr, "parser: %s, reference: %s\n", acpi_strerror(r), acpi_strerror(rr));
			fail("the verdict differs from the reference");
		}
		if (r == ACPI_OK && memcmp(&a, &ref, sizeof(a)))
			fail("the result differs from the reference");
		nreads = 0;
		if (acpi_parse_madt(rsdp, rlen, read_phys, &mem, &b) != r || memcmp(&a, &b, sizeof(a)))
			fail("two parses of the same tables differ");
	}
	/* The MCFG parser on the same tables: every entry it keeps is sound. */
	static struct acpi_mcfg_info m;
	nreads = 0;
	enum acpi_err rm = acpi_parse_mcfg(rsdp, rlen, read_phys, &mem, &m);
	if (rm != ACPI_OK && (m.n || m.dropped || m.mcfg_pa))
		fail("a refused MCFG left a result");
	for (unsigned i = 0; rm == ACPI_OK && i < m.n; i++)
		if (m.e[i].bus_end < m.e[i].bus_start || (m.e[i].base & 0xfffff))
			fail("an MCFG entry kept that the parser must refuse");
	if (m.n > ACPI_MAX_MCFG)
		fail("more MCFG entries than room");
	free(mem);
	free(rsdp);
	return 0;
}
