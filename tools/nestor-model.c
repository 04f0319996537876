/* nestor-model.c - predicts, exactly, the VM exits one guest operation costs
 * in a stack of Nestors, by simulating the code paths Nestor executes.
 *
 *   nestor-model --depth N --exit cpuid|io [--noshadow] [--turtles] [--trace] [--dot FILE] [--costs FILE]
 *
 * The stack: level 0 is the Nestor on the machine, levels 1..N-1 Nestors,
 * level N the guest test kernel (guest/tests/bench.c: loop_cpuid executes
 * CPUID leaf 0, loop_portio `outb %al,%dx` with DX = 0x8900, AL = 0).
 * Only level 0 touches the hardware: every VM exit of every level is taken
 * by level 0 (vmx_handle_exit), which routes it (nested/exit.c,
 * nested_l2_exit):
 *  1. level 0 wants it: a VMX instruction of a level whose VMX level 0
 *     emulates (all of 1..N-1 under delegation, level 1 alone in Turtles
 *     mode) - nested_vmx_instruction emulates it and resumes that level
 *     (VMRESUME: enters the level above it, nested_vmentry);
 *  2. the exiting level is level 1, level 0's own guest: handled natively
 *     (exit_table in vmx/exit.c);
 *  3. the direct hypervisor (level m-1) wants it (l1_wants: CPUID always,
 *     port 0x8900 by its I/O bitmap, VMX instructions in Turtles mode):
 *     reflected (nested_reflect), i.e. level m-1 is entered at its exit
 *     handler - an entry, not an exit;
 *  4. otherwise level 0 handles it on level m's behalf (exit_io...).
 * A handler is the same program at every level (a "handler program" below:
 * its VMREAD/VMWRITE/OUT actions, read from vmx/exit.c, exit_cpuid.c,
 * exit_io.c).  Run by level 0 every action is native; run by level k >= 1
 * each action exits or not by the VMCS that runs level k, recursively.
 *
 * Assumptions (true of the Bochs CPU models used by `make bench`):
 *  - the CPU has VMCS shadowing with IA32_VMX_MISC[29] (exit-information
 *    fields can be shadowed, nested/shadow.c nested_shadow_tables_init);
 *  - steady state: CPUID leaf 0 is in every level's per-vCPU cache
 *    (exit_cpuid/below), no NMI is pending (deliver_pending_events is not
 *    called), the instruction does not cross a 64 KiB line and RFLAGS.TF
 *    and STI/MOV-SS blocking are clear (skip_instruction_len's short path);
 *  - a level whose VMX another Nestor emulates gets hardware shadowing only
 *    from level 0 (Nestor does not offer VMCS shadowing, nested/caps.c).
 * Turtles mode (delegate=off) beyond depth 2 needs the programs of Nestor's
 * VMX emulation itself and is not modelled; at depth <= 2 both coincide.
 *
 * Output: `model E<N>[_noshadow][_turtles] X` (EIO<N> for io), X the exits
 * level 0 takes per operation (bench's exits_per_op), then one line
 * `model split taken_by=K running=L reason=R exits=X` per nonzero count:
 * K = 0 the hardware exits, K >= 1 the exits level K sees (reflected to it)
 * - bench's "split" lines.  --trace prints each transition; --dot draws
 * them: time downwards, one column per level, exits red, entries dashed.
 *
 * Ticks (--costs FILE, issue 16): the same walk adds what each transition
 * costs, from a file of `cost NAME TICKS` lines that `make bench` measures
 * at depths 0 to 3 (tools/bench.c, calibrate()):
 *   guest_cpuid, guest_io   the test guest's own ticks per operation (depth 0)
 *   hw                      one hardware exit and entry with what level 0
 *                           runs outside its counted window (entry stub)
 *   native_cpuid, native_io level 0's window for its own guest's exit
 *   reflect_<op>_l1, _up    level 0's window to reflect an exit to level 1,
 *                           to a level >= 2 (its VMCS12 in a guest's memory,
 *                           its bitmaps through the EPTs below)
 *   vmresume_l1, _up        level 0's window to emulate the VMRESUME of
 *                           level 1, of a level >= 2
 *   handler_cpuid, _io      a Nestor's own handler instructions (window less
 *                           the exits it causes)
 *   stub                    a Nestor's entry stub around its handler
 * and prints `model T<N> X` (TIO<N> for io), ticks per operation, and
 * `model ticks taken_by=K running=L reason=R ticks=X`, the window of each
 * split, as bench measures them.  Only with shadowing and delegation. */
