/* vmx_vmfunc.c - VM functions and virtualization exceptions seen from the
 * L2 (suite vmx_exits; SDM 25.5.6.3, 25.5.7, 26.2.1.1, 30.3 VMFUNC).
 * EPTP switching, the one VM function of the Bochs models: the L1 builds a
 * second EPT where the page ept_probe maps to another page, lists both in
 * its EPTP list, and lets the L2 switch between them without exits; what is
 * refused exits (VMFUNC, 59) or is #UD.  EPT-violation #VE: a violation of
 * an entry whose suppress-#VE bit is clear becomes a #VE in the L2, its
 * information written to the L1's area - unless the area is busy. */
#include "guest/vmx.h"
#include "guest/test.h"
#include "lib/string.h"
#include "lib/x86.h"

#define PROC2_VMFUNC (1u << 13)
#define PROC2_EPT_VE (1u << 18)
#define EPT_ADDR(e) ((e) & 0x000ffffffffff000ull)

static uint64_t alt_pml4[512] __attribute__((aligned(4096)));
static uint64_t alt_pdpt[512] __attribute__((aligned(4096)));
static uint64_t alt_pd[512] __attribute__((aligned(4096)));
static uint64_t alt_pt[512] __attribute__((aligned(4096)));
static uint8_t alt_page[4096] __attribute__((aligned(4096)));
static uint64_t eptp_list[512] __attribute__((aligned(4096)));

/* The EPT of vm_setup again, but with ept_probe's page mapped to alt_page. */
static uint64_t alt_ept(void)
{
	uint64_t a = pa(ept_probe);
	const uint64_t *pml4 = (const uint64_t *)EPT_ADDR(ept_pointer());
	const uint64_t *pdpt = (const uint64_t *)EPT_ADDR(pml4[0]);
	const uint64_t *pd = (const uint64_t *)EPT_ADDR(pdpt[(a >> 30) & 511]);
	const uint64_t *pt = (const uint64_t *)EPT_ADDR(pd[(a >> 21) & 511]);
	memcpy(alt_pml4, pml4, 4096);
	memcpy(alt_pdpt, pdpt, 4096);
	memcpy(alt_pd, pd, 4096);
	memcpy(alt_pt, pt, 4096);
	alt_pml4[0] = pa(alt_pdpt) | (pml4[0] & 0xfff);
	alt_pdpt[(a >> 30) & 511] = pa(alt_pd) | (pdpt[(a >> 30) & 511] & 0xfff);
	alt_pd[(a >> 21) & 511] = pa(alt_pt) | (pd[(a >> 21) & 511] & 0xfff);
	alt_pt[(a >> 12) & 511] = pa(alt_page) | (pt[(a >> 12) & 511] & 0xfff);
	return pa(alt_pml4) | (ept_pointer() & 0xfff);
}

static const char *which(uint64_t v) { return v == 0x1111 ? "ept_probe" : v == 0x2222 ? "alt_page" : "?"; }

/* Runs l2_vmfunc with EAX fn, ECX index; prints the outcome. */
static uint32_t vmfunc(const char *what, uint64_t fn, uint64_t index)
{
	vm_at(l2_vmfunc, RFLAGS_FIXED);
	vm.r.rax = fn;
	vm.r.rcx = index;
	vm.r.rbx = pa(ept_probe);
	vm.r.r8 = vm.r.r9 = 0;
	uint32_t rs = vm_go();
	uint64_t eptp = vmr(EPT_POINTER);
	const char *now = eptp == ept_pointer() ? "the first" : eptp == eptp_list[1] ? "the second" : "another";
	if (rs == EXIT_VMCALL)
		say("%s: no exit; the L2 read %s before, %s after; EPT pointer %s", what, which(vm.r.r8),
		    which(vm.r.r9), now);
	else if (rs == EXIT_EXC_NMI)
		say("%s: exception %u in the L2 at +%ld; EPT pointer %s", what, vm.x.intr_info & 0xff,
		    rip_off(l2_vmfunc), now);
	else
		say("%s: exit %u (%s) at +%ld, qualification %llx, length %u; EPT pointer %s", what, rs, exit_name(rs),
		    rip_off(l2_vmfunc), (unsigned long long)vm.x.qual, vm.x.len, now);
	return rs;
}

