/* vmxfuzz_mut.c - the VMX fuzzer's mutation catalog: each mutation moves
 * one part of the valid VMCS vm_setup() builds (controls, host state, guest
 * state, bitmaps, MSR lists, EPT pointer and EPT entries, event injection)
 * to a nearby setting, valid or not, and names itself on the case's line.
 *
 * Inputs left out, and why (docs/testing.md, "The VMX fuzzer"):
 *  - settings only one depth allows: controls, EPT capabilities and VMCS
 *    fields Nestor does not offer (docs/nested.md) - drawn from the
 *    intersection computed in vmxfuzz.c;
 *  - inputs that end the run at depth 0: a failing VM-exit MSR-store or
 *    MSR-load list is a VMX abort (shutdown), so exit lists hold valid MSRs
 *    and values in RAM only; activity states and programs that wait for an
 *    event get a preemption timer (the guard at the end);
 *  - Bochs 2.7 deviations from the SDM (each named where it is avoided). */
#include "guest/tests/vmxfuzz.h"
#include "guest/test.h"
#include "lib/string.h"
#include "lib/x86.h"

uint64_t fz_msr_area[3][2 * 8] __attribute__((aligned(4096)));
uint64_t fz_pml_log[512] __attribute__((aligned(4096)));
unsigned fz_pml_start;
/* An EPT PML4 with nothing present. */
static uint64_t ept_empty[512] __attribute__((aligned(4096)));

static uint64_t rw(uint32_t f) { return fz_vmread(f); }
static void ww(uint32_t f, uint64_t v) { fz_vmwrite(f, v); }

static uint64_t beyond_width(struct rng *r) { return 1ull << (fzc.maxphyaddr + rnd_below(r, 64 - fzc.maxphyaddr)); }
static uint64_t noncanonical(struct rng *r) { return (1ull << 47) | (rnd(r) & 0x0000fffffffff000ull) | (rnd_below(r, 2) ? 0 : 0x00ff000000000000ull); }

/* --- controls ------------------------------------------------------------------ */
static void ctl(struct rng *r, struct fz_line *l, const char *name, uint32_t field, uint32_t must, uint32_t may,
		uint32_t bad)
{
	uint32_t cur = (uint32_t)rw(field), b = 0;
	char op = '=';
	switch (rnd_below(r, 8)) {
	case 0: case 1: case 2: case 3: case 4:
		b = (uint32_t)rnd_bit(r, may & ~cur);
		op = '+';
		cur |= b;
		break;
	case 5:
		b = (uint32_t)rnd_bit(r, cur & ~must);
		op = '-';
		cur &= ~b;
		break;
	case 6:
		b = (uint32_t)rnd_bit(r, bad);
		op = '!';
		cur |= b;
		break;
	default:
		b = (uint32_t)rnd_bit(r, must);
		op = '~';
		cur &= ~b;
		break;
	}
	ww(field, cur);
	fz_add(l, " %s%c%d", name, op, b ? __builtin_ctz(b) : -1);
}

static void m_pin(struct rng *r, struct fz_line *l) { ctl(r, l, "pin", PIN_CTLS, fzc.pin0, fzc.pin1, fzc.pin_bad); }
static void m_proc(struct rng *r, struct fz_line *l) { ctl(r, l, "proc", PROC_CTLS, fzc.proc0, fzc.proc1, fzc.proc_bad); }
static void m_proc2(struct rng *r, struct fz_line *l) { ctl(r, l, "proc2", PROC2_CTLS, 0, fzc.proc2_1, fzc.proc2_bad); }
static void m_exit(struct rng *r, struct fz_line *l) { ctl(r, l, "exit", EXIT_CTLS, fzc.exit0, fzc.exit1, fzc.exit_bad); }
static void m_entry(struct rng *r, struct fz_line *l) { ctl(r, l, "entry", ENTRY_CTLS, fzc.entry0, fzc.entry1, fzc.entry_bad); }

static void set_bit(uint32_t field, uint32_t bit, bool on)
{
	uint32_t v = (uint32_t)rw(field);
	ww(field, on ? v | bit : v & ~bit);
}

/* NMI exiting, virtual NMIs, NMI-window exiting: the SDM 26.2.1.1 pairs. */
static void m_nmi(struct rng *r, struct fz_line *l)
{
	unsigned k = rnd_below(r, 8);
	set_bit(PIN_CTLS, PIN_NMI, k & 1);
	set_bit(PIN_CTLS, PIN_VIRTUAL_NMI, k & 2);
	set_bit(PROC_CTLS, PROC_NMI_WINDOW, k & 4);
	fz_add(l, " nmi=%u", k);
}

/* The controls of the "rand" program's instructions (SDM 25.1.3): RDPMC
 * exiting, INVLPG exiting (which makes INVPCID exit), RDRAND and RDSEED
 * exiting, "enable INVPCID" - each where both depths offer it. */
static void m_rand_ctls(struct rng *r, struct fz_line *l)
{
	unsigned k = rnd_below(r, 32);
	set_bit(PROC_CTLS, PROC_RDPMC & fzc.proc1, k & 1);
	set_bit(PROC_CTLS, PROC_INVLPG & fzc.proc1, k & 2);
	set_bit(PROC2_CTLS, PROC2_RDRAND_EXIT & fzc.proc2_1, k & 4);
	set_bit(PROC2_CTLS, PROC2_INVPCID & fzc.proc2_1, k & 8);
	set_bit(PROC2_CTLS, PROC2_RDSEED_EXIT & fzc.proc2_1, k & 16);
	fz_add(l, " rnd=%u", k);
}

/* EPT, unrestricted guest, VPID and its value. */
static void m_ept_ug_vpid(struct rng *r, struct fz_line *l)
{
	static const uint16_t vpids[] = { 0, 1, 2, 0xffff };
	unsigned k = rnd_below(r, 8);
	uint16_t v = vpids[rnd_below(r, 4)];
	set_bit(PROC2_CTLS, PROC2_EPT, k & 1);
	set_bit(PROC2_CTLS, PROC2_UNRESTRICTED, k & 2);
	set_bit(PROC2_CTLS, PROC2_VPID, k & 4);
	ww(VPID, v);
	fz_add(l, " eug=%u/%x", k, v);
}

