/* pci.h - options of the pci suite (guest/tests/pci.c). */
#ifndef GUEST_TESTS_PCI_H
#define GUEST_TESTS_PCI_H

#include <stdint.h>

struct pci_opts {
	char dev[16];      /* pci_dev=BB:DD.F: the function the tests aim at */
	uint64_t io;       /* pci_io=: a port base of it (0: none) */
	uint64_t mem;      /* pci_mem=: a memory BAR of it (0: none) */
	uint64_t present;  /* pci_present=: 1 it must be there, 0 it must not, 2 no check */
	char nic_mode[16];    /* nic_mode=: good, early_ims, bad_ring, io_window, odd_insn (guest/tests/nic.c) */
	uint64_t nic_blocked; /* nic_blocked=: 1 the device must end up blocked, 0 not, 2 no check */
};
extern struct pci_opts pci_opts;

#endif
