/* cov-report - basic-block coverage of nested/ and vmx/ from the PCs a
 * coverage build of Nestor (make cov, lib/cov.c) dumped.
 *
 * usage: cov-report --elf build/cov/nestor.elf [--out FILE] [--kind KIND] PCS...
 *
 * PCS are files (or directories of files) of hexadecimal PCs, one a line,
 * as "nestor-cov <pc>" lines of a run's bochs.out or bare (other lines are
 * skipped, so a whole bochs.out can be given); their union is
 * the covered set (Nestor is linked at one virtual address, so the PCs of
 * every level of a stack and of every run are comparable).  The
 * instrumented sites are the call sites of __sanitizer_cov_trace_pc in
 * `objdump -d` of the ELF: one per basic block gcc instrumented; a site is
 * covered when the return address of its call was recorded.  `addr2line -i`
 * names each site's source line and, through the inline chain, the
 * function of nested/ or vmx/ it was compiled into.  Prints
 *   KIND COVERAGE_NESTED_PCT N   KIND COVERAGE_VMX_PCT N   (KIND default "fuzz")
 * and writes per-file figures and the uncovered lines to FILE. */
#include "tools/util.h"

#include <dirent.h>
#include <stdbool.h>
#include <inttypes.h>

struct site {
	uint64_t call, ret;  /* the call instruction, and the PC recorded */
	char file[160];      /* innermost source location */
	unsigned line;
	char unit[160];      /* the .c file of nested/ or vmx/ it belongs to */
	int covered;
};

static struct site *sites;
static size_t nsites, capsites;

static uint64_t *pcs;
static size_t npcs, cappcs;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void add_pcs_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die("cannot read %s", path);
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		/* A PC line is "nestor-cov <hex>" or bare hex; anything else
		 * (the rest of a bochs.out) is not read as a PC. */
		const char *p = line;
		if (!strncmp(p, "nestor-cov ", 11))
			p += 11;
		char *end;
		uint64_t pc = strtoull(p, &end, 16);
		if (end == p || pc == 0 || (*end != '\n' && *end != '\0'))
			continue;
		if (npcs == cappcs) {
			cappcs = cappcs ? 2 * cappcs : 65536;
			pcs = realloc(pcs, cappcs * sizeof(*pcs));
		}
		pcs[npcs++] = pc;
	}
	fclose(f);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

/* A file is read whatever its name; in a directory (and its
 * subdirectories: a run of several depths has one per depth) only the
 * files that hold PCs - *.pcs and bochs.out - not the ISOs and logs. */
static void add_pcs(const char *path, bool top)
{
	DIR *d = opendir(path);
	if (!d) {
		if (top || ends_with(path, ".pcs") || ends_with(path, "/bochs.out"))
			add_pcs_file(path);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char sub[1024];
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		add_pcs(sub, false);
	}
	closedir(d);
}

/* The call sites, from the disassembly: the recorded PC is the address of
 * the instruction after each call. */
static void find_sites(const char *elf)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "objdump -d --no-show-raw-insn %s", elf);
	FILE *p = popen(cmd, "r");
	if (!p)
		die("objdump: %s", strerror(errno));
	char line[1024];
	int pending = 0;
	uint64_t call = 0;
	while (fgets(line, sizeof(line), p)) {
		char *end;
		uint64_t addr = strtoull(line, &end, 16);
		if (end == line || *end != ':')
			continue; /* not an instruction line ("ADDR <function>:" has a space) */
		if (pending) {
			if (nsites == capsites) {
				capsites = capsites ? 2 * capsites : 8192;
				sites = realloc(sites, capsites * sizeof(*sites));
			}
			memset(&sites[nsites], 0, sizeof(sites[nsites]));
			sites[nsites].call = call;
			sites[nsites].ret = addr;
			nsites++;
			pending = 0;
		}
		if (strstr(line, "call") && strstr(line, "<__sanitizer_cov_trace_pc>")) {
			pending = 1;
			call = addr;
		}
	}
	if (pclose(p) != 0)
		die("objdump -d %s failed", elf);
}

