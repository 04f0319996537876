/* snapshot.c - snapshots of this guest (docs/snapshots.md): taken, changed,
 * restored and checked byte by byte and register by register, 100 times in
 * a row with each method; with the VMX conformance suite run between
 * snapshot and restore; with a VMX state to bring back; and a snapshot the
 * pool cannot hold, refused.  Needs Nestor with snap_pool= (lines about the
 * environment are env: lines; without a pool or a Nestor the tests say so
 * and pass).
 *
 * A restore brings the guest back into the snapshot's VMCALL, which returns
 * a second time (like setjmp): everything this code has done since is
 * undone - memory, registers, its own failure counters.  So what must
 * survive a restore travels in the restore's value (RCX on return). */
#include "guest/apic.h"
#include "guest/kernel.h"
#include "guest/nestor.h"
#include "guest/test.h"
#include "guest/vmx.h"
#include "lib/x86.h"

#define REGION_PAGES 256 /* 1 MiB of this guest's memory, checked word by word */
#define ROUNDS 100

#define REGION_SIZE ((uint64_t)REGION_PAGES * 4096)

/* The first MiB-aligned stretch of RAM at or above 16 MiB (above this
 * kernel) that the memory map says is available and no module occupies,
 * below 4 GiB (PRD addresses are 32-bit; the kernel maps its first GiBs one
 * to one).  Fixed at 16 MiB it could fall into a Nestor's snapshot pool,
 * which the map shows reserved: where the pool lands moves with the size of
 * the images below it. */
static uint8_t *region_base(void)
{
	static uint64_t at;
	for (unsigned i = 0; !at && i < boot_info.n_mmap; i++) {
		const struct mb2_mmap_entry *e = &boot_info.mmap[i];
		if (e->type != MB2_MEM_AVAILABLE)
			continue;
		uint64_t a = e->base < 0x1000000 ? 0x1000000 : (e->base + 0xfffff) & ~0xfffffull;
		for (; !at && a + REGION_SIZE <= e->base + e->len && a + REGION_SIZE <= (1ull << 32); a += 0x100000) {
			bool free = true;
			for (unsigned m = 0; m < boot_info.n_modules; m++)
				free &= boot_info.modules[m].end <= a || boot_info.modules[m].start >= a + REGION_SIZE;
			if (free)
				at = a;
		}
	}
	if (!at)
		at = 0x1000000; /* no map: where it always was */
	return (uint8_t *)at;
}
#define region (region_base())

/* The registers the snapshot call loads with patterns and reads back. */
struct snap_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t xmm[16][2];
};

static struct snap_regs snap_out;

static uint64_t pattern_reg(unsigned i) { return 0x5eed000000000000ull ^ (0x0101010101010101ull * (i + 1)); }

/* VMCALL NESTOR_HC_SNAPSHOT with every other general register and XMM0-15
 * set to patterns, all of them stored right after it returns - the first
 * time, and again after each restore. */
