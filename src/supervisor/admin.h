/* admin: the administrative control socket shared by the supervisor (server
 * side) and droverctl (client side). A client sends
 * one command line; the server answers with text lines and a last line
 * "OK ..." or "ERR ...", then closes. reload and upgrade answer only once
 * the new generation serves (or the attempt failed). The commands are
 * listed once, in admin_commands. */
#ifndef DROVER_ADMIN_H
#define DROVER_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "supervisor/event.h"

struct handover;

#define ADMIN_LINE_MAX 256
#define ADMIN_OUT_MAX (256 * 1024) /* answer bytes held for a client that reads slowly */

enum admin_cmd { ADMIN_STATUS, ADMIN_RELOAD, ADMIN_UPGRADE, ADMIN_REOPEN_LOGS, ADMIN_STOP };

struct admin_command {
	const char *name;
	enum admin_cmd id;
	const char *help;     /* droverctl's usage text (continuation lines indented) */
	bool may_end_unanswered; /* drover stops or re-executes: EOF can be the answer */
};

/* Every command, in the order droverctl lists them. */
extern const struct admin_command admin_commands[];
extern const size_t admin_n_commands;
/* The command called name, or NULL. */
const struct admin_command *admin_command_find(const char *name);

/* The control socket path for a config: [server] control_socket, else
 * $RUNTIME_DIRECTORY/control.sock, else RUNSTATEDIR/drover/control.sock.
 * Writes "" when the socket is disabled. */
void admin_socket_path(const char *configured, char *out, size_t out_len);
/* Connect to the control socket; fd or -errno. */
int admin_connect(const char *path);
/* Bind and listen on the control socket (mode 0600, a stale socket
 * replaced, parent directory created 0755); fd or -errno (-ENOTSOCK when
 * something else than a socket is there: it is left alone). */
int admin_listen(const char *path);

/* ------------------------------------------------------ the server side */

#define ADMIN_CARRIED_MAX 17 /* clients carried across a binary upgrade (1 + HANDOVER_MAX_CLIENTS) */

/* What a client waits for, answered when it is over. */
enum admin_wait { ADMIN_WAIT_NONE, ADMIN_WAIT_RELOAD, ADMIN_WAIT_UPGRADE };

struct admin_client {
	struct admin_client *next;
	struct admin *owner;
	int fd;
	char in[ADMIN_LINE_MAX];
	size_t in_len;
	enum admin_wait waiting;
	uint64_t reload_seq;    /* ADMIN_WAIT_RELOAD: answered once this reload is done */
	char *out;              /* answer not yet written (the client reads slowly) */
	size_t out_len, out_off;
	bool closing;           /* answered: close once out is written */
};

/* The supervisor's end: the socket, its clients, and the clients a binary
 * upgrade carried over (answered once, with the upgrade's outcome). */
struct admin {
	struct loop *loop;
	struct sup_sink sink;
	int fd;                 /* listening, -1 if none */
	char path[108];
	bool owned;             /* we created the socket file */
	struct admin_client *clients;
	int carried[ADMIN_CARRIED_MAX];
	size_t n_carried;
	bool awaiting;          /* SUP_EV_ANSWERS_WRITTEN is due: once none is in flight, or at the timer */
	struct loop_timer await_timer;
};

/* No socket yet; commands are reported to sink (SUP_EV_COMMAND). */
void admin_init(struct admin *a, struct loop *loop, const struct sup_sink *sink);
/* Listen on the control socket configured (NULL: the default one), or
 * keep the one inherited (admin_adopt); 0, or -errno if an explicitly
 * configured socket cannot be used. */
int admin_start(struct admin *a, const char *configured);
/* Close the socket and every client, unlinking the socket file. */
void admin_stop(struct admin *a);
/* Serve a connected client (non-blocking fd, closed on failure): 0 with
 * the client in *out (out may be NULL), or -errno. */
int admin_client_add(struct admin *a, int fd, struct admin_client **out);
/* Queue an answer to c and close it once written; a client holding more
 * than ADMIN_OUT_MAX unread is dropped. */
void admin_reply(struct admin *a, struct admin_client *c, const char *text);
/* c waits for a reload (the one numbered reload_seq) or an upgrade to end. */
void admin_wait(struct admin *a, struct admin_client *c, enum admin_wait what, uint64_t reload_seq);
/* Answer line to the reload waiters whose reload is done (seq_done), and
 * to the clients carried across an upgrade. */
void admin_answer_reloads(struct admin *a, const char *line, uint64_t seq_done);
/* Answer line to the clients waiting for an upgrade. */
void admin_answer_upgrade(struct admin *a, const char *line);
/* Answers not yet wholly written to their clients. */
size_t admin_answers_pending(const struct admin *a);
/* Answers in flight; if any, SUP_EV_ANSWERS_WRITTEN is reported once none
 * is, or after within_ms with how many are left (arg). */
size_t admin_await_answers(struct admin *a, uint64_t within_ms);
/* Forget an await_answers (nothing is reported). */
void admin_await_cancel(struct admin *a);
/* The socket and the waiting clients, for the hand-over of a binary upgrade. */
void admin_describe(const struct admin *a, struct handover *st);
/* Take the socket and the clients the previous image handed over. */
void admin_adopt(struct admin *a, const struct handover *st);

#endif
