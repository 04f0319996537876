/* vcpu.h - the state of one virtual CPU and of the VM it belongs to.
 *
 * All mutable hypervisor state lives here: per vCPU what changes on exits,
 * per VM what the vCPUs share (EPT, bitmaps, the guest's memory view).
 * struct vcpu starts with the guest's general registers: vmx/entry.S saves
 * and restores them at fixed offsets. */
#ifndef VMX_VCPU_H
#define VMX_VCPU_H

#include <stdbool.h>
#include <stdint.h>
#include "boot/layout.h"
#include "lib/spinlock.h"
#include "mm/regions.h"
#include "nested/nested.h"
#include "vmx/caps.h"
#include "vmx/mtrr.h"
#include "vmx/vmx_defs.h"

/* General registers by their x86 encoding number (RSP's slot is unused:
 * the guest RSP lives in the VMCS). */
enum gpr { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

#define EXIT_STATS_MAX 80
/* Levels that can run: our guest (1) .. the guest of the highest level
 * whose VMX we emulate (NESTED_MAX_LEVELS + 1); slot 0 unused. */
#define EXIT_STATS_LEVELS (NESTED_MAX_LEVELS + 2)

/* Phases of a nested transition in level 0 (vmx/prof.h), in order. */
enum prof_phase {
	PROF_ROUTE,      /* from the exit to the decision: who handles it */
	PROF_SAVE12,     /* a reflected exit: L2's state and the exit information into VMCS12 */
	PROF_LOAD_HOST,  /* VMCS12's host state into the VMCS that runs L1 */
	PROF_SHADOW_OUT, /* VMCS12 fields that changed, into L1's shadow VMCS */
	PROF_SHADOW_IN,  /* an emulated VM entry: what L1 wrote in its shadow VMCS, into VMCS12 */
	PROF_CHECKS,     /* the entry's software checks */
	PROF_VMCS02,     /* VMCS12 into the VMCS that runs L2 */
	PROF_ENTER,      /* the rest of the emulated entry (probe, snapshot, state) */
	PROF_TAIL,       /* after the handling: signals, counters, what to enter */
	PROF_PHASES      /* = NESTOR_PROF_PHASES, named in hypercall/abi.h */
};

struct exit_stats {
	uint64_t count[EXIT_STATS_MAX];
	uint64_t ticks[EXIT_STATS_MAX]; /* TSC ticks spent in Nestor per reason */
	/* The same by the level (1 = our guest) that was running. */
	uint64_t by_level[EXIT_STATS_LEVELS][EXIT_STATS_MAX];
	uint64_t ticks_by_level[EXIT_STATS_LEVELS][EXIT_STATS_MAX];
	/* Profiling builds only (vmx/prof.h): ticks and passes per phase. */
	uint64_t phase_ticks[PROF_PHASES], phase_count[PROF_PHASES];
};

/* Cached CPUID answers of the CPU below (direct-mapped by leaf/subleaf). */
#define CPUID_CACHE_SLOTS 64
struct cpuid_cache_entry {
	uint32_t leaf, subleaf;
	uint32_t eax, ebx, ecx, edx;
	uint32_t valid, pad; /* 32 bytes: the lookup indexes with a shift */
};

struct vm;
struct snap_state;

/* Requests between vCPUs (vmx/sync.c). */
enum { VNMI_CLEAR, VNMI_SET, VNMI_SUSPECT };
enum { REQ_INIT = 1, REQ_INVEPT = 2, REQ_DROP_SHADOWS = 4, REQ_PAUSE = 8, REQ_SIPI = 16 };

struct vcpu {
	uint64_t gpr[16]; /* must stay first: see vmx/entry.S */
	/* The entry about to be made (1: VMLAUNCH), and whether something
	 * came since the exit handler decided it - an NMI in root operation
	 * (a kick, or an NMI for a guest): the entry path looks again before
	 * it enters (vmx/entry.S, VCPU_ENTRY_LAUNCH / VCPU_ENTRY_RECHECK). */
	uint8_t entry_launch;
	volatile uint8_t entry_recheck;
	/* Virtual-NMI blocking as Bochs 2.7 keeps it (vmx/exit.c,
	 * vnmi_after_exit): VNMI_CLEAR, or the CPU's one flag may be set
	 * (VNMI_SET), and the VMCS entered has no blocking of its own
	 * (VNMI_SUSPECT).  Looked at by the entry path (VCPU_VNMI_STATE). */
	uint8_t vnmi_state;
	struct vm *vm;
	unsigned id;
	bool smp; /* the VM has several vCPUs (vmx/sync.c) */
	bool vnmis; /* our VMCSs use virtual NMIs */
	/* Levels whose VMCS has one-shot entry controls set (vmx_entry_once). */
	uint16_t entry_once;
	uint64_t prof_t; /* profiling builds: the last phase mark (vmx/prof.h) */
	/* Some level's nmi_pending02 may be nonzero (set with every increment,
	 * recomputed by nested_route_held_nmis): the exit path looks at the
	 * levels only then, instead of at every exit (issue 16). */
	bool nmi02_held;
	void *vmcs;
	uint64_t vmcs_phys;   /* VMCS01: runs our guest */
	uint64_t loaded_vmcs; /* the current VMCS (vmx/vmcs_own.h), ~0: none */
	void *vmxon_region;
	uint8_t *host_stack; /* top of the stack Nestor's exit handler runs on */

