/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Logging for the tools (never for the library). Messages go to stderr as
 * "PROGRAM: message". The *_errno variants set errno for %m and return -|error|, so that
 * "return log_error_errno(r, ...);" both reports and propagates. */

#include <errno.h>
#include <stdbool.h>

#include "macro.h"

enum log_level {
        LOG_LEVEL_ERROR,
        LOG_LEVEL_WARNING,
        LOG_LEVEL_NOTICE,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
};

void log_set_program_name(const char *name);
void log_set_max_level(enum log_level level);
enum log_level log_get_max_level(void);

int log_internal(enum log_level level, int error, const char *format, ...) _printf_(3, 4);

/* Where formatted messages go instead of stderr (the daemon sends them to the journal). */
typedef void (*log_sink_t)(enum log_level level, const char *message);
void log_set_sink(log_sink_t sink);

#define log_error_errno(error, ...) log_internal(LOG_LEVEL_ERROR, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_internal(LOG_LEVEL_WARNING, (error), __VA_ARGS__)
#define log_error(...) ((void) log_internal(LOG_LEVEL_ERROR, 0, __VA_ARGS__))
#define log_warning(...) ((void) log_internal(LOG_LEVEL_WARNING, 0, __VA_ARGS__))
#define log_notice(...) ((void) log_internal(LOG_LEVEL_NOTICE, 0, __VA_ARGS__))
#define log_info(...) ((void) log_internal(LOG_LEVEL_INFO, 0, __VA_ARGS__))
#define log_debug(...) ((void) log_internal(LOG_LEVEL_DEBUG, 0, __VA_ARGS__))

#define log_oom() log_internal(LOG_LEVEL_ERROR, ENOMEM, "out of memory")
