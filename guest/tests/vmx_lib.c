/* vmx_lib.c - the guest kernel's test hypervisor: capabilities, entering
 * and leaving VMX operation, one complete VMCS for a 64-bit L2 with EPT,
 * running it and reading what its exits report.  Used by the vmx and
 * vmx_exits suites; every control value comes from the capability MSRs. */
#include "guest/apic.h"
#include "guest/vmx.h"
#include "guest/test.h"
#include "lib/format.h"
#include "lib/string.h"
#include "lib/x86.h"

struct vmx_caps vcaps;
struct vm vm;
volatile struct l2_event l2_event;

uint8_t vmxon_region[4096] __attribute__((aligned(4096)));
uint8_t vmcs_a[4096] __attribute__((aligned(4096)));
uint8_t vmcs_b[4096] __attribute__((aligned(4096)));
uint8_t vmx_scratch[4096] __attribute__((aligned(4096)));
uint8_t msr_bitmap[4096] __attribute__((aligned(4096)));
uint8_t io_bitmap_a[4096] __attribute__((aligned(4096)));
uint8_t io_bitmap_b[4096] __attribute__((aligned(4096)));
uint8_t ept_probe[4096] __attribute__((aligned(4096)));
static uint64_t ept_pml4[512] __attribute__((aligned(4096)));
static uint64_t ept_pdpt[512] __attribute__((aligned(4096)));
static uint64_t ept_pd[4 * 512] __attribute__((aligned(4096)));
static uint64_t ept_pt[512] __attribute__((aligned(4096)));
static uint8_t l2_stack[8192] __attribute__((aligned(4096)));

struct __attribute__((packed)) l2_gate {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, zero;
};
static struct l2_gate l2_idt[256] __attribute__((aligned(4096)));

/* --- attempts of single instructions --------------------------------------- */
struct vx_arg {
	enum vx_insn insn;
	uint64_t a, b, out;
	int status;
};

static void vx_fn(void *p)
{
	struct vx_arg *x = p;
	bool cf = false, zf = false;
	switch (x->insn) {
	case VX_VMXON: x->status = vmxon_insn(x->a); break;
	case VX_VMXOFF: x->status = vmxoff_insn(); break;
	case VX_VMCLEAR: x->status = vmclear_insn(x->a); break;
	case VX_VMPTRLD: x->status = vmptrld_insn(x->a); break;
	case VX_VMPTRST: x->out = 0x5a5a5a5a5a5a5a5aull; x->status = vmptrst_insn(&x->out); break;
	case VX_VMREAD: x->out = x->b; x->status = vmread_insn(x->a, &x->out); break;
	case VX_VMREAD_MEM: x->out = x->b; x->status = vmread_mem_insn(x->a, &x->out); break;
	case VX_VMWRITE: x->status = vmwrite_insn(x->a, x->b); break;
	case VX_VMWRITE_MEM: x->status = vmwrite_mem_insn(x->a, &x->b); break;
	case VX_INVEPT: x->status = invept_insn(x->a, (const struct inv_desc *)x->b); break;
	case VX_INVVPID: x->status = invvpid_insn(x->a, (const struct inv_desc *)x->b); break;
	case VX_VMREAD_PTR:
		__asm__ volatile("vmread %[e], (%[p])" : "=@ccc"(cf), "=@ccz"(zf) : [e] "r"(x->a), [p] "r"(x->b) : "memory");
		x->status = vm_flags(cf, zf);
		break;
	case VX_VMWRITE_PTR:
		__asm__ volatile("vmwrite (%[p]), %[e]" : "=@ccc"(cf), "=@ccz"(zf) : [e] "r"(x->a), [p] "r"(x->b) : "memory");
		x->status = vm_flags(cf, zf);
		break;
	/* Only where they must fail: a successful entry would need host state. */
	case VX_VMLAUNCH:
		__asm__ volatile("vmlaunch" : "=@ccc"(cf), "=@ccz"(zf)::"memory");
		x->status = vm_flags(cf, zf);
		break;
	case VX_VMRESUME:
		__asm__ volatile("vmresume" : "=@ccc"(cf), "=@ccz"(zf)::"memory");
		x->status = vm_flags(cf, zf);
		break;
	case VX_VMCALL:
		__asm__ volatile("vmcall" : "=@ccc"(cf), "=@ccz"(zf)::"memory");
		x->status = vm_flags(cf, zf);
		break;
	}
}

