/* cpu.h - per-CPU state of the hypervisor itself.
 *
 * Every CPU owns one struct percpu (reached through GS), holding its GDT,
 * TSS, interrupt stacks and a pointer to the vCPU it runs.  Nothing here is
 * shared between CPUs, so no locking is needed on these paths. */
#ifndef BOOT_CPU_H
#define BOOT_CPU_H

#include <stdbool.h>
#include <stdint.h>
#include "boot/layout.h"

#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_TSS 0x18

#define IST_STACK_SIZE 8192
enum { IST_DF = 1, IST_NMI = 2, IST_MC = 3 };

struct __attribute__((packed)) tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
};

struct vcpu;

struct percpu {
	struct percpu *self; /* at offset 0: %gs:0 gives our own address */
	unsigned index;
	uint32_t apic_id;
	struct vcpu *vcpu;
	bool discard_irqs; /* interrupts taken now are dropped (boot/lapic.c) */
	uint64_t gdt[5]; /* null, code64, data, TSS (two slots) */
	struct tss64 tss;
	__attribute__((aligned(16))) uint8_t ist_stacks[3][IST_STACK_SIZE];
};

/* Physical-address width (CPUID 0x80000008), read once at boot: asking
 * CPUID again would cost an exit when Nestor itself is a guest. */
extern unsigned maxphyaddr;

/* Sets up GDT, TSS and GS for CPU index on the calling CPU. */
void cpu_init(unsigned index);

static inline struct percpu *this_cpu(void)
{
	struct percpu *p;
	__asm__ volatile("movq %%gs:0, %0" : "=r"(p));
	return p;
}

#endif
