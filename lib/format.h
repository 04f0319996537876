/* format.h - printf-style formatting for freestanding code.
 * Supports the flags - + space # 0, width and precision (also as *), the
 * length modifiers hh h l ll z j t, and the conversions d i u o x X c s p %.
 * Unknown conversions are printed verbatim so a bad format is visible. */
#ifndef LIB_FORMAT_H
#define LIB_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

typedef void (*format_sink)(void *ctx, char c);

/* Formats into sink; returns the number of characters produced. */
int vformat(format_sink sink, void *ctx, const char *fmt, va_list ap);

/* snprintf semantics: always NUL-terminates when size > 0, returns the
 * length the full output would have had. */
int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int ksnprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
