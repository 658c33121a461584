// SPDX-License-Identifier: GPL-2.0
/*
 * Host-side tests of the wire format library (dt_wire.h): CRC32C, the
 * encoders, every documented errno, the incremental reader under any split,
 * and the senders and receiver end to end over a socketpair.
 */
#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "dt_wire.h"
#include "libdirtytrack.h"

#define PS		DT_WIRE_PAGE_SIZE
#define NPAGES		16
#define SIZE		((uint64_t)NPAGES * PS)
#define HDR_CRC_LEN	offsetof(struct dirtytrack_wire_hdr, crc)
#define REC_CRC_LEN	offsetof(struct dirtytrack_wire_rec, crc)

/* ---- a stream builder ---- */

struct sbuf {
	unsigned char *p;
	size_t len, cap;
};

/* Append n bytes; returns where they went (valid until the next append). */
static void *sb_put(struct sbuf *b, const void *src, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
	return b->p + b->len - n;
}

/* A page's contents: never all zero. */
static const unsigned char *pattern(uint64_t index, unsigned int salt)
{
	static unsigned char page[PS];

	for (size_t i = 0; i < PS; i++)
		page[i] = (unsigned char)(index * 131 + i * 13 + salt + 1 + (i % 251 == 0));
	page[0] |= 1;
	return page;
}

static struct dirtytrack_wire_hdr *sb_hdr(struct sbuf *b, uint64_t size)
{
	struct dirtytrack_wire_hdr h;

	dt_wire_hdr_init(&h, size);
	return sb_put(b, &h, sizeof(h));
}

/* Offset of the record header appended (payload follows at + 32). */
static size_t sb_page(struct sbuf *b, uint64_t index)
{
	struct dirtytrack_wire_rec r;
	size_t at = b->len;

	dt_wire_rec_page(&r, index, pattern(index, 0));
	sb_put(b, &r, sizeof(r));
	sb_put(b, pattern(index, 0), PS);
	return at;
}

static size_t sb_zero(struct sbuf *b, uint64_t index)
{
	struct dirtytrack_wire_rec r;
	size_t at = b->len;

	dt_wire_rec_zero(&r, index);
	sb_put(b, &r, sizeof(r));
	return at;
}

static size_t sb_round(struct sbuf *b, uint64_t round, uint64_t count)
{
	struct dirtytrack_wire_rec r;
	size_t at = b->len;

	dt_wire_rec_round(&r, round, count);
	sb_put(b, &r, sizeof(r));
	return at;
}

static struct dirtytrack_wire_rec *rec_at(struct sbuf *b, size_t at)
{
	return (struct dirtytrack_wire_rec *)(b->p + at);
}

static void reseal_hdr(struct dirtytrack_wire_hdr *h)
{
	h->crc = htole32(dt_crc32c(0, h, HDR_CRC_LEN));
}

/* Recompute a record's CRC after editing it (payload: PS bytes or none). */
static void reseal_rec(struct dirtytrack_wire_rec *r, const void *payload)
{
	uint32_t crc = dt_crc32c(0, r, REC_CRC_LEN);

	r->crc = htole32(payload ? dt_crc32c(crc, payload, PS) : crc);
}

/* ---- what the reader applied ---- */

struct event {
	int kind;		/* DIRTYTRACK_REC_* */
	uint64_t a, b;		/* index, payload CRC / round, count */
};

struct log {
	struct event ev[4096];
	size_t n;
	int fail_at;		/* if > 0: apply number fail_at returns -ECANCELED */
	int applies;
	unsigned char *dst;	/* if set: pages land here (the "region") */
};

static int log_apply(void *ctx, uint64_t index, const void *page)
{
	struct log *lg = ctx;
	struct event *e = &lg->ev[lg->n];

	if (++lg->applies == lg->fail_at)
		return -ECANCELED;
	if (lg->n < sizeof(lg->ev) / sizeof(lg->ev[0]))
		lg->n++;
	e->kind = page ? DIRTYTRACK_REC_PAGE : DIRTYTRACK_REC_ZERO;
	e->a = index;
	e->b = page ? dt_crc32c(0, page, PS) : 0;
	if (lg->dst) {
		if (page)
			memcpy(lg->dst + index * PS, page, PS);
		else
			memset(lg->dst + index * PS, 0, PS);
	}
	return 0;
}

static int log_round(void *ctx, uint64_t round, uint64_t count)
{
	struct log *lg = ctx;
	struct event *e = &lg->ev[lg->n];

	if (lg->n < sizeof(lg->ev) / sizeof(lg->ev[0]))
		lg->n++;
	e->kind = DIRTYTRACK_REC_ROUND_END;
	e->a = round;
	e->b = count;
	return 0;
}

