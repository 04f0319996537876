/* gdb_stub.c - level 0's GDB remote stub: the state of the level that runs,
 * breakpoints, single steps and interrupts (docs/gdb.md).
 *
 * It lives entirely in VM exits of level 0: the guest is "stopped" while
 * an exit handler serves gdb's packets, and "runs" once it returns.  vmx/
 * reaches it through vmx/debug_hook.h only; with gdb=off nothing here is
 * registered and nothing runs.
 *
 *  - Registers: the x86-64 layout gdb assumes for i386:x86-64 without a
 *    target description (gdb's amd64 "core" and "sse" features: RAX, RBX,
 *    RCX, RDX, RSI, RDI, RBP, RSP, R8-R15, RIP, EFLAGS, CS, SS, DS, ES, FS,
 *    GS, then the x87 and SSE registers, which the stub reports as
 *    unavailable: their contents are the guest's and Nestor never saves
 *    them).  General registers from the vCPU, the rest from the VMCS of
 *    the level that runs.
 *  - Memory: guest linear addresses through the running level's own
 *    paging structures and the EPTs below it (vmx/guest_mem.c), one page
 *    at a time; Nestor's own memory reads as ones and ignores writes, as
 *    for every guest pointer.
 *  - Software breakpoints: an INT3 written into guest memory; the #BP
 *    intercepted through the exception bitmap (SDM 25.2) while gdb is
 *    attached.  A #BP at an address without one of ours is the guest's own
 *    and is delivered to it (a software exception, SDM 26.6.1.1).
 *  - Hardware breakpoints and watchpoints (Z1, Z2, Z4): the debug
 *    registers (SDM 18.2): DR0-DR3 are the machine's, shared with the
 *    guest (VT-x switches only DR7, SDM 27.3.1), so the guest's values are
 *    kept and put back on removal; DR7 is the running VMCS's guest DR7.  The
 *    #DB exit's qualification says which one hit (SDM 27.1).
 *  - Single step: RFLAGS.TF set in the guest and #DB intercepted; the trap
 *    exits before delivery with BS in the exit qualification (SDM 27.1),
 *    and TF is put back as the guest had it.  An instruction level 0
 *    emulates raises the trap itself (skip_instruction).  Not the monitor
 *    trap flag (SDM 25.5.2), though invisible to the guest: Bochs 2.7
 *    offers it on tigerlake and icelake but never exits after an
 *    instruction for it (only an injected pending MTF exit, event type 7,
 *    is implemented); tried, the guest ran to its end (docs/gdb.md).
 *  - Interrupt (Ctrl-C): while level 1 runs with gdb attached, the
 *    VMX-preemption timer (SDM 25.5.1) makes an exit at least every
 *    GDB_TIMER units, where the transport is polled for the 0x03 byte;
 *    above level 1 every exit polls it. */
#include <stdarg.h>
#include "debug/gdb.h"
#include "boot/config.h"
#include "boot/platform.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/string.h"
#include "lib/x86.h"
#include "vmx/debug_hook.h"
#include "vmx/exit_reasons.h"
#include "vmx/exits.h"
#include "vmx/guest_mem.h"
#include "vmx/vcpu.h"
#include "vmx/vmcs.h"

/* Preemption-timer units (2^IA32_VMX_MISC[4:0] TSC ticks each) between two
 * looks for a Ctrl-C while the guest runs: a few million emulated
 * instructions in Bochs, a few hundredths of a second of host time. */
#define GDB_TIMER 0x40000u
#define MAX_BPS 32

struct bp {
	uint64_t addr;
	uint8_t orig;
	bool used;
};

/* One of DR0-DR3: gdb's type (1 execute, 2 write, 4 access), the
 * guest's own value of the register, to put back. */
struct hwbp {
	uint64_t addr, saved;
	unsigned type;
	bool used;
};

static struct stub {
	struct gdb_link link;
	struct vcpu *target; /* the vCPU gdb sees: the first one */
	bool attached;       /* a session is live: bitmaps and timer armed */
	bool swbreak;        /* gdb takes "swbreak" stop reasons */
	bool stepping;       /* an 's' is under way */
	bool step_set_tf;    /* ... and the stub set RFLAGS.TF for it */
	bool timer_ok;       /* the CPU has the VMX-preemption timer */
	bool timer_armed;    /* ... and it runs in VMCS01 for the stub */
	unsigned wait_level; /* monitor level N: stop when level N runs (0: no) */
	const char *last_stop;
	struct bp bps[MAX_BPS];
	struct hwbp hw[4];
	char stop_buf[48];
	/* Exception-bitmap bits the stub set, per VMCS (set_intercepts). */
#define OWNED_VMCS (NESTED_MAX_LEVELS + 2)
	struct owned {
		uint64_t vmcs;
		uint32_t bits;
	} owned[OWNED_VMCS];
	char in[GDB_PACKET_MAX + 1];
	char out[2 * GDB_PACKET_MAX + 64];
} g;

