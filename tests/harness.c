/* harness: start the real drover, hand it sockets, read its notifications
 * and logs, and talk to it. See harness.h for the contract.
 *
 * Ownership rules worth knowing:
 * - Activation fds passed in h_opts.fds are handed over: h_drover_start()
 *   closes the test's copies after forking, so that once drover closes its
 *   listeners the kernel really refuses new connections.
 * - The supervisor runs in its own process group. A failed check test
 *   _exit()s its forked child without running any cleanup, so two things
 *   stop a daemon from outliving its test: the supervisor gets SIGKILL when
 *   the test process dies (PR_SET_PDEATHSIG), and a tiny guard process per
 *   drover, blocked reading a pipe only the test holds, SIGKILLs the whole
 *   process group (workers too) and removes the private dir when that pipe
 *   reports EOF.
 * - Nothing global is registered: no signal handlers, no atexit. Writes to
 *   sockets use MSG_NOSIGNAL instead of ignoring SIGPIPE. The only static
 *   state is the table of guards of drovers this process started. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "core/loop.h"

extern char **environ;

#define H_LOG_TAIL 3000             /* bytes of drover's log quoted in failures */
#define H_POLL_SLICE_MS 10          /* re-check interval where no event exists */
#define H_MAX_ENV 1024
#define H_MAX_FDS 64                /* activation fds one drover can get */
#define H_BODY_MAX ((size_t)1 << 30) /* largest HTTP body the reader accepts */

/* ------------------------------------------------------------------ time */

int64_t h_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline (>= 0, fits poll()). */
int h_left_ms(int64_t deadline)
{
	int64_t left = deadline - h_now_ms();
	if (left < 0)
		return 0;
	if (left > INT_MAX)
		return INT_MAX;
	return (int)left;
}

static int h_min_int(int a, int b)
{
	return a < b ? a : b;
}

/* ------------------------------------------------------------------ files */

char *h_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[PATH_MAX];
	int n;

	if (!base || !*base)
		base = "/tmp";
	n = snprintf(tmpl, sizeof tmpl, "%s/drover-test-XXXXXX", base);
	ck_assert_msg(n > 0 && (size_t)n < sizeof tmpl, "TMPDIR too long");
	ck_assert_msg(mkdtemp(tmpl) != NULL, "mkdtemp(%s): %s", tmpl, strerror(errno));
	char *dir = strdup(tmpl);
	ck_assert(dir != NULL);
	return dir;
}

void h_write_file(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_msg(fd >= 0, "open(%s): %s", path, strerror(errno));
	size_t len = strlen(content), off = 0;
	while (off < len) {
		ssize_t w = write(fd, content + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		ck_assert_msg(w > 0, "write(%s): %s", path, strerror(errno));
		off += (size_t)w;
	}
	ck_assert_msg(close(fd) == 0, "close(%s): %s", path, strerror(errno));
}

/* Whole file into a malloc'd NUL-terminated buffer (NULL if unreadable). */
char *h_slurp(const char *path, size_t *len_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ck_assert(buf != NULL);
	for (;;) {
		if (cap - len < 2) {
			ck_assert_msg(cap < ((size_t)256 << 20), "%s is larger than 256 MB", path);
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert(buf != NULL);
		}
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	if (len_out)
		*len_out = len;
	return buf;
}

/* The last H_LOG_TAIL bytes of drover's log, for failure messages. */
static const char *h_log_tail(struct h_drover *d, char *out, size_t out_len)
{
	size_t len = 0;
	char *all = h_slurp(d->log_path, &len);
	if (!all) {
		snprintf(out, out_len, "(no log at %s)", d->log_path);
		return out;
	}
	size_t start = len > H_LOG_TAIL ? len - H_LOG_TAIL : 0;
	snprintf(out, out_len, "%s%s", start ? "..." : "", all + start);
	free(all);
	return out;
}

static int h_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void h_rm_rf(const char *dir)
{
	if (dir && *dir)
		nftw(dir, h_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* config with every "@DIR@" replaced by dir; malloc'd. */
static char *h_expand_config(const char *config, const char *dir)
{
	static const char token[] = "@DIR@";
	size_t tlen = sizeof token - 1, dlen = strlen(dir), count = 0;
	for (const char *p = config; (p = strstr(p, token)); p += tlen)
		count++;
	size_t len = strlen(config) + count * dlen + 1;
	char *out = malloc(len), *o = out;
	ck_assert(out != NULL);
	const char *p = config, *hit;
	while ((hit = strstr(p, token))) {
		memcpy(o, p, (size_t)(hit - p));
		o += hit - p;
		memcpy(o, dir, dlen);
		o += dlen;
		p = hit + tlen;
	}
	strcpy(o, p);
	return out;
}

void h_path_join(char *out, size_t out_len, const char *dir, const char *name)
{
	int n = snprintf(out, out_len, "%s/%s", dir, name);
	ck_assert_msg(n > 0 && (size_t)n < out_len, "path too long: %s/%s", dir, name);
}

static const char *h_drover_bin(void)
{
	const char *bin = getenv("DROVER_BIN");
	return bin && *bin ? bin : "./src/drover";
}

/* ------------------------------------------------------------------ sockets */

int h_free_port(void)
{
	int port;
	int fd = h_listen_tcp(&port);
	close(fd);
	return port;
}

int h_listen_tcp(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = 0 };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0, "bind 127.0.0.1:0: %s",
		      strerror(errno));
	ck_assert_msg(listen(fd, 1024) == 0, "listen: %s", strerror(errno));
	socklen_t sl = sizeof sin;
	ck_assert_msg(getsockname(fd, (struct sockaddr *)&sin, &sl) == 0, "getsockname: %s",
		      strerror(errno));
	if (port)
		*port = ntohs(sin.sin_port);
	return fd;
}

static void h_sockaddr_un(struct sockaddr_un *sun, socklen_t *len, const char *path)
{
	size_t plen = strlen(path);
	ck_assert_msg(plen < sizeof sun->sun_path, "unix socket path too long: %s", path);
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, plen);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
}

int h_listen_unix(const char *path)
{
	struct sockaddr_un sun;
	socklen_t len;
	h_sockaddr_un(&sun, &len, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
	unlink(path);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sun, len) == 0, "bind %s: %s", path,
		      strerror(errno));
	ck_assert_msg(listen(fd, 1024) == 0, "listen: %s", strerror(errno));
	return fd;
}

int h_connect_tcp(int port)
{
	return h_connect_tcp_rcvbuf(port, 0);
}

