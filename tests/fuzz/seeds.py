#!/usr/bin/env python3
"""seeds.py - writes the hand-made seed inputs of the host fuzzers into
tests/fuzz/corpus/NAME/seed-*: well-formed inputs (and near misses) that put
each fuzzer deep in its parser from the start.  The rest of each committed
corpus was found by the fuzzers and minimized (docs/testing.md).  Run from
the repository root; rerunning rewrites the same files."""
import os, re, struct, subprocess, tempfile

ROOT = 'tests/fuzz/corpus'

def put(name, i, data):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'seed-%03d' % i), 'wb') as f:
        f.write(bytes(data))

def u16(v): return struct.pack('<H', v & 0xffff)
def u32(v): return struct.pack('<I', v & 0xffffffff)
def u64(v): return struct.pack('<Q', v & 0xffffffffffffffff)
def pad8(b): return b + b'\0' * (-len(b) % 8)

# --- decode: the unit test's table, and what `as` makes of a list -------
def decode():
    n = 0
    src = open('tests/test_decode.c').read()
    for m in re.finditer(r'\{ (16|32|64), (\d+), \{ ([^}]*) \}', src):
        mode, ln = int(m.group(1)), int(m.group(2))
        bs = [int(x, 16) for x in m.group(3).split(',') if x.strip()][:ln]
        put('decode', n, [{16: 0, 32: 1, 64: 2}[mode]] + bs); n += 1
    insns = {
        64: ['vmovdqa64 %zmm0,(%rax)', 'vaddph %zmm1,%zmm2,%zmm3', 'vmovsh %xmm1,0x10(%rax)',
             'vpxor %ymm1,%ymm2,%ymm3', 'vpshufd $1,0x10(%rsp,%rcx,8),%xmm2', 'vzeroupper',
             'vpermq $0x4e,%ymm1,%ymm2', 'vextracti128 $1,%ymm1,(%rdi)', 'kmovw %k1,%eax',
             'movdqa %xmm1,(%rax)', 'pextrd $1,%xmm1,(%rdi)', 'crc32q (%rax),%rbx', 'movbe (%rax),%ecx',
             'vmread %rax,(%rbx)', 'vmwrite (%rbx),%rax', 'invept (%rax),%rcx', 'invvpid (%rax),%rcx',
             'vmptrld (%rax)', 'vmclear 8(%rsp)', 'vmxon (%rdi)', 'xsave (%rdi)', 'fxsave64 (%rax)',
             'rep movsq', 'rep stosb', 'gs movsb', 'lock cmpxchg16b (%rdi)', 'mov %cr3,%rax', 'mov %rax,%dr7',
             'movabs 0x1122334455667788,%al', 'fs mov (%rax),%eax', 'addr32 mov (%eax),%eax',
             'sgdt (%rax)', 'swapgs', 'rdfsbase %rax', 'xbegin .+0x10', 'xabort $1', 'enter $16,$1',
             'lfence', 'clflushopt (%rax)', 'tpause %eax', 'encls', 'vpgatherdd %ymm1,(%rax,%ymm2,4),%ymm3',
             'vfmadd231ps {rn-sae},%zmm1,%zmm2,%zmm3', 'vpcompressd %zmm1,(%rax){%k1}', 'fldt (%rax)',
             'fsubp %st,%st(3)', 'pushq $0x12345678', 'call *0x10(%rax)', 'notrack jmp *%rax', 'bnd ret',
             'endbr64', 'lea 0x0(,%riz,1),%rax', 'data16 lock addl $1,%fs:(%rax)'],
        32: ['les (%eax),%ecx', 'lds 4(%ebx),%edx', 'bound %eax,(%ecx)', 'vpxor %xmm1,%xmm2,%xmm3',
             'vaddps %zmm1,%zmm2,%zmm3', 'ljmp $0x10,$0x1000', 'lcall $0x8,$0x1234', 'mov %eax,%cr0',
             'pusha', 'aam $10', 'das', 'into', 'arpl %ax,(%ebx)', 'mov 0x12345678,%eax', 'rep insl (%dx),%es:(%edi)',
             'outsb %ds:(%esi),(%dx)', 'salc', 'jecxz .+2', 'loop .+2', 'data16 call .+0x10'],
        16: ['mov (%bx,%si),%ax', 'mov 0x1234(%bp),%al', 'addr32 mov (%eax,%ebx,4),%cx', 'ljmp $0xf000,$0xfff0',
             'mov %eax,%cr0', 'lgdtl (%bx)', 'data32 iret', 'rep movsw', 'int $0x10', 'vpxor %xmm1,%xmm2,%xmm3',
             'les (%bx),%ax', 'cpuid', 'wrmsr', 'data32 push $0x12345678', 'xlat %ds:(%bx)'],
    }
    sel = {16: 0, 32: 1, 64: 2}
    with tempfile.TemporaryDirectory() as t:
        for mode, lst in insns.items():
            for ins in lst:
                s = os.path.join(t, 'a.s')
                open(s, 'w').write('.code%d\n%s\n' % (mode, ins))
                o = os.path.join(t, 'a.o')
                if subprocess.run(['as', '--64', s, '-o', o], capture_output=True).returncode:
                    continue
                b = os.path.join(t, 'a.bin')
                subprocess.run(['objcopy', '-O', 'binary', '-j', '.text', o, b], check=True)
                put('decode', n, [sel[mode]] + list(open(b, 'rb').read())); n += 1

