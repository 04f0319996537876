/* vm.c - creating Nestor's one VM and running it. */
#include "boot/config.h"
#include "boot/cpu.h"
#include "boot/efi_handoff.h"
#include "boot/smp.h"
#include "boot/integrity.h"
#include "boot/platform.h"
#include "boot/trap.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "hypercall/abi.h"
#include "hypercall/hypercall.h"
#include "snap/snap.h"
#include "loader/loader.h"
#include "nested/internal.h"
#include "mm/mm.h"
#include "vmx/filter.h"
#include "vmx/bios.h"
#include "vmx/debug_hook.h"
#include "vmx/ept.h"
#include "vmx/exits.h"
#include "vmx/vm.h"
#include "snap/snap.h"
#include "vmx/vmcs.h"
#include "vmx/vmcs_own.h"
#include "vmx/vmx.h"

static struct vmx_caps caps; /* read once at boot, read-only after */

bool guest_nmis_below(struct vcpu *v)
{
	while (v->nmi_pending) {
		uint64_t rbx = 0, rcx = 0, rdx = 0;
		if (nestor_vmcall(NESTOR_HC_GUEST_NMI, &rbx, &rcx, &rdx, 0, 0) != NESTOR_OK)
			return false;
		v->nmi_pending--;
	}
	return true;
}

void vcpu_nmi_arrived(struct vcpu *v)
{
	if (v->cur > 1)
		nested_nmi_in_root(v);
	else
		v->nmi_pending++;
}

static void on_nmi(struct trap_frame *f)
{
	/* An NMI while Nestor runs: a kick from another of our vCPUs (its
	 * request is taken at the end of this exit), or the guest's, to be
	 * delivered on entry.  Either way the entry path looks again; taken
	 * after its last look, it restarts there (vmx/entry.S). */
	struct vcpu *v = this_cpu()->vcpu;
	if (!v)
		return;
	if (!vcpu_kicked(v))
		vcpu_nmi_arrived(v);
	v->entry_recheck = 1;
	if (f->rip >= (uint64_t)vmx_entry_window && f->rip < (uint64_t)vmx_entry_window_end)
		f->rip = (uint64_t)vmx_entry_window;
	if (f->rip >= (uint64_t)vmx_park_window && f->rip < (uint64_t)vmx_park_window_end)
		f->rip = (uint64_t)vmx_park_window;
}

int64_t delegation_below(bool on)
{
	uint64_t rbx = 0, rcx = on ? nested_caps_hash() : 0, rdx = 0;
	return nestor_vmcall(on ? NESTOR_HC_DELEGATE_VMX : NESTOR_HC_UNDELEGATE_VMX, &rbx, &rcx, &rdx, 0, 0);
}

void bitmaps_changed_below(const struct vm *vm)
{
	if (!vm->delegated)
		return;
	uint64_t rbx = 0, rcx = 0, rdx = 0;
	nestor_vmcall(NESTOR_HC_BITMAPS_CHANGED, &rbx, &rcx, &rdx, 0, 0);
}

bool guest_init_below(void)
{
	uint64_t rbx = 0, rcx = 0, rdx = 0;
	return nestor_vmcall(NESTOR_HC_GUEST_INIT, &rbx, &rcx, &rdx, 0, 0) == NESTOR_OK && rbx == 1;
}

/* On a Nestor that takes it, hand the VMX emulation of our guest to it
 * (docs/depth.md): our guest's VMX instructions then go straight to the
 * Nestor below, which runs every level itself. */
static void delegate_vmx(struct vm *vm)
{
	if (!config.delegate || vm->level == 0 || !nested_enabled())
		return;
	/* A level that delegated never sees the exits of the levels above its
	 * guest: the Nestor below routes them by the VMX of the level that
	 * runs each one and handles the rest itself.  A security function
	 * here must see what they do to its guest's machine
	 * (docs/security-functions.md, "Delegation"). */
	if (vmx_filter_active()) {
		pr_info("security functions watch this level's guest and the levels above it: this level emulates "
			"VMX for its guest (no delegation)\n");
		return;
	}
	struct cpuid_regs r = cpuid(NESTOR_CPUID_INFO, 0);
	if (r.ebx < 2 || !(r.ecx & NESTOR_FEATURE_DELEGATE)) {
		pr_info("the Nestor below does not take VMX delegation: this level emulates VMX for its guest\n");
		return;
	}
	int64_t status = delegation_below(true);
	if (status == NESTOR_OK) {
		vm->delegated = true;
		pr_info("VMX of the guest is emulated by the Nestor below (delegation)\n");
	} else {
		pr_info("VMX delegation refused (status %lld): this level emulates VMX for its guest\n",
			(long long)status);
	}
}