static void reader(struct dt_wire_reader *rd, uint64_t size, struct log *lg)
{
	memset(lg, 0, sizeof(*lg));
	if (dt_wire_reader_init(rd, size, log_apply, lg))
		abort();
	dt_wire_reader_on_round(rd, log_round);
}

/*
 * Feed len bytes in pieces of step bytes (0: one piece); returns the first
 * error, else what finish says.
 */
static int feed(struct dt_wire_reader *rd, const void *p, size_t len, size_t step)
{
	const unsigned char *c = p;
	size_t off = 0;

	while (off < len) {
		size_t n = step && step < len - off ? step : len - off;
		ssize_t ret = dt_wire_reader_feed(rd, c + off, n);

		if (ret < 0)
			return (int)ret;
		if ((size_t)ret != n)
			return -EIO;
		off += n;
	}
	return dt_wire_reader_finish(rd);
}

/* Read a whole stream for a 16-page region; lg gets what was applied. */
static int run(struct sbuf *b, struct log *lg)
{
	static struct dt_wire_reader rd;

	reader(&rd, SIZE, lg);
	return feed(&rd, b->p, b->len, 0);
}

/* ---- CRC32C ---- */

static uint32_t bitwise_crc32c(uint32_t crc, const unsigned char *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

TEST(crc32c_check_value)
{
	unsigned char buf[32];

	EXPECT_EQ(0xE3069283u, dt_crc32c(0, "123456789", 9));
	EXPECT_EQ(0, dt_crc32c(0, NULL, 0));
	EXPECT_EQ(0x12345678u, dt_crc32c(0x12345678u, NULL, 0));
	/* RFC 3720 (iSCSI) appendix B.4 vectors. */
	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(0x8A9136AAu, dt_crc32c(0, buf, sizeof(buf)));
	memset(buf, 0xff, sizeof(buf));
	EXPECT_EQ(0x62A8AB43u, dt_crc32c(0, buf, sizeof(buf)));
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	EXPECT_EQ(0x46DD794Eu, dt_crc32c(0, buf, sizeof(buf)));
}

TEST(crc32c_continues_across_buffers)
{
	const char *s = "123456789";
	static unsigned char big[3 * PS + 7];
	uint32_t whole;

	for (size_t i = 0; i <= 9; i++) {
		EXPECT_EQ(0xE3069283u, dt_crc32c(dt_crc32c(0, s, i), s + i, 9 - i))
			TH_LOG("split at %zu", i);
	}
	srand(1);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)rand();
	whole = dt_crc32c(0, big, sizeof(big));
	EXPECT_EQ(bitwise_crc32c(0, big, sizeof(big)), whole);
	/* Odd lengths and unaligned starts too. */
	EXPECT_EQ(bitwise_crc32c(0, big + 3, 1001), dt_crc32c(0, big + 3, 1001));
	for (size_t i = 0; i < sizeof(big); i += 509) {
		uint32_t c = dt_crc32c(0, big, i);

		EXPECT_EQ(whole, dt_crc32c(c, big + i, sizeof(big) - i)) TH_LOG("split at %zu", i);
	}
}

/* ---- encoders ---- */

TEST(hdr_round_trip)
{
	struct dirtytrack_wire_hdr h;
	const unsigned char *raw = (const unsigned char *)&h;
	static const unsigned char head[16] = {
		'D', 'T', 'R', 'K', 1, 0, 64, 0,	/* magic, version, hdr_size */
		0x00, 0x10, 0, 0, 0, 0, 0, 0,		/* page_size, flags */
	};
	static const unsigned char size[8] = { 0x00, 0x30, 0x02, 0x01, 0, 0, 0, 0 };
	uint32_t crc;

	memset(&h, 0xa5, sizeof(h));
	dt_wire_hdr_init(&h, 0x1023000);
	EXPECT_EQ(0, dt_wire_hdr_check(&h, 0x1023000));
	EXPECT_EQ(0, memcmp(raw, head, sizeof(head)));
	EXPECT_EQ(0, memcmp(raw + 16, size, sizeof(size)));
	for (int i = 24; i < 60; i++) {
		EXPECT_EQ(0, raw[i]) TH_LOG("byte %d", i);
	}
	crc = dt_crc32c(0, raw, 60);
	EXPECT_EQ(crc & 0xff, raw[60]);
	EXPECT_EQ(crc >> 24, raw[63]);
}

