// sources: lib/mb2.c lib/format.c
// max_len: 2048
/* fuzz_mb2.c - the multiboot2 boot information parser (lib/mb2.c).
 *
 * Input: byte 0 sets the size of the error buffer (0-255, to exercise
 * truncated messages), the rest is the MBI, in an 8-byte aligned heap block
 * of exactly its size (ASan reports any read past it).  Checked: on success
 * every pointer the parser returns lies inside the MBI with its string
 * NUL-terminated there, counts are within their arrays, memory map entries
 * do not wrap, modules do not end before they start; the answer does not
 * depend on bytes past total_size, and the same input gives the same
 * answer.  On failure the message is NUL-terminated within the buffer. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mb2.h"

static const uint8_t *base;
static size_t len;

static void fail(const char *what)
{
	fprintf(stderr, "mb2 property violated: %s\n", what);
	abort();
}

/* A pointer to n bytes inside the MBI. */
static bool inside(const void *p, size_t n)
{
	const uint8_t *q = p;
	return q >= base && q <= base + len && n <= (size_t)(base + len - q);
}

static void check_string(const char *s)
{
	if (!s)
		return;
	if (!inside(s, 1))
		fail("a string outside the MBI");
	size_t room = (size_t)(base + len - (const uint8_t *)s);
	if (strnlen(s, room) == room)
		fail("a string not NUL-terminated in the MBI");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t errlen = data[0];
	len = size - 1;
	uint8_t *mbi = malloc(len ? len : 1); /* 16-byte aligned, and exactly len bytes for ASan */
	memcpy(mbi, data + 1, len);
	base = mbi;
	static struct mb2_info a, b;
	char *err = malloc(errlen ? errlen : 1);
	int r = mb2_parse(mbi, len, &a, err, errlen);
	if (r == 0) {
		if (a.total_size < 16 || a.total_size > len || a.raw != mbi)
			fail("total_size");
		check_string(a.cmdline);
		check_string(a.loader_name);
		if (a.n_mmap > MB2_MAX_MMAP || a.n_modules > MB2_MAX_MODULES)
			fail("counts");
		for (unsigned i = 0; i < a.n_mmap; i++)
			if (a.mmap[i].base + a.mmap[i].len < a.mmap[i].base)
				fail("a memory map entry wraps around");
		for (unsigned i = 0; i < a.n_modules; i++) {
			if (a.modules[i].end < a.modules[i].start)
				fail("a module ends before it starts");
			if (!a.modules[i].string)
				fail("a module without its string");
			check_string(a.modules[i].string);
		}
		if ((a.rsdp_old && (a.rsdp_old_len < 20 || !inside(a.rsdp_old, a.rsdp_old_len))) ||
		    (a.rsdp_new && (a.rsdp_new_len < 36 || !inside(a.rsdp_new, a.rsdp_new_len))))
			fail("an RSDP copy outside the MBI or too short");
		/* Only total_size bytes are the MBI. */
		size_t saved = len;
		len = a.total_size;
		if (mb2_parse(mbi, a.total_size, &b, NULL, 0) != 0 || memcmp(&a, &b, sizeof(a)))
			fail("the answer depends on bytes past total_size");
		len = saved;
	} else if (r != -1) {
		fail("return value");
	} else if (errlen && strnlen(err, errlen) == errlen) {
		fail("error message not NUL-terminated");
	}
	/* Deterministic. */
	if (mb2_parse(mbi, len, &b, NULL, 0) != r || (r == 0 && memcmp(&a, &b, sizeof(a))))
		fail("two parses of the same MBI differ");
	free(err);
	free(mbi);
	return 0;
}
