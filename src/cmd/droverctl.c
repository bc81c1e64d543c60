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

enum { ADMIN_EXIT_OK = 0, ADMIN_EXIT_FAILED = 1, ADMIN_EXIT_USAGE = 2, ADMIN_EXIT_UNREACHABLE = 3 };

static void droverctl_usage(FILE *out)
{
	fprintf(out,
		"Usage: droverctl [-s SOCKET] [-c FILE] [-w SECONDS] COMMAND\n"
		"\n"
		"Commands:\n"
		"  status       generation, workers (pid, state, connections, requests),\n"
		"               old generations draining, last reload result\n"
		"  reload       re-read the configuration; returns once the new generation\n"
		"               serves, or fails (exit 1) with the reason\n"
		"  upgrade      re-execute the installed drover binary in place\n"
		"  reopen-logs  reopen log files (after logrotate)\n"
		"  stop         graceful stop\n"
		"\n"
		"  -s, --socket PATH   control socket (default: from the config file)\n"
		"  -c, --config FILE   config file to read control_socket from (default %s)\n"
		"  -w, --wait SECONDS  give up waiting for an answer after this long (default 120)\n"
		"\n"
		"Exit status: 0 done, 1 command failed, 2 usage error, 3 drover not reachable.\n",
		CONFIG_DEFAULT_PATH);
}

int main(int argc, char *argv[])
{
	proto_register(protocols);
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "wait", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *socket_path = NULL;
	const char *config_path = NULL;
	long wait_s = 120;
	int c;
	while ((c = getopt_long(argc, argv, "s:c:w:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			socket_path = optarg;
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'w':
			wait_s = strtol(optarg, NULL, 10);
			if (wait_s <= 0) {
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
	const char *cmd = argv[optind];
	static const char *const known[] = { "status", "reload", "upgrade", "reopen-logs", "stop" };
	bool ok = false;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		ok |= strcmp(cmd, known[i]) == 0;
	if (!ok) {
		fprintf(stderr, "droverctl: unknown command '%s'\n", cmd);
		droverctl_usage(stderr);
		return ADMIN_EXIT_USAGE;
	}

	char path[108];
	if (socket_path) {
		snprintf(path, sizeof(path), "%s", socket_path);
	} else {
		/* The config says where the socket is; without a readable config
		 * use the default location. */
		const char *cp = config_path ? config_path : CONFIG_DEFAULT_PATH;
		char err[4096];
		struct config *cfg = NULL;
		if (config_load(cp, &cfg, err, sizeof(err)) == 0) {
			admin_socket_path(cfg->server.control_socket, path, sizeof(path));
			config_free(cfg);
		} else {
			/* A broken file must not stop "reload" from reaching drover:
			 * drover itself reports what is wrong with it. */
			if (config_path)
				fprintf(stderr, "droverctl: cannot read %s, using the default control socket\n", cp);
			admin_socket_path(NULL, path, sizeof(path));
		}
	}
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
	snprintf(line, sizeof(line), "%s\n", cmd);
	if (send(fd, line, strlen(line), MSG_NOSIGNAL) < 0) {
		fprintf(stderr, "droverctl: cannot send to %s: %s\n", path, strerror(errno));
		close(fd);
		return ADMIN_EXIT_UNREACHABLE;
	}
	/* Read until drover closes; the last line is "OK ..." or "ERR ...". */
	static char reply[65536];
	size_t len = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, (int)(wait_s * 1000));
		if (r == 0) {
			fprintf(stderr, "droverctl: no answer from drover within %lds\n", wait_s);
			close(fd);
			return ADMIN_EXIT_FAILED;
		}
		if (r < 0 && errno == EINTR)
			continue;
		ssize_t n = read(fd, reply + len, sizeof(reply) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (len += (size_t)n) == sizeof(reply) - 1)
			break;
	}
	close(fd);
	reply[len] = '\0';
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
		fprintf(stderr, "droverctl: %s failed: %s\n", cmd, last[3] ? last + 4 : "unknown error");
		return ADMIN_EXIT_FAILED;
	}
	fprintf(stderr, "droverctl: %s: drover closed the connection without an answer%s\n", cmd,
		strcmp(cmd, "stop") == 0 || strcmp(cmd, "upgrade") == 0 ? " (it may be restarting)" : "");
	return ADMIN_EXIT_FAILED;
}
