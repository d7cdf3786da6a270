/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "macro.h"
#include "module-file.h"
#include "openssl-util.h"

/* Big enough to amortise syscalls and digest calls; small, because fresh memory costs a page
 * fault per 4 KiB (about 17 us each on a virtual machine: 4.5 ms for a 1 MiB buffer, more
 * than hashing the megabyte takes). */
#define CHUNK_SIZE ((size_t) 64 << 10)

#define FAIL(error, why)                        \
        ({                                      \
                if (ret_why)                    \
                        *ret_why = (why);       \
                (error);                        \
        })

/* Reads and parses the module behind m->fd, which the caller has set. */
static int module_file_load(struct module_file *ret, struct module_file m, const char **ret_why) {
        uint8_t head[8];
        ssize_t n;
        int r;

        if (fstat(m.fd, &m.st) < 0) {
                r = negative_errno();
                goto fail;
        }
        if (!S_ISREG(m.st.st_mode)) {
                r = FAIL(-EINVAL, "not a regular file");
                goto fail;
        }
        n = pread(m.fd, head, sizeof(head), 0);
        if (n < 0) {
                r = negative_errno();
                goto fail;
        }
        m.compression = compression_detect(head, (size_t) n);
        if (m.compression == COMPRESSION_XZ)
                m.xz_check = xz_stream_check(head, (size_t) n);

        if (m.compression == COMPRESSION_NONE)
                m.data = (struct module_data) { .fd = m.fd, .size = (uint64_t) m.st.st_size };
        else {
                size_t len;

                r = decompress_fd(m.fd, m.compression, MODULE_DECOMPRESSED_MAX, &m.decompressed, &len);
                if (r < 0) {
                        /* Corrupt compression makes it "not a module", like a truncated ELF. */
                        if (r == -EBADMSG)
                                r = FAIL(-ENOEXEC, "corrupt or truncated compressed data");
                        else if (r == -EFBIG)
                                FAIL(r, "decompresses to more than 2 GiB");
                        goto fail;
                }
                m.data = (struct module_data) { .fd = -EBADF, .mem = m.decompressed, .size = len };
        }

        r = module_parse(&m.data, &m.meta, ret_why);
        if (r < 0)
                goto fail;

        *ret = m;
        return 0;

fail:
        module_file_close(&m);
        return r;
}

int module_file_open(int dir_fd, const char *name, struct module_file *ret, const char **ret_why) {
        struct module_file m = { .dir_fd = dir_fd, .fd = -EBADF, .xz_check = -1 };
        int r;

        /* One component: O_NOFOLLOW guards only the last one, and a module is replaced in
         * the directory dir_fd names, so a path through another directory is refused. */
        if (!name || !*name || strchr(name, '/'))
                return FAIL(-EINVAL, "not a plain file name");
        m.fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (m.fd < 0) {
                r = negative_errno();
                return FAIL(r, r == -ELOOP ? "is a symbolic link (give the real path)" : NULL);
        }
        m.name = strdup(name);
        if (!m.name) {
                safe_close(m.fd);
                return -ENOMEM;
        }
        return module_file_load(ret, m, ret_why);
}

int module_file_open_fd(int fd, struct module_file *ret, const char **ret_why) {
        struct module_file m = { .dir_fd = -EBADF, .fd = fd, .xz_check = -1 };

        return module_file_load(ret, m, ret_why);
}

void module_file_close(struct module_file *m) {
        m->fd = safe_close(m->fd);
        free(m->decompressed);
        free(m->name);
        module_meta_done(&m->meta);
        m->decompressed = NULL;
        m->name = NULL;
        EVP_MD_CTX_free(m->body_sha256);
        m->body_sha256 = NULL;
        m->sha256[0] = '\0';
}

