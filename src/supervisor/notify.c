/* notify: a small sd_notify sender of drover's own. sd_notify() sends with
 * a blocking sendmsg(): once the service manager's datagram queue is full
 * (about ten unread messages) it blocks, and with it the one process that
 * must reap, drain and stop. So the supervisor connects a non-blocking
 * datagram socket to NOTIFY_SOCKET (an absolute path, or an abstract '@'
 * address), sends with SCM_CREDENTIALS (and SCM_RIGHTS for FDSTORE=1) as
 * sd_notify does, and queues what the socket cannot take now; the loop
 * sends the queue in order once the peer has room (a connected unix
 * datagram socket polls writable only then). READY=1, RELOADING=1,
 * STOPPING=1, WATCHDOG=1 and the fd store messages are never dropped
 * while the queue has room; a STATUS= line still queued is replaced by a
 * newer one. libsystemd still does what cannot block: sd_watchdog_enabled
 * here, sd_listen_fds_with_names and sd_is_socket in listeners.c. */
#include "supervisor/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"

#define NOTIFY_QUEUE_MAX 4096 /* messages held for a reader that does not read */

struct notify_msg {
	struct notify_msg *next;
	int fd;           /* FDSTORE=1: our copy of the fd to pass, else -1 */
	bool status_only; /* a newer STATUS= replaces it */
	size_t len;
	char text[];
};

static struct {
	struct loop *loop;
	bool on;
	int fd;                 /* connected to NOTIFY_SOCKET, -1 if not */
	bool watched;           /* waiting for the socket to have room */
	struct sockaddr_un addr;
	socklen_t addr_len;
	struct notify_msg *head, **tail;
	size_t queued;
	unsigned long dropped;  /* queue full: messages not sent */
	bool failing;           /* the last send failed (log once per run of failures) */
	uint64_t wd_ms;
	char last_status[512];
} nt = { .fd = -1, .tail = &nt.head };

static int notify_address(const char *s)
{
	size_t n = strlen(s);
	if ((s[0] != '/' && s[0] != '@') || n < 2 || n >= sizeof(nt.addr.sun_path))
		return -EINVAL;
	memset(&nt.addr, 0, sizeof(nt.addr));
	nt.addr.sun_family = AF_UNIX;
	memcpy(nt.addr.sun_path, s, n);
	if (s[0] == '@') {
		nt.addr.sun_path[0] = '\0'; /* abstract: no terminating NUL counted */
		nt.addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		nt.addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return 0;
}

void notify_init(struct loop *loop)
{
	nt.loop = loop;
	uint64_t usec = 0;
	/* unset_environment=0: a binary upgrade re-reads WATCHDOG_* after execve. */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000)
		nt.wd_ms = usec / 1000;
	else
		nt.wd_ms = 0;
	const char *s = getenv("NOTIFY_SOCKET");
	if (!s || !*s)
		return;
	if (notify_address(s) < 0) {
		log_warning("NOTIFY_SOCKET=%s is not an absolute path or an abstract '@' address; not notifying", s);
		return;
	}
	nt.on = true;
}

static void notify_unwatch(void)
{
	if (nt.watched)
		loop_del_fd(nt.loop, nt.fd);
	nt.watched = false;
}

static void notify_disconnect(void)
{
	notify_unwatch();
	if (nt.fd >= 0)
		close(nt.fd);
	nt.fd = -1;
}

static int notify_connect(void)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&nt.addr, nt.addr_len) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	nt.fd = fd;
	return 0;
}

/* One datagram with our credentials (and the fd); 0 or -errno. */
static int notify_send_one(const struct notify_msg *m)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = { .iov_base = (void *)m->text, .iov_len = m->len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf };
	mh.msg_controllen = CMSG_SPACE(sizeof(struct ucred)) + (m->fd >= 0 ? CMSG_SPACE(sizeof(int)) : 0);
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_CREDENTIALS;
	c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
	struct ucred cred = { .pid = getpid(), .uid = getuid(), .gid = getgid() };
	memcpy(CMSG_DATA(c), &cred, sizeof(cred));
	if (m->fd >= 0) {
		c = CMSG_NXTHDR(&mh, c);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &m->fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(nt.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

/* Send the head, connecting (again) if needed: 0 sent, -EAGAIN no room,
 * else it cannot be delivered. */
static int notify_try_head(void)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int r = nt.fd >= 0 ? 0 : notify_connect();
		if (r == 0)
			r = notify_send_one(nt.head);
		if (r == 0 || r == -EAGAIN)
			return r;
		/* The reader went away (a restarted manager): reconnect once. */
		notify_disconnect();
		if (attempt == 1 || (r != -ECONNREFUSED && r != -ENOTCONN && r != -ECONNRESET))
			return r;
	}
	return -EIO;
}

static void notify_pop(void)
{
	struct notify_msg *m = nt.head;
	nt.head = m->next;
	if (!nt.head)
		nt.tail = &nt.head;
	if (m->fd >= 0)
		close(m->fd);
	free(m);
	nt.queued--;
}

static void notify_writable(struct loop *loop, int fd, unsigned events, void *arg);

