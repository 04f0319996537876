/* exit_io.c - I/O instructions that exit (SDM Vol. 3C 27.2.1 qualification).
 *
 * Ports are passed through by the I/O bitmaps, except Bochs' shutdown port
 * 0x8900: when the guest writes "Shutdown" there, Nestor ends the run
 * itself - statistics, integrity check, then it powers off the machine below
 * the same way; and, while copy-on-write snapshots are kept, the bus-master
 * IDE command registers (snap/dma.c); and the ports a security function
 * claimed (vmx/filter.h: a guarded device's, PCI configuration data).  Bytes that are not (yet) the complete word are forwarded
 * unchanged, so the device below sees exactly the guest's accesses. */
#include "lib/log.h"
#include "lib/x86.h"
#include "vmx/exits.h"
#include "vmx/filter.h"
#include "vmx/guest_mem.h"
#include "snap/snap.h"
#include "vmx/vmcs.h"
#include "mm/mm.h"

static const char shutdown_word[] = "Shutdown";

static void shutdown_port_write(struct vcpu *v, unsigned size, uint32_t val)
{
	uint8_t byte = (uint8_t)val;
	if (size == 1 && byte == (uint8_t)shutdown_word[v->shutdown_match]) {
		if (++v->shutdown_match == sizeof(shutdown_word) - 1)
			vm_end_run(v, false, "power-off through the Bochs shutdown port");
		return;
	}
	/* Not the word: replay what was held back, then this access. */
	for (unsigned i = 0; i < v->shutdown_match; i++)
		outb(BOCHS_SHUTDOWN_PORT, (uint8_t)shutdown_word[i]);
	v->shutdown_match = 0;
	out_sized(BOCHS_SHUTDOWN_PORT, size, val);
}

/* A port a security function claimed (vmx/filter.h) is its to decide on;
 * every other reaches the machine. */
static uint32_t do_in(struct vcpu *v, uint16_t port, unsigned size)
{
	uint32_t val;
	if (vmx_filter_port_access(v, port, size, false, &val))
		return val;
	return in_sized(port, size);
}

static void do_out(struct vcpu *v, uint16_t port, unsigned size, uint32_t val)
{
	if (vmx_filter_port_access(v, port, size, true, &val))
		return;
	if (port == BOCHS_SHUTDOWN_PORT) {
		shutdown_port_write(v, size, val);
		return;
	}
	snap_io_out(v, port, val); /* a DMA start during a snapshot */
	out_sized(port, size, val);
}

/* INS/OUTS (SDM Vol. 2 INS/OUTS, 27.2.5): element by element, through the
 * guest's segments and paging as the CPU would - an element may cross a
 * page, ES/DS bases do not count in 64-bit mode, limits and types do
 * elsewhere, a refusal by the EPT of the guest's own hypervisor is that
 * hypervisor's EPT violation.  A repeated instruction is done in chunks of
 * at most STRING_IO_CHUNK elements per exit: RIP stays on the instruction
 * until RCX reaches 0, so interrupts, the guest hypervisor's preemption
 * timer and single steps are taken between chunks as between iterations
 * on the CPU - never unbounded work in one exit. */
#define STRING_IO_CHUNK 128

/* The machine addresses of one element (it may straddle two pages). */
struct elem {
	uint64_t m[2];
	unsigned n0; /* bytes in the first page */
};

static int elem_xlate(struct vcpu *v, uint64_t gla, unsigned size, unsigned acc, struct elem *e, struct gfault *f)
{
	unsigned room = PAGE_SIZE - (gla & (PAGE_SIZE - 1));
	e->n0 = size < room ? size : room;
	if (gla_xlate(v, gla, acc, &e->m[0], f))
		return -1;
	return e->n0 < size ? gla_xlate(v, gla + e->n0, acc, &e->m[1], f) : 0;
}

