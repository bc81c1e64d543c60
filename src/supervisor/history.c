/* history: see history.h. */
#include "supervisor/history.h"

#include <stdio.h>
#include <string.h>

void history_push(struct history *h, int64_t at, const char *text)
{
	size_t keep = h->n < HISTORY_MAX ? h->n : HISTORY_MAX - 1;
	memmove(&h->e[1], &h->e[0], keep * sizeof(h->e[0]));
	h->n = keep + 1;
	h->e[0].at = at;
	snprintf(h->e[0].text, sizeof(h->e[0].text), "%s", text);
	for (char *p = h->e[0].text; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' '; /* one status line per entry (a config with several errors) */
}
