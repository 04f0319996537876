// sources: lib/x86_decode.c
/* Unit tests of the instruction decoder: lengths of ~200 instructions in
 * 64-, 32- and 16-bit code, as encoded by the GNU assembler (the table was
 * produced by assembling a list of instructions with `as` and reading the
 * bytes back with `objdump -d`), plus truncation and limit cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lib/x86_decode.h"

struct case_ {
	int mode, len;
	uint8_t bytes[15];
	const char *text;
};

static const struct case_ cases[] = {
	{ 64, 2, { 0x00, 0x00 }, "add    %al,(%rax)" },
	{ 64, 7, { 0x48, 0x01, 0x05, 0x78, 0x56, 0x34, 0x12 }, "add    %rax,0x12345678(%rip)        # 0x12345681" },
	{ 64, 2, { 0x04, 0x12 }, "add    $0x12,%al" },
	{ 64, 5, { 0x05, 0x78, 0x56, 0x34, 0x12 }, "add    $0x12345678,%eax" },
	{ 64, 4, { 0x66, 0x05, 0x34, 0x12 }, "add    $0x1234,%ax" },
	{ 64, 6, { 0x48, 0x83, 0x44, 0x8c, 0x08, 0x12 }, "addq   $0x12,0x8(%rsp,%rcx,4)" },
	{ 64, 7, { 0x81, 0x45, 0x80, 0x78, 0x56, 0x34, 0x12 }, "addl   $0x12345678,-0x80(%rbp)" },
	{ 64, 3, { 0x48, 0x89, 0xc3 }, "mov    %rax,%rbx" },
	{ 64, 3, { 0x4d, 0x89, 0x01 }, "mov    %r8,(%r9)" },
	{ 64, 8, { 0x42, 0x89, 0x04, 0xd5, 0x78, 0x56, 0x34, 0x12 }, "mov    %eax,0x12345678(,%r10,8)" },
	{ 64, 3, { 0xc6, 0x00, 0x01 }, "movb   $0x1,(%rax)" },
	{ 64, 5, { 0x66, 0xc7, 0x00, 0x34, 0x12 }, "movw   $0x1234,(%rax)" },
	{ 64, 6, { 0xc7, 0x00, 0x78, 0x56, 0x34, 0x12 }, "movl   $0x12345678,(%rax)" },
	{ 64, 7, { 0x48, 0xc7, 0x00, 0xff, 0xff, 0xff, 0xff }, "movq   $0xffffffffffffffff,(%rax)" },
	{ 64, 10, { 0x48, 0xb8, 0xf0, 0xde, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12 }, "movabs $0x123456789abcdef0,%rax" },
	{ 64, 5, { 0xb9, 0x78, 0x56, 0x34, 0x12 }, "mov    $0x12345678,%ecx" },
	{ 64, 3, { 0x41, 0xb3, 0x12 }, "mov    $0x12,%r11b" },
	{ 64, 9, { 0xa2, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11 }, "movabs %al,0x1122334455667788" },
	{ 64, 9, { 0xa1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11 }, "movabs 0x1122334455667788,%eax" },
	{ 64, 5, { 0x48, 0x8d, 0x4c, 0x58, 0x10 }, "lea    0x10(%rax,%rbx,2),%rcx" },
	{ 64, 1, { 0x50 }, "push   %rax" },
	{ 64, 2, { 0x41, 0x54 }, "push   %r12" },
	{ 64, 2, { 0x41, 0x5f }, "pop    %r15" },
	{ 64, 2, { 0x6a, 0x12 }, "push   $0x12" },
	{ 64, 5, { 0x68, 0x78, 0x56, 0x34, 0x12 }, "push   $0x12345678" },
	{ 64, 5, { 0xe8, 0xfb, 0x00, 0x00, 0x00 }, "call   0x179" },
	{ 64, 2, { 0xeb, 0x0e }, "jmp    0x8e" },
	{ 64, 5, { 0xe9, 0xfb, 0x0f, 0x00, 0x00 }, "jmp    0x1080" },
	{ 64, 2, { 0x74, 0x0e }, "je     0x95" },
	{ 64, 6, { 0x0f, 0x85, 0xfa, 0x0f, 0x00, 0x00 }, "jne    0x1087" },
	{ 64, 1, { 0xc3 }, "ret" },
	{ 64, 3, { 0xc2, 0x08, 0x00 }, "ret    $0x8" },
	{ 64, 1, { 0xcc }, "int3" },
	{ 64, 2, { 0xcd, 0x80 }, "int    $0x80" },
	{ 64, 2, { 0x0f, 0x05 }, "syscall" },
	{ 64, 2, { 0x0f, 0xa2 }, "cpuid" },
	{ 64, 2, { 0x0f, 0x32 }, "rdmsr" },
	{ 64, 2, { 0x0f, 0x30 }, "wrmsr" },
	{ 64, 2, { 0x0f, 0x31 }, "rdtsc" },
	{ 64, 3, { 0x0f, 0x01, 0xf9 }, "rdtscp" },
	{ 64, 3, { 0x0f, 0x01, 0xd1 }, "xsetbv" },
	{ 64, 3, { 0x0f, 0x01, 0xc1 }, "vmcall" },
	{ 64, 3, { 0x0f, 0x01, 0xc2 }, "vmlaunch" },
	{ 64, 2, { 0x0f, 0x0b }, "ud2" },
	{ 64, 1, { 0xf4 }, "hlt" },
	{ 64, 1, { 0x90 }, "nop" },
	{ 64, 5, { 0x66, 0x0f, 0x1f, 0x04, 0x00 }, "nopw   (%rax,%rax,1)" },
	{ 64, 3, { 0x6b, 0xc8, 0x12 }, "imul   $0x12,%eax,%ecx" },
	{ 64, 6, { 0x69, 0xc8, 0x78, 0x56, 0x34, 0x12 }, "imul   $0x12345678,%eax,%ecx" },
	{ 64, 2, { 0xa8, 0x12 }, "test   $0x12,%al" },
	{ 64, 3, { 0xf6, 0x00, 0x12 }, "testb  $0x12,(%rax)" },
	{ 64, 6, { 0xf7, 0x00, 0x78, 0x56, 0x34, 0x12 }, "testl  $0x12345678,(%rax)" },
	{ 64, 2, { 0xf7, 0x10 }, "notl   (%rax)" },
	{ 64, 4, { 0x48, 0xf7, 0x58, 0x10 }, "negq   0x10(%rax)" },
	{ 64, 3, { 0xc1, 0xe0, 0x03 }, "shl    $0x3,%eax" },
	{ 64, 3, { 0xc1, 0x20, 0x03 }, "shll   $0x3,(%rax)" },
	{ 64, 2, { 0xd3, 0xe0 }, "shl    %cl,%eax" },
	{ 64, 2, { 0xf3, 0xaa }, "rep stos %al,%es:(%rdi)" },
	{ 64, 3, { 0xf3, 0x48, 0xab }, "rep stos %rax,%es:(%rdi)" },
	{ 64, 2, { 0xf3, 0xa4 }, "rep movsb %ds:(%rsi),%es:(%rdi)" },
	{ 64, 2, { 0x66, 0xa5 }, "movsw  %ds:(%rsi),%es:(%rdi)" },
	{ 64, 1, { 0xad }, "lods   %ds:(%rsi),%eax" },
	{ 64, 3, { 0x0f, 0xb1, 0x0a }, "cmpxchg %ecx,(%rdx)" },
	{ 64, 5, { 0xf0, 0x48, 0x0f, 0xc7, 0x0f }, "lock cmpxchg16b (%rdi)" },
	{ 64, 2, { 0x87, 0x03 }, "xchg   %eax,(%rbx)" },
	{ 64, 3, { 0x0f, 0xc1, 0x03 }, "xadd   %eax,(%rbx)" },
	{ 64, 4, { 0x0f, 0xba, 0x28, 0x05 }, "btsl   $0x5,(%rax)" },
	{ 64, 3, { 0x0f, 0xab, 0x03 }, "bts    %eax,(%rbx)" },
	{ 64, 3, { 0x0f, 0x94, 0x00 }, "sete   (%rax)" },
	{ 64, 3, { 0x0f, 0x95, 0xc0 }, "setne  %al" },
	{ 64, 3, { 0x0f, 0xb6, 0x00 }, "movzbl (%rax),%eax" },
	{ 64, 5, { 0x48, 0x0f, 0xbe, 0x50, 0x10 }, "movsbq 0x10(%rax),%rdx" },
	{ 64, 3, { 0x0f, 0xc3, 0x03 }, "movnti %eax,(%rbx)" },
	{ 64, 4, { 0x48, 0x0f, 0xc3, 0x03 }, "movnti %rax,(%rbx)" },
	{ 64, 3, { 0x0f, 0x45, 0xd8 }, "cmovne %eax,%ebx" },
	{ 64, 4, { 0x0f, 0xa4, 0x03, 0x04 }, "shld   $0x4,%eax,(%rbx)" },
	{ 64, 3, { 0x0f, 0xad, 0x03 }, "shrd   %cl,%eax,(%rbx)" },
	{ 64, 2, { 0x0f, 0xc8 }, "bswap  %eax" },
	{ 64, 3, { 0x49, 0x0f, 0xc9 }, "bswap  %r9" },
	{ 64, 3, { 0x0f, 0xae, 0x00 }, "fxsave (%rax)" },
	{ 64, 3, { 0x0f, 0xae, 0x20 }, "xsave  (%rax)" },
	{ 64, 2, { 0xdd, 0x00 }, "fldl   (%rax)" },
	{ 64, 3, { 0xd9, 0x5b, 0x10 }, "fstps  0x10(%rbx)" },
	{ 64, 3, { 0x0f, 0x11, 0x00 }, "movups %xmm0,(%rax)" },
	{ 64, 3, { 0x0f, 0x28, 0x08 }, "movaps (%rax),%xmm1" },
	{ 64, 5, { 0x66, 0x0f, 0x7f, 0x48, 0x10 }, "movdqa %xmm1,0x10(%rax)" },
	{ 64, 4, { 0x66, 0x0f, 0xd6, 0x00 }, "movq   %xmm0,(%rax)" },
	{ 64, 5, { 0x66, 0x0f, 0x70, 0xc8, 0x1b }, "pshufd $0x1b,%xmm0,%xmm1" },
	{ 64, 5, { 0x66, 0x0f, 0x73, 0xd2, 0x03 }, "psrlq  $0x3,%xmm2" },
	{ 64, 6, { 0x66, 0x0f, 0x3a, 0x22, 0xc0, 0x01 }, "pinsrd $0x1,%eax,%xmm0" },
	{ 64, 5, { 0x66, 0x0f, 0x38, 0x00, 0xc1 }, "pshufb %xmm1,%xmm0" },
	{ 64, 7, { 0x66, 0x48, 0x0f, 0x3a, 0x16, 0x00, 0x01 }, "pextrq $0x1,%xmm0,(%rax)" },
	{ 64, 4, { 0xc5, 0xfc, 0x11, 0x00 }, "vmovups %ymm0,(%rax)" },
	{ 64, 5, { 0xc5, 0xfa, 0x7f, 0x48, 0x40 }, "vmovdqu %xmm1,0x40(%rax)" },
	{ 64, 5, { 0xc5, 0xfd, 0x70, 0xc8, 0x1b }, "vpshufd $0x1b,%ymm0,%ymm1" },
	{ 64, 6, { 0xc4, 0xe3, 0x6d, 0x18, 0xd9, 0x01 }, "vinsertf128 $0x1,%xmm1,%ymm2,%ymm3" },
	{ 64, 3, { 0xc5, 0xf8, 0x77 }, "vzeroupper" },
	{ 64, 4, { 0xc5, 0xed, 0xfe, 0xd9 }, "vpaddd %ymm1,%ymm2,%ymm3" },
	{ 64, 6, { 0x62, 0xf1, 0xfe, 0x48, 0x7f, 0x00 }, "vmovdqu64 %zmm0,(%rax)" },
	{ 64, 6, { 0x62, 0xf1, 0x6d, 0x48, 0xfe, 0xd9 }, "vpaddd %zmm1,%zmm2,%zmm3" },
	{ 64, 7, { 0x62, 0xf1, 0x7d, 0x48, 0x70, 0xc8, 0x1b }, "vpshufd $0x1b,%zmm0,%zmm1" },
	{ 64, 7, { 0x62, 0xf1, 0x7c, 0x48, 0x11, 0x48, 0x01 }, "vmovups %zmm1,0x40(%rax)" },
	{ 64, 4, { 0xc8, 0x10, 0x00, 0x00 }, "enter  $0x10,$0x0" },
	{ 64, 1, { 0xc9 }, "leave" },
	{ 64, 2, { 0xe4, 0x60 }, "in     $0x60,%al" },
	{ 64, 2, { 0xe6, 0x80 }, "out    %al,$0x80" },
	{ 64, 1, { 0xed }, "in     (%dx),%eax" },
	{ 64, 1, { 0x6e }, "outsb  %ds:(%rsi),(%dx)" },
	{ 64, 2, { 0x66, 0x6d }, "insw   (%dx),%es:(%rdi)" },
	{ 64, 3, { 0x0f, 0x20, 0xc0 }, "mov    %cr0,%rax" },
	{ 64, 3, { 0x0f, 0x22, 0xe0 }, "mov    %rax,%cr4" },
	{ 64, 3, { 0x0f, 0x21, 0xf8 }, "mov    %db7,%rax" },
	{ 64, 3, { 0x0f, 0x01, 0x00 }, "sgdt   (%rax)" },
	{ 64, 3, { 0x0f, 0x01, 0x1b }, "lidt   (%rbx)" },
	{ 64, 3, { 0x0f, 0x01, 0x38 }, "invlpg (%rax)" },
	{ 64, 5, { 0x66, 0x0f, 0x38, 0x80, 0x08 }, "invept (%rax),%rcx" },
	{ 64, 5, { 0x66, 0x0f, 0x38, 0x82, 0x18 }, "invpcid (%rax),%rbx" },
	{ 64, 3, { 0x0f, 0xae, 0x38 }, "clflush (%rax)" },
	{ 64, 3, { 0x0f, 0x18, 0x08 }, "prefetcht0 (%rax)" },
	{ 64, 3, { 0x0f, 0xae, 0xf0 }, "mfence" },
	{ 64, 3, { 0x0f, 0xae, 0xe8 }, "lfence" },
	{ 64, 2, { 0xf3, 0x90 }, "pause" },
	{ 64, 6, { 0xc7, 0xf8, 0xfa, 0x00, 0x00, 0x00 }, "xbegin 0x2b9" },
	{ 64, 3, { 0xc6, 0xf8, 0x01 }, "xabort $0x1" },
	{ 64, 3, { 0x0f, 0x01, 0xd6 }, "xtest" },
	{ 64, 3, { 0x0f, 0xc7, 0xf0 }, "rdrand %eax" },
	{ 64, 4, { 0xf3, 0x0f, 0xb8, 0xd8 }, "popcnt %eax,%ebx" },
	{ 64, 4, { 0xf3, 0x0f, 0xbc, 0xd8 }, "tzcnt  %eax,%ebx" },
	{ 64, 5, { 0xf2, 0x0f, 0x38, 0xf0, 0xd8 }, "crc32  %al,%ebx" },
	{ 64, 4, { 0x0f, 0x38, 0xf0, 0x00 }, "movbe  (%rax),%eax" },
	{ 64, 5, { 0x66, 0x0f, 0x38, 0xf6, 0xd8 }, "adcx   %eax,%ebx" },
	{ 64, 5, { 0xc4, 0xe2, 0x60, 0xf2, 0xc8 }, "andn   %eax,%ebx,%ecx" },
	{ 64, 6, { 0xc4, 0xe3, 0x7b, 0xf0, 0xd8, 0x03 }, "rorx   $0x3,%eax,%ebx" },
	{ 64, 5, { 0xc4, 0xe2, 0x78, 0xf7, 0xcb }, "bextr  %eax,%ebx,%ecx" },
	{ 64, 5, { 0xc4, 0xe2, 0x7a, 0xf7, 0xcb }, "sarx   %eax,%ebx,%ecx" },
	{ 64, 3, { 0x64, 0x8b, 0x00 }, "mov    %fs:(%rax),%eax" },
	{ 64, 9, { 0x65, 0x48, 0xc7, 0x40, 0x10, 0x01, 0x00, 0x00, 0x00 }, "movq   $0x1,%gs:0x10(%rax)" },
	{ 64, 3, { 0x67, 0x8b, 0x00 }, "mov    (%eax),%eax" },
	{ 64, 1, { 0x90 }, "nop" },
	{ 64, 7, { 0x66, 0x89, 0x05, 0x78, 0x56, 0x34, 0x12 }, "mov    %ax,0x12345678(%rip)        # 0x12345882" },
	{ 64, 2, { 0x48, 0x90 }, "rex.W nop" },
	{ 64, 4, { 0xf0, 0x83, 0x00, 0x01 }, "lock addl $0x1,(%rax)" },
	{ 64, 2, { 0x48, 0xcf }, "iretq" },
	{ 64, 3, { 0x0f, 0x01, 0xf8 }, "swapgs" },
	{ 64, 2, { 0x0f, 0x09 }, "wbinvd" },
	{ 64, 2, { 0x0f, 0x08 }, "invd" },
	{ 64, 3, { 0x48, 0x63, 0xc8 }, "movslq %eax,%rcx" },
	{ 64, 3, { 0x66, 0x89, 0x00 }, "mov    %ax,(%rax)" },
	{ 32, 2, { 0x00, 0x00 }, "add    %al,(%eax)" },
	{ 32, 5, { 0x05, 0x78, 0x56, 0x34, 0x12 }, "add    $0x12345678,%eax" },
	{ 32, 4, { 0x66, 0x05, 0x34, 0x12 }, "add    $0x1234,%ax" },
	{ 32, 5, { 0xa3, 0x78, 0x56, 0x34, 0x12 }, "mov    %eax,0x12345678" },
	{ 32, 8, { 0xc7, 0x44, 0xbe, 0x10, 0x78, 0x56, 0x34, 0x12 }, "movl   $0x12345678,0x10(%esi,%edi,4)" },
	{ 32, 6, { 0x67, 0x66, 0xc7, 0x00, 0x34, 0x12 }, "movw   $0x1234,(%bx,%si)" },
	{ 32, 5, { 0xa2, 0x78, 0x56, 0x34, 0x12 }, "mov    %al,0x12345678" },
	{ 32, 5, { 0xa1, 0x78, 0x56, 0x34, 0x12 }, "mov    0x12345678,%eax" },
	{ 32, 1, { 0x50 }, "push   %eax" },
	{ 32, 1, { 0x60 }, "pusha" },
	{ 32, 1, { 0x61 }, "popa" },
	{ 32, 2, { 0xc4, 0x00 }, "les    (%eax),%eax" },
	{ 32, 2, { 0xc5, 0x00 }, "lds    (%eax),%eax" },
	{ 32, 2, { 0x62, 0x03 }, "bound  %eax,(%ebx)" },
	{ 32, 5, { 0xe8, 0xfb, 0x00, 0x00, 0x00 }, "call   0x131" },
	{ 32, 2, { 0xeb, 0x0e }, "jmp    0x46" },
	{ 32, 7, { 0xea, 0x78, 0x56, 0x34, 0x12, 0x10, 0x00 }, "ljmp   $0x10,$0x12345678" },
	{ 32, 7, { 0x9a, 0x78, 0x56, 0x34, 0x12, 0x10, 0x00 }, "lcall  $0x10,$0x12345678" },
	{ 32, 2, { 0xd4, 0x0a }, "aam    $0xa" },
	{ 32, 2, { 0xd5, 0x0a }, "aad    $0xa" },
	{ 32, 1, { 0x40 }, "inc    %eax" },
	{ 32, 1, { 0x49 }, "dec    %ecx" },
	{ 32, 2, { 0x63, 0x03 }, "arpl   %ax,(%ebx)" },
	{ 32, 4, { 0xc5, 0xfc, 0x11, 0x00 }, "vmovups %ymm0,(%eax)" },
	{ 32, 4, { 0xc5, 0xfa, 0x6f, 0xc8 }, "vmovdqu %xmm0,%xmm1" },
	{ 32, 6, { 0x62, 0xf1, 0x6d, 0x48, 0xfe, 0xd9 }, "vpaddd %zmm1,%zmm2,%zmm3" },
	{ 32, 3, { 0x0f, 0x20, 0xc0 }, "mov    %cr0,%eax" },
	{ 32, 2, { 0xf3, 0xab }, "rep stos %eax,%es:(%edi)" },
	{ 32, 2, { 0xe6, 0x80 }, "out    %al,$0x80" },
	{ 32, 2, { 0xcd, 0x10 }, "int    $0x10" },
	{ 32, 6, { 0x67, 0x66, 0xc7, 0x03, 0x01, 0x00 }, "movw   $0x1,(%bp,%di)" },
	{ 32, 3, { 0x8b, 0x45, 0x00 }, "mov    0x0(%ebp),%eax" },
	{ 32, 4, { 0x8b, 0x44, 0x24, 0x10 }, "mov    0x10(%esp),%eax" },
	{ 32, 6, { 0x0f, 0x85, 0xfa, 0x0f, 0x00, 0x00 }, "jne    0x1072" },
	{ 16, 3, { 0xb8, 0x34, 0x12 }, "mov    $0x1234,%ax" },
	{ 16, 3, { 0xa3, 0x34, 0x12 }, "mov    %ax,0x1234" },
	{ 16, 4, { 0xc7, 0x00, 0x34, 0x12 }, "movw   $0x1234,(%bx,%si)" },
	{ 16, 5, { 0xc7, 0x46, 0x10, 0x34, 0x12 }, "movw   $0x1234,0x10(%bp)" },
	{ 16, 8, { 0x67, 0x66, 0xc7, 0x00, 0x78, 0x56, 0x34, 0x12 }, "movl   $0x12345678,(%eax)" },
	{ 16, 6, { 0x66, 0xb8, 0x78, 0x56, 0x34, 0x12 }, "mov    $0x12345678,%eax" },
	{ 16, 2, { 0x04, 0x12 }, "add    $0x12,%al" },
	{ 16, 3, { 0x05, 0x34, 0x12 }, "add    $0x1234,%ax" },
	{ 16, 3, { 0xe9, 0xfd, 0x00 }, "jmp    0x122" },
	{ 16, 3, { 0xe8, 0xfd, 0x00 }, "call   0x125" },
	{ 16, 5, { 0xea, 0xf0, 0xff, 0x00, 0xf0 }, "ljmp   $0xf000,$0xfff0" },
	{ 16, 2, { 0xcd, 0x13 }, "int    $0x13" },
	{ 16, 1, { 0x1e }, "push   %ds" },
	{ 16, 1, { 0x07 }, "pop    %es" },
	{ 16, 3, { 0x8b, 0x46, 0x00 }, "mov    0x0(%bp),%ax" },
	{ 16, 4, { 0x8a, 0x87, 0x34, 0x12 }, "mov    0x1234(%bx),%al" },
	{ 16, 3, { 0x0f, 0x01, 0x17 }, "lgdtw  (%bx)" },
	{ 16, 2, { 0xf3, 0xa5 }, "rep movsw %ds:(%si),%es:(%di)" },
	{ 16, 4, { 0x0f, 0x84, 0xfc, 0x02 }, "je     0x33d" },
	{ 16, 2, { 0xe6, 0x80 }, "out    %al,$0x80" },
	{ 16, 1, { 0xec }, "in     (%dx),%al" },
	{ 16, 6, { 0xc7, 0x81, 0x34, 0x12, 0x01, 0x00 }, "movw   $0x1,0x1234(%bx,%di)" },
};

static void lengths(void **state)
{
	(void)state;
	int bad = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct x86_insn in;
		/* Pad with bytes that would be taken if the decoder over-reads. */
		uint8_t buf[32];
		memset(buf, 0x90, sizeof(buf));
		memcpy(buf, cases[i].bytes, cases[i].len);
		int r = x86_decode(buf, sizeof(buf), cases[i].mode, &in);
		if (r != 0 || in.length != cases[i].len) {
			printf("mode %d '%s': expected %d, got %d (r=%d)\n", cases[i].mode, cases[i].text, cases[i].len,
			       in.length, r);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static void truncated_input(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct x86_insn in;
		/* Every strict prefix of an instruction is incomplete. */
		for (int n = 0; n < cases[i].len; n++) {
			int r = x86_decode(cases[i].bytes, n, cases[i].mode, &in);
			assert_int_equal(r, -1);
		}
	}
}

