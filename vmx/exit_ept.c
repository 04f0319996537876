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
#include "vmx/bios.h"
#include "vmx/ept.h"
#include "vmx/exits.h"
#include "vmx/filter.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"
#include "vmx/vmcs_own.h"

#define LOG_LIMIT 16

static bool is_hidden(struct vm *vm, uint64_t gpa) { return gpa_absent(vm, gpa); }

static void log_access(struct vcpu *v, uint64_t gpa, const char *what)
{
	/* A guarded device's memory: the security function that claimed it
	 * logs it (vmx/filter.h). */
	if (vmx_filter_memory_access(v, gpa, what))
		return;
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

static uint64_t addr_mask(unsigned size) { return size == 2 ? 0xffff : size == 4 ? 0xffffffff : ~0ull; }

/* STOS/MOVS: emulate the elements whose destination is Nestor's memory;
 * once the destination is ordinary memory again let the CPU continue.  At
 * most STRING_CHUNK elements per exit: RIP stays on the instruction until
 * it is done, so interrupts and timers are taken between chunks. */
#define STRING_CHUNK 128

static void string_store(struct vcpu *v, const struct x86_insn *in)
{
	bool movs = in->opcode == 0xa4 || in->opcode == 0xa5;
	unsigned size = (in->opcode & 1) ? in->operand_size : 1;
	uint64_t am = addr_mask(in->address_size);
	uint64_t rflags = vmread(VMCS_GUEST_RFLAGS);
	int64_t step = (rflags & RFLAGS_DF) ? -(int64_t)size : (int64_t)size;
	unsigned src_seg = in->seg >= 0 ? (unsigned)in->seg : 3;
	bool rep = in->rep != 0;
	uint64_t count = rep ? v->gpr[RCX] & am : 1;
	unsigned chunk = (rflags & RFLAGS_TF) ? 1 : STRING_CHUNK;
	struct gfault f;
	while (count && chunk--) {
		uint64_t dst, src, m[2], val = v->gpr[RAX];
		if (movs && (seg_linear(v, src_seg, v->gpr[RSI] & am, size, ACC_READ, &src, &f) ||
			     gla_copy(v, src, &val, size, ACC_READ, &f))) {
			gfault_raise(v, &f);
			return;
		}
		/* The element may straddle two pages, one of them not there. */
		if (seg_linear(v, 0, v->gpr[RDI] & am, size, ACC_WRITE, &dst, &f) ||
		    gla_xlate(v, dst, ACC_WRITE, &m[0], &f)) {
			gfault_raise(v, &f);
			return;
		}
		unsigned n0 = PAGE_SIZE - (dst & (PAGE_SIZE - 1));
		if (n0 > size)
			n0 = size;
		if (n0 < size && gla_xlate(v, dst + n0, ACC_WRITE, &m[1], &f)) {
			gfault_raise(v, &f);
			return;
		}
		if (!is_hidden(v->vm, m[0]) && (n0 == size || !is_hidden(v->vm, m[1])))
			return; /* the CPU goes on from here (RIP unchanged) */
		/* What lands in memory that exists is written; the rest is
		 * dropped (gpa_write drops it). */
		gpa_write(v->vm, m[0], &val, n0);
		if (n0 < size)
			gpa_write(v->vm, m[1], (uint8_t *)&val + n0, size - n0);
		if (movs)
			v->gpr[RSI] = addr_reg_update(v->gpr[RSI], v->gpr[RSI] + step, in->address_size);
		v->gpr[RDI] = addr_reg_update(v->gpr[RDI], v->gpr[RDI] + step, in->address_size);
		count--;
		if (rep)
			v->gpr[RCX] = addr_reg_update(v->gpr[RCX], count, in->address_size);
	}
	if (!count)
		skip_instruction_len(v, in->length);
	else if (rflags & RFLAGS_TF)
		vmwrite(VMCS_GUEST_PENDING_DBG_EXCEPTIONS, vmread(VMCS_GUEST_PENDING_DBG_EXCEPTIONS) | (1u << 14));
}

static void step_in_sink(struct vcpu *v, uint64_t gpa, struct nested *owner);

void ept_drop_write(struct vcpu *v, uint64_t gpa, struct nested *owner)
{
	uint8_t bytes[15];
	struct x86_insn in;
	int mode = guest_code_bits();
	size_t n = (size_t)guest_fetch(v, bytes);
	/* STOS/MOVS may repeat: emulated, in chunks.  Any other instruction is
	 * executed by the CPU itself with the page in a sink (below). */
	if (!x86_decode(bytes, n, mode, &in) && in.map == 0 && !in.has_modrm && in.opcode >= 0xa4 &&
	    in.opcode <= 0xab && in.opcode != 0xa8 && in.opcode != 0xa9 && (in.opcode <= 0xa5 || in.opcode >= 0xaa)) {
		string_store(v, &in);
		return;
	}
	step_in_sink(v, gpa, owner);
}

/* --- writes to memory that does not exist -----------------------------------
 *
 * A PC drops writes to non-existent memory and the instruction (or the
 * event delivery) that made them completes with all its other effects:
 * what it read there is ones, its registers and flags change, a PUSH moves
 * RSP, a CALL jumps.  Nestor cannot tell the CPU to drop a write, and it
 * does not emulate every instruction; so the CPU does the work itself, with
 * the page mapped for a moment to a sink page of Nestor's full of ones,
 * writable, and the mapping is undone at the next exit, which comes right
 * after:
 *  - an instruction is single-stepped: RFLAGS.TF set, every exception
 *    intercepted, external interrupts exiting (they stay pending), STI/MOV
 *    SS blocking lifted (it ends with this instruction anyway); the #DB
 *    exit after it ends the step, an exception it raised is given to the
 *    guest as the CPU would have;
 *  - an event delivery (a frame pushed on a stack there) is followed by a
 *    zero VMX-preemption timer, which exits right after the delivery,
 *    before the handler's first instruction (SDM 26.7.4).
 * Reads of the page then find ones again; the sink is refilled. */

static uint64_t sink_entry(struct vcpu *v)
{
	return virt_to_phys(v->sink_page) | EPT_R | EPT_W | ((uint64_t)MT_WB << EPT_MT_SHIFT);
}

static uint64_t ones_entry(struct vcpu *v)
{
	return virt_to_phys(v->vm->ones_page) | EPT_R | ((uint64_t)MT_WB << EPT_MT_SHIFT);
}

static void map_page(struct vcpu *v, struct nested *owner, uint64_t gpa, uint64_t entry)
{
	int r = owner ? sept_map_page(v, owner, gpa, entry) : ept_set_page(v->vm, gpa, entry);
	if (r)
		vm_end_run(v, true, "out of pool memory mapping non-existent memory");
	if (!owner)
		ept_invalidate(v->vm);
}

/* Maps one more page to the sink; false when the sink is already full. */
static void sink_add(struct vcpu *v, uint64_t gpa, struct nested *owner)
{
	struct sink *s = &v->sink;
	if (s->n == SINK_PAGES)
		vm_end_run(v, true, "one instruction or event writes more pages of non-existent memory than it can");
	if (!v->sink_page) {
		if (!(v->sink_page = page_alloc()))
			vm_end_run(v, true, "out of pool memory for the sink page");
		memset(v->sink_page, 0xff, PAGE_SIZE);
	}
	/* In the EPT every vCPU shares, the page would be the sink for all of
	 * them: they stay stopped until it is non-existent again (sink_undo),
	 * so that for them it never stops being so.  (A shadow EPT is this
	 * vCPU's alone.) */
	if (!owner && v->smp && !s->others_stopped) {
		vm_stop_others(v, 1000);
		s->others_stopped = true;
	}
	s->gpa[s->n] = gpa & ~0xfffull;
	s->owner[s->n++] = owner;
	map_page(v, owner, gpa & ~0xfffull, sink_entry(v));
	if (!s->vmcs) {
		s->vmcs = v->loaded_vmcs;
		s->pin = (uint32_t)vmread(VMCS_PIN_BASED_CTLS);
	}
}

static void delivery_write(struct vcpu *v, uint64_t gpa, struct nested *owner)
{
	struct sink *s = &v->sink;
	bool first = !s->n;
	sink_add(v, gpa, owner);
	if (!first || !ctl_can_set(v->vm->caps->pin, PIN_PREEMPTION_TIMER))
		return;
	/* A VMCS whose level already uses the timer keeps it: the sink then
	 * stays until that level's next exit, whatever it is.  VMCS01's timer
	 * is no level's but level 0's debugger's (debug/gdb_stub.c, Ctrl-C):
	 * the sink takes it, and the debugger finds a zero timer at its next
	 * exit. */
	if ((s->pin & PIN_PREEMPTION_TIMER) && s->vmcs != v->vmcs_phys)
		return;
	s->mode = SINK_DELIVERY;
	vmwrite(VMCS_PIN_BASED_CTLS, s->pin | PIN_PREEMPTION_TIMER);
	vmwrite(VMCS_GUEST_PREEMPTION_TIMER, 0);
}

static void step_in_sink(struct vcpu *v, uint64_t gpa, struct nested *owner)
{
	struct sink *s = &v->sink;
	bool first = !s->n;
	sink_add(v, gpa, owner);
	if (!first)
		return; /* the same instruction, one more page */
	s->mode = SINK_STEP;
	s->exc_bitmap = (uint32_t)vmread(VMCS_EXCEPTION_BITMAP);
	s->exit_ctls = (uint32_t)vmread(VMCS_VMEXIT_CTLS);
	s->rflags = vmread(VMCS_GUEST_RFLAGS);
	vmwrite(VMCS_EXCEPTION_BITMAP, ~0u);
	/* Interrupts exit (not acknowledged: they stay pending for later). */
	vmwrite(VMCS_PIN_BASED_CTLS, s->pin | PIN_EXTINT_EXITING);
	vmwrite(VMCS_VMEXIT_CTLS, s->exit_ctls & ~EXIT_ACK_INTR_ON_EXIT);
	vmwrite(VMCS_GUEST_RFLAGS, s->rflags | RFLAGS_TF);
	/* TF with STI/MOV-SS blocking needs a pending single step (SDM
	 * 26.3.1.5): lift the blocking, which ends with this instruction. */
	uint32_t intr = vmread(VMCS_GUEST_INTERRUPTIBILITY);
	if (intr & (INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOV_SS))
		vmwrite(VMCS_GUEST_INTERRUPTIBILITY, intr & ~(INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOV_SS));
}

/* Puts every page back to non-existent and the VMCS as it was. */
static void sink_undo(struct vcpu *v)
{
	struct sink *s = &v->sink;
	for (unsigned i = 0; i < s->n; i++) {
		/* Above the EPT's top, back to the shared tables (no memory kept). */
		if (!s->owner[i] && s->gpa[i] >= v->vm->ept_top) {
			if (ept_map_ones(v->vm, s->gpa[i]))
				vm_end_run(v, true, "out of pool memory mapping non-existent memory");
			ept_invalidate(v->vm);
		} else {
			map_page(v, s->owner[i], s->gpa[i], ones_entry(v));
		}
	}
	s->n = 0;
	memset(v->sink_page, 0xff, PAGE_SIZE);
	uint64_t prev = v->loaded_vmcs;
	vmcs_load(v, s->vmcs);
	vmwrite(VMCS_PIN_BASED_CTLS, s->pin);
	if (s->mode == SINK_STEP) {
		vmwrite(VMCS_EXCEPTION_BITMAP, s->exc_bitmap);
		vmwrite(VMCS_VMEXIT_CTLS, s->exit_ctls);
		/* The guest's own TF; RF as the CPU left it. */
		uint64_t rf = vmread(VMCS_GUEST_RFLAGS);
		vmwrite(VMCS_GUEST_RFLAGS, (rf & ~RFLAGS_TF) | (s->rflags & RFLAGS_TF));
	}
	vmcs_load(v, prev);
	s->vmcs = 0;
	s->mode = SINK_NONE;
	if (s->others_stopped) {
		s->others_stopped = false;
		vm_resume_others(v, REQ_INVEPT);
	}
}

bool ept_sink_end(struct vcpu *v, uint32_t reason)
{
	struct sink *s = &v->sink;
	/* More pages for the same instruction or delivery. */
	if (reason == EXIT_EPT_VIOLATION && (s->mode == SINK_STEP || (vmread(VMCS_IDT_VECTORING_INFO) & INTR_INFO_VALID)))
		return false;
	unsigned mode = s->mode;
	bool ours = v->loaded_vmcs == s->vmcs;
	uint64_t guest_tf = s->rflags & RFLAGS_TF;
	uint32_t exc_bitmap = s->exc_bitmap;
	sink_undo(v);
	if (!ours)
		return false;
	if (mode == SINK_DELIVERY)
		return reason == EXIT_PREEMPTION_TIMER; /* our own exit: nothing to see */
	if (mode != SINK_STEP)
		return false;
	if (reason == EXIT_EXTERNAL_INTR)
		return true; /* not acknowledged: delivered when the guest can take it */
	if (reason != EXIT_EXCEPTION_NMI)
		return false; /* the instruction's own exit: handled as usual */
	uint32_t info = vmread(VMCS_EXIT_INTR_INFO);
	unsigned vec = info & 0xff, type = (info >> 8) & 7;
	if (type == INTR_TYPE_NMI)
		return false;
	if (vec == EXC_DB && (vmread(VMCS_EXIT_QUALIFICATION) & (1u << 14))) {
		/* The single step: done.  A guest that set TF itself gets its trap. */
		if (guest_tf)
			vmwrite(VMCS_GUEST_PENDING_DBG_EXCEPTIONS, vmread(VMCS_GUEST_PENDING_DBG_EXCEPTIONS) | (1u << 14));
		return true;
	}
	/* An exception of the instruction: the guest's (or its hypervisor's,
	 * when that one intercepts it - then the exit is routed as usual). */
	if ((exc_bitmap >> vec) & 1)
		return false;
	uint32_t err = (uint32_t)vmread(VMCS_EXIT_INTR_ERRCODE);
	if (vec == EXC_PF)
		inject_page_fault(v, vmread(VMCS_EXIT_QUALIFICATION), err);
	else
		inject_exception_err(v, vec, err);
	return true;
}

void ept_absent_access(struct vcpu *v, uint64_t gpa, uint64_t q, struct nested *owner)
{
	/* An event whose delivery touched our memory is delivered again. */
	reinject_idt_vectoring(v);
	if ((q & (1u << 1)) && (vmread(VMCS_IDT_VECTORING_INFO) & INTR_INFO_VALID)) {
		log_access(v, gpa, "writes (delivering an event)");
		delivery_write(v, gpa, owner);
		return;
	}
	/* Memory a security function traps, accessed by our own guest: one
	 * load or store done at a time (vmx/exit_mmio.c).  A level above
	 * finds it non-existent. */
	if (!owner && !(q & (1u << 2)) && vmx_filter_trapped(gpa)) {
		mmio_trapped_access(v, gpa, q & (1u << 1));
		return;
	}
	if (q & (1u << 2)) {
		log_access(v, gpa, "executes");
		inject_ud(v);
	} else if (q & (1u << 1)) {
		log_access(v, gpa, "writes");
		ept_drop_write(v, gpa, owner);
	} else {
		log_access(v, gpa, "reads");
		if (owner ? sept_map_ones(v, owner, gpa) : ept_map_ones(v->vm, gpa))
			vm_end_run(v, true, "out of pool memory mapping a page of ones");
	}
}

void ept_apic_write(struct vcpu *v, uint64_t gpa)
{
	if (apic_write_violation(v, gpa))
		return;
	/* Not a MOV or XCHG: a PC would do the write; Nestor does not
	 * emulate that instruction there.  Said, and dropped. */
	uint8_t bytes[15];
	struct x86_insn in;
	size_t n = (size_t)guest_fetch(v, bytes);
	if (x86_decode(bytes, n, guest_code_bits(), &in)) {
		inject_ud(v);
		return;
	}
	pr_warn("guest vCPU %u writes its xAPIC (offset 0x%llx) with an instruction Nestor does not emulate there "
		"(opcode 0x%x): dropped\n", v->id, (unsigned long long)(gpa & 0xfff), in.opcode);
	skip_instruction_len(v, in.length);
}

/* SDM 27.2.3: an EPT violation (or PML-full exit) in an IRET that had
 * already unblocked NMIs - virtual NMIs, or NMIs - says so in bit 12 of
 * its qualification and saves the guest unblocked; the IRET did not
 * complete and runs again, so a hypervisor that resumes the guest blocks
 * NMIs again first (the IRET will unblock them).  Not for an exit during
 * event delivery, where bit 12 is undefined. */
void ept_exit_restore_nmi_blocking(uint64_t q)
{
	if (!(q & (1u << 12)) || (vmread(VMCS_IDT_VECTORING_INFO) & INTR_INFO_VALID))
		return;
	uint64_t intr = vmread(VMCS_GUEST_INTERRUPTIBILITY);
	vmwrite(VMCS_GUEST_INTERRUPTIBILITY, intr | INTERRUPTIBILITY_NMI);
}

void exit_ept_violation(struct vcpu *v)
{
	uint64_t q = vmread(VMCS_EXIT_QUALIFICATION);
	uint64_t gpa = vmread(VMCS_GUEST_PHYSICAL_ADDR);
	/* Every way out below resumes this guest. */
	ept_exit_restore_nmi_blocking(q);
	if (v->vm->apic_trap && (gpa & ~0xfffull) == v->vm->apic_gpa && (q & 2)) {
		ept_apic_write(v, v->vm->apic_real | (gpa & 0xfff));
		return;
	}
	if ((q & (1u << 2)) && bios_exec_violation(v, gpa))
		return; /* INT 15h, for the BIOS's memory map */
	if (!is_hidden(v->vm, gpa)) {
		/* A watched page (a guest hypervisor's I/O bitmap): the change
		 * is counted, the write retried - after a copy-on-write
		 * snapshot, if one protects the page too, saved it. */
		bool watched = (q & EPT_W) && ept_watch_fault(v->vm, gpa);
		if (snap_ept_fault(v, gpa, q) || watched) {
			/* Copy-on-write: the page is saved and writable now.  The
			 * event being delivered when the store faulted (a frame
			 * pushed there) is delivered again, not lost. */
			reinject_idt_vectoring(v);
			return;
		}
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
