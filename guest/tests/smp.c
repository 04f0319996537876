/* smp.c - the 'smp' suite: the guest's other CPUs (issue 12).
 *
 * The CPUs come from the ACPI MADT (lib/acpi.c; the RSDP from the
 * multiboot2 tags, or the BIOS areas after a multiboot (v1) boot).  The
 * BSP starts each application processor as the SDM's "typical BSP
 * initialization sequence" does (3A 9.4.4.1): INIT, 10 ms, SIPI, 200 us,
 * SIPI.  The AP begins at the trampoline (smp_tramp.S, copied to
 * SMP_TRAMP_BASE) in real mode, reaches long mode with the BSP's CR3 and
 * calls smp_ap_entry() on its own stack, which loads the BSP's GDT and IDT,
 * enables its local APIC, notes what it sees (APIC ID, CPUID, control
 * registers) in its slot of cpus[], and waits for commands with interrupts
 * on.  The APs are started when the first test of the suite runs (tests run
 * sorted by name: counter, cpus, init_restart, ipi, tlb_shootdown) and
 * parked again (INIT: wait-for-SIPI) at the end of the last one.
 *
 * Only the BSP prints, in CPU order, from what the APs wrote into their
 * slots, after waiting for them with a bounded wait on the PIT: nothing
 * printed depends on timing or on how the CPUs interleave, so the
 * transcript is the same at every depth and for every interleaving.  With
 * one CPU the suite says so and does the BSP's part only.
 *
 * Delays and timeouts count on channel 2 of the 8254 PIT (only the BSP
 * uses it); the legacy PIC is masked while a test runs, so that only the
 * IPIs the tests send arrive. */
#include "guest/nestor.h"
#include "guest/test.h"
#include "guest/apic.h"
#include "guest/tests/smp.h"
#include "guest/vmx.h"
#include "lib/acpi.h"
#include "lib/format.h"
#include "lib/string.h"
#include "lib/x86.h"

#define MAX_CPUS 16
#define AP_STACK_SIZE 16384

/* IA32_APIC_BASE bits (SDM 3A 11.4.4) */
#define APIC_BASE_BSP (1u << 8)
#define APIC_BASE_X2APIC (1u << 10)
#define APIC_BASE_ENABLE (1u << 11)

#define VEC_TO_AP 0x50    /* BSP -> AP */
#define VEC_AP_TO_AP 0x51 /* AP -> next AP */
#define VEC_TLB 0x52      /* TLB shootdown */
#define VEC_TO_BSP 0x60   /* AP -> BSP: 0x60 + the sender's index */
#define VEC_SPURIOUS 0xff

/* Bounded waits, in ms of the machine's time (generous: an AP under three
 * Nestors exits on every mode switch). */
#define START_MS 5000
#define CMD_MS 5000
#define IPI_MS 1000

#define COUNT_ROUNDS 10000
#define TLB_VA 0x140000000ull /* 5 GiB: PML4 entry 0, PDPT entry 5, above the identity map */

/* The local APIC registers smp.init_apic_reset compares (xAPIC offsets,
 * SDM 3A table 11-1); 0x100 and 0x200 stand for any bit of ISR and IRR. */
static const struct { unsigned off; const char *name; } apic_regs[] = {
	{ 0x80, "TPR" },	 { 0xd0, "LDR" },	{ 0xe0, "DFR" },	   { 0xf0, "SVR" },
	{ 0x320, "LVT timer" }, { 0x350, "LVT LINT0" }, { 0x360, "LVT LINT1" }, { 0x370, "LVT error" },
	{ 0x380, "timer initial" }, { 0x390, "timer current" }, { 0x3e0, "timer divide" },
	{ 0x100, "ISR" },	{ 0x200, "IRR" },
};
#define APIC_REGS (sizeof(apic_regs) / sizeof(apic_regs[0]))

struct cpu {
	uint32_t apic_id; /* the MADT's */
	bool up;          /* the BSP's view: started and answered */
	uint32_t starts;  /* generations started so far */
	/* written by the CPU itself when it reaches C */
	volatile uint32_t gen;      /* the generation it was started in */
	volatile uint32_t lapic_id; /* APIC ID register [31:24] */
	volatile uint32_t cpuid_id; /* CPUID.1 EBX[31:24], the initial APIC ID */
	volatile uint32_t bsp_flag; /* IA32_APIC_BASE.BSP */
	volatile uint64_t cr0, cr4, efer;
	volatile uint32_t apic_at_start[APIC_REGS]; /* apic_regs[] as it reached C, before enabling its APIC */
	volatile uint64_t xss_at_start;		    /* IA32_XSS then (when the CPU has it) */
	volatile uint64_t dr_at_start[6];	    /* DR0-DR3, DR6, DR7 then */
	volatile uint64_t cr2_at_start, pat_at_start;
	/* commands from the BSP: cmd runs when cmd_seq != done_seq */
	void (*volatile cmd)(unsigned idx);
	volatile uint32_t cmd_seq, done_seq;
	/* results */
	volatile uint32_t ipis, ring_ipis, tlb_ipis;
	volatile uint64_t counted, heartbeat, tlb_before, tlb_after;
};

static struct cpu cpus[MAX_CPUS];
static unsigned ncpus; /* cpus[0] is the BSP, then the MADT's other enabled CPUs in its order */
static uint8_t ap_stacks[MAX_CPUS][AP_STACK_SIZE] __attribute__((aligned(16)));
static uint8_t idx_of_apic[256];
static uint64_t apic_base;
static struct acpi_madt_info madt;
static const char *rsdp_from;
static enum acpi_err madt_err;
static bool probed, probe_ok, started;

/* What the APs take over from the BSP. */
static struct {
	struct dtr gdtr, idtr;
	uint64_t cr0, cr3, cr4, efer;
} bsp;

static uint32_t apic_read(unsigned reg) { return *(volatile uint32_t *)(apic_base + reg); }
static void apic_write(unsigned reg, uint32_t v) { *(volatile uint32_t *)(apic_base + reg) = v; }
static unsigned my_index(void) { return idx_of_apic[apic_read(APIC_ID) >> 24]; }

/* --- time: PIT channel 2, one-shot (mode 0), its output on port 0x61 bit 5 */
#define PIT_HZ 1193182u
#define PORT_B 0x61

static void pit_arm(uint32_t us)
{
	uint64_t ticks = ((uint64_t)us * PIT_HZ + 999999) / 1000000;
	if (ticks == 0)
		ticks = 1;
	if (ticks > 0xffff)
		ticks = 0xffff;
	uint8_t b = inb(PORT_B) & ~0x03;
	outb(PORT_B, b);        /* gate low, speaker off */
	outb(0x43, 0xb0);       /* channel 2, lobyte/hibyte, mode 0, binary */
	outb(0x42, (uint8_t)ticks);
	outb(0x42, (uint8_t)(ticks >> 8));
	outb(PORT_B, b | 0x01); /* gate high: count */
}

static bool pit_expired(void) { return (inb(PORT_B) & 0x20) != 0; }

static void udelay(uint32_t us)
{
	while (us) {
		uint32_t n = us > 50000 ? 50000 : us;
		pit_arm(n);
		while (!pit_expired())
			pause();
		us -= n;
	}
}

/* Polls cond until it holds or ms have passed; its last value. */
#define WAIT_UNTIL(cond, ms)                                               \
	({                                                                 \
		bool ok_ = (cond);                                         \
		for (uint32_t left_ = (ms); !ok_ && left_;) {              \
			uint32_t n_ = left_ > 50 ? 50 : left_;             \
			pit_arm(n_ * 1000);                                \
			while (!(ok_ = (cond)) && !pit_expired())          \
				pause();                                   \
			left_ -= n_;                                       \
		}                                                          \
		ok_ || (cond);                                             \
	})

/* --- IPIs ------------------------------------------------------------ */
static bool send_ipi(uint32_t apic_id, uint32_t low)
{
	apic_write(APIC_ICR_HI, apic_id << 24);
	apic_write(APIC_ICR_LO, low);
	for (unsigned i = 0; i < 1000000; i++)
		if (!(apic_read(APIC_ICR_LO) & ICR_PENDING))
			return true;
	return false;
}

static void eoi(void) { apic_write(APIC_EOI, 0); }

static void on_spurious(struct trap_frame *f) { (void)f; /* no EOI for a spurious interrupt */ }

static void on_to_ap(struct trap_frame *f)
{
	(void)f;
	cpus[my_index()].ipis++;
	eoi();
}

static void on_ring(struct trap_frame *f)
{
	(void)f;
	cpus[my_index()].ring_ipis++;
	eoi();
}

static volatile uint32_t to_bsp[MAX_CPUS];

static void on_to_bsp(struct trap_frame *f)
{
	to_bsp[(f->vector - VEC_TO_BSP) % MAX_CPUS]++;
	eoi();
}

static void on_tlb(struct trap_frame *f)
{
	(void)f;
	struct cpu *c = &cpus[my_index()];
	invlpg((const void *)TLB_VA);
	c->tlb_after = *(volatile uint64_t *)TLB_VA;
	c->tlb_ipis++;
	eoi();
}

/* --- the APs' side ----------------------------------------------------- */
static void enable_apic(void)
{
	apic_write(APIC_SVR, 0x100 | VEC_SPURIOUS); /* software-enabled */
	apic_write(APIC_TPR, 0);
}

/* The IA32_XSS bits this CPU supports (0: no XSAVES, or none). */
static uint64_t xss_bits(void)
{
	if (cpuid(0, 0).eax < 0xd || !(cpuid(0xd, 1).eax & (1u << 3)))
		return 0;
	struct cpuid_regs r = cpuid(0xd, 1);
	return (uint64_t)r.edx << 32 | r.ecx;
}

static void note_drs(uint64_t *d)
{
	d[0] = read_dr0(), d[1] = read_dr1(), d[2] = read_dr2(), d[3] = read_dr3();
	d[4] = read_dr6(), d[5] = read_dr7();
}

static void note_apic(uint32_t *out)
{
	for (unsigned r = 0; r < APIC_REGS; r++) {
		unsigned off = apic_regs[r].off;
		uint32_t v = 0;
		if (off == 0x100 || off == 0x200)
			for (unsigned k = 0; k < 8; k++)
				v |= apic_read(off + 16 * k);
		else
			v = apic_read(off);
		out[r] = v;
	}
}

