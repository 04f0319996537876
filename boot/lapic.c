/* lapic.c - IPIs and the APIC ID through the local APIC; the INIT state and
 * snapshots of the guest's registers (see lapic.h). */
#include "boot/lapic.h"
#include "boot/cpu.h"
#include "boot/fixup.h"
#include "lib/x86.h"
#include "mm/mm.h"

#define APIC_BASE_X2APIC (1ull << 10)
#define APIC_BASE_EN (1ull << 11)
/* Registers by their xAPIC offset (SDM 3A 11.4.1, table 11-1); in x2APIC
 * mode MSR 0x800 + offset / 16 (11.12.1.2). */
#define XAPIC_ID 0x20
#define XAPIC_VERSION 0x30
#define XAPIC_TPR 0x80
#define XAPIC_EOI 0xb0
#define XAPIC_LDR 0xd0
#define XAPIC_DFR 0xe0
#define XAPIC_SVR 0xf0
#define XAPIC_ISR 0x100
#define XAPIC_IRR 0x200
#define XAPIC_ESR 0x280
#define XAPIC_LVT_CMCI 0x2f0
#define XAPIC_LVT_TIMER 0x320
#define XAPIC_LVT_THERMAL 0x330
#define XAPIC_LVT_PERF 0x340
#define XAPIC_LVT_LINT0 0x350
#define XAPIC_LVT_LINT1 0x360
#define XAPIC_LVT_ERROR 0x370
#define XAPIC_TIMER_INITIAL 0x380
#define XAPIC_TIMER_CURRENT 0x390
#define XAPIC_TIMER_DIVIDE 0x3e0
#define MSR_TSC_DEADLINE 0x6e0
#define LVT_TIMER_DEADLINE (2u << 17)
#define X2APIC_MSR_ID 0x802
#define LVT_MASKED (1u << 16)

/* Where the xAPIC's registers are now (the CPU's IA32_APIC_BASE: when
 * Nestor runs as a guest, the base the level below shows it). */
static volatile uint32_t *xapic(uint64_t apic_base)
{
	return phys_to_virt(apic_base & ((1ull << maxphyaddr) - 1) & ~0xfffull);
}

uint32_t lapic_id(void)
{
	uint64_t base = rdmsr(MSR_IA32_APIC_BASE);
	if (base & APIC_BASE_X2APIC)
		return (uint32_t)rdmsr(X2APIC_MSR_ID);
	return xapic(base)[XAPIC_ID / 4] >> 24;
}

static bool xapic_idle(volatile uint32_t *r)
{
	/* A local APIC accepts an IPI within a few bus cycles; a million reads
	 * is far beyond that on any CPU or emulator. */
	for (unsigned i = 0; i < 1000000; i++) {
		if (!(r[XAPIC_ICR_LOW / 4] & ICR_BUSY))
			return true;
		pause();
	}
	return false;
}

bool lapic_send(uint32_t dest, uint32_t icr_low)
{
	uint64_t base = rdmsr(MSR_IA32_APIC_BASE);
	if (base & APIC_BASE_X2APIC) {
		/* One 64-bit write; no delivery status in x2APIC mode (SDM 3A
		 * 11.12.9), nothing of the guest's is half-written. */
		wrmsr(X2APIC_MSR_ICR, (uint64_t)dest << 32 | icr_low);
		return true;
	}
	volatile uint32_t *r = xapic(base);
	/* The guest may have exited between its write of ICR high and its
	 * write of ICR low: put its destination back afterwards. */
	uint32_t high = r[XAPIC_ICR_HIGH / 4];
	bool ok = xapic_idle(r);
	if (ok) {
		r[XAPIC_ICR_HIGH / 4] = dest << 24;
		r[XAPIC_ICR_LOW / 4] = icr_low;
		ok = xapic_idle(r);
	}
	r[XAPIC_ICR_HIGH / 4] = high;
	return ok;
}

