/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The modules DKMS built for some kernels, and whether each is signed by our key: in the
 * DKMS tree (DKMSTREE/NAME/VERSION/KVER/ARCH/module/) and installed (MODULES/KVER/updates/dkms
 * and extra/). Shared by dkms-check and doctor. Functions log what goes wrong. */

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

#define DKMS_MODULES_MAX_KERNELS 64

enum dkms_module_state {
        DKMS_MODULE_OURS,
        DKMS_MODULE_UNSIGNED,
        DKMS_MODULE_OTHER_KEY,
        DKMS_MODULE_BAD,
        _DKMS_MODULE_STATE_MAX,
};

struct dkms_module {
        char *path;
        char *kernel;
        enum dkms_module_state state;
};

struct dkms_modules {
        const char *modules_dir;
        const char *dkms_tree;
        char **kernels;
        size_t n_kernels;
        STACK_OF(X509) *trusted;
        struct dkms_module *items;
        size_t n, alloc;
        /* nftw() has no userdata: the walk in progress */
        const char *walk_kernel;
        bool walk_dkms_tree;
};

extern const char *const dkms_module_state_names[_DKMS_MODULE_STATE_MAX];

/* Every kernel directory under modules_dir (when none was asked for). */
int dkms_modules_list_kernels(struct dkms_modules *c);
/* Finds the module files of c->kernels. */
int dkms_modules_collect(struct dkms_modules *c);
/* (Re)computes each one's state against c->trusted. */
void dkms_modules_check(struct dkms_modules *c);
size_t dkms_modules_not_ours(const struct dkms_modules *c);
void dkms_modules_done(struct dkms_modules *c);
