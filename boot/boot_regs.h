/* boot_regs.h - the machine state the boot loader handed to Nestor.
 * boot/entry.S records it before touching anything; the guest loader starts
 * the guest in the same state (except EAX/EBX), so a guest booted by Nestor
 * sees what a guest booted by GRUB sees. */
#ifndef BOOT_BOOT_REGS_H
#define BOOT_BOOT_REGS_H

#include <stdint.h>

struct __attribute__((packed)) boot_regs {
	uint32_t eax, ebx, ecx, edx, esi, edi, ebp, esp, eflags, cr0, cr4;
	uint16_t cs, ds, es, fs, gs, ss;
	uint16_t gdtr_limit;
	uint32_t gdtr_base;
	uint16_t idtr_limit;
	uint32_t idtr_base;
};

/* The record (through the image's virtual mapping). */
const struct boot_regs *boot_regs_get(void);

#endif
