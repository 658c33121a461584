/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dt_proto: the control protocol of dt-migrate (version 1).
 *
 * A migration uses two TCP connections from the source to the destination:
 * the control connection carries the messages below, the data connection
 * carries one attach message and then one wire-format stream (dt_wire.h).
 * Documentation/dirtytrack.rst, "Migration protocol", describes every
 * message byte by byte; this header is its C form. Every integer is
 * little-endian on the wire. Nothing is encrypted: run it on a trusted
 * network, or under IPsec/WireGuard.
 *
 * Functions return 0 (or a count) on success and a negative errno on failure.
 */
#ifndef DT_PROTO_H
#define DT_PROTO_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define DT_PROTO_MAGIC		0x474d5444u	/* "DTMG" */
#define DT_PROTO_VERSION	2	/* 2: ACTIVATED of 40 bytes, PING in CLOCK_TAI */
#define DT_PROTO_MAX_PAYLOAD	(1u << 20)	/* 1 MiB: the largest message */
#define DT_PROTO_NONCE		32
#define DT_PROTO_MAC		32		/* HMAC-SHA256 */
#define DT_PROTO_SESSION	16
#define DT_PROTO_MAX_TOKEN	256

/* Message types. */
enum dt_msg_type {
	DT_MSG_CHALLENGE = 1,	/* dst -> src, first on each connection */
	DT_MSG_HELLO,		/* src -> dst: stage 0 */
	DT_MSG_WELCOME,		/* dst -> src */
	DT_MSG_REFUSE,		/* either way: abort, with the reason */
	DT_MSG_RESERVE,		/* src -> dst: stage 1 */
	DT_MSG_RESERVED,	/* dst -> src */
	DT_MSG_ATTACH,		/* src -> dst, first on the data connection */
	DT_MSG_ROUND_ACK,	/* dst -> src: a round arrived whole */
	DT_MSG_META,		/* src -> dst: the workload's opaque state */
	DT_MSG_COMMIT_REQ,	/* src -> dst: stage 4, everything is sent */
	DT_MSG_VERIFIED,	/* dst -> src: everything arrived whole */
	DT_MSG_COMMIT,		/* src -> dst: the destination owns the workload */
	DT_MSG_ACTIVATED,	/* dst -> src: stage 5 done */
	DT_MSG_PING,		/* src -> dst: clock and RTT probe */
	DT_MSG_PONG,		/* dst -> src */
	DT_MSG_PAUSE,		/* src -> dst: sending stops, PINGs keep it alive */
	DT_MSG_RESUME,		/* src -> dst: sending goes on */
	DT_MSG_REJOIN,		/* src -> dst: after a cut, instead of HELLO */
	DT_MSG_REJOINED,	/* dst -> src: what it holds */
	DT_MSG_NTYPES,
};

/* Frame header: 16 bytes, then len bytes of payload. */
struct dt_msg_hdr {
	uint32_t magic;		/* DT_PROTO_MAGIC */
	uint16_t type;		/* enum dt_msg_type */
	uint16_t version;	/* DT_PROTO_VERSION */
	uint32_t len;		/* payload bytes, at most DT_PROTO_MAX_PAYLOAD */
	uint32_t crc;		/* CRC32C of bytes 0..11, then of the payload */
};

/* Feature bits of HELLO and WELCOME. */
#define DT_PROTO_FEAT_KERNEL_RX	(1ull << 0)	/* the receiver applies in the kernel */
#define DT_PROTO_FEAT_PAUSE	(1ull << 1)	/* the destination takes PAUSE and RESUME */
#define DT_PROTO_FEAT_REJOIN	(1ull << 2)	/* it keeps its state for a REJOIN after a cut */

struct dt_msg_challenge {
	uint32_t version;	/* highest protocol version the destination speaks */
	uint32_t reserved;
	uint8_t nonce[DT_PROTO_NONCE];
};

struct dt_msg_hello {
	uint32_t version;
	uint32_t page_size;
	uint64_t features;
	uint64_t region_size;	/* bytes */
	uint64_t populated;	/* pages holding memory on the source */
	char tracker[16];	/* NUL-padded tracker name */
	char sender[16];	/* "kernel" or "user" */
	uint8_t session[DT_PROTO_SESSION];
	uint8_t nonce[DT_PROTO_NONCE];
	uint8_t mac[DT_PROTO_MAC];	/* see dt_proto_mac() */
};

struct dt_msg_welcome {
	uint64_t features;
	char receiver[16];	/* "kernel" or "user" */
	uint8_t mac[DT_PROTO_MAC];
};

struct dt_msg_refuse {
	int32_t err;		/* a positive errno */
	uint32_t stage;		/* the stage that failed */
	char reason[200];	/* NUL-terminated */
};

struct dt_msg_reserve {
	uint64_t region_size;
	uint64_t populated;
};