#include <stdbool.h>
#include <stdint.h>
#include "tools/util.h"
#include "vmx/vmcs.h"
#include "vmx/vmx_defs.h"
#include "vmx/exit_reasons.h"
#include "nested/shadow_fields.h"

#define MAX_DEPTH 15 /* NESTED_MAX_LEVELS in nested/nested.h */
#define NREASONS 65
#define SHUTDOWN_PORT 0x8900

/* --- VMCS shadowing: nested/shadow_fields.h, the hypervisor's own policy -- */

/* Read without exiting (shadowable()). */
static bool read_shadowed(uint32_t enc) { return shadowable(enc); }

/* Written without exiting: listed, and never a read-only (exit-information)
 * field (nested_shadow_tables_init). */
static bool write_is_shadowed(uint32_t enc)
{
	return shadowable(enc) && vmcs_field_type(enc) != VMCS_T_EXIT_INFO && is_write_shadowed(enc);
}

static const char *field_name(uint32_t enc)
{
	static const struct {
		const char *name;
		uint32_t enc;
	} names[] = {
#define X(name, e) { #name, e },
		VMCS_FIELDS(X)
#undef X
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].enc == enc)
			return names[i].name;
	return "?";
}

static const char *reason_name(unsigned r)
{
	return r < EXIT_REASON_NAMES_MAX && exit_reason_names[r] ? exit_reason_names[r] : "?";
}

/* --- handler programs ------------------------------------------------------ */

enum act { A_END, A_CPUID, A_CPUID_CACHED, A_OUT, A_VMREAD, A_VMWRITE, A_VMRESUME };

struct action {
	enum act kind;
	uint32_t arg; /* VMCS field, or port */
	const char *where; /* the Nestor function that executes it */
};

/* skip_instruction() -> skip_instruction_len(), short path (vmx/exit.c). */
#define SKIP_INSTRUCTION                                                  \
	{ A_VMREAD, VMCS_EXIT_INSTR_LEN, "skip_instruction" },              \
	{ A_VMREAD, VMCS_GUEST_RIP, "skip_instruction_len" },               \
	{ A_VMWRITE, VMCS_GUEST_RIP, "skip_instruction_len" },              \
	{ A_VMREAD, VMCS_GUEST_INTERRUPTIBILITY, "skip_instruction_len" },  \
	{ A_VMREAD, VMCS_GUEST_RFLAGS, "skip_instruction_len" }

/* vmx_handle_exit reads the reason; the stub VMRESUMEs (vmx/entry.S). */
static const struct action cpuid_program[] = {
	{ A_VMREAD, VMCS_EXIT_REASON, "vmx_handle_exit" },
	{ A_CPUID_CACHED, 0, "exit_cpuid/below" },
	SKIP_INSTRUCTION,
	{ A_VMRESUME, 0, "enter_current" },
	{ A_END, 0, NULL },
};

/* exit_io -> do_out -> shutdown_port_write: byte 0 is not 'S', so nothing
 * is held back and port_out performs the same OUT. */
static const struct action io_program[] = {
	{ A_VMREAD, VMCS_EXIT_REASON, "vmx_handle_exit" },
	{ A_VMREAD, VMCS_EXIT_QUALIFICATION, "exit_io" },
	{ A_OUT, SHUTDOWN_PORT, "shutdown_port_write/port_out" },
	SKIP_INSTRUCTION,
	{ A_VMRESUME, 0, "enter_current" },
	{ A_END, 0, NULL },
};

/* --- the simulation -------------------------------------------------------- */

