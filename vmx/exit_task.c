/* exit_task.c - task switches (VM exit reason 9), done for the guest as the
 * CPU does them: SDM Vol. 3A 7.3 "Task Switching", for 32-bit (type 9/11)
 * and 16-bit (type 1/3) TSSs.
 *
 * Every task switch exits in VMX non-root operation (SDM Vol. 3C 25.4.2),
 * after the CPU has made the checks on the way to the new TSS descriptor:
 * the task gate's or TSS descriptor's DPL against CPL/RPL (CALL, JMP, INT n),
 * the gate's P bit, the TSS selector (TI, GDT limit), the descriptor's type
 * (available; busy for IRET), S, P and limit (0x67, 0x2B).  The exit
 * qualification gives the new TSS selector and the source (table 27-2: 0
 * CALL, 1 IRET, 2 JMP, 3 a task gate in the IDT); for the IDT the event
 * being delivered is in the IDT-vectoring information.  Everything after
 * those checks is done here, in the order of the SDM's steps and, where the
 * SDM gives none, of Bochs 2.7 (our reference CPU):
 *
 *   before the commit point (a fault leaves the old task untouched, except
 *   the old busy bit as the SDM's step order implies):
 *     the old TSS's limit covers the fields saved (#TS(old TSS));
 *     the new and old TSS are paged in (#PF; SDM step 5, before any change);
 *     JMP/IRET: the old TSS descriptor becomes available;
 *     the old task's state is saved (IRET: NT clear in the saved EFLAGS);
 *     CALL/INT: the new TSS's back link is the old TSS selector;
 *     the new state is read; not IRET: the new TSS descriptor becomes busy;
 *   commit: TR, CR0.TS, DR7's local enables, EIP, EFLAGS (NT set for CALL
 *   and INT), the general registers and all selectors are loaded; then in
 *   the new task's context: CR3 (and the PAE PDPTEs), LDTR, SS, DS, ES, FS,
 *   GS, CS with their checks (#TS/#NP/#SS with the selector), the error code
 *   of the exception being delivered is pushed, EIP is checked against the
 *   CS limit (#GP(0)), and the TSS's T bit raises #DB (DR6.BT).
 *
 * The switch *is* the delivery of the event that crossed a task gate: the
 * IDT-vectoring information is not re-injected.  An exception raised here
 * is injected; if the switch was delivering a hardware exception, the two
 * combine as during any delivery (SDM 6.15 table 6-5: #DF, triple fault).
 * Error codes carry EXT when the switch delivers an external event.
 *
 * A fault after the commit point leaves the state partly loaded; the SDM
 * says such an exception should go through a task gate (table 7-1), which
 * saves only selectors, EIP, EFLAGS and the general registers, all of
 * which are the new task's here as on the CPU.  The descriptor caches a
 * fault leaves behind are not architectural; Nestor keeps them such that
 * VM entry accepts the state: segments not yet loaded are unusable, CS
 * keeps its old descriptor at the current privilege level.
 *
 * All accesses a task switch makes to the TSSs and descriptor tables are
 * supervisor accesses whatever the CPL (SDM 4.6); the guest-linear walk
 * (vmx/guest_mem.c) takes the privilege from SS.DPL, so SS's DPL reads 0
 * in the VMCS while those accesses are made.  Limits: accessed/dirty bits
 * are not set in the guest's paging structures by these accesses, and
 * SMAP does not apply to them (as elsewhere in Nestor's emulation). */
#include "boot/cpu.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "mm/pmm.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"

enum { TS_CALL = 0, TS_IRET = 1, TS_JMP = 2, TS_IDT = 3 };

#define AR_UNUSABLE (1u << 16)
#define AR_DPL(ar) (((ar) >> 5) & 3)
#define DR6_BT (1u << 15)
#define DR7_LOCAL_ENABLES 0x155u /* L0-L3, LE: cleared by every task switch (SDM 17.2.4) */
#define EFLAGS_VALID 0x3f7fd5u   /* the EFLAGS bits a task switch loads */

/* A task switch in progress. */
struct ts {
	struct vcpu *v;
	unsigned source;
	uint32_t idt_info; /* the event being delivered (source TS_IDT) */
	uint32_t ext;      /* EXT bit of the error codes raised */
	uint32_t ss_ar;    /* SS access rights of the old task */
	bool fault;        /* an exception was raised: the switch stops */
};

