// sources: loader/mb_parse.c lib/format.c
// max_len: 4096
/* fuzz_multiboot.c - the multiboot2 and multiboot (v1) header readers and
 * what the loader copies for them (loader/mb_parse.c: parse_mb2_header,
 * parse_mb1_header, mb_image_segments, with the ELF reader behind them).
 *
 * Input: byte 0 bit 0 picks multiboot (1) or multiboot2 (0), bits 1-2 say
 * whether the boot information Nestor has holds ACPI 1.0 / 2.0 RSDPs (what
 * information requests it can satisfy); the rest is the kernel image, in a
 * heap block of exactly its size.  Checked: no read outside the image
 * (ASan); a header found where the specification puts it (alignment, first
 * 8/32 KiB, whole header in the file); a multiboot2 header accepted only if
 * every tag and information request it requires is one Nestor supports,
 * re-read here from the specification (Multiboot2 3.1.3-3.1.9); the
 * segments to copy inside the file, no more file bytes than memory bytes;
 * an address tag gives one segment and needs an entry tag; deterministic. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mb1.h"
#include "loader/mb_parse.h"

static void fail(const char *what)
{
	fprintf(stderr, "multiboot property violated: %s\n", what);
	abort();
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* Multiboot2 3.1.3: tags Nestor supports (end, information request,
 * address, entry address, console flags, framebuffer, module alignment,
 * relocatable); 3.1.4: boot information tags it provides. */
static bool tag_supported(unsigned t) { return t <= 6 || t == 10; }
static bool info_provided(uint32_t t, const struct mb2_info *mb)
{
	return t <= 4 || t == 6 || t == 21 || (t == 14 && mb->rsdp_old) || (t == 15 && mb->rsdp_new);
}

/* Re-reads the accepted header's tags the specification's way. */
static void check_mb2_header(const uint8_t *img, size_t size, long off, const struct mb2_info *mb)
{
	if (off < 0 || (off & 7) || off >= 32768 || (size_t)off + 16 > size)
		fail("multiboot2 header place");
	uint32_t hlen = rd32(img + off + 8);
	if (hlen < 16 || off + (size_t)hlen > size || rd32(img + off) != MB2_HEADER_MAGIC ||
	    rd32(img + off) + rd32(img + off + 4) + hlen + rd32(img + off + 12) != 0 || rd32(img + off + 4) != 0)
		fail("multiboot2 header accepted with a bad magic, checksum, length or architecture");
	size_t end = off + (size_t)hlen;
	for (size_t t = off + 16; t + 8 <= end;) {
		unsigned type = img[t] | img[t + 1] << 8, flags = img[t + 2] | img[t + 3] << 8;
		uint32_t tsize = rd32(img + t + 4);
		if (tsize < 8 || tsize > end - t)
			fail("multiboot2 header accepted with a tag of a bad size");
		if (type == 0)
			break;
		if (!(flags & 1) && !tag_supported(type))
			fail("multiboot2 header accepted with a required tag Nestor does not support");
		if (type == 1 && !(flags & 1))
			for (size_t i = 8; i + 4 <= tsize; i += 4)
				if (!info_provided(rd32(img + t + i), mb))
					fail("multiboot2 header accepted requiring boot information Nestor cannot provide");
		t += ((size_t)tsize + 7) & ~(size_t)7;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned sel = data[0];
	size -= 1;
	uint8_t *img = malloc(size ? size : 1);
	memcpy(img, data + 1, size);
	static const uint8_t rsdp[36];
	struct mb2_info mb;
	memset(&mb, 0, sizeof(mb));
	if (sel & 2)
		mb.rsdp_old = rsdp, mb.rsdp_old_len = 20;
	if (sel & 4)
		mb.rsdp_new = rsdp, mb.rsdp_new_len = 36;
	bool mb1 = sel & 1;
	char err[120];
	struct image_info ii, ii2;
	memset(&ii, 0, sizeof(ii));
	memset(&ii2, 0, sizeof(ii2));
	int r = mb1 ? parse_mb1_header(img, size, &ii, err, sizeof(err)) : parse_mb2_header(img, size, &mb, &ii, err, sizeof(err));
	int r2 = mb1 ? parse_mb1_header(img, size, &ii2, err, sizeof(err)) : parse_mb2_header(img, size, &mb, &ii2, err, sizeof(err));
	if (r != r2 || memcmp(&ii, &ii2, sizeof(ii)))
		fail("two reads of the same header differ");
	if (r != 0) {
		if (r != -1 || strnlen(err, sizeof(err)) == sizeof(err))
			fail("failure without a message");
		free(img);
		return 0;
	}
	if (mb1) {
		long off = ii.header_off;
		if (off < 0 || (off & 3) || off >= 8192 || (size_t)off + 12 > size || rd32(img + off) != MB1_HEADER_MAGIC ||
		    rd32(img + off) + rd32(img + off + 4) + rd32(img + off + 8) != 0)
			fail("multiboot header place, magic or checksum");
		uint32_t flags = rd32(img + off + 4);
		if (flags & 0xffff & ~(MB1_HF_PAGE_ALIGN | MB1_HF_MEMINFO))
			fail("multiboot header accepted with a requirement Nestor does not support");
		if (ii.have_addr && ((size_t)off + 32 > size || !(flags & MB1_HF_AOUT_KLUDGE)))
			fail("a.out kludge fields outside the file, or without the flag");
		if (ii.relocatable)
			fail("a multiboot (v1) kernel is never relocatable");
	} else {
		check_mb2_header(img, size, ii.header_off, &mb);
	}

	struct load_seg s[MB_MAX_SEGS], s2[MB_MAX_SEGS];
	unsigned n = 0, n2 = 0;
	uint64_t entry = 0, entry2 = 0;
	int rs = mb_image_segments(img, size, &ii, s, &n, &entry, err, sizeof(err));
	if (mb_image_segments(img, size, &ii, s2, &n2, &entry2, err, sizeof(err)) != rs ||
	    (rs == 0 && (n != n2 || entry != entry2 || memcmp(s, s2, n * sizeof(s[0])))))
		fail("two segment computations differ");
	if (rs == 0) {
		if (n < 1 || n > MB_MAX_SEGS || (ii.have_addr && (n != 1 || !ii.have_entry)))
			fail("segment count");
		if (ii.have_entry && entry != ii.entry)
			fail("the entry tag is not the entry point");
		for (unsigned i = 0; i < n; i++) {
			if (s[i].offset > size || s[i].filesz > size - s[i].offset)
				fail("a segment's file bytes outside the file");
			if (s[i].filesz > s[i].memsz)
				fail("more file bytes than memory bytes");
			volatile uint8_t sink = 0;
			if (s[i].filesz)
				sink ^= img[s[i].offset] ^ img[s[i].offset + s[i].filesz - 1];
			(void)sink;
		}
	}
	free(img);
	return 0;
}
