/* ctl: the control socket's address and plumbing, shared by both ends. */
#include "supervisor/admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif

void admin_socket_path(const char *configured, char *out, size_t out_len)
{
	if (configured) {
		if (strcmp(configured, "off") == 0)
			snprintf(out, out_len, "%s", "");
		else
			snprintf(out, out_len, "%s", configured);
		return;
	}
	/* systemd's RuntimeDirectory= tells us where our runtime files go. */
	const char *rt = getenv("RUNTIME_DIRECTORY");
	if (rt && *rt) {
		/* It may list several directories separated by ':'; use the first. */
		size_t n = strcspn(rt, ":");
		snprintf(out, out_len, "%.*s/control.sock", (int)n, rt);
		return;
	}
	snprintf(out, out_len, "%s/drover/control.sock", RUNSTATEDIR);
}

static int ctl_address(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

int admin_connect(const char *path)
{
	struct sockaddr_un sun;
	int r = ctl_address(path, &sun);
	if (r < 0)
		return r;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int admin_listen(const char *path)
{
	struct sockaddr_un sun;
	int r = ctl_address(path, &sun);
	if (r < 0)
		return r;
	/* Create the parent directory if it is missing (the default one). */
	char dir[sizeof(sun.sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	int probe = admin_connect(path);
	if (probe >= 0) {
		close(probe);
		return -EADDRINUSE; /* another drover answers there */
	}
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	mode_t old = umask(0177); /* 0600: only our user may reload or stop us */
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || listen(fd, 16) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}