# --- mb2: boot information as GRUB gives it ---------------------------------
def mbi(tags, total=None):
    body = b''.join(pad8(u32(t) + u32(8 + len(b)) + b) for t, b in tags) + u32(0) + u32(8)
    return u32(total or 8 + len(body)) + u32(0) + body

def mb2():
    mmap = u32(24) + u32(0) + u64(0) + u64(0x9f000) + u32(1) + u32(0) + u64(0x100000) + u64(0x7f00000) + u32(1) + u32(0)
    full = [(1, b'loglevel=debug\0'), (2, b'GRUB 2.06\0'), (4, u32(639) + u32(130048)), (6, mmap),
            (3, u32(0x200000) + u32(0x300000) + b'guest.elf suite=cpuid\0'), (14, b'RSD PTR ' + bytes(12)),
            (15, b'RSD PTR ' + bytes(28)), (21, u32(0x1000000)), (9999, b'ignored')]
    put('mb2', 0, [200] + list(mbi(full)))
    put('mb2', 1, [0] + list(mbi([])))
    put('mb2', 2, [50] + list(mbi(full[:3])))
    put('mb2', 3, [120] + list(mbi([(3, u32(5) + u32(4) + b'x\0')])))       # module ends before start
    put('mb2', 4, [120] + list(mbi([(6, u32(24) + u32(0) + u64(1 << 63) + u64(1 << 63) + u32(1) + u32(0))])))

# --- ELF: 32- and 64-bit, one or two PT_LOAD ---------------------------------
def elf(is64, phdrs, entry=0x100000, machine=None):
    if is64:
        eh = b'\x7fELF' + bytes([2, 1, 1]) + bytes(9) + u16(2) + u16(machine or 62) + u32(1) + u64(entry) + \
             u64(64) + u64(0) + u32(0) + u16(64) + u16(56) + u16(len(phdrs)) + u16(0) + u16(0) + u16(0)
        ph = b''.join(u32(t) + u32(7) + u64(off) + u64(pa) + u64(pa) + u64(fs) + u64(ms) + u64(0x1000)
                      for t, off, pa, fs, ms in phdrs)
    else:
        eh = b'\x7fELF' + bytes([1, 1, 1]) + bytes(9) + u16(2) + u16(machine or 3) + u32(1) + u32(entry) + \
             u32(52) + u32(0) + u32(0) + u16(52) + u16(32) + u16(len(phdrs)) + u16(0) + u16(0) + u16(0)
        ph = b''.join(u32(t) + u32(off) + u32(pa) + u32(pa) + u32(fs) + u32(ms) + u32(7) + u32(0x1000)
                      for t, off, pa, fs, ms in phdrs)
    img = eh + ph
    return img + bytes(0x200 - len(img)) if len(img) < 0x200 else img