int h_connect_tcp_rcvbuf(int port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int r;
	do
		r = connect(fd, (struct sockaddr *)&sin, sizeof sin);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int h_connect_unix(const char *path)
{
	struct sockaddr_un sun;
	socklen_t len;
	if (strlen(path) >= sizeof sun.sun_path)
		return -ENAMETOOLONG;
	h_sockaddr_un(&sun, &len, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int r;
	do
		r = connect(fd, (struct sockaddr *)&sun, len);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* Wait for events on one fd; revents, 0 on timeout. */
static short h_poll1(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t deadline = h_now_ms() + timeout_ms;
	for (;;) {
		int r = poll(&p, 1, h_left_ms(deadline));
		if (r > 0)
			return p.revents;
		if (r == 0)
			return 0;
		if (errno != EINTR)
			return POLLERR;
	}
}

void h_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	size_t off = 0;
	bool is_socket = true;
	while (off < len) {
		ssize_t w;
		if (is_socket) {
			/* MSG_DONTWAIT: even on a blocking socket, never block
			 * past the poll() bound below */
			w = send(fd, p + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0 && errno == ENOTSOCK) {
				is_socket = false;
				continue;
			}
		} else {
			ck_assert_msg(h_poll1(fd, POLLOUT, H_WAIT_MS) != 0,
				      "write: fd %d not writable within %d ms", fd, H_WAIT_MS);
			w = write(fd, p + off, len - off);
		}
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			short ev = h_poll1(fd, POLLOUT, H_WAIT_MS);
			ck_assert_msg(ev != 0, "write: fd %d not writable within %d ms (%zu of %zu bytes written)",
				      fd, H_WAIT_MS, off, len);
			continue;
		}
		ck_abort_msg("write on fd %d failed after %zu of %zu bytes: %s", fd, off, len,
			     w < 0 ? strerror(errno) : "wrote 0");
	}
}

/* One read with a poll bound: bytes, 0 on EOF, -1 on error/timeout. */
static ssize_t h_read_some(int fd, void *buf, size_t len, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	for (;;) {
		ssize_t r = read(fd, buf, len);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (h_poll1(fd, POLLIN, h_left_ms(deadline)) == 0)
			return -1;
	}
}

/* Like h_read_some, but polls first so blocking fds never block past the bound. */
static ssize_t h_read_bounded(int fd, void *buf, size_t len, int timeout_ms)
{
	short ev = h_poll1(fd, POLLIN, timeout_ms);
	if (ev == 0)
		return -1;
	return h_read_some(fd, buf, len, timeout_ms);
}

bool h_read_exact(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t off = 0;
	while (off < len) {
		ssize_t r = h_read_bounded(fd, p + off, len - off, H_WAIT_MS);
		if (r <= 0)
			return false;
		off += (size_t)r;
	}
	return true;
}

ssize_t h_read_all(int fd, char *buf, size_t cap)
{
	if (cap == 0)
		return -1;
	size_t len = 0;
	for (;;) {
		if (len == cap - 1) {
			/* full: only acceptable if EOF follows right away */
			char c;
			ssize_t r = h_read_bounded(fd, &c, 1, H_WAIT_MS);
			buf[len] = '\0';
			return r == 0 ? (ssize_t)len : -1;
		}
		ssize_t r = h_read_bounded(fd, buf + len, cap - 1 - len, H_WAIT_MS);
		if (r < 0) {
			buf[len] = '\0';
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

/* ------------------------------------------------------------------ process */

/* Non-blocking reap of the supervisor; true once it has exited. */
static bool h_reaped(struct h_drover *d)
{
	if (d->exit_status != -1)
		return true;
	int st;
	pid_t r;
	do
		r = waitpid(d->pid, &st, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == d->pid) {
		d->exit_status = st;
		return true;
	}
	if (r < 0) {
		/* not our child any more (should not happen): treat as gone */
		d->exit_status = 0x7f00;
		return true;
	}
	return false;
}

static void h_describe_status(int st, char *out, size_t out_len)
{
	if (st == -1)
		snprintf(out, out_len, "still running");
	else if (WIFEXITED(st))
		snprintf(out, out_len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(out, out_len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(out, out_len, "wait status 0x%x", st);
}

static bool h_env_is_ours(const char *kv)
{
	static const char *const ours[] = { "LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=",
		"NOTIFY_SOCKET=", "JOURNAL_STREAM=", "WATCHDOG_USEC=", "WATCHDOG_PID=",
		"DROVER_UPGRADE=", NULL };
	for (size_t i = 0; ours[i]; i++)
		if (strncmp(kv, ours[i], strlen(ours[i])) == 0)
			return true;
	return false;
}

static bool h_env_same_key(const char *a, const char *b)
{
	const char *ea = strchr(a, '='), *eb = strchr(b, '=');
	size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
	return la == lb && strncmp(a, b, la) == 0;
}

/* envp for drover: the test's environment minus what the harness controls,
 * plus add[] (an entry replaces one with the same key). */
static size_t h_build_env(char **envp, size_t cap, char *const *add, size_t n_add,
			  const char *const *extra)
{
	size_t n = 0;
	for (char **e = environ; e && *e; e++) {
		if (h_env_is_ours(*e))
			continue;
		bool replaced = false;
		for (size_t i = 0; i < n_add && !replaced; i++)
			replaced = h_env_same_key(*e, add[i]);
		for (size_t i = 0; extra && extra[i] && !replaced; i++)
			replaced = h_env_same_key(*e, extra[i]);
		if (replaced)
			continue;
		ck_assert_msg(n + 1 < cap, "environment too large");
		envp[n++] = *e;
	}
	for (size_t i = 0; i < n_add; i++) {
		bool replaced = false;
		for (size_t j = 0; extra && extra[j] && !replaced; j++)
			replaced = h_env_same_key(add[i], extra[j]);
		if (replaced)
			continue;
		ck_assert_msg(n + 1 < cap, "environment too large");
		envp[n++] = add[i];
	}
	for (size_t i = 0; extra && extra[i]; i++) {
		ck_assert_msg(n + 1 < cap, "environment too large");
		envp[n++] = (char *)extra[i];
	}
	envp[n] = NULL;
	return n;
}

/* In the child: make fds 0..2 = /dev/null, log, log; 3.. = keep[]; close
 * the rest. Only async-signal-safe calls. */
static void h_child_fds(int log_fd, const int *keep, size_t n_keep)
{
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || log_fd < 0)
		_exit(126);
	/* Move everything we still need above the target range first, so no
	 * dup2 below overwrites a source that is still to be moved. */
	int floor = 3 + (int)n_keep + 3;
	int high_log = fcntl(log_fd, F_DUPFD_CLOEXEC, floor);
	int high_null = fcntl(devnull, F_DUPFD_CLOEXEC, floor);
	int high[H_MAX_FDS];
	if (high_log < 0 || high_null < 0 || n_keep > H_MAX_FDS)
		_exit(126);
	for (size_t i = 0; i < n_keep; i++) {
		high[i] = fcntl(keep[i], F_DUPFD_CLOEXEC, floor);
		if (high[i] < 0)
			_exit(126);
	}
	if (dup2(high_null, 0) < 0 || dup2(high_log, 1) < 0 || dup2(high_log, 2) < 0)
		_exit(126);
	for (size_t i = 0; i < n_keep; i++) {
		int target = 3 + (int)i;
		if (dup2(high[i], target) < 0)
			_exit(126);
		/* dup2 clears FD_CLOEXEC on target; say so explicitly anyway */
		int fl = fcntl(target, F_GETFD);
		if (fl < 0 || fcntl(target, F_SETFD, fl & ~FD_CLOEXEC) < 0)
			_exit(126);
	}
	int first = 3 + (int)n_keep;
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) == 0)
		return;
#endif
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = first; fd < max; fd++)
		close(fd);
}

static void h_child_signals(void)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
}

struct h_spawn {
	const char *const *argv;  /* argv[0] is the binary path */
	char **envp;
	char *listen_pid_slot;    /* "LISTEN_PID=" buffer to fill with the child's pid, or NULL */
	size_t listen_pid_cap;
	int out_fd;               /* becomes stdout and stderr */
	const int *keep;          /* become 3.. */
	size_t n_keep;
	bool own_group;           /* setpgid(0, 0) */
};

static pid_t h_spawn(const struct h_spawn *s)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid > 0) {
		if (s->own_group)
			setpgid(pid, pid); /* both sides, so there is no window */
		return pid;
	}
	/* child */
	if (s->own_group)
		setpgid(0, 0);
	/* If the test process dies (a failed check test _exit()s), take
	 * drover down with it instead of leaving a daemon behind. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(125);
	h_child_signals();
	h_child_fds(s->out_fd, s->keep, s->n_keep);
	if (s->listen_pid_slot)
		snprintf(s->listen_pid_slot, s->listen_pid_cap, "LISTEN_PID=%ld", (long)getpid());
	execvpe(s->argv[0], (char *const *)s->argv, s->envp); /* a wrapper may be a bare name */
	static const char msg[] = "harness: execve of drover failed\n";
	if (write(2, msg, sizeof msg - 1) < 0) {
		/* nothing more to do */
	}
	_exit(127);
}

