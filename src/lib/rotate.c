/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io-util.h"
#include "macro.h"
#include "replace.h"
#include "rotate.h"

#define STATE_MAX (64U << 20)
#define STATE_VERSION 1

static const char *const phase_names[_ROTATE_PHASE_MAX] = {
        [ROTATE_STAGED] = "staged",
        [ROTATE_WAITING_TRUST] = "waiting-trust",
        [ROTATE_RESIGNING] = "resigning",
        [ROTATE_SWITCHING] = "switching",
        [ROTATE_DONE] = "done",
};

const char *rotate_phase_to_string(enum rotate_phase p) {
        return (size_t) p < ELEMENTSOF(phase_names) ? phase_names[p] : NULL;
}

int rotate_phase_from_string(const char *s, enum rotate_phase *ret) {
        for (size_t i = 0; i < ELEMENTSOF(phase_names); i++)
                if (s && streq(s, phase_names[i])) {
                        *ret = (enum rotate_phase) i;
                        return 0;
                }
        return -EINVAL;
}

int rotate_list_add(struct rotate_list *l, const char *item) {
        char **items = reallocarray(l->items, l->n + 1, sizeof(char *));

        if (!items)
                return -ENOMEM;
        l->items = items;
        l->items[l->n] = strdup(item);
        if (!l->items[l->n])
                return -ENOMEM;
        l->n++;
        return 0;
}

bool rotate_list_contains(const struct rotate_list *l, const char *item) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->items[i], item))
                        return true;
        return false;
}

int rotate_list_remove(struct rotate_list *l, const char *item) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->items[i], item)) {
                        free(l->items[i]);
                        memmove(l->items + i, l->items + i + 1, sizeof(char *) * (l->n - i - 1));
                        l->n--;
                        return 0;
                }
        return -ENOENT;
}

void rotate_list_done(struct rotate_list *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->items[i]);
        free(l->items);
        *l = (struct rotate_list) {};
}

void rotate_state_done(struct rotate_state *s) {
        free(s->old_key);
        free(s->old_cert);
        free(s->old_fingerprint);
        free(s->new_key);
        free(s->new_cert);
        free(s->new_fingerprint);
        free(s->new_pin_file);
        free(s->modules_dir);
        free(s->dkms_tree);
        free(s->dropin);
        free(s->retired_key);
        rotate_list_done(&s->pending);
        rotate_list_done(&s->done);
        rotate_list_done(&s->skipped);
        *s = (struct rotate_state) {};
}

/* ---- JSON ---- */

static int add_str(json_object *o, const char *k, const char *v) {
        json_object *j = NULL;

        if (v && !(j = json_object_new_string(v)))
                return -ENOMEM;
        return json_object_object_add(o, k, j) < 0 ? -ENOMEM : 0;
}

static int add_list(json_object *o, const char *k, const struct rotate_list *l) {
        json_object *a = json_object_new_array_ext((int) l->n);

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                json_object *s = json_object_new_string(l->items[i]);
                if (!s || json_object_array_add(a, s) < 0) {
                        json_object_put(s);
                        json_object_put(a);
                        return -ENOMEM;
                }
        }
        return json_object_object_add(o, k, a) < 0 ? -ENOMEM : 0;
}

static int key_object(json_object *o, const char *name, const char *key, const char *cert, const char *fpr,
                      const char *pin_file) {
        json_object *k = json_object_new_object();
        int r;

        if (!k)
                return -ENOMEM;
        r = add_str(k, "key", key);
        if (r >= 0)
                r = add_str(k, "certificate", cert);
        if (r >= 0)
                r = add_str(k, "fingerprint_sha256", fpr);
        if (r >= 0 && pin_file)
                r = add_str(k, "pin_file", pin_file);
        if (r < 0 || json_object_object_add(o, name, k) < 0) {
                json_object_put(k);
                return -ENOMEM;
        }
        return 0;
}

int rotate_state_to_json(const struct rotate_state *s, json_object **ret) {
        json_object *o = json_object_new_object(), *m = NULL;
        int r = 0;

        if (!o)
                return -ENOMEM;
#define TRY(x)                         \
        do {                           \
                if (r >= 0)            \
                        r = (x);       \
        } while (0)
        TRY(json_object_object_add(o, "version", json_object_new_int(STATE_VERSION)) < 0 ? -ENOMEM : 0);
        TRY(add_str(o, "phase", rotate_phase_to_string(s->phase)));
        TRY(json_object_object_add(o, "started", json_object_new_int64(s->started)) < 0 ? -ENOMEM : 0);
        TRY(json_object_object_add(o, "updated", json_object_new_int64(s->updated)) < 0 ? -ENOMEM : 0);
        TRY(key_object(o, "old", s->old_key, s->old_cert, s->old_fingerprint, NULL));
        TRY(key_object(o, "new", s->new_key, s->new_cert, s->new_fingerprint, s->new_pin_file));
        TRY(add_str(o, "modules_dir", s->modules_dir));
        TRY(add_str(o, "dkms_tree", s->dkms_tree));
        TRY(add_str(o, "dropin", s->dropin));
        TRY(json_object_object_add(o, "delete_old", json_object_new_boolean(s->delete_old)) < 0 ? -ENOMEM : 0);
        TRY(add_str(o, "retired_key", s->retired_key));
        if (r >= 0) {
                m = json_object_new_object();
                if (!m)
                        r = -ENOMEM;
        }
        TRY(add_list(m, "pending", &s->pending));
        TRY(add_list(m, "done", &s->done));
        TRY(add_list(m, "skipped", &s->skipped));
        if (m) {
                if (r >= 0)
                        r = json_object_object_add(o, "modules", m) < 0 ? -ENOMEM : 0;
                else
                        json_object_put(m);
        }
#undef TRY
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        *ret = o;
        return 0;
}

