/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Provenance of a signature: an in-toto Statement v1 (https://in-toto.io/Statement/v1) per
 * signed module, kept as STATE_DIRECTORY/provenance/SHA256.json where SHA256 is the signed
 * module's digest (the audit record's sha256_after). Directory 0755, files 0644, each written
 * atomically (a complete file or none, replacing an older statement of the same bytes).
 *
 *   {"_type":"https://in-toto.io/Statement/v1",
 *    "subject":[{"name":"zfs.ko","digest":{"sha256":"..."}}],
 *    "predicateType":"https://modsignd.example/provenance/v1",
 *    "predicate":{
 *      "module":{"name":"zfs","version":"2.1.11","path":"...","sha256_before":"..."},
 *      "kernel":"6.1.0-18-amd64",
 *      "dkms":{"package":"zfs","version":"2.1.11",
 *              "source":{"path":"/usr/src/zfs-2.1.11","algorithm":"modsignd-tree-v1",
 *                        "digest":{"sha256":"..."}}},
 *      "build_host":"node1",
 *      "signer":{"certificate_sha256":"..."},
 *      "signature_hash":"sha256",
 *      "time":"2025-01-31T23:59:59Z"}}
 * Members whose value is unknown are left out ("dkms" for a module that is not DKMS's; the
 * source "digest" when the tree is absent, then "present":false).
 *
 * THE SOURCE TREE DIGEST ("modsignd-tree-v1"). The tree is walked without following symbolic
 * links. Every regular file and every symbolic link below the root (directories themselves,
 * and sockets, FIFOs and devices, are not entries) gives one entry, named by its path relative
 * to the root ("dkms.conf", "src/zfs.c"; no "./"). The entries, sorted by that path as bytes
 * (strcmp, what `LC_ALL=C sort -z` does), are written one after the other as
 *     regular file:   "f " MODE " " SHA256(contents) " " PATH "\0"
 *     symbolic link:  "l " "0777" " " SHA256(target) " " PATH "\0"
 * MODE is st_mode & 07777 as four octal digits ("0644"), SHA256 is lowercase hex, the target
 * is the link's text as readlink(2) returns it (never what it points to). The digest is the
 * SHA-256 of that stream. Owners, times and empty directories do not count: the same tarball
 * unpacked anywhere gives the same digest, and a changed byte, name, mode or link does not.
 * From a shell:
 *     cd TREE && find . \( -type f -o -type l \) -printf '%P\0' | LC_ALL=C sort -z |
 *       while IFS= read -r -d '' p; do
 *         if [ -L "$p" ]; then printf 'l 0777 %s %s\0' "$(readlink -n "$p" | sha256sum | cut -c1-64)" "$p"
 *         else printf 'f %04o %s %s\0' "$((8#$(stat -c %a "$p")))" "$(sha256sum <"$p" | cut -c1-64)" "$p"; fi
 *       done | sha256sum
 *
 * The library does not log; errors are negative errno values. */

#include <json-c/json.h>
#include <stdint.h>

#include "audit.h"

#define PROVENANCE_STATEMENT_TYPE "https://in-toto.io/Statement/v1"
#define PROVENANCE_PREDICATE_TYPE "https://modsignd.example/provenance/v1"
#define PROVENANCE_TREE_ALGORITHM "modsignd-tree-v1"
#define PROVENANCE_DIR "provenance"
/* Where DKMS source trees are (NAME-VERSION below it): /usr/src, or this variable (tests). */
#define PROVENANCE_SOURCE_ROOT_ENV "MODSIGND_DKMS_SOURCE_ROOT"
#define PROVENANCE_DEFAULT_SOURCE_ROOT "/usr/src"
/* The largest tree we hash: a bound on what a hostile source tree costs (NVIDIA's is ~2,000). */
#define PROVENANCE_TREE_MAX_ENTRIES 200000
#define PROVENANCE_TREE_MAX_DEPTH 64

/* The "modsignd-tree-v1" digest of the tree at dir_fd (see above). -E2BIG past the limits. */
int source_tree_digest_fd(int dir_fd, char ret[65]);
int source_tree_digest(const char *path, char ret[65]);

struct provenance_input {
        const char *subject_name;     /* the module's file name ("zfs.ko") */
        const char *sha256;           /* the signed module's SHA-256: the subject */
        const char *module;           /* opt: modinfo name */
        const char *version;          /* opt */
        const char *path;             /* opt */
        const char *sha256_before;    /* opt */
        const char *kernel;           /* opt */
        const char *dkms_package;     /* opt, with dkms_version */
        const char *dkms_version;
        const char *source_root;      /* opt: NULL = $MODSIGND_DKMS_SOURCE_ROOT or /usr/src */
        const char *signer_fingerprint; /* opt */
        const char *signature_hash;   /* opt */
        const char *build_host;       /* opt: NULL = this host's name */
        const char *time;             /* opt: NULL = now, RFC 3339 UTC */
};

/* Builds the statement (hashing the DKMS source tree when there is one). -EINVAL without a
 * subject name or a valid sha256. */
int provenance_statement(const struct provenance_input *in, json_object **ret);

/* Writes stmt as state_dir/provenance/SHA256.json (creating the directory, 0755). *ret_path
 * (optional) gets the file's path. */
int provenance_write(const char *state_dir, const char *sha256, json_object *stmt, char **ret_path);

/* The hook of the sign paths: for a "signed" or "resigned" record with a sha256_after, builds
 * and writes the statement for it beside the audit log 'log' (whose directory is the state
 * directory) and returns its path in *ret_path (NULL, and 0, for any other record). The
 * DKMS package comes from the record, else from its path (audit_dkms_from_path). */
int provenance_record(struct audit_log *log, const struct audit_record *rec, char **ret_path);

/* The statement for a module of this SHA-256, from state_dir/provenance/; -ENOENT when
 * there is none, -EBADMSG when the file is not a statement for that digest. */
int provenance_load(const char *state_dir, const char *sha256, json_object **ret);

/* The newest statement (by its predicate's time) about the module at 'path' (the predicate's
 * module path) or, when path matches none, of the module named 'name' for kernel 'kernel'
 * (either may be NULL): what a module that changed after signing was signed as. -ENOENT
 * when there is none. */
int provenance_find_for_module(const char *state_dir, const char *path, const char *name, const char *kernel,
                               json_object **ret);

/* The subject's sha256 of a statement, or NULL. */
const char *provenance_subject_sha256(json_object *stmt);
