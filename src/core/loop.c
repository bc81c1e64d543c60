/* loop: epoll behind a small API, plus a binary min-heap of timers. */
#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_BATCH 64

/* Bits of loop_fd.mask above the LOOP_* ones. */
#define LOOP_KNOWN 0x80000000u   /* registered: non-zero even with no events */
#define LOOP_UNADDED 0x40000000u /* loop_add_fd_ready(): not in epoll yet */
#define LOOP_TRY 0x20000000u     /* loop_add_fd_ready(): the read call is due */
#define LOOP_BUFFERED 0x10000000u /* loop_fd_buffered(): input above the kernel */
#define LOOP_LISTED 0x08000000u  /* ...and fd is in loop->buffered */
#define LOOP_OWN (LOOP_KNOWN | LOOP_UNADDED | LOOP_TRY | LOOP_BUFFERED | LOOP_LISTED)

struct loop_fd {
	loop_fd_fn fn;
	void *arg;
	unsigned mask; /* 0 = unregistered */
};

struct loop {
	int epfd;
	bool stop;
	uint64_t now_ms;
	struct loop_fd *fds; /* indexed by fd */
	size_t n_fds;
	struct loop_timer **heap; /* 1-based; heap[0] unused */
	size_t heap_len;
	size_t heap_cap;
	int *ready;       /* loop_add_fd_ready() fds of this round, in order */
	size_t ready_len;
	size_t ready_cap;
	int *buffered;    /* loop_fd_buffered() fds watching LOOP_READ */
	size_t buffered_len;
	size_t buffered_cap;
};

uint64_t loop_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int loop_new(struct loop **out)
{
	struct loop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int e = -errno;
		free(loop);
		return e;
	}
	loop->now_ms = loop_clock_ms();
	*out = loop;
	return 0;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop->fds);
	free(loop->heap);
	free(loop->ready);
	free(loop->buffered);
	free(loop);
}

static uint32_t loop_epoll_events(unsigned mask)
{
	uint32_t ev = 0;
	if (mask & LOOP_READ)
		ev |= EPOLLIN;
	/* EPOLLEXCLUSIVE accepts only IN/OUT/ET/WAKEUP; listeners need no RDHUP. */
	if ((mask & LOOP_READ) && !(mask & LOOP_EXCLUSIVE))
		ev |= EPOLLRDHUP;
	if (mask & LOOP_WRITE)
		ev |= EPOLLOUT;
	if (mask & LOOP_EXCLUSIVE)
		ev |= EPOLLEXCLUSIVE;
	return ev;
}