static void fields(void **state)
{
	(void)state;
	struct x86_insn in;
	/* 48 89 84 c8 78 56 34 12: mov %rax,0x12345678(%rax,%rcx,8) */
	const uint8_t a[] = { 0x48, 0x89, 0x84, 0xc8, 0x78, 0x56, 0x34, 0x12 };
	assert_int_equal(x86_decode(a, sizeof(a), 64, &in), 0);
	assert_int_equal(in.opcode, 0x89);
	assert_int_equal(in.map, 0);
	assert_int_equal(in.operand_size, 8);
	assert_true(in.has_sib);
	assert_int_equal(in.disp_size, 4);
	/* f3 48 ab: rep stos %rax,%es:(%rdi) */
	const uint8_t b[] = { 0xf3, 0x48, 0xab };
	assert_int_equal(x86_decode(b, sizeof(b), 64, &in), 0);
	assert_int_equal(in.rep, 0xf3);
	assert_int_equal(in.operand_size, 8);
	/* 41 88 01: mov %al,(%r9): REX.B extends rm */
	const uint8_t c[] = { 0x41, 0x88, 0x01 };
	assert_int_equal(x86_decode(c, sizeof(c), 64, &in), 0);
	assert_int_equal(in.rm, 9);
	/* 16 prefixes: longer than 15 bytes is invalid */
	uint8_t d[20];
	memset(d, 0x66, sizeof(d));
	assert_int_equal(x86_decode(d, sizeof(d), 64, &in), -1);
	/* 64 8b 00: fs override */
	const uint8_t e[] = { 0x64, 0x8b, 0x00 };
	assert_int_equal(x86_decode(e, sizeof(e), 64, &in), 0);
	assert_int_equal(in.seg, 4);
}