struct dt_msg_attach {
	uint8_t session[DT_PROTO_SESSION];
	uint8_t mac[DT_PROTO_MAC];
};

/*
 * After a cut: the source proves the token over the new CHALLENGE's nonce
 * and the session, and sends a nonce of its own for the reply.
 */
struct dt_msg_rejoin {
	uint8_t session[DT_PROTO_SESSION];
	uint8_t nonce[DT_PROTO_NONCE];
	uint8_t mac[DT_PROTO_MAC];	/* "dt-migrate rejoin": challenge nonce, session */
};

/* What the destination holds: whole rounds, and records of the next one. */
struct dt_msg_rejoined {
	uint64_t rounds;	/* whole rounds (markers) arrived: 0 .. rounds - 1 */
	uint64_t last_count;	/* the last whole round's record count */
	uint64_t total_records;	/* records applied, whole rounds and the cut one */
	uint64_t cut_records;	/* records applied of round @rounds, in stream order */
	uint8_t mac[DT_PROTO_MAC];	/* "dt-migrate rejoined": REJOIN's nonce, challenge's */
};

struct dt_msg_round_ack {
	uint64_t round;
	uint64_t records;	/* the marker's count */
	uint64_t total_records;	/* records applied since the stream began */
	uint64_t bytes;		/* stream bytes read so far */
};

struct dt_msg_commit_req {
	uint64_t last_round;
	uint64_t rounds;	/* markers sent */
	uint64_t total_records;
	uint64_t meta_len;	/* bytes of META sent before this message */
};

/* Times are the destination's CLOCK_TAI; 0 where unknown. */
struct dt_msg_activated {
	int32_t pid;		/* the started workload, or 0 (held, no --exec) */
	int32_t err;		/* 0, or why --exec failed (positive errno) */
	uint64_t started_ns;	/* the workload was let go (its exec asked) */
	uint64_t final_round_ns;	/* the last round arrived whole (the probe's
				 * RECEIVE tracepoint, else dt-migrate's ack) */
	uint64_t commit_ns;	/* COMMIT arrived */
	uint64_t exec_ns;	/* the workload's exec (the blackout probe) */
};

struct dt_msg_ping {
	uint64_t t1;		/* source CLOCK_TAI at send */
	uint64_t t2;		/* destination at receipt (PONG) */
	uint64_t t3;		/* destination at reply (PONG) */
};

/* A received message: hdr in host order, payload in buf. */
struct dt_msg {
	struct dt_msg_hdr hdr;
	uint8_t *buf;		/* malloc'ed, DT_PROTO_MAX_PAYLOAD bytes */
};

/* The stage names of the docs and the JSON: "pre-migration", ... */
const char *dt_stage_name(int stage);
const char *dt_msg_name(int type);

/*
 * The structs above are the payloads as they are on the wire: every field
 * is little-endian, so on the little-endian hosts dt-migrate builds for
 * (checked at compile time) they are used in place.
 */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dt_proto: the wire structs are little-endian; add byte swapping"
#endif

/*
 * A flag a signal handler sets: dt_msg_recv() then returns -EINTR within
 * 200 ms, even if the signal came just before it started waiting.
 */
void dt_proto_set_stop_flag(volatile sig_atomic_t *flag);

/*
 * Send all of iov[0..n) (modified), over short writes and EINTR unless the
 * stop flag is set; MSG_NOSIGNAL.
 */
int dt_proto_sendv(int fd, struct iovec *iov, int n);
/* Send one message (dt_proto_sendv()). */
int dt_msg_send(int fd, int type, const void *payload, uint32_t len);
/*
 * Receive one message within timeout_ms (-1: no limit). Checks magic
 * (-EPROTO), version (-EPROTONOSUPPORT), length (-EMSGSIZE) and CRC
 * (-EBADMSG); -ETIMEDOUT, -ECONNRESET at EOF, -EINTR on a signal.
 */
int dt_msg_recv(int fd, struct dt_msg *m, int timeout_ms);
/* The payload as a struct of want bytes: -EMSGSIZE unless len == want. */
int dt_msg_expect(const struct dt_msg *m, int type, void *out, size_t want);

/*
 * HMAC-SHA256 over label || a || b with the shared token: what each side
 * proves (the source over the destination's nonce, and the reverse).
 */
int dt_proto_mac(const uint8_t *token, size_t token_len, const char *label,
		 const void *a, size_t alen, const void *b, size_t blen,
		 uint8_t mac[DT_PROTO_MAC]);
/* Constant-time comparison of two MACs: 0 if equal. */
int dt_proto_mac_cmp(const uint8_t *a, const uint8_t *b);
/* Read a token file (hex, trailing white space ignored). */
int dt_proto_token_read(const char *path, uint8_t *token, size_t *len);

#endif /* DT_PROTO_H */
