// sources: lib/cmdline.c lib/format.c
// max_len: 256
/* fuzz_cmdline.c - the command-line parser (lib/cmdline.c): cmdline_parse
 * with an option table like Nestor's own (boot/config.c: every option type,
 * each destination an object of exactly its type's size, so that ASan
 * reports a write of the wrong width), and parse_uint / parse_size against
 * a reference written here from their specification (cmdline.h).
 *
 * Input: byte 0 selects what to test and the error buffer's size, the rest
 * is the text.  Checked: no crash; on success every value is within its
 * option's range, choices index their list, strings fit and are
 * NUL-terminated; on failure the message is NUL-terminated; parse_uint and
 * parse_size accept exactly what the reference accepts, with its value. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cmdline.h"

static void fail(const char *what, const char *text, size_t n)
{
	fprintf(stderr, "cmdline property violated: %s: '%.*s'\n", what, (int)n, text);
	abort();
}

/* parse_uint's specification: decimal digits, or 0x/0X and hex digits;
 * at least one digit; no sign, no space; the value fits in 64 bits. */
static int ref_uint(const char *s, size_t n, uint64_t *out)
{
	unsigned base = 10;
	size_t i = 0;
	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16, i = 2;
	if (i == n)
		return -1;
	unsigned __int128 v = 0;
	for (; i < n; i++) {
		int d;
		char c = s[i];
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * base + (unsigned)d;
		if (v > UINT64_MAX)
			return -1;
	}
	*out = (uint64_t)v;
	return 0;
}

/* parse_size: a number, optionally followed by K, M or G (either case),
 * a binary multiple; the product fits in 64 bits. */
static int ref_size(const char *s, size_t n, uint64_t *out)
{
	unsigned shift = 0;
	if (n && strchr("kKmMgG", s[n - 1]) && s[n - 1])
		shift = (s[n - 1] == 'k' || s[n - 1] == 'K') ? 10 : (s[n - 1] == 'm' || s[n - 1] == 'M') ? 20 : 30, n--;
	uint64_t v;
	if (ref_uint(s, n, &v))
		return -1;
	if (shift && ((unsigned __int128)v << shift) > UINT64_MAX)
		return -1;
	*out = v << shift;
	return 0;
}

static const char *const levels[] = { "error", "warn", "info", "debug", "trace", NULL };
static const char *const formats[] = { "auto", "multiboot2", "multiboot", "bootsector", "linux", NULL };
static const char *const empty_choice[] = { NULL };
static const char *const hidden[] = { "true_ctls", "vpid", NULL };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned sel = data[0];
	size_t n = size - 1;
	char *text = malloc(n + 1);
	memcpy(text, data + 1, n);
	text[n] = '\0';

	if (sel & 1) {
		/* parse_uint / parse_size on the bytes as they are (NULs too),
		 * from an exact-size copy. */
		char *raw = malloc(n ? n : 1);
		memcpy(raw, data + 1, n);
		uint64_t a = 0, b = 0;
		int ra = parse_uint(raw, n, &a), rb = ref_uint(raw, n, &b);
		if (ra != rb || (ra == 0 && a != b))
			fail("parse_uint differs from its specification", raw, n);
		ra = parse_size(raw, n, &a), rb = ref_size(raw, n, &b);
		if (ra != rb || (ra == 0 && a != b))
			fail("parse_size differs from its specification", raw, n);
		free(raw);
		free(text);
		return 0;
	}

	/* Destinations of exactly their types' sizes, on the heap. */
	unsigned *level = malloc(sizeof(unsigned)), *format = malloc(sizeof(unsigned)),
		 *never = malloc(sizeof(unsigned)), *hide = malloc(sizeof(unsigned)), *nothing = malloc(sizeof(unsigned));
	bool *flag = malloc(sizeof(bool)), *flag2 = malloc(sizeof(bool));
	uint64_t *mem = malloc(8), *drive = malloc(8), *pool = malloc(8);
	size_t strmax = 1 + (sel >> 4); /* 1..16 bytes */
	char *str = malloc(strmax);
	*level = *format = *never = *hide = *nothing = 99;
	*flag = *flag2 = false;
	*mem = *drive = *pool = 7;
	memset(str, 'X', strmax); /* no NUL: a string option must add it */
	const struct opt_desc opts[] = {
		{ "loglevel", OPT_CHOICE, level, 0, 0, levels, "" },
		{ "e9log", OPT_FLAG, flag, 0, 0, NULL, "" },
		{ "mem", OPT_SIZE, mem, 4ull << 20, 1ull << 30, NULL, "" },
		{ "guest", OPT_CHOICE, format, 0, 0, formats, "" },
		{ "boot_drive", OPT_UINT, drive, 0, 0xff, NULL, "" },
		{ "nested", OPT_FLAG, flag2, 0, 0, NULL, "" },
		{ "snap_pool", OPT_SIZE, pool, 0, 1ull << 31, NULL, "" },
		{ "suite", OPT_STRING, str, 0, strmax, NULL, "" },
		{ "none", OPT_CHOICE, never, 0, 0, empty_choice, "" },
		{ "nested_hide", OPT_SET, hide, 0, 0, hidden, "" },
		{ "noset", OPT_SET, nothing, 0, 0, empty_choice, "" },
	};
	size_t errlen = (sel >> 1) & 7 ? ((sel >> 1) & 7) * 9 : 0; /* 0..63 */
	char *err = malloc(errlen ? errlen : 1);
	int r = cmdline_parse(text, opts, sizeof(opts) / sizeof(opts[0]), err, errlen);
	if (r == 0) {
		if (*level != 99 && *level >= 5)
			fail("choice index beyond its list", text, n);
		if (*format != 99 && *format >= 5)
			fail("choice index beyond its list", text, n);
		if (*never != 99)
			fail("a choice from an empty list", text, n);
		if (*hide != 99 && (*hide & ~3u))
			fail("a set with a member beyond its list", text, n);
		if (*nothing != 99 && *nothing)
			fail("a member of an empty set", text, n);
		if (*mem != 7 && (*mem < (4ull << 20) || *mem > (1ull << 30)))
			fail("a size out of its range", text, n);
		if (*pool != 7 && *pool > (1ull << 31))
			fail("a size out of its range", text, n);
		if (*drive != 7 && *drive > 0xff)
			fail("a number out of its range", text, n);
		if (*flag && !strstr(text, "e9log"))
			fail("a flag set that was not named", text, n);
		if (strnlen(str, strmax) == strmax && strstr(text, "suite="))
			fail("a string not NUL-terminated in its buffer", text, n);
	} else if (r != -1) {
		fail("return value", text, n);
	} else if (errlen && strnlen(err, errlen) == errlen) {
		fail("error message not NUL-terminated", text, n);
	}
	free(err);
	free(str);
	free(level), free(format), free(never), free(hide), free(nothing), free(flag), free(flag2), free(mem), free(drive), free(pool);
	free(text);
	return 0;
}
