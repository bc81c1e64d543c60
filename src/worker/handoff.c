/* handoff: live connections moving from a draining worker to its successor
 * (see handoff.h for the exchange).
 *
 * Sending: handoff_export() takes a connection at a request boundary out of
 * the epoll set, encodes its record into the batch being filled and frees
 * the connection (its socket is held here). A batch goes out when it is
 * full (CHAN_MAX_FDS sockets or a full payload) or at the end of the loop
 * round (a zero-delay timer), through a chan_out that never waits. Each
 * sent batch waits, with our copies of its sockets, for its
 * CHAN_HANDOFF_DONE. What could not be sent, was refused, or was never
 * answered is given back to its protocol with `returned` set, which drains
 * it as before (last response Connection: close, lingering close). Nothing
 * is given back from inside handoff_export: only from the timer and the
 * channel's events, so a protocol's drain never meets a connection
 * appearing under it.
 *
 * Receiving: each predecessor's channel is watched; every CHAN_HANDOFF is
 * answered once, adopted or not. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "worker/handoff.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/chan.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/scoreboard.h"
#include "worker/conn.h"

#define HANDOFF_MAX_BATCHES CHAN_OUT_MAX_MSGS /* in flight at once; beyond: drained as before */
#define HANDOFF_TEST_VERSION_ENV "DROVER_TEST_HANDOFF_VERSION" /* tests: write this version */

/* One CHAN_HANDOFF: being filled, waiting to be sent, or sent and waiting
 * for its answer. fds are ours, in record order. */
struct handoff_batch {
	struct handoff_batch *next;
	size_t n;
	int fds[CHAN_MAX_FDS];
	size_t len;
	unsigned char data[CHAN_DATA_MAX];
};

/* A predecessor's channel, and what we could not answer on it yet. */
struct handoff_in {
	struct handoff_in *next;
	pid_t pid;
	struct chan_out q;
	/* Answers not sent yet, in order: the predecessor takes back what it
	 * does not hear about, so an answer is never dropped while the
	 * channel lives (no allocation: a predecessor has at most
	 * HANDOFF_MAX_BATCHES batches in flight). */
	uint64_t owed[HANDOFF_MAX_BATCHES];
	unsigned owed_head, owed_n;
};

/* A successor's channel, and what was sent on it and not answered yet.
 * The newest gets new batches; an older one (its successor drains too,
 * and the supervisor gave us the next one) closes once answered. */
struct handoff_out {
	struct handoff_out *next; /* older */
	pid_t pid;
	struct chan_out q;
	struct handoff_batch *sent, **sent_tail; /* oldest first */
};

static struct {
	struct handoff_host host;
	bool handing_off;
	unsigned version;             /* written: HANDOFF_VERSION unless a test says otherwise */
	struct handoff_out *outs;     /* newest first; NULL: no successor */
	struct handoff_batch *filling; /* NULL: none yet */
	struct handoff_batch *ready, **ready_tail; /* full, not sent yet */
	size_t n_batches;             /* ready + sent + filling */
	struct loop_timer flush;
	struct handoff_in *ins;
} ho;