/* Receive every queued notify datagram into d->notify_buf, waiting up to
 * timeout_ms for the first one; number of datagrams received. */
static int h_notify_recv(struct h_drover *d, int timeout_ms)
{
	if (d->notify_fd < 0)
		return 0;
	int got = 0;
	if (timeout_ms > 0 && h_poll1(d->notify_fd, POLLIN, timeout_ms) == 0)
		return 0;
	for (;;) {
		char dgram[4096];
		ssize_t r = recv(d->notify_fd, dgram, sizeof dgram, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		size_t room = sizeof d->notify_buf - 1 - d->notify_len;
		ck_assert_msg((size_t)r + 1 <= room,
			      "notify buffer full (%zu bytes received so far)", d->notify_len);
		memcpy(d->notify_buf + d->notify_len, dgram, (size_t)r);
		d->notify_len += (size_t)r;
		d->notify_buf[d->notify_len++] = '\n';
		d->notify_buf[d->notify_len] = '\0';
		got++;
	}
	return got;
}

static int h_open_notify(struct h_drover *d, char *env, size_t env_len)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
	struct sockaddr_un sun;
	socklen_t len;
	char path[sizeof d->notify_path];
	h_path_join(path, sizeof path, d->dir, "notify.sock");
	if (strlen(path) < sizeof sun.sun_path) {
		h_sockaddr_un(&sun, &len, path);
		snprintf(d->notify_path, sizeof d->notify_path, "%s", path);
		snprintf(env, env_len, "NOTIFY_SOCKET=%s", path);
	} else {
		/* TMPDIR too deep for sun_path: use the abstract namespace */
		static unsigned counter;
		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		int n = snprintf(sun.sun_path + 1, sizeof sun.sun_path - 1, "drover-test-%ld-%u",
				 (long)getpid(), counter++);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
		snprintf(d->notify_path, sizeof d->notify_path, "@%s", sun.sun_path + 1);
		snprintf(env, env_len, "NOTIFY_SOCKET=%s", d->notify_path);
	}
	ck_assert_msg(bind(fd, (struct sockaddr *)&sun, len) == 0, "bind notify socket %s: %s",
		      d->notify_path, strerror(errno));
	int rcv = 1 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
	return fd;
}

/* Guards of the drovers this process started (see the top of this file). */
static struct h_guard {
	const struct h_drover *d;
	pid_t pid;
	int fd; /* write end: closing it (or dying) fires the guard */
} h_guards[32];

