/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "macro.h"
#include "watcher.h"

#define DIR_MASK                                                                                              \
        (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | \
         IN_EXCL_UNLINK)
#define PENDING_BUCKETS 1024
#define OWN_FILES_MAX 1024

static const char *const kernel_subtrees[] = { "updates", "extra", "misc" };

enum watch_kind {
        WATCH_MODULES_ROOT, /* /lib/modules: kernels appear here */
        WATCH_KERNEL,       /* /lib/modules/KVER: updates/, extra/, misc/ appear here */
        WATCH_TREE,         /* a directory whose modules we sign, recursively */
        WATCH_AWAIT,        /* the nearest existing parent of a configured tree not there yet */
};

struct watch {
        char *path;
        enum watch_kind kind;
        dev_t dev;   /* the directory itself, to tell whether 'path' still names it */
        ino_t ino;
};

struct pending {
        char *path;
        bool dirty; /* changed again while a worker was looking at it */
        struct pending *next;
};

struct watcher {
        struct daemon *daemon;
        int fd;
        sd_event_source *source;
        struct watch *watches; /* indexed by watch descriptor */
        int n_slots;
        unsigned n_watches;
        struct pending *pending[PENDING_BUCKETS];
        bool *root_present; /* per configured Path=: found and walked (else awaited) */
        unsigned n_ref;   /* ours, plus one per job in flight (they call back into us) */
        bool dead;        /* watcher_free() was called; jobs still in flight find nothing to do */
};

static void watcher_unref(struct watcher *w) {
        if (--w->n_ref == 0)
                free(w);
}

/* Inodes our workers just renamed into place, so their IN_MOVED_TO is not taken as news. */
struct own_file {
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime;
};

static struct {
        pthread_mutex_t lock;
        struct own_file files[OWN_FILES_MAX];
        unsigned next;
} own_files = { .lock = PTHREAD_MUTEX_INITIALIZER };

void watcher_note_own_file(const struct stat *st) {
        pthread_mutex_lock(&own_files.lock);
        own_files.files[own_files.next] = (struct own_file) {
                .dev = st->st_dev, .ino = st->st_ino, .size = st->st_size, .mtime = st->st_mtim,
        };
        own_files.next = (own_files.next + 1) % OWN_FILES_MAX;
        pthread_mutex_unlock(&own_files.lock);
}

static bool take_own_file(const struct stat *st) {
        bool found = false;

        pthread_mutex_lock(&own_files.lock);
        for (unsigned i = 0; i < OWN_FILES_MAX && !found; i++) {
                struct own_file *f = &own_files.files[i];

                if (f->ino == st->st_ino && f->dev == st->st_dev && f->ino != 0 && f->size == st->st_size &&
                    f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec) {
                        f->ino = 0;
                        found = true;
                }
        }
        pthread_mutex_unlock(&own_files.lock);
        return found;
}

bool path_is_modules_root(const char *path) {
        size_t n = strlen(path);

        while (n > 1 && path[n - 1] == '/')
                n--;
        return n >= 11 && strncmp(path + n - 11, "lib/modules", 11) == 0 && (n == 11 || path[n - 12] == '/');
}

static bool is_kernel_subtree(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(kernel_subtrees); i++)
                if (streq(name, kernel_subtrees[i]))
                        return true;
        return false;
}

static char *path_join(const char *a, const char *b) {
        char *s;
        return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

/* --- walking trees (also used for SCAN requests) ----------------------------------------- */

struct walk_ctx {
        int (*fn)(const char *dir, const char *name, void *userdata);
        void *userdata;
        struct watcher *w; /* set: add watches on the way */
        int count;
};

static int add_watch(struct watcher *w, const char *path, enum watch_kind kind);

static void walk_tree(struct walk_ctx *c, const char *dir, int depth) {
        DIR *d;

        /* Watch first, then list: what arrives in between is seen by one or the other. */
        if (c->w && add_watch(c->w, dir, WATCH_TREE) < 0)
                return;
        d = opendir(dir);
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_name[0] == '.')
                        continue; /* ., .., our temporaries, dkms' .tmp_* until it is moved */
                if (de->d_type == DT_DIR) {
                        _cleanup_free_ char *sub = NULL;
                        if (depth >= 16 || streq(de->d_name, "build"))
                                continue;
                        sub = path_join(dir, de->d_name);
                        if (sub)
                                walk_tree(c, sub, depth + 1);
                } else if (de->d_type == DT_REG && module_file_name(de->d_name)) {
                        c->count++;
                        if (c->fn)
                                (void) c->fn(dir, de->d_name, c->userdata);
                }
        }
        closedir(d);
}

