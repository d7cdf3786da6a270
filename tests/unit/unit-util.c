/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "unit-util.h"

static char *scratch;

int tu_run_suite(Suite *s) {
        const char *tmp = getenv("TMPDIR");
        SRunner *sr;
        int failed;

        umask(022);
        if (asprintf(&scratch, "%s/modsign-unit.XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0 || !mkdtemp(scratch)) {
                perror("cannot create the scratch directory");
                return 99; /* automake: hard error */
        }

        sr = srunner_create(s);
        srunner_set_fork_status(sr, CK_FORK);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);

        if (!getenv("TU_KEEP_SCRATCH"))
                tu_rm_rf(scratch);
        free(scratch);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

TCase *tu_tcase(const char *name) {
        TCase *tc = tcase_create(name);

        tcase_set_timeout(tc, TU_TIMEOUT);
        return tc;
}

char *tu_tmpdir(void) {
        char *d;

        ck_assert_ptr_nonnull(scratch);
        ck_assert_int_ge(asprintf(&d, "%s/t.XXXXXX", scratch), 0);
        ck_assert_msg(mkdtemp(d) != NULL, "mkdtemp: %s", strerror(errno));
        return d;
}

char *tu_path(const char *dir, const char *name) {
        char *p;

        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        (void) remove(path);
        return 0;
}

void tu_rm_rf(const char *path) {
        (void) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_write_file(const char *path, const void *buf, size_t len, mode_t mode) {
        const uint8_t *p = buf;
        int fd;

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        ck_assert_msg(fd >= 0, "open(%s): %s", path, strerror(errno));
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                ck_assert_msg(n > 0, "write(%s): %s", path, strerror(errno));
                p += n;
                len -= (size_t) n;
        }
        ck_assert_int_eq(fchmod(fd, mode), 0);
        ck_assert_int_eq(close(fd), 0);
}

uint8_t *tu_read_file(const char *path, size_t *ret_len) {
        uint8_t *buf = NULL;
        size_t len = 0, alloc = 0;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_msg(fd >= 0, "open(%s): %s", path, strerror(errno));
        for (;;) {
                ssize_t n;

                if (len == alloc) {
                        uint8_t *p;

                        alloc = alloc ? alloc * 2 : 65536;
                        p = realloc(buf, alloc);
                        ck_assert_ptr_nonnull(p);
                        buf = p;
                }
                n = read(fd, buf + len, alloc - len);
                ck_assert_msg(n >= 0, "read(%s): %s", path, strerror(errno));
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        close(fd);
        *ret_len = len;
        return buf;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

char *tu_dir_listing(const char *dir) {
        char *names[256] = {}, *out;
        size_t n = 0, total = 1;
        struct dirent *de;
        DIR *d = opendir(dir);

        ck_assert_msg(d != NULL, "opendir(%s): %s", dir, strerror(errno));
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                ck_assert_uint_lt(n, 256);
                names[n] = strdup(de->d_name);
                total += strlen(de->d_name) + 1;
                n++;
        }
        closedir(d);
        qsort(names, n, sizeof(names[0]), cmp_str);
        out = calloc(1, total);
        ck_assert_ptr_nonnull(out);
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        strcat(out, " ");
                strcat(out, names[i]);
                free(names[i]);
        }
        return out;
}

unsigned tu_dir_count(const char *dir) {
        unsigned n = 0;
        struct dirent *de;
        DIR *d = opendir(dir);

        ck_assert_msg(d != NULL, "opendir(%s): %s", dir, strerror(errno));
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

int tu_open_dir(const char *dir) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        ck_assert_msg(fd >= 0, "open(%s): %s", dir, strerror(errno));
        return fd;
}

int tu_system(const char *fmt, ...) {
        va_list ap;
        char *cmd;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        ck_assert_int_ge(r, 0);
        r = system(cmd);
        free(cmd);
        if (r < 0 || !WIFEXITED(r))
                return -1;
        return WEXITSTATUS(r);
}

char *tu_command_output(const char *fmt, ...) {
        char *cmd, *out = NULL;
        size_t len = 0, alloc = 0;
        va_list ap;
        FILE *f;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        ck_assert_int_ge(r, 0);
        f = popen(cmd, "r");
        ck_assert_msg(f != NULL, "popen(%s): %s", cmd, strerror(errno));
        for (;;) {
                size_t n;

                if (alloc - len < 4096) {
                        char *p;

                        alloc += 65536;
                        p = realloc(out, alloc);
                        ck_assert_ptr_nonnull(p);
                        out = p;
                }
                n = fread(out + len, 1, alloc - len - 1, f);
                if (n == 0)
                        break;
                len += n;
        }
        out[len] = '\0';
        (void) pclose(f);
        free(cmd);
        return out;
}

int tu_run_child(int (*fn)(void *userdata), void *userdata, unsigned timeout_ms) {
        pid_t pid = fork(), w;
        int status = 0;

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int r = fn(userdata);

                /* _exit(): the child must not run the test runner's exit handlers */
                _exit(r < 0 ? MIN(-r, 199) : 200 + MIN(r, 55));
        }
        for (unsigned waited = 0;; waited += 10) {
                w = waitpid(pid, &status, WNOHANG);
                ck_assert_int_ge(w, 0);
                if (w == pid)
                        break;
                if (waited >= timeout_ms) {
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, &status, 0);
                        return TU_CHILD_HUNG;
                }
                usleep(10 * 1000);
        }
        ck_assert_msg(WIFEXITED(status), "child died from signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        return WEXITSTATUS(status) >= 200 ? WEXITSTATUS(status) - 200 : -WEXITSTATUS(status);
}

