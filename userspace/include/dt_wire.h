/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dt_wire: the dirtytrack wire format (v1) in pure userspace.
 *
 * Encoders, validators, an incremental reader and socket helpers for the
 * byte stream that DIRTYTRACK_IOC_STREAM writes and DIRTYTRACK_IOC_RECEIVE
 * reads. The format, the validation order and the errno of every rejection
 * are in Documentation/dirtytrack.rst, "Wire format"; this code follows it
 * to the letter so that it can stand in for, and cross-check, the kernel.
 *
 * Functions that can fail return 0 (or a byte count) on success and a
 * negative errno on failure.
 */
#ifndef DT_WIRE_H
#define DT_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/dirtytrack.h>

/* The only page size wire v1 streams carry (and this reader accepts). */
#define DT_WIRE_PAGE_SIZE	4096u
#define DT_WIRE_HDR_SIZE	((uint32_t)sizeof(struct dirtytrack_wire_hdr))	/* 64 */
#define DT_WIRE_REC_SIZE	((uint32_t)sizeof(struct dirtytrack_wire_rec))	/* 32 */

/*
 * CRC32C (Castagnoli, reflected, init ~0, final xor ~0): the standard value,
 * check value dt_crc32c(0, "123456789", 9) == 0xE3069283. Pass 0 to start
 * and the previous result to continue: dt_crc32c(dt_crc32c(0, a, n), b, m)
 * equals dt_crc32c(0, a || b, n + m).
 */
uint32_t dt_crc32c(uint32_t crc, const void *buf, size_t len);

/* Encoders: fill every field (little-endian) and the CRC. */
void dt_wire_hdr_init(struct dirtytrack_wire_hdr *h, uint64_t region_size);
/* PAGE record header for the DT_WIRE_PAGE_SIZE bytes at page (CRC covers them). */
void dt_wire_rec_page(struct dirtytrack_wire_rec *r, uint64_t index, const void *page);
void dt_wire_rec_zero(struct dirtytrack_wire_rec *r, uint64_t index);
/* ROUND_END of round, closing count PAGE and ZERO records. */
void dt_wire_rec_round(struct dirtytrack_wire_rec *r, uint64_t round, uint64_t count);

/*
 * Validators, in the documented order. dt_wire_hdr_check(): CRC (EBADMSG),
 * magic (EPROTO), version (EPROTONOSUPPORT), hdr_size (EPROTO), page_size
 * and region_size (EMSGSIZE), flags and reserved fields (EPROTO).
 */
int dt_wire_hdr_check(const struct dirtytrack_wire_hdr *h, uint64_t region_size);
/*
 * The header fields of a record, without stream state: kind and reserved
 * fields (EPROTO), length (EMSGSIZE), then for PAGE and ZERO the index
 * (ERANGE, npages is the region's page count) and a zero count (EPROTO).
 * A ROUND_END's round number and count depend on the stream: the reader
 * checks them (EILSEQ).
 */
int dt_wire_rec_check(const struct dirtytrack_wire_rec *r, uint64_t npages);
/*
 * The record's CRC over its first 28 bytes and its payload (length bytes at
 * payload; NULL when length is 0): 0 or -EBADMSG. Call it after
 * dt_wire_rec_check(), which bounds length.
 */
int dt_wire_rec_verify(const struct dirtytrack_wire_rec *r, const void *payload);

/*
 * Callbacks of the reader. Each is called only for a record that passed
 * every check; a negative return fails the reader with that value.
 *
 * apply: a PAGE (page points at its DT_WIRE_PAGE_SIZE bytes, valid only
 * during the call and not necessarily aligned) or a ZERO record (page is
 * NULL) for page index < npages.
 * round: a ROUND_END marker of round round closing count records.
 * The reader's counters move after a callback succeeds, so inside it they
 * still describe the records before this one.
 */
typedef int (*dt_wire_apply_fn)(void *ctx, uint64_t index, const void *page);
typedef int (*dt_wire_round_fn)(void *ctx, uint64_t round, uint64_t count);
/* An apply callback for a flat copy of the region: ctx is its first byte. */
int dt_wire_apply_mem(void *ctx, uint64_t index, const void *page);

