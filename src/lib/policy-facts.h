/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Gathering the facts policy_decide() judges (policy.h), shared by the daemon (socket SIGN,
 * watcher, SCAN) and the CLI (sign, dkms-sign-file, dkms-check). Reads files; no logging. */

#include <openssl/x509.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "module-file.h"
#include "policy.h"

/* The names a DKMS package builds, read from its dkms.conf without running it: the values of
 * BUILT_MODULE_NAME[i]= and DEST_MODULE_NAME[i]= (PACKAGE_NAME= when there is neither). Values
 * with shell expansions ($, `) are skipped: what they name cannot be known without running the
 * file. The file must be root-owned and not group- or world-writable (-EPERM).
 * Returns 1 when 'module_name' (compared as policy_normalize_name() does) is among them. */
int dkms_conf_builds(const char *dkms_conf_path, const char *module_name);

/* DKMS provenance of a path (see enum policy_dkms_place): where it is, which package it
 * belongs to (new strings, or NULL), and whether that package's dkms.conf builds module_name. */
struct policy_dkms_info {
        enum policy_dkms_place place;
        char *package, *version;
        bool registered;
};
int policy_dkms_lookup(const char *dkms_tree, const char *path, const char *module_name, const char *release,
                       struct policy_dkms_info *ret);
void policy_dkms_info_done(struct policy_dkms_info *i);

/* The certificate's dates, fingerprint, serial and usages. */
int policy_cert_facts(X509 *cert, struct policy_cert *ret);

/* Who signed the module: ours (valid or stale), a trusted key, another, or nobody. 'trusted'
 * may be NULL or empty. */
int policy_signature_state(const struct module_file *m, X509 *ours, STACK_OF(X509) *trusted,
                           enum policy_signature *ret);

/* Whether the kernel release is installed for a module at 'path': under ROOT/lib/modules when
 * the path lies in such a tree (an image or chroot is judged by its own kernels), else
 * /lib/modules/R, or with a sysroot (modsignctl sign --sysroot) SYSROOT/lib/modules/R,
 * SYSROOT/boot/config-R or SYSROOT/boot/vmlinuz-R. */
bool policy_kernel_installed(const char *path, const char *sysroot, const char *release);

/* What the caller knows of a request. */
struct policy_request {
        enum policy_requester requester;
        struct module_file *m;           /* NULL: it is not a module; its digest is remembered */
        const char *path;                /* the module's path, or NULL (an fd from a client) */
        int dir_fd;                      /* the directory holding it, or < 0 when unknown */
        const char *file_name;           /* a name for it when there is no path (a client's NAME) */
        const char *release;             /* the kernel release asked for, or NULL: its vermagic */
        const char *sysroot;             /* for kernel lookups, or NULL */
        const char *hash;                /* requested hash, or NULL */
        bool allow_weak_hash, replace_foreign;
        uid_t requester_uid;             /* 0, or the CLI's user (see struct policy_facts) */
        bool dkms_origin;                /* the shim's ORIGIN=dkms */
        const char *dkms_path;           /* the build path it gave (the caller checked that it is the same file) */
};

/* The configuration-side inputs. */
struct policy_env {
        const struct policy *policy;
        const char *dkms_tree;
        const char *state_dir;           /* approvals (Mode=approve); NULL: none */
        X509 *our_cert;                  /* the signing certificate */
        STACK_OF(X509) *trusted;         /* TrustedCertificates= */
        const struct policy_cert *cert;  /* policy_cert_facts(our_cert), or NULL */
        /* The running kernel's trusted keyrings (keyring.h): a module signed by one of their
         * keys counts as POLICY_SIG_TRUSTED too. NULL: not consulted (tests of other rules). */
        const char *proc_keys;           /* /proc/keys, or KERNEL_PROC_KEYS_ENV's file */
        const char *keyring_dir;         /* NULL: keyctl; else KERNEL_KEYRING_DIR_ENV's directory */
};

/* env's proc_keys and keyring_dir as the CLI and the daemon fill them: the environment's
 * stand-ins (keyring.h), else /proc/keys and the kernel's keyrings. */
void policy_env_kernel_keys(const char **ret_proc_keys, const char **ret_keyring_dir);

/* Whether the outermost signature of m (which is not ours) was made by a key of the running
 * kernel's trusted keyrings (kernel_signer_trust()): *ret POLICY_SIG_TRUSTED and *ret_why a
 * new string saying which key and how it matched, or POLICY_SIG_OTHER and NULL. A signature
 * by SKID (key-id mode) matches a key's KEYID; one by issuer and serial number can only be
 * matched by the issuer's name against a key's subject (/proc/keys shows no serials): such a
 * match counts as trusted, failing closed. When the keys cannot be read, fail_closed says
 * which answer to give (TRUSTED, with the error in *ret_why). */
int policy_kernel_signature(const struct module_file *m, const char *proc_keys, const char *keyring_dir,
                            bool fail_closed, enum policy_signature *ret, char **ret_why);

/* The facts, and the strings they point to. */
struct policy_gathered {
        struct policy_facts facts;
        char *module_name, *release;
        char sha256[65];
        struct policy_dkms_info dkms;
        char *signature_trust;           /* facts.signature_trust */
};

int policy_gather(const struct policy_env *env, const struct policy_request *req, struct policy_gathered *ret);
void policy_gathered_done(struct policy_gathered *g);

/* Loads TrustedCertificates= into a new stack (empty when none is configured). On failure
 * *ret_error names the file. */
int policy_load_trusted(const struct config *c, STACK_OF(X509) **ret, char **ret_error);
