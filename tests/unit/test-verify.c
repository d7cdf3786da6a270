/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* verify.c: describing and checking a module's PKCS#7 signature as the kernel does. The
 * signatures under test are made independently, the way sign-file makes them. */
#include <config.h>

#include <errno.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "unit-util.h"
#include "verify.h"

static EVP_PKEY *rsa, *other, *ec;
static X509 *rsa_cert, *other_cert, *ec_cert, *impostor_cert, *ec_cert_noskid;
static uint8_t data[50000];

static void keys_setup(void) {
        if (rsa)
                return;
        rsa = tu_rsa_key(2048);
        other = tu_rsa_key(2048);
        ec = tu_ec_key("P-384");
        rsa_cert = tu_cert(rsa, "Unit Test Signer", 0x1234abcd, false);
        other_cert = tu_cert(other, "Another Signer", 7, true);
        ec_cert = tu_cert(ec, "EC Signer", 0x42, true);
        ec_cert_noskid = tu_cert(ec, "EC Signer", 0x43, false);
        /* same issuer and serial as rsa_cert, another key: the kernel would pick it, and fail */
        impostor_cert = tu_cert(other, "Unit Test Signer", 0x1234abcd, false);
        tu_fill_random(data, sizeof(data), 2024);
}

static void poison_details(struct sig_details *d) {
        memset(d, 0xa5, sizeof(*d));
}

static bool details_poisoned(const struct sig_details *d) {
        const uint8_t *p = (const uint8_t *) d;

        for (size_t i = 0; i < sizeof(*d); i++)
                if (p[i] != 0xa5)
                        return false;
        return true;
}

static char *hex(const unsigned char *p, size_t n) {
        char *s = malloc(2 * n + 1);

        ck_assert_ptr_nonnull(s);
        for (size_t i = 0; i < n; i++)
                sprintf(s + 2 * i, "%02x", p[i]);
        s[2 * n] = '\0';
        return s;
}

/* Runs begin/update (in pieces)/finish; returns finish's result. */
static int verify_data(const uint8_t *der, size_t der_len, const void *buf, size_t len, STACK_OF(X509) *trusted,
                       X509 **ret_signer) {
        struct verify_ctx *c = NULL;
        const uint8_t *p = buf;
        size_t off = 0, step = 1;
        int r;

        r = verify_begin(der, der_len, &c);
        ck_assert_msg(r == 0, "verify_begin: %s", strerror(-r));
        while (off < len) {
                size_t n = MIN(step, len - off);

                ck_assert_int_eq(verify_update(c, p + off, n), 0);
                off += n;
                step = step * 3 + 1;
        }
        return verify_finish(c, trusted, ret_signer);
}

START_TEST(test_describe_issuer_serial) {
        _cleanup_free_ uint8_t *der = NULL;
        struct sig_details d;
        size_t len;

        der = tu_sign_file_oracle(rsa, rsa_cert, "sha256", false, data, sizeof(data), &len);
        ck_assert_int_eq(sig_describe(der, len, &d), 0);
        ck_assert_uint_eq(d.n_signers, 1);
        ck_assert_str_eq(d.signer, "Unit Test Signer");
        ck_assert_ptr_nonnull(d.issuer);
        ck_assert_msg(strstr(d.issuer, "CN=Unit Test Signer") && strstr(d.issuer, "O=modsignd unit tests"),
                      "issuer: %s", d.issuer);
        ck_assert_str_eq(d.serial, "12:34:ab:cd");
        ck_assert_ptr_null(d.key_id);
        ck_assert_str_eq(d.hash, "sha256");
        ck_assert_str_eq(d.key_algo, "rsa");
        sig_details_done(&d);
        ck_assert_ptr_null(d.signer);
        ck_assert_ptr_null(d.hash);
        sig_details_done(&d);

        free(der);
        der = tu_sign_file_oracle(rsa, rsa_cert, "sha512", false, data, sizeof(data), &len);
        ck_assert_int_eq(sig_describe(der, len, &d), 0);
        ck_assert_str_eq(d.hash, "sha512");
        ck_assert_str_eq(d.key_algo, "rsa");
        sig_details_done(&d);

        /* a one-byte serial */
        free(der);
        der = tu_sign_file_oracle(other, other_cert, "sha384", false, data, 10, &len);
        ck_assert_int_eq(sig_describe(der, len, &d), 0);
        ck_assert_str_eq(d.signer, "Another Signer");
        ck_assert_str_eq(d.serial, "07");
        ck_assert_str_eq(d.hash, "sha384");
        sig_details_done(&d);
}
END_TEST

