/* guest_mem.c - guest memory as the guest sees it (see guest_mem.h). */
#include "vmx/guest_mem.h"
#include "lib/string.h"
#include "boot/cpu.h"
#include "boot/fixup.h"
#include "lib/x86.h"
#include "mm/mm.h"
#include "snap/snap.h"
#include "nested/nested.h"
#include "vmx/ept.h"
#include "vmx/exits.h"
#include "vmx/vmcs.h"

bool gpa_is_ram(struct vm *vm, uint64_t gpa, uint64_t len)
{
	return gpa + len >= gpa && rs_contains(&vm->guest_ram, gpa, gpa + len);
}

bool gpa_absent(const struct vm *vm, uint64_t gpa)
{
	uint64_t page = gpa & ~(PAGE_SIZE - 1);
	return page >= vm->ept_top || rs_overlaps(&vm->hidden, page, page + PAGE_SIZE) || page == vm->apic_absent;
}

/* One page at a time, so each page's fate is decided on its own: Nestor's
 * pages read as ones and ignore writes.  So does a page where the guest
 * moved its xAPIC: Nestor does not emulate its own accesses to APIC
 * registers. */
static bool gpa_copy(struct vm *vm, uint64_t gpa, uint8_t *buf, size_t len, bool write)
{
	while (len) {
		if (gpa >= vm->ept_top)
			return false;
		uint64_t page = gpa & ~(PAGE_SIZE - 1);
		size_t n = PAGE_SIZE - (gpa - page);
		if (n > len)
			n = len;
		bool hidden = gpa_absent(vm, gpa) || (page == vm->apic_gpa && vm->apic_gpa != vm->apic_real);
		if (write && !hidden) {
			guest_mem_before_write(vm, gpa, n);
			memcpy(phys_to_virt(gpa), buf, n);
		}
		else if (!write)
			hidden ? memset(buf, 0xff, n) : memcpy(buf, phys_to_virt(gpa), n);
		buf += n, gpa += n, len -= n;
	}
	return true;
}

void guest_mem_before_write(struct vm *vm, uint64_t gpa, uint64_t len)
{
	ept_watch_write(vm, gpa, len); /* a guest hypervisor's I/O bitmaps */
	snap_before_write(vm, gpa, len); /* copy-on-write snapshots */
}

bool gpa_read(struct vm *vm, uint64_t gpa, void *buf, size_t len) { return gpa_copy(vm, gpa, buf, len, false); }

bool gpa_write(struct vm *vm, uint64_t gpa, const void *buf, size_t len)
{
	return gpa_copy(vm, gpa, (uint8_t *)buf, len, true);
}

/* --- linear addresses (SDM Vol. 3A chapter 4) ------------------------------ */

#define PF_P (1u << 0)
#define PF_W (1u << 1)
#define PF_U (1u << 2)
#define PF_RSVD (1u << 3)
#define PF_I (1u << 4)
#define PF_PK (1u << 5)

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_U (1ull << 2)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)
#define PTE_NX (1ull << 63)

/* A physical address of the running level (its paging structures) to the
 * machine's, for the access (bit 0 read, 1 write): 0, or -1 with the
 * running level's hypervisor's refusal in f (an EPT violation for it). */
static int level_phys(struct vcpu *v, uint64_t gpa, unsigned ept_acc, uint64_t gla, bool final, uint64_t *m,
		      struct gfault *f)
{
	struct ept_refusal r;
	if (nested_translate(v, gpa, ept_acc, m, &r) == 0)
		return 0;
	f->kind = GF_EPT;
	f->gpa = gpa;
	f->gla = gla;
	f->gla_valid = true;
	f->final = final;
	f->ept_access = ept_acc;
	f->ept = r;
	return -1;
}

