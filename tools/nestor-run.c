/* nestor-run - boot a stack of kernels in Debian's Bochs and judge the run.
 *
 * It writes a GRUB ISO and a bochsrc into a run directory of its own (so
 * runs in parallel never share a file), starts Bochs headless with
 * deterministic settings, captures COM1 to serial.txt, enforces a timeout,
 * and decides PASS or FAIL from what the guest printed on the serial port -
 * never from Bochs' exit status (which is 1 for every end).
 *
 * A stack is either given kernel by kernel (-k, the first one booted by GRUB,
 * the others its modules), or as a depth: --guest G --depth N boots N Nestor
 * levels with G on top (N = 0: G directly on Bochs).  --depths 0,1,2 runs the
 * same guest at each depth and requires byte-identical transcripts, except
 * lines the guest marks as environment facts ("env: ...").
 *
 * The verdict comes with one stable reason keyword:
 *   pass, guest-fail, nestor-panic, nestor-fail, nestor-no-end, triple-fault,
 *   bochs-panic, timeout, no-result, transcript-differs, gdb-fail, gdb-differs, debugnic-log,
 *   expect-line-missing, nic-peer, nic-flood.
 * See docs/testing.md. */
#include "tools/util.h"

#include <fcntl.h>
#include <regex.h>
#include <stdbool.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <ctype.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define MAX_STACK 16

struct item {
	char file[1024];
	char args[1024];
};

enum { BIOS = 0, UEFI_SHELL = 1, UEFI_GRUB = 2 };

struct opts {
	struct item stack[MAX_STACK];
	int n_stack;
	struct item guest, nestor;
	char level_args[MAX_STACK][256]; /* --level-args: more options for one level */
	struct item modules[4];          /* --module: the guest's own modules */
	int n_modules;
	int linux_guest;                 /* --linux: the guest is a Linux kernel */
	const char *compare_only;        /* --compare-only: the transcript lines compared */
	const char *ignore;              /* --ignore: transcript lines not compared */
	int have_guest;
	int depths[MAX_STACK];
	int n_depths;
	int mb1;
	int uefi;       /* --firmware: BIOS (0), UEFI_SHELL, UEFI_GRUB (docs/uefi.md) */
	int disk_guest; /* the guest is a disk image booted by the BIOS (or chain-loaded by Nestor) */
	const char *cpu;
	int cpus; /* --cpus: processors Bochs emulates */
	int megs;
	int timeout;
	const char *name;
	const char *dir;
	int stream;
	int quiet;
	const char *verdict; /* "guest" or "nestor" */
	const char *expect_fail;
	const char *accept; /* comma-separated reasons that pass (fault injection) */
	const char *transcript_out;
	const char *bochs;
	const char *bochs_lines[8]; /* --bochs-line: more bochsrc lines */
	int n_bochs_lines;
	const char *nested_bochs_lines[8]; /* --nested-bochs-line: more, at depths >= 1 only */
	int n_nested_bochs_lines;
	const char *expect_line; /* --expect-line: a line depths >= 1 must print */
	regex_t expect_re;
	const char *pass_line, *fail_line; /* --pass-line / --fail-line: verdict by pattern */
	int debug_nic; /* --debug-nic: level 0's debug NIC and its log over UDP */
	const char *nic_peer; /* --nic-peer: the line the host sends through the guest's e1000 */
	int nic_flood;        /* --nic-flood: KiB the host sends through it (bench NIC_RX<d>) */
	const char *gdb_script, *gdb_expect; /* --gdb / --gdb-expect (docs/gdb.md) */
	int gdb_udp; /* --gdb-udp: gdb over the debug NIC's UDP port 1234 instead of COM2 */
	regex_t pass_re, fail_re;
};

struct result {
	const char *reason; /* "pass" or a failure keyword */
	char detail[512];
	double seconds;
	unsigned long long ticks; /* emulated instructions, from Bochs' last line */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nestor-run [options] -k \"FILE [ARGS]\" [-k \"FILE [ARGS]\"]...\n"
		"       nestor-run [options] --guest \"FILE [ARGS]\" --depth N | --depths 0,1,...\n"
		"\n"
		"  -k \"FILE ARGS\"     a kernel and its command line; the first is booted by GRUB\n"
		"                     (multiboot2), the next ones are its modules, in order\n"
		"  --guest \"FILE ARGS\" the guest on top of a Nestor stack\n"
		"  --nestor \"FILE ARGS\" the Nestor image and options used at every level\n"
		"                     (default \"build/nestor.elf\")\n"
		"  --level-args L \"ARGS\" more options for the Nestor at level L only\n"
		"  --module \"FILE ARGS\" a module of the guest, after it (repeatable); for a\n"
		"                     Linux guest, its initrd\n"
		"  --linux            the guest is a Linux kernel: at depth 0 GRUB boots it with\n"
		"                     'linux' and its modules with 'initrd'; above, the Nestor\n"
		"                     below it does (the Linux boot protocol); Bochs reads\n"
		"                     the MSRs it lacks as 0 (ignore_bad_msrs=1)\n"
		"  --compare-only RE  with --depths, compare only the transcript lines matching\n"
		"                     the extended regular expression RE (case-insensitive,\n"
		"                     after a Linux timestamp '[  1.234567] ')\n"
		"  --ignore RE        with --depths, do not compare the lines matching RE (as\n"
		"                     above); with --linux, Linux timestamps are never compared\n"
		"  --depth N          N Nestor levels under the guest (0: the guest alone)\n"
		"  --depths LIST      run at each depth of LIST (e.g. 0,1) and compare transcripts\n"
		"  --mb1              boot the guest by multiboot (version 1): GRUB's 'multiboot'\n"
		"                     (and 'module' for its modules) at depth 0, 'guest=multiboot'\n"
		"                     for the Nestor below it; with -k, the first kernel\n"
		"  --firmware bios|uefi  the machine's firmware (default bios: Bochs' BIOS and\n"
		"                     GRUB from a CD).  uefi: Debian's OVMF, and a FAT disk whose\n"
		"                     startup.nsh starts nestor.efi once per level (the .efi\n"
		"                     beside the --nestor image), then the guest: a Linux kernel\n"
		"                     through its EFI stub (--linux, --module files as initrd=),\n"
		"                     a UEFI application, or a multiboot kernel through GRUB-EFI\n"
		"                     uefi-grub: OVMF boots the hybrid BIOS+UEFI GRUB ISO (GRUB-EFI,\n"
		"                     the same grub.cfg and multiboot2 nestor.elf as with the BIOS)\n"
		"  --disk-guest       the guest is a hard-disk image whose first sector is a\n"
		"                     boot sector: at depth 0 the BIOS boots it, at depth n it is\n"
		"                     the top Nestor's module; the disk is attached in both cases\n"
		"  --cpu MODEL        Bochs CPU model (default corei7_skylake_x)\n"
		"  --cpus N           processors in the machine, 1 to 8 (default 1): the bochsrc's\n"
		"                     'cpu: count=N'; the BIOS starts them all and parks the\n"
		"                     application processors (MP and ACPI MADT tables list them)\n"
		"  --megs N           RAM in MiB (default 256); above 2048, Bochs gets\n"
		"                     'memory: guest=N, host=2048' (it refuses a larger 'megs:'):\n"
		"                     a guest may then touch 2048 MiB of it at most\n"
		"  --bochs-line TEXT  one more line for the bochsrc (repeatable, at most 8), e.g.\n"
		"                     'cpuid: ...' or an MSR file 'cpu: msrs=FILE'\n"
		"  --nested-bochs-line TEXT  a bochsrc line for depths >= 1 only (repeatable, at\n"
		"                     most 8): a device a Nestor guards (guard=), which the guest\n"
		"                     must find as on the depth-0 machine, the one without it\n"
		"  --debug-nic        at depths >= 1, Bochs' ne2k (PCI slot 1) on a slirp network\n"
		"                     with UDP 127.0.0.1:PORT (a free port) forwarded to level 0's\n"
		"                     debug port 6510; the harness subscribes ('log'), writes the\n"
		"                     datagrams to DIR/udp-log.txt, and the run fails (debugnic-log)\n"
		"                     unless level 0's COM1 lines from the first streamed one on\n"
		"                     all came over UDP (give level 0 debugnic=on; docs/debug-nic.md)\n"
		"  --nic-peer TEXT    give the machine Bochs' e1000 (PCI 00:03.0) on a closed slirp\n"
		"                     network whose guest TCP port 7000 is forwarded from a free\n"
		"                     port of 127.0.0.1; send TEXT there while the run goes on and\n"
		"                     require the answer \"linux: got 'TEXT' over e1000\"\n"
		"  --nic-flood KIB    the same e1000 and slirp network; once the guest says\n"
		"                     'nic: rx: listening on port 7000' send it KIB KiB on one\n"
		"                     TCP connection, and require 'nic: rx: B bytes received'\n"
		"                     (B = KIB x 1024) and its 'env: nic-rx: ' measurement\n"
		"                     (guest/linux/nic-rx.c, nic_test=rx)\n"
		"  --expect-line RE   at depths >= 1 the run passes only if a line of the\n"
		"                     serial console matches RE (e.g. a Nestor's log of an access\n"
		"                     it blocked)\n"
		"  --bochs PROGRAM    the Bochs binary (default 'bochs', from PATH)\n"
		"  --gdb SCRIPT       at depths >= 1: COM2 on a free 127.0.0.1 TCP port (Bochs\n"
		"                     socket-server), 'gdb=serial' for level 0, and 'gdb -batch\n"
		"                     -nx -x SCRIPT GUEST' attached to it (an executable SCRIPT\n"
		"                     runs as 'SCRIPT 127.0.0.1:PORT GUEST'); its output in\n"
		"                     DIR/gdb.txt; the run fails (gdb-fail) when gdb fails\n"
		"  --gdb-expect FILE  with --gdb: gdb's output must equal FILE, hexadecimal\n"
		"                     numbers (0x...) aside (gdb-differs)\n"
		"  --gdb-udp          with --gdb and --debug-nic: gdb over UDP instead of COM2 -\n"
		"                     a second slirp forward from a free 127.0.0.1 UDP port to\n"
		"                     the debug NIC's port 1234, 'gdb=udp' for level 0, gdb\n"
		"                     started once level 0 waits for it ('target remote\n"
		"                     udp:127.0.0.1:PORT')\n"
		"  --timeout S        host seconds before the run is killed (default 120)\n"
		"  --name NAME        run directory build/runs/NAME (default 'run')\n"
		"  --dir DIR          run directory (overrides --name)\n"
		"  --stream           copy the serial console to stdout as it comes\n"
		"  --quiet            print only the verdict line\n"
		"  --verdict guest|nestor  who decides: the guest's 'RESULT:' line (default),\n"
		"                     or level 0's 'end of run' line (when there is no guest)\n"
		"  --pass-line RE     for a guest that prints no 'RESULT:' line: it passes when\n"
		"                     one of its lines matches the extended regular expression\n"
		"                     RE, and fails when one matches --fail-line RE first; the\n"
		"                     run is stopped 2 s after such a line (levels that did not\n"
		"                     end by then are not required to)\n"
		"  --fail-line RE     see --pass-line (either may be given alone)\n"
		"  --expect-fail R    the run must fail with reason R (harness self-tests)\n"
		"  --accept R1,R2..   the run passes when its reason is one of these (fault\n"
		"                     injection: e.g. pass,nestor-fail - the guest passes or\n"
		"                     Nestor ends the run cleanly, never a panic or a hang)\n"
		"  --transcript FILE  also write the guest's transcript to FILE\n"
		"Exit status: 0 PASS, 1 FAIL, 2 usage or set-up error.\n");
}