static void note_self(struct cpu *c)
{
	c->lapic_id = apic_read(APIC_ID) >> 24;
	c->cpuid_id = cpuid(1, 0).ebx >> 24;
	c->bsp_flag = (rdmsr(MSR_IA32_APIC_BASE) & APIC_BASE_BSP) ? 1 : 0;
	c->cr0 = read_cr0();
	c->cr4 = read_cr4();
	c->efer = rdmsr(MSR_EFER);
}

__attribute__((noreturn)) void smp_ap_entry(uint64_t index)
{
	struct cpu *c = &cpus[index];
	/* The BSP's GDT (the trampoline's page may be reused) and IDT. */
	lgdt(&bsp.gdtr);
	__asm__ volatile("pushq $0x08\n\tleaq 1f(%%rip), %%rax\n\tpushq %%rax\n\tlretq\n1:\n\t"
			 "movl $0x10, %%eax\n\tmovl %%eax, %%ds\n\tmovl %%eax, %%es\n\tmovl %%eax, %%ss\n\t"
			 ::: "rax", "memory");
	lidt(&bsp.idtr);
	if (read_cr4() != bsp.cr4)
		write_cr4(bsp.cr4); /* PCIDE, which the trampoline leaves out */
	note_apic((uint32_t *)c->apic_at_start);
	note_drs((uint64_t *)c->dr_at_start);
	c->cr2_at_start = read_cr2();
	c->pat_at_start = rdmsr(MSR_IA32_PAT);
	if (xss_bits())
		c->xss_at_start = rdmsr(MSR_IA32_XSS);
	enable_apic();
	note_self(c);
	c->done_seq = c->cmd_seq; /* nothing left over from before an INIT */
	uint32_t gen = c->starts;
	__atomic_store_n(&c->gen, gen, __ATOMIC_RELEASE);
	/* Commands, interrupts on. */
	sti();
	for (;;) {
		uint32_t seq = __atomic_load_n(&c->cmd_seq, __ATOMIC_ACQUIRE);
		if (seq != c->done_seq) {
			c->cmd((unsigned)index);
			__atomic_store_n(&c->done_seq, seq, __ATOMIC_RELEASE);
		}
		pause();
	}
}

/* --- the BSP's side ---------------------------------------------------- */
static void post(unsigned i, void (*fn)(unsigned))
{
	cpus[i].cmd = fn;
	__atomic_store_n(&cpus[i].cmd_seq, cpus[i].cmd_seq + 1, __ATOMIC_RELEASE);
}

static bool done(unsigned i) { return __atomic_load_n(&cpus[i].done_seq, __ATOMIC_ACQUIRE) == cpus[i].cmd_seq; }

static bool wait_done(unsigned i) { return WAIT_UNTIL(done(i), CMD_MS); }

/* A pointer to identity-mapped low memory that the compiler cannot see
 * through (GCC takes small constant addresses for null-pointer offsets). */
static void *low(uint64_t pa)
{
	__asm__("" : "+r"(pa));
	return (void *)pa;
}

static bool read_phys(void *ctx, uint64_t pa, void *buf, size_t len)
{
	(void)ctx;
	if (pa < 0x1000 || pa >= (1ull << 32) || len > (1ull << 32) - pa)
		return false; /* the identity map ends at 4 GiB */
	memcpy(buf, low(pa), len);
	return true;
}

/* ACPI 5.2.5.1: on a PC BIOS, the RSDP is in the first KiB of the EBDA or
 * in E0000-FFFFF, on a 16-byte boundary. */
static const uint8_t *scan_rsdp(uint64_t from, uint64_t to, size_t *len)
{
	for (uint64_t p = from & ~15ull; p + 20 <= to; p += 16) {
		const uint8_t *r = low(p);
		if (memcmp(r, "RSD PTR ", 8))
			continue;
		uint8_t sum = 0;
		for (int i = 0; i < 20; i++)
			sum += r[i];
		if (sum)
			continue;
		*len = r[15] >= 2 && p + ACPI_RSDP_V2_LEN <= to ? ACPI_RSDP_V2_LEN : ACPI_RSDP_V1_LEN;
		return r;
	}
	return NULL;
}

static const uint8_t *find_rsdp(size_t *len)
{
	if (boot_info.rsdp_new) {
		rsdp_from = "multiboot2 tag 15 (ACPI 2.0+)";
		*len = boot_info.rsdp_new_len;
		return boot_info.rsdp_new;
	}
	if (boot_info.rsdp_old) {
		rsdp_from = "multiboot2 tag 14 (ACPI 1.0)";
		*len = boot_info.rsdp_old_len;
		return boot_info.rsdp_old;
	}
	uint64_t ebda = (uint64_t)*(volatile uint16_t *)low(0x40e) << 4;
	const uint8_t *r = NULL;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		r = scan_rsdp(ebda, ebda + 1024, len);
	if (!r)
		r = scan_rsdp(0xe0000, 0x100000, len);
	rsdp_from = r ? "BIOS area scan" : "nowhere";
	return r;
}

static void sgdt(struct dtr *d) { __asm__ volatile("sgdt %0" : "=m"(*d)); }
static void sidt(struct dtr *d) { __asm__ volatile("sidt %0" : "=m"(*d)); }

/* The MADT, the BSP's place in it, the local APIC: once. */
static bool probe(void)
{
	if (probed)
		return probe_ok;
	probed = true;
	uint64_t ab = rdmsr(MSR_IA32_APIC_BASE);
	apic_base = ab & 0xfffff000ull & ((1ull << 32) - 1);
	if (!(ab & APIC_BASE_ENABLE) || (ab & APIC_BASE_X2APIC) || (ab >> 32))
		return false;
	size_t len = 0;
	const uint8_t *rsdp = find_rsdp(&len);
	if (!rsdp) {
		madt_err = ACPI_ERR_ARGS;
		return false;
	}
	madt_err = acpi_parse_madt(rsdp, len, read_phys, NULL, &madt);
	if (madt_err != ACPI_OK)
		return false;
	memset(idx_of_apic, 0, sizeof(idx_of_apic));
	cpus[0].apic_id = apic_read(APIC_ID) >> 24;
	ncpus = 1;
	for (unsigned i = 0; i < madt.n_cpus; i++) {
		const struct acpi_cpu *m = &madt.cpus[i];
		if (!m->enabled || m->apic_id == cpus[0].apic_id || m->apic_id > 255 || ncpus == MAX_CPUS)
			continue;
		idx_of_apic[m->apic_id] = (uint8_t)ncpus;
		cpus[ncpus++].apic_id = m->apic_id;
	}
	/* What the APs take over. */
	sgdt(&bsp.gdtr);
	sidt(&bsp.idtr);
	bsp.cr0 = read_cr0();
	bsp.cr3 = read_cr3();
	bsp.cr4 = read_cr4();
	bsp.efer = rdmsr(MSR_EFER);
	note_self(&cpus[0]);
	cpus[0].up = true;
	cpus[0].gen = cpus[0].starts = 1;
	probe_ok = true;
	return true;
}

static void send_init(unsigned i)
{
	/* Asserted, then de-asserted for the CPUs that want that (SDM 3A
	 * 9.4.4.1; the integrated APICs ignore the de-assert). */
	send_ipi(cpus[i].apic_id, ICR_INIT | ICR_ASSERT | ICR_LEVEL);
	send_ipi(cpus[i].apic_id, ICR_INIT | ICR_LEVEL);
}

/* Two SIPIs 200 us apart; true when the AP reached C in a new generation. */
static bool send_sipis(unsigned i)
{
	struct cpu *c = &cpus[i];
	uint32_t gen = ++c->starts;
	memcpy(low(SMP_TRAMP_BASE), smp_tramp_start, (size_t)(smp_tramp_end - smp_tramp_start));
	volatile uint64_t *slot = low(SMP_SLOTS);
	slot[0] = bsp.cr0;
	slot[1] = bsp.cr3;
	slot[2] = bsp.cr4 & ~CR4_PCIDE;
	slot[3] = bsp.efer & ~(uint64_t)EFER_LMA;
	slot[4] = (uint64_t)&ap_stacks[i][AP_STACK_SIZE];
	slot[5] = (uint64_t)smp_ap_entry;
	slot[6] = i;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	send_ipi(c->apic_id, ICR_STARTUP | ICR_ASSERT | (SMP_TRAMP_BASE >> 12));
	udelay(200);
	send_ipi(c->apic_id, ICR_STARTUP | ICR_ASSERT | (SMP_TRAMP_BASE >> 12));
	return WAIT_UNTIL(__atomic_load_n(&c->gen, __ATOMIC_ACQUIRE) == gen, START_MS);
}

static uint8_t pic_masks[2];

/* Every test: the CPUs up (the first time), the legacy PIC masked, the
 * BSP's APIC enabled. */
static bool setup(void)
{
	pic_save_and_mask(pic_masks);
	if (!probe()) {
		say("no usable CPU list: IA32_APIC_BASE %08llx, RSDP from %s, MADT: %s",
		    (unsigned long long)rdmsr(MSR_IA32_APIC_BASE), rsdp_from ? rsdp_from : "-",
		    madt_err == ACPI_OK ? "not read" : acpi_strerror(madt_err));
		CHECK(false, "cannot find the CPUs");
		return false;
	}
	enable_apic();
	if (!started) {
		started = true;
		guest_set_handler(VEC_SPURIOUS, on_spurious);
		guest_set_handler(VEC_TO_AP, on_to_ap);
		guest_set_handler(VEC_AP_TO_AP, on_ring);
		guest_set_handler(VEC_TLB, on_tlb);
		for (unsigned i = 0; i < MAX_CPUS; i++)
			guest_set_handler(VEC_TO_BSP + i, on_to_bsp);
		for (unsigned i = 1; i < ncpus; i++) {
			/* Generations count from 1 again: the one the AP noted
			 * before it was parked must not pass for the new one. */
			cpus[i].starts = cpus[i].gen = 0;
			send_init(i);
			udelay(10000);
			cpus[i].up = send_sipis(i);
		}
	}
	return true;
}

static void teardown(void)
{
	pic_restore(pic_masks);
}

