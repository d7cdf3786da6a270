/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The hash-chained audit log: writing records, and checking the chain (format in audit.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "digest.h"
#include "io-util.h"
#include "macro.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

struct audit_log {
        pthread_mutex_t lock;
        int fd;
        char *path;
        struct audit_head head;
        off_t end;              /* where the file ended after our last append (or the open) */
};

static const char *const event_names[_AUDIT_EVENT_MAX] = {
        [AUDIT_EVENT_SIGNED] = "signed",
        [AUDIT_EVENT_RESIGNED] = "resigned",
        [AUDIT_EVENT_REFUSED] = "refused",
        [AUDIT_EVENT_FAILED] = "failed",
        [AUDIT_EVENT_KEY_LOADED] = "key-loaded",
        [AUDIT_EVENT_KEY_ROTATED] = "key-rotated",
        [AUDIT_EVENT_RELOADED] = "reloaded",
        [AUDIT_EVENT_APPROVED] = "approved",
};

const char *audit_event_to_string(enum audit_event e) {
        return (size_t) e < ELEMENTSOF(event_names) ? event_names[e] : NULL;
}

int audit_event_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(event_names); i++)
                if (streq(s, event_names[i]))
                        return (int) i;
        return -EINVAL;
}

static bool is_hex64(const char *s, bool lower_only) {
        size_t i;

        for (i = 0; s[i]; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                      (!lower_only && s[i] >= 'A' && s[i] <= 'F')))
                        return false;
        return i == 64;
}

/* --- heads ------------------------------------------------------------------------------ */

int audit_head_parse(const char *s, struct audit_head *ret) {
        unsigned long long n;
        const char *colon;
        char *end;

        if (!s || !(colon = strchr(s, ':')) || s[0] < '0' || s[0] > '9')
                return -EINVAL;
        errno = 0;
        n = strtoull(s, &end, 10);
        if (errno || end != colon || !is_hex64(colon + 1, false))
                return -EINVAL;
        ret->seq = n;
        for (size_t i = 0; i < 65; i++)
                ret->hash[i] = (char) ((colon[1 + i] >= 'A' && colon[1 + i] <= 'F') ? colon[1 + i] - 'A' + 'a' : colon[1 + i]);
        return 0;
}

void audit_head_format(const struct audit_head *h, char buf[AUDIT_HEAD_STRING_MAX]) {
        snprintf(buf, AUDIT_HEAD_STRING_MAX, "%llu:%s", (unsigned long long) h->seq, h->hash);
}

static void head_empty(struct audit_head *h) {
        h->seq = 0;
        memcpy(h->hash, ZERO_HASH, sizeof(h->hash));
}

/* --- dkms ------------------------------------------------------------------------------- */

int audit_dkms_from_path(const char *path, char **ret_package, char **ret_version) {
        static const char marker[] = "/var/lib/dkms/";
        const char *p, *name, *slash1, *slash2;
        char *package, *version;

        if (!path)
                return -ENOENT;
        if (strncmp(path, marker + 1, sizeof(marker) - 2) == 0) /* relative: var/lib/dkms/... */
                p = path + sizeof(marker) - 2;
        else if ((p = strstr(path, marker)))
                p += sizeof(marker) - 1;
        else
                return -ENOENT;
        name = p;
        slash1 = strchr(name, '/');
        if (!slash1 || slash1 == name)
                return -ENOENT;
        slash2 = strchr(slash1 + 1, '/');
        /* NAME/VERSION/<something>: the module lies below the version's directory. The
         * NAME/kernel-KVER-ARCH links dkms keeps are not versions. */
        if (!slash2 || slash2 == slash1 + 1 || !slash2[1] || strncmp(slash1 + 1, "kernel-", 7) == 0 ||
            strncmp(slash1 + 1, "source/", 7) == 0 || name[0] == '.' || slash1[1] == '.')
                return -ENOENT;
        package = strndup(name, (size_t) (slash1 - name));
        version = strndup(slash1 + 1, (size_t) (slash2 - slash1 - 1));
        if (!package || !version) {
                free(package);
                free(version);
                return -ENOMEM;
        }
        *ret_package = package;
        *ret_version = version;
        return 0;
}

/* The module's name from its file name: "zfs.ko.xz" -> "zfs". */
static char *name_from_path(const char *path) {
        static const char *const suffixes[] = { ".ko.xz", ".ko.zst", ".ko.gz", ".ko" };
        const char *base = strrchr(path, '/');
        size_t n;

        base = base ? base + 1 : path;
        n = strlen(base);
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t s = strlen(suffixes[i]);
                if (n > s && streq(base + n - s, suffixes[i])) {
                        n -= s;
                        break;
                }
        }
        return n ? strndup(base, n) : NULL;
}

