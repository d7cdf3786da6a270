/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sign.c: the CMS signature must be what scripts/sign-file makes, fed in any pieces. OpenSSL's
 * own CMS_verify() and a sign-file-equivalent CMS_sign()/CMS_final() are the oracles. */
#include <config.h>

#include <errno.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "sign.h"
#include "unit-util.h"

/* Made once, in the parent, before the tests fork. */
static EVP_PKEY *rsa, *rsa2, *ec;
static X509 *rsa_cert, *rsa_cert_skid, *rsa2_cert, *ec_cert_skid;

static void keys_setup(void) {
        if (rsa)
                return;
        rsa = tu_rsa_key(2048);
        rsa2 = tu_rsa_key(2048);
        ec = tu_ec_key("P-256");
        rsa_cert = tu_cert(rsa, "Unit Test RSA", 0x1001, false);
        rsa_cert_skid = tu_cert(rsa, "Unit Test RSA with SKID", 0x1002, true);
        rsa2_cert = tu_cert(rsa2, "Unit Test RSA 2", 0x1003, false);
        ec_cert_skid = tu_cert(ec, "Unit Test EC", 0x1004, true);
}

static struct signer *signer_ok(EVP_PKEY *key, X509 *cert, bool keyid) {
        struct signer *s = NULL;
        int r = signer_new(key, cert, keyid, &s);

        ck_assert_msg(r == 0, "signer_new: %s", strerror(-r));
        ck_assert_ptr_nonnull(s);
        return s;
}

/* Signs data in the given pieces (NULL: all at once). */
static uint8_t *sign_pieces(const struct signer *s, const char *hash, const uint8_t *data, size_t len,
                            const size_t *pieces, size_t n_pieces, size_t *ret_len) {
        struct sign_ctx *c = NULL;
        uint8_t *der = NULL;
        size_t off = 0;
        int r;

        r = sign_begin(s, hash, &c);
        ck_assert_msg(r == 0, "sign_begin(%s): %s", hash, strerror(-r));
        if (!pieces) {
                if (len > 0)
                        ck_assert_int_eq(sign_update(c, data, len), 0);
        } else
                for (size_t i = 0; off < len; i++) {
                        size_t n = MIN(pieces[i % n_pieces], len - off);

                        ck_assert_int_eq(sign_update(c, data + off, n), 0);
                        off += n;
                }
        ck_assert_int_eq(sign_update(c, data, 0), 0);
        r = sign_finish(c, &der, ret_len);
        ck_assert_msg(r == 0, "sign_finish: %s", strerror(-r));
        ck_assert_ptr_nonnull(der);
        ck_assert_uint_gt(*ret_len, 0);
        return der;
}

static CMS_ContentInfo *cms_parse(const uint8_t *der, size_t len) {
        const unsigned char *p = der;
        CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long) len);

        ck_assert_ptr_nonnull(cms);
        ck_assert_ptr_eq(p, der + len);
        return cms;
}

/* OpenSSL's CMS_verify(), detached, with the signer's certificate supplied (sign-file omits it). */
static int cms_verify(const uint8_t *der, size_t len, X509 *cert, const void *data, size_t data_len) {
        CMS_ContentInfo *cms = cms_parse(der, len);
        STACK_OF(X509) *certs = tu_cert_stack(cert);
        BIO *content = BIO_new_mem_buf(data_len ? data : "", (int) data_len);
        int r;

        ck_assert_ptr_nonnull(content);
        r = CMS_verify(cms, certs, NULL, content, NULL, CMS_NOINTERN | CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY);
        ERR_clear_error();
        BIO_free(content);
        sk_X509_pop_free(certs, X509_free);
        CMS_ContentInfo_free(cms);
        return r;
}

