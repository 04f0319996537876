/* platform.c - ending a run, panics, backtraces. */
#include "boot/platform.h"
#include "boot/layout.h"
#include "boot/smp.h"
#include "lib/cov.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/x86.h"
#include <stdarg.h>

const char *const end_action_names[] = { "auto", "shutdown", "halt", NULL };

static bool has_debugcon;
static enum end_action end_action = END_AUTO;

void platform_detect(void) { has_debugcon = inb(DEBUGCON_PORT) == DEBUGCON_PORT; }
bool platform_has_debugcon(void) { return has_debugcon; }
void platform_set_end_action(enum end_action a) { end_action = a; }

void machine_end(bool failed)
{
	cli();
	/* The other CPUs stop too (in whatever they were doing). */
	smp_halt_others();
	kprintf_emergency("end of run (%s)\n", failed ? "failure" : "success");
	log_flush();
	cov_dump(); /* coverage builds only (lib/cov.h): the PCs reached, to port 0xE9 */
	if (end_action == END_SHUTDOWN || (end_action == END_AUTO && has_debugcon)) {
		/* Bochs powers off on the string "Shutdown" written to port 0x8900. */
		for (const char *s = "Shutdown"; *s; s++)
			outb(BOCHS_SHUTDOWN_PORT, (uint8_t)*s);
	}
	for (;;)
		hlt();
}

void print_backtrace(uint64_t rip, uint64_t rbp)
{
	kprintf_emergency("backtrace (addr2line -e build/nestor.elf):\n");
	kprintf_emergency("  #0 %016llx\n", (unsigned long long)rip);
	for (int i = 1; i < 16; i++) {
		/* Only follow frames inside our own image mapping, 8-byte aligned. */
		if (rbp < KERNEL_VIRT_BASE || (rbp & 7))
			break;
		const uint64_t *frame = (const uint64_t *)rbp;
		uint64_t ret = frame[1];
		if (ret < KERNEL_VIRT_BASE)
			break;
		kprintf_emergency("  #%d %016llx\n", i, (unsigned long long)ret);
		if (frame[0] <= rbp)
			break; /* stacks grow down: a caller's frame is above */
		rbp = frame[0];
	}
}

void panic(const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	cli();
	va_start(ap, fmt);
	kvsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kprintf_emergency("PANIC: %s\n", msg);
	print_backtrace((uint64_t)__builtin_return_address(0), (uint64_t)__builtin_frame_address(0));
	machine_end(true);
}

#include "boot/boot_regs.h"
extern const char boot_regs[];

const struct boot_regs *boot_regs_get(void)
{
	/* boot_regs is linked at its physical link address in .boot; the image
	 * is mapped at KERNEL_VOFF above that. */
	return (const struct boot_regs *)((uint64_t)boot_regs + KERNEL_VOFF);
}
