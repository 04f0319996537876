/* kvm-run.c - a small VMM on Linux's KVM (/dev/kvm) for the Linux guest
 * (issue 13): runs a multiboot2 kernel - the guest test kernel - as a KVM
 * guest, so the suites run under Linux's own nested hypervisor: Linux+KVM on
 * Bochs (the kernel at depth 1), on one Nestor (depth 2), and so on.
 *
 *   kvm-run [--mem MIB] [--timeout S] [--prefix P] [--module "FILE [ARGS]"]...
 *           KERNEL [COMMAND LINE...]
 *
 * The machine it gives the kernel is a multiboot2 boot and nothing more:
 * MIB MiB of RAM (default 64) from 0 with the PC's hole at 640 KiB, one
 * vCPU, KVM's in-kernel local APIC, I/O APIC, PIC and 8254 PIT (with port
 * 61h), no BIOS, no ACPI tables, no other devices but a COM1 that always
 * has room and two ports of Bochs': the shutdown port and the debug console
 * (port E9h reads E9h; what is written there is dropped).  The kernel starts as GRUB leaves it (multiboot2 spec
 * 3.3): 32-bit protected mode with flat segments, paging off, EAX =
 * 0x36d76289, EBX = the boot information (command line, loader name,
 * memory sizes and map, and a module tag per --module: FILE loaded at the
 * next page boundary after the kernel and the modules before it, ARGS its
 * string) - so the kernel may be Nestor itself, with its guest a module.  CPUID is what KVM supports on this CPU
 * (KVM_GET_SUPPORTED_CPUID) within what the CPU itself reports (setup_vcpu).
 *
 * What the kernel writes to COM1 goes to stdout, each line after P (default
 * "kvm-guest: "; an "env: " line stays one, "env: P..."); I/O to other ports reads ones and is dropped, so are
 * accesses to memory that is not RAM.  "Shutdown" written to port 0x8900
 * ends the run with status 0.  Status 1: the kernel triple-faulted, KVM
 * could not enter or run it, or S seconds (default 600) passed; a line
 * "kvm-run: ..." says which.  Status 2: bad usage or no KVM.
 *
 * Built with the host's gcc as a static hosted program (the initramfs has
 * no libc): make linux-guest. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MB2_MAGIC 0x36d76289u
#define MBI_ADDR 0x90000u /* below the EBDA, above what a kernel uses early */
#define LOW_END 0x9fc00u  /* conventional memory, as Bochs' BIOS reports it */
#define COM1 0x3f8
#define SHUTDOWN_PORT 0x8900
#define DEBUGCON_PORT 0xe9 /* Bochs' debug console: reads 0xE9 there */

static uint8_t *ram;
static uint64_t ram_size;
static const char *prefix = "kvm-guest: ";

static void die(int status, const char *fmt, const char *arg)
{
	fflush(stdout);
	fprintf(stdout, "kvm-run: ");
	fprintf(stdout, fmt, arg);
	fprintf(stdout, "\n");
	fflush(stdout);
	exit(status);
}

static void die_errno(const char *what)
{
	char b[256];
	snprintf(b, sizeof(b), "%s: %s", what, strerror(errno));
	die(2, "%s", b);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char m[] = "\nkvm-run: timeout: the guest did not shut down\n";
	if (write(1, m, sizeof(m) - 1) < 0)
		_exit(1);
	_exit(1);
}

/* --- the kernel's image (ELF64, loaded at its physical addresses) --------- */

static uint64_t image_end;            /* where the next module may go */
static uint64_t kernel_lo, kernel_hi; /* where the kernel's image is */

static uint8_t *read_file(const char *path, size_t *size)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st))
		die(2, "cannot open %s", path);
	uint8_t *f = mmap(NULL, st.st_size ? (size_t)st.st_size : 1, PROT_READ, MAP_PRIVATE, fd, 0);
	if (f == MAP_FAILED)
		die(2, "cannot read %s", path);
	close(fd);
	*size = (size_t)st.st_size;
	return f;
}

/* The multiboot2 header's relocatable tag (multiboot2 spec 3.1.10), if
 * any: where the kernel may be loaded instead of its own addresses. */
struct reloc {
	bool present;
	uint32_t min, max, align, pref; /* pref: 0 none, 1 low, 2 high */
};