/* --- the state an INIT leaves ------------------------------------------- */
static uint32_t reg_read(uint64_t base, unsigned off)
{
	uint64_t v = 0;
	if (base & APIC_BASE_X2APIC)
		rdmsr_safe(0x800 + off / 16, &v);
	else
		v = xapic(base)[off / 4];
	return (uint32_t)v;
}

static void reg_write(uint64_t base, unsigned off, uint32_t v)
{
	/* (An LVT entry this APIC does not have: #GP in x2APIC mode, ignored.) */
	if (base & APIC_BASE_X2APIC)
		wrmsr_safe(0x800 + off / 16, v);
	else
		xapic(base)[off / 4] = v;
}

/* The LVT entries; those beyond the timer, LINT0, LINT1 and error exist by
 * the version register's max LVT entry (SDM 3A 11.5.1). */
static const struct {
	unsigned off, min;
} lvt[] = {
	{ XAPIC_LVT_TIMER, 0 }, { XAPIC_LVT_LINT0, 0 }, { XAPIC_LVT_LINT1, 0 }, { XAPIC_LVT_ERROR, 0 },
	{ XAPIC_LVT_PERF, 4 },	{ XAPIC_LVT_THERMAL, 5 }, { XAPIC_LVT_CMCI, 6 },
};
#define N_LVT (sizeof(lvt) / sizeof(lvt[0]))
_Static_assert(N_LVT == LAPIC_STATE_LVTS, "struct lapic_state");

/* True when some bit of the 256-bit register at off (ISR, IRR) is set. */
static bool any_bit(uint64_t base, unsigned off)
{
	for (unsigned i = 0; i < 8; i++)
		if (reg_read(base, off + 16 * i))
			return true;
	return false;
}

void lapic_init_reset(void)
{
	uint64_t base = rdmsr(MSR_IA32_APIC_BASE);
	/* Globally disabled, the APIC has no registers to reset: enabling it
	 * again starts from the power-up state (SDM 3A 11.4.3). */
	if (!(base & APIC_BASE_EN))
		return;
	/* The local interrupt sources stop first: every LVT entry masked and
	 * the timer stopped (11.4.7.1: LVT 0 with the mask bit, initial count
	 * and divide configuration 0). */
	unsigned max_lvt = (reg_read(base, XAPIC_VERSION) >> 16) & 0xff;
	for (unsigned i = 0; i < N_LVT; i++)
		if (max_lvt >= lvt[i].min)
			reg_write(base, lvt[i].off, LVT_MASKED);
	reg_write(base, XAPIC_TIMER_INITIAL, 0);
	reg_write(base, XAPIC_TIMER_DIVIDE, 0);
	/* IRR and ISR are 0 after an INIT, but software cannot write them: the
	 * requests still pending are taken here (software-enabled APIC, TPR 0,
	 * interrupts on for one instruction; the IDT drops them, boot/trap.c)
	 * and every in-service bit ended with an EOI.  Bounded: a device that
	 * keeps interrupting cannot hold the CPU here. */
	reg_write(base, XAPIC_TPR, 0);
	reg_write(base, XAPIC_SVR, 0x1ff);
	struct percpu *me = this_cpu();
	me->discard_irqs = true;
	for (unsigned n = 0; n < 512; n++) {
		if (any_bit(base, XAPIC_ISR))
			reg_write(base, XAPIC_EOI, 0);
		else if (any_bit(base, XAPIC_IRR))
			__asm__ volatile("sti\n\tnop\n\tcli" ::: "memory");
		else
			break;
	}
	me->discard_irqs = false;
	/* The error status: a write latches the errors, a second one clears
	 * them (11.5.3).  In x2APIC mode ICR high, LDR and DFR do not exist as
	 * such (the LDR is derived from the x2APIC ID, 11.12.10.2). */
	reg_write(base, XAPIC_ESR, 0);
	reg_write(base, XAPIC_ESR, 0);
	if (!(base & APIC_BASE_X2APIC)) {
		reg_write(base, XAPIC_ICR_HIGH, 0);
		reg_write(base, XAPIC_LDR, 0);
		reg_write(base, XAPIC_DFR, 0xffffffffu);
	}
	/* Spurious-interrupt vector 0xFF, software-disabled (11.4.7.1). */
	reg_write(base, XAPIC_SVR, 0xff);
}

