/* caps_models.h - the VMX capabilities Nestor offers its guest on three
 * of Bochs' CPU models, as the guest reads them at depth 1 (MSRs
 * 0x480-0x490, `msr` suite, corei7_skylake_x / tigerlake /
 * corei7_sandy_bridge_2600k): the inputs the entry checks and the EPT12
 * walk see in practice.  Shared by the host fuzzers of nested/checks.c. */
#ifndef TESTS_FUZZ_CAPS_MODELS_H
#define TESTS_FUZZ_CAPS_MODELS_H

#include "nested/nested.h"

static const struct nested_caps caps_models[3] = {
	{ /* corei7_skylake_x */
	  .basic = 0x00d8100000004e53, .pin = 0x0000007f00000016, .proc = 0xf7d9fffe0401e172,
	  .exit = 0x007fefff00036dff, .entry = 0x0000d3ff000011ff, .misc = 0x00000000600401e0,
	  .cr0_fixed0 = 0x80000021, .cr0_fixed1 = 0xffffffff, .cr4_fixed0 = 0x2000, .cr4_fixed1 = 0x3727ff,
	  .vmcs_enum = 0x2e, .proc2 = 0x001118ee00000000, .ept_vpid = 0x00000f0106134141,
	  .true_pin = 0x0000007f00000016, .true_proc = 0xf7d9fffe04006172, .true_exit = 0x007fefff00036dfb,
	  .true_entry = 0x0000d3ff000011fb },
	{ /* tigerlake: IA32_VMX_BASIC[56] (any error code), CR4.CET and more CR4 bits */
	  .basic = 0x01d8100000004e53, .pin = 0x0000007f00000016, .proc = 0xf7d9fffe0401e172,
	  .exit = 0x007fefff00036dff, .entry = 0x0000d3ff000011ff, .misc = 0x00000000600401e0,
	  .cr0_fixed0 = 0x80000021, .cr0_fixed1 = 0xffffffff, .cr4_fixed0 = 0x2000, .cr4_fixed1 = 0xf72fff,
	  .vmcs_enum = 0x2e, .proc2 = 0x001118ee00000000, .ept_vpid = 0x00000f0106134141,
	  .true_pin = 0x0000007f00000016, .true_proc = 0xf7d9fffe04006172, .true_exit = 0x007fefff00036dfb,
	  .true_entry = 0x0000d3ff000011fb },
	{ /* corei7_sandy_bridge_2600k: no EPT A/D, fewer secondary controls, no zero-length injection */
	  .basic = 0x00d8100000004e53, .pin = 0x0000007f00000016, .proc = 0xf7d9fffe0401e172,
	  .exit = 0x007fefff00036dff, .entry = 0x0000d3ff000011ff, .misc = 0x00000000000401e0,
	  .cr0_fixed0 = 0x80000021, .cr0_fixed1 = 0xffffffff, .cr4_fixed0 = 0x2000, .cr4_fixed1 = 0x627ff,
	  .vmcs_enum = 0x2e, .proc2 = 0x000000ee00000000, .ept_vpid = 0x00000f0106114141,
	  .true_pin = 0x0000007f00000016, .true_proc = 0xf7d9fffe04006172, .true_exit = 0x007fefff00036dfb,
	  .true_entry = 0x0000d3ff000011fb },
};

/* A reader of fuzz input bytes: zeros once they run out. */
struct input {
	const uint8_t *p;
	size_t n;
};
static inline uint64_t take(struct input *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++) {
		uint64_t b = 0;
		if (in->n)
			b = *in->p++, in->n--;
		v |= b << (8 * i);
	}
	return v;
}

/* Caps derived from a model by the input: features removed (allowed-1
 * bits cleared), controls made mandatory (allowed-0 bits set among the
 * allowed-1), fewer CR3 targets, no zero-length injection, BASIC[56]
 * flipped, more CR0/CR4 bits fixed to 1.  What Nestor offers is a
 * restriction of the CPU's capabilities, so apart from BASIC[56] (which it
 * copies from the CPU, either way) the derived sets never offer more than
 * a model does. */
static inline uint64_t restrict_ctl(uint64_t cap, uint32_t clear, uint32_t force)
{
	uint32_t may = (uint32_t)(cap >> 32) & ~clear;
	uint32_t must = ((uint32_t)cap | force) & may;
	return (uint64_t)may << 32 | must;
}

static inline void derive_caps(struct nested_caps *c, struct input *in)
{
	*c = caps_models[take(in, 1) % 3];
	c->true_pin = restrict_ctl(c->true_pin, (uint32_t)take(in, 4), (uint32_t)take(in, 4));
	c->true_proc = restrict_ctl(c->true_proc, (uint32_t)take(in, 4), (uint32_t)take(in, 4));
	c->true_exit = restrict_ctl(c->true_exit, (uint32_t)take(in, 4), (uint32_t)take(in, 4));
	c->true_entry = restrict_ctl(c->true_entry, (uint32_t)take(in, 4), (uint32_t)take(in, 4));
	c->proc2 = restrict_ctl(c->proc2, (uint32_t)take(in, 4), (uint32_t)take(in, 4));
	c->ept_vpid &= ~take(in, 8);
	uint64_t m = take(in, 2);
	unsigned cr3 = (unsigned)(c->misc >> 16) & 0x1ff;
	c->misc = (c->misc & ~(0x1ffull << 16)) | (uint64_t)(cr3 < (m & 0x1ff) ? cr3 : (m & 0x1ff)) << 16;
	if (m & 0x200)
		c->misc &= ~(1ull << 30);
	if (m & 0x400)
		c->basic ^= 1ull << 56;
	c->cr0_fixed0 |= take(in, 4) & c->cr0_fixed1;
	c->cr4_fixed0 |= take(in, 4) & c->cr4_fixed1;
}

#endif
