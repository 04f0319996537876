/* guest_mem.c - guest memory as the guest sees it (see guest_mem.h). */
#include "vmx/guest_mem.h"
#include "lib/string.h"
#include "boot/cpu.h"
#include "lib/x86.h"
#include "mm/mm.h"
#include "snap/snap.h"
#include "nested/nested.h"
#include "vmx/exits.h"
#include "vmx/vmcs.h"

bool gpa_is_ram(struct vm *vm, uint64_t gpa, uint64_t len)
{
	return gpa + len >= gpa && rs_contains(&vm->guest_ram, gpa, gpa + len);
}

/* One page at a time, so each page's fate is decided on its own: Nestor's
 * pages read as ones and ignore writes. */
static bool gpa_copy(struct vm *vm, uint64_t gpa, uint8_t *buf, size_t len, bool write)
{
	while (len) {
		if (gpa >= vm->ept_top)
			return false;
		uint64_t page = gpa & ~(PAGE_SIZE - 1);
		size_t n = PAGE_SIZE - (gpa - page);
		if (n > len)
			n = len;
		bool hidden = rs_overlaps(&vm->hidden, page, page + PAGE_SIZE);
		if (write && !hidden) {
			snap_before_write(vm, gpa, n); /* copy-on-write snapshots */
			memcpy(phys_to_virt(gpa), buf, n);
		}
		else if (!write)
			hidden ? memset(buf, 0xff, n) : memcpy(buf, phys_to_virt(gpa), n);
		buf += n, gpa += n, len -= n;
	}
	return true;
}

bool gpa_read(struct vm *vm, uint64_t gpa, void *buf, size_t len) { return gpa_copy(vm, gpa, buf, len, false); }

bool gpa_write(struct vm *vm, uint64_t gpa, const void *buf, size_t len)
{
	return gpa_copy(vm, gpa, (uint8_t *)buf, len, true);
}

/* Guest-physical addresses of the level now running, to the machine's:
 * the identity for our guest, through the EPTs of the levels below for a
 * level above (nested/levels.c). */
static int to_machine(struct vcpu *v, uint64_t gpa, unsigned access, uint64_t *out)
{
	return nested_to_machine(v, gpa, access, out);
}

static bool table_read(struct vcpu *v, uint64_t gpa, void *buf, size_t len)
{
	uint64_t m;
	return to_machine(v, gpa, 1, &m) == 0 && gpa_read(v->vm, m, buf, len);
}

#define PF_P (1u << 0)
#define PF_W (1u << 1)
#define PF_U (1u << 2)
#define PF_RSVD (1u << 3)
#define PF_I (1u << 4)

int gla_to_gpa(struct vcpu *v, uint64_t gla, int access, uint64_t *gpa, uint32_t *pf_err)
{
	uint64_t cr0 = guest_cr0(), cr4 = guest_cr4(), efer = vmread(VMCS_GUEST_IA32_EFER);
	bool user = guest_cpl() == 3;
	uint32_t err = (access == ACC_WRITE ? PF_W : 0) | (user ? PF_U : 0) |
		       (access == ACC_FETCH && (efer & EFER_NXE) ? PF_I : 0);
	uint64_t addr_mask = ((1ull << maxphyaddr) - 1) & ~0xfffull;
	bool nx = efer & EFER_NXE;
	uint64_t e, table;
	int levels, shift;
	bool allow_w = true, allow_u = true, allow_x = true;
	if (!(cr0 & CR0_PG)) {
		*gpa = gla & 0xffffffffull;
		goto check;
	}
	if (efer & EFER_LMA) {
		levels = (cr4 & CR4_LA57) ? 5 : 4;
		table = vmread(VMCS_GUEST_CR3) & addr_mask;
	} else if (cr4 & CR4_PAE) {
		uint64_t pdpte = vmread(VMCS_GUEST_PDPTE0 + 2 * ((gla >> 30) & 3));
		if (!(pdpte & 1)) {
			*pf_err = err;
			return -1;
		}
		table = pdpte & addr_mask;
		levels = 2;
		gla &= 0xffffffffull;
	} else {
		/* 32-bit paging: 4-byte entries, optional 4 MiB pages (PSE). */
		gla &= 0xffffffffull;
		uint32_t pde, pte;
		uint64_t cr3 = vmread(VMCS_GUEST_CR3) & 0xfffff000ull;
		if (!table_read(v, cr3 + ((gla >> 22) & 1023) * 4, &pde, 4) || !(pde & 1))
			goto not_present;
		if ((pde & 0x80) && (cr4 & CR4_PSE)) {
			allow_w = pde & 2, allow_u = pde & 4;
			*gpa = ((uint64_t)(pde & 0xffc00000u) | ((uint64_t)((pde >> 13) & 0xff) << 32)) |
			       (gla & 0x3fffff);
			goto check;
		}
		allow_w = pde & 2, allow_u = pde & 4;
		if (!table_read(v, (pde & 0xfffff000u) + ((gla >> 12) & 1023) * 4, &pte, 4) || !(pte & 1))
			goto not_present;
		allow_w = allow_w && (pte & 2), allow_u = allow_u && (pte & 4);
		*gpa = (pte & 0xfffff000u) | (gla & 0xfff);
		goto check;
	}
	/* Top level covers bits 47:39 (4-level), 56:48 (5-level); PAE's page
	 * directory (after the PDPTE) covers bits 29:21. */
	shift = levels == 2 ? 21 : 12 + 9 * (levels - 1);
	for (int l = levels; l >= 1; l--, shift -= 9) {
		if (!table_read(v, table + ((gla >> shift) & 511) * 8, &e, 8) || !(e & 1))
			goto not_present;
		allow_w = allow_w && (e & 2);
		allow_u = allow_u && (e & 4);
		if (nx && (e & (1ull << 63)))
			allow_x = false;
		if (l == 1 || ((e & 0x80) && (shift == 21 || shift == 30))) {
			uint64_t page = 1ull << shift;
			*gpa = (e & addr_mask & ~(page - 1)) | (gla & (page - 1));
			goto check;
		}
		table = e & addr_mask;
	}
not_present:
	*pf_err = err;
	return -1;
check:
	/* SDM 4.6: supervisor writes honour CR0.WP; user accesses need U. */
	if ((user && !allow_u) || (access == ACC_WRITE && !allow_w && (user || (cr0 & CR0_WP))) ||
	    (access == ACC_FETCH && !allow_x)) {
		*pf_err = err | PF_P;
		return -1;
	}
	/* Hand back a machine address (an L2's goes through L1's EPT). */
	unsigned acc = access == ACC_WRITE ? 2 : access == ACC_FETCH ? 4 : 1;
	if (to_machine(v, *gpa, acc, gpa)) {
		*pf_err = 0;
		return -1;
	}
	return 0;
}

int gla_read(struct vcpu *v, uint64_t gla, void *buf, size_t len, int access, uint32_t *pf_err,
	     uint64_t *fault_gla)
{
	uint8_t *out = buf;
	while (len) {
		size_t n = PAGE_SIZE - (gla & (PAGE_SIZE - 1));
		if (n > len)
			n = len;
		uint64_t gpa;
		if (gla_to_gpa(v, gla, access, &gpa, pf_err)) {
			*fault_gla = gla;
			return -1;
		}
		if (!gpa_read(v->vm, gpa, out, n)) {
			*pf_err = 0;
			*fault_gla = gla;
			return -1;
		}
		out += n, gla += n, len -= n;
	}
	return 0;
}
