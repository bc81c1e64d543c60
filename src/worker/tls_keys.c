/* tls_keys: the shared session ticket keys (see tls_keys.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "worker/tls_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define TLS_KEYS_MAGIC 0x44524b59u /* "DRKY" */
#define TLS_KEYS_VERSION 1

struct tls_keys_area {
	uint32_t magic;
	uint32_t version;
	uint32_t seq;        /* odd while the supervisor writes */
	uint32_t from_file;  /* the operator's keys: never rotated here */
	uint32_t n;          /* keys in force, 1..TLS_TICKET_KEYS_MAX; [0] encrypts */
	uint32_t reserved;
	uint64_t rotated_ms; /* CLOCK_MONOTONIC of the last rotation (or set) */
	struct tls_ticket_key keys[TLS_TICKET_KEYS_MAX];
};

static struct tls_keys_area *tls_area;
static int tls_area_fd = -1;

static int tls_keys_map(int fd, bool fresh)
{
	if (fresh && ftruncate(fd, sizeof(struct tls_keys_area)) < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((size_t)st.st_size < sizeof(struct tls_keys_area))
		return -EPROTO;
	void *p = mmap(NULL, sizeof(struct tls_keys_area), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	struct tls_keys_area *a = p;
	if (!fresh && (a->magic != TLS_KEYS_MAGIC || a->version != TLS_KEYS_VERSION)) {
		munmap(p, sizeof(*a));
		return -EPROTO;
	}
	tls_area = a;
	tls_area_fd = fd;
	return 0;
}

/* Writers: the supervisor alone, between these two. */
static void tls_write_begin(void)
{
	__atomic_store_n(&tls_area->seq, tls_area->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void tls_write_end(void)
{
	__atomic_store_n(&tls_area->seq, tls_area->seq + 1, __ATOMIC_RELEASE);
}

static bool tls_random_key(struct tls_ticket_key *k)
{
	return RAND_bytes((unsigned char *)k, sizeof(*k)) == 1;
}

int tls_keys_create(int *fd)
{
	int f = memfd_create("drover-ticket-keys", MFD_CLOEXEC);
	if (f < 0)
		return -errno;
	int r = tls_keys_map(f, true);
	if (r < 0) {
		close(f);
		return r;
	}
	struct tls_keys_area *a = tls_area;
	a->magic = TLS_KEYS_MAGIC;
	a->version = TLS_KEYS_VERSION;
	a->n = 1;
	if (!tls_random_key(&a->keys[0])) {
		munmap(a, sizeof(*a));
		tls_area = NULL;
		tls_area_fd = -1;
		close(f);
		return -EIO;
	}
	*fd = f;
	return 0;
}

int tls_keys_attach(int fd)
{
	int r = tls_keys_map(fd, false);
	if (r < 0)
		return r;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (tls_area->seq & 1) /* the previous image died inside a write */
		__atomic_store_n(&tls_area->seq, tls_area->seq + 1, __ATOMIC_RELEASE);
	return 0;
}

int tls_keys_fd(void) { return tls_area_fd; }

void tls_keys_set(const struct tls_ticket_key *keys, size_t n, uint64_t now_ms)
{
	struct tls_keys_area *a = tls_area;
	if (!a)
		return;
	if (n == 0 && !a->from_file)
		return; /* generated keys stay, and keep their schedule */
	struct tls_ticket_key fresh;
	if (n == 0) {
		if (!tls_random_key(&fresh))
			return; /* the file's keys stay in force until the next rotation */
		keys = &fresh;
		n = 1;
	}
	if (n > TLS_TICKET_KEYS_MAX)
		n = TLS_TICKET_KEYS_MAX;
	tls_write_begin();
	memcpy(a->keys, keys, n * sizeof(*keys));
	a->n = (uint32_t)n;
	a->from_file = keys != &fresh;
	a->rotated_ms = now_ms;
	tls_write_end();
	OPENSSL_cleanse(&fresh, sizeof(fresh));
}

bool tls_keys_tick(uint64_t now_ms, uint64_t period_ms)
{
	struct tls_keys_area *a = tls_area;
	if (!a || a->from_file || period_ms == 0)
		return false;
	if (a->rotated_ms == 0) {
		a->rotated_ms = now_ms; /* the first tick starts the schedule */
		return false;
	}
	if (now_ms - a->rotated_ms < period_ms)
		return false;
	struct tls_ticket_key k;
	if (!tls_random_key(&k))
		return false;
	tls_write_begin();
	a->keys[1] = a->keys[0];
	a->keys[0] = k;
	a->n = 2;
	a->rotated_ms = now_ms;
	tls_write_end();
	OPENSSL_cleanse(&k, sizeof(k));
	return true;
}

/* A consistent copy of the keys in force: how many. */
static uint32_t tls_keys_snapshot(struct tls_ticket_key *out)
{
	const struct tls_keys_area *a = tls_area;
	if (!a)
		return 0;
	/* Bounded: a supervisor killed inside a write leaves seq odd, and a
	 * worker then makes full handshakes rather than spin. */
	for (unsigned tries = 0; tries < 100000; tries++) {
		uint32_t s = __atomic_load_n(&a->seq, __ATOMIC_ACQUIRE);
		if (s & 1)
			continue;
		uint32_t n = __atomic_load_n(&a->n, __ATOMIC_RELAXED);
		if (n > TLS_TICKET_KEYS_MAX)
			n = TLS_TICKET_KEYS_MAX;
		memcpy(out, a->keys, n * sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&a->seq, __ATOMIC_RELAXED) == s)
			return n;
	}
	return 0;
}

bool tls_keys_current(struct tls_ticket_key *out)
{
	struct tls_ticket_key all[TLS_TICKET_KEYS_MAX];
	uint32_t n = tls_keys_snapshot(all);
	if (n > 0)
		*out = all[0];
	OPENSSL_cleanse(all, sizeof(all));
	return n > 0;
}

int tls_keys_find(const unsigned char name[16], struct tls_ticket_key *out)
{
	struct tls_ticket_key all[TLS_TICKET_KEYS_MAX];
	uint32_t n = tls_keys_snapshot(all);
	int found = 0;
	for (uint32_t i = 0; i < n && !found; i++) {
		if (CRYPTO_memcmp(all[i].name, name, sizeof(all[i].name)) == 0) {
			*out = all[i];
			found = i == 0 ? 1 : 2;
		}
	}
	OPENSSL_cleanse(all, sizeof(all));
	return found;
}

int tls_keys_read_file(const char *path, struct tls_ticket_key *keys, size_t *n, char *why, size_t why_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		snprintf(why, why_len, "cannot read %s: %s", path, strerror(e));
		return -e;
	}
	unsigned char buf[TLS_TICKET_KEY_LEN * TLS_TICKET_KEYS_MAX + 1];
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			snprintf(why, why_len, "cannot read %s: %s", path, strerror(e));
			return -e;
		}
		if (r == 0 || (len += (size_t)r) == sizeof(buf))
			break;
	}
	close(fd);
	int ret = 0;
	if (len == 0 || len % TLS_TICKET_KEY_LEN != 0 || len > TLS_TICKET_KEY_LEN * TLS_TICKET_KEYS_MAX) {
		snprintf(why, why_len,
			 "expected %s to hold 1 to %d keys of %d bytes each (as openssl rand 80 makes), got %zu%s bytes",
			 path, TLS_TICKET_KEYS_MAX, TLS_TICKET_KEY_LEN, len,
			 len == sizeof(buf) ? " or more" : "");
		ret = -EINVAL;
	} else {
		*n = len / TLS_TICKET_KEY_LEN;
		memcpy(keys, buf, len);
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return ret;
}
