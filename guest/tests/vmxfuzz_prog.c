/* vmxfuzz_prog.c - the L2 programs of the VMX fuzzer (vmxfuzz_l2.S) and
 * the registers and memory each starts with, chosen by the seed. */
#include "guest/tests/vmxfuzz.h"
#include "guest/test.h"
#include "lib/string.h"
#include "lib/x86.h"

extern const char fz_l2_vmcall[], fz_l2_cpuid[], fz_l2_msr[], fz_l2_io[], fz_l2_cr[], fz_l2_hlt[], fz_l2_ud2[],
	fz_l2_int3[], fz_l2_pf[], fz_l2_de[], fz_l2_int[], fz_l2_ept[], fz_l2_loop[], fz_l2_sti[], fz_l2_dr[],
	fz_l2_misc[], fz_l2_vmx[], fz_l2_invd[], fz_l2_desc[], fz_l2_flags[], fz_l2_mwait[], fz_l2_ioloop[], fz_l2_nmi[],
	fz_l2_rand[];

const struct fz_program fz_programs[] = {
	[FZ_P_VMCALL] = { "vmcall", fz_l2_vmcall, false },
	[FZ_P_CPUID] = { "cpuid", fz_l2_cpuid, false },
	[FZ_P_MSR] = { "msr", fz_l2_msr, false },
	[FZ_P_IO] = { "io", fz_l2_io, false },
	[FZ_P_CR] = { "cr", fz_l2_cr, false },
	[FZ_P_HLT] = { "hlt", fz_l2_hlt, false },
	[FZ_P_UD2] = { "ud2", fz_l2_ud2, false },
	[FZ_P_INT3] = { "int3", fz_l2_int3, false },
	[FZ_P_PF] = { "pf", fz_l2_pf, false },
	[FZ_P_DE] = { "de", fz_l2_de, false },
	[FZ_P_INT] = { "int", fz_l2_int, false },
	[FZ_P_EPT] = { "ept", fz_l2_ept, false },
	[FZ_P_LOOP] = { "loop", fz_l2_loop, false },
	[FZ_P_STI] = { "sti", fz_l2_sti, false },
	[FZ_P_DR] = { "dr", fz_l2_dr, false },
	/* RDTSCP/RDTSC leave TSC values in RAX, RDX (and RCX): they depend on
	 * how many instructions the levels below ran, so they are not printed. */
	[FZ_P_MISC] = { "misc", fz_l2_misc, true },
	[FZ_P_VMX] = { "vmx", fz_l2_vmx, false },
	[FZ_P_INVD] = { "invd", fz_l2_invd, false },
	[FZ_P_DESC] = { "desc", fz_l2_desc, false },
	[FZ_P_FLAGS] = { "flags", fz_l2_flags, false },
	[FZ_P_MWAIT] = { "mwait", fz_l2_mwait, false },
	[FZ_P_IOLOOP] = { "ioloop", fz_l2_ioloop, false },
	[FZ_P_NMI] = { "nmi", fz_l2_nmi, false },
	/* RAX, RDX: RDRAND, RDSEED - random numbers. */
	[FZ_P_RAND] = { "rand", fz_l2_rand, true },
};
const unsigned fz_nprograms = sizeof(fz_programs) / sizeof(fz_programs[0]);

/* Scratch memory of the L2 programs (descriptor tables, string input...). */
static uint8_t l2_scratch[4096] __attribute__((aligned(4096)));

/* MSRs an L2 program reads and writes: values that are the same at every
 * depth (no TSC, no VMX capability MSR - those differ by design). */
