/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "daemon-audit.h"
#include "daemon.h"
#include "digest.h"
#include "journal.h"
#include "log.h"
#include "macro.h"
#include "modsign.h"
#include "proto.h"
#include "server.h"
#include "watcher.h"

#define MAX_CONNECTIONS 64
#define MAX_FDS_PER_MESSAGE 4

struct connection {
        struct server *server;
        int fd;
        sd_event_source *source;
        pid_t pid;
        uid_t uid;
        char requester[64];
        unsigned n_ref;
        bool closed;
        bool refused;   /* not root: its first request gets the refusal, then it is closed */
        struct connection *next;
};

struct server {
        struct daemon *daemon;
        int listen_fd;
        bool socket_activated;
        char *socket_path; /* made by us: removed at exit */
        sd_event_source *listen_source;
        struct connection *connections;
        unsigned n_connections;
};

static void connection_unref(struct connection *c) {
        if (--c->n_ref == 0)
                free(c);
}

static void connection_close(struct connection *c) {
        struct server *s = c->server;

        if (c->closed)
                return;
        c->closed = true;
        c->source = sd_event_source_disable_unref(c->source);
        c->fd = safe_close(c->fd);
        for (struct connection **p = &s->connections; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        s->n_connections--;
        connection_unref(c);
}

/* Replies are small and the peer waits for them; a peer that does not read loses its connection. */
static int send_packet(struct connection *c, const uint8_t *buf, size_t len) {
        if (c->closed)
                return -ENOTCONN;
        if (send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
                connection_close(c);
                return negative_errno();
        }
        return 0;
}

static void reply_error(struct connection *c, int error, const char *message, const char *rule) {
        static uint8_t buf[PROTO_MAX_PACKET];
        struct proto_writer w;
        size_t len;

        proto_writer_init(&w, buf, PROTO_REPLY_ERROR);
        proto_put_u32(&w, PROTO_TAG_ERRNO, (uint32_t) (error < 0 ? -error : error));
        proto_put_string(&w, PROTO_TAG_MESSAGE, message);
        proto_put_string(&w, PROTO_TAG_RULE, rule);
        if (proto_writer_finish(&w, &len) >= 0)
                (void) send_packet(c, buf, len);
}

static void reply_json(struct connection *c, json_object *o) {
        static uint8_t buf[PROTO_MAX_PACKET];
        struct proto_writer w;
        size_t len;

        proto_writer_init(&w, buf, PROTO_REPLY_OK);
        proto_put_string(&w, PROTO_TAG_JSON, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        if (proto_writer_finish(&w, &len) >= 0)
                (void) send_packet(c, buf, len);
}

static void resume_reading(struct connection *c) {
        if (!c->closed)
                (void) sd_event_source_set_enabled(c->source, SD_EVENT_ON);
}

/* --- SIGN: the client's fd, read on a worker; the reply is the trailer to append ------- */

struct sign_job {
        struct job job;
        struct connection *conn;
        struct daemon *daemon;
        struct signing_key *key;
        struct daemon_policy *policy;
        int module_fd;
        char *hash_requested, *kernel, *name;
        /* ORIGIN=dkms: the shim's word, and its build path when that path is this very file */
        bool dkms_origin;
        char *dkms_path;
        int dkms_dir_fd;
        struct policy_decision decision;
        char *dkms_package, *dkms_version;
        /* results */
        int error;
        const char *why;
        const char *rule;
        char *hash;
        char *release;
        uint8_t *blob;
        size_t blob_len;
        uint64_t body_len;
        bool ran;
        /* for the audit record */
        char *module_name, *version;
        char sha256_before[65], sha256_after[65];
        bool resigned;
        struct audit_log *audit;      /* the daemon's; it outlives every job */
        struct daemon_audit_entry ae; /* a signature's record, appended on the worker */
        char why_buf[512];  /* a key that went away: daemon_key_unavailable() */
        sd_event_source *deadline; /* SIGN_TOKEN_DEADLINE_USEC */
        uint64_t started_usec;     /* CLOCK_MONOTONIC, set by run(), read by the deadline */
        bool answered;      /* the deadline answered the client already */
};

/* A token that stops answering without an error (a hung USB token, a stopped p11-kit server)
 * leaves C_Sign blocked on the worker. The client is answered anyway this long after its job
 * started (time in the queue does not count), and the key is taken for lost (daemon-key.h).
 * Not for a key file: nothing there can stop answering. */
#define SIGN_TOKEN_DEADLINE_USEC (20ULL * 1000000)

/* The record of this request, as far as the job knows it; the caller sets the event, rule
 * and reason. */
static struct audit_record sign_job_record(const struct sign_job *t) {
        return (struct audit_record) {
                .path = t->dkms_path ?: t->name,
                .dkms_package = t->dkms_package,
                .dkms_version = t->dkms_version,
                .module = t->module_name,
                .version = t->version,
                .kernel = t->release,
                .sha256_before = t->sha256_before[0] ? t->sha256_before : NULL,
                .key_fingerprint = t->key->fingerprint,
                .requester = daemon_audit_requester(t->conn->requester),
        };
}

static void sign_job_run(struct job *j) {
        struct sign_job *t = (struct sign_job *) j;
        struct module_file m;
        enum modsign_outcome outcome;
        bool opened;
        int r;

        t->ran = true;
        {
                struct timespec ts;
                (void) clock_gettime(CLOCK_MONOTONIC, &ts); /* sd-event's CLOCK_MONOTONIC too */
                __atomic_store_n(&t->started_usec, (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000 ?: 1,
                                 __ATOMIC_RELEASE);
        }
        r = module_file_open_fd(t->module_fd, &m, &t->why);
        t->module_fd = -EBADF; /* owned by m now, or closed */
        if (r < 0 && r != -ENOEXEC) {
                t->error = r;
                return;
        }
        opened = r >= 0;
        if (opened) {
                (void) module_file_sha256(&m, t->sha256_before);
                t->module_name = m.meta.name ? strdup(m.meta.name) : NULL;
                t->version = m.meta.version ? strdup(m.meta.version) : NULL;
        }
        {
                /* The gate decides (policy.h). Without the shim's verified build path, the
                 * daemon knows the file only by its descriptor: no directory to judge. */
                struct policy_gathered g = {};
                struct policy_request preq = {
                        .requester = t->dkms_origin ? POLICY_REQUESTER_DKMS_SHIM : POLICY_REQUESTER_SOCKET,
                        .m = opened ? &m : NULL,
                        .path = t->dkms_path,
                        .dir_fd = t->dkms_dir_fd,
                        .file_name = t->name,
                        .release = t->kernel,
                        .hash = t->hash_requested,
                        .dkms_origin = t->dkms_origin,
                        .dkms_path = t->dkms_path,
                };
                r = daemon_policy_decide(t->policy, t->key, &preq, &g, &t->decision);
                if (r < 0) {
                        t->error = r;
                        t->why = "cannot gather the policy's facts";
                        goto out;
                }
                t->release = g.release ? strdup(g.release) : NULL;
                if (g.facts.dkms_package && g.facts.dkms_version) {
                        t->dkms_package = strdup(g.facts.dkms_package);
                        t->dkms_version = strdup(g.facts.dkms_version);
                }
                policy_gathered_done(&g);
                if (!t->decision.allow) {
                        t->error = daemon_policy_errno(t->decision.rule);
                        t->why = t->decision.reason;
                        t->rule = t->decision.rule;
                        goto out;
                }
        }
        r = signing_key_pick_hash(t->key, t->hash_requested, t->release, &t->hash);
        if (r < 0) {
                t->error = r;
                t->why = "hash not allowed (use sha256, sha384, sha512 or auto)";
                t->rule = "hash";
                goto out;
        }

        struct modsign_request req = {
                .signer = t->key->signer,
                .hash = t->hash,
                /* A module signed by another key (a vendor's, the distribution's) is not ours
                 * to re-sign on request: only unsigned modules and our own stale signatures. */
                .existing = MODSIGN_EXISTING_REFUSE,
                .write_module = false,
                .ret_sig = &t->blob,
                .ret_sig_len = &t->blob_len,
        };
        r = modsign_sign(&m, &req, &outcome, &t->why);
        if (r == -EEXIST) {
                t->error = r;
                t->why = "already signed by another key; modsignd does not replace other keys' signatures";
                t->rule = "signed-by-another-key";
                goto out;
        }
        if (r < 0) {
                t->error = r;
                goto out;
        }
        t->body_len = m.meta.body_len;
        t->resigned = m.meta.n_signatures > 0;
        /* What the client will have once it appends what we send back (the gate refuses
         * compressed modules here, so the body is a prefix of the file it sent). */
        (void) module_file_sha256_signed(&m, t->blob, t->blob_len, t->sha256_after);

        /* Fail closed: the signature leaves only once its record is in the log. Written
         * here, not on the loop: its fsync must not hold up every other client. */
        {
                char reason[128];
                struct audit_record rec = sign_job_record(t);

                rec.event = t->resigned ? AUDIT_EVENT_RESIGNED : AUDIT_EVENT_SIGNED;
                rec.sha256_after = t->sha256_after[0] ? t->sha256_after : NULL;
                rec.rule = "sign-request";
                snprintf(reason, sizeof(reason), "%s; policy %s", t->hash, t->decision.rule ?: "?");
                rec.reason = reason;
                if (daemon_audit_append_to(t->audit, &rec, &t->ae) < 0) {
                        t->error = t->ae.error;
                        t->why = "the audit log cannot be written; no signature is handed out";
                }
        }
out:
        if (opened)
                module_file_close(&m);
}

static void sign_job_done(struct job *j) {
        static uint8_t buf[PROTO_MAX_PACKET];
        struct sign_job *t = (struct sign_job *) j;
        struct connection *c = t->conn;
        struct daemon *d = t->daemon;
        struct module_event ev = {
                .module = t->name,
                .kernel = t->release,
                .fingerprint = t->key->fingerprint,
                .requester = c->requester,
        };

        struct daemon_audit_entry ae = t->ae; /* the signature's, from the worker */
        struct audit_record rec = sign_job_record(t);

        t->deadline = sd_event_source_disable_unref(t->deadline);
        if (!t->ran && !t->error) { /* never ran: the daemon is stopping */
                t->error = -ESHUTDOWN;
                t->why = "the daemon is stopping";
        }
        if (t->answered) { /* too late: the client had its error, and nothing is handed out */
                t->error = -ETIMEDOUT;
                t->why = "the token answered only after the deadline; the signature was not handed out";
                t->rule = NULL;
        } else if (t->error && daemon_key_failed(d, t->key, t->error, t->why))
                /* The token went away: say which, and when the next try to re-open it is. */
                t->why = daemon_key_unavailable(d, t->why_buf, sizeof(t->why_buf)) ?: t->why;
        /* A signature is recorded already (or its record failed, t->error says so). Every
         * other outcome is recorded now; a late signature's record is followed by one that
         * says it was not handed out. */
        if (t->error && !ae.error) {
                free(ae.line);
                ae = (struct daemon_audit_entry) {};
                rec.event = t->rule ? AUDIT_EVENT_REFUSED : AUDIT_EVENT_FAILED;
                rec.rule = t->rule;
                rec.reason = t->why ?: strerror(-t->error);
                (void) daemon_audit_append(d, &rec, &ae);
        }
        t->ae = (struct daemon_audit_entry) {}; /* ae owns the line now */
        ev.audit_record = ae.line;
        ev.audit_head = ae.head[0] ? ae.head : NULL;

        if (t->error) {
                if (t->rule)
                        d->stats.refused++;
                else
                        d->stats.failed++;
                ev.message_id = t->rule ? MSGID_MODULE_REFUSED : MSGID_MODULE_FAILED;
                log_module_event(t->rule ? LOG_WARNING : LOG_ERR, &ev, "%s %s for %s: %s%s%s", t->rule ? "refused" : "failed",
                                 t->name ?: "(unnamed)", c->requester, t->why ?: strerror(-t->error),
                                 t->rule ? ", rule " : "", t->rule ?: "");
                reply_error(c, t->error, t->why ?: strerror(-t->error), t->rule);
        } else {
                uint8_t trailer[MODULE_SIG_TRAILER_LEN];
                struct proto_writer w;
                size_t len;

                d->stats.signed_++;
                ev.message_id = MSGID_MODULE_SIGNED;
                log_module_event(LOG_NOTICE, &ev, "signed %s for %s (%s, kernel %s)", t->name ?: "(unnamed)",
                                 c->requester, t->hash, t->release);
                proto_writer_init(&w, buf, PROTO_REPLY_OK);
                /* One field: the PKCS#7 blob and its trailer, ready to append. */
                module_sig_trailer_build((uint32_t) t->blob_len, trailer);
                if (t->blob_len + sizeof(trailer) <= UINT16_MAX) {
                        uint8_t *all = malloc(t->blob_len + sizeof(trailer));
                        if (all) {
                                memcpy(all, t->blob, t->blob_len);
                                memcpy(all + t->blob_len, trailer, sizeof(trailer));
                                proto_put_bytes(&w, PROTO_TAG_TRAILER, all, t->blob_len + sizeof(trailer));
                                free(all);
                        } else
                                w.overflow = true;
                } else
                        w.overflow = true;
                proto_put_u64(&w, PROTO_TAG_BODY_LEN, t->body_len);
                proto_put_string(&w, PROTO_TAG_HASH, t->hash);
                if (proto_writer_finish(&w, &len) >= 0)
                        (void) send_packet(c, buf, len);
                else
                        reply_error(c, -EMSGSIZE, "signature too large for a reply", NULL);
        }
        daemon_audit_done(d, &ae);
        daemon_notify_status(d);
        resume_reading(c);

        safe_close(t->module_fd);
        safe_close(t->dkms_dir_fd);
        connection_unref(c);
        signing_key_unref(t->key);
        daemon_policy_unref(t->policy);
        free(t->dkms_path);
        free(t->dkms_package);
        free(t->dkms_version);
        free(t->hash_requested);
        free(t->kernel);
        free(t->name);
        free(t->hash);
        free(t->release);
        free(t->blob);
        free(t->module_name);
        free(t->version);
        free(t);
}

static int on_sign_deadline(sd_event_source *src, uint64_t usec, void *userdata) {
        struct sign_job *t = userdata;
        struct daemon *d = t->daemon;
        uint64_t started = __atomic_load_n(&t->started_usec, __ATOMIC_ACQUIRE);
        char why[512];

        /* Still queued, or started less than the deadline ago: the token had no time yet. */
        if (!started || usec < started + SIGN_TOKEN_DEADLINE_USEC) {
                int r = started ? sd_event_source_set_time(src, started + SIGN_TOKEN_DEADLINE_USEC)
                                : sd_event_source_set_time_relative(src, SIGN_TOKEN_DEADLINE_USEC);
                return r < 0 ? r : sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
        }
        t->answered = true;
        snprintf(why, sizeof(why), "it did not answer within %llu s", SIGN_TOKEN_DEADLINE_USEC / 1000000);
        (void) daemon_key_failed(d, t->key, -ETIMEDOUT, why);
        log_error("SIGN %s for %s: no answer from the key within %llu s; answering with an error",
                  t->name ?: "(unnamed)", t->conn->requester, SIGN_TOKEN_DEADLINE_USEC / 1000000);
        reply_error(t->conn, -ETIMEDOUT, daemon_key_unavailable(d, why, sizeof(why)) ?: "the key did not answer in time",
                    NULL);
        /* The job keeps its reference; its late end finds the connection closed. */
        connection_close(t->conn);
        return 0;
}

/* Whether 'path' names the file 'st' describes, reached without following a symlink at its
 * last component; then *ret_path (a copy) and *ret_dir_fd (its directory, for the policy's
 * ownership rule) are set. */
static void verify_dkms_path(const char *path, const struct stat *st, char **ret_path, int *ret_dir_fd) {
        _cleanup_close_ int dir_fd = -EBADF;
        char dir[PATH_MAX];
        struct stat now;
        char *slash;

        if (strlen(path) >= sizeof(dir))
                return;
        strcpy(dir, path);
        slash = strrchr(dir, '/');
        if (!slash || !slash[1])
                return;
        *slash = '\0';
        dir_fd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0 || fstatat(dir_fd, slash + 1, &now, AT_SYMLINK_NOFOLLOW) < 0)
                return;
        if (!S_ISREG(now.st_mode) || now.st_dev != st->st_dev || now.st_ino != st->st_ino)
                return;
        *ret_path = strdup(path);
        if (*ret_path)
                *ret_dir_fd = TAKE_FD(dir_fd);
}

static void handle_sign(struct connection *c, const struct proto_message *m, int module_fd) {
        struct daemon *d = c->server->daemon;
        _cleanup_free_ char *origin = NULL, *dkms_path = NULL;
        struct sign_job *t;
        struct stat st;
        int r;

        if (module_fd < 0) {
                reply_error(c, -EBADMSG, "SIGN needs the module's file descriptor", NULL);
                connection_close(c);
                return;
        }
        if (fstat(module_fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                safe_close(module_fd);
                reply_error(c, -EINVAL, "the descriptor is not a regular file", "not-a-module");
                resume_reading(c);
                return;
        }
        t = calloc(1, sizeof(*t));
        if (!t) {
                safe_close(module_fd);
                reply_error(c, -ENOMEM, "out of memory", NULL);
                resume_reading(c);
                return;
        }
        t->job = (struct job) { .run = sign_job_run, .done = sign_job_done };
        t->conn = c;
        c->n_ref++;
        t->daemon = d;
        t->key = signing_key_ref(d->key);
        t->policy = daemon_policy_ref(d->policy);
        t->audit = d->audit;
        t->module_fd = module_fd;
        t->dkms_dir_fd = -EBADF;
        if ((proto_get_string(m, PROTO_TAG_HASH, &t->hash_requested) == -EBADMSG) ||
            (proto_get_string(m, PROTO_TAG_KERNEL, &t->kernel) == -EBADMSG) ||
            (proto_get_string(m, PROTO_TAG_NAME, &t->name) == -EBADMSG) ||
            (proto_get_string(m, PROTO_TAG_ORIGIN, &origin) == -EBADMSG) ||
            (proto_get_string(m, PROTO_TAG_DKMS_PATH, &dkms_path) == -EBADMSG)) {
                t->error = -EBADMSG;
                t->why = "malformed string field";
                sign_job_done(&t->job);
                connection_close(c);
                return;
        }
        /* No key (its token went away): fail at once, recorded like any failure. */
        if (daemon_key_unavailable(d, t->why_buf, sizeof(t->why_buf))) {
                t->error = -ENODEV;
                t->why = t->why_buf;
                sign_job_done(&t->job);
                return;
        }
        /* ORIGIN=dkms is root's word that DKMS is building: taken, and audited. Its path is
         * believed only when it leads to the very file whose descriptor came along. */
        t->dkms_origin = streq_ptr(origin, "dkms");
        if (t->dkms_origin && dkms_path && dkms_path[0] == '/')
                verify_dkms_path(dkms_path, &st, &t->dkms_path, &t->dkms_dir_fd);
        r = workers_submit(d->workers, &t->job);
        if (r < 0) {
                t->error = r;
                t->why = "the daemon is stopping";
                sign_job_done(&t->job);
                return;
        }
        if (daemon_key_on_device(d) &&
            sd_event_add_time_relative(d->event, &t->deadline, CLOCK_MONOTONIC, SIGN_TOKEN_DEADLINE_USEC, 0,
                                       on_sign_deadline, t) < 0)
                t->deadline = NULL; /* without a deadline, the client's own timeout is the bound */
}

/* --- SCAN: sign the stragglers of a tree; answer when every one was looked at ------------ */

struct scan_op {
        struct connection *conn;
        unsigned outstanding;
        bool walking;
        unsigned counts[TREE_CANCELLED + 1];
};

static void scan_finish(struct scan_op *op) {
        static const char *const names[] = {
                [TREE_SIGNED] = "signed",     [TREE_UNCHANGED] = "unchanged", [TREE_FOREIGN] = "foreign",
                [TREE_NOT_MODULE] = "not_module", [TREE_REFUSED] = "refused",  [TREE_FAILED] = "failed",
                [TREE_CANCELLED] = "cancelled",
        };
        json_object *o = json_object_new_object();

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                json_object_object_add(o, names[i], json_object_new_int((int) op->counts[i]));
        reply_json(op->conn, o);
        json_object_put(o);
        resume_reading(op->conn);
        connection_unref(op->conn);
        free(op);
}

static void on_scan_module_done(struct daemon *d, const struct tree_result *res, void *userdata) {
        struct scan_op *op = userdata;

        op->counts[res->outcome]++;
        if (--op->outstanding == 0 && !op->walking)
                scan_finish(op);
}

static int scan_visit(const char *dir, const char *name, void *userdata) {
        struct scan_op *op = userdata;
        struct daemon *d = op->conn->server->daemon;

        if (daemon_queue_tree_module(d, dir, name, op->conn->requester, on_scan_module_done, op) < 0) {
                op->counts[TREE_FAILED]++;
                return 0;
        }
        op->outstanding++;
        return 0;
}

static void handle_scan(struct connection *c, const struct proto_message *m) {
        _cleanup_free_ char *path = NULL, *kernel = NULL, *root = NULL;
        struct scan_op *op;

        if (proto_get_string(m, PROTO_TAG_PATH, &path) == -EBADMSG ||
            proto_get_string(m, PROTO_TAG_KERNEL, &kernel) == -EBADMSG) {
                reply_error(c, -EBADMSG, "malformed string field", NULL);
                connection_close(c);
                return;
        }
        {
                char why[512];
                if (daemon_key_unavailable(c->server->daemon, why, sizeof(why))) {
                        reply_error(c, -ENODEV, why, NULL);
                        resume_reading(c);
                        return;
                }
        }
        if (kernel) {
                if (!kernel_installed(kernel)) {
                        reply_error(c, -ENOENT, "no such kernel in /lib/modules", NULL);
                        resume_reading(c);
                        return;
                }
                if (asprintf(&root, "/lib/modules/%s", kernel) < 0)
                        root = NULL;
        } else if (path) {
                if (path[0] != '/') {
                        reply_error(c, -EINVAL, "SCAN needs an absolute PATH", NULL);
                        resume_reading(c);
                        return;
                }
                root = TAKE_PTR(path);
        }

        op = calloc(1, sizeof(*op));
        if (!op) {
                reply_error(c, -ENOMEM, "out of memory", NULL);
                resume_reading(c);
                return;
        }
        op->conn = c;
        c->n_ref++;
        op->walking = true;
        if (kernel) {
                /* One kernel's updates/, extra/ and misc/: walk it as a lib/modules root would. */
                static const char *const subtrees[] = { "updates", "extra", "misc" };
                for (size_t i = 0; i < ELEMENTSOF(subtrees); i++) {
                        _cleanup_free_ char *sub = NULL;
                        if (asprintf(&sub, "%s/%s", root, subtrees[i]) >= 0)
                                (void) module_tree_walk(sub, scan_visit, op);
                }
        } else if (root)
                (void) module_tree_walk(root, scan_visit, op);
        else /* everything we watch */
                for (size_t i = 0; i < c->server->daemon->config.watch_paths.n; i++)
                        (void) module_tree_walk(c->server->daemon->config.watch_paths.items[i], scan_visit, op);
        op->walking = false;
        if (op->outstanding == 0)
                scan_finish(op);
}

/* --- STATUS and RELOAD --------------------------------------------------------------------- */

static void handle_status(struct connection *c) {
        struct daemon *d = c->server->daemon;
        json_object *o = json_object_new_object();
        uint64_t now = 0;

        (void) sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
        json_object_object_add(o, "pid", json_object_new_int((int) getpid()));
        json_object_object_add(o, "uptime_seconds", json_object_new_int64((int64_t) ((now - d->start_usec) / 1000000)));
        json_object_object_add(o, "key_fingerprint", json_object_new_string(d->key->fingerprint));
        json_object_object_add(o, "hash", json_object_new_string(d->key->hash));
        daemon_key_status(d, o);
        json_object_object_add(o, "watched_directories", json_object_new_int((int) watcher_n_watches(d->watcher)));
        json_object_object_add(o, "queued", json_object_new_int((int) workers_queued(d->workers)));
        json_object_object_add(o, "workers", json_object_new_int((int) workers_threads(d->workers)));
        json_object_object_add(o, "connections", json_object_new_int((int) c->server->n_connections));
        json_object_object_add(o, "signed", json_object_new_int64((int64_t) d->stats.signed_));
        json_object_object_add(o, "unchanged", json_object_new_int64((int64_t) d->stats.unchanged));
        json_object_object_add(o, "foreign", json_object_new_int64((int64_t) d->stats.foreign));
        json_object_object_add(o, "refused", json_object_new_int64((int64_t) d->stats.refused));
        json_object_object_add(o, "failed", json_object_new_int64((int64_t) d->stats.failed));
        json_object_object_add(o, "requests", json_object_new_int64((int64_t) d->stats.requests));
        reply_json(c, o);
        json_object_put(o);
        resume_reading(c);
}

static void handle_reload(struct connection *c) {
        struct daemon *d = c->server->daemon;
        int r = daemon_reload(d);

        if (r < 0)
                reply_error(c, r, "reload failed; the running configuration and key were kept (see the log)", NULL);
        else {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "key_fingerprint", json_object_new_string(d->key->fingerprint));
                reply_json(c, o);
                json_object_put(o);
        }
        /* A reload replaced the server's daemon state, not the server: c is still valid. */
        resume_reading(c);
}

/* --- connections ------------------------------------------------------------------------- */

static int on_connection_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct connection *c = userdata;
        static uint8_t buf[PROTO_MAX_PACKET];
        union {
                struct cmsghdr hdr;
                char buf[CMSG_SPACE(sizeof(int) * MAX_FDS_PER_MESSAGE)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        struct proto_message m;
        int fds[MAX_FDS_PER_MESSAGE], n_fds = 0, r;
        ssize_t n;

        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                connection_close(c);
                return 0;
        }
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                        int k = (int) ((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                        for (int i = 0; i < k && n_fds < MAX_FDS_PER_MESSAGE; i++)
                                memcpy(&fds[n_fds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                }
        if (n == 0 && n_fds == 0) { /* the peer hung up */
                connection_close(c);
                return 0;
        }

        if (c->refused) {
                /* Answer the request it sent before closing: closing with its request unread
                 * would reset the connection and lose the reason on the way. */
                for (int i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                reply_error(c, -EPERM, "only root may use modsignd", "not-root");
                connection_close(c);
                return 0;
        }
        c->server->daemon->stats.requests++;
        if ((size_t) n > sizeof(buf) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || n_fds > 1) {
                r = -EMSGSIZE;
                goto malformed;
        }
        r = proto_decode(buf, (size_t) n, &m);
        if (r < 0)
                goto malformed;
        if (m.type != PROTO_REQ_SIGN && n_fds > 0) {
                r = -EBADMSG;
                goto malformed;
        }

        /* One request at a time: stop reading until this one is answered. */
        (void) sd_event_source_set_enabled(c->source, SD_EVENT_OFF);
        switch (m.type) {
        case PROTO_REQ_SIGN:
                handle_sign(c, &m, n_fds > 0 ? fds[0] : -EBADF);
                break;
        case PROTO_REQ_SCAN:
                handle_scan(c, &m);
                break;
        case PROTO_REQ_STATUS:
                handle_status(c);
                break;
        case PROTO_REQ_RELOAD:
                handle_reload(c);
                break;
        case PROTO_REPLY_OK:
        case PROTO_REPLY_ERROR:
        default:
                r = -EBADMSG;
                goto malformed;
        }
        return 0;

malformed:
        for (int i = 0; i < n_fds; i++)
                safe_close(fds[i]);
        log_warning("malformed request from %s: %s; closing the connection", c->requester, strerror(-r));
        reply_error(c, r, "malformed request", NULL);
        connection_close(c);
        return 0;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct server *s = userdata;
        _cleanup_close_ int cfd = -EBADF;
        struct connection *c;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        char comm[32] = "?";
        int r;

        cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return 0;
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return 0;

        c = calloc(1, sizeof(*c));
        if (!c)
                return 0;
        *c = (struct connection) { .server = s, .fd = TAKE_FD(cfd), .pid = cred.pid, .uid = cred.uid, .n_ref = 1 };
        {
                char path[64];
                _cleanup_close_ int cf = -EBADF;
                snprintf(path, sizeof(path), "/proc/%d/comm", (int) cred.pid);
                cf = open(path, O_RDONLY | O_CLOEXEC);
                if (cf >= 0) {
                        ssize_t n = read(cf, comm, sizeof(comm) - 1);
                        comm[n > 0 ? n : 0] = '\0';
                        comm[strcspn(comm, "\n")] = '\0';
                }
        }
        snprintf(c->requester, sizeof(c->requester), "pid=%d uid=%u comm=%s", (int) cred.pid, (unsigned) cred.uid, comm);
        c->next = s->connections;
        s->connections = c;
        s->n_connections++;

        /* The socket's mode already keeps others out; the credentials check is the lock. */
        if (cred.uid != 0) {
                log_warning("refused a client that is not root (%s)", c->requester);
                c->refused = true; /* nothing it sends is acted on */
        }
        if (s->n_connections > MAX_CONNECTIONS) {
                reply_error(c, -EBUSY, "too many connections", NULL);
                connection_close(c);
                return 0;
        }
        r = sd_event_add_io(s->daemon->event, &c->source, c->fd, EPOLLIN, on_connection_io, c);
        if (r < 0)
                connection_close(c);
        return 0;
}

static int make_socket(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *dir = NULL;
        struct stat st;
        mode_t old_umask;
        char *slash;
        int r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
        }
        /* A stale socket from a previous run goes; a live one (another modsignd) or anything
         * else at that path stays. */
        if (lstat(path, &st) >= 0) {
                _cleanup_close_ int probe = -EBADF;

                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sizeof(sa)) >= 0)
                        return -EADDRINUSE;
                (void) unlink(path);
        }

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        old_umask = umask(0177); /* the socket is born 0600: no window where others may connect */
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old_umask);
        if (r < 0)
                return negative_errno();
        if (listen(fd, SOMAXCONN) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int server_new(struct daemon *d, struct server **ret) {
        struct server *s;
        int n, r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->daemon = d;
        s->listen_fd = -EBADF;

        n = sd_listen_fds(true);
        if (n > 1) {
                free(s);
                return log_error_errno(-EINVAL, "expected one socket from systemd, got %d", n);
        }
        if (n == 1) {
                if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
                        free(s);
                        return log_error_errno(-EINVAL, "the socket systemd passed is not a listening AF_UNIX SOCK_SEQPACKET socket");
                }
                s->listen_fd = SD_LISTEN_FDS_START;
                s->socket_activated = true;
                (void) fcntl(s->listen_fd, F_SETFL, fcntl(s->listen_fd, F_GETFL) | O_NONBLOCK);
        } else {
                r = make_socket(d->config.socket_path, &s->listen_fd);
                if (r < 0) {
                        free(s);
                        return log_error_errno(r, "cannot listen on %s: %m", d->config.socket_path);
                }
                s->socket_path = strdup(d->config.socket_path);
        }

        r = sd_event_add_io(d->event, &s->listen_source, s->listen_fd, EPOLLIN, on_accept, s);
        if (r < 0) {
                server_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

void server_free(struct server *s) {
        if (!s)
                return;
        while (s->connections)
                connection_close(s->connections);
        sd_event_source_disable_unref(s->listen_source);
        safe_close(s->listen_fd);
        if (s->socket_path)
                (void) unlink(s->socket_path);
        free(s->socket_path);
        free(s);
}
