/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "digest.h"
#include "macro.h"
#include "openssl-util.h"

#define CHUNK ((size_t) 64 << 10)

int digest_fd_sha256(int fd, char ret[65]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        uint8_t buf[CHUNK];
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        off_t off = 0;

        if (!ctx)
                return -ENOMEM;
        if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
                return -EIO;
        for (;;) {
                ssize_t n = pread(fd, buf, CHUNK, off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                if (!EVP_DigestUpdate(ctx, buf, (size_t) n))
                        return -EIO;
                off += n;
        }
        if (!EVP_DigestFinal_ex(ctx, md, &len) || len != 32)
                return -EIO;
        for (unsigned i = 0; i < len; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}

int digest_sha256_state_hex(const EVP_MD_CTX *state, const void *extra, size_t extra_len, char ret[65]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;

        if (!ctx)
                return -ENOMEM;
        if (!EVP_MD_CTX_copy_ex(ctx, state) || (extra_len && !EVP_DigestUpdate(ctx, extra, extra_len)) ||
            !EVP_DigestFinal_ex(ctx, md, &n) || n != 32)
                return -EIO;
        for (unsigned i = 0; i < n; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}

int digest_sha256_hex(const void *buf, size_t len, char ret[65]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;

        if (!EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL) || n != 32)
                return -EIO;
        for (unsigned i = 0; i < n; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}
