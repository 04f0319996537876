/* vmxfuzz_insn.c - sequences of VMX instructions with mutated operands
 * (SDM Vol. 3C chapter 30): VMXON/VMXOFF in and out of VMX operation,
 * VMCLEAR/VMPTRLD/VMPTRST with pointers that are unaligned, beyond the
 * physical-address width, the VMXON region or of a wrong revision,
 * VMREAD/VMWRITE of random, read-only and unsupported encodings with
 * random values, INVEPT/INVVPID types and descriptors, VMLAUNCH/VMRESUME in
 * both launch states, memory operands that fault, CPL 3, CR0/CR4 writes
 * breaking the VMX-fixed bits.
 *
 * Left out: VMCALL in VMX root operation (Nestor's hypercall instruction;
 * and Bochs 2.7 panics on it with a clear current VMCS); a shadow-VMCS
 * revision (bit 31) for VMPTRLD (Bochs 2.7 then enters a shadow VMCS, where
 * the SDM and Nestor fail invalid; vmx_exits.shadow_vmcs tests the rest);
 * INVEPT/INVVPID types with bits 63:32 set (Bochs 2.7 reads a 32-bit type
 * without REX.W, the SDM a 64-bit one; Nestor reads it as the CPU below);
 * VMPTRLD of a region that was never VMCLEARed (its contents are
 * undefined, SDM 24.11.3). */
#include "guest/tests/vmxfuzz.h"
#include "guest/test.h"
#include "lib/format.h"
#include "lib/string.h"
#include "lib/x86.h"

uint8_t fz_page_a[4096] __attribute__((aligned(4096)));
uint8_t fz_page_b[4096] __attribute__((aligned(4096)));
uint8_t fz_page_bad[4096] __attribute__((aligned(4096)));

const char *fz_outcome(const struct vres *r, char *buf, unsigned n)
{
	if (r->fault) {
		if (exception_has_error_code(r->f.vector))
			ksnprintf(buf, n, "%s%llx", exception_mnemonic(r->f.vector), (unsigned long long)r->f.error_code);
		else
			ksnprintf(buf, n, "%s", exception_mnemonic(r->f.vector));
	} else if (r->status == VM_SUCCEED) {
		ksnprintf(buf, n, "ok");
	} else if (r->status == VM_FAIL_INVALID) {
		ksnprintf(buf, n, "fI");
	} else {
		ksnprintf(buf, n, "fV%u", r->err);
	}
	return buf;
}

