/* fuzz_path: libFuzzer target for the request-path normaliser
 * (http_path_normalize). The input is a raw request path as it would
 * appear in a request-target (the seeds in fuzz/corpus-path are paths a
 * client or an attacker would send). For every input that normalises, it
 * checks what the file code relies on: the result starts with '/', has no
 * empty, "." or ".." segment (so nothing above the root can be named), no
 * NUL, control byte or backslash, fits its buffer; normalising it again
 * (percent-encoded, as a Location or link carries it) gives the same path;
 * a smaller buffer either gives the same path or -ENAMETOOLONG, never
 * another path; and a buffer as large as the input is always enough. Any
 * broken invariant aborts. The input is copied into a buffer of exactly
 * its length, so ASan sees any read past it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "proto/http/path.h"

#define FUZZ_OUT 4096

/* The segments of a normalised path are all real names. */
static void fuzz_check_normal(const char *out, size_t cap)
{
	size_t len = strlen(out);

	FUZZ_CHECK(len < cap && len >= 1 && out[0] == '/');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)out[i];
		FUZZ_CHECK(c >= 0x20 && c != 0x7f && c != '\\');
	}
	/* Between two '/' (or '/' and the end): never "", ".", "..", except
	 * the single trailing '/' of a directory. */
	const char *p = out + 1;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		FUZZ_CHECK(n > 0);
		FUZZ_CHECK(!(n == 1 && p[0] == '.'));
		FUZZ_CHECK(!(n == 2 && p[0] == '.' && p[1] == '.'));
		if (!e)
			break;
		p = e + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[FUZZ_OUT], again[FUZZ_OUT], small[FUZZ_OUT], enc[FUZZ_OUT * 3 + 1];
	char *in = malloc(size ? size : 1);

	FUZZ_CHECK(in != NULL);
	memcpy(in, data, size);
	int r = http_path_normalize(in, size, out, sizeof(out));
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENAMETOOLONG);
	/* Decoding never lengthens: a buffer of the input's size and a byte
	 * for the trailing '/' and the NUL is always enough. */
	FUZZ_CHECK(r != -ENAMETOOLONG || size + 2 > sizeof(out));
	if (r == 0) {
		fuzz_check_normal(out, sizeof(out));
		FUZZ_CHECK(http_path_has_dotfile(out) == (strstr(out, "/.") != NULL));

		/* Idempotent through its own encoding. */
		if (http_path_encode(out, enc, sizeof(enc))) {
			int r2 = http_path_normalize(enc, strlen(enc), again, sizeof(again));
			FUZZ_CHECK(r2 == 0 && strcmp(again, out) == 0);
		}

		/* A smaller buffer: the same answer, or too long. */
		size_t cap = 1 + (size ? data[0] : 0) % (strlen(out) + 2);
		int r3 = http_path_normalize(in, size, small, cap);
		FUZZ_CHECK(r3 == 0 || r3 == -ENAMETOOLONG);
		if (r3 == 0)
			FUZZ_CHECK(strcmp(small, out) == 0);
	}
	free(in);
	return 0;
}
