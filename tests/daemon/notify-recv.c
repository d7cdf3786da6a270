/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* notify-recv SOCKET: the receiving end of sd_notify() for the daemon tests.
 *
 * Binds an AF_UNIX datagram socket at SOCKET (as systemd's NOTIFY_SOCKET) and writes every
 * datagram it receives to stdout, followed by a line "--" so that multi-line messages
 * ("STOPPING=1\nSTATUS=...") stay recognisable. Each datagram is written with one write(2)
 * as it arrives (no buffering), so a test can poll the output file. Runs until killed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char *argv[]) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        static char buf[65536 + 8];
        int fd, one = 1;

        if (argc != 2) {
                fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
                return 2;
        }
        if (strlen(argv[1]) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "notify-recv: %s: path too long\n", argv[1]);
                return 1;
        }
        strcpy(sa.sun_path, argv[1]);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                perror("notify-recv: socket");
                return 1;
        }
        /* sd_notify() attaches credentials; accepting them is harmless and like systemd. */
        (void) setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
        (void) unlink(argv[1]);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                fprintf(stderr, "notify-recv: bind %s: %s\n", argv[1], strerror(errno));
                return 1;
        }
        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf) - 4, 0);
                size_t len;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("notify-recv: recv");
                        return 1;
                }
                len = (size_t) n;
                if (len > 0 && buf[len - 1] != '\n')
                        buf[len++] = '\n';
                memcpy(buf + len, "--\n", 3);
                len += 3;
                if (write(STDOUT_FILENO, buf, len) < 0)
                        return 1;
        }
}
