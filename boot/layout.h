/* layout.h - Nestor's address-space layout, shared by C, assembly and the
 * linker script.
 *
 * The image is linked at a fixed virtual address (KERNEL_VIRT_BASE) but may be
 * loaded at any 2 MiB-aligned physical address: GRUB (or the Nestor level
 * below) chooses it through the multiboot2 "relocatable" header tag.  So each
 * level of a Nestor stack can live in a different place of the same machine.
 * Only the 32-bit entry code runs at the physical address; it maps the image
 * at KERNEL_VIRT_BASE before jumping to C.
 *
 * All physical memory is mapped at PHYS_MAP_BASE (the "direct map"). */
#ifndef BOOT_LAYOUT_H
#define BOOT_LAYOUT_H

#define KERNEL_LINK_PHYS 0x200000 /* where the linker pretends the image sits */
#define KERNEL_VOFF 0xffffffff80000000
#define KERNEL_VIRT_BASE (KERNEL_VOFF + KERNEL_LINK_PHYS)
#define KERNEL_ALIGN 0x200000 /* physical alignment we ask the loader for */

#define PHYS_MAP_BASE 0xffff800000000000
#define PHYS_MAP_MAX (1ull << 39) /* 512 GiB: one PML4 slot */

#define BOOT_STACK_SIZE 16384
#define MAX_CPUS 8

#endif