/* The VMX-preemption timer.  Its exact count is not comparable between
 * depths: each exit Nestor handles without L1 costs L2 a few timer ticks
 * on Bochs (entry and exit instructions), as VM-entry latency does on
 * hardware.  So values are 0 (an exit before the first instruction), or
 * far from every program's length (the exit point is then not printed). */
static void m_timer(struct rng *r, struct fz_line *l)
{
	unsigned k = rnd_below(r, 4);
	static const uint32_t vals[] = { 0, 3000, 20000, 0xffffffff };
	uint32_t v = vals[rnd_below(r, 4)];
	set_bit(PIN_CTLS, PIN_PREEMPT, k & 1);
	set_bit(EXIT_CTLS, EXIT_SAVE_PREEMPT, k & 2);
	ww(GUEST_PREEMPT_TIMER, v);
	fz_add(l, " tmr=%u/%x", k, v);
}

static void m_cr3_targets(struct rng *r, struct fz_line *l)
{
	uint32_t n = rnd_below(r, fzc.cr3_targets + 2);
	if (rnd_chance(r, 1, 16))
		n = 0x100 + rnd_below(r, 0x100);
	ww(CR3_TARGET_COUNT, n);
	for (unsigned i = 0; i < 4; i++)
		ww(CR3_TARGET0 + 2 * i, rnd_chance(r, 1, 2) ? read_cr3() : rnd(r) & 0xfffff000ull);
	set_bit(PROC_CTLS, PROC_CR3_LOAD, rnd_chance(r, 3, 4));
	fz_add(l, " cr3t=%u", n);
}

/* A physical address for a bitmap or table: valid, unaligned, beyond the
 * physical-address width, or another page. */
static uint64_t page_ptr(struct rng *r, uint64_t good, unsigned *k)
{
	*k = rnd_chance(r, 1, 2) ? 0 : rnd_below(r, 6);
	switch (*k) {
	case 0: return good;
	case 1: return good + 8 * (1 + rnd_below(r, 511));
	case 2: return beyond_width(r);
	case 3: return good | (1ull << 63);
	case 4: return pa(fz_page_bad);
	default: return good + 1;
	}
}

static void m_io_bitmap_ptrs(struct rng *r, struct fz_line *l)
{
	unsigned ka, kb;
	ww(IO_BITMAP_A, page_ptr(r, pa(io_bitmap_a), &ka));
	ww(IO_BITMAP_B, page_ptr(r, pa(io_bitmap_b), &kb));
	bool on = rnd_chance(r, 3, 4);
	set_bit(PROC_CTLS, PROC_IO_BITMAPS, on);
	fz_add(l, " iobm=%u%u%u", on, ka, kb);
}

/* TPR shadow: the virtual-APIC page (valid, unaligned, beyond the width,
 * another page), the threshold (4 bits or more) and VTPR in the page. */
static void m_tpr(struct rng *r, struct fz_line *l)
{
	if (!(fzc.proc1 & PROC_TPR_SHADOW))
		return;
	unsigned k;
	ww(VIRTUAL_APIC_ADDR, page_ptr(r, pa(vm_vapic), &k));
	uint32_t th = rnd_chance(r, 1, 8) ? 16u << rnd_below(r, 28) | rnd_below(r, 16) : rnd_below(r, 16);
	ww(TPR_THRESHOLD, th);
	vm_vapic[0x80] = (uint8_t)rnd(r);
	bool on = rnd_chance(r, 3, 4);
	set_bit(PROC_CTLS, PROC_TPR_SHADOW, on);
	if (on && rnd_chance(r, 1, 2))
		set_bit(PROC_CTLS, PROC_CR8_LOAD | PROC_CR8_STORE, false);
	fz_add(l, " tpr=%u%u,%x,%02x", on, k, th, vm_vapic[0x80]);
	/* And APIC-access virtualization on a page no program touches, on
	 * the L2's stack page (its pushes exit), or unaligned. */
	if ((fzc.proc2_1 & (1u << 4)) && rnd_chance(r, 1, 3)) {
		/* Or virtualize x2APIC mode (the x2APIC TPR MSR, 808h), maybe
		 * with APIC-register virtualization (every x2APIC MSR read) and
		 * virtual-interrupt delivery: an SVI, EOI-exit bits, no RVI (a
		 * virtual interrupt delivered while the shadow EPT is filled
		 * meets a Bochs 2.7 bug: docs/testing.md). */
		set_bit(PROC2_CTLS, 1u << 4, true);
		bool reg = (fzc.proc2_1 & (1u << 8)) && rnd_chance(r, 1, 2);
		bool vid = (fzc.proc2_1 & (1u << 9)) && rnd_chance(r, 1, 2);
		if (reg)
			set_bit(PROC2_CTLS, 1u << 8, true);
		if (vid) {
			set_bit(PROC2_CTLS, 1u << 9, true);
			set_bit(PIN_CTLS, PIN_EXTINT, rnd_chance(r, 7, 8));
			ww(GUEST_INTR_STATUS, rnd(r) & 0xff00);
			ww(EOI_EXIT_BITMAP0 + 2 * rnd_below(r, 4), rnd(r));
		}
		fz_add(l, " x2virt%s%s", reg ? ",reg" : "", vid ? ",vid" : "");
		return;
	}
	if (!(fzc.proc2_1 & 1u) || rnd_chance(r, 1, 2))
		return;
	unsigned which = rnd_below(r, 3);
	uint64_t a = which == 0 ? pa(vm_apic_access) : which == 1 ? (rw(GUEST_RSP) - 8) & ~0xfffull : pa(vm_apic_access) + 8;
	ww(APIC_ACCESS_ADDR, a);
	set_bit(PROC2_CTLS, 1u, true);
	fz_add(l, " apicacc=%u", which);
}

static void m_msr_bitmap_ptr(struct rng *r, struct fz_line *l)
{
	unsigned k;
	ww(MSR_BITMAP, page_ptr(r, pa(msr_bitmap), &k));
	bool on = rnd_chance(r, 3, 4);
	set_bit(PROC_CTLS, PROC_MSR_BITMAPS, on);
	fz_add(l, " msrbm=%u%u", on, k);
}

/* The EPT pointer: memory type, walk length, reserved bits 11:8, address
 * beyond the width, an empty PML4, the accessed and dirty flags (bit 6,
 * valid where offered).  Not bit 7 (supervisor shadow stacks: Bochs 2.7
 * accepts it on CET models, where the SDM requires the capability). */
