/* proxy: the PROXY protocol header in front of a listener's protocol
 * (proxy.h says what and why). The parser is pure; the rest holds a
 * connection until its header is read, then gives it to the worker. */
#include "worker/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "worker/proto.h"

/* ------------------------------------------------------------ parsing */

static const uint8_t proxy_v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

/* A port: 1 to 5 digits, at most 65535. */
static bool proxy_port(const char *s, size_t len, uint16_t *out)
{
	if (len == 0 || len > 5)
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* The next field of a v1 line: up to the next single space (or the end);
 * *at moves past it. Empty fields (two spaces) are refused. */
static bool proxy_field(const char **at, const char *end, char *out, size_t cap, size_t *len)
{
	const char *s = *at;
	const char *sp = memchr(s, ' ', (size_t)(end - s));
	const char *e = sp ? sp : end;
	size_t n = (size_t)(e - s);
	if (n == 0 || n >= cap)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	*len = n;
	*at = sp ? sp + 1 : end;
	return true;
}

/* "TCP4 SRC DST SPORT DPORT" or the same with TCP6 (line: between
 * "PROXY " and CRLF). */
static int proxy_v1_tcp(const char *line, size_t len, struct proxy_header *h)
{
	int af = strncmp(line, "TCP4 ", 5) == 0 ? AF_INET : strncmp(line, "TCP6 ", 5) == 0 ? AF_INET6 : 0;
	if (!af)
		return -EINVAL;
	const char *at = line + 5, *end = line + len;
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], sp[8], dp[8];
	size_t n;
	uint16_t sport, dport;
	unsigned char dst_bin[sizeof(struct in6_addr)];
	if (!proxy_field(&at, end, src, sizeof(src), &n) || !proxy_field(&at, end, dst, sizeof(dst), &n) ||
	    !proxy_field(&at, end, sp, sizeof(sp), &n) || !proxy_port(sp, n, &sport) ||
	    !proxy_field(&at, end, dp, sizeof(dp), &n) || !proxy_port(dp, n, &dport) || at != end ||
	    end[-1] == ' ')
		return -EINVAL;
	if (inet_pton(af, dst, dst_bin) != 1)
		return -EINVAL;
	if (af == AF_INET) {
		h->src.in.sin_family = AF_INET;
		h->src.in.sin_port = htons(sport);
		if (inet_pton(AF_INET, src, &h->src.in.sin_addr) != 1)
			return -EINVAL;
		h->src_len = sizeof(h->src.in);
	} else {
		h->src.in6.sin6_family = AF_INET6;
		h->src.in6.sin6_port = htons(sport);
		if (inet_pton(AF_INET6, src, &h->src.in6.sin6_addr) != 1)
			return -EINVAL;
		h->src_len = sizeof(h->src.in6);
	}
	return 1;
}

