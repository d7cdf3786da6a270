/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsign.c and module-file.c: signing, re-signing, stripping and verifying module files,
 * plain and compressed, in a scratch directory. Compressed fixtures are made, and results
 * checked, with the xz, zstd and gzip tools. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/cms.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compress.h"
#include "digest.h"
#include "macro.h"
#include "modsign.h"
#include "module-file.h"
#include "unit-util.h"
#include "verify.h"

static EVP_PKEY *key1, *key2;
static X509 *cert1, *cert2;
static struct signer *signer1, *signer2;

static void keys_setup(void) {
        if (key1)
                return;
        key1 = tu_rsa_key(2048);
        key2 = tu_rsa_key(2048);
        cert1 = tu_cert(key1, "Module Key One", 0x11, false);
        cert2 = tu_cert(key2, "Module Key Two", 0x22, true);
        ck_assert_int_eq(signer_new(key1, cert1, false, &signer1), 0);
        ck_assert_int_eq(signer_new(key2, cert2, false, &signer2), 0);
}

struct tmod {
        char *dir, *name, *path;
        int dir_fd;
        enum compression c;
        uint8_t *plain; /* the unsigned ELF */
        size_t plain_len;
};

static const char *tool_compress(enum compression c) {
        switch (c) {
        case COMPRESSION_XZ:
                return "xz --check=crc32 --lzma2=dict=1MiB -c";
        case COMPRESSION_ZSTD:
                return "zstd -q -c";
        case COMPRESSION_GZIP:
                return "gzip -n -c";
        case COMPRESSION_NONE:
        default:
                return "cat";
        }
}

static const char *tool_decompress(enum compression c) {
        switch (c) {
        case COMPRESSION_XZ:
                return "xz -dc";
        case COMPRESSION_ZSTD:
                return "zstd -q -dc";
        case COMPRESSION_GZIP:
                return "gzip -dc";
        case COMPRESSION_NONE:
        default:
                return "cat";
        }
}

/* Writes 'bytes' (an ELF, signed or not) as the module file, compressed like the module. */
static void tmod_put(struct tmod *t, const uint8_t *bytes, size_t len) {
        _cleanup_free_ char *raw = tu_path(t->dir, "raw.tmp");

        tu_write_file(raw, bytes, len, 0644);
        ck_assert_int_eq(tu_system("%s '%s' > '%s'", tool_compress(t->c), raw, t->path), 0);
        ck_assert_int_eq(unlink(raw), 0);
}

/* A fresh directory with foo.ko[.xz|.zst|.gz], unsigned. */
static void tmod_init(struct tmod *t, enum compression c) {
        *t = (struct tmod) { .c = c };
        t->dir = tu_tmpdir();
        ck_assert_int_ge(asprintf(&t->name, "foo.ko%s", compression_suffix(c)), 0);
        t->path = tu_path(t->dir, t->name);
        t->dir_fd = tu_open_dir(t->dir);
        t->plain = tu_module_new(TU_MODINFO, TU_MODINFO_LEN, 20000, &t->plain_len);
        tmod_put(t, t->plain, t->plain_len);
}

/* The same with a module of about 'size' bytes in place of the small one. */
static void tmod_init_big(struct tmod *t, enum compression c, size_t size) {
        tmod_init(t, c);
        free(t->plain);
        t->plain = tu_module_new(TU_MODINFO, TU_MODINFO_LEN, size, &t->plain_len);
        tmod_put(t, t->plain, t->plain_len);
}

static void tmod_done(struct tmod *t) {
        close(t->dir_fd);
        free(t->plain);
        free(t->path);
        free(t->name);
        free(t->dir);
}

/* The module's decompressed bytes, read with the tools (not with the library). */
static uint8_t *tmod_contents(const struct tmod *t, size_t *ret_len) {
        _cleanup_free_ char *raw = tu_path(t->dir, "contents.tmp");
        uint8_t *buf;

        ck_assert_int_eq(tu_system("%s '%s' > '%s'", tool_decompress(t->c), t->path, raw), 0);
        buf = tu_read_file(raw, ret_len);
        ck_assert_int_eq(unlink(raw), 0);
        return buf;
}

static void tmod_open(const struct tmod *t, struct module_file *m) {
        const char *why = NULL;
        int r = module_file_open(t->dir_fd, t->name, m, &why);

        ck_assert_msg(r == 0, "module_file_open(%s): %s (%s)", t->name, strerror(-r), why ? why : "");
        ck_assert_int_eq(m->compression, t->c);
}

static int tmod_sign(const struct tmod *t, const struct signer *s, const char *hash, enum modsign_existing existing,
                     enum modsign_outcome *ret_outcome, const char **ret_why) {
        struct modsign_request req = {
                .signer = s,
                .hash = hash,
                .existing = existing,
                .write_module = true,
                .threads = 1,
                .dest_dir_fd = -1,
        };
        struct module_file m;
        int r;

        tmod_open(t, &m);
        r = modsign_sign(&m, &req, ret_outcome, ret_why);
        module_file_close(&m);
        return r;
}

static void tmod_sign_ok(const struct tmod *t, const struct signer *s, const char *hash, enum modsign_existing existing,
                         enum modsign_outcome want) {
        enum modsign_outcome outcome = (enum modsign_outcome) -1;
        const char *why = NULL;
        int r = tmod_sign(t, s, hash, existing, &outcome, &why);

        ck_assert_msg(r == 0, "modsign_sign(%s): %s (%s)", t->name, strerror(-r), why ? why : "");
        ck_assert_int_eq(outcome, want);
}

/* modsign_verify() against one certificate (NULL: none). */
static int tmod_verify(const struct tmod *t, X509 *cert, X509 **ret_signer) {
        STACK_OF(X509) *trusted = tu_cert_stack(cert);
        struct module_file m;
        int r;

        tmod_open(t, &m);
        r = modsign_verify(&m, trusted, ret_signer);
        module_file_close(&m);
        sk_X509_pop_free(trusted, X509_free);
        return r;
}