static bool read_entry(struct vcpu *v, uint64_t gpa, unsigned size, uint64_t gla, uint64_t *e, uint64_t *m,
		       struct gfault *f)
{
	*e = 0;
	/* With the running level's hypervisor's EPT accessed and dirty flags
	 * on, reading an entry is a write for that EPT: its dirty flag is set,
	 * a read-only mapping refuses it (SDM 28.3.5; hostile.walk_ept_ad). */
	if (level_phys(v, gpa, nested_walk_writes(v) ? 3 : 1, gla, false, m, f))
		return false;
	gpa_read(v->vm, *m, e, size);
	return true;
}

/* The protection-key register for user (PKRU) or supervisor (IA32_PKRS)
 * pages: the guest's, since Nestor never changes either. */
static uint32_t read_pkr(bool user)
{
	if (!user) {
		uint64_t pkrs = 0;
		rdmsr_safe(0x6e1, &pkrs);
		return (uint32_t)pkrs;
	}
	/* RDPKRU needs CR4.PKE in Nestor's own CR4. */
	uint64_t cr4 = read_cr4();
	if (!(cr4 & CR4_PKE))
		write_cr4(cr4 | CR4_PKE);
	uint32_t pkru, edx;
	__asm__ volatile("rdpkru" : "=a"(pkru), "=d"(edx) : "c"(0));
	if (!(cr4 & CR4_PKE))
		write_cr4(cr4);
	return pkru;
}

/* Sets bits in a paging-structure entry the CPU used (accessed, dirty), as
 * a locked update like the CPU's; a write the running level's hypervisor
 * refuses is an EPT violation like the CPU would take. */
