/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* audit.c: the hash-chained audit log. Records are appended, the chain continues across a
 * reopen and across writers, and every kind of tampering is found and named. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "macro.h"
#include "unit-util.h"

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

/* --- helpers ----------------------------------------------------------------------------- */

/* SHA-256 hex, computed here independently of audit.c. */
static void hex_sha256(const void *buf, size_t len, char out[65]) {
        unsigned char md[32];
        unsigned int n = 0;

        ck_assert(EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL) == 1 && n == 32);
        for (unsigned i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
}

struct lines {
        char *item[64];
        size_t n;
};

/* The file's lines, without their newlines (the last may lack one: then *ret_trailing is 0). */
static void read_lines(const char *path, struct lines *ret) {
        size_t len;
        char *buf = (char *) tu_read_file(path, &len), *p = buf, *end = buf + len;

        *ret = (struct lines) {};
        while (p < end) {
                char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
                ck_assert(ret->n < ELEMENTSOF(ret->item));
                ret->item[ret->n++] = strndup(p, n);
                p += n + (nl ? 1 : 0);
        }
        free(buf);
}

static void write_lines(const char *path, const struct lines *l) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        for (size_t i = 0; i < l->n; i++)
                fprintf(f, "%s\n", l->item[i]);
        ck_assert_int_eq(fclose(f), 0);
}

static void free_lines(struct lines *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->item[i]);
        l->n = 0;
}

static json_object *parse(const char *line) {
        json_object *o = json_tokener_parse(line);
        ck_assert_msg(o && json_object_is_type(o, json_type_object), "not a JSON object: %s", line);
        return o;
}