START_TEST(test_describe_keyid) {
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *want = NULL;
        const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(ec_cert);
        struct sig_details d;
        size_t len;

        ck_assert_ptr_nonnull(skid);
        want = hex(ASN1_STRING_get0_data(skid), (size_t) ASN1_STRING_length(skid));

        der = tu_sign_file_oracle(ec, ec_cert, "sha384", true, data, sizeof(data), &len);
        ck_assert_int_eq(sig_describe(der, len, &d), 0);
        ck_assert_uint_eq(d.n_signers, 1);
        ck_assert_str_eq(d.key_id, want);
        ck_assert_ptr_null(d.signer);
        ck_assert_ptr_null(d.serial);
        ck_assert_str_eq(d.hash, "sha384");
        ck_assert_str_eq(d.key_algo, "ecdsa");
        sig_details_done(&d);

        /* EC with issuer and serial */
        free(der);
        der = tu_sign_file_oracle(ec, ec_cert, "sha256", false, data, sizeof(data), &len);
        ck_assert_int_eq(sig_describe(der, len, &d), 0);
        ck_assert_str_eq(d.signer, "EC Signer");
        ck_assert_str_eq(d.serial, "42");
        ck_assert_ptr_null(d.key_id);
        ck_assert_str_eq(d.key_algo, "ecdsa");
        ck_assert_str_eq(d.hash, "sha256");
        sig_details_done(&d);

        /* RSA in key-id mode */
        free(der);
        skid = X509_get0_subject_key_id(other_cert);
        free(want);
        want = hex(ASN1_STRING_get0_data(skid), (size_t) ASN1_STRING_length(skid));
        der = tu_sign_file_oracle(other, other_cert, "sha512", true, data, sizeof(data), &len);
        ck_assert_int_eq(sig_describe(der, len, &d), 0);
        ck_assert_str_eq(d.key_id, want);
        ck_assert_str_eq(d.key_algo, "rsa");
        ck_assert_str_eq(d.hash, "sha512");
        sig_details_done(&d);
}
END_TEST

START_TEST(test_verify_ok) {
        _cleanup_free_ uint8_t *der = NULL;
        STACK_OF(X509) *trusted = tu_cert_stack(other_cert);
        X509 *signer = NULL;
        size_t len;

        ck_assert_int_gt(sk_X509_push(trusted, rsa_cert), 0);
        X509_up_ref(rsa_cert);

        der = tu_sign_file_oracle(rsa, rsa_cert, "sha256", false, data, sizeof(data), &len);
        ck_assert_int_eq(verify_data(der, len, data, sizeof(data), trusted, &signer), 0);
        ck_assert_ptr_nonnull(signer);
        ck_assert_int_eq(X509_cmp(signer, rsa_cert), 0);
        X509_free(signer);
        ck_assert_int_eq(verify_data(der, len, data, sizeof(data), trusted, NULL), 0);

        /* key-id signatures are matched by subjectKeyIdentifier */
        free(der);
        der = tu_sign_file_oracle(ec, ec_cert, "sha384", true, data, sizeof(data), &len);
        ck_assert_int_eq(sk_X509_push(trusted, ec_cert), 3);
        X509_up_ref(ec_cert);
        signer = NULL;
        ck_assert_int_eq(verify_data(der, len, data, sizeof(data), trusted, &signer), 0);
        ck_assert_int_eq(X509_cmp(signer, ec_cert), 0);
        X509_free(signer);

        /* the empty module */
        free(der);
        der = tu_sign_file_oracle(rsa, rsa_cert, "sha512", false, "", 0, &len);
        ck_assert_int_eq(verify_data(der, len, "", 0, trusted, NULL), 0);
        sk_X509_pop_free(trusted, X509_free);
}
END_TEST

