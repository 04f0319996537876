/* lapic.c - IPIs and the APIC ID through the local APIC (see lapic.h). */
#include "boot/lapic.h"
#include "boot/cpu.h"
#include "lib/x86.h"
#include "mm/mm.h"

#define APIC_BASE_X2APIC (1ull << 10)
#define XAPIC_ID 0x20
#define XAPIC_ICR_LOW 0x300
#define XAPIC_ICR_HIGH 0x310
#define X2APIC_MSR_ID 0x802
#define X2APIC_MSR_ICR 0x830

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
