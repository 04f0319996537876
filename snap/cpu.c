/* cpu.c - the vCPU state a snapshot holds: everything of the guest's that
 * lives in the VMCS guest-state area, in Nestor's vCPU structure, or in the
 * CPU's own registers because VT-x does not switch it (SDM Vol. 3C 25.4,
 * 27.3: CR2, DR0-DR3, DR6, the x87/SSE/AVX state and XCR0, the SYSCALL and
 * swapgs MSRs, TSC_AUX, the MTRRs; the local APIC, which the guest owns:
 * boot/lapic.c), and the virtual VMX state when the
 * guest is a hypervisor (nested/snapshot.c).  The TSC is not put back:
 * time goes on across a restore, as it does for a restored VM elsewhere. */
#include "boot/fixup.h"
#include "boot/lapic.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "mm/mm.h"
#include "nested/nested.h"
#include "snap/internal.h"
#include "vmx/ept.h"
#include "vmx/vcpu.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"

#define CPU_MAX_FIELDS 128
#define CPU_MAX_MSRS 64

struct cpu_snapshot {
	uint64_t gpr[16];
	unsigned nfields;
	uint32_t field[CPU_MAX_FIELDS];
	uint64_t value[CPU_MAX_FIELDS];
	unsigned nmsrs;
	uint32_t msr[CPU_MAX_MSRS];
	uint64_t msr_val[CPU_MAX_MSRS];
	uint64_t cr2, dr[4], dr6;
	uint32_t window_ctls; /* interrupt- and NMI-window exiting, as programmed */
	unsigned nmi_pending;
	bool init_held;       /* an INIT held for its VMX root operation */
	bool xsave;           /* fpu holds an XSAVE image (else FXSAVE) */
	uint64_t xcr0;
	struct mtrr_state mtrr;     /* this vCPU's (virtual) MTRRs */
	struct mtrr_state ept_mtrr; /* those the EPT's memory types followed */
	uint64_t apic_gpa;      /* where the guest put its xAPIC */
	struct lapic_state apic; /* its registers (the guest owns the local APIC) */
	struct nested_snapshot vmx;
	uint8_t fpu[] __attribute__((aligned(64)));
};

/* Control fields that are guest state too: what the guest reads as CR0 and
 * CR4, its IA-32e mode, and an event Nestor is about to inject. */
static const uint32_t control_fields[] = {
	VMCS_CR0_READ_SHADOW, VMCS_CR4_READ_SHADOW,   VMCS_CR0_GUEST_HOST_MASK,  VMCS_CR4_GUEST_HOST_MASK,
	VMCS_VMENTRY_CTLS,    VMCS_VMENTRY_INTR_INFO, VMCS_VMENTRY_EXCEPTION_ERRCODE, VMCS_VMENTRY_INSTR_LEN,
};

static uint64_t fpu_area_size(void)
{
	/* CPUID.(EAX=0DH,ECX=0):ECX, the XSAVE area for every feature the CPU
	 * has; FXSAVE's 512 bytes without XSAVE. */
	if (!(read_cr4() & CR4_OSXSAVE))
		return 512;
	return cpuid(0xd, 0).ecx;
}

uint64_t snap_cpu_pages(void) { return (sizeof(struct cpu_snapshot) + fpu_area_size() + PAGE_SIZE - 1) / PAGE_SIZE; }

