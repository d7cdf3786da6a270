/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* key.c: loading private keys and certificates, and the key file's access rules. */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/dsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "key.h"
#include "macro.h"
#include "unit-util.h"

static EVP_PKEY *rsa, *ec;
static X509 *cert1, *cert2, *cert3;

static void keys_setup(void) {
        if (rsa)
                return;
        rsa = tu_rsa_key(2048);
        ec = tu_ec_key("P-256");
        cert1 = tu_cert(rsa, "Cert One", 1, true);
        cert2 = tu_cert(ec, "Cert Two", 2, false);
        cert3 = tu_cert(rsa, "Cert Three", 3, false);
}

static void write_bio_file(const char *path, BIO *b, mode_t mode) {
        char *data;
        long n = BIO_get_mem_data(b, &data);

        ck_assert_int_ge(n, 0);
        tu_write_file(path, data, (size_t) n, mode);
}

/* Loads path with key_load_fd(); on success *ret gets the key. */
static int load_key_path(const char *path, const char *pass, EVP_PKEY **ret, const char **ret_why) {
        int fd = open(path, O_RDONLY | O_CLOEXEC), r;

        ck_assert_int_ge(fd, 0);
        r = key_load_fd(fd, pass, ret, ret_why);
        close(fd);
        return r;
}

static void expect_key_ok(const char *path, const char *pass, EVP_PKEY *want) {
        EVP_PKEY *k = NULL;
        const char *why = NULL;
        int r = load_key_path(path, pass, &k, &why);

        ck_assert_msg(r == 0, "key_load_fd(%s): %s (%s)", path, strerror(-r), why ? why : "");
        ck_assert_ptr_nonnull(k);
        ck_assert_int_eq(EVP_PKEY_eq(k, want), 1);
        EVP_PKEY_free(k);
        ck_assert_int_eq(ERR_peek_error(), 0);
}

static void expect_key_error(const char *path, const char *pass, int error) {
        EVP_PKEY *untouched = (EVP_PKEY *) 0x1, *k = untouched;
        const char *why = NULL;
        int r = load_key_path(path, pass, &k, &why);

        ck_assert_msg(r == error, "key_load_fd(%s, pass %s): expected %s, got %d (%s)", path, pass ? pass : "NULL",
                      strerror(-error), r, strerror(r < 0 ? -r : 0));
        ck_assert_ptr_eq(k, untouched);
        ck_assert_ptr_nonnull(why);
        ck_assert_int_eq(ERR_peek_error(), 0);
}

/* _i: 0 = RSA, 1 = EC */
START_TEST(test_load_formats) {
        EVP_PKEY *key = _i == 0 ? rsa : ec;
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "key");
        BIO *b;

        /* PKCS#8 PEM */
        b = BIO_new(BIO_s_mem());
        ck_assert_int_eq(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
        write_bio_file(p, b, 0600);
        BIO_free(b);
        expect_key_ok(p, NULL, key);
        expect_key_ok(p, "a passphrase nobody needs", key);

        /* traditional PEM (BEGIN RSA / EC PRIVATE KEY) */
        b = BIO_new(BIO_s_mem());
        ck_assert_int_eq(PEM_write_bio_PrivateKey_traditional(b, key, NULL, NULL, 0, NULL, NULL), 1);
        write_bio_file(p, b, 0600);
        BIO_free(b);
        expect_key_ok(p, NULL, key);

        /* traditional DER */
        {
                size_t len;
                _cleanup_free_ uint8_t *der = tu_key_der(key, &len);

                ck_assert_uint_eq(der[0], 0x30);
                tu_write_file(p, der, len, 0600);
                expect_key_ok(p, NULL, key);
        }

        /* PKCS#8 DER */
        b = BIO_new(BIO_s_mem());
        ck_assert_int_eq(i2d_PKCS8PrivateKey_bio(b, key, NULL, NULL, 0, NULL, NULL), 1);
        write_bio_file(p, b, 0600);
        BIO_free(b);
        expect_key_ok(p, NULL, key);

        /* PEM with a certificate in front of it (a combined key+cert file) */
        {
                size_t clen, klen;
                _cleanup_free_ char *c = tu_cert_pem(cert1, &clen), *k = tu_key_pem(key, &klen), *both = NULL;

                ck_assert_int_ge(asprintf(&both, "%s%s", c, k), 0);
                tu_write_file(p, both, strlen(both), 0600);
                expect_key_ok(p, NULL, key);
        }
}
END_TEST