static unsigned tmod_n_signatures(const struct tmod *t) {
        struct module_file m;
        unsigned n;

        tmod_open(t, &m);
        n = m.meta.n_signatures;
        ck_assert_uint_eq(m.meta.body_len, t->plain_len);
        ck_assert_str_eq(m.meta.name, "foo");
        module_file_close(&m);
        return n;
}

/* plain + blob + trailer */
static uint8_t *signed_image(const uint8_t *plain, size_t plain_len, const uint8_t *blob, size_t blob_len,
                             size_t *ret_len) {
        uint8_t *img = malloc(plain_len);
        size_t len = plain_len;

        ck_assert_ptr_nonnull(img);
        memcpy(img, plain, plain_len);
        tu_append_sig(&img, &len, blob, blob_len);
        *ret_len = len;
        return img;
}

static void assert_file_is(const char *path, const uint8_t *want, size_t want_len) {
        size_t len;
        _cleanup_free_ uint8_t *buf = tu_read_file(path, &len);

        ck_assert_uint_eq(len, want_len);
        ck_assert_mem_eq(buf, want, len);
}

static bool same_file(const struct stat *a, const struct stat *b) {
        return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* --- plain modules --- */

START_TEST(test_sign_plain) {
        struct tmod t;
        _cleanup_free_ uint8_t *oracle = NULL, *want = NULL;
        size_t oracle_len, want_len;
        X509 *signer = NULL;
        struct stat st;

        tmod_init(&t, COMPRESSION_NONE);
        if (geteuid() == 0)
                ck_assert_int_eq(chown(t.path, 1234, 5678), 0);
        ck_assert_int_eq(chmod(t.path, 0640), 0);
        ck_assert_int_eq(tmod_verify(&t, cert1, NULL), -ENODATA);
        ck_assert_uint_eq(tmod_n_signatures(&t), 0);

        tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, MODSIGN_SIGNED);

        /* exactly what sign-file would have appended */
        oracle = tu_sign_file_oracle(key1, cert1, "sha256", false, t.plain, t.plain_len, &oracle_len);
        want = signed_image(t.plain, t.plain_len, oracle, oracle_len, &want_len);
        assert_file_is(t.path, want, want_len);

        ck_assert_uint_eq(tmod_n_signatures(&t), 1);
        ck_assert_int_eq(tmod_verify(&t, cert1, &signer), 0);
        ck_assert_int_eq(X509_cmp(signer, cert1), 0);
        X509_free(signer);
        ck_assert_int_eq(tmod_verify(&t, cert2, NULL), -ENOKEY);
        ck_assert_int_eq(tmod_verify(&t, NULL, NULL), -ENOKEY);

        /* the file keeps its owner and mode */
        ck_assert_int_eq(stat(t.path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0640);
        if (geteuid() == 0) {
                ck_assert_uint_eq(st.st_uid, 1234);
                ck_assert_uint_eq(st.st_gid, 5678);
        }
        {
                _cleanup_free_ char *listing = tu_dir_listing(t.dir);

                ck_assert_str_eq(listing, "foo.ko");
        }
        tmod_done(&t);
}
END_TEST

START_TEST(test_sign_again_unchanged) {
        struct tmod t;
        struct stat before, after;
        _cleanup_free_ uint8_t *bytes = NULL;
        size_t len;

        tmod_init(&t, COMPRESSION_NONE);
        tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, MODSIGN_SIGNED);
        ck_assert_int_eq(stat(t.path, &before), 0);
        bytes = tu_read_file(t.path, &len);

        tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, MODSIGN_UNCHANGED);
        tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REPLACE, MODSIGN_UNCHANGED);
        ck_assert_int_eq(stat(t.path, &after), 0);
        ck_assert_msg(same_file(&before, &after), "the file was rewritten although it was already signed");
        assert_file_is(t.path, bytes, len);
        tmod_done(&t);
}
END_TEST

START_TEST(test_always_write) {
        struct tmod t;
        struct module_file m;
        struct stat before, after;
        enum modsign_outcome outcome;
        struct modsign_request req = { .signer = signer1, .hash = "sha256", .write_module = true,
                                       .always_write = true, .threads = 1, .dest_dir_fd = -1 };

        tmod_init(&t, COMPRESSION_NONE);
        tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, MODSIGN_SIGNED);
        ck_assert_int_eq(stat(t.path, &before), 0);
        tmod_open(&t, &m);
        ck_assert_int_eq(modsign_sign(&m, &req, &outcome, NULL), 0);
        module_file_close(&m);
        ck_assert_int_eq(outcome, MODSIGN_SIGNED);
        ck_assert_int_eq(stat(t.path, &after), 0);
        ck_assert_uint_ne(after.st_ino, before.st_ino);
        ck_assert_uint_eq(tmod_n_signatures(&t), 1);
        ck_assert_int_eq(tmod_verify(&t, cert1, NULL), 0);
        tmod_done(&t);
}
END_TEST

START_TEST(test_other_key_refused) {
        struct tmod t;
        struct stat before, after;
        _cleanup_free_ uint8_t *bytes = NULL;
        enum modsign_outcome outcome = (enum modsign_outcome) 42;
        const char *why = NULL;
        size_t len;

        tmod_init(&t, COMPRESSION_NONE);
        tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, MODSIGN_SIGNED);
        ck_assert_int_eq(stat(t.path, &before), 0);
        bytes = tu_read_file(t.path, &len);

        ck_assert_int_eq(tmod_sign(&t, signer2, "sha256", MODSIGN_EXISTING_REFUSE, &outcome, &why), -EEXIST);
        ck_assert_ptr_nonnull(why);
        ck_assert_int_eq(outcome, 42);
        ck_assert_int_eq(stat(t.path, &after), 0);
        ck_assert(same_file(&before, &after));
        assert_file_is(t.path, bytes, len);
        ck_assert_int_eq(tmod_verify(&t, cert1, NULL), 0);
        tmod_done(&t);
}
END_TEST