static void snap_call(uint64_t method, struct snap_regs *out)
{
	uint64_t fn = NESTOR_HC_SNAPSHOT;
	static uint64_t in[12];
	static uint64_t xin[16][2];
	for (unsigned i = 0; i < 12; i++)
		in[i] = pattern_reg(i);
	for (unsigned i = 0; i < 16; i++)
		xin[i][0] = pattern_reg(20 + i), xin[i][1] = ~pattern_reg(40 + i);
	__asm__ volatile("movdqu 0(%[x]), %%xmm0\n\tmovdqu 16(%[x]), %%xmm1\n\t"
			 "movdqu 32(%[x]), %%xmm2\n\tmovdqu 48(%[x]), %%xmm3\n\t"
			 "movdqu 64(%[x]), %%xmm4\n\tmovdqu 80(%[x]), %%xmm5\n\t"
			 "movdqu 96(%[x]), %%xmm6\n\tmovdqu 112(%[x]), %%xmm7\n\t"
			 "movdqu 128(%[x]), %%xmm8\n\tmovdqu 144(%[x]), %%xmm9\n\t"
			 "movdqu 160(%[x]), %%xmm10\n\tmovdqu 176(%[x]), %%xmm11\n\t"
			 "movdqu 192(%[x]), %%xmm12\n\tmovdqu 208(%[x]), %%xmm13\n\t"
			 "movdqu 224(%[x]), %%xmm14\n\tmovdqu 240(%[x]), %%xmm15\n\t"
			 :
			 : [x] "r"(xin)
			 : "memory");
	__asm__ volatile("push %%rbp\n\t"
			 "lea %[in], %%rbp\n\t"
			 "mov 0(%%rbp), %%rdx\n\tmov 8(%%rbp), %%rsi\n\tmov 16(%%rbp), %%rdi\n\t"
			 "mov 24(%%rbp), %%r8\n\tmov 32(%%rbp), %%r9\n\tmov 40(%%rbp), %%r10\n\t"
			 "mov 48(%%rbp), %%r11\n\tmov 56(%%rbp), %%r12\n\tmov 64(%%rbp), %%r13\n\t"
			 "mov 72(%%rbp), %%r14\n\tmov 80(%%rbp), %%r15\n\t"
			 "vmcall\n\t"
			 "lea %[out], %%rbp\n\t"
			 "mov %%rax, 0(%%rbp)\n\tmov %%rbx, 8(%%rbp)\n\tmov %%rcx, 16(%%rbp)\n\t"
			 "mov %%rdx, 24(%%rbp)\n\tmov %%rsi, 32(%%rbp)\n\tmov %%rdi, 40(%%rbp)\n\t"
			 "mov %%r8, 48(%%rbp)\n\tmov %%r9, 56(%%rbp)\n\tmov %%r10, 64(%%rbp)\n\t"
			 "mov %%r11, 72(%%rbp)\n\tmov %%r12, 80(%%rbp)\n\tmov %%r13, 88(%%rbp)\n\t"
			 "mov %%r14, 96(%%rbp)\n\tmov %%r15, 104(%%rbp)\n\t"
			 "movdqu %%xmm0, 112(%%rbp)\n\tmovdqu %%xmm1, 128(%%rbp)\n\t"
			 "movdqu %%xmm2, 144(%%rbp)\n\tmovdqu %%xmm3, 160(%%rbp)\n\t"
			 "movdqu %%xmm4, 176(%%rbp)\n\tmovdqu %%xmm5, 192(%%rbp)\n\t"
			 "movdqu %%xmm6, 208(%%rbp)\n\tmovdqu %%xmm7, 224(%%rbp)\n\t"
			 "movdqu %%xmm8, 240(%%rbp)\n\tmovdqu %%xmm9, 256(%%rbp)\n\t"
			 "movdqu %%xmm10, 272(%%rbp)\n\tmovdqu %%xmm11, 288(%%rbp)\n\t"
			 "movdqu %%xmm12, 304(%%rbp)\n\tmovdqu %%xmm13, 320(%%rbp)\n\t"
			 "movdqu %%xmm14, 336(%%rbp)\n\tmovdqu %%xmm15, 352(%%rbp)\n\t"
			 "pop %%rbp\n\t"
			 : "+a"(fn), [out] "=m"(snap_out)
			 : [in] "m"(in), "b"(method)
			 : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "memory");
	*out = snap_out;
	/* No XMM clobbers: this kernel is built without SSE, so the compiler
	 * keeps nothing in them. */
}

/* How many registers differ from the patterns (RAX, RBX, RCX carry the
 * call's results). */
static unsigned regs_wrong(const struct snap_regs *r)
{
	const uint64_t *g = &r->rdx;
	unsigned bad = 0;
	for (unsigned i = 0; i < 11; i++)
		bad += g[i] != pattern_reg(i);
	for (unsigned i = 0; i < 16; i++)
		bad += r->xmm[i][0] != pattern_reg(20 + i) || r->xmm[i][1] != ~pattern_reg(40 + i);
	return bad;
}

static uint64_t pattern_word(uint64_t i, unsigned seed) { return (i * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)seed << 56); }

static void fill(unsigned seed)
{
	uint64_t *w = (uint64_t *)region;
	for (uint64_t i = 0; i < REGION_SIZE / 8; i++)
		w[i] = pattern_word(i, seed);
}

/* Words of the region that differ from the pattern. */
static uint64_t words_wrong(unsigned seed)
{
	const uint64_t *w = (const uint64_t *)region;
	uint64_t bad = 0;
	for (uint64_t i = 0; i < REGION_SIZE / 8; i++)
		bad += w[i] != pattern_word(i, seed);
	return bad;
}

/* SSE for the XMM checks, XSAVE with what the CPU has for XCR0. */
static uint64_t xcr0_full;
static void fpu_on(void)
{
	uint64_t cr4 = read_cr4() | CR4_OSFXSR | (1ul << 10); /* OSXMMEXCPT */
	struct cpuid_regs r = cpuid(1, 0);
	if (r.ecx & (1u << 26))
		cr4 |= CR4_OSXSAVE;
	write_cr4(cr4);
	xcr0_full = 0;
	if (cr4 & CR4_OSXSAVE) {
		xcr0_full = 3 | ((r.ecx & (1u << 28)) ? 4 : 0); /* x87, SSE, AVX */
		__asm__ volatile("xsetbv" ::"c"(0), "a"((uint32_t)xcr0_full), "d"(0u));
	}
}

static uint64_t read_xcr0(void) { return xcr0_full ? xgetbv(0) : 0; }

