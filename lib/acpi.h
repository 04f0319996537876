/* acpi.h - defensive parser of the ACPI tables Nestor needs to find CPUs:
 * RSDP -> RSDT or XSDT -> MADT ("APIC").
 *
 * The RSDP comes as bytes (a copy from the multiboot2 ACPI tags 14/15, see
 * lib/mb2.h); every other table is read from physical memory through a
 * callback, so the parser needs no mapping, no allocation and nothing
 * outside lib/.  Every byte is untrusted: signatures, checksums (the RSDP's
 * first 20 bytes, its extended checksum for revision >= 2, the root table's
 * and the MADT's), lengths (tables at least their header, at most
 * ACPI_MAX_TABLE_LEN, root tables a whole number of entries, MADT entries at
 * least 2 bytes and their type's minimum size and inside the table) and
 * address arithmetic (a table that would wrap past 2^64 is a read error).
 * Each table's length is read once and every later read is bounded by it,
 * so memory that changes under the parser cannot make it loop or overrun;
 * the number of tables the root table lists is bounded by ACPI_MAX_TABLES.
 *
 * References: ACPI 6.5, 5.2.5 (RSDP), 5.2.6 (table header), 5.2.7 (RSDT),
 * 5.2.8 (XSDT), 5.2.12 (MADT and its interrupt controller structures). */
#ifndef LIB_ACPI_H
#define LIB_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 64
#define ACPI_MAX_IOAPICS 16
#define ACPI_MAX_ISOS 32
#define ACPI_MAX_TABLES 256                 /* entries of the RSDT/XSDT examined */
#define ACPI_MAX_TABLE_LEN (256u * 1024)    /* any table longer is refused */

#define ACPI_RSDP_V1_LEN 20 /* the ACPI 1.0 structure (multiboot2 tag 14) */
#define ACPI_RSDP_V2_LEN 36 /* ACPI 2.0+ (tag 15): length, XSDT address, extended checksum */
#define ACPI_HEADER_LEN 36  /* the common header of the system description tables */
#define ACPI_MADT_FIXED_LEN 44

/* MADT flags (ACPI 5.2.12, table 5.19) */
#define ACPI_MADT_PCAT_COMPAT 1u /* dual 8259s installed */

/* MADT interrupt controller structure types (table 5.21) used here. */
enum {
	ACPI_MADT_LAPIC = 0,
	ACPI_MADT_IOAPIC = 1,
	ACPI_MADT_ISO = 2,
	ACPI_MADT_LAPIC_ADDR_OVERRIDE = 5,
	ACPI_MADT_X2APIC = 9,
};

/* Local APIC flags (table 5.23), for types 0 and 9. */
#define ACPI_LAPIC_ENABLED 1u
#define ACPI_LAPIC_ONLINE_CAPABLE 2u /* defined from MADT revision 5 (ACPI 6.3) */

enum acpi_err {
	ACPI_OK = 0,
	ACPI_ERR_ARGS,              /* NULL RSDP, callback or result */
	ACPI_ERR_RSDP_SHORT,        /* fewer than 20 RSDP bytes */
	ACPI_ERR_RSDP_SIGNATURE,    /* not "RSD PTR " */
	ACPI_ERR_RSDP_CHECKSUM,     /* the first 20 bytes do not sum to 0 */
	ACPI_ERR_RSDP_LENGTH,       /* revision >= 2: length field below 36 or beyond the bytes given */
	ACPI_ERR_RSDP_XCHECKSUM,    /* revision >= 2: the extended checksum */
	ACPI_ERR_NO_ROOT,           /* neither an XSDT nor an RSDT address */
	ACPI_ERR_READ,              /* the callback refused a read, or the range wraps */
	ACPI_ERR_ROOT_SIGNATURE,    /* the RSDT/XSDT address does not hold one */
	ACPI_ERR_ROOT_LENGTH,       /* root table shorter than its header, too long, or not whole entries */
	ACPI_ERR_ROOT_CHECKSUM,
	ACPI_ERR_TOO_MANY_TABLES,   /* the root table lists more than ACPI_MAX_TABLES */
	ACPI_ERR_NO_MADT,           /* no table signed "APIC" */
	ACPI_ERR_MADT_LENGTH,       /* below 44 bytes or beyond ACPI_MAX_TABLE_LEN */
	ACPI_ERR_MADT_CHECKSUM,
	ACPI_ERR_MADT_ENTRY_LENGTH, /* an entry of length < 2 or below its type's minimum */
	ACPI_ERR_MADT_ENTRY_OVERRUN, /* an entry (or its 2-byte header) runs past the table */
	ACPI_ERR_NO_MCFG,           /* no table signed "MCFG" */
	ACPI_ERR_MCFG_LENGTH,       /* below 44 bytes, beyond ACPI_MAX_TABLE_LEN, or not whole entries */
	ACPI_ERR_MCFG_CHECKSUM,
	ACPI_ERR_MCFG_ENTRY,        /* end bus < start bus, base not 1 MiB aligned, or the range wraps */
	ACPI_ERR_COUNT
};

