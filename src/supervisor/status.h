/* status: the supervisor's state in words, the STATUS= line systemd shows
 * and the report "droverctl status" answers. It only formats what the
 * coordinator shows it, and changes nothing. */
#ifndef DROVER_STATUS_H
#define DROVER_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct gen_book;
struct history;
struct pool;

struct status_view {
	const struct config *cfg;
	const struct gen_book *gen;
	const struct pool *pool;
	const struct history *history;
	const char *state;         /* "serving", "reloading", "upgrading" or "stopping" */
	const char *last_result;   /* of the last reload or upgrade, "" if none */
	const char *upgrade;       /* what an upgrade in progress is doing, "" if none */
	bool stopping;
	bool failed;               /* the first generation could not start */
	uint64_t stop_deadline_ms;
	uint64_t started_ms;       /* when the service started (the scoreboard's) */
	int pid;
};

/* The STATUS= text at now. */
void status_line(const struct status_view *v, uint64_t now, char *out, size_t len);
/* The answer to droverctl status at now; malloc'd, NULL when out of memory. */
char *status_report(const struct status_view *v, uint64_t now);

#endif
