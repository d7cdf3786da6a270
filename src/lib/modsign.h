/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The operations on a module file that the CLI and the daemon share: sign, strip, verify.
 * Each reads the module once where it can (hashing while it copies), writes through
 * replace.h, and leaves the file untouched on any failure. */

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "module-file.h"
#include "replace.h"
#include "sign.h"

enum modsign_existing {
        MODSIGN_EXISTING_REFUSE,  /* signed by another key: refuse (-EEXIST) */
        MODSIGN_EXISTING_REPLACE, /* signed by another key: strip, then sign */
};

enum modsign_outcome {
        MODSIGN_SIGNED,     /* a new signature was written */
        MODSIGN_UNCHANGED,  /* already signed by this key with this hash: nothing written */
        MODSIGN_DETACHED,   /* signature made, module not written (sign-file -d) */
};

/* The copy of an unsigned module into its replacement can start before anyone has decided to
 * sign it: modsign_copy_ahead() copies the body on a second thread into a new unnamed file
 * beside the module, while the caller checks it (the policy gate hashes it meanwhile, and the
 * signature then needs no second read: module_file_sha256()). modsign_sign() with .copy_ahead
 * finishes that file; a module that is not signed after all drops it, unseen. Only for an
 * uncompressed, unsigned module large enough to gain (else *ret is NULL, and 0 returned). */
struct modsign_copy_ahead;
int modsign_copy_ahead(struct module_file *m, struct modsign_copy_ahead **ret);
struct modsign_copy_ahead *modsign_copy_ahead_free(struct modsign_copy_ahead *c);
static inline void modsign_copy_ahead_freep(struct modsign_copy_ahead **c) {
        *c = modsign_copy_ahead_free(*c);
}

struct modsign_request {
        const struct signer *signer;     /* NULL when raw_sig is given */
        const char *hash;                /* digest name for signer */
        const uint8_t *raw_sig;          /* a PKCS#7 blob made elsewhere (sign-file -s) */
        size_t raw_sig_len;
        enum modsign_existing existing;
        bool write_module;               /* false: only produce the signature */
        bool always_write;               /* write even when already signed by this key */
        int dest_dir_fd;                 /* with dest_name: write there instead of in place */
        const char *dest_name;
        unsigned threads;                /* compressor threads, 0 = one per CPU */
        struct replace_batch *batch;     /* set: queue the replacement there (commit is the
                                          * caller's, with replace_batch_commit()); the outcome
                                          * MODSIGN_SIGNED then means "written, not yet in place" */
        /* optional: called with the fstat() of the new file once it is written, before it is
         * renamed into place (the daemon's watcher learns to recognise it) */
        void (*on_written)(const struct stat *st, void *userdata);
        void *userdata;
        struct modsign_copy_ahead *copy_ahead; /* optional: the body copied already (taken over) */
        uint8_t **ret_sig;               /* optional: receives a copy of the PKCS#7 blob */
        size_t *ret_sig_len;
};

/* -ENODEV (with KEY_DEVICE_GONE_WHY): the key's device went away (key_openssl_error()); the
 * module is untouched, and the key must be loaded again before it signs anything. */
int modsign_sign(struct module_file *m, const struct modsign_request *req, enum modsign_outcome *ret_outcome,
                 const char **ret_why);
#define KEY_DEVICE_GONE_WHY "the key's token went away (PKCS#11 device or session lost)"

/* Removes every appended signature. Returns 0 when something was removed, 1 when the module
 * was unsigned (nothing written). */
int modsign_strip(struct module_file *m, unsigned threads);

/* Checks the outermost signature against trusted certificates, as the kernel does. Returns
 * 0 (and the signer, a new reference, if asked), -ENODATA unsigned, -ENOKEY untrusted,
 * -EKEYREJECTED tampered, -EBADMSG malformed. */
int modsign_verify(const struct module_file *m, STACK_OF(X509) *trusted, X509 **ret_signer);