/* --- registers --------------------------------------------------------- */

/* gdb's amd64 order of the 16 general registers, as x86 encodings. */
static const uint8_t gdb_gpr[16] = { RAX, RBX, RCX, RDX, RSI, RDI, RBP, RSP, R8, R9, R10, R11, R12, R13, R14, R15 };
static const uint32_t seg_sel[6] = { VMCS_GUEST_CS_SEL, VMCS_GUEST_SS_SEL, VMCS_GUEST_DS_SEL,
				     VMCS_GUEST_ES_SEL, VMCS_GUEST_FS_SEL, VMCS_GUEST_GS_SEL };
#define REG_RIP 16
#define REG_EFLAGS 17
#define REG_CS 18
#define NREGS 24 /* through GS; the x87/SSE registers after them are unavailable */
/* Bytes of the x87 and SSE registers in gdb's layout: ST0-7, 8 control
 * registers, XMM0-15, MXCSR. */
#define FP_BYTES (8 * 10 + 8 * 4 + 16 * 16 + 4)

static unsigned reg_size(unsigned n) { return n < REG_EFLAGS ? 8 : 4; }

static uint64_t reg_get(struct vcpu *v, unsigned n)
{
	if (n < 16)
		return gdb_gpr[n] == RSP ? vmread(VMCS_GUEST_RSP) : v->gpr[gdb_gpr[n]];
	if (n == REG_RIP)
		return vmread(VMCS_GUEST_RIP);
	if (n == REG_EFLAGS) {
		uint64_t f = vmread(VMCS_GUEST_RFLAGS);
		/* The trap flag of a step under way is the stub's, not the guest's. */
		return g.step_set_tf ? f & ~RFLAGS_TF : f;
	}
	return vmread(seg_sel[n - REG_CS]);
}

/* General registers, RIP and EFLAGS; segment registers are kept (changing
 * a selector needs its descriptor: not done). */
static void reg_set(struct vcpu *v, unsigned n, uint64_t val)
{
	if (n < 16) {
		if (gdb_gpr[n] == RSP)
			vmwrite(VMCS_GUEST_RSP, val);
		else
			v->gpr[gdb_gpr[n]] = val;
	} else if (n == REG_RIP) {
		vmwrite(VMCS_GUEST_RIP, val);
	} else if (n == REG_EFLAGS) {
		/* Bit 1 is fixed to 1 (VM entry checks it, SDM 26.3.1.4). */
		vmwrite(VMCS_GUEST_RFLAGS, ((vmread(VMCS_GUEST_RFLAGS) & ~0xffffffffull) | (uint32_t)val) | 2);
	}
}

static uint64_t le_value(const char **p, unsigned size, bool *ok)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++) {
		int h = gdb_hexval((*p)[0]), l = h >= 0 ? gdb_hexval((*p)[1]) : -1;
		if (h < 0 || l < 0) {
			*ok = false;
			return 0;
		}
		v |= (uint64_t)(h << 4 | l) << (8 * i);
		*p += 2;
	}
	*ok = true;
	return v;
}

static void cmd_read_regs(struct vcpu *v)
{
	char *o = g.out;
	for (unsigned n = 0; n < NREGS; n++) {
		uint64_t val = reg_get(v, n);
		o = gdb_put_hex(o, &val, reg_size(n));
	}
	for (unsigned i = 0; i < 2 * FP_BYTES; i++)
		*o++ = 'x'; /* unavailable */
	gdb_send(&g.link, g.out, (size_t)(o - g.out));
}

static void cmd_write_regs(struct vcpu *v, const char *p)
{
	for (unsigned n = 0; n < NREGS && *p; n++) {
		bool ok;
		uint64_t val = le_value(&p, reg_size(n), &ok);
		if (ok)
			reg_set(v, n, val);
		else
			p += 2 * reg_size(n); /* 'x': unavailable, left alone */
	}
	gdb_send_str(&g.link, "OK");
}

