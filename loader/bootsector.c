/* bootsector.c - chain-loading a boot sector: what a PC BIOS does at the
 * end of POST (int 19h): the first sector at 0000:7c00, real mode, DL the
 * boot drive.  The BIOS stays in place (interrupt vectors, data areas, ROM),
 * so the guest can use its services, e.g. disk reads through int 13h. */
#include "boot/boot_regs.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "loader/loader.h"
#include "mm/mm.h"

int load_bootsector(struct vm *vm, const struct moved_module *image, unsigned drive, struct guest_state *gs,
		    char *err, size_t errlen)
{
	if (!rs_contains(&vm->guest_ram, 0x7c00, 0x7e00)) {
		ksnprintf(err, errlen, "0x7c00 is not guest RAM");
		return -1;
	}
	memcpy(phys_to_virt(0x7c00), phys_to_virt(image->start), 512);
	memset(gs, 0, sizeof(*gs));
	for (int i = 0; i < 6; i++) {
		gs->seg[i].limit = 0xffff;
		gs->seg[i].ar = i == SEG_CS ? 0x9b : 0x93; /* real-mode code / data */
	}
	gs->seg[SEG_LDTR].ar = 1u << 16;
	gs->seg[SEG_TR].limit = 0xffff;
	gs->seg[SEG_TR].ar = 0x8b;
	gs->rip = 0x7c00;
	gs->rsp = 0x7c00;
	gs->rflags = RFLAGS_IF;
	gs->gpr[RDX] = drive;
	/* The CPU as the BIOS leaves it: real mode, caches as they were. */
	gs->cr0 = boot_regs_get()->cr0 & ~(uint64_t)(CR0_PE | CR0_PG);
	gs->idtr_limit = 0x3ff;
	gs->gdtr_limit = 0xffff;
	gs->pat = rdmsr(MSR_IA32_PAT);
	pr_info("guest: boot sector at 0000:7c00, boot drive 0x%02x\n", drive);
	return 0;
}
