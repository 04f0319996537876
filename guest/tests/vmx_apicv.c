/* vmx_apicv.c - APIC-register virtualization and virtual-interrupt
 * delivery (suite vmx_exits; SDM 29.1-29.5): an L2 reads and writes the
 * APIC through the APIC-access page (xAPIC) or the x2APIC MSRs, the CPU
 * answers from the virtual-APIC page, virtualizes TPR, EOI and self-IPI
 * writes, delivers virtual interrupts through the L2's IDT, and exits to
 * the L1 where it must (APIC access, APIC write, EOI-induced).  Each run
 * executes a list of operations (l2_mem_ops, l2_msr_ops) and prints every
 * exit and interrupt on the way, the values read, then RVI, SVI and the
 * virtual-APIC registers - identical at every depth. */
#include "guest/vmx.h"
#include "guest/test.h"
#include "lib/format.h"
#include "lib/string.h"
#include "lib/x86.h"

#define PIN_EXTINT_EXITING PIN_EXTINT
#define PROC2_APIC_ACCESS (1u << 0)
#define PROC2_X2APIC (1u << 4)
#define PROC2_APIC_REG (1u << 8)
#define PROC2_VID (1u << 9)
#define EXIT_APIC_ACCESS 44
#define EXIT_EOI 45
#define EXIT_APIC_WRITE 56
#define EXIT_TPR_BELOW 43

struct op {
	uint64_t kind, addr, val;
};
enum { OP_READ, OP_WRITE, OP_END };
static struct op ops[24];
static unsigned nops;

static void op(uint64_t kind, uint64_t addr, uint64_t val)
{
	ops[nops++] = (struct op){ kind, addr, val };
	ops[nops] = (struct op){ OP_END, 0, 0 };
}
static void ops_reset(void)
{
	nops = 0;
	ops[0] = (struct op){ OP_END, 0, 0 };
}

/* The vectors set in one of the 256-bit registers of the virtual-APIC page. */
static const char *vectors(unsigned base, char *buf, size_t n)
{
	size_t k = 0;
	buf[0] = 0;
	for (unsigned v = 0; v < 256 && k + 4 < n; v++)
		if ((*(uint32_t *)(vm_vapic + base + 0x10 * (v / 32)) >> (v % 32)) & 1)
			k += (size_t)ksnprintf(buf + k, n - k, "%s%02x", k ? "," : "", v);
	if (!k)
		ksnprintf(buf, n, "-");
	return buf;
}

static void state(const char *what)
{
	char isr[64], irr[64];
	uint64_t st = (vmr(PROC2_CTLS) & PROC2_VID) ? vmr(GUEST_INTR_STATUS) : 0;
	say("%s: RVI %02llx SVI %02llx; VTPR %02x VPPR %02x; VISR %s VIRR %s", what, (unsigned long long)(st & 0xff),
	    (unsigned long long)(st >> 8), vm_vapic[0x80], vm_vapic[0xa0], vectors(0x100, isr, sizeof(isr)),
	    vectors(0x200, irr, sizeof(irr)));
}

/* Runs the list with a snippet, through every exit and interrupt. */
static void run_ops(const char *what, const void *snippet, uint64_t rflags)
{
	for (unsigned i = 0; i < nops; i++)
		if (ops[i].kind == OP_READ)
			ops[i].val = 0xeeee;
	vm_at(snippet, rflags);
	vm.r.rbx = pa(vm_apic_access);
	vm.r.r9 = pa(ops);
	l2_event.count = 0;
	for (int n = 0; n < 16; n++) {
		uint32_t rs = vm_go();
		if (rs == GO_FAILED) {
			say("%s: %s", what, vm.go.s);
			return;
		}
		unsigned at = (unsigned)((vm.r.r9 - pa(ops)) / sizeof(struct op));
		if (rs == EXIT_VMCALL && vm.x.rip == pa(l2_ops_end))
			break;
		if (rs == EXIT_VMCALL && l2_event.count) {
			say("%s: at op %u, vector %llu delivered%s", what, at, (unsigned long long)l2_event.vector,
			    l2_event.error != ~0ull ? " with an error code" : "");
			if (l2_event.vector < 32)
				return; /* a fault: the instruction would fault again */
			l2_event.count = 0;
			vm_skip(); /* to the stub's IRETQ */
			continue;
		}
		say("%s: at op %u, exit %u (%s), qualification %llx", what, at, rs & 0xffff, exit_name(rs),
		    (unsigned long long)vm.x.qual);
		if (rs == EXIT_RDMSR) {
			vm.r.rax = 0xdead; /* the L1 answers */
			vm.r.rdx = 0;
			vm_skip();
		} else if (rs == EXIT_WRMSR || rs == EXIT_APIC_ACCESS) {
			vm_skip();
		} else if (rs != EXIT_APIC_WRITE && rs != EXIT_EOI && rs != EXIT_TPR_BELOW) {
			return;
		}
	}
	for (unsigned i = 0; i < nops; i++)
		if (ops[i].kind == OP_READ)
			say("%s: read %llx: %llx", what, (unsigned long long)ops[i].addr, (unsigned long long)ops[i].val);
	state(what);
}