static void m_eptp(struct rng *r, struct fz_line *l)
{
	uint64_t e = ept_pointer();
	unsigned k = rnd_below(r, 7);
	switch (k) {
	case 6: e |= 1ull << 6; break;
	case 0: e = (e & ~7ull) | rnd_below(r, 8); break;
	case 1: e = (e & ~0x38ull) | (uint64_t)rnd_below(r, 8) << 3; break;
	case 2: e |= (uint64_t)(1 + rnd_below(r, 15)) << 8; break;
	case 3: e |= beyond_width(r); break;
	case 4: memset(ept_empty, 0, sizeof(ept_empty)); e = pa(ept_empty) | (e & 0xfff); break;
	default: e = (e & ~7ull) | (rnd_chance(r, 1, 2) ? 0 : 6); break;
	}
	ww(EPT_POINTER, e);
	fz_add(l, " eptp%u=%llx", k, (unsigned long long)(e & 0xfff));
}

/* VM-entry event injection (SDM 26.2.1.3, 26.6): type, vector, error code,
 * instruction length near the rules.  Not type 7 ("other event"): Bochs
 * 2.7 accepts it without the monitor trap flag, which the SDM forbids. */
static void m_inject(struct rng *r, struct fz_line *l)
{
	static const uint8_t types[] = { 0, 2, 3, 3, 3, 4, 5, 6, 1 };
	unsigned type = types[rnd_below(r, sizeof(types))];
	unsigned vec;
	switch (type) {
	case 2: vec = rnd_chance(r, 7, 8) ? 2 : rnd_below(r, 256); break;
	case 3: vec = rnd_chance(r, 7, 8) ? rnd_below(r, 32) : rnd_below(r, 256); break;
	case 5: vec = rnd_chance(r, 3, 4) ? 1 : rnd_below(r, 256); break;
	case 6: vec = rnd_chance(r, 1, 2) ? 3 : rnd_chance(r, 1, 2) ? 4 : rnd_below(r, 256); break;
	default: vec = 32 + rnd_below(r, 224); break;
	}
	bool has_ec = type == 3 && (vec == 8 || (vec >= 10 && vec <= 14) || vec == 17);
	/* An error code where the rules forbid one; with IA32_VMX_BASIC[56]
	 * (CET models) not for other types than hardware exceptions: Bochs
	 * 2.7 then accepts it for any type, the SDM for none. */
	if (rnd_chance(r, 1, 6) && (type == 3 || !((vcaps.basic >> 56) & 1)))
		has_ec = !has_ec;
	uint32_t info = INTR_VALID | type << 8 | vec | (has_ec ? INTR_ERRCODE : 0);
	if (rnd_chance(r, 1, 16))
		info |= (uint32_t)rnd_bit(r, 0x7ffff000u);
	uint32_t ec = rnd_below(r, 0x10000);
	if (rnd_chance(r, 1, 8))
		ec |= 1u << (15 + rnd_below(r, 17));
	static const uint8_t lens[] = { 1, 2, 3, 0, 15, 16, 2, 7 };
	uint32_t len = lens[rnd_below(r, sizeof(lens))];
	if (type == 2)
		fz_nmi_touched = true;
	fz_inj_set = true;
	ww(ENTRY_INTR_INFO, info);
	ww(ENTRY_EXC_ERR, ec);
	ww(ENTRY_INSN_LEN, len);
	/* Interrupts need IF=1 to be injected; now and then not. */
	if (type == 0 && rnd_chance(r, 3, 4))
		ww(GUEST_RFLAGS, rw(GUEST_RFLAGS) | (1u << 9));
	fz_add(l, " inj=%x/%x/%u", info, ec, len);
}

/* --- host state (SDM 26.2.2-26.2.4) ----------------------------------------------
 * Valid changes are limited to what the kernel survives for the few
 * instructions before it restores its state (no SMEP/SMAP: its pages are
 * user pages; no CR0.NW: Bochs panics on NW without CD). */
static void m_host_cr0(struct rng *r, struct fz_line *l)
{
	uint64_t v = rw(HOST_CR0);
	unsigned k = rnd_below(r, 3);
	if (k == 0)
		v &= ~rnd_bit(r, fzc.cr0_fixed0);
	else if (k == 1)
		v |= 1ull << (32 + rnd_below(r, 32));
	else
		v ^= rnd_bit(r, CR0_TS | CR0_MP | CR0_WP | CR0_AM | CR0_CD);
	ww(HOST_CR0, v);
	fz_add(l, " hcr0=%llx", (unsigned long long)v);
}

static void m_host_cr4(struct rng *r, struct fz_line *l)
{
	uint64_t v = rw(HOST_CR4);
	const uint64_t safe = (CR4_TSD | CR4_DE | CR4_MCE | CR4_PGE | CR4_PCE | CR4_OSFXSR | CR4_OSXMMEXCPT |
			       CR4_FSGSBASE | CR4_OSXSAVE) & fzc.cr4_fixed1 & ~fzc.cr4_fixed0;
	switch (rnd_below(r, 4)) {
	case 0: v &= ~rnd_bit(r, fzc.cr4_fixed0); break;
	case 1: v &= ~CR4_PAE; break;
	case 2: v |= rnd_bit(r, ~fzc.cr4_fixed1 & ~(uint64_t)CR4_CET); break;
	default: v ^= rnd_bit(r, safe); break;
	}
	ww(HOST_CR4, v);
	fz_add(l, " hcr4=%llx", (unsigned long long)v);
}

static void m_host_cr3(struct rng *r, struct fz_line *l)
{
	uint64_t v = rw(HOST_CR3);
	v = rnd_chance(r, 1, 2) ? v | beyond_width(r) : v | 0x18;
	ww(HOST_CR3, v);
	fz_add(l, " hcr3=%llx", (unsigned long long)(v & ~0xfffff000ull));
}

static void m_host_sel(struct rng *r, struct fz_line *l)
{
	static const uint32_t f[] = { HOST_ES_SEL, HOST_CS_SEL, HOST_SS_SEL, HOST_DS_SEL, HOST_FS_SEL, HOST_GS_SEL, HOST_TR_SEL };
	unsigned i = rnd_below(r, 7);
	uint64_t v = rw(f[i]);
	unsigned k = rnd_below(r, 3);
	if (k == 0)
		v |= 1 + rnd_below(r, 7); /* RPL or TI */
	else if (k == 1)
		v = 0;
	else
		v = i == 1 ? G_KCODE64 : i == 6 ? G_TSS : (rnd_chance(r, 1, 2) ? G_KDATA : G_UDATA & ~7u);
	ww(f[i], v);
	fz_add(l, " hsel%u=%llx", i, (unsigned long long)v);
}

