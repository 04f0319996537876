/* sync.c - what one vCPU asks of the others, on other CPUs: take an INIT,
 * flush their EPT translations, drop their shadow EPTs, stop while the EPT
 * is rebuilt.
 *
 * A request is a bit in the target's `requests`, and an NMI - a kick - so
 * that it looks: an NMI exit if it runs its guest, Nestor's NMI handler if
 * it is in root operation.  One kick is outstanding at most (`kicked`), and
 * an NMI is the guest's only when none is.  The target takes
 * its requests at the end of the exit it is handling (vcpu_take_requests,
 * vmx_handle_exit), never in NMI context: by then it holds no lock and its
 * VMCS is in order.  A vCPU whose running context waits for SIPI (`parked`:
 * our guest's AP, or its guest's) runs no guest code and does not take
 * NMIs: it is not kicked, and takes what it was asked when its SIPI comes.
 *
 * Stopping the others (vm_stop_others / vm_resume_others) is a rendezvous:
 * one initiator at a time (vm->sync_lock; one that waits for it serves the
 * other's requests meanwhile, so two initiators never wait on each other),
 * every running vCPU parks in vcpu_take_requests until released. */
#include "boot/cpu.h"
#include "boot/delay.h"
#include "boot/lapic.h"
#include "boot/smp.h"
#include "lib/log.h"
#include "lib/x86.h"
#include "nested/nested.h"
#include "vmx/ept.h"
#include "vmx/exits.h"
#include "vmx/vmx.h"

bool vcpu_kicked(struct vcpu *v) { return __atomic_exchange_n(&v->kicked, false, __ATOMIC_ACQ_REL); }

/* One NMI outstanding at most: a CPU holds one pending NMI, not more. */
static void kick(struct vcpu *from, struct vcpu *t)
{
	if (__atomic_exchange_n(&t->kicked, true, __ATOMIC_ACQ_REL))
		return;
	if (!lapic_send(smp_apic_id(t->id), ICR_NMI | ICR_ASSERT))
		pr_warn("vCPU %u: the local APIC did not take the NMI for vCPU %u\n", from->id, t->id);
}

/* Waits until done(t), ms milliseconds at most.  A kick that t took
 * without looking (in Nestor, after the end of its exit handler) is sent
 * again. */
static bool done(struct vcpu *t, unsigned bits)
{
	/* bits: until t took these requests; 0: until t is stopped. */
	if (bits)
		return !(__atomic_load_n(&t->requests, __ATOMIC_ACQUIRE) & bits);
	return __atomic_load_n(&t->paused, __ATOMIC_ACQUIRE) || __atomic_load_n(&t->parked, __ATOMIC_ACQUIRE);
}

/* What a vCPU that waits for others does meanwhile: the requests it can
 * take in the middle of an exit - stop, flush its EPT translations, drop
 * its shadow EPTs (no exit handler keeps a shadow table across a wait) -
 * since the vCPU it waits for may be waiting for it.  (Measured before:
 * with 4 CPUs, vCPUs each emulating an INVEPT waited 100 ms on each other
 * for the shadows to go.)  An INIT waits for the end of the exit. */
static void serve_pause(struct vcpu *v, bool at_end);

static void serve_while_waiting(struct vcpu *v)
{
	serve_pause(v, false);
	unsigned mine = REQ_INVEPT | REQ_DROP_SHADOWS;
	unsigned r = __atomic_fetch_and(&v->requests, ~mine, __ATOMIC_ACQ_REL) & mine;
	if (r & REQ_INVEPT)
		ept_invalidate(v->vm);
	if (r & REQ_DROP_SHADOWS)
		nested_drop_shadows(v);
}