static struct reloc find_reloc(const uint8_t *f, size_t fsize)
{
	struct reloc r = { 0 };
	size_t limit = fsize < 32768 ? fsize : 32768;
	for (size_t o = 0; o + 16 <= limit; o += 8) {
		const uint32_t *h = (const uint32_t *)(f + o);
		if (h[0] != 0xe85250d6u || h[0] + h[1] + h[2] + h[3] != 0 || h[2] < 16 || o + h[2] > limit)
			continue;
		for (size_t t = o + 16; t + 8 <= o + h[2];) {
			uint16_t type = *(const uint16_t *)(f + t);
			uint32_t size = *(const uint32_t *)(f + t + 4);
			if (type == 0 || size < 8)
				break;
			if (type == 10 && size >= 24) {
				const uint32_t *v = (const uint32_t *)(f + t + 8);
				r = (struct reloc){ true, v[0], v[1], v[2] ? v[2] : 1, v[3] };
			}
			t += (size + 7) & ~7u;
		}
		break;
	}
	return r;
}

static uint64_t load_elf(const char *path)
{
	size_t fsize;
	uint8_t *f = read_file(path, &fsize);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;
	if (fsize < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64)
		die(2, "%s is not an x86-64 ELF kernel", path);
	if ((uint64_t)eh->e_phoff + (uint64_t)eh->e_phnum * eh->e_phentsize > (uint64_t)fsize)
		die(2, "%s: program headers beyond the file", path);
	/* The span of the image at its own physical addresses. */
	uint64_t lo = ~0ull, hi = 0;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(f + eh->e_phoff + (uint64_t)i * eh->e_phentsize);
		if (ph->p_type != PT_LOAD)
			continue;
		if (ph->p_filesz > ph->p_memsz || ph->p_offset + ph->p_filesz > (uint64_t)fsize)
			die(2, "%s: a segment beyond the file", path);
		lo = ph->p_paddr < lo ? ph->p_paddr : lo;
		hi = ph->p_paddr + ph->p_memsz > hi ? ph->p_paddr + ph->p_memsz : hi;
	}
	if (lo >= hi)
		die(2, "%s: nothing to load", path);
	/* A relocatable kernel goes where its header asks, as GRUB puts it:
	 * preferably as high as RAM and max allow (Nestor: out of the low
	 * memory its guest expects), else as low as min allows. */
	struct reloc r = find_reloc(f, fsize);
	uint64_t base = lo;
	if (r.present) {
		uint64_t top = r.max < ram_size ? r.max : ram_size;
		uint64_t high = top >= hi - lo ? (top - (hi - lo)) / r.align * r.align : 0;
		uint64_t low = (r.min + r.align - 1) / r.align * r.align;
		if (high < r.min || high < low)
			die(2, "%s: no room in the guest's RAM where its relocatable tag allows", path);
		base = r.pref == 1 ? low : high;
	}
	uint64_t delta = base - lo;
	if (base < 0x100000 || base + (hi - lo) > ram_size)
		die(2, "%s: the image does not fit in the guest's RAM above 1 MiB", path);
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(f + eh->e_phoff + (uint64_t)i * eh->e_phentsize);
		if (ph->p_type != PT_LOAD)
			continue;
		memcpy(ram + ph->p_paddr + delta, f + ph->p_offset, ph->p_filesz);
		memset(ram + ph->p_paddr + delta + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	}
	/* Modules go after the image, or from 2 MiB up when it went high. */
	image_end = r.present && r.pref != 1 ? 0x200000 : hi + delta;
	kernel_lo = base;
	kernel_hi = hi + delta;
	uint64_t entry = eh->e_entry + delta;
	munmap(f, fsize ? fsize : 1);
	if (entry < base || entry >= base + (hi - lo))
		die(2, "%s: entry point outside the image", path);
	return entry;
}

/* --- multiboot2 boot information (multiboot2 spec 3.6) --------------------- */

static uint32_t mbi_at;

static void *tag(uint32_t type, uint32_t size)
{
	uint32_t *t = (uint32_t *)(ram + mbi_at);
	t[0] = type;
	t[1] = size;
	mbi_at += (size + 7) & ~7u;
	return t;
}