static __attribute__((noreturn)) void fail(const char *what, const char *err)
{
	pr_err("%s: %s\n", what, err);
	machine_end(true);
}

/* An application processor's vCPU: it waits for SIPI, as the CPU did
 * before Nestor took it (the guest's bootstrap processor starts it with
 * INIT-SIPI-SIPI: vmx/exit_misc.c).  Runs on that CPU. */
static __attribute__((noreturn)) void vm_run_ap(void *ctx, unsigned index)
{
	struct vm *vm = ctx;
	char err[200];
	struct vcpu *v = zalloc(sizeof(*v));
	if (!v)
		fail("VM", "out of pool memory for a vCPU");
	v->vm = vm;
	v->id = index;
	v->smp = true;
	if (vmx_enable(vm, v, err, sizeof(err)))
		fail("VMX", err);
	vmx_vcpu_setup(v);
	cpuid_init(v);
	if (nested_vcpu_init(v))
		fail("nested VMX", "out of pool memory");
	/* Delegation is made per vCPU below: an AP asks as the BSP did. */
	if (vm->delegated && delegation_below(true) != NESTOR_OK)
		fail("VMX delegation", "the Nestor below took it for the first CPU, refused it for another");
	/* The AP as after power-up (an INIT keeps IA32_PAT: vcpu_reset). */
	vmwrite(VMCS_GUEST_IA32_PAT, 0x0007040600070406ull);
	vcpu_reset(v, false);
	mtrr_read(&v->mtrr); /* this CPU's, as the firmware left them */
	v->parked = true;
	vm->vcpus[index] = v;
	pr_debug("CPU %u (APIC ID %u): vCPU %u waits for SIPI\n", index, this_cpu()->apic_id, index);
	this_cpu()->vcpu = v;
	vcpu_park(v);
	vmx_launch(v);
}

/* selftest=wrong-vmcs|entry-refused|entry-failure: a fault of Nestor's
 * own entry path, made on purpose before the first entry so that the
 * tests see each report end the run cleanly (tests/suite.list, nestor.*):
 *  - wrong-vmcs: a handler that left another VMCS current - the check
 *    before every entry (vmcs_check_running) must refuse to enter it;
 *  - entry-refused: a control bit the CPU does not allow - VMfailValid,
 *    VM-instruction error 7 (SDM 26.2.1.1), reported by vmx_entry_failed;
 *  - entry-failure: guest RFLAGS with bit 1 clear - the entry fails with
 *    exit reason 33 (SDM 26.3.1.4), reported as an unexpected exit. */
void vm_selftest(struct vcpu *v)
{
	v->selftest_armed = false;
	if (config.selftest == SELFTEST_WRONG_VMCS) {
		void *other = page_alloc();
		if (!other)
			return;
		*(uint32_t *)other = caps.revision;
		vmclear(virt_to_phys(other));
		pr_warn("selftest=wrong-vmcs: VMCS 0x%llx made current before the entry\n",
			(unsigned long long)virt_to_phys(other));
		vmcs_load(v, virt_to_phys(other));
	} else if (config.selftest == SELFTEST_ENTRY_REFUSED) {
		/* The lowest pin-based control the CPU allows neither way. */
		uint32_t allowed1 = (uint32_t)(caps.pin >> 32);
		unsigned bit = (unsigned)__builtin_ctz(~allowed1);
		pr_warn("selftest=entry-refused: pin-based control bit %u set\n", bit);
		vmwrite(VMCS_PIN_BASED_CTLS, vmread(VMCS_PIN_BASED_CTLS) | (1ull << bit));
	} else if (config.selftest == SELFTEST_ENTRY_FAILURE) {
		pr_warn("selftest=entry-failure: guest RFLAGS bit 1 cleared\n");
		vmwrite(VMCS_GUEST_RFLAGS, vmread(VMCS_GUEST_RFLAGS) & ~2ull);
	}
}

