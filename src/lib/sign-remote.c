/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "io-util.h"
#include "macro.h"
#include "module.h"
#include "proto.h"
#include "replace.h"
#include "sign-remote.h"

/* The trailer must be one well-formed signature: PKCS#7 of sig_len bytes, module_signature
 * saying so, and the magic. Anything else is not appended. */
static int check_trailer(const uint8_t *t, size_t len) {
        uint8_t expect[MODULE_SIG_TRAILER_LEN];

        if (len <= MODULE_SIG_TRAILER_LEN)
                return -EBADMSG;
        module_sig_trailer_build((uint32_t) (len - MODULE_SIG_TRAILER_LEN), expect);
        return memcmp(t + len - MODULE_SIG_TRAILER_LEN, expect, MODULE_SIG_TRAILER_LEN) == 0 ? 0 : -EBADMSG;
}

/* Copies the module into its replacement while the daemon hashes and signs it: the two are
 * independent, and waiting for the answer first would add the copy to every signing. When
 * the daemon keeps fewer bytes (it stripped an old signature), the copy is cut there. */
static int copy_ahead(int dir_fd, const char *name, int module_fd, const struct stat *st, struct replace *ret) {
        int r;

        r = replace_begin(dir_fd, name, st, ret);
        if (r < 0)
                return r;
        r = copy_fd_prefix(module_fd, ret->fd, (uint64_t) st->st_size);
        if (r < 0)
                replace_abort(ret);
        return r;
}

static int finish_signed(struct replace *out, uint64_t body_len, const uint8_t *trailer, size_t trailer_len) {
        int r = 0;

        if (ftruncate(out->fd, (off_t) body_len) < 0 || lseek(out->fd, (off_t) body_len, SEEK_SET) < 0)
                r = negative_errno();
        if (r >= 0)
                r = loop_write(out->fd, trailer, trailer_len);
        if (r >= 0)
                r = replace_commit(out);
        return r;
}

static int read_reply(const struct proto_message *m, struct sign_remote_reply *reply, uint64_t *ret_body_len) {
        uint32_t err = 0;
        int r;

        if (m->type == PROTO_REPLY_ERROR) {
                if (proto_get_u32(m, PROTO_TAG_ERRNO, &err) < 0 || err == 0 || err > 4095)
                        err = EIO;
                reply->error = -(int) err;
                (void) proto_get_string(m, PROTO_TAG_MESSAGE, &reply->message);
                (void) proto_get_string(m, PROTO_TAG_RULE, &reply->rule);
                return 0;
        }
        if (m->type != PROTO_REPLY_OK)
                return -EBADMSG;
        r = proto_get_u64(m, PROTO_TAG_BODY_LEN, ret_body_len);
        if (r < 0)
                return -EBADMSG;
        (void) proto_get_string(m, PROTO_TAG_HASH, &reply->hash);
        return 0;
}

static int sign_remote_full(const char *socket_path, int dir_fd, const char *name, const char *hash, const char *kernel,
                            const char *origin, const char *dkms_path, int timeout_ms, struct sign_remote_reply *reply) {
        static uint8_t req[PROTO_MAX_PACKET], buf[PROTO_MAX_PACKET];
        _cleanup_close_ int module_fd = -EBADF, sock = -EBADF;
        _cleanup_(replace_abort) struct replace out = REPLACE_NULL;
        struct proto_message m;
        struct proto_writer w;
        const struct proto_field *t;
        uint64_t body_len = 0;
        size_t req_len, len;
        struct stat st;
        int r;

        *reply = (struct sign_remote_reply) {};

        module_fd = openat_regular(dir_fd, name, O_RDONLY | O_NOFOLLOW, 0, &st);
        if (module_fd < 0)
                return module_fd;

        proto_writer_init(&w, req, PROTO_REQ_SIGN);
        if (hash)
                proto_put_string(&w, PROTO_TAG_HASH, hash);
        if (kernel)
                proto_put_string(&w, PROTO_TAG_KERNEL, kernel);
        proto_put_string(&w, PROTO_TAG_NAME, name);
        if (origin)
                proto_put_string(&w, PROTO_TAG_ORIGIN, origin);
        if (dkms_path)
                proto_put_string(&w, PROTO_TAG_DKMS_PATH, dkms_path);
        r = proto_writer_finish(&w, &req_len);
        if (r < 0)
                return r;

        r = client_connect(socket_path, &sock);
        if (r < 0)
                return r;
        r = client_send(sock, req, req_len, module_fd);
        if (r < 0)
                return r;
        r = copy_ahead(dir_fd, name, module_fd, &st, &out);
        if (r < 0)
                return r;
        r = client_receive(sock, timeout_ms, buf, &len);
        if (r < 0)
                return r;
        r = proto_decode(buf, len, &m);
        if (r < 0)
                return -EBADMSG;
        r = read_reply(&m, reply, &body_len);
        if (r < 0 || reply->error)
                return r;

        t = &m.fields[PROTO_TAG_TRAILER];
        if (!t->data || check_trailer(t->data, t->len) < 0 || body_len > (uint64_t) st.st_size)
                return -EBADMSG;
        r = finish_signed(&out, body_len, t->data, t->len);
        if (r < 0)
                return r;
        reply->sig_len = t->len;
        return 0;
}

int sign_remote(const char *socket_path, int dir_fd, const char *name, const char *hash, const char *kernel,
                int timeout_ms, struct sign_remote_reply *reply) {
        return sign_remote_full(socket_path, dir_fd, name, hash, kernel, NULL, NULL, timeout_ms, reply);
}

int sign_remote_dkms(const char *socket_path, int dir_fd, const char *name, const char *hash, const char *kernel,
                     const char *dkms_path, int timeout_ms, struct sign_remote_reply *reply) {
        return sign_remote_full(socket_path, dir_fd, name, hash, kernel, "dkms", dkms_path, timeout_ms, reply);
}

void sign_remote_reply_done(struct sign_remote_reply *reply) {
        free(reply->message);
        free(reply->rule);
        free(reply->hash);
        *reply = (struct sign_remote_reply) {};
}
