/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kconfig.c: a kernel's CONFIG_MODULE_SIG_HASH, from text and from a (fake) system root. */
#include <config.h>

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kconfig.h"
#include "macro.h"
#include "unit-util.h"

/* A release no real system has, so that nothing outside the fake root can answer. */
#define R "6.1.0-99-modsignd-unit"

static void expect_find(const char *text, const char *want) {
        char *h = NULL;
        int r = kconfig_find_sig_hash(text, &h);

        ck_assert_msg(r == 0, "kconfig_find_sig_hash(%s): %s", text, strerror(-r));
        ck_assert_str_eq(h, want);
        free(h);
}

static void expect_find_error(const char *text, int error) {
        char *untouched = (char *) "untouched", *h = untouched;
        int r = kconfig_find_sig_hash(text, &h);

        ck_assert_msg(error ? r == error : r < 0, "kconfig_find_sig_hash(%s): %d", text, r);
        ck_assert_ptr_eq(h, untouched);
}

START_TEST(test_find) {
        expect_find("CONFIG_MODULE_SIG_HASH=\"sha512\"\n", "sha512");
        expect_find("CONFIG_MODULE_SIG_HASH=sha256\n", "sha256");
        expect_find("CONFIG_MODULE_SIG_HASH=\"sha384\"", "sha384"); /* no final newline */
        expect_find("#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_MODULE_SIG=y\n"
                    "CONFIG_MODULE_SIG_ALL=y\nCONFIG_MODULE_SIG_SHA512=y\nCONFIG_MODULE_SIG_HASH=\"sha512\"\n"
                    "CONFIG_MODULES_TREE_LOOKUP=y\n",
                    "sha512");
        /* similar names are not it */
        expect_find("CONFIG_MODULE_SIG_HASHES=\"md5\"\nCONFIG_MODULE_SIG_HASH=\"sha256\"\n", "sha256");
        expect_find("XCONFIG_MODULE_SIG_HASH=\"md5\"\nCONFIG_MODULE_SIG_HASH=\"sha256\"\n", "sha256");
}
END_TEST

START_TEST(test_find_absent) {
        expect_find_error("", -ENODATA);
        expect_find_error("\n\n\n", -ENODATA);
        expect_find_error("CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_SHA512=y\n", -ENODATA);
        expect_find_error("# CONFIG_MODULE_SIG_HASH is not set\n", -ENODATA);
        expect_find_error("# CONFIG_MODULE_SIG is not set\n", -ENODATA);
        expect_find_error(" CONFIG_MODULE_SIG_HASH=\"sha512\"\n", -ENODATA); /* not at a line start */
        expect_find_error("CONFIG_MODULE_SIG_HASH_X=\"sha512\"\n", -ENODATA);
        /* set, but to nothing usable */
        expect_find_error("CONFIG_MODULE_SIG_HASH=\"\"\n", 0);
        expect_find_error("CONFIG_MODULE_SIG_HASH=\n", 0);
}
END_TEST

/* --- a fake system root --- */

static void mkdir_p(const char *root, const char *rel) {
        ck_assert_int_eq(tu_system("mkdir -p '%s/%s'", root, rel), 0);
}

static void put(const char *root, const char *rel, const char *text) {
        _cleanup_free_ char *p = tu_path(root, rel);

        tu_write_file(p, text, strlen(text), 0644);
}

static void expect_hash(const char *root, const char *want_hash, const char *want_source) {
        char *h = NULL, *src = NULL;
        int r = kernel_module_sig_hash(root, R, &h, &src);

        ck_assert_msg(r == 0, "kernel_module_sig_hash(%s): %s", root, strerror(-r));
        ck_assert_str_eq(h, want_hash);
        ck_assert_str_eq(src, want_source);
        free(h);
        free(src);

        /* ret_source is optional */
        h = NULL;
        ck_assert_int_eq(kernel_module_sig_hash(root, R, &h, NULL), 0);
        ck_assert_str_eq(h, want_hash);
        free(h);
}

static void expect_hash_error(const char *root, const char *release, int error) {
        char *untouched = (char *) "untouched", *h = untouched, *src = untouched;
        int r = kernel_module_sig_hash(root, release, &h, &src);

        ck_assert_msg(r == error, "kernel_module_sig_hash(%s, %s): expected %s, got %d (%s)", root, release,
                      strerror(-error), r, strerror(r < 0 ? -r : 0));
        ck_assert_ptr_eq(h, untouched);
        ck_assert_ptr_eq(src, untouched);
}

