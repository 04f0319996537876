/* mkcpio.c - writes a newc ("070701") cpio archive, the format Linux unpacks
 * as its initramfs, from a small manifest.
 *
 *   mkcpio MANIFEST OUTPUT
 *
 * One entry a line, fields separated by blanks; '#' starts a comment line:
 *
 *   dir   DEST MODE                   a directory
 *   file  DEST MODE SOURCE            a regular file, its bytes read from SOURCE
 *   slink DEST MODE TARGET            a symbolic link to TARGET
 *   nod   DEST MODE c|b MAJOR MINOR   a character or block device node
 *
 * DEST is an absolute path in the archive whose parent directory is "/" or
 * a `dir` entry of an earlier line; MODE is the octal permission bits.
 * SOURCE is a host path, relative to the current directory, in which
 * ${NAME} is replaced by the environment variable NAME (so a manifest can
 * name files under $(BUILD)).
 *
 * The archive is reproducible: every entry has mtime 0, uid and gid 0 and
 * inode numbers 1, 2, ... in manifest order, so the same inputs give the
 * same bytes.  OUTPUT is written under a temporary name and renamed at the
 * end, so a failed run never leaves a truncated archive behind.
 * Errors: "MANIFEST:LINE: message" for the manifest, exit status 2. */
#include <stdint.h>
#include "tools/util.h"

#define MAX_ENTRIES 4096
#define MAX_PATH 1024
#define NEWC_MAGIC "070701"
#define NEWC_HEADER_LEN 110 /* the magic and 13 fields of 8 hex digits */
#define TRAILER_NAME "TRAILER!!!"

enum kind { K_DIR, K_FILE, K_SLINK, K_NOD };

struct entry {
	int line;
	enum kind kind;
	char dest[MAX_PATH];  /* as written, with the leading '/' */
	char arg[MAX_PATH];   /* file: expanded SOURCE; slink: TARGET */
	uint32_t mode;        /* type bits | permission bits */
	uint32_t rmajor, rminor;
};

static struct entry entries[MAX_ENTRIES];
static int nentries;
static const char *manifest_path;
static char tmp_output[MAX_PATH + 8];

static __attribute__((noreturn, format(printf, 2, 3))) void bad(int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s:%d: ", manifest_path, line);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* --- parsing ---------------------------------------------------------------- */

/* Splits s in place into at most max blank-separated words; returns how many
 * there were (more than max means too many). */
static int split_words(char *s, char **words, int max)
{
	int n = 0;
	for (char *tok = strtok(s, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n")) {
		if (n < max)
			words[n] = tok;
		n++;
	}
	return n;
}

static uint32_t parse_number(int line, const char *s, int base, uint32_t max, const char *what)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, base);
	if (errno || end == s || *end || *s == '-' || v > max)
		bad(line, "bad %s '%s'", what, s);
	return (uint32_t)v;
}

/* An archive path: absolute, not the root itself, no empty, "." or ".."
 * component and no trailing slash - the kernel's unpacker creates exactly
 * the path it is given, so anything else would be a surprise at boot. */
static void check_dest(int line, const char *dest)
{
	if (dest[0] != '/' || dest[1] == '\0')
		bad(line, "destination '%s' must be an absolute path below /", dest);
	if (strlen(dest) >= MAX_PATH)
		bad(line, "destination too long");
	for (const char *c = dest; *c; ) {
		const char *next = strchr(c + 1, '/');
		size_t len = (size_t)((next ? next : c + strlen(c)) - (c + 1));
		if (len == 0 || (len == 1 && c[1] == '.') || (len == 2 && c[1] == '.' && c[2] == '.'))
			bad(line, "destination '%s': empty, '.' or '..' component", dest);
		c = next ? next : c + strlen(c);
	}
}

/* Copies src to dst replacing each ${NAME} with the environment variable. */
static void expand_vars(int line, const char *src, char *dst, size_t cap)
{
	size_t n = 0;
	for (const char *s = src; *s; ) {
		const char *val = NULL;
		size_t vlen;
		if (s[0] == '$' && s[1] == '{') {
			const char *close = strchr(s, '}');
			if (!close)
				bad(line, "unterminated ${ in '%s'", src);
			char name[128];
			snprintf(name, sizeof(name), "%.*s", (int)(close - s - 2), s + 2);
			val = getenv(name);
			if (!val)
				bad(line, "'%s': environment variable %s is not set", src, name);
			vlen = strlen(val);
			s = close + 1;
		} else {
			val = s++;
			vlen = 1;
		}
		if (n + vlen >= cap)
			bad(line, "source path too long");
		memcpy(dst + n, val, vlen);
		n += vlen;
	}
	dst[n] = '\0';
}

