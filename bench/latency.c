/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Measures the safety net's latency: from the close() of a module written into a watched
 * directory to the IN_MOVED_TO of its signed replacement, for a burst of modules written back
 * to back. Usage: latency DIR MODULE COUNT. Prints "median_ms p99_ms max_ms". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

int main(int argc, char *argv[]) {
        char *data, name[64], path[4096];
        double *closed, *lat;
        int count, fd, ifd, done = 0;
        struct stat st;
        char buf[64 * 1024];

        if (argc != 4 || (count = atoi(argv[3])) <= 0) {
                fprintf(stderr, "usage: %s DIR MODULE COUNT\n", argv[0]);
                return 2;
        }
        fd = open(argv[2], O_RDONLY);
        if (fd < 0 || fstat(fd, &st) < 0)
                return perror(argv[2]), 1;
        data = malloc((size_t) st.st_size);
        if (!data || read(fd, data, (size_t) st.st_size) != st.st_size)
                return perror("read"), 1;
        close(fd);
        closed = calloc((size_t) count, sizeof(double));
        lat = calloc((size_t) count, sizeof(double));

        ifd = inotify_init1(IN_CLOEXEC);
        if (ifd < 0 || inotify_add_watch(ifd, argv[1], IN_MOVED_TO) < 0)
                return perror("inotify"), 1;

        for (int i = 0; i < count; i++) {
                snprintf(path, sizeof(path), "%s/lat%05d.ko", argv[1], i);
                fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || write(fd, data, (size_t) st.st_size) != st.st_size)
                        return perror(path), 1;
                close(fd);
                closed[i] = now_ms();
        }

        while (done < count) {
                ssize_t n = read(ifd, buf, sizeof(buf));
                if (n <= 0)
                        return perror("read inotify"), 1;
                for (char *p = buf; p < buf + n;) {
                        struct inotify_event *ev = (struct inotify_event *) p;
                        int i;
                        if (ev->len && sscanf(ev->name, "lat%05d.ko", &i) == 1 && i >= 0 && i < count && lat[i] == 0) {
                                snprintf(name, sizeof(name), "lat%05d.ko", i);
                                if (strcmp(ev->name, name) == 0) {
                                        lat[i] = now_ms() - closed[i];
                                        done++;
                                }
                        }
                        p += sizeof(*ev) + ev->len;
                }
        }
        qsort(lat, (size_t) count, sizeof(double), cmp_double);
        printf("%.2f %.2f %.2f\n", lat[count / 2], lat[(count * 99) / 100 < count ? (count * 99) / 100 : count - 1],
               lat[count - 1]);
        return 0;
}
