/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The TPM2 backend: "handle:0x81......" (a persistent key) and "object:PATH" (a key blob)
 * through the tpm2-openssl provider, found at run time, so nothing is needed at build time.
 * The TCTI (which TPM, e.g. swtpm) comes from TPM2OPENSSL_TCTI as the provider reads it.
 *
 * The key stays in the TPM; OpenSSL calls the provider for the signature only. Hashing stays
 * in the default provider: the provider's own digests would send every module byte to the
 * TPM. The CMS code asks for rsaEncryption (PKCS#1 v1.5), which the kernel needs, and
 * sign.c checks the SignerInfo says so. */
#include <config.h>

/* The legacy RSA_METHOD and EC_KEY_METHOD, deprecated in OpenSSL 3, are how we keep OpenSSL
 * 3.0 from signing with the wrong provider: see wrap_key(). */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/ui.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "key-backend.h"
#include "macro.h"
#include "openssl-util.h"

static CRYPTO_ONCE provider_once = CRYPTO_ONCE_STATIC_INIT;
static OSSL_PROVIDER *provider_tpm2;

static void provider_init(void) {
        /* Loading any provider stops OpenSSL from loading the default one by itself. */
        if (!OSSL_PROVIDER_load(NULL, "default"))
                return;
        provider_tpm2 = OSSL_PROVIDER_load(NULL, "tpm2");
        /* Digests from the default provider: the tpm2 provider's would send every byte of a
         * module to the TPM, 1 KiB a command. Our signing context asks for provider=tpm2
         * explicitly, which overrides this preference. */
        if (provider_tpm2)
                (void) EVP_set_default_properties(NULL, "?provider=default");
        ERR_clear_error();
}

static int pass_cb(char *buf, int size, int rwflag, void *userdata) {
        const char *pass = userdata;
        size_t len;

        if (!pass || size <= 0)
                return -1;
        len = strlen(pass);
        if (len > (size_t) size)
                return -1;
        memcpy(buf, pass, len);
        return (int) len;
}

/* OpenSSL 3.0 picks the signature implementation for a provider key by a plain fetch first,
 * finds the default provider's RSA, "exports" the TPM key to it (the public half is all that
 * leaves the TPM) and then fails for want of the private key. So the key we hand out is a
 * legacy RSA/EC_KEY holding the public half, whose sign method calls EVP_PKEY_sign() on the
 * TPM key with provider=tpm2 forced. Index of the TPM key in the RSA/EC_KEY ex_data: */
static CRYPTO_ONCE wrap_once = CRYPTO_ONCE_STATIC_INIT;
static int rsa_ex = -1, ec_ex = -1;
static RSA_METHOD *rsa_meth;
static EC_KEY_METHOD *ec_meth;

static void ex_free_pkey(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
        EVP_PKEY_free(ptr);
}

/* One PKCS#1 v1.5 (or ECDSA) signature of a digest by the TPM key. */
static int tpm_sign_digest(EVP_PKEY *tpm, int md_nid, bool rsa, const unsigned char *dgst, size_t dlen,
                           unsigned char *sig, size_t *siglen) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, tpm, "provider=tpm2");
        int ok = 0;

        if (!ctx)
                return 0;
        if (EVP_PKEY_sign_init(ctx) > 0 && (!rsa || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0) &&
            (md_nid == NID_undef || EVP_PKEY_CTX_set_signature_md(ctx, EVP_get_digestbynid(md_nid)) > 0))
                ok = EVP_PKEY_sign(ctx, sig, siglen, dgst, dlen) > 0;
        EVP_PKEY_CTX_free(ctx);
        return ok;
}

static int rsa_sign_cb(int type, const unsigned char *m, unsigned int m_length, unsigned char *sigret,
                       unsigned int *siglen, const RSA *rsa) {
        EVP_PKEY *tpm = RSA_get_ex_data(rsa, rsa_ex);
        size_t len = (size_t) RSA_size(rsa);

        if (!tpm || !tpm_sign_digest(tpm, type, true, m, m_length, sigret, &len))
                return 0;
        *siglen = (unsigned int) len;
        return 1;
}

static int ec_sign_cb(int type, const unsigned char *dgst, int dlen, unsigned char *sig, unsigned int *siglen,
                      const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey) {
        EVP_PKEY *tpm = EC_KEY_get_ex_data(eckey, ec_ex);
        size_t len = (size_t) ECDSA_size(eckey);

        /* ECDSA signs the bare digest; which hash made it is not the signer's business. */
        if (!tpm || dlen < 0 || !tpm_sign_digest(tpm, NID_undef, false, dgst, (size_t) dlen, sig, &len))
                return 0;
        *siglen = (unsigned int) len;
        return 1;
}

static ECDSA_SIG *ec_sign_sig_cb(const unsigned char *dgst, int dlen, const BIGNUM *kinv, const BIGNUM *r,
                                 EC_KEY *eckey) {
        unsigned char buf[256];
        const unsigned char *p = buf;
        unsigned int len = 0;

        if ((size_t) ECDSA_size(eckey) > sizeof(buf) || !ec_sign_cb(0, dgst, dlen, buf, &len, kinv, r, eckey))
                return NULL;
        return d2i_ECDSA_SIG(NULL, &p, len);
}

