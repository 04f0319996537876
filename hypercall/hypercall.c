/* hypercall.c - the VMCALL ABI (hypercall/abi.h, docs/abi.md).
 * VMCALL always exits in VMX non-root operation (SDM 25.1.2). */
#include "hypercall/abi.h"
#include "hypercall/hypercall.h"
#include "nested/nested.h"
#include "snap/snap.h"
#include "lib/log.h"
#include "lib/string.h"
#include "vmx/bios.h"
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

/* The counters a stats hypercall names (RDI): now, or a snapshot. */
static struct exit_stats *stats_slot(struct vcpu *v, uint64_t which)
{
	return which == 0 ? &v->stats : which <= 2 ? &v->snapshots[which - 1] : NULL;
}

/* NESTOR_HC_EXIT_STATS / NESTOR_HC_STATS_SNAPSHOT: at our level, or at a
 * lower one (the call goes down the stack, each Nestor passing it on). */
_Static_assert(PROF_PHASES == NESTOR_PROF_PHASES, "the ABI names every phase of vmx/prof.h");

static int64_t hc_stats(struct vcpu *v, uint64_t fn)
{
	uint64_t r = v->gpr[RBX], level = v->gpr[RDX], from = v->gpr[RSI], which = v->gpr[RDI];
	if (level != NESTOR_LEVEL_SELF && level != v->vm->level) {
		if (level > v->vm->level)
			return NESTOR_EINVAL;
		uint64_t rbx = r, rcx = v->gpr[RCX], rdx = level;
		int64_t status = nestor_vmcall(fn, &rbx, &rcx, &rdx, from, which);
		v->gpr[RBX] = rbx;
		v->gpr[RCX] = rcx;
		return status;
	}
	if (fn == NESTOR_HC_STATS_SNAPSHOT) {
		if (r < 1 || r > 2)
			return NESTOR_EINVAL;
		v->snapshots[r - 1] = v->stats;
		return NESTOR_OK;
	}
	const struct exit_stats *st = stats_slot(v, which);
	if (st && r >= NESTOR_STATS_PHASE0 && r < NESTOR_STATS_PHASE0 + PROF_PHASES && !from) {
		v->gpr[RBX] = st->phase_count[r - NESTOR_STATS_PHASE0];
		v->gpr[RCX] = st->phase_ticks[r - NESTOR_STATS_PHASE0];
		return NESTOR_OK;
	}
	if (!st || (r != NESTOR_STATS_TOTAL && r >= EXIT_STATS_MAX))
		return NESTOR_EINVAL;
	/* The exits taken while level `from` (absolute) ran, or all. */
	const uint64_t *count = st->count, *ticks = st->ticks;
	if (from) {
		if (from <= v->vm->level || from - v->vm->level >= EXIT_STATS_LEVELS)
			return NESTOR_EINVAL;
		count = st->by_level[from - v->vm->level];
		ticks = st->ticks_by_level[from - v->vm->level];
	}
	uint64_t exits = 0, t = 0;
	for (unsigned i = 0; i < EXIT_STATS_MAX; i++)
		if (r == NESTOR_STATS_TOTAL || r == i)
			exits += count[i], t += ticks[i];
	v->gpr[RBX] = exits;
	v->gpr[RCX] = t;
	return NESTOR_OK;
}

/* A request about the level `above` levels above our guest, when we
 * delegated ourselves: passed on to the Nestor below, one level further
 * away (RBX then says so); *rbx gets what that Nestor answers in RBX. */
static int64_t pass_below(uint64_t fn, uint64_t above, uint64_t rcx, uint64_t *rbx)
{
	uint64_t b = above + 1, c = rcx, d = 0;
	int64_t s = nestor_vmcall(fn, &b, &c, &d, 0, 0);
	*rbx = b;
	return s;
}

/* NESTOR_HC_DELEGATE_VMX and NESTOR_HC_UNDELEGATE_VMX (docs/depth.md): the
 * level RBX levels above our guest asks that the VMX of its own guest be
 * emulated below, or by itself again.  We do it unless we delegated
 * ourselves: then the Nestor below does, and we pass the request on, one
 * level further away. */
static int64_t hc_delegation(struct vcpu *v, uint64_t fn)
{
	uint64_t above = v->gpr[RBX], hash = v->gpr[RCX];
	if (above >= NESTED_MAX_LEVELS)
		return NESTOR_EINVAL;
	uint64_t rbx;
	if (v->vm->delegated)
		return pass_below(fn, above, hash, &rbx);
	if (fn == NESTOR_HC_UNDELEGATE_VMX)
		return nested_revoke_delegation(v, (unsigned)above + 1);
	return nested_accept_delegation(v, (unsigned)above + 1, hash);
}

/* NESTOR_HC_GUEST_INIT: the level RBX levels above our guest received an
 * INIT for its own guest, whose VMX it delegated.  Held here when we
 * emulate that VMX (nested/signals.c), passed on when we delegated too. */