/* VMREAD that survives an exception: NULL if it succeeded, else what
 * happened ("VMfailInvalid", "#UD"...). */
struct vrd {
	uint64_t enc, v;
	int s;
};
static void vrd_fn(void *p)
{
	struct vrd *x = p;
	x->s = vmread_insn(x->enc, &x->v);
}
static const char *vmread_safe(uint64_t enc, uint64_t *v)
{
	static char buf[24];
	struct vrd x = { enc, ~0ull, -1 };
	struct fault f;
	if (catch_fault(vrd_fn, &x, &f))
		return fault_str(buf, sizeof(buf), true, &f);
	*v = x.v;
	return x.s == VM_SUCCEED ? NULL : x.s == VM_FAIL_INVALID ? "VMfailInvalid" : "VMfailValid";
}
struct vwr {
	uint64_t enc, v;
	int s;
};
static void vwr_fn(void *p)
{
	struct vwr *x = p;
	x->s = vmwrite_insn(x->enc, x->v);
}

static struct vres vx_common(enum vx_insn insn, uint64_t a, uint64_t b, bool user)
{
	struct vx_arg x = { insn, a, b, 0, -1 };
	struct vres r;
	memset(&r, 0, sizeof(r));
	r.fault = user ? run_user(vx_fn, &x, &r.f) : catch_fault(vx_fn, &x, &r.f);
	r.out = x.out;
	if (r.fault) {
		fault_str(r.s, sizeof(r.s), true, &r.f);
		return r;
	}
	r.status = x.status;
	if (r.status == VM_SUCCEED) {
		ksnprintf(r.s, sizeof(r.s), "VMsucceed");
	} else if (r.status == VM_FAIL_INVALID) {
		ksnprintf(r.s, sizeof(r.s), "VMfailInvalid");
	} else {
		uint64_t e = ~0ull;
		const char *how = vmread_safe(VM_INSN_ERROR, &e);
		r.err = (uint32_t)e;
		if (how)
			ksnprintf(r.s, sizeof(r.s), "ZF, VMREAD %s", how);
		else
			ksnprintf(r.s, sizeof(r.s), "VMfailValid(%u)", r.err);
	}
	return r;
}

struct vres vx(enum vx_insn insn, uint64_t a, uint64_t b) { return vx_common(insn, a, b, false); }
struct vres vx_user(enum vx_insn insn, uint64_t a, uint64_t b) { return vx_common(insn, a, b, true); }
bool vr_ok(const struct vres *r) { return !r->fault && r->status == VM_SUCCEED; }
bool vr_invalid(const struct vres *r) { return !r->fault && r->status == VM_FAIL_INVALID; }
bool vr_valid(const struct vres *r, uint32_t err) { return !r->fault && r->status == VM_FAIL_VALID && r->err == err; }
bool vr_fault(const struct vres *r, unsigned vector, uint64_t ec)
{
	return r->fault && r->f.vector == vector && (!exception_has_error_code(vector) || r->f.error_code == ec);
}

/* --- capabilities ------------------------------------------------------------- */
struct rdm {
	uint32_t msr;
	uint64_t v;
};
static void rdm_fn(void *p)
{
	struct rdm *m = p;
	m->v = rdmsr(m->msr);
}
bool rdmsr_safe(uint32_t msr, uint64_t *v)
{
	struct rdm m = { msr, 0 };
	struct fault f;
	bool hit = catch_fault(rdm_fn, &m, &f);
	*v = hit ? 0 : m.v;
	return !hit;
}

static void wrm_fn(void *p)
{
	struct rdm *m = p;
	wrmsr(m->msr, m->v);
}

static bool wrmsr_safe(uint32_t msr, uint64_t v)
{
	struct rdm m = { msr, v };
	struct fault f;
	return !catch_fault(wrm_fn, &m, &f);
}

