/* exit-trace.c - every instruction of one guest operation in a stack of
 * Nestors, counted per function (issue 16: where the ticks of a nested
 * transition go, to the instruction).
 *
 *   exit-trace --depth N [--op cpuid|io] [--cpu MODEL] [--list FUNC[,FUNC...]]
 *
 * Runs the guest test kernel's bench suite (guest/tests/bench.c) at depth N
 * with nestor-run, then runs the same machine again under Bochs' built-in
 * debugger: a breakpoint on the guest's CPUID (or OUT) in its measuring
 * loop, a few iterations to reach the steady state, then `trace on` for
 * exactly one iteration - one instruction per line, as Bochs counts ticks
 * (1 tick = 1 instruction).  The trace is cut into segments at each VM
 * exit (the exit stub, vmx/entry.S) and after each VMRESUME/VMLAUNCH, and
 * each instruction is named by the function of nestor.elf it belongs to
 * (every level runs the same image at the same addresses; the segment
 * order says which level: level 0 for the exit segments, the level the
 * exit was reflected to for the others - see `nestor-model --trace`).
 *
 * Output: `trace SEG FUNCTION N` per function in order of first
 * appearance, `trace SEG total N` per segment and `trace total N`; with
 * --list, the instructions themselves of the functions named.  The full
 * Bochs trace stays in build/runs/trace-OP-dN/trace.txt. */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include "tools/util.h"

#define MAX_SYMS 8192
#define MAX_FUNCS 256

struct sym {
	uint64_t addr;
	char name[64];
};
static struct sym syms[MAX_SYMS];
static int nsyms;

static int by_addr(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* The text symbols of an ELF file, sorted (nm -n). */
static void load_syms(const char *elf)
{
	char cmd[512], line[256];
	snprintf(cmd, sizeof(cmd), "nm -n %s", elf);
	FILE *p = popen(cmd, "r");
	if (!p)
		die("cannot run %s", cmd);
	while (fgets(line, sizeof(line), p) && nsyms < MAX_SYMS) {
		unsigned long long a;
		char t, name[64];
		if (sscanf(line, "%llx %c %63s", &a, &t, name) == 3 && (t == 't' || t == 'T')) {
			syms[nsyms].addr = a;
			snprintf(syms[nsyms].name, sizeof(syms[nsyms].name), "%s", name);
			nsyms++;
		}
	}
	if (pclose(p) != 0 || !nsyms)
		die("no symbols from %s", cmd);
	qsort(syms, nsyms, sizeof(syms[0]), by_addr);
}

static const char *sym_of(uint64_t a)
{
	if (a < 0xffffffff80000000ull)
		return "(guest)";
	int lo = 0, hi = nsyms - 1, best = -1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (syms[mid].addr <= a)
			best = mid, lo = mid + 1;
		else
			hi = mid - 1;
	}
	return best < 0 ? "?" : syms[best].name;
}

/* Address of the first `insn` (cpuid / out) inside function fn of elf. */
static uint64_t insn_in(const char *elf, const char *fn, const char *insn)
{
	char cmd[512], line[512], head[128];
	snprintf(cmd, sizeof(cmd), "objdump -d --no-show-raw-insn %s", elf);
	snprintf(head, sizeof(head), "<%s>:", fn);
	FILE *p = popen(cmd, "r");
	if (!p)
		die("cannot run %s", cmd);
	bool in = false;
	uint64_t found = 0;
	while (fgets(line, sizeof(line), p)) {
		if (strstr(line, head)) {
			in = true;
			continue;
		}
		if (in && line[0] == '\n')
			in = false;
		if (in && !found) {
			/* "  110d22:\tcpuid" - the mnemonic, not a <symbol> named like it */
			char *m = strchr(line, ':');
			if (!m)
				continue;
			m++;
			while (*m == ' ' || *m == '\t')
				m++;
			size_t len = strlen(insn);
			if (!strncmp(m, insn, len) && (m[len] == ' ' || m[len] == '\t' || m[len] == '\n'))
				found = strtoull(line, NULL, 16);
		}
	}
	pclose(p);
	if (!found)
		die("no %s in %s of %s", insn, fn, elf);
	return found;
}

struct count {
	char name[64];
	unsigned long n;
};

static void print_segment(int seg, struct count *c, int nc, unsigned long total)
{
	for (int i = 0; i < nc; i++)
		printf("trace %d %s %lu\n", seg, c[i].name, c[i].n);
	printf("trace %d total %lu\n", seg, total);
}

