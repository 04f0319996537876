/* acpi_probe.c - the MADT at boot (see acpi_probe.h). */
#include "boot/acpi_probe.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/string.h"
#include "mm/mm.h"

struct acpi_madt_info machine_madt;
bool machine_madt_ok;
struct acpi_mcfg_info machine_mcfg;
enum acpi_err machine_mcfg_err = ACPI_ERR_NO_MCFG;

/* Reads [pa, pa + len) through the direct map when the memory map covers
 * it with entries that are memory (usable, ACPI, NVS or reserved: firmware
 * tables live in the last three) and the direct map reaches it.  Holes of
 * the map (device memory, on real machines) are never read. */
static bool read_phys(void *ctx, uint64_t pa, void *buf, size_t len)
{
	const struct mb2_info *mb = ctx;
	uint64_t end = pa + len; /* lib/acpi.c never asks for a range that wraps */
	if (end > PHYS_MAP_MAX)
		return false;
	for (uint64_t at = pa; at < end;) {
		uint64_t next = at;
		for (unsigned i = 0; i < mb->n_mmap; i++) {
			const struct mb2_mmap_entry *e = &mb->mmap[i];
			if (e->type == MB2_MEM_BADRAM || at < e->base || at - e->base >= e->len)
				continue;
			next = e->len - (at - e->base) > end - at ? end : e->base + e->len;
			break;
		}
		if (next == at)
			return false;
		at = next;
	}
	memcpy(buf, phys_to_virt(pa), len);
	return true;
}

void acpi_probe(const struct mb2_info *mb)
{
	const uint8_t *rsdp = mb->rsdp_new ? mb->rsdp_new : mb->rsdp_old;
	uint32_t rsdp_len = mb->rsdp_new ? mb->rsdp_new_len : mb->rsdp_old_len;
	if (!rsdp) {
		pr_info("ACPI: no RSDP from the boot loader: the machine's CPUs are unknown\n");
		return;
	}
	/* Memory-mapped PCI configuration space, for the guard (sec/). */
	machine_mcfg_err = acpi_parse_mcfg(rsdp, rsdp_len, read_phys, (void *)mb, &machine_mcfg);
	if (machine_mcfg_err == ACPI_OK)
		pr_info("ACPI: MCFG: %u ECAM range%s, the first at %llx (segment %u, buses %u-%u)\n", machine_mcfg.n,
			machine_mcfg.n == 1 ? "" : "s", (unsigned long long)machine_mcfg.e[0].base, machine_mcfg.e[0].segment,
			machine_mcfg.e[0].bus_start, machine_mcfg.e[0].bus_end);
	else if (machine_mcfg_err != ACPI_ERR_NO_MCFG)
		pr_warn("ACPI: MCFG: %s\n", acpi_strerror(machine_mcfg_err));

	enum acpi_err err = acpi_parse_madt(rsdp, rsdp_len, read_phys, (void *)mb, &machine_madt);
	if (err != ACPI_OK) {
		pr_warn("ACPI: %s: the machine's CPUs are unknown\n", acpi_strerror(err));
		return;
	}
	machine_madt_ok = true;

	const struct acpi_madt_info *m = &machine_madt;
	static char ids[ACPI_MAX_CPUS * 24];
	size_t n = 0;
	for (unsigned i = 0; i < m->n_cpus && n < sizeof(ids); i++) {
		const struct acpi_cpu *c = &m->cpus[i];
		n += (size_t)ksnprintf(ids + n, sizeof(ids) - n, "%s%u%s", i ? " " : "", c->apic_id,
				       c->enabled ? "" : c->online_capable ? "(off, online-capable)" : "(off)");
	}
	pr_info("ACPI: %u CPU%s (APIC IDs %s), LAPIC at %llx, %u I/O APIC%s\n", m->n_cpus, m->n_cpus == 1 ? "" : "s",
		m->n_cpus ? ids : "none", (unsigned long long)m->lapic_addr, m->n_ioapics, m->n_ioapics == 1 ? "" : "s");
	if (m->cpus_dropped)
		pr_warn("ACPI: %u more processor entries beyond the %u kept\n", m->cpus_dropped, ACPI_MAX_CPUS);
	pr_debug("ACPI: RSDP revision %u, %s at %llx, MADT at %llx (%u bytes, revision %u), flags %x%s\n",
		 m->rsdp_revision, m->xsdt ? "XSDT" : "RSDT", (unsigned long long)m->root_pa,
		 (unsigned long long)m->madt_pa, m->madt_len, m->madt_revision, m->flags,
		 m->lapic_override ? ", LAPIC address overridden" : "");
	for (unsigned i = 0; i < m->n_cpus; i++)
		pr_debug("ACPI:   CPU %u: %sAPIC ID %u, UID %u, %s\n", i, m->cpus[i].x2apic ? "x2" : "", m->cpus[i].apic_id,
			 m->cpus[i].uid, m->cpus[i].enabled ? "enabled" : "disabled");
	for (unsigned i = 0; i < m->n_ioapics; i++)
		pr_debug("ACPI:   I/O APIC %u at %x, GSI base %u\n", m->ioapics[i].id, m->ioapics[i].addr,
			 m->ioapics[i].gsi_base);
	for (unsigned i = 0; i < m->n_isos; i++)
		pr_debug("ACPI:   IRQ %u (bus %u) -> GSI %u, flags %x\n", m->isos[i].source, m->isos[i].bus, m->isos[i].gsi,
			 m->isos[i].flags);
}
