/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sign-client: a minimal client of modsignd's socket for the daemon tests.
 *
 *   sign-client SOCKET sign MODULE OUT [HASH [NAME [KERNEL]]]
 *       Sends a SIGN request (src/lib/proto.h) with MODULE's fd (SCM_RIGHTS) and the HASH,
 *       NAME (default: MODULE's base name) and KERNEL fields ("-" leaves a field out), the
 *       way the DKMS shim does. On an OK reply writes MODULE[0:BODY_LEN] + TRAILER to OUT
 *       (what sign-file would have written) and prints "ok body_len=N trailer_len=M hash=H".
 *
 *   sign-client SOCKET sign-many HASH MODULE OUT [MODULE OUT]...
 *       The same for many modules, one SIGN request each, from one process and over one
 *       connection.
 *
 *   sign-client SOCKET raw PACKET [FD...]
 *       Sends the bytes of the file PACKET as one packet, as they are, with each FD passed
 *       alongside (SCM_RIGHTS): "r:PATH" (opened read-only), "w:PATH" (write-only), or
 *       "sock" (one end of a socketpair). Prints what came back.
 *
 *   sign-client build OUT TYPE [TAG=STRING]...
 *       Writes one well-formed packet of TYPE (a number, see enum proto_type) with the given
 *       string fields (TAG a number, see enum proto_tag) to the file OUT, for tests that
 *       send it (raw) as it is or mangle it first.
 *
 *   sign-client check PACKET
 *       Decodes PACKET as the daemon would. Prints "scan-unsafe PATH" (exit 1) when it is a
 *       SCAN request naming a path or kernel that exists on this machine, so that a test
 *       never sends a request that would make the daemon sign outside its scratch trees;
 *       "ok" (exit 0) otherwise.
 *
 * Output, one line on stdout: "ok ...", "error errno=N rule=R message=M", "closed",
 * "timeout", "badreply". Exit status: 0 OK reply, 1 error reply, 2 usage or local failure,
 * 3 the daemon closed the connection without a reply, 4 no reply in time, 5 undecodable. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* copy_file_range() */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"

#define TIMEOUT_MS (30 * 1000)
#define MAX_FDS 8

static uint8_t request[PROTO_MAX_PACKET * 2], reply[PROTO_MAX_PACKET];

static int usage(void) {
        fprintf(stderr, "usage: sign-client SOCKET sign MODULE OUT [HASH [NAME [KERNEL]]]\n"
                        "       sign-client SOCKET sign-many HASH MODULE OUT [MODULE OUT]...\n"
                        "       sign-client SOCKET raw PACKET [r:PATH|w:PATH|sock]...\n"
                        "       sign-client build OUT TYPE [TAG=STRING]...\n"
                        "       sign-client check PACKET\n");
        return 2;
}

static int read_file(const char *path, uint8_t *buf, size_t max, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        size_t len = 0;

        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t n = read(fd, buf + len, max - len);
                if (n < 0) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len == max) {
                        close(fd);
                        return -EFBIG;
                }
        }
        close(fd);
        *ret_len = len;
        return 0;
}

/* Prints the reply; returns the exit status. */
static int report_reply(const uint8_t *buf, size_t len, struct proto_message *ret) {
        struct proto_message m;
        char *message = NULL, *rule = NULL, *json = NULL;
        uint32_t error = 0;

        if (proto_decode(buf, len, &m) < 0) {
                printf("badreply\n");
                return 5;
        }
        if (ret)
                *ret = m;
        if (m.type == PROTO_REPLY_ERROR) {
                (void) proto_get_u32(&m, PROTO_TAG_ERRNO, &error);
                (void) proto_get_string(&m, PROTO_TAG_MESSAGE, &message);
                (void) proto_get_string(&m, PROTO_TAG_RULE, &rule);
                printf("error errno=%u rule=%s message=%s\n", error, rule ? rule : "-", message ? message : "-");
                free(message);
                free(rule);
                return 1;
        }
        if (m.type != PROTO_REPLY_OK) {
                printf("badreply\n");
                return 5;
        }
        if (!ret) { /* raw mode: say what kind of OK it was */
                (void) proto_get_string(&m, PROTO_TAG_JSON, &json);
                printf("ok%s%s\n", json ? " json=" : "", json ? json : "");
                free(json);
        }
        return 0;
}