static void walk_kernel(struct walk_ctx *c, const char *kdir) {
        if (c->w && add_watch(c->w, kdir, WATCH_KERNEL) < 0)
                return;
        for (size_t i = 0; i < ELEMENTSOF(kernel_subtrees); i++) {
                _cleanup_free_ char *sub = path_join(kdir, kernel_subtrees[i]);
                struct stat st;

                if (sub && lstat(sub, &st) >= 0 && S_ISDIR(st.st_mode))
                        walk_tree(c, sub, 0);
        }
}

static void walk_root(struct walk_ctx *c, const char *root) {
        DIR *d;

        if (!path_is_modules_root(root)) {
                walk_tree(c, root, 0);
                return;
        }
        if (c->w && add_watch(c->w, root, WATCH_MODULES_ROOT) < 0)
                return;
        d = opendir(root);
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));) {
                _cleanup_free_ char *kdir = NULL;

                if (de->d_name[0] == '.' || de->d_type != DT_DIR)
                        continue;
                kdir = path_join(root, de->d_name);
                if (kdir)
                        walk_kernel(c, kdir);
        }
        closedir(d);
}

int module_tree_walk(const char *root, int (*fn)(const char *dir, const char *name, void *userdata), void *userdata) {
        struct walk_ctx c = { .fn = fn, .userdata = userdata };

        walk_root(&c, root);
        return c.count;
}

/* --- watches ------------------------------------------------------------------------------ */

static int add_watch(struct watcher *w, const char *path, enum watch_kind kind) {
        int wd = inotify_add_watch(w->fd, path, DIR_MASK);
        struct stat st;
        char *copy;

        if (wd < 0) {
                if (errno == ENOSPC)
                        log_warning("cannot watch %s: the inotify watch limit is reached "
                                    "(raise fs.inotify.max_user_watches)", path);
                return negative_errno();
        }
        if (wd >= w->n_slots) {
                int n = MAX(wd + 1, w->n_slots * 2);
                struct watch *p = realloc(w->watches, sizeof(*p) * (size_t) n);
                if (!p)
                        return -ENOMEM;
                memset(p + w->n_slots, 0, sizeof(*p) * (size_t) (n - w->n_slots));
                w->watches = p;
                w->n_slots = n;
        }
        copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        /* The same directory watched again (moved within the tree) keeps its descriptor. */
        if (w->watches[wd].path)
                free(w->watches[wd].path);
        else
                w->n_watches++;
        if (lstat(path, &st) < 0)
                st = (struct stat) {};
        w->watches[wd] = (struct watch) { .path = copy, .kind = kind, .dev = st.st_dev, .ino = st.st_ino };
        return 0;
}

static void drop_watch(struct watcher *w, int wd) {
        if (wd < 0 || wd >= w->n_slots || !w->watches[wd].path)
                return;
        free(w->watches[wd].path);
        w->watches[wd].path = NULL;
        w->n_watches--;
}

unsigned watcher_n_watches(const struct watcher *w) {
        return w ? w->n_watches : 0;
}

/* --- modules waiting for a worker --------------------------------------------------------- */

static unsigned bucket_of(const char *path) {
        unsigned h = 5381;
        for (const char *p = path; *p; p++)
                h = h * 33 + (unsigned char) *p;
        return h % PENDING_BUCKETS;
}

static struct pending **pending_find(struct watcher *w, const char *path) {
        struct pending **p = &w->pending[bucket_of(path)];

        while (*p && !streq((*p)->path, path))
                p = &(*p)->next;
        return p;
}

static void on_module_done(struct daemon *d, const struct tree_result *res, void *userdata);

static int queue_module(struct watcher *w, const char *dir, const char *name) {
        _cleanup_free_ char *path = path_join(dir, name);
        struct pending **slot, *p;
        int r;

        if (!path)
                return -ENOMEM;
        slot = pending_find(w, path);
        if (*slot) {
                (*slot)->dirty = true; /* look again once the worker is done */
                return 0;
        }
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->path = TAKE_PTR(path);
        r = daemon_queue_tree_module(w->daemon, dir, name, NULL, on_module_done, w);
        if (r < 0) {
                free(p->path);
                free(p);
                return r;
        }
        w->n_ref++;
        *slot = p;
        return 0;
}

