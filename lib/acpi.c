/* acpi.c - RSDP -> RSDT/XSDT -> MADT parser (see acpi.h). */
#include "lib/acpi.h"
#include "lib/string.h"

#define CHUNK 256 /* the largest single read; a MADT entry is at most 255 bytes */

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

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

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

struct reader {
	acpi_read_phys_fn fn;
	void *ctx;
};

/* Reads [pa + off, pa + off + len): refused when that end would pass
 * UINT64_MAX (so a callback can compute pa + len safely). */
static bool rd(const struct reader *r, uint64_t pa, uint64_t off, void *buf, size_t len)
{
	if (off > UINT64_MAX - pa || len > UINT64_MAX - (pa + off))
		return false;
	return r->fn(r->ctx, pa + off, buf, len);
}

/* Minimum length of each MADT entry type (ACPI 6.5, 5.2.12.2-5.2.12.20);
 * types not listed (other architectures' and future ones) need 2. */
static unsigned madt_entry_min(uint8_t type)
{
	switch (type) {
	case 0x0: return 8;  /* Processor Local APIC */
	case 0x1: return 12; /* I/O APIC */
	case 0x2: return 10; /* Interrupt Source Override */
	case 0x3: return 8;  /* NMI Source */
	case 0x4: return 6;  /* Local APIC NMI */
	case 0x5: return 12; /* Local APIC Address Override */
	case 0x6: return 16; /* I/O SAPIC */
	case 0x7: return 17; /* Local SAPIC: 16 + a NUL-terminated UID string */
	case 0x8: return 16; /* Platform Interrupt Sources */
	case 0x9: return 16; /* Processor Local x2APIC */
	case 0xa: return 12; /* Local x2APIC NMI */
	case 0x10: return 16; /* Multiprocessor Wakeup */
	default: return 2;
	}
}

/* Reads a table's header at pa and checks its signature and length (at
 * least min_len, at most ACPI_MAX_TABLE_LEN), then its checksum over the
 * whole length.  hdr receives the 36 header bytes. */
static enum acpi_err read_table(const struct reader *r, uint64_t pa, const char sig[4], uint32_t min_len,
				enum acpi_err bad_sig, enum acpi_err bad_len, enum acpi_err bad_sum,
				uint8_t hdr[ACPI_HEADER_LEN], uint32_t *len_out)
{
	if (!rd(r, pa, 0, hdr, ACPI_HEADER_LEN))
		return ACPI_ERR_READ;
	if (memcmp(hdr, sig, 4) != 0)
		return bad_sig;
	uint32_t len = rd32(hdr + 4);
	if (len < min_len || len > ACPI_MAX_TABLE_LEN)
		return bad_len;
	uint8_t s = sum(hdr, ACPI_HEADER_LEN), buf[CHUNK];
	for (uint32_t off = ACPI_HEADER_LEN; off < len;) {
		uint32_t n = len - off < CHUNK ? len - off : CHUNK;
		if (!rd(r, pa, off, buf, n))
			return ACPI_ERR_READ;
		s = (uint8_t)(s + sum(buf, n));
		off += n;
	}
	if (s != 0)
		return bad_sum;
	*len_out = len;
	return ACPI_OK;
}

static void add_cpu(struct acpi_madt_info *out, uint32_t apic_id, uint32_t uid, uint32_t flags, bool x2apic)
{
	if (out->n_cpus >= ACPI_MAX_CPUS) {
		out->cpus_dropped++;
		return;
	}
	struct acpi_cpu *c = &out->cpus[out->n_cpus++];
	c->apic_id = apic_id;
	c->uid = uid;
	c->x2apic = x2apic;
	c->enabled = (flags & ACPI_LAPIC_ENABLED) != 0;
	c->online_capable = out->madt_revision >= 5 && (flags & ACPI_LAPIC_ONLINE_CAPABLE) != 0;
}

/* The MADT at pa: fixed part, then every entry. */
static enum acpi_err parse_madt(const struct reader *r, uint64_t pa, struct acpi_madt_info *out)
{
	uint8_t hdr[ACPI_HEADER_LEN], e[CHUNK];
	uint32_t len;
	enum acpi_err err = read_table(r, pa, "APIC", ACPI_MADT_FIXED_LEN, ACPI_ERR_NO_MADT, ACPI_ERR_MADT_LENGTH,
				       ACPI_ERR_MADT_CHECKSUM, hdr, &len);
	if (err != ACPI_OK)
		return err;
	out->madt_pa = pa;
	out->madt_len = len;
	out->madt_revision = hdr[8];
	/* The fixed part is re-read: the checksum pass kept only the header. */
	if (!rd(r, pa, ACPI_HEADER_LEN, e, ACPI_MADT_FIXED_LEN - ACPI_HEADER_LEN))
		return ACPI_ERR_READ;
	out->lapic_addr = rd32(e);
	out->flags = rd32(e + 4);