static void parse_item(struct item *it, const char *spec)
{
	while (*spec == ' ')
		spec++;
	const char *sp = strchr(spec, ' ');
	size_t flen = sp ? (size_t)(sp - spec) : strlen(spec);
	if (flen == 0 || flen >= sizeof(it->file))
		die("bad kernel specification '%s'", spec);
	memcpy(it->file, spec, flen);
	it->file[flen] = '\0';
	snprintf(it->args, sizeof(it->args), "%s", sp ? sp + 1 : "");
	if (access(it->file, R_OK))
		die("cannot read %s: %s", it->file, strerror(errno));
}

static int parse_int(const char *s, const char *what)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end || v < 0 || v > 1000000)
		die("%s: '%s' is not a valid number", what, s);
	return (int)v;
}

/* GRUB's configuration language: quote an argument list safely. */
static void grub_quote(FILE *f, const char *s)
{
	/* Each word single-quoted; a quote inside becomes '\'' as in sh. */
	while (*s) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		fputs(" '", f);
		for (; *s && *s != ' '; s++) {
			if (*s == '\'')
				fputs("'\\''", f);
			else
				fputc(*s, f);
		}
		fputc('\'', f);
	}
}

static int run_cmd(char *const argv[], const char *log)
{
	pid_t pid = spawn(argv, log, 0);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void copy_file(const char *from, const char *to)
{
	size_t len;
	char *d = read_file(from, &len);
	if (!d)
		die("cannot read %s", from);
	write_file(to, d, len);
	free(d);
}

/* linux0: the stack is a Linux kernel and its initrds, booted by GRUB's
 * own Linux loader (a depth-0 --linux run). */
static void build_iso(const struct opts *o, const struct item *stack, int n, const char *dir, bool linux0, bool mb1)
{
	char path[4096], iso_dir[4096];
	snprintf(iso_dir, sizeof(iso_dir), "%s/iso", dir);
	snprintf(path, sizeof(path), "%s/boot/grub", iso_dir);
	make_dirs(path);
	snprintf(path, sizeof(path), "%s/boot/grub/grub.cfg", iso_dir);
	FILE *f = fopen(path, "w");
	if (!f)
		die("cannot write %s", path);
	fprintf(f, "set timeout=0\nset default=0\nmenuentry \"nestor-run\" {\n");
	for (int i = 0; i < n; i++) {
		char dst[4096];
		snprintf(dst, sizeof(dst), "%s/boot/k%d", iso_dir, i);
		copy_file(stack[i].file, dst);
		/* GRUB boots the first kernel by multiboot (v1) only for a depth-0
		 * --mb1 guest (its modules too); Nestor is a multiboot2 kernel. */
		bool v1 = mb1;
		const char *cmd = i == 0 ? (v1 ? "multiboot" : "multiboot2") : (v1 ? "module" : "module2");
		if (linux0 && i > 0) {
			/* One "initrd" line names every initrd (GRUB concatenates them). */
			fprintf(f, "%s /boot/k%d", i == 1 ? "  initrd" : "", i);
			if (i == n - 1)
				fputc('\n', f);
			continue;
		}
		fprintf(f, "  %s /boot/k%d", linux0 ? "linux" : cmd, i);
		grub_quote(f, stack[i].args);
		fputc('\n', f);
	}
	fprintf(f, "  boot\n}\n");
	fclose(f);
	char iso[4096], log[4096];
	snprintf(iso, sizeof(iso), "%s/boot.iso", dir);
	snprintf(log, sizeof(log), "%s/grub-mkrescue.log", dir);
	/* BIOS only (-d: the i386-pc platform alone, whatever else GRUB has
	 * installed here), or with --firmware uefi-grub a hybrid ISO whose EFI
	 * boot image is GRUB-EFI with the same grub.cfg (there is no biosdisk
	 * module for EFI; the BIOS core image has its own). */
	bool efi = o->uefi == UEFI_GRUB;
	char *argv[] = { "grub-mkrescue", "-o", iso,
			 efi ? (linux0 ? "--install-modules=linux normal iso9660 configfile boot"
				       : "--install-modules=multiboot multiboot2 normal iso9660 configfile boot")
			     : (linux0 ? "--install-modules=linux normal iso9660 biosdisk configfile boot"
				       : "--install-modules=multiboot multiboot2 normal iso9660 biosdisk configfile boot"),
			 "--locales=", "--fonts=", "--themes=", efi ? iso_dir : "-d", efi ? NULL : "/usr/lib/grub/i386-pc",
			 iso_dir, NULL };
	if (run_cmd(argv, log))
		die("grub-mkrescue failed, see %s", log);
}

/* --firmware uefi: the FAT system partition OVMF's shell runs startup.nsh
 * from.  An MBR disk with one EFI partition (type 0xef) from 1 MiB, its FAT
 * made and filled by mtools; the shell starts nestor.efi once per level,
 * then the guest.  Echo is off so that the shell adds nothing to the
 * transcript that differs between depths. */
#define DISK_CYL_BYTES (16L * 63 * 512)
static long file_size(const char *path)
{
	struct stat st;
	if (stat(path, &st))
		die("cannot stat %s: %s", path, strerror(errno));
	return (long)st.st_size;
}

/* A multiboot kernel and its modules as a GRUB-EFI application whose memdisk
 * holds them and a grub.cfg that boots them at once. */
static void build_grub_efi(const struct opts *o, const struct item *g, int n, const char *dir, const char *out)
{
	char cfg[4096], log[4096];
	snprintf(cfg, sizeof(cfg), "%s/grub-efi.cfg", dir);
	FILE *f = fopen(cfg, "w");
	if (!f)
		die("cannot write %s", cfg);
	fprintf(f, "set timeout=0\n");
	char *argv[32];
	int a = 0;
	static char grafts[8][4200];
	argv[a++] = "grub-mkstandalone";
	argv[a++] = "-O";
	argv[a++] = "x86_64-efi";
	argv[a++] = "-o";
	argv[a++] = (char *)out;
	argv[a++] = "--locales=";
	argv[a++] = "--fonts=";
	argv[a++] = "--themes=";
	argv[a++] = "--install-modules=multiboot multiboot2 normal configfile memdisk tar boot";
	for (int i = 0; i < n && i < 7; i++) {
		const char *cmd = i == 0 ? (o->mb1 ? "multiboot" : "multiboot2") : (o->mb1 ? "module" : "module2");
		fprintf(f, "%s /k%d", cmd, i);
		grub_quote(f, g[i].args);
		fputc('\n', f);
		snprintf(grafts[i], sizeof(grafts[i]), "k%d=%s", i, g[i].file);
		argv[a++] = grafts[i];
	}
	fprintf(f, "boot\n");
	fclose(f);
	snprintf(grafts[7], sizeof(grafts[7]), "boot/grub/grub.cfg=%s", cfg);
	argv[a++] = grafts[7];
	argv[a] = NULL;
	snprintf(log, sizeof(log), "%s/grub-mkstandalone.log", dir);
	if (run_cmd(argv, log))
		die("grub-mkstandalone failed, see %s", log);
}

static void build_esp(const struct opts *o, const struct item *stack, int n, int depth, const char *dir)
{
	char img[4096], part[4200], nsh[4096], log[4096], path[4096];
	snprintf(img, sizeof(img), "%s/esp.img", dir);
	snprintf(part, sizeof(part), "%s@@1M", img);
	snprintf(nsh, sizeof(nsh), "%s/startup.nsh", dir);
	snprintf(log, sizeof(log), "%s/mtools.log", dir);
	FILE *f = fopen(nsh, "w");
	if (!f)
		die("cannot write %s", nsh);
	fprintf(f, "@echo -off\nfs0:\n");
	/* Every file the disk gets, with its name there. */
	const char *files[MAX_STACK + 8];
	char names[MAX_STACK + 8][32];
	int nf = 0;
	long bytes = 0;
	for (int i = 0; i < depth; i++) {
		if (i == 0) {
			files[nf] = stack[0].file;
			snprintf(names[nf++], sizeof(names[0]), "nestor.efi");
		}
		fprintf(f, "nestor.efi %s\n", stack[i].args);
	}
	const struct item *g = &stack[depth];
	int ng = n - depth;
	if (o->linux_guest) {
		files[nf] = g[0].file;
		snprintf(names[nf++], sizeof(names[0]), "linux.efi");
		fprintf(f, "linux.efi");
		for (int i = 1; i < ng; i++) {
			files[nf] = g[i].file;
			snprintf(names[nf++], sizeof(names[0]), "initrd%d", i);
			fprintf(f, " initrd=\\initrd%d", i);
		}
		fprintf(f, " %s\n", g[0].args);
	} else {
		size_t l = strlen(g[0].file);
		bool efi_app = l > 4 && !strcasecmp(g[0].file + l - 4, ".efi");
		if (efi_app) {
			files[nf] = g[0].file;
		} else {
			snprintf(path, sizeof(path), "%s/grub.efi", dir);
			build_grub_efi(o, g, ng, dir, path);
			files[nf] = strdup(path);
		}
		snprintf(names[nf++], sizeof(names[0]), "guest.efi");
		fprintf(f, "guest.efi %s\n", efi_app ? g[0].args : "");
	}
	/* A guest that returns to the shell: the machine ends there. */
	fprintf(f, "reset -s\n");
	fclose(f);
	files[nf] = nsh;
	snprintf(names[nf++], sizeof(names[0]), "startup.nsh");
	/* The same disk at every depth (its size is in the firmware's device
	 * path, which it prints): room for nestor.efi even when absent. */
	for (int i = 0; i < nf; i++)
		bytes += file_size(files[i]);
	if (depth == 0)
		bytes += file_size(o->nestor.file);
	bytes = (bytes + (4L << 20) - 1) & ~((4L << 20) - 1);

	long cyl = (bytes + (16L << 20) + DISK_CYL_BYTES - 1) / DISK_CYL_BYTES;
	if (cyl < 40)
		cyl = 40;
	long sectors = cyl * DISK_CYL_BYTES / 512;
	/* Bochs locks a disk image with IMAGE.lock; a run killed before
	 * leaves it behind. */
	snprintf(path, sizeof(path), "%s.lock", img);
	unlink(path);
	int fd = open(img, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, cyl * DISK_CYL_BYTES))
		die("cannot create %s: %s", img, strerror(errno));
	unsigned char mbr[512] = { 0 };
	unsigned char *pe = mbr + 446;
	uint32_t start = 2048, count = (uint32_t)(sectors - start);
	pe[1] = 0xfe, pe[2] = 0xff, pe[3] = 0xff, pe[4] = 0xef, pe[5] = 0xfe, pe[6] = 0xff, pe[7] = 0xff;
	memcpy(pe + 8, &start, 4);
	memcpy(pe + 12, &count, 4);
	mbr[510] = 0x55, mbr[511] = 0xaa;
	if (pwrite(fd, mbr, sizeof(mbr), 0) != (ssize_t)sizeof(mbr))
		die("cannot write %s", img);
	close(fd);
	char *mf[] = { "mformat", "-i", part, "-v", "ESP", "::", NULL };
	if (run_cmd(mf, log))
		die("mformat failed, see %s", log);
	for (int i = 0; i < nf; i++) {
		char dst[64];
		snprintf(dst, sizeof(dst), "::%s", names[i]);
		char *mc[] = { "mcopy", "-i", part, (char *)files[i], dst, NULL };
		if (run_cmd(mc, log))
			die("mcopy %s failed, see %s", files[i], log);
	}
}

