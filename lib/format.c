/* format.c - the one printf engine of Nestor and its guest kernels. */
#include "lib/format.h"
#include <stdbool.h>
#include <stdint.h>

struct spec {
	bool left, plus, space, alt, zero;
	int width, prec; /* prec < 0: none */
};

struct out {
	format_sink sink;
	void *ctx;
	int n;
};

static void put(struct out *o, char c)
{
	o->sink(o->ctx, c);
	o->n++;
}

static void pad(struct out *o, char c, int n)
{
	while (n-- > 0)
		put(o, c);
}

/* Emit a converted number: prefix (sign or 0x), digits, honouring width,
 * precision and the - and 0 flags exactly like C's printf. */
static void emit_number(struct out *o, const struct spec *s, const char *prefix, const char *digits, int ndig)
{
	int plen = 0;
	while (prefix[plen])
		plen++;
	int zeros = s->prec > ndig ? s->prec - ndig : 0;
	int total = plen + zeros + ndig;
	int fill = s->width > total ? s->width - total : 0;
	if (!s->left && !(s->zero && s->prec < 0))
		pad(o, ' ', fill), fill = 0;
	for (int i = 0; i < plen; i++)
		put(o, prefix[i]);
	if (!s->left && s->zero && s->prec < 0)
		pad(o, '0', fill), fill = 0;
	pad(o, '0', zeros);
	for (int i = 0; i < ndig; i++)
		put(o, digits[i]);
	pad(o, ' ', fill);
}

static void fmt_unsigned(struct out *o, const struct spec *s, uintmax_t v, unsigned base, bool upper,
			 const char *prefix)
{
	const char *alpha = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0;
	/* C: a zero value with precision 0 prints no digits. */
	if (!(v == 0 && s->prec == 0)) {
		do {
			tmp[n++] = alpha[v % base];
			v /= base;
		} while (v);
	}
	char digits[24];
	for (int i = 0; i < n; i++)
		digits[i] = tmp[n - 1 - i];
	emit_number(o, s, prefix, digits, n);
}

static void fmt_string(struct out *o, const struct spec *s, const char *str)
{
	if (!str)
		str = "(null)";
	int len = 0;
	while (str[len] && (s->prec < 0 || len < s->prec))
		len++;
	int fill = s->width > len ? s->width - len : 0;
	if (!s->left)
		pad(o, ' ', fill);
	for (int i = 0; i < len; i++)
		put(o, str[i]);
	if (s->left)
		pad(o, ' ', fill);
}

int vformat(format_sink sink, void *ctx, const char *fmt, va_list ap)
{
	struct out o = { sink, ctx, 0 };
	va_list args;
	va_copy(args, ap);
	while (*fmt) {
		if (*fmt != '%') {
			put(&o, *fmt++);
			continue;
		}
		const char *start = fmt++;
		struct spec s = { .prec = -1 };
		for (;; fmt++) {
			if (*fmt == '-') s.left = true;
			else if (*fmt == '+') s.plus = true;
			else if (*fmt == ' ') s.space = true;
			else if (*fmt == '#') s.alt = true;
			else if (*fmt == '0') s.zero = true;
			else break;
		}
		if (*fmt == '*') {
			s.width = va_arg(args, int);
			if (s.width < 0)
				s.left = true, s.width = -s.width;
			fmt++;
		} else {
			while (*fmt >= '0' && *fmt <= '9')
				s.width = s.width * 10 + (*fmt++ - '0');
		}
		if (*fmt == '.') {
			fmt++;
			s.prec = 0;
			if (*fmt == '*') {
				s.prec = va_arg(args, int);
				if (s.prec < 0)
					s.prec = -1;
				fmt++;
			} else {
				while (*fmt >= '0' && *fmt <= '9')
					s.prec = s.prec * 10 + (*fmt++ - '0');
			}
		}
		/* Length: 0 int, 1 long, 2 long long, -1 short, -2 char, 3 size_t/intmax/ptrdiff. */
		int len = 0;
		if (*fmt == 'h') {
			len = -1, fmt++;
			if (*fmt == 'h')
				len = -2, fmt++;
		} else if (*fmt == 'l') {
			len = 1, fmt++;
			if (*fmt == 'l')
				len = 2, fmt++;
		} else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't') {
			len = 3, fmt++;
		}
		char conv = *fmt ? *fmt++ : 0;
		switch (conv) {
		case 'd':
		case 'i': {
			intmax_t v;
			if (len == 0) v = va_arg(args, int);
			else if (len == 1) v = va_arg(args, long);
			else if (len == -1) v = (short)va_arg(args, int);
			else if (len == -2) v = (signed char)va_arg(args, int);
			else v = va_arg(args, long long);
			const char *prefix = v < 0 ? "-" : s.plus ? "+" : s.space ? " " : "";
			uintmax_t mag = v < 0 ? -(uintmax_t)v : (uintmax_t)v;
			fmt_unsigned(&o, &s, mag, 10, false, prefix);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'o': {
			uintmax_t v;
			if (len == 0) v = va_arg(args, unsigned);
			else if (len == 1) v = va_arg(args, unsigned long);
			else if (len == -1) v = (unsigned short)va_arg(args, unsigned);
			else if (len == -2) v = (unsigned char)va_arg(args, unsigned);
			else v = va_arg(args, unsigned long long);
			const char *prefix = "";
			unsigned base = conv == 'u' ? 10 : conv == 'o' ? 8 : 16;
			if (s.alt && v != 0 && base == 16)
				prefix = conv == 'X' ? "0X" : "0x";
			if (s.alt && base == 8 && (s.prec <= 1)) {
				/* '#o' forces a leading zero digit. */
				if (v != 0 || s.prec == 0)
					prefix = "0";
			}
			fmt_unsigned(&o, &s, v, base, conv == 'X', prefix);
			break;
		}
		case 'p': {
			uintptr_t v = (uintptr_t)va_arg(args, void *);
			if (!v) {
				s.prec = -1;
				fmt_string(&o, &s, "(nil)");
			} else {
				fmt_unsigned(&o, &s, v, 16, false, "0x");
			}
			break;
		}
		case 'c': {
			char c = (char)va_arg(args, int);
			int fill = s.width > 1 ? s.width - 1 : 0;
			if (!s.left)
				pad(&o, ' ', fill);
			put(&o, c);
			if (s.left)
				pad(&o, ' ', fill);
			break;
		}
		case 's':
			fmt_string(&o, &s, va_arg(args, const char *));
			break;
		case '%':
			put(&o, '%');
			break;
		default:
			/* Unknown conversion: show it as written. */
			while (start < fmt)
				put(&o, *start++);
			break;
		}
	}
	va_end(args);
	return o.n;
}

struct bufctx {
	char *buf;
	size_t size, pos;
};

static void buf_sink(void *ctx, char c)
{
	struct bufctx *b = ctx;
	if (b->pos + 1 < b->size)
		b->buf[b->pos] = c;
	b->pos++;
}

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct bufctx b = { buf, size, 0 };
	int n = vformat(buf_sink, &b, fmt, ap);
	if (size)
		buf[b.pos < size ? b.pos : size - 1] = '\0';
	return n;
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kvsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