START_TEST(test_other_key_replaced) {
        struct tmod t;
        _cleanup_free_ uint8_t *oracle = NULL, *want = NULL;
        size_t oracle_len, want_len;

        tmod_init(&t, COMPRESSION_NONE);
        tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, MODSIGN_SIGNED);
        tmod_sign_ok(&t, signer2, "sha512", MODSIGN_EXISTING_REPLACE, MODSIGN_SIGNED);

        /* replaced, not stacked: one signature, by key 2, over the bare ELF */
        ck_assert_uint_eq(tmod_n_signatures(&t), 1);
        ck_assert_int_eq(tmod_verify(&t, cert2, NULL), 0);
        ck_assert_int_eq(tmod_verify(&t, cert1, NULL), -ENOKEY);
        oracle = tu_sign_file_oracle(key2, cert2, "sha512", false, t.plain, t.plain_len, &oracle_len);
        want = signed_image(t.plain, t.plain_len, oracle, oracle_len, &want_len);
        assert_file_is(t.path, want, want_len);
        tmod_done(&t);
}
END_TEST

START_TEST(test_same_key_other_hash) {
        struct tmod t;
        struct module_file m;
        _cleanup_free_ uint8_t *der = NULL;
        struct sig_details d;
        size_t len;

        tmod_init(&t, COMPRESSION_NONE);
        tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, MODSIGN_SIGNED);
        tmod_sign_ok(&t, signer1, "sha512", MODSIGN_EXISTING_REFUSE, MODSIGN_SIGNED);
        ck_assert_uint_eq(tmod_n_signatures(&t), 1);
        tmod_open(&t, &m);
        ck_assert_int_eq(module_file_read_signature(&m, &der, &len), 0);
        module_file_close(&m);
        ck_assert_int_eq(sig_describe(der, len, &d), 0);
        ck_assert_str_eq(d.hash, "sha512");
        ck_assert_str_eq(d.signer, "Module Key One");
        sig_details_done(&d);
        ck_assert_int_eq(tmod_verify(&t, cert1, NULL), 0);
        tmod_done(&t);
}
END_TEST

START_TEST(test_strip) {
        struct tmod t;
        struct module_file m;
        struct stat before, after;

        tmod_init(&t, COMPRESSION_NONE);
        tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, MODSIGN_SIGNED);
        tmod_open(&t, &m);
        ck_assert_int_eq(modsign_strip(&m, 1), 0);
        module_file_close(&m);
        assert_file_is(t.path, t.plain, t.plain_len);
        ck_assert_uint_eq(tmod_n_signatures(&t), 0);

        /* nothing to strip: 1, and nothing written */
        ck_assert_int_eq(stat(t.path, &before), 0);
        tmod_open(&t, &m);
        ck_assert_int_eq(modsign_strip(&m, 1), 1);
        module_file_close(&m);
        ck_assert_int_eq(stat(t.path, &after), 0);
        ck_assert(same_file(&before, &after));
        tmod_done(&t);
}
END_TEST

START_TEST(test_strip_stacked) {
        struct tmod t;
        struct module_file m;
        _cleanup_free_ uint8_t *s1 = NULL, *s2 = NULL, *img = NULL;
        size_t l1, l2, len;

        tmod_init(&t, COMPRESSION_NONE);
        s1 = tu_sign_file_oracle(key1, cert1, "sha256", false, t.plain, t.plain_len, &l1);
        img = signed_image(t.plain, t.plain_len, s1, l1, &len);
        s2 = tu_sign_file_oracle(key2, cert2, "sha256", false, img, len, &l2);
        tu_append_sig(&img, &len, s2, l2);
        tmod_put(&t, img, len);
        ck_assert_uint_eq(tmod_n_signatures(&t), 2);
        ck_assert_int_eq(tmod_verify(&t, cert2, NULL), 0); /* the outermost one counts */
        ck_assert_int_eq(tmod_verify(&t, cert1, NULL), -ENOKEY);

        tmod_open(&t, &m);
        ck_assert_int_eq(modsign_strip(&m, 1), 0);
        module_file_close(&m);
        assert_file_is(t.path, t.plain, t.plain_len);
        tmod_done(&t);
}
END_TEST

START_TEST(test_detached) {
        struct tmod t;
        struct module_file m;
        struct stat before, after;
        enum modsign_outcome outcome;
        _cleanup_free_ uint8_t *sig = NULL, *oracle = NULL;
        size_t sig_len = 0, oracle_len;
        struct modsign_request req = { .signer = signer1, .hash = "sha384", .write_module = false, .threads = 1,
                                       .dest_dir_fd = -1, .ret_sig = &sig, .ret_sig_len = &sig_len };

        tmod_init(&t, COMPRESSION_NONE);
        ck_assert_int_eq(stat(t.path, &before), 0);
        tmod_open(&t, &m);
        ck_assert_int_eq(modsign_sign(&m, &req, &outcome, NULL), 0);
        module_file_close(&m);
        ck_assert_int_eq(outcome, MODSIGN_DETACHED);
        ck_assert_int_eq(stat(t.path, &after), 0);
        ck_assert(same_file(&before, &after));
        assert_file_is(t.path, t.plain, t.plain_len);

        oracle = tu_sign_file_oracle(key1, cert1, "sha384", false, t.plain, t.plain_len, &oracle_len);
        ck_assert_uint_eq(sig_len, oracle_len);
        ck_assert_mem_eq(sig, oracle, sig_len);
        tmod_done(&t);
}
END_TEST