static void h_guard_start(const struct h_drover *d)
{
	struct h_guard *g = NULL;
	for (size_t i = 0; i < sizeof h_guards / sizeof h_guards[0] && !g; i++)
		if (!h_guards[i].d)
			g = &h_guards[i];
	ck_assert_msg(g != NULL, "more than %zu drovers alive in one test",
		      sizeof h_guards / sizeof h_guards[0]);
	int p[2];
	ck_assert_msg(pipe2(p, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Out of the test's process group: check SIGKILLs that group
		 * when a test ends, which is exactly when the guard must act. */
		setpgid(0, 0);
		/* hold nothing of the test's but the read end */
		int rd = fcntl(p[0], F_DUPFD_CLOEXEC, 3);
		if (rd < 0 || dup2(rd, 3) < 0)
			_exit(1);
#ifdef SYS_close_range
		syscall(SYS_close_range, 4U, ~0U, 0);
#endif
		h_child_signals();
		char c;
		while (read(3, &c, 1) < 0 && errno == EINTR)
			;
		kill(-d->pid, SIGKILL);
		h_rm_rf(d->dir); /* already gone unless the test died */
		_exit(0);
	}
	setpgid(pid, pid); /* here too: the test may fail before the child runs */
	close(p[0]);
	g->d = d;
	g->pid = pid;
	g->fd = p[1];
}

static void h_guard_fire(const struct h_drover *d)
{
	for (size_t i = 0; i < sizeof h_guards / sizeof h_guards[0]; i++) {
		if (h_guards[i].d != d)
			continue;
		close(h_guards[i].fd);
		pid_t r;
		do
			r = waitpid(h_guards[i].pid, NULL, 0);
		while (r < 0 && errno == EINTR);
		h_guards[i].d = NULL;
	}
}

struct h_drover *h_drover_start(const char *config, const struct h_opts *opts)
{
	static const struct h_opts no_opts;
	if (!opts)
		opts = &no_opts;
	ck_assert(config != NULL);
	ck_assert_msg(opts->n_fds <= H_MAX_FDS, "too many activation fds");

	struct h_drover *d = calloc(1, sizeof *d);
	ck_assert(d != NULL);
	d->notify_fd = -1;
	d->exit_status = -1;
	char *dir = h_tmpdir();
	ck_assert_msg(strlen(dir) < sizeof d->dir, "temp dir path too long: %s", dir);
	strcpy(d->dir, dir);
	free(dir);
	h_path_join(d->config_path, sizeof d->config_path, d->dir, "drover.ini");
	h_path_join(d->log_path, sizeof d->log_path, d->dir, "drover.log");

	char *text = h_expand_config(config, d->dir);
	h_write_file(d->config_path, text);
	free(text);

	/* environment */
	char notify_env[sizeof d->notify_path + 32];
	char fds_env[64], names_env[4096], pid_env[64];
	char *add[4];
	size_t n_add = 0;
	if (opts->notify) {
		d->notify_fd = h_open_notify(d, notify_env, sizeof notify_env);
		add[n_add++] = notify_env;
	}
	int keep[H_MAX_FDS];
	if (opts->n_fds > 0) {
		bool any_name = false;
		size_t off = 0;
		snprintf(fds_env, sizeof fds_env, "LISTEN_FDS=%zu", opts->n_fds);
		add[n_add++] = fds_env;
		snprintf(pid_env, sizeof pid_env, "LISTEN_PID=0");
		add[n_add++] = pid_env;
		off = (size_t)snprintf(names_env, sizeof names_env, "LISTEN_FDNAMES=");
		for (size_t i = 0; i < opts->n_fds; i++) {
			ck_assert_msg(opts->fds[i].fd >= 0, "activation fd %zu is not open", i);
			keep[i] = opts->fds[i].fd;
			const char *name = opts->fds[i].name;
			if (name)
				any_name = true;
			int n = snprintf(names_env + off, sizeof names_env - off, "%s%s", i ? ":" : "",
					 name ? name : "unknown");
			ck_assert_msg(n >= 0 && (size_t)n < sizeof names_env - off, "LISTEN_FDNAMES too long");
			off += (size_t)n;
		}
		if (any_name)
			add[n_add++] = names_env;
	}
	char *envp[H_MAX_ENV];
	h_build_env(envp, H_MAX_ENV, add, n_add, opts->extra_env);

	/* argv */
	const char *argv[64];
	size_t argc = 0;
	char *wrapper = getenv("DROVER_WRAPPER") ? strdup(getenv("DROVER_WRAPPER")) : NULL;
	char *save = NULL;
	for (char *w = wrapper ? strtok_r(wrapper, " ", &save) : NULL; w; w = strtok_r(NULL, " ", &save)) {
		ck_assert_msg(argc + 4 < sizeof argv / sizeof argv[0], "DROVER_WRAPPER too long");
		argv[argc++] = w;
	}
	argv[argc++] = h_drover_bin();
	argv[argc++] = "-c";
	argv[argc++] = d->config_path;
	for (size_t i = 0; opts->extra_args && opts->extra_args[i]; i++) {
		ck_assert_msg(argc + 1 < sizeof argv / sizeof argv[0], "too many extra_args");
		argv[argc++] = opts->extra_args[i];
	}
	argv[argc] = NULL;

	int log_fd = opts->stderr_fd > 0 ? fcntl(opts->stderr_fd, F_DUPFD_CLOEXEC, 3)
					 : open(d->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	ck_assert_msg(log_fd >= 0, "open(%s): %s", d->log_path, strerror(errno));
	struct h_spawn s = {
		.argv = argv,
		.envp = envp,
		.listen_pid_slot = opts->n_fds > 0 ? pid_env : NULL,
		.listen_pid_cap = sizeof pid_env,
		.out_fd = log_fd,
		.keep = keep,
		.n_keep = opts->n_fds,
		.own_group = true,
	};
	d->pid = h_spawn(&s);
	close(log_fd);
	free(wrapper);
	h_guard_start(d);
	/* The listeners now belong to drover (see the top of this file). */
	for (size_t i = 0; i < opts->n_fds; i++)
		close(opts->fds[i].fd);

	if (opts->no_wait_ready)
		return d;

	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		if (opts->notify) {
			if (strstr(d->notify_buf, "READY=1"))
				return d;
		} else if (h_log_contains(d, "ready: generation")) {
			return d;
		}
		char tail[H_LOG_TAIL + 8], st[128];
		if (h_reaped(d)) {
			h_notify_recv(d, 0);
			if (opts->notify && strstr(d->notify_buf, "READY=1"))
				return d;
			h_describe_status(d->exit_status, st, sizeof st);
			ck_abort_msg("drover %s before it was ready; notify: [%s]; log:\n%s", st,
				     d->notify_buf, h_log_tail(d, tail, sizeof tail));
		}
		if (h_left_ms(deadline) == 0)
			ck_abort_msg("drover not ready within %d ms (waited for %s); notify: [%s]; log:\n%s",
				     H_WAIT_MS, opts->notify ? "READY=1" : "\"ready: generation\" in the log",
				     d->notify_buf, h_log_tail(d, tail, sizeof tail));
		if (opts->notify)
			h_notify_recv(d, h_min_int(H_POLL_SLICE_MS * 5, h_left_ms(deadline)));
		else
			poll(NULL, 0, h_min_int(H_POLL_SLICE_MS, h_left_ms(deadline)));
	}
}

/* Read a pipe until EOF into out (bounded, rest discarded); aborts at deadline. */
static void h_collect_output(int fd, char *out, size_t out_len, int64_t deadline, pid_t pid,
			     const char *what)
{
	size_t len = 0;
	for (;;) {
		char buf[4096];
		int left = h_left_ms(deadline);
		if (left == 0 || h_poll1(fd, POLLIN, left) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(fd);
			ck_abort_msg("%s did not finish within the time limit; output so far: %.*s", what,
				     (int)len, out ? out : "");
		}
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (out && out_len > 0 && len < out_len - 1) {
			size_t take = (size_t)r;
			if (take > out_len - 1 - len)
				take = out_len - 1 - len;
			memcpy(out + len, buf, take);
			len += take;
			out[len] = '\0';
		}
	}
	if (out && out_len > 0)
		out[len] = '\0';
	close(fd);
}

static int h_wait_child(pid_t pid, int64_t deadline, const char *what)
{
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		ck_assert_msg(r == 0 || errno == EINTR, "waitpid(%s): %s", what, strerror(errno));
		if (h_left_ms(deadline) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			ck_abort_msg("%s did not exit within the time limit", what);
		}
		poll(NULL, 0, h_min_int(H_POLL_SLICE_MS, h_left_ms(deadline)));
	}
}

static int h_exit_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

