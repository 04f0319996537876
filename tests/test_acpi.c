// sources: lib/acpi.c
/* Unit tests of the ACPI MADT parser: RSDP -> RSDT/XSDT -> MADT built in a
 * fake physical memory, valid tables and every malformation the parser must
 * refuse (checksums, signatures, lengths, entries, unreadable memory,
 * addresses that wrap, too many tables or CPUs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/acpi.h"

/* Fake physical memory: 64 KiB at MEM_BASE, and the last 256 bytes of the
 * address space (to see that no read wraps).  Reads of [hole_start,
 * hole_end) fail. */
#define MEM_BASE 0x7fe0000ull
#define MEM_SIZE 0x10000u
#define TOP_BASE 0xffffffffffffff00ull
static uint8_t mem[MEM_SIZE], top[256];
static uint64_t hole_start, hole_end;
static unsigned nreads;

#define RSDT_PA (MEM_BASE + 0x0000)
#define XSDT_PA (MEM_BASE + 0x0800)
#define FACP_PA (MEM_BASE + 0x1000)
#define MADT_PA (MEM_BASE + 0x2000)
#define MADT2_PA (MEM_BASE + 0x6000)

static bool read_phys(void *ctx, uint64_t pa, void *buf, size_t len)
{
	assert_ptr_equal(ctx, mem);
	assert_true(len > 0 && len <= 256);
	assert_true(pa + len > pa); /* never a range that wraps, or ends at 2^64 */
	nreads++;
	if (pa < hole_end && pa + len > hole_start)
		return false;
	if (pa >= MEM_BASE && pa - MEM_BASE <= MEM_SIZE && len <= MEM_SIZE - (pa - MEM_BASE)) {
		memcpy(buf, mem + (pa - MEM_BASE), len);
		return true;
	}
	if (pa >= TOP_BASE && len <= sizeof(top) - (pa - TOP_BASE)) {
		memcpy(buf, top + (pa - TOP_BASE), len);
		return true;
	}
	return false;
}

static uint8_t *at(uint64_t pa) { return mem + (pa - MEM_BASE); }
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* Recomputes the checksum of the table at p from its length field. */
static void fix(uint8_t *p)
{
	p[9] = 0;
	p[9] = (uint8_t)-sum(p, get32(p + 4));
}

static void put_table(uint64_t pa, const char *sig, uint8_t rev, const void *body, uint32_t blen)
{
	uint8_t *t = at(pa);
	memset(t, 0, 36);
	memcpy(t, sig, 4);
	put32(t + 4, 36 + blen);
	t[8] = rev;
	memcpy(t + 10, "NESTOR", 6);
	if (blen)
		memcpy(t + 36, body, blen);
	fix(t);
}

/* --- MADT builder --- */
static uint8_t madt[8192];
static size_t mlen;

static void madt_begin(uint32_t lapic_addr, uint32_t flags)
{
	put32(madt, lapic_addr);
	put32(madt + 4, flags);
	mlen = 8;
}

static void ent(uint8_t type, uint8_t len, const void *body)
{
	madt[mlen] = type;
	madt[mlen + 1] = len;
	if (len > 2)
		memcpy(madt + mlen + 2, body, len - 2);
	mlen += len;
}

static void lapic(uint8_t uid, uint8_t id, uint32_t flags)
{
	uint8_t b[6] = { uid, id };
	put32(b + 2, flags);
	ent(ACPI_MADT_LAPIC, 8, b);
}

static void x2apic(uint32_t id, uint32_t uid, uint32_t flags)
{
	uint8_t b[14] = { 0 };
	put32(b + 2, id);
	put32(b + 6, flags);
	put32(b + 10, uid);
	ent(ACPI_MADT_X2APIC, 16, b);
}

static void ioapic(uint8_t id, uint32_t addr, uint32_t gsi_base)
{
	uint8_t b[10] = { id, 0 };
	put32(b + 2, addr);
	put32(b + 6, gsi_base);
	ent(ACPI_MADT_IOAPIC, 12, b);
}

static void iso(uint8_t source, uint32_t gsi, uint16_t flags)
{
	uint8_t b[8] = { 0, source };
	put32(b + 2, gsi);
	put16(b + 6, flags);
	ent(ACPI_MADT_ISO, 10, b);
}

static void lapic_override(uint64_t addr)
{
	uint8_t b[10] = { 0 };
	put64(b + 2, addr);
	ent(ACPI_MADT_LAPIC_ADDR_OVERRIDE, 12, b);
}

static void madt_end(uint64_t pa, uint8_t rev) { put_table(pa, "APIC", rev, madt, (uint32_t)mlen); }

/* --- root tables and the RSDP --- */
static void rsdt(uint64_t pa, const uint32_t *e, unsigned n)
{
	uint8_t b[4096];
	for (unsigned i = 0; i < n; i++)
		put32(b + 4 * i, e[i]);
	put_table(pa, "RSDT", 1, b, 4 * n);
}

