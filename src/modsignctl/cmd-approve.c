/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl approve NAME... and modsignctl pending: Mode=approve's trust on first use.
 *
 * A module whose name modsignd has not seen approved is refused (rule not-approved) and waits
 * in STATE/pending.json; `approve NAME` moves the name to STATE/approvals.json, which the
 * daemon reads at every decision (no reload). When the waiting module's path is known and the
 * daemon runs, approve asks it to SCAN that directory at once, so the module is signed now;
 * otherwise it is signed on its next arrival, the next SIGN request, or `modsignctl scan`.
 * Every approval is a decision, recorded in the audit log (event "approved", the approver's
 * uid and command): the log is opened first, and without it nothing is approved. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "approvals.h"
#include "audit.h"
#include "cli-policy.h"
#include "conf.h"
#include "log.h"
#include "macro.h"
#include "modsignctl.h"

#define APPROVE_SCAN_TIMEOUT_MS (5 * 60 * 1000)

static int load_state_dir(char **ret) {
        _cleanup_(config_done) struct config conf = {};
        _cleanup_free_ char *error = NULL;
        int r;

        r = config_load(arg_global.config_path ?: CONFIG_DEFAULT_FILE, arg_global.config_path != NULL,
                        arg_global.config_path ? NULL : CONFIG_DEFAULT_DROPIN_DIR, &conf, &error);
        if (r < 0) {
                log_error("%s", error ?: strerror(-r));
                return r;
        }
        if (!arg_global.socket_given)
                arg_global.socket_path = strdup(conf.socket_path); /* lives as long as the process */
        if (!arg_global.socket_path || cli_state_directory(&conf, ret) < 0)
                return log_oom();
        return 0;
}

static const char *member(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

/* The "approved" record of name (the pending entry says where it waited, if it did). */
static int record_approval(struct audit_log *log, const char *name, json_object *pending, bool already) {
        _cleanup_free_ char *command = NULL, *reason = NULL;
        uid_t uid = getuid();

        if (asprintf(&command, "approve %s", name) < 0 ||
            asprintf(&reason, "module name %s %s by uid %u (Mode=approve)", name, already ? "was approved again" : "approved",
                     (unsigned) uid) < 0)
                return -ENOMEM;
        struct audit_record rec = {
                .event = AUDIT_EVENT_APPROVED,
                .path = pending ? member(pending, "path") : NULL,
                .module = name,
                .kernel = pending ? member(pending, "kernel") : NULL,
                .sha256_before = pending ? member(pending, "sha256") : NULL,
                .requester = {
                        .kind = AUDIT_REQUESTER_COMMAND,
                        .pid = getpid(),
                        .uid = uid,
                        .comm = "modsignctl",
                        .command = command,
                },
                .rule = "approved",
                .reason = reason,
        };
        return audit_log_append(log, &rec, NULL, NULL);
}

static int approve_help(void) {
        printf("Usage: modsignctl approve NAME...\n"
               "\n"
               "Approve module names for signing under [Policy] Mode=approve: each is recorded in\n"
               "the state directory's approvals.json and leaves pending.json. When a module of that\n"
               "name waits in a known directory and modsignd runs, the directory is scanned at once.\n"
               "\n"
               "Exit status: 0 approved, 1 error, 2 usage.\n");
        return EXIT_OK;
}

int cmd_approve(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_free_ char *state = NULL;
        struct audit_log *log = NULL;
        json_object *out = NULL;
        int c, r, code = EXIT_OK;

        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        return approve_help();
                default:
                        return EXIT_USAGE;
                }
        if (optind >= argc) {
                log_error("approve: no module name given");
                return EXIT_USAGE;
        }
        for (int i = optind; i < argc; i++)
                if (!*argv[i] || strchr(argv[i], '/') || strpbrk(argv[i], "*?[")) {
                        log_error("approve: '%s' is not a module name (no paths, no globs; use Allow= for globs)", argv[i]);
                        return EXIT_USAGE;
                }
        if (load_state_dir(&state) < 0)
                return EXIT_ERROR;
        r = audit_log_open(state, &log);
        if (r < 0) {
                log_error_errno(r, "approve: %s/%s: cannot open the audit log, so nothing is approved: %m", state,
                                AUDIT_LOG_FILE);
                return EXIT_ERROR;
        }

        out = json_object_new_array();
        for (int i = optind; i < argc; i++) {
                json_object *pending = NULL, *e = json_object_new_object();
                const char *path;
                char name[256];

                policy_normalize_name(argv[i], name, sizeof(name));
                r = approvals_approve(state, argv[i], getuid(), &pending);
                if (r < 0) {
                        log_error_errno(r, "approve %s: cannot update %s/%s: %m", name, state, APPROVALS_FILE);
                        code = EXIT_ERROR;
                        json_object_put(e);
                        continue;
                }
                json_object_object_add(e, "name", json_object_new_string(name));
                json_object_object_add(e, "already", json_object_new_boolean(r == 1));
                {
                        int k = record_approval(log, name, pending, r == 1);
                        if (k < 0) {
                                log_error_errno(k, "approve %s: approved, but not recorded in the audit log %s: %m", name,
                                                audit_log_path(log));
                                code = EXIT_ERROR;
                        }
                        json_object_object_add(e, "recorded", json_object_new_boolean(k >= 0));
                }
                path = pending ? member(pending, "path") : NULL;
                if (path && path[0] == '/' && strrchr(path, '/') != path) {
                        _cleanup_free_ char *dir = strndup(path, (size_t) (strrchr(path, '/') - path));
                        json_object *counts = NULL;
                        int k;

                        /* Sign it now, through the daemon, if one runs. */
                        if (dir && (k = daemon_request(PROTO_REQ_SCAN, dir, NULL, APPROVE_SCAN_TIMEOUT_MS, &counts)) == EXIT_OK) {
                                json_object_object_add(e, "scanned", json_object_new_string(dir));
                                json_object_object_add(e, "scan", counts);
                                if (!arg_global.json && !arg_global.quiet)
                                        printf("%s: approved; %s scanned: %s\n", name, dir,
                                               json_object_to_json_string_ext(counts, JSON_C_TO_STRING_PLAIN));
                        } else if (!arg_global.json && !arg_global.quiet)
                                printf("%s: approved; %s will be signed on its next arrival or by 'modsignctl scan'\n", name,
                                       path);
                } else if (!arg_global.json && !arg_global.quiet)
                        printf("%s: %s\n", name, r == 1 ? "approved already" : "approved");
                json_object_put(pending);
                json_object_array_add(out, e);
        }
        if (arg_global.json)
                printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(out);
        audit_log_free(log);
        return code;
}

