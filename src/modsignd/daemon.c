/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon-audit.h"
#include "daemon.h"
#include "digest.h"
#include "journal.h"
#include "log.h"
#include "macro.h"
#include "modsign.h"
#include "watcher.h"

#define TREE_ATTEMPTS 5

struct tree_job {
        struct job job;
        struct daemon *daemon;     /* only for done(): run() must not touch it */
        struct signing_key *key;   /* a reference of our own: a reload may swap the daemon's */
        char *dir, *name;
        char *requester;
        tree_done_t done_cb;
        void *userdata;
        struct tree_result result;
        bool ran;
        unsigned attempt;
        char *release;
        char *hash;
        char sha256[65];
        /* for the audit record */
        struct audit_log *audit;   /* the daemon's; it outlives every job */
        const char *rule;
        char *module_name, *version;
        char sha256_before[65];
        bool resigned;
        struct module_file *m;     /* the module being signed, while record_and_commit() runs */
        uint8_t *blob;             /* the signature written, for the digest of the result */
        size_t blob_len;
        struct daemon_audit_entry audit_entry; /* of a signature, appended on the worker */
        /* the gate's */
        struct daemon_policy *policy;  /* a reference of our own, like the key */
        struct policy_decision decision;
        char *dkms_package, *dkms_version;
};

bool module_file_name(const char *name) {
        static const char *const suffixes[] = { ".ko", ".ko.xz", ".ko.zst", ".ko.gz" };
        size_t n = strlen(name);

        if (name[0] == '.') /* our own temporary names, and dotfiles */
                return false;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t s = strlen(suffixes[i]);
                if (n > s && streq(name + n - s, suffixes[i]))
                        return true;
        }
        return false;
}

bool kernel_installed_in(const char *modules_root, const char *release) {
        char path[PATH_MAX];
        struct stat st;

        if (!release || !*release || strchr(release, '/') || streq(release, ".") || streq(release, ".."))
                return false;
        snprintf(path, sizeof(path), "%s/%s", modules_root, release);
        return stat(path, &st) >= 0 && S_ISDIR(st.st_mode);
}

bool kernel_installed(const char *release) {
        return kernel_installed_in("/lib/modules", release);
}

/* Before our rename: from now on, the arrival of this file is our own doing. */
static void note_written(const struct stat *st, void *userdata) {
        struct tree_job *t = userdata;

        t->result.dev = st->st_dev;
        t->result.ino = st->st_ino;
        watcher_note_own_file(st);
}

/* Name, version and digest of the module as found, for its record. */
static void note_module(struct tree_job *t, struct module_file *m) {
        if (!t->sha256_before[0])
                (void) module_file_sha256(m, t->sha256_before);
        if (!t->module_name && m->meta.name)
                t->module_name = strdup(m->meta.name);
        if (!t->version && m->meta.version)
                t->version = strdup(m->meta.version);
}

/* The new file is written but not in place yet (batch): record the signature, and only then
 * put it in place. If the record cannot be written, the module stays as it was. */
