/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Reading and checking a module's PKCS#7 signature the way the kernel does: the signer is
 * looked up among trusted certificates by issuer and serial number or by subjectKeyIdentifier,
 * the digest is taken over the bytes before the signature, and neither a chain nor the
 * certificate's validity dates are checked (the kernel checks neither for module keys). */

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

struct sig_details {
        unsigned n_signers;
        char *signer;   /* issuer's common name, what modinfo shows as "signer"; NULL in key-id mode */
        char *issuer;   /* the issuer's whole name, RFC 2253 */
        char *issuer_kernel; /* the issuer as the kernel names keys (keyring.h kernel_name_of()) */
        char *serial;   /* hex, colon-separated like modinfo's sig_key; NULL in key-id mode */
        char *key_id;   /* hex subjectKeyIdentifier in key-id mode, else NULL */
        char *hash;     /* "sha256", ... as the kernel names it */
        char *key_algo; /* "rsa", "ecdsa", or the OID's short name */
};

/* -EBADMSG when the blob is not a CMS SignedData with at least one signer. */
int sig_describe(const uint8_t *der, size_t len, struct sig_details *ret);
void sig_details_done(struct sig_details *d);

struct verify_ctx;

int verify_begin(const uint8_t *der, size_t len, struct verify_ctx **ret);
int verify_update(struct verify_ctx *c, const void *buf, size_t len);
/* Frees the context. 0: every signer is trusted and its signature over the data holds, and
 * *ret_signer (optional, a new reference) is the matching certificate. -ENOKEY: no trusted
 * certificate matches a signer. -EKEYREJECTED: digest or signature mismatch (tampered).
 * -EBADMSG: malformed. */
int verify_finish(struct verify_ctx *c, STACK_OF(X509) *trusted, X509 **ret_signer);
struct verify_ctx *verify_ctx_free(struct verify_ctx *c);
