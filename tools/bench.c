/* bench - Nestor's benchmark driver (`make bench`).
 *
 * Boots the guest kernel's bench suite (guest/tests/bench.c) on stacks of
 * 1..8 Nestors in Bochs, where RDTSC counts emulated instructions, so every
 * figure is an exact instruction count, identical run to run.  Prints one
 * line per figure, "bench NAME VALUE", and writes build/bench/:
 *   results.md      the figures, the exits split per level and reason, the
 *                   model's predictions next to them, the memory footprint
 *   costs.svg       exits and ticks against the depth (gnuplot)
 *   trace-*-N.svg   the model's trace graph of one operation at depth N
 *
 *   C<n>    ticks per CPUID round trip of a guest at depth n
 *   E<n>    VM exits the lowest Nestor (level 0) takes per such CPUID
 *   CIO<n>, EIO<n>  the same for a write to an I/O port every Nestor
 *           intercepts (Bochs' shutdown port, a byte outside the word)
 *   ..._noshadow    the same with VMCS shadowing off (vmcs_shadowing=off)
 *   ..._turtles     the same without VMX delegation (delegate=off)
 *   MEM_USED_<n>, MEM_RESERVED_<n>  KiB all n Nestors use / set aside
 *   BOCHS_RAM_<n>   MiB of RAM the harness gives Bochs for that stack
 *   LINUX<d>        ticks from power-on to the init script of Debian's Linux
 *                   (with the project's initramfs) on d Nestor levels
 *   LINUX<d>_OVERHEAD_PERMILLE  (LINUX<d> - LINUX0) / LINUX0, in 1/1000
 *   LINUX<d>_EXITS_L<k>  VM exits level k took during that whole run
 *   (d in --linux-depths, default 0,1,2,3,8; two Linux runs at a time)
 *   SNAP_PAUSE_<COW|COPY>_<MiB>  ticks a guest of MiB is stopped by a snapshot
 *   SNAP_MEM_<COW|COPY>_<MiB>    pool pages it holds once 10% of memory is written
 *   RESTORE_<COW|COPY>_<MiB>     ticks a restore takes
 *   SNAP_PAUSE_RATIO_PERMILLE_<MiB>  cow pause / copy pause (--snap-sizes, default 64,128,256)
 *   IPI<d>  ticks for one fixed IPI between two CPUs (Bochs with 2 CPUs,
 *           the guest's smp suite) on d Nestor levels (--smp-depths, default 0,1,2,3)
 *   C<d>_smp, C<d>_smp_bsp  ticks per CPUID on the AP, and on the BSP, there
 *   UEFI_LINUX<d>   the same booted through UEFI (--uefi-depths, default 0,1,2):
 *                   OVMF's reset vector to init, nestor.efi per level
 *                   (docs/uefi.md), and UEFI_LINUX<d>_OVERHEAD_PERMILLE
 *   LINUX<d>_4CPU   LINUX<d> with 4 CPUs (--linux4-depths, default 0,1,3), and
 *                   LINUX<d>_4CPU_OVERHEAD_PERMILLE against depth 0
 *   LINUX<d>_4CPU_APICTIMER  the same with lapic=notscdeadline at every depth
 *                   (the timer Linux uses on bare Bochs), and its overhead
 *   KVM_CPUID<d>    ticks of one CPUID in a KVM guest, Linux and its KVM on d
 *                   Nestor levels (the guest kernel's bench suite run by
 *                   guest/linux/kvm-run.c; --kvm-depths, default 0,1,2)
 *   KVM_EPTFAULT<d> ticks of the first touch of a page in that KVM guest
 *   KVM_CPUID<d>_RATIO_PERMILLE  KVM_CPUID<d> / KVM_CPUID0, in 1/1000 (goal for
 *                   d = 1: 2000)
 *   NIC_RX<d>       busy ticks per packet Linux receives through Bochs' e1000
 *                   with its own e1000 driver, on d Nestor levels, the level right
 *                   below Linux checking the driver (drvcheck=00:03.0, BAR0
 *                   granted): --nic-kib KiB (default 16384) on one TCP connection
 *                   from the host (nestor-run --nic-flood); the ticks from the
 *                   first data to the last less those an idle soaker got, per
 *                   packet (guest/linux/nic-rx.c; --nic-depths, default 0,2);
 *                   NIC_RX<d>_OVERHEAD_PERMILLE against depth 0 (issue 14 goal:
 *                   <= 50), NIC_RX<d>_PACKETS the packets counted
 *
 * The transition model (tools/nestor-model.c) must predict every exit
 * figure and split it measures; any difference fails the benchmark, as does
 * a second run of the same stack printing different numbers.
 *
 * usage: bench [--cpu MODEL] [--depths LIST] [--noshadow-depths LIST]
 *              [--turtles-depths LIST] [--linux-depths LIST] [--uefi-depths LIST] [--linux4-depths LIST] [--smp-depths LIST]
 *              [--snap-sizes LIST] [--kvm-depths LIST] [--profile-depths LIST] [--kernel FILE] [--initrd FILE]
 *              [--nic-depths LIST] [--nic-kib N] [--build DIR]
 *
 *   --build DIR     the build directory (make's BUILD, default build): its
 *                   tools, images and archives are used, its runs/ and bench/
 *                   written.  bench names them build/...: with another DIR it
 *                   works in DIR/.bench, where build is a link to DIR.
 *   An empty LIST ('') leaves that part out.
 *
 *   PROF_<CPUID|IO><d>_<phase>  ticks level 0 spends per operation in one
 *                   phase of its nested transitions, at depth d (profiling
 *                   build: vmx/prof.h; table in results.md) */
#include "hypercall/abi.h"
#include "tools/util.h"
#include "vmx/exit_reasons.h"

#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_FIGS 128
#define MAX_SPLIT 64
#define MAX_RUNS 32
#define BOCHS_MEGS 256

struct figure {
	char name[32];
	long long value; /* signed: an overhead can be negative */
	char note[160];
};

struct split {
	unsigned k, from, reason;
	unsigned long long exits, ticks;
};

/* One operation measured in one run. */
struct op {
	unsigned long long ticks, exits;
	struct split split[MAX_SPLIT];
	int nsplit;
};

struct run {
	int depth;
	const char *variant; /* "", "_noshadow", "_turtles" */
	struct op cpuid, io, out80, rdmsr;
};

static struct figure figs[MAX_FIGS];
static int nfigs;
static struct run runs[MAX_RUNS];
static int nruns;
static int failures;

static void add(const char *name, long long v, const char *note)
{
	if (nfigs == MAX_FIGS)
		die("too many figures");
	snprintf(figs[nfigs].name, sizeof(figs[nfigs].name), "%s", name);
	figs[nfigs].value = v;
	snprintf(figs[nfigs].note, sizeof(figs[nfigs].note), "%s", note);
	nfigs++;
	printf("bench %s %lld\n", name, v);
	fflush(stdout);
}

static unsigned long long field(const char *line, const char *key)
{
	const char *p = strstr(line, key);
	if (!p)
		die("'%s' missing in: %.200s", key, line);
	return strtoull(p + strlen(key), NULL, 10);
}

/* The lines of one operation in a transcript: "bench.X: X ticks_per_op=..."
 * and "bench.X: X split taken_by=K running=L reason=R exits_per_op=N ...". */
static void parse_op(const char *t, const char *what, struct op *op, const char *path)
{
	char key[64];
	snprintf(key, sizeof(key), "bench.%s: %s ", what, what);
	memset(op, 0, sizeof(*op));
	bool found = false;
	for (const char *p = strstr(t, key); p; p = strstr(p + 1, key)) {
		const char *eol = strchr(p, '\n');
		char line[512];
		snprintf(line, sizeof(line), "%.*s", eol ? (int)(eol - p) : (int)strlen(p), p);
		if (strstr(line, " split ")) {
			if (op->nsplit == MAX_SPLIT)
				die("too many split lines in %s", path);
			if (field(line, " remainder="))
				die("%s: exits per op not constant: %s", path, line);
			struct split *s = &op->split[op->nsplit++];
			s->k = field(line, "taken_by="), s->from = field(line, "running=");
			s->reason = field(line, "reason="), s->exits = field(line, "exits_per_op=");
			s->ticks = field(line, "ticks_per_op=");
		} else {
			if (field(line, "exits_remainder="))
				die("%s: exits per op not constant: %s", path, line);
			op->ticks = field(line, "ticks_per_op="), op->exits = field(line, " exits_per_op=");
			found = true;
		}
	}
	if (!found)
		die("no %s measurement in %s", what, path);
}

