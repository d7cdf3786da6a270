/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "key-backend.h"
#include "macro.h"
#include "openssl-util.h"
#include "sign.h"

struct signer {
        EVP_PKEY *key;
        X509 *cert;
        bool use_keyid;
};

struct sign_ctx {
        CMS_ContentInfo *cms;
        BIO *chain; /* the digest BIOs CMS_dataInit() set up; what we write is hashed */
};

enum hash_strength hash_classify(const char *name) {
        static const char *const strong[] = { "sha256", "sha384", "sha512" };
        static const char *const weak[] = { "sha1", "sha224" };

        if (!name)
                return HASH_UNKNOWN;
        for (size_t i = 0; i < ELEMENTSOF(strong); i++)
                if (streq(name, strong[i]))
                        return HASH_STRONG;
        for (size_t i = 0; i < ELEMENTSOF(weak); i++)
                if (streq(name, weak[i]))
                        return HASH_WEAK;
        return HASH_UNKNOWN;
}

int signer_new(EVP_PKEY *key, X509 *cert, bool use_keyid, struct signer **ret) {
        struct signer *s;

        if (X509_check_private_key(cert, key) != 1) {
                ERR_clear_error();
                return -EKEYREJECTED;
        }
        if (use_keyid && !X509_get0_subject_key_id(cert))
                return -ENOKEY;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        if (!EVP_PKEY_up_ref(key) || !X509_up_ref(cert)) {
                free(s);
                return -ENOMEM;
        }
        *s = (struct signer) { .key = key, .cert = cert, .use_keyid = use_keyid };
        *ret = s;
        return 0;
}

struct signer *signer_free(struct signer *s) {
        if (!s)
                return NULL;
        EVP_PKEY_free(s->key);
        X509_free(s->cert);
        free(s);
        return NULL;
}

X509 *signer_get_cert(const struct signer *s) {
        return s->cert;
}

bool signer_uses_keyid(const struct signer *s) {
        return s->use_keyid;
}

static bool signature_alg_is_kernel_ok(const X509_ALGOR *alg) {
        const ASN1_OBJECT *obj = NULL;
        int nid;

        X509_ALGOR_get0(&obj, NULL, NULL, alg);
        nid = OBJ_obj2nid(obj);
        return nid == NID_rsaEncryption || nid == NID_ecdsa_with_SHA256 || nid == NID_ecdsa_with_SHA384 ||
               nid == NID_ecdsa_with_SHA512 || nid == NID_ecdsa_with_SHA1 || nid == NID_ecdsa_with_SHA224;
}

int sign_begin(const struct signer *s, const char *hash, struct sign_ctx **ret) {
        _cleanup_(CMS_ContentInfo_freep) CMS_ContentInfo *cms = NULL;
        X509_ALGOR *sig_alg = NULL;
        CMS_SignerInfo *si;
        const EVP_MD *md;
        struct sign_ctx *c;
        BIO *chain;

        if (hash_classify(hash) == HASH_UNKNOWN)
                return -EINVAL;
        md = EVP_get_digestbyname(hash);
        if (!md)
                return -EOPNOTSUPP;

        /* sign-file's flags, to the bit: these decide the DER we produce. */
        cms = CMS_sign(NULL, NULL, NULL, NULL,
                       CMS_NOCERTS | CMS_PARTIAL | CMS_BINARY | CMS_DETACHED | CMS_STREAM);
        if (!cms)
                goto openssl_error;
        si = CMS_add1_signer(cms, s->cert, s->key, md,
                             CMS_NOCERTS | CMS_BINARY | CMS_NOSMIMECAP | CMS_NOATTR |
                             (s->use_keyid ? CMS_USE_KEYID : 0));
        if (!si)
                goto openssl_error;
        /* The kernel verifies RSA PKCS#1 v1.5 (rsaEncryption) and ECDSA, not PSS. A key from a
         * provider or token could default to something else: refuse rather than sign what no
         * kernel loads. */
        CMS_SignerInfo_get0_algs(si, NULL, NULL, NULL, &sig_alg);
        if (!sig_alg || !signature_alg_is_kernel_ok(sig_alg))
                return -EOPNOTSUPP;

        /* What CMS_final() does inside, split open so the caller can stream: dataInit sets up a
         * digest BIO per algorithm over a null sink (the content is detached). */
        chain = CMS_dataInit(cms, NULL);
        if (!chain)
                goto openssl_error;

        c = calloc(1, sizeof(*c));
        if (!c) {
                BIO_free_all(chain);
                return -ENOMEM;
        }
        c->cms = TAKE_PTR(cms);
        c->chain = chain;
        *ret = c;
        return 0;

openssl_error:
        return key_openssl_error(-EIO);
}

int sign_update(struct sign_ctx *c, const void *buf, size_t len) {
        while (len > 0) {
                int n = (int) MIN(len, (size_t) 1 << 30);

                if (BIO_write(c->chain, buf, n) != n)
                        return -EIO;
                buf = (const uint8_t *) buf + n;
                len -= (size_t) n;
        }
        return 0;
}

int sign_resume(struct sign_ctx *c, const EVP_MD_CTX *state) {
        BIO *md_bio = BIO_find_type(c->chain, BIO_TYPE_MD);
        EVP_MD_CTX *ours = NULL;

        /* One signer, one digest BIO: CMS_dataFinal() reads the digest from its context. */
        if (!md_bio || BIO_get_md_ctx(md_bio, &ours) <= 0 || !ours)
                return -EIO;
        if (!EVP_MD_CTX_get0_md(ours) || !EVP_MD_CTX_get0_md(state) ||
            EVP_MD_get_type(EVP_MD_CTX_get0_md(ours)) != EVP_MD_get_type(EVP_MD_CTX_get0_md(state)))
                return -EOPNOTSUPP;
        if (!EVP_MD_CTX_copy_ex(ours, state)) {
                ERR_clear_error();
                return -EIO;
        }
        return 0;
}

int sign_finish(struct sign_ctx *c, uint8_t **ret_der, size_t *ret_len) {
        unsigned char *der = NULL;
        int len, r = 0;

        (void) BIO_flush(c->chain);
        if (!CMS_dataFinal(c->cms, c->chain)) {
                /* The private-key operation happens here: a token that went away says so. */
                r = key_openssl_error(-EIO);
        } else {
                len = i2d_CMS_ContentInfo(c->cms, &der);
                if (len <= 0) {
                        ERR_clear_error();
                        r = -EIO;
                } else {
                        /* Hand out malloc() memory, not OPENSSL_malloc() memory. */
                        uint8_t *copy = malloc((size_t) len);
                        if (!copy)
                                r = -ENOMEM;
                        else {
                                memcpy(copy, der, (size_t) len);
                                *ret_der = copy;
                                *ret_len = (size_t) len;
                        }
                        OPENSSL_free(der);
                }
        }
        sign_ctx_free(c);
        return r;
}

struct sign_ctx *sign_ctx_free(struct sign_ctx *c) {
        if (!c)
                return NULL;
        BIO_free_all(c->chain);
        CMS_ContentInfo_free(c->cms);
        free(c);
        return NULL;
}
