/* exit_mmio.c - loads and stores to memory a security function traps
 * (vmx/filter.h: vmx_filter_trap), done one at a time.
 *
 * The trapped pages are absent from the EPT, so every access is an EPT
 * violation; the CPU gives no length or operands for it (SDM 28.3.3.2,
 * 27.2.1), so the instruction is decoded.  Device registers are read and
 * written by drivers with plain MOVs (Linux's readl/writel, SDM 2A MOV
 * 88/89/8A/8B/C6/C7, A0-A3 moffs) and MOVZX (0F B6/B7); those are done
 * here: the filter decides, then the access goes to the device through
 * Nestor's direct map or the filter's answer is used, the register is
 * written as the CPU writes it, and RIP moves past the instruction.  Any
 * other instruction on a trapped page is refused as non-existent memory
 * would be (reads all ones, writes dropped) - with a warning, since a
 * driver that needs it would then fail. */
#include "lib/log.h"
#include "lib/x86.h"
#include "lib/x86_decode.h"
#include "mm/mm.h"
#include "vmx/exits.h"
#include "vmx/filter.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"

struct mmio_op {
	unsigned size;  /* bytes accessed */
	bool write;
	int reg;        /* the register loaded or stored, -1 for an immediate */
	bool high_byte; /* AH, CH, DH, BH (byte operand, no REX, reg 4-7) */
	unsigned zext;  /* MOVZX: the destination's operand size; 0 for MOV */
	uint64_t imm;
};

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static bool decode_op(const struct x86_insn *in, const uint8_t *bytes, struct mmio_op *op)
{
	bool byte = !(in->opcode & 1);
	*op = (struct mmio_op){ .size = byte ? 1 : in->operand_size, .reg = in->reg };
	if (in->map == 1 && (in->opcode == 0xb6 || in->opcode == 0xb7) && in->has_modrm && in->mod != 3) {
		op->size = in->opcode == 0xb6 ? 1 : 2;
		op->zext = in->operand_size;
		return true;
	}
	if (in->map != 0)
		return false;
	switch (in->opcode) {
	case 0x88: case 0x89: /* MOV r/m, r */
		op->write = true;
		/* fall through */
	case 0x8a: case 0x8b: /* MOV r, r/m */
		if (!in->has_modrm || in->mod == 3)
			return false;
		op->high_byte = byte && !in->rex && in->reg >= 4 && in->reg < 8;
		if (op->high_byte)
			op->reg -= 4;
		return true;
	case 0xc6: case 0xc7: /* MOV r/m, imm (imm32 sign-extended for 64-bit) */
		if (!in->has_modrm || in->mod == 3 || (in->reg & 7) != 0)
			return false;
		op->write = true;
		op->reg = -1;
		op->imm = le(bytes + in->length - in->imm_size, in->imm_size);
		if (in->imm_size == 4 && op->size == 8 && (op->imm & 0x80000000u))
			op->imm |= 0xffffffff00000000ull;
		return true;
	case 0xa0: case 0xa1: case 0xa2: case 0xa3: /* MOV AL/eAX, moffs and back */
		op->write = in->opcode >= 0xa2;
		op->reg = RAX;
		return true;
	default:
		return false;
	}
}

static uint64_t reg_get(struct vcpu *v, int r) { return r == RSP ? vmread(VMCS_GUEST_RSP) : v->gpr[r]; }

static void reg_set(struct vcpu *v, int r, uint64_t val)
{
	if (r == RSP)
		vmwrite(VMCS_GUEST_RSP, val);
	else
		v->gpr[r] = val;
}

/* SDM 3A 3.4.1.1: a 32-bit result zero-extends to 64 bits; 8- and 16-bit
 * ones leave the rest of the register as it was. */
static void load_result(struct vcpu *v, const struct mmio_op *op, uint64_t val)
{
	unsigned dsize = op->zext ? op->zext : op->size;
	uint64_t old = reg_get(v, op->reg);
	if (op->high_byte)
		reg_set(v, op->reg, (old & ~0xff00ull) | (val & 0xff) << 8);
	else if (dsize >= 4)
		reg_set(v, op->reg, dsize == 4 ? (uint32_t)val : val);
	else
		reg_set(v, op->reg, (old & ~((1ull << (8 * dsize)) - 1)) | val);
}

static uint64_t device_read(uint64_t pa, unsigned size)
{
	volatile void *p = phys_to_virt(pa);
	switch (size) {
	case 1: return *(volatile uint8_t *)p;
	case 2: return *(volatile uint16_t *)p;
	case 4: return *(volatile uint32_t *)p;
	default: return *(volatile uint64_t *)p;
	}
}

static void device_write(uint64_t pa, unsigned size, uint64_t val)
{
	volatile void *p = phys_to_virt(pa);
	switch (size) {
	case 1: *(volatile uint8_t *)p = (uint8_t)val; break;
	case 2: *(volatile uint16_t *)p = (uint16_t)val; break;
	case 4: *(volatile uint32_t *)p = (uint32_t)val; break;
	default: *(volatile uint64_t *)p = val; break;
	}
}

void mmio_trapped_access(struct vcpu *v, uint64_t gpa, bool write)
{
	uint8_t bytes[15];
	struct x86_insn in;
	struct mmio_op op;
	size_t n = (size_t)guest_fetch(v, bytes);
	if (x86_decode(bytes, n, guest_code_bits(), &in)) {
		inject_ud(v);
		return;
	}
	uint64_t mask = 0;
	if (!decode_op(&in, bytes, &op) || op.write != write || op.size > 8 ||
	    (gpa & 0xfff) + op.size > 0x1000) {
		/* Not a load or store we do (or one across a page): as if
		 * nothing were there. */
		pr_warn("guest %s checked device memory at 0x%llx with an instruction Nestor does not emulate there "
			"(opcode %s%02x, rip 0x%llx): %s\n", write ? "writes" : "reads", (unsigned long long)gpa,
			in.map ? "0f " : "", in.opcode, (unsigned long long)vmread(VMCS_GUEST_RIP),
			write ? "dropped" : "reads all ones");
		vmx_filter_memory_access(v, gpa, write ? "writes" : "reads");
		if (!write && decode_op(&in, bytes, &op) && op.reg >= 0)
			load_result(v, &op, ~0ull);
		skip_instruction_len(v, in.length);
		return;
	}
	mask = op.size == 8 ? ~0ull : (1ull << (8 * op.size)) - 1;
	uint64_t val = op.write ? (op.reg < 0 ? op.imm : reg_get(v, op.reg) >> (op.high_byte ? 8 : 0)) & mask : 0;
	if (!vmx_filter_mmio(v, gpa, op.size, op.write, &val)) {
		if (op.write)
			device_write(gpa, op.size, val);
		else
			val = device_read(gpa, op.size);
	}
	if (!op.write)
		load_result(v, &op, val & mask);
	skip_instruction_len(v, in.length);
}