static void xsdt(uint64_t pa, const uint64_t *e, unsigned n)
{
	uint8_t b[4096];
	for (unsigned i = 0; i < n; i++)
		put64(b + 8 * i, e[i]);
	put_table(pa, "XSDT", 1, b, 8 * n);
}

static uint8_t rsdp[64];

static void rsdp_v1(uint32_t rsdt_pa)
{
	memset(rsdp, 0, sizeof(rsdp));
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, "BOCHS ", 6);
	rsdp[15] = 0;
	put32(rsdp + 16, rsdt_pa);
	rsdp[8] = (uint8_t)-sum(rsdp, 20);
}

static void rsdp_v2(uint32_t rsdt_pa, uint64_t xsdt_pa)
{
	rsdp_v1(rsdt_pa);
	rsdp[15] = 2;
	put32(rsdp + 20, 36);
	put64(rsdp + 24, xsdt_pa);
	rsdp[8] = 0;
	rsdp[8] = (uint8_t)-sum(rsdp, 20);
	rsdp[32] = (uint8_t)-sum(rsdp, 36);
}

static struct acpi_madt_info info;

static enum acpi_err parse_n(size_t rsdp_len)
{
	nreads = 0;
	return acpi_parse_madt(rsdp, rsdp_len, read_phys, mem, &info);
}
static enum acpi_err parse(void) { return parse_n(rsdp[15] >= 2 ? 36 : 20); }

/* A machine as Bochs' BIOS describes it, with n CPUs: RSDT -> FACP, MADT. */
static void machine(unsigned n)
{
	memset(mem, 0, sizeof(mem));
	memset(top, 0, sizeof(top));
	hole_start = hole_end = 0;
	put_table(FACP_PA, "FACP", 1, "x", 1);
	madt_begin(0xfee00000, ACPI_MADT_PCAT_COMPAT);
	for (unsigned i = 0; i < n; i++)
		lapic((uint8_t)i, (uint8_t)i, ACPI_LAPIC_ENABLED);
	ioapic((uint8_t)n, 0xfec00000, 0);
	iso(0, 2, 0);
	iso(9, 9, 0xd);
	ent(4, 6, "\xff\x05\x00\x01"); /* Local APIC NMI, skipped */
	madt_end(MADT_PA, 1);
	uint32_t e[] = { (uint32_t)FACP_PA, (uint32_t)MADT_PA };
	rsdt(RSDT_PA, e, 2);
	rsdp_v1((uint32_t)RSDT_PA);
}

static void assert_err(enum acpi_err got, enum acpi_err want)
{
	assert_int_equal(got, want);
	if (want != ACPI_OK) {
		static const struct acpi_madt_info zero;
		assert_memory_equal(&info, &zero, sizeof(info)); /* nothing half-parsed is left */
	}
}

static void v1_two_cpus(void **state)
{
	(void)state;
	machine(2);
	assert_err(parse(), ACPI_OK);
	assert_int_equal(info.rsdp_revision, 0);
	assert_false(info.xsdt);
	assert_int_equal(info.root_pa, RSDT_PA);
	assert_int_equal(info.madt_pa, MADT_PA);
	assert_int_equal(info.madt_revision, 1);
	assert_int_equal(info.lapic_addr, 0xfee00000);
	assert_false(info.lapic_override);
	assert_int_equal(info.flags, ACPI_MADT_PCAT_COMPAT);
	assert_int_equal(info.n_cpus, 2);
	assert_int_equal(info.cpus_dropped, 0);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(info.cpus[i].apic_id, i);
		assert_int_equal(info.cpus[i].uid, i);
		assert_true(info.cpus[i].enabled);
		assert_false(info.cpus[i].x2apic);
		assert_false(info.cpus[i].online_capable);
	}
	assert_int_equal(info.n_ioapics, 1);
	assert_int_equal(info.ioapics[0].id, 2);
	assert_int_equal(info.ioapics[0].addr, 0xfec00000);
	assert_int_equal(info.ioapics[0].gsi_base, 0);
	assert_int_equal(info.n_isos, 2);
	assert_int_equal(info.isos[0].source, 0);
	assert_int_equal(info.isos[0].gsi, 2);
	assert_int_equal(info.isos[1].source, 9);
	assert_int_equal(info.isos[1].gsi, 9);
	assert_int_equal(info.isos[1].flags, 0xd);
	/* Deterministic, and the same answer from a second parse. */
	struct acpi_madt_info first = info;
	assert_err(parse(), ACPI_OK);
	assert_memory_equal(&first, &info, sizeof(info));
}

