/* entry.S - the world switch: VM exit entry and VM entry.
 *
 * On a VM exit the CPU loads HOST_RSP and HOST_RIP from the VMCS: the stack
 * top holds the vCPU pointer (see setup_host_state).  The stub saves the
 * guest's general registers into vcpu->gpr[] (struct vcpu starts with them,
 * in x86 register-number order), calls vmx_handle_exit(vcpu), restores the
 * registers and resumes the guest.  Interrupts are off in Nestor (a VM exit
 * clears RFLAGS). */

#define GPR(n) (8 * (n))
#define VCPU_ENTRY_LAUNCH 128 /* struct vcpu, after gpr[16] (vcpu.h) */
#define VCPU_ENTRY_RECHECK 129
#define VCPU_VNMI_STATE 130

/* Loads the guest's general registers from the vCPU at %rax, RAX last. */
.macro LOAD_GUEST_GPRS
	movq GPR(1)(%rax), %rcx
	movq GPR(2)(%rax), %rdx
	movq GPR(3)(%rax), %rbx
	movq GPR(5)(%rax), %rbp
	movq GPR(6)(%rax), %rsi
	movq GPR(7)(%rax), %rdi
	movq GPR(8)(%rax), %r8
	movq GPR(9)(%rax), %r9
	movq GPR(10)(%rax), %r10
	movq GPR(11)(%rax), %r11
	movq GPR(12)(%rax), %r12
	movq GPR(13)(%rax), %r13
	movq GPR(14)(%rax), %r14
	movq GPR(15)(%rax), %r15
	movq GPR(0)(%rax), %rax
.endm

	.text
	.code64
	.globl vmx_exit_stub
vmx_exit_stub:
	pushq %rax
	movq 8(%rsp), %rax               /* the vCPU */
	movq %rcx, GPR(1)(%rax)
	movq %rdx, GPR(2)(%rax)
	movq %rbx, GPR(3)(%rax)
	movq %rbp, GPR(5)(%rax)
	movq %rsi, GPR(6)(%rax)
	movq %rdi, GPR(7)(%rax)
	movq %r8, GPR(8)(%rax)
	movq %r9, GPR(9)(%rax)
	movq %r10, GPR(10)(%rax)
	movq %r11, GPR(11)(%rax)
	movq %r12, GPR(12)(%rax)
	movq %r13, GPR(13)(%rax)
	movq %r14, GPR(14)(%rax)
	movq %r15, GPR(15)(%rax)
	popq GPR(0)(%rax)
	movq %rax, %rdi
	xorl %ebp, %ebp                  /* a clean frame chain for backtraces */
	call vmx_handle_exit              /* EAX: 1 = VMLAUNCH, 0 = VMRESUME */
enter_current:
	movq (%rsp), %rdi                /* the vCPU again */
	movb %al, VCPU_ENTRY_LAUNCH(%rdi)
	cmpb $0, VCPU_VNMI_STATE(%rdi)   /* Bochs' NMI blocking (vmx/exit.c) */
	jne 4f
/* An NMI that Nestor takes from here to the entry instruction restarts
 * here (on_nmi, vmx/vm.c): what it brought - a kick's requests, an NMI
 * for a guest - is looked at before the entry, never left for an exit
 * that may not come. */
	.globl vmx_entry_window
vmx_entry_window:
	movq (%rsp), %rax
	cmpb $0, VCPU_ENTRY_RECHECK(%rax)
	jne 3f
	cmpb $0, VCPU_ENTRY_LAUNCH(%rax)
	LOAD_GUEST_GPRS                  /* MOVs only: the flags survive */
	jne 1f
	vmresume
	jmp 2f
1:	vmlaunch
	.globl vmx_entry_window_end
vmx_entry_window_end:
2:	/* The entry failed (VMfail): C decides; it returns only when it has
	 * a VMCS to enter instead (EAX as above). */
	movq (%rsp), %rdi
	call vmx_entry_failed
	jmp enter_current
3:	movq %rax, %rdi
	call vmx_entry_recheck           /* EAX as above */
	jmp enter_current
4:	call vmx_vnmi_entry
	jmp vmx_entry_window

/* vmx_park_halt(requests): HLT unless *requests is set; an NMI (a kick)
 * wakes it.  An NMI taken from the look to the HLT restarts at the look
 * (on_nmi, vmx/vm.c), so that a kick is never slept through. */
	.globl vmx_park_halt, vmx_park_window, vmx_park_window_end
vmx_park_halt:
vmx_park_window:
	cmpl $0, (%rdi)
	jne 1f
	hlt
vmx_park_window_end:
1:	ret

/* vmx_launch_on(vcpu, host_stack_top): the first entry, from the boot
 * stack: switch to the vCPU's host stack (whose top holds the vCPU) and
 * VMLAUNCH the current VMCS. */
	.globl vmx_launch_on
vmx_launch_on:
	movq %rsi, %rsp
	movl $1, %eax
	jmp enter_current

/* vmx_unblock_nmis(): after a VM exit caused by an NMI the CPU blocks NMIs
 * until the next IRET (as if the NMI had been delivered to the host).  Nestor
 * has no NMI handler to return from, so it executes an IRET to itself. */
	.globl vmx_unblock_nmis
vmx_unblock_nmis:
	movq %rsp, %rax
	pushq $0x10                      /* SS: SEL_DATA */
	pushq %rax
	pushfq
	pushq $0x08                      /* CS: SEL_CODE64 */
	leaq 1f(%rip), %rax
	pushq %rax
	iretq
1:	ret
