/* trial: the check and the trial of a binary upgrade (see trial.h). A
 * child's output goes into a pipe the loop reads; its exit is reaped by
 * the coordinator, which hands it to trial_reaped. A child past its time
 * is killed, and its exit ends the step as a failure. */
#include "supervisor/trial.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "supervisor/handover.h"

#define TRIAL_CHECK_MS 10000 /* "drover -t" of the new binary must answer by then */
#define TRIAL_RUN_MS 15000   /* its trial generation must be ready by then */

void trial_init(struct trial *t, struct loop *loop)
{
	memset(t, 0, sizeof(*t));
	t->loop = loop;
	t->child_fd = -1;
}

/* What the check or the trial writes; EOF closes our end. */
static void trial_output(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct trial *t = arg;
	for (;;) {
		char *buf = t->out + t->out_len;
		size_t room = sizeof(t->out) - 1 - t->out_len;
		char sink[512];
		ssize_t n = read(fd, room ? buf : sink, room ? room : sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			loop_del_fd(loop, fd);
			close(fd);
			t->child_fd = -1;
			break;
		}
		if (room)
			t->out_len += (size_t)n;
	}
	t->out[t->out_len] = '\0';
}

static void trial_timeout(struct loop *loop, struct loop_timer *timer, void *arg)
{
	/* A new binary that hangs is killed; its exit ends this step. */
	struct trial *t = arg;
	t->timed_out = true;
	kill(t->child, SIGKILL);
}

/* Forget the child (reaped, or being killed): read what it wrote last. */
static void trial_forget(struct trial *t)
{
	if (t->child_fd >= 0) {
		trial_output(t->loop, t->child_fd, LOOP_READ, t);
		if (t->child_fd >= 0) {
			/* Something the child started still holds the pipe. */
			loop_del_fd(t->loop, t->child_fd);
			close(t->child_fd);
			t->child_fd = -1;
		}
	}
	loop_timer_cancel(t->loop, &t->timer);
	t->child = 0;
	t->phase = TRIAL_IDLE;
}

/* In the trial child: lend it our listeners (and nothing else), without
 * the service manager's variables, and run "exe --upgrade-trial=FD". */
__attribute__((noreturn)) static void trial_exec(const char *exe, const char *config_path,
						 const struct handover *lent, int report_fd)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	char **envp;
	if (handover_environment(lent, NULL, &envp) < 0)
		_exit(126);
	handover_set_fds(lent, HANDOVER_FDS_INHERITED);
	int fl = fcntl(report_fd, F_GETFD);
	fcntl(report_fd, F_SETFD, fl & ~FD_CLOEXEC);
	char flag[64];
	snprintf(flag, sizeof(flag), "--upgrade-trial=%d", report_fd);
	char *argv[] = { (char *)exe, flag, "-c", (char *)config_path, NULL };
	execve(exe, argv, envp);
	dprintf(2, "cannot execute %s: %s\n", exe, strerror(errno));
	_exit(127);
}

int trial_start(struct trial *t, enum trial_phase phase, const char *exe, const char *config_path,
		const struct handover *lent, const char **what)
{
	int pfd[2];
	*what = "pipe";
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	*what = "fork";
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return r;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (phase == TRIAL_RUN)
			trial_exec(exe, config_path, lent, pfd[1]);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execl(exe, exe, "-t", "-c", config_path, (char *)NULL);
		dprintf(2, "cannot execute %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	int r = loop_add_fd(t->loop, pfd[0], LOOP_READ, trial_output, t);
	if (r < 0) {
		kill(pid, SIGKILL);
		close(pfd[0]);
		pfd[0] = -1; /* the exit is still reaped; its output is lost */
	}
	t->phase = phase;
	t->exe = exe;
	t->child = pid;
	t->child_fd = pfd[0];
	t->out_len = 0;
	t->out[0] = '\0';
	t->timed_out = false;
	loop_timer_init(&t->timer, trial_timeout, t);
	loop_timer_arm(t->loop, &t->timer, phase == TRIAL_CHECK ? TRIAL_CHECK_MS : TRIAL_RUN_MS);
	return 0;
}

/* Why the check failed, from its output (or its time running out). */
static void trial_check_failure(struct trial *t, char *err, size_t len)
{
	char *buf = t->out;
	size_t n = t->out_len;
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
	if (t->timed_out)
		snprintf(err, len, "%.1000s -t did not finish within %d s", t->exe, TRIAL_CHECK_MS / 1000);
	else
		snprintf(err, len, "%.1000s -t failed: %.1000s", t->exe, buf[0] ? buf : "no output");
}

/* Why the trial failed, from how it ended. */
static void trial_run_failure(const struct trial *t, int status, char *err, size_t len)
{
	char how[96];
	if (t->timed_out)
		snprintf(how, sizeof(how), "did not bring a generation up within %d s", TRIAL_RUN_MS / 1000);
	else if (WIFEXITED(status))
		snprintf(how, sizeof(how), "exited with status %d before its generation was ready", WEXITSTATUS(status));
	else
		snprintf(how, sizeof(how), "was killed by signal %d (%s) before its generation was ready",
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
	snprintf(err, len, "%.1000s %s", t->exe, how);
}

enum trial_result trial_reaped(struct trial *t, pid_t pid, int status, char *why, size_t why_len)
{
	if (pid != t->child || pid <= 0)
		return TRIAL_NOT_OURS;
	enum trial_phase phase = t->phase;
	trial_forget(t);
	bool ok = !t->timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (phase == TRIAL_CHECK && ok)
		return TRIAL_CHECK_PASSED;
	if (phase == TRIAL_RUN && strstr(t->out, "ready\n"))
		return TRIAL_READY; /* it reported just before it ended */
	if (phase == TRIAL_CHECK)
		trial_check_failure(t, why, why_len);
	else
		trial_run_failure(t, status, why, why_len);
	return TRIAL_FAILED;
}

void trial_cancel(struct trial *t)
{
	if (t->child > 0)
		kill(t->child, SIGKILL);
	trial_forget(t);
}

/* ------------------------------------------------------ a trial image */

int trial_take_lent(const char *value, struct handover *st)
{
	int r = handover_decode(value, st);
	if (r < 0) {
		log_error("cannot parse %s from the image that runs this trial", HANDOVER_ENV);
		return r;
	}
	handover_set_fds(st, HANDOVER_FDS_CLOEXEC);
	return 0;
}

void trial_report_ready(int *fd)
{
	static const char ready[] = "ready\n";
	if (write(*fd, ready, sizeof(ready) - 1) != (ssize_t)(sizeof(ready) - 1))
		log_errno(LOG_ERR, -errno, "cannot report the trial's result");
	close(*fd);
	*fd = -1;
}