/* _i: 0 = PKCS#8 encrypted PEM, 1 = traditional PEM with Proc-Type: 4,ENCRYPTED */
START_TEST(test_load_encrypted) {
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "key");
        BIO *b = BIO_new(BIO_s_mem());

        if (_i == 0)
                ck_assert_int_eq(PEM_write_bio_PrivateKey(b, rsa, EVP_aes_256_cbc(), NULL, 0, NULL, (void *) "right"), 1);
        else
                ck_assert_int_eq(PEM_write_bio_PrivateKey_traditional(b, ec, EVP_aes_128_cbc(), NULL, 0, NULL,
                                                                      (void *) "right"),
                                 1);
        write_bio_file(p, b, 0600);
        BIO_free(b);

        expect_key_error(p, NULL, -ENOKEY);
        expect_key_error(p, "wrong", -EKEYREJECTED);
        expect_key_error(p, "righ", -EKEYREJECTED);
        expect_key_error(p, "right ", -EKEYREJECTED);
        expect_key_ok(p, "right", _i == 0 ? rsa : ec);
}
END_TEST

START_TEST(test_load_garbage) {
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "key");
        uint8_t junk[3000];

        tu_fill_random(junk, sizeof(junk), 17);
        junk[0] = 'x';
        tu_write_file(p, junk, sizeof(junk), 0600);
        expect_key_error(p, NULL, -EBADMSG);

        junk[0] = 0x30; /* looks like DER */
        tu_write_file(p, junk, sizeof(junk), 0600);
        expect_key_error(p, NULL, -EBADMSG);

        tu_write_file(p, "", 0, 0600);
        expect_key_error(p, NULL, -EBADMSG);

        tu_write_file(p, "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n", 69, 0600);
        expect_key_error(p, NULL, -EBADMSG);

        /* a certificate is not a key */
        {
                size_t len;
                _cleanup_free_ char *pem = tu_cert_pem(cert1, &len);
                _cleanup_free_ uint8_t *der = tu_cert_der(cert1, &len);

                tu_write_file(p, pem, strlen(pem), 0600);
                expect_key_error(p, NULL, -EBADMSG);
                tu_write_file(p, der, len, 0600);
                expect_key_error(p, NULL, -EBADMSG);
        }

        /* nor is a public key */
        {
                BIO *b = BIO_new(BIO_s_mem());

                ck_assert_int_eq(PEM_write_bio_PUBKEY(b, rsa), 1);
                write_bio_file(p, b, 0600);
                BIO_free(b);
                expect_key_error(p, NULL, -EBADMSG);
        }
}
END_TEST

static EVP_PKEY *dsa_key(void) {
        EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "DSA", NULL), *kctx;
        EVP_PKEY *params = NULL, *key = NULL;

        ck_assert_ptr_nonnull(pctx);
        ck_assert_int_eq(EVP_PKEY_paramgen_init(pctx), 1);
        ck_assert_int_eq(EVP_PKEY_CTX_set_dsa_paramgen_bits(pctx, 1024), 1);
        ck_assert_int_eq(EVP_PKEY_paramgen(pctx, &params), 1);
        kctx = EVP_PKEY_CTX_new_from_pkey(NULL, params, NULL);
        ck_assert_ptr_nonnull(kctx);
        ck_assert_int_eq(EVP_PKEY_keygen_init(kctx), 1);
        ck_assert_int_eq(EVP_PKEY_keygen(kctx, &key), 1);
        EVP_PKEY_CTX_free(kctx);
        EVP_PKEY_CTX_free(pctx);
        EVP_PKEY_free(params);
        return key;
}