static void v1_four_cpus(void **state)
{
	(void)state;
	madt_begin(0, 0);
	machine(4);
	assert_err(parse(), ACPI_OK);
	assert_int_equal(info.n_cpus, 4);
	assert_int_equal(info.cpus[3].apic_id, 3);
	assert_int_equal(info.ioapics[0].id, 4);
	/* Non-contiguous IDs and UIDs, in table order. */
	madt_begin(0xfee00000, 0);
	lapic(1, 0, ACPI_LAPIC_ENABLED);
	lapic(2, 2, ACPI_LAPIC_ENABLED);
	lapic(3, 4, ACPI_LAPIC_ENABLED);
	lapic(4, 6, ACPI_LAPIC_ENABLED);
	madt_end(MADT_PA, 3);
	assert_err(parse(), ACPI_OK);
	assert_int_equal(info.n_cpus, 4);
	assert_int_equal(info.flags, 0);
	assert_int_equal(info.n_ioapics, 0);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(info.cpus[i].apic_id, 2 * i);
		assert_int_equal(info.cpus[i].uid, i + 1);
	}
}

static void v2_xsdt(void **state)
{
	(void)state;
	/* The RSDT leads to a 2-CPU MADT, the XSDT to a 3-CPU one. */
	machine(2);
	madt_begin(0xfee00000, 0);
	for (unsigned i = 0; i < 3; i++)
		lapic((uint8_t)i, (uint8_t)(i + 8), ACPI_LAPIC_ENABLED);
	madt_end(MADT2_PA, 4);
	uint64_t e[] = { FACP_PA, MADT2_PA };
	xsdt(XSDT_PA, e, 2);
	rsdp_v2((uint32_t)RSDT_PA, XSDT_PA);
	assert_err(parse(), ACPI_OK);
	assert_int_equal(info.rsdp_revision, 2);
	assert_true(info.xsdt);
	assert_int_equal(info.root_pa, XSDT_PA);
	assert_int_equal(info.madt_pa, MADT2_PA);
	assert_int_equal(info.n_cpus, 3);
	assert_int_equal(info.cpus[2].apic_id, 10);
	/* A revision-2 RSDP given with only its first 20 bytes: the RSDT. */
	assert_err(parse_n(20), ACPI_OK);
	assert_false(info.xsdt);
	assert_int_equal(info.n_cpus, 2);
	/* Longer than 36 bytes (a length field of 40, bytes given 40). */
	put32(rsdp + 20, 40);
	rsdp[32] = 0;
	rsdp[32] = (uint8_t)-sum(rsdp, 40);
	assert_err(parse_n(40), ACPI_OK);
	assert_true(info.xsdt);
	/* Revision 2 with a zero XSDT address: the RSDT. */
	rsdp_v2((uint32_t)RSDT_PA, 0);
	assert_err(parse(), ACPI_OK);
	assert_false(info.xsdt);
	assert_int_equal(info.n_cpus, 2);
	/* XSDT entries above 4 GiB are used as they are: unreadable here. */
	uint64_t far[] = { 0x100000000ull | MADT2_PA };
	xsdt(XSDT_PA, far, 1);
	rsdp_v2((uint32_t)RSDT_PA, XSDT_PA);
	assert_err(parse(), ACPI_ERR_READ);
}

static void disabled_and_online_capable(void **state)
{
	(void)state;
	machine(0);
	madt_begin(0xfee00000, 0);
	lapic(0, 0, ACPI_LAPIC_ENABLED);
	lapic(1, 1, 0);
	lapic(2, 2, ACPI_LAPIC_ONLINE_CAPABLE);
	lapic(3, 3, 0xfffffffc); /* reserved bits only */
	madt_end(MADT_PA, 5);
	assert_err(parse(), ACPI_OK);
	assert_int_equal(info.n_cpus, 4);
	assert_true(info.cpus[0].enabled);
	assert_false(info.cpus[1].enabled);
	assert_false(info.cpus[1].online_capable);
	assert_false(info.cpus[2].enabled);
	assert_true(info.cpus[2].online_capable);
	assert_false(info.cpus[3].enabled);
	assert_false(info.cpus[3].online_capable);
	/* Before MADT revision 5 bit 1 is reserved. */
	madt_end(MADT_PA, 4);
	assert_err(parse(), ACPI_OK);
	assert_false(info.cpus[2].online_capable);
}

static void x2apic_entries(void **state)
{
	(void)state;
	machine(0);
	madt_begin(0xfee00000, 0);
	lapic(0, 0, ACPI_LAPIC_ENABLED);
	x2apic(0x100, 0x1000, ACPI_LAPIC_ENABLED);
	x2apic(0xfffffffe, 0xffffffff, 0);
	madt_end(MADT_PA, 5);
	assert_err(parse(), ACPI_OK);
	assert_int_equal(info.n_cpus, 3);
	assert_false(info.cpus[0].x2apic);
	assert_true(info.cpus[1].x2apic);
	assert_int_equal(info.cpus[1].apic_id, 0x100);
	assert_int_equal(info.cpus[1].uid, 0x1000);
	assert_true(info.cpus[1].enabled);
	assert_int_equal(info.cpus[2].apic_id, 0xfffffffe);
	assert_int_equal(info.cpus[2].uid, 0xffffffff);
	assert_false(info.cpus[2].enabled);
}