static void on_module_done(struct daemon *d, const struct tree_result *res, void *userdata) {
        struct watcher *w = userdata;
        _cleanup_free_ char *path = path_join(res->dir, res->name);
        struct pending **slot, *p;

        if (!path || w->dead)
                goto out;
        slot = pending_find(w, path);
        p = *slot;
        if (!p)
                goto out;
        if (p->dirty && res->outcome != TREE_CANCELLED && !d->stopping) {
                p->dirty = false;
                if (daemon_queue_tree_module(d, res->dir, res->name, NULL, on_module_done, w) >= 0)
                        return; /* the new job inherits this job's reference */
        }
        *slot = p->next;
        free(p->path);
        free(p);
out:
        watcher_unref(w);
}

static int queue_walked(const char *dir, const char *name, void *userdata) {
        return queue_module(userdata, dir, name);
}

/* A configured tree that does not exist yet (dkms installed after us: /var/lib/dkms) is awaited
 * by watching its nearest existing parent; when a directory appears there, we look again. */
static void await_root(struct watcher *w, const char *root) {
        _cleanup_free_ char *parent = strdup(root);
        struct stat st;
        int wd;

        if (!parent)
                return;
        for (;;) {
                char *slash = strrchr(parent, '/');

                if (!slash)
                        return;
                if (slash == parent)
                        slash[1] = '\0'; /* "/" */
                else
                        *slash = '\0';
                if (stat(parent, &st) >= 0 && S_ISDIR(st.st_mode))
                        break;
                if (streq(parent, "/"))
                        return;
        }
        /* The same directory may already be watched as part of a tree: leave that watch be,
         * a new directory there is walked anyway and the next look finds the root. */
        wd = inotify_add_watch(w->fd, parent, DIR_MASK);
        if (wd >= 0 && (wd >= w->n_slots || !w->watches[wd].path))
                (void) add_watch(w, parent, WATCH_AWAIT);
}