enum edge { E_SEQ, E_EXIT, E_ENTRY };

/* --- costs (--costs FILE) --------------------------------------------------- */

#define COSTS(X)                                                                                  \
	X(guest_cpuid) X(guest_io) X(hw) X(native_cpuid) X(native_io) X(reflect_cpuid_l1)           \
	X(reflect_cpuid_up) X(reflect_io_l1) X(reflect_io_up) X(vmresume_l1) X(vmresume_up)          \
	X(handler_cpuid) X(handler_io) X(stub)

struct costs {
#define X(name) long long name;
	COSTS(X)
#undef X
};

static void read_costs(const char *path, struct costs *c)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die("%s: %s", path, strerror(errno));
#define X(name) c->name = -1;
	COSTS(X)
#undef X
	char line[256], name[64];
	long long v;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "cost %63s %lld", name, &v) != 2)
			die("%s: not a 'cost NAME TICKS' line: %s", path, line);
		bool known = false;
#define X(n)                          \
	if (!strcmp(name, #n))        \
		c->n = v, known = true;
		COSTS(X)
#undef X
		if (!known)
			die("%s: unknown cost %s", path, name);
	}
	fclose(f);
#define X(n)                  \
	if (c->n < 0)         \
		die("%s: cost %s missing", path, #n);
	COSTS(X)
#undef X
}

struct sim {
	unsigned depth; /* level of the test guest */
	bool shadow, turtles, trace;
	FILE *dot;
	unsigned steps, edges;
	unsigned last_lvl;     /* DOT: level of the previous step */
	enum edge out;         /* kind of the edge leaving the last step */
	unsigned out_reason;   /* its exit reason (E_EXIT) */
	/* count[k][l][r]: exits level k took while level l ran (k = 0: the
	 * hardware exits; k >= 1: reflected exits, as level k sees them). */
	unsigned long count[MAX_DEPTH + 1][MAX_DEPTH + 1][NREASONS];
	/* With --costs: ticks so far, and each split's window (as count). */
	const struct costs *c;
	long long ticks;
	long long window[MAX_DEPTH + 1][MAX_DEPTH + 1][NREASONS];
};

/* A label: quotes escaped, a line break before each " -> " and " (" (narrow
 * nodes). */
static void dot_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (!strncmp(s, " -> ", 4) || !strncmp(s, " (", 2)) {
			fputs("\\n", f);
			continue;
		}
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
}

/* DOT: the node of column l on the rank of step n (made at level lvl). */
static void dot_name(FILE *f, unsigned n, unsigned l, unsigned lvl)
{
	if (n == 0)
		fprintf(f, "h%u", l);
	else if (l == lvl)
		fprintf(f, "n%u", n);
	else
		fprintf(f, "p%u_%u", n, l);
}

/* DOT: step n is one rank (time runs downwards) holding a node per level:
 * the step's node in its level's column, invisible place-holders in the
 * others, ordered L0 to Ln by invisible edges; each column is a group tied
 * by invisible edges, which dot keeps straight.  Then the numbered edge
 * from the previous step. */
static void dot_node(struct sim *s, unsigned lvl, const char *text)
{
	unsigned n = s->steps;
	fprintf(s->dot, "  { rank=same;");
	for (unsigned l = 0; l <= s->depth; l++) {
		if (l != lvl) {
			fprintf(s->dot, " p%u_%u [group=L%u, style=invis, label=\"\", width=2.2, height=0];", n, l, l);
			continue;
		}
		fprintf(s->dot, " n%u [group=L%u, label=\"%u. ", n, l, n);
		dot_escaped(s->dot, text);
		fprintf(s->dot, "\"];");
	}
	fprintf(s->dot, " }\n ");
	for (unsigned l = 0; l <= s->depth; l++) {
		fputc(' ', s->dot);
		dot_name(s->dot, n, l, lvl);
		fprintf(s->dot, "%s", l < s->depth ? " ->" : " [style=invis];\n");
	}
	for (unsigned l = 0; l <= s->depth; l++) {
		fputs("  ", s->dot);
		dot_name(s->dot, n - 1, l, s->last_lvl);
		fputs(" -> ", s->dot);
		dot_name(s->dot, n, l, lvl);
		fputs(" [style=invis];\n", s->dot);
	}
	s->last_lvl = lvl;
	if (n == 1)
		return;
	s->edges++;
	fprintf(s->dot, "  n%u -> n%u [label=\"%u", n - 1, n, s->edges);
	if (s->out == E_EXIT)
		fprintf(s->dot, ": exit %u (%s)\", color=red, fontcolor=red];\n", s->out_reason, reason_name(s->out_reason));
	else if (s->out == E_ENTRY)
		fprintf(s->dot, ": entry\", style=dashed, color=blue, fontcolor=blue];\n");
	else
		fprintf(s->dot, "\", color=gray40];\n");
}