START_TEST(test_sysroot_order) {
        _cleanup_free_ char *root = tu_tmpdir(), *p = NULL;

        mkdir_p(root, "lib/modules/" R "/build/include/config");
        mkdir_p(root, "boot");
        put(root, "boot/config-" R, "CONFIG_MODULE_SIG_HASH=\"sha256\"\n");
        put(root, "lib/modules/" R "/build/.config", "CONFIG_MODULE_SIG_HASH=\"sha384\"\n");
        put(root, "lib/modules/" R "/build/include/config/auto.conf", "CONFIG_MODULE_SIG_HASH=\"sha512\"\n");

        expect_hash(root, "sha512", "lib/modules/" R "/build/include/config/auto.conf");
        p = tu_path(root, "lib/modules/" R "/build/include/config/auto.conf");
        ck_assert_int_eq(unlink(p), 0);
        expect_hash(root, "sha384", "lib/modules/" R "/build/.config");
        free(p);
        p = tu_path(root, "lib/modules/" R "/build/.config");
        ck_assert_int_eq(unlink(p), 0);
        expect_hash(root, "sha256", "boot/config-" R);
        free(p);
        p = tu_path(root, "boot/config-" R);
        ck_assert_int_eq(unlink(p), 0);
        expect_hash_error(root, R, -ENOENT);
}
END_TEST

START_TEST(test_sysroot_none) {
        _cleanup_free_ char *root = tu_tmpdir(), *missing = tu_path(root, "does-not-exist");

        expect_hash_error(root, R, -ENOENT);
        mkdir_p(root, "lib/modules/" R "/build"); /* a build dir without a configuration */
        expect_hash_error(root, R, -ENOENT);
        expect_hash_error(missing, R, -ENOENT);
}
END_TEST

START_TEST(test_sysroot_without_option) {
        _cleanup_free_ char *root = tu_tmpdir();

        mkdir_p(root, "boot");
        put(root, "boot/config-" R, "CONFIG_MODULES=y\n# CONFIG_MODULE_SIG is not set\n");
        expect_hash_error(root, R, -ENODATA);
        mkdir_p(root, "lib/modules/" R "/build");
        put(root, "lib/modules/" R "/build/.config", "CONFIG_MODULES=y\n");
        expect_hash_error(root, R, -ENODATA);
}
END_TEST

START_TEST(test_sysroot_absolute_symlink) {
        /* lib/modules/R/build -> /usr/src/linux-headers-R, as Debian installs it: inside an image
         * tree, that must mean <root>/usr/src/..., not the host's /usr/src. */
        _cleanup_free_ char *root = tu_tmpdir(), *link = tu_path(root, "lib/modules/" R "/build");

        ck_assert_int_ne(access("/usr/src/linux-headers-" R, F_OK), 0);
        mkdir_p(root, "lib/modules/" R);
        mkdir_p(root, "usr/src/linux-headers-" R "/include/config");
        ck_assert_int_eq(symlink("/usr/src/linux-headers-" R, link), 0);
        put(root, "usr/src/linux-headers-" R "/.config", "CONFIG_MODULE_SIG_HASH=\"sha384\"\n");
        expect_hash(root, "sha384", "lib/modules/" R "/build/.config");
        put(root, "usr/src/linux-headers-" R "/include/config/auto.conf", "CONFIG_MODULE_SIG_HASH=\"sha512\"\n");
        expect_hash(root, "sha512", "lib/modules/" R "/build/include/config/auto.conf");
}
END_TEST

START_TEST(test_sysroot_symlink_escape) {
        /* Links that point out of the root, absolutely or with "..", stay inside it: a file on the
         * host (here: one in another scratch directory) must not answer for the image. */
        _cleanup_free_ char *root = tu_tmpdir(), *host = tu_tmpdir(), *host_cfg = tu_path(host, "config"),
                                *boot = tu_path(root, "boot/config-" R), *build = tu_path(root, "lib/modules/" R "/build"),
                                *rel = NULL;

        tu_write_file(host_cfg, "CONFIG_MODULE_SIG_HASH=\"sha1\"\n", 30, 0644);
        mkdir_p(root, "boot");
        mkdir_p(root, "lib/modules/" R);

        ck_assert_int_eq(symlink(host_cfg, boot), 0); /* absolute, to the host */
        expect_hash_error(root, R, -ENOENT);

        ck_assert_int_eq(unlink(boot), 0);
        /* relative, climbing out: boot/../../../.. reaches "/" of the host without the clamp */
        ck_assert_int_ge(asprintf(&rel, "../../../../../../../../../../../..%s", host_cfg), 0);
        ck_assert_int_eq(symlink(rel, boot), 0);
        expect_hash_error(root, R, -ENOENT);

        /* a directory link to the host */
        ck_assert_int_eq(symlink(host, build), 0);
        tu_write_file(host_cfg, "CONFIG_MODULE_SIG_HASH=\"sha1\"\n", 30, 0644);
        {
                _cleanup_free_ char *dotconfig = tu_path(host, ".config");

                tu_write_file(dotconfig, "CONFIG_MODULE_SIG_HASH=\"sha1\"\n", 30, 0644);
        }
        expect_hash_error(root, R, -ENOENT);

        /* the same link, recreated inside the root, is followed */
        {
                _cleanup_free_ char *inside = NULL;

                ck_assert_int_ge(asprintf(&inside, "%s%s", root, host), 0);
                ck_assert_int_eq(tu_system("mkdir -p '%s'", inside), 0);
                free(inside);
                ck_assert_int_ge(asprintf(&inside, "%s%s/.config", root, host), 0);
                tu_write_file(inside, "CONFIG_MODULE_SIG_HASH=\"sha256\"\n", 32, 0644);
                expect_hash(root, "sha256", "lib/modules/" R "/build/.config");
        }
}
END_TEST

