/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Mode=approve's state, in the state directory (StateDirectory=, /var/lib/modsignd):
 *
 *   approvals.json  {"approved":[{"name":"NAME","time":"RFC 3339","uid":N},...]}
 *   pending.json    {"pending":[{"name":"NAME","path":"...","kernel":"...","sha256":"...",
 *                    "requester":"...","first_seen":"...","last_seen":"...","count":N},...]}
 *
 * Names are module names as the policy compares them ('-' folded to '_', no .ko*). Each
 * change takes an exclusive flock() on the state directory, reads, and replaces the file
 * atomically (replace.h: temp file, fsync, rename, fsync of the directory); files are 0600.
 * The daemon reads approvals.json at every decision, so an approval needs no reload.
 * No logging; negative errno. */

#include <json-c/json.h>
#include <stdbool.h>

#define APPROVALS_FILE "approvals.json"
#define PENDING_FILE "pending.json"

struct approvals_pending {
        const char *name;
        const char *path;       /* may be NULL */
        const char *kernel;
        const char *sha256;
        const char *requester;
};

/* 1 approved, 0 not (or no file), < 0 the file cannot be read or is not what we write. */
int approvals_is_approved(const char *state_dir, const char *name);
/* Adds name (or counts one more sighting) to pending.json. */
int approvals_add_pending(const char *state_dir, const struct approvals_pending *p);
/* Approves name: into approvals.json, out of pending.json. *ret_pending (optional) gets the
 * pending entry it had (a new reference), or NULL. 0 approved now, 1 it was approved already. */
int approvals_approve(const char *state_dir, const char *name, uid_t uid, json_object **ret_pending);
/* A new reference to the array of pending.json (empty when there is none). */
int approvals_list_pending(const char *state_dir, json_object **ret);
/* A new reference to the array of approvals.json. */
int approvals_list_approved(const char *state_dir, json_object **ret);
