/* bitmaps.c - the I/O and MSR bitmaps of the VMCS that runs L2 (VMCS02).
 *
 * An I/O instruction or RDMSR/WRMSR of L2 must exit if L1 wants it (its
 * VMCS12 controls and bitmaps, SDM 25.1.3) or if we do (our own bitmaps:
 * the shutdown port, what security functions and snapshots claim; the
 * MSRs we virtualize - VMX capabilities, FEATURE_CONTROL, MTRRs, APIC
 * base, the x2APIC ICR with several CPUs).  Anything else L2 reaches
 * directly, as it would on the machine.  So VMCS02 takes:
 *
 *   VMCS12                          VMCS02
 *   ports: unconditional, no maps   unconditional exiting (all to L1)
 *   ports: neither control          our own bitmaps (L1 wants nothing)
 *   ports: I/O bitmaps              L1's and ours ORed, in a copy of ours
 *   MSRs: no MSR bitmap             all ones (all to L1)
 *   MSRs: MSR bitmap                L1's and ours ORed; in the x2APIC
 *                                   range, what L1 lets through and the
 *                                   CPU virtualizes passes (SDM 29.5)
 *
 * and when L1's maps cannot be watched (below), every port and every MSR
 * but those x2APIC ones exits, and exit.c reads L1's maps at that moment.
 *
 * A copy is kept while nothing it was made from changed: VMCS12's controls
 * and bitmap addresses (a change makes the caller rewrite), L1's stores to
 * its bitmaps (watched, or announced: below) and our own (io_intercept,
 * msr_intercept, snapshots), all counted in vm->watch.gen.
 * The check costs a few instructions per entry; a merge, 512 quadwords a
 * page.
 *
 * L1 = our guest: its memory is the machine's (the identity EPT, which
 * the watch protects).  L1 = a level above, whose VMX we run: watching its
 * pages would take them out of the large mappings of the shadow EPTs,
 * rebuilt at every INVEPT - measured dearer than the exits saved
 * (docs/nested.md).  So only a level that delegated its guest's VMX to us,
 * a Nestor bound to say when its bitmaps change (NESTOR_HC_BITMAPS_CHANGED),
 * gets copies, found through its hypervisors' EPTs again whenever a shadow
 * EPT was cleared; for any other every port and MSR exits to be routed. */
#include "lib/string.h"
#include "mm/mm.h"
#include "nested/internal.h"
#include "vmx/ept.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"

/* OR of two pages of bitmap into out. */
static void or_pages(uint64_t *out, const uint64_t *a, const uint64_t *b)
{
	for (unsigned w = 0; w < PAGE_SIZE / 8; w++)
		out[w] = a[w] | b[w];
}

/* The machine page of L1's bitmap page at gpa, ready to be copied: for
 * our guest (the identity) watched; for a level >= 2 that delegated its
 * guest's VMX to us - so agreed to say when its bitmaps change
 * (NESTOR_HC_BITMAPS_CHANGED, docs/depth.md) - through its hypervisors'
 * EPTs.  ~0: no copy (not RAM, the watch table full, no such promise). */
static uint64_t bitmap_page(struct vcpu *v, struct nested *n, uint64_t gpa)
{
	uint64_t page = gpa & ~0xfffull;
	if (n->level == 1)
		return ept_watch_add(v, page) ? ~0ull : page; /* watched before it is read */
	struct xlate x;
	if (!n->delegated || nested_xlate(v, n->level, page, EPT_R, &x) != XL_OK)
		return ~0ull;
	uint64_t m = x.addr & ~0xfffull;
	return gpa_is_ram(v->vm, m, PAGE_SIZE) && !gpa_absent(v->vm, m) ? m : ~0ull;
}

static bool io_merge(struct vcpu *v, struct nested *n, uint64_t a12, uint64_t b12)
{
	struct vm *vm = v->vm;
	if (!n->io02[0]) {
		n->io02[0] = page_alloc();
		n->io02[1] = page_alloc();
		if (!n->io02[0] || !n->io02[1])
			return false; /* every port exits: correct, slower */
	}
	uint64_t m[2] = { bitmap_page(v, n, a12), bitmap_page(v, n, b12) };
	if (m[0] == ~0ull || m[1] == ~0ull)
		return false;
	n->io12[0] = a12;
	n->io12[1] = b12;
	n->io12_machine[0] = m[0];
	n->io12_machine[1] = m[1];
	or_pages((uint64_t *)n->io02[0], phys_to_virt(m[0]), (const uint64_t *)vm->io_bitmap_a);
	or_pages((uint64_t *)n->io02[1], phys_to_virt(m[1]), (const uint64_t *)vm->io_bitmap_b);
	return true;
}

