/* test.c - runs the selected tests and prints the transcript. */
#include "guest/test.h"
#include "lib/format.h"
#include "lib/string.h"
#include <stdarg.h>

extern const struct test_case __tests_start[], __tests_end[];

static const struct test_case *current;
static unsigned current_failures;

static void sink(void *ctx, char c)
{
	(void)ctx;
	gputc(c);
}

static void line(const char *prefix, const char *fmt, va_list ap)
{
	gprintf("%s%s.%s: ", prefix, current ? current->suite : "-", current ? current->name : "-");
	vformat(sink, 0, fmt, ap);
	gputc('\n');
}

void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	line("  ", fmt, ap);
	va_end(ap);
}

void env(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	line("env: ", fmt, ap);
	va_end(ap);
}

void check_failed(const char *file, int line_no, const char *cond, const char *fmt, ...)
{
	va_list ap;
	current_failures++;
	gprintf("  %s.%s: CHECK FAILED %s:%d: %s: ", current->suite, current->name, file, line_no, cond);
	va_start(ap, fmt);
	vformat(sink, 0, fmt, ap);
	va_end(ap);
	gputc('\n');
}

const char *exception_mnemonic(unsigned v)
{
	static const char *const names[32] = { "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
					       "#DF", "#09", "#TS", "#NP", "#SS", "#GP", "#PF", "#15",
					       "#MF", "#AC", "#MC", "#XM", "#VE", "#CP" };
	static char other[16];
	if (v < 32 && names[v])
		return names[v];
	ksnprintf(other, sizeof(other), "vector %u", v);
	return other;
}

bool exception_has_error_code(unsigned v) { return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21; }

const char *fault_str(char *buf, size_t n, bool hit, const struct fault *f)
{
	if (!hit)
		ksnprintf(buf, n, "ok");
	else if (exception_has_error_code(f->vector))
		ksnprintf(buf, n, "%s(%llx)", exception_mnemonic(f->vector), (unsigned long long)f->error_code);
	else
		ksnprintf(buf, n, "%s", exception_mnemonic(f->vector));
	return buf;
}

/* suites: comma-separated list of suites or suite.test names, or empty
 * for all - except the benchmark suites ("bench*"), which run only when
 * named. */
static bool selected(const struct test_case *t, const char *suites)
{
	/* By default every suite but the benchmark, the snapshots (which
	 * need a snapshot pool, and restore this kernel many times over), the
	 * VMX fuzzer (run by make fuzz-vmx with its seeds) and the other CPUs
	 * (smp, smp_snap, smp_x2apic: run with several CPUs when asked). */
	if (!suites[0])
		return strncmp(t->suite, "bench", 5) != 0 && strcmp(t->suite, "snapshot") != 0 &&
		       strcmp(t->suite, "vmxfuzz") != 0 && strcmp(t->suite, "smp") != 0 &&
		       strcmp(t->suite, "smp_snap") != 0 && strcmp(t->suite, "smp_x2apic") != 0;
	size_t n = strlen(t->suite);
	for (const char *p = suites; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && !strncmp(p, t->suite, n))
			return true;
		/* "suite.test": that test alone */
		size_t m = strlen(t->name);
		if (len == n + 1 + m && !strncmp(p, t->suite, n) && p[n] == '.' && !strncmp(p + n + 1, t->name, m))
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

/* Returns the number of failed tests; *ran gets the number run. */
unsigned run_tests_nested(const char *suites)
{
	const struct test_case *outer = current;
	unsigned outer_failures = current_failures, ran;
	unsigned failed = run_tests(suites, false, &ran);
	current = outer;
	current_failures = outer_failures;
	return failed;
}

unsigned run_tests(const char *suites, bool list_only, unsigned *ran)
{
	unsigned failed = 0, count = 0;
	for (const struct test_case *t = __tests_start; t < __tests_end; t++) {
		if (!selected(t, suites))
			continue;
		count++;
		if (list_only) {
			gprintf("test %s.%s\n", t->suite, t->name);
			continue;
		}
		current = t;
		current_failures = 0;
		t->fn();
		if (current_failures) {
			failed++;
			gprintf("test %s.%s: FAILED (%u checks)\n", t->suite, t->name, current_failures);
		} else {
			gprintf("test %s.%s: ok\n", t->suite, t->name);
		}
		current = 0;
	}
	*ran = count;
	return failed;
}
