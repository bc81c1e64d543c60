/* adopt: see adopt.h. */
#include "supervisor/adopt.h"

#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "core/scoreboard.h"
#include "supervisor/handover.h"

int adopt_state(const char *value, struct handover *st, struct scoreboard **sb, bool *own_board)
{
	int r = handover_decode(value, st);
	if (r < 0) {
		log_error("cannot parse %s from the previous image", HANDOVER_ENV);
		return r;
	}
	handover_set_fds(st, HANDOVER_FDS_CLOEXEC);
	*own_board = false;
	r = scoreboard_attach(st->scoreboard_fd, sb);
	if (r < 0) {
		/* Another layout (an older or newer build): serve on with a fresh
		 * board; the adopted workers go unwatched until they are drained. */
		log_errno(LOG_WARNING, r, "cannot attach the previous scoreboard, starting a new one");
		close(st->scoreboard_fd);
		r = scoreboard_create(sb, &st->scoreboard_fd);
		if (r < 0)
			return log_errno(LOG_ERR, r, "cannot create the scoreboard");
		*own_board = true;
	}
	(*sb)->hdr.supervisor_pid = getpid();
	return 0;
}

size_t adopt_history(uint32_t generation, struct history_entry *out, size_t max)
{
	const char *v = getenv(HANDOVER_HISTORY_ENV);
	size_t n = v ? handover_history_decode(v, generation, out, max) : 0;
	unsetenv(HANDOVER_HISTORY_ENV);
	return n;
}