static int proxy_parse_v1(const char *s, size_t len, struct proxy_header *h)
{
	static const char prefix[] = "PROXY ";
	const size_t plen = sizeof(prefix) - 1;
	if (memcmp(s, prefix, len < plen ? len : plen) != 0)
		return -EINVAL;
	const char *lf = memchr(s, '\n', len < PROXY_V1_MAX ? len : PROXY_V1_MAX);
	if (!lf)
		return len >= PROXY_V1_MAX ? -EINVAL : 0;
	size_t end = (size_t)(lf - s); /* the LF; the prefix holds none, so end >= plen */
	if (end == plen || s[end - 1] != '\r')
		return -EINVAL;
	const char *line = s + plen;
	size_t line_len = end - 1 - plen;
	for (size_t i = 0; i < line_len; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
			return -EINVAL;
	memset(h, 0, sizeof(*h));
	h->len = end + 1;
	h->version = 1;
	/* UNKNOWN: whatever follows up to the CRLF is ignored. */
	if (line_len >= 7 && memcmp(line, "UNKNOWN", 7) == 0 && (line_len == 7 || line[7] == ' ')) {
		h->local = true;
		return 1;
	}
	return proxy_v1_tcp(line, line_len, h);
}

static int proxy_parse_v2(const uint8_t *b, size_t len, struct proxy_header *h)
{
	if (memcmp(b, proxy_v2_sig, len < sizeof(proxy_v2_sig) ? len : sizeof(proxy_v2_sig)) != 0)
		return -EINVAL;
	if (len >= 13 && ((b[12] >> 4) != 2 || (b[12] & 0xF) > 1))
		return -EINVAL; /* version 2; LOCAL or PROXY */
	if (len >= 14 && ((b[13] >> 4) > 3 || (b[13] & 0xF) > 2))
		return -EINVAL; /* UNSPEC, INET, INET6, UNIX; UNSPEC, STREAM, DGRAM */
	if (len < PROXY_V2_FIXED)
		return 0;
	static const size_t addr_len[4] = { 0, 12, 36, 216 };
	unsigned cmd = b[12] & 0xF, fam = b[13] >> 4, transport = b[13] & 0xF;
	size_t alen = (size_t)b[14] << 8 | b[15];
	memset(h, 0, sizeof(*h));
	h->len = PROXY_V2_FIXED + alen;
	h->version = 2;
	if (cmd == 0) {
		/* LOCAL: the balancer speaking for itself (a health check). */
		h->local = true;
		return 1;
	}
	if (alen < addr_len[fam])
		return -EINVAL;
	if (transport != 1 || (fam != 1 && fam != 2)) {
		h->local = true; /* not TCP: the real peer is kept */
		return 1;
	}
	if (len < PROXY_V2_FIXED + addr_len[fam])
		return 0;
	const uint8_t *a = b + PROXY_V2_FIXED;
	if (fam == 1) {
		h->src.in.sin_family = AF_INET;
		memcpy(&h->src.in.sin_addr, a, 4);
		memcpy(&h->src.in.sin_port, a + 8, 2); /* network order already */
		h->src_len = sizeof(h->src.in);
	} else {
		h->src.in6.sin6_family = AF_INET6;
		memcpy(&h->src.in6.sin6_addr, a, 16);
		memcpy(&h->src.in6.sin6_port, a + 32, 2);
		h->src_len = sizeof(h->src.in6);
	}
	return 1;
}

int proxy_parse(const void *buf, size_t len, struct proxy_header *h)
{
	const uint8_t *b = buf;
	if (len == 0)
		return 0;
	if (b[0] == 'P')
		return proxy_parse_v1(buf, len, h);
	if (b[0] == proxy_v2_sig[0])
		return proxy_parse_v2(b, len, h);
	return -EINVAL;
}

/* ------------------------------------------------------------ held connections */

struct proxy_conn {
	struct proxy_conn *prev, *next;
	const struct worker_listener *l;
	int fd;
	bool watched;  /* fd is in the loop */
	bool parsed;   /* h is filled; skip bytes are left to drop */
	uint8_t have;  /* bytes of the header read into buf */
	uint32_t skip; /* a v2 header's bytes past buf (its TLVs), not read yet */
	struct proxy_header h;
	struct loop_timer timer;
	struct sockaddr_storage peer; /* accept4()'s */
	socklen_t peer_len;
	uint8_t buf[PROXY_V1_MAX]; /* a v1 line, or a v2 header up to its addresses */
};

static struct {
	struct proxy_host host;
	struct proxy_conn *head;
	size_t n;
} proxy;

void proxy_init(const struct proxy_host *host)
{
	proxy.host = *host;
	proxy.head = NULL;
	proxy.n = 0;
}

size_t proxy_held(void)
{
	return proxy.n;
}

static void proxy_unlink(struct proxy_conn *pc)
{
	if (pc->prev)
		pc->prev->next = pc->next;
	else
		proxy.head = pc->next;
	if (pc->next)
		pc->next->prev = pc->prev;
	proxy.n--;
}

/* Read exactly n bytes that a peek showed are there. */
static int proxy_take(int fd, void *buf, size_t n)
{
	if (n == 0)
		return 0;
	ssize_t got = recv(fd, buf, n, 0);
	return got == (ssize_t)n ? 0 : -EIO;
}

/* Read what has arrived of pc's header, and no byte after it. 1: the
 * whole header is read; 0: wait for more; -errno: close pc (no header, a
 * bad one, EOF, an error). */
static int proxy_step(struct proxy_conn *pc)
{
	while (!pc->parsed) {
		size_t room = sizeof(pc->buf) - pc->have;
		ssize_t n = recv(pc->fd, pc->buf + pc->have, room, MSG_PEEK);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
		if (n == 0)
			return -ECONNRESET; /* the peer ended before a whole header */
		size_t avail = pc->have + (size_t)n;
		int parsed = proxy_parse(pc->buf, avail, &pc->h);
		if (parsed < 0)
			return parsed;
		/* An unfinished header owns every byte seen so far (a v1 line
		 * ends at its first LF; a v2 header is longer than what it
		 * needs to be parsed); a finished one, up to its end. */
		size_t upto = parsed > 0 && pc->h.len < avail ? pc->h.len : avail;
		int r = proxy_take(pc->fd, pc->buf + pc->have, upto - pc->have);
		if (r < 0)
			return r;
		pc->have = (uint8_t)upto;
		if (parsed > 0) {
			pc->parsed = true;
			pc->skip = (uint32_t)(pc->h.len - upto);
		} else if (pc->have == sizeof(pc->buf)) {
			return -EPROTO; /* cannot happen: proxy_parse() refuses first */
		} else if ((size_t)n < room) {
			return 0; /* all that had arrived */
		}
	}
	while (pc->skip) {
		uint8_t scratch[512];
		ssize_t n = recv(pc->fd, scratch, pc->skip < sizeof(scratch) ? pc->skip : sizeof(scratch), 0);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
		if (n == 0)
			return -ECONNRESET;
		pc->skip -= (uint32_t)n;
	}
	return 1;
}

static void proxy_peer_str(const struct sockaddr_storage *ss, char *out, size_t len)
{
	const struct sockaddr *sa = (const struct sockaddr *)ss;
	const void *a = sa->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
		      : sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
						  : NULL;
	if (!a || !inet_ntop(sa->sa_family, a, out, (socklen_t)len))
		snprintf(out, len, "%s", sa->sa_family == AF_UNIX ? "unix" : "?");
}

/* pc is done: given to its protocol with the header's address (r > 0), or
 * closed (r < 0, why). */
static void proxy_finish(struct proxy_conn *pc, int r)
{
	if (pc->watched)
		loop_del_fd(proxy.host.loop, pc->fd);
	loop_timer_cancel(proxy.host.loop, &pc->timer);
	proxy_unlink(pc);
	if (r > 0) {
		const struct sockaddr *peer = pc->h.local ? (const struct sockaddr *)&pc->peer : &pc->h.src.sa;
		socklen_t len = pc->h.local ? pc->peer_len : pc->h.src_len;
		proxy.host.give(proxy.host.arg, pc->l, pc->fd, peer, len);
	} else {
		char who[INET6_ADDRSTRLEN];
		proxy_peer_str(&pc->peer, who, sizeof(who));
		log_debug("[listener %s] closing a connection from %s: %s", pc->l->name, who,
			  r == -ETIMEDOUT ? "no PROXY protocol header in time"
			  : r == -EINVAL  ? "no valid PROXY protocol header"
					  : strerror(-r));
		close(pc->fd);
	}
	free(pc);
	proxy.host.left(proxy.host.arg);
}

static void proxy_io(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct proxy_conn *pc = arg;
	(void)loop;
	(void)fd;
	(void)events;
	int r = proxy_step(pc);
	if (r != 0)
		proxy_finish(pc, r);
}

static void proxy_timeout(struct loop *loop, struct loop_timer *t, void *arg)
{
	(void)loop;
	(void)t;
	proxy_finish(arg, -ETIMEDOUT);
}

int proxy_hold(const struct worker_listener *l, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
	struct proxy_conn *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return -ENOMEM;
	pc->l = l;
	pc->fd = fd;
	if (peer && peer_len <= sizeof(pc->peer)) {
		memcpy(&pc->peer, peer, peer_len);
		pc->peer_len = peer_len;
	}
	loop_timer_init(&pc->timer, proxy_timeout, pc);
	pc->next = proxy.head;
	if (proxy.head)
		proxy.head->prev = pc;
	proxy.head = pc;
	proxy.n++;
	/* Usually the header came with the connection (or its first segment). */
	int r = proxy_step(pc);
	if (r != 0) {
		proxy_finish(pc, r);
		return 0;
	}
	r = loop_add_fd(proxy.host.loop, fd, LOOP_READ, proxy_io, pc);
	if (r < 0) {
		proxy_unlink(pc);
		free(pc);
		return r;
	}
	pc->watched = true;
	uint64_t ms = l->proto && l->proto->header_timeout_ms ? l->proto->header_timeout_ms(proxy.host.cfg) : 0;
	loop_timer_arm(proxy.host.loop, &pc->timer, ms ? ms : PROXY_TIMEOUT_MS);
	return 0;
}

void proxy_close_all(void)
{
	while (proxy.head) {
		struct proxy_conn *pc = proxy.head;
		if (pc->watched)
			loop_del_fd(proxy.host.loop, pc->fd);
		loop_timer_cancel(proxy.host.loop, &pc->timer);
		proxy_unlink(pc);
		close(pc->fd);
		free(pc);
	}
}
