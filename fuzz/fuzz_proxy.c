/* fuzz_proxy: libFuzzer target for the PROXY protocol header parser
 * (proxy_parse in worker/proxy.c). The input is the first bytes of a
 * connection (the seeds in fuzz/corpus-proxy are v1 and v2 headers, some
 * with a request behind them). Checked: a whole header is at most 107
 * bytes for v1 and ends with CRLF inside the input, at most 16 + 65535
 * for v2 with its addresses inside the input; its address is IPv4 or IPv6
 * unless it keeps the real peer; and the parser never changes its mind on
 * a prefix: every shorter prefix asks for more or gives the same header,
 * never "invalid" (so a header read in pieces is never refused half
 * way). The input is copied into a buffer of exactly its length, so ASan
 * sees any read past it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "worker/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct proxy_header h;
	int r = proxy_parse(buf, size, &h);
	FUZZ_CHECK(r == 1 || r == 0 || r == -EINVAL);
	if (r == 1) {
		FUZZ_CHECK(h.version == 1 || h.version == 2);
		if (h.version == 1) {
			FUZZ_CHECK(h.len <= PROXY_V1_MAX && h.len <= size);
			FUZZ_CHECK(h.len >= 8 && buf[h.len - 2] == '\r' && buf[h.len - 1] == '\n');
		} else {
			FUZZ_CHECK(h.len >= PROXY_V2_FIXED && h.len <= PROXY_V2_FIXED + 65535);
		}
		if (!h.local)
			FUZZ_CHECK((h.src.sa.sa_family == AF_INET && h.src_len == sizeof(h.src.in)) ||
				   (h.src.sa.sa_family == AF_INET6 && h.src_len == sizeof(h.src.in6)));
	}
	/* Prefixes: more, or (for a v2 header whose TLVs are missing) the
	 * same header; never invalid when the whole is not. */
	if (r >= 0) {
		for (size_t i = 0; i < size; i++) {
			struct proxy_header p;
			int q = proxy_parse(buf, i, &p);
			FUZZ_CHECK(q == 0 || (q == 1 && r == 1 && p.len == h.len));
		}
	}
	free(buf);
	return 0;
}
