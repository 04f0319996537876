// sources: lib/format.c
/* Unit tests of the printf engine, checked against the host C library. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lib/format.h"

/* These tests feed odd formats on purpose (flags libc ignores, unknown
 * conversions, NULL strings): the compiler's format checks would refuse them. */
#pragma GCC diagnostic ignored "-Wformat"
#pragma GCC diagnostic ignored "-Wformat-extra-args"
#pragma GCC diagnostic ignored "-Wformat-overflow"

/* Formats with ours and with libc and compares the strings and lengths. */
#define SAME(...)                                                              \
	do {                                                                   \
		char ours[256], theirs[256];                                   \
		int a = ksnprintf(ours, sizeof(ours), __VA_ARGS__);            \
		int b = snprintf(theirs, sizeof(theirs), __VA_ARGS__);         \
		assert_string_equal(ours, theirs);                             \
		assert_int_equal(a, b);                                        \
	} while (0)

static void integers(void **state)
{
	(void)state;
	SAME("%d %i %u", 0, -1, 42u);
	SAME("%d", -2147483647 - 1);
	SAME("%lld %llu", (long long)INT64_MIN, (unsigned long long)UINT64_MAX);
	SAME("%ld %lu %zu", -5l, 7ul, (size_t)12345);
	SAME("%hhd %hhu %hd %hu", 300, 300, 70000, 70000);
	SAME("%5d|%-5d|%05d|%+d|% d", 42, 42, 42, 42, 42);
	SAME("%.3d|%8.3d|%-8.3d|%08.3d", 7, 7, 7, 7);
	SAME("%.0d|%.0x|%5.0d|", 0, 0, 0);
	SAME("%+05d|% 05d|%-+6d|", -3, 3, 3);
}

static void hex_octal_pointer(void **state)
{
	(void)state;
	SAME("%x %X %#x %#X %#o %o", 255u, 255u, 255u, 255u, 8u, 8u);
	SAME("%#x %#o", 0u, 0u);
	SAME("%016llx|%-16llx|%#018llx", 0xdeadbeefull, 0xabcull, 0x1234ull);
	SAME("%#.5x|%#10.4o", 0x1fu, 9u);
	SAME("%p", (void *)0x1234);
	char buf[32];
	ksnprintf(buf, sizeof(buf), "%p", (void *)0);
	assert_string_equal(buf, "(nil)");
}

static void strings_chars(void **state)
{
	(void)state;
	SAME("%s|%10s|%-10s|%.2s|%*s|%-*s|%.*s", "abc", "abc", "abc", "abc", 6, "ab", 6, "ab", 1, "xyz");
	SAME("%c%c|%3c|%-3c|", 'a', 'b', 'x', 'y');
	SAME("100%%");
	SAME("%*d|%-*d", -6, 5, 4, 5);
	char buf[32];
	ksnprintf(buf, sizeof(buf), "%s", (char *)NULL);
	assert_string_equal(buf, "(null)");
}

static void truncation(void **state)
{
	(void)state;
	char buf[8];
	memset(buf, 'Z', sizeof(buf));
	int n = ksnprintf(buf, 5, "%s", "hello world");
	assert_int_equal(n, 11);
	assert_string_equal(buf, "hell");
	assert_int_equal(buf[5], 'Z'); /* nothing written past size */
	n = ksnprintf(buf, 0, "abc");
	assert_int_equal(n, 3);
	assert_int_equal(buf[0], 'h');
	n = ksnprintf(buf, 1, "abc");
	assert_int_equal(n, 3);
	assert_string_equal(buf, "");
}

static void unknown_conversion_is_visible(void **state)
{
	(void)state;
	char buf[32];
	ksnprintf(buf, sizeof(buf), "a%qb");
	assert_string_equal(buf, "a%qb");
	ksnprintf(buf, sizeof(buf), "end%");
	assert_string_equal(buf, "end%"); /* a dangling % is shown too */
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(integers),
		cmocka_unit_test(hex_octal_pointer),
		cmocka_unit_test(strings_chars),
		cmocka_unit_test(truncation),
		cmocka_unit_test(unknown_conversion_is_visible),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
