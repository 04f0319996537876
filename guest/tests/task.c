/* task.c - hardware task switches (SDM Vol. 3A chapter 7) in 32-bit
 * protected mode: JMP and CALL to a TSS and through task gates, IRET with
 * NT=1, exceptions, INT n, INT3, an external interrupt and NMIs through
 * task gates in the IDT, 16-bit TSSs (with and without paging), switches
 * from 16-bit code, TSS descriptors with G=1, CR3 loads with 32-bit and PAE
 * paging, a TSS partly in memory that does not exist, a CPL-3 task and its
 * I/O map, the T bit, and the faults of each step: the checks the CPU makes
 * before a VM exit and those of the switch itself, before and after its
 * commit point, alone or meeting the exception the switch delivers.  Under
 * Nestor every switch is a VM exit that Nestor emulates (vmx/exit_task.c);
 * at depth 0 Bochs does it: the transcripts must match.
 *
 * Each scenario builds a fresh world (GDT, IDT, TSSs), goes down to 32-bit
 * protected mode with task_asm.S, runs one action in the first task
 * ("main"), and comes back.  Tasks record their registers (snapshots);
 * exceptions with error codes (#DF, #TS, #NP, #SS, #GP, #PF) go through task
 * gates to one handler task per vector (H8, H10...), which records where
 * it stands - its back link names the task the exception happened in, its
 * stack holds the error code - so a fault after a switch's commit point is
 * seen in the new task's context, as the SDM's table 7-1 recommends.
 * What is printed: snapshots, the exception, every TSS that changed, the
 * busy TSS descriptors.  CHECKs hold what the SDM says. */
#include "guest/test.h"
#include "guest/tests/hostile.h"
#include "lib/format.h"
#include "lib/string.h"
#include "lib/x86.h"

/* Selectors of the suite's GDT (task_asm.S uses some of them). */
#define S_DATA 0x10
#define S_CODE32 0x18
#define S_UDATA 0x33
#define S_MAIN 0x50
#define S_A 0x58
#define S_B 0x60
#define S_U 0x68
#define S_H8 0x70
#define S_H10 0x78
#define S_H11 0x80
#define S_H12 0x88
#define S_H13 0x90
#define S_H14 0x98
#define S_T16 0xa0
#define S_GATE 0xa8
#define S_LDT 0xb0
#define S_UCODE 0xb8
#define S_X1 0xc0
#define S_X2 0xc8
#define S_CODE16 0xd0
#define S_CODE16W 0xd8
#define GDT_ENTRIES 32

#define EFL_NT 0x4000u
#define EFL_RF 0x10000u
#define EFL_IF 0x200u
#define LINK_SENTINEL 0x1234

enum { T_MAIN, T_A, T_B, T_U, T_H8, T_H10, T_H11, T_H12, T_H13, T_H14, NTASKS };
static const uint16_t task_sel[NTASKS] = { S_MAIN, S_A, S_B, S_U, S_H8, S_H10, S_H11, S_H12, S_H13, S_H14 };
static const char *const task_name[NTASKS] = { "main", "A", "B", "U", "H8", "H10", "H11", "H12", "H13", "H14" };
#define ST_T16 NTASKS       /* stack of the 16-bit task */
#define ST_U0 (NTASKS + 1)  /* ring-0 stack of U */
#define NSTACKS (NTASKS + 2)

struct __attribute__((packed)) tss32 {
	uint16_t link, r0;
	uint32_t esp0;
	uint16_t ss0, r1;
	uint32_t esp1;
	uint16_t ss1, r2;
	uint32_t esp2;
	uint16_t ss2, r3;
	uint32_t cr3, eip, eflags;
	uint32_t gpr[8]; /* EAX ECX EDX EBX ESP EBP ESI EDI */
	uint16_t es, r4, cs, r5, ss, r6, ds, r7, fs, r8, gs, r9, ldt, r10, trap, iomap;
};
_Static_assert(sizeof(struct tss32) == 104, "32-bit TSS");

struct __attribute__((packed)) tss16 {
	uint16_t link, sp0, ss0, sp1, ss1, sp2, ss2, ip, flags;
	uint16_t gpr[8]; /* AX CX DX BX SP BP SI DI */
	uint16_t es, cs, ss, ds, ldt;
};
_Static_assert(sizeof(struct tss16) == 44, "16-bit TSS");

/* --- shared with task_asm.S ------------------------------------------------ */

struct snap {
	uint32_t tag, eax, ecx, edx, ebx, esp, ebp, esi, edi, eflags, top;
	uint32_t cs, ss, ds, es, fs, gs, tr, ldtr, cr0, cr3;
};
_Static_assert(sizeof(struct snap) == 84, "SNAP_SIZE in task_asm.S");