static void m_host_base(struct rng *r, struct fz_line *l)
{
	static const uint32_t f[] = { HOST_FS_BASE, HOST_GS_BASE, HOST_TR_BASE, HOST_GDTR_BASE, HOST_IDTR_BASE,
				      HOST_SYSENTER_ESP, HOST_SYSENTER_EIP };
	unsigned i = rnd_below(r, 7);
	/* Only FS/GS bases and SYSENTER may take another canonical value: the
	 * kernel does not use them before it restores them. */
	uint64_t v = (i == 0 || i == 1 || i >= 5) && rnd_chance(r, 1, 2) ? rnd(r) & 0x00007fffffffffffull : noncanonical(r);
	ww(f[i], v);
	if (rnd_chance(r, 1, 4))
		ww(HOST_SYSENTER_CS, rnd(r) & 0xffffffff);
	fz_add(l, " hbase%u=%llx", i, (unsigned long long)v);
}

static void m_host_efer_pat(struct rng *r, struct fz_line *l)
{
	unsigned k = rnd_below(r, 6);
	uint64_t efer = rw(HOST_EFER), pat = rw(HOST_PAT);
	switch (k) {
	case 0: efer |= rnd_bit(r, 0xfffffffffffff2feull); break; /* reserved */
	case 1: efer &= ~(rnd_chance(r, 1, 2) ? 1ull << 8 : 1ull << 10); break; /* LME/LMA off */
	case 2: efer ^= 1; break;                                             /* SCE */
	case 3: pat = (pat & ~(0xffull << (8 * rnd_below(r, 8)))) | ((uint64_t)(rnd_chance(r, 1, 2) ? 2 + rnd_below(r, 2) : 8 + rnd_below(r, 248)) << (8 * rnd_below(r, 8))); break;
	case 4: pat = 0x0606060606060606ull; break;
	default: set_bit(EXIT_CTLS, rnd_chance(r, 1, 2) ? EXIT_LOAD_EFER : EXIT_LOAD_PAT, false); break;
	}
	ww(HOST_EFER, efer);
	ww(HOST_PAT, pat);
	fz_add(l, " hmsr%u=%llx/%llx", k, (unsigned long long)efer, (unsigned long long)pat);
}

/* A 32-bit host from a 64-bit kernel, or a non-canonical RIP: error 8. */
static void m_host_mode(struct rng *r, struct fz_line *l)
{
	if (rnd_chance(r, 1, 2)) {
		set_bit(EXIT_CTLS, EXIT_HOST_64, false);
		fz_add(l, " host32");
	} else {
		ww(HOST_RIP, noncanonical(r));
		ww(HOST_RSP, 0x1000);
		fz_add(l, " hrip");
	}
}

/* --- guest state (SDM 26.3, checked by the CPU at every depth) ------------------ */
static void m_guest_seg(struct rng *r, struct fz_line *l)
{
	unsigned s = rnd_below(r, 8); /* ES CS SS DS FS GS LDTR TR */
	unsigned k = rnd_below(r, 4);
	uint64_t v;
	switch (k) {
	case 0:
		v = rw(GUEST_ES_SEL + 2 * s) ^ rnd_bit(r, 0xffff);
		ww(GUEST_ES_SEL + 2 * s, v);
		break;
	case 1:
		v = rnd_chance(r, 1, 2) ? noncanonical(r) : rnd_bit(r, ~0ull) | (rnd(r) & 0xfff);
		ww(GUEST_ES_BASE + 2 * s, v);
		break;
	case 2:
		v = rnd_chance(r, 1, 2) ? rw(GUEST_ES_LIMIT + 2 * s) ^ rnd_bit(r, 0xffffffff) : 0xfffff;
		ww(GUEST_ES_LIMIT + 2 * s, v);
		break;
	default:
		v = rw(GUEST_ES_AR + 2 * s) ^ rnd_bit(r, 0x1ffff | (rnd_chance(r, 1, 8) ? 0xfffe0000u : 0));
		ww(GUEST_ES_AR + 2 * s, v);
		break;
	}
	fz_add(l, " seg%u.%u=%llx", s, k, (unsigned long long)v);
}

static void m_guest_cr(struct rng *r, struct fz_line *l)
{
	unsigned k = rnd_below(r, 6);
	uint64_t cr0 = rw(GUEST_CR0), cr4 = rw(GUEST_CR4);
	switch (k) {
	case 0: cr0 &= ~rnd_bit(r, fzc.cr0_fixed0); break;
	case 1: cr0 ^= rnd_bit(r, CR0_TS | CR0_MP | CR0_EM | CR0_WP | CR0_AM | (1ull << 40)); break;
	case 2: cr4 &= ~rnd_bit(r, fzc.cr4_fixed0 | CR4_PAE); break;
	case 3: cr4 |= rnd_bit(r, ~fzc.cr4_fixed1 & ~(uint64_t)CR4_CET); break;
	case 4: cr4 ^= rnd_bit(r, (CR4_SMEP | CR4_SMAP | CR4_PGE | CR4_TSD | CR4_DE | CR4_PCIDE | CR4_OSXSAVE | CR4_FSGSBASE) & fzc.cr4_fixed1); break;
	default: cr0 &= ~(CR0_PG | (rnd_chance(r, 1, 2) ? CR0_PE : 0)); break;
	}
	ww(GUEST_CR0, cr0);
	ww(GUEST_CR4, cr4);
	fz_add(l, " gcr%u=%llx/%llx", k, (unsigned long long)cr0, (unsigned long long)cr4);
}