START_TEST(test_load_unsupported_type) {
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "key");
        EVP_PKEY *keys[3];

        keys[0] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        keys[1] = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
        keys[2] = dsa_key();
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                size_t len;
                _cleanup_free_ char *pem = NULL;
                BIO *b;

                ck_assert_ptr_nonnull(keys[i]);
                pem = tu_key_pem(keys[i], &len);
                tu_write_file(p, pem, len, 0600);
                expect_key_error(p, NULL, -EOPNOTSUPP);

                b = BIO_new(BIO_s_mem());
                ck_assert_int_eq(i2d_PKCS8PrivateKey_bio(b, keys[i], NULL, NULL, 0, NULL, NULL), 1);
                write_bio_file(p, b, 0600);
                BIO_free(b);
                expect_key_error(p, NULL, -EOPNOTSUPP);
                EVP_PKEY_free(keys[i]);
        }
}
END_TEST

/* --- key files --- */

static void expect_open_error(const char *path, int error) {
        int fd = 4242;
        struct stat st;

        memset(&st, 0xa5, sizeof(st));
        ck_assert_int_eq(key_file_open(path, &fd, &st), error);
        ck_assert_int_eq(fd, 4242);
        ck_assert_uint_eq(((uint8_t *) &st)[0], 0xa5);
}

START_TEST(test_key_file_open) {
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "key"), *link = tu_path(dir, "link"),
                                *sub = tu_path(dir, "sub"), *missing = tu_path(dir, "missing");
        size_t len;
        _cleanup_free_ char *pem = tu_key_pem(rsa, &len);
        struct stat st, want;
        int fd = -1;

        tu_write_file(p, pem, len, 0600);
        ck_assert_int_eq(stat(p, &want), 0);
        ck_assert_int_eq(key_file_open(p, &fd, &st), 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        ck_assert_uint_eq(st.st_ino, want.st_ino);
        ck_assert_uint_eq(st.st_dev, want.st_dev);
        {
                EVP_PKEY *k = NULL;

                ck_assert_int_eq(key_load_fd(fd, NULL, &k, NULL), 0);
                ck_assert_int_eq(EVP_PKEY_eq(k, rsa), 1);
                EVP_PKEY_free(k);
        }
        close(fd);
        fd = -1;
        ck_assert_int_eq(key_file_open(p, &fd, NULL), 0); /* ret_st is optional */
        close(fd);

        ck_assert_int_eq(symlink(p, link), 0);
        expect_open_error(link, -ELOOP);
        ck_assert_int_eq(mkdir(sub, 0700), 0);
        expect_open_error(sub, -EINVAL);
        expect_open_error(missing, -ENOENT);
}
END_TEST

static int open_fifo_child(void *userdata) {
        int fd = -1;

        return key_file_open(userdata, &fd, NULL);
}

/* Regression test, the bug is fixed: key_file_open() opens without O_NONBLOCK, so a FIFO where the key file should be blocks
 * the caller (the daemon) forever in open(), instead of failing with -EINVAL like every other
 * non-regular file. module_file_open() gets this right with O_NONBLOCK. */
START_TEST(test_key_file_open_fifo) {
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "key");
        int r;

        ck_assert_int_eq(mkfifo(p, 0600), 0);
        r = tu_run_child(open_fifo_child, p, 1500);
        ck_assert_msg(r != TU_CHILD_HUNG, "regression: key_file_open() on a FIFO blocks (no O_NONBLOCK)");
        ck_assert_int_eq(r, -EINVAL);
}
END_TEST

START_TEST(test_key_file_check_access) {
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "key");
        static const struct {
                mode_t mode;
                int error;
        } modes[] = { { 0600, 0 }, { 0400, 0 }, { 0700, 0 }, { 0644, -EPERM }, { 0640, -EPERM },
                      { 0604, -EPERM }, { 0610, -EPERM }, { 0601, -EPERM }, { 0666, -EPERM } };
        struct stat st;

        tu_write_file(p, "k", 1, 0600);
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                const char *why = NULL;
                int fd = -1;

                ck_assert_int_eq(chmod(p, modes[i].mode), 0);
                ck_assert_int_eq(key_file_open(p, &fd, &st), 0);
                close(fd);
                ck_assert_msg(key_file_check_access(&st, &why) == modes[i].error, "mode %04o", (unsigned) modes[i].mode);
                if (modes[i].error)
                        ck_assert_ptr_nonnull(why);
        }

        /* owned by someone else */
        ck_assert_int_eq(chmod(p, 0600), 0);
        ck_assert_int_eq(stat(p, &st), 0);
        st.st_uid = geteuid() + 1;
        ck_assert_int_eq(key_file_check_access(&st, NULL), -EPERM);
        if (geteuid() == 0) {
                /* for real, when we may chown */
                const char *why = NULL;

                ck_assert_int_eq(chown(p, 1234, 1234), 0);
                ck_assert_int_eq(stat(p, &st), 0);
                ck_assert_int_eq(key_file_check_access(&st, &why), -EPERM);
                ck_assert_ptr_nonnull(why);
                ck_assert_int_eq(chown(p, 0, 1234), 0); /* the group does not matter, its bits do */
                ck_assert_int_eq(stat(p, &st), 0);
                ck_assert_int_eq(key_file_check_access(&st, NULL), 0);
        }
}
END_TEST

