/* cpu.c - the guest's GDT, TSS, IDT, and fault catching for tests. */
#include "guest/kernel.h"
#include "guest/test.h"
#include "lib/string.h"
#include "lib/x86.h"

struct __attribute__((packed)) tss64 {
	uint32_t r0;
	uint64_t rsp[3];
	uint64_t r1;
	uint64_t ist[7];
	uint64_t r2;
	uint16_t r3, iomap;
};

struct __attribute__((packed)) gate {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, zero;
};

static uint64_t gdt[10];
static struct tss64 tss;
static struct gate idt[256];
static uint8_t ring0_stack[16384] __attribute__((aligned(16)));
static uint8_t df_stack[8192] __attribute__((aligned(16)));
static uint8_t user_stack[16384] __attribute__((aligned(16)));

int g_setjmp(uint64_t *jb);
__attribute__((noreturn)) void g_longjmp(uint64_t *jb, int v);
extern const char user_trampoline[];

static guest_irq_fn handlers[256];

void guest_set_handler(unsigned vector, guest_irq_fn fn) { handlers[vector & 255] = fn; }

static struct {
	uint64_t jb[9];
	volatile bool armed;
	struct fault *f;
} catcher;

void cpu_setup(void)
{
	gdt[0] = 0;
	gdt[1] = 0x00af9a000000ffffull; /* 0x08 code64 DPL0 */
	gdt[2] = 0x00cf92000000ffffull; /* 0x10 data DPL0 */
	gdt[3] = 0x00cf9a000000ffffull; /* 0x18 code32 DPL0 */
	gdt[4] = 0x00009a000000ffffull; /* 0x20 code16 */
	gdt[5] = 0x000092000000ffffull; /* 0x28 data16 */
	gdt[6] = 0x00cff2000000ffffull; /* 0x30 data DPL3 */
	gdt[7] = 0x00affa000000ffffull; /* 0x38 code64 DPL3 */
	uint64_t t = (uint64_t)&tss, lim = sizeof(tss) - 1;
	gdt[8] = (lim & 0xffff) | ((t & 0xffffff) << 16) | (0x89ull << 40) | (((t >> 24) & 0xff) << 56);
	gdt[9] = t >> 32;
	tss.rsp[0] = (uint64_t)&ring0_stack[sizeof(ring0_stack)];
	tss.ist[0] = (uint64_t)&df_stack[sizeof(df_stack)];
	tss.iomap = sizeof(tss);
	struct dtr g = { sizeof(gdt) - 1, (uint64_t)gdt };
	lgdt(&g);
	__asm__ volatile("pushq $0x08\n\tleaq 1f(%%rip), %%rax\n\tpushq %%rax\n\tlretq\n1:\n\t"
			 "movl $0x10, %%eax\n\tmovl %%eax, %%ds\n\tmovl %%eax, %%es\n\tmovl %%eax, %%ss\n\t"
			 ::: "rax", "memory");
	ltr(G_TSS);

	for (int v = 0; v < 256; v++) {
		uint64_t a = (uint64_t)(isr_stubs + 16 * v);
		idt[v].off0 = a & 0xffff;
		idt[v].sel = G_KCODE64;
		idt[v].ist = v == EXC_DF ? 1 : 0;
		/* Only int $0x80 (return from user mode) may be raised from CPL 3. */
		idt[v].type = v == 0x80 ? 0xee : 0x8e;
		idt[v].off1 = (a >> 16) & 0xffff;
		idt[v].off2 = a >> 32;
	}
	struct dtr i = { sizeof(idt) - 1, (uint64_t)idt };
	lidt(&i);
}


void trap_entry(struct trap_frame *f)
{
	if ((f->vector >= 32 || f->vector == EXC_NMI) && f->vector != 0x80 && handlers[f->vector]) {
		handlers[f->vector](f);
		return;
	}
	if (catcher.armed) {
		catcher.armed = false;
		if (f->vector != 0x80) {
			struct fault *out = catcher.f;
			out->hit = true;
			out->vector = f->vector;
			out->error_code = f->error_code;
			out->cr2 = read_cr2();
			out->rip = f->rip;
		}
		g_longjmp(catcher.jb, 1);
	}
	gprintf("UNEXPECTED EXCEPTION %s (vector %llu) error %llx at %llx:%llx rsp %llx cr2 %llx\n",
		exception_mnemonic(f->vector), (unsigned long long)f->vector,
		(unsigned long long)f->error_code, (unsigned long long)f->cs, (unsigned long long)f->rip,
		(unsigned long long)f->rsp, (unsigned long long)read_cr2());
	gprintf("RESULT: FAIL (unexpected exception)\n");
	guest_poweroff();
}

bool catch_fault(void (*fn)(void *), void *arg, struct fault *f)
{
	memset(f, 0, sizeof(*f));
	catcher.f = f;
	if (g_setjmp(catcher.jb) == 0) {
		catcher.armed = true;
		fn(arg);
		catcher.armed = false;
	}
	return f->hit;
}

bool run_user(void (*fn)(void *), void *arg, struct fault *f)
{
	memset(f, 0, sizeof(*f));
	catcher.f = f;
	if (g_setjmp(catcher.jb) == 0) {
		catcher.armed = true;
		__asm__ volatile("pushq %[ss]\n\t"
				 "pushq %[rsp]\n\t"
				 "pushq $0x2\n\t"
				 "pushq %[cs]\n\t"
				 "pushq %[rip]\n\t"
				 "iretq"
				 :
				 : [ss] "i"(G_UDATA), [rsp] "r"((uint64_t)&user_stack[sizeof(user_stack)]),
				   [cs] "i"(G_UCODE64), [rip] "r"((uint64_t)user_trampoline), "D"(fn), "S"(arg)
				 : "memory");
		__builtin_unreachable();
	}
	return f->hit;
}
