/*
 * bench/client.c: the benchmark's own connection client, for what wrk and
 * h2load cannot measure. bench/run.sh compiles it; it talks to 127.0.0.1 only
 * and every wait in it is bounded in time.
 *
 *   client hold PORT N PATH
 *	Open N keep-alive connections, send one "GET PATH" on each and read the
 *	whole response, then print "held H failed F" (H connections open and
 *	idle) and keep them open until stdin reaches end of file. Then print
 *	"dropped D" (connections the server closed meanwhile) and exit.
 *   client stop PORT N PATH PID SIGNAL
 *	The same N idle connections, then send SIGNAL to PID and close each
 *	connection as soon as its FIN arrives (a client that closes on FIN).
 *	Prints "held H failed F fin_ms A exit_ms B resets R open O": A when the
 *	last FIN arrived, B when PID exited, both counted from the signal.
 *   client reload PORT PATH BODY PID SIGNAL
 *	Send SIGNAL to PID, then GET PATH on a fresh connection, again and
 *	again, until the body is BODY (the new generation answers). Prints
 *	"ms M probes P failed F": M from the signal to that answer, F probes
 *	refused, reset or not answered 200.
 *
 * Exit status 0 when it could measure, 1 on a usage or setup error, 2 when
 * a deadline passed (the line is still printed, with what was measured).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_WINDOW	128	/* connections being opened at once */
#define OPEN_DEADLINE_MS 60000	/* to open and request all N */
#define STOP_DEADLINE_MS 60000	/* for the FINs and the exit after a stop */
#define RELOAD_DEADLINE_MS 10000
#define HEAD_MAX	2048	/* a response header longer than this is an error */

enum conn_state { C_FREE, C_CONNECTING, C_READING, C_IDLE, C_CLOSED };

struct conn {
	int fd;
	enum conn_state state;
	size_t head_len;	/* bytes of the response header seen so far */
	long long body_left;	/* -1: header not complete yet */
	char head[HEAD_MAX];
};

static int port;
static const char *path;

static long long now_us(void)	/* CLOCK_MONOTONIC, microseconds */
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what)
{
	fprintf(stderr, "client: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Enough descriptors for n connections plus a few, raising the hard limit
 * too when allowed (root). */
static void raise_nofile(unsigned long n)
{
	struct rlimit rl;
	rlim_t want = n + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit");
	if (rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want)
		rl.rlim_max = want;
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		fprintf(stderr, "client: cannot raise RLIMIT_NOFILE to %lu: %s\n",
			(unsigned long)want, strerror(errno));
		exit(1);
	}
}

static int connect_to(int flags)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);

	if (fd < 0)
		return -errno;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int send_request(int fd, const char *conn_header)
{
	char req[1024];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n",
			 path, conn_header);

	if (n < 0 || (size_t)n >= sizeof(req))
		return -ENAMETOOLONG;
	return send(fd, req, n, MSG_NOSIGNAL) == n ? 0 : -EIO;
}

/* A complete header in c->head: check for 200 and find Content-Length.
 * Returns the body bytes expected, or -1 for a response we cannot use. */
static long long parse_head(const struct conn *c, size_t end)
{
	const char *p = c->head, *stop = c->head + end;

	if (end < 12 || memcmp(p, "HTTP/1.1 200", 12) != 0)
		return -1;
	while ((p = memchr(p, '\n', stop - p)) && ++p < stop) {
		if (stop - p > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
			return strtoll(p + 15, NULL, 10);
	}
	return -1;
}

/* Read what arrived on a connection waiting for its response. Returns 1 when
 * the response is complete, 0 when more is to come, -1 on an error. */
static int read_response(struct conn *c)
{
	char buf[65536];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		size_t used = 0;

		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (n == 0)
			return -1;
		if (c->body_left < 0) {
			char *end;

			used = (size_t)n < HEAD_MAX - c->head_len ? (size_t)n : HEAD_MAX - c->head_len;
			memcpy(c->head + c->head_len, buf, used);
			c->head_len += used;
			end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
			if (!end)
				return c->head_len == HEAD_MAX ? -1 : 0;
			/* bytes past the header in this read belong to the body */
			used -= c->head_len - (size_t)(end + 4 - c->head);
			c->body_left = parse_head(c, end + 4 - c->head);
			if (c->body_left < 0)
				return -1;
		}
		c->body_left -= n - (ssize_t)used;
		if (c->body_left <= 0)
			return c->body_left == 0 ? 1 : -1;
	}
}