/* Every register slot of the virtual-APIC page: its offset, tagged. */
static void vapic_pattern(void)
{
	for (unsigned off = 0; off < 0x400; off += 0x10) {
		*(uint32_t *)(vm_vapic + off) = 0xa0000 | off;
		*(uint32_t *)(vm_vapic + off + 4) = 0xb0000 | off;
	}
	*(uint32_t *)(vm_vapic + 0x80) = 0;  /* VTPR */
	*(uint32_t *)(vm_vapic + 0xa0) = 0;  /* VPPR */
	for (unsigned off = 0x100; off < 0x280; off += 0x10)
		*(uint32_t *)(vm_vapic + off) = 0; /* VISR, VTMR, VIRR */
}

/* Bochs 2.7 delivers a virtual interrupt without recording it as the event
 * being delivered: a VM exit during the delivery (a guest-physical page
 * not yet in the EPT) reports a stale IDT-vectoring information, and the
 * interrupt is lost (docs/testing.md).  Nestor fills its shadow EPTs as the
 * L2 touches pages, so the L2 first takes an exception through the same
 * IDT, stack and handler, which puts them there. */
static void warm_up(void)
{
	vm_at(l2_ud2, RFLAGS_FIXED);
	uint32_t rs = vm_go();
	say("warm-up: exit %u (%s), vector %llu", rs, exit_name(rs), (unsigned long long)l2_event.vector);
}

static bool have(unsigned proc2_bits)
{
	return !ctl_missing(vcaps.proc2, proc2_bits) && !ctl_missing(vcaps.proc, PROC_TPR_SHADOW);
}

/* VMX on, a VMCS with TPR shadow and these secondary controls (with
 * virtual-interrupt delivery: RVI, SVI and the EOI-exit bitmap clear), the
 * virtual-APIC page tagged; false (said why) when the CPU lacks them. */
static bool begin(unsigned proc2_bits, const char *what)
{
	if (!vm_begin() || vm_lacks(have(proc2_bits), what))
		return false;
	vapic_pattern();
	ops_reset();
	vm_ctl(PROC_CTLS, PROC_TPR_SHADOW, PROC_CR8_LOAD | PROC_CR8_STORE);
	vm_ctl(PROC2_CTLS, proc2_bits, 0);
	if (proc2_bits & PROC2_VID) {
		vmw(GUEST_INTR_STATUS, 0);
		for (int i = 0; i < 4; i++)
			vmw(EOI_EXIT_BITMAP0 + 2 * i, 0);
	}
	return true;
}

