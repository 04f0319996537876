/* iobitmap.c - the I/O bitmaps of the VMCS that runs L2 (VMCS02).
 *
 * An I/O instruction of L2 must exit if L1 wants it (its VMCS12 controls
 * and bitmaps, SDM 25.1.3) or if we do (our own bitmaps: the shutdown port,
 * what security functions and snapshots claim).  Any other port L2 reaches
 * directly, as it would on the machine.  So VMCS02 takes:
 *
 *   VMCS12                          VMCS02
 *   unconditional exiting, no maps  unconditional exiting (all to L1)
 *   neither                         our own bitmaps (L1 wants nothing)
 *   use I/O bitmaps                 L1's and ours ORed, in a copy of ours;
 *                                   every port exits when L1's maps cannot
 *                                   be watched (and exit.c reads them)
 *
 * The copy is kept while nothing it was made from changed: VMCS12's
 * controls and bitmap addresses (a change makes the caller rewrite), L1's
 * stores to its bitmaps (the pages are watched, vmx/ept_watch.c) and our
 * own (io_intercept and snapshots), both counted in vm->watch.gen.  The
 * check costs a few instructions per entry; a merge, 1 024 quadwords.
 *
 * Only for L1 = our guest, whose memory is the machine's (the identity
 * EPT, which the watch protects).  Above it, the levels whose VMX we run
 * by delegation, every port still exits to be routed: watching their
 * bitmaps would take their pages out of the large mappings of the shadow
 * EPTs, rebuilt at every INVEPT - measured dearer than the exits saved
 * (docs/nested.md). */
#include "lib/string.h"
#include "mm/mm.h"
#include "nested/internal.h"
#include "vmx/ept.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"

static bool merge(struct vcpu *v, struct nested *n, uint64_t a12, uint64_t b12)
{
	struct vm *vm = v->vm;
	uint64_t m[2] = { a12 & ~0xfffull, b12 & ~0xfffull }; /* our guest's memory: the identity */
	if (n->level != 1)
		return false;
	if (!n->io02[0]) {
		n->io02[0] = page_alloc();
		n->io02[1] = page_alloc();
		if (!n->io02[0] || !n->io02[1])
			return false; /* every port exits: correct, slower */
	}
	/* Watched before they are read: a store after the read is seen. */
	for (int i = 0; i < 2; i++)
		if (ept_watch_add(v, m[i]))
			return false;
	n->io12[0] = a12;
	n->io12[1] = b12;
	n->io02_stamp = io02_stamp(v);
	const uint64_t *ours[2] = { (const uint64_t *)vm->io_bitmap_a, (const uint64_t *)vm->io_bitmap_b };
	for (int i = 0; i < 2; i++) {
		const uint64_t *l1 = phys_to_virt(m[i]);
		uint64_t *out = (uint64_t *)n->io02[i];
		for (unsigned w = 0; w < PAGE_SIZE / 8; w++)
			out[w] = l1[w] | ours[i][w];
	}
	return true;
}

void nested_io_bitmaps02_update(struct vcpu *v, struct nested *n, bool rewrite)
{
	const struct vmcs12 *c = n->vmcs12;
	uint32_t proc12 = V12(c, PROC_BASED_CTLS);
	uint64_t a = 0, b = 0;
	unsigned mode = IO02_ALL;
	if (proc12 & PROC_USE_IO_BITMAPS) {
		uint64_t a12 = V12(c, IO_BITMAP_A), b12 = V12(c, IO_BITMAP_B);
		bool same = n->io02_mode == IO02_MERGED && n->io12[0] == a12 && n->io12[1] == b12;
		if ((same && n->io02_stamp == io02_stamp(v)) || merge(v, n, a12, b12)) {
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
}
