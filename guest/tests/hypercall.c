/* hypercall.c - the VMCALL ABI (docs/abi.md).  On bare hardware VMCALL is
 * an invalid opcode; under Nestor every function and error is checked.  All
 * lines are environment facts: what a guest sees here depends on what runs
 * below it by design. */
#include "guest/nestor.h"
#include "guest/test.h"
#include "lib/x86.h"

static void do_vmcall(void *p)
{
	struct hc_result *r = p;
	*r = nestor_hypercall(NESTOR_HC_VERSION, 0, 0, 0);
}

static char text[64] __attribute__((aligned(16))) = "hello from the guest\x01";

static void user_vmcall(void *p)
{
	struct hc_result *r = p;
	*r = nestor_hypercall(NESTOR_HC_VERSION, 0, 0, 0);
}

TEST(hypercall, abi)
{
	struct fault f;
	struct hc_result r;
	if (!nestor_present()) {
		bool hit = catch_fault(do_vmcall, &r, &f);
		env("no Nestor below: VMCALL -> %s", hit ? (f.vector == EXC_UD ? "#UD" : "another exception") : "returned");
		CHECK(hit && f.vector == EXC_UD, "VMCALL outside VMX must raise #UD");
		return;
	}
	r = nestor_hypercall(NESTOR_HC_VERSION, 0, 0, 0);
	env("version: status %lld, ABI %llu, level %llu", (long long)r.status, (unsigned long long)r.rbx,
	    (unsigned long long)r.rcx);
	CHECK(r.status == NESTOR_OK && r.rbx == NESTOR_ABI_VERSION && r.rdx == NESTOR_SIG_EBX, "bad version answer");
	CHECK(r.rcx == cpuid(NESTOR_CPUID_INFO, 0).eax, "level differs from CPUID 0x40000001");

	/* Exit statistics of the Nestor right below: one CPUID between two
	 * reads counts exactly one. */
	uint64_t me = NESTOR_LEVEL_SELF;
	uint64_t before = nestor_hypercall(NESTOR_HC_EXIT_STATS, 10, 0, me).rbx;
	cpuid(0, 0);
	r = nestor_hypercall(NESTOR_HC_EXIT_STATS, 10, 0, me);
	CHECK(r.status == NESTOR_OK && r.rbx == before + 1, "CPUID exits %llu -> %llu", (unsigned long long)before,
	      (unsigned long long)r.rbx);
	r = nestor_hypercall(NESTOR_HC_EXIT_STATS, 100000, 0, me);
	CHECK(r.status == NESTOR_EINVAL, "bad reason: status %lld", (long long)r.status);
	r = nestor_hypercall(NESTOR_HC_STATS_RESET, 0, 0, 0);
	uint64_t total = nestor_hypercall(NESTOR_HC_EXIT_STATS, NESTOR_STATS_TOTAL, 0, me).rbx;
	CHECK(r.status == NESTOR_OK && total == 1, "after reset %llu exits (expected the reset call)",
	      (unsigned long long)total);
	/* Any level down to 0 answers (forwarded); a level above does not. */
	uint64_t level = cpuid(NESTOR_CPUID_INFO, 0).eax;
	r = nestor_hypercall(NESTOR_HC_EXIT_STATS, NESTOR_STATS_TOTAL, 0, 0);
	CHECK(r.status == NESTOR_OK && r.rbx > 0, "level 0's statistics: status %lld", (long long)r.status);
	r = nestor_hypercall(NESTOR_HC_EXIT_STATS, NESTOR_STATS_TOTAL, 0, level + 1);
	CHECK(r.status == NESTOR_EINVAL, "statistics of a level above: status %lld", (long long)r.status);

	/* Snapshots, and the exits of one running level: a CPUID between two
	 * snapshots counts once, for this guest's level. */
	uint64_t mine = level + 1;
	r = nestor_hypercall5(NESTOR_HC_STATS_SNAPSHOT, 1, 0, me, 0, 0);
	CHECK(r.status == NESTOR_OK, "snapshot 1: status %lld", (long long)r.status);
	cpuid(0, 0);
	r = nestor_hypercall5(NESTOR_HC_STATS_SNAPSHOT, 2, 0, me, 0, 0);
	uint64_t s1 = nestor_hypercall5(NESTOR_HC_EXIT_STATS, 10, 0, me, mine, 1).rbx;
	uint64_t s2 = nestor_hypercall5(NESTOR_HC_EXIT_STATS, 10, 0, me, mine, 2).rbx;
	CHECK(r.status == NESTOR_OK && s2 == s1 + 1, "CPUID exits between snapshots: %llu -> %llu",
	      (unsigned long long)s1, (unsigned long long)s2);
	r = nestor_hypercall5(NESTOR_HC_STATS_SNAPSHOT, 3, 0, me, 0, 0);
	CHECK(r.status == NESTOR_EINVAL, "snapshot slot 3: status %lld", (long long)r.status);
	r = nestor_hypercall5(NESTOR_HC_EXIT_STATS, 10, 0, me, 0, 3);
	CHECK(r.status == NESTOR_EINVAL, "statistics of snapshot 3: status %lld", (long long)r.status);
	r = nestor_hypercall5(NESTOR_HC_EXIT_STATS, 10, 0, me, level + 1000, 0);
	CHECK(r.status == NESTOR_EINVAL, "exits while level %llu ran: status %lld", (unsigned long long)(level + 1000),
	      (long long)r.status);

	/* CPUID 0x40000002: every level of the stack describes itself. */
	for (uint32_t l = 0; l <= level + 1; l++) {
		struct cpuid_regs d = cpuid(NESTOR_CPUID_LEVELS, l);
		env("level %u: eax %x flags %x runs %u levels", l, d.eax, d.ecx, d.edx);
		CHECK(d.eax == (l <= level ? l : 0xffffffffu), "CPUID 0x40000002.%u: eax %x", l, d.eax);
		if (l > level)
			continue;
		bool delegates = d.ecx & NESTOR_LEVEL_DELEGATES;
		CHECK(d.ecx & NESTOR_LEVEL_NESTED, "level %u does not offer VMX", l);
		/* Level 0 has nobody to delegate to. */
		CHECK(!delegates || l > 0, "level 0 delegates");
		CHECK(delegates ? d.edx == 0 : d.edx >= 1, "level %u (flags %x) runs %u levels", l, d.ecx, d.edx);
	}

	/* Delegation (docs/depth.md): announced with nested VMX; requests that
	 * cannot be right are refused and change nothing. */
	env("delegation offered: %u", cpuid(NESTOR_CPUID_INFO, 0).ecx & NESTOR_FEATURE_DELEGATE);
	r = nestor_hypercall(NESTOR_HC_DELEGATE_VMX, 1000, 0, 0);
	CHECK(r.status == NESTOR_EINVAL, "delegation for a level 1000 above: status %lld", (long long)r.status);
	r = nestor_hypercall(NESTOR_HC_DELEGATE_VMX, 0, 0x1234, 0);
	CHECK(r.status == NESTOR_EINVAL, "delegation with other VMX capabilities: status %lld", (long long)r.status);
	/* Only a level that delegated may say its bitmaps changed - we did not,
	 * at any depth (a Nestor between passes it on: still refused). */
	r = nestor_hypercall(NESTOR_HC_BITMAPS_CHANGED, 0, 0, 0);
	CHECK(r.status == NESTOR_EINVAL, "bitmaps changed, from a level that did not delegate: status %lld", (long long)r.status);
	r = nestor_hypercall(NESTOR_HC_BITMAPS_CHANGED, 1000, 0, 0);
	CHECK(r.status == NESTOR_EINVAL, "bitmaps changed, for a level 1000 above: status %lld", (long long)r.status);

	/* Console: printable text goes out, bad buffers are refused. */
	r = nestor_hypercall(NESTOR_HC_CONSOLE, (uint64_t)text, 21, 0);
	CHECK(r.status == NESTOR_OK && r.rbx == 21, "console: status %lld", (long long)r.status);
	r = nestor_hypercall(NESTOR_HC_CONSOLE, (uint64_t)text, 5000, 0);
	CHECK(r.status == NESTOR_EINVAL, "console 5000 bytes: status %lld", (long long)r.status);
	r = nestor_hypercall(NESTOR_HC_CONSOLE, 0xfffff000ull, 16, 0);
	CHECK(r.status == NESTOR_EFAULT, "console from firmware memory: status %lld", (long long)r.status);
	r = nestor_hypercall(NESTOR_HC_CONSOLE, ~0ull - 4, 16, 0);
	CHECK(r.status == NESTOR_EFAULT, "console from a wrapping address: status %lld", (long long)r.status);
	r = nestor_hypercall(12345, 0, 0, 0);
	CHECK(r.status == NESTOR_ENOSYS, "unknown function: status %lld", (long long)r.status);

	/* CPL 3 may not call. */
	bool hit = run_user(user_vmcall, &r, &f);
	CHECK(!hit && r.status == NESTOR_EPERM, "VMCALL at CPL 3: %s, status %lld", hit ? "fault" : "returned",
	      (long long)r.status);
	env("all hypercall checks done");
}
