/* bios.c - the BIOS's memory map as the guest must see it (INT 15h).
 *
 * A guest learns where RAM is from the boot protocol - the multiboot and
 * Linux maps Nestor gives (loader/) keep its memory reserved - or from the
 * BIOS itself, in real mode: INT 15h E820 (the map), E801 and AH=88h (the
 * sizes above 1 MiB).  The BIOS knows nothing of Nestor and offers its
 * memory as RAM (issue 13: Xen reads E820 itself and put page tables
 * there).  So Nestor answers those calls (Ralf Brown's interrupt list,
 * ACPI 6.5 section 15.1 for E820):
 *
 * - Before its guest starts, the IVT's INT 15h vector points at HOOK
 *   (BFFF:0000), in the VGA window where no code runs, and the EPT denies
 *   instruction fetches from that page: the guest's INT 15h exits to Nestor
 *   as an EPT violation on the fetch at HOOK.
 * - E820 is answered from the guest's map (the one its boot protocol
 *   gives, loader/guest_memory_map).  E801 and AH=88h go to the BIOS with
 *   their return address replaced by RETURN (HOOK + 8): there Nestor cuts
 *   the sizes to the RAM its map gives from 1 MiB and returns to the
 *   caller.  Every other function goes straight to the BIOS's handler.
 * - A Nestor above asks the one below for the BIOS's own vector
 *   (NESTOR_HC_BIOS_INT15) and hooks the same address: its guest's calls
 *   exit to it (its EPT denies the fetch; the levels below give their
 *   guests' guests that page as it is), and every level chains to the BIOS.
 *
 * What a guest can tell: the IVT's vector 15h, and E820's continuation
 * values (an index here; the BIOS numbers them its own way).  Callers in
 * virtual-8086 mode go to the BIOS unanswered; code that executes in the
 * hook page other than at HOOK and RETURN ends the hook: the page becomes
 * executable and the vector the BIOS's again (docs/architecture.md). */
#include "vmx/bios.h"
#include "hypercall/abi.h"
#include "hypercall/hypercall.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "mm/mm.h"
#include "vmx/ept.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"

#define HOOK_SEG 0xbfffu
#define HOOK ((uint64_t)HOOK_SEG << 4) /* 0xbfff0 */
#define RETURN_OFF 8u
#define HOOK_PAGE (HOOK & ~0xfffull)
#define SMAP 0x534d4150u /* "SMAP" */

struct bios_hook {
	uint32_t bios_vector; /* segment << 16 | offset: the BIOS's INT 15h */
	bool trap;            /* the hook page is not executable */
	unsigned n;
	struct mb2_mmap_entry map[MB2_MAX_MMAP];
	uint64_t run_end; /* RAM (available or ACPI) from 1 MiB up to here */
};

static uint64_t run_from_1m(const struct bios_hook *b)
{
	uint64_t end = 0x100000;
	for (bool grew = true; grew;) {
		grew = false;
		for (unsigned i = 0; i < b->n; i++) {
			const struct mb2_mmap_entry *e = &b->map[i];
			bool ram = e->type == MB2_MEM_AVAILABLE || e->type == MB2_MEM_ACPI_RECLAIMABLE;
			if (ram && e->base <= end && e->base + e->len > end) {
				end = e->base + e->len;
				grew = true;
			}
		}
	}
	return end;
}

/* The BIOS's INT 15h vector: the one a Nestor below saved, or the IVT's. */
static uint32_t bios_vector(struct vm *vm, uint32_t ivt)
{
	if (vm->level == 0)
		return ivt;
	uint64_t rbx = 0, rcx = 0, rdx = 0;
	if (nestor_vmcall(NESTOR_HC_BIOS_INT15, &rbx, &rcx, &rdx, 0, 0) == NESTOR_OK)
		return (uint32_t)rbx;
	return ivt == (HOOK_SEG << 16) ? 0 : ivt; /* hooked below, by one that will not say */
}

