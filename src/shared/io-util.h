/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* write() until everything is written; retries EINTR. Returns 0 or a negative errno. */
int loop_write(int fd, const void *buf, size_t len);

/* read() until 'len' bytes or EOF; returns the count read or a negative errno. */
ssize_t loop_read(int fd, void *buf, size_t len);

/* Copies the first 'len' bytes of in_fd (from offset 0; its file offset is not used) to
 * out_fd at its file offset: with copy_file_range() where the kernel can (no copy through
 * user space), else through a buffer. The writeback of what is written starts every MiB,
 * so that a later fsync() finds little left to do. -EBADMSG when in_fd is shorter. */
int copy_fd_prefix(int in_fd, int out_fd, uint64_t len);

/* Opens dir_fd/name with 'flags' (plus O_CLOEXEC|O_NOCTTY; 'mode' when it is created) and
 * returns the fd, after checking that it is a regular file (-EINVAL: a directory, a FIFO, a
 * device). ret_st (optional) receives its fstat(). */
int openat_regular(int dir_fd, const char *name, int flags, mode_t mode, struct stat *ret_st);

/* Gives the anonymous file fd (O_TMPFILE, not O_EXCL) the name dir_fd/name. linkat() never
 * replaces: -EEXIST when the name is taken (even by a dangling symlink). */
int link_tmpfile_at(int fd, int dir_fd, const char *name);

/* Opens dir_fd/name with 'flags' (plus O_CLOEXEC|O_NOFOLLOW|O_NOCTTY; 'mode' when it is
 * created) and returns the fd, after checking that it is a regular file (-EINVAL) owned by
 * the effective uid and writable by no one else (-EPERM): for state files whose contents
 * decide something, which whoever else could write them would decide instead. -ELOOP: a
 * symlink. ret_st (optional) receives its fstat(). */
int openat_own_file(int dir_fd, const char *name, int flags, mode_t mode, struct stat *ret_st);

/* Reads a whole (small) file opened as fd into a new NUL-terminated buffer; files larger
 * than 'limit' fail with -EFBIG. */
int read_full_fd(int fd, size_t limit, char **ret, size_t *ret_len);
