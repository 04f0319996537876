/* platform.h - how a run of Nestor ends, and the panic path. */
#ifndef BOOT_PLATFORM_H
#define BOOT_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

enum end_action { END_AUTO, END_SHUTDOWN, END_HALT };
extern const char *const end_action_names[];

/* Probe the debug console port (0xE9 reads back 0xE9 under Bochs and
 * QEMU's isa-debugcon); decides what END_AUTO does. */
void platform_detect(void);
bool platform_has_debugcon(void);
void platform_set_end_action(enum end_action a);

/* Ends the run: under an emulator with the Bochs shutdown port (or with
 * end=shutdown) powers off through it; otherwise halts this CPU for good. */
__attribute__((noreturn)) void machine_end(bool failed);

__attribute__((noreturn, format(printf, 1, 2))) void panic(const char *fmt, ...);

/* Prints the frame-pointer chain starting at rbp. */
void print_backtrace(uint64_t rip, uint64_t rbp);

#endif