#define MAX_MODULES 8
static const char *modules[MAX_MODULES];
static unsigned n_modules;

/* A module: its file loaded at the next page boundary, its tag with the
 * rest of the argument (after the first space) as its string. */
static void add_module(const char *arg)
{
	char path[4096];
	const char *sp = strchr(arg, ' ');
	size_t pl = sp ? (size_t)(sp - arg) : strlen(arg);
	if (pl >= sizeof(path))
		die(2, "module path too long (%s)", arg);
	memcpy(path, arg, pl);
	path[pl] = 0;
	const char *args = sp ? sp + 1 : "";
	size_t size;
	uint8_t *f = read_file(path, &size);
	uint64_t start = (image_end + 0xfff) & ~0xfffull;
	if (start + size > ram_size || (start < kernel_hi && start + size > kernel_lo))
		die(2, "module %s does not fit in the guest's RAM beside the kernel", path);
	memcpy(ram + start, f, size);
	munmap(f, size ? size : 1);
	image_end = start + size;
	size_t n = strlen(args) + 1;
	uint32_t *t = tag(3, 16 + (uint32_t)n);
	t[2] = (uint32_t)start;
	t[3] = (uint32_t)(start + size);
	memcpy(&t[4], args, n);
}

static void build_mbi(const char *cmdline)
{
	mbi_at = MBI_ADDR + 8;
	size_t n = strlen(cmdline) + 1;
	if (n > 4096)
		die(2, "command line too long (%s)", "more than 4095 bytes");
	memcpy((char *)tag(1, 8 + (uint32_t)n) + 8, cmdline, n);
	static const char loader[] = "kvm-run";
	memcpy((char *)tag(2, 8 + sizeof(loader)) + 8, loader, sizeof(loader));
	uint32_t *mem = tag(4, 16);
	mem[2] = LOW_END >> 10;
	mem[3] = (uint32_t)((ram_size - 0x100000) >> 10);
	for (unsigned i = 0; i < n_modules; i++)
		add_module(modules[i]);
	static const struct {
		uint64_t base, len;
		uint32_t type;
	} map[] = {
		{ 0, LOW_END, 1 },
		{ LOW_END, 0xa0000 - LOW_END, 2 },
		{ 0xf0000, 0x10000, 2 },
		{ 0x100000, 0, 1 }, /* to the end of RAM */
	};
	uint32_t *mm = tag(6, 16 + 4 * 24);
	mm[2] = 24;
	mm[3] = 0;
	for (unsigned i = 0; i < 4; i++) {
		uint8_t *e = (uint8_t *)&mm[4] + 24 * i;
		uint64_t len = map[i].len ? map[i].len : ram_size - map[i].base;
		memcpy(e, &map[i].base, 8);
		memcpy(e + 8, &len, 8);
		memcpy(e + 16, &map[i].type, 4);
		memset(e + 20, 0, 4);
	}
	tag(0, 8);
	uint32_t *head = (uint32_t *)(ram + MBI_ADDR);
	head[0] = mbi_at - MBI_ADDR;
	head[1] = 0;
}

/* --- the vCPU as GRUB leaves it ------------------------------------------- */

static void flat(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->db = 1;
	s->g = 1;
}

