/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "macro.h"
#include "proto.h"

int client_connect(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int client_send(int fd, const uint8_t *req, size_t req_len, int pass_fd) {
        union {
                struct cmsghdr hdr;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = (void *) req, .iov_len = req_len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (pass_fd >= 0) {
                struct cmsghdr *c;

                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof(control.buf);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
                return negative_errno();
        return 0;
}

int client_receive(int fd, int timeout_ms, uint8_t *reply, size_t *ret_reply_len) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        ssize_t n;
        int r;

        do
                r = poll(&pfd, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return negative_errno();
        if (r == 0)
                return -ETIMEDOUT;

        n = recv(fd, reply, PROTO_MAX_PACKET, MSG_TRUNC);
        if (n < 0)
                return negative_errno();
        if (n == 0)
                return -ECONNRESET;
        if ((size_t) n > PROTO_MAX_PACKET)
                return -EMSGSIZE;
        *ret_reply_len = (size_t) n;
        return 0;
}

int client_call(int fd, const uint8_t *req, size_t req_len, int pass_fd, int timeout_ms, uint8_t *reply,
                size_t *ret_reply_len) {
        int r;

        r = client_send(fd, req, req_len, pass_fd);
        if (r < 0)
                return r;
        return client_receive(fd, timeout_ms, reply, ret_reply_len);
}