bool vmx_read_caps(void)
{
	memset(&vcaps, 0, sizeof(vcaps));
	uint32_t maxext = cpuid(0x80000000, 0).eax;
	vcaps.maxphyaddr = maxext >= 0x80000008 ? (cpuid(0x80000008, 0).eax & 0xff) : 36;
	if (!(cpuid(1, 0).ecx & (1u << 5)))
		return false;
	if (!rdmsr_safe(MSR_IA32_FEATURE_CONTROL, &vcaps.feature_control) || !rdmsr_safe(MSR_VMX_BASIC, &vcaps.basic))
		return false;
	/* A firmware may leave IA32_FEATURE_CONTROL unlocked for the OS (UEFI's
	 * OVMF does): lock it with VMX enabled outside SMX, as Linux does
	 * (SDM 23.7); VMXON would #GP otherwise. */
	if (!(vcaps.feature_control & 1)) {
		if (!wrmsr_safe(MSR_IA32_FEATURE_CONTROL, vcaps.feature_control | 5) ||
		    !rdmsr_safe(MSR_IA32_FEATURE_CONTROL, &vcaps.feature_control))
			return false;
	}
	bool t = (vcaps.basic >> 55) & 1;
	bool ok = rdmsr_safe(t ? MSR_VMX_TRUE_PINBASED : MSR_VMX_PINBASED, &vcaps.pin) &&
		  rdmsr_safe(t ? MSR_VMX_TRUE_PROCBASED : MSR_VMX_PROCBASED, &vcaps.proc) &&
		  rdmsr_safe(t ? MSR_VMX_TRUE_EXIT : MSR_VMX_EXIT, &vcaps.exit) &&
		  rdmsr_safe(t ? MSR_VMX_TRUE_ENTRY : MSR_VMX_ENTRY, &vcaps.entry) &&
		  rdmsr_safe(MSR_VMX_MISC, &vcaps.misc) && rdmsr_safe(MSR_VMX_CR0_FIXED0, &vcaps.cr0_fixed0) &&
		  rdmsr_safe(MSR_VMX_CR0_FIXED1, &vcaps.cr0_fixed1) && rdmsr_safe(MSR_VMX_CR4_FIXED0, &vcaps.cr4_fixed0) &&
		  rdmsr_safe(MSR_VMX_CR4_FIXED1, &vcaps.cr4_fixed1) && rdmsr_safe(MSR_VMX_VMCS_ENUM, &vcaps.vmcs_enum);
	if (!ok)
		return false;
	/* The SDM's order: secondary controls only if they can be activated,
	 * the EPT/VPID capabilities only if EPT or VPID can be enabled. */
	if ((vcaps.proc >> 32) & PROC_SECONDARY)
		rdmsr_safe(MSR_VMX_PROCBASED2, &vcaps.proc2);
	if ((vcaps.proc2 >> 32) & (PROC2_EPT | PROC2_VPID))
		rdmsr_safe(MSR_VMX_EPT_VPID_CAP, &vcaps.ept_vpid);
	vcaps.rev = (uint32_t)vcaps.basic & 0x7fffffff;
	vcaps.vmx = true;
	return true;
}

uint32_t ctl_adjust(uint64_t msr, uint32_t want) { return (want | (uint32_t)msr) & (uint32_t)(msr >> 32); }

/* --- entering and leaving VMX operation --------------------------------------- */
static struct {
	bool saved, pic_saved;
	uint64_t cr0, cr4;
	struct dtr gdtr, idtr;
	uint8_t pic[2];
} host;

static inline void sgdt(struct dtr *d) { __asm__ volatile("sgdt %0" : "=m"(*d)); }
static inline void sidt(struct dtr *d) { __asm__ volatile("sidt %0" : "=m"(*d)); }

void vmcs_init_page(uint8_t *page, uint32_t rev)
{
	memset(page, 0, 4096);
	*(uint32_t *)page = rev;
}

bool vmx_prepare(void)
{
	if (!vmx_read_caps()) {
		say("VMX not available (CPUID.1:ECX.VMX or the VMX MSRs)");
		CHECK(false, "no VMX");
		return false;
	}
	host.cr0 = read_cr0();
	host.cr4 = read_cr4();
	sgdt(&host.gdtr);
	sidt(&host.idtr);
	host.saved = true;
	host.pic_saved = false;
	return true;
}

