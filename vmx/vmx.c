/* vmx.c - entering VMX operation and setting up the guest's VMCS.
 *
 * Policy in one paragraph: the guest owns the machine.  Devices, interrupts,
 * I/O ports, most MSRs and the TSC are passed through; interrupts are
 * delivered by the CPU straight into the guest (no external-interrupt
 * exiting).  Nestor intercepts only what it must: what would reveal or
 * break it (VMX itself, its memory through EPT, CR bits VMX forces), what
 * ends the run (the Bochs shutdown port), and what the architecture makes
 * exit unconditionally (CPUID, XSETBV, INVD, VMX instructions, ...). */
#include "vmx/vmx.h"
#include "boot/cpu.h"
#include "boot/platform.h"
#include "boot/trap.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "mm/mm.h"
#include "vmx/ept.h"
#include "vmx/exits.h"
#include "vmx/vmcs.h"
#include "vmx/vmcs_own.h"

/* Set-up writes of fields every VMX CPU has: a failure is a broken CPU or
 * a Nestor bug.  Out of line: one copy of the failure report, not one
 * inlined into each of the ~70 callers. */
static __attribute__((noinline)) void must_write(uint32_t field, uint64_t value)
{
	if (vmwrite_checked(field, value) != VMX_OK)
		panic("VMWRITE %s (0x%x) = 0x%llx failed (error %llu)", vmcs_field_name(field), field,
		      (unsigned long long)value, (unsigned long long)vmread(VMCS_VM_INSTRUCTION_ERROR));
}

