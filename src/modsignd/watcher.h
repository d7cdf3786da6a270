/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The safety net: inotify over the module trees, so that a module that arrives unsigned by
 * any route (cp, cp -f, install, mv within or across file systems, dkms' temporary directory
 * moved into place, a new kernel's tree) is signed once it is closed.
 *
 * A configured path whose last components are lib/modules is a tree of kernels: only each
 * kernel's updates/, extra/ and misc/ are watched (never kernel/, the distribution's own
 * modules). Any other path is watched whole, except directories named build (dkms builds in
 * them; what matters is what it installs). Symlinks are never followed. A configured path that
 * does not exist yet is watched for, through its nearest existing parent. */

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

struct daemon;
struct watcher;

/* Adds the watches of d->config's trees and queues every module in them for one look. */
int watcher_new(struct daemon *d, struct watcher **ret);
void watcher_free(struct watcher *w);
unsigned watcher_n_watches(const struct watcher *w);

/* Called by a worker right after it renamed a signed module into place: the arrival of that
 * file (that inode, with that size and modification time) is ours, not a new module. A later
 * write into the same inode (cp -f) changes the time and is news again. Thread-safe. */
void watcher_note_own_file(const struct stat *st);

/* Calls fn for every module file under root, with the same rules as the watcher (a
 * lib/modules root visits only updates/extra/misc). Returns the number visited. */
int module_tree_walk(const char *root, int (*fn)(const char *dir, const char *name, void *userdata), void *userdata);

/* Whether a path is a tree of kernels (ends in lib/modules). */
bool path_is_modules_root(const char *path);