START_TEST(test_verify_unknown_signer) {
        _cleanup_free_ uint8_t *der = NULL;
        STACK_OF(X509) *trusted = tu_cert_stack(other_cert), *none = tu_cert_stack(NULL);
        X509 *untouched = (X509 *) 0x1, *signer = untouched;
        size_t len;

        der = tu_sign_file_oracle(rsa, rsa_cert, "sha256", false, data, sizeof(data), &len);
        ck_assert_int_eq(verify_data(der, len, data, sizeof(data), trusted, &signer), -ENOKEY);
        ck_assert_ptr_eq(signer, untouched);
        ck_assert_int_eq(verify_data(der, len, data, sizeof(data), none, &signer), -ENOKEY);
        ck_assert_int_eq(verify_data(der, len, data, sizeof(data), NULL, &signer), -ENOKEY);
        ck_assert_ptr_eq(signer, untouched);

        /* key id: a certificate of the same key but without the identifier does not match */
        free(der);
        der = tu_sign_file_oracle(ec, ec_cert, "sha256", true, data, sizeof(data), &len);
        sk_X509_pop_free(trusted, X509_free);
        trusted = tu_cert_stack(ec_cert_noskid);
        ck_assert_int_eq(verify_data(der, len, data, sizeof(data), trusted, &signer), -ENOKEY);
        ck_assert_ptr_eq(signer, untouched);
        sk_X509_pop_free(trusted, X509_free);
        sk_X509_pop_free(none, X509_free);
        ck_assert_int_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(test_verify_tampered) {
        _cleanup_free_ uint8_t *der = NULL, *copy = malloc(sizeof(data) + 1);
        STACK_OF(X509) *trusted = tu_cert_stack(rsa_cert);
        X509 *untouched = (X509 *) 0x1, *signer = untouched;
        size_t len;

        ck_assert_ptr_nonnull(copy);
        der = tu_sign_file_oracle(rsa, rsa_cert, "sha256", false, data, sizeof(data), &len);

        for (size_t pos = 0; pos < sizeof(data); pos += sizeof(data) / 3) {
                memcpy(copy, data, sizeof(data));
                copy[pos] ^= 0x01;
                ck_assert_int_eq(verify_data(der, len, copy, sizeof(data), trusted, &signer), -EKEYREJECTED);
                ck_assert_ptr_eq(signer, untouched);
        }
        memcpy(copy, data, sizeof(data));
        copy[sizeof(data)] = 0;
        ck_assert_int_eq(verify_data(der, len, copy, sizeof(data) - 1, trusted, &signer), -EKEYREJECTED);
        ck_assert_int_eq(verify_data(der, len, copy, sizeof(data) + 1, trusted, &signer), -EKEYREJECTED);

        /* a flipped bit in the signature value itself (the last bytes of the DER) */
        der[len - 1] ^= 0x01;
        ck_assert_int_eq(verify_data(der, len, data, sizeof(data), trusted, &signer), -EKEYREJECTED);
        der[len - 1] ^= 0x01;

        /* an impostor certificate with the right issuer and serial but another key */
        sk_X509_pop_free(trusted, X509_free);
        trusted = tu_cert_stack(impostor_cert);
        ck_assert_int_eq(verify_data(der, len, data, sizeof(data), trusted, &signer), -EKEYREJECTED);
        ck_assert_ptr_eq(signer, untouched);
        sk_X509_pop_free(trusted, X509_free);
}
END_TEST

static void expect_bad(const uint8_t *der, size_t len, const char *what) {
        struct verify_ctx *untouched = (struct verify_ctx *) 0x1, *c = untouched;
        struct sig_details d;
        int r;

        poison_details(&d);
        r = sig_describe(der, len, &d);
        ck_assert_msg(r == -EBADMSG, "sig_describe(%s): %d", what, r);
        ck_assert_msg(details_poisoned(&d), "sig_describe(%s) touched ret on failure", what);
        r = verify_begin(der, len, &c);
        ck_assert_msg(r == -EBADMSG, "verify_begin(%s): %d", what, r);
        ck_assert_ptr_eq(c, untouched);
        ck_assert_int_eq(ERR_peek_error(), 0);
}

START_TEST(test_malformed) {
        _cleanup_free_ uint8_t *der = NULL, *buf = NULL;
        uint8_t garbage[400];
        size_t len;

        der = tu_sign_file_oracle(rsa, rsa_cert, "sha256", false, data, sizeof(data), &len);
        buf = malloc(len + 16);
        ck_assert_ptr_nonnull(buf);

        tu_fill_random(garbage, sizeof(garbage), 1);
        expect_bad(garbage, sizeof(garbage), "garbage");
        garbage[0] = 0x30; /* a SEQUENCE of nonsense */
        expect_bad(garbage, sizeof(garbage), "garbage SEQUENCE");
        expect_bad(garbage, 0, "empty");

        /* valid DER followed by trailing garbage */
        memcpy(buf, der, len);
        memcpy(buf + len, "JUNK", 4);
        expect_bad(buf, len + 4, "trailing garbage");
        buf[len] = 0;
        expect_bad(buf, len + 1, "a trailing zero byte");

        /* truncated DER */
        expect_bad(der, len - 1, "truncated by one byte");
        expect_bad(der, len / 2, "truncated by half");
        expect_bad(der, 10, "the first ten bytes");

        /* ... and the untouched original is fine */
        {
                struct sig_details d;

                ck_assert_int_eq(sig_describe(der, len, &d), 0);
                sig_details_done(&d);
        }
}
END_TEST

static uint8_t *cms_to_der(CMS_ContentInfo *cms, size_t *ret_len) {
        unsigned char *p = NULL;
        int n = i2d_CMS_ContentInfo(cms, &p);
        uint8_t *copy;

        ck_assert_int_gt(n, 0);
        copy = malloc((size_t) n);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, p, (size_t) n);
        OPENSSL_free(p);
        *ret_len = (size_t) n;
        return copy;
}