static int loop_reserve_fd(struct loop *loop, int fd)
{
	if ((size_t)fd < loop->n_fds)
		return 0;
	size_t n = loop->n_fds ? loop->n_fds : 64;
	while (n <= (size_t)fd)
		n *= 2;
	struct loop_fd *v = realloc(loop->fds, n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memset(v + loop->n_fds, 0, (n - loop->n_fds) * sizeof(*v));
	loop->fds = v;
	loop->n_fds = n;
	return 0;
}

/* fd may be registered: valid, not registered yet, room in the table.
 * 0 or -errno. */
static int loop_check_new(struct loop *loop, int fd, loop_fd_fn fn)
{
	if (fd < 0 || !fn)
		return -EINVAL;
	int r = loop_reserve_fd(loop, fd);
	if (r < 0)
		return r;
	return loop->fds[fd].mask ? -EEXIST : 0;
}

int loop_add_fd(struct loop *loop, int fd, unsigned mask, loop_fd_fn fn, void *arg)
{
	int r = loop_check_new(loop, fd, fn);
	if (r < 0)
		return r;
	struct epoll_event ev = { .events = loop_epoll_events(mask), .data.fd = fd };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	loop->fds[fd] = (struct loop_fd){ .fn = fn, .arg = arg, .mask = mask | LOOP_KNOWN };
	return 0;
}

int loop_add_fd_ready(struct loop *loop, int fd, unsigned mask, loop_fd_fn fn, void *arg)
{
	if (mask & LOOP_EXCLUSIVE)
		return -EINVAL;
	int r = loop_check_new(loop, fd, fn);
	if (r < 0)
		return r;
	if (loop->ready_len == loop->ready_cap) {
		size_t cap = loop->ready_cap ? loop->ready_cap * 2 : 64;
		int *v = realloc(loop->ready, cap * sizeof(*v));
		if (!v)
			return loop_add_fd(loop, fd, mask, fn, arg); /* registered at once instead */
		loop->ready = v;
		loop->ready_cap = cap;
	}
	loop->ready[loop->ready_len++] = fd;
	loop->fds[fd] = (struct loop_fd){ .fn = fn, .arg = arg, .mask = mask | LOOP_KNOWN | LOOP_UNADDED | LOOP_TRY };
	return 0;
}

/* Put fd on the list of buffered fds, once. */
static void loop_list_buffered(struct loop *loop, int fd)
{
	struct loop_fd *f = &loop->fds[fd];
	if (f->mask & LOOP_LISTED)
		return;
	if (loop->buffered_len == loop->buffered_cap) {
		size_t cap = loop->buffered_cap ? loop->buffered_cap * 2 : 16;
		int *v = realloc(loop->buffered, cap * sizeof(*v));
		if (!v)
			return; /* its next read, or the peer's next bytes, bring it back */
		loop->buffered = v;
		loop->buffered_cap = cap;
	}
	loop->buffered[loop->buffered_len++] = fd;
	f->mask |= LOOP_LISTED;
}

void loop_fd_buffered(struct loop *loop, int fd, bool buffered)
{
	if (fd < 0 || (size_t)fd >= loop->n_fds || !loop->fds[fd].mask)
		return;
	struct loop_fd *f = &loop->fds[fd];
	if (!buffered) {
		f->mask &= ~LOOP_BUFFERED;
		return;
	}
	f->mask |= LOOP_BUFFERED;
	if (f->mask & LOOP_READ)
		loop_list_buffered(loop, fd);
}

/* The buffered fds, level-triggered as epoll is for a readable socket:
 * each one still buffered and watching LOOP_READ gets its read call and
 * stays listed while it is (its reader clears the mark once it has taken
 * everything); one that stopped watching LOOP_READ leaves the list until
 * loop_mod_fd() asks for it again. */
static void loop_run_buffered(struct loop *loop)
{
	size_t n = loop->buffered_len, kept = 0;
	for (size_t i = 0; i < n; i++) {
		int fd = loop->buffered[i];
		if (fd < 0)
			continue; /* removed meanwhile */
		struct loop_fd *f = &loop->fds[fd];
		f->mask &= ~LOOP_LISTED;
		if ((f->mask & (LOOP_BUFFERED | LOOP_READ)) != (LOOP_BUFFERED | LOOP_READ))
			continue;
		if (!loop->stop)
			f->fn(loop, fd, LOOP_READ, f->arg);
		/* The callback may have closed fd, or listed it again. */
		f = &loop->fds[fd];
		if ((f->mask & (LOOP_BUFFERED | LOOP_READ)) == (LOOP_BUFFERED | LOOP_READ) && !(f->mask & LOOP_LISTED)) {
			loop->buffered[kept++] = fd;
			f->mask |= LOOP_LISTED;
		}
	}
	/* Fds listed by the callbacks came after the first n. */
	memmove(loop->buffered + kept, loop->buffered + n, (loop->buffered_len - n) * sizeof(*loop->buffered));
	loop->buffered_len = kept + (loop->buffered_len - n);
}

int loop_mod_fd(struct loop *loop, int fd, unsigned mask)
{
	if (fd < 0 || (size_t)fd >= loop->n_fds || !loop->fds[fd].mask)
		return -ENOENT;
	unsigned own = loop->fds[fd].mask & LOOP_OWN;
	unsigned old = loop->fds[fd].mask & ~LOOP_OWN;
	if (old == mask)
		return 0;
	if (old & LOOP_EXCLUSIVE)
		return -EINVAL; /* epoll refuses EPOLL_CTL_MOD on exclusive fds */
	if (!(own & LOOP_UNADDED)) {
		struct epoll_event ev = { .events = loop_epoll_events(mask), .data.fd = fd };
		if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
			return -errno;
	}
	loop->fds[fd].mask = mask | own;
	if ((own & LOOP_BUFFERED) && (mask & LOOP_READ))
		loop_list_buffered(loop, fd);
	return 0;
}

/* fd leaves the buffered list (it is removed or closed): a stale entry
 * would call whoever gets its number next a second time each round. */
static void loop_unlist_buffered(struct loop *loop, int fd)
{
	if (!(loop->fds[fd].mask & LOOP_LISTED))
		return;
	/* A hole, not a shift: loop_run_buffered() may be walking the list. */
	for (size_t i = 0; i < loop->buffered_len; i++)
		if (loop->buffered[i] == fd)
			loop->buffered[i] = -1;
}

int loop_del_fd(struct loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->n_fds || !loop->fds[fd].mask)
		return -ENOENT;
	loop_unlist_buffered(loop, fd);
	bool added = !(loop->fds[fd].mask & LOOP_UNADDED);
	loop->fds[fd] = (struct loop_fd){ 0 };
	if (added && epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
		return -errno;
	return 0;
}

void loop_close_fd(struct loop *loop, int fd)
{
	if (fd >= 0 && (size_t)fd < loop->n_fds) {
		loop_unlist_buffered(loop, fd);
		loop->fds[fd] = (struct loop_fd){ 0 };
	}
	close(fd);
}

int loop_set_handler(struct loop *loop, int fd, loop_fd_fn fn, void *arg)
{
	if (fd < 0 || (size_t)fd >= loop->n_fds || !loop->fds[fd].mask || !fn)
		return -ENOENT;
	loop->fds[fd].fn = fn;
	loop->fds[fd].arg = arg;
	return 0;
}

unsigned loop_fd_mask(struct loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->n_fds)
		return 0;
	return loop->fds[fd].mask & ~LOOP_OWN;
}

