/* insn.c - the VMX instructions executed by L1, emulated as the SDM's
 * pseudo-code says (Vol. 3C chapter 30, "VMX Instruction Reference"):
 * the #UD/#GP conditions, VMfailInvalid vs VMfailValid with the exact
 * VM-instruction error numbers, the launch state, the VMXON pointer cases.
 * VMLAUNCH/VMRESUME are in nested/enter.c. */
#include "boot/cpu.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "lib/x86_decode.h"
#include "mm/mm.h"
#include "nested/internal.h"
#include "nested/shadow_fields.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"
#include "vmx/vmcs_own.h"

/* --- outcome of a VMX instruction (SDM 30.2) ---------------------------- */

#define RFLAGS_ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

static void set_arith_flags(uint64_t set)
{
	vmwrite(VMCS_GUEST_RFLAGS, (vmread(VMCS_GUEST_RFLAGS) & ~RFLAGS_ARITH) | set);
}

void vmx_succeed(struct vcpu *v)
{
	set_arith_flags(0);
	skip_instruction(v);
}

void vmx_fail_invalid(struct vcpu *v)
{
	set_arith_flags(RFLAGS_CF);
	skip_instruction(v);
}

/* VMfail(error): VMfailValid when there is a current VMCS, else VMfailInvalid. */
void vmx_fail(struct vcpu *v, struct nested *n, unsigned error)
{
	if (n->current_ptr == ~0ull) {
		vmx_fail_invalid(v);
		return;
	}
	V12(n->vmcs12, VM_INSTRUCTION_ERROR) = error;
	if (nested_field_shadowed(n, VMCS_VM_INSTRUCTION_ERROR)) {
		vmcs_write_in(v, n->shadow_vmcs_phys, VMCS_VM_INSTRUCTION_ERROR, error);
	}
	set_arith_flags(RFLAGS_ZF);
	skip_instruction(v);
}

/* --- operands (SDM 27.2.5, table 27-13: VM-exit instruction information) -- */

struct operand {
	bool is_reg;
	unsigned reg;  /* register operand (bits 6:3) */
	unsigned reg2; /* second register (bits 31:28): field encoding or type */
	uint64_t gla;  /* memory operand's linear address */
	unsigned seg;
};

static bool in_64bit_mode(void)
{
	return (vmread(VMCS_VMENTRY_CTLS) & ENTRY_IA32E_MODE) && (vmread(VMCS_GUEST_CS_AR) & (1u << 13));
}

uint64_t gpr_read(struct vcpu *v, unsigned r) { return r == RSP ? vmread(VMCS_GUEST_RSP) : v->gpr[r]; }

void gpr_write(struct vcpu *v, unsigned r, uint64_t val)
{
	if (r == RSP)
		vmwrite(VMCS_GUEST_RSP, val);
	else
		v->gpr[r] = val;
}

/* Decodes the operand and checks the segment (limit, type) or canonical
 * form; on a fault the exception is injected and -1 returned. */
