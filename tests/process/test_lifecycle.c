/* test_lifecycle: the process model, against the real binary. Socket
 * activation and bound listeners, READY/STOPPING/STATUS over sd_notify,
 * N workers that each serve, graceful drain that loses no byte,
 * shutdown_timeout, worker replacement, echo's idle timeout and
 * back-pressure, and the command line.
 *
 * Nothing here asserts speed. Waits are bounded only to turn a hang into a
 * failure; where no event exists (the process table, /proc/net/tcp) the
 * condition is polled at a short interval under the same bound. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define SLICE_MS 10 /* re-check interval for conditions without an event */

/* ------------------------------------------------------------------ helpers */

/* The byte at offset off of client k's stream: differs between clients and
 * along the stream, so lost, duplicated, reordered or crossed bytes show. */
static unsigned char pattern(unsigned k, size_t off)
{
	uint32_t x = (uint32_t)off * 2654435761u ^ (k + 1) * 40503u;
	return (unsigned char)(x >> 13 ^ off >> 7 ^ k);
}

static void pattern_fill(unsigned k, size_t off, unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(k, off + i);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	ck_assert(fl >= 0);
	ck_assert(fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
}

static void set_block(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	ck_assert(fl >= 0);
	ck_assert(fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0);
}

static int local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	ck_assert(getsockname(fd, (struct sockaddr *)&ss, &sl) == 0);
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* TCP connect to 127.0.0.1:port with small socket buffers set before the
 * handshake (so the window is small and data piles up inside drover). */
static int connect_small_buffers(int port, int rcvbuf, int sndbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert(fd >= 0);
	if (rcvbuf > 0)
		ck_assert(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
	if (sndbuf > 0)
		ck_assert(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) == 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0, "connect to port %d: %s",
		      port, strerror(errno));
	return fd;
}

/* Read everything drover wrote to its log. */
static char *read_log(struct h_drover *d)
{
	FILE *f = fopen(d->log_path, "re");
	ck_assert_msg(f != NULL, "open %s: %s", d->log_path, strerror(errno));
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	ck_assert(buf != NULL);
	size_t r;
	while ((r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += r;
		if (cap - len < 2) {
			ck_assert(cap < (64u << 20));
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert(buf != NULL);
		}
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* Whether one line of the log holds both needles. */
static bool log_has_line(struct h_drover *d, const char *a, const char *b)
{
	char *all = read_log(d), *save = NULL;
	bool found = false;
	for (char *line = strtok_r(all, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save))
		found = strstr(line, a) && (!b || strstr(line, b));
	free(all);
	return found;
}

static bool log_wait_line(struct h_drover *d, const char *a, const char *b)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (!log_has_line(d, a, b)) {
		if (h_left_ms(deadline) == 0)
			return false;
		h_pause_ms(SLICE_MS);
	}
	return true;
}

/* Take every notify datagram already queued, without waiting (the harness
 * stores them in d->notify_buf the same way). */
static void notify_take_queued(struct h_drover *d)
{
	for (;;) {
		char dgram[4096];
		ssize_t r = recv(d->notify_fd, dgram, sizeof dgram, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return;
		ck_assert((size_t)r + 2 < sizeof d->notify_buf - d->notify_len);
		memcpy(d->notify_buf + d->notify_len, dgram, (size_t)r);
		d->notify_len += (size_t)r;
		d->notify_buf[d->notify_len++] = '\n';
		d->notify_buf[d->notify_len] = '\0';
	}
}

static bool pid_is_stopped(pid_t pid)
{
	char s = h_proc_state(pid);
	return s == 'T' || s == 't';
}

static void wait_stopped(pid_t pid, bool stopped)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (pid_is_stopped(pid) != stopped) {
		ck_assert_msg(h_left_ms(deadline) > 0, "pid %ld did not %s", (long)pid,
			      stopped ? "stop" : "continue");
		h_pause_ms(SLICE_MS);
	}
}

static bool pid_alive(pid_t pid)
{
	char s = h_proc_state(pid);
	return s != 0 && s != 'Z' && s != 'X';
}

static long vmrss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	FILE *f = fopen(path, "re");
	ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
	long kb = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	ck_assert_msg(kb > 0, "no VmRSS for pid %ld", (long)pid);
	return kb;
}

/* One IPv4 TCP socket from /proc/net/tcp, by its local and remote ports. */
struct tcp_entry {
	unsigned long tx_queue, rx_queue, inode;
};

static bool proc_tcp_find(int lport, int rport, struct tcp_entry *e)
{
	FILE *f = fopen("/proc/net/tcp", "re");
	ck_assert_msg(f != NULL, "open /proc/net/tcp: %s", strerror(errno));
	char line[512];
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned lp, rp, st;
		unsigned long tx, rx, inode;
		if (sscanf(line, " %*u: %*x:%x %*x:%x %x %lx:%lx %*x:%*x %*x %*u %*d %lu", &lp, &rp, &st,
			   &tx, &rx, &inode) != 6)
			continue;
		if ((int)lp == lport && (int)rp == rport) {
			e->tx_queue = tx;
			e->rx_queue = rx;
			e->inode = inode;
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* Whether pid has socket inode open. */
static bool pid_holds_socket(pid_t pid, unsigned long inode)
{
	char dir[64], want[64];
	snprintf(dir, sizeof dir, "/proc/%ld/fd", (long)pid);
	snprintf(want, sizeof want, "socket:[%lu]", inode);
	DIR *dp = opendir(dir);
	if (!dp)
		return false;
	struct dirent *de;
	bool found = false;
	while (!found && (de = readdir(dp))) {
		char link[400], target[128];
		snprintf(link, sizeof link, "%s/%s", dir, de->d_name);
		ssize_t n = readlink(link, target, sizeof target - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		found = strcmp(target, want) == 0;
	}
	closedir(dp);
	return found;
}

/* Run n echo clients at once over poll(): each sends size bytes of its own
 * pattern (starting at stream offset base) and reads back exactly the same
 * bytes. Every byte is checked. Fails on no progress for H_WAIT_MS. */
static void echo_clients(const int *fds, size_t n, size_t size, size_t base)
{
	size_t *sent = calloc(n, sizeof *sent), *got = calloc(n, sizeof *got);
	struct pollfd *p = calloc(n, sizeof *p);
	size_t *idx = calloc(n, sizeof *idx);
	ck_assert(sent && got && p && idx);
	for (size_t i = 0; i < n; i++)
		set_nonblock(fds[i]);
	size_t done = 0;
	unsigned char buf[16384], want[16384];
	while (done < n) {
		size_t np = 0;
		for (size_t i = 0; i < n; i++) {
			if (got[i] == size)
				continue;
			p[np] = (struct pollfd){ .fd = fds[i], .events = POLLIN | (sent[i] < size ? POLLOUT : 0) };
			idx[np++] = i;
		}
		int r = poll(p, np, H_WAIT_MS);
		ck_assert_msg(r > 0, "echo: no progress for %d ms (%zu of %zu clients done)", H_WAIT_MS,
			      done, n);
		for (size_t j = 0; j < np; j++) {
			size_t i = idx[j];
			if ((p[j].revents & POLLOUT) && sent[i] < size) {
				size_t len = size - sent[i] < sizeof buf ? size - sent[i] : sizeof buf;
				pattern_fill((unsigned)i, base + sent[i], buf, len);
				ssize_t w = send(fds[i], buf, len, MSG_NOSIGNAL);
				if (w > 0)
					sent[i] += (size_t)w;
				else
					ck_assert_msg(w < 0 && errno == EAGAIN, "client %zu: send: %s", i,
						      strerror(errno));
			}
			if (p[j].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t rd = recv(fds[i], buf, sizeof buf, 0);
				if (rd < 0 && errno == EAGAIN)
					continue;
				ck_assert_msg(rd > 0, "client %zu: %s after %zu of %zu bytes echoed", i,
					      rd == 0 ? "EOF" : strerror(errno), got[i], size);
				ck_assert_msg(got[i] + (size_t)rd <= sent[i], "client %zu: more echoed than sent", i);
				pattern_fill((unsigned)i, base + got[i], want, (size_t)rd);
				ck_assert_msg(memcmp(buf, want, (size_t)rd) == 0,
					      "client %zu: echoed bytes differ near offset %zu", i, base + got[i]);
				got[i] += (size_t)rd;
				if (got[i] == size)
					done++;
			}
		}
	}
	for (size_t i = 0; i < n; i++)
		set_block(fds[i]);
	free(sent);
	free(got);
	free(p);
	free(idx);
}

/* Read back exactly sizes[k] bytes of client k's pattern (from stream
 * offset base) from each fd, then EOF (not a reset). */
static void read_back_then_eof(const int *fds, size_t n, const size_t *sizes, size_t base)
{
	size_t *got = calloc(n, sizeof *got);
	bool *eof = calloc(n, sizeof *eof);
	struct pollfd *p = calloc(n, sizeof *p);
	size_t *idx = calloc(n, sizeof *idx);
	ck_assert(got && eof && p && idx);
	size_t done = 0;
	unsigned char buf[16384], want[16384];
	while (done < n) {
		size_t np = 0;
		for (size_t i = 0; i < n; i++)
			if (!eof[i]) {
				p[np] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
				idx[np++] = i;
			}
		int r = poll(p, np, H_WAIT_MS);
		ck_assert_msg(r > 0, "read back: no progress for %d ms (%zu of %zu clients done)",
			      H_WAIT_MS, done, n);
		for (size_t j = 0; j < np; j++) {
			size_t i = idx[j];
			if (!p[j].revents)
				continue;
			ssize_t rd = recv(fds[i], buf, sizeof buf, MSG_DONTWAIT);
			if (rd < 0 && errno == EAGAIN)
				continue;
			ck_assert_msg(rd >= 0, "client %zu: %s after %zu of %zu bytes (bytes it had sent were lost)",
				      i, strerror(errno), got[i], sizes[i]);
			if (rd == 0) {
				ck_assert_msg(got[i] == sizes[i], "client %zu: EOF after %zu of %zu bytes", i,
					      got[i], sizes[i]);
				eof[i] = true;
				done++;
				continue;
			}
			ck_assert_msg(got[i] + (size_t)rd <= sizes[i], "client %zu: more bytes than it sent", i);
			pattern_fill((unsigned)i, base + got[i], want, (size_t)rd);
			ck_assert_msg(memcmp(buf, want, (size_t)rd) == 0,
				      "client %zu: bytes differ near offset %zu", i, base + got[i]);
			got[i] += (size_t)rd;
		}
	}
	free(got);
	free(eof);
	free(p);
	free(idx);
}

/* Send client k's pattern without reading until max bytes or the peer
 * stops taking them (no room for a while); bytes sent. A stall is how
 * back-pressure looks from outside; if drover is merely slow the test only
 * gets weaker, never wrong. */
static size_t send_until_stalled(int fd, unsigned k, size_t max)
{
	unsigned char buf[65536];
	size_t sent = 0;
	set_nonblock(fd);
	while (sent < max) {
		size_t len = max - sent < sizeof buf ? max - sent : sizeof buf;
		pattern_fill(k, sent, buf, len);
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
		if (w > 0) {
			sent += (size_t)w;
			continue;
		}
		ck_assert_msg(w < 0 && errno == EAGAIN, "send: %s", strerror(errno));
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		if (poll(&p, 1, 300) == 0)
			break;
	}
	set_block(fd);
	return sent;
}

/* Wait until drover's worker has read every byte the client at client_fd
 * sent (nothing in flight: the client's send queue and the server side's
 * receive queue are both empty). IPv4 clients of listener port only. */
static void wait_all_consumed(const int *fds, size_t n, int server_port)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (size_t i = 0; i < n; i++) {
		int cport = local_port(fds[i]);
		for (;;) {
			struct tcp_entry c, s;
			ck_assert_msg(proc_tcp_find(cport, server_port, &c), "client %zu not in /proc/net/tcp", i);
			ck_assert_msg(proc_tcp_find(server_port, cport, &s), "server side of client %zu not in /proc/net/tcp", i);
			if (c.tx_queue == 0 && s.rx_queue == 0)
				break;
			ck_assert_msg(h_left_ms(deadline) > 0,
				      "client %zu: drover did not read what it sent (client tx %lu, server rx %lu)",
				      i, c.tx_queue, s.rx_queue);
			h_pause_ms(SLICE_MS);
		}
	}
}

/* The most the kernel will queue in one TCP socket's send buffer
 * (tcp_wmem's maximum; autotuning grows towards it). */
static size_t tcp_mem_max(const char *path)
{
	FILE *f = fopen(path, "re");
	unsigned long lo, def, max = 4ul << 20;
	if (f) {
		if (fscanf(f, "%lu %lu %lu", &lo, &def, &max) != 3)
			max = 4ul << 20;
		fclose(f);
	}
	return max;
}

static size_t kernel_sndbuf_max(void)
{
	return tcp_mem_max("/proc/sys/net/ipv4/tcp_wmem");
}

/* The same for receive buffers (tcp_rmem's maximum). */
static size_t kernel_rcvbuf_max(void)
{
	return tcp_mem_max("/proc/sys/net/ipv4/tcp_rmem");
}

/* A stream the kernel cannot hold for a client that does not read, so part
 * of it must sit in drover's own buffer: more than the server's send buffer
 * and the client's (small) receive buffer together. */
static size_t heavy_size(void)
{
	return kernel_sndbuf_max() + (2u << 20);
}

/* [echo] keys with a buffer that can take a whole heavy stream. */
static char *heavy_echo_config(void)
{
	size_t kb = (heavy_size() >> 10) + 1024;
	ck_assert_msg(kb <= (64u << 10), "tcp_wmem max too large for this test (%zu)", kernel_sndbuf_max());
	char *text;
	ck_assert(asprintf(&text, "idle_timeout = 60s\nbuffer_size = %zuk\n", kb) > 0);
	return text;
}

/* Send client k's pattern (stream offsets base..base+size) on a
 * non-blocking socket, waiting for room as needed; fails if drover stops
 * reading for H_WAIT_MS. */
static void send_stream(int fd, unsigned k, size_t base, size_t size)
{
	unsigned char buf[65536];
	size_t s = 0;
	set_nonblock(fd);
	while (s < size) {
		size_t len = size - s < sizeof buf ? size - s : sizeof buf;
		pattern_fill(k, base + s, buf, len);
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
		if (w > 0) {
			s += (size_t)w;
			continue;
		}
		ck_assert_msg(w < 0 && errno == EAGAIN, "client %u: send: %s", k, strerror(errno));
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		ck_assert_msg(poll(&p, 1, H_WAIT_MS) == 1,
			      "client %u: drover stopped reading after %zu of %zu bytes", k, s, size);
	}
	set_block(fd);
}

/* Bytes of a stream of size (all consumed by drover, nothing read back yet)
 * that are neither in the server socket's send queue nor in the client's
 * receive queue: they are in drover's own buffer. */
static long bytes_inside_drover(int fd, int server_port, size_t size)
{
	struct tcp_entry srv, cli;
	int cport = local_port(fd);
	ck_assert(proc_tcp_find(server_port, cport, &srv));
	ck_assert(proc_tcp_find(cport, server_port, &cli));
	return (long)size - (long)srv.tx_queue - (long)cli.rx_queue;
}

static void assert_exit_status(struct h_drover *d, int st, int code)
{
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == code,
		      "drover: expected exit %d, got wait status 0x%x; log:\n%s", code, st,
		      h_log_end(d));
}

static void stop_gracefully(struct h_drover *d)
{
	h_drover_kill(d, SIGTERM);
	assert_exit_status(d, h_drover_wait(d), 0);
}

/* A plain echo config; extra server keys, listener keys and echo keys in. */
static char *echo_config(unsigned workers, const char *server_extra, const char *listener_extra,
			 const char *echo_extra)
{
	return h_echo_config(workers, server_extra ? server_extra : "shutdown_timeout = 10s\n", listener_extra,
			     echo_extra ? echo_extra : "idle_timeout = 30s\n");
}

/* Start echo with workers on a socket-activated listener named "main". */
static struct h_drover *start_activated(unsigned workers, const char *server_extra,
					const char *echo_extra, int *port)
{
	int fd = h_listen_tcp(port);
	struct h_activation a = { .name = "main", .fd = fd };
	struct h_opts o = { .notify = true, .fds = &a, .n_fds = 1 };
	char *cfg = echo_config(workers, server_extra, NULL, echo_extra);
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	return d;
}

static void connect_many(int port, int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fds[i] = h_connect_tcp(port);
		ck_assert_msg(fds[i] >= 0, "connect %zu to port %d: %s", i, port, strerror(-fds[i]));
	}
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* ------------------------------------------------------------------ tests */

START_TEST(echo_round_trips_for_fifty_concurrent_clients_on_an_activated_listener)
{
	int port;
	struct h_drover *d = start_activated(3, NULL, NULL, &port);
	int fds[50];
	connect_many(port, fds, 50);
	echo_clients(fds, 50, 24 * 1024, 0);
	/* and the same connections keep working for a second round */
	echo_clients(fds, 50, 8 * 1024, 24 * 1024);
	close_all(fds, 50);
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

START_TEST(a_single_unnamed_activation_fd_serves_the_single_listener)
{
	int port;
	int fd = h_listen_tcp(&port);
	struct h_activation a = { .name = NULL, .fd = fd };
	struct h_opts o = { .notify = true, .fds = &a, .n_fds = 1 };
	char *cfg = echo_config(1, NULL, NULL, NULL);
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	int c[2];
	connect_many(port, c, 2);
	echo_clients(c, 2, 4096, 0);
	close_all(c, 2);
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

START_TEST(each_of_three_distinct_worker_processes_serves_connections)
{
	int port;
	struct h_drover *d = start_activated(3, "shutdown_timeout = 10s\nworker_timeout = 120s\n", NULL, &port);
	ck_assert(h_wait_workers(d, 3));
	pid_t w[8];
	ck_assert_uint_eq(h_worker_pids(d, w, 8), 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_ne(w[i], d->pid);
		ck_assert_msg(pid_alive(w[i]), "worker %ld is not alive", (long)w[i]);
		for (int j = 0; j < i; j++)
			ck_assert_int_ne(w[i], w[j]);
	}

	/* more simultaneous connections than workers, all served at once */
	int many[6];
	connect_many(port, many, 6);
	echo_clients(many, 6, 16384, 0);
	close_all(many, 6);

	/* Freeze all workers but one: a connection can then only be accepted
	 * by that one, and /proc shows which process holds its socket. */
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < 3; j++)
			if (j != i) {
				ck_assert(kill(w[j], SIGSTOP) == 0);
				wait_stopped(w[j], true);
			}
		int c = h_connect_tcp(port);
		ck_assert(c >= 0);
		echo_clients(&c, 1, 1000, 0);
		struct tcp_entry e;
		ck_assert_msg(proc_tcp_find(port, local_port(c), &e), "server side not in /proc/net/tcp");
		ck_assert_msg(pid_holds_socket(w[i], e.inode),
			      "connection served while only worker %ld runs is not held by it", (long)w[i]);
		close(c);
		for (int j = 0; j < 3; j++)
			if (j != i) {
				ck_assert(kill(w[j], SIGCONT) == 0);
				wait_stopped(w[j], false);
			}
	}
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

START_TEST(ready_is_sent_before_the_first_connection_is_served)
{
	int port;
	int fd = h_listen_tcp(&port);
	/* The test owns the socket, so a client can connect and send before
	 * drover even runs. */
	int c = h_connect_tcp(port);
	ck_assert(c >= 0);
	h_write_all(c, "early bird", 10);
	struct h_activation a = { .name = "main", .fd = fd };
	struct h_opts o = { .notify = true, .fds = &a, .n_fds = 1, .no_wait_ready = true };
	char *cfg = echo_config(3, NULL, NULL, NULL);
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);

	char buf[11] = "";
	ck_assert_msg(h_read_exact(c, buf, 10), "no echo for a connection made before start");
	ck_assert_str_eq(buf, "early bird");
	/* READY=1 must already be waiting in our socket: it was sent before
	 * the echo was written. */
	notify_take_queued(d);
	ck_assert_msg(strstr(d->notify_buf, "READY=1") != NULL,
		      "the first connection was served before READY=1 was sent; notify so far: [%s]",
		      d->notify_buf);
	close(c);
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

START_TEST(sigterm_sends_stopping_and_status_lines_mention_the_workers)
{
	int port;
	struct h_drover *d = start_activated(2, NULL, NULL, &port);
	size_t at = 0;
	ck_assert(h_notify_wait(d, "READY=1", &at));
	const char *status = strstr(d->notify_buf, "STATUS=");
	ck_assert_msg(status != NULL, "no STATUS= with READY=1: [%s]", d->notify_buf);
	const char *eol = strchr(status, '\n');
	ck_assert_msg(memmem(status, eol ? (size_t)(eol - status) : strlen(status), "worker", 6) != NULL,
		      "STATUS= does not mention the workers: [%s]", d->notify_buf);
	h_drover_kill(d, SIGTERM);
	ck_assert_msg(h_notify_wait(d, "STOPPING=1", &at), "no STOPPING=1 after SIGTERM: [%s]",
		      d->notify_buf);
	assert_exit_status(d, h_drover_wait(d), 0);
	h_drover_free(d);
}
END_TEST

START_TEST(sigint_is_a_graceful_stop_too)
{
	int port;
	struct h_drover *d = start_activated(2, NULL, NULL, &port);
	h_drover_kill(d, SIGINT);
	ck_assert_msg(h_notify_wait(d, "STOPPING=1", NULL), "no STOPPING=1 after SIGINT: [%s]",
		      d->notify_buf);
	assert_exit_status(d, h_drover_wait(d), 0);
	h_drover_free(d);
}
END_TEST

START_TEST(a_bound_ipv4_listener_serves_echo)
{
	int port = h_free_port();
	char listener[64];
	snprintf(listener, sizeof listener, "address = 127.0.0.1:%d\n", port);
	char *cfg = echo_config(2, NULL, listener, NULL);
	/* no NOTIFY_SOCKET: readiness comes from the log */
	struct h_opts o = { .notify = false };
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	int c[5];
	connect_many(port, c, 5);
	echo_clients(c, 5, 32768, 0);
	close_all(c, 5);
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

START_TEST(a_bound_ipv6_listener_serves_echo)
{
	int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t sl = sizeof sin6;
	if (probe < 0 || bind(probe, (struct sockaddr *)&sin6, sizeof sin6) != 0 ||
	    getsockname(probe, (struct sockaddr *)&sin6, &sl) != 0) {
		h_skip("no IPv6 loopback here (%s)", strerror(errno));
		if (probe >= 0)
			close(probe);
		return;
	}
	int port = ntohs(sin6.sin6_port);
	close(probe);
	char listener[64];
	snprintf(listener, sizeof listener, "address = [::1]:%d\n", port);
	char *cfg = echo_config(2, NULL, listener, NULL);
	struct h_opts o = { .notify = true };
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	int c = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert(c >= 0);
	ck_assert_msg(connect(c, (struct sockaddr *)&sin6, sizeof sin6) == 0, "connect [::1]:%d: %s",
		      port, strerror(errno));
	echo_clients(&c, 1, 65536, 0);
	close(c);
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

START_TEST(a_unix_listener_gets_its_mode_and_serves_echo)
{
	char *cfg = echo_config(2, NULL, "address = unix:@DIR@/echo.sock\nmode = 0660\n", NULL);
	struct h_opts o = { .notify = true };
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	char path[400];
	snprintf(path, sizeof path, "%s/echo.sock", d->dir);
	struct stat st;
	ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_msg((st.st_mode & 07777) == 0660, "mode is %o, configured 0660",
		      (unsigned)(st.st_mode & 07777));
	int c[4];
	for (int i = 0; i < 4; i++) {
		c[i] = h_connect_unix(path);
		ck_assert_msg(c[i] >= 0, "connect %s: %s", path, strerror(-c[i]));
	}
	echo_clients(c, 4, 65536, 0);
	close_all(c, 4);
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

START_TEST(sigterm_while_twenty_clients_are_mid_stream_loses_none_of_their_bytes)
{
	enum { N = 20, HEAVY = 3 };
	size_t sizes[N];
	for (int i = 0; i < N; i++)
		sizes[i] = i < HEAVY ? heavy_size() : 192 * 1024;
	int port;
	char *echo = heavy_echo_config();
	struct h_drover *d = start_activated(2, "shutdown_timeout = 60s\n", echo, &port);
	free(echo);
	int c[N];
	for (int i = 0; i < N; i++)
		c[i] = connect_small_buffers(port, 8192, 0);
	/* every connection is accepted and being served */
	echo_clients(c, N, 100, 0);
	/* Now each sends a stream it does not read. With a small receive
	 * window the echo piles up: in the kernel's queues, and for the heavy
	 * streams in drover's own buffer too. Wait until drover has read
	 * every byte sent, so all of them are drover's responsibility. */
	for (int i = 0; i < N; i++)
		send_stream(c[i], (unsigned)i, 100, sizes[i]);
	wait_all_consumed(c, N, port);
	for (int i = 0; i < HEAVY; i++) {
		long inside = bytes_inside_drover(c[i], port, sizes[i]);
		ck_assert_msg(inside > 0, "client %d: expected part of its stream inside drover, %ld bytes", i,
			      inside);
	}

	h_drover_kill(d, SIGTERM);
	ck_assert(h_notify_wait(d, "STOPPING=1", NULL));
	read_back_then_eof(c, N, sizes, 100);
	close_all(c, N);
	assert_exit_status(d, h_drover_wait(d), 0);
	h_drover_free(d);
}
END_TEST

START_TEST(after_sigterm_the_listener_refuses_new_connections_while_draining)
{
	int port = h_free_port();
	char listener[64];
	snprintf(listener, sizeof listener, "address = 127.0.0.1:%d\n", port);
	char *echo = heavy_echo_config();
	char *cfg = echo_config(2, "shutdown_timeout = 60s\n", listener, echo);
	free(echo);
	struct h_opts o = { .notify = true };
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);

	/* a client whose echo drover cannot finish until it reads: this keeps
	 * the drain going while we probe the listener */
	int c = connect_small_buffers(port, 8192, 0);
	size_t size = heavy_size();
	echo_clients(&c, 1, 10, 0);
	send_stream(c, 0, 10, size);
	wait_all_consumed(&c, 1, port);
	ck_assert(bytes_inside_drover(c, port, size) > 0);

	h_drover_kill(d, SIGTERM);
	ck_assert(h_notify_wait(d, "STOPPING=1", NULL));
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		int p = h_connect_tcp(port);
		if (p == -ECONNREFUSED)
			break;
		/* A connect that races with the last close of the listener is
		 * reset by the kernel; the next attempt sees the closed port. */
		ck_assert_msg(p >= 0 || p == -ECONNRESET, "connect: %s", strerror(-p));
		if (p >= 0)
			close(p);
		ck_assert_msg(h_left_ms(deadline) > 0,
			      "port %d still accepts connections %d ms after SIGTERM; log:\n%s", port,
			      H_WAIT_MS, h_log_end(d));
		h_pause_ms(SLICE_MS);
	}
	ck_assert_msg(pid_alive(d->pid), "drover exited before the drain could finish");
	ck_assert_msg(bytes_inside_drover(c, port, size) > 0, "drover dropped the stream it held");

	/* the drain then completes: everything echoed, then EOF, exit 0 */
	read_back_then_eof(&c, 1, &size, 10);
	close(c);
	assert_exit_status(d, h_drover_wait(d), 0);
	h_drover_free(d);
}
END_TEST

START_TEST(a_frozen_worker_is_killed_at_shutdown_timeout_and_the_supervisor_still_exits)
{
	int port;
	struct h_drover *d = start_activated(2, "shutdown_timeout = 1s\n", NULL, &port);
	ck_assert(h_wait_workers(d, 2));
	pid_t w[4];
	ck_assert_uint_eq(h_worker_pids(d, w, 4), 2);
	ck_assert(kill(w[0], SIGSTOP) == 0);
	wait_stopped(w[0], true);

	h_drover_kill(d, SIGTERM);
	int st = h_drover_wait(d);
	ck_assert_msg(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 1),
		      "supervisor did not exit normally: wait status 0x%x; log:\n%s", st,
		      h_log_end(d));
	char who[32];
	snprintf(who, sizeof who, "pid %ld ", (long)w[0]);
	ck_assert_msg(log_has_line(d, who, "killed"), "no log line says worker %s was killed; log:\n%s",
		      who, h_log_end(d));
	ck_assert_msg(!pid_alive(w[0]), "the frozen worker %ld is still there", (long)w[0]);
	ck_assert_msg(!pid_alive(w[1]), "the other worker %ld is still there", (long)w[1]);
	h_drover_free(d);
}
END_TEST

START_TEST(a_worker_killed_with_sigkill_is_replaced_and_service_continues)
{
	int port;
	struct h_drover *d = start_activated(3, NULL, NULL, &port);
	ck_assert(h_wait_workers(d, 3));
	pid_t w[8];
	ck_assert_uint_eq(h_worker_pids(d, w, 8), 3);
	pid_t victim = w[1];
	ck_assert(kill(victim, SIGKILL) == 0);

	char who[32];
	snprintf(who, sizeof who, "pid %ld ", (long)victim);
	ck_assert_msg(log_wait_line(d, who, "killed by signal"),
		      "no log line reports worker %s killed by signal; log:\n%s", who,
		      h_log_end(d));
	/* back to three, with a new pid in place of the dead one */
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		pid_t now[8];
		size_t n = h_worker_pids(d, now, 8);
		bool has_victim = false;
		for (size_t i = 0; i < n && i < 8; i++)
			has_victim |= now[i] == victim;
		if (n == 3 && !has_victim)
			break;
		ck_assert_msg(h_left_ms(deadline) > 0, "worker not replaced: %zu workers; log:\n%s", n,
			      h_log_end(d));
		h_pause_ms(SLICE_MS);
	}
	int c[10];
	connect_many(port, c, 10);
	echo_clients(c, 10, 8192, 0);
	close_all(c, 10);
	ck_assert_msg(pid_alive(d->pid), "supervisor died");
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

/* Bad files: the text, the line the error must name, and a word it must say. */
static const struct bad_config {
	const char *text;
	unsigned line;
	const char *word;
} bad_configs[] = {
	{ "[server]\nworkers = 2\nbogus_key = 1\n[listener main]\nprotocol = echo\n", 3, "bogus_key" },
	{ "[server]\nworkers = 1\n\nshutdown_timeout = 5 parsecs\n[listener main]\nprotocol = echo\n", 4,
	  "shutdown_timeout" },
	{ "[server]\nworkers = 1\n# a comment\n\n[nonsense]\nfoo = bar\n[listener main]\nprotocol = echo\n",
	  5, "nonsense" },
	{ "[server]\nworkers = many\n[listener main]\nprotocol = echo\n", 2, "workers" },
	{ "[listener main]\nprotocol = echo\n[echo]\nidle_timeout = -3s\n", 4, "idle_timeout" },
	{ "[listener main]\nprotocol = gopher\n", 2, "protocol" },
	{ "[listener a]\naddress = 127.0.0.1:1\nprotocol = echo\n[listener a]\naddress = 127.0.0.1:2\n",
	  4, "a" },
};

static void assert_names_line(const char *out, const struct bad_config *b)
{
	char at[32];
	snprintf(at, sizeof at, "drover.ini:%u:", b->line);
	ck_assert_msg(strstr(out, at) != NULL, "message does not name line %u:\n%s", b->line, out);
	ck_assert_msg(strstr(out, b->word) != NULL, "message does not mention '%s':\n%s", b->word, out);
}

START_TEST(a_bad_config_fails_the_check_with_its_line_number)
{
	const struct bad_config *b = &bad_configs[_i];
	char out[8192];
	int code = h_drover_check(b->text, NULL, out, sizeof out);
	ck_assert_msg(code == 1, "drover -t exited %d on a bad file:\n%s", code, out);
	assert_names_line(out, b);
	ck_assert_msg(strstr(out, "configuration OK") == NULL, "bad file reported OK:\n%s", out);
}
END_TEST

START_TEST(a_bad_config_stops_a_normal_start_with_exit_1_and_its_line_number)
{
	const struct bad_config *b = &bad_configs[_i];
	struct h_opts o = { .notify = true, .no_wait_ready = true };
	struct h_drover *d = h_drover_start(b->text, &o);
	assert_exit_status(d, h_drover_wait(d), 1);
	char *log = read_log(d);
	assert_names_line(log, b);
	free(log);
	ck_assert_msg(strstr(d->notify_buf, "READY=1") == NULL, "READY=1 sent for a bad file");
	h_drover_free(d);
}
END_TEST

START_TEST(check_mode_accepts_a_good_file)
{
	char out[8192];
	int port = h_free_port();
	char text[512];
	snprintf(text, sizeof text,
		 "[server]\nworkers = 3\nshutdown_timeout = 500ms\ncontrol_socket = @DIR@/control.sock\n"
		 "[listener main]\naddress = 127.0.0.1:%d\nprotocol = echo\nbacklog = 64\n"
		 "[echo]\nidle_timeout = 2m\nbuffer_size = 64k\n",
		 port);
	int code = h_drover_check(text, NULL, out, sizeof out);
	ck_assert_msg(code == 0, "drover -t exited %d:\n%s", code, out);
	ck_assert_msg(strstr(out, "configuration OK") != NULL, "no 'configuration OK':\n%s", out);
	/* -t only checks: nothing may be listening afterwards */
	ck_assert_int_eq(h_connect_tcp(port), -ECONNREFUSED);
}
END_TEST

START_TEST(version_and_help_exit_zero)
{
	char out[8192];
	static const char *const version[] = { "--version", NULL };
	static const char *const help[] = { "--help", NULL };
	int code = h_drover_check(NULL, version, out, sizeof out);
	ck_assert_msg(code == 0, "--version exited %d:\n%s", code, out);
	ck_assert_msg(strstr(out, "drover") != NULL, "--version output: %s", out);
	code = h_drover_check(NULL, help, out, sizeof out);
	ck_assert_msg(code == 0, "--help exited %d:\n%s", code, out);
	ck_assert_msg(strstr(out, "-t") != NULL && strstr(out, "-c") != NULL, "--help output: %s", out);
}
END_TEST

START_TEST(an_activation_fd_that_matches_no_listener_is_an_error_naming_it)
{
	int p1, p2;
	struct h_activation a[2] = { { .name = "main", .fd = h_listen_tcp(&p1) },
				     { .name = "stray", .fd = h_listen_tcp(&p2) } };
	struct h_opts o = { .notify = true, .fds = a, .n_fds = 2, .no_wait_ready = true };
	char *cfg = echo_config(1, NULL, NULL, NULL);
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	assert_exit_status(d, h_drover_wait(d), 1);
	ck_assert_msg(h_log_contains(d, "stray"), "the error does not name fd 'stray'; log:\n%s",
		      h_log_end(d));
	ck_assert(strstr(d->notify_buf, "READY=1") == NULL);
	h_drover_free(d);
}
END_TEST

START_TEST(echo_closes_an_idle_connection_after_idle_timeout)
{
	int port;
	struct h_drover *d = start_activated(1, NULL, "idle_timeout = 1s\n", &port);
	int c = h_connect_tcp(port);
	ck_assert(c >= 0);
	echo_clients(&c, 1, 100, 0);
	char buf[16];
	ssize_t r = h_read_all(c, buf, sizeof buf);
	ck_assert_msg(r == 0, "idle connection not closed cleanly (read_all = %zd)", r);
	close(c);
	/* the worker is still there and serving */
	c = h_connect_tcp(port);
	ck_assert(c >= 0);
	echo_clients(&c, 1, 100, 0);
	close(c);
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

START_TEST(echo_client_that_half_closes_and_stops_reading_times_out)
{
	int port;
	/* drover's buffer is larger than what is sent: it keeps room to read,
	 * and after the client's EOF must stop asking to read. */
	struct h_drover *d = start_activated(1, NULL, "idle_timeout = 1s\nbuffer_size = 16m\n", &port);
	pid_t w[2];
	ck_assert(h_wait_workers(d, 1));
	ck_assert_uint_eq(h_worker_pids(d, w, 2), 1);
	/* Fill every buffer on the way back, say "no more" and never read:
	 * nothing can move any more, so the idle timeout must end it. */
	int c = connect_small_buffers(port, 4096, 0);
	send_until_stalled(c, 1, (size_t)8 << 20);
	ck_assert(shutdown(c, SHUT_WR) == 0);
	struct tcp_entry e;
	ck_assert(proc_tcp_find(port, local_port(c), &e));
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (pid_holds_socket(w[0], e.inode)) {
		ck_assert_msg(h_left_ms(deadline) > 0, "the stalled half-closed connection was never closed; log:\n%s",
			      h_log_end(d));
		h_pause_ms(SLICE_MS);
	}
	close(c);
	c = h_connect_tcp(port);
	ck_assert(c >= 0);
	echo_clients(&c, 1, 100, 0);
	close(c);
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

START_TEST(echo_client_that_does_not_read_cannot_grow_the_worker)
{
	/* More than every kernel queue on the way can hold, so a client that
	 * does not read must be stopped by drover (or drover must grow). */
	const size_t total = kernel_rcvbuf_max() + kernel_sndbuf_max() + (8u << 20);
	int port;
	struct h_drover *d = start_activated(1, NULL, "idle_timeout = 60s\nbuffer_size = 64k\n", &port);
	pid_t w;
	ck_assert(h_wait_workers(d, 1));
	ck_assert_uint_eq(h_worker_pids(d, &w, 1), 1);
	int warm = h_connect_tcp(port);
	ck_assert(warm >= 0);
	echo_clients(&warm, 1, 256 * 1024, 0);
	close(warm);
	long base = vmrss_kb(w);

	int c = connect_small_buffers(port, 65536, 65536);
	size_t sent = send_until_stalled(c, 0, total);
	long grown = vmrss_kb(w) - base;
	ck_assert_msg(sent < total,
		      "drover took all %zu bytes from a client that never read (no back-pressure)", total);
	ck_assert_msg(grown < 8 * 1024, "worker grew by %ld kB for a client that does not read", grown);

	/* Now the client reads: everything comes back, and the rest of the
	 * stream flows, with memory still bounded. */
	size_t got = 0, more = sent;
	unsigned char buf[65536], want[65536];
	set_nonblock(c);
	while (got < total) {
		struct pollfd p = { .fd = c, .events = POLLIN | (more < total ? POLLOUT : 0) };
		ck_assert_msg(poll(&p, 1, H_WAIT_MS) > 0, "no progress after %zu of %zu bytes", got, total);
		if ((p.revents & POLLOUT) && more < total) {
			size_t len = total - more < sizeof buf ? total - more : sizeof buf;
			pattern_fill(0, more, buf, len);
			ssize_t wr = send(c, buf, len, MSG_NOSIGNAL);
			ck_assert(wr > 0 || errno == EAGAIN);
			if (wr > 0)
				more += (size_t)wr;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t rd = recv(c, buf, sizeof buf, 0);
			if (rd < 0 && errno == EAGAIN)
				continue;
			ck_assert_msg(rd > 0, "%s after %zu bytes", rd ? strerror(errno) : "EOF", got);
			pattern_fill(0, got, want, (size_t)rd);
			ck_assert_msg(memcmp(buf, want, (size_t)rd) == 0, "bytes differ near %zu", got);
			got += (size_t)rd;
		}
	}
	grown = vmrss_kb(w) - base;
	ck_assert_msg(grown < 8 * 1024, "worker grew by %ld kB", grown);
	close(c);
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

START_TEST(sigquit_stops_at_once_even_with_a_connection_in_flight)
{
	int port;
	/* a graceful stop would wait a minute for this client, longer than
	 * h_drover_wait() allows */
	char *echo = heavy_echo_config();
	struct h_drover *d = start_activated(2, "shutdown_timeout = 60s\n", echo, &port);
	free(echo);
	int c = connect_small_buffers(port, 8192, 0);
	size_t size = heavy_size();
	echo_clients(&c, 1, 10, 0);
	send_stream(c, 0, 10, size);
	wait_all_consumed(&c, 1, port);
	ck_assert(bytes_inside_drover(c, port, size) > 0);
	pid_t w[4];
	size_t n = h_worker_pids(d, w, 4);
	h_drover_kill(d, SIGQUIT);
	int st = h_drover_wait(d);
	ck_assert_msg(WIFEXITED(st), "supervisor did not exit on SIGQUIT: 0x%x; log:\n%s", st,
		      h_log_end(d));
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(!pid_alive(w[i]), "worker %ld outlived the supervisor", (long)w[i]);
	close(c);
	h_drover_free(d);
}
END_TEST

/* /proc/PID/status line "Key:\t..." copied into out. */
static bool proc_status_line(pid_t pid, const char *key, char *out, size_t len)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	char *all = h_slurp(path, NULL);
	if (!all)
		return false;
	bool found = false;
	for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
			snprintf(out, len, "%s", line + strlen(key) + 1);
			found = true;
			break;
		}
	}
	free(all);
	return found;
}

START_TEST(workers_drop_to_the_configured_user_and_group)
{
	if (geteuid() != 0)
		return; /* only root can switch users; nothing to check otherwise */
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("nogroup");
	if (!pw || !gr)
		return;
	uid_t uid = pw->pw_uid;
	gid_t gid = gr->gr_gid;
	int port;
	struct h_drover *d = start_activated(2, "user = nobody\ngroup = nogroup\nshutdown_timeout = 10s\n", NULL,
					     &port);
	ck_assert(h_wait_workers(d, 2));
	pid_t w[4];
	ck_assert_uint_eq(h_worker_pids(d, w, 4), 2);
	for (int i = 0; i < 2; i++) {
		char want[64], line[256];
		snprintf(want, sizeof want, "%u\t%u\t%u\t%u", uid, uid, uid, uid);
		ck_assert(proc_status_line(w[i], "Uid", line, sizeof line));
		ck_assert_msg(strstr(line, want), "worker %d Uid:%s, want %s", (int)w[i], line, want);
		snprintf(want, sizeof want, "%u\t%u\t%u\t%u", gid, gid, gid, gid);
		ck_assert(proc_status_line(w[i], "Gid", line, sizeof line));
		ck_assert_msg(strstr(line, want), "worker %d Gid:%s, want %s", (int)w[i], line, want);
		/* root's supplementary groups must be gone too */
		ck_assert(proc_status_line(w[i], "Groups", line, sizeof line));
		ck_assert_msg(!strstr(line, " 0 ") && strncmp(line, "\t0 ", 3) != 0 && strcmp(line, "\t0") != 0,
			      "worker %d kept group 0: Groups:%s", (int)w[i], line);
	}
	char line[256];
	ck_assert(proc_status_line(d->pid, "Uid", line, sizeof line));
	ck_assert_msg(strncmp(line, "\t0\t", 3) == 0, "the supervisor should stay root: Uid:%s", line);
	int c[4];
	connect_many(port, c, 4);
	echo_clients(c, 4, 4096, 0);
	close_all(c, 4);
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

START_TEST(a_user_that_does_not_exist_stops_the_start)
{
	int port;
	int fd = h_listen_tcp(&port);
	struct h_activation a = { .name = "main", .fd = fd };
	struct h_opts o = { .fds = &a, .n_fds = 1, .no_wait_ready = true };
	char *cfg = echo_config(1, "user = no-such-user-drover\n", NULL, NULL);
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	assert_exit_status(d, h_drover_wait(d), 1);
	ck_assert_msg(h_log_contains(d, "[server] user: no such user 'no-such-user-drover'"),
		      "the refusal must name the key and the user");
	ck_assert_msg(!h_log_contains(d, "started worker"), "no worker may start");
	h_drover_free(d);
}
END_TEST

START_TEST(under_the_journal_lines_carry_syslog_priority_prefixes)
{
	int fd, port;
	fd = h_listen_tcp(&port);
	struct h_activation a = { .name = "main", .fd = fd };
	static const char *const env[] = { "JOURNAL_STREAM=8:12345", NULL };
	struct h_opts o = { .notify = true, .fds = &a, .n_fds = 1, .extra_env = env };
	char *cfg = echo_config(1, NULL, NULL, NULL);
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	ck_assert(h_log_wait(d, "<6>supervisor: ready: generation 1"));
	pid_t w[2];
	ck_assert_uint_eq(h_worker_pids(d, w, 2), 1);
	ck_assert(kill(w[0], SIGKILL) == 0);
	/* an unexpected death is a warning */
	ck_assert(h_log_wait(d, "<4>supervisor: worker pid"));
	ck_assert_msg(!h_log_contains(d, "drover["), "plain-format lines under the journal");
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

START_TEST(the_watchdog_is_fed_at_half_its_interval_when_enabled)
{
	int port;
	int fd = h_listen_tcp(&port);
	struct h_activation a = { .name = "main", .fd = fd };
	static const char *const env[] = { "WATCHDOG_USEC=2000000", NULL };
	struct h_opts o = { .notify = true, .fds = &a, .n_fds = 1, .extra_env = env };
	char *cfg = echo_config(1, NULL, NULL, NULL);
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	size_t from = 0;
	ck_assert(h_notify_wait(d, "READY=1", &from));
	/* two pings in a row: it is periodic, not a one-off */
	ck_assert(h_notify_wait(d, "WATCHDOG=1", &from));
	ck_assert(h_notify_wait(d, "WATCHDOG=1", &from));
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

START_TEST(a_full_fd_table_pauses_accepting_and_keeps_serving)
{
	/* drover inherits a small fd limit: its one worker runs out of fds
	 * with connections still waiting in the accept queue. */
	struct rlimit old, small;
	ck_assert(getrlimit(RLIMIT_NOFILE, &old) == 0);
	small = old;
	small.rlim_cur = 32;
	ck_assert(setrlimit(RLIMIT_NOFILE, &small) == 0);
	int port;
	struct h_drover *d = start_activated(1, NULL, NULL, &port);
	ck_assert(setrlimit(RLIMIT_NOFILE, &old) == 0);

	enum { N = 48 };
	int c[N];
	connect_many(port, c, N);
	ck_assert_msg(h_log_wait(d, "paused"), "no log line says accepting paused on EMFILE; log:\n%s",
		      h_log_end(d));
	/* the connections it holds are still served */
	echo_clients(c, 8, 1024, 0);
	/* freeing fds lets the waiting connections in, and they are served */
	close_all(c, 24);
	echo_clients(c + 24, N - 24, 1024, 0);
	close_all(c + 24, N - 24);
	ck_assert_msg(pid_alive(d->pid), "supervisor died");
	stop_gracefully(d);
	h_drover_free(d);
}
END_TEST

/* ------------------------------------------------------------------ main */

static Suite *core_suite(void)
{
	Suite *s = suite_create("core");
	TCase *serve = tcase_create("serve");
	tcase_set_timeout(serve, 120);
	tcase_add_test(serve, echo_round_trips_for_fifty_concurrent_clients_on_an_activated_listener);
	tcase_add_test(serve, a_single_unnamed_activation_fd_serves_the_single_listener);
	tcase_add_test(serve, each_of_three_distinct_worker_processes_serves_connections);
	tcase_add_test(serve, a_bound_ipv4_listener_serves_echo);
	tcase_add_test(serve, a_bound_ipv6_listener_serves_echo);
	tcase_add_test(serve, a_unix_listener_gets_its_mode_and_serves_echo);
	tcase_add_test(serve, echo_closes_an_idle_connection_after_idle_timeout);
	tcase_add_test(serve, echo_client_that_does_not_read_cannot_grow_the_worker);
	tcase_add_test(serve, echo_client_that_half_closes_and_stops_reading_times_out);
	suite_add_tcase(s, serve);

	TCase *life = tcase_create("lifecycle");
	tcase_set_timeout(life, 120);
	tcase_add_test(life, ready_is_sent_before_the_first_connection_is_served);
	tcase_add_test(life, sigterm_sends_stopping_and_status_lines_mention_the_workers);
	tcase_add_test(life, sigint_is_a_graceful_stop_too);
	tcase_add_test(life, sigterm_while_twenty_clients_are_mid_stream_loses_none_of_their_bytes);
	tcase_add_test(life, after_sigterm_the_listener_refuses_new_connections_while_draining);
	tcase_add_test(life, a_frozen_worker_is_killed_at_shutdown_timeout_and_the_supervisor_still_exits);
	tcase_add_test(life, a_worker_killed_with_sigkill_is_replaced_and_service_continues);
	tcase_add_test(life, sigquit_stops_at_once_even_with_a_connection_in_flight);
	tcase_add_test(life, workers_drop_to_the_configured_user_and_group);
	tcase_add_test(life, a_user_that_does_not_exist_stops_the_start);
	tcase_add_test(life, under_the_journal_lines_carry_syslog_priority_prefixes);
	tcase_add_test(life, the_watchdog_is_fed_at_half_its_interval_when_enabled);
	tcase_add_test(life, a_full_fd_table_pauses_accepting_and_keeps_serving);
	suite_add_tcase(s, life);

	TCase *cli = tcase_create("cli");
	tcase_set_timeout(cli, 120);
	int n_bad = (int)(sizeof bad_configs / sizeof bad_configs[0]);
	tcase_add_loop_test(cli, a_bad_config_fails_the_check_with_its_line_number, 0, n_bad);
	tcase_add_loop_test(cli, a_bad_config_stops_a_normal_start_with_exit_1_and_its_line_number, 0, n_bad);
	tcase_add_test(cli, check_mode_accepts_a_good_file);
	tcase_add_test(cli, version_and_help_exit_zero);
	tcase_add_test(cli, an_activation_fd_that_matches_no_listener_is_an_error_naming_it);
	suite_add_tcase(s, cli);
	return s;
}

int main(void)
{
	int failed = h_run_suite(core_suite());
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