int loop_dispatch(struct loop *loop, int fd, unsigned events)
{
	if (fd < 0 || (size_t)fd >= loop->n_fds || !loop->fds[fd].mask)
		return -ENOENT;
	struct loop_fd *f = &loop->fds[fd];
	f->fn(loop, fd, events, f->arg);
	return 0;
}

/* ---- timers: a 1-based binary min-heap keyed by deadline ---- */

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *arg)
{
	t->deadline_ms = 0;
	t->heap_index = 0;
	t->fn = fn;
	t->arg = arg;
}

bool loop_timer_armed(const struct loop_timer *t)
{
	return t->heap_index != 0;
}

static void loop_heap_set(struct loop *loop, size_t i, struct loop_timer *t)
{
	loop->heap[i] = t;
	t->heap_index = i;
}

static void loop_heap_up(struct loop *loop, size_t i)
{
	struct loop_timer *t = loop->heap[i];
	while (i > 1 && loop->heap[i / 2]->deadline_ms > t->deadline_ms) {
		loop_heap_set(loop, i, loop->heap[i / 2]);
		i /= 2;
	}
	loop_heap_set(loop, i, t);
}

static void loop_heap_down(struct loop *loop, size_t i)
{
	struct loop_timer *t = loop->heap[i];
	for (;;) {
		size_t c = 2 * i;
		if (c > loop->heap_len)
			break;
		if (c + 1 <= loop->heap_len && loop->heap[c + 1]->deadline_ms < loop->heap[c]->deadline_ms)
			c++;
		if (loop->heap[c]->deadline_ms >= t->deadline_ms)
			break;
		loop_heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	loop_heap_set(loop, i, t);
}

void loop_timer_cancel(struct loop *loop, struct loop_timer *t)
{
	size_t i = t->heap_index;
	if (!i)
		return;
	struct loop_timer *last = loop->heap[loop->heap_len--];
	t->heap_index = 0;
	if (last == t)
		return;
	loop_heap_set(loop, i, last);
	loop_heap_up(loop, i);
	loop_heap_down(loop, last->heap_index);
}

void loop_timer_move(struct loop *loop, struct loop_timer *to, struct loop_timer *from)
{
	*to = *from;
	if (from->heap_index)
		loop->heap[from->heap_index] = to;
	from->heap_index = 0;
}

void loop_timer_arm_at(struct loop *loop, struct loop_timer *t, uint64_t deadline_ms)
{
	if (t->heap_index) {
		t->deadline_ms = deadline_ms;
		loop_heap_up(loop, t->heap_index);
		loop_heap_down(loop, t->heap_index);
		return;
	}
	if (loop->heap_len + 1 >= loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		struct loop_timer **h = realloc(loop->heap, cap * sizeof(*h));
		if (!h)
			abort(); /* timers are how connections get closed; without one we cannot run safely */
		loop->heap = h;
		loop->heap_cap = cap;
	}
	t->deadline_ms = deadline_ms;
	loop->heap_len++;
	loop_heap_set(loop, loop->heap_len, t);
	loop_heap_up(loop, loop->heap_len);
}

void loop_timer_arm(struct loop *loop, struct loop_timer *t, uint64_t delay_ms)
{
	loop_timer_arm_at(loop, t, loop->now_ms + delay_ms);
}

uint64_t loop_now_ms(struct loop *loop)
{
	return loop->now_ms;
}

void loop_stop(struct loop *loop)
{
	loop->stop = true;
}

static void loop_run_timers(struct loop *loop)
{
	/* Fire only what is due now; a callback that re-arms for "now" waits for
	 * the next iteration, so a timer can never starve the fds. */
	uint64_t now = loop->now_ms;
	size_t budget = loop->heap_len;
	while (budget-- && loop->heap_len && loop->heap[1]->deadline_ms <= now) {
		struct loop_timer *t = loop->heap[1];
		loop_timer_cancel(loop, t);
		t->fn(loop, t, t->arg);
		if (loop->stop)
			return;
	}
}

/* The fds added by loop_add_fd_ready() this round: their read call, then,
 * for those still open, the epoll registration. A registration that fails
 * is reported to the callback with LOOP_ERROR, the fd already forgotten. */
static void loop_run_ready(struct loop *loop)
{
	size_t i;
	for (i = 0; i < loop->ready_len && !loop->stop; i++) {
		int fd = loop->ready[i];
		struct loop_fd *f = &loop->fds[fd];
		if (f->mask & LOOP_TRY) {
			f->mask &= ~LOOP_TRY;
			if (f->mask & LOOP_READ)
				f->fn(loop, fd, LOOP_READ, f->arg);
		}
		/* The callback may have closed fd (or even reused its number,
		 * whose own entry comes later in the list). */
		f = &loop->fds[fd];
		if (!(f->mask & LOOP_UNADDED) || (f->mask & LOOP_TRY))
			continue;
		struct epoll_event ev = { .events = loop_epoll_events(f->mask & ~LOOP_OWN), .data.fd = fd };
		if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
			f->mask &= ~LOOP_UNADDED;
			continue;
		}
		struct loop_fd gone = *f;
		*f = (struct loop_fd){ 0 };
		gone.fn(loop, fd, LOOP_READ | LOOP_WRITE | LOOP_ERROR, gone.arg);
	}
	/* What the callbacks added meanwhile was handled above (the list only
	 * grows at its end); after a loop_stop() the rest waits for the next
	 * loop_run(). */
	memmove(loop->ready, loop->ready + i, (loop->ready_len - i) * sizeof(*loop->ready));
	loop->ready_len -= i;
}