static void cmd_read_reg(struct vcpu *v, const char *p)
{
	uint64_t n;
	if (!gdb_parse_hex(&p, &n)) {
		gdb_send_str(&g.link, "E01");
		return;
	}
	char *o = g.out;
	if (n < NREGS) {
		uint64_t val = reg_get(v, (unsigned)n);
		o = gdb_put_hex(o, &val, reg_size((unsigned)n));
	} else {
		/* The x87/SSE registers: unavailable. */
		unsigned size = n < NREGS + 8 ? 10 : n < NREGS + 16 ? 4 : n < NREGS + 32 ? 16 : 4;
		for (unsigned i = 0; i < 2 * size; i++)
			*o++ = 'x';
	}
	gdb_send(&g.link, g.out, (size_t)(o - g.out));
}

static void cmd_write_reg(struct vcpu *v, const char *p)
{
	uint64_t n;
	bool ok = false;
	if (gdb_parse_hex(&p, &n) && *p++ == '=' && n < NREGS) {
		uint64_t val = le_value(&p, reg_size((unsigned)n), &ok);
		if (ok)
			reg_set(v, (unsigned)n, val);
	}
	gdb_send_str(&g.link, ok ? "OK" : "E01");
}

/* --- memory ------------------------------------------------------------ */

/* len bytes at a linear address of the running level, page by page: its
 * paging structures (an implicit supervisor access, so gdb sees what the
 * kernel sees whatever the CPL) and the EPTs below it give the machine
 * address, which gpa_read/gpa_write of level 0's VM reach (never Nestor's
 * own memory).  Writes ignore the guest's write protection, as a debugger
 * writing breakpoints into read-only code must.  0, or -1 when a page is
 * not mapped. */
static int mem_access(struct vcpu *v, uint64_t gla, uint8_t *buf, size_t len, bool write)
{
	while (len) {
		size_t n = 4096 - (gla & 4095);
		if (n > len)
			n = len;
		uint64_t m;
		struct gfault f;
		if (gla_xlate(v, gla, ACC_READ | ACC_IMPLICIT, &m, &f))
			return -1;
		if (!(write ? gpa_write(v->vm, m, buf, n) : gpa_read(v->vm, m, buf, n)))
			return -1;
		gla += n, buf += n, len -= n;
	}
	return 0;
}

static bool parse_addr_len(const char **p, uint64_t *addr, uint64_t *len)
{
	if (!gdb_parse_hex(p, addr) || **p != ',')
		return false;
	(*p)++;
	return gdb_parse_hex(p, len);
}

static void cmd_read_mem(struct vcpu *v, const char *p)
{
	uint64_t addr, len;
	static uint8_t buf[GDB_PACKET_MAX / 2];
	if (!parse_addr_len(&p, &addr, &len) || len > sizeof(buf)) {
		gdb_send_str(&g.link, "E01");
		return;
	}
	if (mem_access(v, addr, buf, len, false)) {
		gdb_send_str(&g.link, "E14"); /* EFAULT */
		return;
	}
	char *o = gdb_put_hex(g.out, buf, len);
	gdb_send(&g.link, g.out, (size_t)(o - g.out));
}

static void cmd_write_mem(struct vcpu *v, const char *p)
{
	uint64_t addr, len;
	static uint8_t buf[GDB_PACKET_MAX / 2];
	if (!parse_addr_len(&p, &addr, &len) || *p++ != ':' || len > sizeof(buf)) {
		gdb_send_str(&g.link, "E01");
		return;
	}
	for (uint64_t i = 0; i < len; i++) {
		int h = gdb_hexval(p[2 * i]), l = h >= 0 ? gdb_hexval(p[2 * i + 1]) : -1;
		if (h < 0 || l < 0) {
			gdb_send_str(&g.link, "E01");
			return;
		}
		buf[i] = (uint8_t)(h << 4 | l);
	}
	gdb_send_str(&g.link, mem_access(v, addr, buf, len, true) ? "E14" : "OK");
}

/* --- breakpoints ------------------------------------------------------- */

static struct bp *bp_find(uint64_t addr)
{
	for (unsigned i = 0; i < MAX_BPS; i++)
		if (g.bps[i].used && g.bps[i].addr == addr)
			return &g.bps[i];
	return NULL;
}

static bool bp_insert(struct vcpu *v, uint64_t addr)
{
	if (bp_find(addr))
		return true;
	for (unsigned i = 0; i < MAX_BPS; i++) {
		struct bp *b = &g.bps[i];
		if (b->used)
			continue;
		uint8_t int3 = 0xcc;
		if (mem_access(v, addr, &b->orig, 1, false) || mem_access(v, addr, &int3, 1, true))
			return false;
		b->addr = addr;
		b->used = true;
		return true;
	}
	return false;
}

