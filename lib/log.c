/* log.c - the hypervisor's console (see log.h). */
#include "lib/log.h"
#include "lib/format.h"
#include "lib/serial.h"
#include "lib/spinlock.h"
#include "lib/x86.h"

const char *const log_level_names[] = { "error", "warn", "info", "debug", "trace", NULL };

static struct {
	spinlock_t lock;
	enum log_level level;
	bool e9;
	bool at_line_start;
	bool com1;
	unsigned prefix_level;
	bool prefix_known;
	/* The line sink (log_set_line_sink) and the COM1 line it gets next. */
	log_line_sink_fn line_sink_fn;
	size_t line_len;
	char line[512];
} con = { .level = LOG_INFO, .at_line_start = true };

void log_init(void)
{
	serial_init(COM1_PORT);
	con.com1 = true;
}

void log_set_level(enum log_level l) { con.level = l; }
void log_set_e9(bool on) { con.e9 = on; }
void log_set_line_sink(log_line_sink_fn fn) { __atomic_store_n(&con.line_sink_fn, fn, __ATOMIC_RELEASE); }
void log_set_prefix_level(unsigned level)
{
	con.prefix_level = level;
	con.prefix_known = true;
}

struct sink_ctx {
	bool to_com1;
};

static void raw_putc(struct sink_ctx *s, char c)
{
	if (s->to_com1)
		serial_putc(COM1_PORT, c);
	if (s->to_com1 && con.line_sink_fn) {
		/* A line longer than the buffer is cut, its '\n' kept. */
		if (con.line_len < sizeof(con.line) - 1 || c == '\n')
			con.line[con.line_len++] = c;
		if (c == '\n') {
			con.line_sink_fn(con.line, con.line_len);
			con.line_len = 0;
		}
	}
	if (con.e9)
		outb(DEBUGCON_PORT, (uint8_t)c);
}

static void line_sink(void *ctx, char c)
{
	struct sink_ctx *s = ctx;
	if (con.at_line_start) {
		char prefix[24];
		int n = con.prefix_known ? ksnprintf(prefix, sizeof(prefix), "nestor[%u]: ", con.prefix_level)
					 : ksnprintf(prefix, sizeof(prefix), "nestor: ");
		for (int i = 0; i < n; i++)
			raw_putc(s, prefix[i]);
		con.at_line_start = false;
	}
	raw_putc(s, c);
	if (c == '\n')
		con.at_line_start = true;
}

static void vlog(bool to_com1, const char *tag, const char *fmt, va_list ap)
{
	struct sink_ctx s = { to_com1 && con.com1 };
	if (!s.to_com1 && !con.e9)
		return;
	if (tag)
		while (*tag)
			line_sink(&s, *tag++);
	vformat(line_sink, &s, fmt, ap);
}

void klog(enum log_level l, const char *fmt, ...)
{
	static const char *const tags[] = { "error: ", "warning: ", NULL, NULL, NULL };
	va_list ap;
	va_start(ap, fmt);
	spin_lock(&con.lock);
	vlog(l <= con.level, tags[l], fmt, ap);
	spin_unlock(&con.lock);
	va_end(ap);
}

void kprintf_emergency(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	/* Try the lock for a while; never deadlock a panic on it. */
	bool locked = false;
	for (int i = 0; i < 1000000 && !locked; i++)
		locked = !__atomic_exchange_n(&con.lock.locked, 1, __ATOMIC_ACQUIRE);
	if (!con.com1)
		log_init();
	vlog(true, NULL, fmt, ap);
	if (locked)
		spin_unlock(&con.lock);
	va_end(ap);
}

void log_flush(void)
{
	if (con.com1)
		serial_flush(COM1_PORT);
}
