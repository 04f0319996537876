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
 * every VMREAD/VMWRITE exits and is emulated on the cache.
 *
 * Every level whose VMX we emulate gets its own shadow VMCS, linked from the
 * VMCS that runs it; which fields are shadowed is the same for all. */
#include "lib/log.h"
#include "lib/x86.h"
#include "lib/string.h"
#include "mm/mm.h"
#include "nested/internal.h"
#include "nested/shadow_fields.h"
#include "vmx/exits.h"
#include "vmx/vmcs.h"
#include "vmx/vmcs_own.h"

static void bitmap_clear(uint8_t *bm, uint32_t enc) { bm[(enc & 0x7fff) / 8] &= ~(1u << (enc % 8)); }

/* Which fields are shadowed: computed once per vCPU, with VMCS01 current
 * (a VMREAD of it tells which fields this CPU's VMCS has). */
int nested_shadow_tables_init(struct vcpu *v)
{
	struct shadow_tables *t = &v->shadow_tables;
	const struct vmx_caps *caps = v->vm->caps;
	if (!nested_shadowing_wanted() || !ctl_can_set(caps->proc2, PROC2_VMCS_SHADOWING))
		return 0;
	/* Read-only fields can be put in the shadow VMCS only if the CPU lets
	 * VMWRITE write them (IA32_VMX_MISC[29]). */
	bool write_ro = caps->misc & (1ull << 29);
	t->vmread_bitmap = page_alloc();
	t->vmwrite_bitmap = page_alloc();
	t->write_fields = zalloc(sizeof(uint32_t) * vmcs_num_fields);
	t->write_idx = zalloc(sizeof(int16_t) * vmcs_num_fields);
	if (!t->vmread_bitmap || !t->vmwrite_bitmap || !t->write_fields || !t->write_idx)
		return -1;
	memset(t->vmread_bitmap, 0xff, PAGE_SIZE);
	memset(t->vmwrite_bitmap, 0xff, PAGE_SIZE);
	/* Shadow the fields L1 may use (offered by the virtual CPU) that this
	 * CPU's VMCS has. */
	for (unsigned i = 0; i < vmcs_num_fields; i++) {
		uint32_t f = vmcs_all_fields[i];
		uint64_t dummy;
		if (vmcs12_index(f) < 0 || !shadowable(f) || vmread_checked(f, &dummy) != VMX_OK)
			continue;
		bool ro = vmcs_field_type(f) == VMCS_T_EXIT_INFO;
		if (ro && !write_ro)
			continue;
		t->n_shadow_fields++;
		v12_mark(t->shadowed, vmcs12_index(f));
		bitmap_clear(t->vmread_bitmap, f);
		if (vmcs_field_width(f) == VMCS_W64)
			bitmap_clear(t->vmread_bitmap, f | 1);
		if (!ro && is_write_shadowed(f)) {
			t->write_idx[t->n_write_fields] = (int16_t)vmcs12_index(f);
			t->write_fields[t->n_write_fields++] = f;
			bitmap_clear(t->vmwrite_bitmap, f);
			if (vmcs_field_width(f) == VMCS_W64)
				bitmap_clear(t->vmwrite_bitmap, f | 1);
		}
	}
	t->all_write_fields = t->n_write_fields == sizeof(write_shadowed) / sizeof(write_shadowed[0]);
	pr_debug("VMCS shadowing for guest hypervisors: %u fields\n", t->n_shadow_fields);
	return 0;
}

int nested_shadow_init(struct vcpu *v, struct nested *n)
{
	if (!v->shadow_tables.n_shadow_fields)
		return 0;
	n->st = &v->shadow_tables;
	n->shadow_vmcs = page_alloc();
	if (!n->shadow_vmcs)
		return -1;
	*(uint32_t *)n->shadow_vmcs = v->vm->caps->revision | 0x80000000u; /* shadow-VMCS indicator */
	n->shadow_vmcs_phys = virt_to_phys(n->shadow_vmcs);
	if (!vmcs_clear(v, n->shadow_vmcs_phys))
		return -1;
	n->shadowing = true;
	return 0;
}

/* The VMCS that runs n's L1 (current): controls that follow that level's
 * VMX state.  Shadowing: on while L1 is in VMX operation (outside it
 * VMREAD must #UD, which only an exit can give), the link pointer valid
 * while L1 has a current VMCS (else the CPU itself gives VMfailInvalid). */