static int send_raw(int fd, const uint8_t *buf, size_t len, const int *fds, int n_fds) {
        union {
                struct cmsghdr hdr;
                char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        } control = {};
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (n_fds > 0) {
                struct cmsghdr *c;

                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t) n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t) n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t) n_fds);
        }
        return sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Waits for one packet: 0 and its length, or the exit status to give. */
static int receive(int fd, size_t *ret_len) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        ssize_t n;
        int r;

        do
                r = poll(&pfd, 1, TIMEOUT_MS);
        while (r < 0 && errno == EINTR);
        if (r == 0) {
                printf("timeout\n");
                return 4;
        }
        n = recv(fd, reply, sizeof(reply), MSG_TRUNC);
        if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE))) {
                printf("closed\n");
                return 3;
        }
        if (n < 0 || (size_t) n > sizeof(reply)) {
                printf("badreply\n");
                return 5;
        }
        *ret_len = (size_t) n;
        return 0;
}

static int do_raw(const char *socket_path, int argc, char *argv[]) {
        int fds[MAX_FDS], n_fds = 0, fd, r;
        size_t len, reply_len;

        if (argc < 1 || argc - 1 > MAX_FDS)
                return usage();
        r = read_file(argv[0], request, sizeof(request), &len);
        if (r < 0) {
                fprintf(stderr, "sign-client: %s: %s\n", argv[0], strerror(-r));
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                int f;

                if (strcmp(a, "sock") == 0) {
                        int pair[2];
                        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                                return 2;
                        f = pair[0];
                } else if (strncmp(a, "r:", 2) == 0)
                        f = open(a + 2, O_RDONLY | O_CLOEXEC);
                else if (strncmp(a, "w:", 2) == 0)
                        f = open(a + 2, O_WRONLY | O_CLOEXEC);
                else
                        return usage();
                if (f < 0) {
                        fprintf(stderr, "sign-client: %s: %s\n", a, strerror(errno));
                        return 2;
                }
                fds[n_fds++] = f;
        }

        r = client_connect(socket_path, &fd);
        if (r < 0) {
                fprintf(stderr, "sign-client: connect %s: %s\n", socket_path, strerror(-r));
                return 2;
        }
        r = send_raw(fd, request, len, fds, n_fds);
        if (r < 0 && r != -EPIPE) { /* EPIPE: already closed; a reply may still be queued */
                if (r == -EMSGSIZE || r == -ENOBUFS) {
                        printf("closed\n"); /* the kernel refused a packet that large: never sent */
                        return 3;
                }
                fprintf(stderr, "sign-client: send: %s\n", strerror(-r));
                return 2;
        }
        r = receive(fd, &reply_len);
        if (r != 0)
                return r;
        return report_reply(reply, reply_len, NULL);
}

/* Copies all of in_fd to out_fd from offset 0 on both (explicit offsets: the daemon holds the
 * same open file). In the kernel, as the DKMS shim copies; read/write where it cannot. */
static int copy_all(int in_fd, int out_fd, uint64_t size) {
        static uint8_t buf[1 << 16];
        loff_t in_off = 0, out_off = 0;

        while ((uint64_t) in_off < size) {
                ssize_t n = copy_file_range(in_fd, &in_off, out_fd, &out_off, size - (uint64_t) in_off, 0);
                if (n > 0)
                        continue;
                if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
                        break;
                return -1;
        }
        while ((uint64_t) in_off < size) {
                ssize_t n = pread(in_fd, buf, sizeof(buf), in_off);
                if (n <= 0 || pwrite(out_fd, buf, (size_t) n, out_off) != n)
                        return -1;
                in_off += n;
                out_off += n;
        }
        return 0;
}

/* Gives the anonymous file tmp_fd the name path, over whatever was there. */
static int link_over(int tmp_fd, const char *path) {
        char proc[64];

        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", tmp_fd);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
                return 0;
        if (errno != EEXIST || unlink(path) < 0)
                return -1;
        return linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
}