int h_drover_check(const char *config, const char *const *args, char *out, size_t out_len)
{
	static const char *const default_args[] = { "-t", NULL };
	if (!args)
		args = default_args;
	if (out && out_len)
		out[0] = '\0';
	char *dir = h_tmpdir();
	char path[PATH_MAX];
	const char *argv[64];
	size_t argc = 0;
	char *wrapper = getenv("DROVER_WRAPPER") ? strdup(getenv("DROVER_WRAPPER")) : NULL;
	char *save = NULL;
	for (char *w = wrapper ? strtok_r(wrapper, " ", &save) : NULL; w; w = strtok_r(NULL, " ", &save)) {
		ck_assert_msg(argc + 4 < sizeof argv / sizeof argv[0], "DROVER_WRAPPER too long");
		argv[argc++] = w;
	}
	argv[argc++] = h_drover_bin();
	for (size_t i = 0; args[i]; i++) {
		ck_assert_msg(argc + 3 < sizeof argv / sizeof argv[0], "too many args");
		argv[argc++] = args[i];
	}
	if (config) {
		h_path_join(path, sizeof path, dir, "drover.ini");
		char *text = h_expand_config(config, dir);
		h_write_file(path, text);
		free(text);
		argv[argc++] = "-c";
		argv[argc++] = path;
	}
	argv[argc] = NULL;

	int pfd[2];
	ck_assert_msg(pipe2(pfd, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	char *envp[H_MAX_ENV];
	h_build_env(envp, H_MAX_ENV, NULL, 0, NULL);
	struct h_spawn s = { .argv = argv, .envp = envp, .out_fd = pfd[1] };
	pid_t pid = h_spawn(&s);
	close(pfd[1]);
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	h_collect_output(pfd[0], out, out_len, deadline, pid, "drover (h_drover_check)");
	int st = h_wait_child(pid, deadline, "drover (h_drover_check)");
	h_rm_rf(dir);
	free(dir);
	return h_exit_code(st);
}

void h_drover_kill(struct h_drover *d, int sig)
{
	ck_assert_msg(!h_reaped(d), "h_drover_kill(%d): drover has already exited", sig);
	ck_assert_msg(kill(d->pid, sig) == 0, "kill(%ld, %d): %s", (long)d->pid, sig, strerror(errno));
}

int h_drover_wait(struct h_drover *d)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	int pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
	while (!h_reaped(d)) {
		if (h_left_ms(deadline) == 0) {
			char tail[H_LOG_TAIL + 8];
			if (pidfd >= 0)
				close(pidfd);
			ck_abort_msg("drover (pid %ld) did not exit within %d ms; log:\n%s", (long)d->pid,
				     H_WAIT_MS, h_log_tail(d, tail, sizeof tail));
		}
		/* keep collecting notifications meanwhile (STOPPING=1 etc.) */
		if (pidfd >= 0) {
			struct pollfd p[2] = { { .fd = pidfd, .events = POLLIN },
					       { .fd = d->notify_fd, .events = POLLIN } };
			int r = poll(p, d->notify_fd >= 0 ? 2 : 1, h_left_ms(deadline));
			if (r > 0 && d->notify_fd >= 0 && (p[1].revents & POLLIN))
				h_notify_recv(d, 0);
		} else {
			h_notify_recv(d, h_min_int(H_POLL_SLICE_MS, h_left_ms(deadline)));
			poll(NULL, 0, h_min_int(H_POLL_SLICE_MS, h_left_ms(deadline)));
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	h_notify_recv(d, 0);
	return d->exit_status;
}

void h_drover_free(struct h_drover *d)
{
	if (!d)
		return;
	/* Under a wrapper such as valgrind, a graceful stop first: the
	 * wrapper's report on each process is written at its exit. */
	if (d->pid > 0 && getenv("DROVER_WRAPPER") && !h_reaped(d)) {
		kill(d->pid, SIGTERM);
		h_drover_wait(d);
	}
	if (d->pid > 0) {
		pid_t kids[256];
		size_t n = 0;
		if (!h_reaped(d))
			n = h_worker_pids(d, kids, sizeof kids / sizeof kids[0]);
		/* the whole group (workers too, even after the supervisor is gone),
		 * and the children by pid in case they left the group */
		kill(-d->pid, SIGKILL);
		for (size_t i = 0; i < n; i++)
			kill(kids[i], SIGKILL);
		if (d->exit_status == -1) {
			kill(d->pid, SIGKILL);
			int st;
			pid_t r;
			do
				r = waitpid(d->pid, &st, 0);
			while (r < 0 && errno == EINTR);
			if (r == d->pid)
				d->exit_status = st;
		}
	}
	if (d->notify_fd >= 0)
		close(d->notify_fd);
	/* A sanitizer report from any drover process fails the test, even when
	 * the worker it killed was replaced and the test saw nothing else. */
	size_t len = 0;
	char *log = h_slurp(d->log_path, &len);
	const char *hit = NULL;
	if (log) {
		static const char *const reports[] = { "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
						       "runtime error:" };
		for (size_t i = 0; i < sizeof reports / sizeof reports[0] && !hit; i++)
			hit = strstr(log, reports[i]);
		/* valgrind (DROVER_WRAPPER): any process's summary with errors */
		for (const char *v = log; !hit && (v = strstr(v, "ERROR SUMMARY: ")); v++)
			if (strncmp(v + 15, "0 errors", 8) != 0)
				hit = v;
	}
	char report[2048] = "";
	if (hit)
		snprintf(report, sizeof report, "%s", hit);
	free(log);
	/* Only now: the guard removes the directory, log and all. */
	h_guard_fire(d);
	h_rm_rf(d->dir);
	free(d);
	ck_assert_msg(!report[0], "drover reported a sanitizer error:\n%s", report);
}

bool h_notify_wait(struct h_drover *d, const char *needle, size_t *from)
{
	ck_assert_msg(d->notify_fd >= 0, "h_notify_wait without opts.notify");
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		size_t start = from ? *from : 0;
		if (start > d->notify_len)
			start = d->notify_len;
		const char *hit = strstr(d->notify_buf + start, needle);
		if (hit) {
			if (from)
				*from = (size_t)(hit - d->notify_buf) + strlen(needle);
			return true;
		}
		if (h_left_ms(deadline) == 0)
			return false;
		if (d->exit_status != -1) {
			/* gone: whatever it sent is already queued */
			if (h_notify_recv(d, 0) == 0)
				return false;
			continue;
		}
		if (h_notify_recv(d, h_min_int(H_POLL_SLICE_MS * 10, h_left_ms(deadline))) == 0)
			h_reaped(d);
	}
}

bool h_log_contains(struct h_drover *d, const char *needle)
{
	size_t len;
	char *all = h_slurp(d->log_path, &len);
	if (!all)
		return false;
	bool found = memmem(all, len, needle, strlen(needle)) != NULL;
	free(all);
	return found;
}

bool h_log_wait(struct h_drover *d, const char *needle)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		if (h_log_contains(d, needle))
			return true;
		if (h_left_ms(deadline) == 0)
			return false;
		/* no event says "a line was logged": re-check at a short interval */
		poll(NULL, 0, h_min_int(H_POLL_SLICE_MS, h_left_ms(deadline)));
	}
}

