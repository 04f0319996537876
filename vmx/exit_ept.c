/* exit_ept.c - EPT violations (SDM Vol. 3C 28.3.3.2, 27.2.1 table 27-7).
 *
 * The guest's EPT maps all of the machine except Nestor's own memory, so a
 * violation means the guest touched Nestor.  It gets what a PC gives for
 * non-existent memory, and the access is logged:
 *  - reads return all ones: the page is mapped to a read-only page of 0xff
 *    bytes and the instruction runs again;
 *  - writes are dropped: the instruction is decoded (the CPU gives no
 *    length for EPT violations) and its stores are skipped;
 *  - instruction fetches find 0xff bytes, an invalid opcode: #UD. */
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "lib/x86_decode.h"
#include "mm/mm.h"
#include "snap/snap.h"
#include "vmx/dump.h"
#include "vmx/ept.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"

#define LOG_LIMIT 16

static bool is_hidden(struct vm *vm, uint64_t gpa)
{
	uint64_t page = gpa & ~(PAGE_SIZE - 1);
	return gpa >= vm->ept_top || rs_overlaps(&vm->hidden, page, page + PAGE_SIZE);
}

static void log_access(struct vcpu *v, uint64_t gpa, const char *what)
{
	v->vm->hidden_accesses++;
	if (v->vm->hidden_accesses > LOG_LIMIT)
		return;
	const char *more = v->vm->hidden_accesses == LOG_LIMIT ? "; further accesses are only counted" : "";
	if (v->cur <= 1)
		pr_warn("guest %s Nestor's memory at 0x%llx (rip 0x%llx)%s\n", what, (unsigned long long)gpa,
			(unsigned long long)vmread(VMCS_GUEST_RIP), more);
	else
		pr_warn("level %u %s memory a level below it hides, at 0x%llx (rip 0x%llx)%s\n",
			v->cur + v->vm->level, what, (unsigned long long)gpa, (unsigned long long)vmread(VMCS_GUEST_RIP),
			more);
}

static int guest_mode(void)
{
	uint32_t cs_ar = vmread(VMCS_GUEST_CS_AR);
	if ((vmread(VMCS_VMENTRY_CTLS) & ENTRY_IA32E_MODE) && (cs_ar & (1u << 13)))
		return 64;
	if (!(vmread(VMCS_CR0_READ_SHADOW) & CR0_PE))
		return 16;
	return (cs_ar & (1u << 14)) ? 32 : 16;
}

/* Instructions whose only effect is to store to their memory operand. */
static bool pure_store(const struct x86_insn *in)
{
	unsigned r = in->reg & 7;
	if (!in->has_modrm && in->map == 0)
		return in->opcode == 0xa2 || in->opcode == 0xa3; /* MOV moffs, AL/rAX */
	if (in->has_modrm && in->mod == 3)
		return false;
	if (in->map == 0)
		return in->opcode == 0x88 || in->opcode == 0x89 || in->opcode == 0x8c ||
		       ((in->opcode == 0xc6 || in->opcode == 0xc7) && r == 0);
	if (in->map == 1) {
		switch (in->opcode) {
		case 0x11: case 0x13: case 0x17: case 0x29: case 0x2b: case 0x7e: case 0x7f: case 0xc3:
		case 0xd6: case 0xe7:
			return true;
		case 0x00: case 0x01: /* SLDT, STR / SGDT, SIDT */
			return !in->vex && r <= 1;
		case 0xae: /* FXSAVE, XSAVE */
			return !in->vex && (r == 0 || r == 4);
		}
		return !in->vex && in->opcode >= 0x90 && in->opcode <= 0x9f; /* SETcc */
	}
	if (in->map == 3) /* PEXTR*, EXTRACTPS, VEXTRACT*128, VCVTPS2PH to memory */
		return (in->opcode >= 0x14 && in->opcode <= 0x17) || in->opcode == 0x19 || in->opcode == 0x39 ||
		       in->opcode == 0x1d;
	return false;
}

static uint64_t addr_mask(unsigned size) { return size == 2 ? 0xffff : size == 4 ? 0xffffffff : ~0ull; }

/* STOS/MOVS: emulate the elements whose destination is Nestor's memory;
 * once the destination is ordinary memory again let the CPU continue. */