TEST(rec_round_trip)
{
	struct dirtytrack_wire_rec r;
	const unsigned char *raw = (const unsigned char *)&r;
	unsigned char page[PS];
	uint32_t crc;

	memcpy(page, pattern(5, 0), PS);
	dt_wire_rec_page(&r, 0x0102030405ULL, page);
	EXPECT_EQ(DIRTYTRACK_REC_PAGE, raw[0] | raw[1] << 8);
	EXPECT_EQ(0, raw[2] | raw[3]);
	EXPECT_EQ(PS, raw[4] | raw[5] << 8 | raw[6] << 16 | (uint32_t)raw[7] << 24);
	EXPECT_EQ(0x05, raw[8]);
	EXPECT_EQ(0x01, raw[12]);
	for (int i = 16; i < 28; i++)
		EXPECT_EQ(0, raw[i]);
	crc = dt_crc32c(dt_crc32c(0, raw, 28), page, PS);
	EXPECT_EQ(crc, le32toh(r.crc));
	EXPECT_EQ(-ERANGE, dt_wire_rec_check(&r, NPAGES));
	dt_wire_rec_page(&r, 15, page);
	EXPECT_EQ(0, dt_wire_rec_check(&r, NPAGES));
	EXPECT_EQ(0, dt_wire_rec_verify(&r, page));
	page[PS - 1] ^= 1;
	EXPECT_EQ(-EBADMSG, dt_wire_rec_verify(&r, page));
	EXPECT_EQ(-EINVAL, dt_wire_rec_verify(&r, NULL));

	dt_wire_rec_zero(&r, 7);
	EXPECT_EQ(DIRTYTRACK_REC_ZERO, le16toh(r.kind));
	EXPECT_EQ(0, r.length);
	EXPECT_EQ(7, le64toh(r.index));
	EXPECT_EQ(0, dt_wire_rec_check(&r, NPAGES));
	EXPECT_EQ(0, dt_wire_rec_verify(&r, NULL));

	dt_wire_rec_round(&r, 9, 1234);
	EXPECT_EQ(DIRTYTRACK_REC_ROUND_END, le16toh(r.kind));
	EXPECT_EQ(0, r.length);
	EXPECT_EQ(9, le64toh(r.index));
	EXPECT_EQ(1234, le64toh(r.count));
	/* Round and count are the reader's business: any pass the field check. */
	EXPECT_EQ(0, dt_wire_rec_check(&r, NPAGES));
	EXPECT_EQ(0, dt_wire_rec_verify(&r, NULL));
	r.index ^= htole64(1);
	EXPECT_EQ(-EBADMSG, dt_wire_rec_verify(&r, NULL));
}

TEST(stream_round_trip)
{
	struct sbuf b = { 0 };
	struct log lg;
	static struct dt_wire_reader rd;

	sb_hdr(&b, SIZE);
	sb_page(&b, 4);
	sb_zero(&b, 0);
	sb_page(&b, 15);
	sb_round(&b, 0, 3);
	sb_round(&b, 1, 0);
	sb_zero(&b, 15);
	sb_round(&b, 2, 1);
	reader(&rd, SIZE, &lg);
	ASSERT_EQ(0, feed(&rd, b.p, b.len, 0));
	ASSERT_EQ(7, lg.n);
	EXPECT_EQ(DIRTYTRACK_REC_PAGE, lg.ev[0].kind);
	EXPECT_EQ(4, lg.ev[0].a);
	EXPECT_EQ(dt_crc32c(0, pattern(4, 0), PS), lg.ev[0].b);
	EXPECT_EQ(DIRTYTRACK_REC_ZERO, lg.ev[1].kind);
	EXPECT_EQ(0, lg.ev[1].a);
	EXPECT_EQ(15, lg.ev[2].a);
	EXPECT_EQ(DIRTYTRACK_REC_ROUND_END, lg.ev[3].kind);
	EXPECT_EQ(0, lg.ev[3].a);
	EXPECT_EQ(3, lg.ev[3].b);
	EXPECT_EQ(1, lg.ev[4].a);
	EXPECT_EQ(0, lg.ev[4].b);
	EXPECT_EQ(DIRTYTRACK_REC_ZERO, lg.ev[5].kind);
	EXPECT_EQ(2, lg.ev[6].a);
	EXPECT_EQ(4, rd.records);
	EXPECT_EQ(2, rd.zero_records);
	EXPECT_EQ(3, rd.rounds);
	EXPECT_EQ(2, rd.last_round);
	EXPECT_EQ(1, rd.last_count);
	EXPECT_EQ(0, rd.since_marker);
	EXPECT_EQ(b.len, rd.bytes);
	EXPECT_EQ(0, rd.err);
	free(b.p);
}