int main(int argc, char **argv)
{
	int depth = -1;
	const char *op = "cpuid", *cpu = "corei7_skylake_x", *list = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--depth") && i + 1 < argc)
			depth = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--op") && i + 1 < argc)
			op = argv[++i];
		else if (!strcmp(argv[i], "--cpu") && i + 1 < argc)
			cpu = argv[++i];
		else if (!strcmp(argv[i], "--list") && i + 1 < argc)
			list = argv[++i];
		else
			die("usage: exit-trace --depth N [--op cpuid|io] [--cpu MODEL] [--list FUNC[,FUNC...]]");
	}
	if (depth < 0 || depth > 8 || (strcmp(op, "cpuid") && strcmp(op, "io")))
		die("usage: exit-trace --depth N (0..8) [--op cpuid|io] [--cpu MODEL] [--list FUNC[,FUNC...]]");
	bool io = !strcmp(op, "io");
	uint64_t at = insn_in("build/guest.elf", io ? "loop_portio" : "loop_cpuid", io ? "out" : "cpuid");
	load_syms("build/nestor.elf");

	/* The machine of the bench suite at that depth. */
	char name[64], cmd[1024], path[256];
	snprintf(name, sizeof(name), "trace-%s-d%d", op, depth);
	snprintf(cmd, sizeof(cmd),
		 "build/tools/nestor-run --quiet --timeout 900 --name %s --cpu %s --guest 'build/guest.elf suite=bench' "
		 "--depth %d >/dev/null 2>&1",
		 name, cpu, depth);
	if (system(cmd) != 0)
		die("the run failed: %s (see build/runs/%s)", cmd, name);
	/* Bochs again, under its debugger: eight iterations, then one traced. */
	snprintf(path, sizeof(path), "build/runs/%s/trace.rc", name);
	FILE *rc = fopen(path, "w");
	if (!rc)
		die("cannot write %s", path);
	fprintf(rc, "lb 0x%llx\n", (unsigned long long)at);
	for (int i = 0; i < 8; i++)
		fprintf(rc, "c\n");
	fprintf(rc, "trace on\nc\nq\n");
	fclose(rc);
	snprintf(cmd, sizeof(cmd),
		 "timeout 600 bochs -q -f build/runs/%s/bochsrc -rc build/runs/%s/trace.rc "
		 ">build/runs/%s/trace.txt 2>&1 </dev/null",
		 name, name, name);
	(void)!system(cmd); /* Bochs exits with 1 after every clean end */

	snprintf(path, sizeof(path), "build/runs/%s/trace.txt", name);
	FILE *t = fopen(path, "r");
	if (!t)
		die("no trace in %s", path);
	static struct count c[MAX_FUNCS];
	int nc = 0, seg = 0;
	unsigned long total = 0, all = 0;
	bool prev_stub = false, cut = false;
	char line[512], wanted[512]; /* --list as ",a,b," */
	snprintf(wanted, sizeof(wanted), ",%s,", list ? list : "");
	while (fgets(line, sizeof(line), t)) {
		/* (0).[TICK] [0xPHYS] SEL:LINEAR (unk. ctxt): INSN ; BYTES */
		if (strncmp(line, "(0).[", 5))
			continue;
		char *lin = strchr(line, ':'), *ins = strstr(line, "): ");
		if (!lin || !ins)
			continue;
		uint64_t a = strtoull(lin + 1, NULL, 16);
		ins += 3;
		char *semi = strchr(ins, ';');
		if (semi)
			while (semi > ins && isspace((unsigned char)semi[-1]))
				*--semi = '\0';
		const char *f = sym_of(a);
		bool stub = !strcmp(f, "vmx_exit_stub");
		if ((stub && !prev_stub) || cut) {
			if (total)
				print_segment(seg++, c, nc, total);
			nc = 0, total = 0, cut = false;
		}
		prev_stub = stub;
		int i = 0;
		while (i < nc && strcmp(c[i].name, f))
			i++;
		if (i == nc && nc < MAX_FUNCS) {
			snprintf(c[nc].name, sizeof(c[0].name), "%s", f);
			c[nc++].n = 0;
		}
		if (i < nc)
			c[i].n++;
		total++, all++;
		if (list) {
			char pat[80];
			snprintf(pat, sizeof(pat), ",%s,", f);
			if (strstr(wanted, pat))
				printf("  %d %llx %s: %s\n", seg, (unsigned long long)a, f, ins);
		}
		if (!strncmp(ins, "vmresume", 8) || !strncmp(ins, "vmlaunch", 8))
			cut = true;
	}
	fclose(t);
	if (total)
		print_segment(seg, c, nc, total);
	if (!all)
		die("nothing traced: see %s", path);
	printf("trace total %lu\n", all);
	return 0;
}