/* SDM 29.5: with "virtualize x2APIC mode" the CPU virtualizes some of
 * L2's x2APIC MSR accesses on the virtual-APIC page, touching no APIC:
 * the TPR (808h); with APIC-register virtualization every read of 800h-
 * 8FFh; with virtual-interrupt delivery writes of EOI (80Bh) and SELF IPI
 * (83Fh), with PPR virtualization, EOI-induced exits and the evaluation and
 * delivery of virtual interrupts.  Those that L1's MSR bitmap lets through
 * pass VMCS02's, so that the CPU does all of it, exactly and without an
 * exit; the others of the range get the bits in ord/owr.  l1rd and l1wr:
 * L1's read and write bits for 800h-8FFh (32 bytes each). */
static void x2apic_range(struct nested *n, uint32_t proc2, const uint8_t *l1rd, const uint8_t *l1wr,
			 const uint8_t *ord, const uint8_t *owr)
{
	uint8_t *rd = n->msr_bitmap02 + 0x800 / 8, *wr = n->msr_bitmap02 + 2048 + 0x800 / 8;
	for (unsigned m = 0; m < 256; m++) {
		bool vr = m == 0x08 || (proc2 & PROC2_APIC_REG_VIRT);
		bool vw = m == 0x08 || ((proc2 & PROC2_VIRT_INTR_DELIVERY) && (m == 0x0b || m == 0x3f));
		uint8_t bit = (uint8_t)(1u << (m % 8));
		rd[m / 8] = (vr && !(l1rd[m / 8] & bit)) ? rd[m / 8] & ~bit : (rd[m / 8] & ~bit) | (ord[m / 8] & bit);
		wr[m / 8] = (vw && !(l1wr[m / 8] & bit)) ? wr[m / 8] & ~bit : (wr[m / 8] & ~bit) | (owr[m / 8] & bit);
	}
}

static const uint8_t ones32[32] = { [0 ... 31] = 0xff };

/* Without a merged copy: every MSR access exits but the x2APIC ones the
 * CPU virtualizes, read from L1's bitmap at every entry (64 bytes) as the
 * CPU reads it at every access. */
static void msr_unmerged(struct vcpu *v, struct nested *n)
{
	const struct vmcs12 *c = n->vmcs12;
	uint32_t proc2 = v12_proc2(c);
	if (n->msr02_merged) {
		memset(n->msr_bitmap02, 0xff, PAGE_SIZE);
		n->msr02_merged = false;
		n->x2apic_passed = false;
	}
	if (!(proc2 & PROC2_VIRT_X2APIC) || !(V12(c, PROC_BASED_CTLS) & PROC_USE_MSR_BITMAPS)) {
		if (n->x2apic_passed) {
			memset(n->msr_bitmap02 + 0x800 / 8, 0xff, 32);
			memset(n->msr_bitmap02 + 2048 + 0x800 / 8, 0xff, 32);
			n->x2apic_passed = false;
		}
		return;
	}
	uint8_t l1rd[32], l1wr[32];
	memset(l1rd, 0xff, sizeof(l1rd));
	memset(l1wr, 0xff, sizeof(l1wr));
	level_read(v, n->level, V12(c, MSR_BITMAP) + 0x800 / 8, l1rd, sizeof(l1rd));
	level_read(v, n->level, V12(c, MSR_BITMAP) + 2048 + 0x800 / 8, l1wr, sizeof(l1wr));
	x2apic_range(n, proc2, l1rd, l1wr, ones32, ones32);
	n->x2apic_passed = true;
}

static bool msr_merge(struct vcpu *v, struct nested *n, uint64_t m12)
{
	const struct vmcs12 *c = n->vmcs12;
	uint64_t page = bitmap_page(v, n, m12);
	if (page == ~0ull)
		return false;
	const uint8_t *l1 = phys_to_virt(page), *ours = v->vm->msr_bitmap;
	or_pages((uint64_t *)n->msr_bitmap02, (const uint64_t *)l1, (const uint64_t *)ours);
	uint32_t proc2 = v12_proc2(c);
	if (proc2 & PROC2_VIRT_X2APIC) {
		/* x2apic_range rewrites the range: keep the ORed bits aside. */
		uint8_t ord[32], owr[32];
		memcpy(ord, n->msr_bitmap02 + 0x800 / 8, 32);
		memcpy(owr, n->msr_bitmap02 + 2048 + 0x800 / 8, 32);
		x2apic_range(n, proc2, l1 + 0x800 / 8, l1 + 2048 + 0x800 / 8, ord, owr);
	}
	n->msr12 = m12;
	n->msr12_machine = page;
	n->msr02_merged = true;
	n->x2apic_passed = true; /* the range is not all ones: msr_unmerged resets it */
	return true;
}