	/* Controls as currently programmed (to toggle window exits cheaply). */
	uint32_t proc_ctls;
	/* CR0/CR4 bits Nestor owns in any guest (the VMX-fixed ones). */
	uint64_t cr0_mask_base, cr4_mask_base;

	/* VMX for the guest when it is a hypervisor (nested/): lv[j] is the
	 * VMX of level j, for j = 1 .. nlevels; cur is the level running now
	 * (1: our guest; above: a guest of a guest hypervisor whose VMX we
	 * emulate). */
	struct nested *lv[NESTED_MAX_LEVELS + 1];
	unsigned nlevels;
	unsigned cur;
	struct shadow_tables shadow_tables;
	uint64_t sept_pages; /* pages of all shadow EPTs (nested/sept.c) */
	uint64_t sept_clears; /* shadow EPTs cleared so far: translations may have changed */

	/* Pages of non-existent memory mapped to sink_page while an event is
	 * delivered (vmx/exit_ept.c). */
	uint8_t *sink_page;
	struct sink {
#define SINK_PAGES 4
		unsigned n;
		uint64_t gpa[SINK_PAGES];
		struct nested *owner[SINK_PAGES];
		enum { SINK_NONE, SINK_DELIVERY, SINK_STEP } mode;
		uint64_t vmcs;          /* the VMCS changed for it (0: none yet) */
		uint32_t pin;           /* its controls and state before */
		uint32_t exc_bitmap, exit_ctls;
		uint64_t rflags;
		bool others_stopped;    /* a page of the shared EPT: nobody else runs */
	} sink;

	/* Events waiting to be delivered to the guest. */
	unsigned nmi_pending;
	/* NMIs that came while a level above 1 was active, routed at the end
	 * of the exit; bit j: level j received an INIT while in VMX operation,
	 * held until its guest runs or it leaves it (nested/signals.c). */
	unsigned nmi_to_route;
	unsigned init_held;

	/* Just started by a SIPI: an INIT held while the vCPU waited for it
	 * is dropped (vmx/exit_misc.c); the pin controls to put back. */
	/* Clear "blocking by SMI" in the guest state of every exit (see
	 * vmx_handle_exit): set by the first SIPI. */
	bool smi_block_fix;
	/* selftest= asked for a failure of the entry path: made before the
	 * first entry (vm_selftest, vmx/vm.c). */
	bool selftest_armed;
	/* Set by this vCPU only: it waits for a SIPI (an INIT changes
	 * nothing then), held by Nestor in root operation (vcpu_park); the
	 * vector of the SIPI that came (REQ_SIPI). */
	volatile bool waiting_sipi;
	volatile uint8_t sipi_vector;
	/* The context it enters (any level) waits for SIPI: it runs nothing,
	 * and NMIs do not reach it (vmx/sync.c). */
	volatile bool parked;
	/* What other vCPUs asked of this one (REQ_*, vmx/sync.c), whether an
	 * NMI they sent to make it look is outstanding, and whether it is
	 * stopped at their request. */
	volatile unsigned requests;
	volatile bool kicked;
	volatile bool paused;
	/* Whether it stopped at the end of an exit (its guest state whole)
	 * or while waiting in the middle of one; and work another vCPU gives
	 * it while it is stopped, done on its own CPU (vm_run_on: a snapshot
	 * saves or puts back its state there). */
	volatile bool paused_at_end;
	/* A snapshot ended VMX delegation while this vCPU waited for SIPI:
	 * it ends its own (below, per CPU) at its SIPI. */
	bool undelegate_at_sipi;
	void (*volatile pause_work)(struct vcpu *v, void *arg);
	void *volatile pause_arg;