/* Reads len bytes of physical memory at pa into buf; false when that memory
 * cannot be read (not RAM, not mapped...).  The parser asks for 1 to 256
 * bytes at a time, never for a range that wraps or ends at 2^64 (pa + len
 * is always > pa); a table such a range would cover is ACPI_ERR_READ. */
typedef bool (*acpi_read_phys_fn)(void *ctx, uint64_t pa, void *buf, size_t len);

struct acpi_cpu {
	uint32_t apic_id;  /* 8-bit for type 0 entries */
	uint32_t uid;      /* ACPI processor UID */
	bool x2apic;       /* from a Processor Local x2APIC entry (type 9) */
	bool enabled;      /* usable as it is */
	bool online_capable; /* can be enabled at run time (MADT revision >= 5 only; else false) */
};

struct acpi_ioapic {
	uint8_t id;
	uint32_t addr;
	uint32_t gsi_base;
};

struct acpi_iso { /* interrupt source override */
	uint8_t bus, source;
	uint32_t gsi;
	uint16_t flags; /* polarity (1:0), trigger mode (3:2) */
};

struct acpi_madt_info {
	uint8_t rsdp_revision;
	bool xsdt;         /* the tables were found through the XSDT */
	uint64_t root_pa;  /* the RSDT or XSDT */
	uint64_t madt_pa;
	uint32_t madt_len;
	uint8_t madt_revision;
	uint64_t lapic_addr;  /* the header's, or the last type-5 override's */
	bool lapic_override;  /* a type-5 entry set lapic_addr */
	uint32_t flags;       /* ACPI_MADT_PCAT_COMPAT */
	unsigned n_cpus;      /* type 0 and 9 entries, in table order (enabled or not) */
	unsigned cpus_dropped; /* processor entries beyond ACPI_MAX_CPUS */
	struct acpi_cpu cpus[ACPI_MAX_CPUS];
	unsigned n_ioapics, ioapics_dropped;
	struct acpi_ioapic ioapics[ACPI_MAX_IOAPICS];
	unsigned n_isos, isos_dropped;
	struct acpi_iso isos[ACPI_MAX_ISOS];
};

/* Finds and parses the MADT from the RSDP (rsdp_len bytes at rsdp): through
 * the XSDT when the RSDP's revision is >= 2, rsdp_len >= 36 and the XSDT
 * address is not 0, otherwise through the RSDT.  With revision >= 2 and only
 * 20 bytes given, those 20 bytes are used as an ACPI 1.0 RSDP.  Fills *out
 * and returns ACPI_OK; on any error *out is all zero.  The first table
 * signed "APIC" is the MADT; entry types other than 0, 1, 2, 5, 9 are
 * checked for length and skipped. */
enum acpi_err acpi_parse_madt(const void *rsdp, size_t rsdp_len, acpi_read_phys_fn read_phys, void *ctx,
			      struct acpi_madt_info *out);

/* The MCFG: where PCI configuration space is memory-mapped (ECAM, PCI
 * Express Base Specification 7.2.2): function bus:dev.fn of a segment
 * group is the 4 KiB at base + ((bus - bus_start) << 20 | dev << 15 |
 * fn << 12). */
#define ACPI_MCFG_FIXED_LEN 44
#define ACPI_MAX_MCFG 8
struct acpi_mcfg_entry {
	uint64_t base;
	uint16_t segment;
	uint8_t bus_start, bus_end;
};
struct acpi_mcfg_info {
	uint64_t mcfg_pa;
	unsigned n, dropped; /* entries kept; beyond ACPI_MAX_MCFG */
	struct acpi_mcfg_entry e[ACPI_MAX_MCFG];
};

/* Finds and parses the MCFG as acpi_parse_madt() does the MADT; a machine
 * without one (Bochs' i440FX) gives ACPI_ERR_NO_MCFG. */
enum acpi_err acpi_parse_mcfg(const void *rsdp, size_t rsdp_len, acpi_read_phys_fn read_phys, void *ctx,
			      struct acpi_mcfg_info *out);

/* A constant one-line description of err (never NULL). */
const char *acpi_strerror(enum acpi_err err);

#endif