/* Raises an exception for the guest; error codes get EXT (SDM 6.13). */
static void ts_raise(struct ts *t, unsigned vec, uint32_t err)
{
	if (vec != EXC_PF)
		err = (err & ~1u) | t->ext;
	/* Raised while delivering a hardware exception: the two combine as the
	 * CPU does (inject_exception_err looks at the event in the VM-entry
	 * field). */
	if (t->source == TS_IDT && ((t->idt_info >> 8) & 7) == INTR_TYPE_HW_EXCEPTION)
		vmwrite(VMCS_VMENTRY_INTR_INFO, t->idt_info & ~INTR_INFO_NMI_UNBLOCKED_IRET);
	inject_exception_err(t->v, vec, err);
	/* Every exception raised here is a fault: RF is set in the EFLAGS image
	 * its delivery saves (SDM 17.3.1.1). */
	vmwrite(VMCS_GUEST_RFLAGS, vmread(VMCS_GUEST_RFLAGS) | RFLAGS_RF);
	t->fault = true;
}

/* --- guest-linear memory (32-bit linear addresses wrap) -------------------- */

static int lin_xlate(struct ts *t, uint32_t la, int access, uint64_t *gpa)
{
	struct gfault f;
	if (gla_xlate(t->v, la, (unsigned)access, gpa, &f) == 0)
		return 0;
	if (f.kind == GF_EXC && f.vector == EXC_PF) {
		write_cr2(la);
		ts_raise(t, EXC_PF, f.error);
	} else {
		/* Refused by the EPT of the level's own hypervisor: that one
		 * gets the EPT violation, the switch starts again after it. */
		gfault_raise(t->v, &f);
		t->fault = true;
	}
	return -1;
}

static int lin_copy(struct ts *t, uint32_t la, void *buf, size_t len, bool write)
{
	uint8_t *p = buf;
	while (len) {
		size_t n = PAGE_SIZE - (la & (PAGE_SIZE - 1));
		if (n > len)
			n = len;
		uint64_t gpa;
		if (lin_xlate(t, la, write ? ACC_WRITE : ACC_READ, &gpa))
			return -1;
		if (write)
			gpa_write(t->v->vm, gpa, p, n);
		else if (!gpa_read(t->v->vm, gpa, p, n))
			memset(p, 0xff, n); /* beyond the guest-physical space: no memory */
		p += n, la += (uint32_t)n, len -= n;
	}
	return 0;
}

static int lin_read(struct ts *t, uint32_t la, void *buf, size_t len) { return lin_copy(t, la, buf, len, false); }
static int lin_write(struct ts *t, uint32_t la, const void *buf, size_t len)
{
	return lin_copy(t, la, (void *)buf, len, true);
}
static int lin_write16(struct ts *t, uint32_t la, uint16_t val) { return lin_write(t, la, &val, 2); }

/* --- descriptors (SDM 3.4.5) ------------------------------------------------ */

struct desc {
	uint32_t lo, hi;
};

static uint32_t d_base(struct desc d) { return (d.lo >> 16) | ((d.hi & 0xff) << 16) | (d.hi & 0xff000000u); }
static uint32_t d_limit(struct desc d)
{
	uint32_t l = (d.lo & 0xffff) | (d.hi & 0xf0000);
	return (d.hi & (1u << 23)) ? (l << 12) | 0xfff : l;
}
static unsigned d_type(struct desc d) { return (d.hi >> 8) & 15; }
static bool d_s(struct desc d) { return d.hi & (1u << 12); }
static unsigned d_dpl(struct desc d) { return (d.hi >> 13) & 3; }
static bool d_p(struct desc d) { return d.hi & (1u << 15); }
/* VMX access-rights format (SDM 24.4.1): bits 7:0 and 15:12 of the
 * descriptor's second dword shifted down by 8. */
static uint32_t d_ar(struct desc d) { return (d.hi >> 8) & 0xf0ff; }
static struct segment d_seg(uint16_t sel, struct desc d)
{
	return (struct segment){ .sel = sel, .base = d_base(d), .limit = d_limit(d), .ar = d_ar(d) };
}

static bool is_code(unsigned type) { return type & 8; }
static bool is_tss16(unsigned type) { return type == 1 || type == 3; }
static bool is_tss(unsigned type) { return type == 1 || type == 3 || type == 9 || type == 11; }