/* Send the queue in order until the socket is full (then wait for room). */
static void notify_pump(bool may_wait)
{
	while (nt.head) {
		int r = notify_try_head();
		if (r == -EAGAIN) {
			if (may_wait && !nt.watched && loop_add_fd(nt.loop, nt.fd, LOOP_WRITE, notify_writable, NULL) == 0)
				nt.watched = true;
			return;
		}
		if (r < 0 && !nt.failing)
			log_errno(LOG_WARNING, r, "cannot notify the service manager at %s",
				  getenv("NOTIFY_SOCKET") ? getenv("NOTIFY_SOCKET") : "?");
		nt.failing = r < 0;
		notify_pop();
	}
	notify_unwatch();
	if (nt.dropped) {
		log_warning("notify: %lu message(s) dropped while the service manager did not read", nt.dropped);
		nt.dropped = 0;
	}
}

static void notify_writable(struct loop *loop, int fd, unsigned events, void *arg)
{
	notify_pump(true);
}

/* Queue text (with a copy of fd, if >= 0) behind what is waiting; 0 or
 * -errno when it cannot be held. */
static int notify_queue(const char *text, int fd, bool status_only)
{
	if (!nt.on)
		return 0;
	if (status_only) {
		/* Only the latest STATUS= matters: drop one still waiting. */
		for (struct notify_msg **pp = &nt.head; *pp;) {
			struct notify_msg *m = *pp;
			if (m->status_only) {
				*pp = m->next;
				if (nt.tail == &m->next)
					nt.tail = pp;
				free(m);
				nt.queued--;
			} else {
				pp = &m->next;
			}
		}
	}
	size_t len = strlen(text);
	struct notify_msg *m = nt.queued < NOTIFY_QUEUE_MAX ? malloc(sizeof(*m) + len + 1) : NULL;
	if (!m) {
		nt.dropped++;
		return -ENOBUFS;
	}
	m->next = NULL;
	m->status_only = status_only;
	m->len = len;
	memcpy(m->text, text, len + 1);
	m->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
	if (fd >= 0 && m->fd < 0) {
		int r = -errno;
		free(m);
		return r;
	}
	*nt.tail = m;
	nt.tail = &m->next;
	nt.queued++;
	if (!nt.watched)
		notify_pump(true);
	return 0;
}

size_t notify_flush(void)
{
	if (nt.on)
		notify_pump(false);
	return nt.queued;
}

void notify_done(void)
{
	notify_flush();
	while (nt.head)
		notify_pop();
	notify_disconnect();
}

static void notify_with_status(const char *head, const char *status)
{
	char buf[768];
	snprintf(buf, sizeof(buf), "%s%sSTATUS=%s", head, *head ? "\n" : "", status ? status : "");
	/* Remembered only once queued: a STATUS= the full queue refused is
	 * sent again next time, not taken for a repeat. */
	if (notify_queue(buf, -1, !*head) == 0 && status)
		snprintf(nt.last_status, sizeof(nt.last_status), "%s", status);
}

void notify_ready(const char *status)
{
	notify_with_status("READY=1", status);
}

void notify_reloading(const char *status)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char head[96];
	/* systemd >= 253 needs MONOTONIC_USEC= to pair RELOADING=1 with the
	 * following READY=1; older ones ignore it. */
	snprintf(head, sizeof(head), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull);
	notify_with_status(head, status);
}

void notify_before_exec(const char *status)
{
	notify_reloading(status);
	size_t unsent = notify_flush();
	if (unsent)
		/* The queue is this image's memory: the new one sends READY=1
		 * (and STATUS=) of its own once its generation serves. */
		log_warning("binary upgrade: %zu notification(s) the service manager has not read yet are dropped "
			    "with the exec", unsent);
}

void notify_stopping(const char *status)
{
	notify_with_status("STOPPING=1", status);
}

void notify_status(const char *fmt, ...)
{
	char status[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(status, sizeof(status), fmt, ap);
	va_end(ap);
	if (strcmp(status, nt.last_status) == 0)
		return;
	notify_with_status("", status);
}

uint64_t notify_watchdog_ms(void)
{
	return nt.on ? nt.wd_ms : 0;
}

void notify_watchdog(void)
{
	/* One ping waiting is as good as two. */
	if (nt.head && nt.tail != &nt.head) {
		struct notify_msg *last = (struct notify_msg *)((char *)nt.tail - offsetof(struct notify_msg, next));
		if (strcmp(last->text, "WATCHDOG=1") == 0)
			return;
	}
	notify_queue("WATCHDOG=1", -1, false);
}

int notify_fdstore(const int *fds, const char *const *names, unsigned n)
{
	if (!nt.on)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		char msg[128];
		/* FDSTORE=1 keeps a copy in systemd, FDNAME= is how it comes back in
		 * LISTEN_FDNAMES on the next start (systemd ignores a socket it
		 * already holds). */
		snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", names[i]);
		int r = notify_queue(msg, fds[i], false);
		if (r < 0)
			return log_errno(LOG_WARNING, r, "could not store listener '%s' in systemd's fd store", names[i]);
	}
	return 0;
}

void notify_fdstore_remove(const char *name)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	notify_queue(msg, -1, false);
}
