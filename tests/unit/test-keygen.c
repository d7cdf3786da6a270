/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* keygen.c, newfile.c, keyring.c: a new key and its certificate, written once; finding a
 * certificate's key in what the kernel lists. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keygen.h"
#include "keyring.h"
#include "newfile.h"
#include "unit-util.h"

START_TEST(test_parse_args) {
        enum keygen_type t;
        const char *g;

        ck_assert_int_eq(keygen_type_from_string("RSA", &t), 0);
        ck_assert_int_eq(t, KEYGEN_RSA);
        ck_assert_int_eq(keygen_type_from_string("ec", &t), 0);
        ck_assert_int_eq(t, KEYGEN_EC);
        ck_assert_int_eq(keygen_type_from_string("dsa", &t), -EINVAL);
        ck_assert(keygen_rsa_bits_valid(2048) && keygen_rsa_bits_valid(3072) && keygen_rsa_bits_valid(4096));
        ck_assert(!keygen_rsa_bits_valid(1024) && !keygen_rsa_bits_valid(8192) && !keygen_rsa_bits_valid(2047));
        ck_assert_int_eq(keygen_curve_from_string("p256", &g), 0);
        ck_assert_str_eq(g, "P-256");
        ck_assert_int_eq(keygen_curve_from_string("secp384r1", &g), 0);
        ck_assert_str_eq(g, "P-384");
        ck_assert_int_eq(keygen_curve_from_string("p521", &g), -EINVAL);
}
END_TEST

static const struct {
        enum keygen_type type;
        unsigned bits;
        const char *curve;
        int md_nid;
} kinds[] = {
        { KEYGEN_RSA, 2048, NULL, NID_sha256 },
        { KEYGEN_RSA, 3072, NULL, NID_sha256 },
        { KEYGEN_EC, 0, "P-256", NID_sha256 },
        { KEYGEN_EC, 0, "P-384", NID_sha384 },
};

static bool has_critical_ext(X509 *c, int nid) {
        int i = X509_get_ext_by_NID(c, nid, -1);
        return i >= 0 && X509_EXTENSION_get_critical(X509_get_ext(c, i));
}

