// SPDX-License-Identifier: GPL-2.0
/*
 * Write the seed corpus of tests/fuzz/wire_fuzz.c: small valid and invalid
 * wire v1 streams for a 16-page region, one file each, named after what they
 * hold and (for the invalid ones) the errno the reader must return.
 *
 * Usage: gen_corpus DIR (make fuzz-corpus writes tests/fuzz/corpus). The
 * output is deterministic: regenerate and commit when the format changes.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_wire.h"

#define NPAGES	16	/* FUZZ_NPAGES in wire_fuzz.c */

static _Alignas(8) unsigned char out[8 * (DT_WIRE_PAGE_SIZE + DT_WIRE_REC_SIZE)];
static size_t len;

static void *put(const void *p, size_t n)
{
	void *at = out + len;

	if (len + n > sizeof(out)) {
		fprintf(stderr, "gen_corpus: stream too long\n");
		exit(1);
	}
	memcpy(at, p, n);
	len += n;
	return at;
}

static const unsigned char *page_of(uint64_t index)
{
	static unsigned char page[DT_WIRE_PAGE_SIZE];

	for (size_t i = 0; i < sizeof(page); i++)
		page[i] = (unsigned char)(index * 37 + i * 7 + (i >> 8) + 1);
	return page;
}

static struct dirtytrack_wire_hdr *hdr(uint64_t region_size)
{
	struct dirtytrack_wire_hdr h;

	dt_wire_hdr_init(&h, region_size);
	return put(&h, sizeof(h));
}

/* A PAGE record; its payload goes out (and is returned) right after it. */
static unsigned char *page(uint64_t index)
{
	struct dirtytrack_wire_rec r;
	const unsigned char *p = page_of(index);

	dt_wire_rec_page(&r, index, p);
	put(&r, sizeof(r));
	return put(p, DT_WIRE_PAGE_SIZE);
}

static struct dirtytrack_wire_rec *zero(uint64_t index)
{
	struct dirtytrack_wire_rec r;

	dt_wire_rec_zero(&r, index);
	return put(&r, sizeof(r));
}

static void round_end(uint64_t round, uint64_t count)
{
	struct dirtytrack_wire_rec r;

	dt_wire_rec_round(&r, round, count);
	put(&r, sizeof(r));
}

/* Re-seal a header or a payload-less record edited after encoding. */
static void reseal_hdr(struct dirtytrack_wire_hdr *h)
{
	h->crc = htole32(dt_crc32c(0, h, offsetof(struct dirtytrack_wire_hdr, crc)));
}

static void reseal_rec(struct dirtytrack_wire_rec *r)
{
	r->crc = htole32(dt_crc32c(0, r, offsetof(struct dirtytrack_wire_rec, crc)));
}

static void emit(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(out, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
	printf("%s: %zu bytes\n", path, len);
	len = 0;
}

int main(int argc, char **argv)
{
	const uint64_t size = NPAGES * DT_WIRE_PAGE_SIZE;
	struct dirtytrack_wire_hdr *h;
	struct dirtytrack_wire_rec *r;
	const char *dir;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];

	/* Valid streams. */
	hdr(size);
	emit(dir, "ok-header-only");

	hdr(size);
	page(3);
	round_end(0, 1);
	emit(dir, "ok-one-round");

	hdr(size);
	page(0);
	zero(1);
	page(15);
	round_end(0, 3);
	zero(2);
	round_end(1, 1);
	round_end(2, 0);
	emit(dir, "ok-mixed-rounds");

	hdr(size);
	round_end(0, 0);
	round_end(1, 0);
	round_end(2, 0);
	emit(dir, "ok-empty-rounds");

	hdr(size);
	zero(5);
	page(7);
	emit(dir, "ok-no-marker");

	/* Invalid streams, each after the valid records before the fault. */
	h = hdr(size);
	h->magic = htole32(0x4b525445);
	reseal_hdr(h);
	emit(dir, "eproto-magic");

	h = hdr(size);
	h->reserved[2] = htole64(1);
	reseal_hdr(h);
	zero(0);
	emit(dir, "eproto-hdr-reserved");

	h = hdr(size);
	h->version = htole16(2);
	reseal_hdr(h);
	emit(dir, "eprotonosupport-version");

	h = hdr(size);
	h->crc ^= htole32(1);
	emit(dir, "ebadmsg-hdr-crc");

	hdr(size * 2);
	page(0);
	emit(dir, "emsgsize-region-size");

	hdr(size);
	zero(1);
	r = zero(4);
	r->length = htole32(DT_WIRE_PAGE_SIZE);
	reseal_rec(r);
	emit(dir, "emsgsize-zero-length");

	hdr(size);
	page(2);
	page(NPAGES);
	emit(dir, "erange-page-index");

	hdr(size);
	page(9)[100] ^= 0x20;
	emit(dir, "ebadmsg-payload");

	hdr(size);
	zero(1);
	page(6);
	round_end(0, 3);
	emit(dir, "eilseq-count");

	hdr(size);
	round_end(0, 0);
	round_end(2, 0);
	emit(dir, "eilseq-skipped-round");

	hdr(size);
	zero(3);
	page(4);
	len -= DT_WIRE_PAGE_SIZE / 2;
	emit(dir, "enodata-truncated-page");
	return 0;
}
