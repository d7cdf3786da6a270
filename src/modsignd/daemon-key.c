/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The key's availability: daemon-key.h.
 *
 * Why a try runs on a worker: loading a token's key is a C_Initialize, a slot list, a login
 * and a key list, tens of milliseconds with SoftHSM2, but a token or a p11-kit server that
 * does not answer could hold it much longer, and the loop must keep answering STATUS and
 * failing SIGN at once meanwhile. The try loads from a copy of the running configuration's
 * [Key] and [Signing], so a reload that replaces the configuration meanwhile frees nothing
 * the worker reads; the reload also bumps the generation, and the late try is dropped. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>

#include "daemon-audit.h"
#include "daemon-key.h"
#include "daemon.h"
#include "journal.h"
#include "key-backend.h"
#include "log.h"
#include "macro.h"
#include "modsign.h"
#include "watcher.h"

struct reopen_job {
        struct job job;
        struct daemon *daemon;   /* only for done() */
        struct config config;    /* the [Key] and [Signing] to load from: our own copy */
        unsigned generation;
        bool ran;
        int error;
        char *message;
        struct signing_key *key;
};

static int schedule_try(struct daemon *d);

/* "token 'LABEL'" for a pkcs11: key, else the key reference itself. */
static char *key_name(const char *private_key) {
        _cleanup_(pkcs11_uri_done) struct pkcs11_uri u = {};
        const char *why = NULL;
        char *s = NULL;

        if (private_key && strncmp(private_key, "pkcs11:", 7) == 0 && pkcs11_uri_parse(private_key, &u, &why) >= 0 &&
            u.token) {
                if (asprintf(&s, "token '%s'", u.token) < 0)
                        s = NULL;
        } else if (asprintf(&s, "the key device of %s", private_key ?: "?") < 0)
                s = NULL;
        return s;
}

static void set_text(char **where, const char *text) {
        char *copy = text ? strdup(text) : NULL;

        free(*where);
        *where = copy;
}

/* The loss's reason in a message, unless it says no more than "went away". */
static const char *reason_to_show(const struct daemon_key_state *s) {
        return s->reason && !streq(s->reason, KEY_DEVICE_GONE_WHY) ? s->reason : NULL;
}

static uint64_t now_usec(struct daemon *d) {
        uint64_t now = 0;

        (void) sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        return now;
}

static void log_key_event(struct daemon *d, int priority, const char *message_id, const char *fingerprint,
                          const char *format, ...) _printf_(5, 6);
static void log_key_event(struct daemon *d, int priority, const char *message_id, const char *fingerprint,
                          const char *format, ...) {
        struct module_event ev = { .message_id = message_id, .fingerprint = fingerprint, .requester = "modsignd" };
        char message[768];
        va_list ap;

        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);
        log_module_event(priority, &ev, "%s", message);
}

bool daemon_key_failed(struct daemon *d, const struct signing_key *key, int error, const char *why) {
        struct daemon_key_state *s = &d->key_state;

        if (error != -ENODEV && error != -ETIMEDOUT)
                return false;
        if (s->down)
                return true;
        if (key != d->key || d->stopping)
                return false;

        s->down = true;
        s->given_up = false;
        s->attempts = 0;
        s->backoff_usec = DAEMON_KEY_BACKOFF_FIRST_USEC;
        s->down_since_usec = now_usec(d);
        free(s->name);
        s->name = key_name(d->config.private_key);
        set_text(&s->reason, why);
        set_text(&s->last_error, NULL);
        if (schedule_try(d) < 0)
                log_error("cannot set the timer to re-open the signing key: run 'modsignctl reload' once the token is back");
        log_key_event(d, LOG_ERR, MSGID_KEY_LOST, d->key->fingerprint,
                      "%s went away (%s): signing stops; re-opening it, first try in %llu s", s->name ?: "the key's token",
                      reason_to_show(s) ?: "PKCS#11 device or session lost",
                      (unsigned long long) (s->backoff_usec / 1000000));
        daemon_notify_status(d);
        return true;
}

const char *daemon_key_unavailable(struct daemon *d, char *buf, size_t size) {
        struct daemon_key_state *s = &d->key_state;
        const char *name = s->name ?: "the key's token";

        if (!s->down)
                return NULL;
        if (s->given_up)
                snprintf(buf, size, "signing key unavailable: %s; fix it, then run 'modsignctl reload'",
                         s->last_error ?: "re-opening failed");
        else if (s->trying || !s->timer)
                snprintf(buf, size, "%s went away; re-opening it now", name);
        else {
                uint64_t now = now_usec(d), left = s->next_try_usec > now ? s->next_try_usec - now : 0;
                const char *reason = reason_to_show(s);
                snprintf(buf, size, "%s went away%s%s%s; re-opening, next try in %llu s", name, reason ? " (" : "",
                         reason ?: "", reason ? ")" : "", (unsigned long long) ((left + 999999) / 1000000));
        }
        return buf;
}

