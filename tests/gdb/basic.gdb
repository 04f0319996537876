# basic.gdb - the GDB stub of level 0 (docs/gdb.md), run by tests/suite.list:
#   nestor-run --guest "build/guest.elf suite=boot" --depth 1 \
#       --gdb tests/gdb/basic.gdb --gdb-expect tests/gdb/basic.expect
# nestor-run gives "target remote 127.0.0.1:PORT" before this script; the
# guest stopped before its first instruction.  Only stable things are
# printed: frames without source lines; hexadecimal numbers and source line
# numbers are not compared (nestor-run's --gdb-expect).
set print frame-info short-location
# A software breakpoint (Z0: an INT3 in guest memory, #BP intercepted).
break test_boot_protocol
continue
# Memory through the guest's page tables (m), registers (g).
print guest_cmdline
print booted_mb1
# Steps: 'next' steps over the call of say() (single steps and a breakpoint
# at the return address), 'stepi' one instruction (RFLAGS.TF, #DB intercepted).
next
stepi
monitor levels
delete
# The rest of the suite runs: its RESULT line, then the end of the run
# reported to gdb as the exit of its process.
continue