void tu_fill_random(uint8_t *buf, size_t len, uint64_t seed) {
        uint64_t x = seed ? seed : 0x9e3779b97f4a7c15ULL;

        for (size_t i = 0; i < len; i++) {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                buf[i] = (uint8_t) ((x * 0x2545f4914f6cdd1dULL) >> 56);
        }
}

void tu_fill_mixed(uint8_t *buf, size_t len, uint64_t seed) {
        static const char text[] = "modsignd unit test: compressible text, repeated again and again. ";
        const size_t block = 4096;

        for (size_t off = 0; off < len; off += block) {
                size_t n = len - off < block ? len - off : block;

                if ((off / block) % 4 == 0)
                        tu_fill_random(buf + off, n, seed + off);
                else
                        for (size_t i = 0; i < n; i++)
                                buf[off + i] = (uint8_t) text[(off + i) % (sizeof(text) - 1)];
        }
}

/* --- synthetic modules --- */

static const char shstrtab[] = "\0.text\0.modinfo\0.shstrtab\0.bss\0";
#define NAME_TEXT 1
#define NAME_MODINFO 7
#define NAME_SHSTRTAB 16
#define NAME_BSS 26

static size_t align8(size_t n) {
        return (n + 7) & ~(size_t) 7;
}

uint8_t *tu_module_new(const void *modinfo, size_t modinfo_len, size_t text_len, size_t *ret_len) {
        size_t text_off = sizeof(Elf64_Ehdr);
        size_t modinfo_off = align8(text_off + text_len);
        size_t strtab_off = align8(modinfo_off + modinfo_len);
        size_t shoff = align8(strtab_off + sizeof(shstrtab));
        size_t len = shoff + TU_NSECS * sizeof(Elf64_Shdr);
        uint8_t *img = calloc(1, len);
        Elf64_Ehdr *eh;
        Elf64_Shdr *sh;

        ck_assert_ptr_nonnull(img);
        eh = (Elf64_Ehdr *) img;
        memcpy(eh->e_ident, ELFMAG, SELFMAG);
        eh->e_ident[EI_CLASS] = ELFCLASS64;
        eh->e_ident[EI_DATA] = ELFDATA2LSB;
        eh->e_ident[EI_VERSION] = EV_CURRENT;
        eh->e_ident[EI_OSABI] = ELFOSABI_NONE;
        eh->e_type = ET_REL;
        eh->e_machine = EM_X86_64;
        eh->e_version = EV_CURRENT;
        eh->e_shoff = shoff;
        eh->e_ehsize = sizeof(Elf64_Ehdr);
        eh->e_shentsize = sizeof(Elf64_Shdr);
        eh->e_shnum = TU_NSECS;
        eh->e_shstrndx = TU_SEC_SHSTRTAB;

        tu_fill_random(img + text_off, text_len, 42);
        memcpy(img + modinfo_off, modinfo, modinfo_len);
        memcpy(img + strtab_off, shstrtab, sizeof(shstrtab));

        sh = (Elf64_Shdr *) (img + shoff);
        sh[TU_SEC_TEXT] = (Elf64_Shdr) { .sh_name = NAME_TEXT, .sh_type = SHT_PROGBITS,
                                         .sh_flags = SHF_ALLOC | SHF_EXECINSTR, .sh_offset = text_off,
                                         .sh_size = text_len, .sh_addralign = 16 };
        sh[TU_SEC_MODINFO] = (Elf64_Shdr) { .sh_name = NAME_MODINFO, .sh_type = SHT_PROGBITS,
                                            .sh_flags = SHF_ALLOC, .sh_offset = modinfo_off,
                                            .sh_size = modinfo_len, .sh_addralign = 8 };
        sh[TU_SEC_SHSTRTAB] = (Elf64_Shdr) { .sh_name = NAME_SHSTRTAB, .sh_type = SHT_STRTAB,
                                             .sh_offset = strtab_off, .sh_size = sizeof(shstrtab),
                                             .sh_addralign = 1 };
        /* .bss has no file contents: its offset and size may point anywhere. */
        sh[TU_SEC_BSS] = (Elf64_Shdr) { .sh_name = NAME_BSS, .sh_type = SHT_NOBITS,
                                        .sh_flags = SHF_ALLOC | SHF_WRITE, .sh_offset = len + 4096,
                                        .sh_size = 1 << 20, .sh_addralign = 64 };
        *ret_len = len;
        return img;
}

