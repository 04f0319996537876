/* cpu.c - per-CPU descriptor tables (GDT, TSS) and the GS base. */
#include "boot/cpu.h"
#include "boot/trap.h"
#include "lib/string.h"
#include "lib/x86.h"

static struct percpu cpus[MAX_CPUS];
unsigned maxphyaddr = 36;

static uint64_t tss_desc_low(uint64_t base, uint32_t limit)
{
	/* 64-bit available TSS (type 9), present, DPL 0 (SDM 3A 8.2.3). */
	return (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
	       ((uint64_t)((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
}

void cpu_init(unsigned index)
{
	struct percpu *c = &cpus[index];
	memset(c, 0, sizeof(*c));
	c->self = c;
	c->index = index;
	c->apic_id = cpuid(1, 0).ebx >> 24;
	if (index == 0 && cpuid(0x80000000, 0).eax >= 0x80000008)
		maxphyaddr = cpuid(0x80000008, 0).eax & 0xff;

	c->gdt[0] = 0;
	c->gdt[1] = 0x00af9a000000ffffull; /* 64-bit code, DPL 0 */
	c->gdt[2] = 0x00cf92000000ffffull; /* data, DPL 0 */
	uint64_t tss = (uint64_t)&c->tss;
	c->gdt[3] = tss_desc_low(tss, sizeof(c->tss) - 1);
	c->gdt[4] = tss >> 32;

	/* Faults that may hit a broken stack run on their own stacks. */
	for (int i = 0; i < 3; i++)
		c->tss.ist[i] = (uint64_t)&c->ist_stacks[i][IST_STACK_SIZE];
	c->tss.iomap_base = sizeof(c->tss); /* no I/O bitmap */

	struct dtr gdtr = { sizeof(c->gdt) - 1, (uint64_t)c->gdt };
	lgdt(&gdtr);
	/* Reload CS with a far return, then the data segments. */
	__asm__ volatile("pushq %0\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "movl %1, %%eax\n\t"
			 "movl %%eax, %%ds\n\t"
			 "movl %%eax, %%es\n\t"
			 "movl %%eax, %%ss\n\t"
			 "xorl %%eax, %%eax\n\t"
			 "movl %%eax, %%fs\n\t"
			 "movl %%eax, %%gs\n\t"
			 :
			 : "i"(SEL_CODE64), "i"(SEL_DATA)
			 : "rax", "memory");
	ltr(SEL_TSS);
	wrmsr(MSR_GS_BASE, (uint64_t)c);
	wrmsr(MSR_KERNEL_GS_BASE, 0);
	idt_load();
}
