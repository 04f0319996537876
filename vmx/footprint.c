/* footprint.c - what this Nestor takes from the machine below, by kind
 * (reported at the end of every run; make bench adds it up over a stack). */
#include "lib/log.h"
#include "mm/mm.h"
#include "nested/nested.h"
#include "vmx/exits.h"

static uint64_t pages_for(uint64_t bytes) { return (bytes + PAGE_SIZE - 1) / PAGE_SIZE; }

void vm_print_footprint(const struct vcpu *v)
{
	const struct vm *vm = v->vm;
	uint64_t used, peak, total;
	pool_usage(&used, &peak, &total);
	/* Pages by kind: VMXON region, VMCS01, and per level its VMCS02 and
	 * shadow VMCS; EPT01; the shadow EPTs; the VMCS12 caches; bitmaps. */
	uint64_t vmcs = 2, sept = 0, cache = 0, state = pages_for(sizeof(*v)) + pages_for(sizeof(*vm)) + 4;
	uint64_t bitmaps = 4; /* MSR, I/O A and B, the page of ones */
	if (v->shadow_tables.vmread_bitmap)
		bitmaps += 2;
	for (unsigned j = 1; j <= v->nlevels; j++) {
		const struct nested *n = v->lv[j];
		vmcs += 1 + (n->shadow_vmcs ? 1 : 0);
		bitmaps += 1; /* the MSR bitmap of its VMCS02 */
		cache += pages_for(sizeof(struct vmcs12));
		state += pages_for(sizeof(*n));
		for (int i = 0; i < SEPT_SLOTS; i++)
			sept += n->sept[i].pages;
	}
	uint64_t image = mem.image_end - mem.image_start;
	pr_info("footprint: image %llu KiB, pool %llu KiB reserved, %llu KiB used (peak %llu KiB): VMCS %llu KiB, "
		"EPT %llu KiB, shadow EPT %llu KiB, VMCS12 caches %llu KiB, bitmaps %llu KiB, vCPU state and "
		"stack %llu KiB; levels emulated %u\n",
		(unsigned long long)(image >> 10), (unsigned long long)(total * 4), (unsigned long long)(used * 4),
		(unsigned long long)(peak * 4), (unsigned long long)(vmcs * 4), (unsigned long long)(vm->ept_pages * 4),
		(unsigned long long)(sept * 4), (unsigned long long)(cache * 4), (unsigned long long)(bitmaps * 4),
		(unsigned long long)(state * 4), v->nlevels);
	pr_info("pool allocations: %llu (fail_alloc=N makes the N-th fail)\n", (unsigned long long)pool_allocs());
}