uint8_t *tu_module_default(size_t *ret_len) {
        return tu_module_new(TU_MODINFO, TU_MODINFO_LEN, 256, ret_len);
}

Elf64_Ehdr *tu_ehdr(uint8_t *img) {
        return (Elf64_Ehdr *) img;
}

Elf64_Shdr *tu_shdr(uint8_t *img, unsigned idx) {
        return (Elf64_Shdr *) (img + tu_ehdr(img)->e_shoff) + idx;
}

void tu_trailer(uint32_t sig_len, uint8_t out[40]) {
        static const char magic[] = "~Module signature appended~\n";

        /* algo, hash, id_type = 2 (PKEY_ID_PKCS7), signer_len, key_id_len, pad[3], be32 sig_len */
        memset(out, 0, 12);
        out[2] = 2;
        out[8] = (uint8_t) (sig_len >> 24);
        out[9] = (uint8_t) (sig_len >> 16);
        out[10] = (uint8_t) (sig_len >> 8);
        out[11] = (uint8_t) sig_len;
        memcpy(out + 12, magic, 28);
}

void tu_append_sig(uint8_t **img, size_t *len, const void *sig, size_t sig_len) {
        uint8_t *p = realloc(*img, *len + sig_len + 40);

        ck_assert_ptr_nonnull(p);
        memcpy(p + *len, sig, sig_len);
        tu_trailer((uint32_t) sig_len, p + *len + sig_len);
        *img = p;
        *len += sig_len + 40;
}

/* --- keys and certificates --- */

EVP_PKEY *tu_rsa_key(unsigned bits) {
        EVP_PKEY *k = EVP_RSA_gen(bits);

        ck_assert_ptr_nonnull(k);
        return k;
}

EVP_PKEY *tu_ec_key(const char *curve) {
        EVP_PKEY *k = EVP_EC_gen(curve);

        ck_assert_ptr_nonnull(k);
        return k;
}

X509 *tu_cert(EVP_PKEY *key, const char *cn, uint64_t serial, bool with_skid) {
        X509 *x = X509_new(), *y;
        X509_NAME *name;
        unsigned char *der = NULL;
        const unsigned char *p;
        int len;

        ck_assert_ptr_nonnull(x);
        ck_assert_int_eq(X509_set_version(x, X509_VERSION_3), 1);
        ck_assert_int_eq(ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial), 1);
        ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
        ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365));
        name = X509_get_subject_name(x);
        ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                                    (const unsigned char *) "modsignd unit tests", -1, -1, 0), 1);
        ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) cn,
                                                    -1, -1, 0), 1);
        ck_assert_int_eq(X509_set_issuer_name(x, name), 1);
        ck_assert_int_eq(X509_set_pubkey(x, key), 1);
        if (with_skid) {
                X509V3_CTX ctx;
                X509_EXTENSION *ext;

                X509V3_set_ctx_nodb(&ctx);
                X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
                ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
                ck_assert_ptr_nonnull(ext);
                ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
                X509_EXTENSION_free(ext);
        }
        ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);

        /* Through DER and back: what the library sees is what a file would hold. */
        len = i2d_X509(x, &der);
        ck_assert_int_gt(len, 0);
        p = der;
        y = d2i_X509(NULL, &p, len);
        ck_assert_ptr_nonnull(y);
        OPENSSL_free(der);
        X509_free(x);
        return y;
}