static void m_guest_msr(struct rng *r, struct fz_line *l)
{
	unsigned k = rnd_below(r, 7);
	uint64_t efer = rw(GUEST_EFER), pat = rw(GUEST_PAT), dr7 = rw(GUEST_DR7), dbg = rw(GUEST_DEBUGCTL);
	switch (k) {
	case 0: efer |= rnd_bit(r, 0xfffffffffffff2feull); break;
	case 1: efer &= ~(rnd_chance(r, 1, 2) ? 1ull << 8 : 1ull << 10); break;
	case 2: efer ^= rnd_chance(r, 1, 2) ? 1 : 1ull << 11; break;
	case 3: pat = (pat & ~(0xffull << (8 * rnd_below(r, 8)))) | ((uint64_t)(2 + rnd_below(r, 2)) << (8 * rnd_below(r, 8))); break;
	case 4: dr7 |= rnd_chance(r, 1, 2) ? 1ull << (32 + rnd_below(r, 32)) : rnd_bit(r, 0x2fffull); break;
	case 5: dbg = rnd_bit(r, ~0ull); break;
	default: set_bit(ENTRY_CTLS, rnd_bit(r, ENTRY_LOAD_EFER | ENTRY_LOAD_PAT | ENTRY_LOAD_DEBUG | ENTRY_IA32E), false); break;
	}
	ww(GUEST_EFER, efer);
	ww(GUEST_PAT, pat);
	ww(GUEST_DR7, dr7);
	ww(GUEST_DEBUGCTL, dbg);
	fz_add(l, " gmsr%u=%llx/%llx/%llx/%llx", k, (unsigned long long)efer, (unsigned long long)pat,
	       (unsigned long long)dr7, (unsigned long long)dbg);
}

/* CET state (SDM 26.2.2, 26.3.1.1; where the CPU has the controls): a
 * field of either area and its "load CET state" control.  IA32_S_CET,
 * SSP, the interrupt SSP table address: not canonical, reserved bits, both
 * of bits 10 and 11, SSP's bits 1:0, bits 63:32 (refused for a 32-bit host
 * or guest), or a value every check accepts. */
static void m_cet(struct rng *r, struct fz_line *l)
{
	if (!(fzc.entry1 & ENTRY_LOAD_CET) || !(fzc.exit1 & EXIT_LOAD_CET)) {
		m_guest_msr(r, l);
		return;
	}
	bool host = rnd_chance(r, 1, 2);
	unsigned k = rnd_below(r, 3), kind = rnd_below(r, 6);
	uint64_t v;
	switch (kind) {
	case 0: v = noncanonical(r); break;
	case 1: v = rnd_bit(r, 0x3c0); break;
	case 2: v = 0xc00 | (rnd(r) & 0x7ffff000ull); break;
	case 3: v = (rnd(r) & 0x7ffff000ull) | (1 + rnd_below(r, 3)); break;
	case 4: v = (rnd(r) & 0x00007fff00000000ull) | (1ull << 32); break;
	default: v = rnd(r) & 0x00007ffffffff03cull; break;
	}
	ww((host ? HOST_S_CET : GUEST_S_CET) + 2 * k, v);
	set_bit(host ? EXIT_CTLS : ENTRY_CTLS, host ? EXIT_LOAD_CET : ENTRY_LOAD_CET, !rnd_chance(r, 1, 4));
	fz_add(l, " cet%c%u.%u=%llx", host ? 'h' : 'g', k, kind, (unsigned long long)v);
}

/* RFLAGS: reserved bits, bit 1, VM, IF, AC, NT, IOPL, DF, CF.  Not TF:
 * Bochs 2.7 schedules the single-step trap before an instruction executes
 * and saves it as pending (BS) when that instruction's fetch causes a VM
 * exit, so an L2 single-stepping through any exit its hypervisor's
 * hypervisor handles (a shadow-EPT fill under Nestor) gets its #DB one
 * instruction early - on hardware a fault-like exit leaves no BS. */
static void m_guest_rflags(struct rng *r, struct fz_line *l)
{
	static const uint64_t bits[] = { 1u << 1, 1u << 3, 1u << 5, 1u << 15, 1u << 22, 1ull << 40, 1u << 17, 1u << 9,
					 1u << 18, 1u << 14, 3u << 12, 1u << 10, 1u << 0 };
	uint64_t v = rw(GUEST_RFLAGS) ^ bits[rnd_below(r, sizeof(bits) / sizeof(bits[0]))];
	ww(GUEST_RFLAGS, v);
	fz_add(l, " rfl=%llx", (unsigned long long)v);
}

/* Activity state, interruptibility, pending debug exceptions (SDM 26.3.1.5). */
static void m_guest_nonreg(struct rng *r, struct fz_line *l)
{
	unsigned k = rnd_below(r, 4);
	uint64_t v;
	switch (k) {
	case 0:
		v = rnd_chance(r, 3, 4) ? 1 : rnd_below(r, 6);
		ww(GUEST_ACTIVITY, v);
		break;
	case 1:
		v = rnd_chance(r, 7, 8) ? rnd_below(r, 32) : rnd_bit(r, 0xffffffe0u);
		ww(GUEST_INTERRUPTIBILITY, v);
		fz_nmi_touched |= (v & 8) != 0;
		break;
	case 2:
		/* (Without RFLAGS.TF: see m_guest_rflags.) */
		v = rnd_chance(r, 3, 4) ? rnd_bit(r, 0x1500f) | rnd_bit(r, 0x1500f) : rnd_bit(r, ~0x1500full);
		ww(GUEST_PENDING_DBG, v);
		break;
	default:
		v = rnd_below(r, 4);
		ww(GUEST_INTERRUPTIBILITY, v);
		ww(GUEST_RFLAGS, rw(GUEST_RFLAGS) | (rnd_chance(r, 1, 2) ? 1u << 9 : 0));
		break;
	}
	fz_nonreg_set = true;
	fz_add(l, " gnr%u=%llx", k, (unsigned long long)v);
}

/* The VMCS link pointer (SDM 26.3.1.5): ~0, a VMCS, a wrong revision,
 * unaligned, beyond the width, the current VMCS. */
static void m_link(struct rng *r, struct fz_line *l)
{
	unsigned k = rnd_below(r, 6);
	uint64_t v;
	switch (k) {
	case 0: vmcs_init_page(fz_page_a, vcaps.rev); v = pa(fz_page_a); break;
	case 1: v = pa(fz_page_bad); break;
	case 2: v = pa(fz_page_a) + 0x40; break;
	case 3: v = beyond_width(r); break;
	case 4: v = pa(vmcs_a); break;
	default: v = ~0ull ^ rnd_bit(r, ~0ull); break;
	}
	ww(VMCS_LINK_PTR, v);
	fz_link_set = true;
	fz_add(l, " link%u", k);
}

