/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl dkms-check: are the DKMS modules of these kernels signed by our key?
 *
 * What the kernel-upgrade hooks run (/etc/kernel/postinst.d/dkms-modsignd after dkms's own
 * hook, and the kernel-install plugin): every module DKMS built for the kernel, in the DKMS
 * tree (DKMSTREE/NAME/VERSION/KVER/ARCH/module/) and installed (/lib/modules/KVER/updates/dkms
 * and extra/), is checked against the configured certificate; with --sign the stragglers are
 * signed (by modsignd through a SCAN of their directories, or with the configured key directly
 * when no daemon runs), and whatever still is not signed by our key is listed, with a non-zero
 * exit, before the initramfs hook can capture it. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-policy.h"
#include "client.h"
#include "conf.h"
#include "dkms-modules.h"
#include "key.h"
#include "log.h"
#include "macro.h"
#include "modsign.h"
#include "modsignctl.h"
#include "openssl-util.h"
#include "signing-key.h"

#define SCAN_TIMEOUT_MS (30 * 60 * 1000)

static char *dir_of(const char *path) {
        const char *slash = strrchr(path, '/');
        return slash ? strndup(path, (size_t) (slash - path)) : strdup(".");
}

/* With modsignd: a SCAN of each directory that holds a straggler (it applies its policy,
 * signs inside compressed modules, records what it did). */
static int sign_through_daemon(const struct dkms_modules *c) {
        for (size_t i = 0; i < c->n; i++) {
                _cleanup_free_ char *dir = NULL;
                json_object *o = NULL;
                bool seen = false;
                int code;

                if (c->items[i].state != DKMS_MODULE_UNSIGNED)
                        continue;
                dir = dir_of(c->items[i].path);
                if (!dir)
                        return log_oom();
                for (size_t j = 0; j < i && !seen; j++) {
                        _cleanup_free_ char *other = NULL;
                        if (c->items[j].state != DKMS_MODULE_UNSIGNED)
                                continue;
                        other = dir_of(c->items[j].path);
                        seen = other && streq(other, dir);
                }
                if (seen)
                        continue; /* scanned already */
                code = daemon_request(PROTO_REQ_SCAN, dir, NULL, SCAN_TIMEOUT_MS, &o);
                json_object_put(o);
                if (code != EXIT_OK)
                        return code;
        }
        return EXIT_OK;
}

static bool daemon_listening(const char *socket_path) {
        _cleanup_close_ int fd = -EBADF;
        return client_connect(socket_path, &fd) >= 0;
}