static const uint32_t l2_read_msrs[] = {
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP, MSR_IA32_PAT, MSR_EFER, MSR_STAR,
	MSR_LSTAR, MSR_CSTAR, MSR_FMASK, MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE, MSR_TSC_AUX,
	0x1d9,      /* IA32_DEBUGCTL: #GP on Bochs */
	0x12345,    /* no such MSR */
	0x3a,       /* IA32_FEATURE_CONTROL */
	0xc0001fff, /* last MSR of the high bitmap range */
	0x808,      /* x2APIC TPR: virtualized with "virtualize x2APIC mode", else #GP (xAPIC mode) */
	0x802,      /* x2APIC ID, PPR, SELF IPI: virtualized with APIC-register virtualization too */
	0x80a,
	0x83f,
	0x2000,     /* first MSR beyond the low range */
	0x40000000, /* beyond both bitmap ranges */
};
static const uint32_t l2_write_msrs[] = {
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP, MSR_IA32_PAT, MSR_STAR, MSR_LSTAR,
	MSR_CSTAR, MSR_FMASK, MSR_KERNEL_GS_BASE, MSR_TSC_AUX, MSR_FS_BASE, 0x1d9, 0x12345, 0xc0001fff, 0x808,
};
/* Ports without side effects beyond storage: DMA page registers, the COM1
 * scratch register, ports nothing decodes (0x7fff/0x8000 straddle the two
 * I/O bitmaps, 0xffff wraps). */
static const uint16_t l2_ports[] = { 0x80, 0x81, 0x87, 0x3ff, 0x7fff, 0x8000, 0xffff, 0xfffe };

uint32_t fz_pick_msr(struct rng *r, bool write)
{
	return write ? l2_write_msrs[rnd_below(r, sizeof(l2_write_msrs) / sizeof(l2_write_msrs[0]))]
		     : l2_read_msrs[rnd_below(r, sizeof(l2_read_msrs) / sizeof(l2_read_msrs[0]))];
}
uint16_t fz_pick_port(struct rng *r) { return l2_ports[rnd_below(r, sizeof(l2_ports) / sizeof(l2_ports[0]))]; }

/* A value an L2 may write to an MSR: often valid, sometimes not. */
static uint64_t msr_value(struct rng *r, uint32_t msr)
{
	switch (rnd_below(r, 4)) {
	case 0: return 0;
	case 1: return rnd(r) & 0xffffffffull;
	case 2: return msr == MSR_IA32_PAT ? 0x0007040600070406ull : 0xffff800000001000ull;
	default: return rnd(r) >> rnd_below(r, 64);
	}
}