static void lapic_address_override(void **state)
{
	(void)state;
	machine(0);
	madt_begin(0xfee00000, 0);
	lapic(0, 0, ACPI_LAPIC_ENABLED);
	lapic_override(0x123456789000ull);
	madt_end(MADT_PA, 1);
	assert_err(parse(), ACPI_OK);
	assert_true(info.lapic_override);
	assert_int_equal(info.lapic_addr, 0x123456789000ull);
	assert_int_equal(info.n_cpus, 1);
	/* The last override wins. */
	lapic_override(0xfed00000);
	madt_end(MADT_PA, 1);
	assert_err(parse(), ACPI_OK);
	assert_int_equal(info.lapic_addr, 0xfed00000);
}

static void bad_checksums_and_signatures(void **state)
{
	(void)state;
	machine(2);
	rsdp[8] ^= 1;
	assert_err(parse(), ACPI_ERR_RSDP_CHECKSUM);
	machine(2);
	rsdp[0] = 'r';
	assert_err(parse(), ACPI_ERR_RSDP_SIGNATURE);
	machine(2);
	at(RSDT_PA)[9] ^= 1;
	assert_err(parse(), ACPI_ERR_ROOT_CHECKSUM);
	machine(2);
	at(RSDT_PA + 40)[0] ^= 1; /* an entry */
	assert_err(parse(), ACPI_ERR_ROOT_CHECKSUM);
	machine(2);
	at(MADT_PA)[9] ^= 1;
	assert_err(parse(), ACPI_ERR_MADT_CHECKSUM);
	machine(2);
	at(MADT_PA + get32(at(MADT_PA) + 4) - 1)[0] ^= 0x80; /* its last byte */
	assert_err(parse(), ACPI_ERR_MADT_CHECKSUM);
	machine(2);
	memcpy(at(RSDT_PA), "XSDT", 4);
	fix(at(RSDT_PA));
	assert_err(parse(), ACPI_ERR_ROOT_SIGNATURE);
	/* v2: the extended checksum, and an XSDT that is an RSDT. */
	machine(2);
	uint64_t e[] = { MADT_PA };
	xsdt(XSDT_PA, e, 1);
	rsdp_v2((uint32_t)RSDT_PA, XSDT_PA);
	assert_err(parse(), ACPI_OK);
	rsdp[33] ^= 1; /* reserved, covered by the extended checksum only */
	assert_err(parse(), ACPI_ERR_RSDP_XCHECKSUM);
	rsdp_v2((uint32_t)RSDT_PA, RSDT_PA);
	assert_err(parse(), ACPI_ERR_ROOT_SIGNATURE);
	rsdp_v2((uint32_t)RSDT_PA, XSDT_PA);
	at(XSDT_PA)[9] ^= 1;
	assert_err(parse(), ACPI_ERR_ROOT_CHECKSUM);
	/* No root table at all. */
	rsdp_v1(0);
	assert_err(parse(), ACPI_ERR_NO_ROOT);
	rsdp_v2(0, 0);
	assert_err(parse(), ACPI_ERR_NO_ROOT);
}

static void truncated(void **state)
{
	(void)state;
	machine(2);
	assert_err(parse_n(19), ACPI_ERR_RSDP_SHORT);
	assert_err(parse_n(0), ACPI_ERR_RSDP_SHORT);
	/* v2 length field beyond the bytes given, or below 36. */
	rsdp_v2((uint32_t)RSDT_PA, 0);
	put32(rsdp + 20, 37);
	assert_err(parse_n(36), ACPI_ERR_RSDP_LENGTH);
	put32(rsdp + 20, 35);
	assert_err(parse_n(36), ACPI_ERR_RSDP_LENGTH);
	put32(rsdp + 20, 0xffffffff);
	assert_err(parse_n(36), ACPI_ERR_RSDP_LENGTH);
	/* Root table lengths: below its header, not whole entries, too long. */
	machine(2);
	put32(at(RSDT_PA) + 4, 35);
	fix(at(RSDT_PA));
	assert_err(parse(), ACPI_ERR_ROOT_LENGTH);
	machine(2);
	put32(at(RSDT_PA) + 4, 36 + 6);
	fix(at(RSDT_PA));
	assert_err(parse(), ACPI_ERR_ROOT_LENGTH);
	machine(2);
	put32(at(RSDT_PA) + 4, ACPI_MAX_TABLE_LEN + 4);
	assert_err(parse(), ACPI_ERR_ROOT_LENGTH);
	put32(at(RSDT_PA) + 4, 0xffffffff);
	assert_err(parse(), ACPI_ERR_ROOT_LENGTH);
	/* An empty RSDT, and one whose tables have no MADT. */
	machine(2);
	rsdt(RSDT_PA, NULL, 0);
	assert_err(parse(), ACPI_ERR_NO_MADT);
	uint32_t e[] = { (uint32_t)FACP_PA, (uint32_t)FACP_PA };
	rsdt(RSDT_PA, e, 2);
	assert_err(parse(), ACPI_ERR_NO_MADT);
	/* MADT lengths: below its fixed part, too long, beyond readable memory. */
	machine(2);
	put32(at(MADT_PA) + 4, 43);
	fix(at(MADT_PA));
	assert_err(parse(), ACPI_ERR_MADT_LENGTH);
	put32(at(MADT_PA) + 4, ACPI_MAX_TABLE_LEN + 1);
	assert_err(parse(), ACPI_ERR_MADT_LENGTH);
	machine(2);
	put32(at(MADT_PA) + 4, MEM_SIZE - (uint32_t)(MADT_PA - MEM_BASE) + 1);
	assert_err(parse(), ACPI_ERR_READ);
	/* A MADT of just its fixed part: no CPUs, fine. */
	machine(0);
	madt_begin(0xfee00000, 1);
	madt_end(MADT_PA, 1);
	assert_err(parse(), ACPI_OK);
	assert_int_equal(info.n_cpus, 0);
	assert_int_equal(info.madt_len, 44);
	/* The last entry cut short by the table's length, or 1 byte left over. */
	machine(2);
	put32(at(MADT_PA) + 4, get32(at(MADT_PA) + 4) - 3);
	fix(at(MADT_PA));
	assert_err(parse(), ACPI_ERR_MADT_ENTRY_OVERRUN);
	machine(2);
	put32(at(MADT_PA) + 4, get32(at(MADT_PA) + 4) + 1);
	fix(at(MADT_PA));
	assert_err(parse(), ACPI_ERR_MADT_ENTRY_OVERRUN);
}