/* Parks every AP (INIT: wait-for-SIPI), so that no CPU of this suite runs
 * under the suites that may follow. */
static void park(void)
{
	for (unsigned i = 1; i < ncpus; i++) {
		if (cpus[i].up)
			send_init(i);
		cpus[i].up = false;
	}
	started = false;
	guest_set_handler(VEC_TO_AP, 0);
	guest_set_handler(VEC_AP_TO_AP, 0);
	guest_set_handler(VEC_TLB, 0);
	for (unsigned i = 0; i < MAX_CPUS; i++)
		guest_set_handler(VEC_TO_BSP + i, 0);
}

static unsigned aps_up(void)
{
	unsigned n = 0;
	for (unsigned i = 1; i < ncpus; i++)
		n += cpus[i].up;
	return n;
}

/* --- smp.cpus ---------------------------------------------------------- */
TEST(smp, cpus)
{
	if (!setup())
		return;
	env("RSDP from %s (revision %u), MADT at %llx (revision %u), through the %s", rsdp_from,
	    madt.rsdp_revision, (unsigned long long)madt.madt_pa, madt.madt_revision, madt.xsdt ? "XSDT" : "RSDT");
	char ids[8 * ACPI_MAX_CPUS] = "";
	unsigned enabled = 0;
	for (unsigned i = 0; i < madt.n_cpus; i++) {
		size_t l = strlen(ids);
		ksnprintf(ids + l, sizeof(ids) - l, "%s%u%s", i ? " " : "", madt.cpus[i].apic_id,
			  madt.cpus[i].enabled ? "" : "(disabled)");
		enabled += madt.cpus[i].enabled;
	}
	say("MADT: %u processor entries, %u enabled, APIC IDs %s; local APIC at %08llx%s", madt.n_cpus, enabled, ids,
	    (unsigned long long)madt.lapic_addr, madt.lapic_override ? " (override)" : "");
	say("IA32_APIC_BASE: base %08llx, enabled, xAPIC mode, BSP flag %u", (unsigned long long)apic_base,
	    cpus[0].bsp_flag);
	CHECK(madt.lapic_addr == apic_base, "the MADT's local APIC address %llx is not IA32_APIC_BASE's %llx",
	      (unsigned long long)madt.lapic_addr, (unsigned long long)apic_base);
	CHECK(madt.cpus_dropped == 0 && madt.n_cpus <= MAX_CPUS, "more CPUs than the suite handles (%u)", MAX_CPUS);
	bool listed = false;
	for (unsigned i = 0; i < madt.n_cpus; i++)
		listed |= madt.cpus[i].enabled && madt.cpus[i].apic_id == cpus[0].apic_id;
	CHECK(listed, "the MADT does not list the BSP (APIC ID %u)", cpus[0].apic_id);
	if (ncpus == 1)
		say("one CPU: no application processor to start");
	for (unsigned i = 0; i < ncpus; i++) {
		struct cpu *c = &cpus[i];
		if (!c->up) {
			say("cpu%u (APIC ID %u): did not start", i, c->apic_id);
			CHECK(false, "cpu%u (APIC ID %u) did not reach C within %u ms", i, c->apic_id, START_MS);
			continue;
		}
		say("cpu%u (APIC ID %u): %s, generation %u: APIC ID register %u, CPUID.1 EBX[31:24] %u, "
		    "IA32_APIC_BASE.BSP %u",
		    i, c->apic_id, i ? "started" : "the BSP", c->gen, c->lapic_id, c->cpuid_id, c->bsp_flag);
		say("cpu%u: CR0 %08llx CR4 %08llx EFER %08llx%s", i, (unsigned long long)c->cr0,
		    (unsigned long long)c->cr4, (unsigned long long)c->efer,
		    i == 0 ? "" : c->cr0 == cpus[0].cr0 && c->cr4 == cpus[0].cr4 && c->efer == cpus[0].efer
				      ? " (the BSP's)" : " (not the BSP's)");
		CHECK(c->lapic_id == c->apic_id && c->cpuid_id == c->apic_id, "cpu%u: APIC IDs %u %u, MADT %u", i,
		      c->lapic_id, c->cpuid_id, c->apic_id);
		CHECK(c->bsp_flag == (i == 0), "cpu%u: BSP flag %u", i, c->bsp_flag);
		CHECK(c->cr0 == cpus[0].cr0 && c->cr4 == cpus[0].cr4 && c->efer == cpus[0].efer,
		      "cpu%u: control registers differ from the BSP's", i);
	}
	teardown();
}

/* --- smp.counter ------------------------------------------------------- */
static volatile uint32_t lock_word, go;
static volatile uint64_t locked_total, xadd_total;

static void spin_lock(volatile uint32_t *l)
{
	for (;;) {
		uint32_t v = 1;
		__asm__ volatile("xchgl %0, %1" : "+r"(v), "+m"(*l) : : "memory"); /* locked */
		if (!v)
			return;
		while (*l)
			pause();
	}
}

