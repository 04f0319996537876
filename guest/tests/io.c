/* io.c - port I/O a hypervisor passes through must behave exactly as on the
 * bare machine: CMOS/RTC, the PIC mask registers, the PIT, unused ports,
 * string I/O register effects, and the CPL 3 / IOPL protection.
 *
 * Only ports that are harmless on the Bochs PC are touched.  Never: the
 * shutdown port 0x8900, COM1 (the console), the PS/2 controller, ACPI PM. */
#include "guest/test.h"
#include "lib/string.h"
#include "lib/x86.h"

#define BOCHS_PORT 0x8900
#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71
#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PORT_61 0x61
#define POST_PORT 0x80

static uint8_t cmos_read(uint8_t reg)
{
	outb(CMOS_INDEX, reg);
	return inb(CMOS_DATA);
}

static void cmos_write(uint8_t reg, uint8_t v)
{
	outb(CMOS_INDEX, reg);
	outb(CMOS_DATA, v);
}

static bool is_bcd(uint8_t v) { return (v & 0x0f) <= 9 && (v >> 4) <= 9; }

/* The status registers and the memory-size bytes the BIOS wrote at POST. */
TEST(io, cmos_config)
{
	uint8_t a = cmos_read(0x0a), b = cmos_read(0x0b), d = cmos_read(0x0d);
	/* Status A bit 7 (update in progress) depends on when we look. */
	say("status A (without UIP) %02x, B %02x, D %02x", a & 0x7f, b, d);
	env("status A %02x", a);
	CHECK((a & 0x70) == 0x20, "RTC divider (status A %02x) is not the 32.768 kHz time base", a);
	CHECK(d & 0x80, "status D %02x: RTC power lost (VRT clear)", d);

	uint8_t c = cmos_read(0x0c); /* reading clears the flags: time-dependent */
	env("status C %02x", c);

	uint16_t base = cmos_read(0x15) | cmos_read(0x16) << 8;
	uint16_t ext1 = cmos_read(0x17) | cmos_read(0x18) << 8;
	uint16_t ext2 = cmos_read(0x30) | cmos_read(0x31) << 8;
	uint16_t ext16 = cmos_read(0x34) | cmos_read(0x35) << 8;
	say("base memory %u KiB, extended %u KiB (0x17) %u KiB (0x30), above 16 MiB %u x 64 KiB", base, ext1, ext2,
	    ext16);
	CHECK(base == 640, "base memory %u KiB", base);
	CHECK(ext1 == ext2, "CMOS 0x17/0x18 (%u) and 0x30/0x31 (%u) disagree", ext1, ext2);
	say("equipment %02x, floppy types %02x, disk types %02x, century %02x", cmos_read(0x14), cmos_read(0x10),
	    cmos_read(0x12), cmos_read(0x32));
}

/* The date and time the RTC counts: the time advances with emulated time, so
 * only the date (a fixed time0, far from midnight) is part of the transcript. */
TEST(io, cmos_rtc)
{
	uint8_t b = cmos_read(0x0b);
	bool bcd = !(b & 0x04);
	uint8_t s, m, h, day, mon, year, cent;
	/* Wait for an update cycle not to be in progress (bounded). */
	for (unsigned i = 0; i < 1000000 && (cmos_read(0x0a) & 0x80); i++)
		pause();
	s = cmos_read(0x00);
	m = cmos_read(0x02);
	h = cmos_read(0x04);
	day = cmos_read(0x07);
	mon = cmos_read(0x08);
	year = cmos_read(0x09);
	cent = cmos_read(0x32);
	env("time %02x:%02x:%02x (%s, %s)", h, m, s, bcd ? "BCD" : "binary", b & 0x02 ? "24h" : "12h");
	say("date %02x%02x-%02x-%02x (mode %s)", cent, year, mon, day, bcd ? "BCD" : "binary");
	if (bcd) {
		CHECK(is_bcd(s) && is_bcd(m) && is_bcd(day) && is_bcd(mon) && is_bcd(year), "non-BCD RTC field");
		CHECK(mon >= 1 && mon <= 0x12 && day >= 1 && day <= 0x31, "bad date %02x-%02x", mon, day);
	}
	/* An unused CMOS byte (0x7e) is plain storage. */
	uint8_t old = cmos_read(0x7e);
	cmos_write(0x7e, 0xa5);
	uint8_t r1 = cmos_read(0x7e);
	cmos_write(0x7e, 0x5a);
	uint8_t r2 = cmos_read(0x7e);
	cmos_write(0x7e, old);
	say("cmos 0x7e stores a5 -> %02x, 5a -> %02x", r1, r2);
	CHECK(r1 == 0xa5 && r2 == 0x5a, "CMOS RAM byte 0x7e does not store");
	CHECK(cmos_read(0x7e) == old, "CMOS byte 0x7e not restored");
}