static int decode_operand(struct vcpu *v, struct operand *op, bool write, unsigned size)
{
	uint32_t info = vmread(VMCS_EXIT_INSTR_INFO);
	op->reg = (info >> 3) & 15;
	op->reg2 = (info >> 28) & 15;
	op->is_reg = info & (1u << 10);
	if (op->is_reg)
		return 0;
	unsigned scale = info & 3, asize = (info >> 7) & 7, seg = (info >> 15) & 7;
	uint64_t ea = vmread(VMCS_EXIT_QUALIFICATION); /* displacement */
	if (!(info & (1u << 27)))
		ea += gpr_read(v, (info >> 23) & 15);
	if (!(info & (1u << 22)))
		ea += gpr_read(v, (info >> 18) & 15) << scale;
	ea &= asize == 0 ? 0xffffull : asize == 1 ? 0xffffffffull : ~0ull;
	op->seg = seg;
	uint64_t base = vmread(VMCS_GUEST_ES_BASE + 2 * seg);
	unsigned fault_vec = seg == 2 ? EXC_SS : EXC_GP;
	if (in_64bit_mode()) {
		op->gla = (seg == 4 || seg == 5 ? base : 0) + ea;
		/* Canonical: bits 63:47 all equal (4-level paging). */
		if (!x86_canonical(op->gla)) {
			inject_exception_err(v, fault_vec, 0);
			return -1;
		}
		return 0;
	}
	uint32_t ar = vmread(VMCS_GUEST_ES_AR + 2 * seg), limit = vmread(VMCS_GUEST_ES_LIMIT + 2 * seg);
	bool unusable = ar & (1u << 16), code = ar & 8, rw = ar & 2;
	bool expand_down = !code && (ar & 4);
	bool bad = unusable || (write && (code || !rw)) || (!write && code && !rw);
	if (!bad) {
		uint64_t last = ea + size - 1;
		if (expand_down) {
			uint64_t top = (ar & (1u << 14)) ? 0xffffffffull : 0xffffull;
			bad = ea <= limit || last > top;
		} else {
			bad = last > limit;
		}
	}
	if (bad) {
		inject_exception_err(v, fault_vec, 0);
		return -1;
	}
	op->gla = (uint32_t)(base + ea);
	return 0;
}

/* Reads/writes the memory operand as the CPU would: through the paging of
 * the level running the instruction, and the EPTs below it.  A fault is
 * raised as the CPU raises it (#PF, or an EPT violation for the level's
 * own hypervisor when its EPT refuses the access); a write translates
 * every page before it stores anything. */
static int mem_read(struct vcpu *v, uint64_t gla, void *buf, size_t len)
{
	struct gfault f;
	if (gla_copy(v, gla, buf, len, ACC_READ, &f)) {
		gfault_raise(v, &f);
		return -1;
	}
	return 0;
}

static int mem_write(struct vcpu *v, uint64_t gla, const void *buf, size_t len)
{
	struct gfault f;
	if (gla_copy(v, gla, (void *)buf, len, ACC_WRITE, &f)) {
		gfault_raise(v, &f);
		return -1;
	}
	return 0;
}

/* The 64-bit physical address operand of VMXON, VMCLEAR, VMPTRLD. */
static int read_pointer(struct vcpu *v, uint64_t *ptr)
{
	struct operand op;
	if (decode_operand(v, &op, false, 8) || mem_read(v, op.gla, ptr, 8))
		return -1;
	return 0;
}

static uint64_t phys_width_mask(void)
{
	return ~((1ull << maxphyaddr) - 1);
}

/* Common checks of SDM 30.3 for every VMX instruction but VMXON; false when
 * an exception was injected. */
static bool basic_checks(struct vcpu *v, struct nested *n)
{
	if (!n->vmxon) {
		inject_ud(v);
		return false;
	}
	if (guest_cpl() != 0) {
		inject_gp(v);
		return false;
	}
	return true;
}

/* --- the VMCS12 cache ------------------------------------------------------ */

/* Writes the current VMCS12 back to L1's memory, with what L1 wrote
 * through the shadow VMCS. */
void vmcs12_flush(struct vcpu *v, struct nested *n)
{
	if (n->current_ptr == ~0ull)
		return;
	nested_shadow_to_cache(v, n);
	nested_sync_rare(v, n);
	level_write(v, n->level, n->current_ptr, n->vmcs12, sizeof(struct vmcs12));
}

/* --- the instructions ------------------------------------------------------ */