/* --- certificates --- */

static void write_pem_certs(const char *path, X509 *const *certs, size_t n) {
        BIO *b = BIO_new(BIO_s_mem());

        for (size_t i = 0; i < n; i++)
                ck_assert_int_eq(PEM_write_bio_X509(b, certs[i]), 1);
        write_bio_file(path, b, 0644);
        BIO_free(b);
}

static void write_der_cert(const char *path, X509 *cert) {
        size_t len;
        _cleanup_free_ uint8_t *der = tu_cert_der(cert, &len);

        tu_write_file(path, der, len, 0644);
}

START_TEST(test_certs_pem_bundle) {
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "bundle.pem");
        X509 *const certs[] = { cert1, cert2, cert3 };
        STACK_OF(X509) *s = tu_cert_stack(NULL);

        write_pem_certs(p, certs, 3);
        ck_assert_int_eq(certs_load_path(p, s), 3);
        ck_assert_int_eq(sk_X509_num(s), 3);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(X509_cmp(sk_X509_value(s, i), certs[i]), 0);

        /* adds to what is there */
        ck_assert_int_eq(certs_load_path(p, s), 3);
        ck_assert_int_eq(sk_X509_num(s), 6);
        sk_X509_pop_free(s, X509_free);

        /* text around the certificates (openssl x509 -text output, comments) is fine */
        {
                size_t l1, l2;
                _cleanup_free_ char *a = tu_cert_pem(cert1, &l1), *b = tu_cert_pem(cert2, &l2), *all = NULL;

                ck_assert_int_ge(asprintf(&all, "# trusted keys\n%s\nsome text\n%s", a, b), 0);
                tu_write_file(p, all, strlen(all), 0644);
                s = tu_cert_stack(NULL);
                ck_assert_int_eq(certs_load_path(p, s), 2);
                sk_X509_pop_free(s, X509_free);
        }
        ck_assert_int_eq(ERR_peek_error(), 0);
}
END_TEST

/* Regression test, the bug is fixed (minor): certs_load_path() stops at the first PEM block that does not parse and returns
 * the count so far as success: in a bundle [good, corrupt, good] the third certificate is
 * silently dropped, and modules signed by it then fail verification with -ENOKEY ("untrusted")
 * instead of the bundle being reported broken. Either every certificate or an error. */
START_TEST(test_certs_pem_bundle_corrupt_middle) {
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "bundle.pem"), *all = NULL;
        size_t l1, l2, l3;
        _cleanup_free_ char *a = tu_cert_pem(cert1, &l1), *b = tu_cert_pem(cert2, &l2), *c = tu_cert_pem(cert3, &l3);
        STACK_OF(X509) *s = tu_cert_stack(NULL);
        char *mid;
        int r;

        /* damage the base64 of the second certificate */
        mid = strstr(b, "\n") + 1 + 10;
        memcpy(mid, "!!!!", 4);
        ck_assert_int_ge(asprintf(&all, "%s%s%s", a, b, c), 0);
        tu_write_file(p, all, strlen(all), 0644);

        r = certs_load_path(p, s);
        ck_assert_msg(r < 0 || r == 2, "regression: certs_load_path() on [good, corrupt, good] returned %d (%d loaded)", r,
                      sk_X509_num(s));
        sk_X509_pop_free(s, X509_free);
}
END_TEST