static void look_for_roots(struct watcher *w, struct walk_ctx *c) {
        const struct strv *roots = &w->daemon->config.watch_paths;

        for (size_t i = 0; i < roots->n; i++) {
                struct stat st;

                if (w->root_present[i])
                        continue;
                if (stat(roots->items[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
                        await_root(w, roots->items[i]);
                        continue;
                }
                w->root_present[i] = true;
                log_notice("%s: now present; watching it", roots->items[i]);
                walk_root(c, roots->items[i]);
        }
}

static void scan_all(struct watcher *w) {
        struct walk_ctx c = { .fn = queue_walked, .userdata = w, .w = w };
        const struct strv *roots = &w->daemon->config.watch_paths;

        for (size_t i = 0; i < roots->n; i++) {
                struct stat st;

                if (stat(roots->items[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
                        log_notice("%s: not a directory yet; watching for it to appear", roots->items[i]);
                        w->root_present[i] = false;
                        await_root(w, roots->items[i]);
                        continue;
                }
                w->root_present[i] = true;
                walk_root(&c, roots->items[i]);
        }
        log_info("watching %u directories; %d modules queued for a look", w->n_watches, c.count);
}

/* --- events ------------------------------------------------------------------------------- */

static void on_new_directory(struct watcher *w, const struct watch *parent, const char *path, const char *name) {
        struct walk_ctx c = { .fn = queue_walked, .userdata = w, .w = w };

        switch (parent->kind) {
        case WATCH_MODULES_ROOT: /* a new kernel */
                walk_kernel(&c, path);
                break;
        case WATCH_KERNEL:
                if (is_kernel_subtree(name))
                        walk_tree(&c, path, 0);
                break;
        case WATCH_TREE:
        default:
                if (!streq(name, "build"))
                        walk_tree(&c, path, 0);
                break;
        }
}

static void on_file(struct watcher *w, const char *dir, const char *name, bool only_links) {
        _cleanup_free_ char *path = path_join(dir, name);
        struct stat st;

        if (!path || !module_file_name(name))
                return;
        if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
                return;
        if (only_links && st.st_nlink < 2)
                return;
        if (take_own_file(&st))
                return; /* our own signed module arriving by rename */
        (void) queue_module(w, dir, name);
}

static void handle_event(struct watcher *w, const struct inotify_event *ev) {
        struct watch *watch;
        _cleanup_free_ char *path = NULL;

        if (ev->mask & IN_Q_OVERFLOW) {
                log_warning("inotify queue overflowed: looking at every module tree again");
                scan_all(w);
                return;
        }
        if (ev->mask & IN_IGNORED) { /* removed, unmounted, or moved away */
                drop_watch(w, ev->wd);
                return;
        }
        if (ev->wd < 0 || ev->wd >= w->n_slots || !w->watches[ev->wd].path)
                return;
        watch = &w->watches[ev->wd];

        if (ev->mask & IN_DELETE_SELF) {
                (void) inotify_rm_watch(w->fd, ev->wd);
                return;
        }
        if (ev->mask & IN_MOVE_SELF) {
                struct stat st;

                /* Moved within our trees: the new parent's IN_MOVED_TO, which comes first, has
                 * already given this watch its new path, which names this directory: keep it.
                 * Moved away: the path is stale, drop the watch. */
                if (lstat(watch->path, &st) < 0 || st.st_dev != watch->dev || st.st_ino != watch->ino)
                        (void) inotify_rm_watch(w->fd, ev->wd);
                return;
        }
        if (ev->len == 0)
                return;
        path = path_join(watch->path, ev->name);
        if (!path)
                return;

        if (watch->kind == WATCH_AWAIT) {
                struct walk_ctx c = { .fn = queue_walked, .userdata = w, .w = w };

                if (!(ev->mask & IN_ISDIR) || !(ev->mask & (IN_CREATE | IN_MOVED_TO)))
                        return;
                /* One step closer, or there: stop watching this parent, look again (which
                 * watches a deeper parent, or walks the tree that is now there). */
                (void) inotify_rm_watch(w->fd, ev->wd);
                look_for_roots(w, &c);
                return;
        }
        if (ev->mask & IN_ISDIR) {
                if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && ev->name[0] != '.')
                        on_new_directory(w, watch, path, ev->name);
                return;
        }
        if (watch->kind != WATCH_TREE)
                return;
        if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
                on_file(w, watch->path, ev->name, false);
        else if (ev->mask & IN_CREATE)
                /* A new file is looked at once it is closed (IN_CLOSE_WRITE), but a hard link
                 * made into the tree never is: it arrives complete, with IN_CREATE alone. */
                on_file(w, watch->path, ev->name, true);
}

static int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct watcher *w = userdata;
        union {
                struct inotify_event ev;
                char buf[64 * 1024];
        } u;

        for (;;) {
                ssize_t n = read(fd, u.buf, sizeof(u.buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                log_error_errno(-errno, "reading inotify events failed: %m");
                        return 0;
                }
                for (char *p = u.buf; p < u.buf + n;) {
                        const struct inotify_event *ev = (const struct inotify_event *) p;
                        handle_event(w, ev);
                        p += sizeof(struct inotify_event) + ev->len;
                }
        }
}

int watcher_new(struct daemon *d, struct watcher **ret) {
        struct watcher *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->daemon = d;
        w->n_ref = 1;
        w->root_present = calloc(MAX(d->config.watch_paths.n, (size_t) 1), sizeof(bool));
        if (!w->root_present) {
                free(w);
                return -ENOMEM;
        }
        w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->fd < 0) {
                r = negative_errno();
                free(w->root_present);
                free(w);
                return r;
        }
        r = sd_event_add_io(d->event, &w->source, w->fd, EPOLLIN, on_inotify, w);
        if (r < 0) {
                watcher_free(w);
                return r;
        }
        scan_all(w);
        *ret = w;
        return 0;
}

void watcher_free(struct watcher *w) {
        if (!w)
                return;
        w->source = sd_event_source_disable_unref(w->source);
        w->fd = safe_close(w->fd);
        for (int i = 0; i < w->n_slots; i++)
                free(w->watches[i].path);
        free(w->watches);
        w->watches = NULL;
        w->n_slots = 0;
        free(w->root_present);
        w->root_present = NULL;
        for (unsigned b = 0; b < PENDING_BUCKETS; b++)
                while (w->pending[b]) {
                        struct pending *p = w->pending[b];
                        w->pending[b] = p->next;
                        free(p->path);
                        free(p);
                }
        /* Jobs still in flight hold references and call back; they find a dead watcher. */
        w->dead = true;
        watcher_unref(w);
}