/* Reads the descriptor of sel from the GDT or, TI=1, the LDT: 1 when the
 * selector is outside its table (or there is no LDT), -1 on a page fault. */
static int fetch_desc(struct ts *t, const struct segment *ldt, uint16_t sel, struct desc *d)
{
	uint64_t base;
	uint32_t limit;
	if (sel & 4) {
		if (ldt->ar & AR_UNUSABLE)
			return 1;
		base = ldt->base, limit = ldt->limit;
	} else {
		base = vmread(VMCS_GUEST_GDTR_BASE), limit = (uint32_t)vmread(VMCS_GUEST_GDTR_LIMIT);
	}
	if ((uint32_t)(sel | 7) > limit)
		return 1;
	return lin_read(t, (uint32_t)(base + (sel & ~7u)), d, 8) ? -1 : 0;
}

/* Loading a segment sets its descriptor's accessed bit (type bit 0). */
static int touch(struct ts *t, const struct segment *ldt, uint16_t sel, struct desc *d)
{
	if (d->hi & (1u << 8))
		return 0;
	d->hi |= 1u << 8;
	uint64_t base = (sel & 4) ? ldt->base : vmread(VMCS_GUEST_GDTR_BASE);
	uint8_t b = (uint8_t)(d->hi >> 8);
	return lin_write(t, (uint32_t)(base + (sel & ~7u) + 5), &b, 1);
}

/* Sets or clears the busy bit (type bit 1) of a TSS descriptor in the GDT. */
static int set_busy(struct ts *t, uint16_t sel, bool busy)
{
	uint32_t la = (uint32_t)(vmread(VMCS_GUEST_GDTR_BASE) + (sel & ~7u) + 5);
	uint8_t b;
	if (lin_read(t, la, &b, 1))
		return -1;
	b = busy ? b | 2 : b & ~2;
	return lin_write(t, la, &b, 1);
}

/* --- the new task's segments (in the new task's context) -------------------- */

/* LDTR: a GDT selector of a present LDT descriptor, or null (#TS). */
static void load_ldtr(struct ts *t, uint16_t sel, struct segment *ldt)
{
	*ldt = (struct segment){ .sel = sel, .ar = AR_UNUSABLE };
	if (sel & 4) {
		ts_raise(t, EXC_TS, sel & 0xfffc);
		return;
	}
	if (!(sel & 0xfffc))
		return;
	struct desc d;
	struct segment none = { .ar = AR_UNUSABLE };
	int r = fetch_desc(t, &none, sel, &d);
	if (r < 0)
		return;
	if (r > 0 || d_s(d) || d_type(d) != 2 || !d_p(d)) {
		ts_raise(t, EXC_TS, sel & 0xfffc);
		return;
	}
	*ldt = d_seg(sel, d);
}

/* SS: a present writable data segment with DPL = RPL = the new CPL. */
static bool load_ss(struct ts *t, const struct segment *ldt, uint16_t sel, unsigned cpl, struct segment *s)
{
	struct desc d;
	int r = (sel & 0xfffc) ? fetch_desc(t, ldt, sel, &d) : 1;
	if (r < 0)
		return false;
	if (r > 0 || !d_s(d) || is_code(d_type(d)) || !(d_type(d) & 2)) {
		ts_raise(t, EXC_TS, sel & 0xfffc);
		return false;
	}
	if (!d_p(d)) {
		ts_raise(t, EXC_SS, sel & 0xfffc);
		return false;
	}
	if (d_dpl(d) != cpl || d_dpl(d) != (sel & 3u)) {
		ts_raise(t, EXC_TS, sel & 0xfffc);
		return false;
	}
	if (touch(t, ldt, sel, &d))
		return false;
	*s = d_seg(sel, d);
	return true;
}

/* DS, ES, FS, GS: null, or data / readable code; data and non-conforming
 * code need DPL >= CPL and RPL (#TS); present (#NP). */