/* Source lines through addr2line -a -i: an address line, then the
 * innermost location, then "(inlined by)" callers up to the outer function. */
static void locate_sites(const char *elf)
{
	char in[] = "/tmp/cov-report-XXXXXX";
	int fd = mkstemp(in);
	if (fd < 0)
		die("mkstemp: %s", strerror(errno));
	FILE *f = fdopen(fd, "w");
	for (size_t i = 0; i < nsites; i++)
		fprintf(f, "%" PRIx64 "\n", sites[i].call);
	fclose(f);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "addr2line -a -i -e %s < %s", elf, in);
	FILE *p = popen(cmd, "r");
	if (!p)
		die("addr2line: %s", strerror(errno));
	char line[1024];
	ssize_t cur = -1;
	int first = 0;
	while (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "0x", 2)) {
			cur++;
			first = 1;
			continue;
		}
		if (cur < 0 || (size_t)cur >= nsites)
			continue;
		char *loc = line;
		/* Paths relative to the project: what follows the last "/nested/"
		 * or "/vmx/"-style directory is kept as it is; strip the cwd. */
		char cwd[512];
		if (getcwd(cwd, sizeof(cwd)) && !strncmp(loc, cwd, strlen(cwd)) && loc[strlen(cwd)] == '/')
			loc += strlen(cwd) + 1;
		char *colon = strrchr(loc, ':');
		unsigned ln = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
		if (colon)
			*colon = 0;
		char *paren = strstr(loc, " (discriminator");
		if (paren)
			*paren = 0;
		struct site *s = &sites[cur];
		if (first) {
			snprintf(s->file, sizeof(s->file), "%s", loc);
			s->line = ln;
			first = 0;
		}
		/* Every line of the chain overwrites: the last is the outermost. */
		snprintf(s->unit, sizeof(s->unit), "%s", loc);
	}
	pclose(p);
	unlink(in);
}

/* True when path is in directory dir of the source tree, whatever tree:
 * "nested/x.c", "/src/nestor/nested/x.c". */
static int under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	for (const char *p = path; (p = strstr(p, dir)); p++)
		if ((p == path || p[-1] == '/') && p[n] == '/' && !strchr(p + n + 1, '/'))
			return 1;
	return 0;
}

struct unit_stat {
	char name[160];
	size_t total, covered;
};

static int cmp_site(const void *a, const void *b)
{
	const struct site *x = a, *y = b;
	int c = strcmp(x->unit, y->unit);
	if (c)
		return c;
	c = strcmp(x->file, y->file);
	if (c)
		return c;
	return (x->line > y->line) - (x->line < y->line);
}