static int set_entry_bits(struct vcpu *v, uint64_t gpa, unsigned size, uint64_t gla, uint64_t bits, struct gfault *f)
{
	uint64_t m;
	if (level_phys(v, gpa, 2, gla, false, &m, f))
		return -1;
	if (gpa_absent(v->vm, m))
		return 0; /* the table is in memory that does not exist: the write is lost */
	guest_mem_before_write(v->vm, m, size);
	if (size == 8)
		__atomic_fetch_or((uint64_t *)phys_to_virt(m), bits, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_or((uint32_t *)phys_to_virt(m), (uint32_t)bits, __ATOMIC_SEQ_CST);
	return 0;
}

int gla_xlate(struct vcpu *v, uint64_t gla, unsigned acc, uint64_t *machine, struct gfault *f)
{
	memset(f, 0, sizeof(*f));
	/* The CR0 and CR4 the CPU runs the level with, not what its
	 * hypervisor's read shadows show it (SDM 25.3): an L1 may own WP or
	 * SMAP and show the L2 the opposite (hostile.walk_cr_shadows). */
	uint64_t cr0 = vmread(VMCS_GUEST_CR0), cr4 = vmread(VMCS_GUEST_CR4), efer = vmread(VMCS_GUEST_IA32_EFER);
	int access = acc & 3;
	bool write = access == ACC_WRITE, fetch = access == ACC_FETCH;
	/* Implicit supervisor accesses (descriptor tables, TSS) are never user
	 * accesses, whatever the CPL. */
	bool user = guest_cpl() == 3 && !(acc & ACC_IMPLICIT);
	bool nxe = efer & EFER_NXE;
	uint32_t err = (write ? PF_W : 0) | (user ? PF_U : 0) | (fetch && (nxe || (cr4 & CR4_SMEP)) ? PF_I : 0);
	uint64_t rsvd = ~((1ull << maxphyaddr) - 1) & 0x000fffffffffffffull;
	if (!nxe)
		rsvd |= PTE_NX;
	bool allow_w = true, allow_u = true, allow_x = true;
	uint64_t gpa, leaf = 0;
	/* Entries used, to set their accessed (and the leaf's dirty) bits. */
	uint64_t used[5], used_val[5];
	unsigned nused = 0, esize = 8, pkey = 0;
	bool ia32e = efer & EFER_LMA;

	if (!(cr0 & CR0_PG)) {
		gpa = gla & 0xffffffffull;
		goto check;
	}
	if (ia32e || (cr4 & CR4_PAE)) {
		uint64_t table;
		int levels, shift;
		if (ia32e) {
			levels = (cr4 & CR4_LA57) ? 5 : 4;
			table = vmread(VMCS_GUEST_CR3) & 0x000ffffffffff000ull & ~rsvd;
			shift = 12 + 9 * (levels - 1);
		} else {
			/* PAE: the PDPTEs are in the VMCS (loaded with CR3). */
			gla &= 0xffffffffull;
			uint64_t pdpte = vmread(VMCS_GUEST_PDPTE0 + 2 * ((gla >> 30) & 3));
			if (!(pdpte & PTE_P))
				goto not_present;
			table = pdpte & 0x000ffffffffff000ull;
			levels = 2;
			shift = 21;
		}
		for (int l = levels; l >= 1; l--, shift -= 9) {
			uint64_t e, m, ea = table + ((gla >> shift) & 511) * 8;
			if (!read_entry(v, ea, 8, gla, &e, &m, f))
				return -1;
			if (!(e & PTE_P))
				goto not_present;
			/* Reserved bits (SDM 4.5.4 / 4.4.2): the address width, NX
			 * without EFER.NXE, PS in a PML4E/PML5E or in a PDPTE
			 * without 1 GiB pages, and the low address bits of a large
			 * page other than PAT. */
			bool large = (e & PTE_PS) && (shift == 21 || shift == 30);
			uint64_t r = rsvd;
			if ((e & PTE_PS) && (shift > 30 || (shift == 30 && !(cpuid(0x80000001, 0).edx & (1u << 26)))))
				r |= PTE_PS;
			if (large)
				r |= ((1ull << shift) - 1) & ~0x1fffull;
			if (!ia32e)
				r |= 0x7ff0000000000000ull; /* PAE: bits 62:52 reserved too */
			if (e & r) {
				err |= PF_P | PF_RSVD;
				goto fault;
			}
			used_val[nused] = e;
			used[nused++] = ea;
			allow_w = allow_w && (e & PTE_W);
			allow_u = allow_u && (e & PTE_U);
			if (e & PTE_NX)
				allow_x = false;
			if (l == 1 || large) {
				uint64_t page = 1ull << shift;
				gpa = (e & 0x000ffffffffff000ull & ~(page - 1)) | (gla & (page - 1));
				leaf = e;
				pkey = ia32e ? (e >> 59) & 15 : 0;
				goto check;
			}
			table = e & 0x000ffffffffff000ull;
		}
	} else {
		/* 32-bit paging: 4-byte entries, optional 4 MiB pages (PSE). */
		gla &= 0xffffffffull;
		esize = 4;
		uint64_t pde, pte, m;
		uint64_t pde_a = (vmread(VMCS_GUEST_CR3) & 0xfffff000ull) + ((gla >> 22) & 1023) * 4;
		if (!read_entry(v, pde_a, 4, gla, &pde, &m, f))
			return -1;
		if (!(pde & PTE_P))
			goto not_present;
		used_val[nused] = pde;
		used[nused++] = pde_a;
		allow_w = pde & PTE_W, allow_u = pde & PTE_U;
		if ((pde & PTE_PS) && (cr4 & CR4_PSE)) {
			/* PSE-36: bits 20:13 are address bits 39:32, within the width. */
			uint64_t hi = (pde >> 13) & 0xff;
			if ((hi << 32) & ~((1ull << maxphyaddr) - 1) || (pde & (1ull << 21))) {
				err |= PF_P | PF_RSVD;
				goto fault;
			}
			gpa = (pde & 0xffc00000u) | (hi << 32) | (gla & 0x3fffff);
			leaf = pde;
			goto check;
		}
		uint64_t pte_a = (pde & 0xfffff000u) + ((gla >> 12) & 1023) * 4;
		if (!read_entry(v, pte_a, 4, gla, &pte, &m, f))
			return -1;
		if (!(pte & PTE_P))
			goto not_present;
		used_val[nused] = pte;
		used[nused++] = pte_a;
		allow_w = allow_w && (pte & PTE_W), allow_u = allow_u && (pte & PTE_U);
		gpa = (pte & 0xfffff000u) | (gla & 0xfff);
		leaf = pte;
		goto check;
	}
not_present:
	err &= ~PF_P;
fault:
	f->kind = GF_EXC;
	f->vector = EXC_PF;
	f->error = err;
	f->has_error = true;
	f->cr2 = gla;
	return -1;
check:
	if (cr0 & CR0_PG) {
		bool smap_ok = !(cr4 & CR4_SMAP) ||
			       (!(acc & ACC_IMPLICIT) && guest_cpl() < 3 && (vmread(VMCS_GUEST_RFLAGS) & RFLAGS_AC));
		/* SDM 4.6: user accesses need U everywhere; supervisor fetches from
		 * user pages fault with SMEP, supervisor data accesses with SMAP
		 * (unless explicit with EFLAGS.AC); writes honour CR0.WP for the
		 * supervisor; fetches honour NX. */
		bool bad = (user && !allow_u) || (!user && allow_u && fetch && (cr4 & CR4_SMEP)) ||
			   (!user && allow_u && !fetch && !smap_ok) ||
			   (write && !allow_w && (user || (cr0 & CR0_WP))) || (fetch && !allow_x);
		if (bad) {
			err |= PF_P;
			goto fault;
		}
		/* Protection keys (SDM 4.6.2): data accesses in IA-32e paging. */
		bool pk_on = allow_u ? (cr4 & CR4_PKE) : (cr4 & CR4_PKS);
		if (ia32e && !fetch && pk_on) {
			uint32_t pkr = read_pkr(allow_u) >> (2 * pkey);
			if ((pkr & 1) || (write && (pkr & 2) && (user || (cr0 & CR0_WP)))) {
				err |= PF_P | PF_PK;
				goto fault;
			}
		}
	}
	/* The CPU sets the accessed flag of every entry it used, and the
	 * dirty flag of the leaf on a write (SDM 4.8): the linear address is
	 * translated, flags included, before its guest-physical address goes
	 * through EPT (SDM 28.2.3.3), so a refusal of the access itself by
	 * the running level's hypervisor finds them set, as on Bochs
	 * (hostile.walk_ept_final). */
	(void)leaf;
	for (unsigned i = 0; i < nused; i++) {
		bool last = i == nused - 1;
		uint64_t bits = PTE_A | (last && write ? PTE_D : 0);
		if ((used_val[i] & bits) == bits)
			continue; /* the CPU writes only a flag that is clear */
		if (set_entry_bits(v, used[i], esize, gla, bits, f))
			return -1;
	}
	/* Hand back a machine address (an L2's goes through L1's EPT). */
	unsigned ept_acc = write ? 2 : fetch ? 4 : 1;
	return level_phys(v, gpa, ept_acc, gla, true, machine, f) ? -1 : 0;
}

int gla_copy(struct vcpu *v, uint64_t gla, void *buf, size_t len, unsigned acc, struct gfault *f)
{
	/* Every page is translated before anything is written: a fault on the
	 * second page of an access leaves the first untouched, as on the CPU. */
	uint64_t m[2];
	size_t first = PAGE_SIZE - (gla & (PAGE_SIZE - 1));
	uint8_t *p = buf;
	if (len > PAGE_SIZE && (acc & 3) == ACC_WRITE)
		return -2; /* callers write element by element */
	while (len) {
		size_t n = first < len ? first : len;
		if (gla_xlate(v, gla, acc, &m[0], f))
			return -1;
		size_t rest = len - n;
		if ((acc & 3) == ACC_WRITE && rest) {
			if (gla_xlate(v, gla + n, acc, &m[1], f))
				return -1;
			gpa_write(v->vm, m[0], p, n);
			gpa_write(v->vm, m[1], p + n, rest);
			return 0;
		}
		if ((acc & 3) == ACC_WRITE)
			gpa_write(v->vm, m[0], p, n);
		else
			gpa_read(v->vm, m[0], p, n);
		p += n, gla += n, len -= n;
		first = PAGE_SIZE;
	}
	return 0;
}

void gfault_raise(struct vcpu *v, const struct gfault *f)
{
	if (f->kind == GF_EPT) {
		/* SDM 27.2.1: bits 2:0 the access, 5:3 what the EPT grants, bit 7
		 * the linear address is valid, bit 8 the access was to the final
		 * translation (not to a paging structure). */
		uint64_t q = f->ept_access | ((uint64_t)f->ept.rights << 3) | (f->gla_valid ? 1u << 7 : 0) |
			     (f->gla_valid && f->final ? 1u << 8 : 0);
		nested_ept_fault(v, f->gpa, f->gla, q, &f->ept);
		return;
	}
	if (f->vector == EXC_PF)
		inject_page_fault(v, f->cr2, f->error);
	else
		inject_exception_err(v, f->vector, f->has_error ? f->error : 0);
}

/* --- segmentation (SDM Vol. 3A 5.3, 3.4.5) ---------------------------------- */

bool guest_in_64bit_mode(void)
{
	return (vmread(VMCS_VMENTRY_CTLS) & ENTRY_IA32E_MODE) && (vmread(VMCS_GUEST_CS_AR) & (1u << 13));
}

int guest_code_bits(void)
{
	if (guest_in_64bit_mode())
		return 64;
	if (!(vmread(VMCS_GUEST_CR0) & CR0_PE))
		return 16;
	return (vmread(VMCS_GUEST_CS_AR) & (1u << 14)) ? 32 : 16;
}

int guest_fetch(struct vcpu *v, uint8_t bytes[15])
{
	uint64_t gla = vmread(VMCS_GUEST_CS_BASE) + vmread(VMCS_GUEST_RIP);
	struct gfault f;
	size_t n = 15;
	while (n && gla_copy(v, gla, bytes, n, ACC_FETCH, &f))
		n--;
	return (int)n;
}

int seg_linear(struct vcpu *v, unsigned seg, uint64_t offset, unsigned size, int access, uint64_t *gla,
	       struct gfault *f)
{
	(void)v;
	memset(f, 0, sizeof(*f));
	f->kind = GF_EXC;
	f->vector = seg == 2 ? EXC_SS : EXC_GP; /* SS faults are #SS(0) */
	f->has_error = true;
	f->error = 0;
	uint64_t base = vmread(VMCS_GUEST_ES_BASE + 2 * seg);
	if (guest_in_64bit_mode()) {
		/* Only FS and GS have bases; the address must be canonical. */
		uint64_t a = (seg == 4 || seg == 5 ? base : 0) + offset;
		if (!x86_canonical(a) || !x86_canonical(a + size - 1))
			return -1;
		*gla = a;
		f->kind = GF_NONE;
		return 0;
	}
	uint32_t ar = vmread(VMCS_GUEST_ES_AR + 2 * seg), limit = vmread(VMCS_GUEST_ES_LIMIT + 2 * seg);
	bool unusable = ar & (1u << 16), code = ar & 8, rw = ar & 2;
	bool expand_down = !code && (ar & 4);
	bool wr = access == ACC_WRITE;
	/* In real and virtual-8086 mode the access rights are fixed: no type
	 * check, only the limit. */
	bool pmode = (vmread(VMCS_GUEST_CR0) & CR0_PE) && !(vmread(VMCS_GUEST_RFLAGS) & RFLAGS_VM);
	if (pmode && (unusable || (wr && (code || !rw)) || (!wr && code && !rw)))
		return -1;
	uint64_t last = offset + size - 1;
	bool bad;
	if (expand_down) {
		uint64_t top = (ar & (1u << 14)) ? 0xffffffffull : 0xffffull;
		bad = offset <= limit || last > top;
	} else {
		bad = last > limit;
	}
	if (bad)
		return -1;
	*gla = (uint32_t)(base + offset);
	f->kind = GF_NONE;
	return 0;
}