static bool load_data(struct ts *t, const struct segment *ldt, uint16_t sel, unsigned cpl, struct segment *s)
{
	*s = (struct segment){ .sel = sel, .ar = AR_UNUSABLE };
	if (!(sel & 0xfffc))
		return true;
	struct desc d;
	int r = fetch_desc(t, ldt, sel, &d);
	if (r < 0)
		return false;
	unsigned type = d_type(d);
	if (r > 0 || !d_s(d) || (is_code(type) && !(type & 2))) {
		ts_raise(t, EXC_TS, sel & 0xfffc);
		return false;
	}
	bool conforming = is_code(type) && (type & 4);
	if (!conforming && ((sel & 3u) > d_dpl(d) || cpl > d_dpl(d))) {
		ts_raise(t, EXC_TS, sel & 0xfffc);
		return false;
	}
	if (!d_p(d)) {
		ts_raise(t, EXC_NP, sel & 0xfffc);
		return false;
	}
	if (touch(t, ldt, sel, &d))
		return false;
	*s = d_seg(sel, d);
	return true;
}

/* CS: a present code segment; non-conforming DPL = RPL, conforming DPL <=
 * RPL (#TS; #NP when not present). */
static bool load_cs(struct ts *t, const struct segment *ldt, uint16_t sel, struct segment *s)
{
	struct desc d;
	int r = (sel & 0xfffc) ? fetch_desc(t, ldt, sel, &d) : 1;
	if (r < 0)
		return false;
	unsigned type = d_type(d);
	if (r > 0 || !d_s(d) || !is_code(type) || (!(type & 4) && d_dpl(d) != (sel & 3u)) ||
	    ((type & 4) && d_dpl(d) > (sel & 3u))) {
		ts_raise(t, EXC_TS, sel & 0xfffc);
		return false;
	}
	if (!d_p(d)) {
		ts_raise(t, EXC_NP, sel & 0xfffc);
		return false;
	}
	if (touch(t, ldt, sel, &d))
		return false;
	*s = d_seg(sel, d);
	return true;
}

/* Virtual-8086 mode: segments are 8086 segments, no checks. */
static struct segment v86_seg(uint16_t sel)
{
	return (struct segment){ .sel = sel, .base = (uint32_t)sel << 4, .limit = 0xffff, .ar = 0xf3 };
}

static void put_seg(unsigned i, const struct segment *s)
{
	vmwrite(VMCS_GUEST_ES_SEL + 2 * i, s->sel);
	vmwrite(VMCS_GUEST_ES_BASE + 2 * i, s->base);
	vmwrite(VMCS_GUEST_ES_LIMIT + 2 * i, s->limit);
	vmwrite(VMCS_GUEST_ES_AR + 2 * i, s->ar);
}

/* A CR3 load by a task switch under PAE paging loads the PDPTEs (SDM
 * 4.4.1); reserved bits set in a present one: #TS(0) with the PDPTEs
 * cleared (Bochs; the SDM names no exception for this case). */
static void load_cr3(struct ts *t, uint32_t cr3)
{
	uint64_t old = vmread(VMCS_GUEST_CR3);
	if (cr3 == old)
		return; /* an unchanged CR3 is not reloaded */
	vmwrite(VMCS_GUEST_CR3, cr3);
	if (t->v->vm->vpid)
		invvpid(1, t->v->vm->vpid, 0); /* a CR3 load flushes the TLB */
	if (!(guest_cr4() & CR4_PAE))
		return;
	uint64_t pdpt[4];
	uint64_t rsvd = (~0ull << maxphyaddr) | 0x1e6; /* bits 2:1, 8:5, above MAXPHYADDR */
	bool ok = gpa_read(t->v->vm, cr3 & 0xffffffe0u, pdpt, sizeof(pdpt));
	for (int i = 0; i < 4 && ok; i++)
		ok = !((pdpt[i] & 1) && (pdpt[i] & rsvd));
	for (int i = 0; i < 4; i++)
		vmwrite(VMCS_GUEST_PDPTE0 + 2 * i, ok ? pdpt[i] : 0);
	if (!ok)
		ts_raise(t, EXC_TS, 0);
}

/* Pushes the error code of the exception being delivered on the new
 * task's stack (a word for a 16-bit TSS): SS's limit (#SS(0)), paging at
 * the new CPL (#PF). */