/* A string member, copied; absent or null leaves *ret NULL unless required. */
static int get_str(json_object *o, const char *k, bool required, char **ret) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, k, &v) || json_object_is_type(v, json_type_null))
                return required ? -EBADMSG : 0;
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

static int get_list(json_object *o, const char *k, struct rotate_list *ret) {
        json_object *a;
        int r;

        if (!o || !json_object_object_get_ex(o, k, &a) || !json_object_is_type(a, json_type_array))
                return -EBADMSG;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *s = json_object_array_get_idx(a, i);

                if (!json_object_is_type(s, json_type_string))
                        return -EBADMSG;
                r = rotate_list_add(ret, json_object_get_string(s));
                if (r < 0)
                        return r;
        }
        return 0;
}

int rotate_state_from_json(json_object *o, struct rotate_state *ret) {
        struct rotate_state s = {};
        json_object *v, *old = NULL, *new = NULL, *m = NULL;
        _cleanup_free_ char *phase = NULL;
        int r;

        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "version", &v) ||
            json_object_get_int(v) != STATE_VERSION)
                return -EBADMSG;
        (void) json_object_object_get_ex(o, "old", &old);
        (void) json_object_object_get_ex(o, "new", &new);
        (void) json_object_object_get_ex(o, "modules", &m);

        r = get_str(o, "phase", true, &phase);
        if (r >= 0)
                r = rotate_phase_from_string(phase, &s.phase) < 0 ? -EBADMSG : 0;
        if (r >= 0 && json_object_object_get_ex(o, "started", &v))
                s.started = json_object_get_int64(v);
        if (r >= 0 && json_object_object_get_ex(o, "updated", &v))
                s.updated = json_object_get_int64(v);
        if (r >= 0)
                r = get_str(old, "key", false, &s.old_key);
        if (r >= 0)
                r = get_str(old, "certificate", true, &s.old_cert);
        if (r >= 0)
                r = get_str(old, "fingerprint_sha256", true, &s.old_fingerprint);
        if (r >= 0)
                r = get_str(new, "key", true, &s.new_key);
        if (r >= 0)
                r = get_str(new, "certificate", true, &s.new_cert);
        if (r >= 0)
                r = get_str(new, "fingerprint_sha256", true, &s.new_fingerprint);
        if (r >= 0)
                r = get_str(new, "pin_file", false, &s.new_pin_file);
        if (r >= 0)
                r = get_str(o, "modules_dir", false, &s.modules_dir);
        if (r >= 0)
                r = get_str(o, "dkms_tree", false, &s.dkms_tree);
        if (r >= 0)
                r = get_str(o, "dropin", true, &s.dropin);
        if (r >= 0 && json_object_object_get_ex(o, "delete_old", &v))
                s.delete_old = json_object_get_boolean(v);
        if (r >= 0)
                r = get_str(o, "retired_key", false, &s.retired_key);
        if (r >= 0)
                r = get_list(m, "pending", &s.pending);
        if (r >= 0)
                r = get_list(m, "done", &s.done);
        if (r >= 0)
                r = get_list(m, "skipped", &s.skipped);
        if (r < 0) {
                rotate_state_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

int rotate_state_load(const char *dir, struct rotate_state *ret) {
        _cleanup_close_ int dir_fd = -EBADF, fd = -EBADF;
        _cleanup_free_ char *text = NULL;
        json_object *o;
        size_t len;
        int r;

        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return negative_errno();
        fd = openat(dir_fd, ROTATE_STATE_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        r = read_full_fd(fd, STATE_MAX, &text, &len);
        if (r < 0)
                return r;
        o = json_tokener_parse(text);
        if (!o)
                return -EBADMSG;
        r = rotate_state_from_json(o, ret);
        json_object_put(o);
        return r;
}

/* Writes data as dir_fd/name through replace.h: the old file or the new one, never half. */
static int write_atomic(int dir_fd, const char *name, mode_t mode, const char *data, size_t len) {
        struct replace rep;
        int r;

        r = replace_begin(dir_fd, name, NULL, &rep);
        if (r < 0)
                return r;
        r = fchmod(rep.fd, mode) < 0 ? negative_errno() : loop_write(rep.fd, data, len);
        if (r < 0) {
                replace_abort(&rep);
                return r;
        }
        r = replace_commit(&rep);
        replace_abort(&rep);
        return r;
}

int rotate_state_save(const char *dir, struct rotate_state *s) {
        _cleanup_close_ int dir_fd = -EBADF;
        json_object *o = NULL;
        const char *text;
        int r;

        s->updated = (int64_t) time(NULL);
        if (!s->started)
                s->started = s->updated;
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return negative_errno();
        r = rotate_state_to_json(s, &o);
        if (r < 0)
                return r;
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE);
        r = text ? write_atomic(dir_fd, ROTATE_STATE_FILE, 0600, text, strlen(text)) : -ENOMEM;
        json_object_put(o);
        return r;
}

/* ---- module discovery ---- */

static bool is_module_name(const char *name) {
        static const char *const suffixes[] = { ".ko", ".ko.xz", ".ko.zst", ".ko.gz" };
        size_t n = strlen(name);

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t s = strlen(suffixes[i]);
                if (n > s && streq(name + n - s, suffixes[i]))
                        return true;
        }
        return false;
}