START_TEST(test_raw_signature_and_dest) {
        struct tmod t;
        struct module_file m;
        enum modsign_outcome outcome;
        _cleanup_free_ uint8_t *oracle = NULL, *want = NULL, *copy = NULL;
        _cleanup_free_ char *dest = NULL;
        size_t oracle_len, want_len, copy_len = 0;
        struct modsign_request req = { .write_module = true, .threads = 1, .ret_sig = &copy, .ret_sig_len = &copy_len };

        tmod_init(&t, COMPRESSION_NONE);
        oracle = tu_sign_file_oracle(key2, cert2, "sha256", true, t.plain, t.plain_len, &oracle_len);
        want = signed_image(t.plain, t.plain_len, oracle, oracle_len, &want_len);

        /* sign-file -s RAWSIG ... MODULE DEST */
        req.raw_sig = oracle;
        req.raw_sig_len = oracle_len;
        req.dest_dir_fd = t.dir_fd;
        req.dest_name = "dest.ko";
        tmod_open(&t, &m);
        ck_assert_int_eq(modsign_sign(&m, &req, &outcome, NULL), 0);
        module_file_close(&m);
        ck_assert_int_eq(outcome, MODSIGN_SIGNED);
        dest = tu_path(t.dir, "dest.ko");
        assert_file_is(dest, want, want_len);
        assert_file_is(t.path, t.plain, t.plain_len); /* the source is left alone */
        ck_assert_uint_eq(copy_len, oracle_len);
        ck_assert_mem_eq(copy, oracle, copy_len);

        /* neither a signer nor a signature */
        req = (struct modsign_request) { .write_module = true, .dest_dir_fd = -1 };
        tmod_open(&t, &m);
        ck_assert_int_eq(modsign_sign(&m, &req, &outcome, NULL), -EINVAL);
        module_file_close(&m);
        tmod_done(&t);
}
END_TEST

START_TEST(test_sign_large) {
        /* A module larger than the chunks it is copied in, and than the writeback step. */
        struct tmod t;
        _cleanup_free_ uint8_t *oracle = NULL, *want = NULL;
        size_t oracle_len, want_len;

        tmod_init_big(&t, COMPRESSION_NONE, 10U << 20);

        tmod_sign_ok(&t, signer2, "sha512", MODSIGN_EXISTING_REFUSE, MODSIGN_SIGNED);
        oracle = tu_sign_file_oracle(key2, cert2, "sha512", false, t.plain, t.plain_len, &oracle_len);
        want = signed_image(t.plain, t.plain_len, oracle, oracle_len, &want_len);
        assert_file_is(t.path, want, want_len);
        ck_assert_int_eq(tmod_verify(&t, cert2, NULL), 0);
        tmod_done(&t);
}
END_TEST

/* Hashed once for the gate (module_file_sha256), signed without a second read: the result
 * must be what signing from the bytes gives, for a fresh module and for a re-signed one
 * (where the body is only a prefix of the file), and the digest of the result, computed
 * from the cached state, must be the digest of the file written. */
START_TEST(test_sign_from_digest_cache) {
        struct tmod t;

        /* Many of the chunks the file is read in, and not a multiple of them. */
        tmod_init_big(&t, COMPRESSION_NONE, (3U << 20) + 12345);

        for (int round = 0; round < 2; round++) {
                /* round 0: unsigned; round 1: signed by key2 first, then re-signed with key1 */
                struct module_file m;
                enum modsign_outcome outcome;
                uint8_t *sig = NULL, *oracle, *want, *written;
                size_t sig_len = 0, oracle_len, want_len, written_len;
                char before[65], again[65], after[65], predicted[65];
                char *hex;
                struct modsign_request req = { .signer = signer1, .hash = "sha256", .write_module = true,
                                               .existing = MODSIGN_EXISTING_REPLACE, .threads = 1,
                                               .dest_dir_fd = -1, .ret_sig = &sig, .ret_sig_len = &sig_len };

                if (round == 1)
                        tmod_sign_ok(&t, signer2, "sha512", MODSIGN_EXISTING_REPLACE, MODSIGN_SIGNED);
                tmod_open(&t, &m);
                ck_assert_int_eq(module_file_sha256(&m, before), 0);
                hex = tu_command_output("sha256sum '%s' | cut -c1-64 | tr -d '\\n'", t.path);
                ck_assert_str_eq(before, hex);
                free(hex);
                ck_assert_ptr_nonnull(m.body_sha256);
                ck_assert_int_eq(module_file_sha256(&m, again), 0); /* remembered */
                ck_assert_str_eq(before, again);
                ck_assert_int_eq(modsign_sign(&m, &req, &outcome, NULL), 0);
                ck_assert_int_eq(outcome, MODSIGN_SIGNED);
                ck_assert_ptr_nonnull(sig);
                ck_assert_int_eq(module_file_sha256_signed(&m, sig, sig_len, predicted), 0);
                module_file_close(&m);

                oracle = tu_sign_file_oracle(key1, cert1, "sha256", false, t.plain, t.plain_len, &oracle_len);
                want = signed_image(t.plain, t.plain_len, oracle, oracle_len, &want_len);
                assert_file_is(t.path, want, want_len);
                written = tu_read_file(t.path, &written_len);
                ck_assert_int_eq(digest_sha256_hex(written, written_len, after), 0);
                ck_assert_str_eq(predicted, after);
                free(oracle);
                free(want);
                free(written);
                free(sig);
        }
        tmod_done(&t);
}
END_TEST

/* The body copied on a second thread while the caller looks at the module (the gate): the
 * result is the same, with the digest cached (sha256) or read afterwards (sha512); a copy
 * nobody signs with leaves nothing behind. */
