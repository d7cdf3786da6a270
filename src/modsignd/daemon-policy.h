/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's side of the signing gate (src/lib/policy.h): the [Policy] configuration loaded
 * (with TrustedCertificates=, Blocklist=, RevokedCertificates= read), reference-counted like
 * the key, because a reload swaps it while workers may still be deciding with the old one.
 * RateLimit='s token bucket is STATE_DIRECTORY/ratelimit, shared with every modsignctl that
 * signs (policy-rate.h): the daemon keeps no bucket of its own in memory. Approvals
 * (Mode=approve) are read from StateDirectory=/approvals.json at each decision: an approval
 * needs no reload. Decisions run on worker threads; nothing here logs. */

#include <pthread.h>
#include <stdbool.h>

#include "conf.h"
#include "policy-facts.h"
#include "policy.h"
#include "signing-key.h"

struct daemon_rate {
        pthread_mutex_t lock;       /* one worker at a time charges the shared bucket */
};

struct daemon_policy {
        int n_ref;
        struct policy policy;
        STACK_OF(X509) *trusted;
        char *dkms_tree;
        char *state_dir;
        char *proc_keys, *keyring_dir;  /* the kernel's keyrings (policy_env_kernel_keys()) */
        struct daemon_rate *rate;   /* the daemon's; it outlives every policy */
};

int daemon_policy_load(const struct config *c, struct daemon_rate *rate, struct daemon_policy **ret, char **ret_error);
struct daemon_policy *daemon_policy_ref(struct daemon_policy *p);
void daemon_policy_unref(struct daemon_policy *p);

/* Gathers the facts of req (with the key's certificate) into *g and decides into *d. A
 * refusal by Mode=approve records the module in pending.json. Returns < 0 only when the facts
 * cannot be gathered (then nothing was decided). */
int daemon_policy_decide(struct daemon_policy *p, const struct signing_key *key, const struct policy_request *req,
                         struct policy_gathered *g, struct policy_decision *d);

/* The errno a refusal by 'rule' gives a SIGN client. */
int daemon_policy_errno(const char *rule);