/* Signs one module. *conn is the connection to use, or -1 to connect first; it is left open
 * for the next request when the daemon answered. */
static int do_sign(const char *socket_path, int *conn, int argc, char *argv[]) {
        const char *module, *out, *hash = NULL, *name = NULL, *kernel = NULL;
        const struct proto_field *trailer;
        char out_dir[4096], *slash;
        struct proto_message m;
        struct proto_writer w;
        size_t len, reply_len;
        uint64_t body_len = 0;
        char *reply_hash = NULL;
        int fd, module_fd, out_fd, r;
        struct stat st;

        if (argc < 2 || argc > 5)
                return usage();
        module = argv[0];
        out = argv[1];
        if (argc > 2 && strcmp(argv[2], "-") != 0)
                hash = argv[2];
        if (argc > 3) {
                if (strcmp(argv[3], "-") != 0)
                        name = argv[3];
        } else {
                name = strrchr(module, '/') ? strrchr(module, '/') + 1 : module;
        }
        if (argc > 4 && strcmp(argv[4], "-") != 0)
                kernel = argv[4];

        module_fd = open(module, O_RDONLY | O_CLOEXEC);
        if (module_fd < 0 || fstat(module_fd, &st) < 0) {
                fprintf(stderr, "sign-client: %s: %s\n", module, strerror(errno));
                return 2;
        }
        /* OUT is written anonymously and named only after an OK reply: a refusal leaves none. */
        snprintf(out_dir, sizeof(out_dir), "%s", out);
        slash = strrchr(out_dir, '/');
        if (slash)
                *slash = '\0';
        out_fd = open(slash ? (out_dir[0] ? out_dir : "/") : ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, 0644);
        if (out_fd < 0) {
                fprintf(stderr, "sign-client: %s: %s\n", out, strerror(errno));
                return 2;
        }
        proto_writer_init(&w, request, PROTO_REQ_SIGN);
        proto_put_string(&w, PROTO_TAG_HASH, hash);
        proto_put_string(&w, PROTO_TAG_KERNEL, kernel);
        proto_put_string(&w, PROTO_TAG_NAME, name);
        if (proto_writer_finish(&w, &len) < 0)
                return 2;

        fd = *conn;
        if (fd < 0) {
                r = client_connect(socket_path, &fd);
                if (r < 0) {
                        fprintf(stderr, "sign-client: connect %s: %s\n", socket_path, strerror(-r));
                        return 2;
                }
                *conn = fd;
        }
        r = client_send(fd, request, len, module_fd);
        /* While the daemon hashes and signs, copy the module, as the DKMS shim does. */
        if (r >= 0 && copy_all(module_fd, out_fd, (uint64_t) st.st_size) < 0) {
                fprintf(stderr, "sign-client: copying %s: %s\n", module, strerror(errno));
                return 2;
        }
        if (r >= 0)
                r = client_receive(fd, TIMEOUT_MS, reply, &reply_len);
        if (r == -ETIMEDOUT) {
                printf("timeout\n");
                return 4;
        }
        if (r == -ECONNRESET || r == -EPIPE) {
                printf("closed\n");
                return 3;
        }
        if (r < 0) {
                fprintf(stderr, "sign-client: %s\n", strerror(-r));
                return 2;
        }
        r = report_reply(reply, reply_len, &m);
        if (r != 0)
                return r;
        trailer = &m.fields[PROTO_TAG_TRAILER];
        if (!trailer->data || proto_get_u64(&m, PROTO_TAG_BODY_LEN, &body_len) < 0) {
                printf("badreply\n");
                return 5;
        }
        if (body_len > (uint64_t) st.st_size) {
                fprintf(stderr, "sign-client: BODY_LEN %llu is beyond the end of %s\n",
                        (unsigned long long) body_len, module);
                return 2;
        }
        (void) proto_get_string(&m, PROTO_TAG_HASH, &reply_hash);

        /* OUT = the module's first BODY_LEN bytes, then the trailer as sent. */
        if (ftruncate(out_fd, (off_t) body_len) < 0 ||
            pwrite(out_fd, trailer->data, trailer->len, (off_t) body_len) != (ssize_t) trailer->len ||
            link_over(out_fd, out) < 0 || close(out_fd) < 0) {
                fprintf(stderr, "sign-client: %s: %s\n", out, strerror(errno));
                return 2;
        }
        printf("ok body_len=%llu trailer_len=%u hash=%s\n", (unsigned long long) body_len, (unsigned) trailer->len,
               reply_hash ? reply_hash : "-");
        free(reply_hash);
        close(module_fd);
        return 0;
}