static void run_stack(const char *cpu, int depth, const char *variant, const char *nestor_args, const char *name)
{
	char cmd[1024], path[256];
	snprintf(cmd, sizeof(cmd),
		 "build/tools/nestor-run --quiet --timeout 900 --megs %d --name %s --cpu %s "
		 "--nestor 'build/nestor.elf %s' --guest 'build/guest.elf suite=bench' --depth %d",
		 BOCHS_MEGS, name, cpu, nestor_args, depth);
	if (system(cmd) != 0)
		die("benchmark run at depth %d%s failed (see build/runs/%s)", depth, variant, name);
	snprintf(path, sizeof(path), "build/runs/%s/transcript.txt", name);
	char *t = read_file(path, NULL);
	if (!t)
		die("no transcript in %s", path);
	if (nruns == MAX_RUNS)
		die("too many runs");
	struct run *r = &runs[nruns++];
	r->depth = depth;
	r->variant = variant;
	parse_op(t, "cpuid", &r->cpuid, path);
	parse_op(t, "io", &r->io, path);
	parse_op(t, "out80", &r->out80, path);
	parse_op(t, "rdmsr", &r->rdmsr, path);
	free(t);
}

static void report_run(const struct run *r)
{
	char name[64], note[160];
	const char *how = !strcmp(r->variant, "_noshadow") ? ", no VMCS shadowing"
			  : !strcmp(r->variant, "_turtles") ? ", no VMX delegation"
							    : "";
	const struct {
		const char *prefix, *what;
		const struct op *op;
	} k[] = { { "", "CPUID", &r->cpuid }, { "IO", "intercepted port write", &r->io } };
	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "C%s%d%s", k[i].prefix, r->depth, r->variant);
		snprintf(note, sizeof(note), "ticks per %s round trip, guest at depth %d%s", k[i].what, r->depth, how);
		add(name, k[i].op->ticks, note);
		snprintf(name, sizeof(name), "E%s%d%s", k[i].prefix, r->depth, r->variant);
		snprintf(note, sizeof(note), "exits at level 0 per %s of a depth-%d guest%s", k[i].what, r->depth, how);
		add(name, k[i].op->exits, note);
	}
	/* Exits nobody wants do not happen (nested/bitmaps.c): a port or MSR
	 * no level intercepts costs level 0 no exit, at any depth of a stack
	 * of Nestors (docs/depth.md). */
	const struct {
		const char *prefix, *what;
		const struct op *op;
	} nobody[] = { { "PORTS", "writes of port 0x80", &r->out80 }, { "MSRS", "RDMSRs of IA32_SYSENTER_CS", &r->rdmsr } };
	for (int i = 0; i < 2; i++) {
		unsigned long long per1000 = nobody[i].op->exits * 1000ull;
		snprintf(name, sizeof(name), "%s%d%s", nobody[i].prefix, r->depth, r->variant);
		snprintf(note, sizeof(note), "exits at level 0 per 1 000 %s, which no level intercepts, by a depth-%d guest%s",
			 nobody[i].what, r->depth, how);
		add(name, (long long)per1000, note);
		if (per1000) {
			fprintf(stderr, "bench: %s is %llu, not 0: an access nobody intercepts exits\n", name, per1000);
			failures++;
		}
	}
}

/* --- the model --------------------------------------------------------- */

/* Runs the model for one figure and compares; returns 1 when it agrees. */
static int check_model(const struct run *r, const char *exit, const struct op *op, FILE *md)
{
	char cmd[256], line[512];
	const char *flag = !strcmp(r->variant, "_noshadow") ? "--noshadow" : !strcmp(r->variant, "_turtles") ? "--turtles" : "";
	snprintf(cmd, sizeof(cmd), "build/tools/nestor-model --depth %d --exit %s %s 2>&1", r->depth, exit, flag);
	FILE *p = popen(cmd, "r");
	if (!p)
		die("cannot run %s", cmd);
	long long predicted = -1;
	struct split s[MAX_SPLIT];
	int ns = 0;
	while (fgets(line, sizeof(line), p)) {
		if (!strncmp(line, "model split ", 12) && ns < MAX_SPLIT) {
			s[ns].k = field(line, "taken_by="), s[ns].from = field(line, "running=");
			s[ns].reason = field(line, "reason="), s[ns].exits = field(line, "exits=");
			ns++;
		} else if (!strncmp(line, "model E", 7)) {
			predicted = strtoll(strchr(line + 6, ' ') + 1, NULL, 10);
		}
	}
	int status = pclose(p);
	char fig[48];
	snprintf(fig, sizeof(fig), "E%s%d%s", !strcmp(exit, "io") ? "IO" : "", r->depth, r->variant);
	if (status != 0 || predicted < 0) {
		/* Outside what the model covers (e.g. Turtles beyond depth 2). */
		fprintf(md, "| %s | %llu | not modelled | |\n", fig, op->exits);
		return -1;
	}
	bool same = (unsigned long long)predicted == op->exits && ns == op->nsplit;
	for (int i = 0; same && i < ns; i++) {
		bool found = false;
		for (int j = 0; j < op->nsplit; j++)
			found |= s[i].k == op->split[j].k && s[i].from == op->split[j].from &&
				 s[i].reason == op->split[j].reason && s[i].exits == op->split[j].exits;
		same = found;
	}
	fprintf(md, "| %s | %llu | %lld | %s |\n", fig, op->exits, predicted, same ? "equal" : "**DIFFERENT**");
	if (!same)
		fprintf(stderr, "bench: the model disagrees with the measurement of %s (split included): run '%s'\n",
			fig, cmd);
	return same;
}

/* --- the model's ticks (issue 16) -------------------------------------- */

static const struct run *find_run(int depth, const char *variant);

/* The ticks of one split of a run: level k's window for exits of level
 * `from` with that reason (-1 when the run has no such split). */
static long long split_ticks(const struct op *op, unsigned k, unsigned from, unsigned reason)
{
	for (int i = 0; i < op->nsplit; i++)
		if (op->split[i].k == k && op->split[i].from == from && op->split[i].reason == reason)
			return (long long)op->split[i].ticks;
	return -1;
}

/* The model's costs (tools/nestor-model.c, --costs), measured at depths 0
 * to 3: what each kind of transition costs, from the windows Nestor counts
 * per level and exit reason; the round trip and the entry stub from the
 * totals.  Depths 4 to 8 are then predicted, not measured into the model.
 * False when a depth is missing. */
