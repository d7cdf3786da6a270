/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "daemon-audit.h"
#include "daemon.h"
#include "journal.h"
#include "log.h"
#include "macro.h"
#include "provenance.h"

static void log_head(struct daemon *d, const char *when) {
        struct audit_head h;
        char head[AUDIT_HEAD_STRING_MAX];

        if (!d->audit)
                return;
        audit_log_get_head(d->audit, &h);
        audit_head_format(&h, head);
        struct module_event ev = { .message_id = MSGID_AUDIT_HEAD, .audit_head = head };
        log_module_event(LOG_INFO, &ev, "audit log head %s (%s, %s)", head, audit_log_path(d->audit), when);
        d->audit_head_logged_seq = h.seq;
}

static int on_head_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct daemon *d = userdata;
        struct audit_head h;

        audit_log_get_head(d->audit, &h);
        if (h.seq != d->audit_head_logged_seq)
                log_head(d, "periodic");
        (void) sd_event_source_set_time_relative(s, DAEMON_AUDIT_HEAD_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

int daemon_audit_open(struct daemon *d) {
        int r;

        r = audit_log_open(d->config.state_directory, &d->audit);
        if (r < 0) {
                struct module_event ev = { .message_id = MSGID_AUDIT_FAILED };
                log_module_event(LOG_ERR, &ev, "cannot open the audit log %s/%s: %s; not starting (modsignd signs nothing it cannot record)",
                                 d->config.state_directory, AUDIT_LOG_FILE,
                                 r == -EBADMSG ? "its last line is not a complete record (check it with 'modsignctl audit verify')" :
                                 r == -EPERM ? "the directory or file is writable by others, or not ours" :
                                 r == -ELOOP ? "a symbolic link" : strerror(-r));
                return r;
        }
        log_head(d, "start");
        r = sd_event_add_time_relative(d->event, &d->audit_timer, CLOCK_MONOTONIC, DAEMON_AUDIT_HEAD_INTERVAL_USEC, 0,
                                       on_head_timer, d);
        if (r < 0)
                log_warning_errno(r, "cannot set the audit head timer: %m");
        return 0;
}

void daemon_audit_close(struct daemon *d) {
        d->audit_timer = sd_event_source_disable_unref(d->audit_timer);
        if (!d->audit)
                return;
        log_head(d, "stop");
        d->audit = audit_log_free(d->audit);
}

int daemon_audit_append_to(struct audit_log *log, const struct audit_record *rec, struct daemon_audit_entry *ret) {
        struct audit_head h;
        int r;

        *ret = (struct daemon_audit_entry) {};
        /* A signature's provenance statement first, so that its record can name it. Best
         * effort: a statement that cannot be written leaves the member out, and
         * `modsignctl provenance` then says there is none. */
        _cleanup_free_ char *statement = NULL;
        struct audit_record with = *rec;
        if (provenance_record(log, rec, &statement) >= 0)
                with.provenance = statement;
        r = log ? audit_log_append(log, &with, &h, &ret->line) : -EBADF;
        if (r < 0) {
                ret->error = r;
                return r;
        }
        audit_head_format(&h, ret->head);
        return 0;
}

static void log_append_failed(struct daemon *d, int error) {
        struct module_event ev = { .message_id = MSGID_AUDIT_FAILED };

        log_module_event(LOG_ERR, &ev, "cannot append to the audit log %s: %s; signatures are withheld until it can be written",
                         d->audit ? audit_log_path(d->audit) : "(not open)",
                         error == -ESTALE ? "it was changed behind modsignd's back (check it with 'modsignctl audit verify')" :
                         strerror(-error));
}

int daemon_audit_append(struct daemon *d, const struct audit_record *rec, struct daemon_audit_entry *ret) {
        return daemon_audit_append_to(d->audit, rec, ret);
}

void daemon_audit_done(struct daemon *d, struct daemon_audit_entry *e) {
        struct audit_head h;

        free(e->line);
        e->line = NULL;
        if (e->error) {
                log_append_failed(d, e->error);
                return;
        }
        if (!d->audit)
                return;
        audit_log_get_head(d->audit, &h);
        if (h.seq >= d->audit_head_logged_seq + DAEMON_AUDIT_HEAD_EVERY)
                log_head(d, "periodic");
}

struct audit_requester daemon_audit_requester(const char *requester) {
        struct audit_requester q = { .kind = AUDIT_REQUESTER_WATCHER };
        const char *comm;
        int pid, n = 0;
        unsigned uid;

        if (requester && sscanf(requester, "pid=%d uid=%u %n", &pid, &uid, &n) == 2 && n > 0 &&
            strncmp(requester + n, "comm=", 5) == 0) {
                comm = requester + n + 5;
                q = (struct audit_requester) { .kind = AUDIT_REQUESTER_PEER, .pid = pid, .uid = uid, .comm = comm };
        }
        return q;
}