/* One transition: a trace line, and a DOT node in its level's column
 * joined to the previous one.  `out` is the kind of the next edge. */
static __attribute__((format(printf, 5, 6))) void step(struct sim *s, unsigned lvl, enum edge out,
							 unsigned reason, const char *fmt, ...)
{
	char text[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	s->steps++;
	if (s->trace)
		printf("%u. L%u: %s\n", s->steps, lvl, text);
	if (s->dot)
		dot_node(s, lvl, text);
	s->out = out;
	s->out_reason = reason;
}

/* Who emulates level k's VMX: 0 with delegation, k-1 in Turtles mode. */
static unsigned vmx_emulator(const struct sim *s, unsigned k) { return s->turtles ? k - 1 : 0; }

static bool is_hypervisor(const struct sim *s, unsigned k) { return k < s->depth; }

/* Shadowing works for a level whose VMX level 0 emulates (shadow.c). */
static bool shadowing(const struct sim *s, unsigned k) { return s->shadow && vmx_emulator(s, k) == 0; }

/* Does Nestor level k intercept this exit of its guest?  (l1_wants on the
 * controls Nestor sets: CPUID exits unconditionally, the I/O bitmap has
 * the shutdown port only - vmx/vmx.c io_intercept -, VMX instructions exit
 * to k only if k emulates its guest's VMX.) */
static bool wants(const struct sim *s, unsigned k, unsigned reason, unsigned port, const char **why)
{
	if (!is_hypervisor(s, k))
		return false;
	switch (reason) {
	case EXIT_CPUID: *why = "CPUID always exits"; return true;
	case EXIT_IO: *why = "port 0x8900 in its I/O bitmap"; return port == SHUTDOWN_PORT;
	case EXIT_VMREAD: case EXIT_VMWRITE: case EXIT_VMRESUME:
		*why = "it emulates its guest's VMX";
		return vmx_emulator(s, k + 1) == k;
	default: return false;
	}
}

static void run_program(struct sim *s, unsigned lvl, unsigned reason, unsigned enter);

static bool wants(const struct sim *s, unsigned k, unsigned reason, unsigned port, const char **why);

/* Ticks of a hardware exit of level lvl: the round trip, and level 0's
 * window for what it does with it (the branches of hw_exit). */
static void charge(struct sim *s, unsigned lvl, unsigned reason, bool vmx)
{
	const struct costs *c = s->c;
	const char *why;
	long long t;
	if (vmx && vmx_emulator(s, lvl) == 0) {
		if (reason != EXIT_VMRESUME)
			die("ticks: level 0's emulation of %s is not calibrated (--noshadow)", reason_name(reason));
		t = lvl == 1 ? c->vmresume_l1 : c->vmresume_up;
	} else if (lvl == 1) {
		t = reason == EXIT_CPUID ? c->native_cpuid : c->native_io;
	} else if (wants(s, lvl - 1, reason, SHUTDOWN_PORT, &why)) {
		bool l1 = lvl - 1 == 1;
		t = reason == EXIT_CPUID ? (l1 ? c->reflect_cpuid_l1 : c->reflect_cpuid_up)
					 : (l1 ? c->reflect_io_l1 : c->reflect_io_up);
	} else {
		die("ticks: level 0 handling an exit on level %u's behalf is not calibrated", lvl);
	}
	s->ticks += c->hw + t;
	s->window[0][lvl][reason] += t;
}

/* A hardware exit of level lvl, taken by level 0 and routed (nested_l2_exit);
 * port: the I/O port of an I/O exit. */
static void hw_exit(struct sim *s, unsigned lvl, unsigned reason, unsigned port)
{
	const char *why = "";
	s->count[0][lvl][reason]++;
	bool vmx = reason == EXIT_VMREAD || reason == EXIT_VMWRITE || reason == EXIT_VMRESUME;
	if (s->c)
		charge(s, lvl, reason, vmx);
	if (vmx && vmx_emulator(s, lvl) == 0) {
		/* 1. level 0 emulates that level's VMX (nested_vmx_instruction). */
		bool resume = reason == EXIT_VMRESUME;
		step(s, 0, E_ENTRY, 0, "emulates L%u's %s (%s) -> %s L%u", lvl, reason_name(reason),
		     resume ? "nested_vmentry" : reason == EXIT_VMREAD ? "do_vmread" : "do_vmwrite",
		     resume ? "enter" : "resume", resume ? lvl + 1 : lvl);
	} else if (lvl == 1) {
		/* 2. its own guest: the exit table, natively. */
		step(s, 0, E_SEQ, 0, "its own guest's exit -> handle it natively");
		run_program(s, 0, reason, 1);
	} else if (wants(s, lvl - 1, reason, port, &why)) {
		/* 3. reflected: level lvl-1 sees an exit of level lvl. */
		s->count[lvl - 1][lvl][reason]++;
		step(s, 0, E_ENTRY, 0, "level %u wants it (%s) -> reflect: enter L%u's exit handler", lvl - 1, why,
		     lvl - 1);
		run_program(s, lvl - 1, reason, 0);
	} else {
		/* 4. nobody below wants it: level 0 does it for that level. */
		step(s, 0, E_SEQ, 0, "nobody wants it -> handle it on L%u's behalf", lvl);
		run_program(s, 0, reason, lvl);
	}
}

/* Does this action of level lvl exit?  Level 0 runs on the machine; a
 * level above runs in a VMCS level 0 built. */
static bool exits(const struct sim *s, unsigned lvl, const struct action *a, unsigned *reason, const char **why)
{
	*why = "";
	if (lvl == 0)
		return false;
	switch (a->kind) {
	case A_CPUID: *reason = EXIT_CPUID; return true;
	case A_OUT: /* 0x8900: in VMCS01's I/O bitmap; VMCS02 exits on all I/O (enter.c) */
		*reason = EXIT_IO;
		return true;
	case A_VMRESUME: *reason = EXIT_VMRESUME; return true;
	case A_VMREAD:
		*reason = EXIT_VMREAD;
		*why = shadowing(s, lvl) ? (read_shadowed(a->arg) ? "shadowed" : "not in the read shadow") : "no shadowing";
		return !(shadowing(s, lvl) && read_shadowed(a->arg));
	case A_VMWRITE:
		*reason = EXIT_VMWRITE;
		*why = shadowing(s, lvl) ? (write_is_shadowed(a->arg) ? "shadowed" : "not in the write shadow") : "no shadowing";
		return !(shadowing(s, lvl) && write_is_shadowed(a->arg));
	default: return false;
	}
}

static void describe(char *buf, size_t n, const struct action *a)
{
	switch (a->kind) {
	case A_CPUID: snprintf(buf, n, "CPUID"); break;
	case A_CPUID_CACHED: snprintf(buf, n, "CPUID answered from the cache (%s)", a->where); break;
	case A_OUT: snprintf(buf, n, "OUT port 0x%x (%s)", (unsigned)a->arg, a->where); break;
	case A_VMREAD: snprintf(buf, n, "VMREAD %s (%s)", field_name(a->arg), a->where); break;
	case A_VMWRITE: snprintf(buf, n, "VMWRITE %s (%s)", field_name(a->arg), a->where); break;
	default: snprintf(buf, n, "VMRESUME (%s)", a->where); break;
	}
}

/* One action of level lvl: native, or an exit routed by level 0. */
static void run_action(struct sim *s, unsigned lvl, const struct action *a, unsigned enter)
{
	char what[128];
	unsigned reason = 0;
	const char *why;
	describe(what, sizeof(what), a);
	if (exits(s, lvl, a, &reason, &why)) {
		step(s, lvl, E_EXIT, reason, "%s%s%s -> exit to L0 (reason %u)", what, *why ? ": " : "", why, reason);
		hw_exit(s, lvl, reason, a->arg);
	} else if (a->kind == A_VMRESUME) {
		step(s, 0, E_ENTRY, 0, "%s -> enter L%u", what, enter); /* level 0 on the machine */
	} else {
		step(s, lvl, E_SEQ, 0, "%s: %s, no exit", what,
		     lvl == 0 ? "native" : a->kind == A_CPUID_CACHED ? "no instruction" : why);
	}
}

/* The exit handler of level lvl for `reason`; level 0's VMRESUME enters
 * level `enter`, the others exit to level 0. */
static void run_program(struct sim *s, unsigned lvl, unsigned reason, unsigned enter)
{
	const struct action *p = reason == EXIT_CPUID ? cpuid_program : reason == EXIT_IO ? io_program : NULL;
	if (!p)
		die("no handler program for exit reason %u at level %u (not modelled)", reason, lvl);
	/* A Nestor above level 0 counts its window like level 0 (from its
	 * exit stub's call to the end of its handler): its own instructions
	 * and the exits they cause, not its VMRESUME. */
	long long start = 0;
	if (s->c && lvl >= 1) {
		s->ticks += s->c->stub;
		start = s->ticks;
		s->ticks += reason == EXIT_CPUID ? s->c->handler_cpuid : s->c->handler_io;
	}
	for (; p->kind != A_END; p++) {
		if (s->c && lvl >= 1 && p->kind == A_VMRESUME)
			s->window[lvl][lvl + 1][reason] += s->ticks - start;
		run_action(s, lvl, p, enter);
	}
}

/* --- command line and output ------------------------------------------------ */

static __attribute__((noreturn)) void usage(const char *msg, const char *arg)
{
	fprintf(stderr, "nestor-model: %s%s\nusage: nestor-model --depth N --exit cpuid|io [--noshadow] [--turtles] "
			"[--trace] [--dot FILE] [--costs FILE]\n", msg, arg);
	exit(2);
}

/* The value of option argv[*i]. */
static const char *value(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc)
		usage("missing value for ", argv[*i]);
	return argv[++*i];
}