/* A REX prefix counts only right before the opcode (SDM Vol. 2, 2.2.1):
 * a legacy prefix after it cancels it, a second REX replaces it.  Found by
 * reading the code (issue 11) and by tests/fuzz/fuzz_decode.c. */
static void rex_position(void **state)
{
	(void)state;
	struct x86_insn in;
	/* 48 66 c7 07 11 22: movw $0x2211,(%rdi) - the REX.W is ignored */
	const uint8_t a[] = { 0x48, 0x66, 0xc7, 0x07, 0x11, 0x22, 0x90, 0x90 };
	assert_int_equal(x86_decode(a, sizeof(a), 64, &in), 0);
	assert_int_equal(in.length, 6);
	assert_int_equal(in.rex, 0);
	assert_int_equal(in.operand_size, 2);
	assert_int_equal(in.opcode, 0xc7);
	assert_int_equal(in.imm_size, 2);
	/* 66 48 c7 07 ...: REX last, it counts: movq $imm32,(%rdi) */
	const uint8_t b[] = { 0x66, 0x48, 0xc7, 0x07, 0x11, 0x22, 0x33, 0x44 };
	assert_int_equal(x86_decode(b, sizeof(b), 64, &in), 0);
	assert_int_equal(in.length, 8);
	assert_int_equal(in.rex, 0x48);
	assert_int_equal(in.operand_size, 8);
	/* 40 48 89 c3: two REX, the last one counts: mov %rax,%rbx */
	const uint8_t c[] = { 0x40, 0x48, 0x89, 0xc3 };
	assert_int_equal(x86_decode(c, sizeof(c), 64, &in), 0);
	assert_int_equal(in.length, 4);
	assert_int_equal(in.rex, 0x48);
	assert_int_equal(in.operand_size, 8);
	/* 48 41 b8 imm32: mov $imm32,%r8d - REX.W of the first REX is gone */
	const uint8_t d[] = { 0x48, 0x41, 0xb8, 0x78, 0x56, 0x34, 0x12, 0x90, 0x90, 0x90, 0x90 };
	assert_int_equal(x86_decode(d, sizeof(d), 64, &in), 0);
	assert_int_equal(in.length, 7);
	assert_int_equal(in.rex, 0x41);
	assert_int_equal(in.operand_size, 4);
	/* 48 f3 ab: rep stos %eax - the REX before F3 does not make it STOSQ */
	const uint8_t e[] = { 0x48, 0xf3, 0xab };
	assert_int_equal(x86_decode(e, sizeof(e), 64, &in), 0);
	assert_int_equal(in.length, 3);
	assert_int_equal(in.rep, 0xf3);
	assert_int_equal(in.operand_size, 4);
	/* 41 67 8b 00: mov (%eax),%eax - 67 after the REX still sets the address size */
	const uint8_t f[] = { 0x41, 0x67, 0x8b, 0x00 };
	assert_int_equal(x86_decode(f, sizeof(f), 64, &in), 0);
	assert_int_equal(in.length, 4);
	assert_int_equal(in.address_size, 4);
	assert_int_equal(in.rm, 0);
	/* Outside 64-bit mode 40-4F are INC/DEC, not prefixes. */
	assert_int_equal(x86_decode(c, sizeof(c), 32, &in), 0);
	assert_int_equal(in.length, 1);
	assert_int_equal(in.opcode, 0x40);
}