bool vmx_begin(void)
{
	if (!vmx_prepare())
		return false;
	write_cr0(host.cr0 | vcaps.cr0_fixed0);
	write_cr4(host.cr4 | vcaps.cr4_fixed0);
	vmcs_init_page(vmxon_region, vcaps.rev);
	struct vres r = vx(VX_VMXON, pa(vmxon_region), 0);
	CHECK(vr_ok(&r), "VMXON: %s", r.s);
	if (!vr_ok(&r)) {
		vmx_end();
		return false;
	}
	return true;
}

void vmx_end(void)
{
	if (!host.saved)
		return;
	/* Flush the VMCSs to memory (#UD if already out of VMX operation). */
	vx(VX_VMCLEAR, pa(vmcs_a), 0);
	vx(VX_VMCLEAR, pa(vmcs_b), 0);
	vx(VX_VMXOFF, 0, 0);
	write_cr4(host.cr4);
	write_cr0(host.cr0);
	lgdt(&host.gdtr);
	lidt(&host.idtr);
	if (host.pic_saved)
		pic_restore(host.pic);
	host.saved = false;
}

void pic_mask_all(void)
{
	/* The masks as they were before the first call are the ones put back. */
	uint8_t now[2];
	pic_save_and_mask(host.pic_saved ? now : host.pic);
	host.pic_saved = true;
}

/* --- the VMCS ------------------------------------------------------------------- */
void vmw(uint32_t field, uint64_t val)
{
	struct vwr x = { field, val, -1 };
	struct fault f;
	char buf[24];
	bool hit = catch_fault(vwr_fn, &x, &f);
	if (hit || x.s != VM_SUCCEED) {
		vm.setup_errors++;
		CHECK(false, "VMWRITE %04x <- %llx failed: %s", field, (unsigned long long)val,
		      hit ? fault_str(buf, sizeof(buf), true, &f) : x.s == VM_FAIL_INVALID ? "VMfailInvalid" : "VMfailValid");
	}
}

uint64_t vmr(uint32_t field)
{
	uint64_t v = ~0ull;
	const char *how = vmread_safe(field, &v);
	CHECK(!how, "VMREAD %04x failed: %s", field, how);
	return how ? ~0ull : v;
}

void vm_ctl(uint32_t field, uint32_t set, uint32_t clear) { vmw(field, (vmr(field) | set) & ~clear); }

static void ept_build(void)
{
	memset(ept_pml4, 0, sizeof(ept_pml4));
	memset(ept_pdpt, 0, sizeof(ept_pdpt));
	ept_pml4[0] = pa(ept_pdpt) | EPT_R | EPT_W | EPT_X;
	for (int i = 0; i < 4; i++)
		ept_pdpt[i] = pa(&ept_pd[i * 512]) | EPT_R | EPT_W | EPT_X;
	for (uint64_t j = 0; j < 2048; j++)
		ept_pd[j] = (j << 21) | (1ull << 7) | EPT_WB | EPT_R | EPT_W | EPT_X;
	uint64_t base = pa(ept_probe) & ~0x1fffffull;
	for (uint64_t k = 0; k < 512; k++)
		ept_pt[k] = (base + k * 4096) | EPT_WB | EPT_R | EPT_W | EPT_X;
	ept_pd[pa(ept_probe) >> 21] = pa(ept_pt) | EPT_R | EPT_W | EPT_X;
}

uint64_t *ept_probe_pte(void) { return &ept_pt[(pa(ept_probe) >> 12) & 511]; }
uint64_t *ept_leaf_of(uint64_t a)
{
	return (a >> 21) == (pa(ept_probe) >> 21) ? &ept_pt[(a >> 12) & 511] : &ept_pd[(a >> 21) & 2047];
}
uint64_t ept_pointer(void) { return pa(ept_pml4) | (3ull << 3) | 6; }

