/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The signing gate (DESIGN.md §2): one pure function decides whether a module may be signed,
 * from facts the caller gathered (policy-facts.h) and the [Policy] configuration. Every
 * requester — a SIGN over the socket, the tree watcher and SCAN, modsignctl sign and the DKMS
 * shim signing without the daemon — asks it, and every answer names the rule that decided,
 * for the audit record and the requester.
 *
 * Rules, in the order they are checked (the first that refuses names the refusal):
 *   not-a-module          not an ELF relocatable module
 *   vermagic              no kernel release (no usable vermagic, none given)
 *   kernel-not-installed  built for a kernel release that is not installed (not for
 *                         modsignctl sign, which may sign for an image or another machine)
 *   compressed            a compressed module over the socket (the reply is a trailer to append
 *                         to the uncompressed ELF; the watcher and the CLI sign inside)
 *   hash                  a hash that is not sha256/sha384/sha512 (weak ones only from the CLI
 *                         with --allow-weak-hash)
 *   file-owner            the file is not owned by root
 *   dir-writable          the directory holding it is group- or world-writable
 *   blocklist             its SHA-256 or module name is on the Blocklist= file
 *   deny                  its module name matches a Deny= glob
 *   cert-expired          the signing certificate's notAfter has passed (or notBefore not come)
 *   cert-revoked          the certificate's SHA-256 fingerprint or serial is revoked
 *   cert-usage            the certificate has an extendedKeyUsage without codeSigning, or a
 *                         keyUsage without digitalSignature
 *   signed-by-trusted-key already signed by a key in TrustedCertificates= or in the running
 *                         kernel's trusted keyrings (distro modules; policy-facts.h)
 *   signed-by-another-key already signed by a key that is neither ours nor trusted (the CLI's
 *                         --replace lifts this one)
 *   not-dkms / dkms-unregistered / not-allowlisted / not-approved   the Mode= rule
 *   rate-limit            the token bucket is empty
 * A module that already carries a valid signature of ours passes the mode rule and takes no
 * token: nothing new gets a signature (the signer rewrites it only to fix the container).
 *
 * No logging, no I/O: the decision depends on the facts, the policy and the bucket only. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "conf.h"

enum policy_requester {
        POLICY_REQUESTER_DKMS_SHIM, /* the DKMS sign_file shim (ORIGIN=dkms, or signing directly) */
        POLICY_REQUESTER_SOCKET,    /* any other SIGN request over the socket */
        POLICY_REQUESTER_WATCHER,   /* the tree watcher, or a SCAN */
        POLICY_REQUESTER_CLI,       /* modsignctl sign, in its own process */
        _POLICY_REQUESTER_MAX,
};

const char *policy_requester_to_string(enum policy_requester r);

enum policy_signature {
        POLICY_SIG_NONE,          /* unsigned */
        POLICY_SIG_OURS_VALID,    /* the outermost signature is ours and holds */
        POLICY_SIG_OURS_STALE,    /* ours, but the module changed since (sign again) */
        POLICY_SIG_TRUSTED,       /* verifies against a TrustedCertificates= certificate, or its
                                   * signer is a key of the kernel's trusted keyrings */
        POLICY_SIG_OTHER,         /* another key's (or unreadable) */
};

/* Where a DKMS provenance came from, when there is one. */
enum policy_dkms_place {
        POLICY_DKMS_NONE,         /* not in a DKMS tree */
        POLICY_DKMS_BUILD,        /* DKMSTREE/NAME/VERSION/build/...: only with the shim's ORIGIN=dkms */
        POLICY_DKMS_TREE,         /* DKMSTREE/NAME/VERSION/KVER/ARCH/module/FILE */
        POLICY_DKMS_INSTALLED,    /* .../lib/modules/KVER/updates/dkms/FILE of a package built for KVER */
};

