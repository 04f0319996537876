/* filter.c - ports and memory a higher layer claimed (vmx/filter.h). */
#include "lib/string.h"
#include "mm/mm.h"
#include "nested/nested.h"
#include "vmx/ept.h"
#include "vmx/exits.h"
#include "vmx/filter.h"
#include "vmx/vcpu.h"
#include "vmx/vmx.h"

#define MAX_FILTERED_MEMORY 16

/* Boot-time data (written before the guest runs, read-only after). */
static const struct vmx_filter *filter;
static uint8_t claimed_ports[65536 / 8];
static bool any_port;
static struct region filtered_memory[MAX_FILTERED_MEMORY];
static bool trapped[MAX_FILTERED_MEMORY]; /* vmx_filter_trap(), not _memory() */
static unsigned n_filtered_memory;

void vmx_filter_register(const struct vmx_filter *f) { filter = f; }

bool vmx_filter_active(void) { return filter != NULL; }

int vmx_filter_ports(uint16_t first, uint32_t count)
{
	if (count > 0x10000u - first)
		return -1;
	for (uint32_t p = first; p < first + count; p++)
		claimed_ports[p / 8] |= (uint8_t)(1u << (p % 8));
	any_port |= count != 0;
	return 0;
}

static int add_memory(uint64_t start, uint64_t end, bool trap)
{
	if (n_filtered_memory == MAX_FILTERED_MEMORY || end <= start)
		return -1;
	trapped[n_filtered_memory] = trap;
	filtered_memory[n_filtered_memory++] =
		(struct region){ start & ~(uint64_t)(PAGE_SIZE - 1), (end + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1) };
	return 0;
}

int vmx_filter_memory(uint64_t start, uint64_t end) { return add_memory(start, end, false); }
int vmx_filter_trap(uint64_t start, uint64_t end) { return add_memory(start, end, true); }

bool vmx_filter_trapped(uint64_t gpa)
{
	for (unsigned i = 0; filter && i < n_filtered_memory; i++)
		if (trapped[i] && gpa >= filtered_memory[i].start && gpa < filtered_memory[i].end)
			return true;
	return false;
}

bool vmx_filter_mmio(struct vcpu *v, uint64_t gpa, unsigned size, bool write, uint64_t *val)
{
	return filter->mmio(v, gpa, size, write, val);
}

int vmx_filter_map_direct(struct vcpu *v, uint64_t start, uint64_t end)
{
	struct vm *vm = v->vm;
	start &= ~(uint64_t)(PAGE_SIZE - 1);
	end = (end + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
	/* The other vCPUs stop while the hidden set and the EPT change
	 * (they read both); they flush their translations before they run
	 * again, and drop their shadow EPTs, where the pages a level above
	 * met as non-existent may be mapped to ones. */
	bool smp = vm->ncpus > 1;
	if (smp)
		vm_stop_others(v, 1000);
	rs_remove(&vm->hidden, start, end);
	int r = 0;
	for (uint64_t a = start; a < end && !r; a += PAGE_SIZE)
		r = ept_map_identity(vm, a);
	ept_invalidate(vm);
	nested_drop_shadows(v);
	if (smp)
		vm_resume_others(v, REQ_INVEPT | REQ_DROP_SHADOWS);
	return r;
}

void vmx_filter_apply(struct vm *vm)
{
	if (!filter)
		return;
	for (uint32_t p = 0; any_port && p < 0x10000; p++)
		if (claimed_ports[p / 8] & (1u << (p % 8)))
			io_intercept(vm, (uint16_t)p);
	for (unsigned i = 0; i < n_filtered_memory; i++) {
		rs_add(&vm->hidden, filtered_memory[i].start, filtered_memory[i].end);
		rs_remove(&vm->guest_ram, filtered_memory[i].start, filtered_memory[i].end);
	}
}

/* An access of size bytes at port touches ports port..port+size-1 (a
 * 16-bit port number wraps, SDM 25.1.3 counts the bits the same way). */
static bool touches_claimed(uint16_t port, unsigned size)
{
	for (unsigned i = 0; i < size; i++) {
		uint16_t p = (uint16_t)(port + i);
		if (claimed_ports[p / 8] & (1u << (p % 8)))
			return true;
	}
	return false;
}

bool vmx_filter_port_access(struct vcpu *v, uint16_t port, unsigned size, bool write, uint32_t *val)
{
	if (!any_port || !touches_claimed(port, size))
		return false;
	return filter->port(v, port, size, write, val);
}

bool vmx_filter_memory_access(struct vcpu *v, uint64_t gpa, const char *what)
{
	for (unsigned i = 0; filter && i < n_filtered_memory; i++)
		if (gpa >= filtered_memory[i].start && gpa < filtered_memory[i].end) {
			filter->memory(v, gpa, what);
			return true;
		}
	return false;
}

void vmx_filter_report(struct vcpu *v)
{
	if (filter && filter->report)
		filter->report(v);
}
