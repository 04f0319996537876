// sources: lib/cmdline.c lib/format.c
/* Unit tests of the strict command-line parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lib/cmdline.h"

static bool flag;
static uint64_t num, size;
static unsigned choice, set;
static char str[8];
static const char *const choices[] = { "error", "warn", "info", NULL };

static const struct opt_desc opts[] = {
	{ "flag", OPT_FLAG, &flag, 0, 0, NULL, "" },
	{ "num", OPT_UINT, &num, 1, 100, NULL, "" },
	{ "size", OPT_SIZE, &size, 0, UINT64_MAX, NULL, "" },
	{ "level", OPT_CHOICE, &choice, 0, 0, choices, "" },
	{ "name", OPT_STRING, str, 0, sizeof(str), NULL, "" },
	{ "hide", OPT_SET, &set, 0, 0, choices, "" },
};

static char err[200];

static int parse(const char *s)
{
	flag = false;
	num = size = 0;
	choice = 0;
	set = 99;
	str[0] = 0;
	err[0] = 0;
	return cmdline_parse(s, opts, sizeof(opts) / sizeof(opts[0]), err, sizeof(err));
}

static void good_lines(void **state)
{
	(void)state;
	assert_int_equal(parse(NULL), 0);
	assert_int_equal(parse(""), 0);
	assert_int_equal(parse("   \t "), 0);
	assert_int_equal(parse("flag num=0x10 size=16M level=warn name=abc"), 0);
	assert_true(flag);
	assert_int_equal(num, 16);
	assert_int_equal(size, 16 << 20);
	assert_int_equal(choice, 1);
	assert_string_equal(str, "abc");
	assert_int_equal(parse("flag=off size=4k size=1G"), 0); /* last one wins */
	assert_false(flag);
	assert_int_equal(size, 1ull << 30);
	assert_int_equal(parse("size=0x1000 num=100"), 0);
	assert_int_equal(size, 4096);
	assert_int_equal(num, 100);
	assert_int_equal(parse("name=1234567"), 0); /* 7 chars + NUL fits 8 */
	assert_int_equal(parse("hide=info,error"), 0);
	assert_int_equal(set, 5);
	assert_int_equal(parse("hide=warn"), 0);
	assert_int_equal(set, 2);
	assert_int_equal(parse("hide=warn hide=none"), 0); /* last one wins */
	assert_int_equal(set, 0);
}

static void bad_lines(void **state)
{
	(void)state;
	assert_int_equal(parse("bogus"), -1);
	assert_string_equal(err, "unknown option 'bogus'");
	assert_int_equal(parse("flag=maybe"), -1);
	assert_int_equal(parse("num=0"), -1); /* below min */
	assert_non_null(strstr(err, "out of range"));
	assert_int_equal(parse("num=101"), -1);
	assert_int_equal(parse("num="), -1);
	assert_int_equal(parse("num"), -1);
	assert_int_equal(parse("num=12abc"), -1);
	assert_int_equal(parse("num=0x"), -1);
	assert_int_equal(parse("size=16Q"), -1);
	assert_int_equal(parse("size=M"), -1);
	assert_int_equal(parse("size=99999999999999999999"), -1); /* overflow */
	assert_int_equal(parse("size=17179869184G"), -1);         /* overflow on shift */
	assert_int_equal(parse("level=loud"), -1);
	assert_string_equal(err, "option 'level' must be one of error|warn|info, got 'loud'");
	assert_int_equal(parse("level"), -1);
	assert_int_equal(parse("name=12345678"), -1); /* too long */
	assert_int_equal(parse("name"), -1);
	assert_int_equal(parse("=5"), -1);
	assert_int_equal(parse("flagx"), -1); /* prefixes are not names */
	assert_int_equal(parse("hide=info,loud"), -1);
	assert_string_equal(err, "option 'hide' takes none or a comma-separated list of error,warn,info (each once), "
				 "got 'info,loud'");
	assert_int_equal(parse("hide"), -1);
	assert_int_equal(parse("hide="), -1);
	assert_int_equal(parse("hide=warn,"), -1);
	assert_int_equal(parse("hide=,warn"), -1);
	assert_int_equal(parse("hide=warn,warn"), -1);
	assert_int_equal(parse("hide=none,warn"), -1);
	assert_int_equal(parse("hide=inf"), -1);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(good_lines),
		cmocka_unit_test(bad_lines),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
