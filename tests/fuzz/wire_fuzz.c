// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target of the wire reader (userspace/lib/wire.c).
 *
 * Each input is a stream for a region of FUZZ_NPAGES pages. It is read
 * twice: in one feed, and in pseudo-random pieces (1 byte to a few pages,
 * the split derived from a hash of the input), each piece in its own exact
 * heap buffer so that AddressSanitizer sees any read past it. Then a copy
 * with every CRC recomputed ("resealed") is read the same two ways: a
 * mutation rarely keeps a CRC right by itself, and without the reseal the
 * checks behind the CRC (round sequence, counts, ...) would see few inputs.
 * Invariants, any breach of which aborts:
 *  - apply and round callbacks see only fully valid records: index in range,
 *    a PAGE's CRC recomputed here with an independent table CRC32C, zero
 *    reserved fields, round numbers 0, 1, 2, ... and truthful counts;
 *  - nothing is applied after feed has returned an error, which is sticky
 *    (every later feed and finish return it) and one of the documented ones;
 *  - the reader's counters match what the callbacks saw;
 *  - both splits give the same result and the same applied sequence.
 *
 * make fuzz (FUZZ_SECONDS=60) runs it on a copy of tests/fuzz/corpus.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_wire.h"

#define FUZZ_NPAGES	16	/* tests/fuzz/gen_corpus.c uses the same region */

struct run {
	struct dt_wire_reader rd;
	bool failed;		/* feed has returned an error */
	int err;		/* the final result: feed's error or finish's */
	uint64_t applied, zeros, rounds, since;
	uint64_t hash;		/* of the sequence of applied records */
};

#define check(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "wire_fuzz: invariant broken: %s (line %d)\n", \
			#cond, __LINE__);				\
		abort();						\
	}								\
} while (0)