/* The shape DESIGN.md §4 asks for: detached SignedData, no certificates, no attributes. */
static void check_cms_shape(const uint8_t *der, size_t len, X509 *cert, bool keyid, int md_nid) {
        CMS_ContentInfo *cms = cms_parse(der, len);
        STACK_OF(X509) *certs;
        STACK_OF(X509_CRL) *crls;
        STACK_OF(CMS_SignerInfo) *sis;
        CMS_SignerInfo *si;
        ASN1_OCTET_STRING *kid = NULL, **content;
        X509_NAME *issuer = NULL;
        ASN1_INTEGER *serial = NULL;
        X509_ALGOR *dig = NULL, *sig = NULL;

        ck_assert_int_eq(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_signed);
        ck_assert_int_eq(OBJ_obj2nid(CMS_get0_eContentType(cms)), NID_pkcs7_data);
        content = CMS_get0_content(cms);
        ck_assert(content == NULL || *content == NULL); /* detached */

        certs = CMS_get1_certs(cms);
        ck_assert(certs == NULL || sk_X509_num(certs) == 0);
        sk_X509_pop_free(certs, X509_free);
        crls = CMS_get1_crls(cms);
        ck_assert(crls == NULL || sk_X509_CRL_num(crls) == 0);
        sk_X509_CRL_pop_free(crls, X509_CRL_free);

        sis = CMS_get0_SignerInfos(cms);
        ck_assert_int_eq(sk_CMS_SignerInfo_num(sis), 1);
        si = sk_CMS_SignerInfo_value(sis, 0);
        ck_assert_int_le(CMS_signed_get_attr_count(si), 0);
        ck_assert_int_le(CMS_unsigned_get_attr_count(si), 0);

        ck_assert_int_eq(CMS_SignerInfo_get0_signer_id(si, &kid, &issuer, &serial), 1);
        if (keyid) {
                ck_assert_ptr_nonnull(kid);
                ck_assert_ptr_null(issuer);
                ck_assert_int_eq(ASN1_OCTET_STRING_cmp(kid, X509_get0_subject_key_id(cert)), 0);
        } else {
                ck_assert_ptr_null(kid);
                ck_assert_ptr_nonnull(issuer);
                ck_assert_int_eq(X509_NAME_cmp(issuer, X509_get_issuer_name(cert)), 0);
                ck_assert_int_eq(ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(cert)), 0);
        }
        ck_assert_int_eq(CMS_SignerInfo_cert_cmp(si, cert), 0);
        CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
        ck_assert_int_eq(OBJ_obj2nid(dig->algorithm), md_nid);
        CMS_ContentInfo_free(cms);
}

START_TEST(test_hash_classify) {
        ck_assert_int_eq(hash_classify("sha256"), HASH_STRONG);
        ck_assert_int_eq(hash_classify("sha384"), HASH_STRONG);
        ck_assert_int_eq(hash_classify("sha512"), HASH_STRONG);
        ck_assert_int_eq(hash_classify("sha1"), HASH_WEAK);
        ck_assert_int_eq(hash_classify("sha224"), HASH_WEAK);
        ck_assert_int_eq(hash_classify("md5"), HASH_UNKNOWN);
        ck_assert_int_eq(hash_classify("SHA256"), HASH_UNKNOWN);
        ck_assert_int_eq(hash_classify("sha256 "), HASH_UNKNOWN);
        ck_assert_int_eq(hash_classify("sha3-256"), HASH_UNKNOWN);
        ck_assert_int_eq(hash_classify(""), HASH_UNKNOWN);
        ck_assert_int_eq(hash_classify(NULL), HASH_UNKNOWN);
}
END_TEST

START_TEST(test_signer_key_mismatch) {
        struct signer *untouched = (struct signer *) 0x1, *s = untouched;

        ck_assert_int_eq(signer_new(rsa2, rsa_cert, false, &s), -EKEYREJECTED);
        ck_assert_ptr_eq(s, untouched);
        ck_assert_int_eq(signer_new(rsa2, rsa_cert_skid, true, &s), -EKEYREJECTED);
        ck_assert_int_eq(signer_new(ec, rsa_cert, false, &s), -EKEYREJECTED);
        ck_assert_int_eq(signer_new(rsa, ec_cert_skid, false, &s), -EKEYREJECTED);
        ck_assert_ptr_eq(s, untouched);
        ck_assert_int_eq(ERR_peek_error(), 0); /* no stale OpenSSL errors left behind */
}
END_TEST

START_TEST(test_signer_keyid) {
        struct signer *untouched = (struct signer *) 0x1, *s = untouched;

        ck_assert_int_eq(signer_new(rsa, rsa_cert, true, &s), -ENOKEY);
        ck_assert_ptr_eq(s, untouched);

        s = signer_ok(rsa, rsa_cert_skid, true);
        ck_assert(signer_uses_keyid(s));
        ck_assert_ptr_eq(signer_get_cert(s), rsa_cert_skid);
        ck_assert_ptr_null(signer_free(s));

        s = signer_ok(rsa, rsa_cert_skid, false);
        ck_assert(!signer_uses_keyid(s));
        ck_assert_ptr_null(signer_free(s));
        ck_assert_ptr_null(signer_free(NULL));
}
END_TEST