static bool bp_remove(struct vcpu *v, uint64_t addr)
{
	struct bp *b = bp_find(addr);
	if (!b)
		return true;
	b->used = false;
	return mem_access(v, addr, &b->orig, 1, true) == 0;
}

static uint64_t dr_read(unsigned i)
{
	switch (i) {
	case 0: return read_dr0();
	case 1: return read_dr1();
	case 2: return read_dr2();
	default: return read_dr3();
	}
}

static void dr_write(unsigned i, uint64_t val)
{
	switch (i) {
	case 0: write_dr0(val); break;
	case 1: write_dr1(val); break;
	case 2: write_dr2(val); break;
	default: write_dr3(val); break;
	}
}

/* DR7 (SDM 18.2.4): G<i> at bit 2i+1, R/W<i> and LEN<i> at bits 16+4i. */
static bool hw_insert(uint64_t type, uint64_t addr, uint64_t len)
{
	static const uint8_t len_bits[9] = { [1] = 0, [2] = 1, [4] = 3, [8] = 2 };
	unsigned rw = type == 1 ? 0 : type == 2 ? 1 : 3;
	if (type == 1)
		len = 1; /* an instruction breakpoint has LEN 00 */
	if (len > 8 || (len != 1 && len != 2 && len != 4 && len != 8) || (addr & (len - 1)))
		return false;
	for (unsigned i = 0; i < 4; i++) {
		struct hwbp *h = &g.hw[i];
		if (h->used)
			continue;
		h->used = true;
		h->addr = addr;
		h->type = (unsigned)type;
		h->saved = dr_read(i);
		dr_write(i, addr);
		uint64_t dr7 = vmread(VMCS_GUEST_DR7) & ~(0xfull << (16 + 4 * i));
		dr7 |= (2ull << (2 * i)) | ((uint64_t)(rw | len_bits[len] << 2) << (16 + 4 * i));
		vmwrite(VMCS_GUEST_DR7, dr7);
		return true;
	}
	return false;
}

static void hw_remove_slot(unsigned i)
{
	g.hw[i].used = false;
	dr_write(i, g.hw[i].saved);
	vmwrite(VMCS_GUEST_DR7, vmread(VMCS_GUEST_DR7) & ~((2ull << (2 * i)) | (0xfull << (16 + 4 * i))));
}

static bool hw_remove(uint64_t type, uint64_t addr)
{
	for (unsigned i = 0; i < 4; i++)
		if (g.hw[i].used && g.hw[i].addr == addr && g.hw[i].type == type) {
			hw_remove_slot(i);
			return true;
		}
	return true;
}

static void cmd_breakpoint(struct vcpu *v, const char *p, bool insert)
{
	uint64_t type, addr, kind;
	if (!gdb_parse_hex(&p, &type) || *p++ != ',' || !parse_addr_len(&p, &addr, &kind)) {
		gdb_send_str(&g.link, "E01");
		return;
	}
	if (type == 3 || type > 4) {
		gdb_send_str(&g.link, ""); /* read watchpoints: x86 has none */
		return;
	}
	bool ok = type == 0 ? (insert ? bp_insert(v, addr) : bp_remove(v, addr))
			    : (insert ? hw_insert(type, addr, kind) : hw_remove(type, addr));
	gdb_send_str(&g.link, ok ? "OK" : "E14");
}

/* --- monitor commands (qRcmd) ------------------------------------------ */

static char mon[4096];
static size_t mon_len;

static void mon_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void mon_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kvsnprintf(mon + mon_len, sizeof(mon) - mon_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		mon_len += (size_t)n < sizeof(mon) - mon_len ? (size_t)n : sizeof(mon) - mon_len - 1;
}

/* Console output to gdb: 'O' packets of hex text. */
static void mon_flush(void)
{
	for (size_t at = 0; at < mon_len;) {
		size_t n = mon_len - at > 512 ? 512 : mon_len - at;
		g.out[0] = 'O';
		char *o = gdb_put_hex(g.out + 1, mon + at, n);
		gdb_send(&g.link, g.out, (size_t)(o - g.out));
		at += n;
	}
	mon_len = 0;
}

/* The highest level that exists: the first one not in VMX operation
 * (every level below it is a hypervisor, v->lv[j] its VMX). */