static void do_vmxon(struct vcpu *v, struct nested *n)
{
	/* #UD conditions beyond those the CPU checked: the guest's CR4.VMXE. */
	if (!(guest_cr4() & CR4_VMXE)) {
		inject_ud(v);
		return;
	}
	if (n->vmxon) {
		if (guest_cpl() != 0)
			inject_gp(v);
		else
			vmx_fail(v, n, VMXERR_VMXON_IN_ROOT);
		return;
	}
	/* CPL, and CR0/CR4 values VMX does not support (the guest's view). */
	const struct nested_caps *c = nested_caps();
	uint64_t cr0 = guest_cr0(), cr4 = guest_cr4();
	/* And IA32_FEATURE_CONTROL not locked with VMX enabled: the guest's
	 * own when it is this level's guest (vmx/exit_msr.c); a level above
	 * it keeps its own in the Nestor between, which delegated. */
	bool fc_off = n->level == 1 && (v->feature_control & (FEATURE_CONTROL_LOCKED | FEATURE_CONTROL_VMX_OUTSIDE_SMX)) !=
						(FEATURE_CONTROL_LOCKED | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
	if (guest_cpl() != 0 || (cr0 & c->cr0_fixed0) != c->cr0_fixed0 || (cr0 & ~c->cr0_fixed1) ||
	    (cr4 & c->cr4_fixed0) != c->cr4_fixed0 || (cr4 & ~c->cr4_fixed1) || fc_off) {
		inject_gp(v);
		return;
	}
	uint64_t ptr;
	if (read_pointer(v, &ptr))
		return;
	uint32_t rev = 0;
	if ((ptr & 0xfff) || (ptr & phys_width_mask()) || !level_read(v, n->level, ptr, &rev, 4) ||
	    (rev & 0x7fffffff) != NESTED_VMCS_REVISION || (rev & 0x80000000u)) {
		vmx_fail_invalid(v);
		return;
	}
	n->vmxon = true;
	n->vmxon_ptr = ptr;
	n->current_ptr = ~0ull;
	nested_shadow_update_controls(v, n);
	vmx_succeed(v);
}

static void do_vmxoff(struct vcpu *v, struct nested *n)
{
	if (!basic_checks(v, n))
		return;
	vmcs12_flush(v, n);
	n->vmxon = false;
	n->current_ptr = ~0ull;
	nested_forget_vmcs02(v, n);
	nested_shadow_update_controls(v, n);
	vmx_succeed(v);
	if (v->init_held & (1u << n->level))
		nested_init_after_vmxoff(v, n);
}

static void do_vmclear(struct vcpu *v, struct nested *n)
{
	uint64_t ptr;
	if (!basic_checks(v, n) || read_pointer(v, &ptr))
		return;
	if ((ptr & 0xfff) || (ptr & phys_width_mask()))
		return vmx_fail(v, n, VMXERR_VMCLEAR_INVALID_ADDR);
	if (ptr == n->vmxon_ptr)
		return vmx_fail(v, n, VMXERR_VMCLEAR_VMXON_PTR);
	if (ptr == n->current_ptr) {
		n->vmcs12->launch_state = 0;
		vmcs12_flush(v, n);
		n->current_ptr = ~0ull;
		nested_shadow_update_controls(v, n);
	} else {
		/* Only the current VMCS is cached: the others are in memory.  Mark
		 * the region's launch state clear, as the CPU would. */
		uint32_t clear = 0;
		level_write(v, n->level, ptr + __builtin_offsetof(struct vmcs12, launch_state), &clear, 4);
	}
	if (ptr == n->vmcs02_vmcs12)
		nested_forget_vmcs02(v, n);
	if (n->delegated && ptr == n->bound_vmcs12) {
		pr_info("level %u cleared the VMCS of its guest: VMX delegation for it ends\n", n->level + v->vm->level);
		nested_end_delegation(v, n);
	}
	vmx_succeed(v);
}

static void do_vmptrld(struct vcpu *v, struct nested *n)
{
	uint64_t ptr;
	if (!basic_checks(v, n) || read_pointer(v, &ptr))
		return;
	if ((ptr & 0xfff) || (ptr & phys_width_mask()))
		return vmx_fail(v, n, VMXERR_VMPTRLD_INVALID_ADDR);
	if (ptr == n->vmxon_ptr)
		return vmx_fail(v, n, VMXERR_VMPTRLD_VMXON_PTR);
	uint32_t rev = ~0u;
	level_read(v, n->level, ptr, &rev, 4);
	/* Bit 31, a shadow VMCS, only where VMCS shadowing is offered (SDM
	 * 24.10): such a VMCS may be made current, read and written, but not
	 * entered (nested_vmentry). */
	uint32_t shadow_ok = (nested_caps()->proc2 >> 32 & PROC2_VMCS_SHADOWING) ? 0x80000000u : 0;
	if ((rev & ~shadow_ok) != NESTED_VMCS_REVISION)
		return vmx_fail(v, n, VMXERR_VMPTRLD_BAD_REVISION);
	if (ptr != n->current_ptr) {
		vmcs12_flush(v, n);
		level_read(v, n->level, ptr, n->vmcs12, sizeof(struct vmcs12));
		/* A region never used by VMCLEAR/VMPTRLD before has no format tag:
		 * start it as a clear, empty VMCS (its contents are undefined). */
		if (n->vmcs12->format != VMCS12_FORMAT_TAG) {
			memset(n->vmcs12, 0, sizeof(struct vmcs12));
			n->vmcs12->revision = rev;
			n->vmcs12->format = VMCS12_FORMAT_TAG;
		}
		n->current_ptr = ptr;
		n->rare_stale = false;
		n->all_dirty = true; /* VMCS02 must be made anew from it */
		n->host_img_ptr = HOST_IMG_NONE;
		nested_cache_to_shadow(v, n, NULL);
		nested_shadow_update_controls(v, n);
	}
	vmx_succeed(v);
}

static void do_vmptrst(struct vcpu *v, struct nested *n)
{
	struct operand op;
	if (!basic_checks(v, n) || decode_operand(v, &op, true, 8))
		return;
	uint64_t ptr = n->current_ptr;
	if (mem_write(v, op.gla, &ptr, 8))
		return;
	vmx_succeed(v);
}

/* VMREAD/VMWRITE: the SDM's pseudo-code checks the current VMCS and the
 * field before it touches the memory operand. */
/* VMREAD/VMWRITE, in the order of the SDM's pseudo-code (and Bochs'):
 * current VMCS, then - for VMWRITE - the source operand, then the field. */
static bool bad_encoding(struct vcpu *v, uint64_t enc)
{
	/* In 64-bit mode the register is 64 bits: bits 63:32 must be 0. */
	return (in_64bit_mode() && (enc >> 32)) || !vmcs12_field_exists((uint32_t)enc);
}

/* VMWRITE's source and VMREAD's destination: a register or memory, 64
 * bits in 64-bit mode, else 32; -1 when an exception was raised. */
static int vmwrite_source(struct vcpu *v, uint64_t *val)
{
	unsigned size = in_64bit_mode() ? 8 : 4;
	struct operand op;
	*val = 0;
	if (decode_operand(v, &op, false, size))
		return -1;
	if (op.is_reg)
		*val = gpr_read(v, op.reg);
	else if (mem_read(v, op.gla, val, size))
		return -1;
	if (size == 4)
		*val = (uint32_t)*val;
	return 0;
}

static int vmread_dest(struct vcpu *v, uint64_t val)
{
	unsigned size = in_64bit_mode() ? 8 : 4;
	struct operand op;
	if (decode_operand(v, &op, true, size))
		return -1;
	if (op.is_reg)
		gpr_write(v, op.reg, size == 8 ? val : (uint32_t)val);
	else if (mem_write(v, op.gla, &val, size))
		return -1;
	return 0;
}

static void do_vmread(struct vcpu *v, struct nested *n)
{
	if (!basic_checks(v, n))
		return;
	if (n->current_ptr == ~0ull)
		return vmx_fail_invalid(v);
	uint32_t info = vmread(VMCS_EXIT_INSTR_INFO);
	uint64_t enc = gpr_read(v, (info >> 28) & 15);
	if (bad_encoding(v, enc))
		return vmx_fail(v, n, VMXERR_UNSUPPORTED_FIELD);
	if (is_rare_guest_field((uint32_t)enc))
		nested_sync_rare(v, n);
	if (vmread_dest(v, vmcs12_read(n->vmcs12, (uint32_t)enc)))
		return;
	vmx_succeed(v);
}

static void do_vmwrite(struct vcpu *v, struct nested *n)
{
	if (!basic_checks(v, n))
		return;
	if (n->current_ptr == ~0ull)
		return vmx_fail_invalid(v);
	uint64_t val;
	if (vmwrite_source(v, &val))
		return;
	uint32_t info = vmread(VMCS_EXIT_INSTR_INFO);
	uint64_t enc = gpr_read(v, (info >> 28) & 15);
	if (bad_encoding(v, enc))
		return vmx_fail(v, n, VMXERR_UNSUPPORTED_FIELD);
	if (vmcs_field_type((uint32_t)enc) == VMCS_T_EXIT_INFO && !(nested_caps()->misc & (1ull << 29)))
		return vmx_fail(v, n, VMXERR_VMWRITE_READ_ONLY);
	if (is_rare_guest_field((uint32_t)enc))
		nested_sync_rare(v, n);
	vmcs12_write(n->vmcs12, (uint32_t)enc, val);
	v12_mark(n->dirty, vmcs12_index((uint32_t)enc));
	n->host_img_ptr = HOST_IMG_NONE; /* a host field or the exit controls, maybe */
	/* A field L1 reads through the shadow VMCS (an exit-information field
	 * it may write with IA32_VMX_MISC[29]): keep the shadow in step. */
	if (nested_field_shadowed(n, (uint32_t)enc)) {
		uint32_t full = (uint32_t)enc & ~1u;
		uint64_t v12 = n->vmcs12->f[vmcs12_index(full)];
		vmcs_write_in(v, n->shadow_vmcs_phys, full, v12);
	}
	vmx_succeed(v);
}

/* --- VMREAD/VMWRITE by n's L2 under VMCS shadowing (SDM 24.10, 30.3) ---------
 *
 * With "VMCS shadowing" in VMCS12, an L2's VMREAD or VMWRITE whose field's
 * bit is clear in L1's VMREAD or VMWRITE bitmap does not exit: it reads or
 * writes the shadow VMCS that VMCS12's link pointer references - a VMCS12
 * in L1's memory, in Nestor's format.  VMCS02 has no shadowing (its shadow
 * VMCS would have to be the CPU's), so every such instruction exits to us
 * and is done here as the CPU would, in the pseudo-code's order: CPL, link
 * pointer, (VMWRITE) source operand, field.  A VMfailValid records its
 * error in L1's current VMCS, VMCS12.  False: L1 gets the exit. */
bool nested_shadowed_vmx_access(struct vcpu *v, struct nested *n, bool write)
{
	const struct vmcs12 *c = n->vmcs12;
	if (!(v12_proc2(c) & PROC2_VMCS_SHADOWING))
		return false;
	/* The field's encoding: 32 bits outside 64-bit mode; bits 63:15 set,
	 * or the field's bit set in L1's bitmap, make the instruction exit. */
	uint64_t enc = gpr_read(v, (vmread(VMCS_EXIT_INSTR_INFO) >> 28) & 15);
	if (!in_64bit_mode())
		enc = (uint32_t)enc;
	if (enc > 0x7fff)
		return false;
	uint8_t bits = 0xff;
	uint64_t bitmap = write ? V12(c, VMWRITE_BITMAP) : V12(c, VMREAD_BITMAP);
	level_read(v, n->level, bitmap + enc / 8, &bits, 1);
	if ((bits >> (enc % 8)) & 1)
		return false;
	if (guest_cpl() != 0) {
		inject_gp(v);
		return true;
	}
	uint64_t link = V12(c, VMCS_LINK_PTR);
	if (link == ~0ull) {
		vmx_fail_invalid(v);
		return true;
	}
	uint64_t val = 0;
	if (write && vmwrite_source(v, &val))
		return true;
	if (!vmcs12_field_exists((uint32_t)enc)) {
		vmx_fail(v, n, VMXERR_UNSUPPORTED_FIELD);
		return true;
	}
	if (write && vmcs_field_type((uint32_t)enc) == VMCS_T_EXIT_INFO && !(nested_caps()->misc & (1ull << 29))) {
		vmx_fail(v, n, VMXERR_VMWRITE_READ_ONLY);
		return true;
	}
	/* The field's slot in the shadow VMCS (memory that is not RAM for L1
	 * reads as ones and keeps nothing, as on the CPU). */
	uint64_t at = link + VMCS12_FIELDS_OFFSET + 8ull * (unsigned)vmcs12_index((uint32_t)enc), slot = ~0ull;
	level_read(v, n->level, at, &slot, 8);
	if (write) {
		slot = vmcs12_slot_write(slot, (uint32_t)enc, val);
		level_write(v, n->level, at, &slot, 8);
		vmx_succeed(v);
		return true;
	}
	if (!vmread_dest(v, vmcs12_slot_read(slot, (uint32_t)enc)))
		vmx_succeed(v);
	return true;
}

/* --- VMFUNC by n's L2 (SDM 25.5.6.3, 30.3 VMFUNC) -----------------------------
 * VMCS02 enables VM functions but none of them, so every VMFUNC of L2 exits
 * to us.  An EPTP switch (function 0) that VMCS12 enables, with an index
 * below 512 and a valid EPT pointer at that place of L1's EPTP list, is done
 * here as the CPU would: VMCS12's EPT pointer becomes it, VMCS02 runs on its
 * shadow EPT, L2 goes on after the instruction; with #VE offered, the EPTP
 * index field becomes the index.  False: L1 gets the exit. */
bool nested_vmfunc(struct vcpu *v, struct nested *n)
{
	struct vmcs12 *c = n->vmcs12;
	if (!(v12_proc2(c) & PROC2_VMFUNC))
		return false;
	uint32_t fn = (uint32_t)v->gpr[RAX], index = (uint32_t)v->gpr[RCX];
	if (fn != 0 || !(V12(c, VMFUNC_CONTROLS) & 1) || index >= 512)
		return false;
	uint64_t eptp = ~0ull;
	level_read(v, n->level, V12(c, EPTP_LIST_ADDR) + 8ull * index, &eptp, 8);
	if (!nested_eptp_valid(eptp))
		return false;
	V12(c, EPT_POINTER) = eptp;
	v12_mark(n->dirty, V12_EPT_POINTER);
	/* The EPTP index, a field of #VE, where #VE is offered. */
	if (nested_caps()->proc2 >> 32 & PROC2_EPT_VE)
		V12(c, EPTP_INDEX) = index;
	vmwrite(VMCS_EPT_POINTER, sept_eptp02(v, n, eptp, n->l1_inherited[4]));
	skip_instruction(v);
	return true;
}

/* INVEPT/INVVPID: type in a register, a 128-bit descriptor in memory.  In
 * 64-bit mode the SDM makes the type register 64 bits wide; some CPUs (Bochs
 * 2.7) read 32 bits unless the instruction has REX.W.  Nestor asked the CPU
 * below at boot (nested_probe_inv_type) and reads the type the same way. */
static int inv_operands(struct vcpu *v, uint64_t *type, uint64_t desc[2])
{
	struct operand op;
	if (decode_operand(v, &op, false, 16))
		return -1;
	*type = gpr_read(v, op.reg2);
	if (!in_64bit_mode()) {
		*type = (uint32_t)*type;
	} else if (nested_inv_type_needs_rexw()) {
		uint8_t bytes[15];
		struct gfault f;
		struct x86_insn in;
		uint64_t rip = vmread(VMCS_GUEST_CS_BASE) + vmread(VMCS_GUEST_RIP);
		unsigned len = vmread(VMCS_EXIT_INSTR_LEN);
		if (len > 15 || gla_copy(v, rip, bytes, len, ACC_FETCH, &f) ||
		    x86_decode(bytes, len, 64, &in) || !(in.rex & 8))
			*type = (uint32_t)*type;
	}
	return mem_read(v, op.gla, desc, 16);
}

static void do_invept(struct vcpu *v, struct nested *n)
{
	const struct nested_caps *c = nested_caps();
	if (!(c->proc2 >> 32 & PROC2_EPT) || !(c->ept_vpid & EPT_CAP_INVEPT)) {
		inject_ud(v);
		return;
	}
	uint64_t type, desc[2];
	if (!basic_checks(v, n) || inv_operands(v, &type, desc))
		return;
	bool ok = (type == 1 && (c->ept_vpid & EPT_CAP_INVEPT_SINGLE)) || (type == 2 && (c->ept_vpid & EPT_CAP_INVEPT_ALL));
	if (!ok)
		return vmx_fail(v, n, VMXERR_INVEPT_INVVPID_BAD_OPERAND);
	if (type == 1 && !nested_eptp_valid(desc[0]))
		return vmx_fail(v, n, VMXERR_INVEPT_INVVPID_BAD_OPERAND);
	sept_invalidate(v, n, type == 1 ? desc[0] : 0);
	/* The shadow EPTs the other vCPUs built from it go too, before the
	 * INVEPT completes: a level's EPT12 is in memory its vCPUs share, and
	 * each of them composes its own shadows (docs/smp.md). */
	if (v->smp)
		vm_ask_others(v, REQ_DROP_SHADOWS);
	vmx_succeed(v);
}

static void do_invvpid(struct vcpu *v, struct nested *n)
{
	const struct nested_caps *c = nested_caps();
	if (!(c->proc2 >> 32 & PROC2_VPID) || !(c->ept_vpid & VPID_CAP_INVVPID)) {
		inject_ud(v);
		return;
	}
	uint64_t type, desc[2];
	if (!basic_checks(v, n) || inv_operands(v, &type, desc))
		return;
	/* Descriptor first, then the type (the CPU's order). */
	uint64_t vpid = desc[0];
	if (vpid > 0xffff || (vpid == 0 && type != 2))
		return vmx_fail(v, n, VMXERR_INVEPT_INVVPID_BAD_OPERAND);
	static const uint64_t type_cap[4] = { 1ull << 40, 1ull << 41, 1ull << 42, 1ull << 43 };
	if (type > 3 || !(c->ept_vpid & type_cap[type]))
		return vmx_fail(v, n, VMXERR_INVEPT_INVVPID_BAD_OPERAND);
	if (type == 0 && (uint64_t)(((int64_t)desc[1] << 16) >> 16) != desc[1])
		return vmx_fail(v, n, VMXERR_INVEPT_INVVPID_BAD_OPERAND);
	/* Every VPID of L1 runs under L0's one VPID for L2: flush all of it. */
	if (v->vm->vpid)
		invvpid(1, level_vpid(n->level + 1), 0);
	vmx_succeed(v);
}

void nested_vmx_instruction(struct vcpu *v, unsigned reason)
{
	/* The running level executed it; we emulate its VMX. */
	struct nested *n = v->lv[v->cur];
	if (!nested_enabled() || !n) {
		inject_ud(v);
		return;
	}
	switch (reason) {
	case EXIT_VMXON: return do_vmxon(v, n);
	case EXIT_VMXOFF: return do_vmxoff(v, n);
	case EXIT_VMCLEAR: return do_vmclear(v, n);
	case EXIT_VMPTRLD: return do_vmptrld(v, n);
	case EXIT_VMPTRST: return do_vmptrst(v, n);
	case EXIT_VMREAD: return do_vmread(v, n);
	case EXIT_VMWRITE: return do_vmwrite(v, n);
	case EXIT_INVEPT: return do_invept(v, n);
	case EXIT_INVVPID: return do_invvpid(v, n);
	case EXIT_VMLAUNCH: return nested_vmentry(v, n, false);
	case EXIT_VMRESUME: return nested_vmentry(v, n, true);
	default: inject_ud(v); /* VMFUNC in VMX root operation */
	}
}
