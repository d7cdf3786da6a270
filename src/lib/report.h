/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The pieces of `modsignctl report` that are not output: what state an installed module's
 * signature is in, which of our signatures the audit log knows, the out-of-tree trees of one
 * kernel, and the hygiene ("debt") of a signing certificate.
 *
 * States of a module (exactly one each; "escaped" is reported beside them, see below):
 *   signed_ours    its signature verifies with one of our certificates (the signing key's)
 *   signed_other   it verifies with another trusted certificate (--trusted: the distribution's)
 *   untrusted      signed, but by a key none of those certificates matches
 *   unsigned       no signature
 *   bad            the signature is malformed, or does not match the module (changed after
 *                  signing); a malformed trailer counts here too
 *   revoked        signed by a revoked or blocklisted key: the certificate's SHA-256
 *                  fingerprint, its serial number or its subjectKeyIdentifier is listed
 * An escape is a module in state signed_ours whose SHA-256 (of the file, or for a compressed
 * module of the file or of its decompressed contents) is the sha256_after of no "signed" or
 * "resigned" record of the audit log: our key signed it, and the policy gate did not. */

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "module-file.h"

enum module_state {
        MODULE_STATE_SIGNED_OURS,
        MODULE_STATE_SIGNED_OTHER,
        MODULE_STATE_UNTRUSTED,
        MODULE_STATE_UNSIGNED,
        MODULE_STATE_BAD,
        MODULE_STATE_REVOKED,
        _MODULE_STATE_MAX,
};

/* "signed_ours", ... (the names of the JSON members and of the Prometheus label). */
const char *module_state_to_string(enum module_state s);

/* The directories below /lib/modules/KVER that hold out-of-tree modules. */
extern const char *const report_out_of_tree_dirs[];
extern const size_t report_out_of_tree_dirs_n;

/* --- lists of key identifiers (revoked, blocklisted) ------------------------------------------ */

/* Hex identifiers, normalised: colons, spaces and a leading "0x" dropped, lowercase, leading
 * zeros dropped (serial numbers are written with and without them). */
struct hexid_set {
        char **items;
        size_t n;
};

/* The normalised form of one identifier; -EINVAL when it is not hex. */
int hexid_normalize(const char *s, char **ret);
/* Parses text: one identifier a line (a SHA-256 fingerprint, a serial number, or a
 * subjectKeyIdentifier, in hex, with or without colons); '#' starts a comment, blank lines
 * are skipped. -EINVAL with *ret_line (1-based) on a line that is not hex. Adds to *s. */
int hexid_set_parse(const char *text, struct hexid_set *s, unsigned *ret_line);
int hexid_set_load_file(const char *path, struct hexid_set *s, unsigned *ret_line);
bool hexid_set_contains(const struct hexid_set *s, const char *hex);
void hexid_set_done(struct hexid_set *s);

/* --- which signatures the audit log records -------------------------------------------------- */

struct audit_digests {
        char (*items)[65];
        size_t n;
};

/* Collects the sha256_after of every "signed" and "resigned" record of the log open as fd
 * (from its start). Lines that are not records are skipped: `modsignctl audit verify` is the
 * check of the log itself. */
int audit_digests_load_fd(int fd, struct audit_digests *ret);
int audit_digests_add(struct audit_digests *d, const char *sha256_hex);
/* Sorts; call once after the last add and before any lookup. */
void audit_digests_seal(struct audit_digests *d);
bool audit_digests_contains(const struct audit_digests *d, const char *sha256_hex);
void audit_digests_done(struct audit_digests *d);

/* --- one module ----------------------------------------------------------------------------- */

struct module_trust {
        STACK_OF(X509) *ours;            /* our certificates */
        STACK_OF(X509) *others;          /* other trusted certificates; may be NULL */
        const struct hexid_set *revoked; /* may be NULL */
        const struct hexid_set *blocked; /* may be NULL */
};

struct module_verdict {
        enum module_state state;
        bool escaped;
        char sha256[65];          /* of the file */
        char sha256_content[65];  /* of the decompressed module; "" when not compressed */
        char *signer;             /* the signer's CN, or the signature's key id; may be NULL */
        const char *why;          /* static: for bad and revoked, what was found */
};

/* Classifies an open module. 'audit' may be NULL (then nothing is an escape). */
int module_classify(const struct module_file *m, const struct module_trust *t, const struct audit_digests *audit,
                    struct module_verdict *ret);
void module_verdict_done(struct module_verdict *v);

/* A module's SHA-256 in the audit log? Either the file's or its decompressed contents'. */
bool audit_digests_match(const struct audit_digests *d, const char *sha256, const char *sha256_content);

/* --- one kernel ------------------------------------------------------------------------------ */

struct kernel_report {
        char *release;
        unsigned total;                     /* out-of-tree modules */
        unsigned n[_MODULE_STATE_MAX];
        unsigned escaped;
        unsigned covered;                   /* signed_ours with an audit record */
        unsigned invalid;                   /* files named *.ko* that are not modules, or unreadable */
};

/* Called for each module of a kernel scanned: its path relative to the kernel's directory
 * (for example "updates/dkms/zfs.ko.xz"), and either a verdict or, when the file cannot be
 * classified, error < 0 with why (static, may be NULL). */
typedef void (*report_module_fn)(const char *kernel, const char *relpath, const struct module_verdict *v, int error,
                                 const char *why, void *userdata);

/* Scans modules_dir/KVER/{updates,extra,misc} recursively (symlinks are not followed; files
 * named *.ko, *.ko.xz, *.ko.zst, *.ko.gz are modules). Fills *ret. */
int report_scan_kernel(int modules_dir_fd, const char *release, const struct module_trust *t,
                       const struct audit_digests *audit, report_module_fn fn, void *userdata, struct kernel_report *ret);
void kernel_report_done(struct kernel_report *k);

/* The kernel releases under modules_dir (its subdirectories), sorted. */
int report_list_kernels(int modules_dir_fd, char ***ret, size_t *ret_n);

/* --- certificate hygiene --------------------------------------------------------------------- */

struct debt_item {
        char *id;        /* stable: "cert-expired", "cert-expiring", "weak-key", "weak-signature-hash",
                          * "key-usage", "extended-key-usage", "cert-revoked", "not-trusted-by-kernel",
                          * "key-file-owner", "key-file-mode", "key-file-missing" */
        char *subject;   /* the file it is about */
        char *message;
        char *fix;       /* a command or action */
};

struct debt_list {
        struct debt_item *items;
        size_t n;
};

int debt_add(struct debt_list *l, const char *id, const char *subject, const char *message, const char *fix);
void debt_list_done(struct debt_list *l);

struct cert_facts {
        char fingerprint[65];
        char *subject;            /* OpenSSL's one-line form: "/O=.../CN=..." */
        char *serial;             /* hex, lowercase, no colons */
        char *key_type;           /* "rsa", "ec", or OpenSSL's name */
        int key_bits;
        char *signature_hash;     /* "sha256", "sha1", ...; NULL when none is known (ed25519) */
        time_t not_after;
        int64_t expiry_seconds;   /* not_after - now; negative when expired */
        bool has_key_usage, key_usage_ok;
        bool has_ext_key_usage, ext_key_usage_ok;
};

/* The minimum sizes below which a key counts as weak. */
#define REPORT_RSA_MIN_BITS 2048
#define REPORT_EC_MIN_BITS 256

/* Reads the facts of cert at 'now' and adds its debt (expired, expiring within warn_days,
 * a weak key, a weak certificate signature hash, a key usage that does not allow
 * digitalSignature, an extended key usage without codeSigning, a fingerprint, serial or key id
 * that 'revoked' or 'blocked' lists) to 'debt', as about 'path'. */
int cert_check_hygiene(X509 *cert, const char *path, time_t now, unsigned warn_days, const struct hexid_set *revoked,
                       const struct hexid_set *blocked, struct cert_facts *ret, struct debt_list *debt);
void cert_facts_done(struct cert_facts *f);