def elfs():
    put('elf', 0, elf(False, [(1, 0, 0x100000, 0x200, 0x1000)]))
    put('elf', 1, elf(True, [(1, 0, 0x100000, 0x200, 0x1000), (1, 0x100, 0x200000, 0x100, 0x100)]))
    put('elf', 2, elf(True, [(6, 0, 0, 0, 0), (1, 0, 0xfffff000, 0x200, 0x1000)]))      # runs past 4 GiB
    put('elf', 3, elf(False, [(1, 0x180, 0x100000, 0x100, 0x100)]))                      # past the file
    put('elf', 4, elf(True, [(1, 0, 0x100000, 0x200, 0x1000)], machine=3))

# --- multiboot headers: mb2 with tags, mb1 with the a.out kludge -----------------
def mb2_header(tags, arch=0):
    body = b''.join(pad8(u16(t) + u16(f) + u32(8 + len(b)) + b) for t, f, b in tags) + u16(0) + u16(0) + u32(8)
    ln = 16 + len(body)
    return u32(0xe85250d6) + u32(arch) + u32(ln) + u32(-(0xe85250d6 + arch + ln)) + body

def mb1_header(flags, addr=None):
    h = u32(0x1badb002) + u32(flags) + u32(-(0x1badb002 + flags))
    if addr:
        h += b''.join(u32(a) for a in addr)
    return h

def multiboot():
    req = b''.join(u32(t) for t in (1, 2, 3, 4, 6))
    addr = u32(0x100000) + u32(0x100000) + u32(0) + u32(0x110000)
    h = mb2_header([(1, 0, req), (2, 0, addr), (3, 0, u32(0x100020)), (4, 1, u32(3)), (6, 1, b''),
                    (10, 0, u32(0x100000) + u32(0x1000000) + u32(0x1000) + u32(1))])
    put('multiboot', 0, [0] + list(h + bytes(0x400 - len(h))))
    put('multiboot', 1, [6] + list(mb2_header([(1, 0, u32(14) + u32(15))]) + bytes(64)))
    e = elf(False, [(1, 0, 0x100000, 0x200, 0x1000)])
    hh = mb2_header([(1, 1, u32(8))])
    put('multiboot', 2, [0] + list(e[:0x100] + hh + e[0x100 + len(hh):]))
    m1 = mb1_header(0x10003, [0x100000, 0x100000, 0x100800, 0x101000, 0x100040])
    put('multiboot', 3, [1] + list(m1 + bytes(0x800)))
    put('multiboot', 4, [1] + list(e[:0x80] + mb1_header(3) + e[0x8c:]))
    put('multiboot', 5, [0] + list(mb2_header([(7, 0, b'')]) + bytes(16)))               # unsupported tag

# --- bzImage setup headers ---------------------------------------------------------
def bzimage(version, jump, sects=1, reloc=0, align=0x200000, syssize=1, loadflags=1):
    p = bytearray(0x400 + (sects - 1 if sects else 3) * 512 + syssize * 16)
    p[0x1f1] = sects
    p[0x1f4:0x1f8] = u32(syssize)
    p[0x1fe:0x200] = u16(0xaa55)
    p[0x200] = 0xeb
    p[0x201] = jump
    p[0x202:0x206] = b'HdrS'
    p[0x206:0x208] = u16(version)
    p[0x211] = loadflags
    p[0x22c:0x230] = u32(0x7fffffff)
    p[0x230:0x234] = u32(align)
    p[0x234] = reloc
    p[0x238:0x23c] = u32(2048)
    p[0x258:0x260] = u64(0x1000000)
    p[0x260:0x264] = u32(0x2000)
    return p

def bzimages():
    put('bzimage', 0, bzimage(0x20f, 0x6a, reloc=1))
    put('bzimage', 1, bzimage(0x206, 0x32))
    put('bzimage', 2, bzimage(0x20a, 0x66, sects=0))
    put('bzimage', 3, bzimage(0x20f, 0x6a, loadflags=0))
    put('bzimage', 4, bzimage(0x20f, 0x6a, reloc=1, align=0x3000))
    put('bzimage', 5, bzimage(0x20f, 0x6a)[:0x210])

