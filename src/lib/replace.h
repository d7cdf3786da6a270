/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Atomic, durable replacement of a file inside a directory fd.
 *
 * The new contents go to an anonymous O_TMPFILE (or, where the file system has none, to an
 * unpredictable name created with O_EXCL) beside the target. Commit copies the original's
 * owner, mode and SELinux label, fsyncs, re-checks that the target is still the file we read
 * (same inode, size, mtime and ctime), renames over it and fsyncs the directory. Any failure, or an
 * abort, leaves the target exactly as it was and no temporary file behind. */

#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>

struct replace {
        int dir_fd;          /* borrowed, unless owns_dir_fd (in a batch) */
        bool owns_dir_fd;
        char *name;
        int fd;              /* write the new contents here */
        char *tmp_name;      /* only for the O_EXCL fallback, or once an O_TMPFILE is linked */
        bool have_orig;
        struct stat orig;    /* what the target was when the caller read it */
};

/* Nothing begun yet: replace_abort() on it does nothing (for _cleanup_(replace_abort)). */
#define REPLACE_NULL ((struct replace) { .dir_fd = -EBADF, .fd = -EBADF })

/* Starts a replacement of dir_fd/name. 'orig' is the fstat() of the file the caller read (the
 * target must still be that file at commit, and its owner, mode and label are kept), or NULL
 * to write 'name' as a new file (mode 0666 & ~umask) that may replace a regular file of that
 * name, as sign-file's DEST does, but never a symlink or a directory (-EEXIST). dir_fd must be
 * opened O_RDONLY|O_DIRECTORY, not O_PATH: commit fsyncs it. */
int replace_begin(int dir_fd, const char *name, const struct stat *orig, struct replace *ret);

/* -ESTALE: the target changed while we worked; nothing was written (the caller may retry). */
int replace_commit(struct replace *r);

/* The same, atomic but not durable: no fsync of the file or the directory. For files whose
 * loss in a crash is detected and harmless (the audit log's provenance statements, which the
 * durable audit record names), not for modules. */
int replace_commit_unsynced(struct replace *r);

/* Drops the new contents. Safe to call after a commit, or twice. */
void replace_abort(struct replace *r);

/* Many replacements committed together: the same guarantees as replace_commit() for each,
 * with one syncfs() for all the new files and one fsync() per directory instead of two
 * fsync() calls per file. Signing 200 small modules is dominated by those syncs otherwise. */
struct replace_batch {
        struct replace *items;
        size_t n, alloc;
};

/* Takes over *r (which is left empty). */
int replace_batch_add(struct replace_batch *b, struct replace *r);
/* Commits every pending replacement; results[i] (sized for b->n) gets each one's outcome, as
 * replace_commit() would return it. Returns the first error, or 0. The batch is empty after. */
int replace_batch_commit(struct replace_batch *b, int *results);
/* Aborts whatever is pending and frees the batch. */
void replace_batch_done(struct replace_batch *b);
