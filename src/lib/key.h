/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Loading signing keys and certificates.
 *
 * A key file must be a regular file reached without following a symlink. Its ownership and
 * mode are checked by key_file_check_access(), which the caller decides how to enforce. */

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <sys/stat.h>

/* Loads a private key (PEM or DER, RSA or EC) from an open fd. 'passphrase' decrypts an
 * encrypted PEM and may be NULL: then an encrypted key fails with -ENOKEY.
 * -EBADMSG: not a key. *ret_why (optional) gets a static explanation on failure. */
int key_load_fd(int fd, const char *passphrase, EVP_PKEY **ret, const char **ret_why);

/* Opens a key file path with O_NOFOLLOW; -ELOOP for a symlink, -EINVAL for a non-regular
 * file. The returned fd is O_CLOEXEC. */
int key_file_open(const char *path, int *ret_fd, struct stat *ret_st);

/* 0 when the key file is owned by the effective user and not accessible to group or others;
 * otherwise -EPERM with *ret_why explaining what is wrong. */
int key_file_check_access(const struct stat *st, const char **ret_why);

/* Loads one certificate (PEM or DER) from a file. */
int cert_load_file(const char *path, X509 **ret);

/* Adds every certificate found at 'path' to 'certs': a DER file, a PEM file or bundle, or a
 * directory of such files (not recursive; symlinks inside a directory are skipped). Returns
 * the number added, or a negative errno; -ENOENT when a file holds no certificate at all. */
int certs_load_path(const char *path, STACK_OF(X509) *certs);

/* The SHA-256 fingerprint of a certificate, as lowercase hex (65 bytes with the NUL). */
int cert_fingerprint_sha256(X509 *cert, char ret[65]);