# --- command lines -------------------------------------------------------------------
def cmdlines():
    lines = ['loglevel=debug e9log mem=64M guest=linux boot_drive=0x80 nested=off snap_pool=1G suite=a,b',
             'mem=16Q', 'loglevel=loud', 'suite=0123456789abcdefghij', 'none=x', 'boot_drive=256',
             'snap_pool=0x80000000 nested=yes e9log=0', '\tmem=4194304\n']
    for i, l in enumerate(lines):
        put('cmdline', i, [0xfe] + list(l.encode()))
    for j, s in enumerate(['0x1000', '16K', '18446744073709551615', '17179869184G', '0x', 'M', '0XfFfF']):
        put('cmdline', 100 + j, [1] + list(s.encode()))

# --- VMCS12 checks: each caps set, valid base, a few fields ------------------------
def vmcs12():
    for i, (sel, flags) in enumerate([(0, 0), (1, 0), (2, 0), (3, 0), (0, 2), (1, 1)]):
        put('vmcs12_checks', i, [sel, 8, flags] + ([0] * 44 if sel == 3 else []))

# --- EPT12 walks: 4 KiB, 2 MiB, 1 GiB translations ------------------------------------
def ept():
    eptp = 0x1000 | 0x1e
    gpa = 0x12345678
    rec = lambda v: [0] + list(u64(v))
    for i, (sel, leaf_level) in enumerate([(0, 1), (1, 2), (2, 3), (0, 4)]):
        recs = []
        for lvl in range(4, 0, -1):
            if lvl == leaf_level:
                recs += rec(0x40000000 | 0x37 | (0x80 if lvl > 1 else 0))
                break
            recs += rec((0x2000 * (5 - lvl)) | 7)
        put('ept12_walk', i, [sel, 7] + list(u64(eptp)) + list(u64(gpa)) + recs)

# --- ACPI: RSDP, then memory at physical 0 holding RSDT/XSDT and MADT ------------
def acpi_table(sig, rev, body):
    t = bytearray(sig + u32(36 + len(body)) + bytes([rev, 0]) + b'BOCHS BXPC    ' + u32(1) + b'BXPC' + u32(1) + body)
    t[9] = -sum(t) & 0xff
    return bytes(t)

def rsdp(rsdt, xsdt=None, length=36):
    r = bytearray(b'RSD PTR ' + b'\0' + b'BOCHS ' + bytes([0 if xsdt is None else 2]) + u32(rsdt))
    r[8] = -sum(r) & 0xff
    if xsdt is not None:
        r += u32(length) + u64(xsdt) + b'\0' * (length - 32)
        r[32] = -sum(r) & 0xff
    return bytes(r)

def acpi_mem(tables, size):
    m = bytearray(size)
    for pa, t in tables.items():
        m[pa:pa + len(t)] = t
    return bytes(m[:size])

def lapic(uid, aid, flags=1): return bytes([0, 8, uid, aid]) + u32(flags)
def x2apic(aid, uid, flags=1): return bytes([9, 16]) + u16(0) + u32(aid) + u32(flags) + u32(uid)
def ioapic(i, addr, gsi): return bytes([1, 12, i, 0]) + u32(addr) + u32(gsi)
def iso(src, gsi, flags): return bytes([2, 10, 0, src]) + u32(gsi) + u16(flags)

