/* linux_hdr.c - checking a bzImage's setup header (see linux_hdr.h).
 * boot.rst, "The Real-Mode Kernel Header" and "Details of Header Fields". */
#include "loader/linux_hdr.h"
#include "lib/format.h"
#include "lib/string.h"

#define ERR(...)                                   \
	do {                                       \
		ksnprintf(err, errlen, __VA_ARGS__); \
		return -1;                         \
	} while (0)

static uint16_t get16(const uint8_t *p, unsigned off)
{
	uint16_t v;
	memcpy(&v, p + off, 2);
	return v;
}
static uint32_t get32(const uint8_t *p, unsigned off)
{
	uint32_t v;
	memcpy(&v, p + off, 4);
	return v;
}
static uint64_t get64(const uint8_t *p, unsigned off)
{
	uint64_t v;
	memcpy(&v, p + off, 8);
	return v;
}

int linux_check_header(const uint8_t *img, size_t size, struct linux_image *k, char *err, size_t errlen)
{
	/* Every field read before the setup sectors' size is known must be in
	 * the file: up to loadflags.  After that it reads nothing
	 * beyond setup_size, which it checks against the file's size. */
	if (size < HDR_LOADFLAGS + 1)
		ERR("the file is %zu bytes, too short for a Linux setup header", size);
	if (get16(img, HDR_BOOT_FLAG) != 0xaa55)
		ERR("no boot_flag 0xAA55 at offset 0x1fe: not a Linux kernel image");
	if (memcmp(img + HDR_MAGIC, "HdrS", 4))
		ERR("no \"HdrS\" signature at offset 0x202: not a Linux kernel of boot protocol 2.00 or later");
	k->img = img;
	k->version = get16(img, HDR_VERSION);
	/* 2.06 brought cmdline_size; what Nestor needs besides is older. */
	if (k->version < PROTOCOL(2, 6))
		ERR("Linux boot protocol %u.%02u is too old: Nestor needs 2.06 or later", k->version >> 8,
		    k->version & 0xff);
	/* A zImage must be loaded at 0x10000, in the real-mode world. */
	if (!(img[HDR_LOADFLAGS] & LOADED_HIGH))
		ERR("a zImage (LOADED_HIGH clear in loadflags): only a bzImage can be booted");
	/* setup_sects: 0 means 4, for historical reasons. */
	unsigned sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	k->setup_size = (sects + 1) * 512;
	k->prot_size = (uint64_t)get32(img, HDR_SYSSIZE) * 16;
	if (k->prot_size == 0)
		ERR("syssize is 0: the image has no protected-mode code");
	if (size < k->setup_size || size - k->setup_size < k->prot_size)
		ERR("the file is %zu bytes, shorter than its %u bytes of setup and %llu of protected-mode code: "
		    "truncated?", size, k->setup_size, (unsigned long long)k->prot_size);
	/* "32-bit Boot Protocol": the header ends at 0x202 + the byte at 0x201. */
	k->hdr_end = HDR_MAGIC + img[HDR_JUMP_OFFSET];
	if (k->hdr_end < HDR_INIT_SIZE + 4 && k->version >= PROTOCOL(2, 10))
		ERR("the setup header ends at 0x%x, before the fields of protocol 2.10", k->hdr_end);
	if (k->hdr_end > BP_HDR_ROOM_END)
		ERR("the setup header ends at 0x%x, past the room boot_params has for it (0x%x)", k->hdr_end,
		    BP_HDR_ROOM_END);
	k->relocatable = img[HDR_RELOCATABLE_KERNEL] != 0;
	k->alignment = get32(img, HDR_KERNEL_ALIGNMENT);
	if (k->relocatable && (k->alignment == 0 || (k->alignment & (k->alignment - 1))))
		ERR("relocatable kernel with kernel_alignment 0x%x, not a power of two", k->alignment);
	k->initrd_addr_max = get32(img, HDR_INITRD_ADDR_MAX);
	k->cmdline_size = get32(img, HDR_CMDLINE_SIZE);
	if (k->version >= PROTOCOL(2, 10)) {
		k->init_size = get32(img, HDR_INIT_SIZE);
		k->pref_address = get64(img, HDR_PREF_ADDRESS);
		if (k->init_size < k->prot_size)
			ERR("init_size 0x%llx is smaller than the protected-mode code (0x%llx bytes)",
			    (unsigned long long)k->init_size, (unsigned long long)k->prot_size);
	} else {
		/* Before 2.10 there is no init_size: reserve room for the kernel
		 * to decompress into, estimated at four times its compressed
		 * size; and such a kernel prefers 1 MiB. */
		k->init_size = 4 * k->prot_size;
		k->pref_address = ONE_MIB;
	}
	if (k->pref_address >= FOUR_GIB)
		ERR("pref_address 0x%llx is not below 4 GiB, where the 32-bit boot protocol loads the kernel",
		    (unsigned long long)k->pref_address);
	return 0;
}