static void conn_fail(struct conn *c, int ep, int *failed)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->state = C_CLOSED;
	(*failed)++;
}

/* One event on a connection being opened: connected (send the request) or
 * data (read the response). Returns 1 when it became idle, else 0. */
static int open_step(struct conn *c, int ep, int *failed)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (c->state == C_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err ||
		    send_request(c->fd, "") < 0) {
			conn_fail(c, ep, failed);
			return 0;
		}
		c->state = C_READING;
		c->body_left = -1;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		return 0;
	}
	switch (read_response(c)) {
	case 1:
		c->state = C_IDLE;
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		return 1;
	case 0:
		return 0;
	default:
		conn_fail(c, ep, failed);
		return 0;
	}
}

/* Open n connections, at most CONNECT_WINDOW at a time, and have each
 * answer one request. Returns how many are idle and open; *failed counts
 * the others. Bounded by OPEN_DEADLINE_MS. */
static int open_all(struct conn *cs, int n, int *failed)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), next = 0, busy = 0, idle = 0;
	long long deadline = now_us() + OPEN_DEADLINE_MS * 1000LL;
	struct epoll_event evs[CONNECT_WINDOW];

	if (ep < 0)
		die("epoll_create1");
	*failed = 0;
	while (idle + *failed < n && now_us() < deadline) {
		while (busy < CONNECT_WINDOW && next < n) {
			struct conn *c = &cs[next++];
			struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

			c->fd = connect_to(SOCK_NONBLOCK);
			if (c->fd < 0) {
				c->state = C_CLOSED;
				(*failed)++;
				continue;
			}
			c->state = C_CONNECTING;
			c->head_len = 0;
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
			busy++;
		}
		int k = epoll_wait(ep, evs, CONNECT_WINDOW, 1000);

		for (int i = 0; i < k; i++) {
			struct conn *c = evs[i].data.ptr;
			int was_failed = *failed;

			idle += open_step(c, ep, failed);
			if (c->state == C_IDLE || *failed != was_failed)
				busy--;
		}
	}
	close(ep);
	return idle;
}

/* Watch every idle connection for the server closing it (EPOLLRDHUP). */
static int watch_idle(struct conn *cs, int n)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0)
		die("epoll_create1");
	for (int i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = &cs[i] };

		if (cs[i].state == C_IDLE && epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0)
			die("epoll_ctl");
	}
	return ep;
}

static int cmd_hold(int n)
{
	struct conn *cs = calloc(n, sizeof(*cs));
	int failed, held, dropped = 0, ep;
	struct epoll_event evs[256];

	if (!cs)
		die("calloc");
	held = open_all(cs, n, &failed);
	printf("held %d failed %d\n", held, failed);
	fflush(stdout);
	ep = watch_idle(cs, n);
	struct epoll_event in = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &in) < 0) {
		if (errno != EPERM)
			die("epoll_ctl stdin");
		goto done;	/* a file or /dev/null: its end is already there */
	}
	for (;;) {
		int k = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < k; i++) {
			struct conn *c = evs[i].data.ptr;
			char buf[4096];

			if (!c) {
				if (read(STDIN_FILENO, buf, sizeof(buf)) <= 0)
					goto done;
				continue;
			}
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			c->state = C_CLOSED;
			dropped++;
		}
	}
done:
	printf("dropped %d\n", dropped);
	fflush(stdout);
	free(cs);
	return 0;
}

/* Wait for FIN (or reset) on every idle connection, closing each at once,
 * and for the process behind pidfd to exit. */