START_TEST(test_bad_release) {
        _cleanup_free_ char *root = tu_tmpdir();

        mkdir_p(root, "boot");
        put(root, "boot/config-" R, "CONFIG_MODULE_SIG_HASH=\"sha256\"\n");
        expect_hash_error(root, "a/b", -EINVAL);
        expect_hash_error(root, "../../boot/config-" R, -EINVAL);
        expect_hash_error(root, "/", -EINVAL);
        expect_hash_error(root, "", -EINVAL);
        expect_hash_error(root, NULL, -EINVAL);
}
END_TEST

static int sig_hash_child(void *userdata) {
        char *h = NULL;

        return kernel_module_sig_hash(userdata, R, &h, NULL);
}

/* Regression test, the bug is fixed: open_in_root() opens without O_NONBLOCK and reads before checking what it opened: a FIFO
 * where a configuration is looked for (in an image tree, say) blocks the caller forever instead
 * of being passed over like a missing file. (The same root cause as key_file_open()'s.) */
START_TEST(test_sysroot_fifo) {
        _cleanup_free_ char *root = tu_tmpdir(), *fifo = tu_path(root, "lib/modules/" R "/build/.config");
        int r;

        mkdir_p(root, "lib/modules/" R "/build");
        mkdir_p(root, "boot");
        put(root, "boot/config-" R, "CONFIG_MODULE_SIG_HASH=\"sha256\"\n");
        ck_assert_int_eq(mkfifo(fifo, 0644), 0);
        r = tu_run_child(sig_hash_child, root, 1500);
        ck_assert_msg(r != TU_CHILD_HUNG, "regression: kernel_module_sig_hash() blocks on a FIFO in the system root");
        ck_assert_int_eq(r, 0);
}
END_TEST

/* Makes openat2() fail with ENOSYS in this process, as on a kernel before 5.6, under a seccomp
 * filter that predates openat2 (older container runtimes), or under valgrind. */
static void deny_openat2(void) {
        struct sock_filter filter[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = ELEMENTSOF(filter), .filter = filter };

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
                _exit(99);
}

static int sig_hash_without_openat2_child(void *userdata) {
        char *h = NULL;
        int r;

        deny_openat2();
        r = kernel_module_sig_hash(userdata, R, &h, NULL);
        if (r == 0 && streq(h, "sha1"))
                return 55; /* the host's file answered */
        return r;
}

/* Regression test, the bug is fixed (security, fails open): kconfig.h promises that paths "are resolved inside sysroot", but
 * open_in_root() falls back to a plain openat() when openat2() returns ENOSYS or EPERM: absolute
 * symlinks in the image then resolve on the host (and Debian's build -> /usr/src/... link no
 * longer resolves at all). The fallback should fail closed (-EOPNOTSUPP) or resolve the path
 * component by component inside the root. */
START_TEST(test_sysroot_without_openat2) {
        _cleanup_free_ char *root = tu_tmpdir(), *host = tu_tmpdir(), *host_cfg = tu_path(host, "config"),
                                *boot = tu_path(root, "boot/config-" R);
        int r;

        tu_write_file(host_cfg, "CONFIG_MODULE_SIG_HASH=\"sha1\"\n", 30, 0644);
        mkdir_p(root, "boot");
        ck_assert_int_eq(symlink(host_cfg, boot), 0);
        r = tu_run_child(sig_hash_without_openat2_child, root, 10000);
        if (r == -99) {
                fprintf(stderr, "test_sysroot_without_openat2: no seccomp here, nothing tested\n");
                return;
        }
        ck_assert_msg(r != 55, "regression: without openat2(), a symlink in the system root was resolved on the host");
        ck_assert_int_lt(r, 0);
}
END_TEST

static Suite *kconfig_suite(void) {
        Suite *s = suite_create("kconfig");
        TCase *tc;

        tc = tu_tcase("text");
        tcase_add_test(tc, test_find);
        tcase_add_test(tc, test_find_absent);
        suite_add_tcase(s, tc);

        tc = tu_tcase("sysroot");
        tcase_add_test(tc, test_sysroot_order);
        tcase_add_test(tc, test_sysroot_none);
        tcase_add_test(tc, test_sysroot_without_option);
        tcase_add_test(tc, test_sysroot_absolute_symlink);
        tcase_add_test(tc, test_sysroot_symlink_escape);
        tcase_add_test(tc, test_bad_release);
        tcase_add_test(tc, test_sysroot_fifo);
        tcase_add_test(tc, test_sysroot_without_openat2);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tu_run_suite(kconfig_suite());
}
