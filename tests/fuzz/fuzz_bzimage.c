// sources: loader/linux_hdr.c lib/format.c
// max_len: 4096
/* fuzz_bzimage.c - the Linux bzImage setup-header check
 * (linux_check_header in loader/linux_hdr.c).
 *
 * Input: the kernel image, in a heap block of exactly its size.  Checked:
 * no read outside the image (ASan: issue 11 found a read of loadflags past
 * a 0x208-byte check); on success what the loader then does stays inside
 * the file - it copies [HDR_START, hdr_end) into boot_params and
 * prot_size bytes from setup_size - and the header's promises hold (boot
 * protocol >= 2.06, a bzImage, hdr_end within boot_params' room,
 * init_size covering the code, a power-of-two alignment when relocatable,
 * a load address below 4 GiB), with the values read where boot.rst puts
 * them; deterministic. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/linux_hdr.h"

static void fail(const char *what)
{
	fprintf(stderr, "bzImage property violated: %s\n", what);
	abort();
}

static uint32_t rd32(const uint8_t *p, unsigned off)
{
	uint32_t v;
	memcpy(&v, p + off, 4);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *img = malloc(size ? size : 1);
	memcpy(img, data, size);
	struct linux_image k, k2;
	char err[160];
	memset(&k, 0, sizeof(k));
	memset(&k2, 0, sizeof(k2));
	int r = linux_check_header(img, size, &k, err, sizeof(err));
	if (linux_check_header(img, size, &k2, err, sizeof(err)) != r || (r == 0 && memcmp(&k, &k2, sizeof(k))))
		fail("two checks of the same image differ");
	if (r == 0) {
		if (k.img != img || k.setup_size > size || k.prot_size > size - k.setup_size || k.prot_size == 0)
			fail("setup sectors or protected-mode code outside the file");
		if (k.hdr_end < HDR_MAGIC || k.hdr_end > BP_HDR_ROOM_END || k.hdr_end > k.setup_size)
			fail("setup header end outside the setup sectors or boot_params' room");
		if (k.version < PROTOCOL(2, 6) || !(img[HDR_LOADFLAGS] & LOADED_HIGH))
			fail("an old protocol or a zImage accepted");
		if (k.setup_size != ((img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4) + 1u) * 512 ||
		    k.prot_size != (uint64_t)rd32(img, HDR_SYSSIZE) * 16 || k.cmdline_size != rd32(img, HDR_CMDLINE_SIZE) ||
		    k.initrd_addr_max != rd32(img, HDR_INITRD_ADDR_MAX))
			fail("a field not read where boot.rst puts it");
		if (k.init_size < k.prot_size || k.pref_address >= FOUR_GIB)
			fail("init_size below the code, or a load address above 4 GiB");
		if (k.relocatable && (k.alignment == 0 || (k.alignment & (k.alignment - 1))))
			fail("a relocatable kernel without a power-of-two alignment");
		/* What load_linux reads next. */
		volatile uint8_t sink = img[HDR_START] ^ img[k.hdr_end - 1] ^ img[k.setup_size] ^
					img[k.setup_size + k.prot_size - 1];
		(void)sink;
	} else if (r != -1 || strnlen(err, sizeof(err)) == sizeof(err)) {
		fail("failure without a message");
	}
	free(img);
	return 0;
}
