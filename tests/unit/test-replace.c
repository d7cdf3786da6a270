/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* replace.c: atomic, metadata-preserving replacement of a file in a directory fd. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io-util.h"
#include "macro.h"
#include "replace.h"
#include "unit-util.h"

#define OLD_CONTENTS "the original module contents\n"
#define NEW_CONTENTS "the new, signed module contents, somewhat longer\n"
#define EVIL_CONTENTS "someone else's contents\n"

struct fixture {
        char *dir, *target;
        int dir_fd;
        struct stat orig;
};

/* A directory holding "target" (mode 0640, owned by 1234:5678 when we are root), with an old
 * mtime so that any later write shows in it whatever the timestamp granularity. */
static void fixture_init(struct fixture *f) {
        const struct timespec old[2] = { { .tv_sec = 978307200 }, { .tv_sec = 978307200, .tv_nsec = 123456789 } };

        f->dir = tu_tmpdir();
        f->target = tu_path(f->dir, "target");
        tu_write_file(f->target, OLD_CONTENTS, strlen(OLD_CONTENTS), 0640);
        if (geteuid() == 0)
                ck_assert_int_eq(chown(f->target, 1234, 5678), 0);
        ck_assert_int_eq(chmod(f->target, 0640), 0);
        ck_assert_int_eq(utimensat(AT_FDCWD, f->target, old, 0), 0);
        ck_assert_int_eq(stat(f->target, &f->orig), 0);
        f->dir_fd = tu_open_dir(f->dir);
}

static void fixture_done(struct fixture *f) {
        close(f->dir_fd);
        free(f->target);
        free(f->dir);
}

static void assert_contents(const char *path, const char *want) {
        size_t len;
        _cleanup_free_ uint8_t *buf = tu_read_file(path, &len);

        ck_assert_uint_eq(len, strlen(want));
        ck_assert_mem_eq(buf, want, len);
}

static void write_all(int fd, const char *s) {
        ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t) strlen(s));
}