TEST(vmx_exits, vmfunc_eptp_switching)
{
	if (!vm_begin())
		return;
	uint64_t caps = 0;
	bool have = ((rdmsr(MSR_VMX_PROCBASED2) >> 32) & PROC2_VMFUNC) && rdmsr_safe(0x491, &caps) && (caps & 1);
	if (vm_lacks(have, "EPTP switching"))
		return;
	say("IA32_VMX_VMFUNC %llx", (unsigned long long)caps);
	*(volatile uint64_t *)ept_probe = 0x1111;
	*(volatile uint64_t *)alt_page = 0x2222;
	memset(eptp_list, 0, sizeof(eptp_list));
	eptp_list[0] = ept_pointer();
	eptp_list[1] = alt_ept();
	eptp_list[2] = (ept_pointer() & ~0x38ull) | (2ull << 3); /* a 3-level walk: invalid */
	vmw(EXCEPTION_BITMAP, 1u << 6);

	/* VM functions disabled: VMFUNC is #UD. */
	uint32_t rs = vmfunc("VM functions off", 0, 1);
	CHECK(rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == 6, "expected #UD");

	vm_ctl(PROC2_CTLS, PROC2_VMFUNC, 0);
	vmw(EPTP_LIST_ADDR, pa(eptp_list));
	/* Entry checks: functions not supported, the list's address. */
	vmw(VMFUNC_CTLS, 3);
	rs = vm_go();
	say("VM-function controls 3 (function 1 not supported): %s", rs == GO_FAILED ? vm.go.s : exit_name(rs));
	CHECK(rs == GO_FAILED && vr_valid(&vm.go, 7), "expected VMfailValid(7)");
	vmw(VMFUNC_CTLS, 1);
	vmw(EPTP_LIST_ADDR, pa(eptp_list) + 8);
	rs = vm_go();
	say("EPTP-list address not 4 KiB aligned: %s", rs == GO_FAILED ? vm.go.s : exit_name(rs));
	CHECK(rs == GO_FAILED && vr_valid(&vm.go, 7), "expected VMfailValid(7)");
	vmw(EPTP_LIST_ADDR, pa(eptp_list));

	rs = vmfunc("EPTP switch to entry 1", 0, 1);
	CHECK(rs == EXIT_VMCALL && vm.r.r8 == 0x1111 && vm.r.r9 == 0x2222 && vmr(EPT_POINTER) == eptp_list[1],
	      "switched to the second EPT");
	/* The EPTP index field is #VE's: written where the CPU has #VE. */
	if ((rdmsr(MSR_VMX_PROCBASED2) >> 32) & PROC2_EPT_VE)
		say("EPTP index %llu", (unsigned long long)vmr(EPTP_INDEX));
	rs = vmfunc("EPTP switch to entry 0", 0, 0);
	CHECK(rs == EXIT_VMCALL && vm.r.r8 == 0x2222 && vm.r.r9 == 0x1111 && vmr(EPT_POINTER) == eptp_list[0],
	      "switched back");
	rs = vmfunc("EPTP switch to the current entry", 0, 0);
	CHECK(rs == EXIT_VMCALL && vm.r.r9 == 0x1111, "no change");
	/* Refused: an index beyond the list, an invalid EPT pointer, a function
	 * not enabled - VM exits, nothing changed; EAX >= 64 - #UD. */
	rs = vmfunc("index 512", 0, 512);
	CHECK(rs == 59 && rip_off(l2_vmfunc) == 3, "expected a VMFUNC exit");
	rs = vmfunc("index 2, an invalid EPT pointer", 0, 2);
	CHECK(rs == 59, "expected a VMFUNC exit");
	rs = vmfunc("function 1", 1, 0);
	CHECK(rs == 59, "expected a VMFUNC exit");
	rs = vmfunc("function 64", 64, 0);
	CHECK(rs == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == 6, "expected #UD");
	/* The index is read as 32 bits. */
	rs = vmfunc("index 1 with bit 32 set", 0, (1ull << 32) | 1);
	CHECK(rs == EXIT_VMCALL && vm.r.r9 == 0x2222, "switched");
	static struct inv_desc d;
	struct vres r = vx(VX_INVEPT, 2, pa(&d));
	CHECK(vr_ok(&r), "INVEPT: %s", r.s);
	vmx_end();
}

/* --- EPT-violation #VE ------------------------------------------------------ */
static uint8_t ve_area[4096] __attribute__((aligned(4096)));