static bool calibrate(const struct run *d0, const char *path, FILE *md)
{
	const struct run *d1 = find_run(1, ""), *d2 = find_run(2, ""), *d3 = find_run(3, "");
	if (!d0 || !d1 || !d2 || !d3)
		return false;
	/* The windows Nestor counts (level, running level, exit reason). */
	long long guest = (long long)d0->cpuid.ticks, native_cpuid = split_ticks(&d1->cpuid, 0, 1, 10),
		  native_io = split_ticks(&d1->io, 0, 1, 30), reflect_l1 = split_ticks(&d2->cpuid, 0, 2, 10),
		  vmresume_l1 = split_ticks(&d2->cpuid, 0, 1, 24), handler = split_ticks(&d2->cpuid, 1, 2, 10),
		  l1_io_window = split_ticks(&d2->io, 1, 2, 30);
	/* C1 = guest + hw + native; C2 = guest + hw + reflect + stub + handler
	 * + hw + vmresume; level 1's I/O window holds its OUT's exit. */
	long long hw = (long long)d1->cpuid.ticks - guest - native_cpuid;
	struct {
		const char *name;
		long long v;
	} c[] = {
		{ "guest_cpuid", guest },
		{ "guest_io", (long long)d0->io.ticks },
		{ "native_cpuid", native_cpuid },
		{ "native_io", native_io },
		{ "reflect_cpuid_l1", reflect_l1 },
		{ "reflect_io_l1", split_ticks(&d2->io, 0, 2, 30) },
		{ "vmresume_l1", vmresume_l1 },
		{ "reflect_cpuid_up", split_ticks(&d3->cpuid, 0, 3, 10) },
		{ "reflect_io_up", split_ticks(&d3->io, 0, 3, 30) },
		{ "vmresume_up", split_ticks(&d3->cpuid, 0, 2, 24) },
		{ "handler_cpuid", handler },
		{ "hw", hw },
		{ "handler_io", l1_io_window - hw - native_io },
		{ "stub", (long long)d2->cpuid.ticks - guest - 2 * hw - reflect_l1 - handler - vmresume_l1 },
	};
	enum { NC = sizeof(c) / sizeof(c[0]) };
	if (native_cpuid < 0 || native_io < 0 || reflect_l1 < 0 || vmresume_l1 < 0 || handler < 0 || l1_io_window < 0)
		die("calibrate: a split missing in the depth 1-2 runs");
	for (int i = 0; i < NC; i++)
		if (c[i].v < 0)
			die("calibrate: no %s split in the depth 1-3 runs", c[i].name);
	FILE *f = fopen(path, "w");
	if (!f)
		die("cannot write %s", path);
	fprintf(f, "# tools/nestor-model --costs: measured by make bench at depths 0-3\n");
	fprintf(md, "\n## The model's costs (ticks, measured at depths 0-3; `%s`)\n\n| Cost | Ticks |\n|---|---:|\n", path);
	for (int i = 0; i < NC; i++) {
		fprintf(f, "cost %s %lld\n", c[i].name, c[i].v);
		fprintf(md, "| %s | %lld |\n", c[i].name, c[i].v);
	}
	fclose(f);
	return true;
}

/* The model's ticks for one figure against the measurement: 1 within 5 %,
 * 0 beyond (a failure), -1 not predicted. */
static int check_ticks(const struct run *r, const char *exit, const struct op *op, const char *costs, FILE *md,
		       long long *worst)
{
	if (r->variant[0])
		return -1;
	char cmd[512], line[256];
	snprintf(cmd, sizeof(cmd), "build/tools/nestor-model --depth %d --exit %s --costs %s 2>&1", r->depth, exit, costs);
	FILE *p = popen(cmd, "r");
	if (!p)
		die("cannot run %s", cmd);
	long long predicted = -1;
	while (fgets(line, sizeof(line), p))
		if (!strncmp(line, "model T", 7))
			predicted = strtoll(strchr(line + 6, ' ') + 1, NULL, 10);
	if (pclose(p) != 0 || predicted < 0)
		die("the model gave no ticks: %s", cmd);
	char fig[48], name[64], note[160];
	bool io = !strcmp(exit, "io");
	snprintf(fig, sizeof(fig), "C%s%d", io ? "IO" : "", r->depth);
	long long meas = (long long)op->ticks, err = (predicted - meas) * 1000 / meas;
	snprintf(name, sizeof(name), "MODEL_%s", fig);
	snprintf(note, sizeof(note), "ticks the model predicts for %s (measured %lld, error %lld permille)", fig, meas, err);
	add(name, predicted, note);
	fprintf(md, "| %s | %lld | %lld | %+lld |\n", fig, meas, predicted, err);
	if (llabs(err) > llabs(*worst))
		*worst = err;
	if (llabs(predicted - meas) * 100 > 5 * meas) {
		fprintf(stderr, "bench: the model predicts %lld ticks for %s, measured %lld: beyond 5 %% (run '%s')\n",
			predicted, fig, meas, cmd);
		return 0;
	}
	return 1;
}

/* --- memory ------------------------------------------------------------- */

/* Each Nestor prints "nestor[K]: footprint: image X KiB, pool Y KiB
 * reserved, Z KiB used (peak P KiB): ..." at the end of the run. */
static void report_memory(int depth, FILE *md)
{
	char path[256];
	snprintf(path, sizeof(path), "build/runs/bench-d%d/serial.txt", depth);
	char *t = read_file(path, NULL);
	if (!t)
		die("no serial log %s", path);
	unsigned long long used = 0, reserved = 0;
	int levels = 0;
	fprintf(md, "\n## Memory of a stack of %d Nestors (Bochs RAM %d MiB)\n\n", depth, BOCHS_MEGS);
	fprintf(md, "| Level | Image KiB | Pool reserved KiB | Pool peak KiB | Detail |\n|---:|---:|---:|---:|---|\n");
	for (const char *p = strstr(t, "footprint: "); p; p = strstr(p + 1, "footprint: ")) {
		const char *eol = strchr(p, '\n'), *lvl = p;
		while (lvl > t && lvl[-1] != '\n')
			lvl--;
		char line[600];
		snprintf(line, sizeof(line), "%.*s", eol ? (int)(eol - p) : (int)strlen(p), p);
		unsigned long long image = field(line, "image "), pool = field(line, "pool "), peak = field(line, "(peak ");
		const char *detail = strstr(line, "): ");
		fprintf(md, "| %llu | %llu | %llu | %llu | %s |\n", strtoull(lvl + 7, NULL, 10), image, pool, peak,
			detail ? detail + 3 : "");
		used += image + peak;
		reserved += image + pool;
		levels++;
	}
	free(t);
	if (levels != depth)
		die("%s: %d footprint lines for %d levels", path, levels, depth);
	char name[32], note[160];
	snprintf(name, sizeof(name), "MEM_USED_%d", depth);
	snprintf(note, sizeof(note), "KiB used by %d Nestors (images and peak pool use)", depth);
	add(name, used, note);
	snprintf(name, sizeof(name), "MEM_RESERVED_%d", depth);
	snprintf(note, sizeof(note), "KiB %d Nestors set aside (images and pools, mem=16M each)", depth);
	add(name, reserved, note);
	snprintf(name, sizeof(name), "BOCHS_RAM_%d", depth);
	snprintf(note, sizeof(note), "MiB of RAM the harness gives Bochs for %d Nestors and the guest", depth);
	add(name, BOCHS_MEGS, note);
}

/* --- Linux --------------------------------------------------------------- */

#define MAX_LINUX 16
#define LINUX_JOBS 2 /* Linux runs at a time (one Bochs per core) */

static long long linux_ticks[MAX_LINUX];

/* The runs with several CPUs: Linux's own choices, or (variant "_APICTIMER")
 * the local APIC timer at every depth - the timer it uses on bare Bochs,
 * where it turns the TSC-deadline timer off, but takes under any hypervisor
 * (docs/smp.md): the same guest at every depth. */
static const char *linux4_variant = "", *linux4_extra = "";
/* The one-CPU Linux runs through UEFI (--uefi-depths): OVMF, its shell
 * starting nestor.efi per level, Linux's EFI stub (docs/uefi.md). */
static bool linux_uefi;
static long long uefi_ticks[MAX_LINUX];

/* Runs a shell command line in the background; its pid. */
static pid_t spawn_sh(const char *cmd)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* The depths of a list option ("0,1,3"), at most MAX_LINUX, each below it,
 * the first 0 (the reference of the overheads and ratios); how many. */
static int parse_depths(const char *list, const char *opt, int depths[MAX_LINUX])
{
	int n = 0;
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s", list);
	for (char *d = strtok(tmp, ","); d; d = strtok(NULL, ",")) {
		int depth = atoi(d);
		if (n == MAX_LINUX || depth < 0 || depth >= MAX_LINUX)
			die("%s: at most %d depths, each 0..%d", opt, MAX_LINUX, MAX_LINUX - 1);
		depths[n++] = depth;
	}
	if (n && depths[0] != 0)
		die("%s must start with 0, the reference the overheads are measured against", opt);
	return n;
}

/* Starts the Linux run at `depth` in the background; its pid. */
/* Linux with `cpus` CPUs (run bench-linux-d<depth>, or bench-linux<cpus>-d<depth>;
 * idle=halt with several: docs/smp.md). */
