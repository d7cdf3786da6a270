/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dkms-modules.h"
#include "log.h"
#include "macro.h"
#include "modsign.h"
#include "modsignctl.h"
#include "report.h"

const char *const dkms_module_state_names[_DKMS_MODULE_STATE_MAX] = {
        [DKMS_MODULE_OURS] = "signed",
        [DKMS_MODULE_UNSIGNED] = "unsigned",
        [DKMS_MODULE_OTHER_KEY] = "other-key",
        [DKMS_MODULE_BAD] = "bad-signature",
};

static struct dkms_modules *current; /* nftw() callback context */

static bool is_module_name(const char *name) {
        return fnmatch("*.ko", name, 0) == 0 || fnmatch("*.ko.xz", name, 0) == 0 ||
               fnmatch("*.ko.zst", name, 0) == 0 || fnmatch("*.ko.gz", name, 0) == 0;
}

static int add_found(struct dkms_modules *c, const char *path, const char *kernel) {
        if (c->n == c->alloc) {
                size_t alloc = c->alloc ? c->alloc * 2 : 32;
                struct dkms_module *p = reallocarray(c->items, alloc, sizeof(*p));
                if (!p)
                        return -ENOMEM;
                c->items = p;
                c->alloc = alloc;
        }
        c->items[c->n] = (struct dkms_module) { .path = strdup(path), .kernel = strdup(kernel) };
        if (!c->items[c->n].path || !c->items[c->n].kernel)
                return -ENOMEM;
        c->n++;
        return 0;
}

/* DKMSTREE/NAME/VERSION/KVER/ARCH/module/FILE: the component three above FILE is the kernel. */
static bool dkms_tree_path_is_for(const char *path, const char *kernel) {
        const char *slash[5] = {};
        const char *p = path + strlen(path);
        size_t n = 0;

        while (p > path && n < 4) {
                p--;
                if (*p == '/')
                        slash[n++] = p;
        }
        if (n < 4)
                return false;
        /* slash[0] before FILE, [1] before "module", [2] before ARCH, [3] before KVER */
        return (size_t) (slash[0] - slash[1] - 1) == strlen("module") && strncmp(slash[1] + 1, "module", 6) == 0 &&
               (size_t) (slash[2] - slash[3] - 1) == strlen(kernel) && strncmp(slash[3] + 1, kernel, strlen(kernel)) == 0;
}

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        const char *name = path + ftw->base;

        if (type == FTW_D && streq(name, "build") && current->walk_dkms_tree)
                return FTW_SKIP_SUBTREE; /* DKMS's build area: not a result yet */
        if (type != FTW_F || !S_ISREG(st->st_mode) || !is_module_name(name))
                return FTW_CONTINUE;
        if (current->walk_dkms_tree && !dkms_tree_path_is_for(path, current->walk_kernel))
                return FTW_CONTINUE;
        return add_found(current, path, current->walk_kernel) < 0 ? FTW_STOP : FTW_CONTINUE;
}

static int walk(struct dkms_modules *c, const char *root, const char *kernel, bool dkms_tree) {
        int r;

        current = c;
        c->walk_kernel = kernel;
        c->walk_dkms_tree = dkms_tree;
        r = nftw(root, visit, 16, FTW_PHYS | FTW_ACTIONRETVAL);
        current = NULL;
        if (r < 0 && errno != ENOENT)
                return log_error_errno(-errno, "%s: cannot walk: %m", root);
        return r == FTW_STOP ? log_oom() : 0;
}

int dkms_modules_collect(struct dkms_modules *c) {
        for (size_t i = 0; i < c->n_kernels; i++) {
                static const char *const installed[] = { "updates/dkms", "extra" };
                const char *k = c->kernels[i];
                int r;

                for (size_t j = 0; j < ELEMENTSOF(installed); j++) {
                        _cleanup_free_ char *dir = NULL;
                        if (asprintf(&dir, "%s/%s/%s", c->modules_dir, k, installed[j]) < 0)
                                return log_oom();
                        r = walk(c, dir, k, false);
                        if (r < 0)
                                return r;
                }
                r = walk(c, c->dkms_tree, k, true);
                if (r < 0)
                        return r;
        }
        return 0;
}

static enum dkms_module_state check_one(const struct dkms_modules *c, const char *path) {
        _cleanup_close_ int dir_fd = -EBADF;
        struct module_file m;
        const char *base, *why = NULL;
        int r;

        /* A module that cannot be read or parsed is a result here, not an error. */
        if (open_parent_dir(path, &dir_fd, &base) < 0 || module_file_open(dir_fd, base, &m, &why) < 0)
                return DKMS_MODULE_BAD;
        r = modsign_verify(&m, c->trusted, NULL);
        module_file_close(&m);
        return r == 0 ? DKMS_MODULE_OURS : r == -ENODATA ? DKMS_MODULE_UNSIGNED : r == -ENOKEY ? DKMS_MODULE_OTHER_KEY : DKMS_MODULE_BAD;
}

void dkms_modules_check(struct dkms_modules *c) {
        for (size_t i = 0; i < c->n; i++)
                c->items[i].state = check_one(c, c->items[i].path);
}

size_t dkms_modules_not_ours(const struct dkms_modules *c) {
        size_t n = 0;
        for (size_t i = 0; i < c->n; i++)
                n += c->items[i].state != DKMS_MODULE_OURS;
        return n;
}

int dkms_modules_list_kernels(struct dkms_modules *c) {
        _cleanup_close_ int fd = open(c->modules_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char **list = NULL;
        size_t n = 0;
        int r;

        if (fd < 0)
                return log_error_errno(-errno, "%s: %m", c->modules_dir);
        r = report_list_kernels(fd, &list, &n);
        if (r < 0)
                return log_error_errno(r, "%s: %m", c->modules_dir);
        for (size_t i = 0; i < n; i++)
                if (c->n_kernels < DKMS_MODULES_MAX_KERNELS)
                        c->kernels[c->n_kernels++] = list[i];
                else
                        free(list[i]);
        free(list);
        return 0;
}

void dkms_modules_done(struct dkms_modules *c) {
        for (size_t i = 0; i < c->n; i++) {
                free(c->items[i].path);
                free(c->items[i].kernel);
        }
        free(c->items);
        c->items = NULL;
        c->n = c->alloc = 0;
}