TEST(reader_init_rejects_bad_sizes)
{
	struct dt_wire_reader rd;

	EXPECT_EQ(-EINVAL, dt_wire_reader_init(&rd, 0, NULL, NULL));
	EXPECT_EQ(-EINVAL, dt_wire_reader_feed(&rd, "x", 1));
	EXPECT_EQ(-EINVAL, dt_wire_reader_init(&rd, PS + 1, NULL, NULL));
	EXPECT_EQ(0, dt_wire_reader_init(&rd, PS, NULL, NULL));
	/* An empty stream ends cleanly; one byte of a header does not. */
	EXPECT_EQ(0, dt_wire_reader_finish(&rd));
	EXPECT_EQ(0, dt_wire_reader_init(&rd, PS, NULL, NULL));
	EXPECT_EQ(1, dt_wire_reader_feed(&rd, "x", 1));
	EXPECT_EQ(-ENODATA, dt_wire_reader_finish(&rd));
}

/* ---- every documented errno ---- */

/* A header for SIZE with one field edited and the CRC recomputed. */
#define HDR_CASE(field, value, err) do {				\
	struct sbuf b = { 0 };						\
	struct dirtytrack_wire_hdr *h = sb_hdr(&b, SIZE);		\
	struct log lg;							\
									\
	h->field = (value);						\
	reseal_hdr(h);							\
	sb_zero(&b, 1);							\
	EXPECT_EQ(err, run(&b, &lg)) TH_LOG("%s = %s", #field, #value);	\
	EXPECT_EQ(0, lg.n);						\
	free(b.p);							\
} while (0)

TEST(hdr_errors)
{
	HDR_CASE(magic, htole32(0x4b525443), -EPROTO);
	HDR_CASE(magic, htobe32(DIRTYTRACK_WIRE_MAGIC), -EPROTO);
	HDR_CASE(version, htole16(0), -EPROTONOSUPPORT);
	HDR_CASE(version, htole16(2), -EPROTONOSUPPORT);
	HDR_CASE(hdr_size, htole16(32), -EPROTO);
	HDR_CASE(page_size, htole32(8192), -EMSGSIZE);
	HDR_CASE(region_size, htole64(SIZE + PS), -EMSGSIZE);
	HDR_CASE(region_size, htole64(SIZE - PS), -EMSGSIZE);
	HDR_CASE(flags, htole32(1), -EPROTO);
	HDR_CASE(reserved[0], htole64(1), -EPROTO);
	HDR_CASE(reserved[3], htole64(1ULL << 63), -EPROTO);
	HDR_CASE(reserved2, htole32(0x100), -EPROTO);
}

TEST(hdr_crc_is_checked_first)
{
	struct sbuf b = { 0 };
	struct dirtytrack_wire_hdr *h = sb_hdr(&b, SIZE);
	struct log lg;

	h->crc ^= htole32(0x80000000);
	EXPECT_EQ(-EBADMSG, run(&b, &lg));
	/* A bad magic and a bad version are still a CRC error first. */
	h->magic = 0;
	h->version = htole16(9);
	EXPECT_EQ(-EBADMSG, run(&b, &lg));
	/* Reserved fields before sizes, as the kernel checks them. */
	h = (struct dirtytrack_wire_hdr *)b.p;
	dt_wire_hdr_init(h, SIZE);
	h->page_size = htole32(8192);
	reseal_hdr(h);
	EXPECT_EQ(-EMSGSIZE, run(&b, &lg));
	h->flags = htole32(1);
	reseal_hdr(h);
	EXPECT_EQ(-EPROTO, run(&b, &lg));
	/* The region size is not checked against the right value by chance. */
	h = (struct dirtytrack_wire_hdr *)b.p;
	dt_wire_hdr_init(h, SIZE);
	EXPECT_EQ(-EMSGSIZE, dt_wire_hdr_check(h, SIZE * 2));
	EXPECT_EQ(0, dt_wire_hdr_check(h, SIZE));
	free(b.p);
}

/* A stream with a good PAGE record, then a ZERO or PAGE record edited. */
#define REC_CASE(page_rec, field, value, err) do {			\
	struct sbuf b = { 0 };						\
	struct dirtytrack_wire_rec *r;					\
	struct log lg;							\
	size_t at;							\
									\
	sb_hdr(&b, SIZE);						\
	sb_page(&b, 2);							\
	at = page_rec ? sb_page(&b, 3) : sb_zero(&b, 3);		\
	sb_zero(&b, 4);							\
	r = rec_at(&b, at);						\
	r->field = (value);						\
	reseal_rec(r, page_rec ? b.p + at + sizeof(*r) : NULL);		\
	EXPECT_EQ(err, run(&b, &lg)) TH_LOG("%s.%s = %s",		\
		page_rec ? "PAGE" : "ZERO", #field, #value);		\
	EXPECT_EQ(1, lg.n);						\
	free(b.p);							\
} while (0)

