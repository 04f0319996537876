/* gdb.c - the packet layer of the GDB remote serial protocol, independent
 * of the transport (gdb.h).
 *
 * A packet is `$payload#cc`, cc the two hex digits of the sum modulo 256
 * of the payload's bytes as sent; the receiver answers '+' (good) or '-'
 * (send again) until QStartNoAckMode.  In a payload `}` escapes the next
 * byte (XOR 0x20), and '$', '#', '}' and '*' (run-length marker) must be
 * escaped in binary data.  A lone 0x03 byte outside a packet is gdb's
 * interrupt request (Ctrl-C).  (GDB manual, "Overview" of Appendix E.) */
#include "debug/gdb.h"

/* About how many polls make "gdb is gone": a few seconds of host time
 * in Bochs, much more than a reply takes. */
#define ACK_SPINS 20000000u
#define SEND_TRIES 4

int gdb_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *gdb_put_hex(char *out, const void *bytes, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *b = bytes;
	for (size_t i = 0; i < n; i++) {
		*out++ = digits[b[i] >> 4];
		*out++ = digits[b[i] & 15];
	}
	*out = 0;
	return out;
}

bool gdb_parse_hex(const char **p, uint64_t *val)
{
	uint64_t v = 0;
	const char *s = *p;
	int d;
	while ((d = gdb_hexval(*s)) >= 0) {
		v = (v << 4) | (unsigned)d;
		s++;
	}
	if (s == *p)
		return false;
	*p = s;
	*val = v;
	return true;
}

static int getc_wait(struct gdb_link *l) { return l->t->getc(l->t->ctx, ~0u); }

int gdb_recv(struct gdb_link *l, char *buf, size_t cap)
{
	for (;;) {
		int c = getc_wait(l);
		if (c == 0x03)
			return -2;
		if (c != '$')
			continue; /* acks of old packets, noise */
		size_t n = 0;
		uint8_t sum = 0;
		bool esc = false, overflow = false;
		while ((c = getc_wait(l)) != '#') {
			if (c < 0)
				continue;
			if (c == '$') { /* a new packet began: the old one is lost */
				n = 0, sum = 0, esc = false, overflow = false;
				continue;
			}
			sum = (uint8_t)(sum + c);
			if (!esc && c == '}') {
				esc = true;
				continue;
			}
			if (esc)
				c ^= 0x20;
			esc = false;
			if (n + 1 < cap)
				buf[n++] = (char)c;
			else
				overflow = true;
		}
		int h = gdb_hexval((char)getc_wait(l)), lo = gdb_hexval((char)getc_wait(l));
		bool good = h >= 0 && lo >= 0 && (uint8_t)(h << 4 | lo) == sum && !overflow;
		if (!l->no_ack)
			l->t->putc(l->t->ctx, good ? '+' : '-');
		if (!good)
			continue;
		buf[n] = 0;
		return (int)n;
	}
}

static void send_once(struct gdb_link *l, const char *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const struct gdb_transport *t = l->t;
	uint8_t sum = 0;
	t->putc(t->ctx, '$');
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)data[i];
		if (c == '$' || c == '#' || c == '}' || c == '*') {
			t->putc(t->ctx, '}');
			sum = (uint8_t)(sum + '}');
			c ^= 0x20;
		}
		t->putc(t->ctx, c);
		sum = (uint8_t)(sum + c);
	}
	t->putc(t->ctx, '#');
	t->putc(t->ctx, (uint8_t)digits[sum >> 4]);
	t->putc(t->ctx, (uint8_t)digits[sum & 15]);
}

bool gdb_send(struct gdb_link *l, const char *data, size_t len)
{
	for (int tries = 0; tries < SEND_TRIES; tries++) {
		send_once(l, data, len);
		if (l->no_ack)
			return true;
		int c;
		do
			c = l->t->getc(l->t->ctx, ACK_SPINS);
		while (c >= 0 && c != '+' && c != '-');
		if (c == '+')
			return true;
		if (c < 0)
			return false; /* nobody there */
	}
	return false;
}

bool gdb_send_str(struct gdb_link *l, const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return gdb_send(l, s, n);
}

bool gdb_poll_interrupt(struct gdb_link *l)
{
	int c;
	while ((c = l->t->getc(l->t->ctx, 0)) >= 0)
		if (c == 0x03)
			return true;
	return false;
}