	for (uint32_t off = ACPI_MADT_FIXED_LEN; off < len;) {
		if (len - off < 2)
			return ACPI_ERR_MADT_ENTRY_OVERRUN;
		if (!rd(r, pa, off, e, 2))
			return ACPI_ERR_READ;
		uint8_t type = e[0], elen = e[1];
		if (elen < madt_entry_min(type)) /* covers 0 and 1: the walk always advances */
			return ACPI_ERR_MADT_ENTRY_LENGTH;
		if (elen > len - off)
			return ACPI_ERR_MADT_ENTRY_OVERRUN;
		/* Re-read whole, with the header: type and length are the ones
		 * just checked, whatever the memory says now. */
		if (!rd(r, pa, off, e, elen))
			return ACPI_ERR_READ;
		switch (type) {
		case ACPI_MADT_LAPIC:
			add_cpu(out, e[3], e[2], rd32(e + 4), false);
			break;
		case ACPI_MADT_X2APIC:
			add_cpu(out, rd32(e + 4), rd32(e + 12), rd32(e + 8), true);
			break;
		case ACPI_MADT_IOAPIC:
			if (out->n_ioapics >= ACPI_MAX_IOAPICS) {
				out->ioapics_dropped++;
				break;
			}
			out->ioapics[out->n_ioapics].id = e[2];
			out->ioapics[out->n_ioapics].addr = rd32(e + 4);
			out->ioapics[out->n_ioapics].gsi_base = rd32(e + 8);
			out->n_ioapics++;
			break;
		case ACPI_MADT_ISO:
			if (out->n_isos >= ACPI_MAX_ISOS) {
				out->isos_dropped++;
				break;
			}
			out->isos[out->n_isos].bus = e[2];
			out->isos[out->n_isos].source = e[3];
			out->isos[out->n_isos].gsi = rd32(e + 4);
			out->isos[out->n_isos].flags = rd16(e + 8);
			out->n_isos++;
			break;
		case ACPI_MADT_LAPIC_ADDR_OVERRIDE:
			out->lapic_addr = rd64(e + 4);
			out->lapic_override = true;
			break;
		default:
			break;
		}
		off += elen;
	}
	return ACPI_OK;
}

/* Where the RSDP leads: the root table (XSDT when the RSDP's revision is
 * >= 2, rsdp_len >= 36 and its address is not 0, else RSDT), checked. */
struct root {
	uint8_t revision;
	bool xsdt;
	uint64_t pa;
	unsigned esize; /* bytes per entry */
	uint32_t n;     /* entries */
};

static enum acpi_err find_root(const uint8_t *rsdp, size_t rsdp_len, const struct reader *r, struct root *root)
{
	if (rsdp_len < ACPI_RSDP_V1_LEN)
		return ACPI_ERR_RSDP_SHORT;
	if (memcmp(rsdp, "RSD PTR ", 8) != 0)
		return ACPI_ERR_RSDP_SIGNATURE;
	if (sum(rsdp, ACPI_RSDP_V1_LEN) != 0)
		return ACPI_ERR_RSDP_CHECKSUM;
	root->revision = rsdp[15];
	root->pa = rd32(rsdp + 16);
	root->esize = 4;
	root->xsdt = false;
	if (rsdp[15] >= 2 && rsdp_len >= ACPI_RSDP_V2_LEN) {
		uint32_t xlen = rd32(rsdp + 20);
		if (xlen < ACPI_RSDP_V2_LEN || xlen > rsdp_len)
			return ACPI_ERR_RSDP_LENGTH;
		if (sum(rsdp, xlen) != 0)
			return ACPI_ERR_RSDP_XCHECKSUM;
		uint64_t xsdt = rd64(rsdp + 24);
		if (xsdt != 0) {
			root->pa = xsdt;
			root->esize = 8;
			root->xsdt = true;
		}
	}
	if (root->pa == 0)
		return ACPI_ERR_NO_ROOT;

