/*
 * bench/tls_client.c: new TLS connections per second, for bench/run.sh's
 * tls_full and tls_resumed cases (wrk keeps its connections, and h2load
 * cannot resume a session). bench/run.sh compiles it with -lssl -lcrypto; it
 * talks to 127.0.0.1 only and every wait in it is bounded in time.
 *
 *   tls_client full|resumed PORT PATH SECONDS PROCS [MAX]
 *	PROCS processes (forked), each opening one TLS connection after the
 *	other for SECONDS seconds (or until it has made MAX requests): connect,
 *	handshake, "GET PATH" with "Connection: close", read the whole answer
 *	(status 200 and Content-Length bytes of body) and the server's close,
 *	then close. "full" offers no session, so every handshake is a full one;
 *	"resumed" first makes one full handshake and keeps its session (the
 *	ticket the server sent), then offers that same session on every
 *	connection and counts how many were resumed (SSL_session_reused).
 *	Prints one line:
 *	  requests N failed F resumed R seconds S rps X version V cipher C group G
 *	N successful requests (answers read whole), F failures (connect,
 *	handshake, short or non-200 answers), R of the N that resumed, S the
 *	measured time (the mean of the processes' loops), X = N / S; V, C and G
 *	as the first connection of the first process negotiated them. The
 *	server may close after the answer with or without close_notify
 *	(SSL_OP_IGNORE_UNEXPECTED_EOF).
 *
 * The server's certificate is not verified: every server gets the same
 * client work, and the client's CPU is the scarce one on a 2-CPU machine.
 * TLS 1.3 only, the suite of TLS_CLIENT_SUITES (default
 * TLS_AES_128_GCM_SHA256) and the groups of TLS_CLIENT_GROUPS (OpenSSL's
 * default when unset).
 *
 * Exit status 0 when it measured, 1 on a usage or setup error, 2 when no
 * request succeeded.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define IO_TIMEOUT_S	5	/* any one connect, read or write */
#define MAX_PROCS	64
#define HEAD_MAX	4096

struct tally {
	long ok, failed, resumed;
	double took;	/* seconds of the measured loop */
	char version[16], cipher[48], group[32];
};

static int port;
static const char *path;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_tcp(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	int one = 1, fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read the answer: status 200, Content-Length bytes of body, then the
 * server's close (close_notify or EOF). 0 when all of it came. With keep,
 * the session is kept as soon as the body is whole: the tickets came before
 * it, and a close without close_notify would mark it not resumable. */
static int read_answer(SSL *ssl, SSL_SESSION **keep)
{
	char buf[16384], head[HEAD_MAX + 1];
	size_t hlen = 0;
	long long left = -1;
	int n;

	for (;;) {
		n = SSL_read(ssl, buf, sizeof(buf));
		if (n <= 0)
			return left == 0 ? 0 : -1;	/* the close after the body */
		if (left == 0)
			return -1;	/* bytes after the body */
		if (left < 0) {
			size_t take = (size_t)n < HEAD_MAX - hlen ? (size_t)n : HEAD_MAX - hlen;
			char *end, *cl;

			memcpy(head + hlen, buf, take);
			hlen += take;
			head[hlen] = '\0';
			end = strstr(head, "\r\n\r\n");
			if (!end) {
				if (hlen == HEAD_MAX)
					return -1;
				continue;
			}
			if (strncmp(head, "HTTP/1.1 200 ", 13) && strncmp(head, "HTTP/1.0 200 ", 13))
				return -1;
			cl = strcasestr(head, "\r\ncontent-length:");
			if (!cl || cl > end)
				return -1;
			left = strtoll(cl + 17, NULL, 10);
			/* the body bytes of this read: what came after the head */
			left -= n - (long)((size_t)(end + 4 - head) - (hlen - take));
			if (left < 0)
				return -1;
		} else {
			left -= n;
			if (left < 0)
				return -1;
		}
		if (left == 0 && keep && !*keep)
			*keep = SSL_get1_session(ssl);
	}
}

/* One connection, one request. 0 on success; *reused tells a resumption. */
static int one_request(SSL_CTX *ctx, SSL_SESSION *sess, SSL_SESSION **keep,
		       struct tally *t, int *reused)
{
	static char req[512];
	static int req_len;
	SSL *ssl;
	int fd, rc = -1;

	if (!req_len)
		req_len = snprintf(req, sizeof(req),
				   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
				   path, port);
	fd = connect_tcp();
	if (fd < 0)
		return -1;
	ssl = SSL_new(ctx);
	if (!ssl) {
		close(fd);
		return -1;
	}
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	if (sess)
		SSL_set_session(ssl, sess);
	if (SSL_connect(ssl) == 1 && SSL_write(ssl, req, req_len) == req_len &&
	    read_answer(ssl, keep) == 0) {
		rc = 0;
		*reused = SSL_session_reused(ssl);
		if (t && !t->version[0]) {
			int nid = SSL_get_negotiated_group(ssl);
			const char *g = nid > 0 ? OBJ_nid2sn(nid & ~TLSEXT_nid_unknown) : "?";

			snprintf(t->version, sizeof(t->version), "%s", SSL_get_version(ssl));
			snprintf(t->cipher, sizeof(t->cipher), "%s", SSL_get_cipher_name(ssl));
			snprintf(t->group, sizeof(t->group), "%s", g ? g : "?");
		}
	}
	/* No close_notify of ours (the server closed first), but marked as shut
	 * down: SSL_free would otherwise mark the session not resumable, and it
	 * may be the one every connection of this process offers. */
	SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return rc;
}

static void child(int resumed, double seconds, long max, int out)
{
	struct tally t = { 0 };
	SSL_SESSION *sess = NULL;
	const char *suites = getenv("TLS_CLIENT_SUITES");
	const char *groups = getenv("TLS_CLIENT_GROUPS");
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	double end;
	int reused = 0;

	alarm((unsigned)seconds + 30);	/* a hard stop, whatever happens */
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, suites && *suites ? suites : "TLS_AES_128_GCM_SHA256") ||
	    (groups && *groups && !SSL_CTX_set1_groups_list(ctx, groups))) {
		fprintf(stderr, "tls_client: cannot set up the TLS context\n");
		_exit(1);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* a close without close_notify after a whole answer is not an error:
	 * as a fatal error it would mark the offered session not resumable */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (resumed) {
		/* the session to resume: a first, unmeasured connection */
		for (int i = 0; i < 3 && !sess; i++)
			if (one_request(ctx, NULL, &sess, NULL, &reused) < 0 || !sess)
				usleep(100000);
		if (!sess || !SSL_SESSION_is_resumable(sess)) {
			fprintf(stderr, "tls_client: the first connection brought no resumable session\n");
			_exit(1);
		}
	}
	t.took = now_s();
	end = t.took + seconds;
	while (now_s() < end && t.ok + t.failed < max) {
		reused = 0;
		if (one_request(ctx, sess, NULL, &t, &reused) == 0) {
			t.ok++;
			t.resumed += reused;
		} else {
			t.failed++;
		}
	}
	t.took = now_s() - t.took;
	if (write(out, &t, sizeof(t)) != sizeof(t))
		_exit(1);
	_exit(0);
}

