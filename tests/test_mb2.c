// sources: lib/mb2.c lib/format.c
/* Unit tests of the multiboot2 boot-information parser: valid input and
 * every way a hostile or buggy loader can get it wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/mb2.h"

static uint8_t buf[4096] __attribute__((aligned(8)));
static size_t len;
static struct mb2_info info;
static char err[200];

static void begin(void)
{
	memset(buf, 0xcc, sizeof(buf));
	len = 8;
}

static void put32(size_t at, uint32_t v) { memcpy(buf + at, &v, 4); }
static void put64(size_t at, uint64_t v) { memcpy(buf + at, &v, 8); }

/* Appends a tag with a raw body; returns the offset of the tag. */
static size_t tag(uint32_t type, const void *body, uint32_t blen)
{
	size_t at = len;
	put32(at, type);
	put32(at + 4, 8 + blen);
	if (blen)
		memcpy(buf + at + 8, body, blen);
	len = (at + 8 + blen + 7) & ~7ul;
	return at;
}

static void finish(void)
{
	tag(MB2_TAG_END, NULL, 0);
	put32(0, (uint32_t)len);
	put32(4, 0);
}

static int parse(void) { return mb2_parse(buf, sizeof(buf), &info, err, sizeof(err)); }

static void add_mmap(void)
{
	uint8_t b[8 + 2 * 24];
	memset(b, 0, sizeof(b));
	uint32_t es = 24, ev = 0;
	memcpy(b, &es, 4);
	memcpy(b + 4, &ev, 4);
	uint64_t e0[2] = { 0, 0x9f000 }, e1[2] = { 0x100000, 0x7f00000 };
	uint32_t t1 = 1;
	memcpy(b + 8, e0, 16);
	memcpy(b + 24, &t1, 4);
	memcpy(b + 32, e1, 16);
	memcpy(b + 48, &t1, 4);
	tag(MB2_TAG_MMAP, b, sizeof(b));
}

static void add_module(uint32_t start, uint32_t end, const char *s)
{
	uint8_t b[256];
	memcpy(b, &start, 4);
	memcpy(b + 4, &end, 4);
	strcpy((char *)b + 8, s);
	tag(MB2_TAG_MODULE, b, 8 + strlen(s) + 1);
}

static void valid(void **state)
{
	(void)state;
	begin();
	tag(MB2_TAG_CMDLINE, "loglevel=debug", 15);
	tag(MB2_TAG_LOADER_NAME, "GRUB", 5);
	add_mmap();
	add_module(0x200000, 0x300000, "guest.elf suite=cpuid");
	add_module(0x300000, 0x300000, "");
	uint8_t rsdp[20] = { 'R', 'S', 'D', ' ' };
	tag(MB2_TAG_ACPI_OLD, rsdp, 20);
	tag(9999, "ignored", 7); /* unknown tags are skipped */
	finish();
	assert_int_equal(parse(), 0);
	assert_string_equal(info.cmdline, "loglevel=debug");
	assert_string_equal(info.loader_name, "GRUB");
	assert_int_equal(info.n_mmap, 2);
	assert_int_equal(info.mmap[1].base, 0x100000);
	assert_int_equal(info.mmap[1].len, 0x7f00000);
	assert_int_equal(info.mmap[1].type, MB2_MEM_AVAILABLE);
	assert_int_equal(info.n_modules, 2);
	assert_string_equal(info.modules[0].string, "guest.elf suite=cpuid");
	assert_int_equal(info.modules[0].end, 0x300000);
	assert_non_null(info.rsdp_old);
	assert_null(info.rsdp_new);
}

static void bad_headers(void **state)
{
	(void)state;
	assert_int_equal(mb2_parse(NULL, 100, &info, err, sizeof(err)), -1);
	assert_int_equal(mb2_parse(buf + 4, 100, &info, err, sizeof(err)), -1); /* misaligned */
	begin();
	finish();
	assert_int_equal(mb2_parse(buf, 8, &info, err, sizeof(err)), -1); /* buffer too small */
	put32(0, 12);
	assert_int_equal(parse(), -1);
	assert_non_null(strstr(err, "16-byte minimum"));
	put32(0, 8192);
	assert_int_equal(parse(), -1);
	assert_non_null(strstr(err, "exceeds"));
}

