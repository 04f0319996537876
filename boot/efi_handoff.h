/* efi_handoff.h - what nestor.efi (efi/) hands to Nestor when the UEFI
 * firmware started it: where Nestor may live, and the firmware's CPU state
 * at the moment of the hand-off, which Nestor resumes as its guest
 * (docs/uefi.md).  Shared by the UEFI application and the hypervisor.
 *
 * Nestor is entered at _start_efi64 (boot/entry.S) in 64-bit mode on the
 * firmware's identity-mapped page tables, with RDI = the physical address of
 * a multiboot2 information structure the application built from the
 * firmware's tables (memory map, ACPI RSDP, EFI system table, "boot services
 * not exited") and RSI = the physical address of this structure. */
#ifndef BOOT_EFI_HANDOFF_H
#define BOOT_EFI_HANDOFF_H

#include <stdint.h>

#define EFI_HANDOFF_MAGIC 0x3166664f6474734eull /* "NstdOff1" */

struct efi_handoff {
	uint64_t magic, size; /* EFI_HANDOFF_MAGIC, sizeof(struct efi_handoff) */
	/* Memory the application allocated for Nestor (EfiReservedMemoryType,
	 * so the firmware's own memory map already shows it as not usable):
	 * the image at image_phys, Nestor's pools anywhere else inside. */
	uint64_t region_start, region_end;
	uint64_t image_phys;
	/* The firmware's state: where it resumes (the application's return
	 * path, efi/handoff.S) and what the CPU held there. */
	uint64_t rip, rsp, rflags;
	uint64_t cr0, cr3, cr4, dr7;
	uint64_t efer, pat, fs_base, gs_base, kernel_gs_base, debugctl;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t gdtr_base, idtr_base;
	uint16_t gdtr_limit, idtr_limit;
	/* Selectors in VMCS order: ES CS SS DS FS GS LDTR TR. */
	uint16_t sel[8];
	/* Their descriptors as the application read them from the GDT (the
	 * 16-byte system descriptors of LDTR and TR in two slots each: 6..9);
	 * zero for a null selector. */
	uint64_t desc[10];
};

/* boot/entry.S (efi_return_to_firmware) and efi/handoff.S use these. */
#define EFI_HANDOFF_OFFSET(f, o) _Static_assert(__builtin_offsetof(struct efi_handoff, f) == (o), #f)
EFI_HANDOFF_OFFSET(rip, 40);
EFI_HANDOFF_OFFSET(rsp, 48);
EFI_HANDOFF_OFFSET(rflags, 56);
EFI_HANDOFF_OFFSET(cr0, 64);
EFI_HANDOFF_OFFSET(cr3, 72);
EFI_HANDOFF_OFFSET(cr4, 80);
EFI_HANDOFF_OFFSET(efer, 96);
EFI_HANDOFF_OFFSET(fs_base, 112);
EFI_HANDOFF_OFFSET(gs_base, 120);
EFI_HANDOFF_OFFSET(kernel_gs_base, 128);
EFI_HANDOFF_OFFSET(gdtr_base, 168);
EFI_HANDOFF_OFFSET(idtr_base, 176);
EFI_HANDOFF_OFFSET(gdtr_limit, 184);
EFI_HANDOFF_OFFSET(idtr_limit, 186);
EFI_HANDOFF_OFFSET(sel, 188);

#ifndef NESTOR_EFI_APP
/* In Nestor: the hand-off, or NULL when no nestor.efi started this level. */
const struct efi_handoff *boot_efi_state(void);
#endif

#endif
