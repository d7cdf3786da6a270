/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Whether the daemon's key can sign, and getting it back when its token goes away.
 *
 * The key is loaded once and kept (a token's session stays logged in). When a signature fails
 * because the token or the session with it is gone (-ENODEV from the library: modsign.h), the
 * key is "down": the request fails with a message that names the token and says when the next
 * try is, every SIGN or SCAN after it fails at once (nothing waits for a token), and the key is
 * loaded again from the running configuration on an sd-event timer, 1 s after the loss, then
 * after 2, 4, ... up to 60 s between tries. A try runs on a worker thread, never on the loop.
 * Once a try succeeds the new key replaces the old, the load is audited (key-loaded) and the
 * watched trees are looked at again, so that what arrived meanwhile gets signed. A wrong or
 * locked PIN (-EACCES) stops the tries at once: trying again could lock the token. It is
 * logged once, and STATUS says why the key is unavailable until a reload loads a key. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

struct daemon;
struct signing_key;

#define DAEMON_KEY_BACKOFF_FIRST_USEC (1ULL * 1000000)
#define DAEMON_KEY_BACKOFF_MAX_USEC (60ULL * 1000000)

struct daemon_key_state {
        bool down;               /* the key cannot sign: requests fail at once */
        bool given_up;           /* a try failed for good (wrong or locked PIN): no more tries */
        bool trying;             /* a try is running on a worker */
        char *name;              /* "token 'LABEL'", for messages */
        char *reason;            /* why the key went down */
        char *last_error;        /* why the last try failed, or NULL */
        uint64_t backoff_usec;   /* the wait before the next try */
        uint64_t next_try_usec;  /* CLOCK_MONOTONIC time of the next try (while a timer is set) */
        uint64_t down_since_usec;
        unsigned attempts;       /* tries since the loss */
        unsigned generation;     /* bumped when a reload replaces the key: older tries are dropped */
        sd_event_source *timer;
};

/* A job signed with 'key' and failed with 'error' ('why', the library's explanation). When the
 * error says the key's device went away (-ENODEV), or the key did not answer in time
 * (-ETIMEDOUT), and 'key' is still the daemon's, the key goes down and the tries begin.
 * Returns whether the key is down now and the failure was a key loss. */
bool daemon_key_failed(struct daemon *d, const struct signing_key *key, int error, const char *why);

/* NULL while the key can sign; else why it cannot, for a reply: "token 'T' went away;
 * re-opening, next try in 2 s". Written to buf. */
const char *daemon_key_unavailable(struct daemon *d, char *buf, size_t size);

/* A reload loaded a key: whatever was down is up again, and tries under way are dropped. */
void daemon_key_reloaded(struct daemon *d);

/* STATUS members: key_available, and while it is not: key_error (daemon_key_unavailable()),
 * key_error_reason (the loss's or the last try's error), key_retry_in_seconds (when a try is
 * planned), key_reopen_attempts. */
void daemon_key_status(struct daemon *d, json_object *o);

/* Whether the configured key lives on a device (token, TPM) that can go away or stop answering,
 * rather than in a file. */
bool daemon_key_on_device(struct daemon *d);

/* At exit, after the workers stopped. */
void daemon_key_done(struct daemon *d);