static pid_t start_linux(const char *cpu, int depth, const char *kernel, const char *initrd, int cpus)
{
	char cmd[2048], name[64];
	if (cpus > 1)
		snprintf(name, sizeof(name), "bench-linux%d%s-d%d", cpus, linux4_variant, depth);
	else
		snprintf(name, sizeof(name), "bench-%slinux-d%d", linux_uefi ? "uefi-" : "", depth);
	snprintf(cmd, sizeof(cmd),
		 "build/tools/nestor-run --quiet --timeout 1800 --megs 512 --name %s --cpu %s --cpus %d --linux%s "
		 "--guest '%s console=ttyS0,115200 quiet%s%s' --module '%s' --depth %d",
		 name, cpu, cpus, linux_uefi ? " --firmware uefi" : "", kernel, cpus > 1 ? " idle=halt" : "",
		 cpus > 1 ? linux4_extra : "", initrd, depth);
	return spawn_sh(cmd);
}

/* Reads the finished run at `depth`: its init prints the TSC when it starts
 * ("env: linux: init reached at tick N"), every Nestor its exits at the end. */
static void report_linux(int depth, FILE *md)
{
	char path[256], name[64], note[200];
	const char *fig = linux_uefi ? "UEFI_LINUX" : "LINUX";
	long long *base = linux_uefi ? uefi_ticks : linux_ticks;
	snprintf(path, sizeof(path), "build/runs/bench-%slinux-d%d/serial.txt", linux_uefi ? "uefi-" : "", depth);
	char *t = read_file(path, NULL);
	if (!t)
		die("no serial log %s", path);
	const char *p = strstr(t, "env: linux: init reached at tick ");
	if (!p)
		die("%s: the init script did not report its start", path);
	long long ticks = strtoll(p + 33, NULL, 10);
	base[depth] = ticks;
	snprintf(name, sizeof(name), "%s%d", fig, depth);
	snprintf(note, sizeof(note), "ticks from power-on (%s) to Linux's init script on %d Nestor levels",
		 linux_uefi ? "OVMF, its shell, nestor.efi per level, the EFI stub" : "BIOS, GRUB", depth);
	add(name, ticks, note);
	bool vs0 = depth > 0 && base[0];
	if (vs0) {
		snprintf(name, sizeof(name), "%s%d_OVERHEAD_PERMILLE", fig, depth);
		snprintf(note, sizeof(note), "(%s%d - %s0) / %s0, in thousandths (negative: faster)", fig, depth, fig, fig);
		add(name, (ticks - base[0]) * 1000 / base[0], note);
	}
	fprintf(md, "| %d | %lld |", depth, ticks);
	if (vs0)
		fprintf(md, " %+.2f %% |", 100.0 * (double)(ticks - base[0]) / (double)base[0]);
	else
		fprintf(md, " |");
	/* "nestor[K]: exit statistics: N exits", one per level, at the end. */
	for (const char *q = strstr(t, "]: exit statistics: "); q; q = strstr(q + 1, "]: exit statistics: ")) {
		const char *lvl = q;
		while (lvl > t && lvl[-1] != '[')
			lvl--;
		unsigned k = (unsigned)strtoul(lvl, NULL, 10);
		long long exits = strtoll(q + 20, NULL, 10);
		snprintf(name, sizeof(name), "%s%d_EXITS_L%u", fig, depth, k);
		snprintf(note, sizeof(note), "exits level %u took during the whole Linux run on %d levels", k, depth);
		add(name, exits, note);
		fprintf(md, " L%u: %lld", k, exits);
	}
	fprintf(md, " |\n");
	free(t);
}

/* Linux with 4 CPUs at `depth`, finished: LINUX<d>_4CPU and its overhead
 * over depth 0. */
static long long linux4_ticks[MAX_LINUX];

static void report_linux4(int depth, FILE *md)
{
	char path[256], name[64], note[160];
	snprintf(path, sizeof(path), "build/runs/bench-linux4%s-d%d/serial.txt", linux4_variant, depth);
	char *t = read_file(path, NULL);
	const char *p = t ? strstr(t, "env: linux: init reached at tick ") : NULL;
	if (!p)
		die("%s: the init script did not report its start", path);
	long long ticks = linux4_ticks[depth] = strtoll(p + 33, NULL, 10);
	free(t);
	snprintf(name, sizeof(name), "LINUX%d_4CPU%s", depth, linux4_variant);
	snprintf(note, sizeof(note), "ticks from power-on to the init script of Linux with 4 CPUs on %d levels%s", depth,
		 linux4_extra);
	add(name, ticks, note);
	fprintf(md, "| %d | %lld |", depth, ticks);
	if (depth > 0 && linux4_ticks[0]) {
		long long permille = (ticks - linux4_ticks[0]) * 1000 / linux4_ticks[0];
		snprintf(name, sizeof(name), "LINUX%d_4CPU%s_OVERHEAD_PERMILLE", depth, linux4_variant);
		add(name, permille, "(LINUX<d>_4CPU - LINUX0_4CPU) / LINUX0_4CPU in thousandths (goal at depth 3: <= 100)");
		fprintf(md, " %+.2f %% |\n", 100.0 * (double)(ticks - linux4_ticks[0]) / (double)linux4_ticks[0]);
	} else {
		fprintf(md, " |\n");
	}
}

/* Every depth of the list (option opt, starting with 0) with `cpus` CPUs,
 * LINUX_JOBS runs at a time, reported in order. */
