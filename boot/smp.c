/* smp.c - finding the CPUs and starting the application processors.
 *
 * The CPUs are the MADT's enabled local APIC and x2APIC entries (read at
 * boot by boot/acpi_probe.c).  Each AP is
 * started with the INIT-SIPI-SIPI sequence of SDM 3A 9.4.4.1 (INIT, 10 ms,
 * SIPI, 200 us, SIPI if it has not answered): it begins in real mode at
 * the page the SIPI vector names, where the trampoline (boot/ap_tramp.S)
 * takes it to long mode and into smp_ap_main() on its own stack.  The APs
 * are started one at a time, so that one set of trampoline slots does.
 *
 * The trampoline page is borrowed from the guest's memory below 1 MiB and
 * given back as it was: the guest, loaded later, finds what the firmware
 * left there.  The APs' first page tables are Nestor's plus an identity map
 * of the first 2 MiB (where the trampoline runs), dropped once they are
 * in. */
#include "boot/smp.h"
#include "boot/cpu.h"
#include "boot/delay.h"
#include "boot/lapic.h"
#include "boot/platform.h"
#include "boot/acpi_probe.h"
#include "lib/acpi.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "mm/mm.h"

extern const char ap_tramp_start[], ap_tramp_end[], ap_tramp_slots[], ap_tramp_pm[], ap_tramp_lm[],
	ap_tramp_gdt[], ap_tramp_gdt_desc[];

#define AP_STACK_PAGES 4

/* Written by the BSP while it starts the APs, read-only after (except
 * the flags the APs raise). */
static struct {
	unsigned ncpus;
	uint32_t apic_id[MAX_CPUS];
	uint64_t cr3;                /* Nestor's page tables, for the APs */
	volatile unsigned arrived;   /* index of the last AP that reached C */
	volatile int ended;          /* the run is over: halt */
	void (*volatile work)(void *ctx, unsigned index);
	void *volatile work_ctx;
} smp = { .ncpus = 1 };

unsigned smp_ncpus(void) { return smp.ncpus; }
uint32_t smp_apic_id(unsigned i) { return i < smp.ncpus ? smp.apic_id[i] : ~0u; }

void smp_release(void (*work)(void *ctx, unsigned index), void *ctx)
{
	smp.work_ctx = ctx;
	__atomic_store_n(&smp.work, work, __ATOMIC_RELEASE);
}

static __attribute__((noreturn, used)) void smp_ap_main(uint64_t index)
{
	/* Off the trampoline's page tables: the identity map goes. */
	write_cr3(smp.cr3);
	cpu_init((unsigned)index);
	__atomic_store_n(&smp.arrived, (unsigned)index, __ATOMIC_RELEASE);
	void (*work)(void *, unsigned);
	while (!(work = __atomic_load_n(&smp.work, __ATOMIC_ACQUIRE)))
		pause();
	work(smp.work_ctx, (unsigned)index);
	/* Work does not return; if it did, stay here, interrupts off. */
	for (;;)
		hlt();
}

/* The first page of RAM above the real-mode interrupt table, below 1 MiB:
 * a SIPI vector names a page below 1 MiB. */
static uint64_t tramp_page(void)
{
	for (uint64_t p = 0x1000; p < 0x100000; p += PAGE_SIZE)
		if (rs_contains(&mem.ram, p, p + PAGE_SIZE))
			return p;
	return 0;
}

/* Nestor's PML4 plus an identity map of [0, 2 MiB), executable. */
static uint64_t *tramp_tables(void)
{
	uint64_t *pml4 = page_alloc(), *pdpt = page_alloc(), *pd = page_alloc();
	if (!pml4 || !pdpt || !pd)
		return NULL;
	memcpy(pml4, phys_to_virt(read_cr3() & ~0xfffull), PAGE_SIZE);
	pml4[0] = virt_to_phys(pdpt) | 3;
	pdpt[0] = virt_to_phys(pd) | 3;
	pd[0] = 0 | 3 | (1u << 7); /* present, writable, 2 MiB */
	return pml4;
}

static bool start_ap(unsigned index, uint32_t apic_id, uint64_t page, struct ap_tramp_slots *slots)
{
	uint8_t *stack = pages_alloc(AP_STACK_PAGES, 1);
	if (!stack)
		return false;
	slots->stack = (uint64_t)(stack + AP_STACK_PAGES * PAGE_SIZE);
	slots->arg = index;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* INIT (asserted, then de-asserted for the CPUs that want it), the
	 * waits and two SIPIs: SDM 3A 9.4.4.1, "typical BSP initialization
	 * sequence". */
	if (!lapic_send(apic_id, ICR_INIT | ICR_ASSERT | ICR_LEVEL) || !lapic_send(apic_id, ICR_INIT | ICR_LEVEL))
		return false;
	udelay(10000);
	for (int sipi = 0; sipi < 2; sipi++) {
		if (!lapic_send(apic_id, ICR_STARTUP | ICR_ASSERT | (uint32_t)(page >> 12)))
			return false;
		udelay(200);
		if (__atomic_load_n(&smp.arrived, __ATOMIC_ACQUIRE) == index)
			return true;
	}
	/* A slow CPU: up to 100 ms more. */
	for (int ms = 0; ms < 100; ms++) {
		if (__atomic_load_n(&smp.arrived, __ATOMIC_ACQUIRE) == index)
			return true;
		udelay(1000);
	}
	return false;
}

