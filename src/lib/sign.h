/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The module signature: a detached PKCS#7/CMS SignedData made exactly the way the kernel's
 * scripts/sign-file makes it (no certificates, no signed attributes, no S/MIME capabilities,
 * binary), so that for a deterministic key type (RSA PKCS#1 v1.5) our bytes equal its bytes.
 * The data is fed in pieces: a caller can hash a module while it copies it, reading it once. */

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct signer;
struct sign_ctx;

enum hash_strength {
        HASH_STRONG, /* sha256, sha384, sha512 */
        HASH_WEAK,   /* sha1, sha224: only when explicitly allowed */
        HASH_UNKNOWN,
};

/* Classifies a hash name as the kernel spells it (CONFIG_MODULE_SIG_HASH). */
enum hash_strength hash_classify(const char *name);

/* Takes references to key and cert. Fails with -EKEYREJECTED when the key does not belong to
 * the certificate, and -ENOKEY when key-id mode is asked for but the certificate has no
 * subjectKeyIdentifier. */
int signer_new(EVP_PKEY *key, X509 *cert, bool use_keyid, struct signer **ret);
struct signer *signer_free(struct signer *s);
X509 *signer_get_cert(const struct signer *s);
bool signer_uses_keyid(const struct signer *s);

/* Starts a signature over data still to come, with the named digest (sha256, ...). */
int sign_begin(const struct signer *s, const char *hash, struct sign_ctx **ret);
int sign_update(struct sign_ctx *c, const void *buf, size_t len);
/* Takes the digest state of data hashed elsewhere (the same algorithm, fed nothing else yet)
 * instead of the data itself: a module hashed once for the policy gate is not read again to
 * be signed. -EOPNOTSUPP when the state is of another digest; the context is unchanged then. */
int sign_resume(struct sign_ctx *c, const EVP_MD_CTX *state);
/* Produces the DER PKCS#7 blob (without the module trailer) and frees the context. */
int sign_finish(struct sign_ctx *c, uint8_t **ret_der, size_t *ret_len);
struct sign_ctx *sign_ctx_free(struct sign_ctx *c);