START_TEST(test_certs_der) {
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "cert.der");
        STACK_OF(X509) *s = tu_cert_stack(NULL);
        X509 *c = NULL;

        write_der_cert(p, cert2);
        ck_assert_int_eq(certs_load_path(p, s), 1);
        ck_assert_int_eq(X509_cmp(sk_X509_value(s, 0), cert2), 0);
        sk_X509_pop_free(s, X509_free);

        ck_assert_int_eq(cert_load_file(p, &c), 0);
        ck_assert_int_eq(X509_cmp(c, cert2), 0);
        X509_free(c);
        c = NULL;
        write_pem_certs(p, &cert3, 1);
        ck_assert_int_eq(cert_load_file(p, &c), 0);
        ck_assert_int_eq(X509_cmp(c, cert3), 0);
        X509_free(c);
}
END_TEST

START_TEST(test_certs_directory) {
        _cleanup_free_ char *dir = tu_tmpdir(), *certs = tu_path(dir, "certs"), *outside = tu_path(dir, "outside.pem"),
                                *a = NULL, *b = NULL, *l = NULL, *sub = NULL, *hidden = NULL;
        STACK_OF(X509) *s = tu_cert_stack(NULL);
        bool seen1 = false, seen2 = false;

        ck_assert_int_eq(mkdir(certs, 0755), 0);
        a = tu_path(certs, "one.pem");
        b = tu_path(certs, "two.der");
        l = tu_path(certs, "three.pem");
        sub = tu_path(certs, "subdir");
        write_pem_certs(a, &cert1, 1);
        write_der_cert(b, cert2);
        write_pem_certs(outside, &cert3, 1);
        ck_assert_int_eq(symlink(outside, l), 0); /* skipped */
        ck_assert_int_eq(mkdir(sub, 0755), 0);    /* not recursed into */
        {
                _cleanup_free_ char *deep = tu_path(sub, "deep.pem");

                write_pem_certs(deep, &cert3, 1);
        }

        ck_assert_int_eq(certs_load_path(certs, s), 2);
        ck_assert_int_eq(sk_X509_num(s), 2);
        for (int i = 0; i < 2; i++) {
                if (X509_cmp(sk_X509_value(s, i), cert1) == 0)
                        seen1 = true;
                if (X509_cmp(sk_X509_value(s, i), cert2) == 0)
                        seen2 = true;
        }
        ck_assert(seen1 && seen2);
        sk_X509_pop_free(s, X509_free);

        /* a file with no certificate among them does not spoil the rest */
        hidden = tu_path(certs, "README");
        tu_write_file(hidden, "nothing here\n", 13, 0644);
        s = tu_cert_stack(NULL);
        ck_assert_int_eq(certs_load_path(certs, s), 2);
        sk_X509_pop_free(s, X509_free);
}
END_TEST


static int load_dir_child(void *userdata) {
        STACK_OF(X509) *s = sk_X509_new_null();

        return certs_load_path(userdata, s);
}

/* Regression test, the bug is fixed: certs_load_path() on a directory opens every entry with openat(O_RDONLY) before it checks
 * S_ISREG, without O_NONBLOCK: a FIFO in a certificate directory hangs the caller forever
 * instead of being skipped like the symlinks and subdirectories are. */
START_TEST(test_certs_directory_fifo) {
        _cleanup_free_ char *dir = tu_tmpdir(), *a = tu_path(dir, "one.pem"), *f = tu_path(dir, "fifo");
        int r;

        write_pem_certs(a, &cert1, 1);
        ck_assert_int_eq(mkfifo(f, 0644), 0);
        r = tu_run_child(load_dir_child, dir, 1500);
        ck_assert_msg(r != TU_CHILD_HUNG, "regression: certs_load_path() blocks on a FIFO inside the directory");
        ck_assert_int_eq(r, 1);
}
END_TEST

