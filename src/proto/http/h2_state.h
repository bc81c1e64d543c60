/* http h2 state: the data of an HTTP/2 connection and of its streams,
 * shared by the connection (h2.c: I/O, nghttp2's callbacks, timeouts,
 * drain) and the streams (h2_stream.c: requests to the router, responses
 * to frames). Private to src/proto/http. */
#ifndef DROVER_HTTP_H2_STATE_H
#define DROVER_HTTP_H2_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>

#include "proto/http/parse.h"
#include "proto/http/response.h"
#include "proto/http/state.h"
#include "worker/conn.h"

#define H2_IN_CHUNK (16 * 1024)         /* one read */
#define H2_READS_PER_WAKE 8             /* then other connections get a turn */
#define H2_WRITE_SHARE (1024 * 1024)    /* bytes written per wake-up */
#define H2_DRAIN_PING_MS 1000           /* the drain's PING ACK is waited for this long */
#define H2_CREDIT_START 1000
#define H2_CREDIT_MAX 2000
#define H2_COST_CONTROL 1               /* a frame that asks work and answers nothing */
#define H2_COST_RESET 4                 /* a peer reset of a stream we answered: work thrown away */
#define H2_COST_HUGE_HEADERS 200        /* a header list past max_header_list_size */
#define H2_DATA_MIN 1024                /* a DATA frame smaller is a sliver (h2_sliver) */
#define H2_SLIVER_WAIT_MS 50            /* how long a sliver waits for a wider window */
#define H2_NOMEM_RETRY_MS 100           /* output that found no buffer tries again after */
#define H2_EARN_DATA 3                  /* a DATA frame of at least H2_EARN_DATA_MIN bytes sent */
#define H2_EARN_DATA_MIN 1024
#define H2_EARN_RESPONSE 4              /* a response sent whole */
#define H2_BLOCK_INLINE 480             /* request fields kept in the stream itself */
#define H2_PART_MAX 512                 /* a multipart part's header */
#define H2_MAX_FIELDS (HTTP_MAX_HEADERS + 8) /* fields kept per request, pseudo-fields included */

struct h2_conn;

/* A request field kept in a stream's block: the record, then the name's
 * and the value's bytes. */
struct h2_field_rec {
	uint32_t name_len;
	uint32_t value_len;
};

struct h2_stream {
	struct h2_conn *h;
	struct h2_stream *prev, *next; /* the connection's streams, oldest first */
	int32_t id;
	bool complete;      /* END_STREAM came: the request is whole */
	bool answered;      /* a response was submitted */
	bool finished;      /* ...and its last frame was sent */
	bool too_large;     /* the header list passed max_header_list_size, or too many fields */
	bool head_only;
	bool deferred;      /* its data waits for a wider window (h2_sliver) */
	bool peer_reset;    /* the client sent RST_STREAM */
	bool sliver_ok;     /* the next DATA frame may be a sliver (its wait is over) */
	enum http_method method; /* for the metrics; OTHER until the request is decoded */
	int status;
	uint32_t n_fields;
	size_t decoded;     /* header list size as RFC 9113 §6.5.2 counts it */
	char *block;        /* the fields (struct h2_field_rec + bytes each): block_inline, or malloc'd */
	size_t block_len, block_cap;
	uint64_t start_ms;  /* its HEADERS began */
	uint64_t body_in;   /* request body bytes, discarded */
	uint64_t body_sent;
	struct http_body_src src;
	char *part;         /* multipart: the next part's header (H2_PART_MAX, malloc'd), from part_off */
	size_t part_len, part_off;
	/* A usual request's fields fit here: no allocation per stream
	 * beyond the struct, which comes from a per-worker free list. */
	char block_inline[H2_BLOCK_INLINE];
};

#define H2_RING 32

/* The input's frame boundaries (h2_scan in h2.c). */
struct h2_scan {
	uint32_t preface;   /* bytes of the client preface still to pass */
	uint32_t left;      /* payload bytes of the current frame still to pass */
	uint32_t sid;       /* the current frame's stream */
	uint32_t dep;       /* a PRIORITY frame's dependency, as its bytes come */
	uint8_t hdr[9];
	uint8_t hdr_n;      /* bytes of a frame header gathered */
	uint8_t dep_n;
	bool prio;          /* the current frame is a PRIORITY frame */
};