static void print_results(const struct sim *s, bool io)
{
	unsigned long total = 0;
	for (unsigned l = 0; l <= s->depth; l++)
		for (unsigned r = 0; r < NREASONS; r++)
			total += s->count[0][l][r];
	printf("model %s%u%s%s %lu\n", io ? "EIO" : "E", s->depth, s->shadow ? "" : "_noshadow",
	       s->turtles ? "_turtles" : "", total);
	for (unsigned k = 0; k <= s->depth; k++)
		for (unsigned l = 0; l <= s->depth; l++)
			for (unsigned r = 0; r < NREASONS; r++)
				if (s->count[k][l][r])
					printf("model split taken_by=%u running=%u reason=%u exits=%lu\n", k, l, r,
					       s->count[k][l][r]);
	if (!s->c)
		return;
	printf("model %s%u %lld\n", io ? "TIO" : "T", s->depth, s->ticks);
	for (unsigned k = 0; k <= s->depth; k++)
		for (unsigned l = 0; l <= s->depth; l++)
			for (unsigned r = 0; r < NREASONS; r++)
				if (s->count[k][l][r])
					printf("model ticks taken_by=%u running=%u reason=%u ticks=%lld\n", k, l, r,
					       s->window[k][l][r]);
}

/* The DOT graph: time runs downwards, one column per level: a header
 * node per level, on the first rank, chained left to right (L0 on the
 * left) by invisible edges; each level's nodes hang below its header. */