START_TEST(test_copy_ahead) {
        static const char *const hashes[] = { "sha256", "sha512", NULL };
        struct tmod t;

        tmod_init_big(&t, COMPRESSION_NONE, (2U << 20) + 777);

        for (size_t i = 0; i <= 2; i++) {
                struct module_file m;
                struct modsign_copy_ahead *ahead = NULL;
                enum modsign_outcome outcome;
                uint8_t *oracle, *want;
                size_t oracle_len, want_len;
                char digest[65];
                _cleanup_free_ char *listing = NULL;

                tmod_put(&t, t.plain, t.plain_len); /* unsigned again */
                tmod_open(&t, &m);
                ck_assert_int_eq(modsign_copy_ahead(&m, &ahead), 0);
                ck_assert_ptr_nonnull(ahead);
                if (!hashes[i]) {
                        /* refused after all: dropped, the module untouched, no file left */
                        ahead = modsign_copy_ahead_free(ahead);
                        module_file_close(&m);
                        assert_file_is(t.path, t.plain, t.plain_len);
                        listing = tu_dir_listing(t.dir);
                        ck_assert_str_eq(listing, "foo.ko");
                        continue;
                }
                if (i == 0)
                        ck_assert_int_eq(module_file_sha256(&m, digest), 0); /* as the gate does */
                struct modsign_request req = { .signer = signer1, .hash = hashes[i], .write_module = true,
                                               .threads = 1, .dest_dir_fd = -1, .copy_ahead = ahead };
                ck_assert_int_eq(modsign_sign(&m, &req, &outcome, NULL), 0);
                ck_assert_int_eq(outcome, MODSIGN_SIGNED);
                ahead = modsign_copy_ahead_free(ahead);
                module_file_close(&m);

                oracle = tu_sign_file_oracle(key1, cert1, hashes[i], false, t.plain, t.plain_len, &oracle_len);
                want = signed_image(t.plain, t.plain_len, oracle, oracle_len, &want_len);
                assert_file_is(t.path, want, want_len);
                listing = tu_dir_listing(t.dir);
                ck_assert_str_eq(listing, "foo.ko");
                free(oracle);
                free(want);
        }
        {
                /* only for unsigned, uncompressed modules of 1 MiB or more */
                struct module_file m;
                struct modsign_copy_ahead *ahead = (struct modsign_copy_ahead *) 1;

                tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, MODSIGN_SIGNED);
                tmod_open(&t, &m); /* signed now */
                ck_assert_int_eq(modsign_copy_ahead(&m, &ahead), 0);
                ck_assert_ptr_null(ahead);
                module_file_close(&m);
        }
        tmod_done(&t);
}
END_TEST

START_TEST(test_changed_while_signing) {
        /* The module changes between open and commit: -ESTALE, and the new version stays. */
        struct tmod t;
        struct module_file m;
        enum modsign_outcome outcome;
        struct modsign_request req = { .signer = signer1, .hash = "sha256", .write_module = true, .threads = 1,
                                       .dest_dir_fd = -1 };
        const struct timespec later[2] = { { .tv_sec = 2000000000 }, { .tv_sec = 2000000000 } };
        _cleanup_free_ uint8_t *other = NULL;
        size_t other_len;

        tmod_init(&t, COMPRESSION_NONE);
        tmod_open(&t, &m);
        other = tu_module_new(TU_MODINFO, TU_MODINFO_LEN, 30000, &other_len);
        tmod_put(&t, other, other_len); /* rewritten in place (same inode) */
        ck_assert_int_eq(utimensat(AT_FDCWD, t.path, later, 0), 0);
        ck_assert_int_eq(modsign_sign(&m, &req, &outcome, NULL), -ESTALE);
        module_file_close(&m);
        assert_file_is(t.path, other, other_len);
        {
                _cleanup_free_ char *listing = tu_dir_listing(t.dir);

                ck_assert_str_eq(listing, "foo.ko");
        }
        tmod_done(&t);
}
END_TEST

/* --- compressed modules --- */

static const enum compression ctypes[] = { COMPRESSION_XZ, COMPRESSION_ZSTD, COMPRESSION_GZIP };

START_TEST(test_sign_compressed) {
        struct tmod t;
        struct module_file m;
        _cleanup_free_ uint8_t *contents = NULL, *oracle = NULL, *want = NULL, *file = NULL;
        size_t len, oracle_len, want_len, file_len;

        tmod_init(&t, ctypes[_i]);
        tmod_open(&t, &m);
        ck_assert_uint_eq(m.meta.n_signatures, 0);
        ck_assert_int_eq(m.xz_check, t.c == COMPRESSION_XZ ? 1 : -1);
        ck_assert_str_eq(m.meta.name, "foo");
        module_file_close(&m);

        tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, MODSIGN_SIGNED);

        /* still compressed the same way, with the signature inside */
        file = tu_read_file(t.path, &file_len);
        ck_assert_int_eq(compression_detect(file, file_len), t.c);
        contents = tmod_contents(&t, &len);
        oracle = tu_sign_file_oracle(key1, cert1, "sha256", false, t.plain, t.plain_len, &oracle_len);
        want = signed_image(t.plain, t.plain_len, oracle, oracle_len, &want_len);
        ck_assert_uint_eq(len, want_len);
        ck_assert_mem_eq(contents, want, len);

        switch (t.c) {
        case COMPRESSION_XZ: {
                _cleanup_free_ char *check = NULL;

                ck_assert_int_eq(xz_stream_check(file, file_len), 1);
                ck_assert_int_eq(tu_system("xz -t '%s'", t.path), 0);
                check = tu_command_output("xz --robot --list '%s' | awk -F'\\t' '$1 == \"totals\" { print $7 }'",
                                          t.path);
                ck_assert_str_eq(check, "CRC32\n");
                break;
        }
        case COMPRESSION_ZSTD:
                ck_assert_int_eq(tu_system("zstd -q -t '%s'", t.path), 0);
                break;
        case COMPRESSION_GZIP:
                ck_assert_int_eq(tu_system("gzip -t '%s'", t.path), 0);
                ck_assert_uint_eq(file[3], 0); /* no FNAME */
                ck_assert_uint_eq(file[4] | file[5] | file[6] | file[7], 0);
                break;
        default:
                break;
        }

        ck_assert_uint_eq(tmod_n_signatures(&t), 1);
        ck_assert_int_eq(tmod_verify(&t, cert1, NULL), 0);
        ck_assert_int_eq(tmod_verify(&t, cert2, NULL), -ENOKEY);

        /* again: nothing to do */
        {
                struct stat before, after;

                ck_assert_int_eq(stat(t.path, &before), 0);
                tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, MODSIGN_UNCHANGED);
                ck_assert_int_eq(stat(t.path, &after), 0);
                ck_assert(same_file(&before, &after));
        }

        /* stripped: the original ELF, still compressed */
        tmod_open(&t, &m);
        ck_assert_int_eq(modsign_strip(&m, 1), 0);
        module_file_close(&m);
        free(file);
        file = tu_read_file(t.path, &file_len);
        ck_assert_int_eq(compression_detect(file, file_len), t.c);
        free(contents);
        contents = tmod_contents(&t, &len);
        ck_assert_uint_eq(len, t.plain_len);
        ck_assert_mem_eq(contents, t.plain, len);
        tmod_done(&t);
}
END_TEST

