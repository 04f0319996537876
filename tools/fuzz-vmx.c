/* fuzz-vmx - differential VMX fuzzing: the guest kernel's vmxfuzz suite
 * (guest/tests/vmxfuzz*.c) for many seeds, each on bare Bochs (depth 0, the
 * reference) and under 1 and 2 Nestors, transcripts compared case by case.
 *
 * usage: fuzz-vmx [--seeds A..B] [--cases N] [-j N] [--cpu MODEL]
 *                 [--depths 0,1,2] [--classes MASK] [--cov] [--nestor FILE]
 *                 [--out DIR] [--timeout S] [--keep]
 *
 * Each (seed, depth) is one build/tools/nestor-run; -j of them run at once.
 * A case diverges when its line at depth d differs from depth 0's; a run
 * crashes when its verdict is not PASS (a Nestor panic, "end of run
 * (failure)", a hang, a Bochs panic...).  Prints
 *   fuzz VMX_CASES_D<d> N, fuzz VMX_DIVERGENCES_D<d> N, fuzz VMX_CRASHES_D<d> N
 * for every depth d > 0 (and VMX_CASES_D0, VMX_D0_FAILURES), keeps the
 * diverging cases and the transcripts of their seeds in DIR (default
 * build/fuzz-vmx), and with --cov (Nestor built by `make cov`) collects the
 * PCs every level reached and runs build/tools/cov-report, which prints
 * fuzz COVERAGE_NESTED_PCT and fuzz COVERAGE_VMX_PCT.  Exit status 1 on any
 * divergence or crash. */
#include "tools/util.h"

#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>

#define MAX_DEPTHS 4

struct opts {
	unsigned long first, last, cases, classes, first_case;
	int jobs, ndepths, depths[MAX_DEPTHS], timeout, cov, keep;
	const char *cpu, *nestor, *out;
};

struct job {
	unsigned long seed;
	int depth;
	pid_t pid;
	int done, pass;
	char reason[160];
};

static struct opts o = { 1, 20, 200, 7, 0, 2, 3, { 0, 1, 2 }, 600, 0, 0, "corei7_skylake_x", NULL, "build/fuzz-vmx" };

static void usage(void)
{
	fprintf(stderr, "usage: fuzz-vmx [--seeds A..B] [--cases N] [-j N] [--cpu MODEL] [--depths 0,1,2]\n"
			"                [--classes MASK] [--cov] [--nestor FILE] [--out DIR] [--timeout S] [--keep]\n");
	exit(2);
}

static void run_name(const struct job *j, char *buf, size_t n)
{
	/* Named after the output directory, so that campaigns with different
	 * --out directories can run at the same time. */
	const char *base = strrchr(o.out, '/');
	base = base ? base + 1 : o.out;
	snprintf(buf, n, "%s-%lu-d%d", base, j->seed, j->depth);
}

static void start(struct job *j)
{
	char name[160], guest[256], transcript[512], log[512], timeout[16];
	run_name(j, name, sizeof(name));
	snprintf(guest, sizeof(guest), "build/guest.elf suite=vmxfuzz fuzz_seed=%lu fuzz_cases=%lu fuzz_classes=%lu",
		 j->seed, o.cases, o.classes);
	snprintf(transcript, sizeof(transcript), "%s/t/%lu-d%d.txt", o.out, j->seed, j->depth);
	snprintf(log, sizeof(log), "%s/logs/%lu-d%d.log", o.out, j->seed, j->depth);
	snprintf(timeout, sizeof(timeout), "%d", o.timeout);
	char depth[8];
	snprintf(depth, sizeof(depth), "%d", j->depth);
	char *argv[] = { "build/tools/nestor-run", "--quiet", "--name", name, "--cpu", (char *)o.cpu, "--nestor",
			 (char *)o.nestor, "--guest", guest, "--depth", depth, "--timeout", timeout, "--transcript",
			 transcript, NULL };
	unlink(transcript);
	j->pid = spawn(argv, log, 1);
}

