/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "io-util.h"
#include "key.h"
#include "macro.h"
#include "openssl-util.h"

#define KEY_FILE_MAX (1U << 20)
#define CERT_FILE_MAX (16U << 20)

#define FAIL(error, why)                        \
        ({                                      \
                if (ret_why)                    \
                        *ret_why = (why);       \
                (error);                        \
        })

/* Key material read into memory is wiped before it is freed. */
struct secret_buf {
        char *data;
        size_t len;
};

static void secret_buf_done(struct secret_buf *b) {
        if (b->data) {
                OPENSSL_cleanse(b->data, b->len);
                free(b->data);
        }
}

static int pem_passphrase_cb(char *buf, int size, int rwflag, void *userdata) {
        const char *pass = userdata;
        size_t len;

        if (!pass || size <= 0)
                return -1;
        len = strlen(pass);
        if (len > (size_t) size)
                return -1;
        memcpy(buf, pass, len);
        return (int) len;
}

static bool pem_is_encrypted(const char *text) {
        return strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----") || strstr(text, "Proc-Type: 4,ENCRYPTED");
}

int key_load_fd(int fd, const char *passphrase, EVP_PKEY **ret, const char **ret_why) {
        _cleanup_(secret_buf_done) struct secret_buf b = {};
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        EVP_PKEY *key;
        int r;

        r = read_full_fd(fd, KEY_FILE_MAX, &b.data, &b.len);
        if (r == -EFBIG)
                return FAIL(-EBADMSG, "key file too large to be a key");
        if (r < 0)
                return FAIL(r, "cannot read key file");

        bio = BIO_new_mem_buf(b.data, (int) b.len);
        if (!bio)
                return -ENOMEM;

        if (b.len > 0 && (uint8_t) b.data[0] == 0x30)
                key = d2i_PrivateKey_bio(bio, NULL);
        else {
                if (pem_is_encrypted(b.data) && !passphrase) {
                        ERR_clear_error();
                        return FAIL(-ENOKEY, "key is encrypted and no passphrase was given");
                }
                key = PEM_read_bio_PrivateKey(bio, NULL, pem_passphrase_cb, (void *) passphrase);
                if (!key && pem_is_encrypted(b.data)) {
                        ERR_clear_error();
                        return FAIL(-EKEYREJECTED, "wrong passphrase for encrypted key");
                }
        }
        ERR_clear_error();
        if (!key)
                return FAIL(-EBADMSG, "not a PEM or DER private key");

        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA && EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
                EVP_PKEY_free(key);
                return FAIL(-EOPNOTSUPP, "key type is neither RSA nor EC (the kernel verifies no other)");
        }

        *ret = key;
        return 0;
}

int key_file_open(const char *path, int *ret_fd, struct stat *ret_st) {
        /* O_NONBLOCK: a FIFO planted where the key should be must not hang us. */
        int fd = openat_regular(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0, ret_st);

        if (fd < 0)
                return fd;
        *ret_fd = fd;
        return 0;
}

int key_file_check_access(const struct stat *st, const char **ret_why) {
        if (st->st_uid != geteuid())
                return FAIL(-EPERM, geteuid() == 0 ? "not owned by root (chown root:root it)"
                                                   : "not owned by the user running this");
        if (st->st_mode & 0077)
                return FAIL(-EPERM, "accessible to group or others (chmod 0600 it)");
        return 0;
}

static int certs_load_fd(int fd, STACK_OF(X509) *certs) {
        _cleanup_free_ char *data = NULL;
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        struct stat st;
        size_t len;
        int r, n = 0;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        r = read_full_fd(fd, CERT_FILE_MAX, &data, &len);
        if (r < 0)
                return r;
        bio = BIO_new_mem_buf(data, (int) len);
        if (!bio)
                return -ENOMEM;

        if (len > 0 && (uint8_t) data[0] == 0x30) {
                X509 *c = d2i_X509_bio(bio, NULL);
                if (c) {
                        if (!sk_X509_push(certs, c)) {
                                X509_free(c);
                                return -ENOMEM;
                        }
                        n++;
                }
        } else
                for (;;) {
                        X509 *c = PEM_read_bio_X509(bio, NULL, NULL, NULL);
                        if (!c) {
                                /* The end of the bundle reads as "no start line"; anything
                                 * else is a damaged certificate, which must not silently cut
                                 * the bundle short. */
                                unsigned long e = ERR_peek_last_error();
                                if (e && ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
                                        ERR_clear_error();
                                        return -EBADMSG;
                                }
                                break;
                        }
                        if (!sk_X509_push(certs, c)) {
                                X509_free(c);
                                return -ENOMEM;
                        }
                        n++;
                }
        ERR_clear_error();
        return n > 0 ? n : -ENOENT;
}

int cert_load_file(const char *path, X509 **ret) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *certs = sk_X509_new_null();
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!certs)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        r = certs_load_fd(fd, certs);
        if (r < 0)
                return r == -ENOENT ? -EBADMSG : r;
        *ret = sk_X509_shift(certs);
        return 0;
}

int certs_load_path(const char *path, STACK_OF(X509) *certs) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        DIR *dir;
        int total = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode))
                return certs_load_fd(fd, certs);

        dir = fdopendir(fd);
        if (!dir)
                return negative_errno();
        fd = -EBADF; /* owned by dir now */

        for (struct dirent *de; (de = readdir(dir));) {
                _cleanup_close_ int cfd = -EBADF;
                int r;

                if (de->d_name[0] == '.')
                        continue;
                cfd = openat(dirfd(dir), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
                if (cfd < 0)
                        continue; /* symlinks and unreadable entries are skipped */
                r = certs_load_fd(cfd, certs); /* skips what is not a regular file */
                if (r == -ENOMEM || r == -EBADMSG) {
                        closedir(dir);
                        return r;
                }
                if (r > 0)
                        total += r;
        }
        closedir(dir);
        return total;
}

int cert_fingerprint_sha256(X509 *cert, char ret[65]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;

        if (!X509_digest(cert, EVP_sha256(), md, &len) || len != 32) {
                ERR_clear_error();
                return -EIO;
        }
        for (unsigned i = 0; i < len; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}