int bios_hook_init(struct vm *vm, const struct mb2_mmap_entry *map, unsigned n)
{
	uint32_t ivt = 0;
	if (!gpa_read(vm, 0x15 * 4, &ivt, sizeof(ivt)))
		return 0;
	uint32_t vec = bios_vector(vm, ivt);
	/* A BIOS's handler lives in its ROM (C000:0 and up); anything else is
	 * no BIOS (the guest's own IVT, or none at all). */
	if ((vec >> 16) < 0xc000 || (vec >> 16) == HOOK_SEG) {
		pr_debug("INT 15h vector %04x:%04x is no BIOS's: its memory map is not answered\n", vec >> 16,
			 vec & 0xffff);
		return 0;
	}
	struct bios_hook *b = zalloc(sizeof(*b));
	if (!b)
		return -1;
	b->bios_vector = vec;
	b->trap = true;
	b->n = n < MB2_MAX_MMAP ? n : MB2_MAX_MMAP;
	memcpy(b->map, map, b->n * sizeof(*map));
	b->run_end = run_from_1m(b);
	vm->bios = b;
	uint32_t hook = HOOK_SEG << 16;
	gpa_write(vm, 0x15 * 4, &hook, sizeof(hook));
	pr_info("BIOS INT 15h (%04x:%04x) hooked at %04x:0000: E820, E801 and AH=88h answered from the guest's "
		"memory map\n", vec >> 16, vec & 0xffff, HOOK_SEG);
	/* The guest has not run: nothing of the page is cached. */
	return bios_ept_overrides(vm);
}

int bios_ept_overrides(struct vm *vm)
{
	if (!vm->bios || !vm->bios->trap)
		return 0;
	int t = mtrr_type_of(&vm->mtrr, HOOK_PAGE, PAGE_SIZE);
	return ept_set_page(vm, HOOK_PAGE, HOOK_PAGE | EPT_R | EPT_W | ((uint64_t)(t < 0 ? MT_UC : t) << EPT_MT_SHIFT));
}

int bios_int15_vector(const struct vm *vm, uint32_t *vec)
{
	if (!vm->bios)
		return -1;
	*vec = vm->bios->bios_vector;
	return 0;
}

static void set_cs(uint16_t sel, uint16_t ip)
{
	vmwrite(VMCS_GUEST_CS_SEL, sel);
	vmwrite(VMCS_GUEST_CS_BASE, (uint64_t)sel << 4);
	vmwrite(VMCS_GUEST_RIP, ip);
}

/* SS:SP, and the stack-pointer width (SS.B: "big real mode" uses ESP). */
static uint64_t stack_mask(void) { return (vmread(VMCS_GUEST_SS_AR) & (1u << 14)) ? 0xffffffffull : 0xffff; }

/* The return of an interrupt handler, as IRET in real mode: IP, CS and
 * FLAGS from the stack, CF as the call's result.  0, or -1 with f set. */
static int iret_with_cf(struct vcpu *v, bool cf, struct gfault *f)
{
	uint64_t mask = stack_mask(), rsp = vmread(VMCS_GUEST_RSP), sp = rsp & mask, gla;
	uint16_t frame[3];
	if (seg_linear(v, SEG_SS, sp, sizeof(frame), ACC_READ, &gla, f) ||
	    gla_copy(v, gla, frame, sizeof(frame), ACC_READ, f))
		return -1;
	uint16_t flags = (uint16_t)((frame[2] & ~RFLAGS_CF) | (cf ? RFLAGS_CF : 0) | RFLAGS_FIXED);
	vmwrite(VMCS_GUEST_RSP, (rsp & ~mask) | ((sp + sizeof(frame)) & mask));
	vmwrite(VMCS_GUEST_RFLAGS, (vmread(VMCS_GUEST_RFLAGS) & ~0xffffull) | flags);
	set_cs(frame[1], frame[0]);
	return 0;
}

/* E820: entry EBX of the guest's map at ES:DI, EBX the next index (0
 * after the last); an index past the end goes to the BIOS, which gives
 * its own error (CF set). */
static bool e820(struct vcpu *v, const struct bios_hook *b, struct gfault *f, int *r)
{
	uint64_t i = v->gpr[RBX] & 0xffffffffull;
	if ((uint32_t)v->gpr[RDX] != SMAP || i >= b->n)
		return false;
	struct __attribute__((packed)) {
		uint64_t base, len;
		uint32_t type;
	} e = { b->map[i].base, b->map[i].len, b->map[i].type };
	uint64_t gla;
	*r = -1;
	if (seg_linear(v, SEG_ES, v->gpr[RDI] & 0xffff, sizeof(e), ACC_WRITE, &gla, f) ||
	    gla_copy(v, gla, &e, sizeof(e), ACC_WRITE, f))
		return true;
	v->gpr[RAX] = SMAP;
	v->gpr[RBX] = i + 1 < b->n ? i + 1 : 0;
	v->gpr[RCX] = sizeof(e);
	*r = iret_with_cf(v, false, f);
	return true;
}