/* In 64-bit mode ES/CS/SS/DS prefixes are null prefixes: only FS and GS
 * override (SDM Vol. 1, 3.3.7.1).  Found by tests/fuzz/fuzz_decode.c. */
static void segment_64(void **state)
{
	(void)state;
	struct x86_insn in;
	const uint8_t a[] = { 0x26, 0x8b, 0x00 }; /* es mov (%rax),%eax */
	assert_int_equal(x86_decode(a, sizeof(a), 64, &in), 0);
	assert_int_equal(in.length, 3);
	assert_int_equal(in.seg, -1);
	assert_int_equal(x86_decode(a, sizeof(a), 32, &in), 0);
	assert_int_equal(in.seg, 0);
	const uint8_t b[] = { 0x64, 0x26, 0x8b, 0x00 }; /* fs, then a null prefix */
	assert_int_equal(x86_decode(b, sizeof(b), 64, &in), 0);
	assert_int_equal(in.seg, 4);
	assert_int_equal(x86_decode(b, sizeof(b), 32, &in), 0);
	assert_int_equal(in.seg, 0); /* outside 64-bit mode the last one wins */
	const uint8_t c[] = { 0x2e, 0x65, 0x3e, 0xa4 }; /* gs movsb */
	assert_int_equal(x86_decode(c, sizeof(c), 64, &in), 0);
	assert_int_equal(in.length, 4);
	assert_int_equal(in.seg, 5);
}