/* nftw() has no user data: the list being filled, for the duration of one walk. */
static struct rotate_list *walk_list;
static int walk_error;

static int walk_fn(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        int r;

        if (type != FTW_F || !S_ISREG(st->st_mode) || !is_module_name(path + ftw->base))
                return 0;
        r = rotate_list_add(walk_list, path);
        if (r < 0) {
                walk_error = r;
                return 1;
        }
        return 0;
}

static int walk(const char *root, struct rotate_list *l) {
        struct stat st;

        if (lstat(root, &st) < 0 || !S_ISDIR(st.st_mode))
                return 0; /* a missing tree has no modules */
        walk_list = l;
        walk_error = 0;
        /* FTW_PHYS: symlinks are listed, never followed (DKMS's tree is full of them). */
        if (nftw(root, walk_fn, 16, FTW_PHYS) < 0 && !walk_error)
                walk_error = negative_errno();
        walk_list = NULL;
        return walk_error;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int rotate_find_modules(const char *modules_dir, const char *dkms_tree, struct rotate_list *ret) {
        static const char *const subdirs[] = { "updates", "extra", "misc" };
        struct rotate_list l = {};
        int r = 0;

        if (modules_dir) {
                DIR *d = opendir(modules_dir);

                if (!d && errno != ENOENT && errno != ENOTDIR)
                        return negative_errno();
                for (struct dirent *de; d && r >= 0 && (de = readdir(d));) {
                        if (de->d_name[0] == '.')
                                continue;
                        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(subdirs); i++) {
                                _cleanup_free_ char *p = NULL;

                                if (asprintf(&p, "%s/%s/%s", modules_dir, de->d_name, subdirs[i]) < 0)
                                        r = -ENOMEM;
                                else
                                        r = walk(p, &l);
                        }
                }
                if (d)
                        closedir(d);
        }
        if (r >= 0 && dkms_tree)
                r = walk(dkms_tree, &l);
        if (r < 0) {
                rotate_list_done(&l);
                return r;
        }
        if (l.n > 1) {
                size_t w = 1;

                qsort(l.items, l.n, sizeof(char *), cmp_str);
                for (size_t i = 1; i < l.n; i++) {
                        if (streq(l.items[i], l.items[w - 1]))
                                free(l.items[i]);
                        else
                                l.items[w++] = l.items[i];
                }
                l.n = w;
        }
        *ret = l;
        return 0;
}

/* ---- configuration ---- */

int rotate_write_dropin(const char *path, const char *key, const char *cert, const char *pin_file) {
        _cleanup_free_ char *dir = NULL, *text = NULL;
        _cleanup_close_ int dir_fd = -EBADF;
        const char *slash = strrchr(path, '/');
        int n;

        if (!slash || !slash[1] || strchr(key, '\n') || strchr(cert, '\n') || (pin_file && strchr(pin_file, '\n')))
                return -EINVAL;
        dir = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
        if (!dir)
                return -ENOMEM;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return negative_errno();
        n = asprintf(&text,
                     "# Written by 'modsignctl rotate': the signing key after a key rotation.\n"
                     "# It overrides [Key] of modsignd.conf; remove it to go back to that key.\n"
                     "[Key]\n"
                     "PrivateKey=%s\n"
                     "Certificate=%s\n"
                     "PinFile=%s\n",
                     key, cert, pin_file ?: "");
        if (n < 0)
                return -ENOMEM;
        return write_atomic(dir_fd, slash + 1, 0644, text, (size_t) n);
}