/* Reference CRC32C, table-driven, independent of ISA-L and dt_crc32c(). */
static uint32_t crc_table[256];

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t ref_crc(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void mix(uint64_t *h, uint64_t v)
{
	*h = (*h ^ v) * 0x100000001b3ULL;
}

static int apply(void *ctx, uint64_t index, const void *page)
{
	struct run *run = ctx;
	const struct dirtytrack_wire_rec *r = &run->rd.u.rec;
	uint32_t crc = ref_crc(0, r, offsetof(struct dirtytrack_wire_rec, crc));

	check(!run->failed);
	check(index < FUZZ_NPAGES);
	check(le64toh(r->index) == index);
	check(!r->reserved && !r->reserved2 && !r->count);
	if (page) {
		check(le16toh(r->kind) == DIRTYTRACK_REC_PAGE);
		check(le32toh(r->length) == DT_WIRE_PAGE_SIZE);
		crc = ref_crc(crc, page, DT_WIRE_PAGE_SIZE);
	} else {
		check(le16toh(r->kind) == DIRTYTRACK_REC_ZERO);
		check(!r->length);
	}
	check(crc == le32toh(r->crc));
	check(run->rd.records == run->applied);
	run->applied++;
	run->since++;
	run->zeros += !page;
	mix(&run->hash, index);
	mix(&run->hash, page ? crc : 0);
	return 0;
}

static int round_end(void *ctx, uint64_t round, uint64_t count)
{
	struct run *run = ctx;
	const struct dirtytrack_wire_rec *r = &run->rd.u.rec;

	check(!run->failed);
	check(le16toh(r->kind) == DIRTYTRACK_REC_ROUND_END);
	check(!r->reserved && !r->reserved2 && !r->length);
	check(round == run->rounds && count == run->since);
	check(ref_crc(0, r, offsetof(struct dirtytrack_wire_rec, crc)) == le32toh(r->crc));
	check(run->rd.rounds == run->rounds);
	run->rounds++;
	run->since = 0;
	mix(&run->hash, ~round);
	mix(&run->hash, count);
	return 0;
}

static bool documented(int err)
{
	switch (-err) {
	case EBADMSG: case EPROTO: case EPROTONOSUPPORT: case EMSGSIZE:
	case ERANGE: case EILSEQ: case ENODATA:
		return true;
	}
	return false;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Next piece length: mostly small, sometimes around a record or a page. */
static size_t piece(uint64_t *s, size_t left)
{
	uint64_t r = xorshift(s);
	size_t n;

	switch (r & 3) {
	case 0:
		n = 1 + (r >> 8) % 8;
		break;
	case 1:
		n = 1 + (r >> 8) % 96;
		break;
	case 2:
		n = 1 + (r >> 8) % (DT_WIRE_PAGE_SIZE + 128);
		break;
	default:
		n = 1 + (r >> 8) % (3 * DT_WIRE_PAGE_SIZE);
		break;
	}
	return n < left ? n : left;
}

/* Feed data in pieces (one piece if seed is 0) and record the result. */
static void run_stream(struct run *run, const uint8_t *data, size_t size, uint64_t seed)
{
	size_t off = 0;

	run->failed = false;
	run->err = 0;
	run->applied = run->zeros = run->rounds = run->since = 0;
	run->hash = 0xcbf29ce484222325ULL;
	check(!dt_wire_reader_init(&run->rd, FUZZ_NPAGES * DT_WIRE_PAGE_SIZE, apply, run));
	dt_wire_reader_on_round(&run->rd, round_end);

	while (off < size) {
		size_t n = seed ? piece(&seed, size - off) : size - off;
		/* An exact copy: ASan flags any read past the piece. */
		uint8_t *buf = malloc(n);
		ssize_t ret;

		check(buf);
		memcpy(buf, data + off, n);
		ret = dt_wire_reader_feed(&run->rd, buf, n);
		free(buf);
		if (run->failed) {
			check(ret == run->err);	/* sticky */
		} else if (ret < 0) {
			check(documented((int)ret));
			run->failed = true;
			run->err = (int)ret;
		} else {
			check((size_t)ret == n);
		}
		off += n;
	}
	if (run->failed) {
		check(dt_wire_reader_finish(&run->rd) == run->err);
		check(dt_wire_reader_feed(&run->rd, data, size) == run->err);
	} else {
		run->err = dt_wire_reader_finish(&run->rd);
		check(run->err == 0 || run->err == -ENODATA);
		check(run->rd.bytes == size);
	}
	check(run->rd.err == run->err);
	check(run->rd.records == run->applied && run->rd.zero_records == run->zeros);
	check(run->rd.rounds == run->rounds && run->rd.since_marker == run->since);
}

/*
 * Recompute the CRCs of the header and of each record as the reader will
 * delimit them (a payload follows a record whose length is a page), up to
 * the first incomplete one.
 */
static void reseal(uint8_t *p, size_t size)
{
	const size_t hcrc = offsetof(struct dirtytrack_wire_hdr, crc);
	const size_t rcrc = offsetof(struct dirtytrack_wire_rec, crc);
	size_t off = DT_WIRE_HDR_SIZE;
	uint32_t crc;

	if (size < DT_WIRE_HDR_SIZE)
		return;
	crc = htole32(ref_crc(0, p, hcrc));
	memcpy(p + hcrc, &crc, sizeof(crc));
	while (off + DT_WIRE_REC_SIZE <= size) {
		struct dirtytrack_wire_rec r;
		size_t plen;

		memcpy(&r, p + off, sizeof(r));
		plen = le32toh(r.length) == DT_WIRE_PAGE_SIZE ? DT_WIRE_PAGE_SIZE : 0;
		if (off + DT_WIRE_REC_SIZE + plen > size)
			return;
		crc = ref_crc(0, &r, rcrc);
		crc = htole32(ref_crc(crc, p + off + DT_WIRE_REC_SIZE, plen));
		memcpy(p + off + rcrc, &crc, sizeof(crc));
		off += DT_WIRE_REC_SIZE + plen;
	}
}

/* Read data whole and in pieces; both must agree. */
static void run_both(const uint8_t *data, size_t size)
{
	static struct run whole, split;
	uint64_t seed = 0x9e3779b97f4a7c15ULL ^ size;

	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 0x100000001b3ULL;
	seed |= 1;	/* xorshift needs a nonzero state; 0 means "one piece" */

	run_stream(&whole, data, size, 0);
	run_stream(&split, data, size, seed);
	check(whole.err == split.err);
	check(whole.applied == split.applied && whole.rounds == split.rounds);
	check(whole.hash == split.hash);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *sealed;

	if (!crc_table[1])
		crc_table_init();
	run_both(data, size);

	sealed = malloc(size ? size : 1);
	check(sealed);
	memcpy(sealed, data, size);
	reseal(sealed, size);
	if (memcmp(sealed, data, size))
		run_both(sealed, size);
	free(sealed);
	return 0;
}