static void l2_idt_build(void)
{
	for (int v = 0; v < 256; v++) {
		uint64_t a = (uint64_t)(l2_isr_stubs + 16 * v);
		l2_idt[v].off0 = a & 0xffff;
		l2_idt[v].sel = G_KCODE64;
		l2_idt[v].ist = 0;
		l2_idt[v].type = 0x8e;
		l2_idt[v].off1 = (a >> 16) & 0xffff;
		l2_idt[v].off2 = a >> 32;
		l2_idt[v].zero = 0;
	}
}

static uint16_t read_sel(int which)
{
	uint16_t s = 0;
	switch (which) {
	case 0: __asm__ volatile("mov %%es, %0" : "=r"(s)); break;
	case 1: __asm__ volatile("mov %%ss, %0" : "=r"(s)); break;
	case 2: __asm__ volatile("mov %%ds, %0" : "=r"(s)); break;
	case 3: __asm__ volatile("mov %%fs, %0" : "=r"(s)); break;
	case 4: __asm__ volatile("mov %%gs, %0" : "=r"(s)); break;
	}
	return s;
}

static bool setup(bool must)
{
	memset(&vm, 0, sizeof(vm));
	/* Not active while its memory is rewritten: a CPU that caches the
	 * current VMCS writes what it has back at the VMCLEAR below, Bochs 2.7
	 * keeps none (SDM 24.11.1: the outcome is undefined; vmxfuzz seed 314,
	 * case 15 on tigerlake). */
	vx(VX_VMCLEAR, pa(vmcs_a), 0);
	vmcs_init_page(vmcs_a, vcaps.rev);
	struct vres r1 = vx(VX_VMCLEAR, pa(vmcs_a), 0), r2 = vx(VX_VMPTRLD, pa(vmcs_a), 0);
	if (must)
		CHECK(vr_ok(&r1) && vr_ok(&r2), "VMCLEAR %s, VMPTRLD %s", r1.s, r2.s);
	if (!vr_ok(&r1) || !vr_ok(&r2))
		return false;
	ept_build();
	memset(msr_bitmap, 0, 4096);
	memset(io_bitmap_a, 0, 4096);
	memset(io_bitmap_b, 0, 4096);
	l2_idt_build();
	pic_mask_all();

	vm.pin = ctl_adjust(vcaps.pin, 0);
	vm.proc = ctl_adjust(vcaps.proc, PROC_MSR_BITMAPS | PROC_SECONDARY);
	vm.proc2 = ctl_adjust(vcaps.proc2, PROC2_EPT | PROC2_VPID);
	vm.exit = ctl_adjust(vcaps.exit,
			     EXIT_HOST_64 | EXIT_SAVE_EFER | EXIT_LOAD_EFER | EXIT_SAVE_PAT | EXIT_LOAD_PAT | EXIT_SAVE_DEBUG);
	vm.entry = ctl_adjust(vcaps.entry, ENTRY_IA32E | ENTRY_LOAD_EFER | ENTRY_LOAD_PAT | ENTRY_LOAD_DEBUG);
	vmw(PIN_CTLS, vm.pin);
	vmw(PROC_CTLS, vm.proc);
	vmw(PROC2_CTLS, vm.proc2);
	vmw(EXIT_CTLS, vm.exit);
	vmw(ENTRY_CTLS, vm.entry);
	vmw(EXCEPTION_BITMAP, 0);
	vmw(PF_ERR_MASK, 0);
	vmw(PF_ERR_MATCH, 0);
	vmw(CR3_TARGET_COUNT, 0);
	vmw(EXIT_MSR_STORE_COUNT, 0);
	vmw(EXIT_MSR_LOAD_COUNT, 0);
	vmw(ENTRY_MSR_LOAD_COUNT, 0);
	vmw(ENTRY_INTR_INFO, 0);
	vmw(ENTRY_EXC_ERR, 0);
	vmw(ENTRY_INSN_LEN, 0);
	vmw(MSR_BITMAP, pa(msr_bitmap));
	vmw(IO_BITMAP_A, pa(io_bitmap_a));
	vmw(IO_BITMAP_B, pa(io_bitmap_b));
	vmw(EPT_POINTER, ept_pointer());
	vmw(VPID, 1);
	/* TPR shadow's fields exist where the control may be set: a page of
	 * zeros (VTPR 0) and threshold 0, so a test that sets it starts valid. */
	if (rdmsr(0x48e) & ((uint64_t)PROC_TPR_SHADOW << 32)) {
		memset(vm_vapic, 0, sizeof(vm_vapic));
		vmw(VIRTUAL_APIC_ADDR, pa(vm_vapic));
		vmw(TPR_THRESHOLD, 0);
	}
	if (rdmsr(0x48b) & (1ull << 32))
		vmw(APIC_ACCESS_ADDR, pa(vm_apic_access));

	uint64_t cr0 = read_cr0(), cr3 = read_cr3(), cr4 = read_cr4();
	struct dtr gdtr, idtr;
	sgdt(&gdtr);
	sidt(&idtr);
	const uint64_t *gdt = (const uint64_t *)gdtr.base;
	uint64_t tlo = gdt[G_TSS >> 3], thi = gdt[(G_TSS >> 3) + 1];
	uint64_t tr_base = ((tlo >> 16) & 0xffffff) | (((tlo >> 56) & 0xff) << 24) | (thi << 32);
	uint32_t tr_limit = (uint32_t)((tlo & 0xffff) | (((tlo >> 48) & 0xf) << 16));

	/* Guest state: the kernel's own 64-bit environment. */
	vmw(GUEST_CR0, cr0);
	vmw(GUEST_CR3, cr3);
	vmw(GUEST_CR4, cr4);
	vmw(CR0_MASK, 0);
	vmw(CR0_SHADOW, cr0);
	vmw(CR4_MASK, CR4_VMXE);
	vmw(CR4_SHADOW, cr4 & ~CR4_VMXE);
	static const uint32_t sel[] = { GUEST_ES_SEL, GUEST_SS_SEL, GUEST_DS_SEL };
	for (int i = 0; i < 3; i++) {
		uint32_t f = sel[i], n = (f - GUEST_ES_SEL) / 2;
		vmw(f, G_KDATA);
		vmw(GUEST_ES_BASE + 2 * n, 0);
		vmw(GUEST_ES_LIMIT + 2 * n, 0xffffffff);
		vmw(GUEST_ES_AR + 2 * n, 0xc093);
	}
	vmw(GUEST_CS_SEL, G_KCODE64);
	vmw(GUEST_CS_BASE, 0);
	vmw(GUEST_CS_LIMIT, 0xffffffff);
	vmw(GUEST_CS_AR, 0xa09b);
	for (uint32_t f = GUEST_FS_SEL; f <= GUEST_LDTR_SEL; f += 2) {
		uint32_t n = (f - GUEST_ES_SEL) / 2;
		vmw(f, 0);
		vmw(GUEST_ES_BASE + 2 * n, 0);
		vmw(GUEST_ES_LIMIT + 2 * n, 0);
		vmw(GUEST_ES_AR + 2 * n, 0x10000); /* unusable */
	}
	vmw(GUEST_TR_SEL, G_TSS);
	vmw(GUEST_TR_BASE, tr_base);
	vmw(GUEST_TR_LIMIT, tr_limit);
	vmw(GUEST_TR_AR, 0x8b);
	vmw(GUEST_GDTR_BASE, gdtr.base);
	vmw(GUEST_GDTR_LIMIT, gdtr.limit);
	vmw(GUEST_IDTR_BASE, pa(l2_idt));
	vmw(GUEST_IDTR_LIMIT, sizeof(l2_idt) - 1);
	vmw(GUEST_DR7, 0x400);
	vmw(GUEST_DEBUGCTL, 0);
	vmw(GUEST_RFLAGS, RFLAGS_FIXED);
	vmw(GUEST_RSP, pa(l2_stack + sizeof(l2_stack)));
	vmw(GUEST_RIP, pa(l2_vmcall));
	vmw(GUEST_PENDING_DBG, 0);
	vmw(GUEST_SYSENTER_CS, 0);
	vmw(GUEST_SYSENTER_ESP, 0);
	vmw(GUEST_SYSENTER_EIP, 0);
	vmw(GUEST_EFER, rdmsr(MSR_EFER));
	vmw(GUEST_PAT, rdmsr(MSR_IA32_PAT));
	vmw(VMCS_LINK_PTR, ~0ull);
	vmw(GUEST_INTERRUPTIBILITY, 0);
	vmw(GUEST_ACTIVITY, 0);
	vmw(GUEST_PREEMPT_TIMER, 0);

	/* Host state: where VM exits return (vmx_run writes HOST_RSP/RIP). */
	vmw(HOST_CR0, cr0);
	vmw(HOST_CR3, cr3);
	vmw(HOST_CR4, cr4);
	vmw(HOST_ES_SEL, read_sel(0) & ~7);
	vmw(HOST_CS_SEL, G_KCODE64);
	vmw(HOST_SS_SEL, read_sel(1) & ~7);
	vmw(HOST_DS_SEL, read_sel(2) & ~7);
	vmw(HOST_FS_SEL, read_sel(3) & ~7);
	vmw(HOST_GS_SEL, read_sel(4) & ~7);
	vmw(HOST_TR_SEL, G_TSS);
	vmw(HOST_FS_BASE, rdmsr(MSR_FS_BASE));
	vmw(HOST_GS_BASE, rdmsr(MSR_GS_BASE));
	vmw(HOST_TR_BASE, tr_base);
	vmw(HOST_GDTR_BASE, gdtr.base);
	vmw(HOST_IDTR_BASE, idtr.base);
	vmw(HOST_SYSENTER_CS, rdmsr(MSR_IA32_SYSENTER_CS));
	vmw(HOST_SYSENTER_ESP, rdmsr(MSR_IA32_SYSENTER_ESP));
	vmw(HOST_SYSENTER_EIP, rdmsr(MSR_IA32_SYSENTER_EIP));
	vmw(HOST_EFER, rdmsr(MSR_EFER));
	vmw(HOST_PAT, rdmsr(MSR_IA32_PAT));
	return vm.setup_errors == 0;
}