static const char *member(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static struct audit_record sample(unsigned i) {
        static char path[64];
        snprintf(path, sizeof(path), "/lib/modules/6.1.0-1-amd64/updates/m%u.ko", i);
        return (struct audit_record) {
                .event = AUDIT_EVENT_SIGNED,
                .path = path,
                .version = "1.0",
                .kernel = "6.1.0-1-amd64",
                .sha256_before = "1111111111111111111111111111111111111111111111111111111111111111",
                .sha256_after = "2222222222222222222222222222222222222222222222222222222222222222",
                .key_fingerprint = "3333333333333333333333333333333333333333333333333333333333333333",
                .requester = { .kind = AUDIT_REQUESTER_WATCHER },
                .rule = "watched-tree",
        };
}

/* A path for a state directory that does not exist yet, in a new scratch directory. */
static char *new_state_dir(void) {
        char *base = tu_tmpdir(), *dir = tu_path(base, "state");

        free(base);
        return dir;
}

/* A new state directory (*ret_dir) with n sample records; *ret_head gets the head. */
static void make_log(unsigned n, char **ret_dir, struct audit_head *ret_head) {
        char *dir = new_state_dir();
        struct audit_log *log = NULL;
        struct audit_head h = {};
        int r;

        r = audit_log_open(dir, &log);
        ck_assert_msg(r == 0, "audit_log_open: %s", strerror(-r));
        for (unsigned i = 1; i <= n; i++) {
                struct audit_record rec = sample(i);
                r = audit_log_append(log, &rec, &h, NULL);
                ck_assert_msg(r == 0, "append %u: %s", i, strerror(-r));
        }
        audit_log_free(log);
        if (ret_head)
                *ret_head = h;
        *ret_dir = dir;
}

static char *log_path_of(const char *dir) {
        return tu_path(dir, AUDIT_LOG_FILE);
}

/* Verifies path; returns the result code and fills *res. */
static int verify_path(const char *path, const struct audit_head *anchor, struct audit_verify_result *res) {
        int fd = open(path, O_RDONLY | O_CLOEXEC), r;

        ck_assert_int_ge(fd, 0);
        r = audit_verify_fd(fd, anchor, res);
        close(fd);
        return r;
}

static void expect_bad(const char *path, const struct audit_head *anchor, uint64_t line, uint64_t seq, const char *text) {
        struct audit_verify_result res;
        int r = verify_path(path, anchor, &res);

        ck_assert_msg(r == -EBADMSG, "verify: expected -EBADMSG, got %d (%s)", r, r ? strerror(-r) : "intact");
        ck_assert_msg(res.bad_line == line && res.bad_seq == seq, "first bad record: line %llu seq %llu (%s), expected line %llu seq %llu",
                      (unsigned long long) res.bad_line, (unsigned long long) res.bad_seq, res.why,
                      (unsigned long long) line, (unsigned long long) seq);
        ck_assert_msg(strstr(res.why, text), "why '%s' does not say '%s'", res.why, text);
}

static void expect_intact(const char *path, const struct audit_head *anchor, uint64_t n) {
        struct audit_verify_result res;
        int r = verify_path(path, anchor, &res);

        ck_assert_msg(r == 0, "verify: %d, line %llu seq %llu: %s", r, (unsigned long long) res.bad_line,
                      (unsigned long long) res.bad_seq, res.why);
        ck_assert_int_eq(res.n_records, n);
        ck_assert_int_eq(res.bad_line, 0);
}

/* --- tests ----------------------------------------------------------------------------------- */

START_TEST(test_append_format) {
        char *dir = NULL, *path;
        struct audit_head h;
        struct lines l;
        struct stat st;

        make_log(3, &dir, &h);
        path = log_path_of(dir);
        ck_assert_int_eq(stat(dir, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0700);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0600);

        read_lines(path, &l);
        ck_assert_int_eq(l.n, 3);
        for (size_t i = 0; i < l.n; i++) {
                json_object *o = parse(l.item[i]), *q;
                char want_prev[65];

                ck_assert_int_eq(json_object_get_int64(json_object_object_get(o, "seq")), (int64_t) i + 1);
                ck_assert_str_eq(member(o, "event"), "signed");
                ck_assert_str_eq(member(o, "module"), i == 0 ? "m1" : i == 1 ? "m2" : "m3");
                ck_assert_str_eq(member(o, "kernel"), "6.1.0-1-amd64");
                ck_assert_str_eq(member(o, "version"), "1.0");
                ck_assert_str_eq(member(o, "rule"), "watched-tree");
                ck_assert_str_eq(member(o, "requester"), "watcher");
                ck_assert_ptr_null(member(o, "dkms"));
                ck_assert_ptr_null(member(o, "reason"));
                /* RFC 3339 UTC */
                ck_assert_int_eq(tu_system("echo '%s' | grep -qxE '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'",
                                           member(o, "time")), 0);
                /* no escaped slashes, no spaces: plain json-c */
                ck_assert_ptr_nonnull(strstr(l.item[i], "\"path\":\"/lib/modules/"));
                if (i == 0)
                        memcpy(want_prev, ZEROS, 65);
                else
                        hex_sha256(l.item[i - 1], strlen(l.item[i - 1]), want_prev);
                ck_assert_str_eq(member(o, "prev"), want_prev);
                ck_assert(!json_object_object_get_ex(o, "nothing", &q));
                json_object_put(o);
        }
        {
                char last[65];
                hex_sha256(l.item[2], strlen(l.item[2]), last);
                ck_assert_int_eq(h.seq, 3);
                ck_assert_str_eq(h.hash, last);
        }
        expect_intact(path, NULL, 3);
        expect_intact(path, &h, 3);
        free_lines(&l);
        free(path);
        free(dir);
}
END_TEST

START_TEST(test_peer_dkms_and_escapes) {
        char *dir = new_state_dir(), *path, *line = NULL;
        struct audit_log *log = NULL;
        struct audit_record rec = {
                .event = AUDIT_EVENT_REFUSED,
                .path = "/var/lib/dkms/zfs/2.1.11/6.1.0-1-amd64/x86_64/module/zfs.ko.xz",
                .requester = { .kind = AUDIT_REQUESTER_PEER, .pid = 4242, .uid = 0, .comm = "dkms" },
                .rule = "kernel-not-installed",
                .reason = "a reason\nwith a newline and \"quotes\"",
        };
        struct lines l;
        json_object *o, *q;

        ck_assert_int_eq(audit_log_open(dir, &log), 0);
        ck_assert_int_eq(audit_log_append(log, &rec, NULL, &line), 0);
        rec.event = (enum audit_event) 99;
        ck_assert_int_eq(audit_log_append(log, &rec, NULL, NULL), -EINVAL);
        audit_log_free(log);

        path = log_path_of(dir);
        read_lines(path, &l);
        ck_assert_int_eq(l.n, 1); /* the newline of the reason did not split the record */
        ck_assert_str_eq(l.item[0], line);
        o = parse(l.item[0]);
        ck_assert_str_eq(member(o, "event"), "refused");
        ck_assert_str_eq(member(o, "module"), "zfs");
        ck_assert_str_eq(member(o, "reason"), "a reason\nwith a newline and \"quotes\"");
        q = json_object_object_get(o, "requester");
        ck_assert_int_eq(json_object_get_int(json_object_object_get(q, "pid")), 4242);
        ck_assert_int_eq(json_object_get_int(json_object_object_get(q, "uid")), 0);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(q, "comm")), "dkms");
        q = json_object_object_get(o, "dkms");
        ck_assert_str_eq(json_object_get_string(json_object_object_get(q, "package")), "zfs");
        ck_assert_str_eq(json_object_get_string(json_object_object_get(q, "version")), "2.1.11");
        json_object_put(o);
        expect_intact(path, NULL, 1);
        free_lines(&l);
        free(line);
        free(path);
        free(dir);
}
END_TEST

