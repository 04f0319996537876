# Nestor - top-level build.  `make help` lists the targets.
#
# Three kinds of code, three sets of flags:
#   hypervisor  freestanding x86-64, higher half, -mcmodel=kernel
#   guest       freestanding x86-64 test kernels, identity-mapped low memory
#   host        Linux tools and unit tests, with ASan/UBSan for the tests

BUILD     ?= build
CC        ?= gcc
HOSTCC    ?= gcc
CPU       ?= corei7_skylake_x
CPUS      ?= 2
JOBS      ?= 2
V         ?= 0
Q         := $(if $(filter 1,$(V)),,@)

VERSION   := $(shell git describe --always --dirty 2>/dev/null || echo dev)
WARN      := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes -Wmissing-prototypes

KERNEL_COMMON := -std=gnu11 -O2 -g -ffreestanding -fno-stack-protector -fno-pic -fno-pie -mno-red-zone \
	-mgeneral-regs-only -fno-omit-frame-pointer -fno-asynchronous-unwind-tables -fno-strict-aliasing \
	-fno-common $(WARN) -I. -MMD -MP
# CHECKED=1 (the default) adds Nestor's internal assertions (vmx/vmcs_own.h).
CHECKED      ?= 1
HV_CFLAGS    := $(KERNEL_COMMON) -mcmodel=kernel -DNESTOR_VERSION='"$(VERSION)"' $(if $(filter 1,$(CHECKED)),-DNESTOR_CHECKED)
GUEST_CFLAGS := $(KERNEL_COMMON) -mcmodel=small
KERNEL_LDFLAGS := -nostdlib -static -z max-page-size=0x1000 -z noexecstack --no-warn-rwx-segments

HOST_CFLAGS  := -std=gnu11 -O1 -g $(WARN) -Wno-format-truncation -I. -MMD -MP
SAN          := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

