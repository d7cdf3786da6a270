/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The file backend, and secrets read from files: one access rule for both (key.h's
 * key_file_open() and key_file_check_access()), so a key and its passphrase are guarded
 * alike. "credential:NAME" arrives here already resolved to $CREDENTIALS_DIRECTORY/NAME. */
#include <config.h>

#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io-util.h"
#include "key-backend.h"
#include "key.h"
#include "macro.h"

#define SECRET_MAX 1024

void secret_free(char *s) {
        if (!s)
                return;
        OPENSSL_cleanse(s, strlen(s));
        free(s);
}

/* Opens a key or secret file under the rule: no symlink, a regular file, owned by us and
 * closed to group and others. 'lax' turns a wrong owner or mode into a warning. */
static int open_guarded(const char *path, const char *what, bool lax, int *ret_fd, char **ret_message) {
        _cleanup_close_ int fd = -EBADF;
        const char *why = NULL;
        struct stat st;
        int r;

        r = key_file_open(path, &fd, &st);
        if (r == -ELOOP)
                return key_message(ret_message, r, "%s is a symlink; refusing to follow it (name the real file instead)", what);
        if (r == -EINVAL)
                return key_message(ret_message, r, "%s is not a regular file", what);
        if (r < 0)
                return key_message(ret_message, r, "cannot open %s: %s", what, strerror(-r));
        r = key_file_check_access(&st, &why);
        if (r < 0) {
                if (!lax)
                        return key_message(ret_message, r, "%s %s", what, why);
                (void) key_message(ret_message, 0, "%s %s", what, why);
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int key_file_load(const char *path, const struct key_options *o, EVP_PKEY **ret, char **ret_message) {
        _cleanup_free_ char *warning = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *why = NULL;
        int r;

        r = open_guarded(path, "key file", o->lax_file_access, &fd, &warning);
        if (r < 0) {
                if (ret_message)
                        *ret_message = TAKE_PTR(warning);
                return r;
        }
        r = key_load_fd(fd, o->pin, ret, &why);
        if (r == -ENOKEY)
                return key_message(ret_message, r, "%s; give the passphrase in a file (PinFile=) or a credential", why);
        if (r < 0)
                return key_message(ret_message, r, "%s", why ?: "cannot load the key");
        if (ret_message)
                *ret_message = TAKE_PTR(warning);
        return 0;
}

int key_read_secret(const char *ref, char **ret, char **ret_message) {
        _cleanup_(key_ref_done) struct key_ref kr = {};
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *why = NULL;
        size_t len;
        int r;

        if (ret_message)
                *ret_message = NULL;
        r = key_ref_parse(ref, &kr, &why);
        if (r < 0)
                return key_message(ret_message, r, "%s", why ?: "bad secret reference");
        if (kr.backend != KEY_BACKEND_FILE)
                return key_message(ret_message, -EINVAL, "a PIN or passphrase comes from a file or a credential:NAME");
        r = open_guarded(kr.target, "PIN/passphrase file", false, &fd, ret_message);
        if (r < 0)
                return r;
        r = read_full_fd(fd, SECRET_MAX, &text, &len);
        if (r < 0)
                return key_message(ret_message, r, "%s: %s", kr.target,
                               r == -EFBIG ? "PIN/passphrase file too large" : strerror(-r));
        /* One line: the newline an editor adds is not part of the secret. */
        text[strcspn(text, "\r\n")] = '\0';
        *ret = TAKE_PTR(text);
        return 0;
}