static void m_guest_misc(struct rng *r, struct fz_line *l)
{
	unsigned k = rnd_below(r, 6);
	switch (k) {
	case 0: ww(GUEST_RIP, noncanonical(r)); break;
	case 1: ww(GUEST_RSP, rnd_chance(r, 1, 2) ? noncanonical(r) : rw(GUEST_RSP) - 1 - rnd_below(r, 8)); break;
	case 2: ww(rnd_chance(r, 1, 2) ? GUEST_GDTR_LIMIT : GUEST_IDTR_LIMIT, rnd_chance(r, 1, 2) ? 0x10000 + rnd_below(r, 0x10000) : rnd_below(r, 0x100)); break;
	case 3: ww(rnd_chance(r, 1, 2) ? GUEST_GDTR_BASE : GUEST_IDTR_BASE, noncanonical(r)); break;
	case 4: ww(rnd_chance(r, 1, 2) ? GUEST_SYSENTER_ESP : GUEST_SYSENTER_EIP, noncanonical(r)); break;
	default: ww(GUEST_SYSENTER_CS, rnd(r) & 0xffffffff); break;
	}
	fz_add(l, " gmisc%u", k);
}

/* --- what decides exits: bitmaps, masks, shadows ----------------------------------- */
static void m_exc_bitmap(struct rng *r, struct fz_line *l)
{
	static const uint32_t vecs = (1u << 0) | (1u << 1) | (1u << 3) | (1u << 6) | (1u << 8) | (1u << 13) | (1u << 14) | (1u << 12);
	uint32_t bm = rnd_chance(r, 1, 4) ? (uint32_t)rnd(r) : (uint32_t)(rnd_bit(r, vecs) | rnd_bit(r, vecs));
	uint32_t mask = rnd_chance(r, 1, 2) ? 0 : (uint32_t)rnd_bit(r, 0x1f), match = rnd_chance(r, 1, 2) ? 0 : (uint32_t)rnd_bit(r, 0x1f);
	ww(EXCEPTION_BITMAP, bm);
	ww(PF_ERR_MASK, mask);
	ww(PF_ERR_MATCH, match);
	fz_add(l, " exc=%x/%x/%x", bm, mask, match);
}

static void m_cr_masks(struct rng *r, struct fz_line *l)
{
	uint64_t m0 = rnd_bit(r, CR0_TS | CR0_MP | CR0_WP | CR0_PE | CR0_NE | CR0_AM | CR0_CD) | (rnd_chance(r, 1, 2) ? rnd_bit(r, ~0ull) : 0);
	uint64_t m4 = rnd_bit(r, CR4_VMXE | CR4_PGE | CR4_TSD | CR4_DE | CR4_PAE | CR4_SMEP) | (rnd_chance(r, 1, 2) ? rnd_bit(r, ~0ull) : 0);
	uint64_t s0 = rw(GUEST_CR0) ^ (rnd_chance(r, 1, 2) ? rnd_bit(r, m0) : 0);
	uint64_t s4 = rw(GUEST_CR4) ^ (rnd_chance(r, 1, 2) ? rnd_bit(r, m4) : 0);
	ww(CR0_MASK, m0);
	ww(CR4_MASK, m4);
	ww(CR0_SHADOW, s0);
	ww(CR4_SHADOW, s4);
	set_bit(PROC_CTLS, rnd_bit(r, PROC_CR3_LOAD | PROC_CR3_STORE | PROC_CR8_LOAD | PROC_CR8_STORE), rnd_chance(r, 1, 2));
	fz_add(l, " crm=%llx/%llx/%llx/%llx", (unsigned long long)m0, (unsigned long long)m4, (unsigned long long)s0,
	       (unsigned long long)s4);
}

static void bitmap_set(uint8_t *bm, unsigned bit, bool on)
{
	if (on)
		bm[bit / 8] |= (uint8_t)(1u << (bit % 8));
	else
		bm[bit / 8] &= (uint8_t)~(1u << (bit % 8));
}

static void m_io_bits(struct rng *r, struct fz_line *l)
{
	unsigned n = 1 + rnd_below(r, 3);
	fz_add(l, " iob");
	for (unsigned i = 0; i < n; i++) {
		uint16_t p = fz_pick_port(r);
		bitmap_set(p < 0x8000 ? io_bitmap_a : io_bitmap_b, p & 0x7fff, true);
		fz_add(l, ":%x", p);
	}
	set_bit(PROC_CTLS, PROC_UNCOND_IO, rnd_chance(r, 1, 4));
	set_bit(PROC_CTLS, PROC_IO_BITMAPS, rnd_chance(r, 3, 4));
}

static void m_msr_bits(struct rng *r, struct fz_line *l)
{
	unsigned n = 1 + rnd_below(r, 3);
	fz_add(l, " msrb");
	for (unsigned i = 0; i < n; i++) {
		bool w = rnd_chance(r, 1, 2);
		uint32_t m = fz_pick_msr(r, w);
		unsigned base = w ? 2048 : 0;
		if (m <= 0x1fff)
			bitmap_set(msr_bitmap, 8 * base + m, true);
		else if (m >= 0xc0000000 && m <= 0xc0001fff)
			bitmap_set(msr_bitmap, 8 * (base + 1024) + (m - 0xc0000000), true);
		fz_add(l, ":%c%x", w ? 'w' : 'r', m);
	}
}

/* --- EPT12 entries on the path to ept_probe (SDM 28.3.2, 28.3.3) ------------------- */
static uint64_t *ept_entry(unsigned level)
{
	uint64_t a = pa(ept_probe), table = ept_pointer() & ~0xfffull;
	for (unsigned lv = 4;; lv--) {
		uint64_t *e = (uint64_t *)(table + 8 * ((a >> (12 + 9 * (lv - 1))) & 511));
		if (lv == level || (*e & (1u << 7)) || lv == 1)
			return e;
		/* (An earlier mutation may have set reserved address bits.) */
		table = *e & ((1ull << fzc.maxphyaddr) - 1) & ~0xfffull;
	}
}

