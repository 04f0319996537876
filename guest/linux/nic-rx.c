/* nic-rx.c - Linux userspace program of the NIC initramfs (issue 14,
 * docs/security-functions.md "Cost"): what receiving costs through Bochs'
 * e1000 once it is up.  It listens on a TCP port (slirp forwards it from
 * 127.0.0.1: nestor-run --nic-flood), takes one connection, reads it to its
 * end, and measures with RDTSC (one tick per emulated instruction in Bochs)
 * the ticks from the first data to the last, and the packets eth0 received
 * meanwhile (/sys/class/net/IF/statistics/rx_packets).
 *
 *   nic-rx [--port P] [--if IF] [--timeout S]     (defaults 7000, eth0, 300)
 *
 * Output (the Linux guest's console):
 *   nic: rx: listening on port P                   the host may connect now
 *   nic: rx: B bytes received                      the same at every depth
 *   env: nic-rx: N packets, T ticks, P ticks per packet, I ticks idle, B busy ticks per packet
 *                   T from the first data to the last, I of them left to the
 *                   idle soaker (below), B = (T - I) / N: what a packet costs
 * Exit status: 0 done, 1 no connection, an error or nothing received,
 * 2 bad usage.
 *
 * Built with the host's gcc as a static hosted program (the initramfs has
 * no libc), like nestor-levels. */
#define _GNU_SOURCE /* SCHED_IDLE */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* The interface's received-packet counter; -1 when it cannot be read. */
static long long rx_packets(const char *ifname)
{
	char path[256];
	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/rx_packets", ifname);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long long v = -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* The idle soaker: a process of the lowest class (SCHED_IDLE), which runs
 * only when nothing else wants the CPU, counting the ticks it gets in
 * *own (a gap of more than SOAK_GAP ticks between two of its RDTSCs is
 * someone else's time: an interrupt, the receiver).  The ticks from the
 * first data to the last less the soaker's are what receiving cost: the
 * figure does not depend on how fast slirp feeds the NIC. */
#define SOAK_GAP 200

static void soak(volatile uint64_t *own)
{
	struct sched_param sp = { .sched_priority = 0 };
	if (sched_setscheduler(0, SCHED_IDLE, &sp))
		_exit(1);
	uint64_t prev = rdtsc(), sum = 0;
	for (;;) {
		uint64_t now = rdtsc();
		if (now - prev < SOAK_GAP)
			*own = sum += now - prev;
		prev = now;
	}
}

int main(int argc, char **argv)
{
	int port = 7000, timeout = 300;
	const char *ifname = "eth0";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--if") && i + 1 < argc)
			ifname = argv[++i];
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: nic-rx [--port P] [--if IF] [--timeout S]\n");
			return 2;
		}
	}
	if (port <= 0 || port > 65535 || timeout <= 0) {
		fprintf(stderr, "nic-rx: bad port or timeout\n");
		return 2;
	}
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_ANY) };
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 1)) {
		printf("nic: rx: cannot listen on port %d: %s\n", port, strerror(errno));
		return 1;
	}
	struct timeval tv = { .tv_sec = timeout };
	setsockopt(ls, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	printf("nic: rx: listening on port %d\n", port);
	fflush(stdout);
	int s = accept(ls, NULL, NULL);
	if (s < 0) {
		printf("nic: rx: no connection from the host: %s\n", strerror(errno));
		return 1;
	}
	close(ls);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* The soaker, from the connection on: it keeps the CPU out of HLT. */
	volatile uint64_t *soaked = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (soaked == MAP_FAILED) {
		printf("nic: rx: mmap: %s\n", strerror(errno));
		return 1;
	}
	*soaked = 0;
	pid_t soaker = fork();
	if (soaker < 0) {
		printf("nic: rx: fork: %s\n", strerror(errno));
		return 1;
	}
	if (soaker == 0)
		soak(soaked);
	static char buf[65536];
	unsigned long long bytes = 0;
	uint64_t first = 0, last = 0;
	long long rx0 = -1;
	uint64_t idle0 = 0, idle1 = 0;
	for (;;) {
		ssize_t n = recv(s, buf, sizeof(buf), 0);
		uint64_t now = rdtsc();
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			printf("nic: rx: receive failed after %llu bytes: %s\n", bytes, strerror(errno));
			kill(soaker, SIGKILL);
			return 1;
		}
		if (n == 0)
			break;
		if (!bytes) {
			first = now;
			rx0 = rx_packets(ifname); /* the first data is in: count from here */
			idle0 = *soaked;
		}
		bytes += (unsigned long long)n;
		last = now;
		idle1 = *soaked; /* up to the last data */
	}
	long long rx1 = rx_packets(ifname);
	kill(soaker, SIGKILL);
	waitpid(soaker, NULL, 0);
	close(s);
	printf("nic: rx: %llu bytes received\n", bytes);
	if (!bytes || rx0 < 0 || rx1 <= rx0) {
		printf("nic: rx: nothing to measure (%s statistics %lld, %lld)\n", ifname, rx0, rx1);
		return 1;
	}
	long long packets = rx1 - rx0;
	unsigned long long ticks = last - first;
	unsigned long long idle = idle1 - idle0;
	if (idle > ticks)
		idle = ticks;
	printf("env: nic-rx: %lld packets, %llu ticks, %llu ticks per packet, %llu ticks idle, %llu busy ticks per packet\n",
	       packets, ticks, ticks / (unsigned long long)packets, idle, (ticks - idle) / (unsigned long long)packets);
	return 0;
}