/* IRET to the next instruction: ends any NMI blocking. */
void iret_to_self(void)
{
	__asm__ volatile("movl %%ss, %%eax\n\t"
			 "pushq %%rax\n\t"
			 "pushq %%rsp\n\t"
			 "addq $8, (%%rsp)\n\t"
			 "pushfq\n\t"
			 "movl %%cs, %%eax\n\t"
			 "pushq %%rax\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "iretq\n"
			 "1:" ::: "rax", "memory");
}

uint8_t vm_vapic[4096] __attribute__((aligned(4096)));
uint8_t vm_apic_access[4096] __attribute__((aligned(4096)));

bool vm_setup(void) { return setup(true); }

bool vm_begin(void)
{
	if (!vmx_begin())
		return false;
	if (!vm_setup()) {
		vmx_end();
		return false;
	}
	return true;
}
/* The same where VMX operation may be odd (a fuzzer's VMXON region on
 * vmcs_a): false, with no check failed, when the CPU refuses. */
bool vm_try_setup(void) { return setup(false); }

void vm_at(const void *rip, uint64_t rflags)
{
	vmw(GUEST_RIP, pa(rip));
	vmw(GUEST_RSP, pa(l2_stack + sizeof(l2_stack)));
	vmw(GUEST_RFLAGS, rflags);
	vmw(GUEST_INTERRUPTIBILITY, 0);
	vmw(GUEST_ACTIVITY, 0);
	memset((void *)&l2_event, 0, sizeof(l2_event));
}