START_TEST(test_dkms_from_path) {
        static const struct {
                const char *path, *package, *version;
        } cases[] = {
                { "/var/lib/dkms/zfs/2.1.11/6.1.0-1-amd64/x86_64/module/zfs.ko", "zfs", "2.1.11" },
                { "/srv/image/var/lib/dkms/v4l2loopback/0.12.7/build/v4l2loopback.ko", "v4l2loopback", "0.12.7" },
                { "var/lib/dkms/a/1/x.ko", "a", "1" },
                { "/var/lib/dkms/zfs/kernel-6.1.0-1-amd64-x86_64/module/zfs.ko", NULL, NULL },
                { "/var/lib/dkms/zfs/2.1.11", NULL, NULL },
                { "/var/lib/dkms/zfs/2.1.11/", NULL, NULL },
                { "/var/lib/dkms/mok.key", NULL, NULL },
                { "/var/lib/dkms//2/x.ko", NULL, NULL },
                { "/lib/modules/6.1.0-1-amd64/updates/dkms/zfs.ko", NULL, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *p = (char *) "untouched", *v = (char *) "untouched";
                int r = audit_dkms_from_path(cases[i].path, &p, &v);
                if (!cases[i].package) {
                        ck_assert_msg(r == -ENOENT, "%s: %d", cases[i].path, r);
                        ck_assert_str_eq(p, "untouched");
                        continue;
                }
                ck_assert_msg(r == 0, "%s: %d", cases[i].path, r);
                ck_assert_str_eq(p, cases[i].package);
                ck_assert_str_eq(v, cases[i].version);
                free(p);
                free(v);
        }
}
END_TEST

START_TEST(test_head_string) {
        struct audit_head h, g;
        char buf[AUDIT_HEAD_STRING_MAX];

        ck_assert_int_eq(audit_head_parse("12:ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789", &h), 0);
        ck_assert_int_eq(h.seq, 12);
        ck_assert_str_eq(h.hash, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
        audit_head_format(&h, buf);
        ck_assert_int_eq(audit_head_parse(buf, &g), 0);
        ck_assert_int_eq(g.seq, 12);
        ck_assert_str_eq(g.hash, h.hash);
        ck_assert_int_eq(audit_head_parse("0:" ZEROS, &h), 0);
        ck_assert_int_eq(h.seq, 0);
        ck_assert_int_eq(audit_head_parse("12", &h), -EINVAL);
        ck_assert_int_eq(audit_head_parse("12:abc", &h), -EINVAL);
        ck_assert_int_eq(audit_head_parse("-1:" ZEROS, &h), -EINVAL);
        ck_assert_int_eq(audit_head_parse("x:" ZEROS, &h), -EINVAL);
        ck_assert_int_eq(audit_head_parse("1:" ZEROS "0", &h), -EINVAL);
        ck_assert_int_eq(audit_head_parse("1:g" ZEROS "", &h), -EINVAL);
        ck_assert_int_eq(audit_head_parse("99999999999999999999999:" ZEROS, &h), -EINVAL);
}
END_TEST

START_TEST(test_reopen_continues) {
        char *dir = NULL, *path;
        struct audit_log *log = NULL;
        struct audit_head h, h2, got;
        struct audit_record rec = sample(9);
        struct lines l;
        char want[65];

        make_log(3, &dir, &h);
        ck_assert_int_eq(audit_log_open(dir, &log), 0);
        audit_log_get_head(log, &got);
        ck_assert_int_eq(got.seq, 3);
        ck_assert_str_eq(got.hash, h.hash);
        rec.event = AUDIT_EVENT_KEY_LOADED;
        rec.path = NULL;
        rec.requester.kind = AUDIT_REQUESTER_DAEMON;
        ck_assert_int_eq(audit_log_append(log, &rec, &h2, NULL), 0);
        ck_assert_int_eq(h2.seq, 4);
        audit_log_free(log);

        path = log_path_of(dir);
        read_lines(path, &l);
        ck_assert_int_eq(l.n, 4);
        {
                json_object *o = parse(l.item[3]);
                ck_assert_int_eq(json_object_get_int(json_object_object_get(o, "seq")), 4);
                ck_assert_str_eq(member(o, "prev"), h.hash);
                ck_assert_str_eq(member(o, "event"), "key-loaded");
                ck_assert_str_eq(member(o, "requester"), "daemon");
                ck_assert_ptr_null(member(o, "module"));
                json_object_put(o);
        }
        hex_sha256(l.item[3], strlen(l.item[3]), want);
        ck_assert_str_eq(h2.hash, want);
        expect_intact(path, &h2, 4);
        free_lines(&l);
        free(path);
        free(dir);
}
END_TEST

/* An approval (modsignctl approve): event "approved", the approver as requester with the
 * command; the chain verifies with it. */
START_TEST(test_approved_record) {
        char *dir = NULL, *path;
        struct audit_log *log = NULL;
        struct audit_head h, h2;
        struct audit_record rec = {
                .event = AUDIT_EVENT_APPROVED,
                .module = "newmod",
                .requester = { .kind = AUDIT_REQUESTER_COMMAND, .pid = 4242, .uid = 0, .comm = "modsignctl",
                               .command = "approve newmod" },
                .rule = "approved",
        };
        struct lines l;

        ck_assert_str_eq(audit_event_to_string(AUDIT_EVENT_APPROVED), "approved");
        ck_assert_int_eq(audit_event_from_string("approved"), AUDIT_EVENT_APPROVED);
        make_log(2, &dir, &h);
        ck_assert_int_eq(audit_log_open(dir, &log), 0);
        ck_assert_int_eq(audit_log_append(log, &rec, &h2, NULL), 0);
        audit_log_free(log);
        path = log_path_of(dir);
        read_lines(path, &l);
        ck_assert_int_eq(l.n, 3);
        {
                json_object *o = parse(l.item[2]), *q = json_object_object_get(o, "requester");
                ck_assert_str_eq(member(o, "event"), "approved");
                ck_assert_str_eq(member(o, "module"), "newmod");
                ck_assert_int_eq(json_object_get_int(json_object_object_get(q, "pid")), 4242);
                ck_assert_int_eq(json_object_get_int(json_object_object_get(q, "uid")), 0);
                ck_assert_str_eq(member(q, "comm"), "modsignctl");
                ck_assert_str_eq(member(q, "command"), "approve newmod");
                json_object_put(o);
        }
        expect_intact(path, &h2, 3);
        free_lines(&l);
        free(path);
        free(dir);
}
END_TEST

START_TEST(test_open_refuses) {
        char *base = tu_tmpdir(), *dir, *link, *file, *path;
        struct audit_log *log = NULL;

        /* relative path */
        ck_assert_int_eq(audit_log_open("state", &log), -EINVAL);
        /* a symlinked state directory */
        dir = tu_path(base, "real");
        link = tu_path(base, "link");
        ck_assert_int_eq(mkdir(dir, 0700), 0);
        ck_assert_int_eq(symlink(dir, link), 0);
        ck_assert_int_eq(audit_log_open(link, &log), -ELOOP);
        /* a symlinked log file */
        file = tu_path(base, "elsewhere");
        tu_write_file(file, "", 0, 0600);
        path = log_path_of(dir);
        ck_assert_int_eq(symlink(file, path), 0);
        ck_assert_int_eq(audit_log_open(dir, &log), -ELOOP);
        ck_assert_int_eq(unlink(path), 0);
        /* a log others may write */
        tu_write_file(path, "", 0, 0600);
        ck_assert_int_eq(chmod(path, 0622), 0);
        ck_assert_int_eq(audit_log_open(dir, &log), -EPERM);
        ck_assert_int_eq(chmod(path, 0600), 0);
        ck_assert_int_eq(chmod(dir, 0777), 0);
        ck_assert_int_eq(audit_log_open(dir, &log), -EPERM);
        ck_assert_int_eq(chmod(dir, 0700), 0);
        ck_assert_int_eq(audit_log_open(dir, &log), 0);
        audit_log_free(log);
        free(base);
        free(dir);
        free(link);
        free(file);
        free(path);
}
END_TEST

START_TEST(test_open_refuses_corrupt_tail) {
        char *dir = NULL, *path;
        struct audit_log *log = NULL;
        size_t len;
        uint8_t *buf;

        make_log(3, &dir, NULL);
        path = log_path_of(dir);
        buf = tu_read_file(path, &len);
        /* cut in the middle of the last record */
        tu_write_file(path, buf, len - 10, 0600);
        ck_assert_int_eq(audit_log_open(dir, &log), -EBADMSG);
        /* garbage after the last record */
        tu_write_file(path, buf, len, 0600);
        {
                int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(write(fd, "not json\n", 9), 9);
                close(fd);
        }
        ck_assert_int_eq(audit_log_open(dir, &log), -EBADMSG);
        /* whole again: opens, and the chain goes on */
        tu_write_file(path, buf, len, 0600);
        ck_assert_int_eq(audit_log_open(dir, &log), 0);
        audit_log_free(log);
        free(buf);
        free(path);
        free(dir);
}
END_TEST

/* --- tampering ------------------------------------------------------------------------------ */

START_TEST(test_tamper_edit_field) {
        char *dir = NULL, *path, *p;
        struct audit_head h;
        struct lines l;

        make_log(5, &dir, &h);
        path = log_path_of(dir);
        read_lines(path, &l);
        /* record 2 now claims a different module */
        p = strstr(l.item[1], "\"module\":\"m2\"");
        ck_assert_ptr_nonnull(p);
        p[11] = 'X';
        write_lines(path, &l);
        expect_bad(path, NULL, 2, 2, "altered");
        expect_bad(path, &h, 2, 2, "altered");
        free_lines(&l);
        free(path);
        free(dir);
}
END_TEST

START_TEST(test_tamper_edit_last) {
        char *dir = NULL, *path, *p;
        struct audit_head h;
        struct lines l;

        make_log(5, &dir, &h);
        path = log_path_of(dir);
        read_lines(path, &l);
        p = strstr(l.item[4], "\"event\":\"signed\"");
        ck_assert_ptr_nonnull(p);
        memcpy(p + 9, "failed", 6);
        write_lines(path, &l);
        /* the last record has no successor to give it away: only the head does */
        expect_intact(path, NULL, 5);
        expect_bad(path, &h, 5, 5, "altered");
        free_lines(&l);
        free(path);
        free(dir);
}
END_TEST

START_TEST(test_tamper_delete) {
        char *dir = NULL, *path;
        struct lines l;

        make_log(5, &dir, NULL);
        path = log_path_of(dir);
        read_lines(path, &l);
        free(l.item[2]);
        memmove(&l.item[2], &l.item[3], 2 * sizeof(char *));
        l.n--;
        write_lines(path, &l);
        expect_bad(path, NULL, 3, 4, "missing");
        free_lines(&l);

        /* the first record removed */
        free(path);
        free(dir);
        make_log(3, &dir, NULL);
        path = log_path_of(dir);
        read_lines(path, &l);
        free(l.item[0]);
        memmove(&l.item[0], &l.item[1], 2 * sizeof(char *));
        l.n--;
        write_lines(path, &l);
        expect_bad(path, NULL, 1, 2, "missing");
        free_lines(&l);
        free(path);
        free(dir);
}
END_TEST

START_TEST(test_tamper_swap) {
        char *dir = NULL, *path, *t;
        struct lines l;

        make_log(5, &dir, NULL);
        path = log_path_of(dir);
        read_lines(path, &l);
        t = l.item[1];
        l.item[1] = l.item[2];
        l.item[2] = t;
        write_lines(path, &l);
        expect_bad(path, NULL, 2, 3, "missing (removed or moved)");
        free_lines(&l);
        free(path);
        free(dir);
}
END_TEST

START_TEST(test_tamper_swap_renumbered) {
        char *dir = NULL, *path, *t, *p;
        struct lines l;

        /* Swapped, and the seq members swapped back so the numbers run 1..5: the chain still
         * breaks where the order changed. */
        make_log(5, &dir, NULL);
        path = log_path_of(dir);
        read_lines(path, &l);
        t = l.item[1];
        l.item[1] = l.item[2];
        l.item[2] = t;
        p = strstr(l.item[1], "\"seq\":3");
        ck_assert_ptr_nonnull(p);
        p[6] = '2';
        p = strstr(l.item[2], "\"seq\":2");
        ck_assert_ptr_nonnull(p);
        p[6] = '3';
        write_lines(path, &l);
        expect_bad(path, NULL, 1, 1, "altered");
        free_lines(&l);
        free(path);
        free(dir);
}
END_TEST

START_TEST(test_tamper_cut_mid_line) {
        char *dir = NULL, *path;
        size_t len;
        uint8_t *buf;

        make_log(5, &dir, NULL);
        path = log_path_of(dir);
        buf = tu_read_file(path, &len);
        tu_write_file(path, buf, len - 20, 0600);
        expect_bad(path, NULL, 5, 5, "cut in the middle");
        /* only the final newline gone */
        tu_write_file(path, buf, len - 1, 0600);
        expect_bad(path, NULL, 5, 5, "cut in the middle");
        free(buf);
        free(path);
        free(dir);
}
END_TEST

START_TEST(test_tamper_cut_records) {
        char *dir = NULL, *path;
        struct audit_head h, old;
        struct lines l;
        char buf[AUDIT_HEAD_STRING_MAX];

        make_log(5, &dir, &h);
        path = log_path_of(dir);
        read_lines(path, &l);
        free(l.item[3]);
        free(l.item[4]);
        l.n = 3;
        write_lines(path, &l);
        /* whole records cut off the end: a shorter log that is intact in itself... */
        expect_intact(path, NULL, 3);
        /* ...but not against the head recorded before */
        expect_bad(path, &h, 4, 4, "cut off the end");
        /* an older head (seq 2) still checks out: the log only grew since */
        old.seq = 2;
        hex_sha256(l.item[1], strlen(l.item[1]), old.hash);
        expect_intact(path, &old, 3);
        audit_head_format(&old, buf);
        ck_assert_ptr_nonnull(strchr(buf, ':'));
        free_lines(&l);
        free(path);
        free(dir);
}
END_TEST

START_TEST(test_tamper_garbage_line) {
        char *dir = NULL, *path;
        struct lines l;

        make_log(3, &dir, NULL);
        path = log_path_of(dir);
        read_lines(path, &l);
        free(l.item[1]);
        l.item[1] = strdup("{\"seq\":2,\"time\":\"x\",\"event\":\"signed\"}");
        write_lines(path, &l);
        expect_bad(path, NULL, 2, 2, "prev");
        free(l.item[1]);
        l.item[1] = strdup("{\"seq\":2,");
        write_lines(path, &l);
        expect_bad(path, NULL, 2, 2, "not a JSON object");
        free_lines(&l);
        free(path);
        free(dir);
}
END_TEST

/* --- several writers ------------------------------------------------------------------------- */

START_TEST(test_two_writers) {
        char *dir = new_state_dir(), *path;
        struct audit_log *a = NULL, *b = NULL;
        struct audit_head h;

        ck_assert_int_eq(audit_log_open(dir, &a), 0);
        ck_assert_int_eq(audit_log_open(dir, &b), 0);
        for (unsigned i = 0; i < 10; i++) {
                struct audit_record rec = sample(i);
                rec.requester.kind = i % 2 ? AUDIT_REQUESTER_CLI : AUDIT_REQUESTER_WATCHER;
                ck_assert_int_eq(audit_log_append(i % 3 ? a : b, &rec, &h, NULL), 0);
                ck_assert_int_eq(h.seq, i + 1);
        }
        audit_log_free(a);
        audit_log_free(b);
        path = log_path_of(dir);
        expect_intact(path, &h, 10);
        free(path);
        free(dir);
}
END_TEST

START_TEST(test_shrunk_under_writer) {
        char *dir = new_state_dir(), *path;
        struct audit_log *log = NULL;
        struct audit_record rec = sample(1);
        size_t len;
        uint8_t *buf;

        ck_assert_int_eq(audit_log_open(dir, &log), 0);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(audit_log_append(log, &rec, NULL, NULL), 0);
        path = log_path_of(dir);
        buf = tu_read_file(path, &len);
        /* the last record cut off behind the writer's back: it does not carry on as if not */
        ck_assert_int_eq(truncate(path, (off_t) (strrchr((char *) buf, '{') - (char *) buf)), 0);
        ck_assert_int_eq(audit_log_append(log, &rec, NULL, NULL), -ESTALE);
        /* records appended by another writer that do not continue our chain */
        tu_write_file(path, buf, len, 0600);
        {
                int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
                const char *forged = "{\"seq\":4,\"time\":\"t\",\"event\":\"signed\",\"prev\":\"" ZEROS "\"}\n";
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(write(fd, forged, strlen(forged)), (ssize_t) strlen(forged));
                close(fd);
        }
        ck_assert_int_eq(audit_log_append(log, &rec, NULL, NULL), -ESTALE);
        audit_log_free(log);
        free(buf);
        free(path);
        free(dir);
}
END_TEST

struct thread_arg {
        struct audit_log *log;
        unsigned id;
};

static void *append_many(void *p) {
        struct thread_arg *t = p;

        for (unsigned i = 0; i < 50; i++) {
                struct audit_record rec = sample(t->id * 100 + i);
                if (audit_log_append(t->log, &rec, NULL, NULL) < 0)
                        return (void *) 1;
        }
        return NULL;
}

START_TEST(test_threads) {
        char *dir = new_state_dir(), *path;
        struct audit_log *log = NULL;
        struct thread_arg args[4];
        pthread_t th[4];
        struct audit_head h;

        ck_assert_int_eq(audit_log_open(dir, &log), 0);
        for (unsigned i = 0; i < 4; i++) {
                args[i] = (struct thread_arg) { .log = log, .id = i };
                ck_assert_int_eq(pthread_create(&th[i], NULL, append_many, &args[i]), 0);
        }
        for (unsigned i = 0; i < 4; i++) {
                void *rv;
                ck_assert_int_eq(pthread_join(th[i], &rv), 0);
                ck_assert_ptr_null(rv);
        }
        audit_log_get_head(log, &h);
        ck_assert_int_eq(h.seq, 200);
        audit_log_free(log);
        path = log_path_of(dir);
        expect_intact(path, &h, 200);
        free(path);
        free(dir);
}
END_TEST

START_TEST(test_for_each_line) {
        char *dir = NULL, *path;
        struct audit_verify_result res;
        int fd;

        make_log(4, &dir, NULL);
        path = log_path_of(dir);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(audit_verify_fd(fd, NULL, &res), 0);
        ck_assert_int_eq(res.n_records, 4);
        ck_assert_int_eq(res.head.seq, 4);
        close(fd);
        free(path);
        free(dir);
}
END_TEST

static Suite *audit_suite(void) {
        Suite *s = suite_create("audit");
        TCase *tc;

        tc = tu_tcase("write");
        tcase_add_test(tc, test_append_format);
        tcase_add_test(tc, test_peer_dkms_and_escapes);
        tcase_add_test(tc, test_dkms_from_path);
        tcase_add_test(tc, test_head_string);
        tcase_add_test(tc, test_reopen_continues);
        tcase_add_test(tc, test_approved_record);
        tcase_add_test(tc, test_open_refuses);
        tcase_add_test(tc, test_open_refuses_corrupt_tail);
        suite_add_tcase(s, tc);

        tc = tu_tcase("tamper");
        tcase_add_test(tc, test_tamper_edit_field);
        tcase_add_test(tc, test_tamper_edit_last);
        tcase_add_test(tc, test_tamper_delete);
        tcase_add_test(tc, test_tamper_swap);
        tcase_add_test(tc, test_tamper_swap_renumbered);
        tcase_add_test(tc, test_tamper_cut_mid_line);
        tcase_add_test(tc, test_tamper_cut_records);
        tcase_add_test(tc, test_tamper_garbage_line);
        suite_add_tcase(s, tc);

        tc = tu_tcase("writers");
        tcase_add_test(tc, test_two_writers);
        tcase_add_test(tc, test_shrunk_under_writer);
        tcase_add_test(tc, test_threads);
        tcase_add_test(tc, test_for_each_line);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tu_run_suite(audit_suite());
}