	uint8_t hdr[ACPI_HEADER_LEN];
	uint32_t len;
	enum acpi_err err = read_table(r, root->pa, root->esize == 8 ? "XSDT" : "RSDT", ACPI_HEADER_LEN,
				       ACPI_ERR_ROOT_SIGNATURE, ACPI_ERR_ROOT_LENGTH, ACPI_ERR_ROOT_CHECKSUM, hdr, &len);
	if (err != ACPI_OK)
		return err;
	if ((len - ACPI_HEADER_LEN) % root->esize != 0)
		return ACPI_ERR_ROOT_LENGTH;
	root->n = (len - ACPI_HEADER_LEN) / root->esize;
	if (root->n > ACPI_MAX_TABLES)
		return ACPI_ERR_TOO_MANY_TABLES;
	return ACPI_OK;
}

/* The address of the first table the root lists with signature sig, in
 * *pa; not_found when none does. */
static enum acpi_err find_table(const struct root *root, const struct reader *r, const char sig[4],
				enum acpi_err not_found, uint64_t *pa)
{
	for (uint32_t i = 0; i < root->n; i++) {
		uint8_t ent[8], s[4];
		if (!rd(r, root->pa, ACPI_HEADER_LEN + (uint64_t)i * root->esize, ent, root->esize))
			return ACPI_ERR_READ;
		uint64_t t = root->esize == 8 ? rd64(ent) : rd32(ent);
		if (!rd(r, t, 0, s, 4))
			return ACPI_ERR_READ;
		if (memcmp(s, sig, 4) == 0) {
			*pa = t;
			return ACPI_OK;
		}
	}
	return not_found;
}

static enum acpi_err parse(const uint8_t *rsdp, size_t rsdp_len, const struct reader *r, struct acpi_madt_info *out)
{
	struct root root;
	enum acpi_err err = find_root(rsdp, rsdp_len, r, &root);
	out->rsdp_revision = root.revision;
	if (err != ACPI_OK)
		return err;
	out->xsdt = root.xsdt;
	out->root_pa = root.pa;
	uint64_t pa;
	err = find_table(&root, r, "APIC", ACPI_ERR_NO_MADT, &pa);
	return err != ACPI_OK ? err : parse_madt(r, pa, out);
}

/* PCI Firmware Specification 3.2, 4.1.2: the MCFG is the header, 8
 * reserved bytes, then 16-byte entries: base address (8), segment group
 * (2), start and end bus (1 each), 4 reserved. */
static enum acpi_err parse_mcfg(const struct reader *r, uint64_t pa, struct acpi_mcfg_info *out)
{
	uint8_t hdr[ACPI_HEADER_LEN];
	uint32_t len;
	enum acpi_err err = read_table(r, pa, "MCFG", ACPI_MCFG_FIXED_LEN, ACPI_ERR_NO_MCFG, ACPI_ERR_MCFG_LENGTH,
				       ACPI_ERR_MCFG_CHECKSUM, hdr, &len);
	if (err != ACPI_OK)
		return err;
	if ((len - ACPI_MCFG_FIXED_LEN) % 16 != 0)
		return ACPI_ERR_MCFG_LENGTH;
	out->mcfg_pa = pa;
	for (uint32_t off = ACPI_MCFG_FIXED_LEN; off < len; off += 16) {
		uint8_t e[16];
		if (!rd(r, pa, off, e, 16))
			return ACPI_ERR_READ;
		struct acpi_mcfg_entry m = { rd64(e), rd16(e + 8), e[10], e[11] };
		/* Each bus takes 1 MiB from the base: the base must be 1 MiB
		 * aligned, the range ordered and not wrap. */
		uint64_t size = ((uint64_t)(m.bus_end - m.bus_start) + 1) << 20;
		if (m.bus_end < m.bus_start || (m.base & 0xfffff) || m.base > UINT64_MAX - size + 1)
			return ACPI_ERR_MCFG_ENTRY;
		if (out->n == ACPI_MAX_MCFG) {
			out->dropped++;
			continue;
		}
		out->e[out->n++] = m;
	}
	return ACPI_OK;
}

/* The two public parsers' work, from the RSDP to their result. */
static enum acpi_err madt_from(const uint8_t *rsdp, size_t rsdp_len, const struct reader *r, void *out)
{
	return parse(rsdp, rsdp_len, r, out);
}