TEST(rec_errors)
{
	REC_CASE(0, kind, htole16(0), -EPROTO);
	REC_CASE(0, kind, htole16(4), -EPROTO);
	REC_CASE(1, kind, htole16(0xffff), -EPROTO);
	REC_CASE(0, reserved, htole16(1), -EPROTO);
	REC_CASE(1, reserved2, htole32(1), -EPROTO);
	REC_CASE(0, length, htole32(PS), -EMSGSIZE);
	REC_CASE(1, length, htole32(0), -EMSGSIZE);
	REC_CASE(1, length, htole32(PS * 2), -EMSGSIZE);
	REC_CASE(0, index, htole64(NPAGES), -ERANGE);
	REC_CASE(1, index, htole64(NPAGES), -ERANGE);
	REC_CASE(1, index, htole64(UINT64_MAX), -ERANGE);
	REC_CASE(0, count, htole64(1), -EPROTO);
	REC_CASE(1, count, htole64(1), -EPROTO);
}

TEST(rec_field_order)
{
	struct sbuf b = { 0 };
	struct dirtytrack_wire_rec *r;
	struct log lg;

	sb_hdr(&b, SIZE);
	r = rec_at(&b, sb_zero(&b, 1));
	r->index = htole64(NPAGES);
	EXPECT_EQ(-ERANGE, run(&b, &lg));
	r->count = htole64(1);
	EXPECT_EQ(-EPROTO, run(&b, &lg));	/* count before index */
	r->length = htole32(1);
	EXPECT_EQ(-EMSGSIZE, run(&b, &lg));	/* length before index */
	r->reserved = htole16(1);
	EXPECT_EQ(-EPROTO, run(&b, &lg));	/* reserved before length */
	/* None of those looked at the (now wrong) CRC; a clean record does. */
	dt_wire_rec_zero(r, 1);
	r->crc ^= htole32(4);
	EXPECT_EQ(-EBADMSG, run(&b, &lg));
	free(b.p);
}

TEST(rec_crc_errors)
{
	struct sbuf b = { 0 };
	struct log lg;
	size_t at;

	sb_hdr(&b, SIZE);
	sb_zero(&b, 0);
	at = sb_page(&b, 1);
	b.p[at + sizeof(struct dirtytrack_wire_rec) + 1234] ^= 0x10;
	sb_zero(&b, 2);
	EXPECT_EQ(-EBADMSG, run(&b, &lg));
	EXPECT_EQ(1, lg.n);
	b.len = 0;

	sb_hdr(&b, SIZE);
	at = sb_round(&b, 0, 0);
	rec_at(&b, at)->crc ^= htole32(1 << 20);
	EXPECT_EQ(-EBADMSG, run(&b, &lg));
	EXPECT_EQ(0, lg.n);
	free(b.p);
}

TEST(round_errors)
{
	struct sbuf b = { 0 };
	struct log lg;

	/* A count that lies, high or low. */
	sb_hdr(&b, SIZE);
	sb_zero(&b, 0);
	sb_page(&b, 1);
	sb_round(&b, 0, 3);
	EXPECT_EQ(-EILSEQ, run(&b, &lg));
	EXPECT_EQ(2, lg.n);
	rec_at(&b, b.len - sizeof(struct dirtytrack_wire_rec))->count = htole64(1);
	reseal_rec(rec_at(&b, b.len - sizeof(struct dirtytrack_wire_rec)), NULL);
	EXPECT_EQ(-EILSEQ, run(&b, &lg));
	b.len -= sizeof(struct dirtytrack_wire_rec);
	sb_round(&b, 0, 2);
	EXPECT_EQ(0, run(&b, &lg));
	/* The count is per round: records of round 0 do not count again. */
	sb_zero(&b, 5);
	sb_round(&b, 1, 3);
	EXPECT_EQ(-EILSEQ, run(&b, &lg));
	EXPECT_EQ(4, lg.n);
	b.len = 0;

	/* A skipped round number, a first round other than 0, a repeat. */
	sb_hdr(&b, SIZE);
	sb_round(&b, 0, 0);
	sb_round(&b, 2, 0);
	EXPECT_EQ(-EILSEQ, run(&b, &lg));
	EXPECT_EQ(1, lg.n);
	b.len = 0;
	sb_hdr(&b, SIZE);
	sb_round(&b, 1, 0);
	EXPECT_EQ(-EILSEQ, run(&b, &lg));
	b.len = 0;
	sb_hdr(&b, SIZE);
	sb_round(&b, 0, 0);
	sb_round(&b, 0, 0);
	EXPECT_EQ(-EILSEQ, run(&b, &lg));
	/* Round numbers come before counts; both give EILSEQ. */
	b.len = 0;
	sb_hdr(&b, SIZE);
	sb_round(&b, 5, 5);
	EXPECT_EQ(-EILSEQ, run(&b, &lg));
	free(b.p);
}

