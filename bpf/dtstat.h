/* SPDX-License-Identifier: GPL-2.0 */
/* Shared by dtstat.bpf.c and its loader, userspace/tools/dt-stat.c. */
#ifndef DTSTAT_H
#define DTSTAT_H

#define DTSTAT_SLOTS 40		/* log2(ns) buckets: up to ~18 minutes */

struct dtstat_counters {
	__u64 write_faults;
	__u64 harvests;
	__u64 clears;
	__u64 pages_reported;
	__u64 pages_protected;
	__u64 harvest_ns;
	__u64 harvest_max_ns;
	__u64 hist[DTSTAT_SLOTS];
};

#endif
