/* path: map a request path to a file under the root, safely: decode and
 * normalise it so nothing outside the root can be named, then open it with
 * the configured symlink policy (openat2 RESOLVE_BENEATH, or a walk that
 * follows no symlink), index files and the directory/301 rules.
 *
 * Runs on the per-request hot path: no allocation, bounded buffers, at most
 * a handful of syscalls per request. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH; autoconf defines it in the real build */
#endif
#include "proto/http/path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

/* The value of hex digit c, or -EINVAL. */
static int path_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -EINVAL;
}

/* Bytes a path may never contain once decoded: NUL and control bytes (they
 * end up in file names, logs and headers), '/' when it came from %2f (it
 * must not become a separator, RFC 3986 §2.2: encoded reserved characters
 * are data), and '\\' (a separator to other systems and a classic bypass). */
static bool path_byte_ok(unsigned char c)
{
	return c >= 0x20 && c != 0x7f && c != '\\';
}

/* Decode the raw segment at in[*i] (up to the next literal '/' or the
 * end) into seg (room bytes, one kept for the final NUL); *n = its length.
 * 0, -EINVAL (bad escape or byte), -ENAMETOOLONG. */
static int path_decode_segment(const char *in, size_t in_len, size_t *i, char *seg, size_t room,
			       size_t *n)
{
	size_t k = *i;

	*n = 0;
	while (k < in_len && in[k] != '/') {
		unsigned char c = (unsigned char)in[k];

		if (c == '%') {
			int hi, lo;

			if (in_len - k < 3)
				return -EINVAL; /* truncated escape */
			hi = path_hexval((unsigned char)in[k + 1]);
			lo = path_hexval((unsigned char)in[k + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (unsigned char)(hi << 4 | lo);
			if (c == '/')
				return -EINVAL;
			k += 3;
		} else {
			k++;
		}
		if (!path_byte_ok(c))
			return -EINVAL;
		/* Room for this byte and the final NUL. */
		if (*n + 1 >= room)
			return -ENAMETOOLONG;
		seg[(*n)++] = (char)c;
	}
	*i = k;
	return 0;
}

/* The output is built as "" (the root) or "/seg/seg": every segment is
 * appended as '/' + its decoded bytes, ".." truncates back to the previous
 * '/'. Decoding happens in place in out, so nothing is copied twice and a
 * segment that does not fit is detected while decoding. */
int http_path_normalize(const char *in, size_t in_len, char *out, size_t out_len)
{
	size_t pos = 0; /* length of the normalised path in out */
	size_t i;
	bool trailing = false;

	if (in_len == 0 || in[0] != '/')
		return -EINVAL; /* origin-form starts with '/' (RFC 9112 §3.2.1) */
	if (out_len < 2)
		return -ENAMETOOLONG;

	i = 1;
	for (;;) {
		size_t seg = pos + 1; /* where the decoded segment starts */
		size_t n = 0;

		/* Decode one raw segment (up to the next literal '/'). */
		int r = path_decode_segment(in, in_len, &i, out + seg, out_len - seg, &n);
		if (r < 0)
			return r;

		if (n == 0) {
			/* Empty segment: "//" collapses; a trailing '/' is kept. */
			trailing = true;
		} else if (n == 1 && out[seg] == '.') {
			trailing = true;
		} else if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
			/* Never above the root: refuse rather than clamp, a
			 * client asking for it is probing (RFC 3986 §5.2.4
			 * would clamp; we would rather say 400). */
			if (pos == 0)
				return -EINVAL;
			while (pos > 0 && out[pos - 1] != '/')
				pos--;
			pos--; /* drop the '/' that started the popped segment */
			trailing = true;
		} else {
			out[pos] = '/';
			pos = seg + n;
			trailing = false;
		}

		if (i >= in_len)
			break;
		i++; /* skip the literal '/' */
		if (i >= in_len) {
			trailing = true;
			break;
		}
	}

	if (pos == 0) {
		out[0] = '/';
		out[1] = '\0';
		return 0;
	}
	if (trailing) {
		if (pos + 2 > out_len)
			return -ENAMETOOLONG;
		out[pos++] = '/';
	}
	out[pos] = '\0';
	return 0;
}

bool http_path_has_dotfile(const char *path)
{
	const char *p = path;

	if (p[0] == '.')
		return true;
	while ((p = strchr(p, '/')) != NULL) {
		p++;
		if (*p == '.')
			return true;
	}
	return false;
}

bool http_path_encode(const char *in, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t p = 0;

	for (const unsigned char *s = (const unsigned char *)in; *s; s++) {
		bool keep = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			    (*s >= '0' && *s <= '9') || strchr("-._~!$&'()*+,;=:@/", *s);

		if (keep) {
			if (p + 1 >= cap)
				return false;
			out[p++] = (char)*s;
		} else {
			if (p + 3 >= cap)
				return false;
			out[p++] = '%';
			out[p++] = hex[*s >> 4];
			out[p++] = hex[*s & 15];
		}
	}
	if (cap == 0)
		return false;
	out[p] = '\0';
	return true;
}

/* ------------------------------------------------------------------- open */

/* Every open here: never a controlling tty, never inherited, and
 * O_NONBLOCK so that a FIFO (or a device that waits for a carrier) in the
 * root cannot block the worker in open(2) (nginx does the same). Regular
 * files and directories ignore O_NONBLOCK, so it need not be cleared
 * before read/sendfile. */
#define PATH_OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

/* Whether openat2(2) works here: 0 unknown, 1 yes, -1 no (before Linux 5.6,
 * or a seccomp policy that refuses it). Probed once per process. */
static int path_openat2_state;

static long path_openat2(int dirfd, const char *path, uint64_t flags)
{
	struct open_how how;

	memset(&how, 0, sizeof(how));
	how.flags = flags;
	/* BENEATH: no absolute path, ".." or symlink may take the lookup out
	 * of dirfd (EXDEV); NO_MAGICLINKS: /proc/self/fd/N style links are
	 * never followed (ELOOP). Checked atomically by the kernel, so no
	 * rename race can walk us out. */
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

static bool path_openat2_usable(void)
{
	if (path_openat2_state == 0) {
		long fd = path_openat2(AT_FDCWD, ".", O_PATH | O_CLOEXEC);

		/* Container runtimes' seccomp policies answer unknown syscalls
		 * with ENOSYS or EPERM; neither can be a real answer for
		 * O_PATH on ".". */
		if (fd >= 0) {
			close((int)fd);
			path_openat2_state = 1;
		} else if (errno == ENOSYS || errno == EPERM) {
			path_openat2_state = -1;
		} else {
			path_openat2_state = 1; /* e.g. cwd gone: openat2 itself works */
		}
	}
	return path_openat2_state > 0;
}

/* Without openat2: walk one component at a time with O_NOFOLLOW, so no
 * symlink is ever followed (stricter than RESOLVE_BENEATH, which allows
 * symlinks that stay inside; a symlink is simply not found). The path has
 * no "..", so the walk can only go down. */
static int path_open_walk(int root_fd, const char *rel, int flags)
{
	int dir = root_fd;
	const char *p = rel;

	for (;;) {
		const char *slash = strchr(p, '/');
		char comp[NAME_MAX + 1];
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		int fd;

		if (n > NAME_MAX) {
			fd = -ENAMETOOLONG;
		} else {
			memcpy(comp, p, n);
			comp[n] = '\0';
			if (slash == NULL)
				fd = openat(dir, comp, flags | O_NOFOLLOW);
			else
				fd = openat(dir, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				fd = -errno;
		}
		if (dir != root_fd)
			close(dir);
		if (fd < 0 || slash == NULL)
			return fd;
		dir = fd;
		p = slash + 1;
	}
}

/* Open rel (relative, no leading '/', "." for the root) under root_fd with
 * the configured symlink policy; fd or -errno. */
static int path_open_rel(int root_fd, const char *rel, int flags, bool follow_symlinks)
{
	int fd;

	if (follow_symlinks) {
		/* The operator allowed links to leave the root; the path itself
		 * still cannot (normalised, no ".."). */
		fd = openat(root_fd, rel, flags);
		return fd < 0 ? -errno : fd;
	}
	if (!path_openat2_usable())
		return path_open_walk(root_fd, rel, flags);
	for (int tries = 0;; tries++) {
		long r = path_openat2(root_fd, rel, (uint64_t)flags);

		if (r >= 0)
			return (int)r;
		if (errno == ENOSYS) {
			/* Refused after the probe (a seccomp filter installed
			 * later): walk from now on. */
			path_openat2_state = -1;
			return path_open_walk(root_fd, rel, flags);
		}
		/* EAGAIN: a concurrent rename made the kernel unsure a ".."
		 * in a symlink stayed beneath; openat2(2) says retry. */
		if (errno != EAGAIN || tries >= 3)
			return -errno;
	}
}

/* Map an open(2) failure to a status. Leaving the root (EXDEV from
 * RESOLVE_BENEATH) and symlink loops (ELOOP, also O_NOFOLLOW) answer 404,
 * like a missing file, so that probing cannot tell what lies outside. */
/* The answer for an open(2) failure (or our own -errno). Leaving the root
 * (EXDEV from RESOLVE_BENEATH) and symlink loops (ELOOP, also O_NOFOLLOW)
 * answer 404, like a missing file, so that probing cannot tell what lies
 * outside. */
static int path_open_status(int err)
{
	switch (err) {
	case -EISDIR: /* a directory named without its '/' */
		return 301;
	case -EINVAL:
		return 400;
	case -ENOENT:
	case -ENOTDIR:
	case -ELOOP:
	case -EXDEV:
	case -ENAMETOOLONG:
		return 404;
	case -EACCES:
	case -EPERM:
	case -ENXIO:  /* a unix socket in the root */
	case -ENODEV: /* a device node without a driver */
		return 403;
	default:
		return 500;
	}
}

static void path_set_name(struct http_path_file *f, const char *path)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n >= sizeof(f->type_name))
		n = sizeof(f->type_name) - 1;
	memcpy(f->type_name, base, n);
	f->type_name[n] = '\0';
}

static int path_fail(struct http_path_file *f, int fd, int err)
{
	if (fd >= 0)
		close(fd);
	f->fd = -1;
	f->kind = HTTP_PATH_FILE;
	f->status = path_open_status(err);
	return err;
}

static int path_found(struct http_path_file *f, int fd, enum http_path_kind kind)
{
	f->fd = fd;
	f->kind = kind;
	f->status = 200;
	return 0;
}

/* Whether a normalised path has a ".." component: http_path_normalize()
 * never produces one, but with follow_symlinks a plain openat(2) would
 * honour it, so check again rather than trust the caller. */
static bool path_has_dotdot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	return false;
}