/* --- a try, on a worker ------------------------------------------------------------------ */

static void reopen_job_run(struct job *j) {
        struct reopen_job *t = (struct reopen_job *) j;

        t->ran = true;
        t->error = signing_key_load(&t->config, &t->key, &t->message);
}

static void reopen_succeeded(struct daemon *d, struct reopen_job *t) {
        struct daemon_key_state *s = &d->key_state;
        char old_fingerprint[sizeof(d->key->fingerprint)];
        struct signing_key *key = TAKE_PTR(t->key);
        unsigned attempts = s->attempts;
        uint64_t down_usec = now_usec(d) - s->down_since_usec;
        _cleanup_free_ char *why = NULL;
        struct daemon_audit_entry ae;

        memcpy(old_fingerprint, d->key->fingerprint, sizeof(old_fingerprint));
        signing_key_unref(d->key); /* its context goes once the last job with it is done */
        d->key = key;
        s->down = s->given_up = false;
        s->backoff_usec = DAEMON_KEY_BACKOFF_FIRST_USEC;
        set_text(&s->reason, NULL);
        set_text(&s->last_error, NULL);

        /* A key load, recorded as the start's is. */
        if (asprintf(&why, "re-opened after %s went away (%u %s, %.1f s)", s->name ?: "its token", attempts,
                     attempts == 1 ? "try" : "tries", (double) down_usec / 1e6) < 0)
                why = NULL;
        struct audit_record rec = {
                .event = AUDIT_EVENT_KEY_LOADED,
                .key_fingerprint = key->fingerprint,
                .requester = { .kind = AUDIT_REQUESTER_DAEMON },
                .reason = why ?: "re-opened after its token went away",
        };
        (void) daemon_audit_append(d, &rec, &ae);
        daemon_audit_done(d, &ae);
        if (!streq(old_fingerprint, key->fingerprint)) {
                _cleanup_free_ char *rot = NULL;
                if (asprintf(&rot, "the token came back with another key; the previous key was %s", old_fingerprint) < 0)
                        rot = NULL;
                rec.event = AUDIT_EVENT_KEY_ROTATED;
                rec.reason = rot ?: "the token came back with another key";
                (void) daemon_audit_append(d, &rec, &ae);
                daemon_audit_done(d, &ae);
        }
        log_key_event(d, LOG_NOTICE, MSGID_KEY_REOPENED, key->fingerprint,
                      "%s is back: signing key %s re-opened at try %u, %.1f s without it; looking at the watched trees again",
                      s->name ?: "the key's token", key->fingerprint, attempts, (double) down_usec / 1e6);

        /* What arrived while the key was away was not queued (daemon_queue_tree_module): a new
         * watcher looks at every module of the trees once, as after a reload. */
        watcher_free(d->watcher);
        d->watcher = NULL;
        int r = watcher_new(d, &d->watcher);
        if (r < 0)
                log_error_errno(r, "cannot watch the module trees after re-opening the key: %m");
}

static void reopen_failed(struct daemon *d, struct reopen_job *t) {
        struct daemon_key_state *s = &d->key_state;
        const char *msg = t->message ?: strerror(-t->error);

        set_text(&s->last_error, msg);
        if (t->error == -EACCES) {
                /* A wrong or locked PIN: another try is another failed login, closer to a locked
                 * token. Once, loudly, and no more until someone fixes it and reloads. */
                s->given_up = true;
                log_key_event(d, LOG_ERR, MSGID_KEY_UNAVAILABLE, NULL,
                              "cannot re-open the signing key, and not trying again: %s; fix the PIN, then run 'modsignctl reload'",
                              msg);
                return;
        }
        s->backoff_usec = MIN(s->backoff_usec * 2, DAEMON_KEY_BACKOFF_MAX_USEC);
        if (schedule_try(d) < 0) {
                log_error("cannot set the timer to re-open the signing key: run 'modsignctl reload' once the token is back");
                return;
        }
        log_warning("re-opening the signing key failed (try %u): %s; next try in %llu s", s->attempts, msg,
                    (unsigned long long) (s->backoff_usec / 1000000));
}