/* Fills e from the words of one manifest line (words[0] is the kind). */
static void parse_entry(struct entry *e, char **w, int n)
{
	static const struct {
		const char *name;
		enum kind kind;
		int words;
		uint32_t type;
	} kinds[] = {
		{ "dir", K_DIR, 3, S_IFDIR },
		{ "file", K_FILE, 4, S_IFREG },
		{ "slink", K_SLINK, 4, S_IFLNK },
		{ "nod", K_NOD, 6, 0 },
	};
	size_t k = 0;
	while (k < sizeof(kinds) / sizeof(kinds[0]) && strcmp(w[0], kinds[k].name))
		k++;
	if (k == sizeof(kinds) / sizeof(kinds[0]))
		bad(e->line, "unknown entry '%s' (dir, file, slink or nod)", w[0]);
	if (n != kinds[k].words)
		bad(e->line, "'%s' takes %d fields, not %d", w[0], kinds[k].words - 1, n - 1);

	e->kind = kinds[k].kind;
	check_dest(e->line, w[1]);
	snprintf(e->dest, sizeof(e->dest), "%s", w[1]);
	e->mode = kinds[k].type | parse_number(e->line, w[2], 8, 07777, "mode");
	if (e->kind == K_FILE)
		expand_vars(e->line, w[3], e->arg, sizeof(e->arg));
	if (e->kind == K_SLINK) {
		if (strlen(w[3]) >= sizeof(e->arg))
			bad(e->line, "link target too long");
		snprintf(e->arg, sizeof(e->arg), "%s", w[3]);
	}
	if (e->kind == K_NOD) {
		if (strcmp(w[3], "c") && strcmp(w[3], "b"))
			bad(e->line, "device type '%s' must be c or b", w[3]);
		e->mode |= w[3][0] == 'c' ? S_IFCHR : S_IFBLK;
		e->rmajor = parse_number(e->line, w[4], 10, 0xfff, "major number");
		e->rminor = parse_number(e->line, w[5], 10, 0xfffff, "minor number");
	}
}

static int find_dest(const char *dest, int before)
{
	for (int i = 0; i < before; i++)
		if (!strcmp(entries[i].dest, dest))
			return i;
	return -1;
}

/* The kernel does not create missing parent directories (the entry would be
 * silently dropped), and a second entry for a path replaces the first: both
 * are manifest mistakes, caught here. */
static void check_place(const struct entry *e, int index)
{
	int dup = find_dest(e->dest, index);
	if (dup >= 0)
		bad(e->line, "%s already listed on line %d", e->dest, entries[dup].line);
	char parent[MAX_PATH];
	snprintf(parent, sizeof(parent), "%s", e->dest);
	*strrchr(parent, '/') = '\0';
	if (parent[0] == '\0')
		return;
	int p = find_dest(parent, index);
	if (p < 0 || entries[p].kind != K_DIR)
		bad(e->line, "parent directory %s of %s is not a dir entry of an earlier line", parent, e->dest);
}

/* A file's source must be a readable regular file whose size fits the
 * format's 32-bit field; checked before anything is written. */
static void check_source(const struct entry *e)
{
	struct stat st;
	if (stat(e->arg, &st))
		bad(e->line, "source %s: %s", e->arg, strerror(errno));
	if (!S_ISREG(st.st_mode))
		bad(e->line, "source %s is not a regular file", e->arg);
	if ((uint64_t)st.st_size > 0xffffffffu)
		bad(e->line, "source %s is larger than 4 GiB, which newc cannot hold", e->arg);
	if (access(e->arg, R_OK))
		bad(e->line, "source %s: %s", e->arg, strerror(errno));
}