	/* This vCPU's MTRRs (virtual, vmx/mtrr.h): each CPU has its own (SDM
	 * Vol. 3A 12.11.8); the EPT's memory types follow vm->mtrr. */
	struct mtrr_state mtrr;

	/* IA32_FEATURE_CONTROL as the guest sees it (vmx/exit_msr.c): what the
	 * firmware left in this CPU before Nestor locked the real one for its
	 * own VMXON, then what the guest writes while it is unlocked.  A UEFI
	 * firmware may leave it unlocked for the OS to lock (SDM 23.7). */
	uint64_t feature_control;

	/* An INT 15h size call (E801, AH=88h) the BIOS answers for this
	 * vCPU: where it returns to, and which (vmx/bios.c). */
	struct bios_call {
		uint16_t ip, cs, ax;
		bool armed;
	} bios_call;

	/* Bochs shutdown-port sequence seen so far on port 0x8900. */
	unsigned shutdown_match;

	/* CPUID answers of the machine below, looked up on CPUID exits. */
	struct cpuid_cache_entry cpuid_cache[CPUID_CACHE_SLOTS];

	struct exit_stats stats;
	struct exit_stats snapshots[2]; /* NESTOR_HC_STATS_SNAPSHOT */
};
_Static_assert(__builtin_offsetof(struct vcpu, entry_launch) == 128 &&
		       __builtin_offsetof(struct vcpu, entry_recheck) == 129 &&
		       __builtin_offsetof(struct vcpu, vnmi_state) == 130,
	       "vmx/entry.S: VCPU_ENTRY_LAUNCH, VCPU_ENTRY_RECHECK");

/* Pages one VM watches at most (vmx/ept_watch.c): the I/O and MSR bitmaps
 * (three pages) of our guest's hypervisor, per vCPU when it keeps one set
 * per vCPU; beyond, its guests' ports and MSRs exit to be routed. */
#define EPT_WATCH_MAX 16

struct vm {
	const struct vmx_caps *caps;
	uint64_t eptp;
	uint64_t *ept_pml4;
	uint64_t ept_pages; /* page-table pages used by EPT */
	uint8_t *msr_bitmap;
	uint8_t *io_bitmap_a, *io_bitmap_b;
	uint8_t *ones_page; /* what non-existent memory reads as */
	uint64_t *ones_pt, *ones_pd, *ones_pdpt; /* shared EPT tables of ones (vmx/ept.c) */
	struct region_set guest_ram; /* RAM the guest may use */
	struct region_set hidden;    /* Nestor's memory, absent from the guest */
	/* The MTRRs the EPT's memory types follow: those of the vCPU that
	 * wrote its own last (an OS writes the same on every CPU). */
	struct mtrr_state mtrr;
	struct mtrr_state mtrr_boot; /* the machine's, as at boot: never changed */
	uint64_t ept_top; /* EPT identity-maps [0, ept_top) */
	/* The xAPIC (vmx/apic.c): where it really is, where the guest put it,
	 * and the page that is nothing since it moved (~0: none). */
	uint64_t apic_real, apic_gpa, apic_absent;
	bool apic_trap; /* its writes exit (several CPUs: vmx/exit_apic.c) */
	volatile int sync_lock; /* 1 + the vCPU stopping the others, or 0 (vmx/sync.c) */
	uint64_t cr4_allowed; /* CR4 bits the guest may set */
	unsigned level;   /* our level in the stack */
	bool delegated;   /* the level below emulates VMX for our guest (docs/depth.md) */
	uint16_t vpid;
	struct vcpu *vcpu0;
	/* One vCPU per CPU of the machine (boot/smp.h), by CPU index. */
	struct vcpu *vcpus[MAX_CPUS];
	unsigned ncpus;
	struct snap_state *snap; /* snapshots (snap/), NULL without a pool */
	struct bios_hook *bios;  /* INT 15h answered (vmx/bios.c), or NULL */
	uint64_t hidden_accesses; /* guest accesses to Nestor's memory */
	uint64_t sec_blocked;     /* accesses security functions blocked (sec/) */
	uint64_t sec_logged[3];   /* of them, by kind (enum sec_space) */
	/* Guest pages whose writes exit (vmx/ept_watch.c). */
	struct {
		spinlock_t lock;
		unsigned n;
		uint64_t page[EPT_WATCH_MAX];
		/* Changes seen to watched pages, to our own I/O and MSR bitmaps,
		 * and announced by levels that delegated: copies merged from
		 * them (nested/bitmaps.c) compare it. */
		uint64_t gen;
	} watch;
};

#endif