size_t h_worker_pids(struct h_drover *d, pid_t *out, size_t max)
{
	DIR *proc = opendir("/proc");
	ck_assert_msg(proc != NULL, "opendir /proc: %s", strerror(errno));
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(proc))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		char path[300], buf[1024];
		snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* raced with its exit */
		ssize_t r = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		/* "pid (comm) S ppid ...": comm may hold spaces and ')' */
		char *rp = strrchr(buf, ')');
		if (!rp || rp[1] != ' ')
			continue;
		char state = rp[2];
		long ppid = strtol(rp + 4, NULL, 10);
		if (ppid != d->pid || state == 'Z' || state == 'X' || state == 'x')
			continue;
		if (n < max)
			out[n] = (pid_t)strtol(de->d_name, NULL, 10);
		n++;
	}
	closedir(proc);
	return n < max ? n : max;
}

bool h_wait_workers(struct h_drover *d, size_t n)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		pid_t pids[512];
		if (h_worker_pids(d, pids, sizeof pids / sizeof pids[0]) == n)
			return true;
		if (h_left_ms(deadline) == 0)
			return false;
		/* no event for "the process table changed": re-check shortly */
		poll(NULL, 0, h_min_int(H_POLL_SLICE_MS, h_left_ms(deadline)));
	}
}

/* ------------------------------------------------------------------ HTTP */

/* Read one line (through "\n") a byte at a time, so nothing past the line is
 * consumed; the line without CRLF in out. false on EOF/error/timeout/overlong. */
static bool h_read_line(int fd, char *out, size_t cap, size_t *len_out)
{
	size_t len = 0;
	for (;;) {
		char c;
		ssize_t r = h_read_bounded(fd, &c, 1, H_WAIT_MS);
		if (r <= 0)
			return false;
		if (c == '\n')
			break;
		if (len + 1 >= cap)
			return false;
		out[len++] = c;
	}
	if (len > 0 && out[len - 1] == '\r')
		len--;
	out[len] = '\0';
	if (len_out)
		*len_out = len;
	return true;
}

static bool h_body_append(struct h_response *r, size_t *cap, const char *data, size_t len)
{
	if (r->body_len + len + 1 > *cap) {
		size_t ncap = *cap ? *cap : 4096;
		while (r->body_len + len + 1 > ncap) {
			if (ncap > H_BODY_MAX)
				return false;
			ncap *= 2;
		}
		char *nb = realloc(r->body, ncap);
		if (!nb)
			return false;
		r->body = nb;
		*cap = ncap;
	}
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return true;
}

static bool h_body_read_n(int fd, struct h_response *r, size_t *cap, uint64_t n)
{
	char buf[16384];
	while (n > 0) {
		size_t want = n < sizeof buf ? (size_t)n : sizeof buf;
		ssize_t got = h_read_bounded(fd, buf, want, H_WAIT_MS);
		if (got <= 0)
			return false;
		if (!h_body_append(r, cap, buf, (size_t)got))
			return false;
		n -= (uint64_t)got;
	}
	return true;
}

/* RFC 9112 section 7.1: chunk-size [ext] CRLF data CRLF ... 0 CRLF trailers CRLF */
static bool h_body_read_chunked(int fd, struct h_response *r, size_t *cap)
{
	char line[1024];
	for (;;) {
		if (!h_read_line(fd, line, sizeof line, NULL))
			return false;
		char *end;
		errno = 0;
		unsigned long long size = strtoull(line, &end, 16);
		if (end == line || errno)
			return false;
		if (size == 0)
			break;
		if (size > H_BODY_MAX || !h_body_read_n(fd, r, cap, size))
			return false;
		size_t len;
		if (!h_read_line(fd, line, sizeof line, &len) || len != 0)
			return false;
	}
	for (;;) { /* trailer section */
		size_t len;
		if (!h_read_line(fd, line, sizeof line, &len))
			return false;
		if (len == 0)
			return true;
	}
}

static bool h_body_read_to_eof(int fd, struct h_response *r, size_t *cap)
{
	char buf[16384];
	for (;;) {
		ssize_t got = h_read_bounded(fd, buf, sizeof buf, H_WAIT_MS);
		if (got < 0)
			return false;
		if (got == 0)
			return true;
		if (!h_body_append(r, cap, buf, (size_t)got))
			return false;
	}
}

static bool h_token_in_list(const char *list, const char *token)
{
	size_t tl = strlen(token);
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *s = p;
		while (*p && *p != ',')
			p++;
		const char *e = p;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0)
			return true;
	}
	return false;
}

bool h_http_read_response(int fd, struct h_response *r, bool head_only)
{
	memset(r, 0, sizeof *r);
	r->status = -1;
	size_t used = 0;
	char line[8192];
	size_t len;
	/* status line */
	if (!h_read_line(fd, line, sizeof line, &len))
		return false;
	if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ' ||
	    !isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
	    !isdigit((unsigned char)line[11]))
		return false;
	r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	for (;;) {
		if (used + len + 3 > sizeof r->headers)
			return false;
		memcpy(r->headers + used, line, len);
		used += len;
		memcpy(r->headers + used, "\r\n", 2);
		used += 2;
		r->headers[used] = '\0';
		if (len == 0 && used > 2)
			break;
		if (!h_read_line(fd, line, sizeof line, &len))
			return false;
	}

	size_t cap = 0;
	r->body = malloc(1);
	if (!r->body)
		return false;
	r->body[0] = '\0';
	cap = 1;
	/* RFC 9112 section 6.3: no body for HEAD, 1xx, 204 and 304 */
	if (head_only || (r->status >= 100 && r->status < 200) || r->status == 204 ||
	    r->status == 304)
		return true;
	char value[1024];
	if (h_http_header(r, "Transfer-Encoding", value, sizeof value) &&
	    h_token_in_list(value, "chunked"))
		return h_body_read_chunked(fd, r, &cap);
	if (h_http_header(r, "Content-Length", value, sizeof value)) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(value, &end, 10);
		if (end == value || *end || errno || n > H_BODY_MAX)
			return false;
		return h_body_read_n(fd, r, &cap, n);
	}
	return h_body_read_to_eof(fd, r, &cap);
}

bool h_http_header(const struct h_response *r, const char *name, char *out, size_t out_len)
{
	size_t nl = strlen(name);
	const char *p = strstr(r->headers, "\r\n"); /* skip the status line */
	while (p) {
		p += 2;
		const char *eol = strstr(p, "\r\n");
		if (!eol || eol == p)
			return false;
		if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
			const char *v = p + nl + 1, *e = eol;
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			size_t vl = (size_t)(e - v);
			if (out_len == 0)
				return true;
			if (vl >= out_len)
				vl = out_len - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return true;
		}
		p = eol;
	}
	return false;
}