static void bad_entry_lengths(void **state)
{
	(void)state;
	static const struct {
		uint8_t type, len;
		enum acpi_err want;
	} cases[] = {
		{ 0, 0, ACPI_ERR_MADT_ENTRY_LENGTH },    { 0x7f, 0, ACPI_ERR_MADT_ENTRY_LENGTH },
		{ 0x7f, 1, ACPI_ERR_MADT_ENTRY_LENGTH }, { 0x7f, 2, ACPI_OK },
		{ 0, 7, ACPI_ERR_MADT_ENTRY_LENGTH },    { 0, 8, ACPI_OK },
		{ 1, 11, ACPI_ERR_MADT_ENTRY_LENGTH },   { 2, 9, ACPI_ERR_MADT_ENTRY_LENGTH },
		{ 4, 5, ACPI_ERR_MADT_ENTRY_LENGTH },    { 4, 6, ACPI_OK },
		{ 5, 11, ACPI_ERR_MADT_ENTRY_LENGTH },   { 9, 15, ACPI_ERR_MADT_ENTRY_LENGTH },
		{ 9, 16, ACPI_OK },                       { 0xa, 11, ACPI_ERR_MADT_ENTRY_LENGTH },
		{ 7, 16, ACPI_ERR_MADT_ENTRY_LENGTH },   { 0x10, 15, ACPI_ERR_MADT_ENTRY_LENGTH },
	};
	uint8_t zero[256] = { 0 };
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		machine(0);
		madt_begin(0xfee00000, 0);
		lapic(0, 0, ACPI_LAPIC_ENABLED);
		ent(cases[i].type, cases[i].len, zero);
		if (cases[i].len < 2)
			mlen += 8 - cases[i].len; /* padding the walk must not reach */
		lapic(1, 1, ACPI_LAPIC_ENABLED);
		madt_end(MADT_PA, 1);
		assert_err(parse(), cases[i].want);
		if (cases[i].want == ACPI_OK)
			assert_int_equal(info.n_cpus, cases[i].type == 0 || cases[i].type == 9 ? 3 : 2);
	}
	/* A longer entry than its type needs is read at its own length. */
	machine(0);
	madt_begin(0xfee00000, 0);
	uint8_t b[10] = { 7, 3 };
	put32(b + 2, ACPI_LAPIC_ENABLED);
	ent(ACPI_MADT_LAPIC, 12, b);
	lapic(8, 9, 0);
	madt_end(MADT_PA, 1);
	assert_err(parse(), ACPI_OK);
	assert_int_equal(info.n_cpus, 2);
	assert_int_equal(info.cpus[0].apic_id, 3);
	assert_int_equal(info.cpus[1].apic_id, 9);
	/* An entry of 255 bytes, the largest. */
	machine(0);
	madt_begin(0xfee00000, 0);
	ent(0x42, 255, zero);
	lapic(0, 0, ACPI_LAPIC_ENABLED);
	madt_end(MADT_PA, 1);
	assert_err(parse(), ACPI_OK);
	assert_int_equal(info.n_cpus, 1);
}

