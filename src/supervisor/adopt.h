/* adopt: the new image's side of a binary upgrade. Right after the
 * execve(), it reads what the previous image handed over and takes its
 * fds and its scoreboard; the coordinator then gives each part its share
 * (workers to the pool, clients to admin, listeners to the listener set). */
#ifndef DROVER_ADOPT_H
#define DROVER_ADOPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct handover;
struct history_entry;
struct scoreboard;

/* Parse HANDOVER_ENV's value into st, take its fds (CLOEXEC again) and
 * attach its scoreboard, or create a fresh one when the layout differs (an
 * older or newer build: *own_board is then true, and the adopted workers'
 * slots are not ours to read). 0 or -errno, logged. */
int adopt_state(const char *value, struct handover *st, struct scoreboard **sb, bool *own_board);
/* The reload history handed over with generation, newest first, into out
 * (at most max); how many. Removes its variable from the environment. */
size_t adopt_history(uint32_t generation, struct history_entry *out, size_t max);

#endif