static int record_and_commit(struct tree_job *t, struct replace_batch *batch, const char **ret_why) {
        char path[PATH_MAX], proc[64];
        int results[1], r;

        /* An uncompressed result is the body we hashed, the signature and its trailer: its
         * digest needs no second read. A recompressed one is read back. */
        if (t->blob)
                (void) module_file_sha256_signed(t->m, t->blob, t->blob_len, t->sha256);
        if (!t->sha256[0]) {
                /* The replacement's own descriptor is write-only: read it through /proc. */
                _cleanup_close_ int fd = -EBADF;

                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", batch->items[0].fd);
                fd = open(proc, O_RDONLY | O_CLOEXEC);
                if (fd >= 0)
                        (void) digest_fd_sha256(fd, t->sha256);
        }
        snprintf(path, sizeof(path), "%s/%s", t->dir, t->name);
        /* What signed it (the hash) and why the gate let it (its rule). */
        char reason[128];
        snprintf(reason, sizeof(reason), "%s; policy %s", t->hash, t->decision.rule ?: "?");
        struct audit_record rec = {
                .event = t->resigned ? AUDIT_EVENT_RESIGNED : AUDIT_EVENT_SIGNED,
                .path = path,
                .module = t->module_name,
                .version = t->version,
                .kernel = t->release,
                .sha256_before = t->sha256_before[0] ? t->sha256_before : NULL,
                .sha256_after = t->sha256[0] ? t->sha256 : NULL,
                .key_fingerprint = t->key->fingerprint,
                .requester = daemon_audit_requester(t->requester),
                .rule = t->requester ? "scan" : "watched-tree",
                .reason = reason,
                .dkms_package = t->dkms_package,
                .dkms_version = t->dkms_version,
        };
        free(t->audit_entry.line);
        r = daemon_audit_append_to(t->audit, &rec, &t->audit_entry);
        if (r < 0) {
                *ret_why = "the audit log cannot be written; the signature was not put in place";
                return r;
        }
        r = replace_batch_commit(batch, results);
        if (r < 0) {
                /* Recorded as signed, yet not in place: say so in the log too. */
                struct daemon_audit_entry e;
                rec.event = AUDIT_EVENT_FAILED;
                rec.sha256_after = NULL;
                rec.reason = r == -ESTALE ? "the module changed while it was being signed; the signed copy was dropped"
                                          : "the signed module could not be put in place";
                if (daemon_audit_append_to(t->audit, &rec, &e) >= 0) {
                        free(t->audit_entry.line);
                        t->audit_entry = e;
                }
                *ret_why = r == -ESTALE ? "the module changed while it was being signed" : "replacing the module failed";
                t->sha256[0] = '\0';
        }
        return r;
}

static void tree_job_run(struct job *j) {
        struct tree_job *t = (struct tree_job *) j;
        struct tree_result *res = &t->result;
        struct module_file m;
        _cleanup_close_ int dir_fd = -EBADF;
        enum modsign_outcome outcome;
        struct replace_batch batch = {};
        const char *why = NULL;
        int r;

        t->ran = true;
        dir_fd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dir_fd < 0) {
                *res = (struct tree_result) { .outcome = TREE_FAILED, .error = negative_errno(), .why = "cannot open directory" };
                return;
        }
        r = module_file_open(dir_fd, t->name, &m, &why);
        if (r == -ENOENT) { /* gone again before we looked: nothing to do */
                res->outcome = TREE_NOT_MODULE;
                return;
        }
        if (r == -ENOEXEC || r == -ELOOP || r == -EINVAL) {
                *res = (struct tree_result) { .outcome = TREE_NOT_MODULE, .error = r, .why = why };
                return;
        }
        if (r < 0) {
                *res = (struct tree_result) { .outcome = TREE_FAILED, .error = r, .why = why ?: "cannot read module" };
                return;
        }

        {
                /* The gate decides (policy.h); its facts are the module's, as found here. */
                char path[PATH_MAX];
                struct policy_gathered g = {};
                snprintf(path, sizeof(path), "%s/%s", t->dir, t->name);
                struct policy_request preq = {
                        .requester = POLICY_REQUESTER_WATCHER,
                        .m = &m,
                        .path = path,
                        .dir_fd = dir_fd,
                };
                r = daemon_policy_decide(t->policy, t->key, &preq, &g, &t->decision);
                if (r < 0) {
                        *res = (struct tree_result) { .outcome = TREE_FAILED, .error = r, .why = "cannot gather the policy's facts" };
                        note_module(t, &m);
                        goto out;
                }
                free(t->release);
                t->release = g.release ? strdup(g.release) : NULL;
                if (!t->dkms_package && g.facts.dkms_package && g.facts.dkms_version) {
                        t->dkms_package = strdup(g.facts.dkms_package);
                        t->dkms_version = strdup(g.facts.dkms_version);
                }
                policy_gathered_done(&g);
                if (!t->decision.allow) {
                        bool foreign = streq(t->decision.rule, "signed-by-another-key") ||
                                       streq(t->decision.rule, "signed-by-trusted-key");
                        *res = (struct tree_result) { .outcome = foreign ? TREE_FOREIGN : TREE_REFUSED,
                                                      .error = daemon_policy_errno(t->decision.rule),
                                                      .why = t->decision.reason };
                        t->rule = t->decision.rule;
                        note_module(t, &m);
                        goto out;
                }
        }
        r = signing_key_pick_hash(t->key, NULL, t->release, &t->hash);
        if (r < 0) {
                *res = (struct tree_result) { .outcome = TREE_FAILED, .error = r, .why = "no usable hash" };
                goto out;
        }

        struct modsign_request req = {
                .signer = t->key->signer,
                .hash = t->hash,
                .on_written = note_written,
                .userdata = t,
                /* The safety net never overrides someone else's signature: a distro or vendor
                 * module signed by a key the kernel trusts is none of our business. */
                .existing = MODSIGN_EXISTING_REFUSE,
                .write_module = true,
                .threads = 1, /* the pool already keeps every core busy */
                .batch = &batch, /* in place only once recorded: record_and_commit() */
                .ret_sig = &t->blob,
                .ret_sig_len = &t->blob_len,
        };
        r = modsign_sign(&m, &req, &outcome, &why);
        if (r != 0 || outcome != MODSIGN_UNCHANGED)
                note_module(t, &m); /* the original is untouched until the commit */
        if (r == 0 && outcome == MODSIGN_SIGNED) {
                t->resigned = m.meta.n_signatures > 0;
                t->m = &m;
                r = record_and_commit(t, &batch, &why);
                t->m = NULL;
        }
        free(t->blob);
        t->blob = NULL;
        replace_batch_done(&batch);
        if (r == -EEXIST) {
                res->outcome = TREE_FOREIGN;
                t->rule = "signed-by-another-key";
                goto out;
        }
        if (r == -ESTALE && !t->audit_entry.error && t->attempt < TREE_ATTEMPTS) {
                /* Changed while we worked (a chmod after close, a second writer): nothing was
                 * written; look at it again as it is now. */
                module_file_close(&m);
                dir_fd = safe_close(dir_fd);
                free(t->release);
                free(t->hash);
                t->release = t->hash = NULL;
                t->sha256_before[0] = '\0';
                t->decision = (struct policy_decision) {};
                free(t->audit_entry.line); /* that attempt's records are in the log already */
                t->audit_entry = (struct daemon_audit_entry) {};
                t->attempt++;
                (void) usleep(10000);
                tree_job_run(j);
                return;
        }
        if (r < 0) {
                *res = (struct tree_result) { .outcome = TREE_FAILED, .error = r, .why = why };
                goto out;
        }
        if (outcome == MODSIGN_UNCHANGED) {
                res->outcome = TREE_UNCHANGED;
                goto out;
        }

        res->outcome = TREE_SIGNED; /* t->sha256: the digest of what we wrote, taken before the commit */