TEST(io, pic_masks)
{
	uint8_t m1 = inb(PIC1_DATA), m2 = inb(PIC2_DATA);
	say("PIC masks as found: master %02x, slave %02x", m1, m2);
	outb(PIC1_DATA, 0xa5);
	outb(PIC2_DATA, 0x5a);
	uint8_t r1 = inb(PIC1_DATA), r2 = inb(PIC2_DATA);
	outb(PIC1_DATA, 0xff);
	outb(PIC2_DATA, 0xff);
	uint8_t f1 = inb(PIC1_DATA), f2 = inb(PIC2_DATA);
	outb(PIC1_DATA, m1);
	outb(PIC2_DATA, m2);
	say("write a5/5a -> %02x/%02x, ff/ff -> %02x/%02x", r1, r2, f1, f2);
	CHECK(r1 == 0xa5 && r2 == 0x5a && f1 == 0xff && f2 == 0xff, "the PIC mask registers do not store");
	CHECK(inb(PIC1_DATA) == m1 && inb(PIC2_DATA) == m2, "PIC masks not restored");

	/* OCW3: read the in-service registers (nothing in service with IF=0
	 * and no interrupt ever taken), then the request registers. */
	outb(PIC1_CMD, 0x0b);
	outb(PIC2_CMD, 0x0b);
	uint8_t isr1 = inb(PIC1_CMD), isr2 = inb(PIC2_CMD);
	outb(PIC1_CMD, 0x0a);
	outb(PIC2_CMD, 0x0a);
	uint8_t irr1 = inb(PIC1_CMD), irr2 = inb(PIC2_CMD);
	say("ISR master %02x slave %02x", isr1, isr2);
	env("IRR master %02x slave %02x", irr1, irr2);
	CHECK(isr1 == 0 && isr2 == 0, "interrupts in service: %02x %02x", isr1, isr2);
}

