/* shadow.c - hardware VMCS shadowing for L1's VMREAD/VMWRITE (SDM 24.10,
 * 30.3 VMREAD/VMWRITE in VMX non-root operation).
 *
 * When the CPU below has it, VMCS01 gets the "VMCS shadowing" control, a
 * link pointer to a real shadow VMCS, and VMREAD/VMWRITE bitmaps: L1's
 * accesses to the fields it uses on every exit (guest state, exit
 * information, the controls it toggles) go to the shadow VMCS without an
 * exit.  The shadow VMCS and Nestor's VMCS12 cache are kept in step at the
 * few points where Nestor reads or changes VMCS12:
 *   cache <- shadow  before VMLAUNCH/VMRESUME, VMCLEAR, VMPTRLD, VMXOFF;
 *   shadow <- cache  after VMPTRLD, a reflected exit, a VMfail, and
 *                    Nestor's own VMWRITE to a field L1 reads shadowed.
 * Without hardware shadowing (Sandy Bridge in Bochs, or vmcs_shadowing=off)
 * every VMREAD/VMWRITE exits and is emulated on the cache. */
#include "lib/log.h"
#include "lib/x86.h"
#include "lib/string.h"
#include "mm/mm.h"
#include "nested/internal.h"
#include "vmx/exits.h"
#include "vmx/vmcs.h"

/* Controls L1 rewrites often enough to be worth shadowing. */
static const uint32_t shadowed_controls[] = {
	VMCS_PIN_BASED_CTLS, VMCS_PROC_BASED_CTLS, VMCS_PROC_BASED_CTLS2, VMCS_EXCEPTION_BITMAP,
	VMCS_VMEXIT_CTLS, VMCS_VMENTRY_CTLS, VMCS_VMENTRY_INTR_INFO, VMCS_VMENTRY_EXCEPTION_ERRCODE,
	VMCS_VMENTRY_INSTR_LEN, VMCS_CR0_GUEST_HOST_MASK, VMCS_CR4_GUEST_HOST_MASK, VMCS_CR0_READ_SHADOW,
	VMCS_CR4_READ_SHADOW, VMCS_TSC_OFFSET,
};

static bool shadowable(uint32_t enc)
{
	enum vmcs_type t = vmcs_field_type(enc);
	if (t == VMCS_T_GUEST || t == VMCS_T_EXIT_INFO)
		return true;
	for (unsigned i = 0; i < sizeof(shadowed_controls) / sizeof(shadowed_controls[0]); i++)
		if (shadowed_controls[i] == enc)
			return true;
	return false;
}

/* Fields L1 writes on most exits: VMWRITE goes to the shadow VMCS without
 * exiting.  Every other shadowed field is read without exiting, and its
 * VMWRITE exits (and is tracked), so that the shadow-to-cache copy before
 * each VM entry stays short. */
static const uint32_t write_shadowed[] = {
	VMCS_GUEST_RIP, VMCS_GUEST_RSP, VMCS_GUEST_RFLAGS, VMCS_GUEST_INTERRUPTIBILITY, VMCS_GUEST_ACTIVITY_STATE,
	VMCS_GUEST_PENDING_DBG_EXCEPTIONS, VMCS_VMENTRY_INTR_INFO, VMCS_VMENTRY_EXCEPTION_ERRCODE,
	VMCS_VMENTRY_INSTR_LEN, VMCS_PROC_BASED_CTLS, VMCS_GUEST_CR0, VMCS_GUEST_CR3, VMCS_GUEST_CR4,
	VMCS_CR0_READ_SHADOW, VMCS_CR4_READ_SHADOW, VMCS_GUEST_IA32_EFER, VMCS_VMENTRY_CTLS,
};

static bool is_write_shadowed(uint32_t enc)
{
	for (unsigned i = 0; i < sizeof(write_shadowed) / sizeof(write_shadowed[0]); i++)
		if (write_shadowed[i] == enc)
			return true;
	return false;
}

static void bitmap_clear(uint8_t *bm, uint32_t enc) { bm[(enc & 0x7fff) / 8] &= ~(1u << (enc % 8)); }