static void m_ept_entry(struct rng *r, struct fz_line *l)
{
	/* Mostly the 4 KiB leaf; sometimes a table entry above it (which then
	 * concerns the L2's code and stack too). */
	unsigned level = rnd_chance(r, 3, 4) ? 1 : 2 + rnd_below(r, 3);
	uint64_t *e = ept_entry(level), v = *e;
	unsigned k = rnd_below(r, 6);
	switch (k) {
	case 0: v = (v & ~7ull) | rnd_below(r, 8); break;                 /* R/W/X incl. W-only, X-only */
	case 1: v = (v & ~0x38ull) | (uint64_t)rnd_below(r, 8) << 3; break; /* memory type or bits 5:3 */
	case 2: v ^= 1ull << 6; break;                                      /* ignore PAT / reserved */
	case 3: v ^= 1ull << 7; break;                                      /* page size */
	case 4: v |= 1ull << (fzc.maxphyaddr + rnd_below(r, 52 - fzc.maxphyaddr)); break;
	default: v &= ~7ull; break;                                         /* not present */
	}
	*e = v;
	fz_add(l, " epte%u.%u=%llx", level, k, (unsigned long long)(v & ~0x000ffffffffff000ull));
}

/* --- MSR lists (SDM 26.4, 27.4, 27.6) ------------------------------------------------
 * VM-entry loads may fail (VM-entry failure, reason 34); the exit lists may
 * not: a failure there is a VMX abort, which shuts bare Bochs down. */
static void msr_list(struct rng *r, unsigned which, uint32_t count, bool may_fail)
{
	static const uint32_t good[] = { MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP, MSR_STAR,
					 MSR_LSTAR, MSR_CSTAR, MSR_FMASK, MSR_KERNEL_GS_BASE, MSR_TSC_AUX };
	static const uint32_t bad[] = { MSR_FS_BASE, MSR_GS_BASE, 0x808, 0x830, 0x12345, 0x1d9 };
	uint64_t *a = fz_msr_area[which];
	memset(a, 0, sizeof(fz_msr_area[which]));
	for (uint32_t i = 0; i < count && i < 8; i++) {
		uint32_t m = good[rnd_below(r, sizeof(good) / sizeof(good[0]))];
		uint64_t v = rnd(r) & 0x00007ffffffff000ull;
		if (m == MSR_IA32_SYSENTER_CS || m == MSR_TSC_AUX)
			v &= 0xffffffff;
		if (may_fail && rnd_chance(r, 1, 4)) {
			switch (rnd_below(r, 3)) {
			case 0: m = bad[rnd_below(r, sizeof(bad) / sizeof(bad[0]))]; break;
			case 1: a[2 * i] = (uint64_t)1 << (32 + rnd_below(r, 32)); break;
			default: m = MSR_LSTAR, v = noncanonical(r); break;
			}
		}
		a[2 * i] |= m;
		a[2 * i + 1] = v;
	}
}

static void m_msr_lists(struct rng *r, struct fz_line *l)
{
	static const uint32_t addr_f[3] = { ENTRY_MSR_LOAD_ADDR, EXIT_MSR_STORE_ADDR, EXIT_MSR_LOAD_ADDR };
	static const uint32_t cnt_f[3] = { ENTRY_MSR_LOAD_COUNT, EXIT_MSR_STORE_COUNT, EXIT_MSR_LOAD_COUNT };
	unsigned which = rnd_below(r, 3);
	uint32_t count = rnd_below(r, 5);
	uint64_t addr = pa(fz_msr_area[which]);
	unsigned k = rnd_below(r, 8);
	/* Addresses the entry checks refuse (VMfailValid(7)), for any list;
	 * memory beyond RAM only for the entry list (read as ones there). */
	if (k == 0)
		addr += 8;
	else if (k == 1)
		addr = beyond_width(r) - 16 * (count ? count - 1 : 0);
	else if (k == 2)
		/* A list that ends beyond the width.  Not 2^28 entries or more:
		 * Bochs 2.7 computes the end in 32 bits (count * 16 wraps) and
		 * accepts such a list - then loads it at the next exit. */
		count = 0x08000000u + rnd_below(r, 0x1000), addr = (1ull << fzc.maxphyaddr) - 0x1000;
	else if (k == 3 && which == 0)
		addr = 0x40000000ull; /* beyond the RAM of every depth */
	msr_list(r, which, count, which == 0);
	ww(addr_f[which], addr);
	ww(cnt_f[which], count);
	fz_add(l, " msrl%u.%u=%u", which, k, count);
}

/* --- the guard: nothing that waits for an event that never comes ------------------
 * HLT (as a program or an activity state), MWAIT, shutdown and wait-for-SIPI
 * states need an exit to end them: HLT/MWAIT exiting or the preemption
 * timer.  Bochs 2.7 never leaves an HLT activity state with interrupt-window
 * exiting and IF=1 (PLATFORM.md), so that combination is not made.  The
 * shutdown and wait-for-SIPI states are left out: the timer does not end
 * them on Bochs 2.7.  Nor an event in the HLT state that SDM 26.3.1.5
 * forbids there (only external interrupts, NMIs, #DB, #MC and a pending
 * MTF exit may be injected): Bochs 2.7 does not check that rule and
 * enters; Nestor, as the CPU, fails the entry. */
static void guard(struct rng *r, struct fz_line *l, unsigned prog)
{
	/* Bochs 2.7 does not check that an IA-32e mode guest has CR0.PG set
	 * (SDM 26.3.1.1) and panics at its first instruction: depth 0 cannot
	 * say what happens (Nestor gives the entry failure the SDM asks for:
	 * hostile.ia32e_guest_without_paging). */
	if ((rw(ENTRY_CTLS) & ENTRY_IA32E) && !(rw(GUEST_CR0) & CR0_PG)) {
		ww(GUEST_CR0, rw(GUEST_CR0) | CR0_PG | CR0_PE);
		fz_add(l, " guard=pg");
	}
	uint32_t act = (uint32_t)rw(GUEST_ACTIVITY), proc = (uint32_t)rw(PROC_CTLS);
	uint32_t info = (uint32_t)rw(ENTRY_INTR_INFO);
	bool inj = info & INTR_VALID;
	if (act == 2 || act == 3) {
		ww(GUEST_ACTIVITY, 1);
		act = 1;
	}
	/* A pending debug exception in the HLT state: Bochs 2.7 keeps it
	 * pending in HLT, but delivers it (and leaves HLT) when an exit comes
	 * first - one of its prefetch at the entry, which a shadow EPT below
	 * takes: what the guest sees depends on the hypervisor below. */
	if (act == 1 && !inj && rw(GUEST_PENDING_DBG)) {
		ww(GUEST_PENDING_DBG, 0);
		fz_add(l, " guard=dbg");
	}
	unsigned type = (info >> 8) & 7, vec = info & 0xff;
	if (act == 1 && inj && type != 0 && type != 2 && !(type == 3 && (vec == 1 || vec == 18))) {
		ww(GUEST_ACTIVITY, 0);
		act = 0;
		fz_add(l, " act=0");
	}
	bool wait = (act == 1 && !inj) || (prog == FZ_P_HLT && !(proc & PROC_HLT)) ||
		    (prog == FZ_P_MWAIT && !(proc & (1u << 10)));
	if (!wait)
		return;
	if (!(fzc.pin1 & PIN_PREEMPT)) {
		ww(GUEST_ACTIVITY, 0);
		ww(PROC_CTLS, proc | PROC_HLT | (fzc.proc1 & (1u << 10)));
		fz_add(l, " guard=x");
		return;
	}
	uint32_t t = 200 + rnd_below(r, 300);
	set_bit(PIN_CTLS, PIN_PREEMPT, true);
	ww(GUEST_PREEMPT_TIMER, t);
	if (act == 1)
		set_bit(PROC_CTLS, PROC_INTR_WINDOW, false);
	fz_add(l, " guard=%u", t);
}

