/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "io-util.h"
#include "macro.h"
#include "policy-rate.h"

#define RATE_TEXT_MAX 128

int policy_rate_parse(const char *text, size_t len, struct policy_rate *ret) {
        char buf[RATE_TEXT_MAX], tail;
        uint64_t micro, last;

        if (len == 0) {
                *ret = (struct policy_rate) {}; /* full: policy_decide() starts it */
                return 0;
        }
        if (len >= sizeof(buf) || memchr(text, '\0', len))
                return -EBADMSG;
        memcpy(buf, text, len);
        buf[len] = '\0';
        if (sscanf(buf, "v1 %" SCNu64 " %" SCNu64 "%c", &micro, &last, &tail) != 3 || tail != '\n' ||
            strchr(buf, '\n') != buf + len - 1 || strchr(buf, '-'))
                return -EBADMSG;
        *ret = (struct policy_rate) {
                .started = true,
                .tokens = (double) micro / 1e6,
                .last_usec = last,
        };
        return 0;
}

int policy_rate_format(const struct policy_rate *r, char *buf, size_t size) {
        uint64_t micro = r->tokens > 0 ? (uint64_t) (r->tokens * 1e6 + 0.5) : 0;
        int n = snprintf(buf, size, "v1 %" PRIu64 " %" PRIu64 "\n", micro, r->last_usec);

        return n < 0 || (size_t) n >= size ? -ENOBUFS : n;
}

static int rate_open(const char *state_dir, int *ret) {
        _cleanup_close_ int dir_fd = -EBADF, fd = -EBADF;

        dir_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dir_fd < 0)
                return negative_errno();
        /* Anyone else who could write it could hand out tokens. */
        fd = openat_own_file(dir_fd, POLICY_RATE_FILE, O_RDWR | O_CREAT | O_NONBLOCK, 0600, NULL);
        if (fd < 0)
                return fd;
        if (flock(fd, LOCK_EX) < 0)
                return negative_errno();
        *ret = TAKE_FD(fd);
        return 0;
}

static int rate_read(int fd, uint64_t now_usec, struct policy_rate *ret) {
        char buf[RATE_TEXT_MAX];
        ssize_t n = pread(fd, buf, sizeof(buf), 0);

        if (n < 0)
                return negative_errno();
        if (policy_rate_parse(buf, (size_t) n, ret) < 0)
                *ret = (struct policy_rate) { .started = true, .tokens = 0, .last_usec = now_usec }; /* fail closed */
        return 0;
}

static int rate_write(int fd, const struct policy_rate *r) {
        char buf[RATE_TEXT_MAX];
        int n = policy_rate_format(r, buf, sizeof(buf));
        ssize_t w;

        if (n < 0)
                return n;
        w = pwrite(fd, buf, (size_t) n, 0);
        if (w < 0)
                return negative_errno();
        if (w != n)
                return -EIO;
        if (ftruncate(fd, n) < 0)
                return negative_errno();
        return 0;
}

_printf_(2, 3) static void refuse(struct policy_decision *d, const char *fmt, ...) {
        va_list ap;

        d->allow = false;
        d->pending = false;
        d->rule = "rate-limit";
        va_start(ap, fmt);
        (void) vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
        va_end(ap);
}

int policy_decide_shared(const struct policy *p, const struct policy_facts *f, const char *state_dir,
                         struct policy_decision *d) {
        _cleanup_close_ int fd = -EBADF;
        struct policy_rate bucket;
        int r;

        /* First without a bucket: a refusal by another rule, or a module already ours (which
         * takes no token), is the answer without touching the file (a scan of a signed tree
         * decides thousands of those). */
        policy_decide(p, f, NULL, d);
        if (p->rate_tokens == 0 || p->rate_interval_usec == 0 || !d->allow || streq(d->rule, "ours"))
                return 0;

        r = rate_open(state_dir, &fd);
        if (r >= 0)
                r = rate_read(fd, f->now_usec, &bucket);
        if (r < 0) {
                refuse(d, "the shared RateLimit= bucket %s/%s cannot be used (%s); nothing is signed meanwhile",
                       state_dir, POLICY_RATE_FILE, strerror(-r));
                return r;
        }
        policy_decide(p, f, &bucket, d);
        r = rate_write(fd, &bucket);
        if (r < 0 && d->allow) {
                refuse(d, "the shared RateLimit= bucket %s/%s cannot be written (%s); nothing is signed meanwhile",
                       state_dir, POLICY_RATE_FILE, strerror(-r));
                return r;
        }
        return 0;
}