/* PIT channel 2 (the speaker timer, gated by port 0x61 bit 0, speaker off). */
TEST(io, pit_channel2)
{
	uint8_t p61 = inb(PORT_61);
	outb(PORT_61, (p61 & ~0x03) | 0x00); /* gate off, speaker off */
	outb(PIT_CMD, 0xb0);                 /* ch2, lobyte/hibyte, mode 0, binary */
	outb(PIT_CH2, 0x00);
	outb(PIT_CH2, 0x10); /* count 0x1000: ~3.4 ms */
	/* Read-back command: latch the status of channel 2 only. */
	outb(PIT_CMD, 0xe8);
	uint8_t st = inb(PIT_CH2);
	say("ch2 status after programming mode 0: rw/mode/bcd %02x", st & 0x3f);
	env("ch2 status %02x", st);
	CHECK((st & 0x3f) == 0x30, "status %02x, wanted access lo/hi, mode 0, binary", st);

	outb(PORT_61, (p61 & ~0x03) | 0x01); /* gate on: counting starts */
	outb(PIT_CMD, 0x80);                 /* counter latch, ch2 */
	uint16_t c1 = inb(PIT_CH2);
	c1 |= inb(PIT_CH2) << 8;
	unsigned polls = 0;
	while (!(inb(PORT_61) & 0x20) && polls < 10000000)
		polls++;
	bool out_high = inb(PORT_61) & 0x20;
	outb(PIT_CMD, 0x80);
	uint16_t c2 = inb(PIT_CH2);
	c2 |= inb(PIT_CH2) << 8;
	env("ch2 latched %04x, OUT2 high after %u polls, then %04x", c1, polls, c2);
	say("ch2 mode 0 terminal count reached: %s", out_high ? "yes" : "no");
	CHECK(out_high, "OUT2 never went high");
	CHECK(c1 <= 0x1000, "latched count %04x above the initial count", c1);

	/* Read-back of the status again: OUT set, null count clear. */
	outb(PIT_CMD, 0xe8);
	st = inb(PIT_CH2);
	say("ch2 status at terminal count: %02x", st);
	CHECK(st == 0xb0, "status %02x", st);
	outb(PORT_61, p61 & 0x0f);
	uint8_t now = inb(PORT_61);
	say("port 61 gate/speaker bits as found, and restored: %x, %x", p61 & 0x03, now & 0x03);
	CHECK((now & 0x0f) == (p61 & 0x0f), "port 61 %02x, was %02x", now, p61);
}

/* Nothing decodes these on the Bochs PC: the bus floats to all ones. */
TEST(io, unused_ports)
{
	static const uint16_t ports[] = { 0x2f8, 0x2fd, 0x300, 0x310, 0x3e8, 0x278 };
	for (unsigned i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		uint16_t p = ports[i];
		uint8_t b = inb(p);
		uint16_t w = inw(p);
		uint32_t l = inl(p);
		say("port %03x: inb %02x inw %04x inl %08x", p, b, w, l);
		CHECK(b == 0xff && w == 0xffff && l == 0xffffffff, "port %03x is decoded", p);
	}
	outb(POST_PORT, 0x42);
	say("POST port 80: wrote 42, reads %02x", inb(POST_PORT));
	env("port e9 reads %02x", inb(DEBUGCON_PORT));
	/* fw_cfg: not present on Bochs. */
	say("port 510: inw %04x", inw(0x510));
}

/* String I/O: the buffer, RSI/RDI/RCX updates, DF, address size. */
static uint8_t sbuf[64] __attribute__((aligned(16)));