START_TEST(test_signer_holds_references) {
        EVP_PKEY *key = tu_ec_key("P-256");
        X509 *cert = tu_cert(key, "short-lived", 5, false), *copy = X509_dup(cert);
        struct signer *s = signer_ok(key, cert, false);
        _cleanup_free_ uint8_t *der = NULL;
        size_t len;

        /* our references go; the signer's stay */
        EVP_PKEY_free(key);
        X509_free(cert);
        der = sign_pieces(s, "sha256", (const uint8_t *) "abc", 3, NULL, 0, &len);
        ck_assert_int_eq(cms_verify(der, len, copy, "abc", 3), 1);
        signer_free(s);
        X509_free(copy);
}
END_TEST

static const char *const hashes[] = { "sha256", "sha384", "sha512" };
static const int hash_nids[] = { NID_sha256, NID_sha384, NID_sha512 };

/* _i: hash x {issuer-and-serial, key id} */
START_TEST(test_pieces_equal_whole) {
        static const size_t pieces[] = { 1, 2, 3, 63, 64, 65, 4095, 4097, 65536, 7 };
        const char *hash = hashes[_i / 2];
        bool keyid = _i % 2;
        X509 *cert = keyid ? rsa_cert_skid : rsa_cert;
        const size_t n = 300000;
        _cleanup_free_ uint8_t *data = malloc(n), *a = NULL, *b = NULL, *oracle = NULL;
        struct signer *s = signer_ok(rsa, cert, keyid);
        size_t a_len, b_len, oracle_len;

        ck_assert_ptr_nonnull(data);
        tu_fill_random(data, n, 1234);
        a = sign_pieces(s, hash, data, n, pieces, ELEMENTSOF(pieces), &a_len);
        b = sign_pieces(s, hash, data, n, NULL, 0, &b_len);
        ck_assert_uint_eq(a_len, b_len);
        ck_assert_mem_eq(a, b, a_len);

        /* byte for byte what sign-file makes (RSA PKCS#1 v1.5 is deterministic) */
        oracle = tu_sign_file_oracle(rsa, cert, hash, keyid, data, n, &oracle_len);
        ck_assert_uint_eq(a_len, oracle_len);
        ck_assert_mem_eq(a, oracle, a_len);

        ck_assert_int_eq(cms_verify(a, a_len, cert, data, n), 1);
        data[n / 2] ^= 1;
        ck_assert_int_ne(cms_verify(a, a_len, cert, data, n), 1);
        data[n / 2] ^= 1;
        ck_assert_int_ne(cms_verify(a, a_len, cert, data, n - 1), 1);
        ck_assert_int_ne(cms_verify(a, a_len, rsa2_cert, data, n), 1);

        check_cms_shape(a, a_len, cert, keyid, hash_nids[_i / 2]);
        signer_free(s);
}
END_TEST

START_TEST(test_ec_signature) {
        const size_t n = 100000;
        _cleanup_free_ uint8_t *data = malloc(n);
        static const size_t pieces[] = { 100, 1, 9999 };

        ck_assert_ptr_nonnull(data);
        tu_fill_random(data, n, 55);
        for (int keyid = 0; keyid <= 1; keyid++)
                for (size_t h = 0; h < ELEMENTSOF(hashes); h++) {
                        struct signer *s = signer_ok(ec, ec_cert_skid, keyid);
                        _cleanup_free_ uint8_t *der = NULL;
                        size_t len;

                        /* ECDSA is randomised: it must verify, not match */
                        der = sign_pieces(s, hashes[h], data, n, pieces, ELEMENTSOF(pieces), &len);
                        ck_assert_int_eq(cms_verify(der, len, ec_cert_skid, data, n), 1);
                        data[0] ^= 0x80;
                        ck_assert_int_ne(cms_verify(der, len, ec_cert_skid, data, n), 1);
                        data[0] ^= 0x80;
                        check_cms_shape(der, len, ec_cert_skid, keyid, hash_nids[h]);
                        signer_free(s);
                }
}
END_TEST