static bool pool_available(void)
{
	if (!nestor_present()) {
		env("no Nestor below: no snapshots");
		return false;
	}
	struct hc_result r = nestor_hypercall(NESTOR_HC_SNAP_INFO, 0, 0, 0);
	if (r.status != NESTOR_OK || r.rcx == 0) {
		env("no snapshot pool (snap_pool=0)");
		return false;
	}
	env("snapshot pool: %llu of %llu pages in use", (unsigned long long)r.rbx, (unsigned long long)r.rcx);
	fpu_on(); /* snap_call loads XMM registers */
	return true;
}

/* ROUNDS restores of one snapshot: each round changes memory (a tenth of
 * the region, or all of it every 25th round), registers, XMM, XCR0, CR0
 * (CD, NW), CR4 and two MSRs, then restores; after each restore everything
 * is checked. */
static void rounds(uint64_t method, const char *name)
{
	if (!pool_available())
		return;
	fill(1);
	uint64_t kgs = 0x1234567800ull, lstar = rdmsr(MSR_LSTAR);
	wrmsr(MSR_KERNEL_GS_BASE, kgs);
	uint64_t cr0 = read_cr0(), cr4 = read_cr4(), xcr0 = read_xcr0();
	uint64_t used_before = nestor_hypercall(NESTOR_HC_SNAP_INFO, 0, 0, 0).rbx;

	struct snap_regs out;
	snap_call(method, &out);
	uint64_t id = out.rbx;
	uint64_t round = 0, bad = 0;
	if (out.rax == NESTOR_OK) {
		env("%s: snapshot %llu taken", name, (unsigned long long)id);
		bad += regs_wrong(&out) != 0;
	} else if (out.rax == NESTOR_SNAP_RESTORED) {
		round = out.rcx >> 32;
		bad = out.rcx & 0xffffffff;
		bad += regs_wrong(&out) != 0;
		bad += words_wrong(1) != 0;
		bad += read_cr0() != cr0 || read_cr4() != cr4 || read_xcr0() != xcr0;
		bad += rdmsr(MSR_KERNEL_GS_BASE) != kgs || rdmsr(MSR_LSTAR) != lstar;
	} else {
		CHECK(false, "%s: snapshot refused: status %lld", name, (long long)(int64_t)out.rax);
		return;
	}
	if (round < ROUNDS) {
		/* Change everything a restore must put back, then restore. */
		for (uint64_t p = round % 10; p < REGION_PAGES; p += 10)
			for (unsigned i = 0; i < 4096; i += 64)
				region[p * 4096 + i] ^= 0xa5;
		if (round % 25 == 24)
			fill(2);
		wrmsr(MSR_KERNEL_GS_BASE, kgs + round + 1);
		wrmsr(MSR_LSTAR, lstar + 16);
		write_cr4(cr4 & ~(1ul << 10));
		write_cr0(cr0 ^ (CR0_CD | CR0_NW)); /* both flip: always a valid pair */
		if (xcr0_full)
			__asm__ volatile("xsetbv" ::"c"(0), "a"(3u), "d"(0u));
		__asm__ volatile("pxor %%xmm3, %%xmm3\n\tpcmpeqb %%xmm9, %%xmm9" ::: "memory");
		struct hc_result r = nestor_hypercall(NESTOR_HC_RESTORE, id, (round + 1) << 32 | bad, 0);
		CHECK(false, "%s: restore returned: status %lld", name, (long long)r.status);
		return;
	}
	say("%s: %u restores of one snapshot, memory, registers, XMM, XCR0, CR0, CR4, MSRs checked after each: %llu "
	    "rounds wrong",
	    name, ROUNDS, (unsigned long long)bad);
	CHECK(bad == 0, "%s: %llu rounds found something not restored", name, (unsigned long long)bad);
	struct hc_result info = nestor_hypercall(NESTOR_HC_SNAP_INFO, id, 0, 0);
	env("%s: the snapshot holds %llu pages; taking it cost %llu ticks in Nestor", name,
	    (unsigned long long)info.rbx, (unsigned long long)info.rdx);
	CHECK(nestor_hypercall(NESTOR_HC_SNAP_DROP, id, 0, 0).status == NESTOR_OK, "drop failed");
	uint64_t used_after = nestor_hypercall(NESTOR_HC_SNAP_INFO, 0, 0, 0).rbx;
	CHECK(used_after == used_before, "%s: pool pages in use %llu before, %llu after the drop", name,
	      (unsigned long long)used_before, (unsigned long long)used_after);
	CHECK(nestor_hypercall(NESTOR_HC_RESTORE, id, 0, 0).status == NESTOR_ENOENT, "restore of a dropped snapshot");
}

TEST(snapshot, restore_cow) { rounds(NESTOR_SNAP_COW, "cow"); }
TEST(snapshot, restore_copy) { rounds(NESTOR_SNAP_COPY, "copy"); }

/* Two snapshots kept at once, of both kinds: restoring the older one after
 * the newer, then the newer again. */
