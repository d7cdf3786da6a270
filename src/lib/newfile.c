/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io-util.h"
#include "macro.h"
#include "newfile.h"

static int fill_and_sync(int fd, mode_t mode, const void *data, size_t size) {
        /* fchmod: the mode must not depend on the umask, and must be set before the file has
         * a name (a key file must never be visible with a looser mode). */
        if (fchmod(fd, mode) < 0)
                return negative_errno();
        int r = loop_write(fd, data, size);
        if (r < 0)
                return r;
        if (fsync(fd) < 0)
                return negative_errno();
        return 0;
}

static int create_via_tmpfile(int dir_fd, const char *name, mode_t mode, const void *data, size_t size) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        fd = openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        r = fill_and_sync(fd, mode, data, size);
        if (r < 0)
                return r;
        return link_tmpfile_at(fd, dir_fd, name); /* never replaces: -EEXIST */
}

static int create_via_hidden_name(int dir_fd, const char *name, mode_t mode, const void *data, size_t size) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        uint64_t rnd;
        int r;

        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                return negative_errno();
        if (asprintf(&tmp, ".#%s.%016llx", name, (unsigned long long) rnd) < 0)
                return -ENOMEM;
        fd = openat(dir_fd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        r = fill_and_sync(fd, mode, data, size);
        if (r >= 0 && linkat(dir_fd, tmp, dir_fd, name, 0) < 0)
                r = negative_errno();
        (void) unlinkat(dir_fd, tmp, 0);
        return r;
}

int newfile_create_at(int dir_fd, const char *name, mode_t mode, const void *data, size_t size) {
        struct stat st;
        int r;

        if (!name || !*name || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        /* Fail early, before writing anything; linkat() below is the race-free check. */
        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                return -EEXIST;
        if (errno != ENOENT)
                return negative_errno();

        r = create_via_tmpfile(dir_fd, name, mode, data, size);
        if (r == -EOPNOTSUPP || r == -EISDIR || r == -EINVAL)
                r = create_via_hidden_name(dir_fd, name, mode, data, size);
        if (r < 0)
                return r;
        if (fsync(dir_fd) < 0)
                return negative_errno();
        return 0;
}
