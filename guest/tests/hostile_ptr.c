/* hostile_ptr.c - VMX pointers aimed at memory that is not RAM (a Nestor's
 * own memory at depth >= 1): the VMXON region, VMCSs, bitmaps, the VMCS
 * link pointer, the EPT, MSR lists, a VMREAD destination.  A CPU reads
 * all ones there and drops writes; the rest of the instruction happens. */
#include "guest/nestor.h"
#include "guest/test.h"
#include "guest/tests/hostile.h"
#include "lib/string.h"
#include "lib/x86.h"

/* VMREAD to memory with CF (flags = 0) or ZF (flags = 1) set before: a
 * successful VMREAD clears both. */
static int vmread_after(int flags, uint64_t enc, uint64_t addr)
{
	bool cf, zf;
	if (flags)
		__asm__ volatile("cmpq %%rsp, %%rsp\n\tvmread %[e], (%[p])"
				 : "=@ccc"(cf), "=@ccz"(zf)
				 : [e] "r"(enc), [p] "r"(addr)
				 : "memory");
	else
		__asm__ volatile("stc\n\tvmread %[e], (%[p])" : "=@ccc"(cf), "=@ccz"(zf) : [e] "r"(enc), [p] "r"(addr) : "memory");
	return vm_flags(cf, zf);
}

