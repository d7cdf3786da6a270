/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Making a new module signing key and its self-signed X.509 certificate.
 *
 * The certificate carries what the kernel's x509 parser, shim's MokManager and mokutil
 * expect of a module signing certificate (the kernel's own certs/default_x509.genkey, plus
 * shim's "module signing only" usage): version 3, a random positive 16-byte serial,
 * basicConstraints critical CA:FALSE, keyUsage critical digitalSignature, extendedKeyUsage
 * codeSigning and 1.3.6.1.4.1.2312.16.1.2, subjectKeyIdentifier (SHA-1 of the public key, as
 * the kernel's sig_key shows it) and authorityKeyIdentifier (the same key id: self-signed). */

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>

enum keygen_type {
        KEYGEN_RSA,
        KEYGEN_EC,
};

/* RSA sizes the kernel verifies; 4096 is the kernel's own default (certs/default_x509.genkey). */
#define KEYGEN_RSA_DEFAULT_BITS 4096U
#define KEYGEN_EC_DEFAULT_CURVE "P-256"
#define KEYGEN_DEFAULT_DAYS 3650U
#define KEYGEN_MAX_DAYS 36500U

/* shim: a certificate with this extended key usage verifies kernel modules only, never a
 * boot loader or a kernel that shim would start. */
#define KEYGEN_OID_MODULE_SIGNING_ONLY "1.3.6.1.4.1.2312.16.1.2"

/* "rsa" or "ec" (case-insensitive). -EINVAL otherwise. */
int keygen_type_from_string(const char *s, enum keygen_type *ret);
const char *keygen_type_to_string(enum keygen_type t);

/* true for 2048, 3072 and 4096. */
bool keygen_rsa_bits_valid(unsigned bits);

/* Accepts p256, P-256, prime256v1, secp256r1 and the same for P-384; *ret gets the OpenSSL
 * group name ("P-256" or "P-384"). -EINVAL otherwise. */
int keygen_curve_from_string(const char *s, const char **ret);

/* A new key pair. bits is used for RSA (must be valid), curve for EC (an OpenSSL group name
 * as keygen_curve_from_string() returns it). */
int keygen_generate_key(enum keygen_type type, unsigned bits, const char *curve, EVP_PKEY **ret);

/* A self-signed certificate for 'key', subject and issuer "CN=common_name", valid from now
 * for 'days' days (1..KEYGEN_MAX_DAYS), signed with SHA-256 (SHA-384 for a P-384 key). */
int keygen_self_signed_cert(EVP_PKEY *key, const char *common_name, unsigned days, X509 **ret);

/* Encodings of what keygen writes, NUL-terminated, in OPENSSL_malloc() memory: the private
 * key as unencrypted PKCS#8 PEM (free it with OPENSSL_clear_free(), which wipes it), the
 * certificate as PEM and as DER (OPENSSL_free()). */
int keygen_key_to_pem(EVP_PKEY *key, char **ret, size_t *ret_len);
int keygen_cert_to_pem(X509 *cert, char **ret, size_t *ret_len);
int keygen_cert_to_der(X509 *cert, unsigned char **ret, size_t *ret_len);

/* Makes a key pair inside the PKCS#11 token a pkcs11: URI names (token=, and object= the new
 * key's label; id= optional, else a random 8-byte id): C_GenerateKeyPair with the private key
 * CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, CKA_SIGN and CKA_EXTRACTABLE false, so it never leaves
 * the token. 'pin' is the user PIN (required). -EEXIST: a private key with that label or id is
 * there already; -EACCES: wrong PIN (never retried); -ENODEV: no such token; -EOPNOTSUPP: the
 * token cannot make that key type, or support is not built in. *ret_message explains. */
int keygen_pkcs11_generate(const char *uri, const char *pin, enum keygen_type type, unsigned bits, const char *curve,
                           char **ret_message);