START_TEST(test_certs_none) {
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "file"), *missing = tu_path(dir, "missing");
        STACK_OF(X509) *s = tu_cert_stack(NULL);
        X509 *untouched = (X509 *) 0x1, *c = untouched;
        size_t len;
        _cleanup_free_ char *keypem = tu_key_pem(rsa, &len);

        tu_write_file(p, "no certificate in here\n", 23, 0644);
        ck_assert_int_eq(certs_load_path(p, s), -ENOENT);
        tu_write_file(p, "", 0, 0644);
        ck_assert_int_eq(certs_load_path(p, s), -ENOENT);
        tu_write_file(p, keypem, len, 0644); /* a key is not a certificate */
        ck_assert_int_eq(certs_load_path(p, s), -ENOENT);
        ck_assert_int_eq(sk_X509_num(s), 0);
        ck_assert_int_lt(cert_load_file(p, &c), 0);
        ck_assert_ptr_eq(c, untouched);
        ck_assert_int_eq(certs_load_path(missing, s), -ENOENT);
        ck_assert_int_lt(cert_load_file(missing, &c), 0);
        ck_assert_ptr_eq(c, untouched);
        ck_assert_int_eq(ERR_peek_error(), 0);
        sk_X509_pop_free(s, X509_free);
}
END_TEST

START_TEST(test_fingerprint) {
        _cleanup_free_ char *dir = tu_tmpdir(), *p = tu_path(dir, "c.pem"), *out = NULL;
        X509 *const certs[] = { cert1, cert2, cert3 };

        for (size_t i = 0; i < ELEMENTSOF(certs); i++) {
                unsigned char md[EVP_MAX_MD_SIZE];
                unsigned mdlen = 0;
                char fp[65], want[65], from_tool[65];
                const char *eq;
                size_t n = 0;

                memset(fp, 'X', sizeof(fp));
                ck_assert_int_eq(cert_fingerprint_sha256(certs[i], fp), 0);
                ck_assert_uint_eq(strlen(fp), 64);

                /* independently: the digest of the DER */
                ck_assert_int_eq(X509_digest(certs[i], EVP_sha256(), md, &mdlen), 1);
                ck_assert_uint_eq(mdlen, 32);
                for (unsigned j = 0; j < mdlen; j++)
                        sprintf(want + 2 * j, "%02x", md[j]);
                ck_assert_str_eq(fp, want);

                /* and what openssl x509 -fingerprint says */
                write_pem_certs(p, &certs[i], 1);
                free(out);
                out = tu_command_output("openssl x509 -noout -fingerprint -sha256 -in '%s'", p);
                eq = strchr(out, '=');
                ck_assert_ptr_nonnull(eq);
                for (const char *q = eq + 1; *q && *q != '\n'; q++)
                        if (*q != ':') {
                                ck_assert_uint_lt(n, 64);
                                from_tool[n++] = (char) tolower((unsigned char) *q);
                        }
                from_tool[n] = '\0';
                ck_assert_str_eq(fp, from_tool);
        }
}
END_TEST

static Suite *key_suite(void) {
        Suite *s = suite_create("key");
        TCase *tc;

        tc = tu_tcase("load");
        tcase_add_unchecked_fixture(tc, keys_setup, NULL);
        tcase_add_loop_test(tc, test_load_formats, 0, 2);
        tcase_add_loop_test(tc, test_load_encrypted, 0, 2);
        tcase_add_test(tc, test_load_garbage);
        tcase_add_test(tc, test_load_unsupported_type);
        suite_add_tcase(s, tc);

        tc = tu_tcase("file");
        tcase_add_unchecked_fixture(tc, keys_setup, NULL);
        tcase_add_test(tc, test_key_file_open);
        tcase_add_test(tc, test_key_file_open_fifo);
        tcase_add_test(tc, test_key_file_check_access);
        suite_add_tcase(s, tc);

        tc = tu_tcase("certs");
        tcase_add_unchecked_fixture(tc, keys_setup, NULL);
        tcase_add_test(tc, test_certs_pem_bundle);
        tcase_add_test(tc, test_certs_pem_bundle_corrupt_middle);
        tcase_add_test(tc, test_certs_der);
        tcase_add_test(tc, test_certs_directory);
        tcase_add_test(tc, test_certs_directory_fifo);
        tcase_add_test(tc, test_certs_none);
        tcase_add_test(tc, test_fingerprint);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tu_run_suite(key_suite());
}
