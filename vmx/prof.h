/* prof.h - where level 0's ticks go in a nested transition (issue 16).
 *
 * A profiling build (`make prof`: -DNESTOR_PROFILE, build/prof/nestor.elf)
 * splits the ticks of every exit that goes through the nested path into
 * phases: each PROF_MARK adds the ticks since the previous mark of this
 * vCPU to a phase (vmx_handle_exit sets the first one at the exit's first
 * instruction).  The counters live in struct exit_stats, so the stats
 * hypercalls snapshot and read them like the exit counters (reason
 * NESTOR_STATS_PHASE0 + phase; docs/abi.md).  In a normal build the marks
 * are nothing at all. */
#ifndef VMX_PROF_H
#define VMX_PROF_H

#include "lib/x86.h"
#include "vmx/vcpu.h"

#ifdef NESTOR_PROFILE
static inline void prof_start(struct vcpu *v, uint64_t t0) { v->prof_t = t0; }
static inline void prof_mark(struct vcpu *v, enum prof_phase p)
{
	uint64_t t = rdtsc();
	v->stats.phase_ticks[p] += t - v->prof_t;
	v->stats.phase_count[p]++;
	v->prof_t = t;
}
#define PROF_START(v, t0) prof_start((v), (t0))
#define PROF_MARK(v, p) prof_mark((v), (p))
#else
#define PROF_START(v, t0) ((void)0)
#define PROF_MARK(v, p) ((void)0)
#endif

#endif
