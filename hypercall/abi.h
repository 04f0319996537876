/* abi.h - Nestor's guest-visible interface: CPUID leaves and hypercalls.
 * This header is the reference for docs/abi.md and is shared with the guest
 * kernels and host tools; keep it free of hypervisor internals. */
#ifndef HYPERCALL_ABI_H
#define HYPERCALL_ABI_H

/* CPUID leaf 0x40000000: EAX = highest Nestor leaf, EBX:ECX:EDX = "NestorNestor". */
#define NESTOR_CPUID_BASE 0x40000000u
#define NESTOR_SIG_EBX 0x7473654eu /* "Nest" */
#define NESTOR_SIG_ECX 0x654e726fu /* "orNe" */
#define NESTOR_SIG_EDX 0x726f7473u /* "stor" */
/* Whether leaf 0x40000000's EBX:ECX:EDX are a Nestor's: the one test every
 * reader of the signature uses (a Nestor may hide the hypervisor bit). */
#define NESTOR_SIGNATURE(ebx, ecx, edx) \
	((ebx) == NESTOR_SIG_EBX && (ecx) == NESTOR_SIG_ECX && (edx) == NESTOR_SIG_EDX)
/* CPUID leaf 0x40000001: EAX = level of the Nestor that answers (0 = the one
 * on the real machine), EBX = ABI version, ECX = feature bits, EDX = 0. */
#define NESTOR_CPUID_INFO 0x40000001u
#define NESTOR_ABI_VERSION 2u
/* ECX bit 0: NESTOR_HC_DELEGATE_VMX is understood (docs/depth.md). */
#define NESTOR_FEATURE_DELEGATE (1u << 0)
/* CPUID leaf 0x40000002, ECX = L: the Nestor at absolute level L (0 .. the
 * level of the Nestor answering) describes itself - each level answers its
 * own sub-leaf and passes lower ones down by executing CPUID itself.
 * EAX = L (0xffffffff: no Nestor at that level), EBX = exits it has taken
 * (low 32 bits), ECX = NESTOR_LEVEL_* flags, EDX = levels above it that it
 * runs on the CPU: its guest and, when it emulates their VMX, the guests of
 * its guest (0 when it delegates, so the level below runs them). */
#define NESTOR_CPUID_LEVELS 0x40000002u
#define NESTOR_LEVEL_DELEGATES (1u << 0) /* hands its guest's VMX to the level below */
#define NESTOR_LEVEL_NESTED (1u << 1)    /* offers VMX to its guest */

/* Hypercalls: VMCALL with RAX = function, arguments in RBX, RCX, RDX, RSI,
 * RDI (unused arguments must be 0).
 * On return RAX holds a status (0 or a negative NESTOR_E* error) and the
 * results are in RBX, RCX, RDX.  Other registers are preserved.  Only CPL 0
 * may call (NESTOR_EPERM otherwise).  Guest buffers are guest-physical
 * addresses of guest RAM. */