TEST(snapshot, two_kept)
{
	if (!pool_available())
		return;
	fill(3);
	struct snap_regs out;
	snap_call(NESTOR_SNAP_COPY, &out);
	uint64_t a = out.rbx;
	uint64_t stage = out.rax == NESTOR_SNAP_RESTORED ? out.rcx : 0;
	if (out.rax != NESTOR_OK && out.rax != NESTOR_SNAP_RESTORED) {
		CHECK(false, "snapshot A refused: %lld", (long long)(int64_t)out.rax);
		return;
	}
	if (stage == 0) {
		fill(4);
		snap_call(NESTOR_SNAP_COW, &out);
		uint64_t b = out.rbx;
		if (out.rax == NESTOR_OK) {
			fill(5);
			nestor_hypercall(NESTOR_HC_RESTORE, a, 1 | b << 8, 0); /* back to A */
			CHECK(false, "restore A returned");
			return;
		}
		/* Back in B (stage 2): B's memory; RCX carries what A's check found. */
		CHECK(out.rax == NESTOR_SNAP_RESTORED, "snapshot B: status %lld", (long long)(int64_t)out.rax);
		CHECK(out.rcx >> 8 == 0, "after restoring A: %llu words wrong", (unsigned long long)(out.rcx >> 8));
		CHECK(words_wrong(4) == 0, "after restoring B: %llu words wrong", (unsigned long long)words_wrong(4));
		nestor_hypercall(NESTOR_HC_SNAP_DROP, b, 0, 0);
		CHECK(nestor_hypercall(NESTOR_HC_SNAP_DROP, a, 0, 0).status == NESTOR_OK, "drop A");
		say("two snapshots: A (copy) restored after B (cow) was taken, then B restored");
		return;
	}
	/* Back in A (stage 1): A's memory (checked after the next restore);
	 * then to B, taken after A. */
	uint64_t b = stage >> 8;
	struct hc_result r = nestor_hypercall(NESTOR_HC_RESTORE, b, 2 | words_wrong(3) << 8, 0);
	CHECK(false, "restore B returned %lld", (long long)r.status);
}

/* The VMX conformance suite between snapshot and restore: the guest is a
 * hypervisor meanwhile; afterwards its memory is the snapshot's and the
 * suite passes again. */
static void vmx_between(uint64_t method, const char *name)
{
	if (!pool_available())
		return;
	if (!(cpuid(1, 0).ecx & (1u << 5))) {
		env("%s: no VMX offered", name);
		return;
	}
	fill(6);
	struct snap_regs out;
	snap_call(method, &out);
	if (out.rax == NESTOR_OK) {
		unsigned failed = run_tests_nested("vmx");
		fill(7);
		nestor_hypercall(NESTOR_HC_RESTORE, out.rbx, 1ull << 32 | failed, 0);
		CHECK(false, "%s: restore returned", name);
		return;
	}
	CHECK(out.rax == NESTOR_SNAP_RESTORED, "%s: snapshot refused: %lld", name, (long long)(int64_t)out.rax);
	unsigned before = out.rcx & 0xffffffff;
	CHECK(before == 0, "%s: %u VMX tests failed between snapshot and restore", name, before);
	CHECK(words_wrong(6) == 0, "%s: %llu words wrong after the restore", name, (unsigned long long)words_wrong(6));
	unsigned after = run_tests_nested("vmx");
	CHECK(after == 0, "%s: %u VMX tests failed after the restore", name, after);
	say("%s: VMX suite run between snapshot and restore, and again after it", name);
	nestor_hypercall(NESTOR_HC_SNAP_DROP, out.rbx, 0, 0);
}

TEST(snapshot, vmx_between_cow) { vmx_between(NESTOR_SNAP_COW, "cow"); }
TEST(snapshot, vmx_between_copy) { vmx_between(NESTOR_SNAP_COPY, "copy"); }

/* In VMX operation with a current VMCS at the snapshot: after VMCLEAR,
 * VMXOFF and a restore, the guest is in VMX operation again with the same
 * current VMCS and the field value it had. */
