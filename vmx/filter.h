/* filter.h - the accesses of the guest a higher layer decides on.
 *
 * vmx/ passes the machine through; a security function (sec/, issue 14)
 * may want some ports and some physical memory for itself.  It says which
 * at boot, before the guest is set up, and registers one filter; vmx/
 * then makes those ports exit and leaves that memory out of the EPT (the
 * non-existent-memory path of Nestor's own memory, vmx/exit_ept.c), and
 * asks the filter about each access.  Nothing else of the higher layer is
 * reachable from vmx/: a reader of vmx/ sees here all it can do.
 *
 * Claims are boot-time data, read-only once the guest runs. */
#ifndef VMX_FILTER_H
#define VMX_FILTER_H

#include <stdbool.h>
#include <stdint.h>

struct vcpu;
struct vm;

struct vmx_filter {
	/* A port access that touches a claimed port.  Returns true when the
	 * filter did it (an IN's result in *val, zero-extended), false to let
	 * it reach the machine. */
	bool (*port)(struct vcpu *v, uint16_t port, unsigned size, bool write, uint32_t *val);
	/* An access to claimed memory, which the guest finds non-existent
	 * (reads all ones, writes dropped): the filter logs it.  what is
	 * "reads", "writes", "executes"... */
	void (*memory)(struct vcpu *v, uint64_t gpa, const char *what);
	/* A load or store of size bytes to trapped memory (vmx_filter_trap),
	 * decoded by vmx/exit_mmio.c.  Returns true when the filter did it
	 * (a read's value in *val), false to let it reach the device. */
	bool (*mmio)(struct vcpu *v, uint64_t gpa, unsigned size, bool write, uint64_t *val);
	/* The end of the run: a summary line or nothing. */
	void (*report)(struct vcpu *v);
};

/* At boot, before vm_run(): one filter. */
void vmx_filter_register(const struct vmx_filter *f);
/* Ports [first, first + count) exit to the filter.  Returns 0 or -1. */
int vmx_filter_ports(uint16_t first, uint32_t count);
/* Physical memory [start, end) (page-rounded outward) becomes
 * non-existent for the guest and its accesses go to the filter's log.
 * Returns 0 or -1 when the table is full. */
int vmx_filter_memory(uint64_t start, uint64_t end);

/* Whether a filter is registered. */
bool vmx_filter_active(void);

/* Physical memory [start, end) is trapped: absent from the EPT, every
 * load and store to it goes to the filter's mmio(), one at a time.  Only
 * for the guest itself: a level above it (a guest of a guest hypervisor)
 * finds trapped memory non-existent.  Boot time; -1: table full. */
int vmx_filter_trap(uint64_t start, uint64_t end);
/* At run time: trapped memory [start, end) is mapped for the guest (an
 * identity mapping, as all its memory): no more exits.  -1: pool empty. */
int vmx_filter_map_direct(struct vcpu *v, uint64_t start, uint64_t end);

/* vmx/ internals. */
bool vmx_filter_trapped(uint64_t gpa);
bool vmx_filter_mmio(struct vcpu *v, uint64_t gpa, unsigned size, bool write, uint64_t *val);
void mmio_trapped_access(struct vcpu *v, uint64_t gpa, bool write);
void vmx_filter_apply(struct vm *vm); /* claimed ports into the I/O bitmaps, memory into vm->hidden */
bool vmx_filter_port_access(struct vcpu *v, uint16_t port, unsigned size, bool write, uint32_t *val);
bool vmx_filter_memory_access(struct vcpu *v, uint64_t gpa, const char *what);
void vmx_filter_report(struct vcpu *v);

#endif