void nested_shadow_update_controls(struct vcpu *v, struct nested *n)
{
	/* In VMX operation CR0.PE and PG are fixed to 1 like NE: with
	 * unrestricted guest they are the guest's, so make their writes exit
	 * while L1 is in VMX operation (the fixed bits are then checked by
	 * exit_cr.c for level 1, by nested/exit.c above). */
	uint64_t m = v->cr0_mask_base;
	if (n->level > 1) {
		/* Above level 1 the mask is the level below's plus ours, and the
		 * read shadow holds the real value of the bits only we mask. */
		uint64_t below = V12(v->lv[n->level - 1]->vmcs12, CR0_GUEST_HOST_MASK);
		m |= below;
		uint64_t shadow = vmread(VMCS_CR0_READ_SHADOW), real = vmread(VMCS_GUEST_CR0);
		vmwrite(VMCS_CR0_READ_SHADOW, (shadow & below) | (real & ~below));
	} else {
		/* Bits that become masked (PE, PG at VMXON) are read from the
		 * shadow from now on: it must hold what the guest has there.  A
		 * write that set them without exiting (PG with NE already as the
		 * shadow had it - GRUB-EFI hands over CR0.NE=1) left it stale:
		 * Nestor at level 1 then read CR0.PG=0 and put it in its host
		 * state (found by the UEFI tests, docs/uefi.md). */
		uint64_t cur = vmread(VMCS_CR0_GUEST_HOST_MASK);
		uint64_t shadow = vmread(VMCS_CR0_READ_SHADOW), real = vmread(VMCS_GUEST_CR0);
		vmwrite(VMCS_CR0_READ_SHADOW, (shadow & cur) | (real & ~cur));
	}
	vmwrite(VMCS_CR0_GUEST_HOST_MASK, n->vmxon ? m | CR0_PE | CR0_PG : m);
	if (!n->shadowing)
		return;
	uint32_t proc2 = vmread(VMCS_PROC_BASED_CTLS2);
	proc2 = n->vmxon ? proc2 | PROC2_VMCS_SHADOWING : proc2 & ~PROC2_VMCS_SHADOWING;
	vmwrite(VMCS_PROC_BASED_CTLS2, proc2);
	vmwrite(VMCS_VMREAD_BITMAP, virt_to_phys(n->st->vmread_bitmap));
	vmwrite(VMCS_VMWRITE_BITMAP, virt_to_phys(n->st->vmwrite_bitmap));
	vmwrite(VMCS_VMCS_LINK_PTR, n->vmxon && n->current_ptr != ~0ull ? n->shadow_vmcs_phys : ~0ull);
}

/* Copies between the shadow VMCS and the cache; the VMCS that runs n's L1
 * is current before and after.  What L1 wrote through the shadow marks the
 * fields dirty. */
void nested_shadow_to_cache(struct vcpu *v, struct nested *n)
{
	if (!n->shadowing || n->current_ptr == ~0ull)
		return;
	const struct shadow_tables *t = n->st;
	uint64_t prev = v->loaded_vmcs;
	vmcs_load(v, n->shadow_vmcs_phys);
	uint64_t *f = n->vmcs12->f;
	if (t->all_write_fields) {
		/* Every field of the list: unrolled with constants (issue 16). */
#define X(name) v12_pull(f, n->dirty, VMCS_##name, V12_##name);
		WRITE_SHADOWED(X)
#undef X
	} else {
		const uint32_t *enc = t->write_fields;
		const int16_t *ix = t->write_idx;
		for (unsigned i = 0; i < t->n_write_fields; i++) {
			uint64_t val = vmread(enc[i]);
			if (val != f[ix[i]]) {
				f[ix[i]] = val;
				v12_mark(n->dirty, ix[i]);
			}
		}
	}
	vmcs_load(v, prev);
}

void nested_cache_to_shadow(struct vcpu *v, struct nested *n, const uint64_t *changed)
{
	if (!n->shadowing || n->current_ptr == ~0ull)
		return;
	const struct shadow_tables *t = n->st;
	uint64_t prev = v->loaded_vmcs;
	vmcs_load(v, n->shadow_vmcs_phys);
	/* Only the shadowed fields that changed (a VMCS12 index is the field's
	 * place in the one field table). */
	for (int w = 0; w < (V12_NFIELDS + 63) / 64; w++) {
		uint64_t bits = t->shadowed[w] & (changed ? changed[w] : ~0ull);
		while (bits) {
			int idx = w * 64 + __builtin_ctzll(bits);
			bits &= bits - 1;
			vmwrite(vmcs_all_fields[idx], n->vmcs12->f[idx]);
		}
	}
	vmcs_load(v, prev);
}

bool nested_field_shadowed(const struct nested *n, uint32_t enc)
{
	int idx = vmcs12_index(enc & ~1u);
	return n->shadowing && idx >= 0 && v12_test(n->st->shadowed, idx);
}
