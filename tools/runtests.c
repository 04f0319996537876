/* runtests - run the project's test list in parallel and summarise.
 *
 * The list file has one test per line, "NAME: COMMAND", '#' comments and
 * blank lines ignored.  Each command runs through /bin/sh with its output
 * captured to build/test-logs/NAME.log; it passes when it exits 0.  Progress
 * is printed as each test ends, the log tail of each failure is shown, and
 * the last line is "N passed, N failed".  Exit status 1 on any failure.
 *
 * usage: runtests [-j N] LIST [SUBSTRING...]   (only tests whose name
 * contains one of the substrings, when any are given) */
#include "tools/util.h"

#include <fcntl.h>
#include <sys/wait.h>

struct test {
	char name[128];
	char cmd[2048];
	pid_t pid;
	double start, secs;
	int status; /* -1 not run, 0 pass, 1 fail */
};

static struct test tests[1024];
static int ntests;

static void log_path(const struct test *t, char *buf, size_t len)
{
	char safe[128];
	snprintf(safe, sizeof(safe), "%s", t->name);
	for (char *p = safe; *p; p++)
		if (*p == '/' || *p == ' ')
			*p = '_';
	snprintf(buf, len, "build/test-logs/%s.log", safe);
}

static void start(struct test *t)
{
	char path[512];
	log_path(t, path, sizeof(path));
	t->start = now_seconds();
	char *argv[] = { "/bin/sh", "-c", t->cmd, NULL };
	t->pid = spawn(argv, path, 0);
}

static void show_tail(const struct test *t)
{
	char path[512];
	log_path(t, path, sizeof(path));
	char *log = read_file(path, NULL);
	if (!log)
		return;
	/* Last 15 lines. */
	size_t len = strlen(log);
	int lines = 0;
	size_t i = len;
	while (i > 0 && lines <= 15)
		if (log[--i] == '\n')
			lines++;
	printf("    --- %s (last lines) ---\n", path);
	for (char *p = log + (i ? i + 1 : 0); *p;) {
		char *e = strchr(p, '\n');
		printf("    | %.*s\n", (int)(e ? e - p : (long)strlen(p)), p);
		if (!e)
			break;
		p = e + 1;
	}
	free(log);
}

int main(int argc, char **argv)
{
	int jobs = 2, argi = 1;
	if (argi + 1 < argc && !strcmp(argv[argi], "-j")) {
		jobs = atoi(argv[argi + 1]);
		argi += 2;
		if (jobs < 1)
			die("-j needs a positive number");
	}
	if (argi >= argc)
		die("usage: runtests [-j N] LIST [SUBSTRING...]");
	char *list = read_file(argv[argi], NULL);
	if (!list)
		die("cannot read %s", argv[argi]);
	char **filters = argv + argi + 1;
	int nfilters = argc - argi - 1;

	for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
		while (*line == ' ' || *line == '\t')
			line++;
		if (!*line || *line == '#')
			continue;
		char *colon = strstr(line, ": ");
		if (!colon)
			die("bad line in %s (want 'NAME: COMMAND'): %s", argv[argi], line);
		*colon = '\0';
		int keep = nfilters == 0;
		for (int f = 0; f < nfilters; f++)
			if (strstr(line, filters[f]))
				keep = 1;
		if (!keep)
			continue;
		if (ntests == (int)(sizeof(tests) / sizeof(tests[0])))
			die("too many tests");
		struct test *t = &tests[ntests++];
		snprintf(t->name, sizeof(t->name), "%s", line);
		snprintf(t->cmd, sizeof(t->cmd), "%s", colon + 2);
		t->status = -1;
	}
	if (ntests == 0)
		die("no test selected");
	make_dirs("build/test-logs");

	int next = 0, running = 0, done = 0, passed = 0, failed = 0;
	double t0 = now_seconds();
	while (done < ntests) {
		while (running < jobs && next < ntests) {
			start(&tests[next++]);
			running++;
		}
		int st;
		pid_t pid = wait(&st);
		if (pid < 0)
			die("wait: %s", strerror(errno));
		for (int i = 0; i < ntests; i++) {
			struct test *t = &tests[i];
			if (t->pid != pid || t->status != -1)
				continue;
			t->secs = now_seconds() - t->start;
			t->status = (WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : 1;
			running--;
			done++;
			if (t->status == 0)
				passed++;
			else
				failed++;
			printf("[%3d/%d] %s %s (%.1f s)\n", done, ntests, t->status ? "FAIL" : "PASS", t->name, t->secs);
			if (t->status)
				show_tail(t);
			fflush(stdout);
		}
	}
	printf("\nfinished in %.0f s\n", now_seconds() - t0);
	if (failed) {
		printf("failed:");
		for (int i = 0; i < ntests; i++)
			if (tests[i].status)
				printf(" %s", tests[i].name);
		printf("\n");
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
