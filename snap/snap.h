/* snap.h - snapshots of the guest: its vCPU state and its memory, saved in
 * a pool Nestor reserves (snap_pool=) and put back on request (docs/snapshots.md).
 *
 * Memory is saved in one of two ways:
 *  - copy: every guest page is copied into the pool while the guest waits;
 *  - cow (copy-on-write): the guest's EPT loses its write permission (at the
 *    top of the tables, so taking the snapshot costs a few entries), and a
 *    page is copied the first time anything writes it: the guest (an EPT
 *    violation), Nestor on its behalf (gpa_write), or a bus-master DMA
 *    (seen when it starts: snap/dma.c).
 * A restore copies back what changed since the snapshot (cow: the pages
 * written since; copy: all), puts the vCPU state back and resumes the guest
 * right after its snapshot hypercall, which then returns
 * NESTOR_SNAP_RESTORED.  Snapshots stay valid after restores: a fuzzer
 * restores the same one as often as it likes. */
#ifndef SNAP_SNAP_H
#define SNAP_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vcpu;
struct vm;

enum snap_method { SNAP_METHOD_COW, SNAP_METHOD_COPY };
extern const char *const snap_method_names[];

/* Boot: the snapshot pool [base, base + size) (physical, hidden from the
 * guest).  0, or -1 when it cannot hold even its own bookkeeping. */
int snap_init(struct vm *vm, uint64_t base, uint64_t size);

/* The hypercalls (hypercall/abi.h); each returns a NESTOR_* status. */
int64_t snap_take(struct vcpu *v, uint64_t method);
int64_t snap_restore(struct vcpu *v, uint64_t id, uint64_t value);
int64_t snap_drop(struct vcpu *v, uint64_t id);
int64_t snap_info(struct vcpu *v, uint64_t id);

/* An EPT violation on guest memory: true when it was a write to a page a
 * copy-on-write snapshot protects (now saved and writable again), or a
 * stale translation of a page writable by now - the guest retries. */
bool snap_ept_fault(struct vcpu *v, uint64_t gpa, uint64_t qualification);

/* Before anything but the guest's own instructions writes guest memory
 * [gpa, gpa + len): the pages copy-on-write snapshots still need are saved. */
void snap_before_write(struct vm *vm, uint64_t gpa, uint64_t len);

/* Whether the guest may write the page at gpa now (false: a copy-on-write
 * snapshot protects it); for the shadow EPTs built on the guest's EPT. */
bool snap_page_writable(struct vm *vm, uint64_t gpa);
/* True while a copy-on-write snapshot is kept (protection may be on). */
bool snap_cow_active(const struct vm *vm);

/* The EPT was rebuilt (new memory types): protect it again. */
void snap_ept_rebuilt(struct vm *vm);

/* An OUT the guest makes to a port that exits: a bus-master DMA about to
 * start saves what it will write first (snap/dma.c).  The OUT itself is
 * the caller's to do. */
void snap_io_out(struct vcpu *v, uint16_t port, uint32_t value);

/* Pool use for the footprint line. */
void snap_usage(const struct vm *vm, uint64_t *used_pages, uint64_t *total_pages);

#endif