void h_http_response_free(struct h_response *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

bool h_http_request(int port, const char *raw, struct h_response *r)
{
	memset(r, 0, sizeof *r);
	r->status = -1;
	int fd = h_connect_tcp(port);
	if (fd < 0)
		return false;
	/* Not h_write_all(): a server may answer (400, 413...) and close
	 * before taking the whole request; the answer is what counts. */
	size_t len = strlen(raw), off = 0;
	while (off < len) {
		ssize_t w = send(fd, raw + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0)
			off += (size_t)w;
		else if (w < 0 && errno == EINTR)
			continue;
		else if (w < 0 && errno == EAGAIN && (h_poll1(fd, POLLOUT, H_WAIT_MS) & POLLOUT))
			continue;
		else
			break;
	}
	bool ok = h_http_read_response(fd, r, strncmp(raw, "HEAD ", 5) == 0);
	close(fd);
	return ok;
}

/* ------------------------------------------------------------------ shell */

int h_run(const char *cmdline, char *out, size_t out_len)
{
	if (out && out_len)
		out[0] = '\0';
	int pfd[2];
	ck_assert_msg(pipe2(pfd, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	const char *argv[] = { "/bin/sh", "-c", cmdline, NULL };
	struct h_spawn s = { .argv = argv, .envp = environ, .out_fd = pfd[1] };
	pid_t pid = h_spawn(&s);
	close(pfd[1]);
	/* commands may legitimately take longer than a single wait (builds,
	 * systemd-run); still bounded */
	int64_t deadline = h_now_ms() + 6 * (int64_t)H_WAIT_MS;
	char what[160];
	snprintf(what, sizeof what, "command '%.120s'", cmdline);
	h_collect_output(pfd[0], out, out_len, deadline, pid, what);
	return h_exit_code(h_wait_child(pid, deadline, what));
}

char h_proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0)
		return 0;
	buf[r] = '\0';
	char *rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' ? rp[2] : 0;
}

void h_pause_ms(int ms)
{
	poll(NULL, 0, ms);
}

/* ------------------------------------------------------ control socket */

const char *h_log_end(struct h_drover *d)
{
	static char buf[H_LOG_TAIL + 64];
	return h_log_tail(d, buf, sizeof buf);
}

size_t h_log_count(struct h_drover *d, const char *needle)
{
	size_t len, n = 0;
	char *all = h_slurp(d->log_path, &len);
	for (char *p = all; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	free(all);
	return n;
}

unsigned long h_log_sum(struct h_drover *d, const char *key, const char *unit, unsigned *lines)
{
	char *all = h_slurp(d->log_path, NULL);
	ck_assert_ptr_nonnull(all);
	unsigned long sum = 0;
	unsigned n_lines = 0;
	size_t key_len = strlen(key);
	for (const char *p = all; (p = strstr(p, key)); p += key_len) {
		char *end;
		unsigned long n = strtoul(p + key_len, &end, 10);
		if (end > p + key_len && *end == ' ' && strncmp(end + 1, unit, strlen(unit)) == 0) {
			sum += n;
			n_lines++;
		}
	}
	free(all);
	if (lines)
		*lines = n_lines;
	return sum;
}

int h_ctl_send(struct h_drover *d, const char *cmd)
{
	char path[400];
	snprintf(path, sizeof path, "%s/control.sock", d->dir);
	int fd = h_connect_unix(path);
	ck_assert_msg(fd >= 0, "connect %s: %s", path, strerror(-fd));
	char line[256];
	snprintf(line, sizeof line, "%s\n", cmd);
	h_write_all(fd, line, strlen(line));
	return fd;
}

void h_ctl_ok(struct h_drover *d, const char *cmd, char *out, size_t cap)
{
	int fd = h_ctl_send(d, cmd);
	ssize_t n = h_read_all(fd, out, cap);
	close(fd);
	ck_assert_msg(n > 0, "no answer to %s; log:\n%s", cmd, h_log_end(d));
	char *last = out + n - 1;
	while (last > out && last[-1] != '\n')
		last--;
	ck_assert_msg(strncmp(last, "OK", 2) == 0, "%s answered: %.2500s\nlog:\n%s", cmd, out, h_log_end(d));
}

/* ------------------------------------------------------------- loops */

static void h_loop_stop(struct loop *loop, struct loop_timer *t, void *arg)
{
	(void)t;
	(void)arg;
	loop_stop(loop);
}

void h_loop_once(struct loop *loop)
{
	struct loop_timer t;
	loop_timer_init(&t, h_loop_stop, NULL);
	loop_timer_arm(loop, &t, 0);
	ck_assert_int_eq(loop_run(loop), 0);
}

void h_config_replace(struct h_drover *d, const char *text)
{
	char tmp[sizeof(d->config_path) + 8];
	snprintf(tmp, sizeof tmp, "%s.new", d->config_path);
	h_write_file(tmp, text);
	ck_assert_msg(rename(tmp, d->config_path) == 0, "rename(%s): %s", tmp, strerror(errno));
}

/* ------------------------------------------------ the fork gate */

#define GATE_MAX_HELD 64

/* In the tracer: one stop of the supervisor or of a new child. */
static void gate_handle(pid_t sup, pid_t who, int st, pid_t *held, size_t *n_held)
{
	if (who != sup) {
		if (*n_held < GATE_MAX_HELD)
			held[(*n_held)++] = who; /* a new worker: keep it stopped */
		return;
	}
	int event = st >> 16;
	int sig = WSTOPSIG(st);
	/* fork events and group stops are passed over; signals delivered */
	ptrace(PTRACE_CONT, sup, NULL, (void *)(intptr_t)(event || sig == SIGTRAP ? 0 : sig));
}

__attribute__((noreturn)) static void gate_tracer(pid_t sup, int ready_fd, int open_fd)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		_exit(1);
	if (ptrace(PTRACE_SEIZE, sup, NULL, (void *)(intptr_t)PTRACE_O_TRACEFORK) < 0) {
		int e = errno; /* the test's answer: why not */
		if (write(ready_fd, &e, sizeof e) != (ssize_t)sizeof e)
			_exit(1);
		_exit(0);
	}
	int ok = 0;
	if (write(ready_fd, &ok, sizeof ok) != (ssize_t)sizeof ok)
		_exit(1);
	close(ready_fd);
	pid_t held[GATE_MAX_HELD];
	size_t n_held = 0;
	for (;;) {
		struct pollfd pf[2] = { { .fd = sfd, .events = POLLIN }, { .fd = open_fd, .events = POLLIN } };
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			_exit(1);
		struct signalfd_siginfo si;
		while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
			;
		int st;
		pid_t who;
		while ((who = waitpid(-1, &st, __WALL | WNOHANG)) > 0)
			if (WIFSTOPPED(st))
				gate_handle(sup, who, st, held, &n_held);
		if (pf[1].revents)
			break;
	}
	/* Open: stop the supervisor, let it go, then every worker held. A
	 * supervisor that was killed meanwhile is simply not waited for. */
	for (bool sup_alive = ptrace(PTRACE_INTERRUPT, sup, NULL, NULL) == 0; sup_alive;) {
		int st;
		pid_t who = waitpid(-1, &st, __WALL);
		if (who < 0 && errno == EINTR)
			continue;
		if (who < 0)
			break;
		if (!WIFSTOPPED(st)) {
			if (who == sup)
				break; /* it died before the interrupt took */
			continue;
		}
		if (who == sup && (st >> 16) == PTRACE_EVENT_STOP) {
			ptrace(PTRACE_DETACH, sup, NULL, NULL);
			break;
		}
		gate_handle(sup, who, st, held, &n_held);
	}
	for (size_t i = 0; i < n_held; i++)
		ptrace(PTRACE_DETACH, held[i], NULL, NULL);
	/* a child forked just before the detach may not have stopped yet */
	int st;
	pid_t late;
	while ((late = waitpid(-1, &st, __WALL | WNOHANG)) > 0 || (late < 0 && errno == EINTR))
		if (late > 0 && WIFSTOPPED(st))
			ptrace(PTRACE_DETACH, late, NULL, NULL);
	_exit(0);
}

bool h_fork_gate_close(struct h_fork_gate *g, pid_t sup)
{
	int ready[2], open_pipe[2];
	ck_assert(pipe2(ready, O_CLOEXEC) == 0 && pipe2(open_pipe, O_CLOEXEC) == 0);
	g->tracer = fork();
	ck_assert(g->tracer >= 0);
	if (g->tracer == 0) {
		close(ready[0]);
		close(open_pipe[1]);
		gate_tracer(sup, ready[1], open_pipe[0]);
	}
	close(ready[1]);
	close(open_pipe[0]);
	g->open_fd = open_pipe[1];
	int e = -1;
	ck_assert_msg(read(ready[0], &e, sizeof e) == (ssize_t)sizeof e, "the tracer failed");
	close(ready[0]);
	if (e == 0)
		return true;
	/* Denied (a container without CAP_SYS_PTRACE under Yama, a seccomp
	 * filter without ptrace): the machine lacks what the test needs. */
	ck_assert_msg(e == EPERM || e == EACCES, "PTRACE_SEIZE: %s", strerror(e));
	h_fork_gate_open(g);
	snprintf(g->why, sizeof g->why, "cannot hold a worker at fork: ptrace (PTRACE_SEIZE) of the supervisor: %s",
		 strerror(e));
	return false;
}

void h_fork_gate_open(struct h_fork_gate *g)
{
	close(g->open_fd);
	int st;
	ck_assert(waitpid(g->tracer, &st, 0) == g->tracer);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the tracer failed: %#x", st);
}

/* Tests skipped so far, in memory shared with Check's forked test
 * processes. */
static unsigned *h_skips;

void h_skip_at(const char *test, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	size_t n = strlen(test);
	if (n > 3 && strcmp(test + n - 3, "_fn") == 0) /* START_TEST's function */
		n -= 3;
	fprintf(stderr, "SKIP: %.*s: %s\n", (int)n, test, why);
	fflush(stderr);
	if (h_skips)
		__atomic_add_fetch(h_skips, 1, __ATOMIC_SEQ_CST);
}

int h_run_suite(Suite *s)
{
	if (!h_skips) {
		void *m = mmap(NULL, sizeof *h_skips, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) { /* not in a test: no ck_assert here */
			perror("mmap");
			exit(99);
		}
		h_skips = m;
	}
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	unsigned skipped = __atomic_load_n(h_skips, __ATOMIC_SEQ_CST);
	if (!failed && skipped) {
		/* automake's SKIP: the reasons are in the log above */
		fprintf(stderr, "%u test(s) skipped (reasons above); the rest passed\n", skipped);
		exit(77);
	}
	return failed;
}

void h_asan_may_return_null(void)
{
	const char *was = getenv("ASAN_OPTIONS");
	if (!was)
		return;
	char opts[1024];
	snprintf(opts, sizeof opts, "%s:allocator_may_return_null=1", was);
	setenv("ASAN_OPTIONS", opts, 1);
}

void h_site_init(struct h_site *s)
{
	memset(s, 0, sizeof *s);
	s->tmp = h_tmpdir();
	ck_assert(chmod(s->tmp, 0755) == 0);
	h_path_join(s->www, sizeof s->www, s->tmp, "www");
	ck_assert(mkdir(s->www, 0755) == 0);
	h_path_join(s->admin, sizeof s->admin, s->tmp, "admin.sock");
}

void h_site_file(struct h_site *s, const char *rel, const char *content)
{
	char p[1024];
	h_path_join(p, sizeof p, s->www, rel);
	h_write_file(p, content);
}

void h_site_dir(struct h_site *s, const char *rel)
{
	char p[1024];
	h_path_join(p, sizeof p, s->www, rel);
	ck_assert_msg(mkdir(p, 0755) == 0, "mkdir %s: %s", p, strerror(errno));
}

void h_site_start(struct h_site *s, const struct h_site_opts *o)
{
	struct h_activation fds[2];
	size_t n_fds = 0;
	if (o->web_fd == 0)
		fds[n_fds++] = (struct h_activation){ "web", h_listen_tcp(&s->port) };
	else if (o->web_fd > 0)
		fds[n_fds++] = (struct h_activation){ "web", o->web_fd };
	if (o->admin)
		fds[n_fds++] = (struct h_activation){ "admin", h_listen_unix(s->admin) };
	char cfg[4096];
	int n = snprintf(cfg, sizeof cfg,
			 "[server]\nworkers = %u\n%s\n"
			 "[listener web]\nprotocol = http\n%s\n"
			 "%s"
			 "[http]\nroot = %s\n%s\n",
			 o->workers ? o->workers : 1, o->server ? o->server : "", o->web ? o->web : "",
			 o->admin ? "[listener admin]\nprotocol = http\nstatus = yes\n\n" : "",
			 o->root ? o->root : s->www, o->http ? o->http : "");
	ck_assert(n > 0 && (size_t)n < sizeof cfg);
	struct h_opts ho = { .notify = true, .fds = fds, .n_fds = n_fds };
	s->d = h_drover_start(cfg, &ho);
}

void h_site_stop(struct h_site *s)
{
	h_drover_free(s->d);
	h_rm_rf(s->tmp);
	free(s->tmp);
}

char *h_echo_config(unsigned workers, const char *server, const char *listener, const char *echo)
{
	char *cfg;
	int n = asprintf(&cfg,
			 "[server]\nworkers = %u\ncontrol_socket = @DIR@/control.sock\n%s"
			 "[listener main]\nprotocol = echo\n%s"
			 "[echo]\n%s",
			 workers, server ? server : "", listener ? listener : "", echo ? echo : "");
	ck_assert(n > 0);
	return cfg;
}

void h_get_ok(int port, const char *path, int status, const char *body)
{
	char raw[512];
	snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
	struct h_response r;
	ck_assert_msg(h_http_request(port, raw, &r), "no response to %s", path);
	if (status)
		ck_assert_int_eq(r.status, status);
	else
		ck_assert_int_ne(r.status, 0);
	if (body)
		ck_assert_str_eq(r.body, body);
	h_http_response_free(&r);
}