/* MOV to/from CRn/DRn (0F 20-23) ignore ModRM.mod: a register operand,
 * no SIB or displacement, whatever the mod bits.  Found by the fuzzer. */
static void mov_cr_dr(void **state)
{
	(void)state;
	struct x86_insn in;
	const uint8_t a[] = { 0x0f, 0x20, 0x04, 0x90, 0x90 }; /* mov %cr0,%rsp with mod 00 */
	assert_int_equal(x86_decode(a, sizeof(a), 64, &in), 0);
	assert_int_equal(in.length, 3);
	assert_int_equal(in.mod, 3);
	assert_false(in.has_sib);
	const uint8_t b[] = { 0x0f, 0x22, 0x98, 0x90, 0x90, 0x90, 0x90 }; /* mov %eax,%cr3, mod 10 */
	assert_int_equal(x86_decode(b, sizeof(b), 32, &in), 0);
	assert_int_equal(in.length, 3);
	assert_int_equal(in.disp_size, 0);
	const uint8_t c[] = { 0x0f, 0x21, 0x46, 0x90, 0x90 }; /* mov %db0,%si in 16-bit code, mod 01 */
	assert_int_equal(x86_decode(c, sizeof(c), 16, &in), 0);
	assert_int_equal(in.length, 3);
}