struct dtr10 {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

struct snap ts_snaps[32];
uint32_t ts_nsnaps;
struct {
	uint32_t hit, vec, err, eip, cs, eflags, tr, dr6;
} ts_fault;
struct __attribute__((packed)) {
	uint16_t gpr[8], flags, cs, ss, ds, es, fs, gs, tr;
	uint32_t cr0;
} ts16_rec;
uint32_t ts_action, ts_main_sel, ts_cr0_64, ts_cr3_64, ts_cr4_64, ts_pg_cr3, ts_pg_cr4;
uint32_t ts_icr_fixed, ts_icr_nmi, ts_icr_hi, ts_cr2, ts_action2, ts_dr7;
volatile uint32_t ts_nmi_count;
uint64_t ts_rsp64;
struct dtr10 ts_gdt64, ts_idt64, ts_gdtr32, ts_idtr32;

void task_run(void);
extern const char ts_exit32[], ts_stubs[], ts16_code[], ts16_iret[], ts_main_stack_top[];
extern const char tb_exit[], tb_iret[], tb_iret_resumed[], tb_fault[], tb_irq[], tb_nmi[], tb_paging[];
extern const char tb_user_io[], tb_user_io_denied[], tb_user_jmp_gate[], tb_user_int[];
extern const char act_jmp_a[], act_call_a[], act_jmp_b[], act_call_b[], act_jmp_gate[], act_call_gate[];
extern const char act_int40[], act_int41[], act_int3[], act_int1[], act_gp[], act_gp_insn[], act_ud[], act_iret_nt[];
extern const char act_iret_nt_insn[], act_call_t16[], act_call_u[], act_jmp_tbit[], act_irq[];
extern const char act_irq_window_end[], act_nmi[], act_paging[], act_end[], act_rdmsr[], act_rdmsr_insn[];
extern const char act_paging_then[], act_pf[], act_code16_call[], act_code16_int[], act_code16_wrap[], act16_back[], act_dr7[], tb_dr7[];
extern const char ts16_main_call[], ts16_main_int[], ts16_handler[], ts16_wrap[];

/* --- the world ------------------------------------------------------------ */

static struct world {
	uint64_t gdt[GDT_ENTRIES];
	uint64_t idt[256];
	uint64_t ldt[2];
	union {
		struct tss32 t;
		uint8_t raw[0x100];
	} tss[NTASKS];
	struct tss16 t16;
	uint8_t stack[NSTACKS][1024];
} w __attribute__((aligned(64))), w0;

static uint32_t a32(const void *p) { return (uint32_t)(uintptr_t)p; }
static uint32_t stack_top(unsigned i) { return a32(w.stack[i]) + sizeof(w.stack[i]); }

static uint64_t seg_desc(uint32_t base, uint32_t limit, unsigned access, unsigned flags)
{
	return (uint64_t)(limit & 0xffff) | (uint64_t)(base & 0xffffff) << 16 | (uint64_t)access << 40 |
	       (uint64_t)((limit >> 16) & 0xf) << 48 | (uint64_t)(flags & 0xf) << 52 | (uint64_t)(base >> 24) << 56;
}
/* Flat 4 GiB 32-bit segments (not yet accessed). */
static uint64_t flat_data(unsigned dpl) { return seg_desc(0, 0xfffff, 0x92 | dpl << 5, 0xc); }
static uint64_t flat_code(unsigned dpl) { return seg_desc(0, 0xfffff, 0x9a | dpl << 5, 0xc); }
static uint64_t task_gate(uint16_t sel, unsigned dpl, bool present)
{
	return (uint64_t)sel << 16 | (uint64_t)((present ? 0x80 : 0) | dpl << 5 | 5) << 40;
}
static uint64_t int_gate(uint32_t off, unsigned dpl)
{
	return (off & 0xffff) | (uint64_t)S_CODE32 << 16 | (uint64_t)(0x8e | dpl << 5) << 40 | (uint64_t)(off >> 16) << 48;
}
static uint64_t *gdt(uint16_t sel) { return &w.gdt[sel >> 3]; }
static struct tss32 *tss(unsigned i) { return &w.tss[i].t; }
static unsigned desc_type(uint16_t sel) { return (*gdt(sel) >> 40) & 15; }

static void init_task(unsigned i, const void *eip)
{
	struct tss32 *t = tss(i);
	t->link = LINK_SENTINEL; /* shows whether a switch wrote it */
	t->eip = a32(eip);
	t->eflags = 2;
	for (unsigned r = 0; r < 8; r++)
		t->gpr[r] = (0xa0u + i) << 24 | r << 8;
	t->gpr[4] = stack_top(i);
	t->cs = S_CODE32;
	t->ss = t->ds = t->es = t->fs = t->gs = S_DATA;
	t->ss0 = S_DATA;
	t->esp0 = stack_top(i);
	t->iomap = 0x68; /* beyond the limit: no I/O map */
	*gdt(task_sel[i]) = seg_desc(a32(t), 0x67, 0x89, 0);
}

static void world_reset(void)
{
	memset(&w, 0, sizeof(w));
	w.gdt[1] = 0x00af9a000000ffffull; /* the kernel's code64, for the way back */
	w.gdt[2] = flat_data(0);
	w.gdt[3] = flat_code(0);
	w.gdt[6] = flat_data(3);
	*gdt(S_UCODE) = flat_code(3);
	for (unsigned i = 0; i < NTASKS; i++)
		init_task(i, i >= T_H8 ? tb_fault : tb_exit);
	/* Handler tasks hold their vector in EAX. */
	static const uint8_t vec[NTASKS] = { [T_H8] = 8, [T_H10] = 10, [T_H11] = 11, [T_H12] = 12, [T_H13] = 13, [T_H14] = 14 };
	for (unsigned i = T_H8; i < NTASKS; i++)
		tss(i)->gpr[0] = vec[i];
	tss(T_MAIN)->eip = 0;
	/* U: a CPL-3 task with an I/O map for ports 0-255 allowing only 0x80. */
	struct tss32 *u = tss(T_U);
	u->eip = a32(tb_user_io);
	u->cs = S_UCODE | 3;
	u->ss = u->ds = u->es = S_UDATA;
	u->fs = u->gs = 0;
	u->esp0 = stack_top(ST_U0);
	memset(&w.tss[T_U].raw[0x68], 0xff, 33);
	w.tss[T_U].raw[0x68 + 0x80 / 8] = 0xfe;
	*gdt(S_U) = seg_desc(a32(u), 0x68 + 32, 0x89, 0);
	/* A 16-bit task: 16-bit code at ts16_code, a 16-bit stack segment. */
	*gdt(S_T16) = seg_desc(a32(&w.t16), 0x2b, 0x81, 0);
	*gdt(S_CODE16) = seg_desc(a32(ts16_code), 0xffff, 0x9a, 0);
	*gdt(S_X2) = seg_desc(a32(w.stack[ST_T16]), 0xffff, 0x92, 0);
	w.t16 = (struct tss16){ .link = LINK_SENTINEL, .ip = 0, .flags = 2, .es = S_DATA, .cs = S_CODE16,
				.ss = S_X2, .ds = S_UDATA };
	for (unsigned r = 0; r < 8; r++)
		w.t16.gpr[r] = (uint16_t)(0x1600 | r << 4);
	w.t16.gpr[4] = sizeof(w.stack[ST_T16]);
	*gdt(S_GATE) = task_gate(S_A, 0, true);
	*gdt(S_LDT) = seg_desc(a32(w.ldt), sizeof(w.ldt) - 1, 0x82, 0);
	w.ldt[0] = flat_data(0);
	w.ldt[1] = flat_code(0);

	for (unsigned v = 0; v < 32; v++)
		w.idt[v] = int_gate(a32(ts_stubs) + 16 * v, 0);
	w.idt[8] = task_gate(S_H8, 0, true);
	for (unsigned v = 10; v <= 14; v++)
		w.idt[v] = task_gate(task_sel[T_H10 + v - 10], 0, true);
	w.idt[0x30] = int_gate(a32(ts_exit32), 3);
	w.idt[0x40] = task_gate(S_A, 0, true);
	w.idt[0x41] = task_gate(S_A, 0, false);
	w.idt[0x50] = task_gate(S_A, 0, true);

	ts_gdtr32 = (struct dtr10){ sizeof(w.gdt) - 1, a32(w.gdt) };
	ts_idtr32 = (struct dtr10){ sizeof(w.idt) - 1, a32(w.idt) };
	ts_main_sel = S_MAIN;
	ts_nsnaps = 0;
	ts_nmi_count = 0;
	memset(&ts_fault, 0, sizeof(ts_fault));
	memset(&ts16_rec, 0, sizeof(ts16_rec));
}

/* --- printing ---------------------------------------------------------------- */

static const struct {
	const char *name;
	const char *at;
} labels[] = {
	{ "tb_exit", tb_exit }, { "tb_iret", tb_iret }, { "tb_iret_resumed", tb_iret_resumed },
	{ "tb_fault", tb_fault }, { "tb_irq", tb_irq }, { "tb_nmi", tb_nmi }, { "tb_paging", tb_paging },
	{ "tb_user_io", tb_user_io }, { "tb_user_io_denied", tb_user_io_denied },
	{ "tb_user_jmp_gate", tb_user_jmp_gate }, { "tb_user_int", tb_user_int }, { "act_jmp_a", act_jmp_a },
	{ "act_call_a", act_call_a }, { "act_jmp_b", act_jmp_b }, { "act_call_b", act_call_b },
	{ "act_jmp_gate", act_jmp_gate }, { "act_call_gate", act_call_gate }, { "act_int40", act_int40 },
	{ "act_int41", act_int41 }, { "act_int3", act_int3 }, { "act_int1", act_int1 }, { "act_gp", act_gp }, { "act_gp_insn", act_gp_insn },
	{ "act_ud", act_ud }, { "act_iret_nt", act_iret_nt }, { "act_iret_nt_insn", act_iret_nt_insn },
	{ "act_call_t16", act_call_t16 }, { "act_call_u", act_call_u }, { "act_jmp_tbit", act_jmp_tbit },
	{ "act_irq", act_irq }, { "act_irq_window_end", act_irq_window_end }, { "act_nmi", act_nmi },
	{ "act_paging", act_paging }, { "act_rdmsr", act_rdmsr }, { "act_rdmsr_insn", act_rdmsr_insn },
	{ "act_paging_then", act_paging_then }, { "act_pf", act_pf }, { "act_code16_call", act_code16_call },
	{ "act_code16_int", act_code16_int }, { "act_code16_wrap", act_code16_wrap }, { "act16_back", act16_back }, { "act_dr7", act_dr7 }, { "tb_dr7", tb_dr7 },
};

/* Text buffers for one line. */
static char bufs[8][40];
static unsigned nbuf;
static char *buf(void) { return bufs[nbuf++ % 8]; }

/* A code address as label+offset. */
static const char *where(uint32_t a)
{
	const char *best = NULL;
	uint32_t at = 0;
	for (unsigned i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		uint32_t l = a32(labels[i].at);
		if (l <= a && a < a32(act_end) && (!best || l > at))
			best = labels[i].name, at = l;
	}
	char *b = buf();
	if (best && a - at < 0x100)
		ksnprintf(b, 40, a == at ? "%s" : "%s+%u", best, a - at);
	else
		ksnprintf(b, 40, "%08x", a);
	return b;
}

/* A stack pointer as top-of-whose-stack minus bytes. */
static const char *stk(uint32_t esp)
{
	char *b = buf();
	uint32_t main_top = a32(ts_main_stack_top);
	if (esp <= main_top && esp >= main_top - 1024) {
		ksnprintf(b, 40, "main-%u", main_top - esp);
		return b;
	}
	for (unsigned i = 0; i < NSTACKS; i++) {
		uint32_t top = stack_top(i);
		if (esp <= top && esp >= top - 1024) {
			ksnprintf(b, 40, "%s-%u", i == ST_T16 ? "T16" : i == ST_U0 ? "U0" : task_name[i], top - esp);
			return b;
		}
	}
	ksnprintf(b, 40, "%08x", esp);
	return b;
}

static const char *ts_bit(uint32_t cr0)
{
	return cr0 == ~0u ? "-" : (cr0 & CR0_TS) ? "1" : "0";
}

static const char *task_of(uint32_t sel)
{
	for (unsigned i = 0; i < NTASKS; i++)
		if (task_sel[i] == sel)
			return task_name[i];
	return sel == S_T16 ? "T16" : "?";
}

static void say_snaps(void)
{
	for (unsigned n = 0; n < ts_nsnaps && n < 32; n++) {
		const struct snap *s = &ts_snaps[n];
		say("snap %u in %s: tr %02x ldtr %02x cs %02x ss %02x ds %02x es %02x fs %02x gs %02x eflags %08x cr0.ts %s",
		    s->tag, task_of(s->tr), s->tr, s->ldtr, s->cs, s->ss, s->ds, s->es, s->fs, s->gs, s->eflags,
		    ts_bit(s->cr0));
		say("  eax %08x ecx %08x edx %08x ebx %08x ebp %08x esi %08x edi %08x esp %s", s->eax, s->ecx,
		    s->edx, s->ebx, s->ebp, s->esi, s->edi, stk(s->esp));
	}
}

static void say_tss(unsigned i)
{
	const struct tss32 *t = tss(i), *t0 = &w0.tss[i].t;
	if (t->eip == t0->eip && !memcmp(t->gpr, t0->gpr, sizeof(t->gpr)) && t->eflags == t0->eflags) {
		if (t->link != t0->link)
			say("%s TSS: link %04x", task_name[i], t->link);
		return;
	}
	say("%s TSS: link %04x eip %s eflags %08x es %02x cs %02x ss %02x ds %02x fs %02x gs %02x ldt %02x",
	    task_name[i], t->link, where(t->eip), t->eflags, t->es, t->cs, t->ss, t->ds, t->fs, t->gs, t->ldt);
	say("  eax %08x ecx %08x edx %08x ebx %08x esp %s ebp %08x esi %08x edi %08x", t->gpr[0], t->gpr[1],
	    t->gpr[2], t->gpr[3], stk(t->gpr[4]), t->gpr[5], t->gpr[6], t->gpr[7]);
}

/* Everything a scenario left behind. */
static void report(void)
{
	say_snaps();
	if (ts_fault.hit)
		say("exception %s error %04x at %s cs %02x eflags %08x in %s", exception_mnemonic(ts_fault.vec),
		    ts_fault.err, where(ts_fault.eip), ts_fault.cs, ts_fault.eflags, task_of(ts_fault.tr));
	for (unsigned i = 0; i < NTASKS; i++)
		say_tss(i);
	char busy[128];
	size_t n = 0;
	busy[0] = 0;
	for (unsigned i = 0; i <= NTASKS; i++) {
		uint16_t sel = i < NTASKS ? task_sel[i] : S_T16;
		if (desc_type(sel) & 2)
			n += (size_t)ksnprintf(busy + n, sizeof(busy) - n, " %s", task_of(sel));
	}
	say("busy TSS descriptors:%s", busy);
}

/* Runs one scenario: the world as reset and adjusted by the caller. */
static void run(const char *title, const void *action)
{
	say("--- %s", title);
	memcpy(&w0, &w, sizeof(w));
	ts_action = a32(action);
	task_run();
	report();
}

/* --- expectations --------------------------------------------------------- */

static const struct snap *find_snap(uint32_t tag, unsigned nth)
{
	for (unsigned n = 0; n < ts_nsnaps && n < 32; n++)
		if (ts_snaps[n].tag == tag && nth-- == 0)
			return &ts_snaps[n];
	return NULL;
}

static bool busy(uint16_t sel) { return desc_type(sel) & 2; }

/* The exception reached handler task i (its vector) through a task gate
 * from task `from`, with error code err pushed (err < 0: none). */
static void expect_handler(unsigned i, uint16_t from, int32_t err)
{
	const struct snap *s = find_snap(4, 0);
	CHECK(s && s->tr == task_sel[i], "handler %s did not run (%u snapshots)", task_name[i], ts_nsnaps);
	if (!s)
		return;
	uint32_t pushed = stack_top(i) - s->esp;
	if (pushed == 4)
		say("%s's error code: %04x", task_name[i], s->top);
	if (err < 0)
		CHECK(pushed == 0, "%u bytes pushed", pushed);
	else
		CHECK(pushed == 4 && s->top == (uint32_t)err, "error code %08x (%u bytes), SDM: %04x", s->top, pushed,
		      (uint32_t)err);
	CHECK(tss(i)->link == from, "back link %04x, SDM: %04x", tss(i)->link, from);
	CHECK((s->eflags & EFL_NT) && (s->cr0 & CR0_TS), "NT/TS: eflags %08x cr0 %08x", s->eflags, s->cr0);
	CHECK(busy(task_sel[i]) && busy(from), "busy bits");
}

/* The switch to task i happened: its registers are those of its TSS. */
static void expect_in(const struct snap *s, unsigned i, uint32_t eflags)
{
	CHECK(s && s->tr == task_sel[i], "not in task %s", task_name[i]);
	if (!s)
		return;
	const struct tss32 *t = &w0.tss[i].t;
	CHECK(s->eax == t->gpr[0] && s->ecx == t->gpr[1] && s->edi == t->gpr[7] && s->esp == t->gpr[4],
	      "registers of %s: eax %08x ecx %08x edi %08x esp %08x", task_name[i], s->eax, s->ecx, s->edi, s->esp);
	CHECK(s->eflags == eflags, "eflags %08x, SDM: %08x", s->eflags, eflags);
	CHECK(s->cr0 & CR0_TS, "CR0.TS clear after a task switch");
}

/* --- scenarios -------------------------------------------------------------- */

TEST(task, jmp_call)
{
	world_reset();
	run("JMP to a 32-bit TSS", act_jmp_a);
	expect_in(find_snap(1, 0), T_A, 2);
	CHECK(!busy(S_MAIN) && busy(S_A) && tss(T_A)->link == LINK_SENTINEL, "busy bits or link after JMP");
	CHECK(tss(T_MAIN)->eip == a32(act_jmp_a) + 7 && tss(T_MAIN)->gpr[0] == 0x11111111 &&
		      tss(T_MAIN)->gpr[4] == a32(ts_main_stack_top) && tss(T_MAIN)->eflags == 2,
	      "main's saved state: eip %08x", tss(T_MAIN)->eip);

	world_reset();
	init_task(T_A, tb_iret);
	run("CALL to a TSS, IRET back", act_call_a);
	expect_in(find_snap(2, 0), T_A, 2 | EFL_NT);
	const struct snap *back = find_snap(20, 0);
	CHECK(back && back->tr == S_MAIN && back->eax == 0x11111111 && back->eflags == 2 && (back->cr0 & CR0_TS),
	      "back in main");
	CHECK(busy(S_MAIN) && !busy(S_A) && tss(T_A)->link == S_MAIN, "busy bits or link after CALL and IRET");
	CHECK(tss(T_A)->eip == a32(tb_iret_resumed) && tss(T_A)->eflags == 2, "A saved: eip %08x eflags %08x",
	      tss(T_A)->eip, tss(T_A)->eflags);

	world_reset();
	run("JMP through a task gate in the GDT", act_jmp_gate);
	expect_in(find_snap(1, 0), T_A, 2);
	CHECK(!busy(S_MAIN) && busy(S_A), "busy bits");

	world_reset();
	init_task(T_A, tb_iret);
	run("CALL through a task gate in the GDT, IRET back", act_call_gate);
	expect_in(find_snap(2, 0), T_A, 2 | EFL_NT);
	CHECK(find_snap(20, 0) && tss(T_A)->link == S_MAIN && !busy(S_A), "back in main");

	world_reset();
	init_task(T_A, tb_iret);
	run("INT 40h through a task gate in the IDT, IRET back", act_int40);
	expect_in(find_snap(2, 0), T_A, 2 | EFL_NT);
	CHECK(tss(T_MAIN)->eip == a32(act_int40) + 2 && find_snap(20, 0) && tss(T_A)->link == S_MAIN,
	      "main saved eip %08x", tss(T_MAIN)->eip);

	world_reset();
	*gdt(S_A) |= 2ull << 40; /* A busy: an IRET may return to it */
	tss(T_MAIN)->link = S_A;
	run("IRET with NT=1 to a busy TSS", act_iret_nt);
	expect_in(find_snap(1, 0), T_A, 2);
	CHECK(!busy(S_MAIN) && busy(S_A) && !(tss(T_MAIN)->eflags & EFL_NT), "IRET: main %x, saved eflags %08x",
	      desc_type(S_MAIN), tss(T_MAIN)->eflags);
}

TEST(task, exceptions)
{
	world_reset();
	run("#GP(1234h) through a task gate (an LDT selector, no LDT): error code pushed", act_gp);
	expect_handler(T_H13, S_MAIN, 0x1234);
	CHECK(tss(T_MAIN)->eip == a32(act_gp_insn) && tss(T_MAIN)->eflags == (2 | EFL_RF),
	      "main saved: eip %08x eflags %08x (fault: RF)", tss(T_MAIN)->eip, tss(T_MAIN)->eflags);

	/* The same fault raised by a hypervisor's emulation (RDMSR of an MSR
	 * that exits): the saved EFLAGS has RF too. */
	world_reset();
	run("#GP(0) of RDMSR 12345678h through a task gate", act_rdmsr);
	expect_handler(T_H13, S_MAIN, 0);
	CHECK(tss(T_MAIN)->eip == a32(act_rdmsr_insn) && tss(T_MAIN)->eflags == (2 | EFL_RF),
	      "main saved: eip %08x eflags %08x (fault: RF)", tss(T_MAIN)->eip, tss(T_MAIN)->eflags);

	world_reset();
	w.idt[6] = task_gate(S_A, 0, true);
	init_task(T_A, tb_fault);
	run("#UD through a task gate: no error code", act_ud);
	const struct snap *s = find_snap(4, 0);
	expect_in(s, T_A, 2 | EFL_NT);
	CHECK(tss(T_A)->link == S_MAIN && tss(T_MAIN)->eip == a32(act_ud), "link %04x", tss(T_A)->link);

	world_reset();
	w.idt[3] = task_gate(S_A, 0, true);
	init_task(T_A, tb_iret);
	run("INT3 through a task gate, IRET back", act_int3);
	expect_in(find_snap(2, 0), T_A, 2 | EFL_NT);
	CHECK(tss(T_MAIN)->eip == a32(act_int3) + 1 && find_snap(20, 0), "main saved eip %08x", tss(T_MAIN)->eip);

	world_reset();
	w.idt[1] = task_gate(S_A, 0, true);
	init_task(T_A, tb_iret);
	run("INT1 (ICEBP) through a task gate, IRET back", act_int1);
	expect_in(find_snap(2, 0), T_A, 2 | EFL_NT);
	CHECK(tss(T_MAIN)->eip == a32(act_int1) + 1 && find_snap(20, 0), "main saved eip %08x", tss(T_MAIN)->eip);

	world_reset();
	w.idt[13] = task_gate(S_H13, 0, false);
	run("#DF through a task gate: #GP meets a not-present gate", act_gp);
	expect_handler(T_H8, S_MAIN, 0);

	world_reset();
	w.idt[13] = task_gate(S_B, 0, true);
	tss(T_B)->ss = 0;
	run("#DF through a task gate: the switch delivering #GP faults (#TS, null SS)", act_gp);
	expect_handler(T_H8, S_B, 0);
	CHECK(tss(T_B)->eip == a32(tb_exit) && tss(T_B)->eflags == (2 | EFL_NT | EFL_RF) && tss(T_B)->ss == 0,
	      "B saved: eip %08x eflags %08x", tss(T_B)->eip, tss(T_B)->eflags);

	world_reset();
	w.idt[13] = task_gate(S_B, 0, true);
	*gdt(S_X1) = seg_desc(a32(w.stack[T_B]), 3, 0x93, 0); /* 16-bit, 4 bytes */
	tss(T_B)->ss = S_X1;
	tss(T_B)->gpr[4] = 0;
	run("#DF through a task gate: pushing #GP's error code faults (#SS)", act_gp);
	expect_handler(T_H8, S_B, 0);
	CHECK(tss(T_B)->gpr[4] == 0 && tss(T_B)->eip == a32(tb_exit), "B saved esp %08x", tss(T_B)->gpr[4]);

	/* The new task's stack an expand-down segment (32-bit, limit FFFh:
	 * offsets 1000h and up): the error code goes below ESP. */
	world_reset();
	w.idt[13] = task_gate(S_B, 0, true);
	init_task(T_B, tb_fault);
	*gdt(S_X1) = seg_desc(0, 0xfff, 0x96, 0x4);
	tss(T_B)->ss = S_X1;
	run("#GP(1234h) through a task gate to a task whose stack is expand-down", act_gp);
	expect_handler(T_B, S_MAIN, 0x1234);

	/* ... and an ESP that puts the error code at the limit: #SS, #DF. */
	world_reset();
	w.idt[13] = task_gate(S_B, 0, true);
	*gdt(S_X1) = seg_desc(0, 0xfff, 0x96, 0x4);
	tss(T_B)->ss = S_X1;
	tss(T_B)->gpr[4] = 0x1002;
	run("#DF through a task gate: #GP's error code below an expand-down stack's limit (#SS)", act_gp);
	expect_handler(T_H8, S_B, 0);
	CHECK(tss(T_B)->gpr[4] == 0x1002 && tss(T_B)->eip == a32(tb_exit), "B saved esp %08x", tss(T_B)->gpr[4]);
}

/* Faults of the switch before its commit point (most are checked by the
 * CPU before a VM exit): the old task is where the exception happens. */
TEST(task, tss_checks)
{
	world_reset();
	*gdt(S_A) |= 2ull << 40;
	run("JMP to a busy TSS: #GP", act_jmp_a);
	expect_handler(T_H13, S_MAIN, S_A);
	CHECK(tss(T_A)->eip == w0.tss[T_A].t.eip, "A changed");

	world_reset();
	*gdt(S_A) |= 2ull << 40;
	run("CALL to a busy TSS: #GP", act_call_a);
	expect_handler(T_H13, S_MAIN, S_A);

	world_reset();
	*gdt(S_A) = seg_desc(a32(tss(T_A)), 0x66, 0x89, 0);
	run("JMP to a TSS with limit 66h: #TS", act_jmp_a);
	expect_handler(T_H10, S_MAIN, S_A);

	world_reset();
	*gdt(S_T16) = seg_desc(a32(&w.t16), 0x2a, 0x81, 0);
	run("CALL to a 16-bit TSS with limit 2Ah: #TS", act_call_t16);
	expect_handler(T_H10, S_MAIN, S_T16);

	world_reset();
	*gdt(S_A) &= ~(0x80ull << 40);
	run("JMP to a TSS not present: #NP", act_jmp_a);
	expect_handler(T_H11, S_MAIN, S_A);

	world_reset();
	*gdt(S_GATE) = task_gate(S_A, 0, false);
	run("JMP through a task gate not present: #NP", act_jmp_gate);
	expect_handler(T_H11, S_MAIN, S_GATE);

	world_reset();
	*gdt(S_GATE) = task_gate(S_A | 4, 0, true);
	run("CALL through a task gate to a TSS selector with TI=1: #GP", act_call_gate);
	expect_handler(T_H13, S_MAIN, S_A | 4);

	world_reset();
	*gdt(S_GATE) = task_gate(S_DATA, 0, true);
	run("JMP through a task gate to a data segment: #GP", act_jmp_gate);
	expect_handler(T_H13, S_MAIN, S_DATA);

	world_reset();
	run("INT 41h through a task gate not present: #NP", act_int41);
	expect_handler(T_H11, S_MAIN, 0x41 * 8 + 2);

	world_reset();
	tss(T_MAIN)->link = S_A;
	run("IRET with NT=1 to an available TSS: #TS", act_iret_nt);
	expect_handler(T_H10, S_MAIN, S_A);
	CHECK(tss(T_MAIN)->eip == a32(act_iret_nt_insn), "main saved eip %08x", tss(T_MAIN)->eip);

	/* The old TSS must hold what is saved: a #TS delivered through an
	 * interrupt gate (a task gate would meet the same limit). */
	world_reset();
	*gdt(S_MAIN) = seg_desc(a32(tss(T_MAIN)), 0x5e, 0x89, 0);
	w.idt[10] = int_gate(a32(ts_stubs) + 16 * 10, 0);
	run("JMP from a task whose TSS limit is 5Eh: #TS", act_jmp_a);
	CHECK(ts_fault.hit && ts_fault.vec == 10 && ts_fault.err == S_MAIN && ts_fault.tr == S_MAIN &&
		      ts_fault.eip == a32(act_jmp_a),
	      "wanted #TS(%04x) in main", S_MAIN);
	CHECK(busy(S_MAIN) && !busy(S_A), "busy bits");
}

/* A TSS descriptor's limit is scaled by its G flag as any segment's (SDM
 * 3.4.5, 7.2.2): G=1 with a limit field of 0 is a limit of FFFh, above the
 * 67h (2Bh for a 16-bit TSS) the switch requires (SDM 7.3 step 4). */
TEST(task, tss_granular)
{
	world_reset();
	*gdt(S_A) = seg_desc(a32(tss(T_A)), 0, 0x89, 0x8);
	run("JMP to a 32-bit TSS whose descriptor has G=1 and limit field 0 (limit FFFh)", act_jmp_a);
	expect_in(find_snap(1, 0), T_A, 2);
	CHECK(!busy(S_MAIN) && busy(S_A) && (*gdt(S_A) >> 52 & 0x8), "busy bits, G kept");

	world_reset();
	*gdt(S_T16) = seg_desc(a32(&w.t16), 0, 0x81, 0x8);
	run("CALL to a 16-bit TSS whose descriptor has G=1 and limit field 0 (limit FFFh), IRET back",
	    act_call_t16);
	say("T16 ran: tr %02x ax %04x di %04x flags %04x; T16 TSS: link %04x ip %04x", ts16_rec.tr, ts16_rec.gpr[0],
	    ts16_rec.gpr[7], ts16_rec.flags, w.t16.link, w.t16.ip);
	CHECK(ts16_rec.tr == S_T16 && ts16_rec.gpr[0] == 0x1600 && ts16_rec.flags == (2 | EFL_NT) &&
		      w.t16.link == S_MAIN && desc_type(S_T16) == 1 && find_snap(20, 0),
	      "the 16-bit task ran and returned");
}

/* Low memory for a virtual-8086 task (the modes suite uses it too). */
#define V86_CODE 0x9000
#define V86_STACK 0xa000

static bool low_memory_free(void)
{
	for (unsigned i = 0; i < boot_info.n_mmap; i++) {
		const struct mb2_mmap_entry *e = &boot_info.mmap[i];
		if (e->type == MB2_MEM_AVAILABLE && e->base <= V86_CODE && e->base + e->len >= V86_STACK + 0x1000)
			return true;
	}
	return false;
}

/* Faults after the commit point: in the new task's context (B, entered by
 * CALL), which is busy and linked to main; the handler links back to B. */
static void new_state_case(const char *title, unsigned handler, int32_t err)
{
	run(title, act_call_b);
	expect_handler(handler, S_B, err);
	CHECK(busy(S_MAIN) && tss(T_B)->link == S_MAIN, "B not entered");
	CHECK(tss(T_B)->eip == w0.tss[T_B].t.eip && tss(T_B)->eflags == (w0.tss[T_B].t.eflags | EFL_NT | EFL_RF) &&
		      tss(T_B)->gpr[0] == w0.tss[T_B].t.gpr[0] && tss(T_B)->cs == w0.tss[T_B].t.cs &&
		      tss(T_B)->ss == w0.tss[T_B].t.ss && tss(T_B)->gs == w0.tss[T_B].t.gs,
	      "B's state saved by the handler's switch: eip %08x eflags %08x", tss(T_B)->eip, tss(T_B)->eflags);
}

TEST(task, new_task_state)
{
	world_reset();
	tss(T_B)->ldt = S_LDT | 4;
	new_state_case("new LDT selector with TI=1: #TS", T_H10, S_LDT | 4);

	world_reset();
	tss(T_B)->ldt = S_DATA;
	new_state_case("new LDT selector to a data segment: #TS", T_H10, S_DATA);

	world_reset();
	*gdt(S_LDT) &= ~(0x80ull << 40);
	tss(T_B)->ldt = S_LDT;
	new_state_case("new LDT not present: #TS", T_H10, S_LDT);

	world_reset();
	tss(T_B)->ss = 0;
	new_state_case("new SS null: #TS", T_H10, 0);

	world_reset();
	*gdt(S_X1) = seg_desc(0, 0xfffff, 0x90, 0xc); /* read-only data */
	tss(T_B)->ss = S_X1;
	new_state_case("new SS read-only: #TS", T_H10, S_X1);

	world_reset();
	*gdt(S_X1) = flat_data(0) & ~(0x80ull << 40);
	tss(T_B)->ss = S_X1;
	new_state_case("new SS not present: #SS", T_H12, S_X1);

	world_reset();
	tss(T_B)->ss = S_UDATA;
	new_state_case("new SS with DPL 3, CS RPL 0: #TS", T_H10, S_UDATA & ~3);

	world_reset();
	*gdt(S_X1) = flat_data(0) & ~(0x80ull << 40);
	tss(T_B)->ds = S_X1;
	new_state_case("new DS not present: #NP", T_H11, S_X1);

	world_reset();
	*gdt(S_X1) = seg_desc(0, 0xfffff, 0x98, 0xc); /* execute-only code */
	tss(T_B)->es = S_X1;
	new_state_case("new ES execute-only code: #TS", T_H10, S_X1);

	world_reset();
	tss(T_B)->gs = 0x1f8;
	new_state_case("new GS beyond the GDT limit: #TS", T_H10, 0x1f8);

	world_reset();
	tss(T_B)->cs = S_UCODE | 3;
	tss(T_B)->ss = tss(T_B)->ds = S_UDATA;
	tss(T_B)->es = S_DATA;
	new_state_case("new ES with DPL 0 in a CPL-3 task: #TS", T_H10, S_DATA);

	world_reset();
	tss(T_B)->cs = 0;
	new_state_case("new CS null: #TS", T_H10, 0);

	world_reset();
	tss(T_B)->cs = S_DATA;
	new_state_case("new CS a data segment: #TS", T_H10, S_DATA);

	world_reset();
	*gdt(S_X1) = flat_code(0) & ~(0x80ull << 40);
	tss(T_B)->cs = S_X1;
	new_state_case("new CS not present: #NP", T_H11, S_X1);

	world_reset();
	tss(T_B)->cs = S_CODE32 | 3;
	tss(T_B)->ss = S_UDATA;
	tss(T_B)->ds = tss(T_B)->es = tss(T_B)->fs = tss(T_B)->gs = 0;
	new_state_case("new CS non-conforming DPL 0 with RPL 3: #TS", T_H10, S_CODE32);

	/* A conforming code segment: as CS its DPL may not exceed the RPL;
	 * readable, in a data-segment register its DPL is not checked. */
	world_reset();
	*gdt(S_X1) = seg_desc(0, 0xfffff, 0x9e | 3 << 5, 0xc); /* conforming readable code, DPL 3 */
	tss(T_B)->cs = S_X1;
	new_state_case("new CS conforming, DPL 3 above RPL 0: #TS", T_H10, S_X1);

	world_reset();
	init_task(T_B, tb_iret);
	*gdt(S_X1) = seg_desc(0, 0xfffff, 0x9e, 0xc); /* conforming readable code, DPL 0 */
	tss(T_B)->ds = S_X1 | 3;
	tss(T_B)->fs = S_X1;
	run("new DS and FS conforming readable code (RPL 3 and 0)", act_call_b);
	const struct snap *sc = find_snap(2, 0);
	expect_in(sc, T_B, 2 | EFL_NT);
	CHECK(sc && sc->ds == (S_X1 | 3u) && sc->fs == S_X1, "DS %x FS %x", sc ? sc->ds : 0, sc ? sc->fs : 0);

	world_reset();
	*gdt(S_X1) = seg_desc(0, 0xfff, 0x9a, 0x4); /* 32-bit code, limit fffh */
	tss(T_B)->cs = S_X1;
	tss(T_B)->eip = 0x2000;
	new_state_case("new EIP beyond the CS limit: #GP(0)", T_H13, 0);

	/* Virtual-8086 mode: a 32-bit TSS with EFLAGS.VM; INT n at IOPL 0 is
	 * #GP(0), whose task gate saves the virtual-8086 state. */
	if (low_memory_free()) {
		world_reset();
		static const uint8_t v86_code[] = { 0x40, 0xcd, 0x30 }; /* inc %ax; int $0x30 */
		memcpy((void *)(uintptr_t)V86_CODE, v86_code, sizeof(v86_code));
		struct tss32 *b = tss(T_B);
		b->eflags = 0x20002;
		b->eip = 0;
		b->cs = V86_CODE >> 4;
		b->ss = V86_STACK >> 4;
		b->gpr[4] = 0x100;
		b->ds = 0x0b00, b->es = 0x0c00, b->fs = 0x0d00, b->gs = 0x0e00;
		run("CALL to a virtual-8086 task; its INT 30h at IOPL 0: #GP", act_call_b);
		expect_handler(T_H13, S_B, 0);
		CHECK(b->eflags == (0x20002 | EFL_NT | EFL_RF) && b->eip == 1 && b->gpr[0] == 0xa2000001 &&
			      b->cs == V86_CODE >> 4 && b->gs == 0x0e00 && b->gpr[4] == 0x100,
		      "B saved: eflags %08x eip %08x", b->eflags, b->eip);
	} else {
		env("[%x, %x) is not free RAM: no virtual-8086 task", V86_CODE, V86_STACK);
	}

	world_reset();
	init_task(T_B, tb_iret);
	tss(T_B)->ldt = S_LDT;
	tss(T_B)->cs = 0x0c;
	tss(T_B)->ss = tss(T_B)->ds = tss(T_B)->es = 0x04;
	run("new task with its LDT: CS, SS, DS, ES from the LDT", act_call_b);
	const struct snap *s = find_snap(2, 0);
	expect_in(s, T_B, 2 | EFL_NT);
	CHECK(s && s->ldtr == S_LDT && s->cs == 0x0c && s->ss == 0x04, "LDT segments");
	say("LDT access bytes after: %02x %02x", (unsigned)(w.ldt[0] >> 40) & 0xff, (unsigned)(w.ldt[1] >> 40) & 0xff);
	CHECK((w.ldt[0] >> 40 & 1) && (w.ldt[1] >> 40 & 1), "accessed bits of the LDT descriptors");
}

/* More forms of a bad CS in the new TSS, checked after the commit point
 * (SDM table 7-1: the CS selector is within its descriptor table's limit
 * and refers to a code segment, else #TS(CS)). */
TEST(task, new_cs)
{
	world_reset();
	tss(T_B)->cs = S_A;
	new_state_case("new CS a TSS descriptor (a system segment): #TS", T_H10, S_A);

	world_reset();
	tss(T_B)->cs = 0x1f8;
	new_state_case("new CS beyond the GDT limit: #TS", T_H10, 0x1f8);

	world_reset();
	tss(T_B)->cs = 0x0c;
	new_state_case("new CS in the LDT of a task that has none: #TS", T_H10, 0x0c);
}

TEST(task, tss16)
{
	world_reset();
	run("CALL to a 16-bit TSS, IRET back", act_call_t16);
	const struct tss16 *t = &w.t16;
	say("T16 ran: ax %04x cx %04x dx %04x bx %04x sp %04x bp %04x si %04x di %04x flags %04x", ts16_rec.gpr[0],
	    ts16_rec.gpr[1], ts16_rec.gpr[2], ts16_rec.gpr[3], ts16_rec.gpr[4], ts16_rec.gpr[5], ts16_rec.gpr[6],
	    ts16_rec.gpr[7], ts16_rec.flags);
	say("  cs %02x ss %02x ds %02x es %02x fs %02x gs %02x tr %02x cr0.ts %u", ts16_rec.cs, ts16_rec.ss,
	    ts16_rec.ds, ts16_rec.es, ts16_rec.fs, ts16_rec.gs, ts16_rec.tr, (ts16_rec.cr0 >> 3) & 1);
	say("T16 TSS: link %04x ip %04x flags %04x ax %04x sp %04x di %04x es %02x cs %02x ss %02x ds %02x", t->link,
	    t->ip, t->flags, t->gpr[0], t->gpr[4], t->gpr[7], t->es, t->cs, t->ss, t->ds);
	CHECK(ts16_rec.tr == S_T16 && ts16_rec.gpr[0] == 0x1600 && ts16_rec.gpr[7] == 0x1670 &&
		      ts16_rec.flags == (2 | EFL_NT) && ts16_rec.fs == 0 && ts16_rec.gs == 0 && ts16_rec.cs == S_CODE16,
	      "the 16-bit task's state");
	CHECK(t->link == S_MAIN && t->ip == a32(ts16_iret) - a32(ts16_code) + 1 && t->flags == 2 &&
		      desc_type(S_T16) == 1 && busy(S_MAIN),
	      "after IRET: link %04x ip %04x flags %04x type %x", t->link, t->ip, t->flags, desc_type(S_T16));
	const struct snap *s = find_snap(20, 0);
	CHECK(s && s->tr == S_MAIN && s->eax == 0x11111111 && s->edi == 0x77777777, "main's registers");
}

/* An exception with an error code through a task gate to a 16-bit TSS:
 * the error code is pushed as a word on the new task's stack (SDM 6.13,
 * 7.6).  The 16-bit task then JMPs to A, which saves its state in its
 * 16-bit TSS and leaves it available (SDM 7.3 steps 6, 7). */
TEST(task, tss16_error_code)
{
	world_reset();
	w.idt[13] = task_gate(S_T16, 0, true);
	w.t16.ip = (uint16_t)(a32(ts16_handler) - a32(ts16_code));
	run("#GP(1234h) through a task gate to a 16-bit TSS, then JMP to A", act_gp);
	const uint16_t *top = (const uint16_t *)(w.stack[ST_T16] + sizeof(w.stack[ST_T16]));
	say("T16 ran: tr %02x sp %04x flags %04x; word on its stack %04x; T16 TSS: link %04x ip +%u sp %04x flags %04x",
	    ts16_rec.tr, ts16_rec.gpr[4], ts16_rec.flags, top[-1], w.t16.link, w.t16.ip - w0.t16.ip, w.t16.gpr[4],
	    w.t16.flags);
	CHECK(ts16_rec.tr == S_T16 && ts16_rec.gpr[4] == sizeof(w.stack[ST_T16]) - 2 && top[-1] == 0x1234 &&
		      ts16_rec.flags == (2 | EFL_NT),
	      "error code: a word");
	CHECK(w.t16.link == S_MAIN && w.t16.gpr[4] == sizeof(w.stack[ST_T16]) - 2 && w.t16.flags == (2 | EFL_NT) &&
		      !busy(S_T16) && busy(S_MAIN) && busy(S_A),
	      "T16 saved by its JMP");
	expect_in(find_snap(1, 0), T_A, 2);
	CHECK(tss(T_MAIN)->eip == a32(act_gp_insn) && tss(T_MAIN)->eflags == (2 | EFL_RF),
	      "main saved: eip %08x eflags %08x (fault: RF)", tss(T_MAIN)->eip, tss(T_MAIN)->eflags);
}

/* Offsets in the 16-bit code segment based at ts16_code. */
static uint32_t off16(const char *p) { return a32(p) - a32(ts16_code); }

/* Switches from a 16-bit code segment (the first task's TSS is 32-bit):
 * the EIP saved is the offset of the instruction after the CALL, JMP or
 * INT n (SDM 7.3 step 6, 7.4), CS the 16-bit code segment. */
TEST(task, code16)
{
	world_reset();
	init_task(T_A, tb_iret);
	run("CALL to a TSS from 16-bit code, IRET back to it", act_code16_call);
	expect_in(find_snap(2, 0), T_A, 2 | EFL_NT);
	say("main saved eip %08x (ts16_main_call+%u) cs %02x", tss(T_MAIN)->eip,
	    tss(T_MAIN)->eip - off16(ts16_main_call), tss(T_MAIN)->cs);
	const struct snap *back = find_snap(20, 0);
	CHECK(tss(T_MAIN)->eip == off16(ts16_main_call) + 5 && tss(T_MAIN)->cs == S_CODE16 && back &&
		      back->tr == S_MAIN && back->eax == 0x11111111 && !busy(S_A),
	      "main saved eip %08x cs %02x", tss(T_MAIN)->eip, tss(T_MAIN)->cs);

	world_reset();
	init_task(T_A, tb_iret);
	run("INT 40h through a task gate from 16-bit code, IRET back to it", act_code16_int);
	expect_in(find_snap(2, 0), T_A, 2 | EFL_NT);
	say("main saved eip %08x (ts16_main_int+%u) cs %02x", tss(T_MAIN)->eip,
	    tss(T_MAIN)->eip - off16(ts16_main_int), tss(T_MAIN)->cs);
	CHECK(tss(T_MAIN)->eip == off16(ts16_main_int) + 2 && tss(T_MAIN)->cs == S_CODE16 && find_snap(20, 0),
	      "main saved eip %08x cs %02x", tss(T_MAIN)->eip, tss(T_MAIN)->cs);
}

/* A JMP that ends at offset FFFFh of a 16-bit code segment: the next
 * instruction's offset is 10000h.  Offsets do not wrap at 64 KiB since the
 * 8086 (SDM Vol. 3, Architecture Compatibility, "Segment Wraparound": an
 * access past the limit faults), and the EIP saved in the 32-bit TSS is
 * 10000h (Bochs; the SDM's step 6 saves "EIP" unmasked). */
TEST(task, code16_wrap)
{
	world_reset();
	*gdt(S_CODE16W) = seg_desc(a32(ts16_wrap) - 0xfffb, 0xffff, 0x9a, 0);
	run("JMP to a TSS from 16-bit code at offset FFFBh: the next IP is 10000h", act_code16_wrap);
	expect_in(find_snap(1, 0), T_A, 2);
	say("main saved eip %08x cs %02x", tss(T_MAIN)->eip, tss(T_MAIN)->cs);
	CHECK(tss(T_MAIN)->eip == 0x10000 && tss(T_MAIN)->cs == S_CODE16W, "main saved eip %08x cs %02x",
	      tss(T_MAIN)->eip, tss(T_MAIN)->cs);
}

/* A CPL-0 task switches to a task whose CS selector has RPL 3 and which
 * faults before its SS is loaded (its LDT, its SS): #TS in its context. */
TEST(task, new_cpl3_faults)
{
	world_reset();
	tss(T_B)->cs = S_UCODE | 3;
	tss(T_B)->ss = tss(T_B)->ds = tss(T_B)->es = S_UDATA;
	tss(T_B)->fs = tss(T_B)->gs = 0;
	tss(T_B)->ldt = S_DATA;
	new_state_case("new task at CPL 3, its LDT selector a data segment: #TS", T_H10, S_DATA);

	world_reset();
	tss(T_B)->cs = S_UCODE | 3;
	tss(T_B)->ss = 0;
	tss(T_B)->ds = tss(T_B)->es = S_UDATA;
	tss(T_B)->fs = tss(T_B)->gs = 0;
	new_state_case("new task at CPL 3, its SS null: #TS", T_H10, 0);
}

/* --- CR3 loads ------------------------------------------------------------ */

#define SIG1 0x51515151u
#define SIG2 0x52525252u
static uint32_t pd1[1024] __attribute__((aligned(4096))), pd2[1024] __attribute__((aligned(4096)));
static uint32_t pt1[1024] __attribute__((aligned(4096))), pt2[1024] __attribute__((aligned(4096)));
static uint64_t pdpt1[4] __attribute__((aligned(32))), pdpt2[4] __attribute__((aligned(32)));
static uint64_t pdA[512] __attribute__((aligned(4096))), pdB1[512] __attribute__((aligned(4096)));
static uint64_t pdB2[512] __attribute__((aligned(4096))), ptB1[512] __attribute__((aligned(4096)));
static uint64_t ptB2[512] __attribute__((aligned(4096)));
static uint32_t page1[1024] __attribute__((aligned(4096))), page2[1024] __attribute__((aligned(4096)));

/* Linear 0 - 1 GiB is the identity; linear 0x40000000 is page1 under the
 * first tables, page2 under the second. */
static void build_paging(void)
{
	page1[0] = SIG1;
	page2[0] = SIG2;
	for (unsigned i = 0; i < 256; i++)
		pd1[i] = pd2[i] = i << 22 | 0x83; /* 4 MiB, W, P */
	pd1[256] = a32(pt1) | 3;
	pd2[256] = a32(pt2) | 3;
	pt1[0] = a32(page1) | 3;
	pt2[0] = a32(page2) | 3;
	for (unsigned i = 0; i < 512; i++)
		pdA[i] = (uint64_t)i << 21 | 0x83; /* 2 MiB, W, P */
	pdB1[0] = a32(ptB1) | 3;
	pdB2[0] = a32(ptB2) | 3;
	ptB1[0] = a32(page1) | 3;
	ptB2[0] = a32(page2) | 3;
	pdpt1[0] = pdpt2[0] = a32(pdA) | 1;
	pdpt1[1] = a32(pdB1) | 1;
	pdpt2[1] = a32(pdB2) | 1;
}

static void paging_case(const char *title, uint32_t cr4, uint32_t cr3_main, uint32_t cr3_a)
{
	world_reset();
	init_task(T_A, tb_paging);
	tss(T_MAIN)->cr3 = cr3_main; /* CR3 is not saved: IRET loads this */
	tss(T_A)->cr3 = cr3_a;
	ts_pg_cr4 = cr4;
	ts_pg_cr3 = cr3_main;
	run(title, act_paging);
	const struct snap *m = find_snap(21, 0), *a = find_snap(8, 0), *back = find_snap(22, 0);
	if (m && a && back)
		say("[40000000]: main %08x, A %08x, main again %08x; CR3 is main's %s, A's %s, main's %s", m->eax,
		    a->eax, back->eax, m->cr3 == cr3_main ? "yes" : "NO", a->cr3 == cr3_a ? "yes" : "NO",
		    back->cr3 == cr3_main ? "yes" : "NO");
	CHECK(m && a && back && m->eax == SIG1 && a->eax == SIG2 && back->eax == SIG1 && a->cr3 == cr3_a &&
		      back->cr3 == cr3_main,
	      "CR3 loads by task switches");
	CHECK(pdpt2[1] == (a32(pdB2) | 1), "PDPTEs changed");
}

TEST(task, paging)
{
	build_paging();
	uint32_t cr4 = (uint32_t)read_cr4() & ~(uint32_t)(CR4_PAE | CR4_PGE);
	paging_case("CALL to a task with another CR3 (32-bit paging), IRET back", cr4 | CR4_PSE, a32(pd1), a32(pd2));
	paging_case("CALL to a task with another CR3 (PAE paging: PDPTEs), IRET back", cr4 | CR4_PAE, a32(pdpt1),
		    a32(pdpt2));

	/* The new TSS on a page not present: #PF (after the VM exit on Bochs,
	 * an order the SDM leaves to the implementation, 25.4.2). */
	world_reset();
	for (unsigned i = 0; i < NTASKS; i++)
		tss(i)->cr3 = a32(pd1); /* the handler's switch loads it too */
	ts_pg_cr4 = cr4 | CR4_PSE;
	ts_pg_cr3 = a32(pd1);
	*gdt(S_A) = seg_desc(0x40001000, 0x67, 0x89, 0);
	ts_cr2 = 0;
	run("CALL to a TSS on a page not present: #PF", act_paging);
	say("CR2 %08x", ts_cr2);
	expect_handler(T_H14, S_MAIN, 0);
	CHECK(ts_cr2 == 0x40001000 && !busy(S_A), "CR2 %08x", ts_cr2);
}

/* The suite's 32-bit paging (pd1: linear 0 - 1 GiB the identity,
 * 0x40000000 page1, 0x40001000 and up not present) for every task, and the
 * action `then` once paging is on (and CR0.WP set). */
static void paging_world(const void *then)
{
	build_paging();
	world_reset();
	for (unsigned i = 0; i < NTASKS; i++)
		tss(i)->cr3 = a32(pd1);
	ts_pg_cr4 = ((uint32_t)read_cr4() & ~(uint32_t)(CR4_PAE | CR4_PGE)) | CR4_PSE;
	ts_pg_cr3 = a32(pd1);
	ts_action2 = a32(then);
	ts_cr2 = 0;
}

/* A 16-bit TSS has no CR3 (SDM 7.6): the 16-bit task runs under the CR3
 * of the task that called it, and a switch from it checks its TSS's pages
 * as any (SDM 7.3 step 5). */
TEST(task, tss16_paging)
{
	paging_world(act_call_t16);
	run("paging on: CALL to a 16-bit TSS, IRET back", act_paging_then);
	say("T16 ran: tr %02x ax %04x flags %04x cr0.pg %u; T16 TSS: link %04x ip %04x", ts16_rec.tr,
	    ts16_rec.gpr[0], ts16_rec.flags, ts16_rec.cr0 >> 31, w.t16.link, w.t16.ip);
	const struct snap *back = find_snap(20, 0);
	CHECK(ts16_rec.tr == S_T16 && ts16_rec.flags == (2 | EFL_NT) && (ts16_rec.cr0 & CR0_PG) &&
		      w.t16.link == S_MAIN && w.t16.ip == a32(ts16_iret) - a32(ts16_code) + 1 && desc_type(S_T16) == 1,
	      "the 16-bit task under paging");
	CHECK(back && back->tr == S_MAIN && back->cr3 == a32(pd1) && back->eax == 0x11111111, "back in main");
}

/* A hardware exception through a task gate whose switch faults: the fault
 * combines with the exception being delivered (SDM 6.15 table 6-5). */
TEST(task, exception_switch_faults)
{
	/* Contributory (#GP), then a page fault: handled serially, the #PF
	 * goes through its own gate; CR2 is the new TSS's address. */
	paging_world(act_gp);
	*gdt(S_H13) = seg_desc(0x40001000, 0x67, 0x89, 0);
	run("#GP through a task gate to a TSS on a page not present: #PF", act_paging_then);
	say("CR2 %08x", ts_cr2);
	expect_handler(T_H14, S_MAIN, 0);
	CHECK(ts_cr2 == 0x40001000 && !busy(S_H13), "CR2 %08x", ts_cr2);
	CHECK(tss(T_MAIN)->eip == a32(act_gp_insn) && tss(T_MAIN)->eflags == (2 | EFL_RF),
	      "main saved: eip %08x eflags %08x (fault: RF)", tss(T_MAIN)->eip, tss(T_MAIN)->eflags);

	/* A page fault, then a page fault: #DF, CR2 the second's address. */
	paging_world(act_pf);
	*gdt(S_H14) = seg_desc(0x40001000, 0x67, 0x89, 0);
	run("#PF through a task gate to a TSS on a page not present: #DF", act_paging_then);
	say("CR2 %08x", ts_cr2);
	expect_handler(T_H8, S_MAIN, 0);
	CHECK(ts_cr2 == 0x40001000 && !busy(S_H14), "CR2 %08x", ts_cr2);
	CHECK(tss(T_MAIN)->eip == a32(act_pf) && tss(T_MAIN)->eflags == (2 | EFL_RF),
	      "main saved: eip %08x eflags %08x (fault: RF)", tss(T_MAIN)->eip, tss(T_MAIN)->eflags);

	/* A page fault, then a contributory fault after the commit point
	 * (#TS, a null SS): #DF in the new task's context. */
	paging_world(act_pf);
	w.idt[14] = task_gate(S_B, 0, true);
	tss(T_B)->ss = 0;
	run("#PF through a task gate to a task with a null SS: #TS, #DF", act_paging_then);
	say("CR2 %08x", ts_cr2);
	expect_handler(T_H8, S_B, 0);
	CHECK(ts_cr2 == 0x40002000 && tss(T_B)->eip == a32(tb_exit) && tss(T_B)->eflags == (2 | EFL_NT | EFL_RF),
	      "CR2 %08x, B saved: eip %08x eflags %08x", ts_cr2, tss(T_B)->eip, tss(T_B)->eflags);
}

/* The new task's LDT, after the commit point: its descriptor's limit is
 * scaled by G (SDM 3.4.5), and the descriptors read from it are read in
 * the new task's context, where a page fault is raised (SDM 7.3 step 12,
 * table 7-1). */
TEST(task, new_task_ldt)
{
	world_reset();
	init_task(T_B, tb_iret);
	*gdt(S_LDT) = seg_desc(a32(w.ldt), 0, 0x82, 0x8); /* limit field 0, G=1: FFFh */
	tss(T_B)->ldt = S_LDT;
	tss(T_B)->cs = 0x0c;
	tss(T_B)->ss = tss(T_B)->ds = tss(T_B)->es = 0x04;
	run("new task with its LDT, whose descriptor has G=1 and limit field 0: CS, SS, DS, ES from it", act_call_b);
	const struct snap *s = find_snap(2, 0);
	expect_in(s, T_B, 2 | EFL_NT);
	CHECK(s && s->ldtr == S_LDT && s->cs == 0x0c && s->ss == 0x04 && s->ds == 0x04 && find_snap(20, 0),
	      "LDT segments");

	/* The LDT on a page not present: DS from it, then CS from it. */
	static const struct {
		const char *title;
		uint16_t ds, cs;
		uint32_t cr2;
	} pf[] = {
		{ "new task's DS from an LDT on a page not present: #PF", 0x04, S_CODE32, 0x40001000 },
		{ "new task's CS from an LDT on a page not present: #PF", S_DATA, 0x0c, 0x40001008 },
	};
	for (unsigned i = 0; i < sizeof(pf) / sizeof(pf[0]); i++) {
		paging_world(act_call_b);
		*gdt(S_LDT) = seg_desc(0x40001000, 0xf, 0x82, 0);
		tss(T_B)->ldt = S_LDT;
		tss(T_B)->ds = pf[i].ds;
		tss(T_B)->cs = pf[i].cs;
		run(pf[i].title, act_paging_then);
		say("CR2 %08x", ts_cr2);
		expect_handler(T_H14, S_B, 0);
		CHECK(ts_cr2 == pf[i].cr2 && tss(T_B)->link == S_MAIN && tss(T_B)->ldt == S_LDT &&
			      tss(T_B)->cs == pf[i].cs && tss(T_B)->ds == pf[i].ds && tss(T_B)->eip == a32(tb_exit) &&
			      tss(T_B)->eflags == (2 | EFL_NT | EFL_RF),
		      "CR2 %08x, B saved: eip %08x eflags %08x", ts_cr2, tss(T_B)->eip, tss(T_B)->eflags);
	}
}

/* A TSS on a read-only page (CR0.WP = 1): CALL and exceptions write the
 * new TSS's back link, so the switch checks the page for a write before
 * anything changes (SDM 7.3 step 5): #PF(P|W); JMP does not write the new
 * TSS and switches. */
TEST(task, tss_read_only)
{
	/* A's TSS seen through linear 0x40002000 (two read-only pages). */
	uint32_t page = a32(tss(T_A)) & ~0xfffu, ro = 0x40002000 + (a32(tss(T_A)) & 0xfff);
	static const struct {
		const char *title;
		const void *action;
	} c[] = {
		{ "CALL to a TSS on a read-only page: #PF", act_call_a },
		{ "JMP to a TSS on a read-only page", act_jmp_a },
	};
	for (unsigned i = 0; i < 2; i++) {
		paging_world(c[i].action);
		pt1[2] = page | 1;
		pt1[3] = (page + 0x1000) | 1;
		*gdt(S_A) = seg_desc(ro, 0x67, 0x89, 0);
		run(c[i].title, act_paging_then);
		if (i == 0) {
			say("CR2 at the TSS%s", ts_cr2 == ro ? "" : " - NOT");
			expect_handler(T_H14, S_MAIN, 3);
			CHECK(ts_cr2 == ro && !busy(S_A) && tss(T_A)->link == LINK_SENTINEL, "CR2 %08x, A untouched", ts_cr2);
		} else {
			expect_in(find_snap(1, 0), T_A, 2);
			CHECK(busy(S_A) && !busy(S_MAIN) && tss(T_A)->link == LINK_SENTINEL, "busy bits, A's link");
		}
	}
	pt1[2] = pt1[3] = 0;
}

/* A 16-bit TSS across the end of a page of RAM into guest-physical memory
 * that does not exist (PAE paging maps the next linear page far above
 * RAM): its SS, DS and LDT selectors read all ones, as memory nothing
 * decodes does on a PC, and writes there are dropped.  The LDT selector
 * FFFFh has TI=1: #TS(FFFCh) in the new task's context (SDM table 7-1),
 * whose handler's switch saves the 16-bit task (SDM 7.3 step 6): the part
 * in RAM keeps it. */
TEST(task, tss_nonexistent)
{
	uint64_t nowhere = 0x400000000ull; /* 16 GiB */
	if (hx_maxphyaddr() <= 34 || hx_ram_end() + (4ull << 30) > nowhere) {
		env("no room for memory that does not exist below MAXPHYADDR: not tested");
		return;
	}
	build_paging();
	ptB1[1] = nowhere | 3; /* linear 0x40001000 */
	world_reset();
	for (unsigned i = 0; i < NTASKS; i++)
		tss(i)->cr3 = a32(pdpt1);
	ts_pg_cr4 = ((uint32_t)read_cr4() & ~(uint32_t)(CR4_PSE | CR4_PGE)) | CR4_PAE;
	ts_pg_cr3 = a32(pdpt1);
	ts_action2 = a32(act_call_t16);
	/* Offsets 0-37 (up to CS) at the end of page1 (linear 0x40000000). */
	uint8_t *ram = (uint8_t *)page1 + 4096 - 38;
	memcpy(ram, &w.t16, 38);
	*gdt(S_T16) = seg_desc(0x40001000 - 38, 0x2b, 0x81, 0);
	run("CALL to a 16-bit TSS whose SS, DS, LDT are in memory that does not exist: #TS(FFFCh)", act_paging_then);
	expect_handler(T_H10, S_T16, 0xfffc);
	struct tss16 t = { 0 };
	memcpy(&t, ram, 38);
	say("T16 TSS in RAM: link %04x ip %04x flags %04x ax %04x sp %04x di %04x es %02x cs %02x", t.link, t.ip,
	    t.flags, t.gpr[0], t.gpr[4], t.gpr[7], t.es, t.cs);
	CHECK(t.link == S_MAIN && t.ip == 0 && t.flags == (2 | EFL_NT) && t.gpr[0] == 0x1600 && t.gpr[7] == 0x1670 &&
		      t.es == S_DATA && t.cs == S_CODE16,
	      "T16's state saved by the handler's switch");
	CHECK(busy(S_T16) && busy(S_MAIN) && !find_snap(20, 0) && ts16_rec.tr == 0, "busy bits, T16 did not run");
	ptB1[1] = 0;
	memset(ram, 0, 38);
}

/* --- privilege ------------------------------------------------------------- */

TEST(task, user_task)
{
	world_reset();
	run("CALL to a CPL-3 task: its I/O map allows port 80h, not 84h (#GP)", act_call_u);
	const struct snap *s = find_snap(10, 0);
	expect_in(find_snap(9, 0), T_U, 2 | EFL_NT);
	CHECK(s && (s->cs & 3) == 3 && !find_snap(11, 0), "port 80h allowed, port 84h denied");
	expect_handler(T_H13, S_U, 0);
	CHECK(tss(T_U)->eip == a32(tb_user_io_denied), "U saved eip %s", where(tss(T_U)->eip));

	world_reset();
	tss(T_U)->eip = a32(tb_user_jmp_gate);
	run("CPL 3: JMP through a DPL-0 task gate: #GP", act_call_u);
	expect_handler(T_H13, S_U, S_GATE);

	world_reset();
	tss(T_U)->eip = a32(tb_user_int);
	run("CPL 3: INT 40h through a DPL-0 task gate: #GP", act_call_u);
	expect_handler(T_H13, S_U, 0x40 * 8 + 2);
}

TEST(task, debug_trap)
{
	world_reset();
	tss(T_A)->trap = 1;
	run("JMP to a TSS with the T bit: #DB before its first instruction", act_jmp_tbit);
	say("DR6 %08x", ts_fault.dr6);
	CHECK(ts_fault.hit && ts_fault.vec == 1 && ts_fault.eip == a32(tb_exit) && ts_fault.tr == S_A &&
		      (ts_fault.dr6 & 0xe00f) == 0x8000 && !find_snap(1, 0),
	      "wanted #DB with DR6.BT at A's first instruction");
}

/* Every task switch clears DR7's local breakpoint enables L0-L3 and LE
 * and keeps the global ones (SDM 17.2.4): they belong to the old task. */
TEST(task, dr7)
{
	world_reset();
	init_task(T_A, tb_dr7);
	ts_dr7 = 0x703; /* L0, G0, LE, GE; DR0 an address never executed */
	run("JMP to a TSS with DR7 L0, G0, LE, GE set", act_dr7);
	say("DR7 in A: %08x", ts_dr7);
	expect_in(find_snap(1, 0), T_A, 2);
	CHECK(ts_dr7 == 0x602, "DR7 %08x, SDM: 00000602 (G0, GE)", ts_dr7);
}

/* --- interrupts -------------------------------------------------------------- */

#define APIC_BASE 0xfee00000ull
static uint32_t apic_read(unsigned reg) { return *(volatile uint32_t *)(APIC_BASE + reg); }
static void apic_write(unsigned reg, uint32_t v) { *(volatile uint32_t *)(APIC_BASE + reg) = v; }

TEST(task, interrupts)
{
	if (!(rdmsr(MSR_IA32_APIC_BASE) & (1u << 11))) {
		env("local APIC disabled: not tested");
		return;
	}
	uint8_t pic0 = inb(0x21), pic1 = inb(0xa1);
	outb(0x21, 0xff); /* only our own IPIs */
	outb(0xa1, 0xff);
	apic_write(0xf0, 0x1ff);
	apic_write(0x80, 0);
	ts_icr_fixed = 1u << 18 | 0x50; /* self, fixed, vector 50h */
	ts_icr_nmi = 0x400;             /* NMI to our APIC ID */
	ts_icr_hi = apic_read(0x20) & 0xff000000u;

	world_reset();
	init_task(T_A, tb_irq);
	run("a fixed interrupt through a task gate, IRET back", act_irq);
	expect_in(find_snap(5, 0), T_A, 2 | EFL_NT);
	CHECK(find_snap(20, 0) && tss(T_MAIN)->eip == a32(act_irq_window_end) && (tss(T_MAIN)->eflags & EFL_IF) &&
		      tss(T_A)->link == S_MAIN && !busy(S_A),
	      "main saved eip %s eflags %08x", where(tss(T_MAIN)->eip), tss(T_MAIN)->eflags);

	/* A fault in the task an external interrupt switches to: EXT in its
	 * error code. */
	world_reset();
	w.idt[0x50] = task_gate(S_B, 0, true);
	tss(T_B)->ss = 0;
	run("a fixed interrupt through a task gate to a task with a null SS: #TS(EXT)", act_irq);
	expect_handler(T_H10, S_B, 1);
	apic_write(0xb0, 0); /* the interrupt is in service */

	world_reset();
	w.idt[2] = task_gate(S_A, 0, true);
	init_task(T_A, tb_nmi);
	run("NMIs through a task gate: the second waits for the handler task's IRET", act_nmi);
	const struct snap *first = find_snap(6, 0), *sent = find_snap(7, 0), *second = find_snap(6, 1);
	expect_in(first, T_A, 2 | EFL_NT);
	CHECK(sent && second && sent < second && ts_nmi_count == 2 && find_snap(20, 0), "NMI order: %u NMIs",
	      ts_nmi_count);
	outb(0x21, pic0);
	outb(0xa1, pic1);
}
