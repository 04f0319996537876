/* nestor-levels.c - Linux userspace program of the Linux guest: asks every
 * Nestor level below it who it is, through CPUID, and prints one line per
 * level; optionally ends the run through the Bochs shutdown port.
 *
 *   nestor-levels [--quiet] [--expect N] [--shutdown [--dry-run]]
 *
 * The protocol (hypercall/abi.h, docs/abi.md): leaf 0x40000000 carries
 * "NestorNestor" when a Nestor is below (CPUID.1:ECX[31], the hypervisor
 * bit, is set too unless that Nestor hides it); leaf 0x40000001 EAX is the level of the Nestor right below (0 =
 * the one on the machine); leaf 0x40000002 with ECX = L describes the Nestor
 * at absolute level L - each level answers its own sub-leaf and executes
 * CPUID itself for the lower ones, so one instruction here reaches down the
 * whole stack.
 *
 * Output (the console of the Linux guest; the harness reads it):
 *   env: linux: init reached at tick N          the TSC when this program runs
 *   nestor-levels: level L: Nestor, ...         one per Nestor level, 0 first
 *   nestor-levels: level N: Linux (this program), on N Nestor levels
 * or "nestor-levels: no Nestor below: Linux runs on the machine".
 * --expect N: there must be exactly N Nestor levels below (0: none), else
 * "nestor-levels: expected N Nestor levels, found M" and status 1.
 * --quiet prints none of it.  --shutdown then writes "Shutdown" to I/O port
 * 0x8900, which every Nestor intercepts to end its run with its statistics
 * (and bare Bochs to power off); it needs root for ioperm.  --dry-run gets
 * the port access but writes nothing.
 * Exit status: 0 done, 1 an answer that breaks the protocol or a shutdown
 * that could not be done, 2 bad usage.
 *
 * Built with the host's gcc as a static hosted program (the initramfs has
 * no libc): make linux-guest. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <termios.h>
#include <unistd.h>
#include <sys/io.h>
#include "hypercall/abi.h"

#define SHUTDOWN_PORT 0x8900
#define CPUID_HYPERVISOR_BIT (1u << 31) /* CPUID.1:ECX */
#define MAX_LEVELS 64                    /* any more is a broken answer */

struct regs {
	uint32_t eax, ebx, ecx, edx;
};

static struct regs cpuid(uint32_t leaf, uint32_t subleaf)
{
	struct regs r;
	__asm__ volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
	return r;
}

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* --- who is below ------------------------------------------------------------ */

/* The 12 signature bytes of leaf 0x40000000 (EBX:ECX:EDX), made printable. */
static void signature(const struct regs *r, char out[13])
{
	uint32_t words[3] = { r->ebx, r->ecx, r->edx };
	memcpy(out, words, 12);
	out[12] = '\0';
	for (int i = 0; i < 12; i++)
		if (out[i] && (out[i] < 0x20 || out[i] > 0x7e))
			out[i] = '?';
}

/* True when a Nestor is right below, known by its signature: it may hide
 * the hypervisor bit (its option hypervisor_bit=off), and on a CPU leaf
 * 0x40000000 never carries it.  A hypervisor bit with another signature is
 * another hypervisor; its name is an environment fact. */
static bool nestor_below(uint32_t *max_leaf)
{
	struct regs base = cpuid(NESTOR_CPUID_BASE, 0);
	if (NESTOR_SIGNATURE(base.ebx, base.ecx, base.edx)) {
		*max_leaf = base.eax;
		return true;
	}
	if (!(cpuid(1, 0).ecx & CPUID_HYPERVISOR_BIT))
		return false;
	char sig[13];
	signature(&base, sig);
	printf("env: linux: hypervisor below: \"%s\"\n", sig);
	return false;
}

/* --- one line per level -------------------------------------------------------- */

/* What a level does for the levels above it, from its flags and count. */
static void describe_vmx(const struct regs *d, char *buf, size_t cap)
{
	if (d->ecx & NESTOR_LEVEL_DELEGATES)
		snprintf(buf, cap, ", delegates its guest's VMX down the stack");
	else
		snprintf(buf, cap, ", runs %u level%s above it", d->edx, d->edx == 1 ? "" : "s");
	if (!(d->ecx & NESTOR_LEVEL_NESTED))
		snprintf(buf + strlen(buf), cap - strlen(buf), ", offers no VMX to its guest");
}

/* Prints the line of the Nestor at absolute level `level`; false when its
 * answer is not the protocol's (the level missing or another number). */
static bool report_level(uint32_t level)
{
	struct regs d = cpuid(NESTOR_CPUID_LEVELS, level);
	if (d.eax != level) {
		printf("nestor-levels: level %u: no answer (CPUID 0x%x.%u: eax=0x%x, expected %u)\n", level,
		       NESTOR_CPUID_LEVELS, level, d.eax, level);
		return false;
	}
	char vmx[128];
	describe_vmx(&d, vmx, sizeof(vmx));
	printf("nestor-levels: level %u: Nestor%s, %u exits so far\n", level, vmx, d.ebx);
	return true;
}