out:
        module_file_close(&m);
}

static void tree_job_done(struct job *j) {
        struct tree_job *t = (struct tree_job *) j;
        struct daemon *d = t->daemon;
        struct tree_result *res = &t->result;
        _cleanup_free_ char *path = NULL;
        struct module_event ev;

        if (!t->ran)
                res->outcome = TREE_CANCELLED; /* the daemon stopped first */
        res->dir = t->dir;
        res->name = t->name;
        if (asprintf(&path, "%s/%s", t->dir, t->name) < 0)
                path = NULL;
        ev = (struct module_event) {
                .module = path,
                .kernel = t->release,
                .sha256 = t->sha256[0] ? t->sha256 : NULL,
                .fingerprint = t->key->fingerprint,
                .requester = t->requester ?: "watcher",
        };

        /* The record of this decision: a signature's was written on the worker, before the
         * module was put in place; a refusal's or failure's is written now. */
        if ((res->outcome == TREE_FOREIGN || res->outcome == TREE_REFUSED || res->outcome == TREE_FAILED) &&
            !t->audit_entry.line && !t->audit_entry.error) {
                struct audit_record rec = {
                        .event = res->outcome == TREE_FAILED ? AUDIT_EVENT_FAILED : AUDIT_EVENT_REFUSED,
                        .path = path,
                        .module = t->module_name,
                        .version = t->version,
                        .kernel = t->release,
                        .sha256_before = t->sha256_before[0] ? t->sha256_before : NULL,
                        .key_fingerprint = t->key->fingerprint,
                        .requester = daemon_audit_requester(t->requester),
                        .dkms_package = t->dkms_package,
                        .dkms_version = t->dkms_version,
                        .rule = t->rule,
                        .reason = res->why ?: (res->outcome == TREE_FOREIGN ? "signed by another key; left alone" : NULL),
                };
                (void) daemon_audit_append(d, &rec, &t->audit_entry);
        }
        ev.audit_record = t->audit_entry.line;
        ev.audit_head = t->audit_entry.head[0] ? t->audit_entry.head : NULL;

        switch (res->outcome) {
        case TREE_SIGNED:
                d->stats.signed_++;
                ev.message_id = MSGID_MODULE_SIGNED;
                log_module_event(LOG_NOTICE, &ev, "signed %s (%s, kernel %s)", path, t->hash, t->release);
                break;
        case TREE_UNCHANGED:
                d->stats.unchanged++;
                log_debug("%s: already signed by our key", path);
                break;
        case TREE_FOREIGN:
                d->stats.foreign++;
                ev.message_id = MSGID_MODULE_REFUSED;
                log_module_event(LOG_INFO, &ev, "left %s alone: signed by another key%s%s", path,
                                 t->rule ? ", rule " : "", t->rule ?: "");
                break;
        case TREE_REFUSED:
                d->stats.refused++;
                ev.message_id = MSGID_MODULE_REFUSED;
                log_module_event(LOG_WARNING, &ev, "refused to sign %s: %s%s%s", path, res->why,
                                 t->rule ? ", rule " : "", t->rule ?: "");
                break;
        case TREE_FAILED:
                (void) daemon_key_failed(d, t->key, res->error, res->why);
                d->stats.failed++;
                ev.message_id = MSGID_MODULE_FAILED;
                log_module_event(LOG_ERR, &ev, "failed to sign %s: %s: %s", path, res->why ?: "error",
                                 strerror(-res->error));
                break;
        case TREE_NOT_MODULE:
                log_debug("%s: not a kernel module%s%s", path, res->why ? ": " : "", res->why ?: "");
                break;
        case TREE_CANCELLED:
        default:
                break;
        }

        if (res->outcome != TREE_NOT_MODULE && res->outcome != TREE_UNCHANGED && res->outcome != TREE_CANCELLED)
                daemon_audit_done(d, &t->audit_entry);
        free(t->audit_entry.line);
        if (t->done_cb)
                t->done_cb(d, res, t->userdata);
        daemon_notify_status(d);

        signing_key_unref(t->key);
        daemon_policy_unref(t->policy);
        free(t->dkms_package);
        free(t->dkms_version);
        free(t->dir);
        free(t->name);
        free(t->requester);
        free(t->release);
        free(t->hash);
        free(t->module_name);
        free(t->version);
        free(t);
}