static void elem_copy(struct vcpu *v, const struct elem *e, uint32_t *val, unsigned size, bool write)
{
	uint8_t *p = (uint8_t *)val;
	if (write) {
		gpa_write(v->vm, e->m[0], p, e->n0);
		if (e->n0 < size)
			gpa_write(v->vm, e->m[1], p + e->n0, size - e->n0);
	} else {
		gpa_read(v->vm, e->m[0], p, e->n0);
		if (e->n0 < size)
			gpa_read(v->vm, e->m[1], p + e->n0, size - e->n0);
	}
}

static void string_io(struct vcpu *v, uint64_t q, uint16_t port, unsigned size, bool in)
{
	bool rep = q & (1u << 5);
	uint32_t info = vmread(VMCS_EXIT_INSTR_INFO);
	unsigned asize = 2u << ((info >> 7) & 7); /* 2, 4 or 8 bytes */
	uint64_t amask = asize == 2 ? 0xffff : asize == 4 ? 0xffffffff : ~0ull;
	/* OUTS may take a segment override; INS always writes ES. With no
	 * instruction information (IA32_VMX_BASIC[54] = 0) assume DS. */
	unsigned seg = in ? 0 : ((v->vm->caps->basic >> 54) & 1) ? (info >> 15) & 7 : 3;
	unsigned idx = in ? RDI : RSI;
	uint64_t rflags = vmread(VMCS_GUEST_RFLAGS);
	int64_t step = (rflags & RFLAGS_DF) ? -(int64_t)size : (int64_t)size;
	uint64_t count = rep ? v->gpr[RCX] & amask : 1;
	/* With RFLAGS.TF a single-step trap follows every iteration. */
	unsigned chunk = (rflags & RFLAGS_TF) ? 1 : STRING_IO_CHUNK;
	struct gfault f;
	while (count && chunk--) {
		uint64_t off = v->gpr[idx] & amask, gla;
		struct elem e;
		uint32_t val = 0;
		/* Every check on the memory operand comes before the port access
		 * (a faulting INS reads nothing from the port). */
		if (seg_linear(v, seg, off, size, in ? ACC_WRITE : ACC_READ, &gla, &f) ||
		    elem_xlate(v, gla, size, in ? ACC_WRITE : ACC_READ, &e, &f)) {
			gfault_raise(v, &f);
			return; /* RIP stays: the instruction restarts after the fault */
		}
		if (in) {
			val = do_in(v, port, size);
			elem_copy(v, &e, &val, size, true);
		} else {
			elem_copy(v, &e, &val, size, false);
			do_out(v, port, size, val);
		}
		v->gpr[idx] = addr_reg_update(v->gpr[idx], off + step, asize);
		count--;
		if (rep)
			v->gpr[RCX] = addr_reg_update(v->gpr[RCX], count, asize);
	}
	if (!count) {
		skip_instruction(v);
		return;
	}
	/* More to do: re-executed from the same RIP (it exits again). */
	if (rflags & RFLAGS_TF)
		vmwrite(VMCS_GUEST_PENDING_DBG_EXCEPTIONS, vmread(VMCS_GUEST_PENDING_DBG_EXCEPTIONS) | (1u << 14));
}

void exit_io(struct vcpu *v)
{
	uint64_t q = vmread(VMCS_EXIT_QUALIFICATION);
	unsigned size = (q & 7) + 1;
	bool in = q & (1u << 3);
	uint16_t port = q >> 16;
	if (q & (1u << 4))
		return string_io(v, q, port, size, in);
	if (in) {
		uint32_t val = do_in(v, port, size);
		uint64_t mask = size == 4 ? 0xffffffffull : (1ull << (8 * size)) - 1;
		/* IN to EAX zero-extends to RAX; to AL/AX it merges. */
		v->gpr[RAX] = size == 4 ? val : (v->gpr[RAX] & ~mask) | val;
	} else {
		do_out(v, port, size, (uint32_t)v->gpr[RAX]);
	}
	skip_instruction(v);
}