static void too_many(void **state)
{
	(void)state;
	machine(0);
	madt_begin(0xfee00000, 0);
	for (unsigned i = 0; i < 60; i++)
		lapic((uint8_t)i, (uint8_t)i, ACPI_LAPIC_ENABLED);
	for (unsigned i = 60; i < 70; i++)
		x2apic(i, i, ACPI_LAPIC_ENABLED);
	for (unsigned i = 0; i < ACPI_MAX_IOAPICS + 4; i++)
		ioapic((uint8_t)i, 0xfec00000 + 0x1000 * i, 24 * i);
	for (unsigned i = 0; i < ACPI_MAX_ISOS + 8; i++)
		iso((uint8_t)i, i, 0);
	madt_end(MADT_PA, 1);
	assert_err(parse(), ACPI_OK);
	assert_int_equal(info.n_cpus, ACPI_MAX_CPUS);
	assert_int_equal(info.cpus_dropped, 70 - ACPI_MAX_CPUS);
	assert_int_equal(info.cpus[ACPI_MAX_CPUS - 1].apic_id, ACPI_MAX_CPUS - 1);
	assert_true(info.cpus[ACPI_MAX_CPUS - 1].x2apic);
	assert_int_equal(info.n_ioapics, ACPI_MAX_IOAPICS);
	assert_int_equal(info.ioapics_dropped, 4);
	assert_int_equal(info.ioapics[ACPI_MAX_IOAPICS - 1].gsi_base, 24 * (ACPI_MAX_IOAPICS - 1));
	assert_int_equal(info.n_isos, ACPI_MAX_ISOS);
	assert_int_equal(info.isos_dropped, 8);
	/* Tables: ACPI_MAX_TABLES entries with the MADT last, then one more. */
	machine(2);
	uint32_t e[ACPI_MAX_TABLES + 1];
	for (unsigned i = 0; i < ACPI_MAX_TABLES + 1; i++)
		e[i] = (uint32_t)FACP_PA;
	e[ACPI_MAX_TABLES - 1] = (uint32_t)MADT_PA;
	rsdt(RSDT_PA, e, ACPI_MAX_TABLES);
	assert_err(parse(), ACPI_OK);
	assert_int_equal(info.n_cpus, 2);
	rsdt(RSDT_PA, e, ACPI_MAX_TABLES + 1);
	assert_err(parse(), ACPI_ERR_TOO_MANY_TABLES);
	/* The first table signed APIC is the MADT. */
	machine(2);
	madt_begin(0xfee00000, 0);
	lapic(0, 5, ACPI_LAPIC_ENABLED);
	madt_end(MADT2_PA, 1);
	uint32_t two[] = { (uint32_t)MADT2_PA, (uint32_t)MADT_PA };
	rsdt(RSDT_PA, two, 2);
	assert_err(parse(), ACPI_OK);
	assert_int_equal(info.n_cpus, 1);
	assert_int_equal(info.cpus[0].apic_id, 5);
}

static void unreadable(void **state)
{
	(void)state;
	/* The RSDT itself, a table it lists, a hole inside the MADT. */
	machine(2);
	rsdp_v1(0x1000);
	assert_err(parse(), ACPI_ERR_READ);
	machine(2);
	uint32_t e[] = { (uint32_t)FACP_PA, 0xfffff000 };
	rsdt(RSDT_PA, e, 2);
	assert_err(parse(), ACPI_ERR_READ);
	machine(2);
	hole_start = MADT_PA + 50;
	hole_end = hole_start + 1;
	assert_err(parse(), ACPI_ERR_READ);
	/* A table at the very end of readable memory is fine... */
	machine(2);
	uint64_t last = MEM_BASE + MEM_SIZE - get32(at(MADT_PA) + 4);
	memcpy(at(last), at(MADT_PA), get32(at(MADT_PA) + 4));
	uint32_t e2[] = { (uint32_t)last };
	rsdt(RSDT_PA, e2, 1);
	assert_err(parse(), ACPI_OK);
	assert_int_equal(info.madt_pa, last);
	/* ...one byte longer is not. */
	put32(at(last) + 4, get32(at(last) + 4) + 1);
	assert_err(parse(), ACPI_ERR_READ);
	/* Tables whose range wraps past 2^64: the callback is never asked
	 * (it asserts so); a header that fits, a body that wraps. */
	machine(2);
	uint8_t *m = top + sizeof(top) - 64;
	memcpy(m, "APIC", 4);
	put32(m + 4, 100);
	uint64_t x[] = { TOP_BASE + sizeof(top) - 64 };
	xsdt(XSDT_PA, x, 1);
	rsdp_v2((uint32_t)RSDT_PA, XSDT_PA);
	assert_err(parse(), ACPI_ERR_READ);
	x[0] = UINT64_MAX - 1;
	xsdt(XSDT_PA, x, 1);
	assert_err(parse(), ACPI_ERR_READ);
	rsdp_v2((uint32_t)RSDT_PA, UINT64_MAX - 10);
	assert_err(parse(), ACPI_ERR_READ);
	/* A MADT whose last byte is at 2^64 - 2 works; moved up one byte, its
	 * end would be 2^64, refused like a wrap. */
	for (unsigned up = 0; up < 2; up++) {
		uint8_t *t = top + sizeof(top) - 53 + up;
		memset(top, 0, sizeof(top));
		memset(t, 0, 52);
		memcpy(t, "APIC", 4);
		put32(t + 4, 52);
		put32(t + 36, 0xfee00000);
		t[44] = ACPI_MADT_LAPIC;
		t[45] = 8;
		t[47] = 7;
		put32(t + 48, ACPI_LAPIC_ENABLED);
		fix(t);
		x[0] = TOP_BASE + sizeof(top) - 53 + up;
		xsdt(XSDT_PA, x, 1);
		rsdp_v2((uint32_t)RSDT_PA, XSDT_PA);
		if (up) {
			assert_err(parse(), ACPI_ERR_READ);
		} else {
			assert_err(parse(), ACPI_OK);
			assert_int_equal(info.n_cpus, 1);
			assert_int_equal(info.cpus[0].apic_id, 7);
		}
	}
}

