/* trap.c - the IDT and the report printed for an unexpected exception. */
#include "boot/trap.h"
#include "boot/smp.h"
#include "boot/cpu.h"
#include "boot/fixup.h"
#include "boot/platform.h"
#include "lib/log.h"
#include "lib/x86.h"

struct __attribute__((packed)) idt_gate {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, zero;
};

static struct idt_gate idt[256];
static irq_handler handlers[256];
static void (*nmi_hook)(struct trap_frame *f);

void trap_set_nmi_hook(void (*hook)(struct trap_frame *f)) { nmi_hook = hook; }

static const char *const exc_names[32] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow", "#BR bound range",
	"#UD invalid opcode", "#NM device not available", "#DF double fault", "coprocessor overrun",
	"#TS invalid TSS", "#NP segment not present", "#SS stack fault", "#GP general protection",
	"#PF page fault", "reserved 15", "#MF x87 error", "#AC alignment check", "#MC machine check",
	"#XM SIMD error", "#VE virtualization exception", "#CP control protection",
};

const char *exception_name(unsigned v)
{
	if (v < 32)
		return exc_names[v] ? exc_names[v] : "reserved";
	return "interrupt";
}

void idt_init(void)
{
	if (isr_stubs_size != 256 * 16)
		panic("isr.S: interrupt stubs are not 16 bytes each");
	for (int v = 0; v < 256; v++) {
		uint64_t a = (uint64_t)(isr_stubs + 16 * v);
		struct idt_gate *g = &idt[v];
		g->off0 = a & 0xffff;
		g->sel = SEL_CODE64;
		g->ist = v == EXC_DF ? IST_DF : v == EXC_NMI ? IST_NMI : v == EXC_MC ? IST_MC : 0;
		g->type = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
		g->off1 = (a >> 16) & 0xffff;
		g->off2 = a >> 32;
		g->zero = 0;
	}
}

void idt_load(void)
{
	struct dtr d = { sizeof(idt) - 1, (uint64_t)idt };
	lidt(&d);
}

void trap_set_handler(unsigned vector, irq_handler h) { handlers[vector & 255] = h; }

static void report(const struct trap_frame *f)
{
	kprintf_emergency("PANIC: unexpected %s (vector %llu) on CPU %u\n", exception_name(f->vector),
			  (unsigned long long)f->vector, this_cpu()->index);
	kprintf_emergency("  error code %016llx  cr2 %016llx\n", (unsigned long long)f->error_code,
			  (unsigned long long)read_cr2());
	kprintf_emergency("  rip %04llx:%016llx  rflags %016llx  rsp %04llx:%016llx\n", (unsigned long long)f->cs,
			  (unsigned long long)f->rip, (unsigned long long)f->rflags, (unsigned long long)f->ss,
			  (unsigned long long)f->rsp);
	kprintf_emergency("  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n", (unsigned long long)f->rax,
			  (unsigned long long)f->rbx, (unsigned long long)f->rcx, (unsigned long long)f->rdx);
	kprintf_emergency("  rsi %016llx rdi %016llx rbp %016llx r8  %016llx\n", (unsigned long long)f->rsi,
			  (unsigned long long)f->rdi, (unsigned long long)f->rbp, (unsigned long long)f->r8);
	kprintf_emergency("  r9  %016llx r10 %016llx r11 %016llx r12 %016llx\n", (unsigned long long)f->r9,
			  (unsigned long long)f->r10, (unsigned long long)f->r11, (unsigned long long)f->r12);
	kprintf_emergency("  r13 %016llx r14 %016llx r15 %016llx\n", (unsigned long long)f->r13,
			  (unsigned long long)f->r14, (unsigned long long)f->r15);
	kprintf_emergency("  cr0 %016llx cr3 %016llx cr4 %016llx efer %016llx\n", (unsigned long long)read_cr0(),
			  (unsigned long long)read_cr3(), (unsigned long long)read_cr4(),
			  (unsigned long long)rdmsr(MSR_EFER));
	print_backtrace(f->rip, f->rbp);
}

extern const struct fixup_entry __fixup_start[], __fixup_end[];

uint64_t fixup_find(uint64_t rip)
{
	for (const struct fixup_entry *e = __fixup_start; e < __fixup_end; e++)
		if (e->insn == rip)
			return e->recover;
	return 0;
}

void trap_entry(struct trap_frame *f)
{
	/* A request of the guest's that an emulated INIT discards: taken only
	 * to clear it from the IRR; its in-service bit is ended by the caller. */
	if (f->vector >= 32 && this_cpu()->discard_irqs)
		return;
	if (f->vector >= 32 && handlers[f->vector]) {
		handlers[f->vector](f);
		return;
	}
	if (f->vector == EXC_NMI)
		smp_halt_if_ended(); /* the run is over on another CPU */
	/* An NMI while Nestor runs belongs to the guest: remember it. */
	if (f->vector == EXC_NMI && nmi_hook) {
		nmi_hook(f);
		return;
	}
	/* A *_safe() instruction faulted: resume after it with the vector. */
	uint64_t rec = f->vector < 32 ? fixup_find(f->rip) : 0;
	if (rec) {
		f->rsi = f->vector;
		f->rip = rec;
		return;
	}
	report(f);
	machine_end(true);
}