static void put_le(unsigned char *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ------------------------------------------------------------ records */

int handoff_rec_encode(const struct conn *c, const struct handoff_conn *h, unsigned version, unsigned char *out,
		       size_t cap)
{
	const char *name = c->listener ? c->listener->name : "";
	const char *proto = c->listener && c->listener->proto ? c->listener->proto->name : "";
	size_t nl = strlen(name), pl = strlen(proto);
	size_t size = HANDOFF_REC_HDR + nl + pl + h->len;
	if (nl > CONFIG_NAME_MAX || pl > CONFIG_PROTO_NAME_MAX || h->len > HANDOFF_BYTES_MAX || size > cap ||
	    c->peer_len > HANDOFF_REC_HDR - 28)
		return -EMSGSIZE;
	memset(out, 0, HANDOFF_REC_HDR);
	out[0] = (unsigned char)version;
	out[1] = (unsigned char)nl;
	out[2] = (unsigned char)pl;
	out[3] = c->peer_len;
	put_le(out + 4, size, 4);
	put_le(out + 8, h->requests, 4);
	put_le(out + 12, h->flags, 4);
	put_le(out + 16, h->idle_left_ms, 8);
	put_le(out + 24, h->len, 4);
	memcpy(out + 28, &c->peer, c->peer_len);
	memcpy(out + HANDOFF_REC_HDR, name, nl);
	memcpy(out + HANDOFF_REC_HDR + nl, proto, pl);
	if (h->len)
		memcpy(out + HANDOFF_REC_HDR + nl + pl, h->bytes, h->len);
	return (int)size;
}

/* The size of the record at buf (every version has it at 4), or 0. */
static size_t handoff_rec_size(const unsigned char *buf, size_t len)
{
	if (len < 8)
		return 0;
	size_t rec = (size_t)get_le(buf + 4, 4);
	return rec < 8 || rec > len ? 0 : rec;
}

/* As handoff_rec_decode; own: a record this worker wrote itself, in
 * whatever version it wrote (a test may make it claim a newer one). */
static int handoff_rec_read(const unsigned char *buf, size_t len, struct handoff_rec *r, size_t *size, bool own)
{
	size_t rec = handoff_rec_size(buf, len);
	*size = rec;
	if (rec == 0)
		return -EBADMSG;
	memset(r, 0, sizeof(*r));
	r->version = own ? 1 : buf[0];
	if (r->version > HANDOFF_VERSION)
		return -EPROTONOSUPPORT;
	/* Version 1 is all this build knows; a newer build reads it the same. */
	size_t nl = buf[1], pl = buf[2], peer_len = buf[3];
	if (r->version < 1 || rec < HANDOFF_REC_HDR || nl > CONFIG_NAME_MAX || pl > CONFIG_PROTO_NAME_MAX ||
	    peer_len > HANDOFF_REC_HDR - 28)
		return -EBADMSG;
	size_t blen = (size_t)get_le(buf + 24, 4);
	if (blen > HANDOFF_BYTES_MAX || HANDOFF_REC_HDR + nl + pl + blen != rec)
		return -EBADMSG;
	r->h.requests = (uint32_t)get_le(buf + 8, 4);
	r->h.flags = (uint32_t)get_le(buf + 12, 4);
	r->h.idle_left_ms = get_le(buf + 16, 8);
	memcpy(&r->peer, buf + 28, peer_len);
	r->peer_len = (socklen_t)peer_len;
	r->h.peer = peer_len ? (const struct sockaddr *)&r->peer : NULL;
	r->h.peer_len = r->peer_len;
	memcpy(r->listener, buf + HANDOFF_REC_HDR, nl);
	memcpy(r->proto, buf + HANDOFF_REC_HDR + nl, pl);
	r->h.bytes = buf + HANDOFF_REC_HDR + nl + pl;
	r->h.len = blen;
	return (int)rec;
}

int handoff_rec_decode(const unsigned char *buf, size_t len, struct handoff_rec *r, size_t *size)
{
	return handoff_rec_read(buf, len, r, size, false);
}

/* ------------------------------------------------------------ taking back */

static void handoff_batch_free(struct handoff_batch *b)
{
	ho.n_batches--;
	free(b);
}

/* Give record i of b (its socket fds[i]) back to its protocol, drained as
 * before hand-off; or close it if even that fails. */
static void handoff_take_back(const unsigned char *rec, size_t len, int fd)
{
	struct handoff_rec r;
	size_t size;
	const struct worker_listener *l = NULL;
	if (handoff_rec_read(rec, len, &r, &size, true) >= 0)
		l = ho.host.listener(ho.host.arg, r.listener);
	r.h.returned = true;
	if (!l || !l->proto->adopt || l->proto->adopt(ho.host.env, l, fd, &r.h) < 0) {
		log_warning("hand-off: cannot take back a connection, closing it");
		close(fd);
	}
}

/* Settle batch b: records whose bit is in adopted are the successor's
 * (our copies close), the others come back. */
static void handoff_settle(struct handoff_batch *b, uint64_t adopted)
{
	size_t off = 0, back = 0;
	for (size_t i = 0; i < b->n; i++) {
		size_t size = handoff_rec_size(b->data + off, b->len - off);
		if (adopted & (UINT64_C(1) << i)) {
			close(b->fds[i]);
			sb_add32(&ho.host.slot->handed_off, 1);
		} else {
			handoff_take_back(b->data + off, b->len - off, b->fds[i]);
			back++;
		}
		off += size ? size : b->len - off;
	}
	if (back)
		log_info("hand-off: %zu of %zu connection(s) not adopted, draining them here", back, b->n);
	handoff_batch_free(b);
}

/* Whether a send failed because the other worker is gone (then what it
 * did not answer is ours again); any other failure is our own (memory,
 * fds) and says nothing of what it holds. */
static bool handoff_peer_gone(int r)
{
	return r == -EPIPE || r == -ECONNRESET || r == -ECONNREFUSED || r == -ENOTCONN;
}

/* The last n batches sent on o never reached the kernel (a local failure
 * dropped them from its queue): they come back. */
static void handoff_out_unsend(struct handoff_out *o, size_t n)
{
	size_t len = 0;
	for (struct handoff_batch *b = o->sent; b; b = b->next)
		len++;
	if (n > len)
		n = len;
	struct handoff_batch **pp = &o->sent;
	for (size_t i = 0; i < len - n; i++)
		pp = &(*pp)->next;
	struct handoff_batch *back = *pp;
	*pp = NULL;
	o->sent_tail = pp;
	for (struct handoff_batch *b = back, *next; b; b = next) {
		next = b->next;
		handoff_settle(b, 0);
	}
}

static void handoff_out_close(struct handoff_out *o)
{
	for (struct handoff_out **pp = &ho.outs; *pp; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	loop_del_fd(ho.host.loop, o->q.fd);
	chan_out_clear(&o->q);
	close(o->q.fd);
	free(o);
}

/* A successor's channel is gone: what was sent on it and not answered
 * comes back; without another successor, so does everything not sent. */
static void handoff_out_lost(struct handoff_out *o, const char *why)
{
	log_warning("hand-off channel to worker pid %d: %s; draining what it did not answer here", (int)o->pid,
		    why);
	struct handoff_batch *sent = o->sent;
	handoff_out_close(o);
	for (struct handoff_batch *b = sent, *next; b; b = next) {
		next = b->next;
		handoff_settle(b, 0);
	}
	if (!ho.outs) {
		ho.handing_off = false;
		struct handoff_batch *lists[] = { ho.ready, ho.filling };
		ho.ready = ho.filling = NULL;
		ho.ready_tail = &ho.ready;
		for (size_t k = 0; k < 2; k++)
			for (struct handoff_batch *b = lists[k], *next; b; b = next) {
				next = b->next;
				handoff_settle(b, 0);
			}
	}
	ho.host.settled(ho.host.arg);
}

/* ------------------------------------------------------------ sending */

/* Send what is full and, at the end of a round, what is being filled, on
 * the newest successor's channel. */
static void handoff_flush(struct loop *loop, struct loop_timer *t, void *arg)
{
	(void)loop;
	(void)t;
	(void)arg;
	if (ho.filling) {
		*ho.ready_tail = ho.filling;
		ho.ready_tail = &ho.filling->next;
		ho.filling = NULL;
	}
	while (ho.ready && ho.outs) {
		struct handoff_out *o = ho.outs;
		struct handoff_batch *b = ho.ready;
		ho.ready = b->next;
		if (!ho.ready)
			ho.ready_tail = &ho.ready;
		b->next = NULL;
		struct chan_msg m = { .type = CHAN_HANDOFF, .arg = ((uint64_t)ho.version << 32) | b->n, .len = b->len };
		memcpy(m.data, b->data, b->len);
		int r = chan_out_send(&o->q, &m, b->fds, b->n, CHAN_HOLD_APPEND);
		if (r < 0) {
			/* Not sent: it drains here. Only a successor that is gone
			 * ends the channel; after a failure of our own (a full
			 * queue, memory, fds) what it was sent before still waits
			 * for its answer, which may say adopted. */
			log_errno(LOG_WARNING, r, "hand-off: cannot send %zu connection(s)", b->n);
			handoff_settle(b, 0);
			if (handoff_peer_gone(r)) {
				handoff_out_lost(o, "send failed");
				return;
			}
			continue;
		}
		if (r == CHAN_OUT_HELD)
			loop_mod_fd(ho.host.loop, o->q.fd, LOOP_READ | LOOP_WRITE);
		*o->sent_tail = b;
		o->sent_tail = &b->next;
	}
	ho.host.settled(ho.host.arg);
}

static void handoff_out_events(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct handoff_out *o = arg;
	if ((events & LOOP_WRITE) && chan_out_held(&o->q)) {
		size_t dropped = 0;
		int r = chan_out_flush_dropping(&o->q, &dropped);
		if (r < 0 && handoff_peer_gone(r)) {
			handoff_out_lost(o, "send failed");
			return;
		}
		if (r < 0) {
			/* Ours: the batches still queued never left; the others
			 * wait for their answers. */
			log_errno(LOG_WARNING, r, "hand-off: cannot send to worker pid %d", (int)o->pid);
			handoff_out_unsend(o, dropped);
			ho.host.settled(ho.host.arg);
		}
		if (r != CHAN_OUT_HELD)
			loop_mod_fd(loop, fd, LOOP_READ);
	}
	for (;;) {
		struct chan_msg m;
		int r = chan_recv(fd, &m);
		if (r == -EAGAIN)
			return;
		if (r == -EBADMSG)
			continue;
		if (r <= 0) {
			handoff_out_lost(o, r == 0 ? "closed" : "broken");
			return;
		}
		if (m.type != CHAN_HANDOFF_DONE || !o->sent) {
			log_warning("hand-off: unexpected %s from worker pid %d", chan_type_name(m.type), (int)o->pid);
			continue;
		}
		struct handoff_batch *b = o->sent;
		o->sent = b->next;
		if (!o->sent)
			o->sent_tail = &o->sent;
		/* An older successor's channel, all answered: done with it. */
		bool done = !o->sent && o != ho.outs;
		if (done)
			handoff_out_close(o);
		handoff_settle(b, m.arg);
		ho.host.settled(ho.host.arg);
		if (done)
			return;
	}
}

int handoff_export(const struct proto_env *env, struct conn *c, const struct handoff_conn *h)
{
	(void)env;
	if (!ho.handing_off || !ho.outs || c->fd < 0)
		return -ENOTCONN;
	unsigned char rec[HANDOFF_REC_HDR + CONFIG_NAME_MAX + CONFIG_PROTO_NAME_MAX + HANDOFF_BYTES_MAX];
	int size = handoff_rec_encode(c, h, ho.version, rec, sizeof(rec));
	if (size < 0)
		return size;
	if (ho.filling && (ho.filling->n == CHAN_MAX_FDS || ho.filling->len + (size_t)size > CHAN_DATA_MAX)) {
		*ho.ready_tail = ho.filling;
		ho.ready_tail = &ho.filling->next;
		ho.filling = NULL;
	}
	if (!ho.filling) {
		if (ho.n_batches >= HANDOFF_MAX_BATCHES)
			return -ENOBUFS;
		ho.filling = malloc(sizeof(*ho.filling));
		if (!ho.filling)
			return -ENOMEM;
		ho.filling->next = NULL;
		ho.filling->n = ho.filling->len = 0;
		ho.n_batches++;
	}
	struct handoff_batch *b = ho.filling;
	memcpy(b->data + b->len, rec, (size_t)size);
	b->len += (size_t)size;
	/* Out of our epoll set first: a socket still registered here would
	 * wake this worker for events that are the successor's. */
	(void)loop_del_fd(c->loop, c->fd);
	b->fds[b->n++] = c->fd;
	c->fd = -1; /* conn_close() leaves the socket open: it is ours now */
	conn_close(c);
	if (!loop_timer_armed(&ho.flush))
		loop_timer_arm(ho.host.loop, &ho.flush, 0);
	return 0;
}

/* ------------------------------------------------------------ receiving */

static void handoff_in_close(struct handoff_in *in)
{
	for (struct handoff_in **pp = &ho.ins; *pp; pp = &(*pp)->next)
		if (*pp == in) {
			*pp = in->next;
			break;
		}
	loop_del_fd(ho.host.loop, in->q.fd);
	chan_out_clear(&in->q);
	close(in->q.fd);
	free(in);
	ho.host.settled(ho.host.arg);
}

/* Adopt what one CHAN_HANDOFF carries; the bits of those adopted. fds are
 * all taken (adopted, or closed: the sender keeps its own copies). */
static uint64_t handoff_adopt(const struct chan_msg *m, int *fds, size_t n_fds, pid_t from)
{
	unsigned version = (unsigned)(m->arg >> 32);
	size_t n = (size_t)(m->arg & 0xffffffffu);
	uint64_t adopted = 0;
	const char *why = NULL;
	if (version > HANDOFF_VERSION)
		why = "a newer hand-off format";
	else if (n != n_fds || n > CHAN_MAX_FDS)
		why = "sockets lost on the way (MSG_CTRUNC)";
	size_t off = 0, refused = 0;
	for (size_t i = 0; i < n_fds; i++) {
		struct handoff_rec r;
		size_t size = 0;
		const struct worker_listener *l = NULL;
		int d = why ? -EPROTO : handoff_rec_decode(m->data + off, m->len - off, &r, &size);
		if (d >= 0)
			l = ho.host.listener(ho.host.arg, r.listener);
		if (d >= 0 && l && strcmp(l->proto->name, r.proto) == 0 && l->proto->adopt &&
		    (!l->transport || l->transport->movable) && ho.host.room(ho.host.arg, l) &&
		    l->proto->adopt(ho.host.env, l, fds[i], &r.h) == 0) {
			adopted |= UINT64_C(1) << i;
			sb_add32(&ho.host.slot->adopted, 1);
		} else {
			close(fds[i]);
			refused++;
		}
		if (d < 0 && size == 0)
			why = why ? why : "a malformed record";
		off += size;
	}
	if (refused)
		log_info("hand-off: refused %zu of %zu connection(s) from worker pid %d%s%s", refused, n_fds, (int)from,
			 why ? ": " : "", why ? why : "");
	return adopted;
}

/* Send the answers owed, in order: 0 when none is left, -EAGAIN when the
 * channel is full (or our send failed for want of memory: tried again when
 * it is writable), or the error of a predecessor that is gone. */
static int handoff_in_answer(struct handoff_in *in)
{
	while (in->owed_n) {
		int r = chan_send(in->q.fd, CHAN_HANDOFF_DONE, in->owed[in->owed_head]);
		if (r < 0)
			return handoff_peer_gone(r) ? r : -EAGAIN;
		in->owed_head = (in->owed_head + 1) % HANDOFF_MAX_BATCHES;
		in->owed_n--;
	}
	return 0;
}

static void handoff_in_events(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct handoff_in *in = arg;
	for (;;) {
		int a = handoff_in_answer(in);
		if (a < 0 && a != -EAGAIN) {
			handoff_in_close(in); /* the predecessor is gone */
			return;
		}
		loop_mod_fd(loop, fd, a == -EAGAIN ? LOOP_READ | LOOP_WRITE : LOOP_READ);
		if (in->owed_n == HANDOFF_MAX_BATCHES)
			return; /* read more once these answers are out */
		struct chan_msg m;
		int fds[CHAN_MAX_FDS];
		size_t n_fds;
		int r = chan_recv_fds(fd, &m, fds, CHAN_MAX_FDS, &n_fds);
		if (r == -EAGAIN)
			return;
		if (r == -EBADMSG)
			continue;
		if (r <= 0) {
			handoff_in_close(in);
			return;
		}
		if (m.type != CHAN_HANDOFF) {
			for (size_t i = 0; i < n_fds; i++)
				close(fds[i]);
			continue;
		}
		uint64_t adopted = handoff_adopt(&m, fds, n_fds, in->pid);
		in->owed[(in->owed_head + in->owed_n) % HANDOFF_MAX_BATCHES] = adopted;
		in->owed_n++;
	}
}

/* Whether fd is a SOCK_SEQPACKET pair made by our supervisor (SO_PEERCRED
 * of a socketpair names the process that made it). */
static bool handoff_from_supervisor(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int type;
	socklen_t tlen = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_SEQPACKET)
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return cred.pid == getppid();
}

void handoff_predecessor(int fd, pid_t pid)
{
	struct handoff_in *in = NULL;
	if (!handoff_from_supervisor(fd) || !(in = calloc(1, sizeof(*in)))) {
		log_warning("hand-off: refusing a channel from worker pid %d", (int)pid);
		close(fd);
		return;
	}
	in->pid = pid;
	chan_out_init(&in->q, fd, CHAN_VERSION);
	if (loop_add_fd(ho.host.loop, fd, LOOP_READ, handoff_in_events, in) < 0) {
		close(fd);
		free(in);
		return;
	}
	in->next = ho.ins;
	ho.ins = in;
}

void handoff_successor(int fd, pid_t pid)
{
	struct handoff_out *o = NULL;
	if (!handoff_from_supervisor(fd) || !(o = calloc(1, sizeof(*o))) ||
	    loop_add_fd(ho.host.loop, fd, LOOP_READ, handoff_out_events, o) < 0) {
		log_warning("hand-off: ignoring a channel to worker pid %d", (int)pid);
		free(o);
		close(fd);
		return;
	}
	o->pid = pid;
	chan_out_init(&o->q, fd, CHAN_VERSION);
	o->sent_tail = &o->sent;
	/* The previous successor drains in its turn: it gets nothing new,
	 * and its channel closes once it has answered what it has. */
	struct handoff_out *prev = ho.outs;
	o->next = prev;
	ho.outs = o;
	if (prev && !prev->sent)
		handoff_out_close(prev);
	if (ho.handing_off)
		log_info("handing connections over to worker pid %d from now on", (int)pid);
}

bool handoff_begin(bool stopping)
{
	ho.handing_off = !stopping && ho.outs;
	if (ho.handing_off)
		log_info("handing connections over to worker pid %d", (int)ho.outs->pid);
	return ho.handing_off;
}

bool handoff_busy(void)
{
	return ho.n_batches > 0 || (ho.handing_off && ho.ins);
}

void handoff_end(void)
{
	for (struct handoff_out *o = ho.outs; o; o = o->next)
		for (struct handoff_batch *b = o->sent; b; b = b->next)
			for (size_t i = 0; i < b->n; i++)
				close(b->fds[i]);
	struct handoff_batch *lists[] = { ho.ready, ho.filling };
	for (size_t k = 0; k < 2; k++)
		for (struct handoff_batch *b = lists[k]; b; b = b->next)
			for (size_t i = 0; i < b->n; i++)
				close(b->fds[i]);
}

const bool *handoff_flag(void)
{
	return &ho.handing_off;
}

void handoff_init(const struct handoff_host *host)
{
	ho.host = *host;
	ho.ready_tail = &ho.ready;
	ho.version = HANDOFF_VERSION;
	const char *v = getenv(HANDOFF_TEST_VERSION_ENV);
	if (v && *v)
		ho.version = (unsigned)strtoul(v, NULL, 10) & 0xff;
	loop_timer_init(&ho.flush, handoff_flush, NULL);
}