TEST(snapshot, vmx_state)
{
	if (!pool_available())
		return;
	if (!(cpuid(1, 0).ecx & (1u << 5))) {
		env("no VMX offered");
		return;
	}
	if (!vmx_begin())
		return;
	vmcs_init_page(vmcs_a, vcaps.rev);
	struct vres r = vx(VX_VMCLEAR, pa(vmcs_a), 0);
	r = vx(VX_VMPTRLD, pa(vmcs_a), 0);
	CHECK(vr_ok(&r), "VMPTRLD: %s", r.s);
	r = vx(VX_VMWRITE, GUEST_RIP, 0x1111);
	struct snap_regs out;
	snap_call(NESTOR_SNAP_COW, &out);
	if (out.rax == NESTOR_OK) {
		vx(VX_VMWRITE, GUEST_RIP, 0x2222);
		vx(VX_VMCLEAR, pa(vmcs_a), 0);
		vx(VX_VMXOFF, 0, 0);
		nestor_hypercall(NESTOR_HC_RESTORE, out.rbx, 0, 0);
		CHECK(false, "restore returned");
		vmx_end();
		return;
	}
	CHECK(out.rax == NESTOR_SNAP_RESTORED, "snapshot refused: %lld", (long long)(int64_t)out.rax);
	uint64_t ptr = 0;
	r = vx(VX_VMPTRST, 0, 0);
	ptr = r.out;
	CHECK(vr_ok(&r) && ptr == pa(vmcs_a), "VMPTRST after the restore: %s, 0x%llx", r.s, (unsigned long long)ptr);
	r = vx(VX_VMREAD, GUEST_RIP, 0);
	CHECK(vr_ok(&r) && r.out == 0x1111, "VMREAD GUEST_RIP after the restore: %s, 0x%llx", r.s,
	      (unsigned long long)r.out);
	say("in VMX operation again after the restore, same current VMCS, GUEST_RIP as at the snapshot");
	nestor_hypercall(NESTOR_HC_SNAP_DROP, out.rbx, 0, 0);
	vmx_end();
}

/* The local APIC is the guest's (passed through) and part of what a
 * snapshot holds: TPR, SVR, the LVT entries, the timer's divide
 * configuration and initial count, LDR and DFR as at the snapshot after a
 * restore (docs/snapshots.md: what cannot be put back). */
static const struct {
	unsigned off;
	uint32_t at_snapshot, after;
} apic_regs[] = {
	{ 0x80, 0x20, 0x30 },	     /* TPR */
	{ 0xd0, 0x03000000, 0x05000000 }, /* LDR */
	{ 0xe0, 0x0fffffff, 0xffffffff }, /* DFR: cluster, then flat */
	{ 0xf0, 0x1fe, 0x1ff },	     /* SVR: enabled, spurious vector */
	{ 0x320, 0x30044, 0x10055 },     /* LVT timer: masked periodic, then one-shot */
	{ 0x350, 0x10046, 0x10047 },     /* LVT LINT0 */
	{ 0x370, 0x10048, 0x10049 },     /* LVT error */
	{ 0x3e0, 0x3, 0xb },	     /* divide by 16, then by 1 */
	{ 0x380, 0x7fffffff, 0 },	     /* initial count: counting, then stopped */
};
#define APIC_REG(off) (*(volatile uint32_t *)(APIC_BASE + (off)))

TEST(snapshot, apic_state)
{
	if (!pool_available())
		return;
	uint32_t saved[sizeof(apic_regs) / sizeof(apic_regs[0])];
	const unsigned n = sizeof(apic_regs) / sizeof(apic_regs[0]);
	for (unsigned i = 0; i < n; i++) {
		saved[i] = APIC_REG(apic_regs[i].off);
		APIC_REG(apic_regs[i].off) = apic_regs[i].at_snapshot;
	}
	struct snap_regs out;
	snap_call(NESTOR_SNAP_COW, &out);
	if (out.rax == NESTOR_OK) {
		for (unsigned i = 0; i < n; i++)
			APIC_REG(apic_regs[i].off) = apic_regs[i].after;
		nestor_hypercall(NESTOR_HC_RESTORE, out.rbx, 0, 0);
		CHECK(false, "restore returned");
		return;
	}
	CHECK(out.rax == NESTOR_SNAP_RESTORED, "snapshot refused: %lld", (long long)(int64_t)out.rax);
	unsigned wrong = 0;
	for (unsigned i = 0; i < n; i++) {
		uint32_t now = APIC_REG(apic_regs[i].off);
		/* (The LDR's and DFR's reserved bits read as the APIC has them.) */
		if (now != apic_regs[i].at_snapshot) {
			say("APIC register %03x after the restore: %08x, at the snapshot %08x", apic_regs[i].off, now,
			    apic_regs[i].at_snapshot);
			wrong++;
		}
	}
	bool counting = APIC_REG(0x390) != 0;
	say("local APIC after the restore: %u of %u registers as at the snapshot, its timer %s", n - wrong, n,
	    counting ? "counting" : "stopped");
	CHECK(wrong == 0 && counting, "%u APIC registers not restored", wrong);
	for (unsigned i = n; i-- > 0;)
		APIC_REG(apic_regs[i].off) = saved[i];
	nestor_hypercall(NESTOR_HC_SNAP_DROP, out.rbx, 0, 0);
}

/* A snapshot the pool cannot hold: refused, nothing changed, and a later
 * one that fits works.  The pool is filled with snapshots until refused. */