TEST(vmx_exits, apic_register_virt)
{
	if (!vm_begin() || vm_lacks(have(PROC2_APIC_ACCESS | PROC2_APIC_REG), "APIC-register virtualization"))
		return;
	vapic_pattern();
	ops_reset();
	vm_ctl(PROC2_CTLS, PROC2_APIC_ACCESS | PROC2_APIC_REG, 0);
	vm_at(l2_mem_ops, RFLAGS_FIXED);
	uint32_t rs = vm_go();
	say("APIC-register virtualization without TPR shadow: %s", rs == GO_FAILED ? vm.go.s : exit_name(rs));
	vm_ctl(PROC_CTLS, PROC_TPR_SHADOW, PROC_CR8_LOAD | PROC_CR8_STORE);
	/* Reads: the registers the CPU virtualizes, and two it does not
	 * (PPR, the timer's current count: APIC-access exits). */
	static const uint16_t rd[] = { 0x20, 0x30, 0x80, 0xa0, 0xb0, 0xd0, 0xe0, 0xf0, 0x100, 0x170, 0x180,
				       0x200, 0x280, 0x300, 0x310, 0x320, 0x370, 0x380, 0x390, 0x3e0 };
	for (unsigned i = 0; i < sizeof(rd) / sizeof(rd[0]); i++)
		op(OP_READ, rd[i], 0);
	run_ops("reads", l2_mem_ops, RFLAGS_FIXED);
	/* Writes: TPR virtualized; ID, ICR, EOI (without virtual-interrupt
	 * delivery) with APIC-write exits after them; the current count (not
	 * virtualized) an APIC-access exit before. */
	ops_reset();
	op(OP_WRITE, 0x80, 0x35);
	op(OP_WRITE, 0x20, 0x12345678);
	op(OP_WRITE, 0x310, 0x03000000);
	op(OP_WRITE, 0x300, 0x000c4041);
	op(OP_WRITE, 0xb0, 0);
	op(OP_WRITE, 0x390, 7);
	op(OP_WRITE, 0x3e0, 0xb);
	run_ops("writes", l2_mem_ops, RFLAGS_FIXED);
	say("virtual-APIC page after: ID %x ICR %x:%x EOI %x current count %x divide %x",
	    *(uint32_t *)(vm_vapic + 0x20), *(uint32_t *)(vm_vapic + 0x310), *(uint32_t *)(vm_vapic + 0x300),
	    *(uint32_t *)(vm_vapic + 0xb0), *(uint32_t *)(vm_vapic + 0x390), *(uint32_t *)(vm_vapic + 0x3e0));
	vmx_end();
}

TEST(vmx_exits, virtual_interrupts)
{
	if (!begin(PROC2_APIC_ACCESS | PROC2_APIC_REG | PROC2_VID, "virtual-interrupt delivery"))
		return;
	vm_ctl(PIN_CTLS, 0, PIN_EXTINT_EXITING);
	vm_at(l2_mem_ops, RFLAGS_FIXED);
	uint32_t rs = vm_go();
	say("virtual-interrupt delivery without external-interrupt exiting: %s",
	    rs == GO_FAILED ? vm.go.s : exit_name(rs));
	vm_ctl(PIN_CTLS, PIN_EXTINT_EXITING, 0);
	vmw(TPR_THRESHOLD, 0x1f3); /* not checked with virtual-interrupt delivery */
	warm_up();
	/* A self-IPI through the ICR: delivered at once (IF = 1). */
	op(OP_WRITE, 0x300, 0x00040041);
	op(OP_READ, 0x120, 0);
	run_ops("self-IPI 41h", l2_mem_ops, RFLAGS_FIXED | RFLAGS_IF);
	/* Its EOI, with the EOI-exit bitmap's bit: an EOI-induced exit. */
	vmw(EOI_EXIT_BITMAP0 + 2, 1ull << (0x41 - 64));
	ops_reset();
	op(OP_WRITE, 0xb0, 0);
	run_ops("EOI of 41h, exiting", l2_mem_ops, RFLAGS_FIXED | RFLAGS_IF);
	/* A TPR above the vector holds it in VIRR; lowering it delivers it. */
	ops_reset();
	op(OP_WRITE, 0x80, 0x50);
	op(OP_WRITE, 0x300, 0x00040041);
	op(OP_READ, 0x220, 0);
	op(OP_WRITE, 0x80, 0x20);
	op(OP_READ, 0x120, 0);
	run_ops("self-IPI 41h under TPR 50h, then TPR 20h", l2_mem_ops, RFLAGS_FIXED | RFLAGS_IF);
	/* Two more, the higher first; EOIs without exits deliver the next. */
	vmw(EOI_EXIT_BITMAP0 + 2, 0);
	ops_reset();
	op(OP_WRITE, 0x300, 0x00040061);
	op(OP_WRITE, 0x300, 0x00040051);
	op(OP_WRITE, 0xb0, 0);
	op(OP_WRITE, 0xb0, 0);
	op(OP_WRITE, 0xb0, 0);
	run_ops("self-IPIs 61h and 51h, three EOIs", l2_mem_ops, RFLAGS_FIXED | RFLAGS_IF);
	/* ICR writes that are not virtualized self-IPIs: APIC-write exits. */
	ops_reset();
	op(OP_WRITE, 0x300, 0x0004000f); /* vector below 16 */
	op(OP_WRITE, 0x300, 0x00000041); /* no shorthand */
	op(OP_WRITE, 0x300, 0x00044041); /* the level bit: still a self-IPI */
	run_ops("other ICR writes", l2_mem_ops, RFLAGS_FIXED | RFLAGS_IF);
	/* RVI set by the L1: VM entry evaluates it (SDM 26.3.2.5). */
	ops_reset();
	*(uint32_t *)(vm_vapic + 0x220) |= 1u << (0x51 - 64);
	vmw(GUEST_INTR_STATUS, 0x0051);
	run_ops("RVI 51h set by the L1", l2_mem_ops, RFLAGS_FIXED | RFLAGS_IF);
	vmx_end();
}

