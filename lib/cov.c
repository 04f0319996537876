/* cov.c - the coverage recorder of a coverage build (see cov.h); linked
 * only into build/cov/nestor.elf, and itself not instrumented. */
#include "lib/cov.h"
#include "lib/format.h"
#include "lib/x86.h"
#include <stdarg.h>
#include <stdint.h>

void __sanitizer_cov_trace_pc(void);

/* Open addressing on the return address: far more slots than nested/ and
 * vmx/ have basic blocks, so a probe ends quickly; a full table drops new
 * PCs (counted, and reported by the dump). */
#define COV_SLOTS 16384
static uint64_t slots[COV_SLOTS];
static uint64_t dropped;

void __sanitizer_cov_trace_pc(void)
{
	uint64_t pc = (uint64_t)__builtin_return_address(0);
	uint64_t i = (pc * 0x9e3779b97f4a7c15ull) >> 50; /* 14 bits */
	for (unsigned n = 0; n < COV_SLOTS; n++, i = (i + 1) & (COV_SLOTS - 1)) {
		uint64_t s = slots[i];
		if (s == pc)
			return;
		if (s == 0) {
			/* Several CPUs record at once: claim the slot atomically;
			 * if another CPU took it meanwhile, look at what it put. */
			if (__atomic_compare_exchange_n(&slots[i], &s, pc, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED) ||
			    s == pc)
				return;
		}
	}
	__atomic_fetch_add(&dropped, 1, __ATOMIC_RELAXED);
}

static void e9(void *ctx, char c)
{
	(void)ctx;
	outb(DEBUGCON_PORT, (uint8_t)c);
}

static void e9printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vformat(e9, 0, fmt, ap);
	va_end(ap);
}

void cov_dump(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < COV_SLOTS; i++)
		if (slots[i]) {
			e9printf("nestor-cov %llx\n", (unsigned long long)slots[i]);
			n++;
		}
	e9printf("nestor-cov-end %u pcs, %llu dropped\n", n, (unsigned long long)dropped);
}
