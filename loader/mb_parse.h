/* mb_parse.h - reading a multiboot kernel image: where its multiboot2 or
 * multiboot (v1) header is and what it asks for, and which parts of the
 * file go where in memory (the address tag / a.out kludge, or the ELF
 * program headers).  Pure functions of the image's bytes, shared by the
 * loader (multiboot.c) and the host fuzzers (tests/fuzz/): the image is a
 * guest's module, untrusted input, and nothing here reads outside
 * [img, img + size). */
#ifndef LOADER_MB_PARSE_H
#define LOADER_MB_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/mb2.h"

/* What the multiboot header says. */
struct image_info {
	bool have_addr;      /* address tag / a.out kludge */
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr;
	bool have_entry;
	uint32_t entry;
	bool relocatable;
	uint32_t min_addr, max_addr, align, preference;
	long header_off;
};

/* A part of the file to copy to physical address paddr: filesz bytes from
 * offset, then zeros up to memsz. */
struct load_seg {
	uint64_t paddr, offset, filesz, memsz;
};
#define MB_MAX_SEGS 16

/* Where the image's multiboot headers are, if any (offsets, or -1). */
long find_mb2_header(const uint8_t *img, size_t size);
long find_mb1_header(const uint8_t *img, size_t size);

/* Multiboot2 specification 3.1; mb: the boot information Nestor has, for
 * the information requests it can satisfy.  0, or -1 with a message. */
int parse_mb2_header(const uint8_t *img, size_t size, const struct mb2_info *mb, struct image_info *ii, char *err,
		     size_t errlen);
/* Multiboot 0.6.96, section 3.1.  0, or -1 with a message. */
int parse_mb1_header(const uint8_t *img, size_t size, struct image_info *ii, char *err, size_t errlen);

/* The ELF program headers' loadable segments (at most MB_MAX_SEGS, each
 * within the file and below 4 GiB) and the entry point. */
int elf_segments(const uint8_t *img, size_t size, struct load_seg *segs, unsigned *nsegs, uint64_t *entry,
		 char *err, size_t errlen);

/* What to copy where for a parsed header: the address tag's one segment,
 * or the ELF segments; *entry from the entry tag when there is one. */
int mb_image_segments(const uint8_t *img, size_t size, const struct image_info *ii, struct load_seg *segs,
		      unsigned *nsegs, uint64_t *entry, char *err, size_t errlen);

#endif
