/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io-util.h"
#include "kconfig.h"
#include "key-backend.h"
#include "key.h"
#include "macro.h"
#include "openssl-util.h"
#include "signing-key.h"

static int set_error(char **ret_error, int r, const char *path, const char *why) {
        if (ret_error && asprintf(ret_error, "%s: %s", path, why ? why : strerror(-r)) < 0)
                *ret_error = NULL;
        return r;
}

int signing_key_load(const struct config *c, struct signing_key **ret, char **ret_error) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(secret_freep) char *pin = NULL;
        _cleanup_free_ char *msg = NULL;
        struct signing_key *k;
        int r;

        if (ret_error)
                *ret_error = NULL;

        /* PinFile= is a root-only file or credential:NAME: the PIN of a token, the auth value
         * of a TPM key or the passphrase of an encrypted PEM. */
        if (c->pin_file) {
                r = key_read_secret(c->pin_file, &pin, &msg);
                if (r < 0)
                        return set_error(ret_error, r, c->pin_file, msg);
        }
        /* Any key reference (key-backend.h); the key, and a token's logged-in session, stay
         * loaded as long as this signing_key lives. */
        r = key_load(c->private_key, &(struct key_options) { .pin = pin }, &pkey, &msg);
        if (r < 0)
                return set_error(ret_error, r, c->private_key, msg);

        r = cert_load_file(c->certificate, &cert);
        if (r < 0)
                return set_error(ret_error, r, c->certificate,
                                 r == -EBADMSG ? "not a PEM or DER X.509 certificate" : NULL);

        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->n_ref = 1;
        k->hash = strdup(c->hash);
        if (!k->hash) {
                free(k);
                return -ENOMEM;
        }
        r = signer_new(pkey, cert, c->key_id, &k->signer);
        if (r >= 0)
                r = cert_fingerprint_sha256(cert, k->fingerprint);
        if (r < 0) {
                signing_key_unref(k);
                return set_error(ret_error, r, c->certificate,
                                 r == -EKEYREJECTED ? "does not belong to the private key" :
                                 r == -ENOKEY ? "KeyId=yes needs a certificate with a subjectKeyIdentifier" : NULL);
        }
        *ret = k;
        return 0;
}

struct signing_key *signing_key_ref(struct signing_key *k) {
        __atomic_add_fetch(&k->n_ref, 1, __ATOMIC_SEQ_CST);
        return k;
}

void signing_key_unref(struct signing_key *k) {
        if (!k || __atomic_sub_fetch(&k->n_ref, 1, __ATOMIC_SEQ_CST) > 0)
                return;
        signer_free(k->signer);
        free(k->hash);
        free(k);
}

int signing_key_pick_hash(const struct signing_key *k, const char *requested, const char *release, char **ret) {
        const char *want = requested && *requested ? requested : k->hash;
        _cleanup_free_ char *found = NULL;
        int r;

        if (!streq(want, "auto")) {
                if (hash_classify(want) != HASH_STRONG)
                        return -EINVAL;
                *ret = strdup(want);
                return *ret ? 0 : -ENOMEM;
        }
        if (release) {
                r = kernel_module_sig_hash("/", release, &found, NULL);
                if (r >= 0 && hash_classify(found) == HASH_STRONG) {
                        *ret = TAKE_PTR(found);
                        return 0;
                }
        }
        *ret = strdup("sha512"); /* dkms' default when the kernel does not say */
        return *ret ? 0 : -ENOMEM;
}