START_TEST(test_xz_crc64_reencoded) {
        /* dkms' plain "xz -f" makes CRC64 streams, which the kernel's xz_dec refuses: a module
         * already signed by our key is still rewritten, as CRC32. */
        struct tmod t;
        struct module_file m;
        _cleanup_free_ uint8_t *oracle = NULL, *signed_elf = NULL, *file = NULL, *contents = NULL;
        size_t oracle_len, signed_len, file_len, len;
        _cleanup_free_ char *raw = NULL;

        tmod_init(&t, COMPRESSION_XZ);
        oracle = tu_sign_file_oracle(key1, cert1, "sha256", false, t.plain, t.plain_len, &oracle_len);
        signed_elf = signed_image(t.plain, t.plain_len, oracle, oracle_len, &signed_len);
        raw = tu_path(t.dir, "raw");
        tu_write_file(raw, signed_elf, signed_len, 0644);
        ck_assert_int_eq(tu_system("xz --check=crc64 -c '%s' > '%s' && rm '%s'", raw, t.path, raw), 0);

        tmod_open(&t, &m);
        ck_assert_int_eq(m.xz_check, 4);
        ck_assert_uint_eq(m.meta.n_signatures, 1);
        module_file_close(&m);
        ck_assert_int_eq(tmod_verify(&t, cert1, NULL), 0);

        tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, MODSIGN_SIGNED);
        tmod_open(&t, &m);
        ck_assert_int_eq(m.xz_check, 1);
        ck_assert_uint_eq(m.meta.n_signatures, 1);
        module_file_close(&m);
        file = tu_read_file(t.path, &file_len);
        ck_assert_int_eq(xz_stream_check(file, file_len), 1);
        contents = tmod_contents(&t, &len);
        ck_assert_uint_eq(len, signed_len);
        ck_assert_mem_eq(contents, signed_elf, len);

        /* and now it is left alone */
        tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, MODSIGN_UNCHANGED);
        tmod_done(&t);
}
END_TEST

/* --- module_file_open --- */

static void expect_open_error(int dir_fd, const char *name, int error) {
        struct module_file m;
        const char *why = NULL;
        int r;

        memset(&m, 0xa5, sizeof(m));
        r = module_file_open(dir_fd, name, &m, &why);
        ck_assert_msg(r == error, "module_file_open(%s): expected %s, got %d (%s)", name, strerror(-error), r,
                      strerror(r < 0 ? -r : 0));
        ck_assert_uint_eq(((uint8_t *) &m)[0], 0xa5);
        if (error != -ENOENT)
                ck_assert_msg(why != NULL, "no explanation for %s", name);
}

START_TEST(test_open_errors) {
        struct tmod t;
        _cleanup_free_ char *link = NULL, *text = NULL, *sub = NULL, *bad = NULL;
        _cleanup_free_ uint8_t *xz = NULL;
        size_t xz_len;

        tmod_init(&t, COMPRESSION_XZ);

        link = tu_path(t.dir, "link.ko.xz");
        ck_assert_int_eq(symlink(t.name, link), 0);
        expect_open_error(t.dir_fd, "link.ko.xz", -ELOOP);

        text = tu_path(t.dir, "text.ko");
        tu_write_file(text, "#!/bin/sh\necho this is not a module\n", 36, 0644);
        expect_open_error(t.dir_fd, "text.ko", -ENOEXEC);
        tu_write_file(text, "", 0, 0644);
        expect_open_error(t.dir_fd, "text.ko", -ENOEXEC);

        sub = tu_path(t.dir, "dir.ko");
        ck_assert_int_eq(mkdir(sub, 0755), 0);
        expect_open_error(t.dir_fd, "dir.ko", -EINVAL);
        expect_open_error(t.dir_fd, "missing.ko", -ENOENT);

        /* corrupt and truncated compression is "not a module" */
        bad = tu_path(t.dir, "bad.ko.xz");
        xz = tu_read_file(t.path, &xz_len);
        xz[xz_len / 2] ^= 0xff;
        tu_write_file(bad, xz, xz_len, 0644);
        expect_open_error(t.dir_fd, "bad.ko.xz", -ENOEXEC);
        xz[xz_len / 2] ^= 0xff;
        tu_write_file(bad, xz, xz_len - 10, 0644);
        expect_open_error(t.dir_fd, "bad.ko.xz", -ENOEXEC);
        tu_write_file(bad, xz, 6, 0644); /* the magic alone */
        expect_open_error(t.dir_fd, "bad.ko.xz", -ENOEXEC);

        /* a compressed file that holds no module */
        ck_assert_int_eq(tu_system("printf 'hello' | zstd -q -c > '%s/hello.ko.zst'", t.dir), 0);
        expect_open_error(t.dir_fd, "hello.ko.zst", -ENOEXEC);

        /* a FIFO is not waited on */
        {
                _cleanup_free_ char *fifo = tu_path(t.dir, "fifo.ko");

                ck_assert_int_eq(mkfifo(fifo, 0644), 0);
                expect_open_error(t.dir_fd, "fifo.ko", -EINVAL);
        }
        tmod_done(&t);
}
END_TEST

START_TEST(test_open_malformed_trailer) {
        struct tmod t;
        _cleanup_free_ uint8_t *img = NULL;
        size_t len;
        uint8_t sig[100];

        tmod_init(&t, COMPRESSION_NONE);
        img = malloc(t.plain_len);
        ck_assert_ptr_nonnull(img);
        memcpy(img, t.plain, t.plain_len);
        len = t.plain_len;
        tu_fill_random(sig, sizeof(sig), 1);
        tu_append_sig(&img, &len, sig, sizeof(sig));
        img[len - 40 + 2] = 1; /* id_type */
        tmod_put(&t, img, len);
        expect_open_error(t.dir_fd, t.name, -ENOPKG);
        img[len - 40 + 2] = 2;
        img[len - 40] = 1; /* algo */
        tmod_put(&t, img, len);
        expect_open_error(t.dir_fd, t.name, -EBADMSG);
        tmod_done(&t);
}
END_TEST