/* Bochs needs a geometry for a flat disk image: 16 heads, 63 sectors. */
static int disk_cylinders(const char *file)
{
	struct stat st;
	if (stat(file, &st))
		die("cannot stat %s: %s", file, strerror(errno));
	long per_cyl = 16 * 63 * 512;
	if (st.st_size == 0 || st.st_size % per_cyl)
		die("disk image %s is %ld bytes; it must be a non-zero multiple of %ld (16 heads x 63 sectors)", file,
		    (long)st.st_size, per_cyl);
	return (int)(st.st_size / per_cyl);
}

/* --gdb: the TCP port of this run's COM2, or with --gdb-udp the host UDP
 * port forwarded to the debug NIC's port 1234 (0: no gdb); gdb's exit
 * status; whether gdb was started at all (--gdb-udp: once level 0 waits). */
static int gdb_port, gdb_status, gdb_stopped_bochs, gdb_started;
#define GDB_UDP_GUEST_PORT 1234 /* net/debugnic.h, DEBUGNIC_GDB_PORT */

/* A TCP (SOCK_STREAM) or UDP (SOCK_DGRAM) port free now on 127.0.0.1: the
 * kernel picks one for port 0. */
static int free_port(int type)
{
	int fd = socket(AF_INET, type, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &len))
		die("cannot find a free %s port on 127.0.0.1: %s", type == SOCK_DGRAM ? "UDP" : "TCP", strerror(errno));
	close(fd);
	return ntohs(a.sin_port);
}
/* gdb on the guest's symbols, attached to COM2, running the script. */
static pid_t start_gdb(const struct opts *o, const char *dir)
{
	char log[4096], remote[64];
	snprintf(log, sizeof(log), "%s/gdb.txt", dir);
	snprintf(remote, sizeof(remote), "target remote %s127.0.0.1:%d", o->gdb_udp ? "udp:" : "", gdb_port);
	/* gdb connects as soon as Bochs listens, but the stub answers only
	 * once level 0 has booted - seconds later on a loaded machine - and
	 * gdb gives up on a reply after 2 s by default (then replies and
	 * requests no longer match). */
	/* Over UDP gdb starts once the stub waits: a datagram lost is sent
	 * again after remotetimeout, so not 120 s. */
	char *argv[] = { "gdb", "-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off",
			 "-ex", o->gdb_udp ? "set remotetimeout 10" : "set remotetimeout 120", "-ex", remote, "-x",
			 (char *)o->gdb_script, (char *)o->guest.file, NULL };
	gdb_started = 1;
	/* An executable is a client of its own (what gdb's batch mode cannot
	 * do, such as a Ctrl-C while the guest runs: tools/gdb-interrupt.c):
	 * PROGRAM 127.0.0.1:PORT GUEST. */
	if (!access(o->gdb_script, X_OK)) {
		char addr[32];
		snprintf(addr, sizeof(addr), "%s127.0.0.1:%d", o->gdb_udp ? "udp:" : "", gdb_port);
		char *client[] = { (char *)o->gdb_script, addr, (char *)o->guest.file, NULL };
		return spawn(client, log, 1);
	}
	return spawn(argv, log, 1);
}

/* gdb's output without what moves when the sources change: every
 * hexadecimal number (addresses) becomes "0x?", and source line numbers
 * ("line N", "FILE.c:N", a source line's "N<tab>") become "?". */
static char *gdb_normalize(const char *in)
{
	char *out = malloc(2 * strlen(in) + 1), *w = out;
	for (const char *p = in; *p;) {
		bool line_no = (p > in && (p[-1] == ':' || !strncmp(p - (p - in >= 5 ? 5 : 0), "line ", 5))) ||
			       (p == in || p[-1] == '\n');
		if (p[0] == '0' && p[1] == 'x' && isxdigit((unsigned char)p[2])) {
			p += 2;
			while (isxdigit((unsigned char)*p))
				p++;
			*w++ = '0', *w++ = 'x', *w++ = '?';
		} else if (line_no && isdigit((unsigned char)*p) && (p == in || p[-1] != ':' || isalpha((unsigned char)p[-2]))) {
			const char *e = p;
			while (isdigit((unsigned char)*e))
				e++;
			bool at_start = p == in || p[-1] == '\n';
			if (at_start && *e != '\t') { /* a number at the start of a line: kept */
				while (p < e)
					*w++ = *p++;
				continue;
			}
			p = e;
			*w++ = '?';
		} else {
			*w++ = *p++;
		}
	}
	*w = 0;
	return out;
}

/* A run with gdb passes only if gdb ended well and said what was expected. */
static void gdb_verdict(const struct opts *o, const char *dir, struct result *r)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/gdb.txt", dir);
	if (!gdb_stopped_bochs && (!r->reason || strcmp(r->reason, "pass")))
		return;
	if (!gdb_started) {
		r->reason = "gdb-fail";
		snprintf(r->detail, sizeof(r->detail), "level 0 never waited for gdb on UDP (no 'gdb: waiting' line)");
		return;
	}
	if (gdb_status) {
		r->reason = "gdb-fail";
		snprintf(r->detail, sizeof(r->detail), "gdb %s %d%s (%s)", gdb_status < 0 ? "was killed:" : "exit status",
			 gdb_status, gdb_stopped_bochs ? ", Bochs stopped" : "", path);
		return;
	}
	if (!o->gdb_expect)
		return;
	char *got = read_file(path, NULL), *want = read_file(o->gdb_expect, NULL);
	if (!got || !want)
		die("--gdb-expect: cannot read %s or %s", path, o->gdb_expect);
	/* gdb's warning on `target remote udp:` (stderr, in gdb.txt too). */
	static const char *const udp_warning[] = { "warning: The remote protocol may be unreliable over UDP.\n",
						   "Some events may be lost, rendering further debugging impossible.\n" };
	for (unsigned i = 0; i < 2; i++) {
		char *at = strstr(got, udp_warning[i]);
		if (at)
			memmove(at, at + strlen(udp_warning[i]), strlen(at + strlen(udp_warning[i])) + 1);
	}
	char *a = gdb_normalize(want), *b = gdb_normalize(got);
	const char *pa = a, *pb = b;
	for (int line = 1; *pa || *pb; line++) {
		const char *ea = strchr(pa, '\n'), *eb = strchr(pb, '\n');
		size_t la = ea ? (size_t)(ea - pa) : strlen(pa), lb = eb ? (size_t)(eb - pb) : strlen(pb);
		if (la != lb || memcmp(pa, pb, la)) {
			r->reason = "gdb-differs";
			snprintf(r->detail, sizeof(r->detail), "%s line %d: expected '%.*s', got '%.*s'", path, line,
				 (int)(la > 150 ? 150 : la), pa, (int)(lb > 150 ? 150 : lb), pb);
			break;
		}
		pa += la + (ea ? 1 : 0);
		pb += lb + (eb ? 1 : 0);
	}
	free(a), free(b), free(got), free(want);
}

static void dnic_prepare(const struct opts *o, const char *dir, int nested, FILE *bochsrc);
static void npeer_prepare(const struct opts *o, const char *dir, FILE *bochsrc);

/* Debian's OVMF (package ovmf): a 2 MiB image, mapped below 4 GiB. */
#define OVMF_IMAGE "/usr/share/ovmf/OVMF.fd"

static int disk_cylinders_of(const char *dir)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/esp.img", dir);
	return disk_cylinders(p);
}

