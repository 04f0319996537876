/* integrity.c - FNV-1a over .text and .rodata (see integrity.h). */
#include "boot/integrity.h"
#include "lib/log.h"

extern const char __text_start[], __text_end[], __rodata_start[], __rodata_end[];

static uint64_t boot_hash;

static uint64_t hash_range(uint64_t h, const char *s, const char *e)
{
	for (const char *p = s; p < e; p++) {
		h ^= (uint8_t)*p;
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t hash_image(void)
{
	uint64_t h = 0xcbf29ce484222325ull;
	h = hash_range(h, __text_start, __text_end);
	return hash_range(h, __rodata_start, __rodata_end);
}

void integrity_init(void) { boot_hash = hash_image(); }

bool integrity_check(void)
{
	uint64_t h = hash_image();
	if (h != boot_hash) {
		pr_err("integrity: code/rodata hash changed: %016llx at boot, %016llx now\n",
		       (unsigned long long)boot_hash, (unsigned long long)h);
		return false;
	}
	pr_info("integrity: code hash %016llx unchanged\n", (unsigned long long)h);
	return true;
}