static bool wait_for(struct vcpu *from, struct vcpu *t, unsigned bits, const char *what, unsigned ms)
{
	for (unsigned i = 0; i < ms; i++) {
		for (unsigned us = 0; us < 1000; us += 10) {
			if (done(t, bits))
				return true;
			/* Two vCPUs may wait on each other. */
			serve_while_waiting(from);
			udelay(10);
		}
		if (!__atomic_load_n(&t->parked, __ATOMIC_ACQUIRE))
			kick(from, t);
	}
	/* (A CPU whose guest's guest waits for SIPI takes no NMI: it runs
	 * nothing, but its level cannot tell.) */
	pr_warn("vCPU %u: vCPU %u did not %s within %u ms\n", from->id, t->id, what, ms);
	return false;
}


void vcpu_send_init(struct vcpu *from, struct vcpu *t)
{
	if (__atomic_load_n(&t->waiting_sipi, __ATOMIC_ACQUIRE))
		return; /* it already waits: an INIT changes nothing */
	__atomic_or_fetch(&t->requests, REQ_INIT, __ATOMIC_ACQ_REL);
	kick(from, t);
	/* On the CPU an INIT acts at once: wait until it did. */
	wait_for(from, t, REQ_INIT, "take its INIT", 100);
}

void vcpu_send_sipi(struct vcpu *from, struct vcpu *t, unsigned vector)
{
	/* A SIPI reaches only a CPU that waits for one (SDM 10.4). */
	if (!__atomic_load_n(&t->waiting_sipi, __ATOMIC_ACQUIRE))
		return;
	t->sipi_vector = (uint8_t)vector;
	__atomic_or_fetch(&t->requests, REQ_SIPI, __ATOMIC_ACQ_REL);
	kick(from, t); /* it halts in vcpu_park: the NMI wakes it */
}

void vcpu_park(struct vcpu *v)
{
	__atomic_store_n(&v->parked, true, __ATOMIC_RELEASE);
	for (;;) {
		/* What the others ask meanwhile; an INIT changes nothing. */
		unsigned r = __atomic_load_n(&v->requests, __ATOMIC_ACQUIRE);
		if (r & REQ_PAUSE)
			serve_pause(v, true);
		r = __atomic_fetch_and(&v->requests, REQ_PAUSE | REQ_SIPI, __ATOMIC_ACQ_REL);
		if (r & REQ_INVEPT)
			ept_invalidate(v->vm);
		if (r & REQ_DROP_SHADOWS)
			nested_drop_shadows(v);
		if (r & REQ_SIPI)
			break;
		/* Halted until a kick; one that comes after the look at the
		 * requests restarts it (vmx/entry.S, vmx_park_window). */
		vmx_park_halt(&v->requests);
	}
	__atomic_and_fetch(&v->requests, ~REQ_SIPI, __ATOMIC_ACQ_REL);
	vcpu_start_at(v, v->sipi_vector);
	__atomic_store_n(&v->parked, false, __ATOMIC_RELEASE);
}

void vm_ask_others(struct vcpu *v, unsigned req)
{
	struct vm *vm = v->vm;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *t = vm->vcpus[i];
		if (!t || t == v)
			continue;
		__atomic_or_fetch(&t->requests, req, __ATOMIC_ACQ_REL);
		/* A parked vCPU takes it before it runs anything again. */
		if (__atomic_load_n(&t->parked, __ATOMIC_ACQUIRE))
			continue;
		kick(v, t);
		wait_for(v, t, req, "take a request", 100);
	}
}

void vm_stop_others(struct vcpu *v, unsigned ms)
{
	struct vm *vm = v->vm;
	/* (Already ours: the end of a run met while the others are stopped.) */
	if (__atomic_load_n(&vm->sync_lock, __ATOMIC_ACQUIRE) == (int)v->id + 1)
		return;
	int none = 0;
	while (!__atomic_compare_exchange_n(&vm->sync_lock, &none, (int)v->id + 1, false, __ATOMIC_ACQUIRE,
					    __ATOMIC_RELAXED)) {
		none = 0;
		serve_while_waiting(v);
		pause();
	}
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *t = vm->vcpus[i];
		if (!t || t == v)
			continue;
		__atomic_or_fetch(&t->requests, REQ_PAUSE, __ATOMIC_ACQ_REL);
		if (!__atomic_load_n(&t->parked, __ATOMIC_ACQUIRE))
			kick(v, t);
	}
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *t = vm->vcpus[i];
		if (t && t != v)
			wait_for(v, t, 0, "stop", ms);
	}
}

