/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

static const char *program_name = "modsignd";
static enum log_level max_level = LOG_LEVEL_NOTICE;
static log_sink_t sink;

void log_set_sink(log_sink_t s) {
        sink = s;
}

void log_set_program_name(const char *name) {
        program_name = name;
}

void log_set_max_level(enum log_level level) {
        max_level = level;
}

enum log_level log_get_max_level(void) {
        return max_level;
}

int log_internal(enum log_level level, int error, const char *format, ...) {
        int saved = errno;
        va_list ap;

        if (error < 0)
                error = -error;

        if (level <= max_level) {
                char buf[2048];

                /* %m in the format refers to 'error', as in systemd's log_*_errno(). */
                errno = error;
                va_start(ap, format);
                vsnprintf(buf, sizeof(buf), format, ap);
                va_end(ap);
                if (sink)
                        sink(level, buf);
                else
                        fprintf(stderr, "%s: %s%s\n", program_name, level == LOG_LEVEL_WARNING ? "warning: " : "",
                                buf);
        }

        errno = saved;
        return -(error ? error : EIO);
}
