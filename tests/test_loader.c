// sources: loader/linux_hdr.c loader/mb_parse.c lib/format.c
/* Unit tests of the guest loader's image parsing: the bzImage setup header
 * (loader/linux_hdr.c) and the multiboot headers, ELF program headers and
 * address tags (loader/mb_parse.c).  Every image is in a heap block of
 * exactly its size, so that AddressSanitizer reports any read past it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/mb1.h"
#include "loader/linux_hdr.h"
#include "loader/mb_parse.h"

static char err[200];

static uint8_t *image(size_t size)
{
	uint8_t *p = malloc(size);
	assert_non_null(p);
	memset(p, 0, size);
	return p;
}

static void put16(uint8_t *p, size_t at, uint16_t v) { memcpy(p + at, &v, 2); }
static void put32(uint8_t *p, size_t at, uint32_t v) { memcpy(p + at, &v, 4); }
static void put64(uint8_t *p, size_t at, uint64_t v) { memcpy(p + at, &v, 8); }

/* A bzImage header of protocol `version`: one setup sector, syssize 16
 * bytes, LOADED_HIGH, header up to 0x202 + jump. */
static void bzimage_header(uint8_t *p, uint16_t version, uint8_t jump)
{
	p[HDR_SETUP_SECTS] = 1;
	put32(p, HDR_SYSSIZE, 1);
	put16(p, HDR_BOOT_FLAG, 0xaa55);
	p[HDR_JUMP_OFFSET] = jump;
	memcpy(p + HDR_MAGIC, "HdrS", 4);
	put16(p, HDR_VERSION, version);
	p[HDR_LOADFLAGS] = LOADED_HIGH;
	put32(p, HDR_CMDLINE_SIZE, 255);
	put32(p, HDR_INIT_SIZE, 0x1000);
	put64(p, HDR_PREF_ADDRESS, 0x1000000);
}

static void linux_valid(void **state)
{
	(void)state;
	uint8_t *p = image(1024 + 16);
	bzimage_header(p, PROTOCOL(2, 15), 0x6a);
	struct linux_image k;
	assert_int_equal(linux_check_header(p, 1024 + 16, &k, err, sizeof(err)), 0);
	assert_int_equal(k.setup_size, 1024);
	assert_int_equal(k.prot_size, 16);
	assert_int_equal(k.hdr_end, 0x26c);
	assert_int_equal(k.init_size, 0x1000);
	assert_int_equal(k.pref_address, 0x1000000);
	/* One byte of protected-mode code missing. */
	assert_int_equal(linux_check_header(p, 1024 + 15, &k, err, sizeof(err)), -1);
	free(p);
}

/* Issue 11: the loader read loadflags (0x211) of an image it had checked
 * only to 0x208 bytes.  An image that ends inside the setup header is
 * refused without reading past its end (ASan would report it). */
static void linux_short_image(void **state)
{
	(void)state;
	uint8_t full[0x400];
	memset(full, 0, sizeof(full));
	bzimage_header(full, PROTOCOL(2, 15), 0x6a);
	for (size_t size = 0x200; size <= sizeof(full); size++) {
		uint8_t *p = image(size);
		memcpy(p, full, size);
		struct linux_image k;
		assert_int_equal(linux_check_header(p, size, &k, err, sizeof(err)), -1);
		assert_non_null(strstr(err, size <= HDR_LOADFLAGS ? "too short for a Linux setup header"
								  : "shorter than its"));
		free(p);
	}
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(linux_valid),
		cmocka_unit_test(linux_short_image),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
