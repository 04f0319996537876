/* cov.h - basic-block coverage of a coverage build of Nestor (make cov).
 *
 * The coverage build compiles nested/ and vmx/ with gcc's
 * -fsanitize-coverage=trace-pc: every basic block calls
 * __sanitizer_cov_trace_pc(), which lib/cov.c records (distinct return
 * addresses, in a fixed table).  At the end of a run cov_dump() writes them
 * to port 0xE9 (Bochs' stdout) as lines "nestor-cov <pc>" (every level of a stack
 * alike: Nestor runs at the same virtual addresses at every level), for
 * tools/cov-report.c.  In a normal build cov_dump() is empty. */
#ifndef LIB_COV_H
#define LIB_COV_H

#ifdef NESTOR_COV
void cov_dump(void);
#else
static inline void cov_dump(void) {}
#endif

#endif
