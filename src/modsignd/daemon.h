/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's state and the one operation everything funnels into: look at a module and
 * sign it if it needs it, on a worker thread, reporting back on the loop thread. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "daemon-key.h"
#include "daemon-policy.h"
#include "signing-key.h"
#include "workers.h"

struct server;
struct watcher;

struct daemon_stats {
        uint64_t signed_;    /* new signatures written */
        uint64_t unchanged;  /* already signed by our key */
        uint64_t foreign;    /* signed by another key: left alone */
        uint64_t refused;    /* refused by a rule (kernel not installed, compressed over the socket...) */
        uint64_t failed;     /* errors */
        uint64_t requests;   /* socket requests served */
};

struct daemon {
        sd_event *event;
        const char *config_path;
        bool config_required;   /* given with --config: it must exist */
        const char *dropin_dir;
        struct config config;
        struct signing_key *key;
        struct workers *workers;
        struct server *server;
        struct watcher *watcher;
        struct daemon_stats stats;
        uint64_t start_usec;
        bool stopping;
        struct audit_log *audit;          /* daemon-audit.h */
        sd_event_source *audit_timer;
        uint64_t audit_head_logged_seq;
        struct daemon_policy *policy;     /* the signing gate; swapped by a reload */
        struct daemon_rate rate;          /* RateLimit=: orders charges to the shared bucket */
        struct daemon_key_state key_state; /* daemon-key.h: a token that went away, re-opened */
};

enum tree_outcome {
        TREE_SIGNED,
        TREE_UNCHANGED,
        TREE_FOREIGN,
        TREE_NOT_MODULE,
        TREE_REFUSED,
        TREE_FAILED,
        TREE_CANCELLED, /* the daemon stopped before the job ran */
};

struct tree_result {
        enum tree_outcome outcome;
        const char *dir;
        const char *name;
        const char *why;     /* static text, for refusals and failures */
        int error;
        dev_t dev;           /* of the file we wrote, so our own rename can be recognised */
        ino_t ino;
};

typedef void (*tree_done_t)(struct daemon *d, const struct tree_result *res, void *userdata);

/* Queues dir/name (dir absolute, name one component) for a look on a worker. 'requester' (NULL:
 * the watcher) is who asked, for the record. */
int daemon_queue_tree_module(struct daemon *d, const char *dir, const char *name, const char *requester,
                             tree_done_t done, void *userdata);

/* Whether a file name is one a module goes by: *.ko, *.ko.xz, *.ko.zst, *.ko.gz. */
bool module_file_name(const char *name);

/* Whether /lib/modules/RELEASE (or MODULES_ROOT/RELEASE) exists: modules for kernels that are
 * not installed are refused. The watcher checks a module under ROOT/lib/modules against that
 * tree's kernels, so that an image or chroot tree is judged by its own. */
bool kernel_installed(const char *release);
bool kernel_installed_in(const char *modules_root, const char *release);

void daemon_notify_status(struct daemon *d);
/* Reloads configuration and key; keeps the old ones on any error and says why. */
int daemon_reload(struct daemon *d);