def acpi():
    facp = acpi_table(b'FACP', 1, bytes(80))
    def madt(entries, rev=1, lapic_addr=0xfee00000, flags=1):
        return acpi_table(b'APIC', rev, u32(lapic_addr) + u32(flags) + b''.join(entries))
    bochs2 = madt([lapic(0, 0), lapic(1, 1), ioapic(2, 0xfec00000, 0), iso(0, 2, 0), iso(9, 9, 0xd),
                   bytes([4, 6, 0xff, 5, 0, 1])])
    r = rsdp(0x40)
    put('acpi', 0, [len(r)] + list(r + acpi_mem({0x40: acpi_table(b'RSDT', 1, u32(0x80) + u32(0x100)),
                                                  0x80: facp, 0x100: bochs2}, 0x200)))
    four = madt([lapic(i, i, 1 if i != 2 else 0) for i in range(4)] + [ioapic(4, 0xfec00000, 0)], rev=3)
    r = rsdp(0x40, 0x60)
    put('acpi', 1, [len(r)] + list(r + acpi_mem({0x40: acpi_table(b'RSDT', 1, u32(0x100)),
                                                  0x60: acpi_table(b'XSDT', 1, u64(0xe0) + u64(0x100)),
                                                  0xe0: acpi_table(b'SSDT', 1, b'x'), 0x100: four}, 0x200)))
    x2 = madt([lapic(0, 0), x2apic(0x100, 1), x2apic(0x101, 2, 2), bytes([5, 12, 0, 0]) + u64(0xfed00000),
               bytes([0xa, 12, 0, 0]) + u32(0xffffffff) + bytes([1, 0, 0, 0])], rev=5)
    r = rsdp(0, 0x40, length=40)
    put('acpi', 2, [len(r)] + list(r + acpi_mem({0x40: acpi_table(b'XSDT', 1, u64(0x80)), 0x80: x2}, 0x140)))
    many = madt([lapic(i, i) for i in range(70)] + [ioapic(i, 0xfec00000, 24 * i) for i in range(18)] +
                [iso(i, i, 0) for i in range(34)])
    r = rsdp(0x40)
    put('acpi', 3, [len(r)] + list(r + acpi_mem({0x40: acpi_table(b'RSDT', 1, u32(0x80)), 0x80: many}, 0x80 + len(many))))
    # The MADT in the mirror at the top of the address space: its last byte at 2^64 - 2.
    size = 0x100
    top = (1 << 64) - size
    r = rsdp(0, 0x40)
    m = acpi_mem({0x40: acpi_table(b'XSDT', 1, u64(top + size - 1 - len(bochs2))),
                  size - 1 - len(bochs2): bochs2}, size)
    put('acpi', 4, [len(r)] + list(r + m))
    # 256 tables listed, the MADT last; then 257, too many.
    r = rsdp(0x40)
    rsdt = acpi_table(b'RSDT', 1, u32(0x480) * 255 + u32(0x500))
    put('acpi', 6, [len(r)] + list(r + acpi_mem({0x40: rsdt, 0x480: facp, 0x500: bochs2}, 0x600)))
    rsdt = acpi_table(b'RSDT', 1, u32(0x480) * 256 + u32(0x500))
    put('acpi', 8, [len(r)] + list(r + acpi_mem({0x40: rsdt, 0x480: facp, 0x500: bochs2}, 0x600)))
    # Other entry types, at their minimum lengths: NMI source, I/O SAPIC, local SAPIC, platform interrupts.
    other = madt([lapic(0, 0), bytes([3, 8, 0, 0]) + u32(0), bytes([6, 16, 0, 0]) + u32(0) + u64(0xfec00000),
                  bytes([7, 17, 0, 0, 0]) + bytes(11) + b'\0', bytes([8, 16]) + bytes(14), bytes([0x10, 16]) + bytes(14)])
    put('acpi', 7, [len(r)] + list(r + acpi_mem({0x40: acpi_table(b'RSDT', 1, u32(0x80)), 0x80: other}, 0x180)))
    # The same tables as seed 0, with memory that changes under the parser.
    r = rsdp(0x40)
    put('acpi', 5, [0x80 | len(r)] + list(r + acpi_mem({0x40: acpi_table(b'RSDT', 1, u32(0x80) + u32(0x100)),
                                                         0x80: facp, 0x100: bochs2}, 0x200)))

if __name__ == '__main__':
    decode(); mb2(); elfs(); multiboot(); bzimages(); cmdlines(); vmcs12(); ept(); acpi()
