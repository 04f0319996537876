/* exit_io.c - I/O instructions that exit (SDM Vol. 3C 27.2.1 qualification).
 *
 * Ports are passed through by the I/O bitmaps, except Bochs' shutdown port
 * 0x8900: when the guest writes "Shutdown" there, Nestor ends the run
 * itself - statistics, integrity check, then it powers off the machine below
 * the same way; and, while copy-on-write snapshots are kept, the bus-master
 * IDE command registers (snap/dma.c).  Bytes that are not (yet) the complete word are forwarded
 * unchanged, so the device below sees exactly the guest's accesses. */
#include "lib/log.h"
#include "lib/x86.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "snap/snap.h"
#include "vmx/vmcs.h"

static const char shutdown_word[] = "Shutdown";

static uint32_t port_in(uint16_t port, unsigned size)
{
	return size == 1 ? inb(port) : size == 2 ? inw(port) : inl(port);
}

static void port_out(uint16_t port, unsigned size, uint32_t val)
{
	if (size == 1)
		outb(port, (uint8_t)val);
	else if (size == 2)
		outw(port, (uint16_t)val);
	else
		outl(port, val);
}

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
	port_out(BOCHS_SHUTDOWN_PORT, size, val);
}

static void do_out(struct vcpu *v, uint16_t port, unsigned size, uint32_t val)
{
	if (port == BOCHS_SHUTDOWN_PORT) {
		shutdown_port_write(v, size, val);
		return;
	}
	snap_io_out(v, port, val); /* a DMA start during a snapshot */
	port_out(port, size, val);
}

/* INS/OUTS: element by element through the guest's segments and paging. */
static void string_io(struct vcpu *v, uint64_t q, uint16_t port, unsigned size, bool in)
{
	bool rep = q & (1u << 5);
	uint32_t info = vmread(VMCS_EXIT_INSTR_INFO);
	unsigned asize = 2u << ((info >> 7) & 7); /* 2, 4 or 8 bytes */
	uint64_t amask = asize == 2 ? 0xffff : asize == 4 ? 0xffffffff : ~0ull;
	/* OUTS may take a segment override; INS always writes ES. With no
	 * instruction information (IA32_VMX_BASIC[54] = 0) assume DS. */
	unsigned seg = in ? 0 : ((v->vm->caps->basic >> 54) & 1) ? (info >> 15) & 7 : 3;
	uint64_t base = vmread(VMCS_GUEST_ES_BASE + 2 * seg);
	unsigned idx = in ? RDI : RSI;
	int64_t step = (vmread(VMCS_GUEST_RFLAGS) & RFLAGS_DF) ? -(int64_t)size : (int64_t)size;
	uint64_t count = rep ? v->gpr[RCX] & amask : 1;
	while (count) {
		uint64_t off = v->gpr[idx] & amask;
		uint64_t gpa;
		uint32_t pf_err;
		if (gla_to_gpa(v, base + off, in ? ACC_WRITE : ACC_READ, &gpa, &pf_err)) {
			write_cr2(base + off);
			inject_exception_err(v, 14, pf_err);
			return; /* RIP stays: the instruction restarts after the #PF */
		}
		uint32_t val = 0;
		if (in) {
			val = port_in(port, size);
			gpa_write(v->vm, gpa, &val, size);
		} else {
			gpa_read(v->vm, gpa, &val, size);
			do_out(v, port, size, val);
		}
		v->gpr[idx] = addr_reg_update(v->gpr[idx], off + step, asize);
		count--;
		if (rep)
			v->gpr[RCX] = addr_reg_update(v->gpr[RCX], count, asize);
	}
	skip_instruction(v);
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
		uint32_t val = port_in(port, size);
		uint64_t mask = size == 4 ? 0xffffffffull : (1ull << (8 * size)) - 1;
		/* IN to EAX zero-extends to RAX; to AL/AX it merges. */
		v->gpr[RAX] = size == 4 ? val : (v->gpr[RAX] & ~mask) | val;
	} else {
		do_out(v, port, size, (uint32_t)v->gpr[RAX]);
	}
	skip_instruction(v);
}
