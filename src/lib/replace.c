/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "io-util.h"
#include "macro.h"
#include "replace.h"

#define SELINUX_XATTR "security.selinux"

static int random_tmp_name(const char *name, char **ret) {
        uint64_t rnd;
        char *s;

        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                return negative_errno();
        /* A dot name: hidden from globs such as *.ko, and recognisably ours. */
        if (asprintf(&s, ".#%s.%016llx", name, (unsigned long long) rnd) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int replace_begin(int dir_fd, const char *name, const struct stat *orig, struct replace *ret) {
        struct replace r = { .dir_fd = dir_fd, .fd = -EBADF };
        mode_t mode = orig ? 0600 : 0666; /* a copy of a root-only key or module stays root-only until commit */
        int fd;

        if (!name || !*name || strchr(name, '/'))
                return -EINVAL;
        r.name = strdup(name);
        if (!r.name)
                return -ENOMEM;
        if (orig) {
                r.orig = *orig;
                r.have_orig = true;
        }

        fd = openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
        if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
                int k = random_tmp_name(name, &r.tmp_name);
                if (k < 0) {
                        free(r.name);
                        return k;
                }
                fd = openat(dir_fd, r.tmp_name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
        }
        if (fd < 0) {
                int k = negative_errno();
                free(r.name);
                free(r.tmp_name);
                return k;
        }
        r.fd = fd;
        *ret = r;
        return 0;
}

static int copy_selinux_label(const struct replace *r) {
        _cleanup_free_ char *path = NULL;
        char label[256];
        ssize_t n;

        /* A module relabelled by our rename would stop loading under SELinux. We hold no fd to
         * the target here, so read its label through our directory fd, without following a
         * symlink at the last component. No label, or no SELinux: nothing to do. */
        if (asprintf(&path, "/proc/self/fd/%d/%s", r->dir_fd, r->name) < 0)
                return -ENOMEM;
        n = lgetxattr(path, SELINUX_XATTR, label, sizeof(label));
        if (n < 0)
                return errno == ENODATA || errno == ENOTSUP || errno == ENOENT ? 0 : negative_errno();
        if (fsetxattr(r->fd, SELINUX_XATTR, label, (size_t) n, 0) < 0 && errno != ENOTSUP)
                return negative_errno();
        return 0;
}

static int copy_metadata(const struct replace *r) {
        /* Only root may give a file away; anyone else keeps what they can (sign-file does less). */
        if (fchown(r->fd, r->orig.st_uid, r->orig.st_gid) < 0 && errno != EPERM)
                return negative_errno();
        if (fchmod(r->fd, r->orig.st_mode & 07777) < 0)
                return negative_errno();
        return copy_selinux_label(r);
}

/* Is dir_fd/name still the file we read? */
static int check_unchanged(const struct replace *r) {
        struct stat now;

        if (fstatat(r->dir_fd, r->name, &now, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return r->have_orig ? -ESTALE : 0;
                return negative_errno();
        }
        if (!r->have_orig)
                /* A new name: replace a regular file (sign-file's DEST), never a symlink or dir. */
                return S_ISREG(now.st_mode) ? 0 : -EEXIST;
        /* ctime too: a chmod or chown right after the writer closed the file (install -m does
         * that) must not be undone by our copy of the metadata we saw before it. */
        if (now.st_dev != r->orig.st_dev || now.st_ino != r->orig.st_ino || now.st_size != r->orig.st_size ||
            now.st_mtim.tv_sec != r->orig.st_mtim.tv_sec || now.st_mtim.tv_nsec != r->orig.st_mtim.tv_nsec ||
            now.st_ctim.tv_sec != r->orig.st_ctim.tv_sec || now.st_ctim.tv_nsec != r->orig.st_ctim.tv_nsec)
                return -ESTALE;
        return 0;
}

static int link_tmpfile(struct replace *r) {
        int k;

        /* An O_TMPFILE gets a name only now, when it is complete: a crash before this point
         * leaves nothing behind. linkat() cannot replace, so link to a fresh name, then rename. */
        for (int attempt = 0; attempt < 16; attempt++) {
                free(r->tmp_name);
                r->tmp_name = NULL;
                k = random_tmp_name(r->name, &r->tmp_name);
                if (k < 0)
                        return k;
                k = link_tmpfile_at(r->fd, r->dir_fd, r->tmp_name);
                if (k >= 0)
                        return 0;
                if (k != -EEXIST) {
                        free(r->tmp_name);
                        r->tmp_name = NULL;
                        return k;
                }
        }
        free(r->tmp_name);
        r->tmp_name = NULL;
        return -EEXIST;
}

/* Commit, phase 1: metadata onto the new file. */
static int commit_prepare(struct replace *r) {
        if (r->fd < 0)
                return -EBADF;
        return r->have_orig ? copy_metadata(r) : 0;
}

/* Commit, phase 3 (after the data is durable): put the new file in place of the old. */
static int commit_publish(struct replace *r) {
        int k;

        k = check_unchanged(r);
        if (k < 0)
                return k;
        if (!r->tmp_name && !r->have_orig) {
                /* A new name, most likely free: the O_TMPFILE takes it at once, no rename. */
                k = link_tmpfile_at(r->fd, r->dir_fd, r->name);
                if (k != -EEXIST)
                        return k;
                k = check_unchanged(r); /* taken meanwhile: replaced only if a regular file */
                if (k < 0)
                        return k;
        }
        if (!r->tmp_name) { /* an O_TMPFILE still without a name */
                k = link_tmpfile(r);
                if (k < 0)
                        return k;
        }
        if (renameat(r->dir_fd, r->tmp_name, r->dir_fd, r->name) < 0)
                return negative_errno();
        free(r->tmp_name);
        r->tmp_name = NULL;
        return 0;
}

static int fsync_dir(int dir_fd) {
        /* The rename is durable only once the directory is. */
        if (fsync(dir_fd) < 0 && errno != EINVAL)
                return negative_errno();
        return 0;
}

int replace_commit(struct replace *r) {
        int k;

        k = commit_prepare(r);
        if (k >= 0 && fsync(r->fd) < 0)
                k = negative_errno();
        if (k >= 0)
                k = commit_publish(r);
        if (k >= 0)
                k = fsync_dir(r->dir_fd);
        replace_abort(r); /* closes the fd, frees the names, removes a temporary name if left */
        return k;
}

int replace_commit_unsynced(struct replace *r) {
        int k;

        k = commit_prepare(r);
        if (k >= 0)
                k = commit_publish(r);
        replace_abort(r);
        return k;
}

int replace_batch_add(struct replace_batch *b, struct replace *r) {
        if (b->n == b->alloc) {
                size_t alloc = b->alloc ? b->alloc * 2 : 16;
                struct replace *items = realloc(b->items, alloc * sizeof(*items));
                if (!items)
                        return -ENOMEM;
                b->items = items;
                b->alloc = alloc;
        }
        /* The caller's directory fd may be closed before the commit: hold our own. */
        int dir_fd = fcntl(r->dir_fd, F_DUPFD_CLOEXEC, 3);
        if (dir_fd < 0)
                return negative_errno();
        r->dir_fd = dir_fd;
        r->owns_dir_fd = true;
        b->items[b->n++] = *r;
        *r = (struct replace) { .fd = -EBADF, .dir_fd = -EBADF };
        return 0;
}

static bool same_inode(int fd, const struct stat *st) {
        struct stat other;
        return fstat(fd, &other) >= 0 && other.st_dev == st->st_dev && other.st_ino == st->st_ino;
}

static bool same_fs(const struct replace_batch *b) {
        struct stat first, st;

        if (fstat(b->items[0].fd, &first) < 0)
                return false;
        for (size_t i = 1; i < b->n; i++)
                if (fstat(b->items[i].fd, &st) < 0 || st.st_dev != first.st_dev)
                        return false;
        return true;
}

int replace_batch_commit(struct replace_batch *b, int *results) {
        bool synced_all = false;
        int worst = 0;

        if (b->n == 0)
                return 0;
        for (size_t i = 0; i < b->n; i++)
                results[i] = commit_prepare(&b->items[i]);

        /* One syncfs() makes every new file durable at once, where one fsync() each would
         * commit the file system's journal once per module. Files on several file systems
         * fall back to an fsync() each. */
        if (b->n > 1 && same_fs(b) && syncfs(b->items[0].fd) >= 0)
                synced_all = true;

        for (size_t i = 0; i < b->n; i++) {
                struct replace *r = &b->items[i];

                if (results[i] >= 0 && !synced_all && fsync(r->fd) < 0)
                        results[i] = negative_errno();
                if (results[i] >= 0)
                        results[i] = commit_publish(r);
        }

        /* Each directory once, however many of its modules were replaced. */
        for (size_t i = 0; i < b->n; i++) {
                struct stat di;
                bool seen = false;
                int k;

                if (results[i] < 0 || fstat(b->items[i].dir_fd, &di) < 0)
                        continue;
                for (size_t j = 0; j < i && !seen; j++)
                        seen = results[j] >= 0 && same_inode(b->items[j].dir_fd, &di);
                if (seen)
                        continue;
                k = fsync_dir(b->items[i].dir_fd);
                if (k < 0)
                        for (size_t j = i; j < b->n; j++)
                                if (results[j] >= 0 && same_inode(b->items[j].dir_fd, &di))
                                        results[j] = k;
        }

        for (size_t i = 0; i < b->n; i++) {
                replace_abort(&b->items[i]);
                if (results[i] < 0 && worst == 0)
                        worst = results[i];
        }
        b->n = 0;
        return worst;
}

void replace_batch_done(struct replace_batch *b) {
        for (size_t i = 0; i < b->n; i++)
                replace_abort(&b->items[i]);
        free(b->items);
        *b = (struct replace_batch) {};
}

void replace_abort(struct replace *r) {
        if (r->tmp_name) {
                (void) unlinkat(r->dir_fd, r->tmp_name, 0);
                free(r->tmp_name);
                r->tmp_name = NULL;
        }
        r->fd = safe_close(r->fd);
        if (r->owns_dir_fd) {
                r->dir_fd = safe_close(r->dir_fd);
                r->owns_dir_fd = false;
        }
        free(r->name);
        r->name = NULL;
}