int daemon_queue_tree_module(struct daemon *d, const char *dir, const char *name, const char *requester,
                             tree_done_t done, void *userdata) {
        struct tree_job *t;
        int r;

        /* No key, no look: what arrives meanwhile is looked at once the key is back. */
        if (d->key_state.down) {
                log_debug("%s/%s: not looked at now, the signing key is unavailable", dir, name);
                return -ENODEV;
        }
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->job = (struct job) { .run = tree_job_run, .done = tree_job_done };
        t->daemon = d;
        t->key = signing_key_ref(d->key);
        t->policy = daemon_policy_ref(d->policy);
        t->dir = strdup(dir);
        t->name = strdup(name);
        t->requester = requester ? strdup(requester) : NULL;
        t->done_cb = done;
        t->userdata = userdata;
        t->audit = d->audit;
        if (!t->dir || !t->name || (requester && !t->requester)) {
                r = -ENOMEM;
                goto fail;
        }
        r = workers_submit(d->workers, &t->job);
        if (r < 0)
                goto fail;
        return 0;
fail:
        signing_key_unref(t->key);
        daemon_policy_unref(t->policy);
        free(t->dir);
        free(t->name);
        free(t->requester);
        free(t);
        return r;
}

void daemon_notify_status(struct daemon *d) {
        char why[512];

        if (daemon_key_unavailable(d, why, sizeof(why))) { /* what systemctl status should say first */
                (void) sd_notifyf(false, "STATUS=Not signing: %s", why);
                return;
        }
        (void) sd_notifyf(false, "STATUS=Signed %llu, already signed %llu, left alone %llu, refused %llu, failed %llu; %u queued",
                          (unsigned long long) d->stats.signed_, (unsigned long long) d->stats.unchanged,
                          (unsigned long long) d->stats.foreign, (unsigned long long) d->stats.refused,
                          (unsigned long long) d->stats.failed, workers_queued(d->workers));
}