START_TEST(test_commit) {
        struct fixture f;
        struct replace r;
        struct stat now;
        _cleanup_free_ char *before = NULL, *after = NULL;

        fixture_init(&f);
        before = tu_dir_listing(f.dir);
        ck_assert_str_eq(before, "target");

        ck_assert_int_eq(replace_begin(f.dir_fd, "target", &f.orig, &r), 0);
        ck_assert_int_ge(r.fd, 0);
        ck_assert_int_eq(fcntl(r.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        write_all(r.fd, NEW_CONTENTS);

        /* nothing visible until the commit */
        assert_contents(f.target, OLD_CONTENTS);
        if (!r.tmp_name) {
                free(after);
                after = tu_dir_listing(f.dir);
                ck_assert_str_eq(after, before); /* an O_TMPFILE has no name yet */
        }

        ck_assert_int_eq(replace_commit(&r), 0);
        assert_contents(f.target, NEW_CONTENTS);
        ck_assert_int_eq(lstat(f.target, &now), 0);
        ck_assert(S_ISREG(now.st_mode));
        ck_assert_uint_eq(now.st_mode & 07777, 0640);
        ck_assert_uint_eq(now.st_uid, f.orig.st_uid);
        ck_assert_uint_eq(now.st_gid, f.orig.st_gid);
        if (geteuid() == 0) {
                ck_assert_uint_eq(now.st_uid, 1234);
                ck_assert_uint_eq(now.st_gid, 5678);
        }
        ck_assert_uint_ne(now.st_ino, f.orig.st_ino);
        ck_assert_uint_eq(now.st_nlink, 1);

        free(after);
        after = tu_dir_listing(f.dir);
        ck_assert_str_eq(after, "target"); /* no temporary file left behind */

        replace_abort(&r); /* harmless after a commit */
        replace_abort(&r);
        assert_contents(f.target, NEW_CONTENTS);
        fixture_done(&f);
}
END_TEST

START_TEST(test_commit_keeps_other_modes) {
        static const mode_t modes[] = { 0600, 0400, 0644, 0755, 0444 };

        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                struct fixture f;
                struct replace r;
                struct stat now;

                fixture_init(&f);
                ck_assert_int_eq(chmod(f.target, modes[i]), 0);
                ck_assert_int_eq(stat(f.target, &f.orig), 0);
                ck_assert_int_eq(replace_begin(f.dir_fd, "target", &f.orig, &r), 0);
                write_all(r.fd, NEW_CONTENTS);
                ck_assert_int_eq(replace_commit(&r), 0);
                ck_assert_int_eq(stat(f.target, &now), 0);
                ck_assert_uint_eq(now.st_mode & 07777, modes[i]);
                assert_contents(f.target, NEW_CONTENTS);
                fixture_done(&f);
        }
}
END_TEST

START_TEST(test_abort) {
        struct fixture f;
        struct replace r;
        struct stat now;
        _cleanup_free_ char *before = NULL, *after = NULL;

        fixture_init(&f);
        before = tu_dir_listing(f.dir);
        ck_assert_int_eq(replace_begin(f.dir_fd, "target", &f.orig, &r), 0);
        write_all(r.fd, NEW_CONTENTS);
        replace_abort(&r);
        replace_abort(&r); /* twice is safe */

        assert_contents(f.target, OLD_CONTENTS);
        ck_assert_int_eq(stat(f.target, &now), 0);
        ck_assert_uint_eq(now.st_ino, f.orig.st_ino);
        ck_assert_uint_eq(now.st_mode, f.orig.st_mode);
        ck_assert_int_eq(now.st_mtim.tv_sec, f.orig.st_mtim.tv_sec);
        ck_assert_int_eq(now.st_mtim.tv_nsec, f.orig.st_mtim.tv_nsec);
        after = tu_dir_listing(f.dir);
        ck_assert_str_eq(after, before);
        fixture_done(&f);
}
END_TEST

/* _i: how the target changes between begin and commit */
enum {
        CHANGE_REWRITE,       /* same size, other bytes */
        CHANGE_TOUCH,         /* only the mtime */
        CHANGE_RENAME_OVER,   /* another file renamed over it */
        CHANGE_SYMLINK,       /* a symlink put in its place */
        CHANGE_DELETE,        /* gone */
        CHANGE_APPEND,        /* grown */
        _CHANGE_MAX,
};

START_TEST(test_stale) {
        struct fixture f;
        struct replace r;
        _cleanup_free_ char *listing = NULL, *other = NULL;
        const char *expect = EVIL_CONTENTS;
        int fd;

        fixture_init(&f);
        other = tu_path(f.dir, "other");
        ck_assert_int_eq(replace_begin(f.dir_fd, "target", &f.orig, &r), 0);
        write_all(r.fd, NEW_CONTENTS);

        switch (_i) {
        case CHANGE_REWRITE:
                fd = open(f.target, O_WRONLY | O_CLOEXEC);
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(pwrite(fd, "THE ORIGINAL", 12, 0), 12);
                close(fd);
                expect = "THE ORIGINAL module contents\n";
                break;
        case CHANGE_TOUCH:
                ck_assert_int_eq(utimensat(AT_FDCWD, f.target, NULL, 0), 0);
                expect = OLD_CONTENTS;
                break;
        case CHANGE_RENAME_OVER:
                tu_write_file(other, OLD_CONTENTS, strlen(OLD_CONTENTS), 0640); /* even identical bytes */
                ck_assert_int_eq(rename(other, f.target), 0);
                expect = OLD_CONTENTS;
                break;
        case CHANGE_SYMLINK:
                tu_write_file(other, EVIL_CONTENTS, strlen(EVIL_CONTENTS), 0644);
                ck_assert_int_eq(unlink(f.target), 0);
                ck_assert_int_eq(symlink("other", f.target), 0);
                break;
        case CHANGE_DELETE:
                ck_assert_int_eq(unlink(f.target), 0);
                expect = NULL;
                break;
        case CHANGE_APPEND:
                fd = open(f.target, O_WRONLY | O_APPEND | O_CLOEXEC);
                ck_assert_int_ge(fd, 0);
                write_all(fd, "and more");
                close(fd);
                expect = OLD_CONTENTS "and more";
                break;
        default:
                ck_abort();
        }

        ck_assert_int_eq(replace_commit(&r), -ESTALE);
        replace_abort(&r);

        /* the target is exactly what the other party left */
        if (expect)
                assert_contents(f.target, expect);
        else
                ck_assert_int_eq(access(f.target, F_OK), -1);
        if (_i == CHANGE_SYMLINK) {
                struct stat st;

                ck_assert_int_eq(lstat(f.target, &st), 0);
                ck_assert(S_ISLNK(st.st_mode));
        }

        /* and nothing of ours is left in the directory */
        listing = tu_dir_listing(f.dir);
        switch (_i) {
        case CHANGE_SYMLINK:
                ck_assert_str_eq(listing, "other target");
                break;
        case CHANGE_DELETE:
                ck_assert_str_eq(listing, "");
                break;
        default:
                ck_assert_str_eq(listing, "target");
        }
        fixture_done(&f);
}
END_TEST

START_TEST(test_new_file) {
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "new.ko"), *listing = NULL;
        int dir_fd = tu_open_dir(dir);
        struct replace r;
        struct stat st;

        ck_assert_int_eq(replace_begin(dir_fd, "new.ko", NULL, &r), 0);
        write_all(r.fd, NEW_CONTENTS);
        ck_assert_int_eq(replace_commit(&r), 0);
        assert_contents(p, NEW_CONTENTS);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0644); /* 0666 & ~umask (022) */
        ck_assert_uint_eq(st.st_uid, geteuid());

        /* a regular file of that name is replaced (sign-file's DEST) */
        ck_assert_int_eq(replace_begin(dir_fd, "new.ko", NULL, &r), 0);
        write_all(r.fd, OLD_CONTENTS);
        ck_assert_int_eq(replace_commit(&r), 0);
        assert_contents(p, OLD_CONTENTS);
        listing = tu_dir_listing(dir);
        ck_assert_str_eq(listing, "new.ko");
        close(dir_fd);
}
END_TEST