int nested_shadow_init(struct vcpu *v)
{
	struct nested *n = &v->nested;
	const struct vmx_caps *caps = v->vm->caps;
	if (!nested_shadowing_wanted() || !ctl_can_set(caps->proc2, PROC2_VMCS_SHADOWING))
		return 0;
	/* Read-only fields can be put in the shadow VMCS only if the CPU lets
	 * VMWRITE write them (IA32_VMX_MISC[29]). */
	bool write_ro = caps->misc & (1ull << 29);
	n->shadow_vmcs = page_alloc();
	n->vmread_bitmap = page_alloc();
	n->vmwrite_bitmap = page_alloc();
	n->shadow_fields = zalloc(sizeof(uint32_t) * vmcs_num_fields);
	n->write_fields = zalloc(sizeof(uint32_t) * vmcs_num_fields);
	n->shadow_idx = zalloc(sizeof(int16_t) * vmcs_num_fields);
	n->write_idx = zalloc(sizeof(int16_t) * vmcs_num_fields);
	if (!n->shadow_vmcs || !n->vmread_bitmap || !n->vmwrite_bitmap || !n->shadow_fields || !n->write_fields ||
	    !n->shadow_idx || !n->write_idx)
		return -1;
	*(uint32_t *)n->shadow_vmcs = caps->revision | 0x80000000u; /* shadow-VMCS indicator */
	n->shadow_vmcs_phys = virt_to_phys(n->shadow_vmcs);
	memset(n->vmread_bitmap, 0xff, PAGE_SIZE);
	memset(n->vmwrite_bitmap, 0xff, PAGE_SIZE);
	if (vmclear(n->shadow_vmcs_phys) != VMX_OK)
		return -1;
	/* Shadow the fields L1 may use (offered by the virtual CPU) that this
	 * CPU's VMCS has (a VMREAD of VMCS01 tells). */
	for (unsigned i = 0; i < vmcs_num_fields; i++) {
		uint32_t f = vmcs_all_fields[i];
		uint64_t dummy;
		if (vmcs12_index(f) < 0 || !shadowable(f) || vmread_checked(f, &dummy) != VMX_OK)
			continue;
		bool ro = vmcs_field_type(f) == VMCS_T_EXIT_INFO;
		if (ro && !write_ro)
			continue;
		n->shadow_idx[n->n_shadow_fields] = (int16_t)vmcs12_index(f);
		n->shadow_fields[n->n_shadow_fields++] = f;
		bitmap_clear(n->vmread_bitmap, f);
		if (vmcs_field_width(f) == VMCS_W64)
			bitmap_clear(n->vmread_bitmap, f | 1);
		if (!ro && is_write_shadowed(f)) {
			n->write_idx[n->n_write_fields] = (int16_t)vmcs12_index(f);
			n->write_fields[n->n_write_fields++] = f;
			bitmap_clear(n->vmwrite_bitmap, f);
			if (vmcs_field_width(f) == VMCS_W64)
				bitmap_clear(n->vmwrite_bitmap, f | 1);
		}
	}
	vmwrite(VMCS_VMREAD_BITMAP, virt_to_phys(n->vmread_bitmap));
	vmwrite(VMCS_VMWRITE_BITMAP, virt_to_phys(n->vmwrite_bitmap));
	n->shadowing = true;
	pr_debug("VMCS shadowing for the guest hypervisor: %u fields\n", n->n_shadow_fields);
	return 0;
}

/* VMCS01's controls that follow L1's VMX state.  Shadowing: on while L1 is in VMX
 * operation (outside it VMREAD must #UD, which only an exit can give), the
 * link pointer valid while L1 has a current VMCS (else the CPU itself gives
 * VMfailInvalid).  VMCS01 must be current. */
void nested_shadow_update_controls(struct vcpu *v)
{
	struct nested *n = &v->nested;
	/* In VMX operation CR0.PE and PG are fixed to 1 like NE: with
	 * unrestricted guest they are the guest's, so make their writes exit
	 * while L1 is in VMX operation (exit_cr.c then applies the fixed bits). */
	uint64_t m = v->cr0_mask_base;
	vmwrite(VMCS_CR0_GUEST_HOST_MASK, n->vmxon ? m | CR0_PE | CR0_PG : m);
	if (!n->shadowing)
		return;
	uint32_t proc2 = vmread(VMCS_PROC_BASED_CTLS2);
	proc2 = n->vmxon ? proc2 | PROC2_VMCS_SHADOWING : proc2 & ~PROC2_VMCS_SHADOWING;
	vmwrite(VMCS_PROC_BASED_CTLS2, proc2);
	vmwrite(VMCS_VMCS_LINK_PTR, n->vmxon && n->current_ptr != ~0ull ? n->shadow_vmcs_phys : ~0ull);
}

/* Copies between the shadow VMCS and the cache; VMCS01 is current before
 * and after.  What L1 wrote through the shadow marks the fields dirty. */
void nested_shadow_to_cache(struct vcpu *v)
{
	struct nested *n = &v->nested;
	if (!n->shadowing || n->current_ptr == ~0ull)
		return;
	vmptrld(n->shadow_vmcs_phys);
	for (unsigned i = 0; i < n->n_write_fields; i++) {
		int idx = n->write_idx[i];
		uint64_t val = vmread(n->write_fields[i]);
		if (val != n->vmcs12->f[idx]) {
			n->vmcs12->f[idx] = val;
			v12_mark(n->dirty, idx);
		}
	}
	vmptrld(v->vmcs_phys);
}

void nested_cache_to_shadow(struct vcpu *v, const uint64_t *changed)
{
	struct nested *n = &v->nested;
	if (!n->shadowing || n->current_ptr == ~0ull)
		return;
	vmptrld(n->shadow_vmcs_phys);
	for (unsigned i = 0; i < n->n_shadow_fields; i++) {
		int idx = n->shadow_idx[i];
		if (!changed || v12_test(changed, idx))
			vmwrite(n->shadow_fields[i], n->vmcs12->f[idx]);
	}
	vmptrld(v->vmcs_phys);
}

bool nested_field_shadowed(struct vcpu *v, uint32_t enc)
{
	struct nested *n = &v->nested;
	if (!n->shadowing)
		return false;
	enc &= ~1u;
	for (unsigned i = 0; i < n->n_shadow_fields; i++)
		if (n->shadow_fields[i] == enc)
			return true;
	return false;
}
