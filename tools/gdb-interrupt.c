/* gdb-interrupt - a GDB remote-protocol client for level 0's stub (docs/gdb.md), for what gdb's
 * batch mode cannot script: a Ctrl-C while the guest runs.  nestor-run --gdb runs it as
 *
 *     build/tools/gdb-interrupt 127.0.0.1:PORT GUEST-ELF
 *
 * or, with --gdb-udp, udp:127.0.0.1:PORT: then as gdb does, a connected UDP socket, one datagram per
 * packet, acknowledgement and Ctrl-C.
 *
 * It connects, checks the first stop and the register packet, lets the guest run, interrupts it
 * (0x03), checks that it stopped with SIGINT elsewhere, reads the memory at RIP through the
 * guest's page tables, asks the monitor, and detaches: the guest runs to its end.  It prints one
 * stable line per check (compared with tests/gdb/interrupt.expect) and exits 0 only if all
 * passed. */
#include "tools/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>

static int fd;
static unsigned char rbuf[4096];
static size_t rlen, rpos;

static int byte(void)
{
	if (rpos == rlen) {
		ssize_t n = recv(fd, rbuf, sizeof(rbuf), 0);
		if (n <= 0)
			die("gdb-interrupt: the connection closed");
		rlen = (size_t)n, rpos = 0;
	}
	return rbuf[rpos++];
}

static void put(const void *p, size_t n)
{
	if (send(fd, p, n, 0) != (ssize_t)n)
		die("gdb-interrupt: send: %s", strerror(errno));
}

/* Sends one packet and waits for its '+'. */
static void send_packet(const char *payload)
{
	char out[8192];
	unsigned sum = 0;
	for (const char *p = payload; *p; p++)
		sum += (unsigned char)*p;
	int n = snprintf(out, sizeof(out), "$%s#%02x", payload, sum & 0xff);
	put(out, (size_t)n);
	while (byte() != '+')
		;
}

/* Receives one packet (acknowledged) into buf. */
static char *recv_packet(char *buf, size_t cap)
{
	while (byte() != '$')
		;
	size_t n = 0;
	unsigned sum = 0;
	int c;
	while ((c = byte()) != '#') {
		sum += (unsigned)c;
		if (n + 1 < cap)
			buf[n++] = (char)c;
	}
	buf[n] = 0;
	char cs[3] = { (char)byte(), (char)byte(), 0 };
	if (strtoul(cs, NULL, 16) != (sum & 0xff))
		die("gdb-interrupt: bad checksum");
	put("+", 1);
	return buf;
}

static char *ask(const char *payload, char *buf, size_t cap)
{
	send_packet(payload);
	return recv_packet(buf, cap);
}

static bool all_checks = true;

static void check(const char *what, bool ok)
{
	printf("%s: %s\n", what, ok ? "ok" : "WRONG");
	fflush(stdout);
	all_checks &= ok;
}

/* RIP in a 'g' reply: register 16, 8 bytes little-endian at byte 128. */
static unsigned long long reply_rip(const char *g)
{
	unsigned long long rip = 0;
	for (int i = 7; i >= 0; i--) {
		char b[3] = { g[256 + 2 * i], g[256 + 2 * i + 1], 0 };
		rip = rip << 8 | strtoul(b, NULL, 16);
	}
	return rip;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: gdb-interrupt HOST:PORT [GUEST-ELF]");
	char host[256];
	bool udp = !strncmp(argv[1], "udp:", 4);
	snprintf(host, sizeof(host), "%s", argv[1] + (udp ? 4 : 0));
	char *colon = strrchr(host, ':');
	if (!colon)
		die("gdb-interrupt: HOST:PORT expected, not %s", argv[1]);
	*colon = 0;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		die("gdb-interrupt: bad address %s", host);
	/* Bochs listens on COM2's socket once it has read its bochsrc.  (A
	 * UDP "connection" always succeeds: nestor-run starts us once the stub
	 * waits.) */
	for (int tries = 0;; tries++) {
		fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
		if (fd >= 0 && !connect(fd, (struct sockaddr *)&a, sizeof(a)))
			break;
		if (fd >= 0)
			close(fd);
		if (tries == 600)
			die("gdb-interrupt: cannot connect to %s: %s", argv[1], strerror(errno));
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}

	static char r[8192];
	ask("qSupported:multiprocess+;swbreak+;hwbreak+", r, sizeof(r));
	check("qSupported has swbreak+", strstr(r, "swbreak+") != NULL);
	check("first stop is SIGTRAP", !strcmp(ask("?", r, sizeof(r)), "S05"));
	ask("g", r, sizeof(r));
	unsigned long long rip0 = reply_rip(r);
	/* 24 registers (164 bytes), then the x87/SSE ones (372 bytes) unavailable. */
	bool fp_unavailable = strlen(r) == 2 * 536;
	for (size_t i = 2 * 164; fp_unavailable && i < 2 * 536; i++)
		fp_unavailable = r[i] == 'x';
	check("g has 24 registers and the x87/SSE ones unavailable", fp_unavailable);

	send_packet("c");
	struct timespec run = { 0, 300 * 1000 * 1000 };
	nanosleep(&run, NULL);
	put("\x03", 1);
	check("Ctrl-C stops the guest with SIGINT", !strcmp(recv_packet(r, sizeof(r)), "S02"));
	ask("g", r, sizeof(r));
	unsigned long long rip = reply_rip(r);
	check("the guest moved on", rip != rip0);
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "m%llx,4", rip);
	ask(cmd, r, sizeof(r));
	check("its code reads at RIP", strlen(r) == 8 && r[0] != 'E');

	/* "levels", hex-encoded; the output comes in 'O' packets, then OK. */
	send_packet("qRcmd,6c6576656c73");
	static char out[8192];
	size_t n = 0;
	for (;;) {
		recv_packet(r, sizeof(r));
		if (r[0] != 'O' || !strcmp(r, "OK"))
			break;
		for (const char *p = r + 1; p[0] && p[1] && n + 1 < sizeof(out); p += 2) {
			char b[3] = { p[0], p[1], 0 };
			out[n++] = (char)strtoul(b, NULL, 16);
		}
	}
	out[n] = 0;
	check("monitor levels", !strcmp(r, "OK") && !strncmp(out, "level 0: Nestor", 15) && strstr(out, "runs now"));
	check("D detaches", !strcmp(ask("D", r, sizeof(r)), "OK"));
	close(fd);
	printf("%s\n", all_checks ? "PASS" : "FAIL");
	return all_checks ? 0 : 1;
}
