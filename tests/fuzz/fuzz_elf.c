// sources: loader/mb_parse.c lib/format.c
// max_len: 2048
/* fuzz_elf.c - the ELF program-header reader of the multiboot loader
 * (elf_segments in loader/mb_parse.c).
 *
 * Input: an ELF file (32- or 64-bit), in a heap block of exactly its size.
 * Checked: no read outside the file (ASan); on success 1..MB_MAX_SEGS
 * segments, each non-empty, its file bytes inside the file (what the loader
 * copies), no more file bytes than memory bytes, and entirely below 4 GiB
 * (the loader enters it in 32-bit protected mode); the same file gives the
 * same answer. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/mb_parse.h"

static void fail(const char *what)
{
	fprintf(stderr, "ELF property violated: %s\n", what);
	abort();
}


static void check_segments(const uint8_t *img, size_t size, const struct load_seg *s, unsigned n, bool below_4g)
{
	if (n < 1 || n > MB_MAX_SEGS)
		fail("segment count");
	for (unsigned i = 0; i < n; i++) {
		if (s[i].offset > size || s[i].filesz > size - s[i].offset)
			fail("a segment's file bytes outside the file");
		if (s[i].filesz > s[i].memsz)
			fail("more file bytes than memory bytes");
		if (below_4g && (s[i].memsz == 0 || s[i].paddr + s[i].memsz < s[i].paddr ||
				 s[i].paddr + s[i].memsz > (1ull << 32)))
			fail("a segment empty, wrapping, or not below 4 GiB");
		/* What the loader does with it: read the file bytes. */
		volatile uint8_t sink = 0;
		if (s[i].filesz)
			sink ^= img[s[i].offset] ^ img[s[i].offset + s[i].filesz - 1];
		(void)sink;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *img = malloc(size ? size : 1);
	memcpy(img, data, size);
	struct load_seg a[MB_MAX_SEGS], b[MB_MAX_SEGS];
	unsigned na = 0, nb = 0;
	uint64_t ea = 0, eb = 0;
	char err[120];
	int r = elf_segments(img, size, a, &na, &ea, err, sizeof(err));
	if (r == 0)
		check_segments(img, size, a, na, true);
	else if (r != -1 || strnlen(err, sizeof(err)) == sizeof(err))
		fail("failure without a message");
	if (elf_segments(img, size, b, &nb, &eb, err, sizeof(err)) != r ||
	    (r == 0 && (na != nb || ea != eb || memcmp(a, b, na * sizeof(a[0])))))
		fail("two reads of the same file differ");
	free(img);
	return 0;
}
