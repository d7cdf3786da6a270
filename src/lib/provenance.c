/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* In-toto statements for signatures, and the DKMS source tree digest (provenance.h). */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "io-util.h"
#include "macro.h"
#include "openssl-util.h"
#include "provenance.h"
#include "replace.h"

#define STATEMENT_MAX (1U << 20)

/* --- the source tree digest ----------------------------------------------------------------- */

struct tree_entry {
        char *path;
        char type;          /* 'f' or 'l' */
        unsigned mode;
        char sha256[65];
};

struct tree {
        struct tree_entry *e;
        size_t n;
};

static void tree_done(struct tree *t) {
        for (size_t i = 0; i < t->n; i++)
                free(t->e[i].path);
        free(t->e);
        *t = (struct tree) {};
}

static int tree_add(struct tree *t, int dir_fd, const char *name, const char *rel, const struct stat *st) {
        struct tree_entry e = {};
        struct tree_entry *n;
        int r;

        if (t->n >= PROVENANCE_TREE_MAX_ENTRIES)
                return -E2BIG;
        if (S_ISREG(st->st_mode)) {
                _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return negative_errno();
                r = digest_fd_sha256(fd, e.sha256);
                if (r < 0)
                        return r;
                e.type = 'f';
                e.mode = st->st_mode & 07777;
        } else {
                char target[PATH_MAX];
                ssize_t len = readlinkat(dir_fd, name, target, sizeof(target));
                if (len < 0)
                        return negative_errno();
                if ((size_t) len >= sizeof(target))
                        return -ENAMETOOLONG;
                r = digest_sha256_hex(target, (size_t) len, e.sha256);
                if (r < 0)
                        return r;
                e.type = 'l';
                e.mode = 0777;
        }
        e.path = strdup(rel);
        if (!e.path)
                return -ENOMEM;
        n = reallocarray(t->e, t->n + 1, sizeof(*n));
        if (!n) {
                free(e.path);
                return -ENOMEM;
        }
        t->e = n;
        t->e[t->n++] = e;
        return 0;
}

static int tree_walk(struct tree *t, int dir_fd, const char *rel, unsigned depth) {
        struct dirent *de;
        int fd, r = 0;
        DIR *d;

        if (depth > PROVENANCE_TREE_MAX_DEPTH)
                return -E2BIG;
        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                r = negative_errno();
                safe_close(fd);
                return r;
        }
        while (r >= 0 && (errno = 0, de = readdir(d))) {
                _cleanup_free_ char *path = NULL;
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (asprintf(&path, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = negative_errno();
                        break;
                }
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        r = sub < 0 ? negative_errno() : tree_walk(t, sub, path, depth + 1);
                } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
                        r = tree_add(t, dirfd(d), de->d_name, path, &st);
                /* sockets, FIFOs, devices: not part of a source tree's content */
        }
        if (r >= 0 && errno != 0)
                r = negative_errno();
        closedir(d);
        return r;
}

static int entry_cmp(const void *a, const void *b) {
        return strcmp(((const struct tree_entry *) a)->path, ((const struct tree_entry *) b)->path);
}

int source_tree_digest_fd(int dir_fd, char ret[65]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        struct tree t = {};
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        int r;

        r = tree_walk(&t, dir_fd, "", 0);
        if (r < 0)
                goto out;
        if (t.n > 1)
                qsort(t.e, t.n, sizeof(*t.e), entry_cmp);
        ctx = EVP_MD_CTX_new();
        if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < t.n; i++) {
                char head[2 + 4 + 1 + 64 + 2];
                snprintf(head, sizeof(head), "%c %04o %s ", t.e[i].type, t.e[i].mode, t.e[i].sha256);
                /* The path and its NUL terminator. */
                if (!EVP_DigestUpdate(ctx, head, strlen(head)) || !EVP_DigestUpdate(ctx, t.e[i].path, strlen(t.e[i].path) + 1)) {
                        r = -EIO;
                        goto out;
                }
        }
        if (!EVP_DigestFinal_ex(ctx, md, &n) || n != 32) {
                r = -EIO;
                goto out;
        }
        for (unsigned i = 0; i < n; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        r = 0;
out:
        tree_done(&t);
        return r;
}

int source_tree_digest(const char *path, char ret[65]) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return negative_errno();
        return source_tree_digest_fd(fd, ret);
}

/* --- the statement ---------------------------------------------------------------------------- */

