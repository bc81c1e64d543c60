/* droverctl: talk to a running drover over its control socket.
 * Exit codes: 0 done, 1 the command failed (the message says why),
 * 2 usage, 3 drover is not reachable. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "supervisor/admin.h"
#include "proto/protocols.h"
#include "worker/proto.h"
#include "worker/tls.h"

enum { ADMIN_EXIT_OK = 0, ADMIN_EXIT_FAILED = 1, ADMIN_EXIT_USAGE = 2, ADMIN_EXIT_UNREACHABLE = 3 };

static void droverctl_usage(FILE *out)
{
	fprintf(out, "Usage: droverctl [-s SOCKET] [-c FILE] [-w SECONDS] COMMAND\n\nCommands:\n");
	for (size_t i = 0; i < admin_n_commands; i++)
		fprintf(out, "  %-12s %s\n", admin_commands[i].name, admin_commands[i].help);
	fprintf(out,
		"\n"
		"  -s, --socket PATH   control socket (default: from the config file)\n"
		"  -c, --config FILE   config file to read control_socket from (default %s)\n"
		"  -w, --wait SECONDS  give up waiting for an answer after this long (default 120)\n"
		"\n"
		"Exit status: 0 done, 1 command failed, 2 usage error, 3 drover not reachable.\n",
		CONFIG_DEFAULT_PATH);
}

struct droverctl_args {
	const char *socket_path;
	const char *config_path;
	long wait_s;
	const struct admin_command *cmd;
};

/* Parse the command line; -1 when args are complete, else an exit code. */
static int droverctl_parse(int argc, char *argv[], struct droverctl_args *a)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "wait", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "s:c:w:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			a->socket_path = optarg;
			break;
		case 'c':
			a->config_path = optarg;
			break;
		case 'w':
			a->wait_s = strtol(optarg, NULL, 10);
			if (a->wait_s <= 0) {
				fprintf(stderr, "droverctl: --wait needs a positive number of seconds\n");
				return ADMIN_EXIT_USAGE;
			}
			break;
		case 'h':
			droverctl_usage(stdout);
			return ADMIN_EXIT_OK;
		default:
			droverctl_usage(stderr);
			return ADMIN_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		droverctl_usage(stderr);
		return ADMIN_EXIT_USAGE;
	}
	a->cmd = admin_command_find(argv[optind]);
	if (!a->cmd) {
		fprintf(stderr, "droverctl: unknown command '%s'\n", argv[optind]);
		droverctl_usage(stderr);
		return ADMIN_EXIT_USAGE;
	}
	return -1;
}

/* Where the control socket is: -s, else the config's, else the default. */
static void droverctl_socket_path(const struct droverctl_args *a, char *path, size_t len)
{
	if (a->socket_path) {
		snprintf(path, len, "%s", a->socket_path);
		return;
	}
	const char *cp = a->config_path ? a->config_path : CONFIG_DEFAULT_PATH;
	char err[4096];
	struct config *cfg = NULL;
	if (config_load(cp, &cfg, err, sizeof(err)) == 0) {
		admin_socket_path(cfg->server.control_socket, path, len);
		config_free(cfg);
		return;
	}
	/* A broken file must not stop "reload" from reaching drover: drover
	 * itself reports what is wrong with it. */
	if (a->config_path)
		fprintf(stderr, "droverctl: cannot read %s, using the default control socket\n", cp);
	admin_socket_path(NULL, path, len);
}

/* Read until drover closes (or wait_s passes); bytes read or -ETIMEDOUT. */
static ssize_t droverctl_read_reply(int fd, long wait_s, char *reply, size_t cap)
{
	size_t len = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, (int)(wait_s * 1000));
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0 && errno == EINTR)
			continue;
		ssize_t n = read(fd, reply + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (len += (size_t)n) == cap - 1)
			break;
	}
	reply[len] = '\0';
	return (ssize_t)len;
}

/* Print the answer; its last line is "OK ..." or "ERR ...". */
static int droverctl_report(const struct admin_command *cmd, char *reply, size_t len)
{
	while (len && reply[len - 1] == '\n')
		reply[--len] = '\0';
	char *last = strrchr(reply, '\n');
	last = last ? last + 1 : reply;
	if (strncmp(last, "OK", 2) == 0) {
		/* status prints its report; the others their one-line result. */
		if (last != reply)
			printf("%.*s\n", (int)(last - reply - 1), reply);
		if (last[2] == ' ')
			printf("%s\n", last + 3);
		return ADMIN_EXIT_OK;
	}
	if (strncmp(last, "ERR", 3) == 0) {
		fprintf(stderr, "droverctl: %s failed: %s\n", cmd->name, last[3] ? last + 4 : "unknown error");
		return ADMIN_EXIT_FAILED;
	}
	fprintf(stderr, "droverctl: %s: drover closed the connection without an answer%s\n", cmd->name,
		cmd->may_end_unanswered ? " (it may be restarting)" : "");
	return ADMIN_EXIT_FAILED;
}

int main(int argc, char *argv[])
{
	proto_register(protocols);
	tls_register();
	struct droverctl_args a = { .wait_s = 120 };
	int rc = droverctl_parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	char path[108];
	droverctl_socket_path(&a, path, sizeof(path));
	if (!path[0]) {
		fprintf(stderr, "droverctl: the control socket is disabled (control_socket = off)\n");
		return ADMIN_EXIT_UNREACHABLE;
	}
	int fd = admin_connect(path);
	if (fd < 0) {
		fprintf(stderr, "droverctl: cannot reach drover at %s: %s\n", path, strerror(-fd));
		return ADMIN_EXIT_UNREACHABLE;
	}
	char line[ADMIN_LINE_MAX];
	snprintf(line, sizeof(line), "%s\n", a.cmd->name);
	if (send(fd, line, strlen(line), MSG_NOSIGNAL) < 0) {
		fprintf(stderr, "droverctl: cannot send to %s: %s\n", path, strerror(errno));
		close(fd);
		return ADMIN_EXIT_UNREACHABLE;
	}
	static char reply[65536];
	ssize_t len = droverctl_read_reply(fd, a.wait_s, reply, sizeof(reply));
	close(fd);
	if (len < 0) {
		fprintf(stderr, "droverctl: no answer from drover within %lds\n", a.wait_s);
		return ADMIN_EXIT_FAILED;
	}
	return droverctl_report(a.cmd, reply, (size_t)len);
}
