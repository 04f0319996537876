/* drvcheck.c - the driver check's engine (sec/drvcheck.h).
 *
 * drvcheck=BB:DD.F watches one PCI function for the guest: its
 * configuration space exits (CF8/CFC, and its ECAM page where there is
 * one), its memory BAR0 is trapped, its I/O BARs exit too (an e1000's I/O
 * window, IOADDR/IODATA, reaches every register: the profile says which
 * window the driver may open).  Each access the guest makes is held
 * against the rules of the phase the bring-up is in:
 *  - configuration reads are always allowed (they change nothing);
 *  - any other access must match a rule of the current phase, or the
 *    sequence is wrong: BAR0 is blocked for good (reads all ones, writes
 *    dropped) and the log says which access, in which phase;
 *  - a rule may move to the next phase; when the bring-up reaches the
 *    profile's "granted" phase, the DMA addresses the driver wrote (the
 *    descriptor rings) must lie in the guest's own RAM, and then BAR0 is
 *    mapped directly: the driver's fast path has no exit any more.
 *
 * drvcheck_mode=trace allows everything and logs every access: the way to
 * record a driver's sequence when writing a new profile. */
#include "boot/config.h"
#include "boot/platform.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/pci.h"
#include "lib/spinlock.h"
#include "lib/string.h"
#include "mm/mm.h"
#include "sec/drvcheck.h"
#include "sec/sec.h"
#include "vmx/vcpu.h"

#define MAX_DMA 8

/* The state of one checked device: per VM, shared by its vCPUs. */
struct drvcheck {
	spinlock_t lock;
	uint16_t bdf;
	const struct drv_profile *p;
	unsigned phase;
	bool granted, blocked, trace;
	bool map_now;                 /* granted by the access being decided */
	uint32_t boot_bar[6];         /* the BARs as the firmware left them */
	uint32_t dma_val[MAX_DMA][3]; /* lo, hi, len as last written */
	uint64_t accesses;            /* decided while trapped */
};

static enum sec_verdict drvcheck_decide(const struct sec_function *f, struct vcpu *v, struct sec_access *a);

/* Boot-time: the function and where its state is (pool memory). */
static struct drvcheck *dc;
static const struct sec_function drvcheck_fn = { "drvcheck", drvcheck_decide };

static const struct drv_profile *const profiles[] = { &drv_e1000 };

static const char *space_of(const struct sec_access *a)
{
	return a->space == SEC_PCI_CONFIG ? "config" : a->space == SEC_PORT ? "port" : "BAR0";
}

/* A BAR written back where the firmware put it, or sized (all ones). */
static bool boot_value(const struct sec_access *a)
{
	unsigned i = (a->reg - 0x10) / 4;
	return a->size == 4 && (a->reg & 3) == 0 && i < 6 && (a->value == ~0u || a->value == dc->boot_bar[i]);
}

static bool rule_matches(const struct drv_rule *r, const struct sec_access *a)
{
	unsigned space = a->space == SEC_PCI_CONFIG ? DRV_CONFIG : a->space == SEC_PORT ? DRV_IO : DRV_BAR0;
	if (r->space != space || !(r->access & (a->write ? DRV_W : DRV_R)))
		return false;
	if (a->reg < r->reg || a->reg + a->size > r->reg + r->len)
		return false;
	if (a->write && (r->flags & DRV_BOOT_VALUE) && !boot_value(a))
		return false;
	return !a->write || !r->mask || (a->value & r->mask) == r->want;
}

/* The DMA registers keep what the driver wrote into them. */
static void note_dma(const struct sec_access *a)
{
	if (a->space != SEC_MEMORY || !a->write || a->size != 4)
		return;
	for (unsigned i = 0; i < dc->p->n_dma && i < MAX_DMA; i++) {
		const struct drv_dma *d = &dc->p->dma[i];
		uint32_t regs[3] = { d->lo, d->hi, d->len };
		for (unsigned k = 0; k < 3; k++)
			if (a->reg == regs[k])
				dc->dma_val[i][k] = a->value;
	}
}

/* Every ring the driver set up lies in its own RAM (no IOMMU here: the
 * rings are what the device will read and write by DMA). */
static bool dma_ok(struct vcpu *v, char *why, size_t n)
{
	for (unsigned i = 0; i < dc->p->n_dma && i < MAX_DMA; i++) {
		uint64_t base = (uint64_t)dc->dma_val[i][1] << 32 | dc->dma_val[i][0];
		uint64_t len = dc->dma_val[i][2];
		if (!len)
			continue;
		if (base + len < base || !rs_contains(&v->vm->guest_ram, base, base + len)) {
			ksnprintf(why, n, "its %s [0x%llx, 0x%llx) is not the guest's RAM", dc->p->dma[i].what,
				  (unsigned long long)base, (unsigned long long)(base + len));
			return false;
		}
	}
	return true;
}