enum nestor_hypercall {
	NESTOR_HC_VERSION = 0,     /* -> RBX = ABI version, RCX = level, RDX = "Nest" */
	NESTOR_HC_EXIT_STATS = 1,  /* RBX = exit reason, or NESTOR_STATS_TOTAL;
				    * RDX = level to ask (NESTOR_LEVEL_SELF: the one
				    * answering; a lower level: forwarded down);
				    * RSI = 0, or count only the exits taken while
				    * level RSI (absolute) ran; RDI = 0 the counters
				    * now, 1 or 2 a snapshot (NESTOR_HC_STATS_SNAPSHOT)
				    * -> RBX = exits, RCX = ticks spent in Nestor */
	NESTOR_HC_STATS_RESET = 2, /* zero every exit counter */
	NESTOR_HC_CONSOLE = 3,     /* RBX = buffer, RCX = length (<= 4096): print it on
				    * Nestor's console -> RBX = bytes printed */
	NESTOR_HC_DELEGATE_VMX = 4, /* RBX = 0 (the caller asks for itself; a Nestor
				    * passing its guest's request on sets how many
				    * levels above it the asking level is), RCX = hash
				    * of the VMX capabilities the asking level offers:
				    * the VMX instructions of the asking level's guest
				    * are emulated by the Nestor below (docs/depth.md) */
	NESTOR_HC_STATS_SNAPSHOT = 5, /* RBX = slot (1 or 2), RDX = level to ask:
				    * copy that level's counters into the slot */
	/* Snapshots of the caller (docs/snapshots.md); the pool is snap_pool=. */
	NESTOR_HC_SNAPSHOT = 6,    /* RBX = NESTOR_SNAP_DEFAULT (the snap_method
				    * option), NESTOR_SNAP_COW or NESTOR_SNAP_COPY
				    * -> RBX = snapshot id (1..8).  When that snapshot
				    * is restored, this call returns again, with
				    * RAX = NESTOR_SNAP_RESTORED, RBX = id, RCX = the
				    * restore's value, all else as at the snapshot */
	NESTOR_HC_RESTORE = 7,     /* RBX = id, RCX = a value for the restored guest:
				    * does not return when it succeeds */
	NESTOR_HC_SNAP_DROP = 8,   /* RBX = id: forget it, its pool pages freed */
	NESTOR_HC_SNAP_INFO = 9,   /* RBX = 0 -> RBX = pool pages in use, RCX = pool
				    * pages, RDX = pages reserved by copy-on-write
				    * snapshots; RBX = id -> RBX = guest pages it holds
				    * a copy of, RCX = its method, RDX = ticks taking
				    * it cost inside Nestor */
	NESTOR_HC_UNDELEGATE_VMX = 10, /* RBX as for NESTOR_HC_DELEGATE_VMX: the asking
				    * level emulates its guest's VMX itself again
				    * (NESTOR_EBUSY while that guest is in VMX
				    * operation); a Nestor does it before a snapshot */
	NESTOR_HC_GUEST_INIT = 11, /* RBX as for NESTOR_HC_DELEGATE_VMX: the asking
				    * level's guest, whose VMX it delegated, receives
				    * an INIT on this CPU -> RBX = 1: it is in VMX
				    * operation and the INIT is held for it (an INIT
				    * exit of its guest, or acting at its VMXOFF);
				    * RBX = 0: it is not, the asking level resets it */
	NESTOR_HC_BIOS_INT15 = 12, /* -> RBX = the BIOS's INT 15h vector (segment << 16
				    * | offset) before this Nestor hooked it (vmx/bios.c);
				    * NESTOR_ENOENT when it did not */
	NESTOR_HC_GUEST_NMI = 13,  /* RBX as for NESTOR_HC_DELEGATE_VMX: the asking
				    * level's guest, whose VMX it delegated, receives
				    * an NMI on this CPU; the Nestor emulating that VMX
				    * delivers it as the CPU would - to that guest, or,
				    * once it runs a guest of its own, as an NMI there */
	NESTOR_HC_BITMAPS_CHANGED = 14, /* RBX as for NESTOR_HC_DELEGATE_VMX: the
				    * asking level, which delegated its guest's VMX,
				    * changed its own I/O or MSR bitmaps (ports or MSRs
				    * it intercepts): copies the Nestor emulating that
				    * VMX merged from them are made again */
};
#define NESTOR_STATS_TOTAL 0xffffffffu
/* NESTOR_HC_EXIT_STATS with RBX = NESTOR_STATS_PHASE0 + p (RSI = 0): a
 * profiling build's phase p of nested transitions (docs/abi.md) -> RBX =
 * passes, RCX = ticks; 0 in other builds. */
#define NESTOR_STATS_PHASE0 0x100u
#define NESTOR_PROF_PHASES 9u
/* Their names, in order (an initializer for const char *[NESTOR_PROF_PHASES]). */
#define NESTOR_PROF_PHASE_NAMES \
	{ "route", "save12", "load_host", "shadow_out", "shadow_in", "checks", "vmcs02", "enter", "tail" }
#define NESTOR_SNAP_DEFAULT 0u
#define NESTOR_SNAP_COW 1u
#define NESTOR_SNAP_COPY 2u
#define NESTOR_SNAP_RESTORED 1 /* RAX after a restore: the snapshot call returns again */
#define NESTOR_LEVEL_SELF 0xffffffffffffffffull

enum nestor_hypercall_error {
	NESTOR_OK = 0,
	NESTOR_ENOSYS = -1, /* unknown function */
	NESTOR_EINVAL = -2, /* bad argument (reason out of range, length too big) */
	NESTOR_EFAULT = -3, /* buffer not in guest RAM */
	NESTOR_EPERM = -4,  /* called from CPL > 0 */
	NESTOR_ENOMEM = -5, /* out of pool memory, or too many levels */
	NESTOR_ENOSPC = -6, /* the snapshot pool cannot hold it (or 8 snapshots kept, or no pool) */
	NESTOR_ENOENT = -7, /* no snapshot with that id; no INT 15h hook */
	NESTOR_EBUSY = -8,  /* cannot snapshot now (the caller's guest's VMX is delegated to us) */
};

#endif