static void arguments_and_messages(void **state)
{
	(void)state;
	machine(1);
	assert_int_equal(acpi_parse_madt(NULL, 20, read_phys, mem, &info), ACPI_ERR_ARGS);
	assert_int_equal(acpi_parse_madt(rsdp, 20, NULL, mem, &info), ACPI_ERR_ARGS);
	assert_int_equal(acpi_parse_madt(rsdp, 20, read_phys, mem, NULL), ACPI_ERR_ARGS);
	for (int i = 0; i < ACPI_ERR_COUNT; i++) {
		const char *s = acpi_strerror((enum acpi_err)i);
		assert_non_null(s);
		assert_string_not_equal(s, "unknown ACPI error");
		for (int j = 0; j < i; j++)
			assert_string_not_equal(s, acpi_strerror((enum acpi_err)j));
	}
	assert_string_equal(acpi_strerror(ACPI_ERR_COUNT), "unknown ACPI error");
	assert_string_equal(acpi_strerror((enum acpi_err)-1), "unknown ACPI error");
}

/* Random corruptions of a valid machine, half of them with the checksums
 * made right again so that the walk goes deep: never a crash or a bad read
 * (ASan and the callback's assertions), results within bounds and the same
 * on a second parse. */
static void random_input(void **state)
{
	(void)state;
	srand(7);
	for (int round = 0; round < 20000; round++) {
		machine(1 + rand() % 6);
		if (rand() % 2) {
			uint64_t e[] = { FACP_PA, MADT_PA };
			xsdt(XSDT_PA, e, 2);
			rsdp_v2((uint32_t)RSDT_PA, XSDT_PA);
		}
		int flips = 1 + rand() % 4;
		for (int f = 0; f < flips; f++) {
			switch (rand() % 4) {
			case 0: rsdp[rand() % 36] = (uint8_t)rand(); break;
			case 1: at(RSDT_PA)[rand() % 48] = (uint8_t)rand(); break;
			case 2: at(XSDT_PA)[rand() % 56] = (uint8_t)rand(); break;
			default: at(MADT_PA)[rand() % 96] = (uint8_t)rand(); break;
			}
		}
		if (rand() % 2) {
			uint64_t tabs[] = { RSDT_PA, XSDT_PA, MADT_PA };
			for (unsigned i = 0; i < 3; i++)
				if (get32(at(tabs[i]) + 4) <= 0x1000)
					fix(at(tabs[i]));
		}
		size_t rl = rand() % 2 ? 20 : 36;
		enum acpi_err r = parse_n(rl);
		assert_true(r >= ACPI_OK && r < ACPI_ERR_COUNT);
		struct acpi_madt_info first = info;
		assert_int_equal(parse_n(rl), r);
		assert_memory_equal(&first, &info, sizeof(info));
		if (r == ACPI_OK) {
			assert_true(first.n_cpus <= ACPI_MAX_CPUS && first.n_ioapics <= ACPI_MAX_IOAPICS &&
				    first.n_isos <= ACPI_MAX_ISOS);
			assert_true(first.madt_len >= ACPI_MADT_FIXED_LEN && first.madt_len <= ACPI_MAX_TABLE_LEN);
		}
	}
}

/* --- MCFG (memory-mapped PCI configuration space) --- */
#define MCFG_PA (MEM_BASE + 0x4000)

static struct acpi_mcfg_info minfo;

static void mcfg_entry(uint8_t *b, uint64_t base, uint16_t seg, uint8_t start, uint8_t end)
{
	memset(b, 0, 16);
	put64(b, base);
	put16(b + 8, seg);
	b[10] = start;
	b[11] = end;
}

/* machine(2) plus an MCFG of n entries (the table's 8 reserved bytes,
 * then 16 per entry) listed by the RSDT after the MADT. */
static void machine_mcfg(const uint8_t *entries, unsigned n)
{
	machine(2);
	uint8_t b[8 + 16 * 12] = { 0 };
	memcpy(b + 8, entries, 16 * n);
	put_table(MCFG_PA, "MCFG", 1, b, 8 + 16 * n);
	uint32_t e[] = { (uint32_t)FACP_PA, (uint32_t)MADT_PA, (uint32_t)MCFG_PA };
	rsdt(RSDT_PA, e, 3);
}

