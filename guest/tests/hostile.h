/* hostile.h - what the files of the hostile suite share (guest/tests/hostile*).
 *
 * The suite attacks the Nestors below the guest kernel, as a hostile guest
 * or as a hostile guest hypervisor (an L1 with its own L2, guest/vmx.h),
 * and checks that what it sees is what a CPU shows: at depth 0 (bare
 * Bochs) the CPU's answer is the reference, and the transcript must be the
 * same at every depth.  Facts that legitimately differ (a Nestor below or
 * not, a status only a Nestor returns) are env() lines. */
#ifndef GUEST_TESTS_HOSTILE_H
#define GUEST_TESTS_HOSTILE_H

#include <stdbool.h>
#include <stdint.h>
#include "guest/vmx.h"

/* A test of the suite.  To reproduce one attack alone, a copy of guest.elf
 * can have a test name written after the "hostile-only:" marker of
 * hx_only (hostile.c); then only that test runs (the others end "ok"
 * without doing anything). */
bool hx_skip(const char *name);
#define HX_TEST(name)                                                    \
	static void hx_body_##name(void);                                \
	TEST(hostile, name)                                              \
	{                                                                \
		if (!hx_skip(#name))                                     \
			hx_body_##name();                                \
	}                                                                \
	static void hx_body_##name(void)

/* --- the environment ------------------------------------------------------ */
/* True when a Nestor runs below (CPUID 0x40000000 signature). */
bool hx_nestor(void);
/* Where RAM ends below 4 GiB, from the CMOS (the hypervisors pass it through). */
uint64_t hx_ram_end(void);
/* A page that is not RAM for this guest: a page of the memory a Nestor
 * below hides (outside the memory map, inside RAM) or, without one (depth
 * 0), an address no RAM or device decodes.  Both read all ones and drop
 * writes on a PC. */
uint64_t hx_nonram_page(void);
/* The last page of guest RAM right below a page that is not RAM, if the
 * memory map has one (a Nestor's memory follows it); 0 otherwise. */
uint64_t hx_ram_before_hole(void);
/* MAXPHYADDR (CPUID 0x80000008). */
unsigned hx_maxphyaddr(void);

/* --- a window of the kernel's linear space with pages of our choice --------
 * PML4 slot 1 (linear 512 GiB and up) of the kernel's page tables, which
 * the L2s share.  4 KiB slots at HX_WIN4K, 2 MiB slots at HX_WIN2M, 1 GiB
 * slots at HX_WIN1G; each call flushes the TLB (CR3 reload). */
#define HX_WIN4K 0x8000000000ull
#define HX_WIN2M (HX_WIN4K + (1ull << 30))
#define HX_WIN1G (HX_WIN4K + (2ull << 30))
#define HX_PTE_P 1ull
#define HX_PTE_W 2ull
#define HX_PTE_U 4ull
#define HX_PTE_A 0x20ull
#define HX_PTE_D 0x40ull
void *hx_map4k(unsigned slot, uint64_t phys, uint64_t flags);
uint64_t *hx_pte4k(unsigned slot);
void *hx_map2m(unsigned slot, uint64_t phys);
void hx_map2m_noflush(unsigned slot, uint64_t phys);
void *hx_map1g(unsigned slot, uint64_t phys);
bool hx_have_1g_pages(void);
void hx_tlb_flush(void);
/* Removes the window (the kernel's page tables as they were). */
void hx_window_off(void);

/* --- an L2 of our own ------------------------------------------------------
 * vmx_begin + vm_setup, then: no VPID (so that the TLB holds nothing of the
 * L2 across an exit: the window and the EPT can change between runs), every
 * exception exits to us, and the EPT of hx_ept below. */
bool hx_l2_begin(void);
void hx_l2_end(void);

/* Test pages (4 KiB each, one 2 MiB region mapped by a page table in
 * hx_ept, so that single pages can be remapped for the L2). */
#define HX_NPAGES 8
extern uint8_t hx_pages[HX_NPAGES][4096];
/* hx_ept: identity 0-4 GiB with 2 MiB pages, 4 KiB pages on the 2 MiB
 * region of hx_pages; guest-physical HX_EPT_HIGH.. (1 GiB, under a PDPTE
 * of its own) can be mapped to any host-physical 2 MiB page, except its
 * second 2 MiB: the hx_pages region again through a page table. */
#define HX_EPT_HIGH (8ull << 30)
uint64_t *hx_ept_pte(uint64_t gpa);    /* a 4 KiB page of the hx_pages region */
uint64_t *hx_ept_entry(int level, uint64_t gpa); /* 4 PML4E, 3 PDPTE, 2 PDE, 1 PTE (if any) */
void hx_ept_map_high(unsigned slot2m, uint64_t hpa);
/* Guest-physical GiB `gib` (not 0-3, 8) to host-physical hpa.., in 2 MiB
 * pages of page directory k (0-3). */
void hx_ept_map_gib(unsigned k, unsigned gib, uint64_t hpa);
uint64_t hx_eptp(void);
/* Another EPT root k (0-3) over the same tables: another EPTP, same mappings. */
uint64_t hx_eptp_alt(unsigned k);
void hx_ept_rebuild(void);
/* INVEPT of the L2's EPT after changing it (all contexts when offered). */
void hx_ept_flush(void);
/* INVEPT of the current EPTP only (single context). */
void hx_ept_flush_single(void);

/* Runs the L2 at code with RFLAGS = 2; the exit reason (vm_go). */
uint32_t hx_run(const void *code);
/* "exit 48 (EPT violation) +3" and friends, for transcripts. */
const char *hx_exit_str(uint32_t reason, const void *snippet);

/* --- L2 snippets (hostile_asm.S): each ends in VMCALL ---------------------- */
extern const char hx_l2_insd[], hx_l2_outsd[], hx_l2_insw[], hx_l2_rep_insb[], hx_l2_rep_outsb[];
extern const char hx_l2_rep_stosb[], hx_l2_rdmsr[], hx_l2_wrmsr_read[], hx_l2_read[], hx_l2_write[];
extern const char hx_l2_outl_insd[], hx_l2_outsd_inl[];
extern const char hx_l2_c32_rep_insb[], hx_l2_c32_rep_outsb[]; /* 32-bit code (compatibility mode) */

#endif