static void bad_tags(void **state)
{
	(void)state;
	/* Tag size below 8. */
	begin();
	size_t t = tag(MB2_TAG_CMDLINE, "x", 2);
	finish();
	put32(t + 4, 4);
	assert_int_equal(parse(), -1);
	/* Tag running past total_size. */
	begin();
	t = tag(MB2_TAG_CMDLINE, "x", 2);
	finish();
	put32(t + 4, 4000);
	assert_int_equal(parse(), -1);
	assert_non_null(strstr(err, "runs past"));
	/* Huge size near 2^32 must not wrap the walk (it is past the end). */
	put32(t + 4, 0xfffffffc);
	assert_int_equal(parse(), -1);
	/* Missing end tag. */
	begin();
	tag(MB2_TAG_CMDLINE, "x", 2);
	put32(0, (uint32_t)len);
	assert_int_equal(parse(), -1);
	assert_non_null(strstr(err, "no end tag"));
	/* Strings not NUL-terminated. */
	begin();
	tag(MB2_TAG_CMDLINE, "abc", 3);
	finish();
	assert_int_equal(parse(), -1);
	begin();
	tag(MB2_TAG_LOADER_NAME, "", 0);
	finish();
	assert_int_equal(parse(), -1);
	/* End tag of the wrong size. */
	begin();
	t = tag(MB2_TAG_END, "12345678", 8);
	put32(0, (uint32_t)len);
	assert_int_equal(parse(), -1);
}

static void bad_modules(void **state)
{
	(void)state;
	begin();
	add_module(0x300000, 0x200000, "backwards");
	finish();
	assert_int_equal(parse(), -1);
	assert_non_null(strstr(err, "before it starts"));
	begin();
	tag(MB2_TAG_MODULE, "\0\0\0\0", 4);
	finish();
	assert_int_equal(parse(), -1);
	begin();
	for (int i = 0; i <= MB2_MAX_MODULES; i++)
		add_module(0, 0, "m");
	finish();
	assert_int_equal(parse(), -1);
	assert_non_null(strstr(err, "more than"));
}

static void bad_mmaps(void **state)
{
	(void)state;
	uint8_t b[8 + 24];
	memset(b, 0, sizeof(b));
	uint32_t es = 20;
	memcpy(b, &es, 4);
	begin();
	tag(MB2_TAG_MMAP, b, sizeof(b));
	finish();
	assert_int_equal(parse(), -1); /* entry size too small */
	es = 24;
	memcpy(b, &es, 4);
	uint32_t ver = 1;
	memcpy(b + 4, &ver, 4);
	begin();
	tag(MB2_TAG_MMAP, b, sizeof(b));
	finish();
	assert_int_equal(parse(), -1); /* unknown version */
	ver = 0;
	memcpy(b + 4, &ver, 4);
	begin();
	tag(MB2_TAG_MMAP, b, sizeof(b) - 4);
	finish();
	assert_int_equal(parse(), -1); /* partial entry */
	begin();
	size_t t = tag(MB2_TAG_MMAP, b, sizeof(b));
	put64(t + 16, 0xfffffffffffff000ull);
	put64(t + 24, 0x2000);
	finish();
	assert_int_equal(parse(), -1); /* wraps */
	assert_non_null(strstr(err, "wraps"));
}

/* Random bytes and random corruptions of a valid MBI: never crash, never
 * return a string that is not terminated inside the buffer (ASan checks). */
static void random_input(void **state)
{
	(void)state;
	srand(3);
	for (int round = 0; round < 20000; round++) {
		begin();
		tag(MB2_TAG_CMDLINE, "abc", 4);
		add_mmap();
		add_module(0x1000, 0x2000, "mod");
		finish();
		int flips = 1 + rand() % 4;
		for (int f = 0; f < flips; f++)
			buf[rand() % len] = (uint8_t)rand();
		if (parse() == 0) {
			if (info.cmdline)
				assert_true(strlen(info.cmdline) < sizeof(buf));
			for (unsigned i = 0; i < info.n_modules; i++)
				assert_true(info.modules[i].start <= info.modules[i].end);
		}
	}
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(valid),      cmocka_unit_test(bad_headers), cmocka_unit_test(bad_tags),
		cmocka_unit_test(bad_modules), cmocka_unit_test(bad_mmaps),  cmocka_unit_test(random_input),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
