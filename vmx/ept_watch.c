/* ept_watch.c - guest pages whose every change Nestor must notice.
 *
 * A guest hypervisor's I/O and MSR bitmaps are read by the CPU at every
 * I/O instruction, RDMSR and WRMSR of its guest; Nestor copies them, merged
 * with its own, into
 * the VMCS that really runs that guest (nested/bitmaps.c), and must make a
 * new copy whenever they change.  The SDM lets software change them only
 * while no logical processor runs a guest under a VMCS that references them
 * (SDM 25.11.4): in practice between an exit and the next entry, with plain
 * stores the CPU does not report.  So the pages that hold them are watched:
 * the EPT that runs our guest maps them without write permission (the
 * identity EPT, guest-physical = machine), and the first store of our
 * guest - an EPT violation - or of Nestor itself on a guest's behalf
 * (guest_mem_before_write) drops the watch and counts a change in
 * vm->watch.gen.  Whoever copied a watched page compares the
 * count it saw with the current one before trusting its copy, and watches
 * the page again when it copies it again.
 *
 * Not seen: a device writing the page by DMA (outside a snapshot), and a
 * level above our guest storing to it through a shadow EPT made before
 * the watch - which its hypervisor, our guest, would have to map into it.
 * Such a change is our guest's own doing and reaches only what it asked
 * of its own guest: the bits Nestor itself needs are in every merge,
 * whatever the page says.  Pages that are not RAM are never watched. */
#include "vmx/ept.h"
#include "lib/string.h"
#include "mm/mm.h"
#include "snap/snap.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"

static int find(const struct vm *vm, uint64_t page)
{
	for (unsigned i = 0; i < vm->watch.n; i++)
		if (vm->watch.page[i] == page)
			return (int)i;
	return -1;
}

/* The 4 KiB leaf of page in the guest's EPT, split out of a large page if
 * need be (same translation).  NULL: not mapped as memory, or no pool. */
static uint64_t *leaf(struct vm *vm, uint64_t page)
{
	uint64_t *t = vm->ept_pml4;
	for (unsigned shift = 39; shift > 12; shift -= 9) {
		uint64_t e = t[(page >> shift) & 511];
		if (!(e & EPT_RWX) || ept_is_shared_ones(vm, e))
			return NULL;
		if (e & EPT_LARGE) {
			if (ept_set_page(vm, page, (e & EPT_ADDR_MASK & ~((1ull << shift) - 1)) |
							   (page & ((1ull << shift) - 1)) | (e & 0x7f)))
				return NULL;
			/* The CPU may hold the large translation: forget it (the
			 * caller invalidates after taking write away). */
			break;
		}
		t = phys_to_virt(e & EPT_ADDR_MASK);
	}
	t = vm->ept_pml4;
	for (unsigned shift = 39; shift > 12; shift -= 9)
		t = phys_to_virt(t[(page >> shift) & 511] & EPT_ADDR_MASK);
	uint64_t *e = &t[(page >> 12) & 511];
	return (*e & EPT_RWX) && (*e & EPT_ADDR_MASK) == page ? e : NULL;
}

int ept_watch_add(struct vcpu *v, uint64_t gpa)
{
	struct vm *vm = v->vm;
	uint64_t page = gpa & ~(PAGE_SIZE - 1);
	if (!gpa_is_ram(vm, page, PAGE_SIZE) || gpa_absent(vm, page))
		return -1;
	spin_lock(&vm->watch.lock);
	int r = 0;
	bool added = false;
	if (find(vm, page) < 0) {
		uint64_t *e = vm->watch.n < EPT_WATCH_MAX ? leaf(vm, page) : NULL;
		if (!e) {
			r = -1;
		} else {
			*e &= ~EPT_W;
			vm->watch.page[vm->watch.n++] = page;
			added = true;
		}
	}
	spin_unlock(&vm->watch.lock);
	if (added) {
		/* Write permission taken away: no CPU may keep a translation
		 * that has it (SDM 28.4.3.1). */
		ept_invalidate(vm);
		if (vm->ncpus > 1)
			vm_ask_others(v, REQ_INVEPT);
	}
	return r;
}

/* Whether a watched page lies in [base, base + size). */
static bool watch_in(const struct vm *vm, uint64_t base, uint64_t size)
{
	for (unsigned i = 0; i < vm->watch.n; i++)
		if (vm->watch.page[i] >= base && vm->watch.page[i] - base < size)
			return true;
	return false;
}

/* Drops watch i (lock held): the page is writable again - unless a
 * copy-on-write snapshot protects it, whose fault handler then saves it
 * and grants write itself. */
static void drop(struct vm *vm, unsigned i)
{
	uint64_t page = vm->watch.page[i];
	vm->watch.page[i] = vm->watch.page[--vm->watch.n];
	__atomic_add_fetch(&vm->watch.gen, 1, __ATOMIC_SEQ_CST);
	if (snap_cow_active(vm))
		return;
	uint64_t *e = leaf(vm, page);
	if (e)
		*e |= EPT_W; /* rights grow: nothing cached to flush (SDM 28.4.3.1) */
}

/* Whether the EPT grants write to the page of gpa now (no splitting). */
static bool writable(const struct vm *vm, uint64_t gpa)
{
	const uint64_t *t = vm->ept_pml4;
	for (unsigned shift = 39;; shift -= 9) {
		uint64_t e = t[(gpa >> shift) & 511];
		if (!(e & EPT_W) || ept_is_shared_ones(vm, e))
			return false;
		if (shift == 12 || (e & EPT_LARGE))
			return true;
		t = phys_to_virt(e & EPT_ADDR_MASK);
	}
}

bool ept_watch_fault(struct vm *vm, uint64_t gpa)
{
	spin_lock(&vm->watch.lock);
	int i = vm->watch.n ? find(vm, gpa & ~(PAGE_SIZE - 1)) : -1;
	if (i >= 0)
		drop(vm, (unsigned)i);
	/* Another CPU's write dropped the watch first, while this one's was
	 * on its way with the translation of before: it retries too. */
	bool retry = i >= 0 || (vm->watch.gen && writable(vm, gpa));
	spin_unlock(&vm->watch.lock);
	return retry;
}

void ept_watch_write(struct vm *vm, uint64_t gpa, uint64_t len)
{
	if (!len || !watch_in(vm, gpa & ~(PAGE_SIZE - 1), (gpa & (PAGE_SIZE - 1)) + len))
		return; /* the common case, without the lock */
	spin_lock(&vm->watch.lock);
	for (unsigned i = 0; i < vm->watch.n;) {
		uint64_t p = vm->watch.page[i];
		if (p + PAGE_SIZE > gpa && p < gpa + len)
			drop(vm, i);
		else
			i++;
	}
	spin_unlock(&vm->watch.lock);
}

void ept_watch_lost(struct vm *vm)
{
	spin_lock(&vm->watch.lock);
	vm->watch.n = 0;
	__atomic_add_fetch(&vm->watch.gen, 1, __ATOMIC_SEQ_CST);
	spin_unlock(&vm->watch.lock);
}