static void dot_begin(struct sim *s)
{
	fprintf(s->dot, "digraph nestor {\n  newrank=true; node [shape=box, fontsize=10]; edge [fontsize=9];\n");
	fprintf(s->dot, "  { rank=same;");
	for (unsigned l = 0; l <= s->depth; l++)
		fprintf(s->dot, " h%u [group=L%u, shape=plaintext, fontsize=14, label=\"L%u (%s)\"];", l, l, l,
			l == s->depth ? "test guest" : l == 0 ? "Nestor on the machine" : "Nestor");
	fprintf(s->dot, " }\n ");
	for (unsigned l = 0; l <= s->depth; l++)
		fprintf(s->dot, " h%u %s", l, l < s->depth ? "->" : "[style=invis];\n");
}

/* The title last: subgraphs would inherit it. */
static void dot_end(struct sim *s, bool io)
{
	fprintf(s->dot, "  label=\"%s at depth %u%s%s: exits solid red, entries dashed blue\";\n}\n",
		io ? "OUT 0x8900" : "CPUID", s->depth, s->shadow ? "" : ", no VMCS shadowing",
		s->turtles ? ", Turtles" : "");
}

int main(int argc, char **argv)
{
	struct sim *s = calloc(1, sizeof(*s));
	const char *dot_path = NULL, *op = NULL, *costs_path = NULL;
	long depth = -1;
	if (!s)
		die("out of memory");
	s->shadow = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--noshadow")) {
			s->shadow = false;
		} else if (!strcmp(a, "--turtles")) {
			s->turtles = true;
		} else if (!strcmp(a, "--trace")) {
			s->trace = true;
		} else if (!strcmp(a, "--depth")) {
			const char *v = value(argc, argv, &i);
			char *end;
			depth = strtol(v, &end, 10);
			if (!*v || *end || depth < 1 || depth > MAX_DEPTH)
				usage("--depth must be 1..15, not ", v);
		} else if (!strcmp(a, "--exit")) {
			op = value(argc, argv, &i);
		} else if (!strcmp(a, "--dot")) {
			dot_path = value(argc, argv, &i);
		} else if (!strcmp(a, "--costs")) {
			costs_path = value(argc, argv, &i);
		} else {
			usage("unknown option ", a);
		}
	}
	if (depth < 0 || !op)
		usage("--depth and --exit are required", "");
	if (strcmp(op, "cpuid") && strcmp(op, "io"))
		usage("--exit must be cpuid or io, not ", op);
	if (s->turtles && depth > 2)
		usage("--turtles is modelled up to depth 2 only (beyond, every level emulates its guest's VMX: "
		      "Nestor's VMX emulation itself would need modelling)", "");
	s->depth = (unsigned)depth;
	bool io = !strcmp(op, "io");
	static struct costs costs;
	if (costs_path) {
		if (!s->shadow || s->turtles)
			usage("--costs: ticks are calibrated with VMCS shadowing and delegation only", "");
		read_costs(costs_path, &costs);
		s->c = &costs;
		s->ticks = io ? costs.guest_io : costs.guest_cpuid;
	}
	if (dot_path) {
		s->dot = fopen(dot_path, "w");
		if (!s->dot)
			die("%s: %s", dot_path, strerror(errno));
		dot_begin(s);
	}
	/* The test guest's operation, then whatever it sets off. */
	static const struct action guest_cpuid = { A_CPUID, 0, "bench loop_cpuid" };
	static const struct action guest_out = { A_OUT, SHUTDOWN_PORT, "bench loop_portio" };
	run_action(s, s->depth, io ? &guest_out : &guest_cpuid, 0);
	step(s, s->depth, E_SEQ, 0, "%s done, next instruction", io ? "OUT" : "CPUID");
	if (s->dot) {
		dot_end(s, io);
		if (fclose(s->dot))
			die("%s: %s", dot_path, strerror(errno));
	}
	print_results(s, io);
	free(s);
	return 0;
}