static void wrap_init(void) {
        rsa_ex = RSA_get_ex_new_index(0, NULL, NULL, NULL, ex_free_pkey);
        ec_ex = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, ex_free_pkey);
        rsa_meth = RSA_meth_dup(RSA_PKCS1_OpenSSL());
        if (rsa_meth && (!RSA_meth_set1_name(rsa_meth, "modsignd tpm2") || !RSA_meth_set_sign(rsa_meth, rsa_sign_cb))) {
                RSA_meth_free(rsa_meth);
                rsa_meth = NULL;
        }
        ec_meth = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
        if (ec_meth) {
                int (*sign_setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;

                EC_KEY_METHOD_get_sign(ec_meth, NULL, &sign_setup, NULL);
                EC_KEY_METHOD_set_sign(ec_meth, ec_sign_cb, sign_setup, ec_sign_sig_cb);
        }
}

/* Takes the TPM key; returns the legacy wrapper. */
static int wrap_key(EVP_PKEY *tpm, EVP_PKEY **ret) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = EVP_PKEY_new();

        if (!k || !CRYPTO_THREAD_run_once(&wrap_once, wrap_init) || !rsa_meth || !ec_meth) {
                EVP_PKEY_free(tpm);
                return -ENOMEM;
        }
        if (EVP_PKEY_is_a(tpm, "RSA")) {
                RSA *rsa = EVP_PKEY_get1_RSA(tpm); /* the public half, exported */

                if (!rsa || !RSA_set_method(rsa, rsa_meth) || !RSA_set_ex_data(rsa, rsa_ex, tpm)) {
                        RSA_free(rsa);
                        EVP_PKEY_free(tpm);
                        return -EIO;
                }
                /* tpm is owned by rsa now */
                if (!EVP_PKEY_assign_RSA(k, rsa)) {
                        RSA_free(rsa);
                        return -ENOMEM;
                }
        } else {
                EC_KEY *ec = EVP_PKEY_get1_EC_KEY(tpm);

                if (!ec || !EC_KEY_set_method(ec, ec_meth) || !EC_KEY_set_ex_data(ec, ec_ex, tpm)) {
                        EC_KEY_free(ec);
                        EVP_PKEY_free(tpm);
                        return -EIO;
                }
                if (!EVP_PKEY_assign_EC_KEY(k, ec)) {
                        EC_KEY_free(ec);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(k);
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_STORE_CTX *, OSSL_STORE_close);
DEFINE_TRIVIAL_CLEANUP_FUNC(UI_METHOD *, UI_destroy_method);

int key_tpm2_load(const char *uri, const struct key_options *o, EVP_PKEY **ret, char **ret_message) {
        _cleanup_(UI_destroy_methodp) UI_METHOD *ui = NULL;
        _cleanup_(OSSL_STORE_closep) OSSL_STORE_CTX *store = NULL;
        EVP_PKEY *key = NULL;
        int r;

        if (ret_message)
                *ret_message = NULL;
        if (!CRYPTO_THREAD_run_once(&provider_once, provider_init))
                return -ENOMEM;
        if (!provider_tpm2)
                return key_message(ret_message, -EOPNOTSUPP,
                               "the tpm2 OpenSSL provider cannot be loaded (Debian package tpm2-openssl)");

        ui = UI_UTIL_wrap_read_pem_callback(pass_cb, 0);
        if (!ui)
                return -ENOMEM;
        store = OSSL_STORE_open_ex(uri, NULL, "provider=tpm2", ui, (void *) o->pin, NULL, NULL, NULL);
        if (!store) {
                ERR_clear_error();
                return key_message(ret_message, -ENODEV,
                               "the TPM cannot open %s (is the TPM reachable? TPM2OPENSSL_TCTI, /dev/tpmrm0)", uri);
        }
        (void) OSSL_STORE_expect(store, OSSL_STORE_INFO_PKEY);
        while (!key && !OSSL_STORE_eof(store)) {
                OSSL_STORE_INFO *info = OSSL_STORE_load(store);

                if (!info) {
                        if (OSSL_STORE_error(store))
                                break;
                        continue;
                }
                if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
                        key = OSSL_STORE_INFO_get1_PKEY(info);
                OSSL_STORE_INFO_free(info);
        }
        ERR_clear_error();
        if (!key)
                return key_message(ret_message, -ENOKEY, "no private key at %s in the TPM%s", uri,
                               o->pin ? "" : " (if it has an auth value, give it with PinFile=)");
        if (!EVP_PKEY_is_a(key, "RSA") && !EVP_PKEY_is_a(key, "EC")) {
                EVP_PKEY_free(key);
                return key_message(ret_message, -EOPNOTSUPP, "the TPM key is neither RSA nor EC (the kernel verifies no other)");
        }
        r = wrap_key(key, ret);
        if (r < 0)
                return key_message(ret_message, r, "cannot set up signing with the TPM key");
        return 0;
}