static enum sec_verdict refuse(struct vcpu *v, const struct sec_access *a, const char *why)
{
	dc->blocked = true;
	char how[32] = "";
	if (a->size && a->write)
		ksnprintf(how, sizeof(how), " (%u-bit, 0x%x)", 8 * a->size, a->value);
	else if (a->size)
		ksnprintf(how, sizeof(how), " (%u-bit)", 8 * a->size);
	pr_warn("drvcheck: %02x:%02x.%x: level %u %s %s+0x%x%s in phase '%s': %s: the device is blocked for good\n",
		PCI_BUS(dc->bdf), PCI_DEV(dc->bdf), PCI_FN(dc->bdf), a->level,
		!a->size ? "accesses" : a->write ? "writes" : "reads", space_of(a), a->reg, how,
		dc->p->phases[dc->phase].name, why);
	return SEC_BLOCK;
}

static enum sec_verdict decide_locked(struct vcpu *v, struct sec_access *a)
{
	dc->accesses++;
	if (dc->trace) {
		pr_info("drvcheck: trace: level %u %s %s+0x%x %u-bit 0x%x\n", a->level, a->write ? "W" : "R", space_of(a),
			a->reg, 8 * a->size, a->write ? a->value : 0);
		return SEC_ALLOW;
	}
	/* Reading configuration space changes nothing: the device stays
	 * listed, blocked or not. */
	if (a->space == SEC_PCI_CONFIG && !a->write)
		return SEC_ALLOW;
	if (dc->blocked)
		return SEC_BLOCK;
	/* An access the layer could not take (sec/sec.h): not a driver's. */
	if (a->space == SEC_MEMORY && !a->size)
		return refuse(v, a, "an instruction that is not a plain load or store, or an access from a level above "
				    "the guest");
	/* The rules of every phase, then the current phase's. */
	const struct drv_phase *ph = &dc->p->phases[dc->phase];
	const struct drv_rule *r = NULL;
	for (unsigned i = 0; !r && i < dc->p->n_common; i++)
		if (rule_matches(&dc->p->common[i], a))
			r = &dc->p->common[i];
	for (unsigned i = 0; !r && i < ph->n_rules; i++)
		if (rule_matches(&ph->rules[i], a))
			r = &ph->rules[i];
	if (!r)
		return refuse(v, a, "not in the expected sequence");
	note_dma(a);
	char why[128];
	if ((r->flags & DRV_CHECK_DMA) && !dma_ok(v, why, sizeof(why)))
		return refuse(v, a, why);
	if (r->next && r->next != dc->phase) {
		pr_info("drvcheck: %02x:%02x.%x: phase '%s' -> '%s' (%s)\n", PCI_BUS(dc->bdf), PCI_DEV(dc->bdf),
			PCI_FN(dc->bdf), ph->name, dc->p->phases[r->next].name, r->what);
		dc->phase = r->next;
	}
	if (dc->phase == dc->p->granted && !dc->granted) {
		dc->granted = true;
		dc->map_now = true;
		pr_info("drvcheck: %02x:%02x.%x: %s brought up as expected (%llu accesses checked): BAR0 mapped "
			"directly\n",
			PCI_BUS(dc->bdf), PCI_DEV(dc->bdf), PCI_FN(dc->bdf), dc->p->name, (unsigned long long)dc->accesses);
	}
	return SEC_ALLOW;
}

static enum sec_verdict drvcheck_decide(const struct sec_function *f, struct vcpu *v, struct sec_access *a)
{
	spin_lock(&dc->lock);
	enum sec_verdict r = decide_locked(v, a);
	bool map = dc->map_now;
	dc->map_now = false;
	spin_unlock(&dc->lock);
	/* Outside the lock: mapping stops the other vCPUs, which may be
	 * waiting for it.  The access itself is done by the caller; the next
	 * one goes straight to the device. */
	if (map)
		sec_map_direct(&drvcheck_fn, v, dc->bdf, 0);
	return r;
}

void drvcheck_init(void)
{
	if (!config.drvcheck[0])
		return;
	uint16_t bdf;
	if (sec_parse_bdf(config.drvcheck, strlen(config.drvcheck), &bdf)) {
		pr_err("bad command line: drvcheck=: '%s' is not a PCI address BB:DD.F (hexadecimal)\n", config.drvcheck);
		machine_end(true);
	}
	uint32_t id = pci_read32(bdf, PCI_VENDOR_ID);
	const struct drv_profile *p = NULL;
	for (unsigned i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		if (profiles[i]->vendor == (id & 0xffff) && profiles[i]->device == id >> 16)
			p = profiles[i];
	if (!p) {
		pr_err("drvcheck: %s (%04x:%04x): no profile for this device (known: e1000 8086:100e)\n", config.drvcheck,
		       id & 0xffff, id >> 16);
		machine_end(true);
	}
	dc = zalloc(sizeof(*dc));
	if (!dc) {
		pr_err("drvcheck: out of pool memory\n");
		machine_end(true);
	}
	*dc = (struct drvcheck){ .bdf = bdf, .p = p, .phase = 1, .trace = config.drvcheck_trace };
	for (unsigned i = 0; i < 6; i++)
		dc->boot_bar[i] = pci_read32(bdf, PCI_BAR0 + 4 * i);
	char err[160];
	if (sec_watch(&drvcheck_fn, bdf, SEC_MEM_TRAP, err, sizeof(err))) {
		pr_err("drvcheck: %s\n", err);
		machine_end(true);
	}
	pr_info("drvcheck: %s (%s): %s; BAR0 trapped until the bring-up is checked\n", config.drvcheck, p->name,
		dc->trace ? "tracing every access (drvcheck_trace)" : "checking the driver's bring-up");
}