TEST(snapshot, refused)
{
	if (!pool_available())
		return;
	uint64_t ids[8], n = 0;
	uint64_t used_before = nestor_hypercall(NESTOR_HC_SNAP_INFO, 0, 0, 0).rbx;
	int64_t last = NESTOR_OK;
	while (n < 8) {
		struct snap_regs out;
		snap_call(NESTOR_SNAP_COPY, &out);
		if (out.rax == NESTOR_SNAP_RESTORED) {
			CHECK(false, "a restore nobody asked for");
			return;
		}
		last = (int64_t)out.rax;
		if (last != NESTOR_OK)
			break;
		ids[n++] = out.rbx;
	}
	env("%llu full copies fit in the pool", (unsigned long long)n);
	CHECK(last == NESTOR_ENOSPC, "the snapshot that does not fit: status %lld (expected NESTOR_ENOSPC)", (long long)last);
	CHECK(nestor_hypercall(NESTOR_HC_RESTORE, n + 1, 0, 0).status == NESTOR_ENOENT, "the refused snapshot exists");
	for (uint64_t i = 0; i < n; i++)
		nestor_hypercall(NESTOR_HC_SNAP_DROP, ids[i], 0, 0);
	CHECK(nestor_hypercall(NESTOR_HC_SNAP_INFO, 0, 0, 0).rbx == used_before, "pool pages leaked");
	CHECK(nestor_hypercall(NESTOR_HC_SNAPSHOT, 7, 0, 0).status == NESTOR_EINVAL, "bad method accepted");
	CHECK(nestor_hypercall(NESTOR_HC_SNAP_DROP, 99, 0, 0).status == NESTOR_ENOENT, "bad id accepted");
	say("a snapshot the pool cannot hold is refused with NESTOR_ENOSPC; bad method and id refused");
}

/* --- an event delivered onto a saved page ----------------------------------
 * An NMI whose frame the CPU pushes onto a stack page that a copy-on-write
 * snapshot protects: the push is an EPT violation during the delivery, and
 * once the page is saved the NMI must be delivered again, not lost.  The
 * NMI is sent, and waited for, with RSP at the top of a page nothing wrote
 * since the snapshot, without a push of our own before it arrives. */
static volatile unsigned frame_nmis;

static void frame_nmi(struct trap_frame *f)
{
	(void)f;
	frame_nmis++;
}

TEST(snapshot, event_on_saved_page)
{
	if (!pool_available())
		return;
	fill(3);
	struct snap_regs out;
	snap_call(NESTOR_SNAP_COW, &out);
	if (out.rax != NESTOR_OK) {
		CHECK(false, "snapshot refused or restored: status %lld", (long long)(int64_t)out.rax);
		return;
	}
	guest_set_handler(EXC_NMI, frame_nmi);
	frame_nmis = 0;
	volatile uint32_t *icr_hi = (volatile uint32_t *)(APIC_BASE + APIC_ICR_HI);
	volatile uint32_t *icr_lo = (volatile uint32_t *)(APIC_BASE + APIC_ICR_LO);
	uint32_t dest = *(volatile uint32_t *)(APIC_BASE + APIC_ID) & 0xff000000u;
	uint64_t top = (uint64_t)region + REGION_SIZE / 2; /* a page boundary in the filled region */
	uint64_t spins = 1000000;
	/* Physical destination = our APIC ID, delivery mode NMI (SDM 10.6.1). */
	__asm__ volatile("mov %%rsp, %%rbx\n\t"
			 "mov %[top], %%rsp\n\t"
			 "movl %[dest], (%[hi])\n\t"
			 "movl %[nmi], (%[lo])\n\t"
			 "1: cmpl $0, %[count]\n\t"
			 "jne 2f\n\t"
			 "dec %[spins]\n\t"
			 "jnz 1b\n\t"
			 "2: mov %%rbx, %%rsp"
			 : [spins] "+r"(spins)
			 : [top] "r"(top), [dest] "r"(dest), [nmi] "r"((uint32_t)ICR_NMI), [hi] "r"(icr_hi), [lo] "r"(icr_lo),
			   [count] "m"(frame_nmis)
			 : "rbx", "memory");
	guest_set_handler(EXC_NMI, 0);
	nestor_hypercall(NESTOR_HC_SNAP_DROP, out.rbx, 0, 0);
	say("an NMI whose frame lands on a page the snapshot protects: %s", frame_nmis == 1 ? "delivered once" : frame_nmis ? "delivered more than once" : "lost");
	CHECK(frame_nmis == 1, "%u NMIs delivered, 1 sent", frame_nmis);
}

/* --- DMA ------------------------------------------------------------------- */

static uint32_t pci_read(unsigned dev, unsigned fn, unsigned off)
{
	outl(0xcf8, 0x80000000u | dev << 11 | fn << 8 | (off & 0xfc));
	return inl(0xcfc);
}

