/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Key backends behind one interface. A key reference string picks the backend:
 *
 *   /path/to/key.pem          a PEM or DER key file (file backend, key-file.c)
 *   credential:NAME           the file $CREDENTIALS_DIRECTORY/NAME (systemd LoadCredential=)
 *   pkcs11:token=T;object=O   an RFC 7512 URI: a key on a PKCS#11 token (key-pkcs11.c, libp11)
 *   handle:0x81000001         a persistent TPM2 key (key-tpm2.c, tpm2-openssl provider)
 *   object:/path/key.tss2     a TPM2 key blob (TSS2 PRIVATE KEY PEM), tpm2-openssl provider
 *
 * Whatever the backend, the result is an EVP_PKEY the CMS code (sign.h) signs with; a
 * token's or TPM's key never leaves the device. A backend whose library was missing at build
 * time fails with -EOPNOTSUPP and says so. Secrets (PINs, passphrases) come from files or
 * systemd credentials, never from the command line or the environment (sign-file's
 * KBUILD_SIGN_PIN, read by its caller, is the one exception). */

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

enum key_backend {
        KEY_BACKEND_FILE,
        KEY_BACKEND_PKCS11,
        KEY_BACKEND_TPM2,
};

struct key_ref {
        enum key_backend backend;
        char *target; /* FILE: the path (credential: resolved); PKCS11: the URI; TPM2: the store URI */
        bool credential;
};

/* Which backend a reference selects, and its target. "credential:NAME" is resolved against
 * $CREDENTIALS_DIRECTORY (-ENOMEDIUM when unset; -EINVAL for an empty NAME or one with '/').
 * -EINVAL also for an empty reference and a "handle:" that is not a hex TPM2 handle. */
int key_ref_parse(const char *ref, struct key_ref *ret, const char **ret_why);
void key_ref_done(struct key_ref *r);
const char *key_backend_to_string(enum key_backend b);

/* An RFC 7512 PKCS#11 URI, the attributes we use, percent-decoded. */
struct pkcs11_uri {
        char *token, *manufacturer, *serial, *model;
        char *object;           /* the key's CKA_LABEL */
        uint8_t *id;            /* the key's CKA_ID */
        size_t id_len;
        char *type;             /* "private" or NULL; any other is refused */
        char *module_path;      /* query: the PKCS#11 module to load */
        char *pin_source;       /* query: a file holding the PIN */
        bool has_pin_value;     /* query: pin-value= was given (we refuse it) */
        bool has_slot_id;
        unsigned long slot_id;
};

/* Parses a pkcs11: URI. -EINVAL with *ret_why on a syntax error or an attribute given twice;
 * unknown attributes are ignored, as RFC 7512 asks. */
int pkcs11_uri_parse(const char *uri, struct pkcs11_uri *ret, const char **ret_why);
void pkcs11_uri_done(struct pkcs11_uri *u);

struct key_options {
        /* The PIN or passphrase from the caller's source (PinFile=, a credential, sign-file's
         * KBUILD_SIGN_PIN), or NULL. A pkcs11: URI's pin-source= wins over it. */
        const char *pin;
        /* Key files: a wrong owner or mode is only reported in *ret_message (sign-file's
         * compatibility); otherwise it is refused. A symlink is always refused. */
        bool lax_file_access;
};

/* Loads the key a reference names. On failure *ret_message (optional) gets a newly allocated
 * explanation, without the reference in front; on success it may get a warning (lax file
 * access) or NULL. Errors: -EPERM (key file owner/mode), -ELOOP (symlink), -ENOKEY (a PIN or
 * passphrase is needed, or no such key on the token), -EKEYREJECTED (wrong passphrase),
 * -EACCES (wrong PIN: never retried), -ENODEV (no such token or TPM not reachable),
 * -EOPNOTSUPP (backend not built in, or not installed). */
int key_load(const char *ref, const struct key_options *o, EVP_PKEY **ret, char **ret_message);

/* After an OpenSSL call that used a loaded key failed: -ENODEV when the thread's OpenSSL error
 * queue says the key's device is gone (a PKCS#11 token removed, its session closed, p11-kit's
 * server gone: CKR_DEVICE_ERROR, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT,
 * CKR_SESSION_HANDLE_INVALID, ...), else 'fallback'. Such a key stays unusable even when the
 * device comes back: load it again. Empties the queue. */
int key_openssl_error(int fallback);

/* Reads a secret (PIN, passphrase) from a file path or "credential:NAME", under the same
 * rule as key files (root-owned, no group/other access, no symlink). Its first line, without
 * the newline. */
int key_read_secret(const char *ref, char **ret, char **ret_message);
/* Wipes and frees a secret. */
void secret_free(char *s);
static inline void secret_freep(char **s) {
        secret_free(*s);
}

/* Backends, for key.c's dispatcher only. */
int key_file_load(const char *path, const struct key_options *o, EVP_PKEY **ret, char **ret_message);
int key_pkcs11_load(const char *uri, const struct key_options *o, EVP_PKEY **ret, char **ret_message);
int key_tpm2_load(const char *uri, const struct key_options *o, EVP_PKEY **ret, char **ret_message);

/* For the backends: sets *ret_message (when asked for) to the formatted text and returns r. */
int key_message(char **ret_message, int r, const char *fmt, ...) _printf_(3, 4);