/* EVEX: W gives a 64-bit operand size as VEX.W does; maps 5 and 6
 * (AVX512-FP16) exist.  Found by the fuzzer. */
static void evex(void **state)
{
	(void)state;
	struct x86_insn in;
	const uint8_t a[] = { 0x62, 0xf1, 0xfd, 0x48, 0x7f, 0x00 }; /* vmovdqa64 %zmm0,(%rax) */
	assert_int_equal(x86_decode(a, sizeof(a), 64, &in), 0);
	assert_int_equal(in.length, 6);
	assert_int_equal(in.vex, 4);
	assert_int_equal(in.operand_size, 8);
	const uint8_t b[] = { 0x62, 0xf5, 0x6c, 0x48, 0x58, 0xd9 }; /* vaddph %zmm1,%zmm2,%zmm3 */
	assert_int_equal(x86_decode(b, sizeof(b), 64, &in), 0);
	assert_int_equal(in.length, 6);
	assert_int_equal(in.map, 5);
	const uint8_t c[] = { 0x62, 0xf5, 0x7e, 0x08, 0x11, 0x48, 0x08 }; /* vmovsh %xmm1,0x10(%rax) */
	assert_int_equal(x86_decode(c, sizeof(c), 64, &in), 0);
	assert_int_equal(in.length, 7);
	assert_int_equal(in.map, 5);
	assert_int_equal(in.opcode, 0x11);
	const uint8_t d[] = { 0x62, 0xf6, 0x6d, 0x48, 0x98, 0xd9 }; /* vfmadd132ph %zmm1,%zmm2,%zmm3 */
	assert_int_equal(x86_decode(d, sizeof(d), 64, &in), 0);
	assert_int_equal(in.length, 6);
	assert_int_equal(in.map, 6);
	const uint8_t e[] = { 0x62, 0xf4, 0x6c, 0x48, 0x58, 0xd9 }; /* map 4: no such map */
	assert_int_equal(x86_decode(e, sizeof(e), 64, &in), -1);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(lengths),
		cmocka_unit_test(truncated_input),
		cmocka_unit_test(fields),
		cmocka_unit_test(rex_position),
		cmocka_unit_test(segment_64),
		cmocka_unit_test(mov_cr_dr),
		cmocka_unit_test(evex),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