/* What is known of the certificate that would sign. */
struct policy_cert {
        bool known;               /* false: no certificate facts (nothing checked) */
        time_t not_before, not_after;
        char fingerprint[65];     /* SHA-256 of the DER, lowercase hex */
        char serial[128];         /* lowercase hex, no separators, no leading zeros */
        bool has_eku, eku_code_signing;
        bool has_key_usage, key_usage_digital_signature;
};

struct policy_facts {
        enum policy_requester requester;
        const char *module_name;  /* modinfo name=, else the file name without .ko* */
        const char *path;         /* the module's path, when known */
        bool is_module;           /* an ELF relocatable module (module_parse() accepted it) */
        bool compressed;
        const char *release;      /* the kernel release it is for; NULL: none */
        bool kernel_installed;
        const char *hash;         /* the requested hash: NULL or "auto" for the kernel's */
        bool allow_weak_hash;     /* the CLI's --allow-weak-hash */
        bool have_owner;          /* false: ownership unknown (an fd without a path) */
        uid_t file_uid;
        uid_t requester_uid;      /* a file of this uid passes too: the CLI run by a user (not
                                   * root) signs that user's files with that user's key */
        bool have_dir;
        uid_t dir_uid;
        mode_t dir_mode;
        const char *sha256;       /* of the file as found, lowercase hex; NULL unknown */
        enum policy_signature signature;
        const char *signature_trust; /* POLICY_SIG_TRUSTED by the kernel's keyrings: which key,
                                      * how it matched; NULL: by TrustedCertificates= */
        bool replace_foreign;     /* the CLI's --replace */
        /* DKMS provenance (policy-facts.h finds it) */
        bool dkms_origin;         /* the shim said it signs during a DKMS build (ORIGIN=dkms) */
        enum policy_dkms_place dkms_place;
        const char *dkms_package, *dkms_version;
        bool dkms_registered;     /* that package's dkms.conf builds this module name */
        /* approve mode */
        bool approved;            /* the name is in approvals.json */
        struct policy_cert cert;
        time_t now;               /* wall clock, for the certificate's dates */
        uint64_t now_usec;        /* CLOCK_REALTIME, for the rate limit (policy-rate.h: the bucket
                                   * is shared between processes, so a wall clock) */
};

/* The [Policy] configuration in force, with its files read. */
struct policy {
        enum policy_mode mode;
        char **allow; size_t n_allow;   /* name globs */
        char **deny; size_t n_deny;
        char **block_names; size_t n_block_names;  /* Blocklist= lines that are name globs */
        char **block_sha256; size_t n_block_sha256; /* ... and lowercase SHA-256 digests */
        char **revoked; size_t n_revoked;           /* lowercase fingerprints or serials, no ':' */
        unsigned rate_tokens;           /* 0: no rate limit */
        uint64_t rate_interval_usec;
        bool owns_lists;                /* the lists were allocated by policy_load() */
};

/* A token bucket: rate_tokens tokens, refilled evenly over rate_interval_usec. */
struct policy_rate {
        bool started;
        double tokens;
        uint64_t last_usec;
};

struct policy_decision {
        bool allow;
        const char *rule;         /* static; on allow the rule that admitted it */
        char reason[512];         /* human text */
        bool pending;             /* refused by approve mode: record the name as waiting */
};

/* Decides. 'rate' may be NULL (no bucket: no rate limit). A token is taken only when every
 * other rule allows. The daemon and the CLI pass the bucket shared through the state
 * directory (policy-rate.h, policy_decide_shared()). */
void policy_decide(const struct policy *p, const struct policy_facts *f, struct policy_rate *rate,
                   struct policy_decision *ret);

/* The module name as rules compare it: '-' and '_' are the same to the kernel; ".ko*" cut. */
void policy_normalize_name(const char *in, char *out, size_t size);
/* Whether name (normalized) matches glob (normalized the same way). */
bool policy_name_matches(const char *glob, const char *name);

/* Copies [Policy] of c into *ret, reading the files it names (Blocklist=, RevokedCertificates=).
 * On failure *ret_error says which file and line. */
int policy_load(const struct config *c, struct policy *ret, char **ret_error);
void policy_done(struct policy *p);