static unsigned top_level(const struct vcpu *v)
{
	unsigned j = 1;
	while (j <= v->nlevels && v->lv[j] && v->lv[j]->vmxon)
		j++;
	return j;
}

static void mon_levels(struct vcpu *v)
{
	unsigned top = top_level(v);
	mon_printf("level 0: Nestor with this stub (vCPU %u)\n", v->id);
	for (unsigned j = 1; j <= top; j++) {
		const struct nested *n = j <= v->nlevels ? v->lv[j] : NULL;
		mon_printf("level %u: %s%s%s\n", j, n && n->vmxon ? "a hypervisor in VMX operation" : "a guest",
			   n && n->vmxon && n->delegated ? ", its guest's VMX emulated by level 0" : "",
			   j == v->cur ? " - runs now" : "");
	}
	mon_printf("gdb shows level %u\n", v->cur);
}

static void mon_stats(struct vcpu *v)
{
	mon_printf("exits at level 0: %llu\n", (unsigned long long)vcpu_total_exits(v));
	unsigned top = top_level(v);
	for (unsigned r = 0; r < EXIT_STATS_MAX; r++) {
		if (!v->stats.count[r])
			continue;
		mon_printf("  %2u %-22s %10llu", r, exit_reason_name(r), (unsigned long long)v->stats.count[r]);
		for (unsigned j = 1; j <= top && j < EXIT_STATS_LEVELS && top > 1; j++)
			mon_printf(" L%u %llu", j, (unsigned long long)v->stats.by_level[j][r]);
		mon_printf("\n");
	}
}

static void cmd_monitor(struct vcpu *v, const char *hex)
{
	char cmd[128];
	size_t n = 0;
	while (hex[0] && hex[1] && n + 1 < sizeof(cmd)) {
		int h = gdb_hexval(hex[0]), l = gdb_hexval(hex[1]);
		if (h < 0 || l < 0)
			break;
		cmd[n++] = (char)(h << 4 | l);
		hex += 2;
	}
	cmd[n] = 0;
	if (!strcmp(cmd, "levels")) {
		mon_levels(v);
	} else if (!strcmp(cmd, "stats")) {
		mon_stats(v);
	} else if (!strncmp(cmd, "level ", 6)) {
		const char *p = cmd + 6;
		uint64_t want = 0;
		bool ok = *p >= '0' && *p <= '9';
		while (*p >= '0' && *p <= '9')
			want = want * 10 + (uint64_t)(*p++ - '0');
		/* Only the running level's state is in the VMCS and the vCPU
		 * now: another level's would be in its VMCS12 or VMCS01. */
		if (ok && !*p && want > v->cur && want <= NESTED_MAX_LEVELS + 1) {
			/* A level above: it does not run yet (or not now). */
			g.wait_level = (unsigned)want;
			mon_printf("gdb will stop at the first exit of level %llu: continue\n", (unsigned long long)want);
		} else if (!ok || *p || (want != 0 && want != v->cur)) {
			mon_printf("level %s: only the level that runs (%u) or one above it can be shown\n", cmd + 6,
				   v->cur);
		} else {
			mon_printf("gdb shows level %u (the one that runs)\n", v->cur);
		}
	} else {
		mon_printf("Nestor monitor commands: levels, stats, level N (the level that runs, or one above it: gdb "
			   "stops when it first runs), help\n");
	}
	mon_flush();
	gdb_send_str(&g.link, "OK");
}

/* --- running and stopping ---------------------------------------------- */

/* The exception bitmap of the VMCS that runs the level gdb sees (SDM
 * 24.6.3): #BP while attached, #DB during a step or with hardware
 * breakpoints.  Above level 1 that is a VMCS02, whose bitmap has the bits
 * its VMCS12 asks for: the stub clears only the bits it set itself in
 * that VMCS (remembered per VMCS). */
static void set_intercepts(struct vcpu *v, bool bp, bool db)
{
	uint32_t want = (bp ? 1u << EXC_BP : 0) | (db ? 1u << EXC_DB : 0);
	struct owned *o = NULL;
	for (unsigned i = 0; i < OWNED_VMCS && !o; i++)
		if (g.owned[i].vmcs == v->loaded_vmcs || !g.owned[i].vmcs)
			o = &g.owned[i];
	if (!o)
		o = &g.owned[0]; /* more VMCSs than levels: forget the oldest */
	if (o->vmcs != v->loaded_vmcs)
		o->vmcs = v->loaded_vmcs, o->bits = 0;
	uint32_t bm = (uint32_t)vmread(VMCS_EXCEPTION_BITMAP);
	uint32_t add = want & ~bm, drop = o->bits & ~want;
	o->bits = (o->bits | add) & ~drop;
	if (add | drop)
		vmwrite(VMCS_EXCEPTION_BITMAP, (bm | add) & ~drop);
}

