// sources: nested/checks.c nested/vmcs12.c vmx/vmcs.c
// max_len: 256
/* fuzz_ept12_walk.c - the EPT12 walk (ept12_walk in nested/checks.c)
 * against a walk written here from the SDM (Vol. 3C 29.3.2 translation,
 * 29.3.3.1 misconfigurations; the "EPT" sections of chapter 28 in older
 * editions).
 *
 * Input: byte 0 picks the capabilities (caps_models.h), byte 1 the
 * physical-address width (32-52), then the EPT pointer and the
 * guest-physical address (8 bytes each), then the guest's memory: the
 * first read of each address takes the next record (1 flag byte: bit 0 =
 * unreadable, then the 8-byte entry); later reads of the same address see
 * the same thing; addresses read after the records run out hold 0.
 *
 * Checked: at most 4 reads, exactly at the addresses the SDM's walk reads
 * (the table of each level, indexed by the address's 9 bits for it); the
 * same result as the reference: not present, misconfiguration (write
 * without read, unsupported execute-only, reserved bits - beyond the
 * address width, 7:3 or 6:3 of entries that reference a table, 29:12 or
 * 20:12 of large pages, bit 7 where no page of that size exists - and
 * reserved memory types 2, 3, 7 in the leaf), or the translation; for a
 * translation, rights within every entry's rights (possibly none: a
 * read-only table above an execute-only page) and the address in the
 * leaf's page with the offset of the guest-physical address; deterministic.
 * (The deviations these harnesses found are fixed in checks.c.) */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nested/checks.h"
#include "vmx/vmx_defs.h"
#include "caps_models.h"

static void fail(const char *what)
{
	fprintf(stderr, "EPT12 walk property violated: %s\n", what);
	abort();
}

/* The guest's memory, filled in as it is read. */
struct memory {
	struct input in;
	unsigned n;
	struct { uint64_t pa, val; bool readable; } cell[16];
	unsigned nreads;
	uint64_t reads[8];
	bool frozen; /* the reference reads what the walk under test saw */
};

static bool mem_read(void *ctx, uint64_t pa, uint64_t *entry)
{
	struct memory *m = ctx;
	if (m->nreads < 8)
		m->reads[m->nreads] = pa;
	m->nreads++;
	unsigned i = 0;
	while (i < m->n && m->cell[i].pa != pa)
		i++;
	if (i == m->n) {
		if (m->frozen || m->n == 16)
			return *entry = 0, true;
		unsigned flags = (unsigned)take(&m->in, 1);
		m->cell[m->n].pa = pa;
		m->cell[m->n].val = take(&m->in, 8);
		m->cell[m->n].readable = !(flags & 1);
		m->n++;
	}
	*entry = m->cell[i].val;
	return m->cell[i].readable;
}

/* The SDM's walk. */
static int ref_walk(struct memory *m, uint64_t eptp, uint64_t gpa, const struct check_env *env, struct ept_leaf *out,
		    unsigned *perms_seen)
{
	uint64_t cap = env->caps->ept_vpid;
	uint64_t table = eptp & 0x000ffffffffff000ull;
	uint64_t rsvd = 0x000ffffffffff000ull & ~((1ull << env->maxphyaddr) - 1); /* bits 51:MAXPHYADDR */
	unsigned rights = 7;
	*perms_seen = 7;
	for (int level = 4; level >= 1; level--) {
		unsigned shift = 12 + 9 * (level - 1);
		uint64_t e;
		if (!mem_read(m, table + ((gpa >> shift) & 511) * 8, &e))
			e = 0;
		unsigned perm = e & 7;
		if (perm == 0)
			return EPT_WALK_NOT_PRESENT;
		if ((perm & 3) == 2 || (perm == 4 && !(cap & EPT_CAP_EXEC_ONLY)) || (e & rsvd))
			return EPT_WALK_MISCONFIG;
		rights &= perm;
		*perms_seen &= perm;
		bool large = level > 1 && (e & (1ull << 7));
		if (large) {
			/* Bit 7: reserved in a PML4E; a 1-GByte page in a PDPTE, a
			 * 2-MByte page in a PDE, if the CPU supports them. */
			if (level == 4 || (level == 3 && !(cap & EPT_CAP_1G)) || (level == 2 && !(cap & EPT_CAP_2M)))
				return EPT_WALK_MISCONFIG;
		}
		if (level > 1 && !large) {
			/* References a table: bits 7:3 (PML4E) or 6:3 reserved. */
			if (e & 0x78)
				return EPT_WALK_MISCONFIG;
			table = e & 0x000ffffffffff000ull;
			continue;
		}
		unsigned mt = (e >> 3) & 7;
		if (mt == 2 || mt == 3 || mt == 7)
			return EPT_WALK_MISCONFIG;
		uint64_t page = 1ull << shift;
		if (e & (page - 1) & ~0xfffull) /* 29:12 or 20:12 of a large page */
			return EPT_WALK_MISCONFIG;
		out->addr = (e & 0x000ffffffffff000ull & ~(page - 1)) | (gpa & (page - 1));
		out->rights = rights;
		out->mtype = mt | ((e >> 6) & 1) << 3;
		out->shift = shift;
		return EPT_WALK_OK;
	}
	fail("reference walk ran out of levels");
	return -1;
}