# --- sources ---------------------------------------------------------------
LIB_SHARED := lib/format.c lib/string.c lib/serial.c lib/mb2.c lib/cmdline.c lib/acpi.c
HV_SRCS    := $(wildcard boot/*.S boot/*.c mm/*.c vmx/*.c vmx/*.S nested/*.c loader/*.c hypercall/*.c snap/*.c \
	sec/*.c net/*.c debug/*.c) \
	$(LIB_SHARED) lib/log.c lib/isr.S lib/x86_decode.c
HV_OBJS    := $(patsubst %,$(BUILD)/hv/%.o,$(HV_SRCS))

GUEST_SRCS := $(wildcard guest/*.S guest/*.c guest/tests/*.S guest/tests/*.c) $(LIB_SHARED) lib/isr.S
GUEST_OBJS := $(patsubst %,$(BUILD)/guest/%.o,$(GUEST_SRCS))

UNIT_TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
TOOLS      := $(BUILD)/tools/nestor-run $(BUILD)/tools/runtests $(BUILD)/tools/bench $(BUILD)/tools/nestor-model \
	$(BUILD)/tools/mkcpio $(BUILD)/tools/fuzz-vmx $(BUILD)/tools/cov-report $(BUILD)/tools/gdb-interrupt \
	$(BUILD)/tools/exit-trace

# The Linux guest: a Debian kernel (fetched by scripts/setup, not built here,
# so nothing in `all` needs it) and an initramfs with static busybox.
LINUX_KERNEL ?= /var/cache/nestor/linux/vmlinuz
BUSYBOX      ?= /bin/busybox
LINUX_GUEST  := $(BUILD)/linux/nestor-levels $(BUILD)/linux/initramfs.cpio

.PHONY: all iso run run-tests test test-deep bench prof unit-tests check-tools clean help linux-guest cov cov-suites fuzz-vmx fail-alloc kvm-params kvm-suites demo-secure demo-uefi
BOOTSECTOR := $(if $(wildcard guest/bootsector/boot.S),$(BUILD)/bootsector.img)
all: $(BUILD)/nestor.elf $(BUILD)/nestor.efi $(BUILD)/guest.elf $(BUILD)/flat.bin $(BOOTSECTOR) $(TOOLS) $(LINUX_GUEST)

help:
	@echo "make            build the hypervisor, the guest test kernel and the host tools"
	@echo "make iso        build $(BUILD)/nestor.iso (GRUB, BIOS boot) for USB sticks and QEMU"
	@echo "make linux-guest  build the Linux guest's initramfs, $(BUILD)/linux/initramfs.cpio"
	@echo "                (the kernel, LINUX_KERNEL=$(LINUX_KERNEL), comes from scripts/setup)"
	@echo "make run        Debian's Linux on DEPTH=$(DEPTH) Nestor levels in Bochs, console streamed (CPU=$(CPU), CPUS=$(CPUS))"
	@echo "make run-tests  the guest test kernel's suites on DEPTH=$(DEPTH) Nestor levels, streamed (CPUS=$(RUN_TESTS_CPUS))"
	@echo "make test       unit tests + every in-emulator test; ends with 'N passed, N failed'"
	@echo "make test-deep  the guest suites on stacks of 4 to 8 Nestors (longer)"
	@echo "make bench      exact cost figures (bench NAME VALUE), table in $(BUILD)/bench/"
	@echo "make fuzz       the host fuzzers, FUZZ_EXECS=$(FUZZ_EXECS) runs each (or FUZZ_TIME=s), JOBS at once"
	@echo "make fuzz-vmx   differential VMX fuzzing, SEEDS=$(SEEDS) CASES=$(CASES) COV=$(COV) (fuzz NAME VALUE lines)"
	@echo "make fail-alloc fault injection: every start-up allocation of Nestor's pool and a sample of the rest fail in turn"
	@echo "make kvm-params Linux's KVM modules loaded at depth 0 and 1: kvm_intel's parameters compared (kvm NAME VALUE lines)"
	@echo "make demo-uefi  Debian's Linux on 2 Nestors, all started from the UEFI shell of OVMF in Bochs (docs/uefi.md)"
	@echo "make demo-secure  one security function per level (docs/security-functions.md): Linux on 2 Nestors,"
	@echo "                level 0 guards its debug NIC and streams its log over UDP, level 1 checks Linux's e1000"
	@echo "                bring-up; Linux talks to the host through it; then a rogue program is blocked"
	@echo "make kvm-suites Linux's KVM runs the guest suites (KVM_SUITE=cr,exceptions) on bare Bochs and on Nestor: compared"
	@echo "make prof       the profiling build of Nestor, $(BUILD)/prof/nestor.elf (phases of nested transitions)"
	@echo "make cov        the coverage build of Nestor, $(BUILD)/cov/nestor.elf"
	@echo "make cov-suites coverage of nested/ and vmx/ by the suites and the VMX fuzzer (cov NAME VALUE lines)"
	@echo "make clean      remove $(BUILD)/"

# --- hypervisor ------------------------------------------------------------
# Objects depend on the flags they were built with (CHECKED=0/1 rebuilds).
HV_FLAGS_STAMP := $(BUILD)/hv/flags.$(shell echo '$(HV_CFLAGS)' | md5sum | cut -c1-12)
$(HV_FLAGS_STAMP):
	@mkdir -p $(dir $@) && rm -f $(BUILD)/hv/flags.* && touch $@

$(BUILD)/hv/%.c.o: %.c $(HV_FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(HV_CFLAGS) -c $< -o $@
$(BUILD)/hv/%.S.o: %.S $(HV_FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  AS      $<"
	$(Q)$(CC) $(HV_CFLAGS) -D__ASSEMBLY__ -c $< -o $@

$(BUILD)/nestor.elf: $(HV_OBJS) boot/linker.ld
	@echo "  LD      $@"
	$(Q)ld $(KERNEL_LDFLAGS) -T boot/linker.ld -o $@ $(HV_OBJS)

# --- nestor.efi: Nestor as a UEFI application (efi/, docs/uefi.md) ----------
# A PE32+ built with Debian's gnu-efi (its crt0 and self-relocation only);
# Nestor's ELF image, stripped of debug information, is embedded.
EFI_CFLAGS := -std=gnu11 -O2 -ffreestanding -fpic -fshort-wchar -mno-red-zone -fno-stack-protector \
	-mgeneral-regs-only -maccumulate-outgoing-args -fno-strict-aliasing -DGNU_EFI_USE_MS_ABI -DNESTOR_EFI_APP \
	-isystem /usr/include/efi -isystem /usr/include/efi/x86_64 $(WARN) -I. -MMD -MP
EFI_SRCS := efi/loader.c efi/handoff.S lib/string.c lib/format.c lib/cmdline.c
EFI_OBJS := $(patsubst %,$(BUILD)/efi/%.o,$(EFI_SRCS)) $(BUILD)/efi/blob.o

$(BUILD)/efi/%.c.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (UEFI)"
	$(Q)$(CC) $(EFI_CFLAGS) -c $< -o $@
$(BUILD)/efi/%.S.o: %.S
	@mkdir -p $(dir $@)
	@echo "  AS      $< (UEFI)"
	$(Q)$(CC) $(EFI_CFLAGS) -D__ASSEMBLY__ -c $< -o $@
$(BUILD)/efi/nestor-image.elf: $(BUILD)/nestor.elf
	@mkdir -p $(dir $@)
	$(Q)objcopy --strip-debug $< $@
$(BUILD)/efi/blob.o: efi/blob.S $(BUILD)/efi/nestor-image.elf
	$(Q)$(CC) -DNESTOR_ELF='"$(BUILD)/efi/nestor-image.elf"' -c $< -o $@
$(BUILD)/efi/nestor.so: $(EFI_OBJS)
	$(Q)ld -nostdlib -znocombreloc -T /usr/lib/elf_x86_64_efi.lds -shared -Bsymbolic \
		/usr/lib/crt0-efi-x86_64.o $(EFI_OBJS) -L/usr/lib -lgnuefi -o $@
$(BUILD)/nestor.efi: $(BUILD)/efi/nestor.so
	@echo "  EFI     $@"
	$(Q)objcopy -j .text -j .sdata -j .data -j .dynamic -j .dynsym -j .rel -j .rela -j .rel.* -j .rela.* \
		-j .reloc --target efi-app-x86_64 --subsystem=10 $< $@

# --- guest test kernel -----------------------------------------------------
$(BUILD)/guest/%.c.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (guest)"
	$(Q)$(CC) $(GUEST_CFLAGS) -c $< -o $@
$(BUILD)/guest/%.S.o: %.S
	@mkdir -p $(dir $@)
	@echo "  AS      $< (guest)"
	$(Q)$(CC) $(GUEST_CFLAGS) -D__ASSEMBLY__ -c $< -o $@

$(BUILD)/guest.elf: $(GUEST_OBJS) guest/linker.ld
	@echo "  LD      $@"
	$(Q)ld $(KERNEL_LDFLAGS) -T guest/linker.ld -o $@ $(GUEST_OBJS)

# --- real-mode boot-sector guest (a disk image the BIOS or Nestor boots) ---
# guest/bootsector/boot.S is 16-bit code linked at 0x7c00; the image is its
# first sector plus the data sectors it reads back through BIOS disk services.
$(BUILD)/bootsector.img: guest/bootsector/boot.S guest/bootsector/linker.ld
	@mkdir -p $(BUILD)/bootsector
	@echo "  AS      $< (boot sector)"
	$(Q)$(CC) -m32 -ffreestanding -nostdlib -c $< -o $(BUILD)/bootsector/boot.o
	$(Q)ld -m elf_i386 -T guest/bootsector/linker.ld --oformat binary -o $@ $(BUILD)/bootsector/boot.o

# --- flat-binary kernel (no ELF: multiboot a.out kludge / multiboot2 address tag) ---
$(BUILD)/flat.bin: guest/flat/flat.S guest/flat/linker.ld
	@mkdir -p $(BUILD)/flat
	@echo "  AS      $< (flat kernel)"
	$(Q)$(CC) -m32 -ffreestanding -nostdlib -c $< -o $(BUILD)/flat/flat.o
	$(Q)ld -m elf_i386 -T guest/flat/linker.ld --oformat binary -o $@ $(BUILD)/flat/flat.o

# --- Linux guest: nestor-levels and the busybox initramfs -------------------
# nestor-levels is a Linux program, static because the initramfs has no libc.
linux-guest: $(LINUX_GUEST)
	@test -f $(LINUX_KERNEL) || echo "note: no Linux kernel at $(LINUX_KERNEL); sudo scripts/setup fetches it"

$(BUILD)/linux/nestor-levels: guest/linux/nestor-levels.c hypercall/abi.h
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@ (static, Linux guest)"
	$(Q)$(HOSTCC) -std=gnu11 -static -O2 $(WARN) -I. -o $@ $<

$(BUILD)/linux/nic-rx: guest/linux/nic-rx.c
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@ (static, Linux guest)"
	$(Q)$(HOSTCC) -std=gnu11 -static -O2 $(WARN) -I. -o $@ $<

$(BUILD)/linux/kvm-run: guest/linux/kvm-run.c
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@ (static, Linux guest)"
	$(Q)$(HOSTCC) -std=gnu11 -static -O2 $(WARN) -I. -o $@ $<

# --- Linux's KVM on Nestor (issue 13): kvm_intel's parameters at depth 0 and 1 ---
# The kernel's own KVM modules (scripts/setup keeps them in $(KVM_DIR)) in a
# probe initramfs whose /init loads them and prints the parameters kvm_intel
# chose; the harness compares the "kvm: " lines of the two depths.  Prints
# `kvm PARAMS_DIFFERING_D1 N` and the differences.
KVM_DIR ?= $(dir $(LINUX_KERNEL))kvm
$(BUILD)/linux/kvm-params.cpio: guest/linux/kvm-params.manifest guest/linux/kvm-params.init \
		$(BUILD)/linux/nestor-levels $(BUILD)/tools/mkcpio $(wildcard $(KVM_DIR)/*.ko)
	@echo "  CPIO    $@"
	$(Q)test -f $(KVM_DIR)/kvm-intel.ko || { echo "error: no $(KVM_DIR)/kvm-intel.ko: run scripts/setup"; exit 1; }
	$(Q)BUILD=$(BUILD) BUSYBOX=$(BUSYBOX) KVM=$(KVM_DIR) $(BUILD)/tools/mkcpio $< $@

kvm-params: all $(BUILD)/linux/kvm-params.cpio
	-$(BUILD)/tools/nestor-run --name kvm-params --linux --megs 512 --timeout 900 --compare-only '^kvm: ' \
		--guest "$(LINUX_KERNEL) console=ttyS0,115200 quiet idle=halt" --module $(BUILD)/linux/kvm-params.cpio --depths 0,1
	@grep -h '^kvm: ' $(BUILD)/runs/kvm-params/depth0/transcript.txt > $(BUILD)/runs/kvm-params/d0.txt
	@grep -h '^kvm: ' $(BUILD)/runs/kvm-params/depth1/transcript.txt > $(BUILD)/runs/kvm-params/d1.txt
	@echo "kvm PARAMS_D0 $$(wc -l < $(BUILD)/runs/kvm-params/d0.txt)"
	@echo "kvm PARAMS_DIFFERING_D1 $$(diff $(BUILD)/runs/kvm-params/d0.txt $(BUILD)/runs/kvm-params/d1.txt | grep -c '^<')"
	@diff $(BUILD)/runs/kvm-params/d0.txt $(BUILD)/runs/kvm-params/d1.txt | sed -n 's/^</  depth 0:/p; s/^>/  depth 1:/p'

# --- Linux's KVM running the guest suites (issue 13) --------------------------
# Linux with the kernel's KVM modules runs the guest test kernel as its KVM
# guest (guest/linux/kvm-run.c): on bare Bochs (the KVM guest at depth 1) and
# on one Nestor (depth 2); the KVM guest's lines ("kvm-guest: ") must be the
# same at both.  Then the same suites directly on Bochs: the lines where KVM's
# guest sees something else (KVM's own deviations) are counted and listed.
# KVM_SUITE picks the suites.
KVM_SUITE ?= cr,exceptions
$(BUILD)/linux/kvm-suites.cpio: guest/linux/kvm-suites.manifest guest/linux/init \
		$(BUILD)/linux/nestor-levels $(BUILD)/linux/kvm-run $(BUILD)/guest.elf $(BUILD)/nestor.elf \
		$(BUILD)/tools/mkcpio \
		$(wildcard $(KVM_DIR)/*.ko)
	@mkdir -p $(dir $@)
	@echo "  CPIO    $@"
	$(Q)test -f $(KVM_DIR)/kvm-intel.ko || { echo "error: no $(KVM_DIR)/kvm-intel.ko: run scripts/setup"; exit 1; }
	$(Q)BUILD=$(BUILD) BUSYBOX=$(BUSYBOX) KVM=$(KVM_DIR) $(BUILD)/tools/mkcpio $< $@

kvm-suites: all $(BUILD)/linux/kvm-suites.cpio
	$(BUILD)/tools/nestor-run --name kvm-suites --linux --megs 512 --timeout 1800 --compare-only '^kvm-guest: ' \
		--guest "$(LINUX_KERNEL) console=ttyS0,115200 quiet idle=halt kvm_suite=$(KVM_SUITE)" \
		--module $(BUILD)/linux/kvm-suites.cpio --depths 0,1
	$(BUILD)/tools/nestor-run --name kvm-suites-bare --guest "$(BUILD)/guest.elf suite=$(KVM_SUITE)" --depths 0
	@grep -v '^env: ' $(BUILD)/runs/kvm-suites-bare/depth0/transcript.txt | tr -d '\r' | sort > $(BUILD)/runs/kvm-suites/bare.txt
	@sed -n 's/^kvm-guest: //p' $(BUILD)/runs/kvm-suites/depth1/transcript.txt | tr -d '\r' | sort > $(BUILD)/runs/kvm-suites/kvm.txt
	@echo "kvm GUEST_LINES $$(wc -l < $(BUILD)/runs/kvm-suites/kvm.txt)"
	@echo "kvm GUEST_LINES_DIFFERING_FROM_BOCHS $$(diff $(BUILD)/runs/kvm-suites/bare.txt $(BUILD)/runs/kvm-suites/kvm.txt | grep -c '^>')"
	@diff $(BUILD)/runs/kvm-suites/bare.txt $(BUILD)/runs/kvm-suites/kvm.txt | sed -n 's/^</  bare Bochs:/p; s/^>/  KVM guest: /p'

# The manifest names its sources through $${BUILD} and $${BUSYBOX}.  A
# dynamically linked busybox would leave the guest without an init that runs.
$(BUILD)/linux/initramfs.cpio: guest/linux/initramfs.manifest guest/linux/init $(BUILD)/linux/nestor-levels \
		$(BUILD)/tools/mkcpio $(wildcard $(BUSYBOX))
	@echo "  CPIO    $@"
	$(Q)test -f $(BUSYBOX) || { echo "error: no $(BUSYBOX): install busybox-static (sudo scripts/setup)"; exit 1; }
	$(Q)if readelf -l $(BUSYBOX) | grep -q 'program interpreter'; then \
		echo "error: $(BUSYBOX) is dynamically linked: install busybox-static"; exit 1; fi
	$(Q)BUILD=$(BUILD) BUSYBOX=$(BUSYBOX) $(BUILD)/tools/mkcpio $< $@

# The NIC archive (issue 14): the kernel's e1000 module from scripts/setup.
NETMOD_DIR ?= $(dir $(LINUX_KERNEL))net
# Linux through UEFI: efivarfs, to read the firmware's variables (docs/uefi.md).
$(BUILD)/linux/efi.cpio: guest/linux/efi.manifest $(BUILD)/tools/mkcpio $(wildcard $(NETMOD_DIR)/efivarfs.ko)
	@echo "  CPIO    $@"
	$(Q)test -f $(NETMOD_DIR)/efivarfs.ko || { echo "error: no $(NETMOD_DIR)/efivarfs.ko: run scripts/setup"; exit 1; }
	$(Q)mkdir -p $(dir $@)
	$(Q)BUILD=$(BUILD) NETMOD=$(NETMOD_DIR) $(BUILD)/tools/mkcpio $< $@

$(BUILD)/linux/net.cpio: guest/linux/net.manifest guest/linux/nic-test guest/linux/udhcpc.script guest/linux/nic-echo \
		$(BUILD)/linux/nic-rx $(BUILD)/tools/mkcpio $(wildcard $(NETMOD_DIR)/*.ko)
	@echo "  CPIO    $@"
	$(Q)test -f $(NETMOD_DIR)/e1000.ko || { echo "error: no $(NETMOD_DIR)/e1000.ko: run scripts/setup"; exit 1; }
	$(Q)mkdir -p $(dir $@)
	$(Q)BUILD=$(BUILD) NETMOD=$(NETMOD_DIR) $(BUILD)/tools/mkcpio $< $@

# Issue 14's demonstration (docs/security-functions.md, "The demonstration").
# Run 1: Linux (depth 2) on two Nestors, against the same Linux on bare
# Bochs: level 0 drives the debug NIC (ne2k, 00:02.0), guards it and streams
# its log to the harness over UDP (--debug-nic checks every line); level 1
# checks Linux's e1000 (00:03.0) bring-up and grants it; Linux gets its
# address from slirp's DHCP and answers the harness's line on TCP (--nic-peer).
# Run 2: a rogue program pokes the e1000's registers before the driver:
# level 1 blocks the device for good and says why; the driver finds nothing.
DEMO_NIC := --bochs-line "pci: enabled=1, chipset=i440fx, slot2=e1000" \
	--bochs-line "e1000: mac=52:54:00:12:34:56, ethmod=slirp, script=tests/data/slirp-closed.conf"
demo-secure: all $(BUILD)/linux/net.cpio
	$(BUILD)/tools/nestor-run --name demo-secure --linux --megs 512 --timeout 1800 --debug-nic \
		--level-args 0 "debugnic=on" --level-args 1 "drvcheck=00:03.0" --nic-peer "hello from the host" \
		--nestor "$(BUILD)/nestor.elf hypervisor_bit=off" --ignore "^nestor-levels: " \
		--guest "$(LINUX_KERNEL) console=ttyS0,115200 quiet nic_test=serve nic_dev=00:03.0" \
		--module $(BUILD)/linux/initramfs.cpio --module $(BUILD)/linux/net.cpio --depths 0,2
	$(BUILD)/tools/nestor-run --name demo-secure-rogue --linux --megs 512 --timeout 1800 --debug-nic $(DEMO_NIC) \
		--level-args 0 "debugnic=on" --level-args 1 "drvcheck=00:03.0" \
		--expect-line '^nestor\[1\]: warning: drvcheck: 00:03.0: level 2 writes BAR0\+0xd0 .* blocked for good' \
		--guest "$(LINUX_KERNEL) console=ttyS0,115200 quiet nic_test=rogue nic_expect=fail nic_dev=00:03.0" \
		--module $(BUILD)/linux/initramfs.cpio --module $(BUILD)/linux/net.cpio --depth 2

# --- UEFI (issue 15, docs/uefi.md): Linux on 2 Nestors chained from OVMF's shell ---
# startup.nsh starts nestor.efi twice - each turns the running firmware into its
# guest - then Linux through its EFI stub; streamed, judged like any run.
demo-uefi: all $(BUILD)/linux/efi.cpio
	$(BUILD)/tools/nestor-run --name demo-uefi --firmware uefi --linux --megs 512 --timeout 900 --stream \
		--guest "$(LINUX_KERNEL) console=ttyS0,115200 quiet nestor_expect_levels=2" \
		--module $(BUILD)/linux/initramfs.cpio --module $(BUILD)/linux/efi.cpio --depth 2

# --- host tools ------------------------------------------------------------
$(BUILD)/tools/%: tools/%.c tools/*.h
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@"
	$(Q)$(HOSTCC) $(HOST_CFLAGS) -o $@ $(filter %.c,$^)

# --- unit tests (host, cmocka, ASan+UBSan) ---------------------------------
# Each tests/test_X.c lists the sources it tests in a "// sources:" line.
$(BUILD)/tests/%: tests/%.c
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@ (cmocka, ASan+UBSan)"
	$(Q)$(HOSTCC) $(HOST_CFLAGS) $(SAN) -DHOST_TEST -o $@ $< \
		$(shell sed -n 's|^// sources: ||p' $<) -lcmocka

unit-tests: $(UNIT_TESTS)

# --- host fuzzers (clang's libFuzzer, ASan+UBSan; docs/testing.md) ----------
# Each tests/fuzz/fuzz_X.c names the project sources it links in a
# "// sources:" line (and extra libraries in "// libs:").  `make fuzz` runs
# every fuzzer for FUZZ_EXECS executions (or FUZZ_TIME seconds each when
# set), JOBS at once, and prints `fuzz X_EXECS N` / `fuzz X_CRASHES N`;
# `make test` replays the committed corpora (tests/suite.list).
FUZZ_CC    ?= clang
FUZZ_EXECS ?= 10000000
FUZZ_TIME  ?=
FUZZ_CFLAGS := -std=gnu11 -O1 -g $(WARN) -I. -DHOST_TEST \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZERS    := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_DEPS  := $(wildcard tests/fuzz/*.h lib/*.[ch] loader/*.[ch] nested/*.[ch] vmx/*.[ch])

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DEPS)
	@mkdir -p $(dir $@)
	@echo "  CLANG   $@ (libFuzzer, ASan+UBSan)"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(shell sed -n 's|^// sources: ||p' $<) \
		$(shell sed -n 's|^// libs: ||p' $<)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZERS)
fuzz: $(FUZZERS)
	$(Q)bash tests/fuzz/run.sh $(BUILD) $(JOBS) $(FUZZ_EXECS) "$(FUZZ_TIME)" $(FUZZERS)
test: fuzz-build

# --- boot media ------------------------------------------------------------
iso: $(BUILD)/nestor.iso
$(BUILD)/nestor.iso: $(BUILD)/nestor.elf $(BUILD)/guest.elf
	rm -rf $(BUILD)/iso && mkdir -p $(BUILD)/iso/boot/grub
	cp $(BUILD)/nestor.elf $(BUILD)/guest.elf $(BUILD)/iso/boot/
	printf '%s\n' 'set timeout=0' 'set default=0' \
		'menuentry "Nestor with the guest test kernel" {' \
		'  multiboot2 /boot/nestor.elf' \
		'  module2 /boot/guest.elf guest.elf' \
		'  boot' '}' > $(BUILD)/iso/boot/grub/grub.cfg
	grub-mkrescue -o $@ $(BUILD)/iso 2>$(BUILD)/grub-mkrescue.log || (cat $(BUILD)/grub-mkrescue.log; false)

# --- running ---------------------------------------------------------------
# The main demo: Debian's Linux on DEPTH Nestor levels with CPUS CPUs, its
# console streamed.  idle=halt: Bochs 2.7 loses MWAIT wake-ups between CPUs
# (docs/smp.md).
DEPTH ?= 3
run: all
	@test -f $(LINUX_KERNEL) || { echo "error: no Linux kernel at $(LINUX_KERNEL): run scripts/setup (as root), which fetches Debian's linux-image-amd64"; exit 2; }
	$(BUILD)/tools/nestor-run --cpu $(CPU) --cpus $(CPUS) --linux --stream --megs 512 --timeout 1800 --name run \
		--guest "$(LINUX_KERNEL) console=ttyS0,115200 quiet idle=halt" --module $(BUILD)/linux/initramfs.cpio --depth $(DEPTH)

# The guest test kernel's suites on DEPTH Nestor levels, streamed: one CPU
# unless CPUS is given (with several, Bochs itself fails msr.tsc_write).
RUN_TESTS_CPUS := $(if $(filter command line environment,$(origin CPUS)),$(CPUS),1)
run-tests: all
	$(BUILD)/tools/nestor-run --cpu $(CPU) --cpus $(RUN_TESTS_CPUS) --stream --name run-tests --guest "$(BUILD)/guest.elf" --depth $(DEPTH)

test: all unit-tests $(BUILD)/linux/kvm-suites.cpio $(BUILD)/linux/net.cpio $(BUILD)/linux/efi.cpio
	$(BUILD)/tools/runtests -j $(JOBS) tests/suite.list

test-deep: all $(BUILD)/linux/efi.cpio $(BUILD)/linux/kvm-suites.cpio $(BUILD)/linux/net.cpio
	$(BUILD)/tools/runtests -j $(JOBS) tests/deep.list

bench: all $(BUILD)/linux/kvm-suites.cpio $(BUILD)/linux/net.cpio $(BUILD)/prof/nestor.elf
	$(BUILD)/tools/bench --cpu $(CPU) --build $(BUILD)

# --- profiling build of Nestor: the phases of nested transitions (vmx/prof.h) ---
PROF_OBJS := $(patsubst %,$(BUILD)/prof/hv/%.o,$(HV_SRCS))

$(BUILD)/prof/hv/%.c.o: %.c $(HV_FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $< (profile)"
	$(Q)$(CC) $(HV_CFLAGS) -DNESTOR_PROFILE -c $< -o $@
$(BUILD)/prof/hv/%.S.o: %.S $(HV_FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  AS      $< (profile)"
	$(Q)$(CC) $(HV_CFLAGS) -DNESTOR_PROFILE -D__ASSEMBLY__ -c $< -o $@
$(BUILD)/prof/nestor.elf: $(PROF_OBJS) boot/linker.ld
	@echo "  LD      $@"
	$(Q)ld $(KERNEL_LDFLAGS) -T boot/linker.ld -o $@ $(PROF_OBJS)

prof: $(BUILD)/prof/nestor.elf

# --- coverage build of Nestor: nested/ and vmx/ instrumented (lib/cov.h) ---
COV_DIRS  := nested vmx
COV_OBJS  := $(patsubst %,$(BUILD)/cov/hv/%.o,$(HV_SRCS) lib/cov.c)
COV_FLAGS := -fsanitize-coverage=trace-pc

$(BUILD)/cov/hv/%.c.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (coverage)"
	$(Q)$(CC) $(HV_CFLAGS) -DNESTOR_COV $(if $(filter $(addsuffix /%,$(COV_DIRS)),$<),$(COV_FLAGS)) -c $< -o $@
$(BUILD)/cov/hv/%.S.o: %.S
	@mkdir -p $(dir $@)
	@echo "  AS      $< (coverage)"
	$(Q)$(CC) $(HV_CFLAGS) -DNESTOR_COV -D__ASSEMBLY__ -c $< -o $@
$(BUILD)/cov/nestor.elf: $(COV_OBJS) boot/linker.ld
	@echo "  LD      $@"
	$(Q)ld $(KERNEL_LDFLAGS) -T boot/linker.ld -o $@ $(COV_OBJS)

cov: $(BUILD)/cov/nestor.elf $(BUILD)/tools/cov-report

# Coverage of nested/ and vmx/ by the guest suites (tests/cov.list), joined
# with the PCs of the VMX-fuzzer campaigns run with this coverage build
# ($(BUILD)/fuzz-vmx*/cov newer than it: older PCs belong to another image).
cov-suites: all cov linux-guest $(BUILD)/linux/kvm-suites.cpio $(BUILD)/fail-alloc-run.list
	$(BUILD)/tools/runtests -j $(JOBS) tests/cov.list
	FA_NESTOR=$(BUILD)/cov/nestor.elf FA_PREFIX=cov-fa $(BUILD)/tools/runtests -j $(JOBS) tests/fail-alloc.list
	FA_NESTOR=$(BUILD)/cov/nestor.elf FA_PREFIX=cov-fa $(BUILD)/tools/runtests -j $(JOBS) $(BUILD)/fail-alloc-run.list
	$(BUILD)/tools/cov-report --kind cov --elf $(BUILD)/cov/nestor.elf --out $(BUILD)/cov/coverage.txt \
		$(BUILD)/runs/cov-* $$(find $(BUILD) -maxdepth 2 -path '$(BUILD)/fuzz-vmx*/cov' -newer $(BUILD)/cov/nestor.elf)

