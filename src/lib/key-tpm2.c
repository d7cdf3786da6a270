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

#include <errno.h>
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

_printf_(3, 4) static int message(char **ret_message, int r, const char *fmt, ...) {
        va_list ap;

        if (!ret_message)
                return r;
        va_start(ap, fmt);
        if (vasprintf(ret_message, fmt, ap) < 0)
                *ret_message = NULL;
        va_end(ap);
        return r;
}

static CRYPTO_ONCE provider_once = CRYPTO_ONCE_STATIC_INIT;
static OSSL_PROVIDER *provider_tpm2;

static void provider_init(void) {
        /* Loading any provider stops OpenSSL from loading the default one by itself. */
        if (!OSSL_PROVIDER_load(NULL, "default"))
                return;
        provider_tpm2 = OSSL_PROVIDER_load(NULL, "tpm2");
        /* Implementations of the default provider win where both have one (digests). */
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

DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_STORE_CTX *, OSSL_STORE_close);
DEFINE_TRIVIAL_CLEANUP_FUNC(UI_METHOD *, UI_destroy_method);

int key_tpm2_load(const char *uri, const struct key_options *o, EVP_PKEY **ret, char **ret_message) {
        _cleanup_(UI_destroy_methodp) UI_METHOD *ui = NULL;
        _cleanup_(OSSL_STORE_closep) OSSL_STORE_CTX *store = NULL;
        EVP_PKEY *key = NULL;

        if (ret_message)
                *ret_message = NULL;
        if (!CRYPTO_THREAD_run_once(&provider_once, provider_init))
                return -ENOMEM;
        if (!provider_tpm2)
                return message(ret_message, -EOPNOTSUPP,
                               "the tpm2 OpenSSL provider cannot be loaded (Debian package tpm2-openssl)");

        ui = UI_UTIL_wrap_read_pem_callback(pass_cb, 0);
        if (!ui)
                return -ENOMEM;
        store = OSSL_STORE_open_ex(uri, NULL, "provider=tpm2", ui, (void *) o->pin, NULL, NULL, NULL);
        if (!store) {
                ERR_clear_error();
                return message(ret_message, -ENODEV,
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
                return message(ret_message, -ENOKEY, "no private key at %s in the TPM%s", uri,
                               o->pin ? "" : " (if it has an auth value, give it with PinFile=)");
        if (!EVP_PKEY_is_a(key, "RSA") && !EVP_PKEY_is_a(key, "EC")) {
                EVP_PKEY_free(key);
                return message(ret_message, -EOPNOTSUPP, "the TPM key is neither RSA nor EC (the kernel verifies no other)");
        }
        *ret = key;
        return 0;
}