static int do_build(int argc, char *argv[]) {
        struct proto_writer w;
        size_t len;
        FILE *f;

        if (argc < 2)
                return usage();
        proto_writer_init(&w, request, (enum proto_type) strtoul(argv[1], NULL, 0));
        for (int i = 2; i < argc; i++) {
                char *eq = strchr(argv[i], '=');
                if (!eq)
                        return usage();
                proto_put_string(&w, (enum proto_tag) strtoul(argv[i], NULL, 0), eq + 1);
        }
        if (proto_writer_finish(&w, &len) < 0) {
                fprintf(stderr, "sign-client: the packet does not fit in %u bytes\n", PROTO_MAX_PACKET);
                return 2;
        }
        f = fopen(argv[0], "we");
        if (!f || fwrite(request, 1, len, f) != len || fclose(f) != 0) {
                fprintf(stderr, "sign-client: %s: %s\n", argv[0], strerror(errno));
                return 2;
        }
        return 0;
}

static int do_check(const char *packet) {
        struct proto_message m;
        char *path = NULL, *kernel = NULL;
        size_t len;
        struct stat st;
        int r;

        r = read_file(packet, request, sizeof(request), &len);
        if (r < 0) {
                fprintf(stderr, "sign-client: %s: %s\n", packet, strerror(-r));
                return 2;
        }
        if (proto_decode(request, len, &m) < 0 || m.type != PROTO_REQ_SCAN) {
                printf("ok\n");
                return 0;
        }
        (void) proto_get_string(&m, PROTO_TAG_PATH, &path);
        (void) proto_get_string(&m, PROTO_TAG_KERNEL, &kernel);
        /* No PATH and no KERNEL means "every watched tree": only the test's own trees. A
         * KERNEL is unsafe when /lib/modules/KERNEL exists, a PATH when it exists. */
        r = path && stat(path, &st) >= 0;
        if (kernel) {
                char k[4096];
                snprintf(k, sizeof(k), "/lib/modules/%s", kernel);
                if (stat(k, &st) >= 0)
                        r = 1;
        }
        if (r)
                printf("scan-unsafe %s%s%s\n", path ? path : "", path && kernel ? " " : "", kernel ? kernel : "");
        else
                printf("ok\n");
        free(path);
        free(kernel);
        return r ? 1 : 0;
}

int main(int argc, char *argv[]) {
        if (argc == 3 && strcmp(argv[1], "check") == 0)
                return do_check(argv[2]);
        if (argc >= 4 && strcmp(argv[1], "build") == 0)
                return do_build(argc - 2, argv + 2);
        if (argc < 3)
                return usage();
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (strcmp(argv[2], "sign") == 0) {
                int conn = -1;
                return do_sign(argv[1], &conn, argc - 3, argv + 3);
        }
        if (strcmp(argv[2], "raw") == 0)
                return do_raw(argv[1], argc - 3, argv + 3);
        if (strcmp(argv[2], "sign-many") == 0 && argc >= 6 && (argc - 4) % 2 == 0) {
                /* One process, one SIGN per module: what a hook signing many modules costs
                 * without a process start each time (the benchmark's batch), over one
                 * connection as a client with many modules to sign would use it. */
                int conn = -1;
                for (int i = 4; i < argc; i += 2) {
                        char *args[3] = { argv[i], argv[i + 1], argv[3] };
                        int r = do_sign(argv[1], &conn, 3, args);
                        if (r != 0)
                                return r;
                }
                return 0;
        }
        return usage();
}