/* The bus-master registers of the IDE controller (PCI class 01:01), or 0. */
static uint16_t bus_master_base(void)
{
	for (unsigned dev = 0; dev < 32; dev++)
		for (unsigned fn = 0; fn < 8; fn++) {
			if ((pci_read(dev, fn, 0) & 0xffff) == 0xffff)
				continue;
			uint32_t class = pci_read(dev, fn, 8), bar = pci_read(dev, fn, 0x20);
			if (class >> 16 == 0x0101 && (class & 0x8000) && (bar & 1))
				return (uint16_t)(bar & 0xfff0);
		}
	return 0;
}

/* The bus-master registers for a DMA test, or 0 (said why) to skip it. */
static uint16_t dma_test_setup(void)
{
	if (!pool_available())
		return 0;
	uint16_t bm = bus_master_base();
	if (!bm)
		env("no bus-master IDE controller");
	return bm;
}

/* A bus-master transfer into memory started during a copy-on-write
 * snapshot: the four pages its PRD table names are saved before the device
 * may write them (the guest itself never writes them). */
TEST(snapshot, dma_start_saves)
{
	uint16_t bm = dma_test_setup();
	if (!bm)
		return;
	fill(8);
	uint32_t *prd = (uint32_t *)(region + 200 * 4096);
	struct snap_regs out;
	snap_call(NESTOR_SNAP_COW, &out);
	if (out.rax == NESTOR_SNAP_RESTORED) {
		/* What was counted before the restore comes back in RCX. */
		CHECK(out.rcx == 4, "pages saved by the DMA start: %llu (expected 4)", (unsigned long long)out.rcx);
		CHECK(words_wrong(8) == 0, "after the restore: %llu words wrong", (unsigned long long)words_wrong(8));
		nestor_hypercall(NESTOR_HC_SNAP_DROP, out.rbx, 0, 0);
		say("a bus-master start during a snapshot saves the pages its PRD table names");
		return;
	}
	CHECK(out.rax == NESTOR_OK, "snapshot refused: %lld", (long long)(int64_t)out.rax);
	prd[0] = (uint32_t)(uint64_t)(region + 10 * 4096);
	prd[1] = 4 * 4096 | 1u << 31; /* 16 KiB, end of table */
	outl(bm + 4, (uint32_t)(uint64_t)prd);
	uint64_t before = nestor_hypercall(NESTOR_HC_SNAP_INFO, out.rbx, 0, 0).rbx;
	outb(bm, 0x09); /* start, device to memory; no command is pending, so nothing moves */
	outb(bm, 0x08); /* stop */
	uint64_t after = nestor_hypercall(NESTOR_HC_SNAP_INFO, out.rbx, 0, 0).rbx;
	/* What a device would have done: the pages change; the restore puts them back. */
	for (unsigned p = 10; p < 14; p++)
		region[p * 4096 + 5] ^= 0xff;
	nestor_hypercall(NESTOR_HC_RESTORE, out.rbx, after - before, 0);
	CHECK(false, "restore returned");
}

/* Reads one 2048-byte sector of the CD-ROM (ATAPI, primary master) by
 * bus-master DMA into buf.  False when the drive does not answer. */
static bool atapi_dma_read(uint16_t bm, uint32_t lba, void *buf)
{
	static uint32_t prd[2] __attribute__((aligned(8)));
	prd[0] = (uint32_t)(uint64_t)buf;
	prd[1] = 2048 | 1u << 31;
	outb(0x3f6, 0x02); /* no interrupts from the drive: polled */
	outb(0x1f6, 0xa0); /* the master */
	for (unsigned i = 0; i < 100000 && (inb(0x1f7) & 0x80); i++)
		;
	outb(bm, 0x00);            /* stopped, then: the table, statuses cleared */
	outl(bm + 4, (uint32_t)(uint64_t)prd);
	outb(bm + 2, 0x06);
	outb(0x1f1, 0x01);         /* DMA */
	outb(0x1f4, 0x00);
	outb(0x1f5, 0x08);
	outb(0x1f7, 0xa0);         /* PACKET */
	unsigned i;
	for (i = 0; i < 100000 && (inb(0x1f7) & 0x88) != 0x08; i++)
		;
	if (i == 100000)
		return false;
	uint8_t cmd[12] = { 0x28, 0, (uint8_t)(lba >> 24), (uint8_t)(lba >> 16), (uint8_t)(lba >> 8), (uint8_t)lba, 0, 0, 1 };
	for (unsigned k = 0; k < 12; k += 2)
		outw(0x1f0, (uint16_t)(cmd[k] | cmd[k + 1] << 8));
	outb(bm, 0x09);            /* start, device to memory */
	/* The end of the transfer is the controller's interrupt bit: the drive
	 * may show BSY clear and DRQ set before the DMA engine has moved
	 * anything (when is Bochs' timing, which moves with the memory layout). */
	for (i = 0; i < 1000000 && !(inb(bm + 2) & 0x04); i++)
		;
	for (i = 0; i < 1000000 && (inb(0x1f7) & 0x88); i++)
		;
	outb(bm, 0x08);            /* stop */
	outb(bm + 2, 0x06);
	return !(inb(0x1f7) & 0x01);
}