void vm_resume_others(struct vcpu *v, unsigned after)
{
	struct vm *vm = v->vm;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *t = vm->vcpus[i];
		if (!t || t == v)
			continue;
		__atomic_or_fetch(&t->requests, after, __ATOMIC_ACQ_REL);
		__atomic_and_fetch(&t->requests, ~REQ_PAUSE, __ATOMIC_ACQ_REL);
	}
	__atomic_store_n(&vm->sync_lock, 0, __ATOMIC_RELEASE);
}

static void serve_pause(struct vcpu *v, bool at_end)
{
	if (!(__atomic_load_n(&v->requests, __ATOMIC_ACQUIRE) & REQ_PAUSE))
		return;
	v->paused_at_end = at_end;
	__atomic_store_n(&v->paused, true, __ATOMIC_RELEASE);
	while (__atomic_load_n(&v->requests, __ATOMIC_ACQUIRE) & REQ_PAUSE) {
		void (*work)(struct vcpu *, void *) = __atomic_load_n(&v->pause_work, __ATOMIC_ACQUIRE);
		if (work) {
			work(v, v->pause_arg);
			__atomic_store_n(&v->pause_work, NULL, __ATOMIC_RELEASE);
		}
		pause();
	}
	__atomic_store_n(&v->paused, false, __ATOMIC_RELEASE);
	/* The EPT changed meanwhile: no translation of before may stay. */
	if (__atomic_fetch_and(&v->requests, ~REQ_INVEPT, __ATOMIC_ACQ_REL) & REQ_INVEPT)
		ept_invalidate(v->vm);
}

bool vm_others_stopped_whole(struct vcpu *v)
{
	struct vm *vm = v->vm;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *t = vm->vcpus[i];
		if (!t || t == v || __atomic_load_n(&t->parked, __ATOMIC_ACQUIRE))
			continue;
		if (!__atomic_load_n(&t->paused, __ATOMIC_ACQUIRE) || !t->paused_at_end)
			return false;
	}
	return true;
}

void vm_run_on(struct vcpu *t, void (*work)(struct vcpu *t, void *arg), void *arg)
{
	t->pause_arg = arg;
	__atomic_store_n(&t->pause_work, work, __ATOMIC_RELEASE);
	while (__atomic_load_n(&t->pause_work, __ATOMIC_ACQUIRE))
		pause();
}

void vcpu_take_requests(struct vcpu *v)
{
	serve_pause(v, true);
	unsigned r = __atomic_fetch_and(&v->requests, REQ_PAUSE, __ATOMIC_ACQ_REL) & ~REQ_PAUSE;
	if (r & REQ_INVEPT)
		ept_invalidate(v->vm);
	if (r & REQ_DROP_SHADOWS)
		nested_drop_shadows(v);
	if (r & REQ_INIT) {
		/* In VMX operation the INIT is held (root) or an INIT exit (its
		 * guest runs, SDM 25.2): nested/signals.c, here or - our guest's
		 * VMX delegated - in the Nestor below that emulates it. */
		if (!nested_guest_init(v, 1) && !(v->vm->delegated && guest_init_below()))
			vcpu_reset(v, false);
	}
}

int vm_ept_rebuild(struct vcpu *v, const struct mtrr_state *types, bool drop_shadows)
{
	/* The tables are remade under the same root: no other vCPU may walk
	 * them meanwhile, and none may keep a translation of before. */
	bool smp = v->vm->ncpus > 1;
	if (smp)
		vm_stop_others(v, 1000);
	if (types)
		v->vm->mtrr = *types;
	int r = ept_rebuild(v->vm);
	if (!r && drop_shadows)
		nested_drop_shadows(v);
	if (smp)
		vm_resume_others(v, REQ_INVEPT | (drop_shadows ? REQ_DROP_SHADOWS : 0));
	return r;
}
