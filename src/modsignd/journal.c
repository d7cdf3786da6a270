/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

#include "journal.h"
#include "log.h"

static bool to_journal;

static int level_to_priority(enum log_level level) {
        switch (level) {
        case LOG_LEVEL_ERROR:
                return LOG_ERR;
        case LOG_LEVEL_WARNING:
                return LOG_WARNING;
        case LOG_LEVEL_NOTICE:
                return LOG_NOTICE;
        case LOG_LEVEL_INFO:
                return LOG_INFO;
        case LOG_LEVEL_DEBUG:
        default:
                return LOG_DEBUG;
        }
}

static void journal_sink(enum log_level level, const char *message) {
        sd_journal_send("MESSAGE=%s", message, "PRIORITY=%i", level_to_priority(level), NULL);
}

void journal_setup(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        /* systemd sets JOURNAL_STREAM=DEV:INODE of the stream it connected stdout/stderr to;
         * if stderr is still that stream, the journal is listening. */
        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return;
        if ((unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino) {
                to_journal = true;
                log_set_sink(journal_sink);
        }
}

void log_module_event(int priority, const struct module_event *ev, const char *format, ...) {
        char message[1024];
        va_list ap;

        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);

        if (to_journal) {
                sd_journal_send("MESSAGE=%s", message, "PRIORITY=%i", priority, "MESSAGE_ID=%s", ev->message_id,
                                "MODSIGND_MODULE=%s", ev->module ?: "", "MODSIGND_KERNEL=%s", ev->kernel ?: "",
                                "MODSIGND_SHA256=%s", ev->sha256 ?: "", "MODSIGND_KEY_FINGERPRINT=%s",
                                ev->fingerprint ?: "", "MODSIGND_REQUESTER=%s", ev->requester ?: "",
                                "MODSIGND_AUDIT_RECORD=%s", ev->audit_record ?: "", "MODSIGND_AUDIT_HEAD=%s",
                                ev->audit_head ?: "", NULL);
                return;
        }
        if (priority > LOG_INFO && log_get_max_level() < LOG_LEVEL_DEBUG)
                return;
        fprintf(stderr, "modsignd: %s\n", message);
}