/* The bits the stub set in the current VMCS's exception bitmap. */
static uint32_t owned_bits(const struct vcpu *v)
{
	for (unsigned i = 0; i < OWNED_VMCS; i++)
		if (g.owned[i].vmcs == v->loaded_vmcs)
			return g.owned[i].bits;
	return 0;
}

/* The timer runs in VMCS01 only, which level 0 alone controls: a VMCS02
 * takes its pin-based controls and timer from its VMCS12, and the nested
 * code uses a zero timer of its own there (the entry probe).  Above level
 * 1 the transport is polled on every exit instead. */

static void set_timer(struct vcpu *v, bool on)
{
	if (!g.timer_ok || v->cur != 1)
		return;
	uint32_t pin = (uint32_t)vmread(VMCS_PIN_BASED_CTLS);
	uint32_t want = on ? pin | PIN_PREEMPTION_TIMER : pin & ~PIN_PREEMPTION_TIMER;
	if (want != pin)
		vmwrite(VMCS_PIN_BASED_CTLS, want);
	if (on)
		vmwrite(VMCS_GUEST_PREEMPTION_TIMER, GDB_TIMER);
	g.timer_armed = on;
}

static void resume(struct vcpu *v, const char *p, bool step)
{
	uint64_t addr;
	if (gdb_parse_hex(&p, &addr))
		vmwrite(VMCS_GUEST_RIP, addr);
	g.stepping = step;
	if (step) {
		uint64_t f = vmread(VMCS_GUEST_RFLAGS);
		g.step_set_tf = !(f & RFLAGS_TF);
		vmwrite(VMCS_GUEST_RFLAGS, f | RFLAGS_TF);
	}
	bool hw = false;
	for (unsigned i = 0; i < 4; i++)
		hw |= g.hw[i].used;
	set_intercepts(v, true, step || hw);
	set_timer(v, true);
}

static void end_session(struct vcpu *v)
{
	for (unsigned i = 0; i < MAX_BPS; i++)
		if (g.bps[i].used)
			bp_remove(v, g.bps[i].addr);
	for (unsigned i = 0; i < 4; i++)
		if (g.hw[i].used)
			hw_remove_slot(i);
	g.attached = false;
	set_intercepts(v, false, false);
	set_timer(v, false);
}

/* Whether a qSupported packet lists a feature (";name" in it). */
static bool has_feature(const char *pkt, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = pkt; *p; p++)
		if ((*p == ';' || *p == ':') && !strncmp(p + 1, name, n) && (p[1 + n] == ';' || !p[1 + n]))
			return true;
	return false;
}

/* Serves gdb's packets with the guest stopped, until it runs again. */
static void serve(struct vcpu *v, const char *stop)
{
	g.attached = true;
	g.wait_level = v->cur == g.wait_level ? 0 : g.wait_level;
	if (stop) {
		g.last_stop = stop;
		gdb_send_str(&g.link, stop);
	}
	for (;;) {
		int n = gdb_recv(&g.link, g.in, sizeof(g.in));
		if (n == -2) { /* Ctrl-C while stopped: already stopped */
			gdb_send_str(&g.link, "S02");
			continue;
		}
		const char *p = g.in + 1;
		switch (g.in[0]) {
		case '?': gdb_send_str(&g.link, g.last_stop); break;
		case 'g': cmd_read_regs(v); break;
		case 'G': cmd_write_regs(v, p); break;
		case 'p': cmd_read_reg(v, p); break;
		case 'P': cmd_write_reg(v, p); break;
		case 'm': cmd_read_mem(v, p); break;
		case 'M': cmd_write_mem(v, p); break;
		case 'Z': cmd_breakpoint(v, p, true); break;
		case 'z': cmd_breakpoint(v, p, false); break;
		case 'H': case 'T': gdb_send_str(&g.link, "OK"); break;
		/* The acknowledgement of 'c' or 's' leaves now (UDP gathers
		 * bytes until the stub waits: it would wait for the next stop). */
		case 'c': resume(v, p, false); g.link.t->flush(g.link.t->ctx); return;
		case 's': resume(v, p, true); g.link.t->flush(g.link.t->ctx); return;
		case 'D':
			gdb_send_str(&g.link, "OK");
			end_session(v);
			/* Not at info level: COM1 is the guest's console too, and
			 * a line of ours would cut one of its lines. */
			pr_debug("gdb: detached, the guest runs on\n");
			return;
		case 'k':
			end_session(v);
			vm_end_run(v, false, "killed by gdb");
		case 'q':
			if (!strncmp(g.in, "qSupported", 10)) {
				g.swbreak = has_feature(g.in, "swbreak+");
				char sup[64];
				ksnprintf(sup, sizeof(sup), "PacketSize=%x;swbreak+;hwbreak+",
					  g.link.t->packet_size ? g.link.t->packet_size : GDB_PACKET_MAX);
				gdb_send_str(&g.link, sup);
			} else if (!strcmp(g.in, "qAttached")) {
				gdb_send_str(&g.link, "1"); /* attached to a running machine: quit detaches */
			} else if (!strcmp(g.in, "qSymbol::")) {
				gdb_send_str(&g.link, "OK");
			} else if (!strncmp(g.in, "qRcmd,", 6)) {
				cmd_monitor(v, g.in + 6);
			} else {
				gdb_send_str(&g.link, "");
			}
			break;
		default: gdb_send_str(&g.link, ""); break; /* not supported */
		}
	}
}