static void string_store(struct vcpu *v, const struct x86_insn *in)
{
	bool movs = in->opcode == 0xa4 || in->opcode == 0xa5;
	unsigned size = (in->opcode & 1) ? in->operand_size : 1;
	uint64_t am = addr_mask(in->address_size);
	int64_t step = (vmread(VMCS_GUEST_RFLAGS) & RFLAGS_DF) ? -(int64_t)size : (int64_t)size;
	uint64_t es = vmread(VMCS_GUEST_ES_BASE);
	uint64_t src_base = vmread(VMCS_GUEST_ES_BASE + 2 * (in->seg >= 0 ? in->seg : 3));
	bool rep = in->rep != 0;
	uint64_t count = rep ? v->gpr[RCX] & am : 1;
	while (count) {
		uint64_t dst = es + (v->gpr[RDI] & am), gpa;
		uint32_t pf;
		if (gla_to_gpa(v, dst, ACC_WRITE, &gpa, &pf)) {
			write_cr2(dst);
			inject_exception_err(v, 14, pf);
			return;
		}
		if (!is_hidden(v->vm, gpa))
			return; /* the CPU goes on from here (RIP unchanged) */
		uint64_t val = v->gpr[RAX];
		if (movs) {
			uint64_t src = src_base + (v->gpr[RSI] & am), fault;
			if (gla_read(v, src, &val, size, ACC_READ, &pf, &fault)) {
				write_cr2(fault);
				inject_exception_err(v, 14, pf);
				return;
			}
			v->gpr[RSI] = addr_reg_update(v->gpr[RSI], v->gpr[RSI] + step, in->address_size);
		}
		(void)val; /* the store itself is dropped */
		v->gpr[RDI] = addr_reg_update(v->gpr[RDI], v->gpr[RDI] + step, in->address_size);
		count--;
		if (rep)
			v->gpr[RCX] = addr_reg_update(v->gpr[RCX], count, in->address_size);
	}
	skip_instruction_len(v, in->length);
}

void ept_drop_write(struct vcpu *v)
{
	uint8_t bytes[15];
	uint64_t rip = vmread(VMCS_GUEST_RIP), fault;
	uint32_t pf;
	struct x86_insn in;
	int mode = guest_mode();
	uint64_t gla = vmread(VMCS_GUEST_CS_BASE) + rip;
	/* The CPU fetched these bytes a moment ago; read what is readable. */
	size_t n = 15;
	while (n && gla_read(v, gla, bytes, n, ACC_FETCH, &pf, &fault))
		n--;
	if (x86_decode(bytes, n, mode, &in)) {
		pr_err("cannot decode the instruction writing Nestor's memory at rip 0x%llx\n", (unsigned long long)rip);
		vmcs_dump_guest(v);
		vm_end_run(v, true, "undecodable write to Nestor's memory");
	}
	if (in.map == 0 && !in.has_modrm && in.opcode >= 0xa4 && in.opcode <= 0xab && in.opcode != 0xa8 &&
	    in.opcode != 0xa9 && (in.opcode <= 0xa5 || in.opcode >= 0xaa)) {
		string_store(v, &in);
		return;
	}
	if (!pure_store(&in)) {
		/* Read-modify-write and stack instructions are not emulated: the
		 * instruction is skipped; say so. */
		v->vm->hidden_inexact++;
		pr_warn("instruction (opcode map %u, 0x%02x) writing Nestor's memory skipped without its "
			"other effects\n",
			in.map, in.opcode);
	}
	skip_instruction_len(v, in.length);
}

void ept_absent_access(struct vcpu *v, uint64_t gpa, uint64_t q, struct nested *owner)
{
	/* An event whose delivery touched our memory is delivered again. */
	reinject_idt_vectoring(v);
	if (q & (1u << 2)) {
		log_access(v, gpa, "executes");
		inject_ud(v);
	} else if (q & (1u << 1)) {
		log_access(v, gpa, "writes");
		ept_drop_write(v);
	} else {
		log_access(v, gpa, "reads");
		if (owner ? sept_map_ones(v, owner, gpa) : ept_map_ones(v->vm, gpa))
			vm_end_run(v, true, "out of pool memory mapping a page of ones");
	}
}

void exit_ept_violation(struct vcpu *v)
{
	uint64_t q = vmread(VMCS_EXIT_QUALIFICATION);
	uint64_t gpa = vmread(VMCS_GUEST_PHYSICAL_ADDR);
	if (!is_hidden(v->vm, gpa)) {
		if (snap_ept_fault(v, gpa, q))
			return; /* copy-on-write: the page is saved and writable now */
		pr_err("EPT violation on guest memory at 0x%llx (qualification 0x%llx)\n", (unsigned long long)gpa,
		       (unsigned long long)q);
		vmcs_dump_guest(v);
		vm_end_run(v, true, "unexpected EPT violation");
	}
	ept_absent_access(v, gpa, q, NULL);
}

void exit_ept_misconfig(struct vcpu *v)
{
	pr_err("EPT misconfiguration at 0x%llx: Nestor built a bad EPT entry\n",
	       (unsigned long long)vmread(VMCS_GUEST_PHYSICAL_ADDR));
	vmcs_dump_guest(v);
	vm_end_run(v, true, "EPT misconfiguration");
}
