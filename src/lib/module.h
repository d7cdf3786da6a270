/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Reading a kernel module: ELF sanity, .modinfo fields, and the appended signature trailer.
 *
 * A signed module is [ELF][PKCS#7 DER][struct module_signature][MODULE_SIG_MAGIC]. The rules
 * for the trailer are the kernel's (mod_check_sig): id_type must be PKEY_ID_PKCS7, every other
 * byte field zero, and sig_len must fit inside the file. Every offset read from the file is
 * bounds-checked before use; the parsers never trust a length. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MODULE_SIG_MAGIC "~Module signature appended~\n"
#define MODULE_SIG_MAGIC_LEN (sizeof(MODULE_SIG_MAGIC) - 1)
#define MODULE_SIG_INFO_LEN 12
#define MODULE_SIG_TRAILER_LEN (MODULE_SIG_INFO_LEN + MODULE_SIG_MAGIC_LEN)
#define MODULE_SIG_PKEY_ID_PKCS7 2

/* Cap on stacked signatures we are willing to peel off one module. */
#define MODULE_SIG_MAX_STACKED 8
/* Cap on the .modinfo section we read: real ones are a few KiB. */
#define MODULE_MODINFO_MAX (1U << 20)

/* The bytes of a module: either a file read with pread() or a buffer in memory (a
 * decompressed module, or a fuzzer's input). Reads outside [0, size) fail with -EBADMSG. */
struct module_data {
        int fd;
        const uint8_t *mem;
        uint64_t size;
};

int module_data_read(const struct module_data *d, uint64_t offset, void *buf, size_t len);

struct module_sig_trailer {
        uint64_t sig_offset; /* where the PKCS#7 blob starts: also the length of the signed data */
        uint32_t sig_len;
};

/* Parses the trailer at the end of the first 'len' bytes.
 * Returns 1 and fills *ret when a well-formed trailer is present, 0 when the bytes end without
 * the magic (unsigned), -EBADMSG for a malformed trailer and -ENOPKG for a non-PKCS#7 id_type.
 * *ret_why (optional) gets a static explanation on failure. */
int module_sig_trailer_parse(const struct module_data *d, uint64_t len, struct module_sig_trailer *ret,
                             const char **ret_why);

/* Builds the 40 bytes that follow a PKCS#7 blob of sig_len bytes. */
void module_sig_trailer_build(uint32_t sig_len, uint8_t out[MODULE_SIG_TRAILER_LEN]);

struct module_meta {
        uint64_t size;          /* everything, signatures included */
        uint64_t body_len;      /* the ELF image alone, all signatures peeled off */
        unsigned n_signatures;  /* 0 unsigned, 1 normal, >1 stacked */
        struct module_sig_trailer last_sig; /* the outermost signature: the one the kernel checks */
        uint16_t elf_machine;
        char *name;             /* from .modinfo (name=), NULL when absent */
        char *vermagic;
        char *version;
        char *srcversion;
};

/* Checks the ELF image (ET_REL of the host's class and byte order, a sane section table, a
 * .modinfo section) and reads the trailer(s). -ENOEXEC: not a module; -EBADMSG: malformed
 * trailer or ELF; -ENOMEM. *ret_why (optional) gets a static explanation on failure. */
int module_parse(const struct module_data *d, struct module_meta *ret, const char **ret_why);
void module_meta_done(struct module_meta *m);

/* The kernel release a vermagic string names (its first word), newly allocated. */
int module_vermagic_release(const char *vermagic, char **ret);
