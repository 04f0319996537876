/* hypercall.c - the VMCALL ABI (hypercall/abi.h, docs/abi.md).
 * VMCALL always exits in VMX non-root operation (SDM 25.1.2). */
#include "hypercall/abi.h"
#include "lib/log.h"
#include "lib/string.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "vmx/vmcs.h"

static int64_t hc_console(struct vcpu *v, uint64_t gpa, uint64_t len)
{
	static const char hex[] = "0123456789abcdef";
	if (len > 4096)
		return NESTOR_EINVAL;
	if (!gpa_is_ram(v->vm, gpa, len))
		return NESTOR_EFAULT;
	/* Printable ASCII only; the rest is shown escaped, so a guest cannot
	 * forge Nestor's own lines with a newline and a prefix.  Long texts
	 * are printed as several lines. */
	for (uint64_t done = 0; done < len;) {
		char buf[128], line[4 * sizeof(buf) + 1];
		uint64_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);
		gpa_read(v->vm, gpa + done, buf, n);
		size_t k = 0;
		for (uint64_t i = 0; i < n; i++) {
			unsigned char c = buf[i];
			if (c >= 0x20 && c < 0x7f && c != '\\') {
				line[k++] = c;
			} else {
				line[k++] = '\\';
				line[k++] = 'x';
				line[k++] = hex[c >> 4];
				line[k++] = hex[c & 15];
			}
		}
		line[k] = '\0';
		pr_info("guest says: %s\n", line);
		done += n;
	}
	v->gpr[RBX] = len;
	return NESTOR_OK;
}

void exit_vmcall(struct vcpu *v)
{
	uint64_t fn = v->gpr[RAX];
	int64_t status = NESTOR_OK;
	if (guest_cpl() != 0) {
		status = NESTOR_EPERM;
	} else {
		switch (fn) {
		case NESTOR_HC_VERSION:
			v->gpr[RBX] = NESTOR_ABI_VERSION;
			v->gpr[RCX] = v->vm->level;
			v->gpr[RDX] = NESTOR_SIG_EBX;
			break;
		case NESTOR_HC_EXIT_STATS: {
			uint64_t r = v->gpr[RBX], level = v->gpr[RDX];
			if (level != NESTOR_LEVEL_SELF && level != v->vm->level) {
				/* A lower level's figures: ask the Nestor below, which
				 * forwards further down if needed. */
				if (level > v->vm->level) {
					status = NESTOR_EINVAL;
					break;
				}
				uint64_t rax = fn, rbx = r, rcx = v->gpr[RCX], rdx = level;
				__asm__ volatile("vmcall" : "+a"(rax), "+b"(rbx), "+c"(rcx), "+d"(rdx) : : "memory");
				status = (int64_t)rax;
				v->gpr[RBX] = rbx;
				v->gpr[RCX] = rcx;
				break;
			}
			if (r == NESTOR_STATS_TOTAL) {
				uint64_t ticks = 0;
				for (unsigned i = 0; i < EXIT_STATS_MAX; i++)
					ticks += v->stats.ticks[i];
				v->gpr[RBX] = vcpu_total_exits(v);
				v->gpr[RCX] = ticks;
			} else if (r < EXIT_STATS_MAX) {
				v->gpr[RBX] = v->stats.count[r];
				v->gpr[RCX] = v->stats.ticks[r];
			} else {
				status = NESTOR_EINVAL;
			}
			break;
		}
		case NESTOR_HC_STATS_RESET:
			memset(&v->stats, 0, sizeof(v->stats));
			break;
		case NESTOR_HC_CONSOLE:
			status = hc_console(v, v->gpr[RBX], v->gpr[RCX]);
			break;
		default:
			status = NESTOR_ENOSYS;
		}
	}
	v->gpr[RAX] = (uint64_t)status;
	skip_instruction(v);
}
