/* ascii: locale-free ASCII case helpers for protocol tokens and file
 * extensions. tolower(3)/strncasecmp(3) follow the locale, and protocol
 * tokens must not (think of the Turkish dotless i). */
#ifndef DROVER_HTTP_ASCII_H
#define DROVER_HTTP_ASCII_H

#include <stdbool.h>
#include <stddef.h>

static inline char http_ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Whether the n bytes at a and b are equal ignoring ASCII case. */
static inline bool http_ascii_caseeq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (http_ascii_lower(a[i]) != http_ascii_lower(b[i]))
			return false;
	return true;
}

#endif