# Fault injection (tests/fail-alloc.list, docs/security.md): each run makes one
# allocation of a Nestor's pool fail; each must pass or end cleanly.
# Then the pool used up once the guest runs (fail_alloc_run=1): every guest test
# alone at depth 1, and the nested suites' tests at depth 2 with level 0's or
# level 1's pool used up - the list is made from the guest kernel's own list.
fail-alloc: all $(BUILD)/fail-alloc-run.list
	$(BUILD)/tools/runtests -j $(JOBS) tests/fail-alloc.list
	$(BUILD)/tools/runtests -j $(JOBS) $(BUILD)/fail-alloc-run.list

FA_RUN = build/tools/nestor-run --quiet --accept pass,nestor-fail --timeout 300 --guest "build/guest.elf suite=\1"
FA_NES = $${FA_NESTOR:-build/nestor.elf}
$(BUILD)/fail-alloc-run.list: $(BUILD)/guest.elf $(BUILD)/tools/nestor-run
	@$(BUILD)/tools/nestor-run --quiet --name fa-list --guest "$(BUILD)/guest.elf list" --depth 0 >/dev/null
	@sed -n 's|^test \([a-z0-9_]*\.[a-z0-9_]*\)$$|fa.run.d1.\1: $(FA_RUN) --name $${FA_PREFIX:-fa}-run-d1-\1 --nestor "$(FA_NES) fail_alloc_run=1" --depth 1|p' \
		$(BUILD)/runs/fa-list/serial.txt > $@
	@sed -n 's%^test \(\(vmx\|vmx_exits\|hostile\)\.[a-z0-9_]*\)$$%fa.run.d2l0.\1: $(FA_RUN) --name $${FA_PREFIX:-fa}-run-d2l0-\1 --nestor "$(FA_NES)" --level-args 0 fail_alloc_run=1 --depth 2\nfa.run.d2l1.\1: $(FA_RUN) --name $${FA_PREFIX:-fa}-run-d2l1-\1 --nestor "$(FA_NES)" --level-args 1 fail_alloc_run=1 --depth 2%p' \
		$(BUILD)/runs/fa-list/serial.txt >> $@
	@echo "  LIST    $@: $$(wc -l < $@) runs"

# --- differential VMX fuzzing against Bochs (docs/testing.md) ---------------
SEEDS ?= 1..100
CASES ?= 200
COV   ?= 1
fuzz-vmx: all $(if $(filter 1,$(COV)),cov)
	$(BUILD)/tools/fuzz-vmx --seeds $(SEEDS) --cases $(CASES) -j $(JOBS) --cpu $(CPU) $(if $(filter 1,$(COV)),--cov)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