int daemon_reload(struct daemon *d) {
        _cleanup_free_ char *error = NULL;
        struct signing_key *key = NULL;
        struct config c;
        int r;

        (void) sd_notify(false, "RELOADING=1\nSTATUS=Reloading configuration");

        r = config_load(d->config_path, d->config_required, d->dropin_dir, &c, &error);
        if (r < 0) {
                struct module_event ev = { .message_id = MSGID_RELOAD_FAILED };
                log_module_event(LOG_ERR, &ev, "reload failed, keeping the running configuration: %s",
                                 error ?: strerror(-r));
                (void) sd_notify(false, "READY=1");
                daemon_notify_status(d);
                return r;
        }
        r = signing_key_load(&c, &key, &error);
        if (r < 0) {
                struct module_event ev = { .message_id = MSGID_RELOAD_FAILED };
                log_module_event(LOG_ERR, &ev, "reload failed, keeping the running key: %s", error ?: strerror(-r));
                config_done(&c);
                (void) sd_notify(false, "READY=1");
                daemon_notify_status(d);
                return r;
        }

        struct daemon_policy *policy = NULL;
        r = daemon_policy_load(&c, &d->rate, &policy, &error);
        if (r < 0) {
                struct module_event ev = { .message_id = MSGID_RELOAD_FAILED };
                log_module_event(LOG_ERR, &ev, "reload failed, keeping the running policy: %s", error ?: strerror(-r));
                signing_key_unref(key);
                config_done(&c);
                (void) sd_notify(false, "READY=1");
                daemon_notify_status(d);
                return r;
        }
        daemon_policy_unref(d->policy);
        d->policy = policy;

        char old_fingerprint[sizeof(d->key->fingerprint)];
        memcpy(old_fingerprint, d->key->fingerprint, sizeof(old_fingerprint));
        if (!streq(c.state_directory, d->config.state_directory))
                log_warning("StateDirectory= changed to %s: the audit log stays in %s until modsignd restarts",
                            c.state_directory, d->config.state_directory);
        if (!streq_ptr(c.socket_path, d->config.socket_path))
                log_warning("Socket= changed to %s: the daemon keeps listening on %s until it restarts",
                            c.socket_path ?: "(default)", d->config.socket_path ?: "(default)");
        if (c.workers != d->config.workers) {
                r = workers_resize(d->workers, c.workers);
                if (r < 0)
                        log_warning_errno(r, "cannot start the workers Workers=%u asks for: %m", c.workers);
        }
        signing_key_unref(d->key);
        d->key = key;
        config_done(&d->config);
        d->config = c;
        daemon_key_reloaded(d);
        {
                struct audit_record rec = {
                        .event = AUDIT_EVENT_RELOADED,
                        .key_fingerprint = key->fingerprint,
                        .requester = { .kind = AUDIT_REQUESTER_DAEMON },
                        .reason = "configuration and key reloaded",
                };
                _cleanup_free_ char *why = NULL;
                struct daemon_audit_entry ae;

                (void) daemon_audit_append(d, &rec, &ae);
                daemon_audit_done(d, &ae);
                if (!streq(old_fingerprint, key->fingerprint)) {
                        rec.event = AUDIT_EVENT_KEY_ROTATED;
                        if (asprintf(&why, "the previous key was %s", old_fingerprint) < 0)
                                why = NULL;
                        rec.reason = why ?: "the key changed";
                        (void) daemon_audit_append(d, &rec, &ae);
                        daemon_audit_done(d, &ae);
                }
        }

        /* The trees to watch may have changed: watch them anew (and look at everything once). */
        watcher_free(d->watcher);
        d->watcher = NULL;
        r = watcher_new(d, &d->watcher);
        if (r < 0)
                log_error_errno(r, "cannot watch the module trees after reload: %m");

        struct module_event ev = { .message_id = MSGID_CONFIG_RELOADED, .fingerprint = key->fingerprint };
        log_module_event(LOG_NOTICE, &ev, "configuration reloaded; signing key %s", key->fingerprint);
        (void) sd_notify(false, "READY=1");
        daemon_notify_status(d);
        return 0;
}