static void write_bochsrc(const struct opts *o, const char *dir, const char *disk, int boot_disk, int nested)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/bochsrc", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		die("cannot write %s", path);
	/* Deterministic: no real-time clock sync, a fixed start time.  Bochs
	 * #GPs on the MSRs it does not model, as a CPU does on MSRs it lacks;
	 * but Linux reads some that every real Intel CPU has (IA32_MISC_ENABLE
	 * in its decompressor, before it has exception handlers), so a Linux
	 * run has Bochs read them as 0 (docs/linux.md), at every depth alike. */
	if (o->megs > 2048)
		fprintf(f, "memory: guest=%d, host=2048\n", o->megs);
	else
		fprintf(f, "megs: %d\n", o->megs);
	fprintf(f,
		"cpu: count=%d, model=%s, ips=10000000, reset_on_triple_fault=0, ignore_bad_msrs=%d\n"
		"clock: sync=none, time0=946684800\n"
		"%s\n"
		"vgaromimage: file=/usr/share/vgabios/vgabios.bin\n"
		"pci: enabled=1, chipset=i440fx\n"
		"com1: enabled=1, mode=file, dev=%s/serial.txt\n"
		"port_e9_hack: enabled=1\n"
		"display_library: rfb, options=\"timeout=0\"\n"
		"mouse: enabled=0\n"
		"speaker: enabled=0\n"
		"sound: driver=dummy\n"
		"log: %s/bochs.log\n"
		"panic: action=fatal\n"
		"error: action=report\n"
		"info: action=ignore\n"
		"debug: action=ignore\n",
		o->cpus, o->cpu, o->linux_guest || o->uefi ? 1 : 0,
		o->uefi ? "romimage: file=" OVMF_IMAGE ", address=0xffe00000"
			: "romimage: file=/usr/share/bochs/BIOS-bochs-latest, options=fastboot",
		dir, dir);
	if (disk)
		fprintf(f, "ata0-master: type=disk, path=%s, mode=flat, cylinders=%d, heads=16, spt=63\n", disk,
			disk_cylinders(disk));
	if (o->uefi == UEFI_SHELL)
		fprintf(f, "ata0-master: type=disk, path=%s/esp.img, mode=flat, cylinders=%d, heads=16, spt=63\n", dir,
			disk_cylinders_of(dir));
	else if (!boot_disk)
		fprintf(f, "ata0-%s: type=cdrom, path=%s/boot.iso, status=inserted\n", disk ? "slave" : "master", dir);
	fprintf(f, "boot: %s\n", boot_disk || o->uefi == UEFI_SHELL ? "disk" : "cdrom");
	for (int i = 0; i < o->n_bochs_lines; i++)
		fprintf(f, "%s\n", o->bochs_lines[i]);
	for (int i = 0; nested && i < o->n_nested_bochs_lines; i++)
		fprintf(f, "%s\n", o->nested_bochs_lines[i]);
	dnic_prepare(o, dir, nested, f);
	npeer_prepare(o, dir, f);
	/* --gdb: Bochs listens there and waits for gdb before it starts. */
	if (gdb_port && !o->gdb_udp)
		fprintf(f, "com2: enabled=1, mode=socket-server, dev=127.0.0.1:%d\n", gdb_port);
	fclose(f);
	snprintf(path, sizeof(path), "%s/debugger.rc", dir);
	write_file(path, "c\nq\n", 4);
}

/* A line of Nestor's log; carriage returns before it are the guest's
 * (GRUB-EFI ends its messages with one, and Nestor's line follows). */
static int is_nestor_line(const char *line)
{
	while (*line == '\r')
		line++;
	return !strncmp(line, "nestor[", 7) || !strncmp(line, "nestor:", 7);
}

/* The guest's transcript: every serial line that is not Nestor's. */
static char *transcript_of(const char *serial)
{
	size_t len = strlen(serial);
	char *out = malloc(len + 1), *w = out;
	for (const char *p = serial; *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p + 1) : strlen(p);
		if (!is_nestor_line(p)) {
			memcpy(w, p, l);
			w += l;
		} else {
			while (*p == '\r') /* the guest's, not Nestor's */
				*w++ = *p++, l--;
		}
		p += l;
	}
	*w = '\0';
	return out;
}

/* Streams new serial bytes to stdout. */
static void stream_serial(const char *path, long *pos)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	if (fseek(f, *pos, SEEK_SET) == 0) {
		char buf[4096];
		size_t n;
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
			fwrite(buf, 1, n, stdout);
			*pos += n;
		}
		fflush(stdout);
	}
	fclose(f);
}

/* The serial log as text: a NUL byte (a UART reprogrammed mid-byte can
 * produce one) would end a C string early, so it is shown as '?'. */
static char *read_serial(const char *path)
{
	size_t len;
	char *s = read_file(path, &len);
	if (!s)
		return strdup("");
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0')
			s[i] = '?';
	return s;
}

#define LINUX_PANIC "Kernel panic - not syncing"
#define STOPPED_LINUX_PANIC 2 /* run_bochs: *timed_out when Linux panicked */
#define STOPPED_PATTERN 3     /* run_bochs: *timed_out after a --pass-line/--fail-line match */

/* With --pass-line / --fail-line: the first guest line (not Nestor's) of
 * the serial log that matches either; NULL when none does.  *failed says
 * which, *len its length. */
static const char *pattern_line(const struct opts *o, const char *serial, bool *failed, size_t *len)
{
	if (!o->pass_line && !o->fail_line)
		return NULL;
	for (const char *p = serial; *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char line[1024];
		snprintf(line, sizeof(line), "%.*s", (int)(l < sizeof(line) - 1 ? l : sizeof(line) - 1), p);
		if (!is_nestor_line(line)) {
			bool f = o->fail_line && !regexec(&o->fail_re, line, 0, NULL, 0);
			if (f || (o->pass_line && !regexec(&o->pass_re, line, 0, NULL, 0))) {
				*failed = f;
				*len = l;
				return p;
			}
		}
		p += e ? l + 1 : l;
	}
	return NULL;
}

static void judge(const struct opts *o, int depth_known, int depth, const char *dir, int timed_out,
		  struct result *r)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/serial.txt", dir);
	char *serial = read_serial(path);
	snprintf(path, sizeof(path), "%s/bochs.log", dir);
	char *blog = read_file(path, NULL);
	if (!blog)
		blog = strdup("");
	snprintf(path, sizeof(path), "%s/bochs.out", dir);
	char *bout = read_file(path, NULL);
	if (bout) {
		/* The debugger's last line is "(0).[TICKS] ...": emulated instructions. */
		const char *t = strstr(bout, "(0).[");
		const char *last = NULL;
		while (t) {
			last = t;
			t = strstr(t + 1, "(0).[");
		}
		if (last)
			r->ticks = strtoull(last + 5, NULL, 10);
		free(bout);
	}

	int ends_ok = 0;
	const char *guest_result = NULL;
	char first_error[512] = "";
	r->reason = NULL;
	for (const char *p = serial; *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char line[1024];
		snprintf(line, sizeof(line), "%.*s", (int)(l < sizeof(line) - 1 ? l : sizeof(line) - 1), p);
		if (is_nestor_line(line)) {
			if (strstr(line, "PANIC") && !r->reason) {
				r->reason = "nestor-panic";
				snprintf(r->detail, sizeof(r->detail), "%s", line);
			} else if (strstr(line, "end of run (failure)") && !r->reason) {
				r->reason = "nestor-fail";
				snprintf(r->detail, sizeof(r->detail), "%s", first_error[0] ? first_error : line);
			} else if (strstr(line, "error: ") && !first_error[0]) {
				snprintf(first_error, sizeof(first_error), "%s", line);
			} else if (strstr(line, "end of run (success)")) {
				ends_ok++;
			}
		} else if (!strncmp(line, "RESULT: ", 8) && !guest_result) {
			guest_result = p;
		}
		p += e ? l + 1 : l;
	}

	bool pat_failed = false;
	size_t pat_len = 0;
	const char *pat = r->reason ? NULL : pattern_line(o, serial, &pat_failed, &pat_len);
	if (pat) {
		r->reason = pat_failed ? "guest-fail" : "pass";
		if (pat_failed)
			snprintf(r->detail, sizeof(r->detail), "%.*s", (int)(pat_len < 200 ? pat_len : 200), pat);
	} else if (!r->reason && !strcmp(o->verdict, "guest")) {
		if (guest_result) {
			if (!strncmp(guest_result, "RESULT: PASS", 12))
				r->reason = "pass";
			else {
				r->reason = "guest-fail";
				const char *e = strchr(guest_result, '\n');
				snprintf(r->detail, sizeof(r->detail), "%.*s", (int)(e ? e - guest_result : 200),
					 guest_result);
			}
		}
	} else if (!r->reason && ends_ok > 0) {
		r->reason = "pass";
	}
	/* Every Nestor level must have ended cleanly, bottom to top. */
	if (r->reason && !strcmp(r->reason, "pass") && depth_known && ends_ok != depth &&
	    timed_out != STOPPED_PATTERN) {
		r->reason = "nestor-no-end";
		snprintf(r->detail, sizeof(r->detail), "%d of %d Nestor levels reported a clean end of run", ends_ok,
			 depth);
	}
	/* --expect-line: e.g. a Nestor's log of what it blocked. */
	if (r->reason && !strcmp(r->reason, "pass") && o->expect_line && depth_known && depth > 0) {
		bool seen = false;
		for (const char *p = serial; *p && !seen;) {
			const char *e = strchr(p, '\n');
			size_t l = e ? (size_t)(e - p) : strlen(p);
			char line[1024];
			snprintf(line, sizeof(line), "%.*s", (int)(l < sizeof(line) - 1 ? l : sizeof(line) - 1), p);
			seen = !regexec(&o->expect_re, line, 0, NULL, 0);
			p += e ? l + 1 : l;
		}
		if (!seen) {
			r->reason = "expect-line-missing";
			snprintf(r->detail, sizeof(r->detail), "no line matches '%s'", o->expect_line);
		}
	}
	if (timed_out == STOPPED_LINUX_PANIC) {
		const char *p = strstr(serial, LINUX_PANIC);
		const char *e = p ? strchr(p, '\n') : NULL;
		r->reason = "linux-panic";
		snprintf(r->detail, sizeof(r->detail), "%.*s", p ? (int)(e ? e - p : 200) : 0, p ? p : "");
	} else if (!r->reason || timed_out == 1) {
		const char *tf = strstr(blog, "exception with no resolution");
		const char *pn = strstr(blog, ">>PANIC<<");
		if (tf) {
			r->reason = "triple-fault";
			const char *s = tf;
			while (s > blog && s[-1] != '\n')
				s--;
			const char *e = strchr(tf, '\n');
			snprintf(r->detail, sizeof(r->detail), "Bochs: %.*s", (int)(e ? e - s : 200), s);
		} else if (pn && !strstr(pn, "Shutdown port: shutdown requested")) {
			r->reason = "bochs-panic";
			const char *e = strchr(pn, '\n');
			snprintf(r->detail, sizeof(r->detail), "Bochs: %.*s", (int)(e ? e - pn : 200), pn);
		} else if (timed_out) {
			r->reason = "timeout";
			snprintf(r->detail, sizeof(r->detail), "the run did not end within %d s%s", o->timeout,
				 guest_result ? " (after the guest's RESULT line)" : "");
		} else if (!r->reason) {
			r->reason = "no-result";
			snprintf(r->detail, sizeof(r->detail), "the run ended without a result line");
		}
	}
	if (o->transcript_out || depth_known) {
		char *t = transcript_of(serial);
		if (o->transcript_out)
			write_file(o->transcript_out, t, strlen(t));
		snprintf(path, sizeof(path), "%s/transcript.txt", dir);
		write_file(path, t, strlen(t));
		free(t);
	}
	free(serial);
	free(blog);
}

