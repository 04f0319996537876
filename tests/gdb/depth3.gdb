# depth3.gdb - level 0's GDB stub under three Nestors (docs/gdb.md), run by tests/deep.list:
#   nestor-run --guest "build/guest.elf suite=boot" --depths 0,3 \
#       --gdb tests/gdb/depth3.gdb --gdb-expect tests/gdb/depth3.expect
# gdb attaches before level 1 (a Nestor) runs its first instruction; the
# guest kernel at level 3 runs on level 0 through a VMCS02 (delegation).
# Its #BP and #DB exits come to level 0's stub before the nested routing,
# and its memory is read through its own page tables and the EPTs of the
# two Nestors below it.
set print frame-info short-location
monitor levels
# Stop at level 3's first exit, then work with its symbols.
monitor level 3
continue
monitor levels
break test_boot_protocol
continue
print guest_cmdline
print booted_mb1
next
stepi
delete
continue
