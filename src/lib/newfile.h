/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Creating a file that must not exist yet, atomically: it appears under its name complete,
 * with its final mode and contents already durable, or not at all; an existing file (or
 * symlink) of that name is never replaced or followed.
 *
 * The contents go to an anonymous O_TMPFILE in the directory, which linkat() then names;
 * linkat() fails with EEXIST rather than replacing, which is what makes the refusal to
 * overwrite race-free. Where the file system has no O_TMPFILE, a hidden name made with
 * O_EXCL is written and then link()ed to the final name the same way. (replace.h is the
 * counterpart for replacing a file that exists.) */

#include <stddef.h>
#include <sys/types.h>

/* -EEXIST: dir_fd/name exists. dir_fd must be O_RDONLY|O_DIRECTORY (it is fsynced). The
 * file gets 'mode' exactly (no umask) and the caller's owner. */
int newfile_create_at(int dir_fd, const char *name, mode_t mode, const void *data, size_t size);
