/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The signing gate (src/lib/policy.h) for modsignctl's own signing: `sign`, and the DKMS shim
 * (`dkms-sign-file`, `dkms-check --sign`) when it signs with the configured key because no
 * daemon runs. The same decision as the daemon's; a refusal is logged with its rule and, run
 * as root with the state directory present, recorded in the audit log (requester "cli"). Run
 * so, it also charges RateLimit='s bucket shared with the daemon (policy-rate.h); elsewhere
 * (another user, no state directory: an image being built) no rate limit applies. */

#include <openssl/x509.h>
#include <stdbool.h>

#include "audit.h"
#include "conf.h"
#include "policy-facts.h"
#include "policy.h"

struct cli_gate {
        struct policy policy;
        STACK_OF(X509) *trusted;
        struct policy_cert cert;
        bool have_cert;
        X509 *our_cert;            /* borrowed */
        char *dkms_tree, *state_dir;
        struct audit_log *audit;   /* NULL: no records (not root, or no state directory) */
        bool rate_shared;          /* root and the state directory exists: charge its bucket */
        char fingerprint[65];
};

/* The state directory: $MODSIGND_STATE_DIRECTORY, else c's StateDirectory=. */
int cli_state_directory(const struct config *c, char **ret);

/* Logs what went wrong and returns < 0. with_audit: open the audit log to record decisions
 * (the caller may keep its own and pass false). */
int cli_gate_open(struct cli_gate *g, const struct config *c, X509 *our_cert, bool with_audit);
void cli_gate_close(struct cli_gate *g);

/* Gathers and decides. Returns 0 when allowed; on a refusal logs "DISPLAY: not signed:
 * refused by policy: REASON (rule RULE)", records it (when the gate has a log), records a
 * Mode=approve refusal as pending, and returns -EPERM. *g_out (optional) keeps the facts. */
int cli_gate_check(struct cli_gate *g, const struct policy_request *req, const char *display,
                   struct policy_decision *d, struct policy_gathered *g_out);

/* Records a signature (or a failure) decided by the gate, when the gate has a log. */
void cli_gate_record(struct cli_gate *g, enum audit_event event, const char *path, const struct policy_gathered *f,
                     const char *rule, const char *reason);
