/* tls_keys: the session ticket keys every worker of every generation
 * encrypts and decrypts tickets with, so a client resumes its session on
 * any worker, after a reload, and after a binary upgrade.
 *
 * They live in one shared mapping (a memfd) that the supervisor creates at
 * its first start and maps before any fork; workers inherit the mapping,
 * and a binary upgrade hands the memfd to the new image, which maps it
 * again (handover.c). The supervisor alone writes it, under a sequence
 * lock the workers' ticket callback reads through.
 *
 * Generated keys are random (RAND_bytes); the supervisor rotates them every
 * [tls] session_timeout, keeping the previous key for decryption, so a
 * ticket is accepted for its whole lifetime and no longer. Keys from a
 * ticket_key_file (several nodes sharing keys) are put in force on start
 * and reload instead, the first encrypting and all decrypting; drover then
 * generates none until a reload drops the file. */
#ifndef DROVER_TLS_KEYS_H
#define DROVER_TLS_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_TICKET_KEY_LEN 80 /* name 16, HMAC-SHA256 key 32, AES-256 key 32: nginx's format */
#define TLS_TICKET_KEYS_MAX 16

struct tls_ticket_key {
	unsigned char name[16];
	unsigned char hmac[32];
	unsigned char aes[32];
};

/* The supervisor's first start: a new mapping with one random key, in
 * force in this process (and the workers it forks); its memfd (CLOEXEC)
 * in *fd. 0 or -errno. */
int tls_keys_create(int *fd);
/* A binary upgrade: map the mapping the previous image handed over. 0 or
 * -errno (-EPROTO: not a key mapping of this layout). */
int tls_keys_attach(int fd);
/* The memfd of the mapping in force, or -1. */
int tls_keys_fd(void);

/* Put keys[0..n) in force (from a ticket_key_file: the first encrypts);
 * n == 0 goes back to generated keys, made fresh when file keys were in
 * force. now_ms starts the rotation period. Supervisor only. */
void tls_keys_set(const struct tls_ticket_key *keys, size_t n, uint64_t now_ms);
/* Rotate generated keys once period_ms has passed since the last
 * rotation: a new key encrypts, the one before it still decrypts. true
 * when it rotated. Supervisor only. */
bool tls_keys_tick(uint64_t now_ms, uint64_t period_ms);

/* The key that encrypts new tickets; false when there is no mapping. */
bool tls_keys_current(struct tls_ticket_key *out);
/* The key called name: 1 it is the current one, 2 an older one still
 * accepted (the ticket should be renewed), 0 none (a full handshake). */
int tls_keys_find(const unsigned char name[16], struct tls_ticket_key *out);

/* Read a ticket_key_file: one or more 80-byte keys, nothing else. 0, or
 * -errno with why ("expected ...") filled in. */
int tls_keys_read_file(const char *path, struct tls_ticket_key *keys, size_t *n, char *why, size_t why_len);

#endif
