/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "io-util.h"
#include "kconfig.h"
#include "macro.h"

#define KCONFIG_MAX (4U << 20)

int kconfig_find_sig_hash(const char *text, char **ret_hash) {
        static const char key[] = "CONFIG_MODULE_SIG_HASH=";

        for (const char *line = text; line && *line;) {
                const char *eol = strchrnul(line, '\n');

                if (strncmp(line, key, sizeof(key) - 1) == 0) {
                        const char *v = line + sizeof(key) - 1;
                        size_t n = (size_t) (eol - v);
                        char *h;

                        if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
                                v++;
                                n -= 2;
                        }
                        if (n == 0 || n > 32)
                                return -EBADMSG;
                        h = strndup(v, n);
                        if (!h)
                                return -ENOMEM;
                        *ret_hash = h;
                        return 0;
                }
                line = *eol ? eol + 1 : NULL;
        }
        return -ENODATA;
}

/* Opens the regular file 'path' beneath rootfd as if rootfd were "/", so that absolute
 * symlinks inside an image tree resolve inside it. Without openat2() (old kernels, seccomp
 * filters) only the host's own root may be read with plain openat(): for any other sysroot
 * that would resolve such links on the host, so it fails closed. O_NONBLOCK: a FIFO must not
 * hang us; it is refused as not a regular file. */
static int open_in_root(int rootfd, const char *path, bool is_host_root) {
        struct open_how how = {
                .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
        struct stat st;

        if (fd < 0 && (errno == ENOSYS || errno == EPERM) && is_host_root)
                fd = openat(rootfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        if (fstat((int) fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                safe_close((int) fd);
                return -EINVAL;
        }
        return (int) fd;
}

int kernel_module_sig_hash(const char *sysroot, const char *release, char **ret_hash, char **ret_source) {
        /* prefix + release + suffix */
        static const struct {
                const char *prefix, *suffix;
        } places[] = {
                { "lib/modules/", "/build/include/config/auto.conf" },
                { "lib/modules/", "/build/.config" },
                { "boot/config-", "" },
        };
        _cleanup_close_ int rootfd = -EBADF;
        struct stat root_st, host_root_st;
        bool found_config = false, is_host_root;

        if (!release || !*release || strchr(release, '/'))
                return -EINVAL;
        rootfd = open(sysroot ? sysroot : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return negative_errno();
        if (fstat(rootfd, &root_st) < 0 || stat("/", &host_root_st) < 0)
                return negative_errno();
        is_host_root = root_st.st_dev == host_root_st.st_dev && root_st.st_ino == host_root_st.st_ino;

        for (size_t i = 0; i < ELEMENTSOF(places); i++) {
                _cleanup_free_ char *path = NULL, *text = NULL;
                _cleanup_close_ int fd = -EBADF;
                int r;

                if (asprintf(&path, "%s%s%s", places[i].prefix, release, places[i].suffix) < 0)
                        return -ENOMEM;
                fd = open_in_root(rootfd, path, is_host_root);
                if (fd < 0)
                        continue;
                r = read_full_fd(fd, KCONFIG_MAX, &text, NULL);
                if (r < 0)
                        continue;
                found_config = true;
                r = kconfig_find_sig_hash(text, ret_hash);
                if (r == -ENODATA)
                        continue;
                if (r < 0)
                        return r;
                if (ret_source)
                        *ret_source = TAKE_PTR(path);
                return 0;
        }
        return found_config ? -ENODATA : -ENOENT;
}
