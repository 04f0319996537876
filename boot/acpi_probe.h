/* acpi_probe.h - the machine's processors, from the ACPI MADT (issue 12).
 *
 * At boot, after the switch to Nestor's page tables, the MADT is found from
 * the RSDP the loader passed (multiboot2 ACPI tags) and read through the
 * direct map, only where the memory map describes memory (lib/acpi.c checks
 * everything else).  The result is kept for SMP bring-up (boot/smp.c). */
#ifndef BOOT_ACPI_PROBE_H
#define BOOT_ACPI_PROBE_H

#include <stdbool.h>
#include "lib/acpi.h"
#include "lib/mb2.h"

extern struct acpi_madt_info machine_madt; /* valid when machine_madt_ok */
extern bool machine_madt_ok;
/* The MCFG, valid when machine_mcfg_err is ACPI_OK; ACPI_ERR_NO_MCFG: the
 * machine has none (or no RSDP was given). */
extern struct acpi_mcfg_info machine_mcfg;
extern enum acpi_err machine_mcfg_err;

/* Parses the MADT and prints one line with the CPUs found (info level),
 * details at debug level; a missing or malformed MADT is reported and
 * leaves machine_madt_ok false.  Needs the direct map. */
void acpi_probe(const struct mb2_info *mb);

#endif
