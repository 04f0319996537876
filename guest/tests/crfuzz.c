/* crfuzz.c - MOV to CR0/CR4, LMSW and CLTS with generated operands,
 * compared with the CPU.
 *
 * cr.c writes the values one thinks of; here a seeded generator flips
 * random sets of the bits that matter (the architectural ones, reserved
 * ones, bits 63:32) in the current CR0 or CR4, sometimes with CR3's low
 * bits set (PCIDE needs them clear, SDM 4.10.1), outside and inside VMX
 * operation (where CR0.PE/NE/PG and CR4.VMXE are fixed, SDM 23.8).  Under
 * Nestor the writes a guest/host mask covers exit and are emulated
 * (vmx/exit_cr.c), or reach the hypervisor of a level above; every outcome
 * - the exception, or the values read back - is printed, so the transcript
 * at depth n must be the CPU's at depth 0.  Each write is undone at once:
 * the kernel never runs with the generated value.
 *
 * Left out: SMEP and SMAP (the kernel's pages may be user pages: the next
 * fetch would fault with nobody to catch it); CR0.PG and CR4.PAE are in the
 * masks but can only fault in IA-32e mode. */
#include "guest/test.h"
#include "guest/vmx.h"
#include "lib/format.h"
#include "lib/x86.h"

#define CR0_BITS                                                                                                   \
	(CR0_PE | CR0_MP | CR0_EM | CR0_TS | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_NW | CR0_CD | CR0_PG |          \
	 (1ull << 6) | (1ull << 17) | (1ull << 32) | (1ull << 63))
#define CR4_BITS                                                                                                   \
	(CR4_VME | CR4_PVI | CR4_TSD | CR4_DE | CR4_PSE | CR4_PAE | CR4_MCE | CR4_PGE | CR4_PCE | CR4_OSFXSR |       \
	 CR4_OSXMMEXCPT | CR4_UMIP | CR4_LA57 | CR4_VMXE | CR4_SMXE | CR4_FSGSBASE | CR4_PCIDE | CR4_OSXSAVE |         \
	 CR4_PKE | CR4_CET | CR4_PKS | (1ull << 15) | (1ull << 19) | (1ull << 25) | (1ull << 31) | (1ull << 32))

enum { OP_CR0, OP_CR4, OP_LMSW, OP_CLTS, NOPS };
static const char *const op_name[NOPS] = { "cr0", "cr4", "lmsw", "clts" };

struct try {
	unsigned op;
	uint64_t val;      /* the operand */
	uint64_t cr3_low;  /* OR-ed into CR3 first (PWT, PCD) */
	uint64_t cr0, cr4; /* read back after the write */
};

static uint64_t rng_state;
static uint64_t rng(void)
{
	/* xorshift64*: deterministic, the same at every depth. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* A few (1-3) bits of mask, chosen at random. */
static uint64_t some_bits(uint64_t mask)
{
	uint64_t r = 0;
	unsigned n = 1 + (unsigned)(rng() % 3);
	unsigned bits = 0;
	for (uint64_t m = mask; m; m &= m - 1)
		bits++;
	for (unsigned k = 0; k < n; k++) {
		unsigned pick = (unsigned)(rng() % bits);
		uint64_t m = mask;
		for (unsigned i = 0; i < pick; i++)
			m &= m - 1;
		r |= m & -m;
	}
	return r;
}

/* The write, then everything put back before anything else runs. */
static void try_fn(void *p)
{
	struct try *t = p;
	uint64_t cr0 = read_cr0(), cr3 = read_cr3(), cr4 = read_cr4();
	if (t->cr3_low)
		write_cr3(cr3 | t->cr3_low);
	switch (t->op) {
	case OP_CR0: write_cr0(t->val); break;
	case OP_CR4: write_cr4(t->val); break;
	case OP_LMSW: __asm__ volatile("lmsw %w0" : : "r"((uint16_t)t->val)); break;
	case OP_CLTS: __asm__ volatile("clts"); break;
	}
	t->cr0 = read_cr0();
	t->cr4 = read_cr4();
	write_cr4(cr4 & ~CR4_PCIDE); /* PCIDE can only be set again with CR3[11:0] = 0 */
	write_cr0(cr0);
	write_cr3(cr3);
	write_cr4(cr4);
}

static void run(unsigned n, bool in_vmx)
{
	char buf[96];
	unsigned faults = 0;
	for (unsigned i = 0; i < n; i++) {
		struct try t = { .op = (unsigned)(rng() % NOPS) };
		uint64_t cr0 = read_cr0(), cr3 = read_cr3(), cr4 = read_cr4();
		if (rng() % 4 == 0)
			t.cr3_low = (rng() & 1) ? 0x8 : 0x18;
		switch (t.op) {
		case OP_CR0: t.val = cr0 ^ some_bits(CR0_BITS); break;
		case OP_CR4: t.val = cr4 ^ some_bits(CR4_BITS); break;
		case OP_LMSW: t.val = rng() & 0xffff; break;
		case OP_CLTS: t.val = 0; write_cr0(cr0 | CR0_TS); break;
		}
		struct fault f;
		bool hit = catch_fault(try_fn, &t, &f);
		/* A fault left the write undone; only CR3 and TS may have changed. */
		write_cr0(cr0);
		write_cr3(cr3);
		if (hit) {
			faults++;
			ksnprintf(buf, sizeof(buf), "#%u(%llx)", f.vector, (unsigned long long)f.error_code);
		} else {
			ksnprintf(buf, sizeof(buf), "ok cr0 %llx cr4 %llx", (unsigned long long)t.cr0,
				  (unsigned long long)t.cr4);
		}
		say("%s %3u: %s %llx%s -> %s", in_vmx ? "vmx" : "   ", i, op_name[t.op], (unsigned long long)t.val,
		    t.cr3_low ? " (cr3 low bits)" : "", buf);
		CHECK(read_cr0() == cr0 && read_cr4() == cr4 && read_cr3() == cr3, "registers not put back");
	}
	say("%u writes, %u faulted", n, faults);
}

TEST(crfuzz, cr0_cr4)
{
	rng_state = 0x6e6573746f72ull; /* "nestor" */
	say("seed %llx", (unsigned long long)rng_state);
	run(150, false);
	if (!vmx_begin()) {
		say("no VMX operation: the writes inside it not run");
		return;
	}
	run(150, true);
	vmx_end();
}