START_TEST(test_empty_data) {
        struct signer *s = signer_ok(rsa, rsa_cert, false);
        _cleanup_free_ uint8_t *der = NULL, *oracle = NULL;
        size_t len, oracle_len;

        der = sign_pieces(s, "sha256", NULL, 0, NULL, 0, &len);
        ck_assert_int_eq(cms_verify(der, len, rsa_cert, "", 0), 1);
        oracle = tu_sign_file_oracle(rsa, rsa_cert, "sha256", false, "", 0, &oracle_len);
        ck_assert_uint_eq(len, oracle_len);
        ck_assert_mem_eq(der, oracle, len);
        signer_free(s);
}
END_TEST

START_TEST(test_unknown_hash) {
        static const char *const bad[] = { "md5", "SHA256", "sha3-256", "whirlpool", "", "sha256\n" };
        struct signer *s = signer_ok(rsa, rsa_cert, false);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct sign_ctx *untouched = (struct sign_ctx *) 0x1, *c = untouched;

                ck_assert_msg(sign_begin(s, bad[i], &c) == -EINVAL, "hash '%s' accepted", bad[i]);
                ck_assert_ptr_eq(c, untouched);
        }
        {
                struct sign_ctx *untouched = (struct sign_ctx *) 0x1, *c = untouched;

                ck_assert_int_eq(sign_begin(s, NULL, &c), -EINVAL);
                ck_assert_ptr_eq(c, untouched);
        }
        signer_free(s);
}
END_TEST

START_TEST(test_ctx_free_without_finish) {
        struct signer *s = signer_ok(rsa, rsa_cert, false);
        struct sign_ctx *c = NULL;

        ck_assert_int_eq(sign_begin(s, "sha512", &c), 0);
        ck_assert_int_eq(sign_update(c, "partial", 7), 0);
        ck_assert_ptr_null(sign_ctx_free(c));
        ck_assert_ptr_null(sign_ctx_free(NULL));
        /* the signer is still good for another signature */
        {
                _cleanup_free_ uint8_t *der = NULL;
                size_t len;

                der = sign_pieces(s, "sha512", (const uint8_t *) "whole", 5, NULL, 0, &len);
                ck_assert_int_eq(cms_verify(der, len, rsa_cert, "whole", 5), 1);
        }
        signer_free(s);
}
END_TEST

START_TEST(test_concurrent_contexts) {
        /* Two signatures in flight from one signer do not mix. */
        struct signer *s = signer_ok(rsa, rsa_cert, false);
        struct sign_ctx *c1 = NULL, *c2 = NULL;
        _cleanup_free_ uint8_t *d1 = NULL, *d2 = NULL;
        size_t l1, l2;

        ck_assert_int_eq(sign_begin(s, "sha256", &c1), 0);
        ck_assert_int_eq(sign_begin(s, "sha256", &c2), 0);
        ck_assert_int_eq(sign_update(c1, "one", 3), 0);
        ck_assert_int_eq(sign_update(c2, "two", 3), 0);
        ck_assert_int_eq(sign_finish(c2, &d2, &l2), 0);
        ck_assert_int_eq(sign_finish(c1, &d1, &l1), 0);
        ck_assert_int_eq(cms_verify(d1, l1, rsa_cert, "one", 3), 1);
        ck_assert_int_eq(cms_verify(d2, l2, rsa_cert, "two", 3), 1);
        signer_free(s);
}
END_TEST

static Suite *sign_suite(void) {
        Suite *s = suite_create("sign");
        TCase *tc;

        tc = tu_tcase("signer");
        tcase_add_unchecked_fixture(tc, keys_setup, NULL);
        tcase_add_test(tc, test_hash_classify);
        tcase_add_test(tc, test_signer_key_mismatch);
        tcase_add_test(tc, test_signer_keyid);
        tcase_add_test(tc, test_signer_holds_references);
        suite_add_tcase(s, tc);

        tc = tu_tcase("sign");
        tcase_add_unchecked_fixture(tc, keys_setup, NULL);
        tcase_add_loop_test(tc, test_pieces_equal_whole, 0, (int) (2 * ELEMENTSOF(hashes)));
        tcase_add_test(tc, test_ec_signature);
        tcase_add_test(tc, test_empty_data);
        tcase_add_test(tc, test_unknown_hash);
        tcase_add_test(tc, test_ctx_free_without_finish);
        tcase_add_test(tc, test_concurrent_contexts);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tu_run_suite(sign_suite());
}