/* The root-relative form of a normalised path into rel ("." for the root),
 * without leading or trailing '/'; *want_dir says whether it ended in '/'.
 * Length, or -ENAMETOOLONG. */
static int path_relative(const char *norm_path, char *rel, size_t cap, bool *want_dir)
{
	size_t len = strlen(norm_path);

	*want_dir = norm_path[len - 1] == '/';
	if (len == 1) {
		memcpy(rel, ".", 2);
		return 1;
	}
	/* Whether a directory was asked for is decided after fstat. */
	len -= *want_dir ? 2 : 1;
	if (len >= cap)
		return -ENAMETOOLONG;
	memcpy(rel, norm_path + 1, len);
	rel[len] = '\0';
	return (int)len;
}

/* The index file of directory rel (whose fd is dir_fd). 0 with f filled
 * (dir_fd closed), -ENOENT when there is none to serve, or the -errno that
 * must answer the request (an index that exists but cannot be read is an
 * error, not a reason to list the directory instead). */
static int path_open_index(int root_fd, const char *rel, int dir_fd, const struct http_path_options *o,
			   struct http_path_file *f)
{
	char path[PATH_MAX];
	struct stat st;
	int n, ifd;

	/* Open the index from the root, not from the directory fd, so that
	 * RESOLVE_BENEATH still means "beneath the root": an index symlink to
	 * "../shared/index.html" inside the root is fine. */
	if (strcmp(rel, ".") == 0)
		n = snprintf(path, sizeof(path), "%s", o->index);
	else
		n = snprintf(path, sizeof(path), "%s/%s", rel, o->index);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	ifd = path_open_rel(root_fd, path, PATH_OPEN_FLAGS, o->follow_symlinks);
	if (ifd >= 0) {
		if (fstat(ifd, &st) == 0 && S_ISREG(st.st_mode)) {
			close(dir_fd);
			f->st = st;
			path_set_name(f, path);
			return path_found(f, ifd, HTTP_PATH_FILE);
		}
		close(ifd); /* "index.html" that is a directory or FIFO: no index */
		return -ENOENT;
	}
	if (ifd == -ENOENT || ifd == -ENOTDIR || ifd == -ELOOP || ifd == -EXDEV)
		return -ENOENT;
	return ifd;
}

