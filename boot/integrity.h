/* integrity.h - a hash of Nestor's own code and read-only data, taken at
 * boot and checked at the end of every run: a guest that managed to write
 * into Nestor would be caught here. */
#ifndef BOOT_INTEGRITY_H
#define BOOT_INTEGRITY_H

#include <stdbool.h>
#include <stdint.h>

void integrity_init(void);
/* Recomputes the hash; prints the result; false when it changed. */
bool integrity_check(void);

#endif