static int sign_directly(const struct dkms_modules *c, const struct config *conf) {
        _cleanup_free_ char *error = NULL;
        struct signing_key *key = NULL;
        struct cli_gate gate;
        int r;

        r = signing_key_load(conf, &key, &error);
        if (r < 0) {
                log_error("modsignd is not running and its key cannot be used here: %s", error ?: strerror(-r));
                return EXIT_ERROR;
        }
        /* The daemon's gate, in this process; the DKMS tree is the one being checked. */
        if (cli_gate_open(&gate, conf, signer_get_cert(key->signer), true) < 0) {
                signing_key_unref(key);
                return EXIT_ERROR;
        }
        free(gate.dkms_tree);
        gate.dkms_tree = strdup(c->dkms_tree);
        if (!gate.dkms_tree) {
                cli_gate_close(&gate);
                signing_key_unref(key);
                return log_oom(), EXIT_ERROR;
        }
        for (size_t i = 0; i < c->n; i++) {
                _cleanup_(module_arg_close) struct module_arg m = { .dir_fd = -EBADF };
                _cleanup_free_ char *hash = NULL;
                enum modsign_outcome outcome;
                const char *why = NULL;
                struct policy_gathered facts = {};
                struct policy_decision d;

                if (c->items[i].state != DKMS_MODULE_UNSIGNED || module_arg_open(c->items[i].path, &m) != EXIT_OK)
                        continue;
                struct policy_request preq = {
                        .requester = POLICY_REQUESTER_DKMS_SHIM,
                        .m = &m.file,
                        .path = c->items[i].path,
                        .dir_fd = m.dir_fd,
                };
                if (cli_gate_check(&gate, &preq, c->items[i].path, &d, &facts) < 0)
                        continue; /* refused (and said why), or the facts could not be read */
                if (signing_key_pick_hash(key, NULL, c->items[i].kernel, &hash) < 0) {
                        policy_gathered_done(&facts);
                        continue;
                }
                struct modsign_request req = {
                        .signer = key->signer,
                        .hash = hash,
                        .existing = MODSIGN_EXISTING_REFUSE,
                        .write_module = true,
                };
                r = modsign_sign(&m.file, &req, &outcome, &why);
                if (r < 0) {
                        log_error("%s: not signed: %s: %s", c->items[i].path, why ?: "signing failed", strerror(-r));
                        cli_gate_record(&gate, AUDIT_EVENT_FAILED, c->items[i].path, &facts, NULL, why ?: strerror(-r));
                } else {
                        char reason[128];
                        log_notice("%s: signed with modsignd's key directly (no daemon running)", c->items[i].path);
                        snprintf(reason, sizeof(reason), "%s; policy %s; dkms-check without a daemon", hash, d.rule);
                        if (outcome != MODSIGN_UNCHANGED)
                                cli_gate_record(&gate, AUDIT_EVENT_SIGNED, c->items[i].path, &facts, "dkms-check", reason);
                }
                policy_gathered_done(&facts);
        }
        cli_gate_close(&gate);
        signing_key_unref(key);
        return EXIT_OK;
}

static void print_result(const struct dkms_modules *c) {
        if (arg_global.json) {
                json_object *o = json_object_new_object(), *a = json_object_new_array();
                for (size_t i = 0; i < c->n; i++) {
                        json_object *e = json_object_new_object();
                        json_object_object_add(e, "path", json_object_new_string(c->items[i].path));
                        json_object_object_add(e, "kernel", json_object_new_string(c->items[i].kernel));
                        json_object_object_add(e, "state", json_object_new_string(dkms_module_state_names[c->items[i].state]));
                        json_object_array_add(a, e);
                }
                json_object_object_add(o, "modules", a);
                json_object_object_add(o, "not_signed", json_object_new_int64((int64_t) dkms_modules_not_ours(c)));
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
                json_object_put(o);
                return;
        }
        for (size_t i = 0; i < c->n; i++)
                if (c->items[i].state != DKMS_MODULE_OURS)
                        printf("%s: %s\n", c->items[i].path, dkms_module_state_names[c->items[i].state]);
        if (!arg_global.quiet)
                printf("%zu DKMS module file(s) checked, %zu not signed by modsignd's key\n", c->n, dkms_modules_not_ours(c));
}

static void help(void) {
        printf("Usage: modsignctl dkms-check [--kernel KVER]... [--sign] [--cert FILE]\n"
               "                            [--modules-dir DIR] [--dkms-tree DIR]\n"
               "\n"
               "Check that every module DKMS built for the kernels is signed by modsignd's key:\n"
               "in the DKMS tree and installed (updates/dkms, extra). Lists the ones that are not.\n"
               "\n"
               "  -k --kernel KVER     this kernel (repeatable; default: every one in DIR)\n"
               "     --sign           sign the unsigned ones first: through modsignd, or with\n"
               "                      the configured key directly when no daemon runs\n"
               "     --cert FILE      the certificate to check against (default: the configured one)\n"
               "     --modules-dir DIR  default /lib/modules\n"
               "     --dkms-tree DIR    default: [Policy] DkmsTree= (/var/lib/dkms)\n"
               "\n"
               "Exit status: 0 all signed by our key, 3 some are not (listed), 1 error.\n");
}