static void reopen_job_done(struct job *j) {
        struct reopen_job *t = (struct reopen_job *) j;
        struct daemon *d = t->daemon;
        struct daemon_key_state *s = &d->key_state;

        if (t->generation == s->generation) {
                s->trying = false;
                if (!t->ran || d->stopping)
                        ; /* the daemon is stopping */
                else if (t->error >= 0)
                        reopen_succeeded(d, t);
                else
                        reopen_failed(d, t);
                daemon_notify_status(d);
        }
        signing_key_unref(t->key);
        free(t->message);
        config_done(&t->config);
        free(t);
}

static int copy_str(char **dst, const char *src) {
        if (!src)
                return 0;
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

static int on_try_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        struct daemon *d = userdata;
        struct daemon_key_state *s = &d->key_state;
        struct reopen_job *t;
        int r;

        s->timer = sd_event_source_disable_unref(s->timer);
        if (!s->down || s->given_up || d->stopping)
                return 0;
        t = calloc(1, sizeof(*t));
        if (!t)
                goto retry;
        t->job = (struct job) { .run = reopen_job_run, .done = reopen_job_done };
        t->daemon = d;
        t->generation = s->generation;
        t->config.key_id = d->config.key_id;
        if (copy_str(&t->config.private_key, d->config.private_key) < 0 ||
            copy_str(&t->config.certificate, d->config.certificate) < 0 ||
            copy_str(&t->config.pin_file, d->config.pin_file) < 0 || copy_str(&t->config.hash, d->config.hash) < 0)
                goto retry;
        s->attempts++;
        s->trying = true;
        r = workers_submit(d->workers, &t->job);
        if (r >= 0)
                return 0;
        s->trying = false;
        s->attempts--;
retry:
        if (t) {
                config_done(&t->config);
                free(t);
        }
        (void) schedule_try(d);
        return 0;
}

static int schedule_try(struct daemon *d) {
        struct daemon_key_state *s = &d->key_state;
        int r;

        s->timer = sd_event_source_disable_unref(s->timer);
        s->next_try_usec = now_usec(d) + s->backoff_usec;
        r = sd_event_add_time(d->event, &s->timer, CLOCK_MONOTONIC, s->next_try_usec, 0, on_try_timer, d);
        if (r < 0)
                s->timer = NULL;
        return r;
}

/* --- reload, STATUS, exit ------------------------------------------------------------------ */

void daemon_key_reloaded(struct daemon *d) {
        struct daemon_key_state *s = &d->key_state;

        s->generation++; /* a try under way loads from the old configuration: drop it */
        s->timer = sd_event_source_disable_unref(s->timer);
        if (s->down)
                log_key_event(d, LOG_NOTICE, MSGID_KEY_REOPENED, d->key->fingerprint,
                              "the reload loaded signing key %s; %s is usable again", d->key->fingerprint,
                              s->name ?: "the key");
        s->down = s->given_up = s->trying = false;
        s->attempts = 0;
        s->backoff_usec = DAEMON_KEY_BACKOFF_FIRST_USEC;
        set_text(&s->reason, NULL);
        set_text(&s->last_error, NULL);
}

void daemon_key_status(struct daemon *d, json_object *o) {
        struct daemon_key_state *s = &d->key_state;
        char buf[512];
        const char *why = daemon_key_unavailable(d, buf, sizeof(buf));

        json_object_object_add(o, "key_available", json_object_new_boolean(!why));
        if (!why)
                return;
        json_object_object_add(o, "key_error", json_object_new_string(why));
        if (s->last_error ?: s->reason)
                json_object_object_add(o, "key_error_reason", json_object_new_string(s->last_error ?: s->reason));
        if (s->timer && !s->trying) {
                uint64_t now = now_usec(d), left = s->next_try_usec > now ? s->next_try_usec - now : 0;
                json_object_object_add(o, "key_retry_in_seconds", json_object_new_int64((int64_t) ((left + 999999) / 1000000)));
        }
        json_object_object_add(o, "key_reopen_attempts", json_object_new_int((int) s->attempts));
}

bool daemon_key_on_device(struct daemon *d) {
        _cleanup_(key_ref_done) struct key_ref ref = {};
        const char *why = NULL;

        if (key_ref_parse(d->config.private_key, &ref, &why) < 0)
                return false;
        return ref.backend != KEY_BACKEND_FILE;
}

void daemon_key_done(struct daemon *d) {
        struct daemon_key_state *s = &d->key_state;

        s->timer = sd_event_source_disable_unref(s->timer);
        free(s->name);
        free(s->reason);
        free(s->last_error);
        *s = (struct daemon_key_state) {};
}