/* VMCS fields of features both depths offer (docs/nested.md), by width. */
static const uint32_t fields[] = {
	0x0000, 0x0800, 0x0802, 0x0804, 0x0806, 0x0808, 0x080a, 0x080c, 0x080e, 0x0c00, 0x0c02, 0x0c04, 0x0c06,
	0x0c08, 0x0c0a, 0x0c0c, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009,
	0x200a, 0x200b, 0x2010, 0x2011, 0x201a, 0x201b, 0x202c, 0x202d, 0x2400, 0x2401, 0x2800, 0x2801, 0x2802,
	0x2803, 0x2804, 0x2805, 0x2806, 0x2807, 0x280a, 0x280c, 0x280e, 0x2810, 0x2811, 0x2c00, 0x2c01, 0x2c02,
	0x2c03, 0x4000, 0x4002, 0x4004, 0x4006, 0x4008, 0x400a, 0x400c, 0x400e, 0x4010, 0x4012, 0x4014, 0x4016,
	0x4018, 0x401a, 0x401e, 0x4400, 0x4402, 0x4404, 0x4406, 0x4408, 0x440a, 0x440c, 0x440e, 0x4800, 0x4802,
	0x4804, 0x4806, 0x4808, 0x480a, 0x480c, 0x480e, 0x4810, 0x4812, 0x4814, 0x4816, 0x4818, 0x481a, 0x481c,
	0x481e, 0x4820, 0x4822, 0x4824, 0x4826, 0x482a, 0x482e, 0x4c00, 0x6000, 0x6002, 0x6004, 0x6006, 0x6008,
	0x600a, 0x600c, 0x600e, 0x6400, 0x6402, 0x6404, 0x6406, 0x6408, 0x640a, 0x6800, 0x6802, 0x6804, 0x6806,
	0x6808, 0x680a, 0x680c, 0x680e, 0x6810, 0x6812, 0x6814, 0x6816, 0x6818, 0x681a, 0x681c, 0x681e, 0x6820,
	0x6822, 0x6824, 0x6826, 0x6c00, 0x6c02, 0x6c04, 0x6c06, 0x6c08, 0x6c0a, 0x6c0c, 0x6c0e, 0x6c10, 0x6c12,
	0x6c14, 0x6c16,
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

/* Encodings no CPU has: reserved bits 31:15 or 12, the "high" access of a
 * field that is not 64 bits, indexes beyond every defined field, fields
 * neither Bochs nor Nestor implement (BNDCFGS, RTIT_CTL). */
static uint64_t bad_encoding(struct rng *r)
{
	uint32_t f = fields[rnd_below(r, N_FIELDS)];
	switch (rnd_below(r, 6)) {
	case 0: return f | (uint32_t)rnd_bit(r, 0xffff8000u);
	case 1: return f | 0x1000;
	case 2: return (f & ~1u) | (((f >> 13) & 3) != 1 ? 1 : 0) | (((f >> 13) & 3) == 1 ? 0x3e : 0);
	case 3: return (f & 0x6c00) | (0x40 + 2 * rnd_below(r, 0x1c0));
	case 4: return rnd_chance(r, 1, 2) ? 0x2812 : 0x2814;
	default: return (uint64_t)f | 1ull << (32 + rnd_below(r, 32));
	}
}

/* Exit-information fields whose value after the last exit the SDM leaves
 * undefined for most exits (27.2.1: qualification, guest-physical and
 * linear address, instruction length and information, I/O RCX/RSI/RDI/RIP,
 * error codes of invalid events): their value is not printed.  Nestor
 * copies them from the VMCS that really ran L2, whose exits L1 never saw. */
static bool undefined_ro(uint64_t e)
{
	return ((e >> 10) & 3) == 1 && e != VM_INSN_ERROR && e != EXIT_REASON && e != EXIT_INTR_INFO && e != IDT_VEC_INFO;
}

/* A value for VMWRITE: any width, near the field's width. */
static uint64_t write_value(struct rng *r)
{
	switch (rnd_below(r, 5)) {
	case 0: return rnd(r);
	case 1: return rnd(r) & 0xffff;
	case 2: return rnd(r) & 0xffffffff;
	case 3: return ~0ull;
	default: return rnd_bit(r, ~0ull);
	}
}

/* The VMCS vm_setup() built, field by field: VMLAUNCH/VMRESUME of A run
 * with it (whatever VMWRITEs the sequence made), so that its L2 only ever
 * VMCALLs at once - a random RIP or EPT would run arbitrary code. */
static uint64_t clean_a[N_FIELDS];
static bool clean_a_ok;

static bool writable(uint32_t f) { return !(f & 1) && ((f >> 10) & 3) != 1; }

static void setup_a(struct fz_line *l)
{
	bool ok = vm_try_setup();
	fz_add(l, " SETUP=%u", ok);
	for (unsigned i = 0; i < N_FIELDS; i++)
		if (writable(fields[i]))
			clean_a[i] = fz_vmread(fields[i]);
	clean_a_ok = ok;
}

static void restore_a(void)
{
	for (unsigned i = 0; i < N_FIELDS; i++)
		if (writable(fields[i]))
			fz_vmwrite(fields[i], clean_a[i]);
}

/* --- pointers ------------------------------------------------------------------- */
static uint64_t vmxon_ptr; /* where this case's VMXON went */

static const char *ptr_name(uint64_t p)
{
	static char b[24];
	if (p == ~0ull)
		return "none";
	if (p == pa(vmxon_region))
		return "on";
	if (p == pa(vmcs_a))
		return "A";
	if (p == pa(fz_page_a))
		return "a";
	if (p == pa(fz_page_b))
		return "b";
	if (p == pa(fz_page_bad))
		return "bad";
	ksnprintf(b, sizeof(b), "%llx", (unsigned long long)p);
	return b;
}

static uint64_t pick_ptr(struct rng *r)
{
	switch (rnd_below(r, 13)) {
	case 12: return 0xef00000ull; /* RAM at depth 0, Nestor's own (hidden) above */
	case 0: return pa(vmxon_region);
	case 1: case 2: return pa(vmcs_a);
	case 3: case 4: return pa(fz_page_a);
	case 5: return pa(fz_page_b);
	case 6: return pa(fz_page_bad);
	case 7: return pa(fz_page_a) + 8 * (1 + rnd_below(r, 511));
	case 8: return 1ull << (fzc.maxphyaddr + rnd_below(r, 64 - fzc.maxphyaddr));
	case 9: return pa(fz_page_b) | 1ull << 63;
	case 10: return 0x8000000ull; /* RAM no one uses: reads 0 */
	default: return 0x40000000ull; /* beyond the RAM of every depth */
	}
}

/* --- attempts with a faulting memory operand ----------------------------------- */
enum { MEM_OK, MEM_UNMAPPED, MEM_NONCANONICAL };
struct memop {
	unsigned insn;
	uint64_t addr, enc;
	int status;
};
static void memop_fn(void *p)
{
	struct memop *m = p;
	bool cf = false, zf = false;
	switch (m->insn) {
	case 0: __asm__ volatile("vmptrld (%2)" : "=@ccc"(cf), "=@ccz"(zf) : "r"(m->addr) : "memory"); break;
	case 1: __asm__ volatile("vmclear (%2)" : "=@ccc"(cf), "=@ccz"(zf) : "r"(m->addr) : "memory"); break;
	case 2: __asm__ volatile("vmptrst (%2)" : "=@ccc"(cf), "=@ccz"(zf) : "r"(m->addr) : "memory"); break;
	case 3: __asm__ volatile("vmread %3, (%2)" : "=@ccc"(cf), "=@ccz"(zf) : "r"(m->addr), "r"(m->enc) : "memory"); break;
	case 4: __asm__ volatile("vmwrite (%2), %3" : "=@ccc"(cf), "=@ccz"(zf) : "r"(m->addr), "r"(m->enc) : "memory"); break;
	case 5: __asm__ volatile("invept (%2), %3" : "=@ccc"(cf), "=@ccz"(zf) : "r"(m->addr), "r"(m->enc) : "memory"); break;
	default: __asm__ volatile("invvpid (%2), %3" : "=@ccc"(cf), "=@ccz"(zf) : "r"(m->addr), "r"(m->enc) : "memory"); break;
	}
	m->status = vm_flags(cf, zf);
}

static void memop(struct rng *r, struct fz_line *l)
{
	static const char *const names[] = { "PTRLD", "CLEAR", "PTRST", "READ", "WRITE", "INVEPT", "INVVPID" };
	struct memop m = { rnd_below(r, 7), 0, 0, -1 };
	bool noncanon = rnd_chance(r, 1, 2);
	m.addr = noncanon ? 0x8000000000000000ull + 8 * rnd_below(r, 64) : (1ull << 32) + 8 * rnd_below(r, 4096);
	m.enc = m.insn >= 5 ? 1 + rnd_below(r, 2) : rnd_chance(r, 3, 4) ? fields[rnd_below(r, N_FIELDS)] : bad_encoding(r);
	struct vres v;
	memset(&v, 0, sizeof(v));
	v.fault = catch_fault(memop_fn, &m, &v.f);
	v.status = m.status;
	if (!v.fault && v.status == VM_FAIL_VALID)
		v.err = (uint32_t)fz_vmread(VM_INSN_ERROR);
	char o[24];
	fz_add(l, " m%s%s=%s", names[m.insn], noncanon ? "!" : "", fz_outcome(&v, o, sizeof(o)));
}

/* --- memory operands in other forms: SIB with index and scale, 32-bit
 * address size, FS segment base, RSP base (SDM 27.2.5's instruction
 * information, decoded by the hypervisor that emulates them) ----------------- */
static uint64_t fz_membuf[4];
struct addrop {
	unsigned form, insn;
	uint64_t enc;
	int status;
};
static void addr_fn(void *p)
{
	struct addrop *a = p;
	bool cf = false, zf = false;
	uint64_t base = pa(fz_membuf), idx = 3, enc = a->enc;
	uint64_t *slot = &fz_membuf[1];
	switch (a->form * 4 + a->insn) {
	/* form 0: (base, index, 8) */
	case 0: __asm__ volatile("vmptrst -16(%2,%3,8)" : "=@ccc"(cf), "=@ccz"(zf) : "r"(base + 16), "r"(idx - 2) : "memory"); break;
	case 1: __asm__ volatile("vmread %4, (%2,%3,8)" : "=@ccc"(cf), "=@ccz"(zf) : "r"(base), "r"(idx - 2), "r"(enc) : "memory"); break;
	case 2: __asm__ volatile("vmwrite (%2,%3,8), %4" : "=@ccc"(cf), "=@ccz"(zf) : "r"(base), "r"(idx - 2), "r"(enc) : "memory"); break;
	case 3: __asm__ volatile("vmptrld (%2,%3,8)" : "=@ccc"(cf), "=@ccz"(zf) : "r"(base), "r"(idx - 2) : "memory"); break;
	/* form 1: 32-bit address size */
	case 4: __asm__ volatile("vmptrst (%k2)" : "=@ccc"(cf), "=@ccz"(zf) : "r"(slot) : "memory"); break;
	case 5: __asm__ volatile("vmread %3, (%k2)" : "=@ccc"(cf), "=@ccz"(zf) : "r"(slot), "r"(enc) : "memory"); break;
	case 6: __asm__ volatile("vmwrite (%k2), %3" : "=@ccc"(cf), "=@ccz"(zf) : "r"(slot), "r"(enc) : "memory"); break;
	case 7: __asm__ volatile("vmclear (%k2)" : "=@ccc"(cf), "=@ccz"(zf) : "r"(slot) : "memory"); break;
	/* form 2: FS base (set to the buffer, minus a displacement) */
	case 8: __asm__ volatile("vmptrst %%fs:0x1008" : "=@ccc"(cf), "=@ccz"(zf) : : "memory"); break;
	case 9: __asm__ volatile("vmread %2, %%fs:0x1008" : "=@ccc"(cf), "=@ccz"(zf) : "r"(enc) : "memory"); break;
	case 10: __asm__ volatile("vmwrite %%fs:0x1008, %2" : "=@ccc"(cf), "=@ccz"(zf) : "r"(enc) : "memory"); break;
	case 11: __asm__ volatile("vmptrld %%fs:0x1008" : "=@ccc"(cf), "=@ccz"(zf) : : "memory"); break;
	/* form 3: RSP base, on this stack */
	case 12: __asm__ volatile("subq $32, %%rsp\n\tvmptrst 8(%%rsp)\n\tpopq %%rax\n\tpopq %%rax\n\tmovq %%rax, (%2)\n\taddq $16, %%rsp"
				  : "=@ccc"(cf), "=@ccz"(zf) : "r"(slot) : "rax", "memory"); break;
	case 13: __asm__ volatile("subq $32, %%rsp\n\tvmread %3, 8(%%rsp)\n\tpopq %%rax\n\tpopq %%rax\n\tmovq %%rax, (%2)\n\taddq $16, %%rsp"
				  : "=@ccc"(cf), "=@ccz"(zf) : "r"(slot), "r"(enc) : "rax", "memory"); break;
	case 14: __asm__ volatile("pushq (%2)\n\tvmwrite (%%rsp), %3\n\tleaq 8(%%rsp), %%rsp" : "=@ccc"(cf), "=@ccz"(zf) : "r"(slot), "r"(enc) : "memory"); break;
	default: __asm__ volatile("pushq (%2)\n\tvmptrld (%%rsp)\n\tleaq 8(%%rsp), %%rsp" : "=@ccc"(cf), "=@ccz"(zf) : "r"(slot) : "memory"); break;
	}
	a->status = vm_flags(cf, zf);
}

static void addr_op(struct rng *r, struct fz_line *l)
{
	static const char *const names[] = { "PTRST", "READ", "WRITE", "PTRLD" };
	struct addrop a = { rnd_below(r, 4), rnd_below(r, 4), fields[rnd_below(r, N_FIELDS)], -1 };
	const uint64_t ptrs[] = { pa(fz_page_a), pa(fz_page_b), pa(vmcs_a), pa(fz_page_a) + 16 };
	fz_membuf[0] = fz_membuf[2] = fz_membuf[3] = 0;
	fz_membuf[1] = a.insn == 2 ? write_value(r) : ptrs[rnd_below(r, 4)];
	uint64_t in = fz_membuf[1];
	if (a.form == 2)
		wrmsr(MSR_FS_BASE, pa(fz_membuf) - 0x1000);
	struct vres v;
	memset(&v, 0, sizeof(v));
	v.fault = catch_fault(addr_fn, &a, &v.f);
	wrmsr(MSR_FS_BASE, 0);
	v.status = a.status;
	if (!v.fault && v.status == VM_FAIL_VALID)
		v.err = (uint32_t)fz_vmread(VM_INSN_ERROR);
	char o[24];
	const char *name = a.form == 1 && a.insn == 3 ? "CLEAR" : names[a.insn];
	fz_add(l, " a%u%s(%s)=%s", a.form, name, a.insn == 1 || a.insn == 2 ? "" : ptr_name(in),
	       fz_outcome(&v, o, sizeof(o)));
	/* What a store wrote, where the form says. */
	if (vr_ok(&v) && a.insn == 0)
		fz_add(l, ":%s", ptr_name(fz_membuf[1]));
	else if (vr_ok(&v) && a.insn == 1 && !undefined_ro(a.enc))
		fz_add(l, ":%llx", (unsigned long long)fz_membuf[1]);
}

/* --- CR0/CR4 writes breaking the VMX-fixed bits (SDM 23.8) --------------------- */
struct crw {
	int cr;
	uint64_t v;
};
static void crw_fn(void *p)
{
	struct crw *w = p;
	if (w->cr == 0)
		write_cr0(w->v);
	else
		write_cr4(w->v);
}

static void cr_op(struct rng *r, struct fz_line *l)
{
	struct crw w;
	if (rnd_chance(r, 1, 2))
		w = (struct crw){ 0, read_cr0() & ~(uint64_t)(rnd_chance(r, 1, 2) ? CR0_NE : CR0_PE) };
	else
		w = (struct crw){ 4, read_cr4() & ~(uint64_t)CR4_VMXE };
	uint64_t before = w.cr ? read_cr4() : read_cr0();
	struct fault f;
	bool hit = catch_fault(crw_fn, &w, &f);
	char o[24];
	struct vres v;
	memset(&v, 0, sizeof(v));
	v.fault = hit;
	v.f = f;
	fz_add(l, " CR%d=%s", w.cr, fz_outcome(&v, o, sizeof(o)));
	/* Outside VMX operation the write may stand; VMXON wants it back. */
	if (!hit && fz_in_vmx)
		fz_add(l, "(kept)");
	if (w.cr)
		write_cr4(before);
	else
		write_cr0(before);
}

/* --- one step ----------------------------------------------------------------------- */
static void step(struct rng *r, struct fz_line *l)
{
	char o[24];
	struct vres v;
	bool user = rnd_chance(r, 1, 20);
	struct vres (*run)(enum vx_insn, uint64_t, uint64_t) = user ? vx_user : vx;
	const char *u = user ? "u" : "";
	unsigned op = rnd_below(r, 25);
	switch (op) {
	case 0: case 1: { /* VMXON, possibly with CR4.VMXE or CR0.NE clear */
		uint64_t p = rnd_chance(r, 2, 3) ? pa(vmxon_region) : pick_ptr(r);
		unsigned k = fz_in_vmx ? 0 : rnd_below(r, 8);
		uint64_t cr0 = read_cr0(), cr4 = read_cr4();
		if (k == 1)
			write_cr4(cr4 & ~CR4_VMXE);
		else if (k == 2)
			write_cr0(cr0 & ~CR0_NE);
		v = run(VX_VMXON, p, 0);
		write_cr0(cr0);
		write_cr4(cr4);
		if (vr_ok(&v)) {
			fz_in_vmx = true;
			vmxon_ptr = p;
		}
		fz_add(l, " %sON%u(%s)=%s", u, k == 1 || k == 2 ? k : 0, ptr_name(p), fz_outcome(&v, o, sizeof(o)));
		break;
	}
	case 2:
		v = run(VX_VMXOFF, 0, 0);
		if (vr_ok(&v))
			fz_in_vmx = false;
		fz_add(l, " %sOFF=%s", u, fz_outcome(&v, o, sizeof(o)));
		break;
	case 3: case 4: {
		uint64_t p = pick_ptr(r);
		v = run(VX_VMCLEAR, p, 0);
		fz_add(l, " %sCLEAR(%s)=%s", u, ptr_name(p), fz_outcome(&v, o, sizeof(o)));
		break;
	}
	case 5: case 6: case 7: {
		uint64_t p = pick_ptr(r);
		v = run(VX_VMPTRLD, p, 0);
		fz_add(l, " %sPTRLD(%s)=%s", u, ptr_name(p), fz_outcome(&v, o, sizeof(o)));
		break;
	}
	case 8:
		v = run(VX_VMPTRST, 0, 0);
		fz_add(l, " %sPTRST=%s", u, fz_outcome(&v, o, sizeof(o)));
		if (vr_ok(&v))
			fz_add(l, "(%s)", ptr_name(v.out));
		break;
	case 9: case 10: case 11: { /* VMREAD, register or memory */
		uint64_t e = rnd_chance(r, 4, 5) ? fields[rnd_below(r, N_FIELDS)] : bad_encoding(r);
		bool mem = rnd_chance(r, 1, 3);
		v = run(mem ? VX_VMREAD_MEM : VX_VMREAD, e, 0x5a5a5a5a5a5a5a5aull);
		fz_add(l, " %sRD%s(%llx)=%s", u, mem ? "m" : "", (unsigned long long)e, fz_outcome(&v, o, sizeof(o)));
		if (vr_ok(&v) && !undefined_ro(e))
			fz_add(l, ":%llx", (unsigned long long)v.out);
		break;
	}
	case 12: case 13: case 14: { /* VMWRITE, then VMREAD the field back */
		uint64_t e = rnd_chance(r, 4, 5) ? fields[rnd_below(r, N_FIELDS)] : bad_encoding(r);
		uint64_t val = write_value(r);
		bool mem = rnd_chance(r, 1, 3);
		v = run(mem ? VX_VMWRITE_MEM : VX_VMWRITE, e, val);
		fz_add(l, " %sWR%s(%llx,%llx)=%s", u, mem ? "m" : "", (unsigned long long)e, (unsigned long long)val,
		       fz_outcome(&v, o, sizeof(o)));
		if (vr_ok(&v)) {
			struct vres b = vx(VX_VMREAD, e, 0);
			fz_add(l, ":%s:%llx", fz_outcome(&b, o, sizeof(o)), (unsigned long long)b.out);
		}
		break;
	}
	case 15: { /* INVEPT: type and EPT pointer (not its bit 6, A/D flags,
		    * which Nestor does not offer, nor bit 7: see m_eptp) */
		static struct inv_desc d;
		uint64_t type = rnd_below(r, 5);
		d.lo = rnd_chance(r, 2, 3) ? ept_pointer() : ept_pointer() ^ rnd_bit(r, 0xf3full | (1ull << 60));
		d.hi = rnd_chance(r, 3, 4) ? 0 : rnd(r);
		v = run(VX_INVEPT, type, pa(&d));
		fz_add(l, " %sINVEPT(%llu,%llx)=%s", u, (unsigned long long)type, (unsigned long long)(d.lo & 0xfff),
		       fz_outcome(&v, o, sizeof(o)));
		break;
	}
	case 16: { /* INVVPID: type, VPID, linear address */
		static struct inv_desc d;
		static const uint64_t vpids[] = { 0, 1, 0xffff, 0x10000, 1ull << 40 };
		uint64_t type = rnd_below(r, 5);
		d.lo = vpids[rnd_below(r, 5)];
		d.hi = rnd_chance(r, 1, 2) ? 0x1000 : 0x0000800000000000ull;
		v = run(VX_INVVPID, type, pa(&d));
		fz_add(l, " %sINVVPID(%llu,%llx,%llx)=%s", u, (unsigned long long)type, (unsigned long long)d.lo,
		       (unsigned long long)d.hi, fz_outcome(&v, o, sizeof(o)));
		break;
	}
	case 17: case 18: { /* VMLAUNCH/VMRESUME of whatever is current */
		uint64_t cur = ~0ull;
		struct vres s = vx(VX_VMPTRST, 0, 0);
		if (vr_ok(&s))
			cur = s.out;
		int mode = rnd_below(r, 3);
		if (user) {
			v = vx_user(mode == 1 ? VX_VMRESUME : VX_VMLAUNCH, 0, 0);
			fz_add(l, " uGO%d=%s", mode, fz_outcome(&v, o, sizeof(o)));
			break;
		}
		/* Only the VMCS vm_setup() built may really enter, as built;
		 * any other region fails the control checks. */
		if (cur == pa(vmcs_a)) {
			if (!clean_a_ok)
				break;
			restore_a();
		}
		uint32_t x = vm_go_mode(mode);
		if (x == GO_FAILED) {
			fz_add(l, " GO%d=%s", mode, vm.go.s);
		} else {
			fz_add(l, " GO%d=x%x", mode, x);
			vm_skip();
		}
		break;
	}
	case 19: /* a fresh VMCS for A, made current */
		if (fz_in_vmx)
			setup_a(l);
		break;
	case 20:
		cr_op(r, l);
		break;
	case 21:
		memop(r, l);
		break;
	case 22:
		addr_op(r, l);
		break;
	default: { /* a fresh region for a or b (only when not current) */
		uint8_t *pg = rnd_chance(r, 1, 2) ? fz_page_a : fz_page_b;
		struct vres s = vx(VX_VMPTRST, 0, 0);
		if (fz_in_vmx && vr_ok(&s) && s.out == pa(pg))
			break;
		vmcs_init_page(pg, vcaps.rev);
		if (fz_in_vmx)
			vx(VX_VMCLEAR, pa(pg), 0);
		fz_add(l, " init(%s)", ptr_name(pa(pg)));
		break;
	}
	}
}

void fz_insn_case(struct rng *r, struct fz_line *l)
{
	fz_add(l, " I");
	/* The pages start as fresh regions, cleared; fz_page_bad has a wrong
	 * revision and garbage. */
	vmcs_init_page(fz_page_a, vcaps.rev);
	vmcs_init_page(fz_page_b, vcaps.rev);
	for (unsigned i = 0; i < 4096; i += 8)
		*(uint64_t *)(fz_page_bad + i) = rnd(r);
	*(uint32_t *)fz_page_bad = (vcaps.rev + 1 + rnd_below(r, 100)) & 0x7fffffff;
	vx(VX_VMCLEAR, pa(fz_page_a), 0);
	vx(VX_VMCLEAR, pa(fz_page_b), 0);
	vmxon_ptr = pa(vmxon_region);
	clean_a_ok = false;
	if (rnd_chance(r, 1, 2))
		setup_a(l);
	unsigned n = 2 + rnd_below(r, 10);
	for (unsigned i = 0; i < n; i++)
		step(r, l);
	/* Back to VMX operation with the usual VMXON region for the next case. */
	if (fz_in_vmx && vmxon_ptr != pa(vmxon_region)) {
		vx(VX_VMXOFF, 0, 0);
		fz_in_vmx = false;
	}
}