/* A level >= 2 after a shadow EPT was cleared: its bitmaps still in the
 * machine pages they were copied from (then the copies hold). */
static bool same_pages(struct vcpu *v, struct nested *n)
{
	const struct vmcs12 *c = n->vmcs12;
	if (n->io02_mode == IO02_MERGED && (bitmap_page(v, n, V12(c, IO_BITMAP_A)) != n->io12_machine[0] ||
					     bitmap_page(v, n, V12(c, IO_BITMAP_B)) != n->io12_machine[1]))
		return false;
	return !n->msr02_merged || bitmap_page(v, n, V12(c, MSR_BITMAP)) == n->msr12_machine;
}

#define X2APIC_CTLS (PROC2_VIRT_X2APIC | PROC2_APIC_REG_VIRT | PROC2_VIRT_INTR_DELIVERY)

void nested_msr_unmerged(struct vcpu *v, struct nested *n) { msr_unmerged(v, n); }

void nested_bitmaps02_update(struct vcpu *v, struct nested *n, bool rewrite)
{
	const struct vmcs12 *c = n->vmcs12;
	uint32_t proc12 = V12(c, PROC_BASED_CTLS);
	/* The changes seen so far: a store after this is counted again. */
	uint64_t gen = __atomic_load_n(&v->vm->watch.gen, __ATOMIC_SEQ_CST), clears = v->sept_clears;
	/* Above level 1 only while the level keeps its promise to say when its
	 * bitmaps change: while it delegates (its end makes VMCS12 all dirty). */
	bool fresh = n->bm02_gen == gen &&
		     (n->level == 1 || (n->delegated && (n->bm02_clears == clears || same_pages(v, n))));
	uint64_t a = 0, b = 0;
	unsigned mode = IO02_ALL;
	if (proc12 & PROC_USE_IO_BITMAPS) {
		uint64_t a12 = V12(c, IO_BITMAP_A), b12 = V12(c, IO_BITMAP_B);
		bool same = n->io02_mode == IO02_MERGED && n->io12[0] == a12 && n->io12[1] == b12;
		if ((same && fresh) || io_merge(v, n, a12, b12)) {
			mode = IO02_MERGED;
			a = virt_to_phys(n->io02[0]);
			b = virt_to_phys(n->io02[1]);
		}
	} else if (!(proc12 & PROC_UNCOND_IO_EXITING)) {
		mode = IO02_OURS;
		a = virt_to_phys(v->vm->io_bitmap_a);
		b = virt_to_phys(v->vm->io_bitmap_b);
	}
	n->io02_mode = mode;
	uint32_t proc02 = (n->proc02 & ~(PROC_USE_IO_BITMAPS | PROC_UNCOND_IO_EXITING)) |
			  (mode == IO02_ALL ? PROC_UNCOND_IO_EXITING : PROC_USE_IO_BITMAPS);
	if (proc02 != n->proc02 || rewrite) {
		n->proc02 = proc02;
		vmwrite(VMCS_PROC_BASED_CTLS, proc02);
	}
	if (mode != IO02_ALL && (rewrite || a != n->io02_a || b != n->io02_b)) {
		vmwrite(VMCS_IO_BITMAP_A, a);
		vmwrite(VMCS_IO_BITMAP_B, b);
		n->io02_a = a;
		n->io02_b = b;
	}
	/* MSRs: VMCS02's bitmap page stays; its contents follow. */
	uint32_t x2 = v12_proc2(c) & X2APIC_CTLS;
	bool merged = false;
	if (proc12 & PROC_USE_MSR_BITMAPS) {
		uint64_t m12 = V12(c, MSR_BITMAP);
		merged = (n->msr02_merged && n->msr12 == m12 && n->msr02_x2apic == x2 && fresh) || msr_merge(v, n, m12);
		n->msr02_x2apic = x2;
	}
	if (!merged)
		msr_unmerged(v, n);
	n->bm02_gen = gen;
	n->bm02_clears = v->sept_clears; /* after the translations above */
}

void nested_bitmaps_changed(struct vcpu *v) { __atomic_add_fetch(&v->vm->watch.gen, 1, __ATOMIC_SEQ_CST); }