/* A new name where a symlink or a directory stands: -EEXIST (from begin or from commit), and
 * the symlink, its target and the directory are left alone. */
static void expect_new_name_refused(int dir_fd, const char *name) {
        struct replace r;
        int k = replace_begin(dir_fd, name, NULL, &r);

        if (k == 0) {
                write_all(r.fd, NEW_CONTENTS);
                k = replace_commit(&r);
                replace_abort(&r);
        }
        ck_assert_msg(k == -EEXIST, "replacing '%s': %d (%s)", name, k, strerror(k < 0 ? -k : 0));
}

START_TEST(test_new_file_refuses_symlink_and_dir) {
        _cleanup_free_ char *dir = tu_tmpdir(), *victim = tu_path(dir, "victim"), *link = tu_path(dir, "link.ko"),
                                *sub = tu_path(dir, "dir.ko"), *dangling = tu_path(dir, "dangling.ko"),
                                *listing = NULL;
        int dir_fd = tu_open_dir(dir);
        struct stat st;

        tu_write_file(victim, OLD_CONTENTS, strlen(OLD_CONTENTS), 0644);
        ck_assert_int_eq(symlink("victim", link), 0);
        ck_assert_int_eq(symlink("nowhere", dangling), 0);
        ck_assert_int_eq(mkdir(sub, 0755), 0);

        expect_new_name_refused(dir_fd, "link.ko");
        expect_new_name_refused(dir_fd, "dangling.ko");
        expect_new_name_refused(dir_fd, "dir.ko");

        assert_contents(victim, OLD_CONTENTS);
        ck_assert_int_eq(lstat(link, &st), 0);
        ck_assert(S_ISLNK(st.st_mode));
        ck_assert_int_eq(lstat(dangling, &st), 0);
        ck_assert(S_ISLNK(st.st_mode));
        ck_assert_int_eq(lstat(sub, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_uint_eq(tu_dir_count(sub), 0);
        listing = tu_dir_listing(dir);
        ck_assert_str_eq(listing, "dangling.ko dir.ko link.ko victim");
        close(dir_fd);
}
END_TEST

START_TEST(test_bad_names) {
        static const char *const bad[] = { "a/b", "/etc/passwd", "../target", "sub/", "" };
        struct fixture f;

        fixture_init(&f);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct replace r;

                memset(&r, 0xa5, sizeof(r));
                ck_assert_msg(replace_begin(f.dir_fd, bad[i], NULL, &r) == -EINVAL, "name '%s' accepted", bad[i]);
                ck_assert_uint_eq(((uint8_t *) &r)[0], 0xa5);
                ck_assert_msg(replace_begin(f.dir_fd, bad[i], &f.orig, &r) == -EINVAL, "name '%s' accepted", bad[i]);
        }
        {
                struct replace r;

                ck_assert_int_eq(replace_begin(f.dir_fd, NULL, NULL, &r), -EINVAL);
        }
        {
                _cleanup_free_ char *listing = tu_dir_listing(f.dir);

                ck_assert_str_eq(listing, "target");
        }
        assert_contents(f.target, OLD_CONTENTS);
        fixture_done(&f);
}
END_TEST

START_TEST(test_large_contents) {
        /* a module-sized replacement, written in pieces */
        struct fixture f;
        struct replace r;
        const size_t n = 3U << 20;
        _cleanup_free_ uint8_t *data = malloc(n), *back = NULL;
        size_t len;

        ck_assert_ptr_nonnull(data);
        tu_fill_random(data, n, 3);
        fixture_init(&f);
        ck_assert_int_eq(replace_begin(f.dir_fd, "target", &f.orig, &r), 0);
        for (size_t off = 0; off < n; off += 65536)
                ck_assert_int_eq(write(r.fd, data + off, MIN((size_t) 65536, n - off)),
                                 (ssize_t) MIN((size_t) 65536, n - off));
        ck_assert_int_eq(replace_commit(&r), 0);
        back = tu_read_file(f.target, &len);
        ck_assert_uint_eq(len, n);
        ck_assert_mem_eq(back, data, n);
        fixture_done(&f);
}
END_TEST

/* copy_fd_prefix() fills a replacement the way the DKMS shim does: in 1 MiB steps in the
 * kernel, and through a small buffer where copy_file_range() cannot (from another file system,
 * /dev/shm to here). A source shorter than asked is -EBADMSG. */
static void copy_prefix_case(const char *src_dir, const uint8_t *data, size_t n, size_t want) {
        struct fixture f;
        struct replace r;
        _cleanup_free_ char *src = tu_path(src_dir, "source");
        _cleanup_free_ uint8_t *back = NULL;
        size_t len;
        int in_fd;

        tu_write_file(src, data, n, 0600);
        in_fd = open(src, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(in_fd, 0);
        ck_assert_int_eq(lseek(in_fd, 5, SEEK_SET), 5); /* the source's offset plays no part */
        fixture_init(&f);
        ck_assert_int_eq(replace_begin(f.dir_fd, "target", &f.orig, &r), 0);
        write_all(r.fd, "HEAD");
        if (want > n) {
                ck_assert_int_eq(copy_fd_prefix(in_fd, r.fd, want), -EBADMSG);
                replace_abort(&r);
                assert_contents(f.target, OLD_CONTENTS);
        } else {
                ck_assert_int_eq(copy_fd_prefix(in_fd, r.fd, want), 0);
                write_all(r.fd, "TAIL");
                ck_assert_int_eq(replace_commit(&r), 0);
                back = tu_read_file(f.target, &len);
                ck_assert_uint_eq(len, want + 8);
                ck_assert_mem_eq(back, "HEAD", 4);
                ck_assert_mem_eq(back + 4, data, want);
                ck_assert_mem_eq(back + 4 + want, "TAIL", 4);
        }
        close(in_fd);
        ck_assert_int_eq(unlink(src), 0);
        fixture_done(&f);
}

START_TEST(test_copy_fd_prefix) {
        const size_t n = (3U << 20) + 4321;
        _cleanup_free_ uint8_t *data = malloc(n);
        _cleanup_free_ char *here = tu_tmpdir();
        char shm[] = "/dev/shm/modsign-unit-XXXXXX";
        bool have_shm = mkdtemp(shm) != NULL;

        ck_assert_ptr_nonnull(data);
        tu_fill_random(data, n, 11);
        copy_prefix_case(here, data, n, n);
        copy_prefix_case(here, data, n, (2U << 20) + 17); /* a prefix: steps and a tail */
        copy_prefix_case(here, data, n, 0);
        copy_prefix_case(here, data, n, n + 1);
        if (have_shm) { /* another file system: through the buffer */
                copy_prefix_case(shm, data, n, n);
                copy_prefix_case(shm, data, n, 70000);
                copy_prefix_case(shm, data, n, n + 1);
                ck_assert_int_eq(rmdir(shm), 0);
        }
        tu_rm_rf(here);
}
END_TEST

/* --- batches (replace_batch_*: one syncfs() and one fsync() per directory) --- */

struct batch_fixture {
        struct fixture dirs[2];
        char *names[2][3];
};

/* Two directories with three 0640 targets each (a.ko, b.ko, c.ko), old mtimes. */
static void batch_fixture_init(struct batch_fixture *bf) {
        static const char *const names[] = { "a.ko", "b.ko", "c.ko" };

        for (int d = 0; d < 2; d++) {
                fixture_init(&bf->dirs[d]);
                ck_assert_int_eq(unlink(bf->dirs[d].target), 0);
                for (int i = 0; i < 3; i++) {
                        const struct timespec old[2] = { { .tv_sec = 978307200 }, { .tv_sec = 978307200 } };

                        bf->names[d][i] = tu_path(bf->dirs[d].dir, names[i]);
                        tu_write_file(bf->names[d][i], OLD_CONTENTS, strlen(OLD_CONTENTS), 0640);
                        ck_assert_int_eq(utimensat(AT_FDCWD, bf->names[d][i], old, 0), 0);
                }
        }
}

static void batch_fixture_done(struct batch_fixture *bf) {
        for (int d = 0; d < 2; d++) {
                for (int i = 0; i < 3; i++)
                        free(bf->names[d][i]);
                fixture_done(&bf->dirs[d]);
        }
}

/* Starts a replacement of directory d's file i, writes NEW_CONTENTS and adds it to the batch. */
static void batch_add_one(struct replace_batch *b, struct batch_fixture *bf, int d, int i) {
        struct replace r;
        struct stat st;
        const char *name = strrchr(bf->names[d][i], '/') + 1;

        ck_assert_int_eq(stat(bf->names[d][i], &st), 0);
        ck_assert_int_eq(replace_begin(bf->dirs[d].dir_fd, name, &st, &r), 0);
        write_all(r.fd, NEW_CONTENTS);
        ck_assert_int_eq(replace_batch_add(b, &r), 0);
        ck_assert_int_lt(r.fd, 0); /* taken over */
        ck_assert_ptr_null(r.name);
}

START_TEST(test_batch_commit) {
        struct batch_fixture bf;
        struct replace_batch b = {};
        int results[6];

        batch_fixture_init(&bf);
        for (int d = 0; d < 2; d++)
                for (int i = 0; i < 3; i++)
                        batch_add_one(&b, &bf, d, i);
        ck_assert_uint_eq(b.n, 6);

        /* nothing visible before the commit */
        for (int d = 0; d < 2; d++)
                for (int i = 0; i < 3; i++)
                        assert_contents(bf.names[d][i], OLD_CONTENTS);

        memset(results, 0x55, sizeof(results));
        ck_assert_int_eq(replace_batch_commit(&b, results), 0);
        ck_assert_uint_eq(b.n, 0);
        for (int k = 0; k < 6; k++)
                ck_assert_int_eq(results[k], 0);
        for (int d = 0; d < 2; d++) {
                _cleanup_free_ char *listing = tu_dir_listing(bf.dirs[d].dir);

                ck_assert_str_eq(listing, "a.ko b.ko c.ko");
                for (int i = 0; i < 3; i++) {
                        struct stat st;

                        assert_contents(bf.names[d][i], NEW_CONTENTS);
                        ck_assert_int_eq(stat(bf.names[d][i], &st), 0);
                        ck_assert_uint_eq(st.st_mode & 07777, 0640);
                }
        }
        ck_assert_int_eq(replace_batch_commit(&b, results), 0); /* empty now */
        replace_batch_done(&b);
        batch_fixture_done(&bf);
}
END_TEST

START_TEST(test_batch_one_stale) {
        struct batch_fixture bf;
        struct replace_batch b = {};
        int results[3];

        batch_fixture_init(&bf);
        for (int i = 0; i < 3; i++)
                batch_add_one(&b, &bf, 0, i);
        /* b.ko changes before the commit */
        tu_write_file(bf.names[0][1], EVIL_CONTENTS, strlen(EVIL_CONTENTS), 0640);

        ck_assert_int_eq(replace_batch_commit(&b, results), -ESTALE);
        ck_assert_int_eq(results[0], 0);
        ck_assert_int_eq(results[1], -ESTALE);
        ck_assert_int_eq(results[2], 0);
        assert_contents(bf.names[0][0], NEW_CONTENTS);
        assert_contents(bf.names[0][1], EVIL_CONTENTS);
        assert_contents(bf.names[0][2], NEW_CONTENTS);
        {
                _cleanup_free_ char *listing = tu_dir_listing(bf.dirs[0].dir);

                ck_assert_str_eq(listing, "a.ko b.ko c.ko");
        }
        replace_batch_done(&b);
        batch_fixture_done(&bf);
}
END_TEST

START_TEST(test_batch_done_aborts) {
        struct batch_fixture bf;
        struct replace_batch b = {};
        _cleanup_free_ char *before = NULL, *after = NULL;

        batch_fixture_init(&bf);
        before = tu_dir_listing(bf.dirs[1].dir);
        for (int i = 0; i < 3; i++)
                batch_add_one(&b, &bf, 1, i);
        replace_batch_done(&b);
        ck_assert_ptr_null(b.items);
        ck_assert_uint_eq(b.n, 0);
        replace_batch_done(&b); /* twice is harmless */
        after = tu_dir_listing(bf.dirs[1].dir);
        ck_assert_str_eq(after, before);
        for (int i = 0; i < 3; i++)
                assert_contents(bf.names[1][i], OLD_CONTENTS);
        batch_fixture_done(&bf);
}
END_TEST

START_TEST(test_batch_same_target_twice) {
        /* Two replacements of one file in one batch: the first wins, the second is stale. */
        struct batch_fixture bf;
        struct replace_batch b = {};
        int results[2];

        batch_fixture_init(&bf);
        batch_add_one(&b, &bf, 0, 0);
        batch_add_one(&b, &bf, 0, 0);
        ck_assert_int_eq(replace_batch_commit(&b, results), -ESTALE);
        ck_assert_int_eq(results[0], 0);
        ck_assert_int_eq(results[1], -ESTALE);
        assert_contents(bf.names[0][0], NEW_CONTENTS);
        {
                _cleanup_free_ char *listing = tu_dir_listing(bf.dirs[0].dir);

                ck_assert_str_eq(listing, "a.ko b.ko c.ko");
        }
        replace_batch_done(&b);
        batch_fixture_done(&bf);
}
END_TEST

static Suite *replace_suite(void) {
        Suite *s = suite_create("replace");
        TCase *tc;

        tc = tu_tcase("replace");
        tcase_add_test(tc, test_commit);
        tcase_add_test(tc, test_commit_keeps_other_modes);
        tcase_add_test(tc, test_abort);
        tcase_add_loop_test(tc, test_stale, 0, _CHANGE_MAX);
        tcase_add_test(tc, test_large_contents);
        tcase_add_test(tc, test_copy_fd_prefix);
        suite_add_tcase(s, tc);

        tc = tu_tcase("batch");
        tcase_add_test(tc, test_batch_commit);
        tcase_add_test(tc, test_batch_one_stale);
        tcase_add_test(tc, test_batch_done_aborts);
        tcase_add_test(tc, test_batch_same_target_twice);
        suite_add_tcase(s, tc);

        tc = tu_tcase("new");
        tcase_add_test(tc, test_new_file);
        tcase_add_test(tc, test_new_file_refuses_symlink_and_dir);
        tcase_add_test(tc, test_bad_names);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tu_run_suite(replace_suite());
}
