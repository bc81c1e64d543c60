/* fuzz_config: libFuzzer target for config_load. The input is the bytes of
 * a configuration file (the seeds in fuzz/corpus_config are real ones, good
 * and broken). It is loaded twice, with a roomy and with a tiny message
 * buffer, and the two loads must agree. Invariants, any broken one aborts:
 * success gives a config and no message, failure gives no config and a
 * NUL-terminated message whose every line starts with the file's name; a
 * loaded config has at least one listener, each with a valid name, a
 * registered protocol and an address that is set or empty by kind; the
 * defaults hold where nothing else could set them. The protocols are the
 * real table's (proto_register), so their sections and listener keys are
 * the real ones too. ASan catches the rest (and leaks: every config is
 * freed). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/config.h"
#include "fuzz_check.h"
#include "proto/echo.h"
#include "proto/http/config.h"
#include "proto/protocols.h"
#include "worker/proto.h"
#include "worker/tls.h"

static int fuzz_fd = -1;
static char fuzz_path[64];
static char fuzz_err[1 << 16];

/* The input as a file config_load can open by name: a memfd under /proc. */
static void fuzz_file(const uint8_t *data, size_t size)
{
	if (fuzz_fd < 0) {
		fuzz_fd = memfd_create("fuzz_config.ini", MFD_CLOEXEC);
		FUZZ_CHECK(fuzz_fd >= 0);
		snprintf(fuzz_path, sizeof(fuzz_path), "/proc/self/fd/%d", fuzz_fd);
		proto_register(protocols);
		tls_register();
	}
	FUZZ_CHECK(ftruncate(fuzz_fd, 0) == 0);
	size_t done = 0;
	while (done < size) {
		ssize_t n = pwrite(fuzz_fd, data + done, size - done, (off_t)done);
		FUZZ_CHECK(n > 0);
		done += (size_t)n;
	}
}

static void fuzz_check_messages(const char *err, size_t cap)
{
	size_t len = strnlen(err, cap);
	FUZZ_CHECK(len < cap);
	size_t plen = strlen(fuzz_path);
	for (const char *line = err; *line;) {
		FUZZ_CHECK(strncmp(line, fuzz_path, plen) == 0 && line[plen] == ':');
		const char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
}

static void fuzz_check_config(const struct config *cfg)
{
	FUZZ_CHECK(cfg->n_listeners >= 1 && cfg->n_listeners <= CONFIG_MAX_LISTENERS);
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		size_t nlen = strnlen(l->name, sizeof(l->name));
		FUZZ_CHECK(nlen >= 1 && nlen <= CONFIG_NAME_MAX);
		FUZZ_CHECK(config_find_listener(cfg, l->name) == l);
		FUZZ_CHECK(proto_find(l->protocol) != NULL);
		const struct http_listener_config *hl = http_listener_cfg(l);
		FUZZ_CHECK(hl && (!hl->status || strcmp(l->protocol, "http") == 0));
		FUZZ_CHECK(!hl->redirect_https || strcmp(l->protocol, "http") == 0);
		FUZZ_CHECK(hl->https_port >= 1);
		FUZZ_CHECK(l->address.kind == ADDR_NONE ? l->address.text[0] == '\0'
							 : l->address.sa_len > 0 && l->address.text[0]);
		FUZZ_CHECK(l->backlog >= 1 && l->backlog <= 65535);
		FUZZ_CHECK(l->mode <= 0777);
	}
	const struct config_server *s = &cfg->server;
	FUZZ_CHECK(s->workers >= 1 && s->workers <= CONFIG_WORKERS_MAX);
	FUZZ_CHECK(s->shutdown_timeout_ms <= CONFIG_DURATION_MAX_MS);
	FUZZ_CHECK(s->max_connections >= 1);
	const struct echo_config *e = echo_cfg(cfg);
	FUZZ_CHECK(e && e->buffer_size >= 1024 && e->idle_timeout_ms >= 1);
	const struct http_config *h = http_cfg(cfg);
	FUZZ_CHECK(h);
	FUZZ_CHECK(h->root && h->root[0] == '/');
	FUZZ_CHECK(h->index && !strchr(h->index, '/'));
	FUZZ_CHECK(h->default_type && strchr(h->default_type, '/'));
	FUZZ_CHECK(h->health_path && (h->health_path[0] == '\0' || h->health_path[0] == '/'));
	FUZZ_CHECK(h->status_path && h->status_path[0] == '/');
	FUZZ_CHECK(strcmp(h->health_path, h->status_path) != 0);
	FUZZ_CHECK(!strpbrk(h->default_type, "\r\n"));
	/* The HSTS line goes into responses as it is: one whole field line. */
	FUZZ_CHECK((h->hsts_s == HTTP_HSTS_OFF) == (h->hsts_line == NULL));
	FUZZ_CHECK(h->hsts_s == HTTP_HSTS_OFF || h->hsts_s <= HTTP_HSTS_MAX_S);
	FUZZ_CHECK(!h->hsts_line || (h->hsts_line_len == strlen(h->hsts_line) &&
				     strpbrk(h->hsts_line, "\r\n") == h->hsts_line + h->hsts_line_len - 2));
	FUZZ_CHECK(h->access_log_format == HTTP_LOG_COMBINED || h->access_log_format == HTTP_LOG_EXTENDED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_file(data, size);

	struct config *cfg = NULL;
	int r = config_load(fuzz_path, &cfg, fuzz_err, sizeof(fuzz_err));
	fuzz_check_messages(fuzz_err, sizeof(fuzz_err));
	if (r == 0) {
		FUZZ_CHECK(cfg != NULL && fuzz_err[0] == '\0');
		fuzz_check_config(cfg);
	} else {
		FUZZ_CHECK(r < 0 && cfg == NULL && fuzz_err[0] != '\0');
	}

	/* A tiny buffer: the same verdict, and the message cut safely. */
	char small[24];
	memset(small, 'x', sizeof(small));
	struct config *again = NULL;
	int r2 = config_load(fuzz_path, &again, small, sizeof(small));
	FUZZ_CHECK(r2 == r && (again != NULL) == (cfg != NULL));
	FUZZ_CHECK(strnlen(small, sizeof(small)) < sizeof(small));
	if (r < 0)
		FUZZ_CHECK(strncmp(small, fuzz_err, strlen(small)) == 0);
	config_free(cfg);
	config_free(again);
	return 0;
}
