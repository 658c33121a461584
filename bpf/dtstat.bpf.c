// SPDX-License-Identifier: GPL-2.0
/*
 * dtstat: count dirtytrack write faults and harvests, and keep a log2
 * histogram of harvest latency, from the module's tracepoints: tp_btf (the
 * arguments typed by the module's BTF), or their raw_tp twins where the
 * module has no BTF (built against headers without vmlinux, as Debian's
 * 6.1 headers are, so by DKMS there too).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "dtstat.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dtstat_counters);
} counters SEC(".maps");

/* Only this region inode, if nonzero (set before load). */
const volatile unsigned long target_ino;

static __always_inline struct dtstat_counters *get(unsigned long ino)
{
	__u32 zero = 0;

	if (target_ino && ino != target_ino)
		return NULL;
	return bpf_map_lookup_elem(&counters, &zero);
}

static __always_inline void write_fault(unsigned long ino)
{
	struct dtstat_counters *c = get(ino);

	if (c)
		c->write_faults++;
}

static __always_inline void harvest(unsigned long ino, __u64 dirty, __u64 protected,
				    __u64 ns, bool clear)
{
	struct dtstat_counters *c = get(ino);
	__u32 slot = 0;

	if (!c)
		return;
	if (clear) {
		c->clears++;
	} else {
		c->harvests++;
		c->pages_reported += dirty;
	}
	c->pages_protected += protected;
	c->harvest_ns += ns;
	if (ns > c->harvest_max_ns)
		c->harvest_max_ns = ns;
	while (slot < DTSTAT_SLOTS - 1 && (ns >> (slot + 1)))
		slot++;
	c->hist[slot]++;
}

SEC("tp_btf/dirtytrack_write_fault")
int BPF_PROG(btf_write_fault, unsigned long ino, unsigned long pgoff)
{
	write_fault(ino);
	return 0;
}

SEC("raw_tp/dirtytrack_write_fault")
int BPF_PROG(raw_write_fault, unsigned long ino, unsigned long pgoff)
{
	write_fault(ino);
	return 0;
}

SEC("tp_btf/dirtytrack_harvest")
int BPF_PROG(btf_harvest, unsigned long ino, __u64 first, __u64 npages, __u64 dirty,
	     __u64 protected, __u64 ns, bool clear)
{
	harvest(ino, dirty, protected, ns, clear);
	return 0;
}

SEC("raw_tp/dirtytrack_harvest")
int BPF_PROG(raw_harvest, unsigned long ino, __u64 first, __u64 npages, __u64 dirty,
	     __u64 protected, __u64 ns, bool clear)
{
	harvest(ino, dirty, protected, ns, clear);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