static void parse_manifest(const char *path)
{
	size_t len;
	char *text = read_file(path, &len);
	if (!text)
		die("cannot read manifest %s: %s", path, strerror(errno));
	int line = 0;
	for (char *p = text, *next; p && *p; p = next) {
		next = strchr(p, '\n');
		if (next)
			*next++ = '\0';
		line++;
		char *w[7];
		int n = split_words(p, w, 7);
		if (n == 0 || w[0][0] == '#')
			continue;
		if (n > 6)
			bad(line, "too many fields");
		if (nentries == MAX_ENTRIES)
			bad(line, "more than %d entries", MAX_ENTRIES);
		struct entry *e = &entries[nentries];
		memset(e, 0, sizeof(*e));
		e->line = line;
		parse_entry(e, w, n);
		check_place(e, nentries);
		if (e->kind == K_FILE)
			check_source(e);
		nentries++;
	}
	free(text);
}

/* --- writing ---------------------------------------------------------------- */

struct out {
	FILE *f;
	uint64_t offset; /* bytes written so far: newc aligns to the archive start */
};

static void put(struct out *o, const void *data, size_t len)
{
	if (len && fwrite(data, 1, len, o->f) != len)
		die("cannot write %s: %s", tmp_output, strerror(errno));
	o->offset += len;
}

static void pad(struct out *o, unsigned align)
{
	static const char zeros[512];
	put(o, zeros, (size_t)((align - o->offset % align) % align));
}

/* One entry: header, NUL-terminated name and data, each padded to 4 bytes.
 * Names are stored without the leading '/', as the kernel's own
 * gen_init_cpio does, so the archive also unpacks in place with cpio -i. */
static void put_entry(struct out *o, uint32_t ino, uint32_t mode, uint32_t nlink, uint32_t rmajor,
		      uint32_t rminor, const char *name, const void *data, uint32_t size)
{
	char header[NEWC_HEADER_LEN + 1];
	uint32_t namesize = (uint32_t)strlen(name) + 1;
	/* ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check */
	snprintf(header, sizeof(header), NEWC_MAGIC "%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino,
		 mode, 0u, 0u, nlink, 0u, size, 0u, 0u, rmajor, rminor, namesize, 0u);
	put(o, header, NEWC_HEADER_LEN);
	put(o, name, namesize);
	pad(o, 4);
	put(o, data, size);
	pad(o, 4);
}

static void put_manifest_entry(struct out *o, const struct entry *e, uint32_t ino)
{
	const char *name = e->dest + 1;
	if (e->kind == K_FILE) {
		size_t len;
		char *data = read_file(e->arg, &len);
		if (!data)
			bad(e->line, "source %s: %s", e->arg, strerror(errno));
		put_entry(o, ino, e->mode, 1, 0, 0, name, data, (uint32_t)len);
		free(data);
	} else if (e->kind == K_SLINK) {
		/* A symlink's data is its target, without a terminating NUL. */
		put_entry(o, ino, e->mode, 1, 0, 0, name, e->arg, (uint32_t)strlen(e->arg));
	} else {
		/* A directory's nlink counts "." and its entry in the parent. */
		put_entry(o, ino, e->mode, e->kind == K_DIR ? 2 : 1, e->rmajor, e->rminor, name, "", 0);
	}
}

static void remove_partial_output(void)
{
	if (tmp_output[0])
		unlink(tmp_output);
}

static void write_archive(const char *output)
{
	snprintf(tmp_output, sizeof(tmp_output), "%s.tmp", output);
	atexit(remove_partial_output);
	struct out o = { fopen(tmp_output, "wb"), 0 };
	if (!o.f)
		die("cannot create %s: %s", tmp_output, strerror(errno));
	for (int i = 0; i < nentries; i++)
		put_manifest_entry(&o, &entries[i], (uint32_t)i + 1);
	put_entry(&o, 0, 0, 1, 0, 0, TRAILER_NAME, "", 0);
	/* Whole 512-byte blocks, as cpio(1) and gen_init_cpio write them; the
	 * kernel skips the zeros. */
	pad(&o, 512);
	if (fclose(o.f))
		die("cannot write %s: %s", tmp_output, strerror(errno));
	if (rename(tmp_output, output))
		die("cannot rename %s to %s: %s", tmp_output, output, strerror(errno));
	tmp_output[0] = '\0';
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: mkcpio MANIFEST OUTPUT\n"
				"writes a newc cpio archive (a Linux initramfs) from MANIFEST; see tools/mkcpio.c\n");
		return 2;
	}
	manifest_path = argv[1];
	parse_manifest(argv[1]);
	if (nentries == 0)
		die("%s: no entries", argv[1]);
	write_archive(argv[2]);
	return 0;
}