TEST(truncated_stream_is_enodata)
{
	struct sbuf b = { 0 };
	size_t bounds[8], nb = 0, len;
	static struct dt_wire_reader rd;
	struct log lg;

	bounds[nb++] = 0;			/* an empty stream ends cleanly */
	sb_hdr(&b, SIZE);
	bounds[nb++] = b.len;
	sb_page(&b, 3);
	bounds[nb++] = b.len;
	sb_zero(&b, 4);
	bounds[nb++] = b.len;
	sb_round(&b, 0, 2);
	bounds[nb++] = b.len;
	for (len = 0; len <= b.len; len++) {
		bool boundary = false;

		for (size_t i = 0; i < nb; i++)
			boundary |= bounds[i] == len;
		reader(&rd, SIZE, &lg);
		ASSERT_EQ(boundary ? 0 : -ENODATA, feed(&rd, b.p, len, 0)) TH_LOG("len %zu", len);
		/* And the failure sticks. */
		if (!boundary)
			ASSERT_EQ(-ENODATA, dt_wire_reader_feed(&rd, b.p + len, b.len - len));
	}
	free(b.p);
}

/* ---- reader behaviour ---- */

TEST(error_is_sticky)
{
	struct sbuf b = { 0 };
	static struct dt_wire_reader rd;
	struct dirtytrack_wire_hdr good;
	struct log lg;

	sb_hdr(&b, SIZE + PS);
	reader(&rd, SIZE, &lg);
	EXPECT_EQ(-EMSGSIZE, dt_wire_reader_feed(&rd, b.p, b.len));
	EXPECT_EQ(-EMSGSIZE, rd.err);
	dt_wire_hdr_init(&good, SIZE);
	EXPECT_EQ(-EMSGSIZE, dt_wire_reader_feed(&rd, &good, sizeof(good)));
	EXPECT_EQ(-EMSGSIZE, dt_wire_reader_feed(&rd, &good, 0));
	EXPECT_EQ(-EMSGSIZE, dt_wire_reader_finish(&rd));
	EXPECT_EQ(0, lg.n);
	free(b.p);
}

TEST(records_before_a_bad_one_stay_applied)
{
	struct sbuf b = { 0 };
	static unsigned char dst[SIZE];
	static struct dt_wire_reader rd;
	struct log lg;
	size_t at;

	sb_hdr(&b, SIZE);
	sb_page(&b, 1);
	sb_zero(&b, 2);
	sb_round(&b, 0, 2);
	at = sb_page(&b, 3);
	b.p[at + sizeof(struct dirtytrack_wire_rec) + PS - 1] ^= 1;	/* bad payload */
	sb_page(&b, 4);
	sb_round(&b, 1, 2);

	for (size_t step = 0; step <= 4096; step = step ? step * 4 : 1) {
		memset(dst, 0xee, sizeof(dst));
		reader(&rd, SIZE, &lg);
		lg.dst = dst;
		ASSERT_EQ(-EBADMSG, feed(&rd, b.p, b.len, step)) TH_LOG("step %zu", step);
		ASSERT_EQ(3, lg.n);
		EXPECT_EQ(1, lg.ev[0].a);
		EXPECT_EQ(2, lg.ev[1].a);
		EXPECT_EQ(DIRTYTRACK_REC_ROUND_END, lg.ev[2].kind);
		EXPECT_EQ(2, rd.records);
		EXPECT_EQ(1, rd.rounds);
		EXPECT_EQ(0, memcmp(dst + PS, pattern(1, 0), PS));
		for (size_t i = 0; i < PS; i++) {
			ASSERT_EQ(0, dst[2 * PS + i]);
			ASSERT_EQ(0xee, dst[3 * PS + i]);	/* the bad page: untouched */
			ASSERT_EQ(0xee, dst[4 * PS + i]);
		}
	}
	free(b.p);
}

TEST(callback_error_stops_the_reader)
{
	struct sbuf b = { 0 };
	static struct dt_wire_reader rd;
	struct log lg;

	sb_hdr(&b, SIZE);
	sb_zero(&b, 1);
	sb_page(&b, 2);
	sb_zero(&b, 3);
	reader(&rd, SIZE, &lg);
	lg.fail_at = 2;
	EXPECT_EQ(-ECANCELED, feed(&rd, b.p, b.len, 0));
	EXPECT_EQ(1, lg.n);
	EXPECT_EQ(1, rd.records);
	EXPECT_EQ(-ECANCELED, dt_wire_reader_finish(&rd));
	free(b.p);
}