/* E801 and AH=88h: the BIOS answers, and returns to RETURN. */
static int size_call(struct vcpu *v, uint16_t ax, struct gfault *f)
{
	uint64_t sp = vmread(VMCS_GUEST_RSP) & stack_mask(), gla;
	uint16_t ret[2];
	if (seg_linear(v, SEG_SS, sp, sizeof(ret), ACC_WRITE, &gla, f) ||
	    gla_copy(v, gla, ret, sizeof(ret), ACC_READ, f))
		return -1;
	uint16_t trap[2] = { RETURN_OFF, HOOK_SEG };
	if (gla_copy(v, gla, trap, sizeof(trap), ACC_WRITE, f))
		return -1;
	v->bios_call.ip = ret[0];
	v->bios_call.cs = ret[1];
	v->bios_call.ax = ax;
	v->bios_call.armed = true;
	return 0;
}

static uint16_t min16(uint64_t a, uint64_t b) { return (uint16_t)(a < b ? a : b); }

/* Back from E801 or AH=88h: sizes no larger than the map's RAM from 1 MiB. */
static void size_return(struct vcpu *v, const struct bios_hook *b)
{
	struct bios_call *c = &v->bios_call;
	c->armed = false;
	if (!(vmread(VMCS_GUEST_RFLAGS) & RFLAGS_CF)) {
		uint64_t end = b->run_end;
		uint64_t kib = ((end < (16ull << 20) ? end : 16ull << 20) - 0x100000) >> 10;
		uint64_t blocks = end > (16ull << 20) ? (end - (16ull << 20)) >> 16 : 0;
		uint64_t *ax = &v->gpr[RAX], *bx = &v->gpr[RBX], *cx = &v->gpr[RCX], *dx = &v->gpr[RDX];
		if (c->ax == 0xe801) {
			*ax = (*ax & ~0xffffull) | min16(*ax & 0xffff, kib);
			*cx = (*cx & ~0xffffull) | min16(*cx & 0xffff, kib);
			*bx = (*bx & ~0xffffull) | min16(*bx & 0xffff, blocks);
			*dx = (*dx & ~0xffffull) | min16(*dx & 0xffff, blocks);
		} else {
			*ax = (*ax & ~0xffffull) | min16(*ax & 0xffff, (end - 0x100000) >> 10);
		}
	}
	set_cs(c->cs, c->ip);
}

bool bios_exec_violation(struct vcpu *v, uint64_t gpa)
{
	struct bios_hook *b = v->vm->bios;
	if (!b || (gpa & ~0xfffull) != HOOK_PAGE)
		return false;
	if (!b->trap)
		return true; /* executable again since this fetch: retry it */
	bool real = !(guest_cr0() & CR0_PE), v86 = vmread(VMCS_GUEST_RFLAGS) & RFLAGS_VM;
	uint64_t cs = vmread(VMCS_GUEST_CS_SEL), ip = vmread(VMCS_GUEST_RIP);
	bool at_hook = (real || v86) && gpa == HOOK && cs == HOOK_SEG && ip == 0;
	bool at_return = real && gpa == HOOK + RETURN_OFF && cs == HOOK_SEG && ip == RETURN_OFF && v->bios_call.armed;
	if (!at_hook && !at_return) {
		/* Code of the guest's own in the VGA window: it runs, as on the
		 * CPU - and INT 15h goes to the BIOS again, unanswered. */
		pr_warn("guest executes at 0x%llx, in the page of the INT 15h hook: hook ended\n", (unsigned long long)gpa);
		b->trap = false;
		uint32_t ivt = 0;
		if (gpa_read(v->vm, 0x15 * 4, &ivt, sizeof(ivt)) && ivt == HOOK_SEG << 16)
			gpa_write(v->vm, 0x15 * 4, &b->bios_vector, sizeof(b->bios_vector));
		int t = mtrr_type_of(&v->vm->mtrr, HOOK_PAGE, PAGE_SIZE);
		if (ept_set_page(v->vm, HOOK_PAGE, HOOK_PAGE | EPT_RWX | ((uint64_t)(t < 0 ? MT_UC : t) << EPT_MT_SHIFT)))
			vm_end_run(v, true, "out of pool memory ending the INT 15h hook");
		ept_invalidate(v->vm);
		return true;
	}
	if (at_return) {
		size_return(v, b);
		return true;
	}
	uint16_t ax = (uint16_t)v->gpr[RAX];
	struct gfault f;
	int r = 0;
	if (real && ax == 0xe820 && e820(v, b, &f, &r)) {
		if (r)
			gfault_raise(v, &f);
		return true;
	}
	if (real && (ax == 0xe801 || (ax >> 8) == 0x88) && size_call(v, ax, &f)) {
		gfault_raise(v, &f);
		return true;
	}
	set_cs((uint16_t)(b->bios_vector >> 16), (uint16_t)b->bios_vector);
	return true;
}