/* --debug-nic (docs/debug-nic.md): at depths >= 1 the machine gets Bochs'
 * ne2k in PCI slot 1 on a slirp network whose only way in is one UDP port
 * forwarded from 127.0.0.1 to level 0's debug port.  While Bochs runs the harness subscribes
 * ("log", resent until Nestor answers) and writes every datagram to
 * udp-log.txt; the verdict then requires that level 0's lines on COM1,
 * from the first one streamed to the end, all came over UDP, in order. */
#define DEBUGNIC_GUEST_PORT 6510
/* Bochs 2.7's slirp in restricted mode drops every UDP datagram from the
 * machine but DHCP and TFTP (slirp/udp.cc, udp_input: "if
 * (slirp->restricted) goto bad;" before the socket lookup), replies to a
 * forwarded port included: measured, nothing arrives.  So the network is
 * unrestricted, and what keeps it on this host is who talks on it: only
 * level 0 drives this NIC (guarded from every level above), and it sends
 * only ARP and UDP to 10.0.2.2, which slirp delivers to 127.0.0.1
 * (slirp/socket.cc, sosendto: an alias of the virtual network). */
#define DEBUGNIC_RESTRICTED 0
static struct {
	int port;      /* host UDP port forwarded to the machine; 0: not this run */
	int sock;      /* the subscriber's socket */
	FILE *log;     /* udp-log.txt */
	double last_hello;
	bool subscribed;
	unsigned long datagrams;
} dnic = { .sock = -1 };

/* The bochsrc lines and slirp configuration of one run (nested: depth >= 1). */
static void dnic_prepare(const struct opts *o, const char *dir, int nested, FILE *bochsrc)
{
	dnic.port = 0;
	if (!o->debug_nic || !nested)
		return;
	dnic.port = free_port(SOCK_DGRAM);
	char path[4096], conf[512];
	snprintf(path, sizeof(path), "%s/slirp.conf", dir);
	/* Bochs iodev/network/eth_slirp.cc: the first line must be "# slirp
	 * config"; hostfwd is "udp:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT"
	 * (slirp/compat.cc, slirp_hostfwd), the guest address empty for
	 * slirp's first DHCP address, 10.0.2.15. */
	int n = snprintf(conf, sizeof(conf),
			 "# slirp config\n"
			 "# written by nestor-run --debug-nic: level 0's debug NIC (docs/debug-nic.md)\n"
			 "restricted = %d\n"
			 "hostfwd = udp:127.0.0.1:%d-:%d\n",
			 DEBUGNIC_RESTRICTED, dnic.port, DEBUGNIC_GUEST_PORT);
	/* --gdb-udp: gdb's port, the stub's at 10.0.2.15 (docs/gdb.md). */
	if (o->gdb_udp && gdb_port)
		n += snprintf(conf + n, sizeof(conf) - (size_t)n, "hostfwd = udp:127.0.0.1:%d-:%d\n", gdb_port,
			      GDB_UDP_GUEST_PORT);
	write_file(path, conf, (size_t)n);
	fprintf(bochsrc,
		"pci: enabled=1, chipset=i440fx, slot1=ne2k\n"
		"ne2k: enabled=1, type=pci, mac=b0:c4:20:00:00:01, ethmod=slirp, script=%s\n",
		path);
}

static void dnic_start(const char *dir)
{
	if (!dnic.port)
		return;
	char path[4096];
	snprintf(path, sizeof(path), "%s/udp-log.txt", dir);
	dnic.log = fopen(path, "w");
	if (!dnic.log)
		die("cannot write %s", path);
	dnic.sock = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int big = 4 << 20;
	if (dnic.sock < 0 || bind(dnic.sock, (struct sockaddr *)&a, sizeof(a)))
		die("--debug-nic: cannot open a UDP socket: %s", strerror(errno));
	setsockopt(dnic.sock, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	fcntl(dnic.sock, F_SETFL, O_NONBLOCK);
	dnic.subscribed = false;
	dnic.last_hello = 0;
	dnic.datagrams = 0;
}

static void dnic_poll(void)
{
	if (!dnic.port)
		return;
	char buf[2048];
	ssize_t n;
	while ((n = recv(dnic.sock, buf, sizeof(buf), 0)) >= 0) {
		dnic.datagrams++;
		if (n >= 20 && !memcmp(buf, "debugnic: subscribed", 20))
			dnic.subscribed = true;
		fwrite(buf, 1, (size_t)n, dnic.log);
		if (n == 0 || buf[n - 1] != '\n')
			fputc('\n', dnic.log);
	}
	fflush(dnic.log);
	/* Until Nestor answers: the port is not forwarded before Bochs has
	 * started, and Nestor reads the NIC only once it drives it. */
	if (!dnic.subscribed && now_seconds() - dnic.last_hello > 0.2) {
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)dnic.port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		sendto(dnic.sock, "log\n", 4, 0, (struct sockaddr *)&to, sizeof(to));
		dnic.last_hello = now_seconds();
	}
}

static void dnic_stop(void)
{
	if (!dnic.port)
		return;
	dnic_poll(); /* what the kernel still holds */
	close(dnic.sock);
	dnic.sock = -1;
	fclose(dnic.log);
	dnic.log = NULL;
}

/* Splits text into its lines (without '\r' and '\n'). */
static char **dnic_lines(const char *text, int *count, bool level0_only)
{
	int cap = 64, n = 0;
	char **v = malloc(sizeof(*v) * (size_t)cap);
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		while (l && p[l - 1] == '\r')
			l--;
		if (!level0_only || (l >= 11 && !memcmp(p, "nestor[0]: ", 11))) {
			if (n == cap)
				v = realloc(v, sizeof(*v) * (size_t)(cap *= 2));
			v[n++] = strndup(p, l);
		}
		p = e ? e + 1 : p + l;
	}
	*count = n;
	return v;
}

/* The verdict's part: level 0's COM1 lines from the first streamed one to
 * the end are exactly the "nestor[" datagrams, in order. */
static void dnic_judge(const char *dir, struct result *r)
{
	if (!dnic.port || !r->reason || strcmp(r->reason, "pass"))
		return;
	char path[4096];
	snprintf(path, sizeof(path), "%s/serial.txt", dir);
	char *serial = read_serial(path);
	snprintf(path, sizeof(path), "%s/udp-log.txt", dir);
	char *udp = read_file(path, NULL);
	int ns, nu_all, nu = 0;
	char **s = dnic_lines(serial, &ns, true);
	char **u = dnic_lines(udp ? udp : "", &nu_all, false);
	for (int i = 0; i < nu_all; i++)
		if (!strncmp(u[i], "nestor[", 7))
			u[nu++] = u[i];
		else
			free(u[i]);
	r->reason = "debugnic-log";
	if (!dnic.subscribed)
		snprintf(r->detail, sizeof(r->detail), "no subscription answer from level 0 on UDP port %d (%lu datagrams)",
			 dnic.port, dnic.datagrams);
	else if (!nu)
		snprintf(r->detail, sizeof(r->detail), "subscribed, but no log line came over UDP");
	else if (nu > ns)
		snprintf(r->detail, sizeof(r->detail), "%d lines over UDP, only %d nestor[0] lines on COM1", nu, ns);
	else {
		int k = ns - nu, bad = -1;
		for (int i = 0; i < nu && bad < 0; i++)
			if (strcmp(u[i], s[k + i]))
				bad = i;
		if (bad < 0) {
			r->reason = "pass";
			printf("  debug NIC: %d of %d level-0 lines streamed over UDP (port %d), all of them from the "
			       "subscription on\n", nu, ns, dnic.port);
		} else
			snprintf(r->detail, sizeof(r->detail), "UDP line %d '%.150s' differs from COM1's '%.150s'", bad + 1,
				 u[bad], s[k + bad]);
	}
	for (int i = 0; i < ns; i++)
		free(s[i]);
	for (int i = 0; i < nu; i++)
		free(u[i]);
	free(s);
	free(u);
	free(serial);
	free(udp);
}

/* --nic-peer TEXT (docs/security-functions.md, the demonstration): every
 * run gets Bochs' e1000 in PCI slot 2 (function 00:03.0) on a slirp network
 * in restricted mode - no connection out of the emulator - whose one way
 * in is TCP port 7000 of the guest, forwarded from a free port of
 * 127.0.0.1.  Once the guest says "nic: eth0 up" on its console the
 * harness connects there (again until the guest listens), sends TEXT and
 * a newline, and keeps the line the guest answers in nic-peer.txt; the
 * verdict wants that line.  (Not before: slirp would call the guest at
 * once, and Bochs' e1000 loses its receive ring to frames that come before
 * the driver set it up - the guest's DHCP then fails.) */
#define NIC_PEER_GUEST_PORT 7000
static struct {
	int port, sock, state; /* state 0: idle, 1: connected, waiting for the answer, 2: answered */
	bool ready;            /* the guest's interface is up */
	double last_try, connected_at;
	char serial[4096];     /* its console */
	char answer[512];
	size_t len;
	const char *text;
	unsigned long long flood, sent; /* --nic-flood: bytes to send, sent */
} npeer = { .sock = -1 };