START_TEST(test_not_signed_data) {
        _cleanup_free_ uint8_t *der = NULL;
        STACK_OF(X509) *certs = tu_cert_stack(rsa_cert);
        CMS_ContentInfo *cms;
        BIO *in;
        size_t len;

        /* a CMS "data" ContentInfo */
        in = BIO_new_mem_buf("hello", 5);
        cms = CMS_data_create(in, CMS_BINARY);
        ck_assert_ptr_nonnull(cms);
        der = cms_to_der(cms, &len);
        expect_bad(der, len, "CMS data");
        CMS_ContentInfo_free(cms);
        BIO_free(in);
        free(der);

        /* a certificates-only SignedData: no signer at all */
        cms = CMS_sign(NULL, NULL, certs, NULL, CMS_PARTIAL | CMS_BINARY);
        ck_assert_ptr_nonnull(cms);
        der = cms_to_der(cms, &len);
        expect_bad(der, len, "SignedData without signers");
        CMS_ContentInfo_free(cms);
        sk_X509_pop_free(certs, X509_free);
}
END_TEST

START_TEST(test_two_signers) {
        /* the kernel wants every signer trusted */
        STACK_OF(X509) *one = tu_cert_stack(rsa_cert), *both = tu_cert_stack(rsa_cert);
        _cleanup_free_ uint8_t *der = NULL;
        CMS_ContentInfo *cms;
        struct sig_details d;
        BIO *in = BIO_new_mem_buf(data, sizeof(data));
        size_t len;
        const unsigned int flags = CMS_NOCERTS | CMS_BINARY | CMS_NOSMIMECAP | CMS_NOATTR;

        ck_assert_int_gt(sk_X509_push(both, ec_cert), 0);
        X509_up_ref(ec_cert);

        cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_NOCERTS | CMS_PARTIAL | CMS_BINARY | CMS_DETACHED | CMS_STREAM);
        ck_assert_ptr_nonnull(CMS_add1_signer(cms, rsa_cert, rsa, EVP_sha256(), flags));
        ck_assert_ptr_nonnull(CMS_add1_signer(cms, ec_cert, ec, EVP_sha256(), flags));
        ck_assert_int_eq(CMS_final(cms, in, NULL, CMS_NOCERTS | CMS_BINARY), 1);
        der = cms_to_der(cms, &len);

        ck_assert_int_eq(sig_describe(der, len, &d), 0);
        ck_assert_uint_eq(d.n_signers, 2);
        sig_details_done(&d);
        ck_assert_int_eq(verify_data(der, len, data, sizeof(data), one, NULL), -ENOKEY);
        ck_assert_int_eq(verify_data(der, len, data, sizeof(data), both, NULL), 0);

        CMS_ContentInfo_free(cms);
        BIO_free(in);
        sk_X509_pop_free(one, X509_free);
        sk_X509_pop_free(both, X509_free);
}
END_TEST