static void mcfg_found(void **state)
{
	(void)state;
	uint8_t e[2 * 16];
	mcfg_entry(e, 0xe0000000, 0, 0, 0xff);
	mcfg_entry(e + 16, 0x100000000ull, 1, 0x10, 0x1f);
	machine_mcfg(e, 2);
	assert_int_equal(acpi_parse_mcfg(rsdp, 20, read_phys, mem, &minfo), ACPI_OK);
	assert_int_equal(minfo.mcfg_pa, MCFG_PA);
	assert_int_equal(minfo.n, 2);
	assert_int_equal(minfo.e[0].base, 0xe0000000);
	assert_int_equal(minfo.e[0].bus_end, 0xff);
	assert_int_equal(minfo.e[1].base, 0x100000000ull);
	assert_int_equal(minfo.e[1].segment, 1);
	assert_int_equal(minfo.e[1].bus_start, 0x10);
	assert_int_equal(minfo.e[1].bus_end, 0x1f);
	/* The MADT parser still finds its table with the MCFG listed. */
	assert_err(parse(), ACPI_OK);
	/* More entries than kept: counted. */
	uint8_t many[12 * 16];
	for (unsigned i = 0; i < 12; i++)
		mcfg_entry(many + 16 * i, 0xe0000000 + ((uint64_t)i << 28), (uint16_t)i, 0, 0);
	machine_mcfg(many, 12);
	assert_int_equal(acpi_parse_mcfg(rsdp, 20, read_phys, mem, &minfo), ACPI_OK);
	assert_int_equal(minfo.n, ACPI_MAX_MCFG);
	assert_int_equal(minfo.dropped, 12 - ACPI_MAX_MCFG);
}

static void assert_mcfg_err(enum acpi_err want)
{
	static const struct acpi_mcfg_info zero;
	assert_int_equal(acpi_parse_mcfg(rsdp, 20, read_phys, mem, &minfo), want);
	assert_memory_equal(&minfo, &zero, sizeof(minfo));
}

static void mcfg_absent_and_malformed(void **state)
{
	(void)state;
	machine(2); /* Bochs: no MCFG */
	assert_mcfg_err(ACPI_ERR_NO_MCFG);
	uint8_t e[16];
	mcfg_entry(e, 0xe0000000, 0, 0x20, 0x10); /* end below start */
	machine_mcfg(e, 1);
	assert_mcfg_err(ACPI_ERR_MCFG_ENTRY);
	mcfg_entry(e, 0xe0080000, 0, 0, 1); /* not 1 MiB aligned */
	machine_mcfg(e, 1);
	assert_mcfg_err(ACPI_ERR_MCFG_ENTRY);
	mcfg_entry(e, 0xfffffffffff00000ull, 0, 0, 1); /* 2 MiB from 1 MiB below 2^64: wraps */
	machine_mcfg(e, 1);
	assert_mcfg_err(ACPI_ERR_MCFG_ENTRY);
	mcfg_entry(e, 0xfffffffffff00000ull, 0, 0, 0); /* the last 1 MiB: fine */
	machine_mcfg(e, 1);
	assert_int_equal(acpi_parse_mcfg(rsdp, 20, read_phys, mem, &minfo), ACPI_OK);
	mcfg_entry(e, 0xe0000000, 0, 0, 0);
	machine_mcfg(e, 1);
	at(MCFG_PA)[40] ^= 1; /* checksum */
	assert_mcfg_err(ACPI_ERR_MCFG_CHECKSUM);
	machine_mcfg(e, 1);
	put32(at(MCFG_PA) + 4, 36 + 8 + 8); /* half an entry */
	fix(at(MCFG_PA));
	assert_mcfg_err(ACPI_ERR_MCFG_LENGTH);
	machine_mcfg(e, 1);
	put32(at(MCFG_PA) + 4, 40); /* shorter than the fixed part */
	fix(at(MCFG_PA));
	assert_mcfg_err(ACPI_ERR_MCFG_LENGTH);
	machine_mcfg(e, 1);
	hole_start = MCFG_PA + 44, hole_end = MCFG_PA + 45; /* its entry unreadable */
	assert_mcfg_err(ACPI_ERR_READ);
	assert_int_equal(acpi_parse_mcfg(NULL, 20, read_phys, mem, &minfo), ACPI_ERR_ARGS);
	assert_string_not_equal(acpi_strerror(ACPI_ERR_MCFG_ENTRY), "unknown ACPI error");
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(v1_two_cpus),
		cmocka_unit_test(v1_four_cpus),
		cmocka_unit_test(v2_xsdt),
		cmocka_unit_test(disabled_and_online_capable),
		cmocka_unit_test(x2apic_entries),
		cmocka_unit_test(lapic_address_override),
		cmocka_unit_test(bad_checksums_and_signatures),
		cmocka_unit_test(truncated),
		cmocka_unit_test(bad_entry_lengths),
		cmocka_unit_test(too_many),
		cmocka_unit_test(unreadable),
		cmocka_unit_test(arguments_and_messages),
		cmocka_unit_test(random_input),
		cmocka_unit_test(mcfg_found),
		cmocka_unit_test(mcfg_absent_and_malformed),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
