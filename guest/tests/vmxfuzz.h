/* vmxfuzz.h - the differential VMX fuzzer of the guest kernel (suite
 * vmxfuzz, guest/tests/vmxfuzz*.c): what its files share.
 *
 * The guest kernel acts as a hostile guest hypervisor: from a seed it
 * builds VMCS states near the valid/invalid boundary and sequences of VMX
 * instructions with mutated operands, runs them and prints one line per
 * case with every outcome.  The same seed must print the same lines on
 * bare Bochs (depth 0) and under Nestor (depths 1, 2): docs/testing.md. */
#ifndef GUEST_VMXFUZZ_H
#define GUEST_VMXFUZZ_H

#include <stdbool.h>
#include <stdint.h>
#include "guest/vmx.h"

/* Options of the guest command line (guest/main.c's table points here). */
struct vmxfuzz_opts {
	uint64_t seed;    /* fuzz_seed= */
	uint64_t cases;   /* fuzz_cases= */
	uint64_t first;   /* fuzz_first=: number of the first case (to replay one) */
	uint64_t classes; /* fuzz_classes=: bit mask of the case classes (FZ_C_*) */
	bool verbose;     /* fuzz_verbose: every field of every exit on lines of its own */
};
extern struct vmxfuzz_opts vmxfuzz_opts;

/* Case classes (fuzz_classes= bits). */
#define FZ_C_ENTRY 1u   /* a mutated VMCS, VMLAUNCH, L2 runs a program, exits handled */
#define FZ_C_INSN 2u    /* a sequence of VMX instructions with mutated operands */
#define FZ_C_MSRLIST 4u /* entry/exit MSR lists with entries L2 then observes */
#define FZ_C_ALL 7u

/* --- the generator's random numbers (xorshift64*, seeded per case) ---- */
struct rng {
	uint64_t s;
};
uint64_t rnd(struct rng *r);
/* Uniform in [0, n) (n > 0). */
static inline uint32_t rnd_below(struct rng *r, uint32_t n) { return (uint32_t)((rnd(r) >> 32) * n >> 32); }
/* True with probability num/den. */
static inline bool rnd_chance(struct rng *r, uint32_t num, uint32_t den) { return rnd_below(r, den) < num; }
/* A random set bit of mask (0 when mask is 0). */
uint64_t rnd_bit(struct rng *r, uint64_t mask);

/* --- one case's description, printed on its line ----------------------- */
struct fz_line {
	char buf[1024];
	unsigned len;
};
void fz_add(struct fz_line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- capabilities both depths offer (vmxfuzz.c) ------------------------- */
struct fz_caps {
	/* allowed-0 (must be 1) and allowed-1 settings restricted to the
	 * controls Nestor offers (docs/nested.md), as read at run time */
	uint32_t pin0, pin1, proc0, proc1, proc2_1, exit0, exit1, entry0, entry1;
	/* bits that must be 0 at every depth: reserved by the SDM, or offered
	 * by Nestor but not allowed by the MSR */
	uint32_t pin_bad, proc_bad, proc2_bad, exit_bad, entry_bad;
	uint64_t ept;  /* EPT/VPID capabilities restricted to what Nestor offers */
	uint64_t misc; /* the IA32_VMX_MISC fields Nestor passes on */
	unsigned cr3_targets, maxphyaddr;
	uint64_t cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
};
extern struct fz_caps fzc;

/* --- VMX helpers that never CHECK (failures are outcomes here) ---------- */
/* VMWRITE; the outcome (VM_SUCCEED...) or -1 after an exception. */
int fz_vmwrite(uint32_t field, uint64_t val);
/* VMREAD; ~0 when it fails. */
uint64_t fz_vmread(uint32_t field);

/* --- the mutation catalog (vmxfuzz_mut.c) ------------------------------- */
/* Picks the L2 program (*prog, index into fz_programs) and starts it, then
 * applies 1..n mutations to the current VMCS (built by vm_setup()) and the
 * structures it points to, describing each on the line; with msr_lists,
 * mutations of the VM-entry/VM-exit MSR lists too.  Ends with the guard
 * against inputs that would hang bare Bochs (see vmxfuzz_mut.c). */
void fz_mutate(struct rng *r, struct fz_line *l, unsigned *prog, bool msr_lists);
/* The memory the mutations point the VMCS at (MSR lists, spare pages). */
extern uint64_t fz_msr_area[3][2 * 8]; /* entry load, exit store, exit load */
extern uint64_t fz_pml_log[512];        /* the page-modification log (m_pml) */
extern unsigned fz_pml_start;           /* its first index */

/* --- the L2 programs (vmxfuzz_l2.S) and how L1 starts them -------------- */
enum {
	FZ_P_VMCALL, FZ_P_CPUID, FZ_P_MSR, FZ_P_IO, FZ_P_CR, FZ_P_HLT, FZ_P_UD2, FZ_P_INT3, FZ_P_PF, FZ_P_DE,
	FZ_P_INT, FZ_P_EPT, FZ_P_LOOP, FZ_P_STI, FZ_P_DR, FZ_P_MISC, FZ_P_VMX, FZ_P_INVD, FZ_P_DESC, FZ_P_FLAGS,
	FZ_P_MWAIT, FZ_P_IOLOOP, FZ_P_NMI, FZ_P_RAND, FZ_NPROG
};
struct fz_program {
	const char *name;
	const char *code;   /* its first instruction */
	bool masks_rax_rdx; /* RAX/RDX depend on the TSC: not printed */
};
extern const struct fz_program fz_programs[];
extern const unsigned fz_nprograms;
/* Sets RIP, registers and whatever the program needs (pages, values). */
void fz_program_start(struct rng *r, struct fz_line *l, unsigned prog);
/* MSRs and ports the programs touch (for the bitmaps and lists). */
uint32_t fz_pick_msr(struct rng *r, bool write);
uint16_t fz_pick_port(struct rng *r);

/* --- VMX instruction sequences (vmxfuzz_insn.c) ------------------------- */
void fz_insn_case(struct rng *r, struct fz_line *l);
/* Pages the sequences point VMX instructions at. */
extern uint8_t fz_page_a[4096], fz_page_b[4096], fz_page_bad[4096];
/* Outcome text of one attempt: "ok", "fI", "fV12", "#GP0"... (short). */
const char *fz_outcome(const struct vres *r, char *buf, unsigned n);

/* In VMX operation (true) or not, as the generator left it. */
extern bool fz_in_vmx;
/* The case may have left NMIs or virtual NMIs blocked (vmxfuzz.c). */
extern bool fz_nmi_touched;
/* The case made the VMCS link pointer and the non-register guest state
 * invalid together (see print_exit). */
extern bool fz_link_set, fz_nonreg_set, fz_inj_set;

#endif