int loop_run(struct loop *loop)
{
	struct epoll_event evs[LOOP_BATCH];
	loop->stop = false;
	while (!loop->stop) {
		if (loop->ready_len) {
			loop_run_ready(loop);
			if (loop->stop)
				break;
		}
		int timeout = loop->buffered_len ? 0 : -1;
		if (timeout < 0 && loop->heap_len) {
			uint64_t d = loop->heap[1]->deadline_ms;
			uint64_t now = loop_clock_ms();
			timeout = d <= now ? 0 : (d - now > 60000 ? 60000 : (int)(d - now));
		}
		int n = epoll_wait(loop->epfd, evs, LOOP_BATCH, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		loop->now_ms = loop_clock_ms();
		for (int i = 0; i < n && !loop->stop; i++) {
			int fd = evs[i].data.fd;
			/* A callback earlier in this batch may have removed this fd. */
			if ((size_t)fd >= loop->n_fds || !loop->fds[fd].mask)
				continue;
			unsigned mask = 0;
			uint32_t e = evs[i].events;
			if (e & (EPOLLIN | EPOLLRDHUP))
				mask |= LOOP_READ;
			if (e & EPOLLOUT)
				mask |= LOOP_WRITE;
			if (e & (EPOLLERR | EPOLLHUP))
				mask |= LOOP_READ | LOOP_WRITE;
			struct loop_fd *f = &loop->fds[fd];
			f->fn(loop, fd, mask, f->arg);
		}
		if (!loop->stop && loop->buffered_len)
			loop_run_buffered(loop);
		if (!loop->stop)
			loop_run_timers(loop);
	}
	return 0;
}
