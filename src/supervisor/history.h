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
	char last[HISTORY_TEXT_MAX]; /* the last result as it was answered, "" if none */
};

/* Add a result that happened at (the oldest one goes once HISTORY_MAX are
 * kept); it is the last result too. Line breaks in the entry become spaces
 * (one status line each). */
void history_push(struct history *h, int64_t at, const char *text);
/* Add a result that happens now, from a printf format. */
void history_record(struct history *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last result, without an entry (a first start that failed). */
void history_set_last(struct history *h, const char *text);

#endif