static void spin_unlock(volatile uint32_t *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

static uint64_t lock_xadd(volatile uint64_t *p, uint64_t v)
{
	__asm__ volatile("lock xaddq %0, %1" : "+r"(v), "+m"(*p) : : "memory");
	return v;
}

static void count_work(unsigned idx)
{
	while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
		pause();
	uint64_t n = 0;
	for (unsigned r = 0; r < COUNT_ROUNDS; r++) {
		spin_lock(&lock_word);
		locked_total = locked_total + 1;
		spin_unlock(&lock_word);
		lock_xadd(&xadd_total, 1);
		n++;
	}
	cpus[idx].counted = n;
}

TEST(smp, counter)
{
	if (!setup())
		return;
	lock_word = 0;
	locked_total = xadd_total = 0;
	__atomic_store_n(&go, 0, __ATOMIC_RELEASE);
	unsigned n = 1;
	for (unsigned i = 1; i < ncpus; i++) {
		cpus[i].counted = 0;
		if (cpus[i].up) {
			post(i, count_work);
			n++;
		}
	}
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	count_work(0);
	for (unsigned i = 1; i < ncpus; i++) {
		if (!cpus[i].up)
			continue;
		bool ok = wait_done(i);
		CHECK(ok, "cpu%u did not finish within %u ms", i, CMD_MS);
	}
	for (unsigned i = 0; i < ncpus; i++)
		if (cpus[i].up)
			say("cpu%u: %llu increments of each counter", i, (unsigned long long)cpus[i].counted);
	uint64_t want = (uint64_t)n * COUNT_ROUNDS;
	say("in all (CPUs: %u, %u increments each): counter under a spinlock (xchg) %llu, lock xadd counter %llu",
	    n, COUNT_ROUNDS, (unsigned long long)locked_total, (unsigned long long)xadd_total);
	CHECK(locked_total == want && xadd_total == want, "expected %llu", (unsigned long long)want);
	teardown();
}

/* --- smp.ipi ----------------------------------------------------------- */
/* What a CPUID (leaf 0) costs on the CPU that runs this, per instruction
 * over CPUID_OPS (make bench: C<n>_smp on an AP against the BSP). */
#define CPUID_OPS 100
static volatile uint64_t ap_cpuid_ticks;

static uint64_t cpuid_cost(void)
{
	uint64_t t0 = rdtsc();
	for (unsigned k = 0; k < CPUID_OPS; k++)
		(void)cpuid(0, 0);
	return (rdtsc() - t0) / CPUID_OPS;
}

static void cpuid_on_ap(unsigned idx)
{
	(void)idx;
	ap_cpuid_ticks = cpuid_cost();
}

#define IPIS_PER_AP 10
/* An IPI not seen within this many TSC ticks is lost (a second at 100 MHz). */
#define IPI_SPIN_TICKS 100000000ull

static void send_to_bsp(unsigned idx) { send_ipi(cpus[0].apic_id, ICR_FIXED | (VEC_TO_BSP + idx)); }

static unsigned next_ap(unsigned i)
{
	for (unsigned j = i + 1; j < ncpus; j++)
		if (cpus[j].up)
			return j;
	for (unsigned j = 1; j < i; j++)
		if (cpus[j].up)
			return j;
	return i;
}

static void send_ring(unsigned idx) { send_ipi(cpus[next_ap(idx)].apic_id, ICR_FIXED | VEC_AP_TO_AP); }

TEST(smp, ipi)
{
	if (!setup())
		return;
	if (!aps_up()) {
		say("no application processor: no IPIs between CPUs");
		teardown();
		return;
	}
	/* BSP -> each AP, one at a time: each counted before the next is sent
	 * (two of one vector could merge in the IRR). */
	for (unsigned i = 1; i < ncpus; i++) {
		struct cpu *c = &cpus[i];
		if (!c->up)
			continue;
		c->ipis = 0;
		unsigned sent = 0;
		for (unsigned k = 0; k < IPIS_PER_AP; k++) {
			if (!send_ipi(c->apic_id, ICR_FIXED | VEC_TO_AP))
				break;
			sent++;
			if (!WAIT_UNTIL(c->ipis == sent, IPI_MS))
				break;
		}
		say("cpu0 -> cpu%u: %u IPIs sent, %u received", i, sent, c->ipis);
		CHECK(sent == IPIS_PER_AP && c->ipis == IPIS_PER_AP, "cpu%u: %u of %u", i, c->ipis, IPIS_PER_AP);
	}
	/* What one IPI costs, from the ICR write to its handler's count seen
	 * by the sender, cpu0 -> cpu1 (make bench: IPI<depth>).  Ticks
	 * differ with the depth: an environment fact. */
	if (cpus[1].up) {
		struct cpu *c = &cpus[1];
		uint64_t total = 0;
		unsigned done_n = 0;
		for (unsigned k = 0; k < IPIS_PER_AP; k++) {
			c->ipis = 0;
			uint64_t t0 = rdtsc();
			if (!send_ipi(c->apic_id, ICR_FIXED | VEC_TO_AP))
				break;
			while (c->ipis == 0 && rdtsc() - t0 < IPI_SPIN_TICKS)
				pause();
			if (c->ipis == 0)
				break;
			total += rdtsc() - t0;
			done_n++;
		}
		CHECK(done_n == IPIS_PER_AP, "cpu0 -> cpu1 timed: %u of %u arrived", done_n, IPIS_PER_AP);
		if (done_n)
			env("bench.ipi: ipi ticks_per_op=%llu ops=%u", (unsigned long long)(total / done_n), done_n);
		ap_cpuid_ticks = 0;
		post(1, cpuid_on_ap);
		CHECK(wait_done(1), "cpu1 did not time CPUID within %u ms", CMD_MS);
		uint64_t on_bsp = cpuid_cost();
		env("bench.cpuid_smp: ap ticks_per_op=%llu bsp ticks_per_op=%llu",
		    (unsigned long long)ap_cpuid_ticks, (unsigned long long)on_bsp);
	}
	/* Every AP -> the BSP at once, each with a vector of its own. */
	for (unsigned i = 0; i < MAX_CPUS; i++)
		to_bsp[i] = 0;
	for (unsigned i = 1; i < ncpus; i++)
		if (cpus[i].up)
			post(i, send_to_bsp);
	for (unsigned i = 1; i < ncpus; i++)
		if (cpus[i].up)
			CHECK(wait_done(i), "cpu%u did not send within %u ms", i, CMD_MS);
	sti();
	for (unsigned i = 1; i < ncpus; i++)
		if (cpus[i].up)
			WAIT_UNTIL(to_bsp[i] != 0, IPI_MS);
	cli();
	for (unsigned i = 1; i < ncpus; i++) {
		if (!cpus[i].up)
			continue;
		say("cpu%u -> cpu0: 1 IPI sent (vector %#x), %u received", i, VEC_TO_BSP + i, to_bsp[i]);
		CHECK(to_bsp[i] == 1, "cpu%u -> cpu0: %u", i, to_bsp[i]);
	}
	/* Every AP -> the next AP at once (with one AP: nothing). */
	if (aps_up() < 2) {
		say("one application processor: no IPIs between APs");
	} else {
		for (unsigned i = 1; i < ncpus; i++)
			cpus[i].ring_ipis = 0;
		for (unsigned i = 1; i < ncpus; i++)
			if (cpus[i].up)
				post(i, send_ring);
		for (unsigned i = 1; i < ncpus; i++)
			if (cpus[i].up)
				CHECK(wait_done(i), "cpu%u did not send within %u ms", i, CMD_MS);
		for (unsigned i = 1; i < ncpus; i++)
			if (cpus[i].up)
				WAIT_UNTIL(cpus[i].ring_ipis != 0, IPI_MS);
		for (unsigned i = 1; i < ncpus; i++) {
			if (!cpus[i].up)
				continue;
			say("cpu%u -> cpu%u: 1 IPI sent, %u received", i, next_ap(i), cpus[next_ap(i)].ring_ipis);
			CHECK(cpus[next_ap(i)].ring_ipis == 1, "cpu%u -> cpu%u", i, next_ap(i));
		}
	}
	teardown();
}

/* --- smp.tlb_shootdown ------------------------------------------------- */
static uint64_t tlb_pd[512] __attribute__((aligned(4096)));
static uint64_t tlb_pt[512] __attribute__((aligned(4096)));
static uint64_t frame_a[512] __attribute__((aligned(4096)));
static uint64_t frame_b[512] __attribute__((aligned(4096)));

static void tlb_warm(unsigned idx)
{
	invlpg((const void *)TLB_VA);
	cpus[idx].tlb_before = *(volatile uint64_t *)TLB_VA;
}

static void flush_all(unsigned idx)
{
	(void)idx;
	write_cr3(read_cr3());
}

TEST(smp, tlb_shootdown)
{
	if (!setup())
		return;
	uint64_t *pml4 = (uint64_t *)(read_cr3() & 0x000ffffffffff000ull);
	uint64_t *pdpt = (uint64_t *)(pml4[0] & 0x000ffffffffff000ull);
	unsigned slot = (unsigned)((TLB_VA >> 30) & 511);
	if (pdpt[slot]) {
		say("PDPT entry %u is in use: no test", slot);
		CHECK(false, "PDPT entry %u: %llx", slot, (unsigned long long)pdpt[slot]);
		park();
		teardown();
		return;
	}
	frame_a[0] = 0xaaaa0001;
	frame_b[0] = 0xbbbb0002;
	memset(tlb_pd, 0, sizeof(tlb_pd));
	memset(tlb_pt, 0, sizeof(tlb_pt));
	tlb_pt[0] = (uint64_t)frame_a | 3;
	tlb_pd[0] = (uint64_t)tlb_pt | 3;
	__atomic_store_n(&pdpt[slot], (uint64_t)tlb_pd | 3, __ATOMIC_SEQ_CST);
	say("%llx -> frame A (%llx), 4 KiB page", TLB_VA, (unsigned long long)frame_a[0]);

	/* Every CPU reads it: its TLB has frame A. */
	tlb_warm(0);
	for (unsigned i = 1; i < ncpus; i++)
		if (cpus[i].up) {
			cpus[i].tlb_before = cpus[i].tlb_after = 0;
			cpus[i].tlb_ipis = 0;
			post(i, tlb_warm);
			CHECK(wait_done(i), "cpu%u did not read within %u ms", i, CMD_MS);
		}
	/* Frame B instead; this CPU invalidates its own entry, the others on
	 * the IPI. */
	__atomic_store_n(&tlb_pt[0], (uint64_t)frame_b | 3, __ATOMIC_SEQ_CST);
	invlpg((const void *)TLB_VA);
	cpus[0].tlb_after = *(volatile uint64_t *)TLB_VA;
	for (unsigned i = 1; i < ncpus; i++) {
		if (!cpus[i].up)
			continue;
		send_ipi(cpus[i].apic_id, ICR_FIXED | VEC_TLB);
		CHECK(WAIT_UNTIL(cpus[i].tlb_ipis != 0, IPI_MS), "cpu%u: no shootdown within %u ms", i, IPI_MS);
	}
	for (unsigned i = 0; i < ncpus; i++) {
		struct cpu *c = &cpus[i];
		if (!c->up)
			continue;
		say("cpu%u: read %llx, after the shootdown %llx%s", i, (unsigned long long)c->tlb_before,
		    (unsigned long long)c->tlb_after, i ? "" : " (its own invlpg)");
		CHECK(c->tlb_before == frame_a[0] && c->tlb_after == frame_b[0], "cpu%u", i);
		if (i)
			CHECK(c->tlb_ipis == 1, "cpu%u: %u shootdown IPIs", i, c->tlb_ipis);
	}
	/* The mapping goes again, from every CPU's TLB and paging-structure
	 * caches. */
	__atomic_store_n(&pdpt[slot], 0, __ATOMIC_SEQ_CST);
	flush_all(0);
	for (unsigned i = 1; i < ncpus; i++)
		if (cpus[i].up) {
			post(i, flush_all);
			CHECK(wait_done(i), "cpu%u did not flush within %u ms", i, CMD_MS);
		}
	/* The last test of the suite (tests run sorted by name). */
	park();
	teardown();
}

/* --- smp.absent_write ---------------------------------------------------
 * Memory that does not exist reads all ones and drops writes, for every
 * CPU at every moment: cpu0 writes there again and again while cpu1 reads
 * the same address, each read walking the page tables afresh.  (Under
 * Nestor such a write is done by the CPU into a sink page mapped for that
 * one instruction - which no other vCPU may see.) */
#define ABSENT_PA (32ull << 30) /* 32 GiB: no memory there */
#define ABSENT_VA (6ull << 30)  /* PDPT entry 6, above the identity map */
static uint64_t absent_pd[512] __attribute__((aligned(4096)));
static volatile uint32_t absent_stop;
static volatile uint64_t absent_reads, absent_not_ones;

static void absent_reader(unsigned idx)
{
	(void)idx;
	volatile uint64_t *p = (volatile uint64_t *)ABSENT_VA;
	uint64_t n = 0, bad = 0;
	while (!__atomic_load_n(&absent_stop, __ATOMIC_ACQUIRE)) {
		invlpg((const void *)p);
		bad += *p != ~0ull;
		n++;
	}
	absent_reads = n;
	absent_not_ones = bad;
	invlpg((const void *)p);
}

TEST(smp, absent_write)
{
	if (!setup())
		return;
	uint64_t *pml4 = (uint64_t *)(read_cr3() & 0x000ffffffffff000ull);
	uint64_t *pdpt = (uint64_t *)(pml4[0] & 0x000ffffffffff000ull);
	unsigned slot = (unsigned)((ABSENT_VA >> 30) & 511);
	if (ncpus < 2 || !cpus[1].up || pdpt[slot]) {
		say("%s", pdpt[slot] ? "PDPT entry in use: no test" : "no application processor");
		CHECK(!pdpt[slot], "PDPT entry %u: %llx", slot, (unsigned long long)pdpt[slot]);
		teardown();
		return;
	}
	memset(absent_pd, 0, sizeof(absent_pd));
	absent_pd[0] = ABSENT_PA | 0x83; /* present, writable, 2 MiB */
	pdpt[slot] = (uint64_t)absent_pd | 3;
	absent_stop = 0;
	absent_reads = absent_not_ones = 0;
	post(1, absent_reader);
	udelay(2000);
	volatile uint64_t *p = (volatile uint64_t *)ABSENT_VA;
	unsigned back = 0;
	for (unsigned i = 0; i < 200; i++) {
		*p = 0x5a5a5a5a00000000ull + i;
		back += *p != ~0ull;
	}
	__atomic_store_n(&absent_stop, 1, __ATOMIC_RELEASE);
	bool answered = wait_done(1);
	pdpt[slot] = 0;
	invlpg((const void *)p);
	say("cpu0 wrote 200 times at %llx, where there is no memory: it read back %s; cpu1, reading there "
	    "meanwhile: %s",
	    ABSENT_PA, back ? "something else than ones" : "ones", absent_not_ones ? "NOT ALWAYS ONES" : "always ones");
	CHECK(answered && absent_reads > 0, "cpu1 did not read");
	CHECK(back == 0 && absent_not_ones == 0, "%u and %llu reads were not ones", back,
	      (unsigned long long)absent_not_ones);
	teardown();
}

/* --- smp.apic_store_forms --------------------------------------------------
 * The instructions a guest may write an xAPIC register with (32-bit stores,
 * SDM 3A 11.4.1): with several CPUs Nestor traps xAPIC writes and does them
 * itself, decoding each form.  TPR (bits 7:0 kept) shows what was written. */
static uint32_t tpr_after(void) { return apic_read(APIC_TPR); }

TEST(smp, apic_store_forms)
{
	if (!setup())
		return;
	volatile uint32_t *tpr = (volatile uint32_t *)(apic_base + APIC_TPR);
	uint32_t old;
	__asm__ volatile("movl %1, %0" : "=m"(*tpr) : "r"(0x11u) : "memory");
	say("mov r32 -> TPR: %02x", tpr_after());
	__asm__ volatile("movl $0x22, %0" : "=m"(*tpr) : : "memory");
	say("mov imm32 -> TPR: %02x", tpr_after());
	old = 0x33;
	__asm__ volatile("xchgl %0, %1" : "+r"(old), "+m"(*tpr) : : "memory");
	say("xchg -> TPR: %02x, the register got %08x", tpr_after(), old);
	if (apic_base == 0xfee00000ull) {
		__asm__ volatile("movabs %%eax, 0xfee00080" : : "a"(0x44u) : "memory");
		say("mov eax -> moffs64 TPR: %02x", tpr_after());
	}
	/* RSP as the source: the low 32 bits of the stack pointer. */
	uint64_t rsp;
	__asm__ volatile("movq %%rsp, %0\n\tmovl %%esp, (%1)" : "=&r"(rsp) : "r"(tpr) : "memory");
	say("mov esp -> TPR: the low byte of ESP %s", tpr_after() == (rsp & 0xff) ? "kept" : "NOT kept");
	CHECK(tpr_after() == (rsp & 0xff), "mov esp -> TPR: %02x, esp %08x", tpr_after(), (unsigned)rsp);
	CHECK(old == 0x22, "xchg returned %08x", old);
	*tpr = 0;
	say("mov r32 0 -> TPR: %02x", tpr_after());
	teardown();
}

/* --- smp.mtrr_while_running --------------------------------------------------
 * An MTRR write changes the memory types of the EPT every vCPU runs under:
 * Nestor rebuilds it and has every other vCPU flush its EPT translations
 * (vmx/sync.c) while they run.  The APs must go on as if nothing happened. */
static void heartbeat_work(unsigned idx);

/* The first variable MTRR pair whose mask has V = 0 (free), or ~0u. */
static unsigned free_mtrr_pair(void)
{
	unsigned vcnt = rdmsr(0xfe) & 0xff;
	for (unsigned i = 0; i < vcnt; i++)
		if (!(rdmsr(0x201 + 2 * i) & (1u << 11)))
			return i;
	return ~0u;
}

TEST(smp, mtrr_while_running)
{
	if (!setup())
		return;
	if (!aps_up() || !(cpuid(1, 0).edx & (1u << 12))) {
		say("no application processor or no MTRRs");
		teardown();
		return;
	}
	unsigned pair = free_mtrr_pair();
	if (pair == ~0u) {
		say("no free variable MTRR");
		teardown();
		return;
	}
	for (unsigned i = 1; i < ncpus; i++)
		if (cpus[i].up) {
			cpus[i].heartbeat = 0;
			post(i, heartbeat_work);
		}
	uint64_t base = rdmsr(0x200 + 2 * pair), mask = rdmsr(0x201 + 2 * pair);
	unsigned maxpa = cpuid(0x80000008, 0).eax & 0xff;
	uint64_t m1m = (((1ull << maxpa) - 1) & ~0xfffffull) | (1u << 11);
	for (unsigned k = 0; k < 8; k++) {
		wrmsr(0x200 + 2 * pair, (0x2000000 + (k << 20)) | (k & 1 ? 0 : 4)); /* UC or WT */
		wrmsr(0x201 + 2 * pair, m1m);
		udelay(1000);
		wrmsr(0x201 + 2 * pair, mask);
	}
	wrmsr(0x200 + 2 * pair, base);
	bool all = true;
	for (unsigned i = 1; i < ncpus; i++) {
		struct cpu *c = &cpus[i];
		if (!c->up)
			continue;
		uint64_t h1 = c->heartbeat;
		udelay(2000);
		bool beating = c->heartbeat != h1 && h1 > 0;
		say("cpu%u: heartbeat %s after 16 MTRR writes on cpu0", i, beating ? "still running" : "STOPPED");
		all = all && beating;
	}
	CHECK(all, "an AP stopped");
	CHECK(rdmsr(0x201 + 2 * pair) == mask && rdmsr(0x200 + 2 * pair) == base, "MTRR pair %u not restored", pair);
	/* The APs are in heartbeat_work (interrupts off, never returning):
	 * INIT them back into wait-for-SIPI; the next test starts them. */
	park();
	teardown();
}

/* --- smp.mtrr_per_cpu --------------------------------------------------------
 * Every logical processor has MTRRs of its own (SDM Vol. 3A 12.11.8: the
 * OS keeps them consistent by writing each CPU's): a write on one CPU is not
 * seen on another.  The PHYSBASE of a free variable pair (mask V = 0, so no
 * memory type changes) is written on cpu0, then on the AP; each reads both. */
static uint32_t mtrr_msr;
static uint64_t mtrr_ap_val, mtrr_ap_write;

static void mtrr_ap_read(unsigned idx)
{
	(void)idx;
	mtrr_ap_val = rdmsr(mtrr_msr);
}

static void mtrr_ap_put(unsigned idx)
{
	(void)idx;
	wrmsr(mtrr_msr, mtrr_ap_write);
	mtrr_ap_val = rdmsr(mtrr_msr);
}

static bool mtrr_on_ap(unsigned i, void (*fn)(unsigned))
{
	post(i, fn);
	bool ok = wait_done(i);
	CHECK(ok, "cpu%u did not answer within %u ms", i, CMD_MS);
	return ok;
}

TEST(smp, mtrr_per_cpu)
{
	if (!setup())
		return;
	unsigned ap = 0;
	for (unsigned i = 1; i < ncpus && !ap; i++)
		if (cpus[i].up)
			ap = i;
	if (!ap || !(cpuid(1, 0).edx & (1u << 12))) {
		say("no application processor or no MTRRs");
		teardown();
		return;
	}
	unsigned pair = free_mtrr_pair();
	if (pair == ~0u) {
		say("no free variable MTRR");
		teardown();
		return;
	}
	mtrr_msr = 0x200 + 2 * pair;
	uint64_t bsp_old = rdmsr(mtrr_msr);
	if (!mtrr_on_ap(ap, mtrr_ap_read))
		return;
	uint64_t ap_old = mtrr_ap_val;
	say("PHYSBASE%u: cpu0 reads %016llx, cpu%u reads %016llx", pair, (unsigned long long)bsp_old, ap,
	    (unsigned long long)ap_old);
	wrmsr(mtrr_msr, 0x5000006);
	if (!mtrr_on_ap(ap, mtrr_ap_read))
		return;
	say("after cpu0 wrote 5000006: cpu0 reads %016llx, cpu%u reads %016llx", (unsigned long long)rdmsr(mtrr_msr),
	    ap, (unsigned long long)mtrr_ap_val);
	CHECK(mtrr_ap_val == ap_old, "cpu0's write reached cpu%u", ap);
	mtrr_ap_write = 0x7000005;
	if (!mtrr_on_ap(ap, mtrr_ap_put))
		return;
	say("after cpu%u wrote 7000005: cpu0 reads %016llx, cpu%u reads %016llx", ap,
	    (unsigned long long)rdmsr(mtrr_msr), ap, (unsigned long long)mtrr_ap_val);
	CHECK(rdmsr(mtrr_msr) == 0x5000006, "cpu%u's write reached cpu0", ap);
	wrmsr(mtrr_msr, bsp_old);
	mtrr_ap_write = ap_old;
	if (!mtrr_on_ap(ap, mtrr_ap_put))
		return;
	CHECK(rdmsr(mtrr_msr) == bsp_old && mtrr_ap_val == ap_old, "PHYSBASE%u not restored", pair);
	teardown();
}

/* --- smp.init_restart -------------------------------------------------- */
static void heartbeat_work(unsigned idx)
{
	cli();
	for (;;) {
		cpus[idx].heartbeat = cpus[idx].heartbeat + 1;
		pause();
	}
}

static void nothing(unsigned idx) { (void)idx; }

TEST(smp, init_restart)
{
	if (!setup())
		return;
	if (!aps_up()) {
		say("no application processor to restart");
		teardown();
		return;
	}
	for (unsigned i = 1; i < ncpus; i++) {
		struct cpu *c = &cpus[i];
		if (!c->up)
			continue;
		uint32_t gen_before = c->gen;
		c->heartbeat = 0;
		post(i, heartbeat_work);
		bool beating = WAIT_UNTIL(c->heartbeat >= 1000, CMD_MS);
		say("cpu%u: generation %u, heartbeat %s", i, c->gen, beating ? "running" : "not running");
		CHECK(beating, "cpu%u: no heartbeat", i);
		send_init(i);
		udelay(10000);
		uint64_t h1 = c->heartbeat;
		udelay(20000);
		uint64_t h2 = c->heartbeat;
		say("cpu%u: INIT: heartbeat %s", i, h1 == h2 ? "stopped" : "still running");
		CHECK(h1 == h2, "cpu%u: heartbeat went on after INIT", i);
		c->up = send_sipis(i);
		if (!c->up) {
			say("cpu%u: SIPI: did not restart", i);
			CHECK(false, "cpu%u: no restart within %u ms", i, START_MS);
			continue;
		}
		uint64_t h3 = c->heartbeat;
		post(i, nothing);
		bool answers = wait_done(i);
		say("cpu%u: SIPI: restarted at the trampoline, generation %u, APIC ID register %u; heartbeat %s; "
		    "%s commands",
		    i, c->gen, c->lapic_id, h3 == h2 && c->heartbeat == h2 ? "still stopped" : "moved",
		    answers ? "takes" : "does not take");
		CHECK(c->gen == gen_before + 1 && c->lapic_id == c->apic_id, "cpu%u: generation %u, APIC ID %u", i, c->gen,
		      c->lapic_id);
		CHECK(h3 == h2 && c->heartbeat == h2 && answers, "cpu%u", i);
	}
	teardown();
}

/* --- smp.init_apic_reset ----------------------------------------------- */
/* An INIT resets the local APIC (SDM 3A 11.4.7.3): every register as at
 * power-up but the APIC ID - LVT masked, timer stopped, SVR 0xFF, TPR, LDR,
 * IRR and ISR 0, DFR all ones.  Each AP sets them all otherwise, takes an
 * IPI it does not end (its vector stays in service) and has a second one
 * pending behind it; after INIT and SIPI it notes what it finds before it
 * touches its APIC (smp_ap_entry). */
#define VEC_NO_EOI 0x5a  /* in service until the INIT */
#define VEC_BLOCKED 0x59 /* same priority class: pending behind it */
static volatile uint32_t no_eoi_taken, blocked_taken;
static uint32_t apic_before[APIC_REGS];

static void on_no_eoi(struct trap_frame *f) { (void)f; no_eoi_taken++; }
static void on_blocked(struct trap_frame *f)
{
	(void)f;
	blocked_taken++;
	eoi();
}

static void apic_dirty(unsigned idx)
{
	(void)idx;
	apic_write(APIC_TPR, 0x10);
	apic_write(0xe0, 0x0fffffff); /* DFR: cluster model */
	apic_write(0xd0, 0x02000000); /* LDR */
	apic_write(0x3e0, 0xa);	      /* divide by 128 */
	apic_write(0x320, 0x20040);   /* periodic, vector 0x40 ... */
	apic_write(0x380, 0xffffffff); /* ... that never fires in this test */
	apic_write(0x350, 0x41);
	apic_write(0x360, 0x400); /* NMI */
	apic_write(0x370, 0x42);
	if (xss_bits())
		wrmsr(MSR_IA32_XSS, xss_bits());
	/* CR2; IA32_PAT with entry 7 write-combining (nothing here uses it). */
	write_cr2(0x5678);
	wrmsr(MSR_IA32_PAT, (rdmsr(MSR_IA32_PAT) & ~(0xffull << 56)) | (1ull << 56));
	/* Debug registers: breakpoints at addresses nothing here uses. */
	write_dr0(0x1230), write_dr1(0x2340), write_dr2(0x3450), write_dr3(0x4560);
	write_dr6(0xffff0ff1), write_dr7(0x455);
}

static void apic_note_before(unsigned idx)
{
	(void)idx;
	note_apic(apic_before);
}

static void print_apic(const char *when, const uint32_t *regs)
{
	char line[512];
	size_t n = 0;
	for (unsigned r = 0; r < APIC_REGS && n < sizeof(line); r++) {
		/* The running timer's count depends on time: only whether it is 0. */
		if (apic_regs[r].off == 0x390)
			n += (size_t)ksnprintf(line + n, sizeof(line) - n, "%s%s %s", r ? ", " : "",
					       apic_regs[r].name, regs[r] ? "running" : "0");
		else
			n += (size_t)ksnprintf(line + n, sizeof(line) - n, "%s%s %x", r ? ", " : "",
					       apic_regs[r].name, regs[r]);
	}
	say("cpu%s: %s", when, line);
}

TEST(smp, init_apic_reset)
{
	if (!setup())
		return;
	if (!aps_up()) {
		say("no application processor to reset");
		teardown();
		return;
	}
	guest_set_handler(VEC_NO_EOI, on_no_eoi);
	guest_set_handler(VEC_BLOCKED, on_blocked);
	for (unsigned i = 1; i < ncpus; i++) {
		struct cpu *c = &cpus[i];
		if (!c->up)
			continue;
		no_eoi_taken = blocked_taken = 0;
		post(i, apic_dirty);
		CHECK(wait_done(i), "cpu%u did not program its APIC within %u ms", i, CMD_MS);
		send_ipi(c->apic_id, ICR_FIXED | VEC_NO_EOI);
		CHECK(WAIT_UNTIL(no_eoi_taken == 1, IPI_MS), "cpu%u did not take vector %#x", i, VEC_NO_EOI);
		send_ipi(c->apic_id, ICR_FIXED | VEC_BLOCKED);
		udelay(1000);
		post(i, apic_note_before);
		CHECK(wait_done(i), "cpu%u did not read its APIC within %u ms", i, CMD_MS);
		char who[32];
		ksnprintf(who, sizeof(who), "%u before INIT", i);
		print_apic(who, apic_before);
		send_init(i);
		udelay(10000);
		c->up = send_sipis(i);
		CHECK(c->up, "cpu%u: no restart within %u ms", i, START_MS);
		if (!c->up)
			continue;
		ksnprintf(who, sizeof(who), "%u after INIT, SIPI", i);
		print_apic(who, (const uint32_t *)c->apic_at_start);
		/* And the debug registers (SDM 3A table 10-1). */
		const volatile uint64_t *d = c->dr_at_start;
		say("cpu%u after INIT, SIPI: DR0 %llx DR1 %llx DR2 %llx DR3 %llx DR6 %llx DR7 %llx", i,
		    (unsigned long long)d[0], (unsigned long long)d[1], (unsigned long long)d[2],
		    (unsigned long long)d[3], (unsigned long long)d[4], (unsigned long long)d[5]);
		CHECK(!d[0] && !d[1] && !d[2] && !d[3] && d[4] == 0xffff0ff0 && d[5] == 0x400,
		      "cpu%u: debug registers not reset by the INIT", i);
		say("cpu%u after INIT, SIPI: CR2 %llx, IA32_PAT %016llx", i, (unsigned long long)c->cr2_at_start,
		    (unsigned long long)c->pat_at_start);
		CHECK(c->cr2_at_start == 0 && (c->pat_at_start >> 56) == 1, "cpu%u: CR2 kept or IA32_PAT reset", i);
		/* An INIT clears IA32_XSS too (SDM 3A table 10-1). */
		if (xss_bits()) {
			say("cpu%u: IA32_XSS %llx before INIT, %llx after", i, (unsigned long long)xss_bits(),
			    (unsigned long long)c->xss_at_start);
			CHECK(c->xss_at_start == 0, "cpu%u: IA32_XSS kept through INIT", i);
		}
		/* Its APIC enabled again: nothing of before arrives. */
		udelay(1000);
		say("cpu%u: vector %#x taken %u times, vector %#x %u times", i, VEC_NO_EOI, no_eoi_taken, VEC_BLOCKED,
		    blocked_taken);
		CHECK(c->apic_at_start[3] == 0xff && !c->apic_at_start[11] && !c->apic_at_start[12] &&
			      c->apic_at_start[4] == 0x10000 && !c->apic_at_start[9],
		      "cpu%u: its APIC was not reset by the INIT", i);
		CHECK(blocked_taken == 0, "cpu%u: a request pending before the INIT arrived after it", i);
	}
	guest_set_handler(VEC_NO_EOI, 0);
	guest_set_handler(VEC_BLOCKED, 0);
	teardown();
}

/* An L2 that says it runs, then loops: what the VMX tests below interrupt
 * (an INIT or NMI sent before would meet cpu1's own code instead). */
volatile uint32_t smp_l2_running;
extern const char smp_l2_spin[], smp_l2_spin_loop[];
__asm__(".pushsection .text\n"
	".balign 16\n"
	".globl smp_l2_spin, smp_l2_spin_loop\n"
	"smp_l2_spin:\n"
	"	movl $1, smp_l2_running(%rip)\n"
	"smp_l2_spin_loop:\n"
	"	jmp smp_l2_spin_loop\n"
	".popsection");

static bool wait_l2_running(void)
{
	return WAIT_UNTIL(__atomic_load_n(&smp_l2_running, __ATOMIC_ACQUIRE) != 0, CMD_MS);
}

/* cpu1 in VMX operation with a VMCS for an L2 (vmx_lib.c, whose state only
 * one CPU uses at a time).  The firmware locks IA32_FEATURE_CONTROL on the
 * BSP; an AP may find it open (VMXON would #GP). */
static bool ap_vmx_begin(void)
{
	uint64_t fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
	if (!(fc & 1))
		wrmsr(MSR_IA32_FEATURE_CONTROL, fc | 5);
	return vmx_begin() && vm_setup();
}

/* --- smp.init_vmx ------------------------------------------------------
 * An INIT for a CPU that runs a guest of its own is a VM exit (SDM 25.2),
 * not a reset: cpu1 enters VMX operation, runs an L2 (a VMCALL, then a
 * loop) and gets cpu0's INIT as an exit.  What follows differs between a
 * CPU that keeps the INIT pending after that exit (Bochs 2.7: its VMXOFF
 * then resets the CPU) and one that does not (the SDM): so cpu1 does
 * nothing anyone can see once it wrote what it got, and cpu0 restarts it
 * with INIT-SIPI either way. */
static struct {
	volatile uint32_t stage; /* 1: entering the loop, 2: back from it */
	bool vmx;
	uint32_t first, reason, idt_info, activity;
	uint64_t qual;
	long rip_off;
} apv;

/* A test of cpu1's VMX: the CPUs up, cpu1 there, its record cleared. */
static bool ap_test_start(void)
{
	if (!setup())
		return false;
	if (ncpus < 2 || !cpus[1].up) {
		say("no application processor");
		teardown();
		return false;
	}
	memset((void *)&apv, 0, sizeof(apv));
	return true;
}

/* The end of a test that left cpu1 stopped (its VMX state on this side
 * forgotten - cpu0 is not in VMX operation): INIT-SIPI, and a command. */
static void ap_restart(void)
{
	struct cpu *c = &cpus[1];
	vmx_end();
	send_init(1);
	udelay(10000);
	c->up = send_sipis(1);
	bool answers = false;
	if (c->up) {
		post(1, nothing);
		answers = wait_done(1);
	}
	say("cpu1: INIT-SIPI: %s, %s commands", c->up ? "restarted" : "did not restart",
	    answers ? "takes" : "does not take");
	CHECK(c->up && answers, "cpu1 did not come back");
	teardown();
}

static void vmx_then_init(unsigned idx)
{
	(void)idx;
	apv.vmx = ap_vmx_begin();
	if (apv.vmx) {
		apv.first = vm_go(); /* l2_vmcall */
		vm_at(smp_l2_spin, RFLAGS_FIXED);
		__atomic_store_n(&apv.stage, 1, __ATOMIC_RELEASE);
		apv.reason = vm_go();
		apv.qual = vm.x.qual;
		apv.rip_off = rip_off(smp_l2_spin_loop);
		apv.idt_info = vm.x.idt_info;
		apv.activity = vm.x.activity;
	}
	__atomic_store_n(&apv.stage, 2, __ATOMIC_RELEASE);
	if (apv.vmx)
		__asm__ volatile("vmxoff" ::: "cc", "memory");
	cli();
	for (;;)
		pause();
}

TEST(smp, init_vmx)
{
	if (!ap_test_start())
		return;
	smp_l2_running = 0;
	post(1, vmx_then_init);
	bool in = wait_l2_running();
	send_init(1);
	bool back = WAIT_UNTIL(__atomic_load_n(&apv.stage, __ATOMIC_ACQUIRE) == 2, CMD_MS);
	if (!apv.vmx) {
		say("cpu1: %s", in || back ? "no VMX operation" : "did not answer");
		CHECK(false, "cpu1: no VMX operation");
	} else {
		say("cpu1: in VMX operation; its L2's VMCALL: exit %u (%s)", apv.first, exit_name(apv.first));
		say("cpu1: INIT while its L2 loops: %s", back ? "a VM exit" : "no VM exit");
		if (back)
			say("cpu1: exit %u (%s), qualification %llx, at the loop %s, IDT-vectoring %s, activity %u",
			    apv.reason, exit_name(apv.reason), (unsigned long long)apv.qual,
			    apv.rip_off == 0 ? "yes" : "no", apv.idt_info & (1u << 31) ? "valid" : "none", apv.activity);
		CHECK(in && apv.first == 18, "cpu1: first exit %u", apv.first);
		CHECK(back && apv.reason == 3 && apv.qual == 0 && apv.rip_off == 0, "cpu1: INIT gave %u", apv.reason);
	}
	udelay(10000);
	ap_restart();
}

/* --- smp.init_vmx_root -------------------------------------------------
 * An INIT for a CPU in VMX root operation is held (SDM 25.2: "blocked"):
 * until a VM entry - then it is an INIT exit before the guest's first
 * instruction - or until VMXOFF - then it acts.  Bochs 2.7 drops it
 * instead (docs/smp.md), so what cpu1 sees is an environment fact here;
 * under a Nestor the SDM's behaviour is checked. */
static volatile uint32_t root_go, root_after_vmxoff;

static void vmx_root_init(unsigned idx)
{
	(void)idx;
	apv.vmx = ap_vmx_begin();
	if (apv.vmx) {
		vm_at(l2_vmcall, RFLAGS_FIXED);
		__atomic_store_n(&apv.stage, 1, __ATOMIC_RELEASE);
		while (__atomic_load_n(&root_go, __ATOMIC_ACQUIRE) < 1)
			pause(); /* in VMX root operation: cpu0 sends the INIT */
		apv.reason = vm_go();
		apv.rip_off = rip_off(l2_vmcall);
		__asm__ volatile("vmxoff" ::: "cc", "memory");
		/* Again, and this time VMXOFF comes first. */
		struct vres r = vx(VX_VMXON, pa(vmxon_region), 0);
		apv.vmx = vr_ok(&r);
	}
	__atomic_store_n(&apv.stage, 2, __ATOMIC_RELEASE);
	if (apv.vmx) {
		while (__atomic_load_n(&root_go, __ATOMIC_ACQUIRE) < 2)
			pause();
		__asm__ volatile("vmxoff" ::: "cc", "memory");
		__atomic_store_n(&root_after_vmxoff, 1, __ATOMIC_RELEASE);
	}
	cli();
	for (;;)
		pause();
}

TEST(smp, init_vmx_root)
{
	if (!ap_test_start())
		return;
	root_go = root_after_vmxoff = 0;
	post(1, vmx_root_init);
	bool ready = WAIT_UNTIL(__atomic_load_n(&apv.stage, __ATOMIC_ACQUIRE) >= 1, CMD_MS);
	send_init(1);
	udelay(5000);
	__atomic_store_n(&root_go, 1, __ATOMIC_RELEASE);
	bool back = WAIT_UNTIL(__atomic_load_n(&apv.stage, __ATOMIC_ACQUIRE) == 2, CMD_MS);
	say("cpu1: in VMX root operation: %s", ready && back && apv.vmx ? "yes, twice" : "no");
	CHECK(ready && back && apv.vmx, "cpu1: no VMX operation (stage %u)", apv.stage);
	send_init(1);
	udelay(5000);
	__atomic_store_n(&root_go, 2, __ATOMIC_RELEASE);
	udelay(20000);
	bool nestor = nestor_present();
	env("cpu1: INIT in VMX root, then VMLAUNCH: exit %u (%s), at the guest's first instruction %s%s", apv.reason,
	    exit_name(apv.reason), apv.rip_off == 0 ? "yes" : "no", apv.reason == 18 ? " (the INIT was dropped)" : "");
	env("cpu1: INIT in VMX root, then VMXOFF: %s",
	    root_after_vmxoff ? "it went on (the INIT was dropped)" : "it stopped (the INIT acted)");
	if (nestor) {
		CHECK(apv.reason == 3 && apv.rip_off == 0, "INIT held in VMX root: exit %u at +%ld", apv.reason, apv.rip_off);
		CHECK(!root_after_vmxoff, "INIT held in VMX root did not act at VMXOFF");
	} else {
		CHECK(apv.reason == 3 || apv.reason == 18, "exit %u", apv.reason);
	}
	ap_restart();
}

/* --- smp.nmi_vmx -------------------------------------------------------
 * An NMI (cpu0's NMI IPI) that reaches a CPU running a guest of its own:
 * an NMI exit when that CPU's hypervisor takes them (SDM 25.2), else
 * delivered to the guest through its IDT.  Under a stack of Nestors the
 * NMI first meets every level below (each takes NMI exits, for its own
 * kicks) and must come out the same. */
static void vmx_nmi(unsigned idx)
{
	(void)idx;
	apv.vmx = ap_vmx_begin();
	if (apv.vmx) {
		vm_ctl(PIN_CTLS, PIN_NMI, 0);
		vm_at(smp_l2_spin, RFLAGS_FIXED);
		apv.reason = vm_go();
		apv.qual = vm.x.intr_info;
		apv.rip_off = rip_off(smp_l2_spin_loop);
		iret_to_self(); /* an NMI exit leaves NMIs blocked */
		vm_ctl(PIN_CTLS, 0, PIN_NMI);
		vm_at(smp_l2_spin, RFLAGS_FIXED);
		apv.first = vm_go();
		apv.idt_info = (uint32_t)l2_event.vector;
		apv.activity = (uint32_t)l2_event.count;
		vmx_end();
		sti(); /* VM exits clear RFLAGS.IF: back to taking commands' IPIs */
	}
	__atomic_store_n(&apv.stage, 3, __ATOMIC_RELEASE);
}

TEST(smp, nmi_vmx)
{
	if (!ap_test_start())
		return;
	smp_l2_running = 0;
	post(1, vmx_nmi);
	for (int round = 0; round < 2; round++) {
		if (!wait_l2_running())
			break;
		smp_l2_running = 0;
		send_ipi(cpus[1].apic_id, ICR_NMI | ICR_ASSERT);
	}
	bool back = wait_done(1);
	CHECK(back && apv.vmx, "cpu1: no VMX operation or no answer (stage %u)", apv.stage);
	say("cpu1: NMI while its L2 loops, NMI exiting on: exit %u (%s), interruption information %08llx, at the loop %s",
	    apv.reason, exit_name(apv.reason), (unsigned long long)apv.qual, apv.rip_off == 0 ? "yes" : "no");
	say("cpu1: NMI while its L2 loops, NMI exiting off: exit %u (%s), the L2 took vector %u (%u event%s)", apv.first,
	    exit_name(apv.first), apv.idt_info, apv.activity, apv.activity == 1 ? "" : "s");
	CHECK(apv.reason == 0 && apv.qual == 0x80000202u && apv.rip_off == 0, "NMI exit: %u %llx", apv.reason,
	      (unsigned long long)apv.qual);
	CHECK(apv.first == 18 && apv.idt_info == 2 && apv.activity == 1, "NMI in L2: exit %u vector %u", apv.first,
	      apv.idt_info);
	teardown();
}

/* --- smp_snap.take_restore (its own suite: a Nestor with snap_pool) -----
 * A snapshot of a guest whose second CPU runs: cpu1 spins waiting for a
 * command when cpu0 takes the snapshot, marks a word after it, and cpu0
 * restores.  Back at the snapshot, the word is as it was then, and cpu1 -
 * put back where it stopped, on its own CPU - takes the next command. */
static volatile uint32_t ap_marks;

static void mark_a(unsigned idx) { (void)idx; __atomic_or_fetch(&ap_marks, 1, __ATOMIC_SEQ_CST); }
static void mark_b(unsigned idx) { (void)idx; __atomic_or_fetch(&ap_marks, 2, __ATOMIC_SEQ_CST); }
static void mark_c(unsigned idx) { (void)idx; __atomic_or_fetch(&ap_marks, 4, __ATOMIC_SEQ_CST); }

/* First (tests run sorted by name): a snapshot while the APs wait for
 * SIPI - they have no state to save, and a Nestor that took VMX emulation
 * back from the one below does it for them at their SIPI (take_restore
 * starts them next). */
TEST(smp_snap, parked)
{
	if (!nestor_present()) {
		say("no Nestor below: no snapshot");
		return;
	}
	struct hc_result r = nestor_hypercall(NESTOR_HC_SNAPSHOT, NESTOR_SNAP_DEFAULT, 0, 0);
	if (r.status == NESTOR_OK) {
		say("snapshot taken with the other CPUs waiting for SIPI");
		CHECK(nestor_hypercall(NESTOR_HC_SNAP_DROP, r.rbx, 0, 0).status == NESTOR_OK, "drop failed");
	} else {
		CHECK(false, "snapshot refused: status %lld", (long long)r.status);
	}
}

TEST(smp_snap, take_restore)
{
	if (!nestor_present()) {
		say("no Nestor below: no snapshot");
		return;
	}
	if (!setup())
		return;
	if (!aps_up()) {
		say("no application processor");
		park();
		teardown();
		return;
	}
	ap_marks = 0;
	post(1, mark_a);
	CHECK(wait_done(1), "cpu1 did not mark within %u ms", CMD_MS);
	struct hc_result r = nestor_hypercall(NESTOR_HC_SNAPSHOT, NESTOR_SNAP_DEFAULT, 0, 0);
	if (r.status == NESTOR_OK) {
		say("snapshot taken with cpu1 running; marks then: %#x", ap_marks);
		post(1, mark_b);
		CHECK(wait_done(1), "cpu1 did not mark within %u ms", CMD_MS);
		say("cpu1 marked after the snapshot: %#x", ap_marks);
		r = nestor_hypercall(NESTOR_HC_RESTORE, r.rbx, 7, 0);
		CHECK(false, "restore returned: status %lld", (long long)r.status);
	} else if (r.status == NESTOR_SNAP_RESTORED) {
		say("restored (value %llu): marks %#x", (unsigned long long)r.rcx, ap_marks);
		CHECK(ap_marks == 1, "marks %#x after the restore", ap_marks);
		post(1, mark_c);
		CHECK(wait_done(1), "cpu1 did not take a command after the restore within %u ms", CMD_MS);
		say("cpu1 marked after the restore: %#x", ap_marks);
		CHECK(ap_marks == 5, "marks %#x", ap_marks);
		CHECK(nestor_hypercall(NESTOR_HC_SNAP_DROP, r.rbx, 0, 0).status == NESTOR_OK, "drop failed");
	} else {
		CHECK(false, "snapshot refused: status %lld", (long long)r.status);
	}
	park();
	teardown();
}

/* --- smp_x2apic.ipis ----------------------------------------------------
 * Every CPU in x2APIC mode (SDM 3A 11.12): IPIs through the ICR's MSR
 * (0x830) - fixed and NMI to each AP, to itself
 * by the SELF IPI MSR (0x83F) and the shorthand, NMIs to itself and to an
 * AP, and at the end INIT to all but itself, which stops every AP.  A suite
 * of its own, run last and alone (not a default suite): Bochs 2.7 cannot
 * leave x2APIC mode (WRMSR cannot enable an APIC again once it is globally
 * disabled) and its INIT puts an APIC back in xAPIC mode where the SDM
 * keeps it in x2APIC mode (11.12.5.1) - so the APs stay parked and the BSP
 * in x2APIC mode.  docs/testing.md lists both deviations. */
#define X2_MSR_ID 0x802
#define X2_MSR_EOI 0x80b
#define X2_MSR_ICR 0x830
#define X2_MSR_SELF_IPI 0x83f
#define X2_ALL_BUT_SELF (3u << 18)
#define VEC_X2 0x53	 /* BSP -> AP and the BSP's own */
#define VEC_X2_TO_BSP 0x54 /* AP -> BSP */

static volatile uint32_t x2_fixed[MAX_CPUS], x2_nmis[MAX_CPUS], x2_to_bsp;
static volatile uint32_t x2_id[MAX_CPUS], x2_mode_ok[MAX_CPUS];

static unsigned x2_index(void) { return idx_of_apic[rdmsr(X2_MSR_ID) & 0xff]; }

static void on_x2_fixed(struct trap_frame *f)
{
	(void)f;
	x2_fixed[x2_index()]++;
	wrmsr(X2_MSR_EOI, 0);
}

static void on_x2_to_bsp(struct trap_frame *f)
{
	(void)f;
	x2_to_bsp++;
	wrmsr(X2_MSR_EOI, 0);
}

static void on_x2_nmi(struct trap_frame *f)
{
	(void)f;
	x2_nmis[x2_index()]++;
}

static void x2_enter(unsigned idx)
{
	uint64_t b = rdmsr(MSR_IA32_APIC_BASE);
	wrmsr(MSR_IA32_APIC_BASE, b | APIC_BASE_X2APIC);
	x2_mode_ok[idx] = (rdmsr(MSR_IA32_APIC_BASE) & (APIC_BASE_X2APIC | APIC_BASE_ENABLE)) ==
			  (APIC_BASE_X2APIC | APIC_BASE_ENABLE);
	x2_id[idx] = (uint32_t)rdmsr(X2_MSR_ID);
}

static void x2_send_to_bsp(unsigned idx)
{
	(void)idx;
	wrmsr(X2_MSR_ICR, (uint64_t)x2_id[0] << 32 | ICR_FIXED | VEC_X2_TO_BSP);
}

/* Waits (interrupts on) until *count reaches want. */
static bool x2_wait(volatile uint32_t *count, uint32_t want)
{
	sti();
	bool ok = WAIT_UNTIL(*count >= want, IPI_MS);
	cli();
	return ok;
}

TEST(smp_x2apic, ipis)
{
	if (!(cpuid(1, 0).ecx & (1u << 21))) {
		say("no x2APIC");
		return;
	}
	if (!setup())
		return;
	if (!aps_up()) {
		say("no application processor");
		teardown();
		return;
	}
	guest_set_handler(VEC_X2, on_x2_fixed);
	guest_set_handler(VEC_X2_TO_BSP, on_x2_to_bsp);
	guest_set_handler(EXC_NMI, on_x2_nmi);
	for (unsigned i = 0; i < MAX_CPUS; i++)
		x2_fixed[i] = x2_nmis[i] = x2_mode_ok[i] = 0;
	x2_enter(0);
	for (unsigned i = 1; i < ncpus; i++)
		if (cpus[i].up) {
			post(i, x2_enter);
			CHECK(wait_done(i), "cpu%u did not enter x2APIC mode within %u ms", i, CMD_MS);
		}
	for (unsigned i = 0; i < ncpus; i++) {
		if (i && !cpus[i].up)
			continue;
		say("cpu%u: x2APIC mode %s, x2APIC ID %u", i, x2_mode_ok[i] ? "on" : "off", x2_id[i]);
		CHECK(x2_mode_ok[i] && x2_id[i] == cpus[i].apic_id, "cpu%u", i);
	}
	/* The BSP to each AP: a fixed IPI and an NMI, physical destination.
	 * (Not logical: Bochs 2.7 leaves the LDR 0 in x2APIC mode, where the
	 * SDM derives it from the x2APIC ID, 11.12.10.2.) */
	for (unsigned i = 1; i < ncpus; i++) {
		if (!cpus[i].up)
			continue;
		wrmsr(X2_MSR_ICR, (uint64_t)x2_id[i] << 32 | ICR_FIXED | VEC_X2);
		bool fixed = WAIT_UNTIL(x2_fixed[i] >= 1, IPI_MS);
		wrmsr(X2_MSR_ICR, (uint64_t)x2_id[i] << 32 | ICR_NMI);
		bool nmi = WAIT_UNTIL(x2_nmis[i] >= 1, IPI_MS);
		say("cpu0 -> cpu%u: fixed IPI %s, NMI %s", i, fixed ? "taken" : "lost", nmi ? "taken" : "lost");
		CHECK(fixed && nmi, "cpu%u: %u fixed IPIs, %u NMIs", i, x2_fixed[i], x2_nmis[i]);
	}
	/* Each AP to the BSP. */
	for (unsigned i = 1; i < ncpus; i++) {
		if (!cpus[i].up)
			continue;
		x2_to_bsp = 0;
		post(i, x2_send_to_bsp);
		CHECK(wait_done(i), "cpu%u did not send within %u ms", i, CMD_MS);
		bool got = x2_wait(&x2_to_bsp, 1);
		say("cpu%u -> cpu0: fixed IPI %s", i, got ? "taken" : "lost");
		CHECK(got, "cpu%u -> cpu0", i);
	}
	/* The BSP to itself: the SELF IPI MSR, the self shorthand (fixed
	 * only, SDM 3A 11.6.1), and NMIs by its own physical destination. */
	x2_fixed[0] = 0;
	wrmsr(X2_MSR_SELF_IPI, VEC_X2);
	bool self_msr = x2_wait(&x2_fixed[0], 1);
	wrmsr(X2_MSR_ICR, ICR_SELF | ICR_FIXED | VEC_X2);
	bool self_sh = x2_wait(&x2_fixed[0], 2);
	x2_nmis[0] = 0;
	wrmsr(X2_MSR_ICR, (uint64_t)x2_id[0] << 32 | ICR_NMI);
	for (unsigned k = 0; k < 1000 && x2_nmis[0] < 1; k++)
		pause();
	wrmsr(X2_MSR_ICR, (uint64_t)x2_id[0] << 32 | ICR_NMI);
	for (unsigned k = 0; k < 1000 && x2_nmis[0] < 2; k++)
		pause();
	say("cpu0 -> cpu0: SELF IPI MSR %s, self shorthand %s, %u of 2 NMIs taken", self_msr ? "taken" : "lost",
	    self_sh ? "taken" : "lost", x2_nmis[0]);
	CHECK(self_msr && self_sh && x2_nmis[0] == 2, "self: %u fixed, %u NMIs", x2_fixed[0], x2_nmis[0]);
	/* INIT to all but itself (asserted, then the de-assert the integrated
	 * APICs ignore): every AP stops. */
	for (unsigned i = 1; i < ncpus; i++)
		if (cpus[i].up) {
			cpus[i].heartbeat = 0;
			post(i, heartbeat_work);
			CHECK(WAIT_UNTIL(cpus[i].heartbeat >= 1000, CMD_MS), "cpu%u: no heartbeat", i);
		}
	wrmsr(X2_MSR_ICR, X2_ALL_BUT_SELF | ICR_INIT | ICR_ASSERT | ICR_LEVEL);
	wrmsr(X2_MSR_ICR, X2_ALL_BUT_SELF | ICR_INIT | ICR_LEVEL);
	udelay(10000);
	for (unsigned i = 1; i < ncpus; i++) {
		if (!cpus[i].up)
			continue;
		uint64_t h1 = cpus[i].heartbeat;
		udelay(20000);
		bool stopped = cpus[i].heartbeat == h1;
		say("cpu%u: INIT to all but self: heartbeat %s", i, stopped ? "stopped" : "still running");
		CHECK(stopped, "cpu%u: heartbeat went on after INIT", i);
		cpus[i].up = false;
	}
	started = false;
	guest_set_handler(VEC_X2, 0);
	guest_set_handler(VEC_X2_TO_BSP, 0);
	guest_set_handler(EXC_NMI, 0);
	teardown();
}