int cmd_dkms_check(int argc, char *argv[]) {
        enum { ARG_SIGN = 0x100, ARG_CERT, ARG_MODULES_DIR, ARG_DKMS_TREE };
        static const struct option options[] = {
                { "kernel", required_argument, NULL, 'k' },
                { "sign", no_argument, NULL, ARG_SIGN },
                { "cert", required_argument, NULL, ARG_CERT },
                { "modules-dir", required_argument, NULL, ARG_MODULES_DIR },
                { "dkms-tree", required_argument, NULL, ARG_DKMS_TREE },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(config_done) struct config conf = {};
        _cleanup_free_ char *conf_error = NULL;
        char *kernels[DKMS_MODULES_MAX_KERNELS] = {};
        struct dkms_modules c = { .modules_dir = "/lib/modules", .kernels = kernels };
        const char *cert = NULL;
        bool sign = false;
        int opt, r, ret = EXIT_ERROR;

        while ((opt = getopt_long(argc, argv, "+k:h", options, NULL)) >= 0)
                switch (opt) {
                case 'k':
                        if (c.n_kernels == DKMS_MODULES_MAX_KERNELS || strchr(optarg, '/') || !*optarg || streq(optarg, "..")) {
                                log_error("dkms-check: bad or too many --kernel values ('%s')", optarg);
                                goto out;
                        }
                        kernels[c.n_kernels++] = strdup(optarg);
                        break;
                case ARG_SIGN:
                        sign = true;
                        break;
                case ARG_CERT:
                        cert = optarg;
                        break;
                case ARG_MODULES_DIR:
                        c.modules_dir = optarg;
                        break;
                case ARG_DKMS_TREE:
                        c.dkms_tree = optarg;
                        break;
                case 'h':
                        help();
                        ret = EXIT_OK;
                        goto out;
                default:
                        ret = EXIT_USAGE;
                        goto out;
                }
        if (optind < argc) {
                log_error("dkms-check: unexpected argument '%s'", argv[optind]);
                ret = EXIT_USAGE;
                goto out;
        }

        r = config_load(arg_global.config_path ?: CONFIG_DEFAULT_FILE, arg_global.config_path != NULL,
                        arg_global.config_path ? NULL : CONFIG_DEFAULT_DROPIN_DIR, &conf, &conf_error);
        if (r < 0) {
                log_error("%s", conf_error ?: strerror(-r));
                goto out;
        }
        if (!arg_global.socket_given)
                arg_global.socket_path = conf.socket_path;
        cert = cert ?: conf.certificate;
        c.dkms_tree = c.dkms_tree ?: conf.dkms_tree; /* [Policy] DkmsTree= unless --dkms-tree */

        c.trusted = sk_X509_new_null();
        if (!c.trusted) {
                log_oom();
                goto out;
        }
        r = certs_load_path(cert, c.trusted);
        if (r < 0) {
                log_error_errno(r, "%s: cannot load modsignd's certificate: %m", cert);
                goto out;
        }
        if (c.n_kernels == 0 && dkms_modules_list_kernels(&c) < 0)
                goto out;
        if (dkms_modules_collect(&c) < 0)
                goto out;
        dkms_modules_check(&c);

        if (sign && dkms_modules_not_ours(&c) > 0) {
                /* Whatever signing achieves, the list of what remains is the answer. */
                if (daemon_listening(arg_global.socket_path))
                        (void) sign_through_daemon(&c);
                else
                        (void) sign_directly(&c, &conf);
                dkms_modules_check(&c);
        }
        print_result(&c);
        ret = dkms_modules_not_ours(&c) > 0 ? EXIT_UNSIGNED : EXIT_OK;
out:
        dkms_modules_done(&c);
        for (size_t i = 0; i < c.n_kernels; i++)
                free(kernels[i]);
        sk_X509_pop_free(c.trusted, X509_free);
        return ret;
}