/* Page-modification logging (SDM 29.3.6) into a page of its own, or with
 * an address the entry refuses (unaligned, beyond the physical-address
 * width), or without EPT.  The index leaves room for every page a program
 * can dirty: Bochs 2.7 makes the log-full exit at any EPT translation once
 * the index is out of range, the SDM only when a flag is to be set
 * (vmx_exits.pml tests the log-full exit; docs/nested.md). */
static void m_pml(struct rng *r, struct fz_line *l)
{
	if (!((uint32_t)(vcaps.proc2 >> 32) & PROC2_PML))
		return;
	unsigned which = rnd_below(r, 4);
	uint64_t a = which == 1 ? pa(fz_pml_log) + 8 : which == 2 ? 1ull << 52 : pa(fz_pml_log);
	memset(fz_pml_log, 0, sizeof(fz_pml_log));
	fz_pml_start = 64 + rnd_below(r, 448);
	ww(PML_ADDR, a);
	ww(GUEST_PML_INDEX, fz_pml_start);
	set_bit(PROC2_CTLS, PROC2_PML, true);
	if (which == 3)
		set_bit(PROC2_CTLS, PROC2_EPT | PROC2_UNRESTRICTED, false);
	/* Logging needs the EPT's dirty flags: on, with the probe page clean. */
	bool ad = which == 0 && (vcaps.ept_vpid & (1ull << 21)) && rnd_chance(r, 2, 3);
	if (ad) {
		ww(EPT_POINTER, ept_pointer() | (1ull << 6));
		*ept_probe_pte() &= ~0x300ull;
		static struct inv_desc d; /* all contexts: the pointer with or without the flags */
		invept_insn(2, &d);
	}
	fz_add(l, " pml=%u,%u%s", which, fz_pml_start, ad ? ",ad" : "");
}

/* --- choosing ----------------------------------------------------------------------- */
typedef void (*mutation)(struct rng *, struct fz_line *);
static const mutation general[] = {
	m_pin, m_proc, m_proc2, m_exit, m_entry, m_nmi, m_ept_ug_vpid, m_timer, m_cr3_targets, m_io_bitmap_ptrs,
	m_msr_bitmap_ptr, m_eptp, m_inject, m_inject, m_host_cr0, m_host_cr4, m_host_cr3, m_host_sel, m_host_base,
	m_host_efer_pat, m_host_mode, m_guest_seg, m_guest_seg, m_guest_cr, m_guest_msr, m_guest_rflags,
	m_guest_nonreg, m_guest_nonreg, m_link, m_guest_misc, m_exc_bitmap, m_cr_masks, m_ept_entry, m_tpr, m_pml,
	m_cet,
};
#define N_GENERAL (sizeof(general) / sizeof(general[0]))

/* The mutation that matters most to a program (or NULL). */
static mutation focus(struct rng *r, unsigned prog)
{
	switch (prog) {
	case FZ_P_MSR: return rnd_chance(r, 1, 3) ? m_tpr : m_msr_bits;
	case FZ_P_IO: return m_io_bits;
	case FZ_P_CR: return rnd_chance(r, 1, 2) ? m_cr_masks : m_tpr;
	case FZ_P_UD2: case FZ_P_INT3: case FZ_P_PF: case FZ_P_DE: case FZ_P_INT: return m_exc_bitmap;
	case FZ_P_EPT: return rnd_chance(r, 1, 3) ? m_pml : m_ept_entry;
	case FZ_P_LOOP: case FZ_P_IOLOOP: return m_timer;
	case FZ_P_STI: case FZ_P_HLT: case FZ_P_MISC: case FZ_P_DR: case FZ_P_DESC: case FZ_P_MWAIT: return m_proc;
	case FZ_P_FLAGS: return m_guest_rflags;
	case FZ_P_NMI: return m_nmi;
	case FZ_P_RAND: return m_rand_ctls;
	default: return m_inject;
	}
}

void fz_mutate(struct rng *r, struct fz_line *l, unsigned *prog, bool msr_lists)
{
	unsigned p = msr_lists ? FZ_P_MSR : rnd_below(r, FZ_NPROG);
	*prog = p;
	fz_program_start(r, l, p);
	/* Secondary controls the programs meet: RDTSCP, descriptor tables... */
	if (rnd_chance(r, 1, 2))
		set_bit(PROC2_CTLS, (uint32_t)rnd_bit(r, fzc.proc2_1 & ~(PROC2_EPT | PROC2_VPID | PROC2_UNRESTRICTED)), true);
	if (msr_lists) {
		unsigned n = 1 + rnd_below(r, 3);
		for (unsigned i = 0; i < n; i++)
			m_msr_lists(r, l);
	}
	unsigned n = rnd_chance(r, 1, 10) ? 0 : 1 + rnd_below(r, 3);
	mutation f = focus(r, p);
	for (unsigned i = 0; i < n; i++) {
		if (f && rnd_chance(r, 1, 2))
			f(r, l);
		else
			general[rnd_below(r, N_GENERAL)](r, l);
	}
	guard(r, l, p);
}