int main(int argc, char **argv)
{
	const char *elf = NULL, *out = NULL, *kind = "fuzz";
	int ninputs = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--elf") && i + 1 < argc)
			elf = argv[++i];
		else if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out = argv[++i];
		else if (!strcmp(argv[i], "--kind") && i + 1 < argc)
			kind = argv[++i];
		else
			add_pcs(argv[i], true), ninputs++;
	}
	if (!elf)
		die("usage: cov-report --elf NESTOR.ELF [--out FILE] [--kind KIND] PCS...");
	qsort(pcs, npcs, sizeof(*pcs), cmp_u64);
	size_t u = 0;
	for (size_t i = 0; i < npcs; i++)
		if (!u || pcs[u - 1] != pcs[i])
			pcs[u++] = pcs[i];
	npcs = u;
	find_sites(elf);
	if (!nsites)
		die("%s has no __sanitizer_cov_trace_pc call: not a coverage build (make cov)", elf);
	locate_sites(elf);
	for (size_t i = 0; i < nsites; i++)
		sites[i].covered = bsearch(&sites[i].ret, pcs, npcs, sizeof(*pcs), cmp_u64) != NULL;
	qsort(sites, nsites, sizeof(*sites), cmp_site);

	size_t tot[2] = { 0 }, cov[2] = { 0 };
	struct unit_stat *units = calloc(nsites, sizeof(*units));
	size_t nunits = 0;
	for (size_t i = 0; i < nsites; i++) {
		const struct site *s = &sites[i];
		int d = under(s->unit, "nested") ? 0 : under(s->unit, "vmx") ? 1 : -1;
		if (d >= 0) {
			tot[d]++;
			cov[d] += s->covered;
		}
		if (!nunits || strcmp(units[nunits - 1].name, s->unit))
			snprintf(units[nunits++].name, sizeof(units[0].name), "%s", s->unit);
		units[nunits - 1].total++;
		units[nunits - 1].covered += s->covered;
	}
	printf("%s COVERAGE_NESTED_PCT %.1f\n", kind, tot[0] ? 100.0 * cov[0] / tot[0] : 0.0);
	printf("%s COVERAGE_VMX_PCT %.1f\n", kind, tot[1] ? 100.0 * cov[1] / tot[1] : 0.0);
	printf("cov-report: nested/ %zu of %zu sites, vmx/ %zu of %zu, from %zu distinct PCs in %d inputs\n", cov[0],
	       tot[0], cov[1], tot[1], npcs, ninputs);
	if (out) {
		FILE *f = fopen(out, "w");
		if (!f)
			die("cannot write %s", out);
		fprintf(f, "# Basic-block coverage of %s (gcc -fsanitize-coverage=trace-pc sites)\n", elf);
		fprintf(f, "nested/ %zu/%zu %.1f%%\nvmx/ %zu/%zu %.1f%%\n\n", cov[0], tot[0],
			tot[0] ? 100.0 * cov[0] / tot[0] : 0.0, cov[1], tot[1], tot[1] ? 100.0 * cov[1] / tot[1] : 0.0);
		for (size_t i = 0; i < nunits; i++)
			fprintf(f, "%-28s %5zu/%-5zu %5.1f%%\n", units[i].name, units[i].covered, units[i].total,
				100.0 * units[i].covered / units[i].total);
		fprintf(f, "\n# Uncovered sites: FILE:LINE (in UNIT when inlined), source line\n");
		for (size_t i = 0; i < nsites; i++) {
			const struct site *s = &sites[i];
			if (s->covered || (i && !sites[i - 1].covered && !strcmp(sites[i - 1].file, s->file) &&
					   sites[i - 1].line == s->line && !strcmp(sites[i - 1].unit, s->unit)))
				continue;
			/* Consecutive uncovered sites of the same line are one entry, with their count. */
			size_t same = 1;
			while (i + same < nsites && !sites[i + same].covered && sites[i + same].line == s->line &&
			       !strcmp(sites[i + same].file, s->file) && !strcmp(sites[i + same].unit, s->unit))
				same++;
			char times[24] = "";
			if (same > 1)
				snprintf(times, sizeof(times), " (x%zu)", same);
			char text[200] = "";
			FILE *src = fopen(s->file, "r");
			if (src) {
				char buf[400];
				for (unsigned n = 1; fgets(buf, sizeof(buf), src); n++)
					if (n == s->line) {
						buf[strcspn(buf, "\n")] = 0;
						char *t = buf;
						while (*t == '\t' || *t == ' ')
							t++;
						snprintf(text, sizeof(text), "%s", t);
						break;
					}
				fclose(src);
			}
			if (strcmp(s->file, s->unit))
				fprintf(f, "%s:%u (in %s)%s  %s\n", s->file, s->line, s->unit, times, text);
			else
				fprintf(f, "%s:%u%s  %s\n", s->file, s->line, times, text);
		}
		fclose(f);
	}
	return 0;
}