static void setup_vcpu(int kvm, int vcpu, uint64_t entry)
{
	struct kvm_sregs sr;
	if (ioctl(vcpu, KVM_GET_SREGS, &sr))
		die_errno("KVM_GET_SREGS");
	flat(&sr.cs, 0x08, 0xb);
	flat(&sr.ds, 0x10, 0x3);
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	/* PE and ET, and CD and NW as a PC's firmware leaves them (Bochs:
	 * set from reset on, and GRUB does not clear them). */
	sr.cr0 = 0x60000011;
	sr.cr4 = 0;
	sr.efer = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sr))
		die_errno("KVM_SET_SREGS");
	struct kvm_regs r;
	memset(&r, 0, sizeof(r));
	r.rip = entry;
	r.rax = MB2_MAGIC;
	r.rbx = MBI_ADDR;
	r.rsp = MBI_ADDR; /* a loader's stack below the boot information, as GRUB leaves one */
	r.rflags = 2;
	if (ioctl(vcpu, KVM_SET_REGS, &r))
		die_errno("KVM_SET_REGS");
	/* CPUID: what KVM can give a guest, without the features KVM would
	 * emulate but this CPU lacks (UMIP, for one, which KVM cannot make
	 * exact: SMSW at CPL 3 does not fault) - the guest sees the CPU's
	 * features, as on the machine.  The hypervisor bit stays KVM's. */
	unsigned nent = 256;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(struct kvm_cpuid_entry2));
	if (!c)
		die(2, "%s", "out of memory");
	c->nent = nent;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c))
		die_errno("KVM_GET_SUPPORTED_CPUID");
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != 1 && e->function != 7 && e->function != 0x80000001)
			continue;
		if (e->function == 7 && e->index != 0)
			continue;
		uint32_t a, b, cx, d;
		__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(cx), "=d"(d) : "a"(e->function), "c"(e->index));
		if (e->function == 1) {
			e->ecx &= cx | (1u << 31);
			e->edx &= d;
		} else {
			e->ebx &= e->function == 7 ? b : ~0u;
			e->ecx &= cx;
			e->edx &= d;
		}
	}
	if (ioctl(vcpu, KVM_SET_CPUID2, c))
		die_errno("KVM_SET_CPUID2");
	free(c);
}

/* --- the ports: COM1, the shutdown port, the debug console ------------------- */

static char line[4096];
static size_t line_n;

static void com1_out(uint8_t c)
{
	if (c == '\r')
		return;
	if (c != '\n' && line_n < sizeof(line) - 1) {
		line[line_n++] = (char)c;
		return;
	}
	line[line_n] = 0;
	/* The kernel's environment facts stay marked as such. */
	bool env = !strncmp(line, "env: ", 5);
	printf("%s%s%s\n", env ? "env: " : "", prefix, env ? line + 5 : line);
	fflush(stdout);
	line_n = 0;
}

static void flush_line(void)
{
	if (line_n)
		com1_out('\n');
}

/* Returns true when the guest asked to power off. */
static bool port_io(struct kvm_run *run)
{
	static const char shutdown[] = "Shutdown";
	static unsigned matched;
	static uint8_t lcr; /* COM1's line control: bit 7 selects the divisor latch */
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	for (unsigned i = 0; i < run->io.count; i++, data += run->io.size) {
		uint16_t port = run->io.port;
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			if (port == COM1 && run->io.size == 1 && !(lcr & 0x80))
				com1_out(data[0]);
			if (port == COM1 + 3 && run->io.size == 1)
				lcr = data[0];
			if (port == SHUTDOWN_PORT && run->io.size == 1) {
				matched = data[0] == (uint8_t)shutdown[matched] ? matched + 1 : data[0] == 'S';
				if (matched == sizeof(shutdown) - 1)
					return true;
			}
		} else {
			/* COM1's line status: transmitter empty, always; the debug
			 * console says it is there (Nestor then ends its run
			 * through the shutdown port, as on Bochs). */
			uint8_t v = 0xff;
			if (port == COM1 + 5)
				v = 0x60;
			else if (port == COM1 + 3)
				v = lcr;
			else if (port >= COM1 && port < COM1 + 8)
				v = 0;
			else if (port == DEBUGCON_PORT)
				v = DEBUGCON_PORT;
			memset(data, v, run->io.size);
		}
	}
	return false;
}

