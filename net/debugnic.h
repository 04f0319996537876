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

#define DEBUGNIC_PORT 6510

/* Parses debugnic= and, at level 0 when on, brings the NIC up, guards it
 * and hooks the log.  Before the guest is set up, on the bootstrap CPU. */
void debugnic_boot(unsigned level);

/* Looks at the NIC for received frames (subscriptions, ARP); cheap when
 * nothing came.  A no-op when the debug NIC is off. */
void debugnic_poll(void);

#endif
