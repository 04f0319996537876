/* debugnic.h - level 0's debug NIC: log streaming over UDP (docs/debug-nic.md).
 *
 * debugnic=on|off|BB:DD.F (default off).  When on, level 0 drives the
 * first RTL8029 (Bochs `ne2k`, PCI) on bus 0 - or the one at BB:DD.F -
 * guards it from every level above (sec/guard.h), and answers on UDP port
 * DEBUGNIC_PORT at 10.0.2.15: a datagram "log" from the host (10.0.2.2,
 * slirp's alias of the host's 127.0.0.1) subscribes it, and every line
 * Nestor prints on COM1 from then on is also sent to it, one datagram per
 * line.  A Nestor above level 0 ignores the option with a warning: the NIC
 * is level 0's and hidden from it. */
#ifndef NET_DEBUGNIC_H
#define NET_DEBUGNIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEBUGNIC_PORT 6510
/* gdb=udp: the GDB stub's port at 10.0.2.15 (debug/gdb_udp.c, docs/gdb.md). */
#define DEBUGNIC_GDB_PORT 1234

/* Parses debugnic= and, at level 0 when on, brings the NIC up, guards it
 * and hooks the log.  Before the guest is set up, on the bootstrap CPU. */
void debugnic_boot(unsigned level);

/* Looks at the NIC for received frames (subscriptions, ARP); cheap when
 * nothing came.  A no-op when the debug NIC is off. */
void debugnic_poll(void);

/* The GDB stub's datagrams on DEBUGNIC_GDB_PORT (debug/gdb_udp.c).  Only
 * from 10.0.2.2, as for the log; replies go to the address and port of the
 * last datagram received there.  debugnic_gdb_open: false when the debug
 * NIC is not up (then nothing is received on the port). */
bool debugnic_gdb_open(void);
/* Up to cap bytes received for gdb, in order (datagrams are a byte stream
 * here, as gdb's serial layer reads them); reads the card first when none
 * are waiting.  0 when none. */
size_t debugnic_gdb_read(uint8_t *buf, size_t cap);
/* One datagram to gdb; -1 when no gdb has sent anything yet, or it could
 * not be sent. */
int debugnic_gdb_write(const void *data, size_t len);

#endif