static void read_exit(void)
{
	struct exit_info *x = &vm.x;
	x->reason = (uint32_t)vmr(EXIT_REASON);
	x->qual = vmr(EXIT_QUAL);
	x->len = (uint32_t)vmr(EXIT_INSN_LEN);
	x->insn_info = (uint32_t)vmr(EXIT_INSN_INFO);
	x->intr_info = (uint32_t)vmr(EXIT_INTR_INFO);
	x->intr_err = (uint32_t)vmr(EXIT_INTR_ERR);
	x->idt_info = (uint32_t)vmr(IDT_VEC_INFO);
	x->idt_err = (uint32_t)vmr(IDT_VEC_ERR);
	x->gpa = vmr(GUEST_PHYS_ADDR);
	x->gla = vmr(GUEST_LINEAR_ADDR);
	x->rip = vmr(GUEST_RIP);
	x->rsp = vmr(GUEST_RSP);
	x->rflags = vmr(GUEST_RFLAGS);
	x->interruptibility = (uint32_t)vmr(GUEST_INTERRUPTIBILITY);
	x->activity = (uint32_t)vmr(GUEST_ACTIVITY);
}

struct run_arg {
	int mode, s;
};
static void run_fn(void *p)
{
	struct run_arg *a = p;
	a->s = vmx_run(&vm.r, a->mode);
}