/* A #BP or #DB exit of the level gdb sees that is not the stub's: the
 * guest's own, delivered to it as the CPU would have. */
static void deliver_own(struct vcpu *v, uint32_t info)
{
	unsigned vector = info & 0xff;
	if (vector == EXC_BP) {
		/* A software exception: delivery pushes the RIP after the INT3
		 * (SDM 26.6.1.3, the instruction length). */
		vmwrite(VMCS_VMENTRY_INTR_INFO, INTR_INFO_VALID | (INTR_TYPE_SW_EXCEPTION << 8) | EXC_BP);
		vmwrite(VMCS_VMENTRY_INSTR_LEN, vmread(VMCS_EXIT_INSTR_LEN));
	} else {
		/* A #DB exit leaves DR6 as it was; the exit qualification has
		 * what delivery would have set there (SDM 27.1, table 28-1):
		 * B0-B3, BD, BS. */
		uint64_t q = vmread(VMCS_EXIT_QUALIFICATION) & 0x600f;
		write_dr6((read_dr6() & ~0x600full) | q | 0xffff0ff0ull);
		inject_exception(v, EXC_DB);
	}
}

static bool on_exit(struct vcpu *v, uint32_t reason)
{
	if (v != g.target)
		return false;
	if (reason == EXIT_PREEMPTION_TIMER && v->cur == 1 && g.timer_armed) {
		if (!g.attached)
			set_timer(v, false); /* detached while another level ran */
		else if (gdb_poll_interrupt(&g.link))
			serve(v, "S02"); /* SIGINT */
		else
			vmwrite(VMCS_GUEST_PREEMPTION_TIMER, GDB_TIMER);
		return true;
	}
	if (!g.attached) {
		/* Detached while another VMCS was current: its #BP/#DB intercepts
		 * are still the stub's, dropped at their first exit (the event
		 * goes where it would have gone without them). */
		if (reason != EXIT_EXCEPTION_NMI || !owned_bits(v))
			return false;
		set_intercepts(v, false, false);
		uint32_t info = (uint32_t)vmread(VMCS_EXIT_INTR_INFO);
		unsigned vector = info & 0xff;
		if (((info >> 8) & 7) == INTR_TYPE_NMI || (vector != EXC_BP && vector != EXC_DB) ||
		    nested_exception_exit_wanted(v))
			return false;
		deliver_own(v, info);
		return true;
	}
	if (__builtin_expect(g.wait_level != 0, 0) && v->cur == g.wait_level) {
		/* monitor level N: the first exit of level N, stopped before it
		 * is handled (then handled as any other). */
		serve(v, "S05");
		return false;
	}
	if (reason != EXIT_EXCEPTION_NMI) {
		/* Without the timer (or above level 1), any exit is where a
		 * Ctrl-C is seen: the guest stops before that exit is handled
		 * (then handled). */
		if ((!g.timer_armed || v->cur > 1) && gdb_poll_interrupt(&g.link))
			serve(v, "S02");
		return false;
	}
	uint32_t info = (uint32_t)vmread(VMCS_EXIT_INTR_INFO);
	unsigned type = (info >> 8) & 7, vector = info & 0xff;
	if (type == INTR_TYPE_NMI || (vector != EXC_BP && vector != EXC_DB))
		return false;
	if (vector == EXC_BP && bp_find(vmread(VMCS_GUEST_RIP))) {
		/* RIP is the INT3's own address (an exception exits before
		 * delivery): with "swbreak" gdb takes it as is. */
		if (g.stepping && g.step_set_tf)
			vmwrite(VMCS_GUEST_RFLAGS, vmread(VMCS_GUEST_RFLAGS) & ~RFLAGS_TF);
		g.stepping = g.step_set_tf = false;
		serve(v, g.swbreak ? "T05swbreak:;" : "S05");
		return true;
	}
	uint64_t qual = vector == EXC_DB ? vmread(VMCS_EXIT_QUALIFICATION) : 0;
	for (unsigned i = 0; i < 4; i++) {
		const struct hwbp *h = &g.hw[i];
		if (!(qual & (1u << i)) || !h->used)
			continue;
		if (g.stepping && g.step_set_tf)
			vmwrite(VMCS_GUEST_RFLAGS, vmread(VMCS_GUEST_RFLAGS) & ~RFLAGS_TF);
		g.stepping = g.step_set_tf = false;
		/* An instruction breakpoint is a fault: RIP is the instruction's,
		 * and gdb steps over it with the breakpoints removed.  A data
		 * breakpoint is a trap after the access. */
		if (h->type == 1)
			ksnprintf(g.stop_buf, sizeof(g.stop_buf), "T05hwbreak:;");
		else
			ksnprintf(g.stop_buf, sizeof(g.stop_buf), "T05%s:%llx;", h->type == 2 ? "watch" : "awatch",
				  (unsigned long long)h->addr);
		serve(v, g.stop_buf);
		return true;
	}
	if (vector == EXC_DB && g.stepping && (qual & (1u << 14))) {
		if (g.step_set_tf)
			vmwrite(VMCS_GUEST_RFLAGS, vmread(VMCS_GUEST_RFLAGS) & ~RFLAGS_TF);
		g.stepping = g.step_set_tf = false;
		serve(v, "S05");
		return true;
	}
	/* Not the stub's: the guest's own #BP or #DB - its hypervisor's
	 * exit when it intercepts it (the nested path reflects it), else
	 * delivered to it. */
	if (nested_exception_exit_wanted(v))
		return false;
	deliver_own(v, info);
	return true;
}

