/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's logging: to the journal with structured fields and a MESSAGE_ID from
 * systemd/modsignd.catalog when stderr is connected to it (JOURNAL_STREAM), else to stderr as
 * plain lines, so that a test or a foreground run can read them. */

#define MSGID_MODULE_SIGNED "1f56f1a845014201b36522015b162f77"
#define MSGID_MODULE_REFUSED "e293ad7c60fb49eebb9701b5a0d725f4"
#define MSGID_MODULE_FAILED "650afa4442b446f7a8b88bba2ac2814a"
#define MSGID_KEY_LOADED "793f18589a8249e686c47ccb1b885ae2"
#define MSGID_CONFIG_RELOADED "fe5fe4de18be4cad979c5f1e46cb7257"
#define MSGID_RELOAD_FAILED "6563a022d833445dacaca38ba71b0d1d"
#define MSGID_AUDIT_HEAD "5b5b707b6d9d437aaef30de27773db8d"
#define MSGID_AUDIT_FAILED "cd6714cb36d242c7a657ed2c04819200"
#define MSGID_KEY_LOST "31bbda15eedc429087dac52a2c24d13e"
#define MSGID_KEY_REOPENED "17edef90144d4430950cd514ecb785c4"
#define MSGID_KEY_UNAVAILABLE "00302b200fce48e8881be52c0262b6a2"

/* Detects the journal and routes log_*() there. */
void journal_setup(void);

struct module_event {
        const char *message_id;
        const char *module;      /* path, or the name a client gave */
        const char *kernel;      /* release, may be NULL */
        const char *sha256;      /* of the module as written, may be NULL */
        const char *fingerprint; /* of the signing certificate, may be NULL */
        const char *requester;   /* "watcher", "pid=N uid=0 comm=dkms", ... */
        const char *audit_record; /* the audit log line of this decision, may be NULL */
        const char *audit_head;  /* "COUNT:HASH" of the audit log with it last, may be NULL */
};

/* One line (or one journal record) about one module. priority: a syslog priority. */
void log_module_event(int priority, const struct module_event *ev, const char *format, ...)
        __attribute__((format(printf, 3, 4)));