/*
 * An incremental reader of one stream. Fields marked "public" may be read at
 * any time (also from the callbacks); the others are private. A reader takes
 * no resources: it may be dropped or re-initialized at any point.
 */
struct dt_wire_reader {
	/* configuration (public, set by init) */
	uint64_t region_size;		/* bytes the header must announce */
	uint64_t npages;		/* region_size / DT_WIRE_PAGE_SIZE */
	dt_wire_apply_fn apply;		/* may be NULL: validate only */
	dt_wire_round_fn round_cb;	/* may be NULL; see dt_wire_reader_on_round() */
	void *ctx;

	/* counters (public) */
	uint64_t bytes;			/* bytes consumed by feed */
	uint64_t records;		/* PAGE and ZERO records applied */
	uint64_t zero_records;		/* of which ZERO */
	uint64_t rounds;		/* ROUND_END markers accepted */
	uint64_t last_round;		/* round of the last marker (if rounds) */
	uint64_t last_count;		/* and its count */
	uint64_t since_marker;		/* records applied since the last marker */
	int err;			/* 0, or the error the reader failed with */

	/* private */
	int state;
	size_t have;			/* bytes of the current unit buffered */
	union {
		struct dirtytrack_wire_hdr hdr;
		/*
		 * The record being read; public inside the apply and round
		 * callbacks, where it is the (verified) record being applied.
		 */
		struct dirtytrack_wire_rec rec;
		unsigned char raw[sizeof(struct dirtytrack_wire_hdr)];
	} u;
	unsigned char page[DT_WIRE_PAGE_SIZE];	/* a PAGE payload split across feeds */
};

/*
 * Start a reader for a region of region_size bytes (a nonzero multiple of
 * DT_WIRE_PAGE_SIZE, else -EINVAL). apply and ctx as above.
 */
int dt_wire_reader_init(struct dt_wire_reader *rd, uint64_t region_size,
			dt_wire_apply_fn apply, void *ctx);
/* Also call fn for every accepted ROUND_END marker. */
void dt_wire_reader_on_round(struct dt_wire_reader *rd, dt_wire_round_fn fn);
/*
 * Consume len bytes, in any split (one byte at a time works). Validates and
 * applies every record completed by them. Returns len, or the negative errno
 * of the first rejected record (or failed callback): the reader then stays
 * failed and every later feed (and finish) returns the same error.
 */
ssize_t dt_wire_reader_feed(struct dt_wire_reader *rd, const void *buf, size_t len);
/*
 * The stream has ended: 0 if at a record boundary (or before its first
 * byte), -ENODATA if inside the header or a record, or the reader's error.
 */
int dt_wire_reader_finish(struct dt_wire_reader *rd);

/*
 * Senders. All loop over short writes and EINTR; a socket gets MSG_NOSIGNAL
 * (a closed peer is -EPIPE, not SIGPIPE).
 */
int dt_wire_send(int fd, const void *buf, size_t len);
int dt_wire_send_hdr(int fd, uint64_t region_size);
int dt_wire_send_round(int fd, uint64_t round, uint64_t count);
/*
 * Send a record for every page first + i (0 <= i < npages) whose bit i is set
 * in bitmap (harvest layout, see libdirtytrack.h; NULL = every page): a ZERO
 * record if the page's bytes are all zero, else a PAGE record whose payload
 * goes out straight from the mapping, two iovecs per page. map is the start
 * of the region: page p is at map + p * DT_WIRE_PAGE_SIZE. *records (if not
 * NULL) gets the records sent, also on failure. A page must not change
 * while it is sent (its CRC is computed before the bytes go out): send from
 * a stopped or snapshotted source, or expect the receiver's -EBADMSG.
 */
int dt_wire_send_pages(int fd, const char *map, uint64_t first, uint64_t npages,
		       const uint64_t *bitmap, uint64_t *records);

/*
 * Read fd until EOF, feeding rd; at EOF return dt_wire_reader_finish(rd).
 * Returns the reader's error, or -errno of a failed read.
 */
int dt_wire_recv_into(int fd, struct dt_wire_reader *rd);

#endif /* DT_WIRE_H */