static void run_linux(const char *cpu, const char *list, const char *opt, int cpus, const char *kernel,
		      const char *initrd, FILE *md)
{
	int depths[MAX_LINUX];
	pid_t pids[MAX_LINUX];
	int n = parse_depths(list, opt, depths);
	int started = 0;
	for (int done = 0; done < n; done++) {
		while (started < n && started < done + LINUX_JOBS) {
			pids[started] = start_linux(cpu, depths[started], kernel, initrd, cpus);
			started++;
		}
		int status;
		if (waitpid(pids[done], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			die("Linux run with %d CPU(s) at depth %d failed (see build/runs/%s-d%d)", cpus, depths[done],
			    cpus > 1 ? "bench-linux4<variant>" : "bench-linux", depths[done]);
		if (cpus > 1)
			report_linux4(depths[done], md);
		else
			report_linux(depths[done], md);
	}
}

/* --- snapshots ------------------------------------------------------------ */

/* The number after "env: bench_snap.<method>: <method>: <what> " in t. */
static long long snap_figure(const char *t, const char *method, const char *what, const char *path)
{
	char key[128];
	snprintf(key, sizeof(key), "env: bench_snap.%s: %s: %s ", method, method, what);
	const char *p = strstr(t, key);
	if (!p)
		die("%s: no '%s' line", path, key);
	return strtoll(p + strlen(key), NULL, 10);
}

/* Runs a nestor-run command line whose run is build/runs/<name>; its
 * serial log (the caller frees it), or the benchmark ends saying what. */
static char *run_for_log(const char *cmd, const char *name, const char *what)
{
	char path[256];
	if (system(cmd) != 0)
		die("%s failed (see build/runs/%s)", what, name);
	snprintf(path, sizeof(path), "build/runs/%s/serial.txt", name);
	char *t = read_file(path, NULL);
	if (!t)
		die("no serial log %s", path);
	return t;
}

/* Two CPUs, the guest kernel's smp suite at each depth: what one fixed IPI
 * costs from cpu0's ICR write to cpu1's handler (guest/tests/smp.c). */
static void run_smp(const char *cpu, const char *list, FILE *md)
{
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s", list);
	fprintf(md, "\n## Two CPUs\n\nTicks for one IPI, cpu0's ICR write to cpu1's handler seen by cpu0, and "
		    "for one CPUID on each CPU (`smp.ipi`).\n\n| Depth | IPI | CPUID on the AP | CPUID on the BSP |\n"
		    "|---:|---:|---:|---:|\n");
	for (char *d = strtok(tmp, ","); d; d = strtok(NULL, ",")) {
		int depth = atoi(d);
		char cmd[512], path[64], name[32], note[128];
		snprintf(path, sizeof(path), "bench-smp-d%d", depth);
		snprintf(cmd, sizeof(cmd),
			 "build/tools/nestor-run --quiet --timeout 600 --cpus 2 --name %s --cpu %s "
			 "--guest 'build/guest.elf suite=smp' --depth %d",
			 path, cpu, depth);
		char *t = run_for_log(cmd, path, "the SMP run");
		const char *key = "bench.ipi: ipi ticks_per_op=", *p = strstr(t, key);
		if (!p)
			die("no IPI measurement in %s", path);
		long long ticks = strtoll(p + strlen(key), NULL, 10);
		snprintf(name, sizeof(name), "IPI%d", depth);
		snprintf(note, sizeof(note), "ticks for one IPI between two CPUs at depth %d", depth);
		add(name, ticks, note);
		const char *ck = "bench.cpuid_smp: ap ticks_per_op=", *c = strstr(t, ck), *b = c ? strstr(c, "bsp ticks_per_op=") : NULL;
		if (!b)
			die("no CPUID measurement in %s", path);
		long long ap = strtoll(c + strlen(ck), NULL, 10), bsp = strtoll(b + 17, NULL, 10);
		snprintf(name, sizeof(name), "C%d_smp", depth);
		snprintf(note, sizeof(note), "ticks per CPUID on an AP of a 2-CPU guest at depth %d", depth);
		add(name, ap, note);
		snprintf(name, sizeof(name), "C%d_smp_bsp", depth);
		snprintf(note, sizeof(note), "the same on its BSP (goal: C%d_smp equal)", depth);
		add(name, bsp, note);
		fprintf(md, "| %d | %lld | %lld | %lld |\n", depth, ticks, ap, bsp);
		free(t);
	}
}

/* A guest of `mib` MiB (RAM beside Nestor's, give or take its image) with
 * a pool that holds one full copy: both methods, snapshot, a tenth of
 * memory written, restore (guest/tests/snapshot.c, suite bench_snap). */
static void run_snapshots(const char *cpu, int mib, FILE *md)
{
	char cmd[1024], path[64], name[64], note[200];
	int pool = mib + 8, megs = 16 + pool + mib + 2;
	snprintf(path, sizeof(path), "bench-snap-%d", mib);
	snprintf(cmd, sizeof(cmd),
		 "build/tools/nestor-run --quiet --timeout 900 --megs %d --name %s --cpu %s "
		 "--nestor 'build/nestor.elf snap_pool=%dM' --guest 'build/guest.elf suite=bench_snap' --depth 1",
		 megs, path, cpu, pool);
	char *t = run_for_log(cmd, path, "the snapshot benchmark");
	static const char *const methods[] = { "cow", "copy" };
	long long pause[2];
	fprintf(md, "| %d |", mib);
	for (int m = 0; m < 2; m++) {
		const char *M = m ? "COPY" : "COW";
		pause[m] = snap_figure(t, methods[m], "pause", path);
		long long pages = snap_figure(t, methods[m], "pages written", path);
		/* "... pages written N, pool pages M" */
		char key[96];
		snprintf(key, sizeof(key), "env: bench_snap.%s: %s: pages written ", methods[m], methods[m]);
		const char *line = strstr(t, key), *pp = line ? strstr(line, ", pool pages ") : NULL;
		if (!pp)
			die("%s: no pool pages on the '%s' line", path, key);
		long long held = strtoll(pp + 13, NULL, 10);
		long long restore = snap_figure(t, methods[m], "restore", path);
		snprintf(name, sizeof(name), "SNAP_PAUSE_%s_%d", M, mib);
		snprintf(note, sizeof(note), "ticks the guest is stopped taking a %s snapshot of %d MiB", methods[m], mib);
		add(name, pause[m], note);
		snprintf(name, sizeof(name), "SNAP_MEM_%s_%d", M, mib);
		snprintf(note, sizeof(note), "pool pages the %s snapshot holds after the guest wrote %lld pages (10%%)",
			 methods[m], pages);
		add(name, held, note);
		snprintf(name, sizeof(name), "RESTORE_%s_%d", M, mib);
		snprintf(note, sizeof(note), "ticks from the restore call to the guest running at its snapshot (%s)",
			 methods[m]);
		add(name, restore, note);
		fprintf(md, " %lld / %lld / %lld |", pause[m], held, restore);
	}
	long long permille = pause[1] ? pause[0] * 1000 / pause[1] : -1;
	snprintf(name, sizeof(name), "SNAP_PAUSE_RATIO_PERMILLE_%d", mib);
	add(name, permille, "copy-on-write pause / full-copy pause, in thousandths (goal at 256 MiB: <= 10)");
	fprintf(md, " %.2f %% |\n", pause[1] ? 100.0 * (double)pause[0] / (double)pause[1] : 0.0);
	free(t);
}

/* --- plot and graphs ---------------------------------------------------- */

static const struct run *find_run(int depth, const char *variant)
{
	for (int i = 0; i < nruns; i++)
		if (runs[i].depth == depth && !strcmp(runs[i].variant, variant))
			return &runs[i];
	return NULL;
}

static void plot(void)
{
	FILE *f = fopen("build/bench/costs.dat", "w");
	if (!f)
		die("cannot write build/bench/costs.dat");
	fprintf(f, "# depth E C EIO CIO E_turtles C_turtles (1 tick = 1 emulated instruction)\n");
	for (int n = 1; n <= 16; n++) {
		const struct run *r = find_run(n, ""), *t = find_run(n, "_turtles");
		if (!r)
			continue;
		if (!t && n == 1)
			t = r; /* depth 1 has no Nestor above level 0 to delegate: the same stack */
		fprintf(f, "%d %llu %llu %llu %llu ", n, r->cpuid.exits, r->cpuid.ticks, r->io.exits, r->io.ticks);
		if (t)
			fprintf(f, "%llu %llu\n", t->cpuid.exits, t->cpuid.ticks);
		else
			fprintf(f, "NaN NaN\n");
	}
	fclose(f);
	static const char script[] =
		"set terminal svg size 900,420 dynamic font 'sans,11'\n"
		"set output 'build/bench/costs.svg'\n"
		"set multiplot layout 1,2 title 'Nestor on Bochs: cost of one guest operation against the depth'\n"
		"set xlabel 'depth n (Nestor levels under the guest)'\n"
		"set key top left\nset grid\nset xtics 1\n"
		"set ylabel 'VM exits taken by level 0 per operation'\nset logscale y\n"
		"plot 'build/bench/costs.dat' u 1:2 w lp t 'CPUID (E)', '' u 1:4 w lp t 'port write (EIO)', "
		"'' u 1:6 w lp t 'CPUID, no delegation'\n"
		"set ylabel 'ticks (emulated instructions) per operation'\n"
		"plot 'build/bench/costs.dat' u 1:3 w lp t 'CPUID (C)', '' u 1:5 w lp t 'port write (CIO)', "
		"'' u 1:7 w lp t 'CPUID, no delegation'\n"
		"unset multiplot\n";
	write_file("build/bench/costs.gp", script, sizeof(script) - 1);
	if (system("gnuplot build/bench/costs.gp") != 0)
		die("gnuplot failed (scripts/setup installs it)");
	printf("wrote build/bench/costs.svg\n");
}

static void trace_graphs(int max_depth)
{
	for (int n = 1; n <= max_depth; n++) {
		static const char *const exits[] = { "cpuid", "io" };
		for (int i = 0; i < 2; i++) {
			char cmd[512];
			snprintf(cmd, sizeof(cmd),
				 "build/tools/nestor-model --depth %d --exit %s --dot build/bench/trace-%s-%d.dot >/dev/null && "
				 "dot -Tsvg -o build/bench/trace-%s-%d.svg build/bench/trace-%s-%d.dot",
				 n, exits[i], exits[i], n, exits[i], n, exits[i], n);
			if (system(cmd) != 0)
				die("cannot draw the trace graph (%s)", cmd);
		}
	}
	printf("wrote build/bench/trace-{cpuid,io}-{1..%d}.svg\n", max_depth);
}

/* --- where level 0's ticks go --------------------------------------------
 * The profiling build (build/prof/nestor.elf, vmx/prof.h) splits the ticks
 * level 0 spends in nested transitions into phases; the guest's bench suite
 * prints them per operation ("cpuid profile phase=P passes_per_op=N
 * ticks_per_op=T").  The figures of the normal build stay the ones above:
 * the marks cost ticks themselves. */
static const char *const prof_phases[NESTOR_PROF_PHASES] = NESTOR_PROF_PHASE_NAMES;
#define NPROF NESTOR_PROF_PHASES

static long long prof_value(const char *t, const char *op, const char *phase)
{
	char key[96];
	snprintf(key, sizeof(key), "%s profile phase=%s ", op, phase);
	const char *p = strstr(t, key);
	if (!p)
		return 0; /* a phase the operation does not go through */
	return (long long)field(p, "ticks_per_op=");
}

static void run_profile(const char *cpu, const char *list, FILE *md)
{
	fprintf(md, "\n## Where level 0's ticks go in a nested transition (profiling build, `make prof`)\n\n"
		    "Ticks per operation in each phase (vmx/prof.h): route = from the exit to the decision; "
		    "save12 = L2's state and the exit information into VMCS12; load_host = VMCS12's host state into "
		    "the VMCS that runs L1; shadow_out / shadow_in = VMCS12 to and from L1's shadow VMCS; checks = "
		    "the entry's software checks; vmcs02 = VMCS12 into the VMCS that runs L2; enter = the rest of "
		    "the emulated entry; tail = signals, counters, the choice of the VMCS to enter. The hardware "
		    "round trips and the handlers of the levels above are not in it.\n\n"
		    "| Depth | Operation |");
	for (unsigned p = 0; p < NPROF; p++)
		fprintf(md, " %s |", prof_phases[p]);
	fprintf(md, " sum |\n|---:|---|");
	for (unsigned p = 0; p <= NPROF; p++)
		fprintf(md, "---:|");
	fprintf(md, "\n");
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s", list);
	for (char *d = strtok(tmp, ","); d; d = strtok(NULL, ",")) {
		char cmd[1024], name[64], path[256];
		snprintf(name, sizeof(name), "bench-prof-d%d", atoi(d));
		snprintf(cmd, sizeof(cmd),
			 "build/tools/nestor-run --quiet --timeout 900 --megs %d --name %s --cpu %s "
			 "--nestor build/prof/nestor.elf --guest 'build/guest.elf suite=bench.cpuid,bench.io' --depth %d",
			 BOCHS_MEGS, name, cpu, atoi(d));
		if (system(cmd) != 0)
			die("profiling run at depth %d failed (see build/runs/%s)", atoi(d), name);
		snprintf(path, sizeof(path), "build/runs/%s/transcript.txt", name);
		char *t = read_file(path, NULL);
		if (!t)
			die("no transcript in %s", path);
		static const char *const ops[2] = { "cpuid", "io" };
		for (int o = 0; o < 2; o++) {
			long long sum = 0;
			fprintf(md, "| %d | %s |", atoi(d), o ? "port write" : "CPUID");
			for (unsigned p = 0; p < NPROF; p++) {
				long long v = prof_value(t, ops[o], prof_phases[p]);
				sum += v;
				fprintf(md, " %lld |", v);
				printf("bench PROF_%s%d_%s %lld\n", o ? "IO" : "CPUID", atoi(d), prof_phases[p], v);
			}
			fprintf(md, " %lld |\n", sum);
			if (!sum)
				die("no profile in %s: is build/prof/nestor.elf a profiling build?", path);
		}
		free(t);
	}
}

/* --- main --------------------------------------------------------------- */

static void split_table(FILE *md)
{
	fprintf(md, "\n## Which level takes which exits, per operation\n\n"
		    "Level 0 takes every hardware exit; a level above counts the exits of its guest it handles.\n\n"
		    "| Depth | Operation | Taken by level | Level running | Reason | Exits per op |\n"
		    "|---:|---|---:|---:|---|---:|\n");
	for (int i = 0; i < nruns; i++) {
		const struct op *ops[2] = { &runs[i].cpuid, &runs[i].io };
		for (int o = 0; o < 2; o++)
			for (int j = 0; j < ops[o]->nsplit; j++) {
				const struct split *s = &ops[o]->split[j];
				const char *rn = s->reason < EXIT_REASON_NAMES_MAX && exit_reason_names[s->reason]
							 ? exit_reason_names[s->reason]
							 : "?";
				fprintf(md, "| %d%s | %s | %u | %u | %u %s | %llu |\n", runs[i].depth, runs[i].variant,
					o ? "port write" : "CPUID", s->k, s->from, s->reason, rn, s->exits);
			}
	}
}

/* Linux with the kernel's KVM modules (build/linux/kvm-suites.cpio) on d
 * Nestor levels runs the guest kernel's bench.cpuid and bench.first_touch
 * as its KVM guest (guest/linux/kvm-run.c); the KVM guest's lines reach the
 * serial log.  LINUX_JOBS runs at a time. */
static void run_kvm(const char *cpu, const char *list, const char *kernel, FILE *md)
{
	const char *initrd = "build/linux/kvm-suites.cpio";
	if (access(kernel, R_OK) || access(initrd, R_OK))
		die("no Linux kernel (%s) or KVM initramfs (%s): run scripts/setup and make build/linux/kvm-suites.cpio",
		    kernel, initrd);
	int depths[MAX_LINUX];
	pid_t pids[MAX_LINUX];
	int n = parse_depths(list, "--kvm-depths", depths);
	int started = 0;
	for (int done = 0; done < n; done++) {
		while (started < n && started < done + LINUX_JOBS) {
			char cmd[1024];
			snprintf(cmd, sizeof(cmd),
				 "build/tools/nestor-run --quiet --timeout 2400 --megs 512 --name bench-kvm-d%d --cpu %s "
				 "--linux --guest '%s console=ttyS0,115200 quiet idle=halt "
				 "kvm_suite=bench.cpuid,bench.first_touch' --module '%s' --depth %d",
				 depths[started], cpu, kernel, initrd, depths[started]);
			pids[started] = spawn_sh(cmd);
			started++;
		}
		int status;
		if (waitpid(pids[done], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			die("the KVM run at depth %d failed (see build/runs/bench-kvm-d%d)", depths[done], depths[done]);
	}
	fprintf(md, "\n## Linux's KVM on a stack of Nestors\n\nTicks in the KVM guest (the guest kernel's bench "
		    "suite run by `kvm-run`); depth = Nestor levels under Linux.\n\n| Depth | CPUID | first touch "
		    "of a page | CPUID / depth 0 |\n|---:|---:|---:|---:|\n");
	long long cpuid0 = 0;
	for (int i = 0; i < n; i++) {
		char path[64], name[48], note[160];
		snprintf(path, sizeof(path), "build/runs/bench-kvm-d%d/serial.txt", depths[i]);
		char *t = read_file(path, NULL);
		if (!t)
			die("no serial log %s", path);
		const char *ck = "bench.cpuid: cpuid ticks_per_op=", *fk = "bench.first_touch: first_touch ticks_per_op=";
		const char *c = strstr(t, ck), *f = strstr(t, fk);
		if (!c || !f)
			die("%s: the KVM guest did not report its measurements", path);
		long long cpuid = strtoll(c + strlen(ck), NULL, 10), touch = strtoll(f + strlen(fk), NULL, 10);
		snprintf(name, sizeof(name), "KVM_CPUID%d", depths[i]);
		snprintf(note, sizeof(note), "ticks per CPUID in a KVM guest, Linux/KVM on %d Nestor level(s)", depths[i]);
		add(name, cpuid, note);
		snprintf(name, sizeof(name), "KVM_EPTFAULT%d", depths[i]);
		snprintf(note, sizeof(note), "ticks of a first touch of a page in that KVM guest (an EPT violation KVM handles)");
		add(name, touch, note);
		if (depths[i] == 0)
			cpuid0 = cpuid;
		long long ratio = cpuid0 ? cpuid * 1000 / cpuid0 : 0;
		if (depths[i] > 0 && cpuid0) {
			snprintf(name, sizeof(name), "KVM_CPUID%d_RATIO_PERMILLE", depths[i]);
			snprintf(note, sizeof(note), "KVM_CPUID%d / KVM_CPUID0 in 1/1000 (issue 13 goal for depth 1: <= 2000)",
				 depths[i]);
			add(name, ratio, note);
		}
		char rel[32] = "-";
		if (depths[i] && cpuid0)
			snprintf(rel, sizeof(rel), "%lld.%03lld", ratio / 1000, ratio % 1000);
		fprintf(md, "| %d | %lld | %lld | %s |\n", depths[i], cpuid, touch, rel);
		free(t);
	}
}

/* Linux with the NIC archive (build/linux/net.cpio) at each depth of the
 * list, one run at a time: its e1000 brought up by Linux's driver (checked
 * by the level right below Linux, which must grant BAR0), then `kib` KiB
 * from the host on one TCP connection (nestor-run --nic-flood); nic-rx
 * prints "env: nic-rx: N packets, T ticks, P ticks per packet, I ticks
 * idle, B busy ticks per packet" and B is the figure. */
static void run_nic(const char *cpu, const char *list, int kib, const char *kernel, FILE *md)
{
	const char *initrd = "build/linux/initramfs.cpio", *net = "build/linux/net.cpio";
	if (access(kernel, R_OK) || access(initrd, R_OK) || access(net, R_OK))
		die("no Linux kernel (%s) or initramfs (%s, %s): run scripts/setup and make build/linux/net.cpio", kernel,
		    initrd, net);
	int depths[MAX_LINUX];
	int n = parse_depths(list, "--nic-depths", depths);
	fprintf(md, "\n## Receiving through Bochs' e1000 (Linux's e1000 driver, the driver check granted)\n\n"
		    "%d KiB from the host on one TCP connection (slirp, 127.0.0.1); ticks from the first data "
		    "to the last in Linux, the ticks a SCHED_IDLE soaker got meanwhile (the CPU waiting for the network), "
		    "and the packets eth0 received; NIC_RX = busy ticks per packet = (ticks - idle) / packets "
		    "(guest/linux/nic-rx.c). At depth d the Nestor at level d-1 runs `drvcheck=00:03.0`; every "
		    "Nestor hides the hypervisor bit (`hypervisor_bit=off`: Linux makes the choices it makes on "
		    "bare Bochs).\n\n"
		    "| Depth | Packets | Ticks | Idle | Ticks per packet | Busy ticks per packet | Overhead |\n"
		    "|---:|---:|---:|---:|---:|---:|---:|\n", kib);
	long long per0 = 0;
	for (int i = 0; i < n; i++) {
		int d = depths[i];
		char cmd[2048], name[48], level[64] = "", fig[48], note[200];
		snprintf(name, sizeof(name), "bench-nic-d%d", d);
		if (d > 0)
			snprintf(level, sizeof(level), "--level-args %d drvcheck=00:03.0", d - 1);
		snprintf(cmd, sizeof(cmd),
			 "build/tools/nestor-run --quiet --timeout 1800 --megs 512 --name %s --cpu %s --linux "
			 "--nestor 'build/nestor.elf hypervisor_bit=off' --nic-flood %d %s "
			 "--guest '%s console=ttyS0,115200 quiet nic_test=rx nic_dev=00:03.0' "
			 "--module '%s' --module '%s' --depth %d",
			 name, cpu, kib, level, kernel, initrd, net, d);
		char *t = run_for_log(cmd, name, "the NIC run");
		const char *key = "env: nic-rx: ", *p = strstr(t, key);
		long long packets = 0, ticks = 0, wall = 0, idle = 0, per = 0;
		if (!p || sscanf(p + strlen(key), "%lld packets, %lld ticks, %lld ticks per packet, %lld ticks idle, %lld busy",
				 &packets, &ticks, &wall, &idle, &per) != 5 || packets <= 0)
			die("build/runs/%s: no '%s' measurement", name, key);
		if (d > 0 && !strstr(t, "BAR0 mapped directly"))
			die("build/runs/%s: level %d did not grant the e1000's BAR0", name, d - 1);
		free(t);
		snprintf(fig, sizeof(fig), "NIC_RX%d", d);
		snprintf(note, sizeof(note), "busy ticks per packet Linux receives on its e1000 on %d Nestor levels%s", d,
			 d ? ", the driver check granted" : "");
		add(fig, per, note);
		snprintf(fig, sizeof(fig), "NIC_RX%d_PACKETS", d);
		snprintf(note, sizeof(note), "packets eth0 received from the first data to the last (%d KiB)", kib);
		add(fig, packets, note);
		if (d == 0)
			per0 = per;
		fprintf(md, "| %d | %lld | %lld | %lld | %lld | %lld |", d, packets, ticks, idle, wall, per);
		if (d > 0 && per0) {
			snprintf(fig, sizeof(fig), "NIC_RX%d_OVERHEAD_PERMILLE", d);
			add(fig, (per - per0) * 1000 / per0,
			    "(NIC_RX<d> - NIC_RX0) / NIC_RX0 in thousandths (issue 14 goal: <= 50)");
			fprintf(md, " %+.2f %% |\n", 100.0 * (double)(per - per0) / (double)per0);
		} else {
			fprintf(md, " |\n");
		}
	}
}

/* The Linux runs need Debian's kernel and the project's initramfs. */
static void need_linux(const char *kernel, const char *initrd)
{
	if (access(kernel, R_OK) || access(initrd, R_OK))
		die("no Linux kernel (%s) or initramfs (%s): run scripts/setup and make linux-guest", kernel, initrd);
}

static void run_list(const char *cpu, const char *list, const char *variant, const char *args)
{
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%s", list);
	for (char *d = strtok(tmp, ","); d; d = strtok(NULL, ",")) {
		char name[64];
		snprintf(name, sizeof(name), "bench-d%d%s", atoi(d), variant);
		run_stack(cpu, atoi(d), variant, args, name);
		report_run(&runs[nruns - 1]);
	}
}

int main(int argc, char **argv)
{
	const char *cpu = "corei7_skylake_x";
	char depths[64] = "1,2,3,4,5,6,7,8", noshadow[64] = "2,3", turtles[64] = "2,3", linux_list[64] = "0,1,2,3,8", snap_list[64] = "64,128,256", smp_list[64] = "0,1,2,3", linux4_list[64] = "0,1,3", kvm_list[64] = "0,1,2", uefi_list[64] = "0,1,2", prof_list[64] = "2,3,8";
	const char *kernel = "/var/cache/nestor/linux/vmlinuz", *initrd = "build/linux/initramfs.cpio", *bdir = "build";
	char nic_list[64] = "0,2";
	int nic_kib = 16384;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--cpu") && i + 1 < argc)
			cpu = argv[++i];
		else if (!strcmp(argv[i], "--depths") && i + 1 < argc)
			snprintf(depths, sizeof(depths), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--noshadow-depths") && i + 1 < argc)
			snprintf(noshadow, sizeof(noshadow), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--turtles-depths") && i + 1 < argc)
			snprintf(turtles, sizeof(turtles), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--linux-depths") && i + 1 < argc)
			snprintf(linux_list, sizeof(linux_list), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--uefi-depths") && i + 1 < argc)
			snprintf(uefi_list, sizeof(uefi_list), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--linux4-depths") && i + 1 < argc)
			snprintf(linux4_list, sizeof(linux4_list), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--smp-depths") && i + 1 < argc)
			snprintf(smp_list, sizeof(smp_list), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--snap-sizes") && i + 1 < argc)
			snprintf(snap_list, sizeof(snap_list), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--kvm-depths") && i + 1 < argc)
			snprintf(kvm_list, sizeof(kvm_list), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--profile-depths") && i + 1 < argc)
			snprintf(prof_list, sizeof(prof_list), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--kernel") && i + 1 < argc)
			kernel = argv[++i];
		else if (!strcmp(argv[i], "--initrd") && i + 1 < argc)
			initrd = argv[++i];
		else if (!strcmp(argv[i], "--nic-depths") && i + 1 < argc)
			snprintf(nic_list, sizeof(nic_list), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--nic-kib") && i + 1 < argc && atoi(argv[i + 1]) > 0)
			nic_kib = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--build") && i + 1 < argc)
			bdir = argv[++i];
		else
			die("usage: bench [--cpu MODEL] [--depths LIST] [--noshadow-depths LIST] [--turtles-depths LIST] "
			    "[--linux-depths LIST] [--uefi-depths LIST] [--linux4-depths LIST] [--smp-depths LIST] [--snap-sizes LIST] [--kvm-depths LIST] [--profile-depths LIST] [--kernel FILE] "
			    "[--initrd FILE] [--nic-depths LIST] [--nic-kib N] [--build DIR]");
	}
	/* Another build directory: work where "build" is a link to it, the
	 * paths given on the command line made absolute first. */
	if (strcmp(bdir, "build")) {
		static char kabs[4096], iabs[4096], root[4096], dabs[4096];
		bool own_initrd = strcmp(initrd, "build/linux/initramfs.cpio"); /* else: DIR's */
		if (!realpath(bdir, dabs) || !realpath(kernel, kabs) || (own_initrd && !realpath(initrd, iabs)))
			die("--build %s, --kernel %s, --initrd %s: %s", bdir, kernel, initrd, strerror(errno));
		kernel = kabs;
		if (own_initrd)
			initrd = iabs;
		snprintf(root, sizeof(root), "%s/.bench", dabs);
		make_dirs(root);
		char link[4200];
		snprintf(link, sizeof(link), "%s/build", root);
		unlink(link);
		if (symlink(dabs, link) || chdir(root))
			die("cannot work in %s: %s", root, strerror(errno));
	}
	if (system("command -v gnuplot >/dev/null && command -v dot >/dev/null") != 0)
		die("gnuplot and dot (graphviz) are needed: run scripts/setup");
	make_dirs("build/bench");
	/* The test guest alone, for the model's costs (not a figure). */
	struct run d0_run;
	const struct run *d0 = NULL;
	if (depths[0]) {
		run_stack(cpu, 0, "", "", "bench-d0");
		d0_run = runs[--nruns];
		d0 = &d0_run;
	}
	run_list(cpu, depths, "", "");
	run_list(cpu, noshadow, "_noshadow", "vmcs_shadowing=off");
	run_list(cpu, turtles, "_turtles", "delegate=off");

	/* Determinism: the same stack again must give the same numbers. */
	const struct run *again_of = find_run(2, "");
	if (again_of) {
		run_stack(cpu, 2, "", "", "bench-d2-again");
		struct run *again = &runs[--nruns];
		if (memcmp(&again->cpuid, &again_of->cpuid, sizeof(again->cpuid)) ||
		    memcmp(&again->io, &again_of->io, sizeof(again->io))) {
			fprintf(stderr, "bench: a second run at depth 2 gave different numbers\n");
			failures++;
		} else {
			printf("bench: a second run at depth 2 gave the same numbers\n");
		}
	}

	FILE *md = fopen("build/bench/results.md", "w");
	if (!md)
		die("cannot write build/bench/results.md");
	fprintf(md, "# Nestor benchmark (Bochs `%s`; 1 tick = 1 emulated instruction)\n\n", cpu);
	fprintf(md, "Written by `make bench`; plot: `costs.svg`; trace graphs of the model: `trace-cpuid-N.svg`, "
		    "`trace-io-N.svg`.\n\n");
	fprintf(md, "| Figure | Value | Meaning |\n|---|---:|---|\n");
	for (int i = 0; i < nfigs; i++)
		fprintf(md, "| %s | %lld | %s |\n", figs[i].name, figs[i].value, figs[i].note);
	split_table(md);

	fprintf(md, "\n## Model (tools/nestor-model) against measurement\n\n"
		    "| Figure | Measured | Predicted | Exits split per level and reason |\n|---|---:|---:|---|\n");
	int agree = 0, compared = 0;
	for (int i = 0; i < nruns; i++) {
		int a = check_model(&runs[i], "cpuid", &runs[i].cpuid, md);
		int b = check_model(&runs[i], "io", &runs[i].io, md);
		for (int x = 0; x < 2; x++) {
			int v = x ? b : a;
			if (v >= 0)
				compared++, agree += v;
		}
	}
	failures += compared - agree;
	printf("bench: the model predicts %d of %d measured exit figures exactly (with their split)\n", agree, compared);
	const char *costs = "build/bench/model-costs.txt";
	if (calibrate(d0, costs, md)) {
		fprintf(md, "\n## The model's ticks against measurement (within 5 %% or `make bench` fails)\n\n"
			    "| Figure | Measured | Predicted | Error (permille) |\n|---|---:|---:|---:|\n");
		int within = 0, predicted = 0;
		long long worst = 0;
		for (int i = 0; i < nruns; i++) {
			for (int x = 0; x < 2; x++) {
				int v = check_ticks(&runs[i], x ? "io" : "cpuid", x ? &runs[i].io : &runs[i].cpuid, costs, md,
						    &worst);
				if (v >= 0)
					predicted++, within += v;
			}
		}
		failures += predicted - within;
		printf("bench: the model predicts %d of %d tick figures within 5 %% (largest error %lld permille)\n", within,
		       predicted, worst);
	} else {
		printf("bench: the model's ticks need the runs at depths 1, 2 and 3 (--depths)\n");
	}

	if (prof_list[0])
		run_profile(cpu, prof_list, md);
	int deepest = 0;
	for (int i = 0; i < nruns; i++)
		if (!runs[i].variant[0] && runs[i].depth > deepest)
			deepest = runs[i].depth;
	if (deepest)
		report_memory(deepest, md);
	if (snap_list[0]) {
		fprintf(md, "\n## Snapshots (depth 1)\n\nPause ticks / pool pages after 10%% of memory written / "
			    "restore ticks.\n\n| Guest MiB | copy-on-write | full copy | cow pause / copy pause |\n"
			    "|---:|---:|---:|---:|\n");
		char tmp[64];
		snprintf(tmp, sizeof(tmp), "%s", snap_list);
		for (char *d = strtok(tmp, ","); d; d = strtok(NULL, ","))
			run_snapshots(cpu, atoi(d), md);
	}
	if (smp_list[0])
		run_smp(cpu, smp_list, md);
	if (linux_list[0]) {
		need_linux(kernel, initrd);
		fprintf(md, "\n## Linux (Debian's kernel, the project's initramfs) on a stack of Nestors\n\n"
			    "Ticks from power-on (BIOS and GRUB included) to the init script.\n\n"
			    "| Depth | Ticks | Overhead | Exits per level, whole run |\n|---:|---:|---:|---|\n");
		run_linux(cpu, linux_list, "--linux-depths", 1, kernel, initrd, md);
	}
	if (uefi_list[0]) {
		need_linux(kernel, initrd);
		fprintf(md, "\n## Linux through UEFI (OVMF; its shell starts nestor.efi per level, then Linux's EFI stub)\n\n"
			    "Ticks from power-on (the firmware's reset vector) to the init script.\n\n"
			    "| Depth | Ticks | Overhead | Exits per level, whole run |\n|---:|---:|---:|---|\n");
		linux_uefi = true;
		run_linux(cpu, uefi_list, "--uefi-depths", 1, kernel, initrd, md);
		linux_uefi = false;
	}
	if (linux4_list[0]) {
		need_linux(kernel, initrd);
		fprintf(md, "\n## Linux with 4 CPUs (`idle=halt`)\n\n| Depth | Ticks | Overhead |\n|---:|---:|---:|\n");
		run_linux(cpu, linux4_list, "--linux4-depths", 4, kernel, initrd, md);
		/* The same with the APIC timer at every depth (see linux4_variant). */
		memset(linux4_ticks, 0, sizeof(linux4_ticks));
		linux4_variant = "_APICTIMER";
		linux4_extra = " lapic=notscdeadline";
		fprintf(md, "\n## Linux with 4 CPUs, the APIC timer at every depth (`idle=halt lapic=notscdeadline`)\n\n"
			    "| Depth | Ticks | Overhead |\n|---:|---:|---:|\n");
		run_linux(cpu, linux4_list, "--linux4-depths", 4, kernel, initrd, md);
		linux4_variant = linux4_extra = "";
	}
	if (kvm_list[0])
		run_kvm(cpu, kvm_list, kernel, md);
	if (nic_list[0])
		run_nic(cpu, nic_list, nic_kib, kernel, md);
	for (int i = 0; i < nfigs; i++)
		if (!strncmp(figs[i].name, "MEM_", 4) || !strncmp(figs[i].name, "BOCHS_", 6))
			fprintf(md, "\n`bench %s %lld` - %s", figs[i].name, figs[i].value, figs[i].note);
	fprintf(md, "\n");
	fclose(md);
	printf("wrote build/bench/results.md\n");
	if (deepest) { /* a run with only the Linux, SMP or KVM figures has no stack to plot */
		plot();
		trace_graphs(deepest);
	}
	if (failures) {
		fprintf(stderr, "bench: %d check(s) failed\n", failures);
		return 1;
	}
	return 0;
}
