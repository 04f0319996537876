/* bench - Nestor's benchmark driver (`make bench`).
 *
 * Boots the guest kernel's bench suite (guest/tests/bench.c) at each depth
 * in Bochs, where RDTSC counts emulated instructions, so every figure is an
 * exact instruction count, identical run to run.  Prints one line per
 * figure, "bench NAME VALUE", and writes the same as a Markdown table to
 * build/bench/results.md.
 *
 *   C<d>    ticks per CPUID round trip of a guest at depth d
 *   E<d>    VM exits the lowest Nestor (level 0) takes per such CPUID
 *   CIO<d>, EIO<d>  the same for a write to an I/O port every Nestor
 *           intercepts (Bochs' shutdown port, a byte outside the word)
 *   ..._noshadow    the same with VMCS shadowing off (vmcs_shadowing=off)
 *
 * usage: bench [--cpu MODEL] [--depths LIST] [--noshadow-depths LIST] */
#include "tools/util.h"

#include <stdbool.h>

struct figure {
	char name[32];
	unsigned long long value;
	char note[160];
};

static struct figure figs[64];
static int nfigs;

static void add(const char *name, unsigned long long v, const char *note)
{
	if (nfigs == 64)
		die("too many figures");
	snprintf(figs[nfigs].name, sizeof(figs[nfigs].name), "%s", name);
	figs[nfigs].value = v;
	snprintf(figs[nfigs].note, sizeof(figs[nfigs].note), "%s", note);
	nfigs++;
	printf("bench %s %llu\n", name, v);
	fflush(stdout);
}

/* Finds "NAME ticks_per_op=X remainder=R exits_per_op=Y" in a transcript. */
static int parse(const char *t, const char *what, unsigned long long *ticks, unsigned long long *exits)
{
	char key[64];
	snprintf(key, sizeof(key), "bench.%s: %s ticks_per_op=", what, what);
	const char *p = strstr(t, key);
	if (!p)
		return -1;
	*ticks = strtoull(p + strlen(key), NULL, 10);
	const char *e = strstr(p, "exits_per_op=");
	if (!e)
		return -1;
	*exits = strtoull(e + 13, NULL, 10);
	return 0;
}

static void run_depth(const char *cpu, int depth, bool noshadow)
{
	char cmd[1024], path[256], name[64], note[160];
	const char *suffix = noshadow ? "_noshadow" : "";
	snprintf(cmd, sizeof(cmd),
		 "build/tools/nestor-run --quiet --timeout 900 --name bench-d%d%s --cpu %s %s "
		 "--guest 'build/guest.elf suite=bench' --depth %d",
		 depth, suffix, cpu, noshadow ? "--nestor 'build/nestor.elf vmcs_shadowing=off'" : "", depth);
	if (system(cmd) != 0)
		die("benchmark run at depth %d failed (see build/runs/bench-d%d%s)", depth, depth, suffix);
	snprintf(path, sizeof(path), "build/runs/bench-d%d%s/transcript.txt", depth, suffix);
	char *t = read_file(path, NULL);
	if (!t)
		die("no transcript in %s", path);
	static const struct {
		const char *test, *prefix, *what;
	} kinds[] = { { "cpuid", "", "CPUID" }, { "io", "IO", "intercepted port write" } };
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		unsigned long long ticks, exits;
		if (parse(t, kinds[k].test, &ticks, &exits))
			die("no %s measurement in %s", kinds[k].test, path);
		snprintf(name, sizeof(name), "C%s%d%s", kinds[k].prefix, depth, suffix);
		snprintf(note, sizeof(note), "ticks per %s round trip, guest at depth %d%s", kinds[k].what, depth,
			 noshadow ? ", no VMCS shadowing" : "");
		add(name, ticks, note);
		snprintf(name, sizeof(name), "E%s%d%s", kinds[k].prefix, depth, suffix);
		snprintf(note, sizeof(note), "exits at level 0 per %s of a depth-%d guest%s", kinds[k].what, depth,
			 noshadow ? ", no VMCS shadowing" : "");
		add(name, exits, note);
	}
	free(t);
}

int main(int argc, char **argv)
{
	const char *cpu = "corei7_skylake_x";
	char depths[64] = "1,2,3", noshadow[64] = "2";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--cpu") && i + 1 < argc)
			cpu = argv[++i];
		else if (!strcmp(argv[i], "--depths") && i + 1 < argc)
			snprintf(depths, sizeof(depths), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--noshadow-depths") && i + 1 < argc)
			snprintf(noshadow, sizeof(noshadow), "%s", argv[++i]);
		else
			die("usage: bench [--cpu MODEL] [--depths LIST] [--noshadow-depths LIST]");
	}
	make_dirs("build/bench");
	for (int pass = 0; pass < 2; pass++) {
		char tmp[64];
		snprintf(tmp, sizeof(tmp), "%s", pass ? noshadow : depths);
		for (char *d = strtok(tmp, ","); d; d = strtok(NULL, ","))
			run_depth(cpu, atoi(d), pass == 1);
	}
	FILE *f = fopen("build/bench/results.md", "w");
	if (!f)
		die("cannot write build/bench/results.md");
	fprintf(f, "# Nestor benchmark (Bochs `%s`; 1 tick = 1 emulated instruction)\n\n", cpu);
	fprintf(f, "| Figure | Value | Meaning |\n|---|---:|---|\n");
	for (int i = 0; i < nfigs; i++)
		fprintf(f, "| %s | %llu | %s |\n", figs[i].name, figs[i].value, figs[i].note);
	fclose(f);
	printf("wrote build/bench/results.md\n");
	return 0;
}