static int collect_chunk(const void *buf, size_t n, void *userdata) {
        struct {
                uint8_t *data;
                size_t len;
        } *acc = userdata;

        memcpy(acc->data + acc->len, buf, n);
        acc->len += n;
        return 0;
}

START_TEST(test_for_each_chunk) {
        /* _i: plain, xz; a module larger than one chunk */
        struct tmod t;
        struct module_file m;
        struct {
                uint8_t *data;
                size_t len;
        } acc = {};
        uint8_t *big;
        size_t big_len;

        tmod_init(&t, _i == 0 ? COMPRESSION_NONE : COMPRESSION_XZ);
        big = tu_module_new(TU_MODINFO, TU_MODINFO_LEN, (5U << 20) / 2, &big_len);
        tmod_put(&t, big, big_len);
        tmod_open(&t, &m);
        acc.data = malloc(big_len);
        ck_assert_ptr_nonnull(acc.data);
        ck_assert_int_eq(module_file_for_each_chunk(&m, big_len, collect_chunk, &acc), 0);
        ck_assert_uint_eq(acc.len, big_len);
        ck_assert_mem_eq(acc.data, big, big_len);
        ck_assert_int_eq(module_file_for_each_chunk(&m, big_len + 1, collect_chunk, &acc), -EBADMSG);
        {
                uint8_t *untouched = (uint8_t *) "x", *der = untouched;
                size_t l = 7;

                ck_assert_int_eq(module_file_read_signature(&m, &der, &l), -ENODATA);
                ck_assert_ptr_eq(der, untouched);
                ck_assert_uint_eq(l, 7);
        }
        module_file_close(&m);
        free(acc.data);
        free(big);
        tmod_done(&t);
}
END_TEST

/* Regression test, the bug is fixed: module_file_open() promises a module "reached through a directory fd without following a
 * symlink", but O_NOFOLLOW only guards the last component: a name such as "link/foo.ko" walks
 * through a symlinked directory. It should refuse names with '/' (as replace_begin() does, with
 * -EINVAL, which is also where signing such a module fails later, after all the work) or open
 * with RESOLVE_NO_SYMLINKS. */
START_TEST(test_open_through_symlinked_directory) {
        _cleanup_free_ char *dir = tu_tmpdir(), *real = tu_path(dir, "real"), *link = tu_path(dir, "link"),
                                *mod = NULL;
        struct module_file m;
        uint8_t *img;
        size_t len;
        int dir_fd = tu_open_dir(dir), r;

        ck_assert_int_eq(mkdir(real, 0755), 0);
        ck_assert_int_eq(symlink("real", link), 0);
        mod = tu_path(real, "foo.ko");
        img = tu_module_default(&len);
        tu_write_file(mod, img, len, 0644);
        free(img);

        r = module_file_open(dir_fd, "link/foo.ko", &m, NULL);
        if (r == 0)
                module_file_close(&m);
        ck_assert_msg(r < 0, "regression: module_file_open(dir_fd, \"link/foo.ko\") followed the symlink 'link'");
        close(dir_fd);
}
END_TEST

/* Regression test, the bug is fixed (consistency): already_signed_by() says "ours, but the module changed since: sign again"
 * for a module whose signature by our own key no longer verifies, but returns the same 0 as
 * "someone else's", so with the default MODSIGN_EXISTING_REFUSE modsign_sign() refuses it with
 * -EEXIST "already signed by another key (use --replace to re-sign)", which is false. Either the
 * comment or the behaviour is wrong; this test holds the code to its comment. */
START_TEST(test_resign_own_tampered) {
        struct tmod t;
        enum modsign_outcome outcome = (enum modsign_outcome) 42;
        const char *why = NULL;
        int fd, r;

        tmod_init(&t, COMPRESSION_NONE);
        tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, MODSIGN_SIGNED);
        fd = open(t.path, O_WRONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pwrite(fd, "\x90", 1, 100), 1); /* inside .text */
        close(fd);
        ck_assert_int_eq(tmod_verify(&t, cert1, NULL), -EKEYREJECTED);

        r = tmod_sign(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, &outcome, &why);
        ck_assert_msg(r == 0, "regression: re-signing a module our own key signed before it changed: %s (%s)", strerror(-r),
                      why ? why : "");
        ck_assert_int_eq(outcome, MODSIGN_SIGNED);
        ck_assert_int_eq(tmod_verify(&t, cert1, NULL), 0);
        tmod_done(&t);
}
END_TEST

/* Regression test, the bug is fixed (consistency): already_signed_by() returns 0 for any module with stacked signatures ("stacked
 * signatures are always rewritten as one"), so with MODSIGN_EXISTING_REFUSE a module whose
 * signatures are all our own is refused with -EEXIST "already signed by another key" instead of
 * being rewritten with one signature (DESIGN.md §4: signing a signed module must replace, not
 * stack). */
START_TEST(test_resign_own_stacked) {
        struct tmod t;
        _cleanup_free_ uint8_t *s1 = NULL, *s2 = NULL, *img = NULL;
        enum modsign_outcome outcome = (enum modsign_outcome) 42;
        const char *why = NULL;
        size_t l1, l2, len;
        int r;

        tmod_init(&t, COMPRESSION_NONE);
        s1 = tu_sign_file_oracle(key1, cert1, "sha256", false, t.plain, t.plain_len, &l1);
        img = signed_image(t.plain, t.plain_len, s1, l1, &len);
        s2 = tu_sign_file_oracle(key1, cert1, "sha256", false, img, len, &l2);
        tu_append_sig(&img, &len, s2, l2);
        tmod_put(&t, img, len);
        ck_assert_uint_eq(tmod_n_signatures(&t), 2);
        ck_assert_int_eq(tmod_verify(&t, cert1, NULL), 0);

        r = tmod_sign(&t, signer1, "sha256", MODSIGN_EXISTING_REFUSE, &outcome, &why);
        ck_assert_msg(r == 0, "regression: a module stacked with our own signatures is refused: %s (%s)", strerror(-r),
                      why ? why : "");
        ck_assert_int_eq(outcome, MODSIGN_SIGNED);
        ck_assert_uint_eq(tmod_n_signatures(&t), 1);
        tmod_done(&t);
}
END_TEST