START_TEST(test_generate_cert) {
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        const ASN1_OCTET_STRING *skid;
        const ASN1_INTEGER *serial;
        BIGNUM *bn;
        int day, sec, md_nid = 0, pk_nid = 0;

        ck_assert_int_eq(keygen_generate_key(kinds[_i].type, kinds[_i].bits, kinds[_i].curve, &key), 0);
        if (kinds[_i].type == KEYGEN_RSA)
                ck_assert_int_eq(EVP_PKEY_get_bits(key), (int) kinds[_i].bits);
        else
                ck_assert(EVP_PKEY_is_a(key, "EC"));
        ck_assert_int_eq(keygen_self_signed_cert(key, "unit test key", 365, &cert), 0);

        ck_assert_int_eq(X509_get_version(cert), X509_VERSION_3);
        ck_assert_int_eq(X509_verify(cert, key), 1);
        /* Issued by itself (names and AKID match); only "no keyCertSign" stands out, as it
         * should for a key that must not sign certificates. */
        ck_assert_int_eq(X509_check_issued(cert, cert), X509_V_ERR_KEYUSAGE_NO_CERTSIGN);
        ck_assert_int_eq(X509_check_ca(cert), 0);
        ck_assert(has_critical_ext(cert, NID_basic_constraints));
        ck_assert(has_critical_ext(cert, NID_key_usage));
        ck_assert_uint_eq(X509_get_key_usage(cert), KU_DIGITAL_SIGNATURE);
        ck_assert(X509_get_extended_key_usage(cert) & XKU_CODE_SIGN);
        skid = X509_get0_subject_key_id(cert);
        ck_assert_ptr_nonnull(skid);
        ck_assert_int_eq(ASN1_STRING_length(skid), 20);
        ck_assert_ptr_nonnull(X509_get0_authority_key_id(cert));
        ck_assert_int_eq(ASN1_OCTET_STRING_cmp(skid, X509_get0_authority_key_id(cert)), 0);

        serial = X509_get0_serialNumber(cert);
        bn = ASN1_INTEGER_to_BN(serial, NULL);
        ck_assert(!BN_is_negative(bn));
        ck_assert_int_eq(BN_num_bytes(bn), 16);
        BN_free(bn);

        ck_assert_int_eq(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(cert), X509_get0_notAfter(cert)), 1);
        ck_assert_int_eq(day, 365);
        ck_assert_int_eq(X509_get_signature_info(cert, &md_nid, &pk_nid, NULL, NULL), 1);
        ck_assert_int_eq(md_nid, kinds[_i].md_nid);
        ck_assert_int_eq(ERR_peek_error(), 0);
        X509_free(cert);
        EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_serials_differ) {
        EVP_PKEY *key = tu_ec_key("P-256");
        X509 *a = NULL, *b = NULL;

        ck_assert_int_eq(keygen_self_signed_cert(key, "a", 1, &a), 0);
        ck_assert_int_eq(keygen_self_signed_cert(key, "a", 1, &b), 0);
        ck_assert_int_ne(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)), 0);
        X509_free(a);
        X509_free(b);
        EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_cert_bad_args) {
        EVP_PKEY *key = tu_ec_key("P-256");
        X509 *c = (X509 *) 0x1;
        char long_cn[66];

        memset(long_cn, 'x', 65);
        long_cn[65] = 0;
        ck_assert_int_eq(keygen_self_signed_cert(key, "", 10, &c), -EINVAL);
        ck_assert_int_eq(keygen_self_signed_cert(key, long_cn, 10, &c), -EINVAL);
        ck_assert_int_eq(keygen_self_signed_cert(key, "x", 0, &c), -EINVAL);
        ck_assert_int_eq(keygen_self_signed_cert(key, "x", KEYGEN_MAX_DAYS + 1, &c), -EINVAL);
        ck_assert_ptr_eq(c, (X509 *) 0x1); /* untouched on failure */
        ck_assert_int_eq(keygen_generate_key(KEYGEN_RSA, 1024, NULL, (EVP_PKEY **) &c), -EINVAL);
        ck_assert_int_eq(keygen_generate_key(KEYGEN_EC, 0, "P-521", (EVP_PKEY **) &c), -EINVAL);
        EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_encodings) {
        EVP_PKEY *key = tu_ec_key("P-384"), *back;
        X509 *cert = NULL, *back_cert;
        char *pem = NULL, *cpem = NULL;
        unsigned char *der = NULL;
        const unsigned char *p;
        size_t len, clen, dlen;
        BIO *b;

        ck_assert_int_eq(keygen_self_signed_cert(key, "enc", 10, &cert), 0);
        ck_assert_int_eq(keygen_key_to_pem(key, &pem, &len), 0);
        ck_assert(strncmp(pem, "-----BEGIN PRIVATE KEY-----", 27) == 0); /* PKCS#8, unencrypted */
        b = BIO_new_mem_buf(pem, (int) len);
        back = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        BIO_free(b);
        ck_assert_int_eq(EVP_PKEY_eq(back, key), 1);

        ck_assert_int_eq(keygen_cert_to_pem(cert, &cpem, &clen), 0);
        ck_assert_int_eq(keygen_cert_to_der(cert, &der, &dlen), 0);
        p = der;
        back_cert = d2i_X509(NULL, &p, (long) dlen);
        ck_assert_int_eq(X509_cmp(back_cert, cert), 0);
        ck_assert(strstr(cpem, "-----BEGIN CERTIFICATE-----"));

        OPENSSL_clear_free(pem, len);
        OPENSSL_free(cpem);
        OPENSSL_free(der);
        X509_free(back_cert);
        X509_free(cert);
        EVP_PKEY_free(back);
        EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_newfile) {
        char *dir = tu_tmpdir(), *path = tu_path(dir, "signing.key"), *link = tu_path(dir, "link"), *listing;
        char *target = tu_path(dir, "target");
        int dfd = tu_open_dir(dir);
        uint8_t *data;
        size_t len;
        struct stat st;
        mode_t old = umask(0);

        ck_assert_int_eq(newfile_create_at(dfd, "signing.key", 0600, "secret\n", 7), 0);
        umask(old);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        data = tu_read_file(path, &len);
        ck_assert_uint_eq(len, 7);
        ck_assert(memcmp(data, "secret\n", 7) == 0);
        free(data);

        /* Never over an existing file, never through a symlink, even a dangling one. */
        ck_assert_int_eq(newfile_create_at(dfd, "signing.key", 0600, "other", 5), -EEXIST);
        data = tu_read_file(path, &len);
        ck_assert(len == 7 && memcmp(data, "secret\n", 7) == 0);
        free(data);
        ck_assert_int_eq(symlink(target, link), 0);
        ck_assert_int_eq(newfile_create_at(dfd, "link", 0644, "x", 1), -EEXIST);
        ck_assert_int_eq(access(target, F_OK), -1);

        ck_assert_int_eq(newfile_create_at(dfd, "a/b", 0644, "x", 1), -EINVAL);
        ck_assert_int_eq(newfile_create_at(dfd, "..", 0644, "x", 1), -EINVAL);
        ck_assert_int_eq(newfile_create_at(dfd, "", 0644, "x", 1), -EINVAL);
        /* Nothing else left behind (no temporary names). */
        listing = tu_dir_listing(dir);
        ck_assert_str_eq(listing, "link signing.key");
        free(listing);
        close(dfd);
        free(dir);
        free(path);
        free(link);
        free(target);
}
END_TEST