/* --- one record: writing ------------------------------------------------------------------ */

static int add_string(json_object *o, const char *key, const char *value) {
        json_object *v;

        if (!value)
                return 0;
        v = json_object_new_string(value);
        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int add_object(json_object *o, const char *key, json_object *v) {
        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int format_time(char buf[32]) {
        struct timespec ts;
        struct tm tm;

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || !gmtime_r(&ts.tv_sec, &tm) ||
            strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EIO;
        return 0;
}

static json_object *requester_json(const struct audit_requester *q) {
        json_object *o;

        switch (q->kind) {
        case AUDIT_REQUESTER_PEER:
        case AUDIT_REQUESTER_COMMAND:
                o = json_object_new_object();
                if (!o)
                        return NULL;
                if (add_object(o, "pid", json_object_new_int64((int64_t) q->pid)) < 0 ||
                    add_object(o, "uid", json_object_new_int64((int64_t) q->uid)) < 0 ||
                    add_string(o, "comm", q->comm ?: "?") < 0 ||
                    (q->kind == AUDIT_REQUESTER_COMMAND && add_string(o, "command", q->command ?: "?") < 0)) {
                        json_object_put(o);
                        return NULL;
                }
                return o;
        case AUDIT_REQUESTER_WATCHER:
                return json_object_new_string("watcher");
        case AUDIT_REQUESTER_CLI:
                return json_object_new_string("cli");
        case AUDIT_REQUESTER_DAEMON:
        default:
                return json_object_new_string("daemon");
        }
}

/* The line for rec as record number seq after a line hashing to prev (no '\n'). */
static int record_format(const struct audit_record *rec, uint64_t seq, const char *prev, char **ret, size_t *ret_len) {
        _cleanup_free_ char *derived_name = NULL, *package = NULL, *version = NULL;
        const char *event = audit_event_to_string(rec->event), *s;
        json_object *o;
        char now[32];
        int r;

        if (!event || seq > INT64_MAX)
                return -EINVAL;
        r = format_time(now);
        if (r < 0)
                return r;
        if (!rec->module && rec->path)
                derived_name = name_from_path(rec->path);
        if (rec->dkms_package && rec->dkms_version) {
                package = strdup(rec->dkms_package);
                version = strdup(rec->dkms_version);
                if (!package || !version)
                        return -ENOMEM;
        } else if (rec->path) {
                r = audit_dkms_from_path(rec->path, &package, &version);
                if (r < 0 && r != -ENOENT)
                        return r;
        }

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        if (add_object(o, "seq", json_object_new_int64((int64_t) seq)) < 0 || add_string(o, "time", now) < 0 ||
            add_string(o, "event", event) < 0 || add_string(o, "path", rec->path) < 0 ||
            add_string(o, "module", rec->module ?: derived_name) < 0 || add_string(o, "version", rec->version) < 0 ||
            add_string(o, "kernel", rec->kernel) < 0 || add_string(o, "sha256_before", rec->sha256_before) < 0 ||
            add_string(o, "sha256_after", rec->sha256_after) < 0 || add_string(o, "key", rec->key_fingerprint) < 0 ||
            add_object(o, "requester", requester_json(&rec->requester)) < 0)
                goto oom;
        if (package) {
                json_object *d = json_object_new_object();
                if (!d || add_string(d, "package", package) < 0 || add_string(d, "version", version) < 0) {
                        json_object_put(d);
                        goto oom;
                }
                if (add_object(o, "dkms", d) < 0)
                        goto oom;
        }
        if (add_string(o, "rule", rec->rule) < 0 || add_string(o, "reason", rec->reason) < 0 ||
            add_string(o, "provenance", rec->provenance) < 0 || add_string(o, "prev", prev) < 0)
                goto oom;

        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                goto oom;
        if (strchr(s, '\n')) { /* json-c escapes control characters; never write a split record */
                json_object_put(o);
                return -EINVAL;
        }
        *ret_len = strlen(s);
        *ret = strdup(s);
        json_object_put(o);
        return *ret ? 0 : -ENOMEM;
oom:
        json_object_put(o);
        return -ENOMEM;
}

/* --- one record: reading ------------------------------------------------------------------ */

/* Checks that line is one record as audit.h describes it; returns its seq and prev.
 * On failure *ret_why says what is wrong. */
static int record_parse(const char *line, size_t len, uint64_t *ret_seq, char ret_prev[65], const char **ret_why) {
        json_tokener *tok;
        json_object *o, *v;
        int64_t seq;
        const char *s;
        int r = -EBADMSG;

        if (len == 0) {
                *ret_why = "empty line";
                return -EBADMSG;
        }
        if (len > INT32_MAX || memchr(line, '\0', len)) {
                *ret_why = "not a JSON object (NUL byte in the line)";
                return -EBADMSG;
        }
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, line, (int) len);
        if (!o || json_tokener_get_error(tok) != json_tokener_success || (size_t) json_tokener_get_parse_end(tok) != len ||
            !json_object_is_type(o, json_type_object)) {
                *ret_why = "not a JSON object";
                goto out;
        }
        if (!json_object_object_get_ex(o, "seq", &v) || !json_object_is_type(v, json_type_int) ||
            (seq = json_object_get_int64(v)) < 1) {
                *ret_why = "no valid \"seq\"";
                goto out;
        }
        if (!json_object_object_get_ex(o, "time", &v) || !json_object_is_type(v, json_type_string)) {
                *ret_why = "no \"time\"";
                goto out;
        }
        if (!json_object_object_get_ex(o, "event", &v) || !json_object_is_type(v, json_type_string) ||
            audit_event_from_string(json_object_get_string(v)) < 0) {
                *ret_why = "no known \"event\"";
                goto out;
        }
        if (!json_object_object_get_ex(o, "prev", &v) || !json_object_is_type(v, json_type_string) ||
            !is_hex64((s = json_object_get_string(v)), true)) {
                *ret_why = "no valid \"prev\" (64 lowercase hex digits)";
                goto out;
        }
        *ret_seq = (uint64_t) seq;
        memcpy(ret_prev, s, 65);
        r = 0;
out:
        json_object_put(o);
        json_tokener_free(tok);
        return r;
}

/* --- walking lines ------------------------------------------------------------------------ */

typedef int (*line_fn_t)(uint64_t line_no, const char *line, size_t len, bool complete, void *userdata);

static int walk_lines(int fd, off_t offset, line_fn_t fn, void *userdata) {
        const size_t cap = 2 * AUDIT_LINE_MAX;
        _cleanup_free_ char *buf = malloc(cap);
        size_t fill = 0;
        uint64_t line_no = 0;
        bool eof = false;
        int r;

        if (!buf)
                return -ENOMEM;
        while (!eof || fill > 0) {
                size_t start = 0;
                char *nl;

                if (!eof && fill < cap) {
                        ssize_t n = pread(fd, buf + fill, cap - fill, offset);
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                return negative_errno();
                        }
                        if (n == 0)
                                eof = true;
                        fill += (size_t) n;
                        offset += n;
                }
                while ((nl = memchr(buf + start, '\n', fill - start))) {
                        size_t len = (size_t) (nl - (buf + start));
                        if (len > AUDIT_LINE_MAX)
                                return -EBADMSG;
                        r = fn(++line_no, buf + start, len, true, userdata);
                        if (r < 0)
                                return r;
                        start += len + 1;
                }
                if (fill - start > AUDIT_LINE_MAX)
                        return -EBADMSG;
                if (eof && fill > start) {
                        r = fn(++line_no, buf + start, fill - start, false, userdata);
                        return r < 0 ? r : 0;
                }
                memmove(buf, buf + start, fill - start);
                fill -= start;
                if (eof)
                        break;
        }
        return 0;
}

