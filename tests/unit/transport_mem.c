/* transport_mem: the in-memory transport of the unit tests (see the
 * header). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "transport_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/loop.h"
#include "worker/conn.h"

/* A set-up step that cannot fail in a test (memory, a pipe): abort, so that
 * the tests and the fuzzer (which runs no check test) both stop there. */
static void tmem_must(bool ok)
{
	if (!ok)
		abort();
}

#define TMEM_FDS 1024

/* Where open() finds a connection's struct tmem: by its fd. */
static struct tmem *tmem_by_fd[TMEM_FDS];

static void tmem_grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	*buf = realloc(*buf, n + 1);
	tmem_must(*buf != NULL);
	*cap = n;
}

void tmem_init(struct tmem *m)
{
	memset(m, 0, sizeof(*m));
	int p[2];
	tmem_must(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
	tmem_must(p[0] < TMEM_FDS);
	m->fd = p[0];
	m->fd_hold = p[1];
	m->room = TMEM_UNLIMITED;
	tmem_by_fd[m->fd] = m;
}

void tmem_free(struct tmem *m)
{
	if (m->fd >= 0) {
		tmem_by_fd[m->fd] = NULL;
		close(m->fd);
		close(m->fd_hold);
		m->fd = -1;
	}
	free(m->in);
	free(m->out);
	m->in = m->out = NULL;
}

void tmem_push(struct tmem *m, const void *data, size_t len)
{
	tmem_grow(&m->in, &m->in_cap, m->in_len + len);
	memcpy(m->in + m->in_len, data, len);
	m->in_len += len;
}

void tmem_push_str(struct tmem *m, const char *s)
{
	tmem_push(m, s, strlen(s));
}

const char *tmem_out(struct tmem *m)
{
	tmem_grow(&m->out, &m->out_cap, m->out_len + 1);
	m->out[m->out_len] = '\0';
	return m->out;
}

void tmem_out_clear(struct tmem *m)
{
	m->out_len = 0;
}

static struct tmem *tmem_of(struct conn *c)
{
	return c->transport.state;
}

static int tmem_open(struct conn *c)
{
	if (c->fd < 0 || c->fd >= TMEM_FDS || !tmem_by_fd[c->fd])
		return -EBADF;
	c->transport.state = tmem_by_fd[c->fd];
	return 0;
}

static ssize_t tmem_read(struct conn *c, void *buf, size_t len)
{
	struct tmem *m = tmem_of(c);
	m->reads++;
	if (m->read_waits_writable) {
		m->read_waits_writable = false;
		c->io_wait |= TRANSPORT_READ_WAITS_WRITABLE;
		return -EAGAIN;
	}
	c->io_wait &= (uint8_t)~TRANSPORT_READ_WAITS_WRITABLE;
	size_t avail = m->in_len - m->in_off;
	if (avail == 0)
		return m->in_error ? m->in_error : m->in_eof ? 0 : -EAGAIN;
	size_t n = avail < len ? avail : len;
	memcpy(buf, m->in + m->in_off, n);
	m->in_off += n;
	return (ssize_t)n;
}

/* How much of len the client takes now: 0 means -EAGAIN. */
static size_t tmem_take(struct conn *c, size_t len)
{
	struct tmem *m = tmem_of(c);
	c->io_wait &= (uint8_t)~TRANSPORT_WRITE_WAITS_READABLE;
	size_t n = len < m->room ? len : m->room;
	if (m->room != TMEM_UNLIMITED)
		m->room -= n;
	tmem_grow(&m->out, &m->out_cap, m->out_len + n);
	return n;
}

static ssize_t tmem_writev(struct conn *c, const struct iovec *iov, int n_iov, unsigned flags)
{
	struct tmem *m = tmem_of(c);
	if (m->write_waits_readable) {
		m->write_waits_readable = false;
		c->io_wait |= TRANSPORT_WRITE_WAITS_READABLE;
		return -EAGAIN;
	}
	size_t total = 0;
	for (int i = 0; i < n_iov; i++)
		total += iov[i].iov_len;
	size_t n = tmem_take(c, total);
	if (n == 0 && total > 0)
		return -EAGAIN;
	size_t left = n;
	for (int i = 0; i < n_iov && left; i++) {
		size_t k = iov[i].iov_len < left ? iov[i].iov_len : left;
		memcpy(m->out + m->out_len, iov[i].iov_base, k);
		m->out_len += k;
		left -= k;
	}
	m->writes++;
	m->last_flags = flags;
	if (flags & TRANSPORT_MORE)
		m->more_writes++;
	return (ssize_t)n;
}

static ssize_t tmem_sendfile(struct conn *c, int fd, off_t *off, size_t len)
{
	struct tmem *m = tmem_of(c);
	size_t n = tmem_take(c, len);
	if (n == 0 && len > 0)
		return -EAGAIN;
	ssize_t got = pread(fd, m->out + m->out_len, n, *off);
	if (got < 0)
		return -errno;
	m->out_len += (size_t)got;
	*off += got;
	if (m->room != TMEM_UNLIMITED)
		m->room += n - (size_t)got; /* what the file did not fill */
	m->sendfiles++;
	return got;
}

static int tmem_pending(struct conn *c)
{
	struct tmem *m = tmem_of(c);
	return m->in_off < m->in_len;
}

static int tmem_shutdown(struct conn *c)
{
	struct tmem *m = tmem_of(c);
	m->shut = true;
	m->out_at_shut = m->out_len;
	return 0;
}

static void tmem_close(struct conn *c)
{
	struct tmem *m = tmem_of(c);
	m->closed = true;
	if (c->fd < 0)
		return; /* the caller closes it */
	tmem_by_fd[c->fd] = NULL;
	loop_close_fd(c->loop, c->fd);
	close(m->fd_hold);
	m->fd = -1;
}

static int tmem_hint(struct conn *c, enum transport_hint hint)
{
	struct tmem *m = tmem_of(c);
	switch (hint) {
	case TRANSPORT_NODELAY:
		m->nodelay++;
		return 0;
	case TRANSPORT_ACKS_DELAYED:
		m->acks_delayed++;
		return 0;
	case TRANSPORT_ACKS_NOW:
		m->acks_now++;
		return 0;
	}
	return -EINVAL;
}

static const char *tmem_security(const struct conn *c)
{
	const struct tmem *m = c->transport.state;
	return m ? m->security : NULL;
}

const struct transport_ops transport_mem = {
	.name = "mem",
	.open = tmem_open,
	.read = tmem_read,
	.writev = tmem_writev,
	.sendfile = tmem_sendfile,
	.pending = tmem_pending,
	.shutdown = tmem_shutdown,
	.close = tmem_close,
	.hint = tmem_hint,
	.security = tmem_security,
};