/* A real transfer: the CD-ROM's volume descriptor read by DMA into a page
 * during a copy-on-write snapshot; the restore puts the page back. */
TEST(snapshot, dma_cdrom)
{
	uint16_t bm = dma_test_setup();
	if (!bm)
		return;
	/* Bochs 2.7 applies the running guest's EPT to a device's DMA (a CPU
	 * does not): above depth 1 the page is writable in the Nestor holding
	 * the snapshot but not yet in the shadow EPT of the one below, and Bochs
	 * drops the transfer.  dma_start_saves covers the saving there. */
	if (nestor_level() > 0) {
		env("a Nestor at level %u holds the snapshot: DMA into the guest not tried on Bochs", nestor_level());
		return;
	}
	fill(9);
	uint8_t *buf = region + 20 * 4096;
	struct snap_regs out;
	snap_call(NESTOR_SNAP_COW, &out);
	if (out.rax == NESTOR_SNAP_RESTORED) {
		CHECK(words_wrong(9) == 0, "after the restore: %llu words wrong", (unsigned long long)words_wrong(9));
		nestor_hypercall(NESTOR_HC_SNAP_DROP, out.rbx, 0, 0);
		/* 1: the sector arrived (carried across the restore). */
		CHECK(out.rcx == 1, "the DMA read during the snapshot: %s",
		      out.rcx == 2 ? "the sector is not the volume descriptor" : "the drive did not answer");
		say("the CD's volume descriptor read by DMA during a snapshot, the page restored afterwards");
		return;
	}
	CHECK(out.rax == NESTOR_OK, "snapshot refused: %lld", (long long)(int64_t)out.rax);
	bool ok = atapi_dma_read(bm, 16, buf);
	/* ISO 9660: the primary volume descriptor is type 1, "CD001". */
	bool read = ok && buf[0] == 1 && buf[1] == 'C' && buf[2] == 'D' && buf[3] == '0' && buf[4] == '0' && buf[5] == '1';
	nestor_hypercall(NESTOR_HC_RESTORE, out.rbx, read ? 1 : ok ? 2 : 3, 0);
	CHECK(false, "restore returned");
}

/* --- the benchmark (suite bench_snap, run by make bench) ------------------ */

/* Dirties every tenth page of this guest's RAM above 16 MiB by writing one
 * byte back unchanged (a write all the same): a tenth of the guest's memory
 * written after a snapshot. */
static uint64_t dirty_tenth(void)
{
	uint64_t pages = 0, n = 0;
	for (unsigned i = 0; i < boot_info.n_mmap; i++) {
		const struct mb2_mmap_entry *e = &boot_info.mmap[i];
		if (e->type != MB2_MEM_AVAILABLE)
			continue;
		for (uint64_t a = (e->base + 4095) & ~4095ull; a + 4096 <= e->base + e->len; a += 4096, pages++) {
			if (pages % 10 || a < 0x1000000)
				continue;
			volatile uint8_t *p = (volatile uint8_t *)a;
			*p = *p;
			n++;
		}
	}
	return n;
}

/* The guest stops for SNAP_PAUSE (ticks across the snapshot call), the pool
 * holds SNAP_MEM pages once a tenth of memory is written, a restore costs
 * RESTORE ticks (from the restore call to the snapshot call's return; the
 * start travels in the restore's value). */
static void snap_bench(uint64_t method, const char *name)
{
	if (!pool_available())
		return;
	uint64_t t0 = rdtsc();
	struct hc_result r = nestor_hypercall(NESTOR_HC_SNAPSHOT, method, 0, 0);
	uint64_t t1 = rdtsc();
	if (r.status == NESTOR_OK) {
		env("%s: pause %llu", name, (unsigned long long)(t1 - t0));
		uint64_t written = dirty_tenth();
		struct hc_result info = nestor_hypercall(NESTOR_HC_SNAP_INFO, r.rbx, 0, 0);
		env("%s: pages written %llu, pool pages %llu", name, (unsigned long long)written,
		    (unsigned long long)info.rbx);
		nestor_hypercall(NESTOR_HC_RESTORE, r.rbx, rdtsc(), 0);
		CHECK(false, "%s: restore returned", name);
		return;
	}
	CHECK(r.status == NESTOR_SNAP_RESTORED, "%s: snapshot refused: %lld", name, (long long)r.status);
	if (r.status != NESTOR_SNAP_RESTORED)
		return;
	env("%s: restore %llu", name, (unsigned long long)(t1 - r.rcx));
	nestor_hypercall(NESTOR_HC_SNAP_DROP, r.rbx, 0, 0);
}

TEST(bench_snap, cow) { snap_bench(NESTOR_SNAP_COW, "cow"); }
TEST(bench_snap, copy) { snap_bench(NESTOR_SNAP_COPY, "copy"); }
