/* loop: the event loop every process runs. Callers register "when fd X is
 * ready, call f(arg)" and timers; they never see epoll. */
#ifndef DROVER_LOOP_H
#define DROVER_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

enum {
	LOOP_READ = 1u << 0,
	LOOP_WRITE = 1u << 1,
	/* Wake only one of the processes waiting on this fd (shared listeners);
	 * such an fd cannot be modified, only removed. */
	LOOP_EXCLUSIVE = 1u << 2,
	/* Only in events: an fd of loop_add_fd_ready() could not be watched
	 * after all (epoll_ctl failed); the loop has forgotten it, and the
	 * callback must close it. */
	LOOP_ERROR = 1u << 3,
};

/* events is a mask of LOOP_READ/LOOP_WRITE; errors and hang-ups are reported
 * as both, so the callback's next read or write sees them. */
typedef void (*loop_fd_fn)(struct loop *loop, int fd, unsigned events, void *arg);

struct loop_timer;
typedef void (*loop_timer_fn)(struct loop *loop, struct loop_timer *t, void *arg);

/* A timer is embedded in its owner's struct; no allocation to arm it. */
struct loop_timer {
	uint64_t deadline_ms; /* CLOCK_MONOTONIC milliseconds */
	size_t heap_index;    /* position in the loop's heap; 0 = not armed */
	loop_timer_fn fn;
	void *arg;
};

/* Create a loop in *out; 0 or -errno. */
int loop_new(struct loop **out);
/* Free the loop (does not close registered fds). */
void loop_free(struct loop *loop);

/* Watch fd for the LOOP_* events in mask; 0 or -errno. */
int loop_add_fd(struct loop *loop, int fd, unsigned mask, loop_fd_fn fn, void *arg);
/* As loop_add_fd(), for an fd that is probably readable already (a
 * connection just accepted, its request arrived with it): fn is called with
 * LOOP_READ once the events of this round are handled, and only an fd still
 * open after that call is added to epoll. So a connection served and closed
 * at once costs no epoll_ctl(), and its request no epoll wake-up. Until then
 * loop_mod_fd(), loop_del_fd() and loop_close_fd() work on it as on any fd,
 * without a syscall. If the late epoll_ctl() fails, fn gets LOOP_ERROR.
 * 0 or -errno. */
int loop_add_fd_ready(struct loop *loop, int fd, unsigned mask, loop_fd_fn fn, void *arg);
/* Whether fd has input buffered above the kernel (a TLS library decrypted
 * more than its reader took): epoll cannot see it, so while it is set and
 * LOOP_READ is watched, the callback gets LOOP_READ after each round's
 * events, as for a readable socket. The reader sets it after every read;
 * it is cleared when that call is made, and when fd is removed. An fd
 * not registered is ignored. */
void loop_fd_buffered(struct loop *loop, int fd, bool buffered);
/* Change the events watched on fd; 0 or -errno. */
int loop_mod_fd(struct loop *loop, int fd, unsigned mask);
/* Stop watching fd (before closing it); 0 or -errno. */
int loop_del_fd(struct loop *loop, int fd);
/* Forget fd and close it: one syscall, since closing the last reference
 * removes it from epoll (only for fds never shared with another process). */
void loop_close_fd(struct loop *loop, int fd);
/* Send fd's events to another callback, keeping its registration; 0 or -ENOENT. */
int loop_set_handler(struct loop *loop, int fd, loop_fd_fn fn, void *arg);
/* The mask currently watched for fd, or 0 if unregistered. */
unsigned loop_fd_mask(struct loop *loop, int fd);
/* Call fd's callback now with events, as a round of the loop does when
 * epoll reports them: for events epoll cannot see (the in-memory
 * transport the unit tests drive connections with). 0, or -ENOENT when fd
 * is not registered. */
int loop_dispatch(struct loop *loop, int fd, unsigned events);

/* Prepare a timer that calls fn(arg) when it fires. */
void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *arg);
/* (Re)arm the timer to fire delay_ms from the loop's current time. */
void loop_timer_arm(struct loop *loop, struct loop_timer *t, uint64_t delay_ms);
/* (Re)arm the timer to fire at an absolute CLOCK_MONOTONIC millisecond. */
void loop_timer_arm_at(struct loop *loop, struct loop_timer *t, uint64_t deadline_ms);
/* Disarm the timer; harmless when it is not armed. */
void loop_timer_cancel(struct loop *loop, struct loop_timer *t);
/* The timer from now lives at to (its owner moved): same deadline, fn and
 * arg, armed or not as from was; from is left unarmed. O(1). */
void loop_timer_move(struct loop *loop, struct loop_timer *to, struct loop_timer *from);
/* Whether the timer is armed. */
bool loop_timer_armed(const struct loop_timer *t);

/* CLOCK_MONOTONIC in milliseconds, cached at the last wake-up. */
uint64_t loop_now_ms(struct loop *loop);
/* CLOCK_MONOTONIC in milliseconds, read now. */
uint64_t loop_clock_ms(void);

/* Dispatch events and timers until loop_stop(); 0 or -errno. */
int loop_run(struct loop *loop);
/* Make loop_run() return after the current iteration. */
void loop_stop(struct loop *loop);

#endif