uint32_t vm_go_mode(int mode)
{
	memset(&vm.go, 0, sizeof(vm.go));
	memset(&vm.x, 0, sizeof(vm.x));
	struct run_arg a = { mode, -1 };
	if (catch_fault(run_fn, &a, &vm.go.f)) {
		vm.go.fault = true;
		fault_str(vm.go.s, sizeof(vm.go.s), true, &vm.go.f);
		return GO_FAILED;
	}
	int s = a.s;
	if (s) {
		vm.go.status = s;
		if (s == VM_FAIL_VALID) {
			uint64_t e = ~0ull;
			const char *how = vmread_safe(VM_INSN_ERROR, &e);
			vm.go.err = (uint32_t)e;
			if (how)
				ksnprintf(vm.go.s, sizeof(vm.go.s), "ZF, VMREAD %s", how);
			else
				ksnprintf(vm.go.s, sizeof(vm.go.s), "VMfailValid(%u)", vm.go.err);
		} else {
			ksnprintf(vm.go.s, sizeof(vm.go.s), s == VM_FAIL_INVALID ? "VMfailInvalid" : "error %d", s);
		}
		return GO_FAILED;
	}
	read_exit();
	if (!(vm.x.reason & EXIT_FAILED_ENTRY) && (mode & 3) != RUN_RESUME)
		vm.launched = true;
	return vm.x.reason;
}

bool vm_lacks(bool have, const char *what)
{
	if (have)
		return false;
	say("no %s", what);
	vmx_end();
	return true;
}

uint32_t vm_go(void) { return vm_go_mode(vm.launched ? RUN_RESUME : RUN_LAUNCH); }

void vm_skip(void) { vmw(GUEST_RIP, vmr(GUEST_RIP) + vmr(EXIT_INSN_LEN)); }

const char *exit_name(uint32_t reason)
{
	static const char *const names[] = {
		[0] = "exception or NMI", [1] = "external interrupt", [2] = "triple fault", [3] = "INIT signal",
		[4] = "SIPI", [7] = "interrupt window",
		[8] = "NMI window", [9] = "task switch", [10] = "CPUID", [12] = "HLT", [14] = "INVLPG",
		[15] = "RDPMC", [16] = "RDTSC", [18] = "VMCALL", [19] = "VMCLEAR", [20] = "VMLAUNCH",
		[21] = "VMPTRLD", [22] = "VMPTRST", [23] = "VMREAD", [24] = "VMRESUME", [25] = "VMWRITE",
		[26] = "VMXOFF", [27] = "VMXON", [28] = "CR access", [29] = "DR access", [30] = "I/O",
		[31] = "RDMSR", [32] = "WRMSR", [33] = "invalid guest state", [34] = "MSR loading",
		[37] = "monitor trap flag", [40] = "PAUSE", [43] = "TPR below threshold", [44] = "APIC access", [45] = "virtualized EOI", [48] = "EPT violation", [49] = "EPT misconfiguration", [50] = "INVEPT",
		[51] = "RDTSCP", [52] = "preemption timer", [53] = "INVVPID", [56] = "APIC write", [59] = "VMFUNC", [62] = "PML full",
	};
	uint32_t b = reason & 0xffff;
	if (reason == GO_FAILED)
		return "entry instruction failed";
	if (b < sizeof(names) / sizeof(names[0]) && names[b])
		return names[b];
	return "other";
}