/* The whole report; false when some answer broke the protocol.  *levels:
 * how many Nestor levels are below. */
static bool report(uint32_t *levels)
{
	uint32_t max_leaf = 0;
	*levels = 0;
	if (!nestor_below(&max_leaf)) {
		printf("nestor-levels: no Nestor below: Linux runs on the machine\n");
		return true;
	}
	struct regs info = cpuid(NESTOR_CPUID_INFO, 0);
	uint32_t below = info.eax;
	if (below >= MAX_LEVELS) {
		printf("nestor-levels: the Nestor below says it is at level %u\n", below);
		return false;
	}
	*levels = below + 1;
	bool ok = true;
	if (max_leaf < NESTOR_CPUID_LEVELS) {
		/* An older Nestor: the levels exist, but none can describe itself. */
		printf("nestor-levels: Nestor ABI %u below has no leaf 0x%x: no per-level details\n", info.ebx,
		       NESTOR_CPUID_LEVELS);
		for (uint32_t l = 0; l <= below; l++)
			printf("nestor-levels: level %u: Nestor\n", l);
	} else {
		for (uint32_t l = 0; l <= below; l++)
			ok &= report_level(l);
	}
	/* The level above the highest Nestor must say there is nobody there. */
	if (max_leaf >= NESTOR_CPUID_LEVELS && cpuid(NESTOR_CPUID_LEVELS, below + 1).eax != 0xffffffffu) {
		printf("nestor-levels: level %u answers CPUID 0x%x though Linux runs there\n", below + 1,
		       NESTOR_CPUID_LEVELS);
		ok = false;
	}
	printf("nestor-levels: level %u: Linux (this program), on %u Nestor level%s\n", below + 1, below + 1,
	       below == 0 ? "" : "s");
	return ok;
}

/* --- ending the run ------------------------------------------------------------- */

/* Waits until the console has sent what was written to it: the port write
 * below powers the machine off at once, and output still queued in the
 * serial driver would be lost.  Not a terminal: nothing to wait for. */
static void drain_output(void)
{
	fflush(stdout);
	fflush(stderr);
	tcdrain(STDOUT_FILENO);
	tcdrain(STDERR_FILENO);
}

static int shutdown_machine(bool dry_run)
{
	if (ioperm(SHUTDOWN_PORT, 1, 1)) {
		int e = errno;
		fprintf(stderr, "nestor-levels: --shutdown: ioperm(0x%x): %s%s\n", SHUTDOWN_PORT, strerror(e),
			e == EPERM ? " (root is needed)" : "");
		return 1;
	}
	if (dry_run) {
		printf("nestor-levels: --dry-run: port 0x%x accessible, Shutdown not written\n", SHUTDOWN_PORT);
		return 0;
	}
	printf("nestor-levels: writing Shutdown to port 0x%x\n", SHUTDOWN_PORT);
	drain_output();
	for (const char *c = "Shutdown"; *c; c++)
		outb((unsigned char)*c, SHUTDOWN_PORT); /* <sys/io.h>: value, then port */
	/* Still running: no Bochs shutdown port here (real hardware, QEMU). */
	fprintf(stderr, "nestor-levels: port 0x%x did not end the run\n", SHUTDOWN_PORT);
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: nestor-levels [--quiet] [--expect N] [--shutdown [--dry-run]]\n");
	return 2;
}

int main(int argc, char **argv)
{
	/* First, so the tick is as close as can be to the moment init runs us. */
	uint64_t tick = rdtsc();
	bool quiet = false, shutdown = false, dry_run = false;
	long expect = -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quiet"))
			quiet = true;
		else if (!strcmp(argv[i], "--shutdown"))
			shutdown = true;
		else if (!strcmp(argv[i], "--dry-run"))
			dry_run = true;
		else if (!strcmp(argv[i], "--expect") && i + 1 < argc) {
			char *end;
			expect = strtol(argv[++i], &end, 10);
			if (*end || expect < 0 || expect > MAX_LEVELS)
				return usage();
		} else
			return usage();
	}
	if ((dry_run && !shutdown) || (quiet && expect >= 0))
		return usage();

	int status = 0;
	if (!quiet) {
		printf("env: linux: init reached at tick %llu\n", (unsigned long long)tick);
		uint32_t levels;
		status = report(&levels) ? 0 : 1;
		if (expect >= 0 && levels != (uint32_t)expect) {
			printf("nestor-levels: expected %ld Nestor level%s, found %u\n", expect, expect == 1 ? "" : "s",
			       levels);
			status = 1;
		}
	}
	if (shutdown && shutdown_machine(dry_run))
		status = 1;
	fflush(stdout);
	return status;
}