static int64_t hc_guest_init(struct vcpu *v)
{
	uint64_t above = v->gpr[RBX];
	if (above >= NESTED_MAX_LEVELS)
		return NESTOR_EINVAL;
	if (v->vm->delegated) {
		uint64_t rbx;
		int64_t s = pass_below(NESTOR_HC_GUEST_INIT, above, 0, &rbx);
		if (s == NESTOR_OK)
			v->gpr[RBX] = rbx; /* a refusal leaves the caller's registers alone */
		return s;
	}
	/* Level above+1 asks for its guest, level above+2, which it must have
	 * delegated to us. */
	unsigned asking = (unsigned)above + 1;
	if (asking > v->nlevels || !v->lv[asking]->delegated)
		return NESTOR_EINVAL;
	v->gpr[RBX] = nested_guest_init(v, asking + 1);
	return NESTOR_OK;
}

/* A notice from the level RBX levels above our guest about its own guest,
 * whose VMX it delegated: passed on when we delegated too, else act()
 * for the asking level; NESTOR_EINVAL when that level did not delegate. */
static int64_t hc_delegated_notice(struct vcpu *v, uint64_t fn, void (*act)(struct vcpu *v, unsigned asking))
{
	uint64_t above = v->gpr[RBX];
	if (above >= NESTED_MAX_LEVELS)
		return NESTOR_EINVAL;
	uint64_t rbx;
	if (v->vm->delegated)
		return pass_below(fn, above, 0, &rbx);
	unsigned asking = (unsigned)above + 1;
	if (asking > v->nlevels || !v->lv[asking]->delegated)
		return NESTOR_EINVAL;
	act(v, asking);
	return NESTOR_OK;
}

/* NESTOR_HC_GUEST_NMI: the asking level has an NMI for its guest: it
 * cannot tell where the NMI goes once its guest enters a guest of its own
 * (we run those), so it hands it to us (nested/signals.c). */
static void guest_nmi(struct vcpu *v, unsigned asking) { nested_guest_nmi(v, asking + 1); }

/* NESTOR_HC_BITMAPS_CHANGED: the asking level changed the I/O or MSR
 * bitmaps it gives its guest; the copies merged from them
 * (nested/bitmaps.c) are stale. */
static void bitmaps_changed(struct vcpu *v, unsigned asking)
{
	(void)asking;
	nested_bitmaps_changed(v);
}

void exit_vmcall(struct vcpu *v)
{
	uint64_t fn = v->gpr[RAX];
	int64_t status = NESTOR_OK;
	if (guest_cpl() != 0) {
		status = NESTOR_EPERM;
	} else {
		switch (fn) {
		case NESTOR_HC_BIOS_INT15: {
			uint32_t vec;
			if (bios_int15_vector(v->vm, &vec))
				status = NESTOR_ENOENT;
			else
				v->gpr[RBX] = vec;
			break;
		}
		case NESTOR_HC_VERSION:
			v->gpr[RBX] = NESTOR_ABI_VERSION;
			v->gpr[RCX] = v->vm->level;
			v->gpr[RDX] = NESTOR_SIG_EBX;
			break;
		case NESTOR_HC_EXIT_STATS:
		case NESTOR_HC_STATS_SNAPSHOT:
			status = hc_stats(v, fn);
			break;
		case NESTOR_HC_STATS_RESET:
			memset(&v->stats, 0, sizeof(v->stats));
			break;
		case NESTOR_HC_CONSOLE:
			status = hc_console(v, v->gpr[RBX], v->gpr[RCX]);
			break;
		case NESTOR_HC_DELEGATE_VMX:
		case NESTOR_HC_UNDELEGATE_VMX:
			status = hc_delegation(v, fn);
			break;
		case NESTOR_HC_GUEST_INIT:
			status = hc_guest_init(v);
			break;
		case NESTOR_HC_GUEST_NMI:
			status = hc_delegated_notice(v, fn, guest_nmi);
			break;
		case NESTOR_HC_BITMAPS_CHANGED:
			status = hc_delegated_notice(v, fn, bitmaps_changed);
			break;
		case NESTOR_HC_SNAPSHOT:
			status = snap_take(v, v->gpr[RBX]);
			if (status == NESTOR_OK) {
				v->gpr[RAX] = NESTOR_OK; /* RIP is past the VMCALL already */
				return;
			}
			break;
		case NESTOR_HC_RESTORE:
			status = snap_restore(v, v->gpr[RBX], v->gpr[RCX]);
			if (status == NESTOR_SNAP_RESTORED)
				return; /* the guest is back at its snapshot */
			break;
		case NESTOR_HC_SNAP_DROP:
			status = snap_drop(v, v->gpr[RBX]);
			break;
		case NESTOR_HC_SNAP_INFO:
			status = snap_info(v, v->gpr[RBX]);
			break;
		default:
			status = NESTOR_ENOSYS;
		}
	}
	v->gpr[RAX] = (uint64_t)status;
	skip_instruction(v);
}