void vm_run(const struct mb2_info *mb, unsigned level)
{
	char err[200];
	if (vmx_caps_read(&caps, err, sizeof(err)))
		fail("cannot virtualize this CPU", err);
	vmx_caps_log(&caps);
	nested_set_enabled(config.nested);
	/* VMCS shadowing pays where VMPTRLD is the CPU's: under a hypervisor
	 * each one keeping the shadow VMCS in step is an emulated exit. */
	bool below = level > 0 || (cpuid(1, 0).ecx & (1u << 31));
	nested_set_shadowing(config.vmcs_shadowing == SHADOWING_ON ||
			     (config.vmcs_shadowing == SHADOWING_AUTO && !below));
	nested_init(&caps, config.nested_hide);

	struct vm *vm = zalloc(sizeof(*vm));
	struct vcpu *v = zalloc(sizeof(*v));
	if (!vm || !v)
		fail("VM", "out of pool memory");
	vm->caps = &caps;
	vm->level = level;
	vm->hidden = mem.hidden;
	vm->guest_ram = mem.ram;
	for (unsigned i = 0; i < mem.hidden.n; i++)
		rs_remove(&vm->guest_ram, mem.hidden.r[i].start, mem.hidden.r[i].end);
	/* Identity-map at least the 4 GiB below (RAM, MMIO, firmware), and all
	 * the RAM the memory map lists. */
	uint64_t top = mem.phys_top > (1ull << 32) ? mem.phys_top : (1ull << 32);
	vm->ept_top = (top + (1ull << 30) - 1) & ~((1ull << 30) - 1);
	vm->vpid = ctl_can_set(caps.proc2, PROC2_VPID) ? 1 : 0;
	vm->cr4_allowed = cr4_guest_allowed();
	mtrr_read(&vm->mtrr);
	vm->mtrr_boot = vm->mtrr;
	if (vm_setup_bitmaps(vm, err, sizeof(err)))
		fail("VM", err);
	vmx_filter_apply(vm); /* before the EPT: claimed memory stays out of it */
	if (ept_build(vm))
		fail("EPT", "out of pool memory (raise mem=)");
	if (mem.snap_end > mem.snap_start && snap_init(vm, mem.snap_start, mem.snap_end - mem.snap_start))
		fail("snapshots", "snap_pool= is too small for its own bookkeeping, or Nestor's pool is exhausted");
	v->vm = vm;
	v->mtrr = vm->mtrr;
	vm->vcpu0 = v;
	vm->vcpus[0] = v;
	vm->ncpus = smp_ncpus();
	v->smp = vm->ncpus > 1;
	if (vmx_enable(vm, v, err, sizeof(err)))
		fail("VMX", err);
	nested_probe_inv_type(&caps); /* needs VMX operation */
	vmx_vcpu_setup(v);
	cpuid_init(v);
	apic_init(v);
	if (vm->ncpus > 1 && apic_trap_init(vm))
		fail("EPT", "out of pool memory (raise mem=)");
	if (nested_vcpu_init(v))
		fail("nested VMX", "out of pool memory");
	delegate_vmx(vm);

	struct guest_state gs;
	struct load_options lo = { .format = config.guest_format, .boot_drive = config.boot_drive };
	if (load_guest(vm, mb, &lo, &gs, err, sizeof(err)))
		fail("cannot start the guest", err);
	/* The BIOS's memory-map calls answered from the map the guest's boot
	 * protocol gives (loader/). */
	static struct mb2_mmap_entry map[MB2_MAX_MMAP];
	if (!boot_efi_state() && bios_hook_init(vm, map, guest_memory_map(vm, mb, map, MB2_MAX_MMAP)))
		fail("BIOS", "out of pool memory (raise mem=)");
	vmx_load_guest_state(v, &gs);

	uint64_t used, peak, total;
	pool_usage(&used, &peak, &total);
	pr_info("VMX on (VMCS revision 0x%x), EPT %llu pages, pool %llu of %llu KiB used; entering the guest\n",
		caps.revision, (unsigned long long)vm->ept_pages, (unsigned long long)(used * 4),
		(unsigned long long)(total * 4));
	this_cpu()->vcpu = v;
	trap_set_nmi_hook(on_nmi);
	/* From here on the guest runs (the APs allocate their vCPUs later). */
	if (config.fail_alloc_run)
		pool_fail_from(config.fail_alloc_run);
	smp_release(vm_run_ap, vm);
	if (config.selftest >= SELFTEST_WRONG_VMCS) {
		v->selftest_armed = true;
		v->entry_recheck = 1;
	}
	if (vmx_debug)
		vmx_debug->first_entry(v); /* gdb=: stopped before the guest's first instruction */
	vmx_launch(v);
}