STACK_OF(X509) *tu_cert_stack(X509 *cert) {
        STACK_OF(X509) *s = sk_X509_new_null();

        ck_assert_ptr_nonnull(s);
        if (cert) {
                ck_assert_int_eq(X509_up_ref(cert), 1);
                ck_assert_int_gt(sk_X509_push(s, cert), 0);
        }
        return s;
}

static uint8_t *bio_to_buf(BIO *b, size_t *ret_len) {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        uint8_t *copy;

        ck_assert_int_ge(n, 0);
        copy = malloc((size_t) n + 1);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, data, (size_t) n);
        copy[n] = '\0';
        *ret_len = (size_t) n;
        return copy;
}

uint8_t *tu_sign_file_oracle(EVP_PKEY *key, X509 *cert, const char *hash, bool keyid, const void *data,
                             size_t len, size_t *ret_len) {
        const EVP_MD *md = EVP_get_digestbyname(hash);
        CMS_ContentInfo *cms;
        BIO *in, *out;
        uint8_t *der;

        ck_assert_ptr_nonnull(md);
        in = BIO_new_mem_buf(len ? data : "", (int) len);
        ck_assert_ptr_nonnull(in);
        /* scripts/sign-file.c, to the flag */
        cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_NOCERTS | CMS_PARTIAL | CMS_BINARY | CMS_DETACHED | CMS_STREAM);
        ck_assert_ptr_nonnull(cms);
        ck_assert_ptr_nonnull(CMS_add1_signer(cms, cert, key, md,
                                              CMS_NOCERTS | CMS_BINARY | CMS_NOSMIMECAP | CMS_NOATTR |
                                                      (keyid ? CMS_USE_KEYID : 0)));
        ck_assert_int_eq(CMS_final(cms, in, NULL, CMS_NOCERTS | CMS_BINARY), 1);
        out = BIO_new(BIO_s_mem());
        ck_assert_ptr_nonnull(out);
        ck_assert_int_eq(i2d_CMS_bio(out, cms), 1);
        der = bio_to_buf(out, ret_len);
        BIO_free(out);
        BIO_free(in);
        CMS_ContentInfo_free(cms);
        return der;
}

char *tu_key_pem(EVP_PKEY *key, size_t *ret_len) {
        BIO *b = BIO_new(BIO_s_mem());
        char *s;

        ck_assert_ptr_nonnull(b);
        ck_assert_int_eq(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
        s = (char *) bio_to_buf(b, ret_len);
        BIO_free(b);
        return s;
}

/* i2d_*() output (n bytes, OPENSSL_malloc()ed) as a malloc()ed copy the caller free()s. */
static uint8_t *der_to_malloc(unsigned char *der, int n, size_t *ret_len) {
        uint8_t *copy;

        ck_assert_int_gt(n, 0);
        copy = malloc((size_t) n);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, der, (size_t) n);
        OPENSSL_free(der);
        *ret_len = (size_t) n;
        return copy;
}

uint8_t *tu_key_der(EVP_PKEY *key, size_t *ret_len) {
        unsigned char *der = NULL;
        int n = i2d_PrivateKey(key, &der);

        return der_to_malloc(der, n, ret_len);
}

char *tu_cert_pem(X509 *cert, size_t *ret_len) {
        BIO *b = BIO_new(BIO_s_mem());
        char *s;

        ck_assert_ptr_nonnull(b);
        ck_assert_int_eq(PEM_write_bio_X509(b, cert), 1);
        s = (char *) bio_to_buf(b, ret_len);
        BIO_free(b);
        return s;
}

uint8_t *tu_cert_der(X509 *cert, size_t *ret_len) {
        unsigned char *der = NULL;
        int n = i2d_X509(cert, &der);

        return der_to_malloc(der, n, ret_len);
}
