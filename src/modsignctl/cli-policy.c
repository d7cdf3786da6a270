/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "approvals.h"
#include "cli-policy.h"
#include "key.h"
#include "log.h"
#include "macro.h"
#include "policy-rate.h"

int cli_state_directory(const struct config *c, char **ret) {
        const char *e = getenv(AUDIT_STATE_DIR_ENV);

        *ret = strdup(e && *e ? e : c->state_directory);
        return *ret ? 0 : -ENOMEM;
}

int cli_gate_open(struct cli_gate *g, const struct config *c, X509 *our_cert, bool with_audit) {
        _cleanup_free_ char *error = NULL;
        struct stat st;
        int r;

        *g = (struct cli_gate) { .our_cert = our_cert };
        r = policy_load(c, &g->policy, &error);
        if (r < 0) {
                log_error("cannot load the policy: %s", error ?: strerror(-r));
                return r;
        }
        r = policy_load_trusted(c, &g->trusted, &error);
        if (r < 0) {
                log_error("cannot load the policy: %s", error ?: strerror(-r));
                cli_gate_close(g);
                return r;
        }
        g->dkms_tree = strdup(c->dkms_tree);
        if (!g->dkms_tree || cli_state_directory(c, &g->state_dir) < 0) {
                cli_gate_close(g);
                return log_oom();
        }
        if (our_cert && policy_cert_facts(our_cert, &g->cert) >= 0) {
                g->have_cert = true;
                memcpy(g->fingerprint, g->cert.fingerprint, sizeof(g->fingerprint));
        }
        g->rate_shared = geteuid() == 0 && stat(g->state_dir, &st) >= 0 && S_ISDIR(st.st_mode);
        /* As modsignctl sign does: records when run as root and the daemon's state exists. */
        if (with_audit && geteuid() == 0 && stat(g->state_dir, &st) >= 0) {
                r = audit_log_open(g->state_dir, &g->audit);
                if (r < 0)
                        log_warning("%s/%s: cannot record in the audit log: %s", g->state_dir, AUDIT_LOG_FILE,
                                    strerror(-r));
        }
        return 0;
}

void cli_gate_close(struct cli_gate *g) {
        policy_done(&g->policy);
        sk_X509_pop_free(g->trusted, X509_free);
        free(g->dkms_tree);
        free(g->state_dir);
        audit_log_free(g->audit);
        *g = (struct cli_gate) {};
}

void cli_gate_record(struct cli_gate *g, enum audit_event event, const char *path, const struct policy_gathered *f,
                     const char *rule, const char *reason) {
        int r;

        if (!g->audit)
                return;
        struct audit_record rec = {
                .event = event,
                .path = path,
                .module = f ? f->facts.module_name : NULL,
                .kernel = f ? f->facts.release : NULL,
                .sha256_before = f ? f->facts.sha256 : NULL,
                .key_fingerprint = g->fingerprint[0] ? g->fingerprint : NULL,
                .requester = { .kind = AUDIT_REQUESTER_CLI },
                .dkms_package = f ? f->facts.dkms_package : NULL,
                .dkms_version = f ? f->facts.dkms_version : NULL,
                .rule = rule,
                .reason = reason,
        };
        r = audit_log_append(g->audit, &rec, NULL, NULL);
        if (r < 0)
                log_warning("%s: cannot record in the audit log %s: %s", path, audit_log_path(g->audit), strerror(-r));
}

int cli_gate_check(struct cli_gate *g, const struct policy_request *req, const char *display,
                   struct policy_decision *d, struct policy_gathered *g_out) {
        struct policy_gathered f = {};
        struct policy_env env = {
                .policy = &g->policy,
                .dkms_tree = g->dkms_tree,
                .state_dir = g->state_dir,
                .our_cert = g->our_cert,
                .trusted = g->trusted,
                .cert = g->have_cert ? &g->cert : NULL,
        };
        int r;

        policy_env_kernel_keys(&env.proc_keys, &env.keyring_dir);
        r = policy_gather(&env, req, &f);
        if (r < 0)
                return log_error_errno(r, "%s: cannot gather the policy's facts: %m", display);
        if (g->rate_shared) {
                r = policy_decide_shared(&g->policy, &f.facts, g->state_dir, d);
                if (r < 0)
                        log_warning_errno(r, "%s/%s: cannot charge the shared rate limit: %m", g->state_dir,
                                          POLICY_RATE_FILE);
                r = 0;
        } else
                policy_decide(&g->policy, &f.facts, NULL, d);
        if (!d->allow) {
                log_error("%s: not signed: refused by policy: %s (rule %s)", display, d->reason, d->rule);
                cli_gate_record(g, AUDIT_EVENT_REFUSED, req->path ?: display, &f, d->rule, d->reason);
                if (d->pending && f.facts.module_name) {
                        struct approvals_pending pe = {
                                .name = f.facts.module_name,
                                .path = req->path,
                                .kernel = f.facts.release,
                                .sha256 = f.facts.sha256,
                                .requester = policy_requester_to_string(req->requester),
                        };
                        if (approvals_add_pending(g->state_dir, &pe) >= 0)
                                log_notice("%s: waits for 'modsignctl approve %s'", display, f.facts.module_name);
                }
                r = -EPERM;
        }
        if (g_out && r >= 0)
                *g_out = f;
        else
                policy_gathered_done(&f);
        return r;
}