/* Two readers agree on result, events and counters. */
static bool same(struct log *a, struct dt_wire_reader *ra, int ea,
		 struct log *b, struct dt_wire_reader *rb, int eb)
{
	return ea == eb && a->n == b->n && !memcmp(a->ev, b->ev, a->n * sizeof(a->ev[0])) &&
	       ra->records == rb->records && ra->rounds == rb->rounds &&
	       ra->zero_records == rb->zero_records && ra->bytes == rb->bytes;
}

TEST(any_split_reads_the_same)
{
	struct sbuf b = { 0 };
	static struct dt_wire_reader rw, rs;
	static struct log whole, split;
	int ew, es;

	sb_hdr(&b, SIZE);
	sb_page(&b, 0);
	sb_zero(&b, 9);
	sb_round(&b, 0, 2);
	sb_page(&b, 15);
	sb_page(&b, 15);
	sb_round(&b, 1, 2);
	sb_zero(&b, 3);

	reader(&rw, SIZE, &whole);
	ew = feed(&rw, b.p, b.len, 0);
	ASSERT_EQ(0, ew);
	ASSERT_EQ(7, whole.n);

	/* One byte at a time, and a few other steps. */
	for (size_t step = 1; step < b.len; step = step * 3 + 1) {
		reader(&rs, SIZE, &split);
		es = feed(&rs, b.p, b.len, step);
		ASSERT_TRUE(same(&whole, &rw, ew, &split, &rs, es)) TH_LOG("step %zu", step);
	}
	/* Two pieces, split at every offset. */
	for (size_t cut = 1; cut < b.len; cut++) {
		reader(&rs, SIZE, &split);
		ASSERT_EQ(cut, dt_wire_reader_feed(&rs, b.p, cut));
		es = feed(&rs, b.p + cut, b.len - cut, 0);
		ASSERT_TRUE(same(&whole, &rw, ew, &split, &rs, es)) TH_LOG("cut %zu", cut);
	}

	/* A bad stream: the same error and the same prefix, byte by byte. */
	sb_round(&b, 2, 2);	/* round 2 holds one record */
	sb_zero(&b, 4);
	reader(&rw, SIZE, &whole);
	ew = feed(&rw, b.p, b.len, 0);
	ASSERT_EQ(-EILSEQ, ew);
	reader(&rs, SIZE, &split);
	es = feed(&rs, b.p, b.len, 1);
	ASSERT_TRUE(same(&whole, &rw, ew, &split, &rs, es));
	free(b.p);
}

/* The committed fuzz seeds say in their names what they must give. */
TEST(fuzz_corpus_gives_the_named_errno)
{
	static const struct { const char *prefix; int err; } want[] = {
		{ "ok-", 0 }, { "ebadmsg-", -EBADMSG }, { "eprotonosupport-", -EPROTONOSUPPORT },
		{ "eproto-", -EPROTO }, { "emsgsize-", -EMSGSIZE }, { "erange-", -ERANGE },
		{ "eilseq-", -EILSEQ }, { "enodata-", -ENODATA },
	};
	const char *dir = "tests/fuzz/corpus";
	struct dirent *de;
	struct log lg;
	int files = 0;
	DIR *d = opendir(dir);

	if (!d)
		SKIP(return, "%s: not run from the source tree", dir);
	while ((de = readdir(d))) {
		struct sbuf b = { 0 };
		unsigned char chunk[4096];
		char path[512];
		size_t i;
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			if (!strncmp(de->d_name, want[i].prefix, strlen(want[i].prefix)))
				break;
		ASSERT_LT(i, sizeof(want) / sizeof(want[0])) TH_LOG("%s: unknown prefix", de->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY);
		ASSERT_LE(0, fd);
		while ((n = read(fd, chunk, sizeof(chunk))) > 0)
			sb_put(&b, chunk, (size_t)n);
		close(fd);
		EXPECT_EQ(want[i].err, run(&b, &lg)) TH_LOG("%s", de->d_name);
		free(b.p);
		files++;
	}
	closedir(d);
	EXPECT_LE(10, files);
}

/* ---- senders and receiver ---- */

TEST(send_to_pipe_and_closed_socket)
{
	struct dirtytrack_wire_hdr h;
	int p[2], s[2];

	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, dt_wire_send_hdr(p[1], SIZE));
	ASSERT_EQ(sizeof(h), read(p[0], &h, sizeof(h)));
	EXPECT_EQ(0, dt_wire_hdr_check(&h, SIZE));
	close(p[0]);
	close(p[1]);

	/* A gone peer is -EPIPE, not a SIGPIPE that kills the test. */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, s));
	close(s[1]);
	EXPECT_EQ(-EPIPE, dt_wire_send_round(s[0], 0, 0));
	close(s[0]);
	EXPECT_EQ(-EBADF, dt_wire_send(s[0], "x", 1));
}

