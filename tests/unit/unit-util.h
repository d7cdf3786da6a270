/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared fixtures for the unit tests: a per-binary scratch directory, file helpers, synthetic
 * kernel modules built in memory, and keys and certificates made with OpenSSL's own APIs.
 *
 * Every helper fails the running test (ck_abort_msg) instead of returning an error, so the
 * tests stay about the library, not about their scaffolding. */

#include <check.h>
#include <elf.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define TU_TIMEOUT 30

/* Runs the suite in fork mode inside a fresh scratch directory (removed afterwards) and
 * returns the process exit status. */
int tu_run_suite(Suite *s);
/* A test case with the generous timeout every binary uses. */
TCase *tu_tcase(const char *name);

/* A new, empty directory under the binary's scratch directory. */
char *tu_tmpdir(void);
char *tu_path(const char *dir, const char *name);
void tu_rm_rf(const char *path);
void tu_write_file(const char *path, const void *buf, size_t len, mode_t mode);
uint8_t *tu_read_file(const char *path, size_t *ret_len);
/* Number of entries in a directory, "." and ".." excluded. */
unsigned tu_dir_count(const char *dir);
/* Names in a directory, sorted and joined with ' ' (for comparing before/after). */
char *tu_dir_listing(const char *dir);
/* Opens a directory O_RDONLY|O_DIRECTORY|O_CLOEXEC. */
int tu_open_dir(const char *dir);

/* Runs a shell command; returns its exit status, or -1 when it did not exit normally. */
int tu_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Runs a shell command and returns its standard output (NUL-terminated). */
char *tu_command_output(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs fn(userdata) in a child process. Returns what fn returned (a negative errno down to
 * -199, or 0..55), or TU_CHILD_HUNG when it had not returned after timeout_ms
 * (then the child is killed): for calls that must not block. */
#define TU_CHILD_HUNG (-100000)
int tu_run_child(int (*fn)(void *userdata), void *userdata, unsigned timeout_ms);

/* Deterministic pseudo-random bytes (xorshift64*). */
void tu_fill_random(uint8_t *buf, size_t len, uint64_t seed);
/* A quarter pseudo-random, the rest repetitive text: compressible but not trivially so. */
void tu_fill_mixed(uint8_t *buf, size_t len, uint64_t seed);

/* Synthetic modules: an ELF64 ET_REL image with these sections, in this order. */
enum {
        TU_SEC_NULL,
        TU_SEC_TEXT,
        TU_SEC_MODINFO,
        TU_SEC_SHSTRTAB,
        TU_SEC_BSS,
        TU_NSECS,
};

#define TU_MODINFO "name=foo\0vermagic=6.1.0-1-amd64 SMP mod_unload \0"
#define TU_MODINFO_LEN (sizeof(TU_MODINFO) - 1)

/* Builds a module image with the given .modinfo contents and text_len bytes of .text. */
uint8_t *tu_module_new(const void *modinfo, size_t modinfo_len, size_t text_len, size_t *ret_len);
/* The default: TU_MODINFO and 256 bytes of text. */
uint8_t *tu_module_default(size_t *ret_len);
Elf64_Ehdr *tu_ehdr(uint8_t *img);
Elf64_Shdr *tu_shdr(uint8_t *img, unsigned idx);

/* The 40 bytes after a signature blob, written out by hand from DESIGN.md §4 (independent of
 * module_sig_trailer_build()). */
void tu_trailer(uint32_t sig_len, uint8_t out[40]);
/* Appends blob + trailer to *img (realloc'd). */
void tu_append_sig(uint8_t **img, size_t *len, const void *sig, size_t sig_len);

/* Keys and self-signed certificates. */
EVP_PKEY *tu_rsa_key(unsigned bits);
EVP_PKEY *tu_ec_key(const char *curve);
X509 *tu_cert(EVP_PKEY *key, const char *cn, uint64_t serial, bool with_skid);
STACK_OF(X509) *tu_cert_stack(X509 *cert);

/* A signature made the way the kernel's scripts/sign-file makes it (CMS_sign + CMS_final). */
uint8_t *tu_sign_file_oracle(EVP_PKEY *key, X509 *cert, const char *hash, bool keyid, const void *data,
                             size_t len, size_t *ret_len);

/* PEM / DER encodings. */
char *tu_key_pem(EVP_PKEY *key, size_t *ret_len);
uint8_t *tu_key_der(EVP_PKEY *key, size_t *ret_len);
char *tu_cert_pem(X509 *cert, size_t *ret_len);
uint8_t *tu_cert_der(X509 *cert, size_t *ret_len);