/* Appends the distinct "nestor-cov <pc>" lines of a run's bochs.out to
 * DIR/cov/SEED-dD.pcs (Bochs' stdout holds every level's port 0xE9). */
static void collect_cov(const struct job *j, const char *rundir)
{
	char path[600], out[600];
	snprintf(path, sizeof(path), "%s/bochs.out", rundir);
	snprintf(out, sizeof(out), "%s/cov/%lu-d%d.pcs", o.out, j->seed, j->depth);
	char *text = read_file(path, NULL);
	FILE *f = fopen(out, "w");
	if (!f)
		die("cannot write %s", out);
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (!strncmp(line, "nestor-cov ", 11))
			fprintf(f, "%s\n", line + 11);
		if (!nl)
			break;
		line = nl + 1;
	}
	fclose(f);
	free(text);
}

static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	if (!d) {
		unlink(path);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char sub[1024];
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		struct stat st;
		if (!lstat(sub, &st) && S_ISDIR(st.st_mode))
			remove_tree(sub);
		else
			unlink(sub);
	}
	closedir(d);
	rmdir(path);
}

static void finish(struct job *j, int status)
{
	char log[512], name[160], rundir[600];
	snprintf(log, sizeof(log), "%s/logs/%lu-d%d.log", o.out, j->seed, j->depth);
	run_name(j, name, sizeof(name));
	snprintf(rundir, sizeof(rundir), "build/runs/%s", name);
	char *text = read_file(log, NULL);
	j->done = 1;
	j->pass = WIFEXITED(status) && WEXITSTATUS(status) == 0 && text && !strncmp(text, "PASS", 4);
	if (!j->pass) {
		/* "FAIL name (...): reason: detail (...)": keep the reason. */
		const char *r = text ? strstr(text, "): ") : NULL;
		snprintf(j->reason, sizeof(j->reason), "%s", r ? r + 3 : text ? text : "no log");
		char *nl = strchr(j->reason, '\n');
		if (nl)
			*nl = 0;
	}
	free(text);
	if (o.cov && j->depth > 0)
		collect_cov(j, rundir);
	if (j->pass && !o.keep)
		remove_tree(rundir);
}

/* --- comparing transcripts ------------------------------------------------- */
struct tr {
	char **line;  /* by case number - first */
	unsigned long n;
	char *header; /* the lines before the first case, minus env lines */
	char *text;
};

static const char *case_prefix = "  vmxfuzz.run: ";

static void load(struct tr *t, unsigned long seed, int depth)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/t/%lu-d%d.txt", o.out, seed, depth);
	memset(t, 0, sizeof(*t));
	t->line = calloc(o.cases, sizeof(char *));
	t->header = calloc(1, 1);
	t->text = read_file(path, NULL);
	size_t hlen = 0, pl = strlen(case_prefix);
	for (char *line = t->text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (!strncmp(line, case_prefix, pl)) {
			const char *rest = line + pl;
			char *end;
			unsigned long k = strtoul(rest, &end, 10);
			if (end != rest && *end == ' ' && k >= o.first_case && k - o.first_case < o.cases && strcmp(end, " cases")) {
				t->line[k - o.first_case] = line;
				t->n++;
			} else if (!strncmp(rest, "caps", 4) || !strncmp(rest, "seed ", 5)) {
				/* what the generator draws from: must match too */
				t->header = realloc(t->header, hlen + strlen(line) + 2);
				memcpy(t->header + hlen, line, strlen(line));
				hlen += strlen(line);
				t->header[hlen++] = '\n';
				t->header[hlen] = 0;
			}
		}
		if (!nl)
			break;
		line = nl + 1;
	}
}