/* Where the vCPU stopped, for a report that ends the run. */
static void report_state(int vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs sr;
	if (ioctl(vcpu, KVM_GET_REGS, &r) || ioctl(vcpu, KVM_GET_SREGS, &sr))
		return;
	printf("kvm-run: rip %llx rsp %llx rflags %llx cs %x (base %llx) cr0 %llx cr2 %llx cr3 %llx cr4 %llx efer %llx\n",
	       (unsigned long long)r.rip, (unsigned long long)r.rsp, (unsigned long long)r.rflags, sr.cs.selector,
	       (unsigned long long)sr.cs.base, (unsigned long long)sr.cr0, (unsigned long long)sr.cr2,
	       (unsigned long long)sr.cr3, (unsigned long long)sr.cr4, (unsigned long long)sr.efer);
	printf("kvm-run: rax %llx rbx %llx rcx %llx rdx %llx idt %llx/%x gdt %llx/%x\n", (unsigned long long)r.rax,
	       (unsigned long long)r.rbx, (unsigned long long)r.rcx, (unsigned long long)r.rdx,
	       (unsigned long long)sr.idt.base, sr.idt.limit, (unsigned long long)sr.gdt.base, sr.gdt.limit);
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr, "usage: kvm-run [--mem MIB] [--timeout S] [--prefix P] [--module \"FILE [ARGS]\"]... KERNEL "
			"[COMMAND LINE...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long mib = 64, timeout = 600;
	int i = 1;
	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--mem") && i + 1 < argc)
			mib = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--prefix") && i + 1 < argc)
			prefix = argv[++i];
		else if (!strcmp(argv[i], "--module") && i + 1 < argc && n_modules < MAX_MODULES)
			modules[n_modules++] = argv[++i];
		else
			usage();
	}
	if (i >= argc || mib < 4 || mib > 3072)
		usage();
	const char *kernel = argv[i++];
	char cmdline[4096] = "";
	for (size_t n = 0; i < argc; i++) {
		int w = snprintf(cmdline + n, sizeof(cmdline) - n, "%s%s", n ? " " : "", argv[i]);
		if (w < 0 || (size_t)w >= sizeof(cmdline) - n)
			die(2, "command line too long (%s)", "more than 4095 bytes");
		n += (size_t)w;
	}

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die(2, "no /dev/kvm (%s)", strerror(errno));
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		die(2, "%s", "unexpected KVM API version");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die_errno("KVM_CREATE_VM");
	/* The real-mode TSS and identity map KVM needs on CPUs without
	 * unrestricted guest: three pages below 4 GiB, outside RAM. */
	if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0)
		die_errno("KVM_SET_TSS_ADDR");
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		die_errno("KVM_CREATE_IRQCHIP");
	/* The PC's 8254 with its port 61h (channel 2's gate and output, which
	 * a kernel calibrates its clocks on - Nestor does). */
	struct kvm_pit_config pit = { .flags = 0 };
	if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0)
		die_errno("KVM_CREATE_PIT2");

	ram_size = (uint64_t)mib << 20;
	ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		die(2, "cannot allocate %s of guest RAM", argv[0]);
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = ram_size, .userspace_addr = (uint64_t)ram
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die_errno("KVM_SET_USER_MEMORY_REGION");

	uint64_t entry = load_elf(kernel);
	build_mbi(cmdline);

	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die_errno("KVM_CREATE_VCPU");
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(struct kvm_run))
		die_errno("KVM_GET_VCPU_MMAP_SIZE");
	struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die_errno("mmap of the vCPU's kvm_run");
	setup_vcpu(kvm, vcpu, entry);

	signal(SIGALRM, on_alarm);
	alarm((unsigned)timeout);
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			flush_line();
			die(1, "KVM_RUN failed: %s", strerror(errno));
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (port_io(run)) {
				flush_line();
				printf("kvm-run: the guest shut down\n");
				return 0;
			}
			break;
		case KVM_EXIT_MMIO:
			/* Not RAM, no device: reads are ones, writes are lost. */
			if (!run->mmio.is_write)
				memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
			break;
		case KVM_EXIT_HLT:
			flush_line();
			report_state(vcpu);
			die(1, "%s", "the guest halted with interrupts off");
			break;
		case KVM_EXIT_SHUTDOWN:
			flush_line();
			report_state(vcpu);
			die(1, "%s", "the guest triple-faulted (KVM_EXIT_SHUTDOWN)");
			break;
		case KVM_EXIT_FAIL_ENTRY: {
			char why[64];
			snprintf(why, sizeof(why), "0x%llx",
				 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			flush_line();
			report_state(vcpu);
			die(1, "KVM could not enter the guest: hardware entry failure reason %s", why);
			break;
		}
		case KVM_EXIT_INTERNAL_ERROR: {
			char why[64];
			snprintf(why, sizeof(why), "suberror %u", run->internal.suberror);
			flush_line();
			report_state(vcpu);
			die(1, "KVM internal error (%s)", why);
			break;
		}
		default: {
			char why[32];
			snprintf(why, sizeof(why), "%u", run->exit_reason);
			flush_line();
			die(1, "unexpected KVM exit reason %s", why);
		}
		}
	}
}
