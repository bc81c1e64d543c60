/* load: the integration tests' one load client (see load.h). The child
 * runs one poll loop over its connections; each holds a queue of
 * outstanding requests (sent, or to be re-sent on its next connection)
 * and reads their answers in order. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "load.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define SLICE_MS 10 /* re-check interval of h_load_wait_ok and h_load_stop */

static const char echo_payload[] = "hi\n";

static uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

uint64_t h_load_failed(const struct h_load_stats *s)
{
	return s->truncated + s->wrong + s->unanswered;
}

enum lc_state { LC_IDLE, LC_CONNECTING, LC_OPEN };
enum lc_cause { CAUSE_CLOSE, CAUSE_EOF, CAUSE_RESET };

struct lconn {
	int fd;
	enum lc_state st;
	int64_t retry_at;         /* do not connect before */
	uint8_t q_file[H_LOAD_DEPTH];
	uint8_t q_tries[H_LOAD_DEPTH];
	size_t qn;                /* outstanding (sent or about to be) */
	char wbuf[H_LOAD_DEPTH * 384];  /* names up to 200, agents up to 64 bytes */
	size_t wlen, woff;
	char rbuf[65536];
	size_t rlen;
	bool in_body;
	uint64_t body_left, body_off;
	bool resp_close;          /* the response being read says Connection: close */
	uint32_t rng;
	unsigned id;
};

struct load_child {
	struct h_load_stats *s;
	struct h_load_opts o;    /* conns, attempts and agent filled in */
	bool stopping;
	struct lconn *c;
	size_t n;
};

static uint32_t lc_rand(struct lconn *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 17;
	c->rng ^= c->rng << 5;
	return c->rng;
}

static void lc_add(uint64_t *p, uint64_t v)
{
	__atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static void lc_problem(struct load_child *L, struct lconn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void lc_problem(struct load_child *L, struct lconn *c, const char *fmt, ...)
{
	if (L->s->first_problem[0])
		return;
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(L->s->first_problem, sizeof L->s->first_problem, "connection %u: %s", c->id, msg);
}

/* Request i of c's queue, for messages: "GET /name" or "echo". */
static const char *lc_what(const struct load_child *L, const struct lconn *c, size_t i, char *out, size_t cap)
{
	if (L->o.mode == H_LOAD_ECHO)
		snprintf(out, cap, "echo");
	else
		snprintf(out, cap, "GET /%s", L->o.files[c->q_file[i]].name);
	return out;
}

/* The exact answer expected to the request at the head of c's queue (its body). */
static const char *lc_expected(const struct load_child *L, const struct lconn *c)
{
	return L->o.mode == H_LOAD_ECHO ? echo_payload : L->o.files[c->q_file[0]].data;
}

static void lc_pop(struct lconn *c)
{
	memmove(c->q_file, c->q_file + 1, c->qn - 1);
	memmove(c->q_tries, c->q_tries + 1, c->qn - 1);
	c->qn--;
}

/* The connection is gone (or given up): what is outstanding is re-sent on
 * the next one, or counted unanswered after too many tries. */
static void lc_drop(struct load_child *L, struct lconn *c, enum lc_cause cause)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->st = LC_IDLE;
	size_t keep = 0;
	for (size_t i = 0; i < c->qn; i++) {
		c->q_tries[i]++;
		lc_add(&L->s->retried, 1);
		lc_add(cause == CAUSE_CLOSE ? &L->s->retried_close
		       : cause == CAUSE_EOF ? &L->s->retried_eof : &L->s->retried_reset, 1);
		if (c->q_tries[i] >= L->o.attempts) {
			char what[300];
			lc_add(&L->s->unanswered, 1);
			lc_problem(L, c, "%s unanswered after %u attempts", lc_what(L, c, i, what, sizeof what),
				   L->o.attempts);
			continue;
		}
		c->q_file[keep] = c->q_file[i];
		c->q_tries[keep] = c->q_tries[i];
		keep++;
	}
	c->qn = keep;
	c->rlen = 0;
	c->in_body = false;
	c->resp_close = false;
	c->wlen = c->woff = 0;
}

/* EOF or reset from the server: a response cut short fails; what had no
 * answer yet is retried. */
static void lc_lost(struct load_child *L, struct lconn *c, bool reset, int err)
{
	if (reset)
		lc_add(&L->s->resets, 1);
	if (c->qn > 0 && (c->in_body || c->rlen > 0)) {
		lc_add(&L->s->truncated, 1);
		char what[300];
		lc_problem(L, c, "response to %s cut short by %s (%s, %" PRIu64 " body bytes missing)",
			   lc_what(L, c, 0, what, sizeof what), reset ? "a reset" : "EOF",
			   c->in_body ? "in the body" : "in the header", c->body_left);
		lc_pop(c);
	} else if (reset && c->qn > 0) {
		lc_problem(L, c, "reset (%s) with %zu request(s) outstanding", strerror(err), c->qn);
	} else if (c->qn == 0 && !reset) {
		lc_add(&L->s->idle_closes, 1);
	}
	lc_drop(L, c, reset ? CAUSE_RESET : CAUSE_EOF);
}

static void lc_connect(struct load_child *L, struct lconn *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		lc_add(&L->s->connect_errors, 1);
		lc_problem(L, c, "socket: %s", strerror(errno));
		c->retry_at = h_now_ms() + 10;
		return;
	}
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)L->o.port) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof sin) == 0 || errno == EINPROGRESS) {
		c->st = LC_CONNECTING;
		return;
	}
	lc_add(&L->s->connect_errors, 1);
	lc_problem(L, c, "connect: %s", strerror(errno));
	close(c->fd);
	c->fd = -1;
	c->retry_at = h_now_ms() + 10;
}