/* MSRs the guest owns without VT-x switching them. */
static unsigned guest_msrs(uint32_t *out)
{
	/* The MTRRs and the APIC base are virtual: kept apart (struct vm). */
	static const uint32_t fixed[] = {
		MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_FMASK, MSR_KERNEL_GS_BASE, MSR_TSC_AUX, MSR_IA32_XSS,
	};
	unsigned n = 0;
	for (unsigned i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		out[n++] = fixed[i];
	return n;
}

void snap_cpu_save(struct vcpu *v, struct cpu_snapshot *c)
{
	memcpy(c->gpr, v->gpr, sizeof(c->gpr));
	c->nfields = 0;
	for (unsigned i = 0; i < vmcs_num_fields && c->nfields < CPU_MAX_FIELDS; i++) {
		uint32_t f = vmcs_all_fields[i];
		uint64_t val;
		if (vmcs_field_type(f) != VMCS_T_GUEST || vmcs_field_is_high(f) || vmread_checked(f, &val))
			continue; /* a field this CPU does not have */
		c->field[c->nfields] = f;
		c->value[c->nfields++] = val;
	}
	for (unsigned i = 0; i < sizeof(control_fields) / sizeof(control_fields[0]); i++) {
		c->field[c->nfields] = control_fields[i];
		c->value[c->nfields++] = vmread(control_fields[i]);
	}
	uint32_t msrs[CPU_MAX_MSRS];
	unsigned n = guest_msrs(msrs);
	c->nmsrs = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t val;
		if (rdmsr_safe(msrs[i], &val))
			continue; /* not on this CPU */
		c->msr[c->nmsrs] = msrs[i];
		c->msr_val[c->nmsrs++] = val;
	}
	c->mtrr = v->mtrr;
	c->ept_mtrr = v->vm->mtrr;
	c->apic_gpa = v->vm->apic_gpa;
	lapic_save(&c->apic);
	c->cr2 = read_cr2();
	c->dr[0] = read_dr0(), c->dr[1] = read_dr1(), c->dr[2] = read_dr2(), c->dr[3] = read_dr3();
	c->dr6 = read_dr6();
	c->window_ctls = v->proc_ctls & (PROC_INTR_WINDOW | PROC_NMI_WINDOW);
	c->nmi_pending = v->nmi_pending;
	c->init_held = v->init_held & 2;
	/* The guest's FPU/SSE/AVX registers and XCR0 are the CPU's now (Nestor
	 * uses none of them).  XSAVE's header must start zeroed. */
	c->xsave = read_cr4() & CR4_OSXSAVE;
	memset(c->fpu, 0, fpu_area_size());
	if (c->xsave) {
		c->xcr0 = xgetbv(0);
		__asm__ volatile("xsave64 %0" : "+m"(*(uint8_t(*)[4096])c->fpu) : "a"(~0u), "d"(~0u) : "memory");
	} else {
		__asm__ volatile("fxsave64 %0" : "+m"(*(uint8_t(*)[512])c->fpu) : : "memory");
	}
}

int snap_cpu_restore(struct vcpu *v, const struct cpu_snapshot *c)
{
	memcpy(v->gpr, c->gpr, sizeof(v->gpr));
	for (unsigned i = 0; i < c->nfields; i++)
		vmwrite(c->field[i], c->value[i]);
	/* CR0.CD and NW are the CPU's while the guest runs: the snapshot's back. */
	vmx_set_cache_bits(vmread(VMCS_GUEST_CR0));
	v->proc_ctls = (v->proc_ctls & ~(PROC_INTR_WINDOW | PROC_NMI_WINDOW)) | c->window_ctls;
	vmwrite(VMCS_PROC_BASED_CTLS, v->proc_ctls);
	v->nmi_pending = c->nmi_pending;
	v->init_held = (v->init_held & ~2u) | (c->init_held ? 2u : 0);
	for (unsigned i = 0; i < c->nmsrs; i++) {
		uint64_t now = 0;
		rdmsr_safe(c->msr[i], &now);
		if (now == c->msr_val[i])
			continue;
		if (wrmsr_safe(c->msr[i], c->msr_val[i]))
			pr_warn("snapshot: MSR 0x%x could not be put back\n", c->msr[i]);
	}
	v->mtrr = c->mtrr;
	if (memcmp(&v->vm->mtrr, &c->ept_mtrr, sizeof(c->ept_mtrr)) || v->vm->apic_gpa != c->apic_gpa) {
		/* Memory types and the xAPIC's place as at the snapshot: the EPT
		 * is made again (and protected again, snap_ept_rebuilt). */
		v->vm->mtrr = c->ept_mtrr;
		v->vm->apic_gpa = c->apic_gpa;
		v->vm->apic_absent = c->apic_gpa == v->vm->apic_real ? ~0ull : v->vm->apic_real;
		if (ept_rebuild(v->vm))
			return -1;
		nested_drop_shadows(v);
	}
	if (!lapic_restore(&c->apic))
		pr_warn("snapshot: the local APIC is no longer enabled in the mode it had: its registers are not put "
			"back\n");
	write_cr2(c->cr2);
	write_dr0(c->dr[0]), write_dr1(c->dr[1]), write_dr2(c->dr[2]), write_dr3(c->dr[3]);
	write_dr6(c->dr6);
	if (c->xsave) {
		if (xsetbv_safe(0, c->xcr0))
			return -1;
		__asm__ volatile("xrstor64 %0" : : "m"(*(const uint8_t(*)[4096])c->fpu), "a"(~0u), "d"(~0u) : "memory");
	} else {
		__asm__ volatile("fxrstor64 %0" : : "m"(*(const uint8_t(*)[512])c->fpu) : "memory");
	}
	return nested_snapshot_restore(v, &c->vmx);
}

struct nested_snapshot *snap_cpu_vmx(struct cpu_snapshot *c) { return &c->vmx; }
