/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "io-util.h"
#include "macro.h"

int loop_write(int fd, const void *buf, size_t len) {
        const uint8_t *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

ssize_t loop_read(int fd, void *buf, size_t len) {
        size_t done = 0;

        while (done < len) {
                ssize_t n = read(fd, (uint8_t *) buf + done, len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                done += (size_t) n;
        }
        return (ssize_t) done;
}

int read_full_fd(int fd, size_t limit, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, alloc = 0;

        for (;;) {
                ssize_t n;

                if (size + 1 >= alloc) {
                        size_t want = alloc ? alloc * 2 : 4096;
                        char *p;

                        if (alloc > limit + 1)
                                return -EFBIG;
                        p = realloc(buf, want);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        alloc = want;
                }
                n = read(fd, buf + size, alloc - size - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > limit)
                        return -EFBIG;
        }
        buf[size] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = size;
        return 0;
}

/* Each step is handed to the disk (sync_file_range) as soon as it is copied: small steps
 * start the writeback of a large module early, and its fdatasync then has less left to wait
 * for (10 MiB: the writeback starts after 1 MiB, not after 8). */
#define COPY_STEP ((size_t) 1 << 20)
/* Where copy_file_range() cannot: a small buffer, cheap to fault in. */
#define COPY_BUFFER ((size_t) 64 << 10)

int copy_fd_prefix(int in_fd, int out_fd, uint64_t len) {
        _cleanup_free_ uint8_t *buf = NULL;
        off_t start = lseek(out_fd, 0, SEEK_CUR);
        loff_t off = 0;
        bool in_kernel = true;

        while ((uint64_t) off < len) {
                size_t want = (size_t) MIN(len - (uint64_t) off, (uint64_t) COPY_STEP);
                ssize_t n;

                if (in_kernel) {
                        n = copy_file_range(in_fd, &off, out_fd, NULL, want, 0);
                        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
                                in_kernel = false; /* another file system, or an old kernel */
                                continue;
                        }
                } else {
                        if (!buf && !(buf = malloc(COPY_BUFFER)))
                                return -ENOMEM;
                        n = pread(in_fd, buf, MIN(want, COPY_BUFFER), off);
                        if (n > 0) {
                                int r = loop_write(out_fd, buf, (size_t) n);
                                if (r < 0)
                                        return r;
                                off += n;
                        }
                }
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return -EBADMSG; /* shorter than it said */
                /* Start writing out what is copied, without waiting. */
                if (start >= 0)
                        (void) sync_file_range(out_fd, start + (off_t) off - n, n, SYNC_FILE_RANGE_WRITE);
        }
        return 0;
}

int openat_regular(int dir_fd, const char *name, int flags, mode_t mode, struct stat *ret_st) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = openat(dir_fd, name, flags | O_CLOEXEC | O_NOCTTY, mode);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (ret_st)
                *ret_st = st;
        return TAKE_FD(fd);
}

int openat_own_file(int dir_fd, const char *name, int flags, mode_t mode, struct stat *ret_st) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = openat_regular(dir_fd, name, flags | O_NOFOLLOW, mode, &st);
        if (fd < 0)
                return fd;
        if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
                return -EPERM;
        if (ret_st)
                *ret_st = st;
        return TAKE_FD(fd);
}

int link_tmpfile_at(int fd, int dir_fd, const char *name) {
        char proc[64];

        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, dir_fd, name, AT_SYMLINK_FOLLOW) < 0)
                return negative_errno();
        return 0;
}