START_TEST(test_kernel_key_id) {
        EVP_PKEY *key = tu_ec_key("P-256");
        X509 *with = tu_cert(key, "with skid", 5, true), *without = tu_cert(key, "no skid", 0x80, false);
        const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(with);
        char *hex = NULL, want[41];

        ck_assert_int_eq(cert_kernel_key_id(with, &hex), 0);
        ck_assert_int_eq(ASN1_STRING_length(skid), 20);
        for (int i = 0; i < 20; i++)
                snprintf(want + 2 * i, 3, "%02x", ASN1_STRING_get0_data(skid)[i]);
        ck_assert_str_eq(hex, want);
        free(hex);
        /* No SKID: the serial's content octets, with the 00 that keeps 0x80 positive. */
        ck_assert_int_eq(cert_kernel_key_id(without, &hex), 0);
        ck_assert_str_eq(hex, "0080");
        free(hex);
        X509_free(with);
        X509_free(without);
        EVP_PKEY_free(key);
}
END_TEST

static const char proc_keys[] =
        "3ac2be1c I------     1 perm 1f0b0000     0     0 keyring   .builtin_trusted_keys: 1\n"
        "garbage line\n"
        "\n"
        "2e0e4a3b I------     1 perm 1f0f0000     0     0 keyring   .secondary_trusted_keys: empty\n"
        "1a2b3c4d I------     1 perm 1f030000     0     0 asymmetri Acme: key: signer: abcdef0123: X509.rsa ef0123 []\n"
        "1a2b3c4e I------     1 perm 1f030000     0     0 asymmetri Other: abcdef012345: X509.rsa 12345 []\n"
        "1a2b3c4f I--Q---     1 perm 39010000     0     0 user      abcdef0123: not asymmetric\n"
        "0c8f7a2d I------     1   5d 1f0f0000     0     0 keyring   .machine_x: 1\n";

START_TEST(test_proc_keys) {
        FILE *f = fmemopen((void *) proc_keys, sizeof(proc_keys) - 1, "r");
        struct kernel_keys k = {};
        uint32_t serial = 0;

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(kernel_keys_parse(f, &k), 0);
        fclose(f);
        ck_assert_uint_eq(k.n, 6);
        ck_assert_uint_eq(k.keys[0].serial, 0x3ac2be1c);
        ck_assert_str_eq(k.keys[0].type, "keyring");
        ck_assert_str_eq(k.keys[0].description, ".builtin_trusted_keys: 1");

        ck_assert_int_eq(kernel_keys_find_keyring(&k, ".secondary_trusted_keys", &serial), 0);
        ck_assert_uint_eq(serial, 0x2e0e4a3b);
        /* ".machine_x" is not ".machine". */
        ck_assert_int_eq(kernel_keys_find_keyring(&k, ".machine", &serial), -ENOENT);

        /* A subject holding ": " and a key id that only starts with ours do not confuse it. */
        ck_assert(kernel_key_has_id(&k.keys[2], "abcdef0123"));
        ck_assert(!kernel_key_has_id(&k.keys[3], "abcdef0123"));
        ck_assert(kernel_key_has_id(&k.keys[3], "abcdef012345"));
        ck_assert(!kernel_key_has_id(&k.keys[2], "ef0123"));
        ck_assert(!kernel_key_has_id(&k.keys[4], "abcdef0123")); /* not an asymmetric key */
        ck_assert(!kernel_key_has_id(&k.keys[2], ""));
        kernel_keys_done(&k);
}
END_TEST

START_TEST(test_members) {
        uint32_t *v = NULL;
        size_t n = 0;

        ck_assert_int_eq(keyring_parse_members(" 1a2b3c4d\n3ac2be1c \n", &v, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(v[0], 0x1a2b3c4d);
        ck_assert_uint_eq(v[1], 0x3ac2be1c);
        free(v);
        ck_assert_int_eq(keyring_parse_members("", &v, &n), 0);
        ck_assert_uint_eq(n, 0);
        free(v);
        ck_assert_int_eq(keyring_parse_members("12 zz", &v, &n), -EINVAL);
        ck_assert_int_eq(keyring_parse_members("123456789", &v, &n), -EINVAL);
        /* The real kernel: KEYCTL_READ of a keyring that does not exist. */
        ck_assert_int_lt(keyring_read_members(0x7fffffff, &v, &n), 0);
}
END_TEST

static Suite *keygen_suite(void) {
        Suite *s = suite_create("keygen");
        TCase *tc;

        tc = tu_tcase("keygen");
        tcase_add_test(tc, test_parse_args);
        tcase_add_loop_test(tc, test_generate_cert, 0, (int) (sizeof(kinds) / sizeof(kinds[0])));
        tcase_add_test(tc, test_serials_differ);
        tcase_add_test(tc, test_cert_bad_args);
        tcase_add_test(tc, test_encodings);
        suite_add_tcase(s, tc);

        tc = tu_tcase("newfile");
        tcase_add_test(tc, test_newfile);
        suite_add_tcase(s, tc);

        tc = tu_tcase("keyring");
        tcase_add_test(tc, test_kernel_key_id);
        tcase_add_test(tc, test_proc_keys);
        tcase_add_test(tc, test_members);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tu_run_suite(keygen_suite());
}
