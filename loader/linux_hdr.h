/* linux_hdr.h - the setup header of a Linux bzImage, checked (boot.rst,
 * "The Real-Mode Kernel Header").  A pure function of the image's bytes,
 * shared by the Linux loader (linux.c) and the host fuzzers (tests/fuzz/):
 * the image is a guest's module, untrusted input. */
#ifndef LOADER_LINUX_HDR_H
#define LOADER_LINUX_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Setup header fields: their offsets are the same in the image and in
 * boot_params (boot.rst, "The Real-Mode Kernel Header"). */
enum {
	HDR_START = 0x1f1,
	HDR_SETUP_SECTS = 0x1f1,
	HDR_SYSSIZE = 0x1f4,
	HDR_BOOT_FLAG = 0x1fe,
	HDR_JUMP_OFFSET = 0x201, /* second byte of the short jump at 0x200 */
	HDR_MAGIC = 0x202,
	HDR_VERSION = 0x206,
	HDR_TYPE_OF_LOADER = 0x210,
	HDR_LOADFLAGS = 0x211,
	HDR_CODE32_START = 0x214,
	HDR_RAMDISK_IMAGE = 0x218,
	HDR_RAMDISK_SIZE = 0x21c,
	HDR_CMD_LINE_PTR = 0x228,
	HDR_INITRD_ADDR_MAX = 0x22c,
	HDR_KERNEL_ALIGNMENT = 0x230,
	HDR_RELOCATABLE_KERNEL = 0x234,
	HDR_CMDLINE_SIZE = 0x238,
	HDR_PREF_ADDRESS = 0x258,
	HDR_INIT_SIZE = 0x260,
};
/* boot_params (zero-page.rst): the field after the room kept for the setup header. */
#define BP_HDR_ROOM_END 0x290

#define LOADED_HIGH 0x01
#define PROTOCOL(major, minor) ((major) << 8 | (minor))
#define FOUR_GIB (1ull << 32)
#define ONE_MIB 0x100000ull

/* What the setup header says, checked. */
struct linux_image {
	const uint8_t *img;
	uint16_t version;
	uint32_t setup_size;   /* boot sector and setup sectors, in bytes */
	uint32_t hdr_end;      /* end of the setup header */
	uint64_t prot_size;    /* the protected-mode code (syssize paragraphs) */
	uint64_t init_size;    /* memory the kernel needs from its load address */
	uint64_t pref_address; /* where it wants to be loaded */
	bool relocatable;
	uint32_t alignment;
	uint32_t initrd_addr_max; /* highest byte the initrd may occupy */
	uint32_t cmdline_size;    /* longest command line, without the NUL */
};

/* Checks the setup header of the size bytes at img and fills *k: 0, or -1
 * with a message.  On success the setup sectors and the protected-mode
 * code lie within the file: setup_size + prot_size <= size, and the
 * header, [HDR_START, hdr_end), within the setup sectors. */
int linux_check_header(const uint8_t *img, size_t size, struct linux_image *k, char *err, size_t errlen);

#endif