int cmd_pending(int argc, char *argv[]) {
        static const struct option options[] = {
                { "approved", no_argument, NULL, 'a' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_free_ char *state = NULL;
        json_object *list = NULL;
        bool approved = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "+ah", options, NULL)) >= 0)
                switch (c) {
                case 'a':
                        approved = true;
                        break;
                case 'h':
                        printf("Usage: modsignctl pending [--approved]\n"
                               "\n"
                               "List the module names that wait for 'modsignctl approve' under [Policy]\n"
                               "Mode=approve (from the state directory's pending.json); with --approved, the\n"
                               "names approved so far. Exit status: 0, 1 error, 2 usage.\n");
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        if (optind < argc) {
                log_error("pending: unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        if (load_state_dir(&state) < 0)
                return EXIT_ERROR;
        r = approved ? approvals_list_approved(state, &list) : approvals_list_pending(state, &list);
        if (r < 0) {
                log_error_errno(r, "%s/%s: %m", state, approved ? APPROVALS_FILE : PENDING_FILE);
                return EXIT_ERROR;
        }
        if (arg_global.json)
                printf("%s\n", json_object_to_json_string_ext(list, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        else {
                for (size_t i = 0; i < json_object_array_length(list); i++) {
                        json_object *e = json_object_array_get_idx(list, i);
                        if (approved)
                                printf("%-24s approved %s\n", member(e, "name") ?: "?", member(e, "time") ?: "?");
                        else
                                printf("%-24s %s x%s, last %s by %s: %s\n", member(e, "name") ?: "?", member(e, "kernel") ?: "-",
                                       member(e, "count") ?: "?", member(e, "last_seen") ?: "?",
                                       member(e, "requester") ?: "?", member(e, "path") ?: "(no path)");
                }
                if (!arg_global.quiet)
                        printf("%zu module name(s) %s\n", json_object_array_length(list), approved ? "approved" : "waiting");
        }
        json_object_put(list);
        return EXIT_OK;
}