static void push_error(struct ts *t, uint32_t err, unsigned size)
{
	uint32_t ar = (uint32_t)vmread(VMCS_GUEST_SS_AR), limit = (uint32_t)vmread(VMCS_GUEST_SS_LIMIT);
	bool big = ar & (1u << 14), down = !(ar & 8) && (ar & 4);
	uint32_t esp = (uint32_t)vmread(VMCS_GUEST_RSP);
	uint32_t mask = big ? 0xffffffffu : 0xffff;
	uint32_t sp = (esp - size) & mask, last = sp + size - 1;
	bool ok = down ? sp > limit && last <= mask && last >= sp : last >= sp && last <= limit;
	if ((ar & AR_UNUSABLE) || !ok) {
		ts_raise(t, EXC_SS, 0);
		return;
	}
	if (lin_write(t, (uint32_t)(vmread(VMCS_GUEST_SS_BASE) + sp), &err, size))
		return;
	vmwrite(VMCS_GUEST_RSP, (esp & ~mask) | sp);
}

/* --- the switch -------------------------------------------------------------- */

/* The 32-bit TSS from offset 0x1c (CR3) to 0x67 (T bit, I/O map base). */
struct tss32_dyn {
	uint32_t cr3, eip, eflags, gpr[8];
	uint32_t sel[6]; /* ES CS SS DS FS GS, each in the low word */
	uint32_t ldt;
	uint16_t trap, iomap;
};
_Static_assert(sizeof(struct tss32_dyn) == 0x68 - 0x1c, "32-bit TSS layout");

/* The 16-bit TSS from offset 14 (IP) to 43 (LDT). */
struct tss16_dyn {
	uint16_t ip, flags, gpr[8], sel[4], ldt; /* ES CS SS DS */
};
_Static_assert(sizeof(struct tss16_dyn) == 44 - 14, "16-bit TSS layout");

/* VMCS order of the selectors in a TSS (ES CS SS DS FS GS). */
static const unsigned tss_seg[6] = { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS };

static void get_seg(unsigned i, struct segment *s)
{
	s->sel = (uint16_t)vmread(VMCS_GUEST_ES_SEL + 2 * i);
	s->base = vmread(VMCS_GUEST_ES_BASE + 2 * i);
	s->limit = (uint32_t)vmread(VMCS_GUEST_ES_LIMIT + 2 * i);
	s->ar = (uint32_t)vmread(VMCS_GUEST_ES_AR + 2 * i);
}

/* Steps up to the commit point: checks, the old task saved, the new one
 * read.  Returns false after raising an exception (old task unchanged). */