struct h2_conn {
	struct conn base; /* first: conn_close() hands us back as a struct conn */
	nghttp2_session *ng;
	struct conn_buf out; /* io's output buffer while io is held; data NULL otherwise */
	struct http_conn *io; /* from the pool (pool.c), for its buffer, while there is output */
	struct h2_stream *first, *last;
	unsigned n_streams;  /* open */
	unsigned n_answered; /* open with a response submitted */
	unsigned requests;   /* streams begun: keepalive_requests */
	size_t max_list;     /* max_header_list_size in force */
	unsigned max_streams;/* max_concurrent_streams in force (h2_on_send tells the client) */
	bool settings_sent;  /* our SETTINGS went out */
	int credit;
	uint64_t idle_since; /* no stream open since */
	uint64_t progress_ms;/* the last write that made progress, while responses are under way */
	uint64_t drain_ms;   /* the drain's first GOAWAY went out */
	uint64_t deferred_ms;/* some stream's data waits for a wider window since; 0: none */
	uint64_t nomem_ms;   /* output waits for a buffer memory could not give since; 0: none */
	bool blocked;        /* the transport took less than offered: wait for LOOP_WRITE */
	bool more;           /* the write share is used: LOOP_WRITE brings us back */
	bool peer_eof;
	bool draining;       /* the first GOAWAY is queued */
	bool final_goaway;   /* the GOAWAY with the real last stream id is queued */
	bool calm;           /* the credit ran out */
	bool dead;           /* the session is over: only what is queued goes out (h2_close_after) */
	uint32_t error;      /* a connection error of ours (h2_on_begin_frame, h2_scan): its GOAWAY code */
	int32_t max_id;      /* highest client stream begun */
	/* Recent streams begun, and reset by us (RST_STREAM sent), for the
	 * checks nghttp2 leaves out (h2_on_begin_frame). */
	int32_t used_ids[H2_RING], reset_ids[H2_RING], closed_ids[H2_RING];
	unsigned used_at, reset_at, closed_at;
	struct h2_scan scan;
	bool busy;           /* inside nghttp2: closing is left to the caller */
};

/* A stream id in a ring of recent ones. */
static inline void h2_ring_put(int32_t *ring, unsigned n, unsigned *at, int32_t id)
{
	ring[*at % n] = id;
	(*at)++;
}

static inline bool h2_ring_has(const int32_t *ring, unsigned n, int32_t id)
{
	for (unsigned i = 0; i < n; i++)
		if (ring[i] == id)
			return true;
	return false;
}

/* h2_mem.c: the output buffer's room at its end, taking a buffer when
 * there is none (0 when memory ran out); giving it back. */
size_t h2_out_room(struct h2_conn *h);
void h2_out_give(struct h2_conn *h);
/* The connection's credit: control frames spend it, useful work earns it
 * back; spent out, the connection ends with GOAWAY(ENHANCE_YOUR_CALM). */
void h2_spend(struct h2_conn *h, int cost);
/* A connection HTTP/2 could not set up (err: nghttp2's error, 0 or
 * NGHTTP2_ERR_NOMEM for memory) is closed: say so as a shortage. */
void h2_nomem_dropped(int err);
void h2_earn(struct h2_conn *h, int n);

/* h2_mem.c: nghttp2's allocator (per-size free lists), and giving the
 * spare blocks back when the worker exits. */
extern nghttp2_mem h2_mem;
void h2_mem_done(void);

/* h2_stream.c */
/* The request being routed or logged (one at a time per worker), filled
 * by h2_stream_request(). */
extern struct http_request h2_req;
/* A new stream of h (its fields empty), or NULL when memory ran out. */
struct h2_stream *h2_stream_new(struct h2_conn *h, int32_t id);
/* st is over (closed, or its connection went): its access-log line and
 * metrics when it was answered (reset: counted as one), then freed. */
void h2_stream_done(struct h2_conn *h, struct h2_stream *st, bool reset);
/* Streams whose data waited for a wider window (h2_sliver) try again;
 * sliver_ok: they may send what the window allows, however small. */
void h2_resume_deferred(struct h2_conn *h, bool sliver_ok);
/* Unlink st from its connection and give it back. */
void h2_stream_free(struct h2_stream *st);
/* Free the spare streams (the worker is exiting). */
void h2_stream_spares_free(void);
/* Keep one field of st's request header block; false: the block is over
 * a limit (max_list bytes, or too many fields) and the request gets 431. */
bool h2_stream_keep(struct h2_stream *st, const uint8_t *name, size_t name_len, const uint8_t *value,
		    size_t value_len, size_t max_list);
/* st's request into h2_req: 0, or the status to answer. */
int h2_stream_request(const struct h2_stream *st);
/* The request of st is whole: route it and submit the response. */
void h2_route(struct h2_conn *h, struct h2_stream *st);
/* Answer st with an error of its own (408, 413, 431...). */
void h2_respond_error(struct h2_conn *h, struct h2_stream *st, int status);
/* nghttp2's send_data_callback: a no-copy DATA frame into the output buffer. */
int h2_on_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
		    nghttp2_data_source *source, void *user);

#endif