static void lc_flush(struct load_child *L, struct lconn *c)
{
	while (c->woff < c->wlen) {
		ssize_t w = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
		if (w > 0) {
			c->woff += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* EPIPE/ECONNRESET: the server is gone; what it already sent
		 * is still readable, so let the read side decide. */
		int e = errno;
		char tmp[1];
		ssize_t r = recv(c->fd, tmp, 1, MSG_PEEK | MSG_DONTWAIT);
		if (r > 0) {
			c->wlen = c->woff = 0; /* nothing more can be sent here */
			return;
		}
		lc_lost(L, c, true, e);
		return;
	}
}

/* Start the next batch: re-sends first, else a new one (1, or 4..8
 * pipelined; echo: 1); nothing to do when stopping closes the connection. */
static void lc_batch(struct load_child *L, struct lconn *c)
{
	if (c->qn == 0) {
		if (L->stopping) {
			close(c->fd);
			c->fd = -1;
			c->st = LC_IDLE;
			return;
		}
		/* Like any client reusing a keep-alive connection: if the server
		 * has already closed it, do not send on it (what is left is the
		 * unavoidable race of RFC 9112 section 9.6). */
		char b;
		ssize_t pr = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (pr == 0 || (pr < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			lc_lost(L, c, pr < 0, pr < 0 ? errno : 0);
			return;
		}
		size_t n = 1;
		if (L->o.mode == H_LOAD_HTTP && L->o.pipeline && lc_rand(c) % 2)
			n = 4 + lc_rand(c) % (H_LOAD_DEPTH - 3);
		for (size_t i = 0; i < n; i++) {
			unsigned f = 0;
			if (L->o.mode == H_LOAD_HTTP) {
				unsigned w = lc_rand(c) % 100, acc = L->o.files[0].weight;
				while (w >= acc && f + 1 < L->o.n_files)
					acc += L->o.files[++f].weight;
			}
			c->q_file[i] = (uint8_t)f;
			c->q_tries[i] = 0;
		}
		c->qn = n;
	}
	c->wlen = c->woff = 0;
	for (size_t i = 0; i < c->qn; i++) {
		int k;
		if (L->o.mode == H_LOAD_ECHO)
			k = snprintf(c->wbuf + c->wlen, sizeof c->wbuf - c->wlen, "%s", echo_payload);
		else
			k = snprintf(c->wbuf + c->wlen, sizeof c->wbuf - c->wlen,
				     "GET /%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: %s/%u\r\n\r\n",
				     L->o.files[c->q_file[i]].name, L->o.agent, c->id);
		c->wlen += (size_t)k;
	}
	lc_add(&L->s->sent, c->qn);
	c->rlen = 0;
	c->in_body = false;
	lc_flush(L, c);
}

static bool hdr_is(const char *line, size_t len, const char *name, const char **value, size_t *vlen)
{
	size_t nl = strlen(name);
	if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
		return false;
	const char *v = line + nl + 1, *e = line + len;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*value = v;
	*vlen = (size_t)(e - v);
	return true;
}

/* Parse a response header block in rbuf[0..hlen); false (and a problem
 * noted) if it is not the 200 with the exact length we expect. */
static bool lc_parse_head(struct load_child *L, struct lconn *c, size_t hlen)
{
	const struct h_load_file *f = &L->o.files[c->q_file[0]];
	const char *p = c->rbuf, *end = c->rbuf + hlen - 2; /* up to the blank line */
	const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
	if (!eol || eol - p < 12 || memcmp(p, "HTTP/1.1 200 ", 13) != 0) {
		lc_problem(L, c, "GET /%s: status line '%.*s'", f->name, eol ? (int)(eol - p) : 40, p);
		return false;
	}
	int n_len = 0;
	uint64_t clen = 0;
	c->resp_close = false;
	for (p = eol + 2; p < end; p = eol + 2) {
		eol = memmem(p, (size_t)(end - p + 2), "\r\n", 2);
		if (!eol)
			break;
		const char *v;
		size_t vl;
		size_t ll = (size_t)(eol - p);
		if (hdr_is(p, ll, "Content-Length", &v, &vl)) {
			n_len++;
			char num[32];
			snprintf(num, sizeof num, "%.*s", (int)(vl < 31 ? vl : 31), v);
			clen = strtoull(num, NULL, 10);
		} else if (hdr_is(p, ll, "Connection", &v, &vl)) {
			if (memmem(v, vl, "close", 5) || memmem(v, vl, "Close", 5))
				c->resp_close = true;
		} else if (hdr_is(p, ll, "Transfer-Encoding", &v, &vl)) {
			lc_problem(L, c, "GET /%s: unexpected Transfer-Encoding", f->name);
			return false;
		}
	}
	if (n_len != 1 || clen != f->size) {
		lc_problem(L, c, "GET /%s: %d Content-Length header(s), length %" PRIu64 ", expected %zu",
			   f->name, n_len, clen, f->size);
		return false;
	}
	c->body_left = clen;
	c->body_off = 0;
	return true;
}

/* Consume what rbuf holds. */
static void lc_process(struct load_child *L, struct lconn *c)
{
	while (c->fd >= 0 && c->rlen > 0) {
		if (c->qn == 0) {
			lc_add(&L->s->wrong, 1);
			lc_problem(L, c, "%zu byte(s) received with no request outstanding: '%.40s'", c->rlen,
				   c->rbuf);
			lc_drop(L, c, CAUSE_RESET);
			return;
		}
		if (!c->in_body && L->o.mode == H_LOAD_ECHO) {
			c->body_left = sizeof echo_payload - 1;
			c->body_off = 0;
			c->in_body = true;
		} else if (!c->in_body) {
			char *hend = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
			if (!hend) {
				if (c->rlen > 16384) {
					lc_add(&L->s->wrong, 1);
					lc_problem(L, c, "response header over 16 KiB");
					lc_pop(c);
					lc_drop(L, c, CAUSE_RESET);
				}
				return;
			}
			size_t hlen = (size_t)(hend - c->rbuf) + 4;
			if (!lc_parse_head(L, c, hlen)) {
				lc_add(&L->s->wrong, 1);
				lc_pop(c);
				lc_drop(L, c, CAUSE_RESET);
				return;
			}
			memmove(c->rbuf, c->rbuf + hlen, c->rlen - hlen);
			c->rlen -= hlen;
			c->in_body = true;
		}
		size_t n = c->rlen < c->body_left ? c->rlen : (size_t)c->body_left;
		const char *want = lc_expected(L, c) + c->body_off;
		if (n && memcmp(c->rbuf, want, n) != 0) {
			size_t at = 0;
			while (c->rbuf[at] == want[at])
				at++;
			char what[300];
			lc_add(&L->s->wrong, 1);
			lc_problem(L, c, "%s: body differs at byte %" PRIu64, lc_what(L, c, 0, what, sizeof what),
				   c->body_off + at);
			lc_pop(c);
			lc_drop(L, c, CAUSE_RESET);
			return;
		}
		memmove(c->rbuf, c->rbuf + n, c->rlen - n);
		c->rlen -= n;
		c->body_left -= n;
		c->body_off += n;
		if (c->body_left > 0)
			return;
		/* one complete, correct response */
		c->in_body = false;
		lc_add(&L->s->ok, 1);
		lc_pop(c);
		if (L->o.mode == H_LOAD_ECHO) {
			/* one exchange per connection: the next on a new one */
			lc_drop(L, c, CAUSE_CLOSE);
			c->retry_at = h_now_ms() + L->o.pause_ms;
			return;
		}
		if (c->resp_close) {
			lc_add(&L->s->server_closes, 1);
			if (c->rlen > 0) {
				lc_add(&L->s->wrong, 1);
				lc_problem(L, c, "%zu byte(s) after a Connection: close response", c->rlen);
			}
			lc_drop(L, c, CAUSE_CLOSE);
			return;
		}
		if (c->qn == 0 && c->rlen == 0) {
			lc_batch(L, c);
			return;
		}
	}
}

static void lc_readable(struct load_child *L, struct lconn *c)
{
	for (int rounds = 0; rounds < 64 && c->fd >= 0; rounds++) {
		ssize_t r = recv(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen, MSG_DONTWAIT);
		if (r > 0) {
			c->rlen += (size_t)r;
			lc_process(L, c);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		lc_lost(L, c, r < 0, r < 0 ? errno : 0);
		return;
	}
}

static void lc_connected(struct load_child *L, struct lconn *c)
{
	int err = 0;
	socklen_t sl = sizeof err;
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
	if (err) {
		lc_add(&L->s->connect_errors, 1);
		lc_problem(L, c, "connect: %s", strerror(err));
		close(c->fd);
		c->fd = -1;
		c->st = LC_IDLE;
		c->retry_at = h_now_ms() + 10;
		return;
	}
	c->st = LC_OPEN;
	lc_add(&L->s->connects, 1);
	lc_batch(L, c);
}

static void load_child_run(struct load_child *L, int stop_fd)
{
	int64_t start = h_now_ms(), stop_deadline = 0;
	struct pollfd pfd[H_LOAD_CONNS + 1];
	for (;;) {
		int64_t t = h_now_ms();
		if (!L->stopping) {
			bool told = false;
			struct pollfd sp = { .fd = stop_fd, .events = POLLIN };
			if (poll(&sp, 1, 0) > 0)
				told = true;
			if (!told && (t - start > H_LOAD_MAX_MS || ld(&L->s->sent) > H_LOAD_MAX_SENT ||
				      ld(&L->s->connect_errors) > 1000))
				L->s->self_stopped = 1;
			if (told || L->s->self_stopped) {
				L->stopping = true;
				stop_deadline = t + H_LOAD_DRAIN_MS;
				/* idle connections close now */
				for (size_t i = 0; i < L->n; i++) {
					struct lconn *c = &L->c[i];
					if (c->qn == 0 && c->fd >= 0) {
						close(c->fd);
						c->fd = -1;
						c->st = LC_IDLE;
					}
				}
			}
		}
		if (L->stopping) {
			bool busy = false;
			for (size_t i = 0; i < L->n; i++)
				busy |= L->c[i].qn > 0;
			if (!busy)
				break;
			if (t >= stop_deadline) {
				for (size_t i = 0; i < L->n; i++) {
					if (L->c[i].qn) {
						lc_add(&L->s->unanswered, L->c[i].qn);
						lc_problem(L, &L->c[i], "%zu request(s) still unanswered when the load stopped",
							   L->c[i].qn);
					}
				}
				break;
			}
		}
		int timeout = 50;
		size_t np = 0;
		int map[H_LOAD_CONNS];
		for (size_t i = 0; i < L->n; i++) {
			struct lconn *c = &L->c[i];
			if (c->st == LC_IDLE && !(L->stopping && c->qn == 0)) {
				if (t >= c->retry_at)
					lc_connect(L, c);
				else if (c->retry_at - t < 10)
					timeout = (int)(c->retry_at - t);
				else
					timeout = 10;
			}
			if (c->fd < 0)
				continue;
			short ev = c->st == LC_CONNECTING ? POLLOUT : POLLIN;
			if (c->st == LC_OPEN && c->woff < c->wlen)
				ev |= POLLOUT;
			pfd[np] = (struct pollfd){ .fd = c->fd, .events = ev };
			map[np++] = (int)i;
		}
		int r = poll(pfd, (nfds_t)np, timeout);
		if (r <= 0)
			continue;
		for (size_t k = 0; k < np; k++) {
			struct lconn *c = &L->c[map[k]];
			if (!pfd[k].revents || c->fd != pfd[k].fd)
				continue;
			if (c->st == LC_CONNECTING) {
				lc_connected(L, c);
				continue;
			}
			if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))
				lc_readable(L, c);
			if (c->fd >= 0 && c->st == LC_OPEN && (pfd[k].revents & POLLOUT))
				lc_flush(L, c);
		}
	}
	for (size_t i = 0; i < L->n; i++)
		if (L->c[i].fd >= 0)
			close(L->c[i].fd);
}

struct h_load {
	pid_t pid;
	int stop_fd;
	struct h_load_stats *s;
	int64_t started;
};

struct h_load *h_load_start(const struct h_load_opts *o)
{
	struct load_child L = { .o = *o };
	if (!L.o.conns)
		L.o.conns = H_LOAD_CONNS;
	if (!L.o.attempts)
		L.o.attempts = H_LOAD_ATTEMPTS;
	if (!L.o.agent)
		L.o.agent = "drover-test-load";
	ck_assert_msg(L.o.conns <= H_LOAD_CONNS, "at most %d connections", H_LOAD_CONNS);
	ck_assert_msg(L.o.attempts <= 255, "at most 255 attempts");
	ck_assert_msg(strlen(L.o.agent) <= 64, "User-Agent too long");
	if (L.o.mode == H_LOAD_HTTP) {
		ck_assert_msg(L.o.files && L.o.n_files > 0 && L.o.n_files <= 256, "HTTP load: 1..256 files");
		for (size_t f = 0; f < L.o.n_files; f++)
			ck_assert_msg(L.o.files[f].data != NULL && strlen(L.o.files[f].name) <= 200,
				      "HTTP load: file %zu has no content or too long a name", f);
	}
	struct h_load *l = calloc(1, sizeof *l);
	ck_assert(l != NULL);
	l->s = mmap(NULL, sizeof *l->s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_msg(l->s != MAP_FAILED, "mmap: %s", strerror(errno));
	memset(l->s, 0, sizeof *l->s);
	int p[2];
	ck_assert_msg(pipe2(p, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* The child: never ck_assert here, never return into check (so
		 * o->files, in the caller's frame, stays valid). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		signal(SIGPIPE, SIG_IGN);
		/* hold nothing of the test's (drover guards' pipes above all) */
		int stop_fd = fcntl(p[0], F_DUPFD_CLOEXEC, 3);
		if (stop_fd < 0 || dup2(stop_fd, 3) < 0)
			_exit(1);
#ifdef SYS_close_range
		syscall(SYS_close_range, 4U, ~0U, 0);
#else
		for (int fd = 4; fd < 1024; fd++)
			close(fd);
#endif
		static struct lconn conns[H_LOAD_CONNS];
		L.s = l->s;
		L.c = conns;
		L.n = L.o.conns;
		for (size_t i = 0; i < L.n; i++) {
			conns[i].fd = -1;
			conns[i].st = LC_IDLE;
			conns[i].id = (unsigned)i;
			conns[i].rng = 2463534242u + (uint32_t)i * 7919u;
		}
		load_child_run(&L, 3);
		__atomic_store_n(&l->s->finished, 1, __ATOMIC_RELEASE);
		_exit(0);
	}
	close(p[0]);
	l->pid = pid;
	l->stop_fd = p[1];
	l->started = h_now_ms();
	return l;
}

void h_load_wait_ok(struct h_load *l, uint64_t more, struct h_drover *d)
{
	uint64_t target = ld(&l->s->ok) + more;
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (ld(&l->s->ok) < target) {
		ck_assert_msg(!__atomic_load_n(&l->s->finished, __ATOMIC_ACQUIRE),
			      "the load stopped by itself (ok=%" PRIu64 ", connect_errors=%" PRIu64 "): %s",
			      ld(&l->s->ok), ld(&l->s->connect_errors), l->s->first_problem);
		ck_assert_msg(h_left_ms(deadline) > 0,
			      "the load made no progress: ok=%" PRIu64 " of %" PRIu64 " within %d ms "
			      "(failed=%" PRIu64 ", first problem: %s); log:\n%s",
			      ld(&l->s->ok), target, H_WAIT_MS, h_load_failed(l->s), l->s->first_problem,
			      h_log_end(d));
		h_pause_ms(SLICE_MS);
	}
}

struct h_load_stats h_load_stop(struct h_load *l, const char *label)
{
	char b = 's';
	if (write(l->stop_fd, &b, 1) < 0) {
		/* the child is gone: its counters say so */
	}
	close(l->stop_fd);
	int64_t deadline = h_now_ms() + H_LOAD_DRAIN_MS + H_WAIT_MS;
	int st = 0;
	for (;;) {
		pid_t r = waitpid(l->pid, &st, WNOHANG);
		if (r == l->pid)
			break;
		if (r < 0 && errno != EINTR)
			ck_abort_msg("waitpid(load): %s", strerror(errno));
		if (h_left_ms(deadline) == 0) {
			kill(l->pid, SIGKILL);
			waitpid(l->pid, NULL, 0);
			ck_abort_msg("the load client did not stop");
		}
		h_pause_ms(SLICE_MS);
	}
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the load client died (status 0x%x)", st);
	ck_assert_msg(l->s->finished, "the load client exited without finishing");
	struct h_load_stats s = *l->s;
	printf("load[%s]: %.1fs sent=%" PRIu64 " ok=%" PRIu64 " retried=%" PRIu64 " (after close=%" PRIu64
	       " eof=%" PRIu64 " reset=%" PRIu64 ") failed=%" PRIu64 " (truncated=%" PRIu64 " wrong=%" PRIu64
	       " unanswered=%" PRIu64 ") connect_errors=%" PRIu64 " resets=%" PRIu64 " connects=%" PRIu64
	       " server_closes=%" PRIu64 " idle_closes=%" PRIu64 "%s%s\n",
	       label, (double)(h_now_ms() - l->started) / 1000.0, s.sent, s.ok, s.retried, s.retried_close,
	       s.retried_eof, s.retried_reset, h_load_failed(&s), s.truncated, s.wrong, s.unanswered,
	       s.connect_errors, s.resets, s.connects, s.server_closes, s.idle_closes,
	       s.first_problem[0] ? "; first problem: " : "", s.first_problem);
	fflush(stdout);
	munmap(l->s, sizeof *l->s);
	free(l);
	return s;
}
char h_load_byte(size_t file, size_t off)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
	uint32_t x = (uint32_t)off * 2654435761u ^ (uint32_t)(file + 1) * 40503u;
	x ^= x >> 15;
	return off % 64 == 63 ? '\n' : alphabet[x % 64];
}

char *h_load_site(struct h_load_file *files, size_t n)
{
	char *dir = h_tmpdir();
	for (size_t f = 0; f < n; f++) {
		if (!files[f].data) {
			char *d = malloc(files[f].size + 1);
			ck_assert(d != NULL);
			for (size_t i = 0; i < files[f].size; i++)
				d[i] = h_load_byte(f, i);
			d[files[f].size] = '\0';
			files[f].data = d;
		}
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", dir, files[f].name);
		h_write_file(path, files[f].data);
	}
	return dir;
}