static bool switch_out(struct ts *t, uint16_t sel, struct desc nd, struct tss32_dyn *n32, struct tss16_dyn *n16)
{
	struct vcpu *v = t->v;
	bool iret = t->source == TS_IRET, jmp = t->source == TS_JMP, nest = !iret && !jmp;
	bool new16 = is_tss16(d_type(nd));
	uint32_t nbase = d_base(nd), new_max = new16 ? 0x2b : 0x67;
	struct segment tr;
	get_seg(SEG_TR, &tr);
	bool old16 = is_tss16(tr.ar & 15);
	uint32_t obase = (uint32_t)tr.base;

	/* The checks the CPU made before the exit, again: the guest's memory
	 * may have changed since (another processor). */
	unsigned want = iret ? (d_type(nd) | 2) : (d_type(nd) & ~2u);
	if ((sel & 4) || d_s(nd) || !is_tss(d_type(nd)) || d_type(nd) != want) {
		ts_raise(t, iret ? EXC_TS : EXC_GP, sel & 0xfffc);
		return false;
	}
	if (!d_p(nd)) {
		ts_raise(t, EXC_NP, sel & 0xfffc);
		return false;
	}
	if (d_limit(nd) < new_max) {
		ts_raise(t, EXC_TS, sel & 0xfffc);
		return false;
	}
	/* The old TSS must hold the fields saved into it (Bochs; the SDM only
	 * states the new TSS's limit). */
	if (tr.limit < (old16 ? 0x29u : 0x5fu)) {
		ts_raise(t, EXC_TS, tr.sel & 0xfffc);
		return false;
	}
	/* SDM 7.3 step 5: both TSSs are paged in before anything changes.
	 * (Bochs clears the old busy bit before it checks the old TSS's
	 * pages, so a #PF there leaves the old TSS available: Nestor follows
	 * the SDM; the suite makes no #PF on the old TSS.) */
	if (guest_cr0() & CR0_PG) {
		uint64_t gpa;
		if (lin_xlate(t, nbase, ACC_READ, &gpa) || lin_xlate(t, nbase + new_max, ACC_READ, &gpa))
			return false;
		if (nest && (lin_xlate(t, nbase, ACC_WRITE, &gpa) || lin_xlate(t, nbase + 1, ACC_WRITE, &gpa)))
			return false;
		uint32_t first = obase + (old16 ? 14 : 0x20), last = obase + (old16 ? 41 : 0x5d);
		if (lin_xlate(t, first, ACC_WRITE, &gpa) || lin_xlate(t, last, ACC_WRITE, &gpa))
			return false;
	}
	/* Step 7: JMP and IRET leave the old task: its TSS becomes available. */
	if ((jmp || iret) && set_busy(t, tr.sel, false))
		return false;

	/* Step 6: save the old task.  The EIP saved follows the instruction
	 * that switched (CALL, JMP, IRET, INT n, INT3, INTO): the exit's RIP
	 * is that instruction (SDM 27.3.3); for other events it already is the
	 * return address.  INT1 is counted with the instructions: the SDM's
	 * list leaves it out, but Bochs (and KVM, on hardware) save its RIP
	 * with its length, and INT1 through a task gate works only so.  IRET
	 * saves EFLAGS with NT clear (step 8); RF is as the exit saved it. */
	uint64_t rip = vmread(VMCS_GUEST_RIP);
	unsigned type = (t->idt_info >> 8) & 7;
	if (t->source != TS_IDT || type == INTR_TYPE_SW_INTR || type == INTR_TYPE_PRIV_SW_EXCEPTION ||
	    type == INTR_TYPE_SW_EXCEPTION) {
		/* IP does not wrap in 16-bit code: an instruction that ends at
		 * FFFFh saves 10000h (Bochs; the fetch there is beyond CS's
		 * limit). */
		rip = (rip + vmread(VMCS_EXIT_INSTR_LEN)) & 0xffffffffu;
	}
	uint32_t eflags = (uint32_t)vmread(VMCS_GUEST_RFLAGS);
	if (iret)
		eflags &= ~(uint32_t)RFLAGS_NT;
	uint32_t gpr[8];
	for (unsigned r = 0; r < 8; r++)
		gpr[r] = r == RSP ? (uint32_t)vmread(VMCS_GUEST_RSP) : (uint32_t)v->gpr[r];
	if (old16) {
		uint16_t s[14] = { (uint16_t)rip, (uint16_t)eflags };
		for (unsigned r = 0; r < 8; r++)
			s[2 + r] = (uint16_t)gpr[r];
		for (unsigned i = 0; i < 4; i++)
			s[10 + i] = (uint16_t)vmread(VMCS_GUEST_ES_SEL + 2 * tss_seg[i]);
		if (lin_write(t, obase + 14, s, sizeof(s)))
			return false;
	} else {
		uint32_t d[10] = { (uint32_t)rip, eflags };
		memcpy(&d[2], gpr, sizeof(gpr));
		if (lin_write(t, obase + 0x20, d, sizeof(d)))
			return false;
		/* Selectors are words: the upper halves of their dwords stay. */
		for (unsigned i = 0; i < 6; i++)
			if (lin_write16(t, obase + 0x48 + 4 * i, (uint16_t)vmread(VMCS_GUEST_ES_SEL + 2 * tss_seg[i])))
				return false;
	}
	/* CALL, exceptions, interrupts: the new task links back to the old. */
	if (nest && lin_write16(t, nbase, tr.sel))
		return false;

	/* The new task's state. */
	if (new16 ? lin_read(t, nbase + 14, n16, sizeof(*n16)) : lin_read(t, nbase + 0x1c, n32, sizeof(*n32)))
		return false;
	/* Step 11: not IRET: the new TSS becomes busy. */
	if (!iret && set_busy(t, sel, true))
		return false;
	return true;
}

