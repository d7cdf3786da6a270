/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "approvals.h"
#include "io-util.h"
#include "macro.h"
#include "policy.h"
#include "replace.h"

#define STATE_FILE_MAX ((size_t) 4 << 20)

/* The state directory, locked (exclusive) for a read-modify-write, or shared for a read. */
static int open_state_dir(const char *state_dir, bool create, int lock, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;

        if (!state_dir || state_dir[0] != '/')
                return -EINVAL;
        if (create && mkdir(state_dir, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (flock(fd, lock) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* The array 'member' of dir_fd/name; an absent file is an empty array. */
static int read_array(int dir_fd, const char *name, const char *member, json_object **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        json_object *root, *arr = NULL;
        struct stat st;
        ssize_t n;

        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0) {
                if (errno != ENOENT)
                        return negative_errno();
                *ret = json_object_new_array();
                return *ret ? 0 : -ENOMEM;
        }
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || (size_t) st.st_size > STATE_FILE_MAX)
                return -EBADMSG;
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        n = pread(fd, buf, (size_t) st.st_size, 0);
        if (n < 0)
                return negative_errno();
        buf[n] = '\0';
        root = json_tokener_parse(buf);
        if (!root || !json_object_object_get_ex(root, member, &arr) || !json_object_is_type(arr, json_type_array)) {
                json_object_put(root);
                return -EBADMSG;
        }
        json_object_get(arr);
        json_object_put(root);
        *ret = arr;
        return 0;
}

static int write_array(int dir_fd, const char *name, const char *member, json_object *arr) {
        json_object *root = json_object_new_object();
        struct replace out;
        const char *s;
        int r;

        if (!root)
                return -ENOMEM;
        json_object_object_add(root, member, json_object_get(arr));
        s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        r = replace_begin(dir_fd, name, NULL, &out);
        if (r >= 0) {
                if (fchmod(out.fd, 0600) < 0)
                        r = negative_errno();
                if (r >= 0)
                        r = loop_write(out.fd, s, strlen(s));
                if (r >= 0)
                        r = loop_write(out.fd, "\n", 1);
                if (r >= 0)
                        r = replace_commit(&out);
                if (r < 0)
                        replace_abort(&out);
        }
        json_object_put(root);
        return r;
}

static const char *entry_name(json_object *e) {
        json_object *n;
        return json_object_object_get_ex(e, "name", &n) ? json_object_get_string(n) : NULL;
}

static int find(json_object *arr, const char *name) {
        for (size_t i = 0; i < json_object_array_length(arr); i++)
                if (streq_ptr(entry_name(json_object_array_get_idx(arr, i)), name))
                        return (int) i;
        return -1;
}

static void now_string(char buf[32]) {
        time_t t = time(NULL);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int approvals_is_approved(const char *state_dir, const char *name) {
        _cleanup_close_ int dir_fd = -EBADF;
        json_object *arr = NULL;
        char n[256];
        int r;

        r = open_state_dir(state_dir, false, LOCK_SH, &dir_fd);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = read_array(dir_fd, APPROVALS_FILE, "approved", &arr);
        if (r < 0)
                return r;
        policy_normalize_name(name, n, sizeof(n));
        r = find(arr, n) >= 0;
        json_object_put(arr);
        return r;
}

static void set_string(json_object *o, const char *key, const char *v) {
        if (v)
                json_object_object_add(o, key, json_object_new_string(v));
}

int approvals_add_pending(const char *state_dir, const struct approvals_pending *p) {
        _cleanup_close_ int dir_fd = -EBADF;
        json_object *arr = NULL, *e, *count;
        char n[256], now[32];
        int r, i;

        r = open_state_dir(state_dir, true, LOCK_EX, &dir_fd);
        if (r < 0)
                return r;
        r = read_array(dir_fd, PENDING_FILE, "pending", &arr);
        if (r < 0)
                return r;
        policy_normalize_name(p->name, n, sizeof(n));
        now_string(now);
        i = find(arr, n);
        if (i >= 0) {
                e = json_object_array_get_idx(arr, (size_t) i);
                json_object_object_get_ex(e, "count", &count);
                json_object_object_add(e, "count", json_object_new_int64(json_object_get_int64(count) + 1));
        } else {
                e = json_object_new_object();
                if (!e) {
                        json_object_put(arr);
                        return -ENOMEM;
                }
                set_string(e, "name", n);
                set_string(e, "first_seen", now);
                json_object_object_add(e, "count", json_object_new_int64(1));
                json_object_array_add(arr, e);
        }
        /* The latest sighting says where it is now. */
        set_string(e, "path", p->path);
        set_string(e, "kernel", p->kernel);
        set_string(e, "sha256", p->sha256);
        set_string(e, "requester", p->requester);
        set_string(e, "last_seen", now);
        r = write_array(dir_fd, PENDING_FILE, "pending", arr);
        json_object_put(arr);
        return r;
}

int approvals_approve(const char *state_dir, const char *name, uid_t uid, json_object **ret_pending) {
        _cleanup_close_ int dir_fd = -EBADF;
        json_object *approved = NULL, *pending = NULL, *e, *left = NULL;
        char n[256], now[32];
        int r, i, already;

        policy_normalize_name(name, n, sizeof(n));
        if (!*n)
                return -EINVAL;
        r = open_state_dir(state_dir, true, LOCK_EX, &dir_fd);
        if (r < 0)
                return r;
        r = read_array(dir_fd, APPROVALS_FILE, "approved", &approved);
        if (r < 0)
                return r;
        r = read_array(dir_fd, PENDING_FILE, "pending", &pending);
        if (r < 0)
                goto out;
        already = find(approved, n) >= 0;
        if (!already) {
                e = json_object_new_object();
                if (!e) {
                        r = -ENOMEM;
                        goto out;
                }
                now_string(now);
                set_string(e, "name", n);
                set_string(e, "time", now);
                json_object_object_add(e, "uid", json_object_new_int64((int64_t) uid));
                json_object_array_add(approved, e);
                r = write_array(dir_fd, APPROVALS_FILE, "approved", approved);
                if (r < 0)
                        goto out;
        }
        i = find(pending, n);
        if (i >= 0) {
                left = json_object_get(json_object_array_get_idx(pending, (size_t) i));
                json_object_array_del_idx(pending, (size_t) i, 1);
                r = write_array(dir_fd, PENDING_FILE, "pending", pending);
                if (r < 0)
                        goto out;
        }
        if (ret_pending)
                *ret_pending = TAKE_PTR(left);
        r = already;
out:
        json_object_put(left);
        json_object_put(approved);
        json_object_put(pending);
        return r;
}

static int list(const char *state_dir, const char *file, const char *member, json_object **ret) {
        _cleanup_close_ int dir_fd = -EBADF;
        int r;

        r = open_state_dir(state_dir, false, LOCK_SH, &dir_fd);
        if (r == -ENOENT) {
                *ret = json_object_new_array();
                return *ret ? 0 : -ENOMEM;
        }
        if (r < 0)
                return r;
        return read_array(dir_fd, file, member, ret);
}

int approvals_list_pending(const char *state_dir, json_object **ret) {
        return list(state_dir, PENDING_FILE, "pending", ret);
}

int approvals_list_approved(const char *state_dir, json_object **ret) {
        return list(state_dir, APPROVALS_FILE, "approved", ret);
}
