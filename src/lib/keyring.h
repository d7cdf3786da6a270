/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the running kernel trusts: its keys as /proc/keys lists them, and the members of its
 * trusted keyrings (keyctl KEYCTL_READ).
 *
 * /proc/keys names no keyring a key is in, so a certificate's key is found there by its
 * description, and its keyrings by reading each trusted keyring. The kernel describes an
 * X.509 key (crypto/asymmetric_keys/x509_public_key.c, asymmetric_type.c) as
 *     "SUBJECT: KEYID: X509.ALGO LAST4 []"
 * where SUBJECT is the CN (or "O: CN"), KEYID the subjectKeyIdentifier in lowercase hex, or
 * the serial number's DER content bytes when the certificate has no SKID. */

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct kernel_key {
        uint32_t serial;
        char *type;          /* as /proc/keys prints it: at most 9 characters ("asymmetri") */
        char *description;   /* the rest of the line */
};

struct kernel_keys {
        struct kernel_key *keys;
        size_t n;
};

/* The keyrings whose keys verify module signatures in the kernels we know
 * (VERIFY_USE_SECONDARY_KEYRING: the built-in keys, the secondary keyring, and .machine,
 * which the secondary links; .platform verifies kexec images, not modules). */
extern const char *const kernel_module_keyrings[];
extern const size_t kernel_module_keyrings_n;

/* The KEYID of a certificate, as the kernel writes it in the key's description. */
int cert_kernel_key_id(X509 *cert, char **ret_hex);

/* Parses the text of /proc/keys. Lines that do not parse are skipped. */
int kernel_keys_parse(FILE *f, struct kernel_keys *ret);
void kernel_keys_done(struct kernel_keys *k);

/* The serial of the keyring named 'name' (-ENOENT when there is none). */
int kernel_keys_find_keyring(const struct kernel_keys *k, const char *name, uint32_t *ret);

/* Whether an asymmetric key's description carries key_id_hex as its KEYID. */
bool kernel_key_has_id(const struct kernel_key *key, const char *key_id_hex);

/* The serials of a keyring's direct members, with keyctl(KEYCTL_READ). */
int keyring_read_members(uint32_t keyring, uint32_t **ret, size_t *ret_n);

/* The same from text: key serials in hex, separated by white space (for tests that stand in
 * for the kernel). -EINVAL on anything else. */
int keyring_parse_members(const char *text, uint32_t **ret, size_t *ret_n);

/* Whether the running kernel verifies module signatures with 'cert' now: its key (found in
 * /proc/keys by its KEYID) is a direct member of one of kernel_module_keyrings. proc_keys is
 * the path of /proc/keys; members_dir is NULL to read the keyrings with keyctl, or a
 * directory with one file per keyring name holding its member serials in hex (tests stand in
 * for the kernel that way, as modsignctl enroll's MODSIGNCTL_KEYRING_DIR does). A keyring
 * that cannot be read counts as not holding the key. */
int kernel_trusts_cert(X509 *cert, const char *proc_keys, const char *members_dir, bool *ret);

/* The same, in detail: whether the key is in the kernel at all, and which of the trusted
 * keyrings (.builtin_trusted_keys, .secondary_trusted_keys, .machine, .platform) hold it. */
struct kernel_cert_trust {
        bool in_kernel;
        bool trusted;               /* in one of kernel_module_keyrings */
        const char *keyrings[4];    /* static strings */
        size_t n_keyrings;
};
int kernel_cert_trust(X509 *cert, const char *proc_keys, const char *members_dir, struct kernel_cert_trust *ret);

/* Tests (and a diagnosis on another machine's keys) move what stands for the kernel: a
 * /proc/keys text, and a directory of keyring members as kernel_trusts_cert() takes it. The
 * CLI (enroll, report, rotate, the signing gate) and the daemon's signing gate read both. */
#define KERNEL_PROC_KEYS_ENV "MODSIGNCTL_PROC_KEYS"
#define KERNEL_KEYRING_DIR_ENV "MODSIGNCTL_KEYRING_DIR"
#define KERNEL_PROC_KEYS_DEFAULT "/proc/keys"

/* An X.509 name in the kernel's form (x509_fabricate_name() in
 * crypto/asymmetric_keys/x509_cert_parser.c), the SUBJECT of a key's description: "O: CN",
 * or the CN alone when it begins with the O (or with the O's first 7 bytes), else the CN, the
 * O or the email address alone, or "" (the last of each attribute counts, as there). */
int kernel_name_of(const X509_NAME *name, char **ret);

/* A module signature's signer, as the kernel looks it up among its keys: by the
 * subjectKeyIdentifier (key-id mode), or by issuer and serial number. */
struct kernel_signer {
        const char *key_id;        /* lowercase hex SKID (key-id mode), or NULL */
        const char *issuer;        /* the issuer, kernel_name_of() form (issuer+serial), or NULL */
};

enum kernel_signer_match {
        KERNEL_SIGNER_UNTRUSTED,   /* no key of the trusted keyrings can be the signer */
        KERNEL_SIGNER_BY_KEY_ID,   /* a trusted key carries the signature's SKID: it is the signer */
        KERNEL_SIGNER_BY_NAME,     /* a trusted key's SUBJECT is the signature's issuer: /proc/keys
                                    * shows no issuer and serial, so it may be the signer */
};

struct kernel_signer_trust {
        enum kernel_signer_match match;
        const char *keyring;       /* static: the trusted keyring that holds that key (or words
                                    * saying that one could not be read) */
        char key[160];             /* the key's description up to its KEYID (may be truncated) */
};

/* Which key of the trusted keyrings (.builtin_trusted_keys, .secondary_trusted_keys,
 * .machine, .platform: every keyring whose keys the kernel trusts for some code) may have
 * made a signature: its key-id match first, else a name match. proc_keys and members_dir as
 * for kernel_trusts_cert(), but failing closed: when a trusted keyring cannot be read, every
 * key of proc_keys counts as possibly in it. -ENOENT, -EACCES...: proc_keys cannot be read. */
int kernel_signer_trust(const struct kernel_signer *s, const char *proc_keys, const char *members_dir,
                        struct kernel_signer_trust *ret);
