/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A pool of threads for the heavy work (hashing, decompressing, recompressing), so the
 * event loop stays responsive: a STATUS is answered while a 100 MB module is being signed.
 * A job's run() happens on a worker; its done() happens back on the loop thread, woken through
 * an eventfd, in completion order. */

#include <stdbool.h>
#include <systemd/sd-event.h>

struct job {
        void (*run)(struct job *j);   /* on a worker thread: touch only the job's own data */
        void (*done)(struct job *j);  /* on the loop thread: report, reply, free the job */
        struct job *next;
};

struct workers;

int workers_new(sd_event *e, unsigned n_threads, struct workers **ret);
/* Queues a job; never blocks. */
int workers_submit(struct workers *w, struct job *j);
/* Sets the number of threads (0: one per CPU): new ones start now, extra ones end once their
 * job is done. */
int workers_resize(struct workers *w, unsigned n_threads);
unsigned workers_queued(struct workers *w);   /* waiting or running */
unsigned workers_threads(struct workers *w);
/* Asks the threads to stop once the running jobs end, waits for them, and calls done() of
 * every job: of those that never ran too (a job tells by a flag its run() sets). */
void workers_free(struct workers *w);
