/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM dirtytrack

#if !defined(_DIRTYTRACK_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _DIRTYTRACK_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(dirtytrack_create,
	    TP_PROTO(unsigned long ino, u64 size),
	    TP_ARGS(ino, size),
	    TP_STRUCT__entry(__field(unsigned long, ino)
			     __field(u64, size)),
	    TP_fast_assign(__entry->ino = ino;
			   __entry->size = size;),
	    TP_printk("region=%lu size=%llu", __entry->ino, __entry->size)
);

TRACE_EVENT(dirtytrack_track,
	    TP_PROTO(unsigned long ino, bool start, u32 flags, u64 populated),
	    TP_ARGS(ino, start, flags, populated),
	    TP_STRUCT__entry(__field(unsigned long, ino)
			     __field(bool, start)
			     __field(u32, flags)
			     __field(u64, populated)),
	    TP_fast_assign(__entry->ino = ino;
			   __entry->start = start;
			   __entry->flags = flags;
			   __entry->populated = populated;),
	    TP_printk("region=%lu %s flags=%#x populated=%llu", __entry->ino,
		      __entry->start ? "start" : "stop", __entry->flags,
		      __entry->populated)
);

DECLARE_EVENT_CLASS(dirtytrack_page,
		    TP_PROTO(unsigned long ino, unsigned long pgoff),
		    TP_ARGS(ino, pgoff),
		    TP_STRUCT__entry(__field(unsigned long, ino)
				     __field(unsigned long, pgoff)),
		    TP_fast_assign(__entry->ino = ino;
				   __entry->pgoff = pgoff;),
		    TP_printk("region=%lu page=%lu", __entry->ino, __entry->pgoff)
);

/* Once per page made dirty (a tracked write fault): keep it cheap. */
DEFINE_EVENT(dirtytrack_page, dirtytrack_write_fault,
	     TP_PROTO(unsigned long ino, unsigned long pgoff),
	     TP_ARGS(ino, pgoff)
);

/* A writer of a page a send still holds got a copy of it (no wait). */
DEFINE_EVENT(dirtytrack_page, dirtytrack_unshare,
	     TP_PROTO(unsigned long ino, unsigned long pgoff),
	     TP_ARGS(ino, pgoff)
);

TRACE_EVENT(dirtytrack_harvest,
	    TP_PROTO(unsigned long ino, u64 first, u64 npages, u64 dirty,
		     u64 protected, u64 ns, bool clear),
	    TP_ARGS(ino, first, npages, dirty, protected, ns, clear),
	    TP_STRUCT__entry(__field(unsigned long, ino)
			     __field(u64, first)
			     __field(u64, npages)
			     __field(u64, dirty)
			     __field(u64, protected)
			     __field(u64, ns)
			     __field(bool, clear)),
	    TP_fast_assign(__entry->ino = ino;
			   __entry->first = first;
			   __entry->npages = npages;
			   __entry->dirty = dirty;
			   __entry->protected = protected;
			   __entry->ns = ns;
			   __entry->clear = clear;),
	    TP_printk("region=%lu %s first=%llu npages=%llu dirty=%llu protected=%llu ns=%llu",
		      __entry->ino, __entry->clear ? "clear" : "harvest",
		      __entry->first, __entry->npages, __entry->dirty,
		      __entry->protected, __entry->ns)
);

/* A STREAM batch wholly queued on its socket; @marker: it ends round @round. */
TRACE_EVENT(dirtytrack_stream_batch,
	    TP_PROTO(unsigned long ino, u32 records, u64 bytes, bool marker, u64 round),
	    TP_ARGS(ino, records, bytes, marker, round),
	    TP_STRUCT__entry(__field(unsigned long, ino)
			     __field(u32, records)
			     __field(u64, bytes)
			     __field(bool, marker)
			     __field(u64, round)),
	    TP_fast_assign(__entry->ino = ino;
			   __entry->records = records;
			   __entry->bytes = bytes;
			   __entry->marker = marker;
			   __entry->round = round;),
	    TP_printk("region=%lu records=%u bytes=%llu%s round=%llu", __entry->ino,
		      __entry->records, __entry->bytes,
		      __entry->marker ? " round_end" : "", __entry->round)
);

/* RECEIVE accepted a round's marker: every record of the round arrived whole. */
TRACE_EVENT(dirtytrack_receive_round,
	    TP_PROTO(unsigned long ino, u64 round, u64 records),
	    TP_ARGS(ino, round, records),
	    TP_STRUCT__entry(__field(unsigned long, ino)
			     __field(u64, round)
			     __field(u64, records)),
	    TP_fast_assign(__entry->ino = ino;
			   __entry->round = round;
			   __entry->records = records;),
	    TP_printk("region=%lu round=%llu records=%llu", __entry->ino,
		      __entry->round, __entry->records)
);

/* THROTTLE changed the write-fault budget (0: none), or its file closed. */
TRACE_EVENT(dirtytrack_throttle,
	    TP_PROTO(unsigned long ino, u64 pps),
	    TP_ARGS(ino, pps),
	    TP_STRUCT__entry(__field(unsigned long, ino)
			     __field(u64, pps)),
	    TP_fast_assign(__entry->ino = ino;
			   __entry->pps = pps;),
	    TP_printk("region=%lu pages_per_sec=%llu", __entry->ino, __entry->pps)
);

#endif /* _DIRTYTRACK_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