int main(int argc, char **argv)
{
	struct tally sum = { 0 }, t;
	int resumed, procs, pipes[MAX_PROCS], got = 0;
	pid_t pids[MAX_PROCS];
	double seconds, took = 0;
	long max = 1000000000L;

	if (argc < 6 || argc > 7 || (strcmp(argv[1], "full") && strcmp(argv[1], "resumed"))) {
		fprintf(stderr, "usage: tls_client full|resumed PORT PATH SECONDS PROCS [MAX]\n");
		return 1;
	}
	resumed = !strcmp(argv[1], "resumed");
	port = atoi(argv[2]);
	path = argv[3];
	seconds = atof(argv[4]);
	procs = atoi(argv[5]);
	if (argc == 7)
		max = atol(argv[6]);
	if (port < 1 || port > 65535 || path[0] != '/' || strlen(path) > 400 ||
	    seconds <= 0 || seconds > 600 || procs < 1 || procs > MAX_PROCS || max < 1) {
		fprintf(stderr, "tls_client: bad arguments\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < procs; i++) {
		int p[2];

		if (pipe(p) < 0) {
			perror("tls_client: pipe");
			return 1;
		}
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("tls_client: fork");
			return 1;
		}
		if (pids[i] == 0) {
			close(p[0]);
			child(resumed, seconds, (max + procs - 1) / procs, p[1]);
		}
		close(p[1]);
		pipes[i] = p[0];
	}
	for (int i = 0; i < procs; i++) {
		if (read(pipes[i], &t, sizeof(t)) == sizeof(t)) {
			got++;
			sum.ok += t.ok;
			sum.failed += t.failed;
			sum.resumed += t.resumed;
			took += t.took;
			if (!sum.version[0] && t.version[0]) {
				memcpy(sum.version, t.version, sizeof(t.version));
				memcpy(sum.cipher, t.cipher, sizeof(t.cipher));
				memcpy(sum.group, t.group, sizeof(t.group));
			}
		}
		close(pipes[i]);
		waitpid(pids[i], NULL, 0);
	}
	if (got < procs)
		fprintf(stderr, "tls_client: %d of %d processes did not report\n", procs - got, procs);
	if (!got)
		return 2;
	/* the measured time: the mean of the processes' own loops (each stops
	 * at its deadline, or earlier on MAX), so the resumed case's first
	 * connections and the forks are not in it */
	took /= got;
	printf("requests %ld failed %ld resumed %ld seconds %.3f rps %.1f version %s cipher %s group %s\n",
	       sum.ok, sum.failed, sum.resumed, took, sum.ok / took,
	       sum.version[0] ? sum.version : "-", sum.cipher[0] ? sum.cipher : "-",
	       sum.group[0] ? sum.group : "-");
	return sum.ok > 0 ? 0 : 2;
}