HX_TEST(vmx_pointers_nonram)
{
	uint64_t n = hx_nonram_page();
	if (!vmx_prepare())
		return;
	/* VMXON with its region not in RAM: the revision reads all ones. */
	write_cr0(read_cr0() | vcaps.cr0_fixed0);
	write_cr4(read_cr4() | vcaps.cr4_fixed0);
	struct vres r = vx(VX_VMXON, n, 0);
	say("VMXON of a page that is not RAM: %s", r.s);
	CHECK(vr_invalid(&r), "VMfailInvalid expected");
	vmx_end();
	if (!hx_l2_begin())
		return;
	r = vx(VX_VMPTRLD, n, 0);
	say("VMPTRLD of a page that is not RAM: %s", r.s);
	CHECK(vr_valid(&r, 11), "VMfailValid(11) expected");
	r = vx(VX_VMCLEAR, n, 0);
	say("VMCLEAR of a page that is not RAM: %s", r.s);
	CHECK(vr_ok(&r), "VMsucceed expected");
	r = vx(VX_VMPTRST, 0, 0);
	CHECK(vr_ok(&r) && r.out == pa(vmcs_a), "the current VMCS is still vmcs_a");
	struct vres p = vx(VX_VMREAD_PTR, GUEST_RIP, n + 0x10);
	say("VMREAD into a page that is not RAM: %s, it reads %016llx", p.s, (unsigned long long)*(volatile uint64_t *)(n + 0x10));
	CHECK(vr_ok(&p) && *(volatile uint64_t *)(n + 0x10) == ~0ull, "dropped");
	/* New: under VMCS shadowing the VMREAD runs on the CPU and its store
	 * is what exits; 769c975 skipped the instruction without setting its
	 * flags: a VMREAD that succeeded looked failed. */
	int s1 = vmread_after(0, GUEST_RIP, n + 0x18), s2 = vmread_after(1, GUEST_RIP, n + 0x20);
	static const char *const how[3] = { "VMsucceed", "VMfailInvalid", "VMfailValid" };
	say("VMREAD into a page that is not RAM after STC: %s; after a compare that sets ZF: %s", how[s1], how[s2]);
	CHECK(s1 == VM_SUCCEED && s2 == VM_SUCCEED, "VMsucceed clears CF and ZF");
	/* The MSR and I/O bitmaps not in RAM: every access exits. */
	vmw(MSR_BITMAP, n);
	vm_ctl(PROC_CTLS, PROC_IO_BITMAPS, PROC_UNCOND_IO);
	vmw(IO_BITMAP_A, n);
	vm.r.rcx = MSR_IA32_SYSENTER_CS;
	uint32_t rs = hx_run(hx_l2_rdmsr);
	say("RDMSR with the MSR bitmap not in RAM: %s", hx_exit_str(rs, hx_l2_rdmsr));
	CHECK(rs == EXIT_RDMSR, "RDMSR exit expected");
	vm.r.rdx = 0x80;
	vm.r.rdi = pa(hx_pages[0]);
	vm.r.rcx = 1;
	rs = hx_run(hx_l2_rep_insb);
	say("INSB with I/O bitmap A not in RAM: %s, qualification %llx", hx_exit_str(rs, hx_l2_rep_insb),
	    (unsigned long long)vm.x.qual);
	CHECK(rs == EXIT_IO, "I/O exit expected");
	vmw(MSR_BITMAP, pa(msr_bitmap));
	vmw(IO_BITMAP_A, pa(io_bitmap_a));
	/* The entry MSR-load list not in RAM: its first entry is all ones. */
	vmw(ENTRY_MSR_LOAD_ADDR, n);
	vmw(ENTRY_MSR_LOAD_COUNT, 1);
	rs = hx_run(l2_vmcall);
	say("entry MSR-load list not in RAM: %s", hx_exit_str(rs, l2_vmcall));
	CHECK(rs == (EXIT_FAILED_ENTRY | 34) && vm.x.qual == 1, "entry failure 34 expected");
	vmw(ENTRY_MSR_LOAD_COUNT, 0);
	/* The VMCS link pointer at a page that is not RAM. */
	vmw(VMCS_LINK_PTR, n);
	rs = hx_run(l2_vmcall);
	say("VMCS link pointer not in RAM: %s", hx_exit_str(rs, l2_vmcall));
	CHECK(rs == (EXIT_FAILED_ENTRY | EXIT_BAD_GUEST), "entry failure 33 expected");
	vmw(VMCS_LINK_PTR, ~0ull);
	/* The EPT not in RAM: every entry all ones (memory type 7). */
	vmw(EPT_POINTER, n | (3ull << 3) | 6);
	hx_ept_flush();
	rs = hx_run(l2_vmcall);
	say("EPT not in RAM: %s", hx_exit_str(rs, l2_vmcall));
	CHECK(rs == EXIT_EPT_MISCONFIG, "EPT misconfiguration expected");
	vmw(EPT_POINTER, hx_eptp());
	hx_ept_flush();
	rs = hx_run(l2_vmcall);
	say("and back: %s", hx_exit_str(rs, l2_vmcall));
	CHECK(rs == EXIT_VMCALL, "VMCALL exit expected");
	/* The virtual-APIC page not in RAM (TPR shadow): the CPU reads VTPR
	 * there and writes the L2's CR8 there itself, past every EPT - never
	 * into a Nestor's memory (a page that stands in, all ones). */
	if (rdmsr(0x48e) & (1ull << 53)) {
		vm_ctl(PROC_CTLS, PROC_TPR_SHADOW, PROC_CR8_LOAD | PROC_CR8_STORE);
		vmw(VIRTUAL_APIC_ADDR, n);
		vmw(TPR_THRESHOLD, 0);
		vm.r.rdx = 9;
		vm.r.rsi = 1;
		rs = hx_run(l2_cr8);
		say("virtual-APIC page not in RAM: CR8 reads %llx; writing 9 and 1: %s", (unsigned long long)vm.r.rax,
		    hx_exit_str(rs, l2_cr8));
		env("CR8 read back after writing 9: %llx", (unsigned long long)vm.r.rbx);
		CHECK(rs == EXIT_VMCALL && vm.r.rax == 0xf, "VMCALL exit and VTPR 0xf expected");
		CHECK(*(volatile uint64_t *)(n + 0x80) == ~0ull, "the page reads %016llx",
		      (unsigned long long)*(volatile uint64_t *)(n + 0x80));
		vm_ctl(PROC_CTLS, 0, PROC_TPR_SHADOW);
	}
	/* The page-modification log not in RAM: the entries the L2's first
	 * writes make (its stack, the pages of its page tables) are dropped,
	 * the index counts down all the same - never into a Nestor's memory. */
	if (((rdmsr(0x48b) >> 32) & PROC2_PML) && (rdmsr(0x48c) & (1ull << 21))) {
		vmw(EPT_POINTER, hx_eptp() | (1ull << 6));
		hx_ept_flush();
		vm_ctl(PROC2_CTLS, PROC2_PML, 0);
		vmw(PML_ADDR, n);
		vmw(GUEST_PML_INDEX, 511);
		rs = hx_run(l2_vmcall);
		unsigned index = (unsigned)vmr(GUEST_PML_INDEX);
		say("PML log not in RAM: %s, PML index %u", hx_exit_str(rs, l2_vmcall), index);
		CHECK(rs == EXIT_VMCALL && index < 511, "VMCALL exit, entries logged");
		CHECK(*(volatile uint64_t *)(n + 8 * 511) == ~0ull, "the page reads %016llx",
		      (unsigned long long)*(volatile uint64_t *)(n + 8 * 511));
		vm_ctl(PROC2_CTLS, 0, PROC2_PML);
		vmw(EPT_POINTER, hx_eptp());
		hx_ept_flush();
	}
	/* VMCS shadowing with the VMREAD bitmap not in RAM: every VMREAD of
	 * the L2 exits; the shadow VMCS not in RAM: the entry fails (its
	 * revision reads all ones). */
	if ((rdmsr(0x48b) >> 32) & PROC2_SHADOW_VMCS) {
		vm_ctl(PROC2_CTLS, PROC2_SHADOW_VMCS, 0);
		vmw(VMREAD_BITMAP, n);
		vmw(VMWRITE_BITMAP, n);
		vm.r.rbx = GUEST_RIP;
		vm.r.r8 = GUEST_RIP;
		vm.r.r9 = GUEST_RIP;
		vm.r.r10 = pa(hx_pages[0]);
		rs = hx_run(l2_shadow);
		say("VMREAD bitmap not in RAM: %s", hx_exit_str(rs, l2_shadow));
		CHECK(rs == EXIT_VMREAD, "VMREAD exit expected");
		vmw(VMCS_LINK_PTR, n);
		rs = hx_run(l2_shadow);
		say("shadow VMCS not in RAM: %s", hx_exit_str(rs, l2_shadow));
		CHECK(rs == (EXIT_FAILED_ENTRY | EXIT_BAD_GUEST), "entry failure 33 expected");
		vmw(VMCS_LINK_PTR, ~0ull);
		vm_ctl(PROC2_CTLS, 0, PROC2_SHADOW_VMCS);
	}
	/* The EPTP list not in RAM: its entries read all ones, not a valid
	 * EPT pointer - the L2's EPTP switch exits. */
	uint64_t vmfunc_caps = 0;
	if (((rdmsr(0x48b) >> 32) & (1u << 13)) && rdmsr_safe(0x491, &vmfunc_caps) && (vmfunc_caps & 1)) {
		vm_ctl(PROC2_CTLS, 1u << 13, 0);
		vmw(VMFUNC_CTLS, 1);
		vmw(EPTP_LIST_ADDR, n);
		vm.r.rax = 0;
		vm.r.rcx = 3;
		vm.r.rbx = pa(hx_pages[0]);
		rs = hx_run(l2_vmfunc);
		say("EPTP list not in RAM: %s; EPT pointer unchanged %s", hx_exit_str(rs, l2_vmfunc),
		    vmr(EPT_POINTER) == hx_eptp() ? "yes" : "no");
		CHECK(rs == 59 && vmr(EPT_POINTER) == hx_eptp(), "VMFUNC exit expected");
		vm_ctl(PROC2_CTLS, 0, 1u << 13);
	}
	hx_l2_end();
}