TEST(io, string_io)
{
	uint64_t rsi, rdi, rcx;
	uint64_t base = (uint64_t)sbuf;
	for (unsigned i = 0; i < sizeof(sbuf); i++)
		sbuf[i] = (uint8_t)i;

	/* rep outsb to the POST port: 16 bytes out, RSI advances, RCX -> 0. */
	rsi = base;
	rcx = 16;
	__asm__ volatile("rep outsb" : "+S"(rsi), "+c"(rcx) : "d"(POST_PORT) : "memory");
	say("rep outsb x16 to 80: rsi +%lld rcx %llu; port 80 reads %02x", (long long)(rsi - base),
	    (unsigned long long)rcx, inb(POST_PORT));
	CHECK(rsi == base + 16 && rcx == 0, "rep outsb register effects");

	/* rep insw from an unused port: all ones, RDI +2 per word. */
	memset(sbuf, 0, sizeof(sbuf));
	rdi = base + 8;
	rcx = 8;
	__asm__ volatile("rep insw" : "+D"(rdi), "+c"(rcx) : "d"(0x300) : "memory");
	bool ones = true;
	for (unsigned i = 8; i < 24; i++)
		ones &= sbuf[i] == 0xff;
	say("rep insw x8 from 300: rdi +%lld rcx %llu, data %s, guards %02x %02x", (long long)(rdi - base - 8),
	    (unsigned long long)rcx, ones ? "all ff" : "NOT all ff", sbuf[7], sbuf[24]);
	CHECK(ones && sbuf[7] == 0 && sbuf[24] == 0 && rdi == base + 24 && rcx == 0, "rep insw");

	/* With DF=1: insd goes down. */
	memset(sbuf, 0, sizeof(sbuf));
	rdi = base + 32;
	rcx = 3;
	__asm__ volatile("std\n\trep insl\n\tcld" : "+D"(rdi), "+c"(rcx) : "d"(0x300) : "memory");
	unsigned n = 0, lo = 0, hi = 0;
	for (unsigned i = 0; i < sizeof(sbuf); i++) {
		if (sbuf[i] != 0xff)
			continue;
		if (!n++)
			lo = i;
		hi = i;
	}
	say("std; rep insl x3 at +32: rdi %lld rcx %llu, %u bytes written at [+%u, +%u]", (long long)(rdi - base - 32),
	    (unsigned long long)rcx, n, lo, hi);
	CHECK(rdi == base + 32 - 12 && rcx == 0 && n == 12 && lo == 24 && hi == 35, "std rep insl");

	/* rep with RCX = 0: nothing at all. */
	memset(sbuf, 0, sizeof(sbuf));
	rdi = base;
	rcx = 0;
	__asm__ volatile("rep insb" : "+D"(rdi), "+c"(rcx) : "d"(0x300) : "memory");
	say("rep insb with rcx=0: rdi +%lld, byte %02x", (long long)(rdi - base), sbuf[0]);
	CHECK(rdi == base && sbuf[0] == 0, "rep insb with rcx 0 did something");

	/* 32-bit address size: ECX counts, RCX and RDI are zero-extended. */
	memset(sbuf, 0, sizeof(sbuf));
	rdi = base;
	rcx = 0x1234567800000004ull;
	__asm__ volatile("addr32 rep insb" : "+D"(rdi), "+c"(rcx) : "d"(0x300) : "memory");
	n = 0;
	for (unsigned i = 0; i < sizeof(sbuf); i++)
		n += sbuf[i] == 0xff;
	say("addr32 rep insb, rcx=1234567800000004: rdi +%lld rcx %016llx, %u bytes", (long long)(rdi - base),
	    (unsigned long long)rcx, n);
	CHECK(n == 4 && rdi == base + 4, "addr32 rep insb moved %u bytes", n);
	CHECK(rcx == 0 || rcx == 0x1234567800000000ull, "addr32 rep insb rcx %016llx", (unsigned long long)rcx);

	/* A single outsb / insb. */
	rsi = base;
	__asm__ volatile("outsb" : "+S"(rsi) : "d"(POST_PORT) : "memory");
	rdi = base;
	sbuf[0] = 0;
	__asm__ volatile("insb" : "+D"(rdi) : "d"(0x310) : "memory");
	say("outsb: rsi +%lld; insb: rdi +%lld byte %02x", (long long)(rsi - base), (long long)(rdi - base), sbuf[0]);
	CHECK(sbuf[0] == 0xff, "insb from 310");
}

/* Bochs' port 0x8900, the one port every Nestor intercepts (it powers the
 * machine off on the string "Shutdown"): the start of the word followed by
 * something else, word and dword writes, a long REP OUTSB (emulated in
 * chunks) - all must reach the device as written - and reads. */
static void k_wbinvd(void *p) { (void)p; __asm__ volatile("wbinvd" ::: "memory"); }
static void k_invd(void *p) { (void)p; __asm__ volatile("invd" ::: "memory"); }
static void k_getsec(void *p) { (void)p; __asm__ volatile("getsec" ::"a"(0) : "ebx", "ecx", "edx", "memory"); }