int vmx_enable(struct vm *vm, struct vcpu *v, char *err, size_t errlen)
{
	const struct vmx_caps *c = vm->caps;
	/* SDM 23.8: CR0 and CR4 must respect the VMX fixed bits in VMX operation
	 * (for Nestor itself: NE=1, VMXE=1). */
	write_cr0((read_cr0() | c->cr0_fixed0) & c->cr0_fixed1);
	write_cr4((read_cr4() | c->cr4_fixed0 | CR4_VMXE) & c->cr4_fixed1);
	/* XSETBV on the guest's behalf needs OSXSAVE in Nestor's own CR4. */
	if (cpuid(1, 0).ecx & (1u << 26))
		write_cr4(read_cr4() | CR4_OSXSAVE);

	/* SDM 23.7: this CPU's IA32_FEATURE_CONTROL locked with VMX enabled
	 * outside SMX.  The guest goes on seeing the firmware's value (and may
	 * lock it itself when the firmware did not: vcpu->feature_control). */
	uint64_t fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
	v->feature_control = fc;
	if (!(fc & FEATURE_CONTROL_LOCKED))
		wrmsr(MSR_IA32_FEATURE_CONTROL, fc | FEATURE_CONTROL_LOCKED | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
	else if (!(fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX)) {
		ksnprintf(err, errlen, "VMX is disabled by the firmware on this CPU (IA32_FEATURE_CONTROL=0x%llx, locked)",
			  (unsigned long long)fc);
		return -1;
	}

	v->vmxon_region = page_alloc();
	v->vmcs = page_alloc();
	v->host_stack = pages_alloc(4, 1);
	if (!v->vmxon_region || !v->vmcs || !v->host_stack) {
		ksnprintf(err, errlen, "out of pool memory for VMX structures");
		return -1;
	}
	v->host_stack += 4 * PAGE_SIZE;
	*(uint32_t *)v->vmxon_region = c->revision;
	*(uint32_t *)v->vmcs = c->revision;
	v->vmcs_phys = virt_to_phys(v->vmcs);
	int r = vmxon(virt_to_phys(v->vmxon_region));
	if (r != VMX_OK) {
		ksnprintf(err, errlen, "VMXON failed (%s)", r == VMX_FAIL_INVALID ? "VMfailInvalid" : "VMfailValid");
		return -1;
	}
	v->loaded_vmcs = ~0ull;
	if (!vmcs_clear(v, v->vmcs_phys) || !vmcs_load(v, v->vmcs_phys)) {
		ksnprintf(err, errlen, "VMCLEAR/VMPTRLD of the guest VMCS failed");
		return -1;
	}
	return 0;
}

/* Host state (SDM 24.5): what the CPU loads on every VM exit. */
static void setup_host_state(struct vcpu *v)
{
	struct percpu *cpu = this_cpu();
	struct dtr gdtr, idtr;
	__asm__ volatile("sgdt %0" : "=m"(gdtr));
	__asm__ volatile("sidt %0" : "=m"(idtr));
	must_write(VMCS_HOST_CR0, read_cr0());
	must_write(VMCS_HOST_CR3, read_cr3());
	must_write(VMCS_HOST_CR4, read_cr4());
	must_write(VMCS_HOST_CS_SEL, SEL_CODE64);
	must_write(VMCS_HOST_SS_SEL, SEL_DATA);
	must_write(VMCS_HOST_DS_SEL, SEL_DATA);
	must_write(VMCS_HOST_ES_SEL, SEL_DATA);
	must_write(VMCS_HOST_FS_SEL, 0);
	must_write(VMCS_HOST_GS_SEL, 0);
	must_write(VMCS_HOST_TR_SEL, SEL_TSS);
	must_write(VMCS_HOST_FS_BASE, 0);
	must_write(VMCS_HOST_GS_BASE, (uint64_t)cpu);
	must_write(VMCS_HOST_TR_BASE, (uint64_t)&cpu->tss);
	must_write(VMCS_HOST_GDTR_BASE, gdtr.base);
	must_write(VMCS_HOST_IDTR_BASE, idtr.base);
	must_write(VMCS_HOST_IA32_SYSENTER_CS, 0);
	must_write(VMCS_HOST_IA32_SYSENTER_ESP, 0);
	must_write(VMCS_HOST_IA32_SYSENTER_EIP, 0);
	must_write(VMCS_HOST_IA32_EFER, rdmsr(MSR_EFER));
	if (ctl_can_set(v->vm->caps->exit, EXIT_LOAD_PAT))
		must_write(VMCS_HOST_IA32_PAT, rdmsr(MSR_IA32_PAT));
	/* The exit stub finds its vCPU at the top of the host stack. */
	uint64_t *top = (uint64_t *)(v->host_stack - 16);
	top[0] = (uint64_t)v;
	must_write(VMCS_HOST_RSP, (uint64_t)top);
	must_write(VMCS_HOST_RIP, (uint64_t)vmx_exit_stub);
}

static void bitmap_set(uint8_t *bm, unsigned bit) { bm[bit / 8] |= 1u << (bit % 8); }

/* MSR bitmap layout (SDM 24.6.9): read-low, read-high, write-low, write-high,
 * 1 KiB each, for MSRs 0-0x1fff and 0xc0000000-0xc0001fff. */
void msr_intercept(struct vm *vm, uint32_t msr, bool read, bool write)
{
	unsigned base, idx;
	if (msr <= 0x1fff)
		base = 0, idx = msr;
	else if (msr >= 0xc0000000 && msr <= 0xc0001fff)
		base = 1024, idx = msr - 0xc0000000;
	else
		return; /* outside the bitmap: always exits anyway */
	if (read)
		bitmap_set(vm->msr_bitmap + base, idx);
	if (write)
		bitmap_set(vm->msr_bitmap + 2048 + base, idx);
	__atomic_add_fetch(&vm->watch.gen, 1, __ATOMIC_SEQ_CST); /* copies merged with it are stale */
	bitmaps_changed_below(vm);
}

void io_intercept(struct vm *vm, uint16_t port)
{
	if (port < 0x8000)
		bitmap_set(vm->io_bitmap_a, port);
	else
		bitmap_set(vm->io_bitmap_b, port - 0x8000);
	__atomic_add_fetch(&vm->watch.gen, 1, __ATOMIC_SEQ_CST); /* copies merged with it are stale */
	bitmaps_changed_below(vm);
}

int vm_setup_bitmaps(struct vm *vm, char *err, size_t errlen)
{
	vm->msr_bitmap = page_alloc();
	vm->io_bitmap_a = page_alloc();
	vm->io_bitmap_b = page_alloc();
	vm->ones_page = page_alloc();
	if (!vm->msr_bitmap || !vm->io_bitmap_a || !vm->io_bitmap_b || !vm->ones_page) {
		ksnprintf(err, errlen, "out of pool memory for bitmaps");
		return -1;
	}
	memset(vm->ones_page, 0xff, PAGE_SIZE);
	/* VMX is not offered to the guest (yet): its MSRs behave as on a CPU
	 * without VMX. */
	msr_intercept(vm, MSR_IA32_FEATURE_CONTROL, true, true);
	for (uint32_t m = MSR_VMX_BASIC; m <= MSR_VMX_VMFUNC; m++)
		msr_intercept(vm, m, true, true);
	/* The MTRRs are virtual (vmx/mtrr.h): the EPT memory types follow the
	 * guest's, the real ones keep Nestor's memory write-back. */
	msr_intercept(vm, MSR_IA32_MTRR_DEF_TYPE, true, true);
	for (uint32_t m = 0x250; m <= 0x26f; m++)
		msr_intercept(vm, m, true, true);
	for (uint32_t m = MSR_IA32_MTRR_PHYSBASE0; m < MSR_IA32_MTRR_PHYSBASE0 + 2 * MTRR_MAX_VAR; m++)
		msr_intercept(vm, m, true, true);
	/* The Bochs shutdown port ends the run through Nestor. */
	io_intercept(vm, BOCHS_SHUTDOWN_PORT);
	return 0;
}

/* Controls (SDM 24.6-24.8), adjusted to what this CPU allows. */
static void setup_controls(struct vcpu *v)
{
	const struct vmx_caps *c = v->vm->caps;
	uint32_t pin = ctl_adjust(c->pin, PIN_NMI_EXITING | PIN_VIRTUAL_NMIS);
	uint32_t proc = ctl_adjust(c->proc, PROC_USE_MSR_BITMAPS | PROC_USE_IO_BITMAPS | PROC_SECONDARY_CTLS);
	/* Instructions that #UD in a guest unless their "enable" control is set:
	 * enable every one the CPU offers, so the guest sees what the CPU has. */
	uint32_t proc2 = ctl_adjust(c->proc2, PROC2_EPT | PROC2_UNRESTRICTED_GUEST | PROC2_VPID | PROC2_RDTSCP |
						      PROC2_INVPCID | PROC2_XSAVES | PROC2_USER_WAIT_PAUSE |
						      PROC2_PCONFIG);
	uint32_t exit = ctl_adjust(c->exit, EXIT_HOST_ADDR_SPACE_SIZE | EXIT_SAVE_DEBUG_CTLS | EXIT_SAVE_PAT |
						    EXIT_LOAD_PAT | EXIT_SAVE_EFER | EXIT_LOAD_EFER);
	uint32_t entry = ctl_adjust(c->entry, ENTRY_LOAD_DEBUG_CTLS | ENTRY_LOAD_PAT | ENTRY_LOAD_EFER);
	entry &= ~ENTRY_IA32E_MODE; /* set from the guest's EFER.LMA below */
	if (!(pin & PIN_VIRTUAL_NMIS))
		pin &= ~PIN_NMI_EXITING; /* without NMI windows, let NMIs go straight to the guest */
	if (!v->vm->vpid)
		proc2 &= ~PROC2_VPID;
	/* Bochs' virtual-NMI blocking (vmx/exit.c, vnmi_after_exit) is the
	 * CPU's: only the Nestor that runs on it looks.  A Nestor below gives
	 * the levels above the SDM's behaviour already (and without VMCS
	 * shadowing that look would be one more exit there per exit here). */
	v->vnmis = (pin & PIN_VIRTUAL_NMIS) && v->vm->level == 0;
	v->proc_ctls = proc;
	must_write(VMCS_PIN_BASED_CTLS, pin);
	must_write(VMCS_PROC_BASED_CTLS, proc);
	must_write(VMCS_PROC_BASED_CTLS2, proc2);
	must_write(VMCS_VMEXIT_CTLS, exit);
	must_write(VMCS_VMENTRY_CTLS, entry);
	must_write(VMCS_EXCEPTION_BITMAP, 0);
	must_write(VMCS_PF_ERROR_CODE_MASK, 0);
	must_write(VMCS_PF_ERROR_CODE_MATCH, 0);
	must_write(VMCS_CR3_TARGET_COUNT, 0);
	must_write(VMCS_VMEXIT_MSR_STORE_COUNT, 0);
	must_write(VMCS_VMEXIT_MSR_LOAD_COUNT, 0);
	must_write(VMCS_VMENTRY_MSR_LOAD_COUNT, 0);
	must_write(VMCS_VMENTRY_INTR_INFO, 0);
	must_write(VMCS_MSR_BITMAP, virt_to_phys(v->vm->msr_bitmap));
	must_write(VMCS_IO_BITMAP_A, virt_to_phys(v->vm->io_bitmap_a));
	must_write(VMCS_IO_BITMAP_B, virt_to_phys(v->vm->io_bitmap_b));
	must_write(VMCS_EPT_POINTER, v->vm->eptp);
	if (proc2 & PROC2_VPID)
		must_write(VMCS_VPID, v->vm->vpid);
	must_write(VMCS_VMCS_LINK_PTR, ~0ull);

	/* CR0/CR4 (SDM 25.3): bits VMX fixes are owned by Nestor; the guest
	 * reads its own values from the shadows.  With unrestricted guest PE
	 * and PG are the guest's. */
	uint64_t cr0_mask = (c->cr0_fixed0 | ~c->cr0_fixed1) & ~(CR0_PE | CR0_PG);
	uint64_t cr4_mask = c->cr4_fixed0 | ~c->cr4_fixed1 | CR4_VMXE;
	must_write(VMCS_CR0_GUEST_HOST_MASK, cr0_mask);
	must_write(VMCS_CR4_GUEST_HOST_MASK, cr4_mask);
	v->cr0_mask_base = cr0_mask;
	v->cr4_mask_base = cr4_mask;
}

/* The value the CPU really runs with for a guest CR0/CR4 value. */
uint64_t vmx_real_cr0(const struct vmx_caps *c, uint64_t guest)
{
	return (guest | (c->cr0_fixed0 & ~(CR0_PE | CR0_PG))) & (c->cr0_fixed1 | CR0_PE | CR0_PG);
}
void vmx_set_cache_bits(uint64_t guest_cr0)
{
	uint64_t cdnw = CR0_CD | CR0_NW, real = read_cr0();
	if ((real ^ guest_cr0) & cdnw)
		write_cr0((real & ~cdnw) | (guest_cr0 & cdnw));
}
uint64_t vmx_real_cr4(const struct vmx_caps *c, uint64_t guest)
{
	return (guest | c->cr4_fixed0 | CR4_VMXE) & c->cr4_fixed1;
}

void vmx_load_guest_state(struct vcpu *v, const struct guest_state *g)
{
	const struct vmx_caps *c = v->vm->caps;
	static const uint32_t sel[8] = { VMCS_GUEST_ES_SEL, VMCS_GUEST_CS_SEL, VMCS_GUEST_SS_SEL,
					 VMCS_GUEST_DS_SEL, VMCS_GUEST_FS_SEL, VMCS_GUEST_GS_SEL,
					 VMCS_GUEST_LDTR_SEL, VMCS_GUEST_TR_SEL };
	for (int i = 0; i < 8; i++) {
		/* Selector, limit, access rights and base fields of segment i are
		 * at fixed strides from the ES ones (SDM appendix B). */
		must_write(sel[i], g->seg[i].sel);
		must_write(VMCS_GUEST_ES_LIMIT + 2 * i, g->seg[i].limit);
		must_write(VMCS_GUEST_ES_AR + 2 * i, g->seg[i].ar);
		must_write(VMCS_GUEST_ES_BASE + 2 * i, g->seg[i].base);
	}
	must_write(VMCS_GUEST_GDTR_BASE, g->gdtr_base);
	must_write(VMCS_GUEST_GDTR_LIMIT, g->gdtr_limit);
	must_write(VMCS_GUEST_IDTR_BASE, g->idtr_base);
	must_write(VMCS_GUEST_IDTR_LIMIT, g->idtr_limit);
	must_write(VMCS_GUEST_CR0, vmx_real_cr0(c, g->cr0));
	must_write(VMCS_CR0_READ_SHADOW, g->cr0);
	must_write(VMCS_GUEST_CR3, g->cr3);
	must_write(VMCS_GUEST_CR4, vmx_real_cr4(c, g->cr4));
	must_write(VMCS_CR4_READ_SHADOW, g->cr4);
	must_write(VMCS_GUEST_IA32_EFER, g->efer);
	uint32_t entry = vmread(VMCS_VMENTRY_CTLS);
	entry = (g->efer & EFER_LMA) ? entry | ENTRY_IA32E_MODE : entry & ~ENTRY_IA32E_MODE;
	must_write(VMCS_VMENTRY_CTLS, entry);
	must_write(VMCS_GUEST_IA32_PAT, g->pat);
	must_write(VMCS_GUEST_IA32_DEBUGCTL, g->debugctl);
	must_write(VMCS_GUEST_DR7, g->dr7 ? g->dr7 : 0x400);
	must_write(VMCS_GUEST_RSP, g->rsp);
	must_write(VMCS_GUEST_RIP, g->rip);
	must_write(VMCS_GUEST_RFLAGS, g->rflags | RFLAGS_FIXED);
	must_write(VMCS_GUEST_PENDING_DBG_EXCEPTIONS, 0);
	must_write(VMCS_GUEST_INTERRUPTIBILITY, 0);
	must_write(VMCS_GUEST_ACTIVITY_STATE, ACTIVITY_ACTIVE);
	must_write(VMCS_GUEST_IA32_SYSENTER_CS, g->sysenter_cs);
	must_write(VMCS_GUEST_IA32_SYSENTER_ESP, g->sysenter_esp);
	must_write(VMCS_GUEST_IA32_SYSENTER_EIP, g->sysenter_eip);
	for (int i = 0; i < 16; i++)
		v->gpr[i] = g->gpr[i];
}

void vmx_vcpu_setup(struct vcpu *v)
{
	setup_controls(v);
	setup_host_state(v);
}
