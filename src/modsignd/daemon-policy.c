/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "approvals.h"
#include "daemon-policy.h"
#include "policy-rate.h"
#include "macro.h"

int daemon_policy_load(const struct config *c, struct daemon_rate *rate, struct daemon_policy **ret, char **ret_error) {
        const char *proc_keys, *keyring_dir;
        struct daemon_policy *p;
        int r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->n_ref = 1;
        p->rate = rate;
        r = policy_load(c, &p->policy, ret_error);
        if (r < 0) {
                free(p);
                return r;
        }
        r = policy_load_trusted(c, &p->trusted, ret_error);
        if (r < 0)
                goto fail;
        p->dkms_tree = strdup(c->dkms_tree);
        p->state_dir = strdup(c->state_directory);
        /* Read once per load: workers must not getenv(). */
        policy_env_kernel_keys(&proc_keys, &keyring_dir);
        p->proc_keys = strdup(proc_keys);
        p->keyring_dir = keyring_dir ? strdup(keyring_dir) : NULL;
        if (!p->dkms_tree || !p->state_dir || !p->proc_keys || (keyring_dir && !p->keyring_dir)) {
                r = -ENOMEM;
                goto fail;
        }
        *ret = p;
        return 0;
fail:
        daemon_policy_unref(p);
        return r;
}

struct daemon_policy *daemon_policy_ref(struct daemon_policy *p) {
        __atomic_add_fetch(&p->n_ref, 1, __ATOMIC_SEQ_CST);
        return p;
}

void daemon_policy_unref(struct daemon_policy *p) {
        if (!p || __atomic_sub_fetch(&p->n_ref, 1, __ATOMIC_SEQ_CST) > 0)
                return;
        policy_done(&p->policy);
        sk_X509_pop_free(p->trusted, X509_free);
        free(p->dkms_tree);
        free(p->state_dir);
        free(p->proc_keys);
        free(p->keyring_dir);
        free(p);
}

int daemon_policy_decide(struct daemon_policy *p, const struct signing_key *key, const struct policy_request *req,
                         struct policy_gathered *g, struct policy_decision *d) {
        struct policy_cert cert;
        X509 *our_cert = signer_get_cert(key->signer);
        struct policy_env env = {
                .policy = &p->policy,
                .dkms_tree = p->dkms_tree,
                .state_dir = p->state_dir,
                .our_cert = our_cert,
                .trusted = p->trusted,
                .proc_keys = p->proc_keys,
                .keyring_dir = p->keyring_dir,
        };
        int r;

        if (our_cert && policy_cert_facts(our_cert, &cert) >= 0)
                env.cert = &cert;
        r = policy_gather(&env, req, g);
        if (r < 0)
                return r;
        /* The bucket is the state directory's file, shared with modsignctl (policy-rate.h); the
         * lock only lines up the daemon's own workers. A file that cannot be used refuses. */
        if (p->rate) {
                pthread_mutex_lock(&p->rate->lock);
                (void) policy_decide_shared(&p->policy, &g->facts, p->state_dir, d);
                pthread_mutex_unlock(&p->rate->lock);
        } else
                policy_decide(&p->policy, &g->facts, NULL, d);

        if (!d->allow && d->pending && g->facts.module_name) {
                struct approvals_pending pe = {
                        .name = g->facts.module_name,
                        .path = req->path ?: req->dkms_path,
                        .kernel = g->facts.release,
                        .sha256 = g->facts.sha256,
                        .requester = policy_requester_to_string(req->requester),
                };
                (void) approvals_add_pending(p->state_dir, &pe); /* the refusal stands either way */
        }
        return 0;
}

int daemon_policy_errno(const char *rule) {
        static const struct {
                const char *rule;
                int error;
        } map[] = {
                { "not-a-module", -ENOEXEC },
                { "vermagic", -EINVAL },
                { "kernel-not-installed", -ENOENT },
                { "compressed", -EMEDIUMTYPE },
                { "hash", -EINVAL },
                { "signed-by-another-key", -EEXIST },
                { "signed-by-trusted-key", -EEXIST },
                { "rate-limit", -EAGAIN },
        };

        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (streq_ptr(rule, map[i].rule))
                        return map[i].error;
        return -EPERM;
}
