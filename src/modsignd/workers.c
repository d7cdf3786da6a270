/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "macro.h"
#include "workers.h"

/* How long the workers stay idle before their memory goes back to the system. */
#define TRIM_DELAY_USEC (500 * 1000ULL)

struct workers {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        struct job *queue_head, *queue_tail;   /* waiting to run */
        struct job *done_head, *done_tail;     /* finished, waiting for done() */
        unsigned pending;                      /* queued + running + finished-not-reported */
        bool stopping;
        int event_fd;
        sd_event_source *event_source;
        sd_event_source *trim_source;          /* one-shot: hand memory back once idle */
        unsigned n_threads;                    /* spawned: joined by workers_free() */
        unsigned n_live;                       /* running their loop */
        unsigned n_wanted;                     /* Workers=: the rest retire when idle */
        pthread_t *threads;
};

static void push(struct job **head, struct job **tail, struct job *j) {
        j->next = NULL;
        if (*tail)
                (*tail)->next = j;
        else
                *head = j;
        *tail = j;
}

static struct job *pop(struct job **head, struct job **tail) {
        struct job *j = *head;

        if (j) {
                *head = j->next;
                if (!*head)
                        *tail = NULL;
                j->next = NULL;
        }
        return j;
}

static void *worker_main(void *userdata) {
        struct workers *w = userdata;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                struct job *j;

                while (!w->stopping && !w->queue_head && w->n_live <= w->n_wanted)
                        pthread_cond_wait(&w->wake, &w->lock);
                if (w->stopping)
                        break;
                if (w->n_live > w->n_wanted) { /* fewer workers since a reload: retire */
                        w->n_live--;
                        if (w->queue_head) /* a wake-up meant for a job: hand it on */
                                pthread_cond_signal(&w->wake);
                        break;
                }
                j = pop(&w->queue_head, &w->queue_tail);
                pthread_mutex_unlock(&w->lock);

                j->run(j);

                pthread_mutex_lock(&w->lock);
                push(&w->done_head, &w->done_tail, j);
                (void) eventfd_write(w->event_fd, 1);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

static int on_event(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct workers *w = userdata;
        eventfd_t value;
        struct job *done;

        (void) eventfd_read(fd, &value);
        pthread_mutex_lock(&w->lock);
        done = w->done_head;
        w->done_head = w->done_tail = NULL;
        pthread_mutex_unlock(&w->lock);

        while (done) {
                struct job *next = done->next;

                pthread_mutex_lock(&w->lock);
                w->pending--;
                pthread_mutex_unlock(&w->lock);
                done->done(done);
                done = next;
        }
        /* Idle again: hand the burst's buffers (decompressed modules) back to the system a
         * little later, so an idle daemon stays small. Not at once: a client signing one
         * module after the other leaves the queue empty after every job, and a trim each
         * time costs a TLB shoot-down on every CPU, only for the next job to grow the heap
         * again. */
        if (workers_queued(w) == 0) {
                (void) sd_event_source_set_time_relative(w->trim_source, TRIM_DELAY_USEC);
                (void) sd_event_source_set_enabled(w->trim_source, SD_EVENT_ONESHOT);
        }
        return 0;
}

static int on_trim(sd_event_source *s, uint64_t usec, void *userdata) {
        struct workers *w = userdata;

        if (workers_queued(w) == 0)
                (void) malloc_trim(0);
        return 0;
}

int workers_new(sd_event *e, unsigned n_threads, struct workers **ret) {
        struct workers *w;
        int r;

        if (n_threads == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                n_threads = n > 0 ? (unsigned) n : 1;
        }
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->wake, NULL);
        w->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->event_fd < 0) {
                r = negative_errno();
                free(w);
                return r;
        }
        r = sd_event_add_io(e, &w->event_source, w->event_fd, EPOLLIN, on_event, w);
        if (r < 0) {
                close(w->event_fd);
                free(w);
                return r;
        }
        r = sd_event_add_time_relative(e, &w->trim_source, CLOCK_MONOTONIC, TRIM_DELAY_USEC,
                                       TRIM_DELAY_USEC / 10, on_trim, w);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->trim_source, SD_EVENT_OFF);
        if (r >= 0)
                r = workers_resize(w, n_threads);
        if (r < 0) {
                workers_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

int workers_resize(struct workers *w, unsigned n_threads) {
        unsigned spawn = 0;
        int r = 0;

        if (n_threads == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                n_threads = n > 0 ? (unsigned) n : 1;
        }
        pthread_mutex_lock(&w->lock);
        w->n_wanted = n_threads;
        if (w->n_live < n_threads)
                spawn = n_threads - w->n_live;
        else
                pthread_cond_broadcast(&w->wake); /* the extra ones retire once idle */
        pthread_mutex_unlock(&w->lock);
        if (spawn == 0)
                return 0;

        pthread_t *t = reallocarray(w->threads, w->n_threads + spawn, sizeof(pthread_t));
        if (!t)
                return -ENOMEM;
        w->threads = t;
        for (unsigned i = 0; i < spawn; i++) {
                pthread_mutex_lock(&w->lock);
                w->n_live++; /* before it runs: it must not take itself for one too many */
                pthread_mutex_unlock(&w->lock);
                r = -pthread_create(&w->threads[w->n_threads], NULL, worker_main, w);
                if (r < 0) {
                        pthread_mutex_lock(&w->lock);
                        w->n_live--;
                        pthread_mutex_unlock(&w->lock);
                        break;
                }
                w->n_threads++;
        }
        return r;
}

int workers_submit(struct workers *w, struct job *j) {
        pthread_mutex_lock(&w->lock);
        if (w->stopping) {
                pthread_mutex_unlock(&w->lock);
                return -ESHUTDOWN;
        }
        push(&w->queue_head, &w->queue_tail, j);
        w->pending++;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        return 0;
}

unsigned workers_queued(struct workers *w) {
        unsigned n;

        pthread_mutex_lock(&w->lock);
        n = w->pending;
        pthread_mutex_unlock(&w->lock);
        return n;
}

unsigned workers_threads(struct workers *w) {
        unsigned n;

        pthread_mutex_lock(&w->lock);
        n = w->n_wanted;
        pthread_mutex_unlock(&w->lock);
        return n;
}

void workers_free(struct workers *w) {
        struct job *j;

        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_cond_broadcast(&w->wake);
        pthread_mutex_unlock(&w->lock);

        /* A running job finishes its file (each commit is atomic): nothing is half-written. */
        for (unsigned i = 0; i < w->n_threads; i++)
                pthread_join(w->threads[i], NULL);

        /* Report what finished, then what never ran. */
        while ((j = pop(&w->done_head, &w->done_tail)))
                j->done(j);
        while ((j = pop(&w->queue_head, &w->queue_tail)))
                j->done(j);

        sd_event_source_disable_unref(w->event_source);
        sd_event_source_disable_unref(w->trim_source);
        safe_close(w->event_fd);
        free(w->threads);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        free(w);
}