static void on_first_entry(struct vcpu *v)
{
	g.target = v;
	pr_info("gdb: waiting for gdb on %s (target remote ...), the guest stopped before its first instruction\n",
		g.link.t->name);
	/* gdb asks why it stopped ('?') once connected: nothing unasked. */
	g.last_stop = "S05";
	serve(v, NULL);
}

static void on_end(struct vcpu *v, bool failed)
{
	(void)v;
	if (!g.attached)
		return;
	/* gdb learns the end as the exit of its process. */
	gdb_send_str(&g.link, failed ? "W01" : "W00");
	g.link.t->flush(g.link.t->ctx);
	g.attached = false;
}

static const struct vmx_debug_ops ops = {
	.first_entry = on_first_entry,
	.exit = on_exit,
	.end = on_end,
};

void gdb_boot(unsigned level)
{
	if (config.gdb == GDB_OFF)
		return;
	if (level != 0) {
		pr_warn("gdb=: only level 0 has the stub (COM2 and the debug NIC above it are its guest's); ignored\n");
		return;
	}
	if (config.gdb == GDB_UDP) {
		if (!config.debugnic[0] || !strcmp(config.debugnic, "off")) {
			pr_err("bad command line: gdb=udp needs the debug NIC: add debugnic=on (docs/gdb.md)\n");
			machine_end(true);
		}
		g.link.t = gdb_udp_transport();
		if (!g.link.t) {
			pr_warn("gdb=udp: the debug NIC is not up: no stub, the guest runs\n");
			return;
		}
	} else {
		g.link.t = gdb_serial_transport();
		if (!g.link.t) {
			pr_warn("gdb=serial: no UART at COM2 (0x2f8): no stub, the guest runs\n");
			return;
		}
	}
	/* IA32_VMX_PINBASED_CTLS (or its TRUE variant), allowed-1 half. */
	uint64_t msr = rdmsr((rdmsr(0x480) & (1ull << 55)) ? 0x48d : 0x481);
	g.timer_ok = (msr >> 32) & PIN_PREEMPTION_TIMER;
	if (!g.timer_ok)
		pr_warn("gdb: no VMX-preemption timer: Ctrl-C reaches the stub only at the guest's next exit\n");
	vmx_debug = &ops;
}
