/* e1000.h - register offsets and bits of Intel's 8254x (82540EM: Bochs'
 * e1000) that Nestor's driver check and the guest kernel's own driver use
 * (PCI/PCI-X Family of Gigabit Ethernet Controllers Software Developer's
 * Manual, 13.4: offsets in BAR0; 13.3: the I/O BAR's window). */
#ifndef LIB_E1000_H
#define LIB_E1000_H

#define E1000_CTRL 0x0000
#define E1000_STATUS 0x0008
#define E1000_EECD 0x0010
#define E1000_ICR 0x00c0
#define E1000_IMS 0x00d0
#define E1000_IMC 0x00d8
#define E1000_RCTL 0x0100
#define E1000_TCTL 0x0400
#define E1000_RDBAL 0x2800
#define E1000_RDBAH 0x2804
#define E1000_RDLEN 0x2808
#define E1000_RDH 0x2810
#define E1000_RDT 0x2818
#define E1000_TDBAL 0x3800
#define E1000_TDBAH 0x3804
#define E1000_TDLEN 0x3808
#define E1000_TDH 0x3810
#define E1000_TDT 0x3818
#define E1000_RAL0 0x5400
#define E1000_RAH0 0x5404
#define E1000_MANC 0x5820

#define E1000_CTRL_RST (1u << 26)
#define E1000_RCTL_EN (1u << 1)
#define E1000_TCTL_EN (1u << 1)
#define E1000_TCTL_PSP (1u << 3)

/* The I/O window: IOADDR selects a register, IODATA accesses it. */
#define E1000_IOADDR 0
#define E1000_IODATA 4

#endif