static void ve_run(const char *what)
{
	vm_at(l2_read_rbx, RFLAGS_FIXED);
	vm.r.rbx = pa(ept_probe) + 0x18;
	l2_event.count = 0;
	uint32_t rs = vm_go();
	const uint32_t *w = (const uint32_t *)ve_area;
	const uint64_t *q = (const uint64_t *)ve_area;
	if (rs == EXIT_VMCALL && l2_event.count == 1)
		say("%s: #VE in the L2: vector %llu, error %s, at +%ld; the area: reason %u, word %x, qualification %llx, "
		    "linear %s, physical +%llx, EPTP index %u", what, (unsigned long long)l2_event.vector,
		    l2_event.error == ~0ull ? "none" : "pushed", (long)(l2_event.rip - pa(l2_read_rbx)), w[0], w[1],
		    (unsigned long long)q[1], q[2] == vm.r.rbx ? "the address read" : "another",
		    (unsigned long long)(q[3] - pa(ept_probe)), *(const uint16_t *)(ve_area + 32));
	else if (rs == EXIT_EXC_NMI)
		say("%s: exception exit, vector %u type %u error code %s, at +%ld; the area's word %x", what,
		    vm.x.intr_info & 0xff, (vm.x.intr_info >> 8) & 7, (vm.x.intr_info & INTR_ERRCODE) ? "yes" : "no",
		    rip_off(l2_read_rbx), w[1]);
	else
		say("%s: exit %u (%s) at +%ld, qualification %llx, guest-physical +%llx; the area's word %x", what, rs,
		    exit_name(rs), rip_off(l2_read_rbx), (unsigned long long)vm.x.qual,
		    (unsigned long long)(vm.x.gpa - pa(ept_probe)), w[1]);
}

static void flush_ept(void)
{
	static struct inv_desc d;
	struct vres r = vx(VX_INVEPT, 2, pa(&d));
	CHECK(vr_ok(&r), "INVEPT: %s", r.s);
}

TEST(vmx_exits, ept_violation_ve)
{
	if (!vm_begin() || vm_lacks((rdmsr(MSR_VMX_PROCBASED2) >> 32) & PROC2_EPT_VE, "EPT-violation #VE"))
		return;
	memset(ve_area, 0, sizeof(ve_area));
	vm_ctl(PROC2_CTLS, PROC2_EPT_VE, 0);
	vmw(VE_INFO_ADDR, pa(ve_area) + 8);
	vm_at(l2_read_rbx, RFLAGS_FIXED);
	uint32_t rs = vm_go();
	say("#VE information address not 4 KiB aligned: %s", rs == GO_FAILED ? vm.go.s : exit_name(rs));
	CHECK(rs == GO_FAILED && vr_valid(&vm.go, 7), "expected VMfailValid(7)");
	vmw(VE_INFO_ADDR, pa(ve_area));
	/* 0: Bochs 2.7 writes the index it last switched to by VMFUNC, never
	 * the field's value that VM entry loads (docs/testing.md). */
	vmw(EPTP_INDEX, 0);
	uint64_t *pte = ept_probe_pte(), saved = *pte;
	*pte = saved & ~7ull; /* not present, suppress #VE clear */
	flush_ept();
	ve_run("read of a page the EPT does not map");
	CHECK(l2_event.count == 1 && l2_event.vector == 20 && ve_area[4] == 0xff, "expected a #VE");
	ve_run("again, the area busy");
	CHECK(vm.x.reason == EXIT_EPT_VIOLATION, "expected an EPT violation exit");
	memset(ve_area, 0, 8);
	*pte = (saved & ~7ull) | (1ull << 63);
	flush_ept();
	ve_run("suppress #VE set");
	CHECK(vm.x.reason == EXIT_EPT_VIOLATION, "expected an EPT violation exit");
	*pte = (saved & ~7ull) | EPT_R | EPT_X; /* readable, not writable: a write violates */
	flush_ept();
	vm_at(l2_write_rbx, RFLAGS_FIXED);
	vm.r.rbx = pa(ept_probe) + 0x20;
	l2_event.count = 0;
	rs = vm_go();
	say("write of a read-only page: %s, vector %llu; the area: qualification %llx",
	    rs == EXIT_VMCALL && l2_event.count == 1 ? "#VE in the L2" : exit_name(rs),
	    (unsigned long long)l2_event.vector, (unsigned long long)((const uint64_t *)ve_area)[1]);
	CHECK(rs == EXIT_VMCALL && l2_event.vector == 20, "expected a #VE");
	memset(ve_area, 0, 8);
	*pte = saved & ~7ull;
	flush_ept();
	vmw(EXCEPTION_BITMAP, 1u << 20);
	ve_run("#VE intercepted by the L1");
	CHECK(vm.x.reason == EXIT_EXC_NMI && (vm.x.intr_info & 0xff) == 20, "expected a #VE exit");
	vmw(EXCEPTION_BITMAP, 0);
	*pte = saved;
	flush_ept();
	vmx_end();
}
