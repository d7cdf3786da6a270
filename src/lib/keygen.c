/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "keygen.h"
#include "macro.h"
#include "openssl-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_EXTENSION *, X509_EXTENSION_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_INTEGER *, ASN1_INTEGER_free);

#define SERIAL_BYTES 16

/* OpenSSL's error queue is ours to empty: a failure here is reported as an errno. */
static int openssl_fail(int error) {
        ERR_clear_error();
        return error;
}

int keygen_type_from_string(const char *s, enum keygen_type *ret) {
        if (strcasecmp(s, "rsa") == 0)
                *ret = KEYGEN_RSA;
        else if (strcasecmp(s, "ec") == 0 || strcasecmp(s, "ecdsa") == 0)
                *ret = KEYGEN_EC;
        else
                return -EINVAL;
        return 0;
}

const char *keygen_type_to_string(enum keygen_type t) {
        return t == KEYGEN_RSA ? "rsa" : t == KEYGEN_EC ? "ec" : NULL;
}

bool keygen_rsa_bits_valid(unsigned bits) {
        /* Below 2048 is too weak; above 4096 the kernel's RSA code (and firmware) may refuse. */
        return bits == 2048 || bits == 3072 || bits == 4096;
}

int keygen_curve_from_string(const char *s, const char **ret) {
        static const struct {
                const char *alias, *group;
        } curves[] = {
                { "p256", "P-256" },       { "P-256", "P-256" }, { "prime256v1", "P-256" }, { "secp256r1", "P-256" },
                { "p384", "P-384" },       { "P-384", "P-384" }, { "secp384r1", "P-384" },
        };

        for (size_t i = 0; i < ELEMENTSOF(curves); i++)
                if (strcasecmp(s, curves[i].alias) == 0) {
                        *ret = curves[i].group;
                        return 0;
                }
        return -EINVAL;
}

int keygen_generate_key(enum keygen_type type, unsigned bits, const char *curve, EVP_PKEY **ret) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        EVP_PKEY *key = NULL;

        if (type == KEYGEN_RSA) {
                if (!keygen_rsa_bits_valid(bits))
                        return -EINVAL;
                ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
                if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int) bits) <= 0)
                        return openssl_fail(-EIO);
        } else if (type == KEYGEN_EC) {
                const char *group;

                if (!curve || keygen_curve_from_string(curve, &group) < 0)
                        return -EINVAL;
                ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
                if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_CTX_set_group_name(ctx, group) <= 0)
                        return openssl_fail(-EIO);
        } else
                return -EINVAL;

        if (EVP_PKEY_generate(ctx, &key) <= 0)
                return openssl_fail(-EIO);
        *ret = key;
        return 0;
}

/* 16 random bytes read as a positive integer that keeps all 16 bytes in DER (RFC 5280
 * allows up to 20; the top bit clear keeps it positive, the next one set keeps its length). */
static int random_serial(ASN1_INTEGER **ret) {
        unsigned char buf[SERIAL_BYTES];
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        ASN1_INTEGER *serial;

        if (RAND_bytes(buf, sizeof(buf)) != 1)
                return openssl_fail(-EIO);
        buf[0] = (unsigned char) ((buf[0] & 0x7f) | 0x40);
        bn = BN_bin2bn(buf, sizeof(buf), NULL);
        if (!bn)
                return openssl_fail(-ENOMEM);
        serial = BN_to_ASN1_INTEGER(bn, NULL);
        if (!serial)
                return openssl_fail(-ENOMEM);
        *ret = serial;
        return 0;
}

static int add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value) {
        _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = NULL;

        ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
        if (!ext || !X509_add_ext(cert, ext, -1))
                return openssl_fail(-EIO);
        return 0;
}

static const EVP_MD *cert_digest(EVP_PKEY *key) {
        char group[64];

        /* P-384 with SHA-384, as the kernel's own test keys do; everything else SHA-256. */
        if (EVP_PKEY_is_a(key, "EC") &&
            EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) == 1 &&
            (streq(group, "P-384") || streq(group, "secp384r1")))
                return EVP_sha384();
        return EVP_sha256();
}

int keygen_self_signed_cert(EVP_PKEY *key, const char *common_name, unsigned days, X509 **ret) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *serial = NULL;
        X509_NAME *name;
        X509V3_CTX ctx;
        int r;

        if (!key || !common_name || !*common_name || strlen(common_name) > 64 /* ub-common-name */ || days == 0 ||
            days > KEYGEN_MAX_DAYS)
                return -EINVAL;

        cert = X509_new();
        if (!cert)
                return openssl_fail(-ENOMEM);
        r = random_serial(&serial);
        if (r < 0)
                return r;
        if (!X509_set_version(cert, X509_VERSION_3) || !X509_set_serialNumber(cert, serial) ||
            !X509_gmtime_adj(X509_getm_notBefore(cert), 0) ||
            !X509_time_adj_ex(X509_getm_notAfter(cert), (int) days, 0, NULL) || !X509_set_pubkey(cert, key))
                return openssl_fail(-EIO);

        /* CN only, in UTF-8: the kernel names the key after the CN alone when there is no O. */
        name = X509_get_subject_name(cert);
        if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) common_name, -1, -1, 0) ||
            !X509_set_issuer_name(cert, name))
                return openssl_fail(-EINVAL);

        /* The SKID must exist before the AKID, which copies it from the issuer: this cert. */
        X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
        r = add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE");
        if (r >= 0)
                r = add_ext(cert, &ctx, NID_key_usage, "critical,digitalSignature");
        if (r >= 0)
                r = add_ext(cert, &ctx, NID_ext_key_usage, "codeSigning," KEYGEN_OID_MODULE_SIGNING_ONLY);
        if (r >= 0)
                r = add_ext(cert, &ctx, NID_subject_key_identifier, "hash");
        if (r >= 0)
                r = add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always");
        if (r < 0)
                return r;

        if (X509_sign(cert, key, cert_digest(key)) <= 0)
                return openssl_fail(-EIO);
        *ret = TAKE_PTR(cert);
        return 0;
}

static int bio_take(BIO *bio, char **ret, size_t *ret_len) {
        char *data, *copy;
        long n = BIO_get_mem_data(bio, &data);

        if (n < 0)
                return -EIO;
        copy = OPENSSL_malloc((size_t) n + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, data, (size_t) n);
        copy[n] = 0;
        *ret = copy;
        *ret_len = (size_t) n;
        return 0;
}

int keygen_key_to_pem(EVP_PKEY *key, char **ret, size_t *ret_len) {
        BIO *bio = BIO_new(BIO_s_secmem());
        int r;

        if (!bio)
                return openssl_fail(-ENOMEM);
        if (!PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
                r = openssl_fail(-EIO);
        else
                r = bio_take(bio, ret, ret_len);
        /* A secmem BIO wipes its buffer when freed. */
        BIO_free(bio);
        return r;
}

int keygen_cert_to_pem(X509 *cert, char **ret, size_t *ret_len) {
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());

        if (!bio)
                return openssl_fail(-ENOMEM);
        if (!PEM_write_bio_X509(bio, cert))
                return openssl_fail(-EIO);
        return bio_take(bio, ret, ret_len);
}

int keygen_cert_to_der(X509 *cert, unsigned char **ret, size_t *ret_len) {
        unsigned char *der = NULL;
        int n = i2d_X509(cert, &der);

        if (n <= 0)
                return openssl_fail(-EIO);
        *ret = der;
        *ret_len = (size_t) n;
        return 0;
}