static bool is_sha256_hex(const char *s) {
        size_t i;

        if (!s)
                return false;
        for (i = 0; s[i]; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return i == 64;
}

/* json_object_object_add() of a new value; a NULL value is left out. */
static int put(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int put_str(json_object *o, const char *key, const char *s) {
        return s ? put(o, key, json_object_new_string(s)) : 0;
}

static json_object *digest_object(const char *sha256) {
        json_object *d = json_object_new_object();

        if (d && put_str(d, "sha256", sha256) < 0) {
                json_object_put(d);
                return NULL;
        }
        return d;
}

static int source_object(const struct provenance_input *in, json_object **ret) {
        _cleanup_free_ char *path = NULL;
        const char *root = in->source_root;
        json_object *s;
        char digest[65];
        int r;

        if (!root) {
                root = getenv(PROVENANCE_SOURCE_ROOT_ENV);
                if (!root || !*root)
                        root = PROVENANCE_DEFAULT_SOURCE_ROOT;
        }
        if (strchr(in->dkms_package, '/') || strchr(in->dkms_version, '/'))
                return -EINVAL;
        if (asprintf(&path, "%s/%s-%s", root, in->dkms_package, in->dkms_version) < 0)
                return -ENOMEM;
        s = json_object_new_object();
        if (!s)
                return -ENOMEM;
        r = put_str(s, "path", path);
        if (r >= 0)
                r = put_str(s, "algorithm", PROVENANCE_TREE_ALGORITHM);
        if (r >= 0) {
                int k = source_tree_digest(path, digest);
                if (k >= 0)
                        r = put(s, "digest", digest_object(digest));
                else if (k == -ENOENT || k == -ENOTDIR)
                        r = put(s, "present", json_object_new_boolean(false));
                else
                        r = k;
        }
        if (r < 0) {
                json_object_put(s);
                return r;
        }
        *ret = s;
        return 0;
}

static int now_rfc3339(char buf[32]) {
        time_t t = time(NULL);
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EIO;
        return 0;
}

int provenance_statement(const struct provenance_input *in, json_object **ret) {
        json_object *st = NULL, *subj, *s0, *pred, *o;
        struct utsname u;
        char now[32];
        int r;

        if (!in->subject_name || !*in->subject_name || !is_sha256_hex(in->sha256))
                return -EINVAL;
        if (!in->time && (r = now_rfc3339(now)) < 0)
                return r;

        st = json_object_new_object();
        if (!st)
                return -ENOMEM;
        r = put_str(st, "_type", PROVENANCE_STATEMENT_TYPE);
        if (r < 0)
                goto fail;
        subj = json_object_new_array();
        r = put(st, "subject", subj);
        if (r < 0)
                goto fail;
        s0 = json_object_new_object();
        if (!s0 || json_object_array_add(subj, s0) < 0) {
                json_object_put(s0);
                r = -ENOMEM;
                goto fail;
        }
        r = put_str(s0, "name", in->subject_name);
        if (r >= 0)
                r = put(s0, "digest", digest_object(in->sha256));
        if (r >= 0)
                r = put_str(st, "predicateType", PROVENANCE_PREDICATE_TYPE);
        if (r < 0)
                goto fail;

        pred = json_object_new_object();
        r = put(st, "predicate", pred);
        if (r < 0)
                goto fail;
        o = json_object_new_object();
        r = put(pred, "module", o);
        if (r >= 0)
                r = put_str(o, "name", in->module);
        if (r >= 0)
                r = put_str(o, "version", in->version);
        if (r >= 0)
                r = put_str(o, "path", in->path);
        if (r >= 0)
                r = put_str(o, "sha256_before", in->sha256_before);
        if (r >= 0)
                r = put_str(pred, "kernel", in->kernel);
        if (r < 0)
                goto fail;
        if (in->dkms_package && in->dkms_version) {
                json_object *src = NULL;
                o = json_object_new_object();
                r = put(pred, "dkms", o);
                if (r >= 0)
                        r = put_str(o, "package", in->dkms_package);
                if (r >= 0)
                        r = put_str(o, "version", in->dkms_version);
                if (r >= 0)
                        r = source_object(in, &src);
                if (r >= 0)
                        r = put(o, "source", src);
                if (r < 0)
                        goto fail;
        }
        if (in->build_host)
                r = put_str(pred, "build_host", in->build_host);
        else if (uname(&u) >= 0)
                r = put_str(pred, "build_host", u.nodename);
        if (r < 0)
                goto fail;
        if (in->signer_fingerprint) {
                o = json_object_new_object();
                r = put(pred, "signer", o);
                if (r >= 0)
                        r = put_str(o, "certificate_sha256", in->signer_fingerprint);
                if (r < 0)
                        goto fail;
        }
        r = put_str(pred, "signature_hash", in->signature_hash);
        if (r >= 0)
                r = put_str(pred, "time", in->time ?: now);
        if (r < 0)
                goto fail;
        *ret = st;
        return 0;
fail:
        json_object_put(st);
        return r;
}

/* --- storing ---------------------------------------------------------------------------------- */

static int open_provenance_dir(const char *state_dir, bool create, int *ret_fd) {
        _cleanup_close_ int sfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int fd;

        if (sfd < 0)
                return negative_errno();
        if (create && mkdirat(sfd, PROVENANCE_DIR, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        fd = openat(sfd, PROVENANCE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        *ret_fd = fd;
        return 0;
}

int provenance_write(const char *state_dir, const char *sha256, json_object *stmt, char **ret_path) {
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_free_ char *name = NULL, *path = NULL;
        struct replace rp;
        const char *text;
        int r;

        if (!is_sha256_hex(sha256))
                return -EINVAL;
        text = json_object_to_json_string_ext(stmt, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        if (asprintf(&name, "%s.json", sha256) < 0 ||
            asprintf(&path, "%s/%s/%s", state_dir, PROVENANCE_DIR, name) < 0)
                return -ENOMEM;
        r = open_provenance_dir(state_dir, true, &dfd);
        if (r < 0)
                return r;
        /* Readable by all: a statement says what was signed, not how. */
        r = replace_begin(dfd, name, NULL, &rp);
        if (r < 0)
                return r;
        r = loop_write(rp.fd, text, strlen(text));
        if (r >= 0)
                r = loop_write(rp.fd, "\n", 1);
        if (r >= 0 && fchmod(rp.fd, 0644) < 0)
                r = negative_errno();
        /* Atomic, not synced: the audit record that names the statement is the durable anchor
         * (fsynced before any signature leaves the daemon). A statement lost in a crash is
         * reported as missing by `modsignctl provenance`; two more fsyncs per signature would
         * double the cost of each. */
        if (r >= 0)
                r = replace_commit_unsynced(&rp);
        replace_abort(&rp);
        if (r < 0)
                return r;
        if (ret_path)
                *ret_path = TAKE_PTR(path);
        return 0;
}

static char *base_name(const char *path) {
        const char *s = strrchr(path, '/');
        s = s ? s + 1 : path;
        return *s ? strdup(s) : NULL;
}

int provenance_record(struct audit_log *log, const struct audit_record *rec, char **ret_path) {
        _cleanup_free_ char *state_dir = NULL, *subject = NULL, *pkg = NULL, *ver = NULL;
        json_object *st = NULL;
        const char *lp, *slash;
        int r;

        *ret_path = NULL;
        if (!log || (rec->event != AUDIT_EVENT_SIGNED && rec->event != AUDIT_EVENT_RESIGNED) || !rec->sha256_after)
                return 0;
        lp = audit_log_path(log);
        slash = lp ? strrchr(lp, '/') : NULL;
        if (!slash)
                return -EINVAL;
        state_dir = slash == lp ? strdup("/") : strndup(lp, (size_t) (slash - lp));
        if (rec->path)
                subject = base_name(rec->path);
        else if (rec->module && asprintf(&subject, "%s.ko", rec->module) < 0)
                subject = NULL;
        if (!state_dir || !subject)
                return -ENOMEM;
        if (!(rec->dkms_package && rec->dkms_version)) {
                r = audit_dkms_from_path(rec->path, &pkg, &ver);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        /* The daemon and the CLI put the signature's hash first in the reason of a signature
         * ("sha256; policy dkms"): the hash is what comes before any ';'. */
        _cleanup_free_ char *hash = rec->reason ? strndup(rec->reason, strcspn(rec->reason, "; ")) : NULL;
        if (rec->reason && !hash)
                return -ENOMEM;
        struct provenance_input in = {
                .subject_name = subject,
                .sha256 = rec->sha256_after,
                .module = rec->module,
                .version = rec->version,
                .path = rec->path,
                .sha256_before = rec->sha256_before,
                .kernel = rec->kernel,
                .dkms_package = rec->dkms_package && rec->dkms_version ? rec->dkms_package : pkg,
                .dkms_version = rec->dkms_package && rec->dkms_version ? rec->dkms_version : ver,
                .signer_fingerprint = rec->key_fingerprint,
                .signature_hash = hash,
        };
        r = provenance_statement(&in, &st);
        if (r < 0)
                return r;
        r = provenance_write(state_dir, rec->sha256_after, st, ret_path);
        json_object_put(st);
        return r;
}

const char *provenance_subject_sha256(json_object *stmt) {
        json_object *subj, *s0, *d, *v;

        if (!json_object_object_get_ex(stmt, "subject", &subj) || !json_object_is_type(subj, json_type_array) ||
            json_object_array_length(subj) < 1 || !(s0 = json_object_array_get_idx(subj, 0)) ||
            !json_object_object_get_ex(s0, "digest", &d) || !json_object_object_get_ex(d, "sha256", &v) ||
            !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

int provenance_load(const char *state_dir, const char *sha256, json_object **ret) {
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        _cleanup_free_ char *name = NULL, *text = NULL;
        json_object *st, *t;
        const char *s;
        size_t len;
        int r;

        if (!is_sha256_hex(sha256))
                return -EINVAL;
        r = open_provenance_dir(state_dir, false, &dfd);
        if (r < 0)
                return r;
        if (asprintf(&name, "%s.json", sha256) < 0)
                return -ENOMEM;
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        r = read_full_fd(fd, STATEMENT_MAX, &text, &len);
        if (r < 0)
                return r;
        st = json_tokener_parse(text);
        if (!st)
                return -EBADMSG;
        s = provenance_subject_sha256(st);
        if (!json_object_object_get_ex(st, "_type", &t) || !json_object_is_type(t, json_type_string) ||
            !streq(json_object_get_string(t), PROVENANCE_STATEMENT_TYPE) || !s || !streq(s, sha256)) {
                json_object_put(st);
                return -EBADMSG;
        }
        *ret = st;
        return 0;
}

static const char *member_path(json_object *o, const char *a, const char *b) {
        json_object *v;

        if (!json_object_object_get_ex(o, a, &v))
                return NULL;
        if (b && !json_object_object_get_ex(v, b, &v))
                return NULL;
        return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int provenance_find_for_module(const char *state_dir, const char *path, const char *name, const char *kernel,
                               json_object **ret) {
        json_object *best_path = NULL, *best_name = NULL;
        _cleanup_close_ int dfd = -EBADF;
        struct dirent *de;
        DIR *d;
        int fd, r;

        r = open_provenance_dir(state_dir, false, &dfd);
        if (r < 0)
                return r;
        fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -ENOMEM;
        }
        while ((de = readdir(d))) {
                _cleanup_close_ int sfd = -EBADF;
                _cleanup_free_ char *text = NULL;
                json_object *pred, *st, **slot = NULL;
                const char *p, *n, *k, *t;
                size_t len;

                if (de->d_name[0] == '.' || !strstr(de->d_name, ".json"))
                        continue;
                sfd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                if (sfd < 0 || read_full_fd(sfd, STATEMENT_MAX, &text, &len) < 0)
                        continue;
                st = json_tokener_parse(text);
                if (!st)
                        continue;
                if (!json_object_object_get_ex(st, "predicate", &pred)) {
                        json_object_put(st);
                        continue;
                }
                p = member_path(pred, "module", "path");
                n = member_path(pred, "module", "name");
                k = member_path(pred, "kernel", NULL);
                t = member_path(pred, "time", NULL) ?: "";
                if (path && p && streq(p, path))
                        slot = &best_path;
                else if (name && n && streq(n, name) && (!kernel || (k && streq(k, kernel))))
                        slot = &best_name;
                /* RFC 3339 UTC times of one format compare as strings. */
                if (slot && (!*slot || strcmp(t, member_path(json_object_object_get(*slot, "predicate"), "time", NULL) ?: "") >= 0)) {
                        json_object_put(*slot);
                        *slot = st;
                } else
                        json_object_put(st);
        }
        closedir(d);
        if (best_path) {
                json_object_put(best_name);
                *ret = best_path;
                return 0;
        }
        if (best_name) {
                *ret = best_name;
                return 0;
        }
        return -ENOENT;
}