static void npeer_prepare(const struct opts *o, const char *dir, FILE *bochsrc)
{
	npeer.port = 0;
	if (!o->nic_peer && !o->nic_flood)
		return;
	npeer.text = o->nic_peer;
	npeer.flood = (unsigned long long)o->nic_flood * 1024;
	npeer.sent = 0;
	npeer.port = free_port(SOCK_STREAM);
	npeer.ready = false;
	npeer.state = 0;
	npeer.len = 0;
	npeer.answer[0] = 0;
	snprintf(npeer.serial, sizeof(npeer.serial), "%s/serial.txt", dir);
	char path[4096], conf[512];
	snprintf(path, sizeof(path), "%s/e1000-slirp.conf", dir);
	int n = snprintf(conf, sizeof(conf),
			 "# slirp config\n"
			 "# written by nestor-run --nic-peer: the guest's e1000, no way out, one way in\n"
			 "restricted = 1\n"
			 "hostfwd = tcp:127.0.0.1:%d-:%d\n",
			 npeer.port, NIC_PEER_GUEST_PORT);
	write_file(path, conf, (size_t)n);
	fprintf(bochsrc,
		"pci: enabled=1, chipset=i440fx, slot2=e1000\n"
		"e1000: mac=52:54:00:12:34:56, ethmod=slirp, script=%s\n",
		path);
}

static void npeer_close(void)
{
	if (npeer.sock >= 0)
		close(npeer.sock);
	npeer.sock = -1;
}

/* --nic-flood: once the guest listens (nic-rx says so), one connection
 * and its bytes, sent as fast as slirp takes them, then closed: the end of
 * the data for the guest.  The harness's loop goes on meanwhile. */
static void nflood_poll(void)
{
	if (npeer.state == 0) {
		if (now_seconds() - npeer.last_try < 0.5)
			return;
		npeer.last_try = now_seconds();
		char *t = read_serial(npeer.serial);
		bool listening = strstr(t, "nic: rx: listening on port") != NULL;
		free(t);
		if (!listening)
			return;
		npeer.sock = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)npeer.port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		if (npeer.sock < 0 || connect(npeer.sock, (struct sockaddr *)&to, sizeof(to))) {
			npeer_close();
			return;
		}
		fcntl(npeer.sock, F_SETFL, O_NONBLOCK);
		npeer.state = 1;
		npeer.sent = 0;
	}
	static char block[65536]; /* the data: bytes 0, 1, .. 255, 0, .. */
	if (!block[1])
		for (size_t i = 0; i < sizeof(block); i++)
			block[i] = (char)i;
	while (npeer.sent < npeer.flood) {
		unsigned long long left = npeer.flood - npeer.sent, off = npeer.sent % sizeof(block);
		size_t len = sizeof(block) - off < left ? sizeof(block) - off : (size_t)left;
		ssize_t n = send(npeer.sock, block + off, len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0) { /* slirp closed it: the verdict says the data did not arrive */
			npeer_close();
			npeer.state = 2;
			return;
		}
		npeer.sent += (unsigned long long)n;
	}
	npeer_close(); /* the rest leaves the socket buffer after the close */
	npeer.state = 2;
}

static void npeer_poll(void)
{
	if (!npeer.port || npeer.state == 2)
		return;
	if (npeer.flood) {
		nflood_poll();
		return;
	}
	if (npeer.state == 0) {
		if (now_seconds() - npeer.last_try < 0.5)
			return;
		npeer.last_try = now_seconds();
		if (!npeer.ready) {
			char *t = read_serial(npeer.serial);
			npeer.ready = t && strstr(t, "nic: eth0 up");
			free(t);
			if (!npeer.ready)
				return;
		}
		/* slirp accepts at once and then calls the guest: a guest that
		 * does not listen yet resets it, and we try again. */
		npeer.sock = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)npeer.port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		if (npeer.sock < 0 || connect(npeer.sock, (struct sockaddr *)&to, sizeof(to))) {
			npeer_close();
			return;
		}
		char line[600];
		int n = snprintf(line, sizeof(line), "%s\n", npeer.text);
		if (send(npeer.sock, line, (size_t)n, MSG_NOSIGNAL) != n) {
			npeer_close();
			return;
		}
		fcntl(npeer.sock, F_SETFL, O_NONBLOCK);
		npeer.state = 1;
		npeer.len = 0;
		npeer.connected_at = now_seconds();
		return;
	}
	char buf[256];
	ssize_t n;
	while ((n = recv(npeer.sock, buf, sizeof(buf), 0)) > 0)
		for (ssize_t i = 0; i < n && npeer.state == 1; i++) {
			if (buf[i] == '\n') {
				npeer.state = 2;
				npeer_close();
				return;
			}
			if (npeer.len < sizeof(npeer.answer) - 1)
				npeer.answer[npeer.len++] = buf[i];
			npeer.answer[npeer.len] = 0;
		}
	/* Closed without a line (the guest was not listening), or too long. */
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || now_seconds() - npeer.connected_at > 20) {
		npeer_close();
		npeer.state = 0;
	}
}

/* --nic-flood: the guest must have received every byte and measured. */
static void nflood_judge(const char *dir, struct result *r)
{
	char path[4096], want[96];
	snprintf(path, sizeof(path), "%s/serial.txt", dir);
	char *t = read_serial(path);
	snprintf(want, sizeof(want), "nic: rx: %llu bytes received", npeer.flood);
	const char *got = strstr(t, want), *m = strstr(t, "env: nic-rx: ");
	if (got && m) {
		const char *e = strchr(m, '\n');
		printf("  e1000: the host sent %llu bytes to 127.0.0.1:%d; %.*s\n", npeer.flood, npeer.port,
		       (int)(e ? e - m : (long)strlen(m)), m);
	} else if (r->reason && !strcmp(r->reason, "pass")) {
		r->reason = "nic-flood";
		snprintf(r->detail, sizeof(r->detail), "%s (sent %llu of %llu bytes)",
			 got ? "the guest did not report its measurement" : "the guest did not receive every byte",
			 npeer.sent, npeer.flood);
	}
	free(t);
}

static void npeer_judge(const char *dir, struct result *r)
{
	if (!npeer.port)
		return;
	npeer_close();
	if (npeer.flood) {
		nflood_judge(dir, r);
		return;
	}
	char path[4096], want[600];
	snprintf(path, sizeof(path), "%s/nic-peer.txt", dir);
	write_file(path, npeer.answer, npeer.len);
	snprintf(want, sizeof(want), "linux: got '%s' over e1000", npeer.text);
	if (npeer.state == 2 && !strcmp(npeer.answer, want))
		printf("  e1000: the host sent '%s' to 127.0.0.1:%d, the guest answered '%s'\n", npeer.text, npeer.port,
		       npeer.answer);
	if (!r->reason || strcmp(r->reason, "pass") || (npeer.state == 2 && !strcmp(npeer.answer, want)))
		return;
	r->reason = "nic-peer";
	snprintf(r->detail, sizeof(r->detail), "%s", npeer.state == 2 ? "the guest's answer differs" :
						     "no answer from the guest on its e1000");
}

