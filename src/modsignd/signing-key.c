/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io-util.h"
#include "kconfig.h"
#include "key.h"
#include "macro.h"
#include "openssl-util.h"
#include "signing-key.h"

#define PASSPHRASE_MAX 1024

static int set_error(char **ret_error, int r, const char *path, const char *why) {
        if (ret_error && asprintf(ret_error, "%s: %s", path, why ? why : strerror(-r)) < 0)
                *ret_error = NULL;
        return r;
}

/* "credential:NAME" names a file systemd placed in $CREDENTIALS_DIRECTORY for us. */
static int resolve_key_path(const char *ref, char **ret) {
        const char *dir;

        if (strncmp(ref, "credential:", 11) != 0) {
                *ret = strdup(ref);
                return *ret ? 0 : -ENOMEM;
        }
        dir = getenv("CREDENTIALS_DIRECTORY");
        if (!dir || !*dir)
                return -ENOMEDIUM;
        if (!ref[11] || strchr(ref + 11, '/'))
                return -EINVAL;
        return asprintf(ret, "%s/%s", dir, ref + 11) < 0 ? -ENOMEM : 0;
}

static int read_passphrase(const char *ref, char **ret, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *why = NULL;
        struct stat st;
        size_t len;
        int r;

        r = resolve_key_path(ref, &path);
        if (r < 0)
                return set_error(ret_error, r, ref, r == -ENOMEDIUM ? "no $CREDENTIALS_DIRECTORY (LoadCredential= missing?)" : NULL);
        r = key_file_open(path, &fd, &st);
        if (r < 0)
                return set_error(ret_error, r, path, r == -ELOOP ? "is a symlink; refusing to follow it" : NULL);
        r = key_file_check_access(&st, &why);
        if (r < 0)
                return set_error(ret_error, r, path, why);
        r = read_full_fd(fd, PASSPHRASE_MAX, ret, &len);
        if (r < 0)
                return set_error(ret_error, r, path, r == -EFBIG ? "passphrase file too large" : NULL);
        /* One line: a trailing newline is not part of the passphrase. */
        (*ret)[strcspn(*ret, "\n")] = '\0';
        return 0;
}

int signing_key_load(const struct config *c, struct signing_key **ret, char **ret_error) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_free_ char *path = NULL, *passphrase = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct signing_key *k;
        const char *why = NULL;
        struct stat st;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (strncmp(c->private_key, "pkcs11:", 7) == 0 || strncmp(c->private_key, "handle:", 7) == 0 ||
            strncmp(c->private_key, "object:", 7) == 0)
                return set_error(ret_error, -EOPNOTSUPP, c->private_key,
                                 "PKCS#11 and TPM2 keys are not supported by this version yet");

        r = resolve_key_path(c->private_key, &path);
        if (r < 0)
                return set_error(ret_error, r, c->private_key,
                                 r == -ENOMEDIUM ? "no $CREDENTIALS_DIRECTORY (LoadCredential= missing?)" : NULL);
        r = key_file_open(path, &fd, &st);
        if (r < 0)
                return set_error(ret_error, r, path,
                                 r == -ELOOP ? "is a symlink; refusing to follow it" :
                                 r == -EINVAL ? "not a regular file" : NULL);
        r = key_file_check_access(&st, &why);
        if (r < 0)
                return set_error(ret_error, r, path, why);
        if (c->pin_file) {
                r = read_passphrase(c->pin_file, &passphrase, ret_error);
                if (r < 0)
                        return r;
        }
        r = key_load_fd(fd, passphrase, &pkey, &why);
        if (passphrase)
                OPENSSL_cleanse(passphrase, strlen(passphrase));
        if (r < 0)
                return set_error(ret_error, r, path, why);

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
