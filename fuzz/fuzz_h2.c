/* fuzz_h2: libFuzzer target for the HTTP/2 input path: a frame stream into
 * a real connection (proto_http accepting over the in-memory transport of
 * the unit tests, a listener with http2 = yes, a real config and root).
 * Each input is a mode byte and the bytes the client sends after its
 * preface:
 *   bits 0-3  the bytes are delivered in reads of 1 + 61 * (bits) bytes;
 *   bit 4     the socket takes at most 1000 bytes per write phase, so
 *             responses block and resume;
 *   bit 5     the worker drains half-way (GOAWAY, PING);
 *   bit 6     the client's end of stream follows the bytes.
 * Invariants, any broken one aborts: what the server writes is a sequence
 * of whole frames (a partial last one only once the connection closed),
 * the first a SETTINGS frame on stream 0, none longer than 16384 bytes
 * (the default SETTINGS_MAX_FRAME_SIZE; drover never announces another).
 * ASan and UBSan catch the rest. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/loop.h"
#include "core/scoreboard.h"
#include "fuzz_check.h"
#include "proto/http/http.h"
#include "proto/protocols.h"
#include "worker/conn.h"
#include "worker/proto.h"
#include "../tests/unit/transport_mem.h"

static struct loop *fz_loop;
static struct config *fz_cfg;
static struct scoreboard_slot fz_slot;
static struct conn_set fz_set;
static bool fz_draining, fz_stopping;
static struct proto_env fz_env;
static struct worker_listener fz_web;
static struct proto_fileset fz_files;

static void fz_request_done(const struct proto_env *env)
{
	(void)env;
}

static void fz_write(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, text, len) == (ssize_t)len);
	close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char tmpl[] = "/tmp/drover-fuzz-h2.XXXXXX";
	char *dir = mkdtemp(tmpl);
	FUZZ_CHECK(dir);
	char path[512], text[1024];
	snprintf(path, sizeof(path), "%s/www", dir);
	FUZZ_CHECK(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/www/sub", dir);
	FUZZ_CHECK(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/www/index.html", dir);
	fz_write(path, "<html>index</html>\n", 19);
	static char big[100000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	snprintf(path, sizeof(path), "%s/www/big.txt", dir);
	fz_write(path, big, sizeof(big));
	snprintf(text, sizeof(text),
		 "[listener web]\naddress = 127.0.0.1:8080\nhttp2 = yes\nstatus = yes\n"
		 "[http]\nroot = %s/www\nautoindex = yes\nmime_types = /nonexistent\n"
		 "[http2]\nmax_concurrent_streams = 16\nmax_header_list_size = 4096\n",
		 dir);
	snprintf(path, sizeof(path), "%s/drover.ini", dir);
	fz_write(path, text, strlen(text));
	proto_register(protocols);
	char err[1024];
	FUZZ_CHECK(config_load(path, &fz_cfg, err, sizeof(err)) == 0);
	FUZZ_CHECK(loop_new(&fz_loop) == 0);
	conn_set_init(&fz_set, NULL, NULL, NULL, &fz_slot);
	fz_env = (struct proto_env){ .loop = fz_loop, .cfg = fz_cfg, .slot = &fz_slot, .conns = &fz_set,
				     .draining = &fz_draining, .stopping = &fz_stopping,
				     .request_done = fz_request_done, .files = &fz_files };
	fz_web = (struct worker_listener){ .fd = -1, .name = "web", .proto = &proto_http,
					   .transport = &transport_mem };
	FUZZ_CHECK(proto_http.init(&fz_env) == 0);
	return 0;
}

/* The server's output: whole frames, SETTINGS first, none over 16384. */
static void fz_check_frames(const struct tmem *m)
{
	const unsigned char *p = (const unsigned char *)m->out;
	size_t len = m->out_len, off = 0;
	bool first = true;
	while (len - off >= 9) {
		uint32_t flen = (uint32_t)p[off] << 16 | (uint32_t)p[off + 1] << 8 | p[off + 2];
		FUZZ_CHECK(flen <= 16384);
		if (first) {
			FUZZ_CHECK(p[off + 3] == 4 && (p[off + 5] | p[off + 6] | p[off + 7] | p[off + 8]) == 0);
			first = false;
		}
		if (len - off < 9 + flen)
			break;
		off += 9 + flen;
	}
	FUZZ_CHECK(off == len || m->closed);
}

static void fz_events(struct tmem *m, unsigned events)
{
	if (m->fd >= 0 && !m->closed)
		FUZZ_CHECK(loop_dispatch(fz_loop, m->fd, events) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned mode = data[0];
	data++;
	size--;
	size_t chunk = 1 + 61 * (mode & 15);
	struct tmem m;
	tmem_init(&m);
	if (mode & 16)
		m.room = 1000;
	fz_draining = false;
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000) };
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	FUZZ_CHECK(proto_http.reserve(&fz_env) == 0);
	FUZZ_CHECK(proto_http.accept(&fz_env, &fz_web, m.fd, (struct sockaddr *)&peer, sizeof(peer)) == 0);
	tmem_push(&m, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
	fz_events(&m, LOOP_READ);
	for (size_t off = 0; off < size && !m.closed; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		tmem_push(&m, data + off, n);
		fz_events(&m, LOOP_READ | LOOP_WRITE);
		if ((mode & 16) && m.room == 0)
			m.room = 1000;
		if ((mode & 32) && !fz_draining && off >= size / 2) {
			fz_draining = true;
			conn_set_drain_all(&fz_set);
		}
	}
	if (mode & 64) {
		m.in_eof = true;
		fz_events(&m, LOOP_READ);
	}
	/* Let every blocked response out. */
	m.room = TMEM_UNLIMITED;
	for (int i = 0; i < 64 && !m.closed; i++)
		fz_events(&m, LOOP_WRITE);
	fz_check_frames(&m);
	conn_set_close_all(&fz_set);
	tmem_free(&m);
	return 0;
}