TEST(vmx_exits, x2apic_virt)
{
	if (!begin(PROC2_X2APIC | PROC2_APIC_REG | PROC2_VID, "x2APIC register virtualization"))
		return;
	vm_ctl(PIN_CTLS, PIN_EXTINT_EXITING, 0);
	warm_up();
	/* Reads of 800h-8FFh: the virtual-APIC page at (MSR & FFh) << 4. */
	static const uint16_t rd[] = { 0x802, 0x803, 0x808, 0x80a, 0x80d, 0x80f, 0x810, 0x820, 0x828,
				       0x830, 0x832, 0x838, 0x839, 0x83e, 0x83f, 0x8ff };
	for (unsigned i = 0; i < sizeof(rd) / sizeof(rd[0]); i++)
		op(OP_READ, rd[i], 0);
	run_ops("RDMSR", l2_msr_ops, RFLAGS_FIXED);
	/* The L1's MSR bitmap first: an intercepted read exits to it. */
	msr_bitmap[0x803 / 8] |= 1u << (0x803 % 8);
	ops_reset();
	op(OP_READ, 0x802, 0);
	op(OP_READ, 0x803, 0);
	run_ops("RDMSR 803h intercepted", l2_msr_ops, RFLAGS_FIXED);
	msr_bitmap[0x803 / 8] &= (uint8_t)~(1u << (0x803 % 8));
	/* TPR, self-IPI, EOI. */
	vmw(EOI_EXIT_BITMAP0 + 2, 1ull << (0x51 - 64));
	ops_reset();
	op(OP_WRITE, 0x808, 0x20);
	op(OP_READ, 0x80a, 0);
	op(OP_WRITE, 0x83f, 0x51);
	op(OP_READ, 0x812, 0);
	op(OP_WRITE, 0x80b, 0);
	op(OP_READ, 0x80a, 0);
	op(OP_WRITE, 0x83f, 0x05);
	op(OP_READ, 0x83f, 0);
	run_ops("TPR, self-IPI 51h, EOI, self-IPI 5", l2_msr_ops, RFLAGS_FIXED | RFLAGS_IF);
	/* Invalid values: #GP. */
	ops_reset();
	op(OP_WRITE, 0x80b, 1);
	run_ops("WRMSR 80Bh of 1", l2_msr_ops, RFLAGS_FIXED | RFLAGS_IF);
	ops_reset();
	op(OP_WRITE, 0x83f, 0x151);
	run_ops("WRMSR 83Fh of 151h", l2_msr_ops, RFLAGS_FIXED | RFLAGS_IF);
	ops_reset();
	op(OP_WRITE, 0x808, 0x100);
	run_ops("WRMSR 808h of 100h", l2_msr_ops, RFLAGS_FIXED | RFLAGS_IF);
	/* An intercepted self-IPI write exits to the L1. */
	msr_bitmap[2048 + 0x83f / 8] |= 1u << (0x83f % 8);
	ops_reset();
	op(OP_WRITE, 0x83f, 0x61);
	run_ops("WRMSR 83Fh intercepted", l2_msr_ops, RFLAGS_FIXED | RFLAGS_IF);
	msr_bitmap[2048 + 0x83f / 8] &= (uint8_t)~(1u << (0x83f % 8));
	vmx_end();
}
