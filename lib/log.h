/* log.h - Nestor's console: COM1 for people, port 0xE9 for bulk logs.
 *
 * Every line Nestor prints starts with "nestor[L]: " (L = its level in the
 * stack), so its output is easy to tell from its guest's on the shared serial
 * port.  Messages above the COM1 threshold (loglevel=) are dropped from COM1;
 * with e9log=on every message of every level is also copied to port 0xE9,
 * which costs almost nothing under Bochs. */
#ifndef LIB_LOG_H
#define LIB_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };
extern const char *const log_level_names[]; /* NULL-terminated, for option tables */

void log_init(void);
void log_set_level(enum log_level l);
void log_set_e9(bool on);
void log_set_prefix_level(unsigned level);

/* A function that also gets every line printed on COM1, prefix and '\n'
 * included (at most 511 bytes: longer lines are cut), when the line is
 * complete - the debug NIC's log streaming (net/debugnic.c).  It runs with
 * the console lock held: it must not print.  NULL: none (the default). */
typedef void (*log_line_sink_fn)(const char *line, size_t len);
void log_set_line_sink(log_line_sink_fn fn);

void klog(enum log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define pr_err(...) klog(LOG_ERROR, __VA_ARGS__)
#define pr_warn(...) klog(LOG_WARN, __VA_ARGS__)
#define pr_info(...) klog(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) klog(LOG_DEBUG, __VA_ARGS__)
#define pr_trace(...) klog(LOG_TRACE, __VA_ARGS__)

/* Unconditional output on every console, also from panic paths: it takes
 * the console lock only if it can, so a panic while printing still prints. */
void kprintf_emergency(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Waits until COM1 has sent everything (before powering off). */
void log_flush(void);

#endif