int smp_start_aps(char *err, size_t errlen)
{
	smp.apic_id[0] = lapic_id();
	if (!machine_madt_ok) {
		pr_warn("running on this CPU only (no MADT: boot/acpi_probe.c)\n");
		return 0;
	}
	const struct acpi_madt_info *m = &machine_madt;
	/* The CPUs: the BSP first, then every other enabled one. */
	unsigned n = 1;
	bool bsp_listed = false;
	for (unsigned i = 0; i < m->n_cpus; i++) {
		const struct acpi_cpu *c = &m->cpus[i];
		if (!c->enabled) {
			if (c->online_capable)
				pr_warn("ACPI: CPU with APIC ID %u can be brought online later: Nestor does not "
					"support that\n", c->apic_id);
			continue;
		}
		if (c->apic_id == smp.apic_id[0]) {
			bsp_listed = true;
			continue;
		}
		if (n == MAX_CPUS || m->cpus_dropped) {
			ksnprintf(err, errlen, "this machine has more CPUs than Nestor supports (%u)", MAX_CPUS);
			return -1;
		}
		smp.apic_id[n++] = c->apic_id;
	}
	if (!bsp_listed)
		pr_warn("ACPI: the MADT does not list this CPU (APIC ID %u)\n", smp.apic_id[0]);
	if (n == 1)
		return 0;

	uint64_t page = tramp_page();
	uint64_t *pml4 = tramp_tables();
	uint8_t *saved = page_alloc();
	size_t len = (size_t)(ap_tramp_end - ap_tramp_start);
	if (!page || !pml4 || !saved || virt_to_phys(pml4) >> 32 || len > PAGE_SIZE) {
		ksnprintf(err, errlen, "cannot set up the AP trampoline (no RAM page below 1 MiB, or pool "
				       "exhausted)");
		return -1;
	}
	uint8_t *tr = phys_to_virt(page);
	memcpy(saved, tr, PAGE_SIZE);
	memcpy(tr, ap_tramp_start, len);
	struct ap_tramp_slots *slots = (struct ap_tramp_slots *)(tr + (ap_tramp_slots - ap_tramp_start));
	uint32_t gdt_base = (uint32_t)(page + (ap_tramp_gdt - ap_tramp_start));
	memcpy(tr + (ap_tramp_gdt_desc - ap_tramp_start) + 2, &gdt_base, 4);
	slots->pm_off = (uint32_t)(page + (ap_tramp_pm - ap_tramp_start));
	slots->lm_off = (uint32_t)(page + (ap_tramp_lm - ap_tramp_start));
	slots->cr0 = (uint32_t)read_cr0();
	slots->cr4 = (uint32_t)((read_cr4() & ~(CR4_VMXE | CR4_PCIDE)) | CR4_PAE);
	slots->cr3 = (uint32_t)virt_to_phys(pml4);
	slots->entry = (uint64_t)smp_ap_main;
	smp.cr3 = read_cr3();

	int ret = 0;
	for (unsigned i = 1; i < n; i++) {
		if (!start_ap(i, smp.apic_id[i], page, slots)) {
			ksnprintf(err, errlen, "CPU %u (APIC ID %u) did not start", i, smp.apic_id[i]);
			ret = -1;
			break;
		}
		smp.ncpus = i + 1;
	}
	memcpy(tr, saved, PAGE_SIZE);
	pages_free(saved, 1);
	/* (The tables stay: a CPU that did not answer may still be on its
	 * way through them.) */
	if (!ret)
		pr_info("%u CPUs in Nestor\n", smp.ncpus);
	return ret;
}

void smp_halt_if_ended(void)
{
	if (!__atomic_load_n(&smp.ended, __ATOMIC_ACQUIRE))
		return;
	cli();
	for (;;)
		hlt();
}

void smp_halt_others(void)
{
	if (smp.ncpus < 2 || __atomic_exchange_n(&smp.ended, 1, __ATOMIC_ACQ_REL))
		return;
	uint32_t self = lapic_id();
	for (unsigned i = 0; i < smp.ncpus; i++)
		if (smp.apic_id[i] != self)
			lapic_send(smp.apic_id[i], ICR_NMI | ICR_ASSERT);
}
