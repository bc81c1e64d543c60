/* history: the results of the last reloads and binary upgrades, newest
 * first, as droverctl status lists them. Pure data; a binary upgrade
 * carries it to the new image (handover.c). */
#ifndef DROVER_HISTORY_H
#define DROVER_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#define HISTORY_MAX 8           /* results kept */
#define HISTORY_TEXT_MAX 512    /* one result: "ok: ..." or "failed: ..." */

struct history_entry {
	int64_t at;                     /* wall clock, seconds since the epoch */
	char text[HISTORY_TEXT_MAX];
};

struct history {
	struct history_entry e[HISTORY_MAX]; /* newest first */
	size_t n;
};

/* Add a result that happened at (the oldest one goes once HISTORY_MAX are
 * kept); line breaks in text become spaces (one status line each). */
void history_push(struct history *h, int64_t at, const char *text);

#endif
