/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A module file opened for reading: reached through a directory fd without following a
 * symlink, decompressed when it is compressed, and parsed. */

#include <openssl/evp.h>
#include <stdint.h>
#include <sys/stat.h>

#include "compress.h"
#include "module.h"

/* Decompressed modules larger than this are refused (the largest real ones are ~100 MB). */
#define MODULE_DECOMPRESSED_MAX ((size_t) 2 << 30)

struct module_file {
        int dir_fd;             /* borrowed from the caller */
        char *name;
        int fd;
        struct stat st;
        enum compression compression;
        int xz_check;           /* the xz stream's integrity check (1 = CRC32), else -1 */
        uint8_t *decompressed;  /* the ELF and its signature, for compressed modules */
        struct module_data data;
        struct module_meta meta;
        /* Filled by module_file_sha256(), in one read: the SHA-256 of the file as it is on
         * disk (what the gate and the audit trail know it by), and for an uncompressed module
         * the SHA-256 state after exactly its body, which is all a sha256 signature and the
         * digest of the signed result still need. */
        char sha256[65];
        EVP_MD_CTX *body_sha256;
};

/* -ELOOP: a symlink; -EINVAL: not a regular file; -ENOEXEC: not a module (or corrupt
 * compression); -EBADMSG or -ENOPKG: malformed signature trailer.
 * *ret_why (optional) explains on failure. */
int module_file_open(int dir_fd, const char *name, struct module_file *ret, const char **ret_why);
/* The same for a module reached only through an fd (one a client passed over the socket):
 * takes ownership of fd, even on failure. It has no name and cannot be replaced in place. */
int module_file_open_fd(int fd, struct module_file *ret, const char **ret_why);
void module_file_close(struct module_file *m);

/* The SHA-256 of the file as it is on disk, as lowercase hex; read once, then remembered. */
int module_file_sha256(struct module_file *m, char ret[65]);
/* The SHA-256 of the module as it is once the signature 'sig' (and its trailer) follows its
 * body: of what modsign_sign() wrote, or what a client of the daemon writes. Only for an
 * uncompressed module (-EOPNOTSUPP otherwise); costs no read when the file was hashed. */
int module_file_sha256_signed(struct module_file *m, const uint8_t *sig, size_t sig_len, char ret[65]);

/* Calls fn on the bytes [0, len) of the (decompressed) module in order, in pieces. */
int module_file_for_each_chunk(const struct module_file *m, uint64_t len,
                               int (*fn)(const void *buf, size_t n, void *userdata), void *userdata);

/* Reads the outermost PKCS#7 blob into a new buffer; -ENODATA when unsigned. */
int module_file_read_signature(const struct module_file *m, uint8_t **ret, size_t *ret_len);
