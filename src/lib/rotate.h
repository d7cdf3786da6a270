/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Key rotation (modsignctl rotate): its state file and the pieces that touch the file system.
 *
 * A rotation goes through these phases, in order, and records each in
 * STATE_DIRECTORY/rotation.json (replaced atomically, so a crash leaves the previous state or
 * the next one, never a torn file):
 *
 *   staged         the new key and certificate are chosen and belong together
 *   waiting-trust  the old key still signs; we wait for the running kernel to trust the new
 *                  certificate (enrolment and a reboot), unless forced
 *   resigning      every module whose signature verifies against the OLD certificate is
 *                  re-signed with the new key, one atomic replacement each; the state lists
 *                  the modules done and pending, so a resumed run continues where it stopped
 *   switching      the configuration drop-in names the new key, the daemon reloads, the old
 *                  key file is retired
 *   done
 *
 * The orchestration (and logging) is the CLI's (src/modsignctl/cmd-rotate.c). */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROTATE_STATE_FILE "rotation.json"
#define ROTATE_DEFAULT_DROPIN "50-rotation.conf"

enum rotate_phase {
        ROTATE_STAGED,
        ROTATE_WAITING_TRUST,
        ROTATE_RESIGNING,
        ROTATE_SWITCHING,
        ROTATE_DONE,
        _ROTATE_PHASE_MAX,
};

const char *rotate_phase_to_string(enum rotate_phase p);
int rotate_phase_from_string(const char *s, enum rotate_phase *ret);

struct rotate_list {
        char **items;
        size_t n;
};

struct rotate_state {
        enum rotate_phase phase;
        int64_t started, updated;      /* seconds since the epoch */
        char *old_key, *old_cert, *old_fingerprint;
        char *new_key, *new_cert, *new_fingerprint;
        char *new_pin_file;            /* NULL: the new key needs no PIN */
        char *modules_dir, *dkms_tree; /* the roots searched for modules */
        char *dropin;                  /* the configuration drop-in written at the switch */
        bool delete_old;
        char *retired_key;             /* where the old key file went ("" when deleted) */
        struct rotate_list pending, done, skipped;
};

void rotate_state_done(struct rotate_state *s);

int rotate_list_add(struct rotate_list *l, const char *item);
bool rotate_list_contains(const struct rotate_list *l, const char *item);
/* Removes the first entry equal to item; -ENOENT when there is none. */
int rotate_list_remove(struct rotate_list *l, const char *item);
void rotate_list_done(struct rotate_list *l);

/* The state as JSON (a new object), and back. -EBADMSG for a document that is not a rotation
 * state (a missing field, an unknown phase). */
int rotate_state_to_json(const struct rotate_state *s, json_object **ret);
int rotate_state_from_json(json_object *o, struct rotate_state *ret);

/* Reads dir/rotation.json: -ENOENT when there is none. */
int rotate_state_load(const char *dir, struct rotate_state *ret);
/* Writes dir/rotation.json atomically and durably (mode 0600), setting s->updated. */
int rotate_state_save(const char *dir, struct rotate_state *s);

/* Every module file (*.ko, *.ko.xz, *.ko.zst, *.ko.gz; regular files only, symlinks are never
 * followed) under MODULES_DIR/<release>/{updates,extra,misc} for each release, and under
 * dkms_tree; either root may be NULL or missing. Sorted, without duplicates. */
int rotate_find_modules(const char *modules_dir, const char *dkms_tree, struct rotate_list *ret);

/* Writes the configuration drop-in 'path' atomically (mode 0644): [Key] PrivateKey=key,
 * Certificate=cert, and PinFile=pin_file (an empty PinFile= when NULL, which clears one the
 * main file may set for the old key). Creates the drop-in directory (one level) if missing. */
int rotate_write_dropin(const char *path, const char *key, const char *cert, const char *pin_file);