static void run_bochs(const struct opts *o, const char *dir, int *timed_out, double *secs)
{
	char rc[4096], cfg[4096], out[4096], serial[4096];
	snprintf(cfg, sizeof(cfg), "%s/bochsrc", dir);
	snprintf(rc, sizeof(rc), "%s/debugger.rc", dir);
	snprintf(out, sizeof(out), "%s/bochs.out", dir);
	snprintf(serial, sizeof(serial), "%s/serial.txt", dir);
	unlink(serial);
	double start = now_seconds();
	char *argv[] = { (char *)o->bochs, "-q", "-f", cfg, "-rc", rc, NULL };
	dnic_start(dir);
	pid_t pid = spawn(argv, out, 1);
	gdb_status = gdb_stopped_bochs = gdb_started = 0;
	/* Over UDP Bochs does not wait for gdb, and a datagram sent before
	 * slirp forwards the port is refused (gdb then gives up): gdb starts
	 * when level 0 says it waits. */
	pid_t gdb = gdb_port && !o->gdb_udp ? start_gdb(o, dir) : 0;
	double gdb_look = start;
	long pos = 0;
	*timed_out = 0;
	double stop_seen = 0, last_look = start;
	int stop_why = 0;
	for (;;) {
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		/* gdb failed (no gdb, a script error, the stub silent): Bochs may
		 * wait for it forever, in accept() or at a stop. */
		if (gdb && waitpid(gdb, &st, WNOHANG) == gdb) {
			gdb_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
			gdb = 0;
			if (gdb_status) {
				kill(-pid, SIGKILL);
				waitpid(pid, &st, 0);
				gdb_stopped_bochs = 1;
				break;
			}
		}
		if (gdb_port && o->gdb_udp && !gdb_started && now_seconds() - gdb_look > 0.1) {
			gdb_look = now_seconds();
			char *t = read_serial(serial);
			if (strstr(t, "gdb: waiting for gdb on"))
				gdb = start_gdb(o, dir);
			free(t);
		}
		if (o->stream)
			stream_serial(serial, &pos);
		dnic_poll();
		npeer_poll();
		/* A Linux that panicked never ends by itself: stop it two seconds
		 * later (its backtrace gets out) instead of at the time limit;
		 * the same for a guest judged by a --pass-line/--fail-line. */
		if ((o->linux_guest || o->pass_line || o->fail_line) && !stop_seen && now_seconds() - last_look > 1) {
			last_look = now_seconds();
			char *t = read_serial(serial);
			bool f;
			size_t l;
			if (o->linux_guest && strstr(t, LINUX_PANIC))
				stop_seen = last_look, stop_why = STOPPED_LINUX_PANIC;
			else if (pattern_line(o, t, &f, &l))
				stop_seen = last_look, stop_why = STOPPED_PATTERN;
			free(t);
		}
		if (stop_seen && now_seconds() - stop_seen > 2) {
			kill(-pid, SIGKILL);
			waitpid(pid, &st, 0);
			*timed_out = stop_why;
			break;
		}
		if (now_seconds() - start > o->timeout) {
			kill(-pid, SIGKILL);
			waitpid(pid, &st, 0);
			*timed_out = 1;
			break;
		}
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (o->stream)
		stream_serial(serial, &pos);
	dnic_stop();
	/* gdb ends when the stub reports the end of the run (or the socket
	 * closes): a few seconds at most after Bochs. */
	for (double t0 = now_seconds(); gdb;) {
		int st;
		if (waitpid(gdb, &st, WNOHANG) == gdb) {
			gdb_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
			break;
		}
		if (now_seconds() - t0 > 10) {
			kill(-gdb, SIGKILL);
			waitpid(gdb, &st, 0);
			gdb_status = -1;
			break;
		}
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	*secs = now_seconds() - start;
}

/* Builds the stack for a guest at a depth: depth Nestor images, then the
 * guest.  With --mb1 the Nestor right below the guest boots it by multiboot
 * (version 1), as GRUB's "multiboot" command does at depth 0. */
static int stack_for_depth(const struct opts *o, int depth, struct item *stack)
{
	int n = 0;
	for (int i = 0; i < depth; i++) {
		stack[n] = o->nestor;
		if (o->level_args[i][0])
			snprintf(stack[n].args + strlen(stack[n].args), sizeof(stack[n].args) - strlen(stack[n].args),
				 "%s%s", stack[n].args[0] ? " " : "", o->level_args[i]);
		n++;
	}
	if (o->gdb_script && depth > 0)
		snprintf(stack[0].args + strlen(stack[0].args), sizeof(stack[0].args) - strlen(stack[0].args),
			 "%sgdb=%s", stack[0].args[0] ? " " : "", o->gdb_udp ? "udp" : "serial");
	if (o->mb1 && depth > 0)
		snprintf(stack[n - 1].args + strlen(stack[n - 1].args),
			 sizeof(stack[n - 1].args) - strlen(stack[n - 1].args), "%sguest=multiboot",
			 stack[n - 1].args[0] ? " " : "");
	stack[n++] = o->guest;
	for (int i = 0; i < o->n_modules; i++)
		stack[n++] = o->modules[i];
	return n;
}

static void run_one(const struct opts *o, const struct item *stack, int n, int depth_known, int depth,
		    const char *dir, struct result *r)
{
	make_dirs(dir);
	/* A boot-sector guest alone is booted by the BIOS from its disk. */
	int boot_disk = o->disk_guest && depth_known && depth == 0;
	if (o->uefi == UEFI_SHELL)
		build_esp(o, stack, n, depth_known ? depth : 0, dir);
	else if (!boot_disk)
		build_iso(o, stack, n, dir, o->linux_guest && depth_known && depth == 0,
			  o->mb1 && (!depth_known || depth == 0));
	/* Each run boots its own copy of a disk: Bochs locks the image file. */
	char disk[4096];
	if (o->disk_guest) {
		snprintf(disk, sizeof(disk), "%s/disk.img", dir);
		copy_file(o->guest.file, disk);
	}
	gdb_port = o->gdb_script && depth_known && depth > 0 ? free_port(o->gdb_udp ? SOCK_DGRAM : SOCK_STREAM) : 0;
	write_bochsrc(o, dir, o->disk_guest ? disk : NULL, boot_disk, !depth_known || depth > 0);
	int timed_out;
	/* Bochs' RFB display takes a free TCP port from 5900 up; two Bochs
	 * starting at the same moment can collide, and the loser exits at
	 * once.  That is the harness's problem, not the run's: start again. */
	for (int attempt = 0;; attempt++) {
		run_bochs(o, dir, &timed_out, &r->seconds);
		char path[4096];
		snprintf(path, sizeof(path), "%s/bochs.out", dir);
		char *out = read_file(path, NULL);
		int port_clash = out && strstr(out, "could not bind");
		free(out);
		if (!port_clash || attempt == 5)
			break;
		struct timespec ts = { 0, (100 + 150 * attempt + (getpid() % 7) * 37) * 1000 * 1000L };
		nanosleep(&ts, NULL);
	}
	judge(o, depth_known, depth, dir, timed_out, r);
	dnic_judge(dir, r);
	npeer_judge(dir, r);
	if (gdb_port)
		gdb_verdict(o, dir, r);
}

/* Linux prefixes its messages with "[seconds.micros] ": a time, which
 * differs from run to run on purpose; the message after it is compared. */
static const char *skip_timestamp(const char *line, size_t *len)
{
	if (*len < 3 || line[0] != '[')
		return line;
	const char *e = memchr(line, ']', *len);
	if (!e || (size_t)(e - line) > 16)
		return line;
	for (const char *p = line + 1; p < e; p++)
		if (*p != ' ' && *p != '.' && (*p < '0' || *p > '9'))
			return line;
	e++;
	while ((size_t)(e - line) < *len && *e == ' ')
		e++;
	*len -= (size_t)(e - line);
	return e;
}

/* What is compared of two transcripts: never "env: " lines; with
 * --compare-only only the lines matching it, with --ignore not those
 * matching that; a Linux timestamp is not part of a line (--linux). */
struct comparison {
	const regex_t *only, *ignore;
	bool strip_time;
};

static bool compared(const char *line, const struct comparison *c)
{
	if (!strncmp(line, "env: ", 5))
		return false;
	if (!c->only && !c->ignore)
		return true;
	const char *e = strchr(line, '\n');
	size_t len = e ? (size_t)(e - line) : strlen(line);
	const char *msg = skip_timestamp(line, &len);
	char buf[1024];
	snprintf(buf, sizeof(buf), "%.*s", (int)len, msg);
	if (c->only && regexec(c->only, buf, 0, NULL, 0))
		return false;
	return !c->ignore || regexec(c->ignore, buf, 0, NULL, 0);
}

/* Compares transcripts line by line, skipping the lines not compared on
 * both sides. */
static int compare_transcripts(const char *a, const char *b, const struct comparison *c, char *detail,
			       size_t dlen)
{
	int line_a = 0, line_b = 0;
	for (;;) {
		while (*a && !compared(a, c)) {
			a = strchr(a, '\n');
			a = a ? a + 1 : "";
			line_a++;
		}
		while (*b && !compared(b, c)) {
			b = strchr(b, '\n');
			b = b ? b + 1 : "";
			line_b++;
		}
		if (!*a && !*b)
			return 0;
		const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
		size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
		size_t ma = la, mb = lb;
		const char *pa = c->strip_time ? skip_timestamp(a, &ma) : a;
		const char *pb = c->strip_time ? skip_timestamp(b, &mb) : b;
		line_a++, line_b++;
		if (ma != mb || memcmp(pa, pb, ma)) {
			snprintf(detail, dlen, "line %d: '%.*s' (depth 0) vs line %d: '%.*s'", line_a,
				 (int)(la > 160 ? 160 : la), a, line_b, (int)(lb > 160 ? 160 : lb), b);
			return -1;
		}
		a += la + (ea ? 1 : 0);
		b += lb + (eb ? 1 : 0);
	}
}

/* Whether reason is one of the comma-separated list. */
static int reason_in(const char *reason, const char *list)
{
	size_t n = strlen(reason);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == n && !strncmp(p, reason, n))
			return 1;
		p += l + (e ? 1 : 0);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .cpu = "corei7_skylake_x", .cpus = 1, .megs = 256, .timeout = 120, .name = "run",
			  .verdict = "guest", .bochs = "bochs" };
	int depth = -1;
	parse_item(&o.nestor, "build/nestor.elf");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_ARG()                                         \
	do {                                               \
		if (!v)                                    \
			die("option %s needs a value", a); \
		i++;                                       \
	} while (0)
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "-k")) {
			NEED_ARG();
			if (o.n_stack == MAX_STACK)
				die("at most %d kernels", MAX_STACK);
			parse_item(&o.stack[o.n_stack++], v);
		} else if (!strcmp(a, "--guest")) {
			NEED_ARG();
			parse_item(&o.guest, v);
			o.have_guest = 1;
		} else if (!strcmp(a, "--nestor")) {
			NEED_ARG();
			parse_item(&o.nestor, v);
		} else if (!strcmp(a, "--level-args")) {
			NEED_ARG();
			int level = parse_int(v, "--level-args");
			if (level < 0 || level >= MAX_STACK || i + 1 >= argc)
				die("--level-args takes a level (0..%d) and the options to add", MAX_STACK - 1);
			snprintf(o.level_args[level], sizeof(o.level_args[level]), "%s", argv[++i]);
		} else if (!strcmp(a, "--depth")) {
			NEED_ARG();
			depth = parse_int(v, "--depth");
		} else if (!strcmp(a, "--depths")) {
			NEED_ARG();
			char tmp[256];
			snprintf(tmp, sizeof(tmp), "%s", v);
			for (char *t = strtok(tmp, ","); t; t = strtok(NULL, ",")) {
				if (o.n_depths == MAX_STACK)
					die("too many depths");
				o.depths[o.n_depths++] = parse_int(t, "--depths");
			}
		} else if (!strcmp(a, "--module")) {
			NEED_ARG();
			if (o.n_modules == (int)(sizeof(o.modules) / sizeof(o.modules[0])))
				die("at most %d --module", (int)(sizeof(o.modules) / sizeof(o.modules[0])));
			parse_item(&o.modules[o.n_modules++], v);
		} else if (!strcmp(a, "--linux")) {
			o.linux_guest = 1;
		} else if (!strcmp(a, "--compare-only")) {
			NEED_ARG();
			o.compare_only = v;
		} else if (!strcmp(a, "--ignore")) {
			NEED_ARG();
			o.ignore = v;
		} else if (!strcmp(a, "--mb1")) {
			o.mb1 = 1;
		} else if (!strcmp(a, "--firmware")) {
			NEED_ARG();
			if (strcmp(v, "bios") && strcmp(v, "uefi") && strcmp(v, "uefi-grub"))
				die("--firmware: '%s' is none of bios, uefi, uefi-grub", v);
			o.uefi = !strcmp(v, "uefi") ? UEFI_SHELL : !strcmp(v, "uefi-grub") ? UEFI_GRUB : BIOS;
		} else if (!strcmp(a, "--disk-guest")) {
			o.disk_guest = 1;
		} else if (!strcmp(a, "--cpu")) {
			NEED_ARG();
			o.cpu = v;
		} else if (!strcmp(a, "--cpus")) {
			NEED_ARG();
			o.cpus = parse_int(v, "--cpus");
			if (o.cpus < 1 || o.cpus > 8)
				die("--cpus takes 1 to 8");
		} else if (!strcmp(a, "--megs")) {
			NEED_ARG();
			o.megs = parse_int(v, "--megs");
			if (o.megs < 1)
				die("--megs takes a size in MiB");
		} else if (!strcmp(a, "--timeout")) {
			NEED_ARG();
			o.timeout = parse_int(v, "--timeout");
		} else if (!strcmp(a, "--name")) {
			NEED_ARG();
			o.name = v;
		} else if (!strcmp(a, "--dir")) {
			NEED_ARG();
			o.dir = v;
		} else if (!strcmp(a, "--debug-nic")) {
			o.debug_nic = 1;
		} else if (!strcmp(a, "--stream")) {
			o.stream = 1;
		} else if (!strcmp(a, "--quiet")) {
			o.quiet = 1;
		} else if (!strcmp(a, "--verdict")) {
			NEED_ARG();
			if (strcmp(v, "guest") && strcmp(v, "nestor"))
				die("--verdict takes guest or nestor");
			o.verdict = v;
		} else if (!strcmp(a, "--expect-fail")) {
			NEED_ARG();
			o.expect_fail = v;
		} else if (!strcmp(a, "--accept")) {
			NEED_ARG();
			o.accept = v;
		} else if (!strcmp(a, "--transcript")) {
			NEED_ARG();
			o.transcript_out = v;
		} else if (!strcmp(a, "--bochs")) {
			NEED_ARG();
			o.bochs = v;
		} else if (!strcmp(a, "--bochs-line")) {
			NEED_ARG();
			if (o.n_bochs_lines == (int)(sizeof(o.bochs_lines) / sizeof(o.bochs_lines[0])))
				die("at most %d --bochs-line", (int)(sizeof(o.bochs_lines) / sizeof(o.bochs_lines[0])));
			if (strchr(v, '\n'))
				die("--bochs-line takes one line");
			o.bochs_lines[o.n_bochs_lines++] = v;
		} else if (!strcmp(a, "--nic-peer")) {
			NEED_ARG();
			if (strchr(v, '\n') || strlen(v) > 200)
				die("--nic-peer takes one line of at most 200 characters");
			o.nic_peer = v;
		} else if (!strcmp(a, "--nic-flood")) {
			NEED_ARG();
			o.nic_flood = parse_int(v, "--nic-flood");
			if (!o.nic_flood)
				die("--nic-flood: at least 1 KiB");
		} else if (!strcmp(a, "--expect-line")) {
			NEED_ARG();
			o.expect_line = v;
			if (regcomp(&o.expect_re, v, REG_EXTENDED | REG_NOSUB))
				die("--expect-line: bad regular expression '%s'", v);
		} else if (!strcmp(a, "--nested-bochs-line")) {
			NEED_ARG();
			if (o.n_nested_bochs_lines == (int)(sizeof(o.nested_bochs_lines) / sizeof(o.nested_bochs_lines[0])))
				die("at most %d --nested-bochs-line", (int)(sizeof(o.nested_bochs_lines) / sizeof(o.nested_bochs_lines[0])));
			if (strchr(v, '\n'))
				die("--nested-bochs-line takes one line");
			o.nested_bochs_lines[o.n_nested_bochs_lines++] = v;
		} else if (!strcmp(a, "--gdb")) {
			NEED_ARG();
			o.gdb_script = v;
		} else if (!strcmp(a, "--gdb-udp")) {
			o.gdb_udp = 1;
		} else if (!strcmp(a, "--gdb-expect")) {
			NEED_ARG();
			o.gdb_expect = v;
		} else if (!strcmp(a, "--pass-line")) {
			NEED_ARG();
			o.pass_line = v;
		} else if (!strcmp(a, "--fail-line")) {
			NEED_ARG();
			o.fail_line = v;
		} else {
			usage(stderr);
			die("unknown option '%s'", a);
		}
	}
	if (o.n_stack && o.have_guest)
		die("give either -k kernels or --guest, not both");
	if (o.gdb_udp && (!o.gdb_script || !o.debug_nic))
		die("--gdb-udp takes --gdb SCRIPT and --debug-nic (gdb talks to level 0's debug NIC; give level 0 "
		    "debugnic=on)");
	if (o.pass_line && regcomp(&o.pass_re, o.pass_line, REG_EXTENDED | REG_NOSUB))
		die("--pass-line: bad regular expression '%s'", o.pass_line);
	if (o.fail_line && regcomp(&o.fail_re, o.fail_line, REG_EXTENDED | REG_NOSUB))
		die("--fail-line: bad regular expression '%s'", o.fail_line);
	if (!o.n_stack && !o.have_guest) {
		usage(stderr);
		die("nothing to run");
	}
	if (o.have_guest && depth < 0 && !o.n_depths)
		die("--guest needs --depth or --depths");
	if (o.disk_guest && !o.have_guest)
		die("--disk-guest needs --guest");
	if (o.nic_peer && o.nic_flood)
		die("--nic-peer and --nic-flood share the e1000's one port: give one of them");
	if (o.n_depths && depth >= 0)
		die("give --depth or --depths, not both");
	if (o.uefi == UEFI_SHELL) {
		if (o.n_stack || o.disk_guest || o.debug_nic || o.gdb_script)
			die("--firmware uefi takes --guest with --depth/--depths (not -k, --disk-guest, --debug-nic, --gdb)");
		/* The UEFI application beside the Nestor image (make builds both). */
		size_t l = strlen(o.nestor.file);
		if (l > 4 && !strcmp(o.nestor.file + l - 4, ".elf"))
			memcpy(o.nestor.file + l - 4, ".efi", 4);
	}

	/* grub-mkrescue (xorriso) reads '=' in paths as a graft point: keep run
	 * names to plain characters. */
	for (const char *c = o.name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
		      *c == '_' || *c == '.'))
			die("--name '%s': use only letters, digits, '-', '_' and '.'", o.name);
	char base[4096];
	if (o.dir)
		snprintf(base, sizeof(base), "%s", o.dir);
	else
		snprintf(base, sizeof(base), "build/runs/%s", o.name);

	struct result r = { 0 };
	char label[256];
	if (o.n_stack) {
		snprintf(label, sizeof(label), "%s", o.name);
		run_one(&o, o.stack, o.n_stack, 0, 0, base, &r);
	} else if (!o.n_depths) {
		struct item stack[MAX_STACK];
		int n = stack_for_depth(&o, depth, stack);
		snprintf(label, sizeof(label), "%s (depth %d, %s)", o.name, depth, o.cpu);
		run_one(&o, stack, n, 1, depth, base, &r);
	} else {
		/* Differential: each depth in its own directory, all compared with the first. */
		char *first = NULL;
		snprintf(label, sizeof(label), "%s (depths", o.name);
		for (int i = 0; i < o.n_depths; i++)
			snprintf(label + strlen(label), sizeof(label) - strlen(label), "%s%d", i ? "," : " ",
				 o.depths[i]);
		snprintf(label + strlen(label), sizeof(label) - strlen(label), ", %s)", o.cpu);
		double total = 0;
		regex_t only_re, ignore_re;
		struct comparison cmp = { NULL, NULL, o.linux_guest || o.compare_only };
		if (o.compare_only) {
			if (regcomp(&only_re, o.compare_only, REG_EXTENDED | REG_ICASE | REG_NOSUB))
				die("--compare-only: '%s' is not a valid extended regular expression", o.compare_only);
			cmp.only = &only_re;
		}
		if (o.ignore) {
			if (regcomp(&ignore_re, o.ignore, REG_EXTENDED | REG_ICASE | REG_NOSUB))
				die("--ignore: '%s' is not a valid extended regular expression", o.ignore);
			cmp.ignore = &ignore_re;
		}
		for (int i = 0; i < o.n_depths; i++) {
			char dir[4096];
			struct item stack[MAX_STACK];
			snprintf(dir, sizeof(dir), "%s/depth%d", base, o.depths[i]);
			int n = stack_for_depth(&o, o.depths[i], stack);
			memset(&r, 0, sizeof(r));
			run_one(&o, stack, n, 1, o.depths[i], dir, &r);
			total += r.seconds;
			if (!o.quiet) {
				if (!strcmp(r.reason, "pass"))
					printf("  depth %d: PASS (%.1f s, %llu ticks)\n", o.depths[i], r.seconds, r.ticks);
				else
					printf("  depth %d: FAIL %s%s%s (%.1f s)\n", o.depths[i], r.reason,
					       r.detail[0] ? ": " : "", r.detail, r.seconds);
			}
			if (strcmp(r.reason, "pass")) {
				char d[512];
				snprintf(d, sizeof(d), "depth %d: %s", o.depths[i], r.detail);
				snprintf(r.detail, sizeof(r.detail), "%s", d);
				break;
			}
			char path[4096];
			snprintf(path, sizeof(path), "%s/transcript.txt", dir);
			char *t = read_file(path, NULL);
			if (!first) {
				first = t;
				continue;
			}
			char detail[512];
			int diff = compare_transcripts(first, t, &cmp, detail, sizeof(detail));
			free(t);
			if (diff) {
				r.reason = "transcript-differs";
				snprintf(r.detail, sizeof(r.detail), "depth %d vs %d: %s", o.depths[0], o.depths[i], detail);
				break;
			}
		}
		free(first);
		if (cmp.only)
			regfree(&only_re);
		if (cmp.ignore)
			regfree(&ignore_re);
		r.seconds = total;
	}

	int pass;
	if (o.expect_fail) {
		pass = !strcmp(r.reason, o.expect_fail);
		printf("%s %s: expected failure '%s', got '%s'%s%s (%.1f s)\n", pass ? "PASS" : "FAIL", label,
		       o.expect_fail, r.reason, r.detail[0] ? ": " : "", r.detail, r.seconds);
	} else if (o.accept) {
		pass = reason_in(r.reason, o.accept);
		printf("%s %s: %s%s%s, accepted %s (%.1f s)\n", pass ? "PASS" : "FAIL", label, r.reason,
		       r.detail[0] ? ": " : "", r.detail, o.accept, r.seconds);
	} else {
		pass = !strcmp(r.reason, "pass");
		if (pass)
			printf("PASS %s (%.1f s)\n", label, r.seconds);
		else
			printf("FAIL %s: %s%s%s (%.1f s; files in %s)\n", label, r.reason, r.detail[0] ? ": " : "",
			       r.detail, r.seconds, base);
	}
	return pass ? 0 : 1;
}
