/* cmdline.h - strict parser for "name=value name2 ..." command lines.
 *
 * Each option is declared once in a table (name, type, destination, help);
 * the parser fills the destinations and fails with a one-line message on an
 * unknown option or a malformed value.  Nothing is guessed: "mem=16Q" is an
 * error, not 16 bytes.  A repeated option takes its last value. */
#ifndef LIB_CMDLINE_H
#define LIB_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum opt_type {
	OPT_FLAG,   /* "name" alone, or name=on|off|yes|no|1|0 -> bool */
	OPT_UINT,   /* decimal or 0x-hex -> uint64_t, within [min, max] */
	OPT_SIZE,   /* number with optional K/M/G suffix (binary) -> uint64_t, within [min, max] */
	OPT_CHOICE, /* one of choices[] -> unsigned index */
	OPT_STRING, /* copied into a char[max] buffer (max = buffer size) */
	OPT_SET,    /* comma-separated names of choices[] (or "none") -> unsigned bit mask, bit i = choices[i] */
};

struct opt_desc {
	const char *name;
	enum opt_type type;
	void *dest;
	uint64_t min, max;
	const char *const *choices; /* OPT_CHOICE, OPT_SET: NULL-terminated (at most 32 for a set) */
	const char *help;
};

/* Returns 0, or -1 with a message in err. */
int cmdline_parse(const char *cmdline, const struct opt_desc *opts, size_t nopts, char *err, size_t errlen);

/* Parses a size ("4096", "0x1000", "16K", "2M", "1G"); returns 0 or -1. */
int parse_size(const char *s, size_t len, uint64_t *out);
/* Parses an unsigned number (decimal or 0x hex); returns 0 or -1. */
int parse_uint(const char *s, size_t len, uint64_t *out);

#endif
