/* interrupts.c - interrupts and NMIs reach the guest, none lost, none
 * duplicated.  The local APIC sends the guest interrupts to itself (self
 * IPIs through the ICR); under Nestor NMIs exit and are re-injected, and
 * external interrupts go straight to the guest. */
#include "guest/test.h"
#include "guest/apic.h"
#include "lib/x86.h"


static volatile unsigned fixed_count, nmi_count, nested_nmi_seen, nmi_depth;

static uint32_t apic_read(unsigned reg) { return *(volatile uint32_t *)(APIC_BASE + reg); }
static void apic_write(unsigned reg, uint32_t v) { *(volatile uint32_t *)(APIC_BASE + reg) = v; }

/* SDM 10.6.1: the "self" shorthand only takes fixed interrupts; an NMI is
 * sent to our own APIC ID in physical destination mode. */
static void self_ipi(uint32_t mode, uint8_t vector)
{
	if (mode == ICR_FIXED) {
		apic_write(APIC_ICR_HI, 0);
		apic_write(APIC_ICR_LO, ICR_SELF | mode | vector);
	} else {
		apic_write(APIC_ICR_HI, apic_read(APIC_ID) & 0xff000000u);
		apic_write(APIC_ICR_LO, mode | vector);
	}
	for (int i = 0; i < 100000 && (apic_read(APIC_ICR_LO) & ICR_PENDING); i++)
		pause();
}

static void on_fixed(struct trap_frame *f)
{
	(void)f;
	fixed_count++;
	apic_write(APIC_EOI, 0);
}

static void on_nmi(struct trap_frame *f)
{
	(void)f;
	nmi_count++;
	if (nmi_depth)
		nested_nmi_seen = 1; /* an NMI inside an NMI handler: blocking broken */
	nmi_depth++;
	if (nmi_count == 1)
		self_ipi(ICR_NMI, 0); /* blocked until this handler's IRET */
	nmi_depth--;
}

static bool apic_enabled(void) { return (rdmsr(MSR_IA32_APIC_BASE) & (1u << 11)) != 0; }

static uint8_t pic_masks[2];

/* The legacy PIC still maps the timer to vector 8 (the BIOS's layout):
 * mask it while interrupts are on, so only our self IPIs arrive. */
static void setup(void)
{
	pic_save_and_mask(pic_masks);
	/* Software-enable the APIC (spurious vector 0xff), accept all priorities. */
	apic_write(APIC_SVR, 0x1ff);
	apic_write(APIC_TPR, 0);
}

static void teardown(void)
{
	pic_restore(pic_masks);
}

TEST(interrupts, self_ipi_fixed)
{
	CHECK(apic_enabled(), "the local APIC is disabled");
	setup();
	guest_set_handler(0x40, on_fixed);
	fixed_count = 0;
	/* With IF=0 the interrupt waits in the IRR; STI lets it in. */
	self_ipi(ICR_FIXED, 0x40);
	say("with interrupts off: %u delivered", fixed_count);
	CHECK(fixed_count == 0, "delivered with IF=0");
	sti();
	for (int i = 0; i < 100 && fixed_count == 0; i++)
		pause();
	cli();
	say("after STI: %u delivered", fixed_count);
	CHECK(fixed_count == 1, "expected exactly one interrupt, got %u", fixed_count);
	for (int n = 0; n < 50; n++) {
		self_ipi(ICR_FIXED, 0x40);
		sti();
		pause();
		cli();
	}
	say("50 more self IPIs: %u delivered in all", fixed_count);
	CHECK(fixed_count == 51, "lost or duplicated interrupts: %u of 51", fixed_count);
	guest_set_handler(0x40, 0);
	teardown();
}

TEST(interrupts, self_nmi)
{
	setup();
	guest_set_handler(EXC_NMI, on_nmi);
	nmi_count = nested_nmi_seen = nmi_depth = 0;
	/* NMIs ignore IF; the second one, sent from the first handler, must wait
	 * for that handler's IRET (NMI blocking), then arrive. */
	self_ipi(ICR_NMI, 0);
	for (int i = 0; i < 1000 && nmi_count < 2; i++)
		pause();
	say("%u NMIs delivered, nested delivery %s", nmi_count, nested_nmi_seen ? "seen (wrong)" : "not seen");
	CHECK(nmi_count == 2 && !nested_nmi_seen, "NMIs: %u, nested %u", nmi_count, nested_nmi_seen);
	for (int n = 0; n < 20; n++)
		self_ipi(ICR_NMI, 0);
	for (int i = 0; i < 1000 && nmi_count < 22; i++)
		pause();
	say("20 more: %u NMIs in all", nmi_count);
	CHECK(nmi_count == 22, "lost or duplicated NMIs: %u of 22", nmi_count);
	guest_set_handler(EXC_NMI, 0);
	teardown();
}

/* An NMI that arrives while the handler of the previous one still runs
 * (blocked until its IRET, SDM 3A 6.7.1) - long enough here that it is
 * surely pending meanwhile; under Nestor it exits at once and waits for
 * the guest's NMI window (vmx/events.c). */
static volatile unsigned held_count, held_during, held_nested;

static void on_nmi_held(struct trap_frame *f)
{
	(void)f;
	unsigned n = ++held_count;
	if (nmi_depth)
		held_nested = 1;
	nmi_depth++;
	if (n == 1) {
		self_ipi(ICR_NMI, 0);
		for (int i = 0; i < 20000; i++)
			pause();
		held_during = held_count;
	}
	nmi_depth--;
}

TEST(interrupts, nmi_held_while_blocked)
{
	setup();
	guest_set_handler(EXC_NMI, on_nmi_held);
	held_count = held_during = held_nested = nmi_depth = 0;
	self_ipi(ICR_NMI, 0);
	for (int i = 0; i < 1000 && held_count < 2; i++)
		pause();
	say("NMIs taken during the first handler: %u, after its IRET: %u, nested delivery %s", held_during - 1,
	    held_count - held_during, held_nested ? "seen (wrong)" : "not seen");
	CHECK(held_during == 1 && held_count == 2 && !held_nested, "NMIs: %u during, %u in all", held_during,
	      held_count);
	guest_set_handler(EXC_NMI, 0);
	teardown();
}

TEST(interrupts, hlt_wakes)
{
	setup();
	guest_set_handler(0x41, on_fixed);
	fixed_count = 0;
	/* STI's one-instruction shadow covers HLT: the pending interrupt is
	 * taken in the HLT state and wakes the CPU right after it. */
	self_ipi(ICR_FIXED, 0x41);
	__asm__ volatile("sti; hlt; cli" ::: "memory");
	say("HLT with an interrupt pending: woke up, %u delivered", fixed_count);
	CHECK(fixed_count == 1, "expected one interrupt, got %u", fixed_count);
	guest_set_handler(0x41, 0);
	teardown();
}
