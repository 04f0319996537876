/* test.h - the guest test framework.
 *
 *   TEST(cpuid, leaf0) { say("eax=%08x", r.eax); CHECK(r.eax >= 1, "max leaf %u", r.eax); }
 *
 * Tests run sorted by suite and name.  Everything a test prints with say()
 * is part of its transcript, which must be byte-identical at every depth;
 * what it prints with env() is a fact about the environment (memory size,
 * hypervisor present...), printed with an "env: " prefix that the
 * transcript comparison ignores.  Each test ends with one line
 *   test SUITE.NAME: ok            or   test SUITE.NAME: FAILED (N checks)
 * and the kernel ends with a summary and "RESULT: PASS" or "RESULT: FAIL". */
#ifndef GUEST_TEST_H
#define GUEST_TEST_H

#include <stdbool.h>
#include "guest/kernel.h"

struct test_case {
	const char *suite, *name;
	void (*fn)(void);
};

#define TEST(suite, name)                                                                    \
	static void test_##suite##_##name(void);                                             \
	static const struct test_case tc_##suite##_##name                                    \
		__attribute__((used, section(".tests." #suite "." #name), aligned(8))) = {   \
			#suite, #name, test_##suite##_##name};                                \
	static void test_##suite##_##name(void)

void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void env(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void check_failed(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define CHECK(cond, ...)                                                  \
	do {                                                              \
		if (!(cond))                                              \
			check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__); \
	} while (0)

/* Runs the tests of the given suites (comma-separated, empty = all);
 * returns how many failed and sets *ran. */
unsigned run_tests(const char *suites, bool list_only, unsigned *ran);
/* From inside a test: runs other suites (their lines printed as usual) and
 * returns how many of their tests failed; the calling test goes on. */
unsigned run_tests_nested(const char *suites);

/* "#GP", "#UD"... for an exception vector, "vector N" beyond 31. */
const char *exception_mnemonic(unsigned vector);
/* True for the exceptions that push an error code (SDM 6.13). */
bool exception_has_error_code(unsigned vector);
/* What an attempt did, for transcripts: "ok", "#UD", "#GP(0)", "#PF(2)". */
const char *fault_str(char *buf, size_t n, bool hit, const struct fault *f);

/* The guest's command line, for tests that read options of their own. */
extern const char *guest_cmdline;

#endif