/* The outcome (result, number of reads, caps set) is made coverage, so
 * that the corpus holds every kind of walk (libFuzzer reads counters in
 * this section as it reads its own). */
__attribute__((section("__libfuzzer_extra_counters"), used)) static uint8_t outcome[3][5][4];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct nested_caps caps;
	unsigned sel = (unsigned)take(&in, 1);
	if ((sel & 3) == 3)
		derive_caps(&caps, &in);
	else
		caps = caps_models[(sel & 3) % 3];
	struct check_env env = { &caps, 32 + (unsigned)take(&in, 1) % 21 };
	uint64_t eptp = take(&in, 8), gpa = take(&in, 8);

	static struct memory m;
	memset(&m, 0, sizeof(m));
	m.in = in;
	struct ept_leaf got, again, want;
	memset(&got, 0xee, sizeof(got));
	int r = ept12_walk(mem_read, &m, eptp, gpa, &env, &got);
	unsigned nreads = m.nreads;
	uint64_t reads[8];
	memcpy(reads, m.reads, sizeof(reads));
	if (r != EPT_WALK_OK && r != EPT_WALK_NOT_PRESENT && r != EPT_WALK_MISCONFIG)
		fail("result code");
	if (nreads < 1 || nreads > 4)
		fail("not 1 to 4 reads");
	outcome[r][nreads][sel & 3]++;

	/* The same memory again: same reads, same answer. */
	m.frozen = true;
	m.nreads = 0;
	memset(&again, 0xee, sizeof(again));
	if (ept12_walk(mem_read, &m, eptp, gpa, &env, &again) != r || m.nreads != nreads ||
	    memcmp(m.reads, reads, sizeof(reads)) || (r == EPT_WALK_OK && memcmp(&got, &again, sizeof(got))))
		fail("two walks of the same memory differ");

	m.nreads = 0;
	unsigned perms;
	int rr = ref_walk(&m, eptp, gpa, &env, &want, &perms);
	if (m.nreads != nreads || memcmp(m.reads, reads, nreads * sizeof(reads[0])))
		fail("reads other entries than the SDM's walk");
	if (rr != r) {
		fprintf(stderr, "walk: nestor %d, SDM %d\n", r, rr);
		fail("result differs from the SDM's walk");
	}
	if (r == EPT_WALK_NOT_PRESENT && got.rights != 0)
		fail("not present, but rights granted");
	if (r == EPT_WALK_OK) {
		if (got.addr != want.addr || got.rights != want.rights || got.mtype != want.mtype || got.shift != want.shift)
			fail("translation differs from the SDM's walk");
		uint64_t page = 1ull << got.shift;
		if ((got.rights & ~perms) || (got.addr & (page - 1)) != (gpa & (page - 1)) ||
		    (got.shift != 12 && got.shift != 21 && got.shift != 30))
			fail("rights beyond an entry's, or an address outside the leaf's page");
	}
	return 0;
}