int audit_for_each_line(int fd, line_fn_t fn, void *userdata) {
        return walk_lines(fd, 0, fn, userdata);
}

/* --- the chain ------------------------------------------------------------------------------ */

struct chain {
        struct audit_head head;               /* of the last good record */
        uint64_t line_no;                     /* of that record */
        const struct audit_head *anchor;
        struct audit_verify_result *res;
};

_printf_(4, 5) static int chain_bad(struct chain *c, uint64_t line_no, uint64_t seq, const char *fmt, ...) {
        va_list ap;

        c->res->bad_line = line_no;
        c->res->bad_seq = seq;
        va_start(ap, fmt);
        vsnprintf(c->res->why, sizeof(c->res->why), fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

static int chain_step(uint64_t line_no, const char *line, size_t len, bool complete, void *userdata) {
        struct chain *c = userdata;
        uint64_t seq = 0, want = c->head.seq + 1;
        const char *why = NULL;
        char prev[65], hash[65];
        int r;

        r = record_parse(line, len, &seq, prev, &why);
        if (r == -ENOMEM)
                return r;
        if (!complete)
                return chain_bad(c, line_no, r < 0 ? want : seq,
                                 "incomplete record at the end (no newline): the file was cut in the middle of a record%s",
                                 r < 0 ? "" : " (or the newline was removed)");
        if (r < 0)
                return chain_bad(c, line_no, want, "not a valid record: %s", why);
        if (seq != want) {
                if (seq > want)
                        return chain_bad(c, line_no, seq,
                                         "seq %llu where %llu was expected: record(s) %llu..%llu are missing (removed or moved)",
                                         (unsigned long long) seq, (unsigned long long) want, (unsigned long long) want,
                                         (unsigned long long) seq - 1);
                return chain_bad(c, line_no, seq, "seq %llu where %llu was expected: records out of order or repeated",
                                 (unsigned long long) seq, (unsigned long long) want);
        }
        if (!streq(prev, c->head.hash)) {
                if (c->head.seq == 0)
                        return chain_bad(c, line_no, seq,
                                         "the first record's prev is not zeros: records before it were removed, or it was altered");
                /* The line before no longer hashes to what this record says it was: that one
                 * was altered (or this record's prev was). */
                return chain_bad(c, c->line_no, c->head.seq,
                                 "its SHA-256 does not match the prev of the next record (seq %llu): this record was altered "
                                 "(or the next one's prev was)",
                                 (unsigned long long) seq);
        }
        r = digest_sha256_hex(line, len, hash);
        if (r < 0)
                return r;
        if (c->anchor && c->anchor->seq == seq && !streq(c->anchor->hash, hash))
                return chain_bad(c, line_no, seq,
                                 "its SHA-256 %s is not the %s of the head given: this record was altered, or the log was "
                                 "rewritten from here on",
                                 hash, c->anchor->hash);
        c->head.seq = seq;
        memcpy(c->head.hash, hash, sizeof(hash));
        c->line_no = line_no;
        c->res->n_records++;
        return 0;
}

int audit_verify_fd(int fd, const struct audit_head *anchor, struct audit_verify_result *ret) {
        struct audit_verify_result res = {};
        struct chain c = { .anchor = anchor, .res = &res };
        int r;

        head_empty(&c.head);
        r = walk_lines(fd, 0, chain_step, &c);
        if (r == -EBADMSG && res.bad_line == 0) /* the walker's own complaint: an endless line */
                chain_bad(&c, c.line_no + 1, c.head.seq + 1, "a line longer than %zu bytes: not a record", AUDIT_LINE_MAX);
        else if (r < 0 && r != -EBADMSG)
                return r;
        else if (r == 0 && anchor && anchor->seq > c.head.seq) {
                r = chain_bad(&c, c.line_no + 1, c.head.seq + 1,
                              "the log ends at seq %llu, but the head given names seq %llu: %llu record(s) were cut off the end",
                              (unsigned long long) c.head.seq, (unsigned long long) anchor->seq,
                              (unsigned long long) (anchor->seq - c.head.seq));
        }
        res.head = c.head;
        *ret = res;
        return r < 0 ? -EBADMSG : 0;
}

/* --- the writer ------------------------------------------------------------------------------- */

/* The head from the last line of a file of 'size' bytes. */
static int read_tail(int fd, off_t size, struct audit_head *ret) {
        size_t window = (size_t) MIN((off_t) AUDIT_LINE_MAX + 1, size);
        _cleanup_free_ char *buf = NULL;
        const char *why = NULL, *line;
        char prev[65];
        size_t len;
        ssize_t n;
        int r;

        if (size == 0) {
                head_empty(ret);
                return 0;
        }
        buf = malloc(window);
        if (!buf)
                return -ENOMEM;
        n = pread(fd, buf, window, size - (off_t) window);
        if (n < 0)
                return negative_errno();
        if ((size_t) n != window || buf[window - 1] != '\n')
                return -EBADMSG; /* cut in the middle of a record */
        line = memrchr(buf, '\n', window - 1);
        if (line)
                line++;
        else if ((off_t) window < size)
                return -EBADMSG; /* longer than any record */
        else
                line = buf;
        len = (size_t) (buf + window - 1 - line);
        r = record_parse(line, len, &ret->seq, prev, &why);
        if (r < 0)
                return r;
        return digest_sha256_hex(line, len, ret->hash);
}

static int check_owner_mode(const struct stat *st) {
        if (st->st_uid != geteuid() || (st->st_mode & 0022))
                return -EPERM;
        return 0;
}

static int lock_fd(int fd, int op) {
        while (flock(fd, op) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return 0;
}

int audit_log_open(const char *state_dir, struct audit_log **ret) {
        _cleanup_close_ int dir_fd = -EBADF, fd = -EBADF;
        struct audit_log *log;
        struct stat st;
        bool created = false;
        int r;

        if (!state_dir || state_dir[0] != '/')
                return -EINVAL;
        if (mkdir(state_dir, 0700) >= 0)
                created = true;
        else if (errno != EEXIST)
                return negative_errno();
        dir_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                return errno == ENOTDIR ? -ELOOP : negative_errno();
        if (fstat(dir_fd, &st) < 0)
                return negative_errno();
        r = check_owner_mode(&st);
        if (r < 0)
                return r;

        fd = openat_own_file(dir_fd, AUDIT_LOG_FILE, O_RDWR | O_APPEND | O_CREAT, 0600, &st);
        if (fd < 0)
                return fd;
        if (created || st.st_size == 0)
                (void) fsync(dir_fd); /* the file's name is as durable as its records */

        log = calloc(1, sizeof(*log));
        if (!log)
                return -ENOMEM;
        log->fd = -EBADF;
        if (asprintf(&log->path, "%s/%s", state_dir, AUDIT_LOG_FILE) < 0) {
                free(log);
                return -ENOMEM;
        }
        r = lock_fd(fd, LOCK_SH);
        if (r >= 0) {
                if (fstat(fd, &st) < 0)
                        r = negative_errno();
                else
                        r = read_tail(fd, st.st_size, &log->head);
                (void) flock(fd, LOCK_UN);
        }
        if (r < 0) {
                free(log->path);
                free(log);
                return r;
        }
        log->end = st.st_size;
        pthread_mutex_init(&log->lock, NULL);
        log->fd = TAKE_FD(fd);
        *ret = log;
        return 0;
}

struct audit_log *audit_log_free(struct audit_log *log) {
        if (!log)
                return NULL;
        safe_close(log->fd);
        pthread_mutex_destroy(&log->lock);
        free(log->path);
        free(log);
        return NULL;
}

const char *audit_log_path(const struct audit_log *log) {
        return log->path;
}

void audit_log_get_head(struct audit_log *log, struct audit_head *ret) {
        pthread_mutex_lock(&log->lock);
        *ret = log->head;
        pthread_mutex_unlock(&log->lock);
}

/* Someone else (modsignctl sign) appended since our last write: adopt what they wrote if it
 * continues our chain. */
static int catch_up(struct audit_log *log, off_t size) {
        struct audit_verify_result res = {};
        struct chain c = { .head = log->head, .res = &res };
        int r;

        if (size < log->end)
                return -ESTALE; /* shrank: records we wrote are gone */
        r = walk_lines(log->fd, log->end, chain_step, &c);
        if (r == -EBADMSG)
                return -ESTALE;
        if (r < 0)
                return r;
        log->head = c.head;
        log->end = size;
        return 0;
}

static int append_locked(struct audit_log *log, const struct audit_record *rec, struct audit_head *ret_head,
                         char **ret_line) {
        _cleanup_free_ char *line = NULL;
        struct audit_head head;
        struct stat st;
        size_t len;
        int r;

        if (fstat(log->fd, &st) < 0)
                return negative_errno();
        if (st.st_size != log->end) {
                r = catch_up(log, st.st_size);
                if (r < 0)
                        return r;
        }
        r = record_format(rec, log->head.seq + 1, log->head.hash, &line, &len);
        if (r < 0)
                return r;
        if (len + 1 > AUDIT_LINE_MAX)
                return -E2BIG;
        head.seq = log->head.seq + 1;
        r = digest_sha256_hex(line, len, head.hash);
        if (r < 0)
                return r;

        line[len] = '\n'; /* the NUL goes: written as one piece with its newline */
        r = loop_write(log->fd, line, len + 1);
        if (r >= 0 && fsync(log->fd) < 0)
                r = negative_errno();
        line[len] = '\0';
        if (r < 0) {
                /* Leave no partial or undurable line behind: the next record must follow the
                 * last one that is really there. */
                if (ftruncate(log->fd, log->end) < 0)
                        return r; /* the first error is the one to report */
                return r;
        }
        log->head = head;
        log->end = st.st_size + (off_t) len + 1;
        if (ret_head)
                *ret_head = head;
        if (ret_line)
                *ret_line = TAKE_PTR(line);
        return 0;
}

int audit_log_append(struct audit_log *log, const struct audit_record *rec, struct audit_head *ret_head,
                     char **ret_line) {
        int r;

        if (!log || !rec)
                return -EINVAL;
        pthread_mutex_lock(&log->lock);
        r = lock_fd(log->fd, LOCK_EX);
        if (r >= 0) {
                r = append_locked(log, rec, ret_head, ret_line);
                (void) flock(log->fd, LOCK_UN);
        }
        pthread_mutex_unlock(&log->lock);
        return r;
}
