/* scoreboard: a memfd mapping shared by the supervisor and its workers,
 * created before the first fork and handed over across a binary upgrade. */
#include "core/scoreboard.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"

#define SCOREBOARD_MAGIC 0x44525642u /* "DRVB" */
#define SCOREBOARD_VERSION 2u /* 2: slots aligned to cache lines */

/* The layout a binary upgrade hands over: a field added to a slot must fit
 * in its padding (old and new builds then agree on every offset). */
_Static_assert(sizeof(struct scoreboard_slot) == 2 * SCOREBOARD_SLOT_ALIGN, "scoreboard slot layout changed");

int scoreboard_create(struct scoreboard **sb, int *fd)
{
	int mfd = memfd_create("drover-scoreboard", MFD_CLOEXEC);
	if (mfd < 0)
		return -errno;
	if (ftruncate(mfd, sizeof(struct scoreboard)) < 0) {
		int e = -errno;
		close(mfd);
		return e;
	}
	struct scoreboard *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (s == MAP_FAILED) {
		int e = -errno;
		close(mfd);
		return e;
	}
	memset(s, 0, sizeof(*s));
	s->hdr.magic = SCOREBOARD_MAGIC;
	s->hdr.version = SCOREBOARD_VERSION;
	s->hdr.n_slots = SCOREBOARD_SLOTS;
	s->hdr.supervisor_pid = getpid();
	s->hdr.started_realtime_s = (uint64_t)time(NULL);
	s->hdr.started_ms = loop_clock_ms();
	*sb = s;
	*fd = mfd;
	return 0;
}

int scoreboard_attach(int fd, struct scoreboard **sb)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((size_t)st.st_size != sizeof(struct scoreboard))
		return -EPROTO;
	struct scoreboard *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED)
		return -errno;
	if (s->hdr.magic != SCOREBOARD_MAGIC || s->hdr.version != SCOREBOARD_VERSION ||
	    s->hdr.n_slots != SCOREBOARD_SLOTS) {
		munmap(s, sizeof(*s));
		return -EPROTO;
	}
	*sb = s;
	return 0;
}

int scoreboard_slot_alloc(struct scoreboard *sb, uint32_t generation, uint32_t index)
{
	for (int i = 0; i < SCOREBOARD_SLOTS; i++) {
		struct scoreboard_slot *s = &sb->slots[i];
		if (sb_load32(&s->state) != SLOT_FREE)
			continue;
		memset(s, 0, sizeof(*s));
		s->generation = generation;
		s->index = index;
		s->started_ms = loop_clock_ms();
		s->heartbeat_ms = s->started_ms;
		sb_store32(&s->state, SLOT_STARTING);
		return i;
	}
	return -ENOSPC;
}

void scoreboard_slot_free(struct scoreboard *sb, int slot)
{
	if (slot < 0 || slot >= SCOREBOARD_SLOTS)
		return;
	sb_store32(&sb->slots[slot].state, SLOT_FREE);
	__atomic_store_n(&sb->slots[slot].pid, 0, __ATOMIC_RELAXED);
}

const char *scoreboard_state_name(uint32_t state)
{
	switch (state) {
	case SLOT_FREE: return "free";
	case SLOT_STARTING: return "starting";
	case SLOT_READY: return "ready";
	case SLOT_DRAINING: return "draining";
	}
	return "unknown";
}