#define E2E_PAGES	1100	/* more than two sendmsg batches */

struct e2e {
	unsigned char *src, *dst;
	uint64_t *bm0;
	bool round0_ok;
	struct log lg;
};

/* Pages of the source: every 7th is all zero. */
static bool e2e_zero(uint64_t i)
{
	return i % 7 == 3;
}

static int e2e_apply(void *ctx, uint64_t index, const void *page)
{
	struct e2e *e = ctx;

	return dt_wire_apply_mem(e->dst, index, page);
}

/* After round 0 exactly the pages of bm0 have arrived. */
static int e2e_round(void *ctx, uint64_t round, uint64_t count)
{
	struct e2e *e = ctx;
	bool ok = true;

	if (round)
		return 0;
	for (uint64_t i = 0; i < E2E_PAGES && ok; i++) {
		if (dt_bitmap_test(e->bm0, i))
			ok = !memcmp(e->dst + i * PS, e->src + i * PS, PS);
		else
			ok = e->dst[i * PS] == 0xee && e->dst[i * PS + PS - 1] == 0xee;
	}
	e->round0_ok = ok && count == dt_bitmap_count(e->bm0, E2E_PAGES);
	return 0;
}

static int e2e_send(int fd, struct e2e *e)
{
	uint64_t n;
	int ret;

	ret = dt_wire_send_hdr(fd, (uint64_t)E2E_PAGES * PS);
	if (!ret)
		ret = dt_wire_send_pages(fd, (char *)e->src, 0, E2E_PAGES, e->bm0, &n);
	if (!ret)
		ret = dt_wire_send_round(fd, 0, n);
	/* Round 1: a sub-range, every page, not from page 0. */
	if (!ret)
		ret = dt_wire_send_pages(fd, (char *)e->src, 600, 500, NULL, &n);
	if (!ret && n != 500)
		ret = -EIO;
	if (!ret)
		ret = dt_wire_send_round(fd, 1, n);
	/* Round 2: the rest. */
	if (!ret)
		ret = dt_wire_send_pages(fd, (char *)e->src, 0, 600, NULL, &n);
	if (!ret)
		ret = dt_wire_send_round(fd, 2, n);
	return ret;
}

TEST(send_recv_socketpair)
{
	static struct dt_wire_reader rd;
	static struct e2e e;
	uint64_t zeros = 0, bits;
	int sv[2], status;
	pid_t pid;

	e.src = malloc((size_t)E2E_PAGES * PS);
	e.dst = malloc((size_t)E2E_PAGES * PS);
	e.bm0 = calloc(1, dt_bitmap_bytes(E2E_PAGES));
	ASSERT_TRUE(e.src && e.dst && e.bm0);
	for (uint64_t i = 0; i < E2E_PAGES; i++) {
		if (e2e_zero(i))
			memset(e.src + i * PS, 0, PS);
		else
			memcpy(e.src + i * PS, pattern(i, 77), PS);
		if (i % 3 == 0 || (i > 520 && i < 1030))
			dt_bitmap_set(e.bm0, i);
		/* ZERO records: once in round 0 if in bm0, once in round 1 or 2. */
		zeros += e2e_zero(i) * (1 + dt_bitmap_test(e.bm0, i));
	}
	bits = dt_bitmap_count(e.bm0, E2E_PAGES);
	memset(e.dst, 0xee, (size_t)E2E_PAGES * PS);

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(sv[0]);
		_exit(e2e_send(sv[1], &e) ? 1 : 0);
	}
	close(sv[1]);
	ASSERT_EQ(0, dt_wire_reader_init(&rd, (uint64_t)E2E_PAGES * PS, e2e_apply, &e));
	dt_wire_reader_on_round(&rd, e2e_round);
	EXPECT_EQ(0, dt_wire_recv_into(sv[0], &rd));
	close(sv[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	EXPECT_TRUE(e.round0_ok);
	EXPECT_EQ(3, rd.rounds);
	EXPECT_EQ(bits + E2E_PAGES, rd.records);
	EXPECT_EQ(600, rd.last_count);
	/* Every zero page went as a ZERO record, every time it was sent. */
	EXPECT_EQ(zeros, rd.zero_records);
	EXPECT_EQ(0, memcmp(e.src, e.dst, (size_t)E2E_PAGES * PS));
	free(e.src);
	free(e.dst);
	free(e.bm0);
}

TEST_HARNESS_MAIN