static int cmd_stop(int n, pid_t pid, int sig)
{
	struct conn *cs = calloc(n, sizeof(*cs));
	int failed, held, open, resets = 0, ep, pidfd;
	long long t0, fin = -1, exited = -1, deadline;
	struct epoll_event evs[256];

	if (!cs)
		die("calloc");
	held = open_all(cs, n, &failed);
	open = held;
	ep = watch_idle(cs, n);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		die("pidfd_open");
	struct epoll_event pe = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, pidfd, &pe) < 0)
		die("epoll_ctl pidfd");
	t0 = now_us();
	if (kill(pid, sig) < 0)
		die("kill");
	deadline = t0 + STOP_DEADLINE_MS * 1000LL;
	while ((open > 0 || exited < 0) && now_us() < deadline) {
		int k = epoll_wait(ep, evs, 256, 100);

		for (int i = 0; i < k; i++) {
			struct conn *c = evs[i].data.ptr;
			char buf[4096];
			ssize_t r;

			if (!c) {
				exited = now_us() - t0;
				epoll_ctl(ep, EPOLL_CTL_DEL, pidfd, NULL);
				continue;
			}
			while ((r = recv(c->fd, buf, sizeof(buf), 0)) > 0)
				;	/* unexpected bytes: discard, wait for the FIN */
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r < 0)
				resets++;
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			c->state = C_CLOSED;
			fin = now_us() - t0;
			open--;
		}
	}
	printf("held %d failed %d fin_ms %.3f exit_ms %.3f resets %d open %d\n", held, failed,
	       fin < 0 ? -1.0 : fin / 1000.0, exited < 0 ? -1.0 : exited / 1000.0, resets, open);
	fflush(stdout);
	free(cs);
	return open > 0 || exited < 0 ? 2 : 0;
}

/* One probe: a fresh connection, GET path with Connection: close, read to
 * the end. Returns 1 when the body is want, 0 for another 200, -1 else. */
static int probe(const char *want)
{
	char buf[4096];
	size_t len = 0;
	struct timeval tv = { .tv_sec = 2 };
	int fd = connect_to(0), ret = -1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send_request(fd, "Connection: close\r\n") == 0) {
		ssize_t r;

		while (len < sizeof(buf) - 1 && (r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0)) > 0)
			len += r;
		buf[len] = '\0';
		char *body = strstr(buf, "\r\n\r\n");

		if (len >= 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0 && body) {
			body += 4;
			body[strcspn(body, "\r\n")] = '\0';
			ret = strcmp(body, want) == 0;
		}
	}
	close(fd);
	return ret;
}

static int cmd_reload(const char *want, pid_t pid, int sig)
{
	long long t0, deadline;
	int probes = 0, failed = 0, r = 0;

	t0 = now_us();
	if (kill(pid, sig) < 0)
		die("kill");
	deadline = t0 + RELOAD_DEADLINE_MS * 1000LL;
	while (r != 1 && now_us() < deadline) {
		r = probe(want);
		probes++;
		if (r < 0) {	/* refused or reset: do not spin on it */
			failed++;
			usleep(1000);
		}
	}
	printf("ms %.3f probes %d failed %d\n", r == 1 ? (now_us() - t0) / 1000.0 : -1.0,
	       probes, failed);
	return r == 1 ? 0 : 2;
}

static int number(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "client: '%s' is not a number from %ld to %ld\n", s, lo, hi);
		exit(1);
	}
	return (int)v;
}

static int signal_number(const char *s)
{
	static const struct { const char *name; int sig; } sigs[] = {
		{ "HUP", SIGHUP }, { "TERM", SIGTERM }, { "QUIT", SIGQUIT },
		{ "INT", SIGINT }, { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
	};

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (strcmp(s, sigs[i].name) == 0)
			return sigs[i].sig;
	fprintf(stderr, "client: unknown signal '%s'\n", s);
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "hold") == 0) {
		port = number(argv[2], 1, 65535);
		path = argv[4];
		raise_nofile(number(argv[3], 1, 1000000));
		return cmd_hold(number(argv[3], 1, 1000000));
	}
	if (argc == 7 && strcmp(argv[1], "stop") == 0) {
		port = number(argv[2], 1, 65535);
		path = argv[4];
		raise_nofile(number(argv[3], 1, 1000000));
		return cmd_stop(number(argv[3], 1, 1000000), number(argv[5], 1, 1 << 22),
				signal_number(argv[6]));
	}
	if (argc == 7 && strcmp(argv[1], "reload") == 0) {
		port = number(argv[2], 1, 65535);
		path = argv[3];
		return cmd_reload(argv[4], number(argv[5], 1, 1 << 22), signal_number(argv[6]));
	}
	fprintf(stderr, "usage: client hold PORT N PATH\n"
			"       client stop PORT N PATH PID SIGNAL\n"
			"       client reload PORT PATH BODY PID SIGNAL\n");
	return 1;
}
