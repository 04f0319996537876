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
/* CPUID leaf 0x40000001: EAX = level of the Nestor that answers (0 = the one
 * on the real machine), EBX = ABI version, ECX = feature bits, EDX = 0. */
#define NESTOR_CPUID_INFO 0x40000001u
#define NESTOR_ABI_VERSION 1u

#endif
