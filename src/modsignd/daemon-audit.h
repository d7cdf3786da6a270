/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's side of the audit log (src/lib/audit.h): opening it at start, one record per
 * decision, the same record in the journal, and the chain head written to the journal (every
 * DAEMON_AUDIT_HEAD_EVERY records, every DAEMON_AUDIT_HEAD_INTERVAL_USEC when records were
 * added, at start and at stop) so that a log cut short or rewritten can be told.
 *
 * Fail closed: a signature is handed out (SIGN) or put in place (tree) only after its record
 * is durably in the log; when the append fails, the signature is withheld. */

#include <stdint.h>

#include "audit.h"

struct daemon;

#define DAEMON_AUDIT_HEAD_EVERY 32
#define DAEMON_AUDIT_HEAD_INTERVAL_USEC (15ULL * 60 * 1000000)

/* What an append produced, for the journal entry of the same decision. */
struct daemon_audit_entry {
        char *line;                           /* the record as written, or NULL */
        char head[AUDIT_HEAD_STRING_MAX];     /* the chain head with it last, or "" */
        int error;                            /* the append's error, or 0 */
};

/* Opens STATE_DIRECTORY/audit.jsonl; logs why and returns < 0 when it cannot (the daemon
 * then does not start). */
int daemon_audit_open(struct daemon *d);
/* Writes the head to the journal and closes the log. */
void daemon_audit_close(struct daemon *d);

/* Appends rec to log. Safe on a worker thread: it neither logs nor touches the daemon. */
int daemon_audit_append_to(struct audit_log *log, const struct audit_record *rec, struct daemon_audit_entry *ret);
/* The same on the loop thread. */
int daemon_audit_append(struct daemon *d, const struct audit_record *rec, struct daemon_audit_entry *ret);
/* On the loop thread, after the entry's decision was logged (every append is followed by
 * one call): logs a failed append (MSGID_AUDIT_FAILED), or writes the head to the journal
 * when it is time to. Frees the line. */
void daemon_audit_done(struct daemon *d, struct daemon_audit_entry *e);

/* "pid=N uid=N comm=NAME" (server.c's form), else the watcher. */
struct audit_requester daemon_audit_requester(const char *requester);