START_TEST(test_ctx_free_without_finish) {
        _cleanup_free_ uint8_t *der = NULL;
        struct verify_ctx *c = NULL;
        size_t len;

        der = tu_sign_file_oracle(rsa, rsa_cert, "sha256", false, data, 100, &len);
        ck_assert_int_eq(verify_begin(der, len, &c), 0);
        ck_assert_int_eq(verify_update(c, data, 50), 0);
        ck_assert_ptr_null(verify_ctx_free(c));
        ck_assert_ptr_null(verify_ctx_free(NULL));
}
END_TEST

/* A signature with signed (authenticated) attributes, as "openssl cms -sign" makes by default. */
static uint8_t *sign_with_attributes(EVP_PKEY *key, X509 *cert, const void *buf, size_t len, size_t *ret_len) {
        BIO *in = BIO_new_mem_buf(buf, (int) len);
        CMS_ContentInfo *cms;
        uint8_t *der;

        cms = CMS_sign(cert, key, NULL, in, CMS_DETACHED | CMS_BINARY | CMS_NOCERTS);
        ck_assert_ptr_nonnull(cms);
        ck_assert_int_gt(CMS_signed_get_attr_count(sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0)), 0);
        der = cms_to_der(cms, ret_len);
        CMS_ContentInfo_free(cms);
        BIO_free(in);
        return der;
}

/* Regression test, the bug is fixed (security): verify_finish() checks a signer with CMS_SignerInfo_verify_content() only.
 * When the SignerInfo has signed attributes, OpenSSL's verify_content() merely compares the
 * messageDigest attribute with the digest of the data; the signature over the attributes is
 * checked by CMS_SignerInfo_verify(), which verify_finish() never calls (CMS_verify() calls both).
 * So anyone can forge a "valid" signature by any trusted certificate: name its issuer and serial,
 * put the module's digest in a messageDigest attribute, sign with any key at all. modsign_verify()
 * then reports the module as signed by that key, and already_signed_by() makes modsign_sign()
 * answer MODSIGN_UNCHANGED, leaving a module the kernel will refuse. The kernel itself rejects
 * every module signature with authenticated attributes (pkcs7_verify(), "Invalid module sig (has
 * authattrs)"), so the fix that also restores parity is to refuse such signers outright. */
START_TEST(test_forged_signed_attributes) {
        _cleanup_free_ uint8_t *der = NULL;
        STACK_OF(X509) *trusted = tu_cert_stack(rsa_cert);
        X509 *untouched = (X509 *) 0x1, *signer = untouched;
        size_t len;
        int r;

        /* made with the attacker's key, naming rsa_cert's issuer and serial */
        ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(impostor_cert), X509_get_issuer_name(rsa_cert)), 0);
        ck_assert_int_eq(ASN1_INTEGER_cmp(X509_get0_serialNumber(impostor_cert), X509_get0_serialNumber(rsa_cert)), 0);
        der = sign_with_attributes(other, impostor_cert, data, sizeof(data), &len);
        r = verify_data(der, len, data, sizeof(data), trusted, &signer);
        if (r == 0 && signer != untouched)
                X509_free(signer);
        ck_assert_msg(r == -EKEYREJECTED, "regression: a signature by another key, with signed attributes, verified as %s's: %d",
                      "rsa_cert", r);
        ck_assert_ptr_eq(signer, untouched);
        sk_X509_pop_free(trusted, X509_free);
}
END_TEST