/* Regression test, the bug is fixed (security), the consequence of verify.c's: see test-verify's test_forged_signed_attributes.
 * A module "signed" with signed attributes by some other key, naming key 1's issuer and serial,
 * passes modsign_verify() against cert 1, and modsign_sign() with key 1 leaves it UNCHANGED
 * even with MODSIGN_EXISTING_REPLACE: the kernel will refuse to load it, and modsignd will never
 * fix it. */
START_TEST(test_forged_signature_not_trusted) {
        struct tmod t;
        X509 *forger = NULL;
        CMS_ContentInfo *cms;
        BIO *in;
        unsigned char *der = NULL;
        _cleanup_free_ uint8_t *img = NULL;
        enum modsign_outcome outcome = (enum modsign_outcome) 42;
        size_t len;
        int der_len, r_verify, r_sign;

        tmod_init(&t, COMPRESSION_NONE);
        forger = tu_cert(key2, "Module Key One", 0x11, false); /* cert1's issuer and serial, key 2 */
        in = BIO_new_mem_buf(t.plain, (int) t.plain_len);
        cms = CMS_sign(forger, key2, NULL, in, CMS_DETACHED | CMS_BINARY | CMS_NOCERTS); /* with attributes */
        ck_assert_ptr_nonnull(cms);
        der_len = i2d_CMS_ContentInfo(cms, &der);
        ck_assert_int_gt(der_len, 0);
        img = signed_image(t.plain, t.plain_len, der, (size_t) der_len, &len);
        tmod_put(&t, img, len);
        OPENSSL_free(der);
        CMS_ContentInfo_free(cms);
        BIO_free(in);
        X509_free(forger);

        r_verify = tmod_verify(&t, cert1, NULL);
        r_sign = tmod_sign(&t, signer1, "sha256", MODSIGN_EXISTING_REPLACE, &outcome, NULL);
        ck_assert_msg(r_verify == -EKEYREJECTED && r_sign == 0 && outcome == MODSIGN_SIGNED,
                      "regression: forged signature: modsign_verify() = %d (want %d), modsign_sign() = %d with outcome %d "
                      "(want SIGNED = %d; UNCHANGED = %d leaves the module unloadable)",
                      r_verify, -EKEYREJECTED, r_sign, outcome, MODSIGN_SIGNED, MODSIGN_UNCHANGED);
        ck_assert_int_eq(tmod_verify(&t, cert1, NULL), 0);
        tmod_done(&t);
}
END_TEST

START_TEST(test_replace_stacked) {
        /* with --replace, a stacked module comes out with exactly one signature */
        struct tmod t;
        _cleanup_free_ uint8_t *s1 = NULL, *s2 = NULL, *img = NULL;
        size_t l1, l2, len;

        tmod_init(&t, COMPRESSION_GZIP);
        s1 = tu_sign_file_oracle(key2, cert2, "sha256", false, t.plain, t.plain_len, &l1);
        img = signed_image(t.plain, t.plain_len, s1, l1, &len);
        s2 = tu_sign_file_oracle(key2, cert2, "sha256", true, img, len, &l2);
        tu_append_sig(&img, &len, s2, l2);
        tmod_put(&t, img, len);
        ck_assert_uint_eq(tmod_n_signatures(&t), 2);

        tmod_sign_ok(&t, signer1, "sha256", MODSIGN_EXISTING_REPLACE, MODSIGN_SIGNED);
        ck_assert_uint_eq(tmod_n_signatures(&t), 1);
        ck_assert_int_eq(tmod_verify(&t, cert1, NULL), 0);
        tmod_done(&t);
}
END_TEST

static Suite *modsign_suite(void) {
        Suite *s = suite_create("modsign");
        TCase *tc;

        tc = tu_tcase("plain");
        tcase_add_unchecked_fixture(tc, keys_setup, NULL);
        tcase_add_test(tc, test_sign_plain);
        tcase_add_test(tc, test_sign_again_unchanged);
        tcase_add_test(tc, test_always_write);
        tcase_add_test(tc, test_other_key_refused);
        tcase_add_test(tc, test_other_key_replaced);
        tcase_add_test(tc, test_same_key_other_hash);
        tcase_add_test(tc, test_strip);
        tcase_add_test(tc, test_strip_stacked);
        tcase_add_test(tc, test_detached);
        tcase_add_test(tc, test_raw_signature_and_dest);
        tcase_add_test(tc, test_sign_large);
        tcase_add_test(tc, test_changed_while_signing);
        tcase_add_test(tc, test_sign_from_digest_cache);
        tcase_add_test(tc, test_copy_ahead);
        tcase_add_test(tc, test_replace_stacked);
        tcase_add_test(tc, test_resign_own_tampered);
        tcase_add_test(tc, test_resign_own_stacked);
        tcase_add_test(tc, test_forged_signature_not_trusted);
        suite_add_tcase(s, tc);

        tc = tu_tcase("compressed");
        tcase_add_unchecked_fixture(tc, keys_setup, NULL);
        tcase_add_loop_test(tc, test_sign_compressed, 0, (int) ELEMENTSOF(ctypes));
        tcase_add_test(tc, test_xz_crc64_reencoded);
        suite_add_tcase(s, tc);

        tc = tu_tcase("module-file");
        tcase_add_unchecked_fixture(tc, keys_setup, NULL);
        tcase_add_test(tc, test_open_errors);
        tcase_add_test(tc, test_open_malformed_trailer);
        tcase_add_loop_test(tc, test_for_each_chunk, 0, 2);
        tcase_add_test(tc, test_open_through_symlinked_directory);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tu_run_suite(modsign_suite());
}
