/* firmware.c - the UEFI firmware that ran nestor.efi, resumed as the guest.
 *
 * nestor.efi recorded the firmware's CPU state just before it entered
 * Nestor (boot/efi_handoff.h, efi/handoff.S): the guest starts exactly
 * there, in 64-bit mode on the firmware's own page tables, GDT and IDT, and
 * the application returns EFI_SUCCESS to whoever started it (the shell, a
 * boot entry).  Segment registers are rebuilt from the descriptors the
 * application read, in the form a segment register holds after a load
 * (SDM 3.4.3, and 24.4.1 for the VMCS access-rights format). */
#include "boot/efi_handoff.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "loader/loader.h"


#define AR_UNUSABLE (1u << 16)

/* Base, limit and access rights of a descriptor (the low 8 bytes; a system
 * descriptor's base bits 63:32 are in the next 8, passed as hi). */
static void seg_from_desc(struct segment *s, uint16_t sel, uint64_t d, uint64_t hi, bool system)
{
	s->sel = sel;
	s->base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
	if (system)
		s->base |= (hi & 0xffffffffull) << 32;
	uint32_t limit = (uint32_t)((d & 0xffff) | (((d >> 48) & 0xf) << 16));
	s->ar = (uint32_t)((d >> 40) & 0xf0ff);
	if (s->ar & (1u << 15)) /* granularity: 4 KiB units */
		limit = (limit << 12) | 0xfff;
	s->limit = limit;
	/* A loaded code or data segment has its accessed bit set (the CPU
	 * sets it in the descriptor on the load, SDM 3.4.5.1). */
	if (!system)
		s->ar |= 1;
}

int load_firmware(struct vm *vm, const struct efi_handoff *h, struct guest_state *gs, char *err, size_t errlen)
{
	(void)vm;
	memset(gs, 0, sizeof(*gs));
	if (!(h->efer & EFER_LMA) || !(h->cr0 & CR0_PG)) {
		ksnprintf(err, errlen, "the firmware was not in 64-bit mode at the hand-off (EFER 0x%llx, CR0 0x%llx)",
			  (unsigned long long)h->efer, (unsigned long long)h->cr0);
		return -1;
	}
	for (int i = SEG_ES; i <= SEG_GS; i++) {
		if ((h->sel[i] & ~3u) == 0 && i != SEG_CS) {
			/* A null selector in 64-bit mode: an unusable register. */
			gs->seg[i].sel = h->sel[i];
			gs->seg[i].ar = AR_UNUSABLE;
			continue;
		}
		seg_from_desc(&gs->seg[i], h->sel[i], h->desc[i], 0, false);
	}
	gs->seg[SEG_FS].base = h->fs_base;
	gs->seg[SEG_GS].base = h->gs_base;
	if ((h->sel[SEG_LDTR] & ~3u) == 0) {
		gs->seg[SEG_LDTR].ar = AR_UNUSABLE;
	} else {
		seg_from_desc(&gs->seg[SEG_LDTR], h->sel[SEG_LDTR], h->desc[6], h->desc[7], true);
	}
	if ((h->sel[SEG_TR] & ~3u) == 0) {
		/* UEFI firmware commonly never loads a task register.  VM entry
		 * wants a usable busy TSS in a 64-bit guest (SDM 26.3.1.2): a
		 * null one, as TR holds after reset, marked busy; nothing the
		 * firmware does reads it (it has no IST and no ring 3). */
		gs->seg[SEG_TR].sel = 0;
		gs->seg[SEG_TR].base = 0;
		gs->seg[SEG_TR].limit = 0xffff;
		gs->seg[SEG_TR].ar = 0x8b;
	} else {
		seg_from_desc(&gs->seg[SEG_TR], h->sel[SEG_TR], h->desc[8], h->desc[9], true);
	}
	gs->gdtr_base = h->gdtr_base;
	gs->gdtr_limit = h->gdtr_limit;
	gs->idtr_base = h->idtr_base;
	gs->idtr_limit = h->idtr_limit;
	gs->cr0 = h->cr0;
	gs->cr3 = h->cr3;
	gs->cr4 = h->cr4;
	gs->efer = h->efer;
	gs->pat = h->pat;
	gs->dr7 = h->dr7;
	gs->debugctl = h->debugctl;
	gs->sysenter_cs = h->sysenter_cs;
	gs->sysenter_esp = h->sysenter_esp;
	gs->sysenter_eip = h->sysenter_eip;
	gs->rip = h->rip;
	gs->rsp = h->rsp;
	gs->rflags = h->rflags;
	/* Not in the VMCS: the one MSR of the firmware's that Nestor's own
	 * start-up changed (boot/cpu.c).  Nestor never uses SWAPGS. */
	wrmsr(MSR_KERNEL_GS_BASE, h->kernel_gs_base);
	pr_info("guest: the UEFI firmware, resumed at %04x:%llx (CR3 0x%llx)\n", h->sel[SEG_CS],
		(unsigned long long)h->rip, (unsigned long long)h->cr3);
	return 0;
}