/* Regression test, the bug is fixed (kernel parity, same root cause): even a genuine signature with signed attributes is one the
 * kernel refuses for a module ("Invalid module sig (has authattrs)", -EKEYREJECTED), so verify,
 * which promises to check "the way the kernel does", must not report it valid. */
START_TEST(test_genuine_signed_attributes) {
        _cleanup_free_ uint8_t *der = NULL;
        STACK_OF(X509) *trusted = tu_cert_stack(rsa_cert);
        size_t len;
        int r;

        der = sign_with_attributes(rsa, rsa_cert, data, sizeof(data), &len);
        ck_assert_int_eq(verify_data(der, len, data, sizeof(data) - 1, trusted, NULL), -EKEYREJECTED);
        r = verify_data(der, len, data, sizeof(data), trusted, NULL);
        ck_assert_msg(r == -EKEYREJECTED, "regression: a module signature with authenticated attributes verified: %d", r);
        sk_X509_pop_free(trusted, X509_free);
}
END_TEST

/* Regression test, the bug is fixed (kernel parity, low severity: only the key's holder can make one): the kernel refuses a
 * module signature whose encapsulated content type is not id-data ("Invalid module sig (not
 * pkcs7-data)", -EKEYREJECTED); cms_parse() checks only that the ContentInfo is SignedData. */
START_TEST(test_econtent_type_not_data) {
        const unsigned int flags = CMS_NOCERTS | CMS_BINARY | CMS_NOSMIMECAP | CMS_NOATTR;
        STACK_OF(X509) *trusted = tu_cert_stack(rsa_cert);
        _cleanup_free_ uint8_t *der = NULL;
        CMS_ContentInfo *cms;
        BIO *in = BIO_new_mem_buf(data, sizeof(data));
        size_t len;
        int r;

        cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_NOCERTS | CMS_PARTIAL | CMS_BINARY | CMS_DETACHED | CMS_STREAM);
        ck_assert_int_eq(CMS_set1_eContentType(cms, OBJ_nid2obj(NID_id_smime_ct_TSTInfo)), 1);
        ck_assert_ptr_nonnull(CMS_add1_signer(cms, rsa_cert, rsa, EVP_sha256(), flags));
        ck_assert_int_eq(CMS_final(cms, in, NULL, CMS_NOCERTS | CMS_BINARY), 1);
        der = cms_to_der(cms, &len);
        CMS_ContentInfo_free(cms);
        BIO_free(in);

        {
                struct verify_ctx *c = NULL;

                r = verify_begin(der, len, &c);
                verify_ctx_free(c);
        }
        if (r == 0) {
                r = verify_data(der, len, data, sizeof(data), trusted, NULL);
                ck_assert_msg(r != 0, "regression: a module signature over a non-data content type verified");
        } else
                ck_assert_int_eq(r, -EBADMSG);
        sk_X509_pop_free(trusted, X509_free);
}
END_TEST

static Suite *verify_suite(void) {
        Suite *s = suite_create("verify");
        TCase *tc;

        tc = tu_tcase("describe");
        tcase_add_unchecked_fixture(tc, keys_setup, NULL);
        tcase_add_test(tc, test_describe_issuer_serial);
        tcase_add_test(tc, test_describe_keyid);
        suite_add_tcase(s, tc);

        tc = tu_tcase("verify");
        tcase_add_unchecked_fixture(tc, keys_setup, NULL);
        tcase_add_test(tc, test_verify_ok);
        tcase_add_test(tc, test_verify_unknown_signer);
        tcase_add_test(tc, test_verify_tampered);
        tcase_add_test(tc, test_two_signers);
        tcase_add_test(tc, test_forged_signed_attributes);
        tcase_add_test(tc, test_genuine_signed_attributes);
        tcase_add_test(tc, test_econtent_type_not_data);
        tcase_add_test(tc, test_ctx_free_without_finish);
        suite_add_tcase(s, tc);

        tc = tu_tcase("malformed");
        tcase_add_unchecked_fixture(tc, keys_setup, NULL);
        tcase_add_test(tc, test_malformed);
        tcase_add_test(tc, test_not_signed_data);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tu_run_suite(verify_suite());
}