static void unload(struct tr *t)
{
	free(t->line);
	free(t->header);
	free(t->text);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--seeds") && v) {
			char *end;
			o.first = strtoul(v, &end, 0);
			o.last = !strncmp(end, "..", 2) ? strtoul(end + 2, &end, 0) : o.first;
			if (*end || o.last < o.first)
				die("--seeds: A..B or A");
			i++;
		} else if (!strcmp(a, "--cases") && v) {
			o.cases = strtoul(v, NULL, 0), i++;
		} else if ((!strcmp(a, "-j") || !strcmp(a, "--jobs")) && v) {
			o.jobs = atoi(v), i++;
		} else if (!strcmp(a, "--cpu") && v) {
			o.cpu = v, i++;
		} else if (!strcmp(a, "--classes") && v) {
			o.classes = strtoul(v, NULL, 0), i++;
		} else if (!strcmp(a, "--depths") && v) {
			o.ndepths = 0;
			for (const char *p = v; *p && o.ndepths < MAX_DEPTHS;) {
				o.depths[o.ndepths++] = (int)strtol(p, (char **)&p, 10);
				if (*p == ',')
					p++;
			}
			i++;
		} else if (!strcmp(a, "--cov")) {
			o.cov = 1;
		} else if (!strcmp(a, "--keep")) {
			o.keep = 1;
		} else if (!strcmp(a, "--nestor") && v) {
			o.nestor = v, i++;
		} else if (!strcmp(a, "--out") && v) {
			o.out = v, i++;
		} else if (!strcmp(a, "--timeout") && v) {
			o.timeout = atoi(v), i++;
		} else {
			usage();
		}
	}
	if (o.ndepths < 1 || o.depths[0] != 0)
		die("--depths must start with 0 (the reference)");
	if (o.jobs < 1 || o.cases < 1)
		usage();
	if (!o.nestor)
		o.nestor = o.cov ? "build/cov/nestor.elf" : "build/nestor.elf";
	char dir[600];
	const char *subs[] = { "t", "logs", "cov", "diverging" };
	for (unsigned i = 0; i < 4; i++) {
		snprintf(dir, sizeof(dir), "%s/%s", o.out, subs[i]);
		remove_tree(dir);
		make_dirs(dir);
	}

	unsigned long nseeds = o.last - o.first + 1;
	size_t njobs = nseeds * (size_t)o.ndepths;
	struct job *jobs = calloc(njobs, sizeof(*jobs));
	for (size_t k = 0; k < njobs; k++) {
		jobs[k].seed = o.first + k / o.ndepths;
		jobs[k].depth = o.depths[k % o.ndepths];
	}
	double t0 = now_seconds();
	printf("fuzz-vmx: seeds %lu..%lu, %lu cases each, depths", o.first, o.last, o.cases);
	for (int d = 0; d < o.ndepths; d++)
		printf("%s%d", d ? "," : " ", o.depths[d]);
	printf(", %s, %s, %d jobs\n", o.cpu, o.nestor, o.jobs);
	fflush(stdout);

	/* Deeper runs are slower: start them first so the pool ends together. */
	size_t next = 0, running = 0, finished = 0;
	size_t *order = calloc(njobs, sizeof(size_t));
	size_t m = 0;
	for (int d = o.ndepths - 1; d >= 0; d--)
		for (size_t k = 0; k < njobs; k++)
			if (jobs[k].depth == o.depths[d])
				order[m++] = k;
	while (finished < njobs) {
		while (running < (size_t)o.jobs && next < njobs) {
			start(&jobs[order[next++]]);
			running++;
		}
		int status;
		pid_t pid = wait(&status);
		if (pid < 0)
			die("wait: %s", strerror(errno));
		for (size_t k = 0; k < njobs; k++)
			if (jobs[k].pid == pid && !jobs[k].done) {
				finish(&jobs[k], status);
				running--;
				finished++;
				if (!jobs[k].pass)
					printf("  seed %lu depth %d: %s\n", jobs[k].seed, jobs[k].depth, jobs[k].reason);
				if (finished % 20 == 0)
					printf("  %zu of %zu runs done (%.0f s)\n", finished, njobs, now_seconds() - t0);
				fflush(stdout);
			}
	}

	/* Compare every seed's depths with its depth 0. */
	unsigned long cases[MAX_DEPTHS] = { 0 }, div[MAX_DEPTHS] = { 0 }, crash[MAX_DEPTHS] = { 0 }, d0fail = 0;
	for (unsigned long s = 0; s < nseeds; s++) {
		struct job *row = &jobs[s * o.ndepths];
		unsigned long seed = row[0].seed;
		if (!row[0].pass)
			d0fail++;
		struct tr ref;
		load(&ref, seed, 0);
		cases[0] += ref.n;
		FILE *df = NULL;
		for (int d = 1; d < o.ndepths; d++) {
			if (!row[d].pass)
				crash[d]++;
			struct tr t;
			load(&t, seed, row[d].depth);
			cases[d] += t.n;
			unsigned long here = 0;
			bool header_differs = strcmp(ref.header, t.header) != 0;
			for (unsigned long k = 0; k < o.cases; k++) {
				if (!t.line[k] || (ref.line[k] && !strcmp(ref.line[k], t.line[k])))
					continue;
				here++;
				if (!df) {
					snprintf(dir, sizeof(dir), "%s/diverging/seed-%lu.txt", o.out, seed);
					df = fopen(dir, "w");
				}
				if (df)
					fprintf(df, "case %lu, depth 0 vs %d:\n  %s\n  %s\n", k, row[d].depth,
						ref.line[k] ? ref.line[k] : "(missing)", t.line[k]);
			}
			if (header_differs) {
				here++;
				if (!df) {
					snprintf(dir, sizeof(dir), "%s/diverging/seed-%lu.txt", o.out, seed);
					df = fopen(dir, "w");
				}
				if (df)
					fprintf(df, "header, depth 0 vs %d:\n%s---\n%s", row[d].depth, ref.header, t.header);
			}
			div[d] += here;
			unload(&t);
		}
		if (df)
			fclose(df);
		else {
			/* Keep the transcripts of seeds that diverged or crashed only. */
			bool bad = !row[0].pass;
			for (int d = 1; d < o.ndepths; d++)
				bad |= !row[d].pass;
			for (int d = 0; d < o.ndepths && !bad; d++) {
				snprintf(dir, sizeof(dir), "%s/t/%lu-d%d.txt", o.out, seed, row[d].depth);
				unlink(dir);
			}
		}
		unload(&ref);
	}
	printf("fuzz VMX_SEEDS %lu\n", nseeds);
	printf("fuzz VMX_CASES_D0 %lu\n", cases[0]);
	printf("fuzz VMX_D0_FAILURES %lu\n", d0fail);
	for (int d = 1; d < o.ndepths; d++)
		printf("fuzz VMX_CASES_D%d %lu\n", o.depths[d], cases[d]);
	for (int d = 1; d < o.ndepths; d++)
		printf("fuzz VMX_DIVERGENCES_D%d %lu\n", o.depths[d], div[d]);
	for (int d = 1; d < o.ndepths; d++)
		printf("fuzz VMX_CRASHES_D%d %lu\n", o.depths[d], crash[d]);
	fflush(stdout);
	int bad = d0fail != 0;
	for (int d = 1; d < o.ndepths; d++)
		bad |= div[d] || crash[d];
	if (bad)
		printf("fuzz-vmx: diverging cases in %s/diverging/, logs in %s/logs/\n", o.out, o.out);
	if (o.cov) {
		char cmd[1024];
		snprintf(cmd, sizeof(cmd), "build/tools/cov-report --elf %s --out %s/coverage.txt %s/cov", o.nestor, o.out,
			 o.out);
		fflush(stdout);
		if (system(cmd) != 0)
			bad = 1;
	}
	printf("fuzz-vmx: %.0f s\n", now_seconds() - t0);
	return bad;
}