/* One pass over the file: the digest of all of it, and the state where the body ends. */
static int hash_file(struct module_file *m, uint64_t body_end, EVP_MD_CTX **ret_body) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new(), *body = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t off = 0;
        int r;

        if (!ctx)
                return -ENOMEM;
        if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
                return -EIO;
        buf = malloc(CHUNK_SIZE);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                size_t want = CHUNK_SIZE;
                ssize_t n;

                if (off < body_end && body_end - off < want)
                        want = (size_t) (body_end - off); /* stop exactly at the body's end */
                if (off == body_end && !body) {
                        body = EVP_MD_CTX_new();
                        if (!body || !EVP_MD_CTX_copy_ex(body, ctx))
                                return -ENOMEM;
                }
                n = pread(m->fd, buf, want, (off_t) off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                if (!EVP_DigestUpdate(ctx, buf, (size_t) n))
                        return -EIO;
                off += (uint64_t) n;
        }
        /* A file shorter or longer than when it was parsed is not the module we know. */
        if (off != (uint64_t) m->st.st_size || (body_end != UINT64_MAX && !body))
                return -ESTALE;
        r = digest_sha256_state_hex(ctx, NULL, 0, m->sha256);
        if (r < 0)
                return r;
        *ret_body = TAKE_PTR(body);
        return 0;
}

int module_file_sha256(struct module_file *m, char ret[65]) {
        int r;

        if (!m->sha256[0]) {
                /* Only an uncompressed module's body is a prefix of the file. */
                r = hash_file(m, m->compression == COMPRESSION_NONE ? m->meta.body_len : UINT64_MAX, &m->body_sha256);
                if (r < 0) {
                        m->sha256[0] = '\0';
                        return r;
                }
        }
        memcpy(ret, m->sha256, sizeof(m->sha256));
        return 0;
}

int module_file_sha256_signed(struct module_file *m, const uint8_t *sig, size_t sig_len, char ret[65]) {
        _cleanup_free_ uint8_t *tail = NULL;
        char whole[65];
        int r;

        if (m->compression != COMPRESSION_NONE || sig_len > UINT32_MAX)
                return -EOPNOTSUPP;
        if (!m->body_sha256) {
                r = module_file_sha256(m, whole);
                if (r < 0)
                        return r;
                if (!m->body_sha256)
                        return -EIO;
        }
        tail = malloc(sig_len + MODULE_SIG_TRAILER_LEN);
        if (!tail)
                return -ENOMEM;
        memcpy(tail, sig, sig_len);
        module_sig_trailer_build((uint32_t) sig_len, tail + sig_len);
        return digest_sha256_state_hex(m->body_sha256, tail, sig_len + MODULE_SIG_TRAILER_LEN, ret);
}

int module_file_for_each_chunk(const struct module_file *m, uint64_t len,
                               int (*fn)(const void *buf, size_t n, void *userdata), void *userdata) {
        _cleanup_free_ uint8_t *buf = NULL;
        int r;

        if (len > m->data.size)
                return -EBADMSG;

        if (m->data.mem) {
                for (uint64_t off = 0; off < len; off += CHUNK_SIZE) {
                        r = fn(m->data.mem + off, (size_t) MIN(CHUNK_SIZE, len - off), userdata);
                        if (r < 0)
                                return r;
                }
                return 0;
        }

        buf = malloc(CHUNK_SIZE);
        if (!buf)
                return -ENOMEM;
        for (uint64_t off = 0; off < len; off += CHUNK_SIZE) {
                size_t n = (size_t) MIN(CHUNK_SIZE, len - off);

                r = module_data_read(&m->data, off, buf, n);
                if (r < 0)
                        return r;
                r = fn(buf, n, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

int module_file_read_signature(const struct module_file *m, uint8_t **ret, size_t *ret_len) {
        uint8_t *der;
        int r;

        if (m->meta.n_signatures == 0)
                return -ENODATA;
        der = malloc(m->meta.last_sig.sig_len);
        if (!der)
                return -ENOMEM;
        r = module_data_read(&m->data, m->meta.last_sig.sig_offset, der, m->meta.last_sig.sig_len);
        if (r < 0) {
                free(der);
                return r;
        }
        *ret = der;
        *ret_len = m->meta.last_sig.sig_len;
        return 0;
}