void fz_program_start(struct rng *r, struct fz_line *l, unsigned prog)
{
	struct l2_regs *g = &vm.r;
	memset(g, 0, sizeof(*g));
	vm_at(fz_programs[prog].code, fz_vmread(GUEST_RFLAGS) == ~0ull ? RFLAGS_FIXED : fz_vmread(GUEST_RFLAGS));
	memset(l2_scratch, 0, sizeof(l2_scratch));
	g->rdi = pa(l2_scratch);
	fz_add(l, " p=%s", fz_programs[prog].name);
	switch (prog) {
	case FZ_P_CPUID: {
		static const uint32_t leaves[] = { 0, 1, 7, 0xb, 0xd, 0x80000000, 0x80000001, 0x40000000, 0x12345678 };
		g->rax = leaves[rnd_below(r, 9)];
		g->r8 = leaves[rnd_below(r, 9)];
		break;
	}
	case FZ_P_MSR:
		g->rcx = fz_pick_msr(r, false);
		g->r8 = fz_pick_msr(r, true);
		g->r9 = msr_value(r, (uint32_t)g->r8);
		g->r10 = g->r9 >> 32;
		g->r9 &= 0xffffffffull;
		fz_add(l, ":%llx,%llx=%llx", (unsigned long long)g->rcx, (unsigned long long)g->r8,
		       (unsigned long long)(g->r9 | g->r10 << 32));
		break;
	case FZ_P_IO:
		g->r8 = fz_pick_port(r);
		g->r9 = fz_pick_port(r);
		g->r10 = rnd_below(r, 4);
		g->rax = rnd(r);
		fz_add(l, ":%llx,%llx*%llu", (unsigned long long)g->r8, (unsigned long long)g->r9,
		       (unsigned long long)g->r10);
		break;
	case FZ_P_CR: {
		static const uint64_t cr0_bits[] = { CR0_TS, 1u << 1, 1u << 2, 1u << 16, 1u << 18, 1u << 5, CR0_PE,
						     1ull << 31, 1ull << 29, 1ull << 33 };
		static const uint64_t cr4_bits[] = { 1u << 2, 1u << 3, 1u << 7, 1u << 5, CR4_VMXE, 1u << 9,
						     1u << 20, 1u << 16, 1u << 12, 1ull << 40 };
		uint64_t cr0 = fz_vmread(GUEST_CR0), cr4 = fz_vmread(GUEST_CR4);
		g->r8 = rnd_chance(r, 1, 4) ? cr0 : cr0 ^ cr0_bits[rnd_below(r, 10)];
		g->r9 = rnd_chance(r, 1, 4) ? cr4 : cr4 ^ cr4_bits[rnd_below(r, 10)];
		g->r10 = rnd_below(r, 16);
		g->r11 = rnd_chance(r, 1, 8) ? 16 + rnd_below(r, 8) : rnd_below(r, 16);
		fz_add(l, ":%llx,%llx,%llx,%llx", (unsigned long long)g->r8, (unsigned long long)g->r9,
		       (unsigned long long)g->r10, (unsigned long long)g->r11);
		break;
	}
	case FZ_P_PF:
		g->rbx = (1ull << 32) + 8 * rnd_below(r, 4096);
		break;
	case FZ_P_EPT:
		ept_probe[0xf00] = 0xc3; /* RET */
		g->rbx = pa(ept_probe) + 8 * rnd_below(r, 0x1e0);
		g->rcx = rnd(r);
		g->r8 = pa(ept_probe) + 0xf00;
		break;
	case FZ_P_LOOP:
	case FZ_P_IOLOOP:
		/* Short (< 200 ticks) or long (> 12000): see m_timer. */
		g->r8 = rnd_chance(r, 1, 2) ? 20 + rnd_below(r, 40) : 4000 + rnd_below(r, 2000);
		g->r9 = fz_pick_port(r);
		break;
	case FZ_P_DR: {
		/* DR7: breakpoints on DR0 (never reached), GD, reserved bits */
		static const uint64_t dr7[] = { 0x400, 0x401, 0x2400, 0x10403, 0x400 | (1ull << 32), 0xc00 };
		g->r8 = rnd(r) >> rnd_below(r, 64);
		g->r9 = dr7[rnd_below(r, 6)];
		break;
	}
	case FZ_P_MISC:
	case FZ_P_DESC:
		g->rbx = pa(l2_scratch) + 64;
		break;
	case FZ_P_VMX: {
		static const uint32_t enc[] = { GUEST_RIP, VM_INSN_ERROR, 0x12345, EXIT_REASON };
		g->rbx = pa(l2_scratch) + 128;
		g->r8 = enc[rnd_below(r, 4)];
		g->r9 = rnd_below(r, 4);
		break;
	}
	case FZ_P_INVD: {
		static const uint64_t xcr0[] = { 1, 3, 7, 0, 2 };
		g->r8 = xcr0[rnd_below(r, 5)];
		break;
	}
	case FZ_P_MWAIT:
		g->rax = pa(l2_scratch);
		break;
	case FZ_P_RAND: {
		/* RDPMC of general counters 0 and 1, fixed counter 0 (bit 30),
		 * an index beyond them; INVPCID types 0-3 and one beyond (#GP),
		 * on a descriptor with PCID 0 or 1 and a canonical address. */
		static const uint32_t pmc[] = { 0, 0, 1, 1u << 30, 0x100 };
		g->r8 = pmc[rnd_below(r, 5)];
		g->r9 = rnd_below(r, 5);
		g->rbx = pa(l2_scratch) + 256;
		((uint64_t *)(l2_scratch + 256))[0] = rnd_chance(r, 1, 2) ? 0 : 1;
		((uint64_t *)(l2_scratch + 256))[1] = rnd_chance(r, 1, 4) ? 0xffff800000000000ull : pa(l2_scratch);
		fz_add(l, ":%llx,%llx", (unsigned long long)g->r8, (unsigned long long)g->r9);
		break;
	}
	case FZ_P_NMI: {
		/* The APIC software-enabled; an NMI to this CPU (physical
		 * destination, its APIC ID). */
		uint64_t apic = rdmsr(MSR_IA32_APIC_BASE) & ~0xfffull;
		volatile uint32_t *svr = (volatile uint32_t *)(apic + 0xf0);
		*svr |= 0x100;
		g->rbx = apic;
		g->rax = *(volatile uint32_t *)(apic + 0x20) & 0xff000000u;
		g->rcx = 0x400;
		fz_nmi_touched = true;
		break;
	}
	default:
		break;
	}
}