/* --- what a snapshot holds -------------------------------------------------- */
static bool tsc_deadline_mode(uint32_t lvt_timer)
{
	return (lvt_timer & (3u << 17)) == LVT_TIMER_DEADLINE && (cpuid(1, 0).ecx & (1u << 24));
}

void lapic_save(struct lapic_state *st)
{
	uint64_t base = rdmsr(MSR_IA32_APIC_BASE);
	*st = (struct lapic_state){ 0 };
	st->valid = base & APIC_BASE_EN;
	if (!st->valid)
		return;
	st->x2apic = base & APIC_BASE_X2APIC;
	st->max_lvt = (reg_read(base, XAPIC_VERSION) >> 16) & 0xff;
	st->tpr = reg_read(base, XAPIC_TPR);
	st->svr = reg_read(base, XAPIC_SVR);
	if (!st->x2apic) {
		st->ldr = reg_read(base, XAPIC_LDR);
		st->dfr = reg_read(base, XAPIC_DFR);
	}
	for (unsigned i = 0; i < N_LVT; i++)
		if (st->max_lvt >= lvt[i].min)
			st->lvt[i] = reg_read(base, lvt[i].off);
	st->timer_divide = reg_read(base, XAPIC_TIMER_DIVIDE);
	st->timer_initial = reg_read(base, XAPIC_TIMER_INITIAL);
	st->timer_running = reg_read(base, XAPIC_TIMER_CURRENT) != 0;
	if (tsc_deadline_mode(st->lvt[0]))
		rdmsr_safe(MSR_TSC_DEADLINE, &st->tsc_deadline);
}

bool lapic_restore(const struct lapic_state *st)
{
	uint64_t base = rdmsr(MSR_IA32_APIC_BASE);
	/* The APIC must be where it was: enabled, in the same mode (Bochs 2.7
	 * cannot enable an APIC again, nor leave x2APIC mode). */
	if (!st->valid || !(base & APIC_BASE_EN) || st->x2apic != !!(base & APIC_BASE_X2APIC))
		return !st->valid && !(base & APIC_BASE_EN);
	/* Quiet first: every LVT entry masked, the timer stopped; then the
	 * registers, the LVT entries last but the timer's count. */
	for (unsigned i = 0; i < N_LVT; i++)
		if (st->max_lvt >= lvt[i].min)
			reg_write(base, lvt[i].off, LVT_MASKED);
	reg_write(base, XAPIC_TIMER_INITIAL, 0);
	reg_write(base, XAPIC_TIMER_DIVIDE, st->timer_divide);
	reg_write(base, XAPIC_TPR, st->tpr);
	if (!st->x2apic) {
		reg_write(base, XAPIC_DFR, st->dfr);
		reg_write(base, XAPIC_LDR, st->ldr);
	}
	reg_write(base, XAPIC_SVR, st->svr);
	for (unsigned i = 0; i < N_LVT; i++)
		if (st->max_lvt >= lvt[i].min)
			reg_write(base, lvt[i].off, st->lvt[i]);
	/* A timer that counted starts again from its initial count (time went
	 * on across the restore, as for the TSC); one that had stopped or
	 * expired stays so - its initial count then reads 0. */
	if (tsc_deadline_mode(st->lvt[0]))
		wrmsr_safe(MSR_TSC_DEADLINE, st->tsc_deadline);
	else if (st->timer_running)
		reg_write(base, XAPIC_TIMER_INITIAL, st->timer_initial);
	return true;
}