int http_path_open(int root_fd, const char *norm_path, const struct http_path_options *o,
		   struct http_path_file *f)
{
	char rel[PATH_MAX];
	bool want_dir, readable = true;
	int fd, r;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	if (norm_path[0] != '/' || path_has_dotdot(norm_path))
		return path_fail(f, -1, -EINVAL);
	/* Dotfiles (.git, .env, .htpasswd) are where secrets live. */
	if (!o->dotfiles && http_path_has_dotfile(norm_path))
		return path_fail(f, -1, -ENOENT);
	r = path_relative(norm_path, rel, sizeof(rel), &want_dir);
	if (r < 0)
		return path_fail(f, -1, r);

	fd = path_open_rel(root_fd, rel, PATH_OPEN_FLAGS, o->follow_symlinks);
	if (fd == -EACCES) {
		/* A directory may be searchable (x) but not readable (r):
		 * its index can still be served, only a listing cannot. */
		fd = path_open_rel(root_fd, rel, O_PATH | O_DIRECTORY | O_CLOEXEC, o->follow_symlinks);
		if (fd < 0)
			return path_fail(f, -1, -EACCES);
		readable = false;
	}
	if (fd < 0)
		return path_fail(f, -1, fd);
	if (fstat(fd, &f->st) < 0)
		return path_fail(f, fd, -EIO);

	if (S_ISREG(f->st.st_mode)) {
		if (want_dir)
			return path_fail(f, fd, -ENOTDIR); /* "/file.txt/" names no directory */
		path_set_name(f, rel);
		return path_found(f, fd, HTTP_PATH_FILE);
	}
	if (!S_ISDIR(f->st.st_mode))
		return path_fail(f, fd, -EACCES); /* FIFO, socket, device: never served */

	/* A directory without its '/': relative links in its index would
	 * resolve against the parent, so redirect (what nginx and Apache do). */
	if (!want_dir)
		return path_fail(f, fd, -EISDIR);

	if (o->index != NULL && o->index[0] != '\0') {
		r = path_open_index(root_fd, rel, fd, o, f);
		if (r == 0)
			return 0;
		if (r != -ENOENT)
			return path_fail(f, fd, r);
	}

	/* No index: a listing if enabled, else 403 like nginx (the directory
	 * exists, we just do not show it). An O_PATH fd cannot be read. */
	if (o->autoindex && readable) {
		f->type_name[0] = '\0'; /* the listing is HTML we generate */
		return path_found(f, fd, HTTP_PATH_LISTING);
	}
	return path_fail(f, fd, -EACCES);
}