static enum acpi_err mcfg_from(const uint8_t *rsdp, size_t rsdp_len, const struct reader *r, void *out)
{
	struct root root;
	uint64_t pa = 0;
	enum acpi_err err = find_root(rsdp, rsdp_len, r, &root);
	if (err == ACPI_OK)
		err = find_table(&root, r, "MCFG", ACPI_ERR_NO_MCFG, &pa);
	return err == ACPI_OK ? parse_mcfg(r, pa, out) : err;
}

/* What both do around it: arguments checked, the result zeroed first and
 * zeroed again on any error (nothing half-parsed is left). */
static enum acpi_err public_parse(enum acpi_err (*body)(const uint8_t *, size_t, const struct reader *, void *),
				  const void *rsdp, size_t rsdp_len, acpi_read_phys_fn read_phys, void *ctx, void *out,
				  size_t out_size)
{
	if (!out)
		return ACPI_ERR_ARGS;
	memset(out, 0, out_size);
	if (!rsdp || !read_phys)
		return ACPI_ERR_ARGS;
	struct reader r = { read_phys, ctx };
	enum acpi_err err = body(rsdp, rsdp_len, &r, out);
	if (err != ACPI_OK)
		memset(out, 0, out_size);
	return err;
}

enum acpi_err acpi_parse_madt(const void *rsdp, size_t rsdp_len, acpi_read_phys_fn read_phys, void *ctx,
			      struct acpi_madt_info *out)
{
	return public_parse(madt_from, rsdp, rsdp_len, read_phys, ctx, out, sizeof(*out));
}

enum acpi_err acpi_parse_mcfg(const void *rsdp, size_t rsdp_len, acpi_read_phys_fn read_phys, void *ctx,
			      struct acpi_mcfg_info *out)
{
	return public_parse(mcfg_from, rsdp, rsdp_len, read_phys, ctx, out, sizeof(*out));
}

const char *acpi_strerror(enum acpi_err err)
{
	static const char *const msg[ACPI_ERR_COUNT] = {
		[ACPI_OK] = "success",
		[ACPI_ERR_ARGS] = "missing RSDP, read callback or result",
		[ACPI_ERR_RSDP_SHORT] = "RSDP shorter than 20 bytes",
		[ACPI_ERR_RSDP_SIGNATURE] = "RSDP signature is not 'RSD PTR '",
		[ACPI_ERR_RSDP_CHECKSUM] = "RSDP checksum (first 20 bytes) is wrong",
		[ACPI_ERR_RSDP_LENGTH] = "RSDP length field is below 36 or beyond the bytes given",
		[ACPI_ERR_RSDP_XCHECKSUM] = "RSDP extended checksum is wrong",
		[ACPI_ERR_NO_ROOT] = "RSDP gives neither an XSDT nor an RSDT address",
		[ACPI_ERR_READ] = "a table lies in memory that cannot be read",
		[ACPI_ERR_ROOT_SIGNATURE] = "no RSDT/XSDT signature at the RSDP's address",
		[ACPI_ERR_ROOT_LENGTH] = "RSDT/XSDT length is too small, too large or not whole entries",
		[ACPI_ERR_ROOT_CHECKSUM] = "RSDT/XSDT checksum is wrong",
		[ACPI_ERR_TOO_MANY_TABLES] = "RSDT/XSDT lists too many tables",
		[ACPI_ERR_NO_MADT] = "no MADT ('APIC' table)",
		[ACPI_ERR_MADT_LENGTH] = "MADT length is below 44 bytes or too large",
		[ACPI_ERR_MADT_CHECKSUM] = "MADT checksum is wrong",
		[ACPI_ERR_MADT_ENTRY_LENGTH] = "MADT entry shorter than its type requires (or than 2 bytes)",
		[ACPI_ERR_MADT_ENTRY_OVERRUN] = "MADT entry runs past the end of the table",
		[ACPI_ERR_NO_MCFG] = "no MCFG (no memory-mapped PCI configuration space described)",
		[ACPI_ERR_MCFG_LENGTH] = "MCFG length is below 44 bytes, too large or not whole entries",
		[ACPI_ERR_MCFG_CHECKSUM] = "MCFG checksum is wrong",
		[ACPI_ERR_MCFG_ENTRY] = "MCFG entry: end bus below start bus, base not 1 MiB aligned, or range wraps",
	};
	if ((unsigned)err >= ACPI_ERR_COUNT || !msg[err])
		return "unknown ACPI error";
	return msg[err];
}