TEST(io, bochs_port)
{
	outb(BOCHS_PORT, 'S');
	outb(BOCHS_PORT, 'h');
	outb(BOCHS_PORT, 'x');
	outw(BOCHS_PORT, 0x6853);
	outl(BOCHS_PORT, 0x78787878);
	static char xs[300];
	memset(xs, 'x', sizeof(xs));
	uint64_t rsi = (uint64_t)xs, rcx = sizeof(xs);
	__asm__ volatile("rep outsb" : "+S"(rsi), "+c"(rcx) : "d"(BOCHS_PORT) : "memory");
	say("'S' 'h' 'x', word, dword, rep outsb x300 to 8900: still running; rsi +%lld rcx %llu",
	    (long long)(rsi - (uint64_t)xs), (unsigned long long)rcx);
	CHECK(rsi == (uint64_t)xs + sizeof(xs) && rcx == 0, "rep outsb register effects");
	say("port 8900: inb %02x inw %04x inl %08x", inb(BOCHS_PORT), inw(BOCHS_PORT), inl(BOCHS_PORT));
	/* Instructions that always exit under VMX: WBINVD, INVD; GETSEC (#UD
	 * without CR4.SMXE). */
	struct fault f;
	char buf[40];
	bool hit = catch_fault(k_wbinvd, NULL, &f);
	say("wbinvd: %s", fault_str(buf, sizeof(buf), hit, &f));
	hit = catch_fault(k_invd, NULL, &f);
	say("invd: %s", fault_str(buf, sizeof(buf), hit, &f));
	hit = catch_fault(k_getsec, NULL, &f);
	say("getsec with CR4.SMXE=0: %s", fault_str(buf, sizeof(buf), hit, &f));
}

/* At CPL 3 with IOPL 0 and no I/O bitmap, every port is refused: #GP(0). */
static void u_inb(void *p) { (void)inb((uint16_t)(uint64_t)p); }
static void u_outb(void *p) { outb((uint16_t)(uint64_t)p, 0); }
static void u_insb(void *p)
{
	uint64_t rdi = (uint64_t)p;
	__asm__ volatile("insb" : "+D"(rdi) : "d"(0x300) : "memory");
}
static void u_outsb(void *p)
{
	uint64_t rsi = (uint64_t)p;
	__asm__ volatile("outsb" : "+S"(rsi) : "d"(POST_PORT) : "memory");
}
static void u_cli(void *p) { __asm__ volatile("cli"); }

static uint64_t u_iopl;
static void u_popf_iopl(void *p)
{
	uint64_t f;
	__asm__ volatile("pushfq\n\tpopq %0\n\t"
			 "orq $0x3000, %0\n\t"
			 "pushq %0\n\tpopfq\n\t"
			 "pushfq\n\tpopq %0"
			 : "=&r"(f)::"cc");
	u_iopl = (f >> 12) & 3;
}

TEST(io, cpl3)
{
	static uint8_t ubuf[16];
	static const struct {
		const char *name;
		void (*fn)(void *);
		uint64_t arg;
	} cases[] = {
		{ "inb 21", u_inb, 0x21 },     { "inb 80", u_inb, 0x80 },    { "outb 80", u_outb, 0x80 },
		{ "inb 3fd", u_inb, 0x3fd },   { "outb 300", u_outb, 0x300 }, { "insb", u_insb, 0 },
		{ "outsb", u_outsb, 0 },       { "cli", u_cli, 0 },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fault f;
		uint64_t arg = cases[i].arg ? cases[i].arg : (uint64_t)ubuf;
		bool hit = run_user(cases[i].fn, (void *)arg, &f);
		say("CPL3 %s: %s vector %u error %llx", cases[i].name, hit ? "fault" : "no fault", hit ? f.vector : 0,
		    (unsigned long long)f.error_code);
		CHECK(hit && f.vector == EXC_GP && f.error_code == 0, "%s at CPL 3 with IOPL 0", cases[i].name);
	}
	struct fault f;
	u_iopl = 99;
	bool hit = run_user(u_popf_iopl, 0, &f);
	say("CPL3 popf with IOPL=3: %s, IOPL reads %llu", hit ? "fault" : "no fault", (unsigned long long)u_iopl);
	CHECK(!hit && u_iopl == 0, "popf changed IOPL at CPL 3");
}