void exit_task_switch(struct vcpu *v)
{
	uint64_t q = vmread(VMCS_EXIT_QUALIFICATION);
	struct ts t = { .v = v, .source = (q >> 30) & 3 };
	uint16_t sel = q & 0xffff;
	t.idt_info = t.source == TS_IDT ? (uint32_t)vmread(VMCS_IDT_VECTORING_INFO) : 0;
	if (!(t.idt_info & INTR_INFO_VALID))
		t.idt_info = 0;
	unsigned type = (t.idt_info >> 8) & 7;
	bool event = t.idt_info & INTR_INFO_VALID;
	/* External events: interrupts, NMIs, hardware exceptions, INT1. */
	t.ext = event && type != INTR_TYPE_SW_INTR && type != INTR_TYPE_SW_EXCEPTION;
	bool nest = t.source == TS_CALL || t.source == TS_IDT;

	/* Task switches exist only in legacy protected mode (IA-32e: #GP
	 * before any exit; not expected here). */
	if (vmread(VMCS_GUEST_IA32_EFER) & EFER_LMA) {
		inject_gp(v);
		return;
	}
	/* The switch delivers the event: nothing is left to re-inject.  An
	 * instruction's STI/MOV-SS blocking and single-step trap end with it
	 * (Bochs discards them when a task switch starts). */
	vmwrite(VMCS_GUEST_INTERRUPTIBILITY, vmread(VMCS_GUEST_INTERRUPTIBILITY) &
						     ~(INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOV_SS));
	vmwrite(VMCS_GUEST_PENDING_DBG_EXCEPTIONS, vmread(VMCS_GUEST_PENDING_DBG_EXCEPTIONS) & ~(1ull << 14));
	/* An NMI is blocked from its delivery on, whatever comes of it; IRET
	 * unblocks NMIs even when it switches tasks. */
	if (event && type == INTR_TYPE_NMI)
		vmwrite(VMCS_GUEST_INTERRUPTIBILITY, vmread(VMCS_GUEST_INTERRUPTIBILITY) | INTERRUPTIBILITY_NMI);
	if (t.source == TS_IRET)
		vmwrite(VMCS_GUEST_INTERRUPTIBILITY, vmread(VMCS_GUEST_INTERRUPTIBILITY) & ~INTERRUPTIBILITY_NMI);
	if (vmread(VMCS_GUEST_ACTIVITY_STATE) != ACTIVITY_ACTIVE)
		vmwrite(VMCS_GUEST_ACTIVITY_STATE, ACTIVITY_ACTIVE);

	/* Supervisor accesses from here on (see the top of this file). */
	t.ss_ar = (uint32_t)vmread(VMCS_GUEST_SS_AR);
	vmwrite(VMCS_GUEST_SS_AR, t.ss_ar & ~0x60u);

	struct desc nd = { 0, 0 };
	uint64_t gdt = vmread(VMCS_GUEST_GDTR_BASE);
	struct tss32_dyn n32;
	struct tss16_dyn n16;
	if ((uint32_t)(sel | 7) > (uint32_t)vmread(VMCS_GUEST_GDTR_LIMIT)) {
		ts_raise(&t, t.source == TS_IRET ? EXC_TS : EXC_GP, sel & 0xfffc);
	} else if (lin_read(&t, (uint32_t)(gdt + (sel & ~7u)), &nd, 8) == 0) {
		switch_out(&t, sel, nd, &n32, &n16);
	}
	if (t.fault) {
		vmwrite(VMCS_GUEST_SS_AR, t.ss_ar);
		return;
	}

	/* --- commit point: the rest happens in the new task's context ------ */
	bool new16 = is_tss16(d_type(nd));
	struct desc busy = nd;
	busy.hi |= 2u << 8;
	struct segment tr = d_seg(sel, busy);
	put_seg(SEG_TR, &tr);
	uint64_t cr0 = vmread(VMCS_GUEST_CR0) | CR0_TS;
	vmwrite(VMCS_GUEST_CR0, cr0);
	if (vmread(VMCS_CR0_GUEST_HOST_MASK) & CR0_TS)
		vmwrite(VMCS_CR0_READ_SHADOW, vmread(VMCS_CR0_READ_SHADOW) | CR0_TS);
	vmwrite(VMCS_GUEST_DR7, vmread(VMCS_GUEST_DR7) & ~(uint64_t)DR7_LOCAL_ENABLES);

	uint32_t eip, eflags, gpr[8];
	uint16_t raw[6], ldt_sel; /* ES CS SS DS FS GS */
	if (new16) {
		/* SDM 7.6: a 16-bit TSS holds the low words; the upper halves of
		 * the registers are not kept (Bochs sets them to ones), EIP and
		 * EFLAGS are zero-extended, FS and GS are null. */
		eip = n16.ip, eflags = n16.flags;
		for (unsigned r = 0; r < 8; r++)
			gpr[r] = 0xffff0000u | n16.gpr[r];
		for (unsigned i = 0; i < 4; i++)
			raw[i] = n16.sel[i];
		raw[4] = raw[5] = 0;
		ldt_sel = n16.ldt;
	} else {
		eip = n32.eip, eflags = n32.eflags;
		memcpy(gpr, n32.gpr, sizeof(gpr));
		for (unsigned i = 0; i < 6; i++)
			raw[i] = (uint16_t)n32.sel[i];
		ldt_sel = (uint16_t)n32.ldt;
	}
	if (nest)
		eflags |= RFLAGS_NT;
	eflags = (eflags & EFLAGS_VALID) | RFLAGS_FIXED;
	vmwrite(VMCS_GUEST_RIP, eip);
	vmwrite(VMCS_GUEST_RFLAGS, eflags);
	for (unsigned r = 0; r < 8; r++) {
		if (r == RSP)
			vmwrite(VMCS_GUEST_RSP, gpr[r]);
		else
			v->gpr[r] = gpr[r];
	}

	/* Every selector is loaded first; descriptors follow as checked. */
	struct segment old_cs, seg[6], ldt = { .sel = ldt_sel, .ar = AR_UNUSABLE };
	get_seg(SEG_CS, &old_cs);
	for (unsigned i = 0; i < 6; i++)
		seg[tss_seg[i]] = (struct segment){ .sel = raw[i], .ar = AR_UNUSABLE };
	bool cs_ok = false, ss_ok = false, v86 = eflags & RFLAGS_VM;
	unsigned cpl = AR_DPL(t.ss_ar);

	if (!new16 && (guest_cr0() & CR0_PG))
		load_cr3(&t, n32.cr3);
	if (v86) {
		/* Virtual-8086 mode: 8086 segments at CPL 3, nothing to check. */
		for (unsigned i = 0; i < 6; i++)
			seg[i] = v86_seg(seg[i].sel);
		cs_ok = ss_ok = true;
		cpl = 3;
	}
	if (!t.fault)
		load_ldtr(&t, ldt_sel, &ldt);
	if (!t.fault && !v86) {
		unsigned new_cpl = raw[1] & 3;
		ss_ok = load_ss(&t, &ldt, seg[SEG_SS].sel, new_cpl, &seg[SEG_SS]);
		if (ss_ok)
			cpl = new_cpl;
		static const unsigned data[4] = { SEG_DS, SEG_ES, SEG_FS, SEG_GS };
		for (unsigned i = 0; i < 4 && !t.fault; i++)
			load_data(&t, &ldt, seg[data[i]].sel, cpl, &seg[data[i]]);
		if (!t.fault)
			cs_ok = load_cs(&t, &ldt, seg[SEG_CS].sel, &seg[SEG_CS]);
	}
	/* A fault left some descriptors unloaded: keep a state VM entry takes
	 * (see the top of this file). */
	if (!cs_ok) {
		uint16_t s = seg[SEG_CS].sel;
		/* VM entry wants a non-conforming CS's DPL to be its RPL and
		 * SS's DPL: the CPL is the new CS selector's RPL (Bochs takes
		 * the CPL from CS's RPL). */
		cpl = s & 3;
		seg[SEG_CS] = old_cs;
		seg[SEG_CS].sel = s;
		seg[SEG_CS].ar = (old_cs.ar & ~0x60u) | (cpl << 5);
	}
	if (!ss_ok)
		seg[SEG_SS].ar = AR_UNUSABLE | (cpl << 5);
	for (unsigned i = 0; i < 6; i++)
		put_seg(i, &seg[i]);
	put_seg(SEG_LDTR, &ldt);
	if (t.fault)
		return;

	/* The error code of the exception being delivered (SDM 6.13). */
	if (t.idt_info & INTR_INFO_ERRCODE_VALID)
		push_error(&t, (uint32_t)vmread(VMCS_IDT_VECTORING_ERRCODE), new16 ? 2 : 4);
	if (t.fault)
		return;
	if (eip > seg[SEG_CS].limit) {
		ts_raise(&t, EXC_GP, 0);
		return;
	}
	/* The T bit of a 32-bit TSS: #DB before the new task's first
	 * instruction, DR6.BT set (B0-B3 cleared as Bochs does). */
	if (!new16 && (n32.trap & 1)) {
		write_dr6((read_dr6() & 0xffff6ff0ull) | DR6_BT);
		inject_exception(v, EXC_DB);
	}
}
