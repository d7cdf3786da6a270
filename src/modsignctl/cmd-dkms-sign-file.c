/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl dkms-sign-file: what DKMS runs as its sign_file (through the shim
 * /usr/lib/modsignd/dkms-sign-file and the framework.conf.d drop-in).
 *
 * DKMS calls "$sign_file" "$sign_hash" "$mok_signing_key" "$mok_certificate" "$built_module"
 * after strip and before compression, and treats a failure as a mere warning. So this command
 * never leaves a module unsigned quietly: it signs through modsignd (the module's fd goes to
 * the daemon, the key stays there), or, with no daemon listening (a chroot, an image build,
 * a container), with the configured key directly when this process can read it; otherwise
 * it fails with a message that says what to do.
 *
 * The drop-in sets mok_signing_key to DKMS_DAEMON_KEY_REF: it starts with "pkcs11:" so that
 * DKMS never generates a key of its own (it does whenever the key "file" is missing), and it
 * means "modsignd's configured key". Any other key is used as the kernel's sign-file would. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli-policy.h"
#include "conf.h"
#include "log.h"
#include "macro.h"
#include "modsign.h"
#include "modsignctl.h"
#include "module.h"
#include "sign-remote.h"
#include "signing-key.h"

#define DKMS_DAEMON_KEY_REF "pkcs11:modsignd-daemon-key"
#define DEFAULT_TIMEOUT_S 120

static void help(void) {
        printf("Usage: modsignctl dkms-sign-file [--timeout SEC] [--kernel KVER] HASH KEY X509 MODULE\n"
               "\n"
               "DKMS's sign_file. With KEY \"%s\" (what the modsignd drop-in sets)\n"
               "the module is signed by modsignd with its configured key: its file descriptor\n"
               "goes to the daemon, which answers with the signature, appended here atomically.\n"
               "With no daemon listening, the configured key is used directly when it can be\n"
               "read; otherwise the command fails and says what to do. Any other KEY is used\n"
               "as the kernel's sign-file would (see 'modsignctl sign-file').\n"
               "\n"
               "  --timeout SEC   give up waiting for modsignd after SEC seconds (default %d)\n"
               "  --kernel KVER   the kernel the module is for (default: its vermagic)\n"
               "HASH may be \"auto\": the kernel's CONFIG_MODULE_SIG_HASH.\n"
               "\n"
               "Exit status: 0 signed, 1 not signed (the reason is printed), 2 usage error.\n",
               DKMS_DAEMON_KEY_REF, DEFAULT_TIMEOUT_S);
}

static int sign_directly(const struct config *conf, const char *hash, const char *kernel, const char *module_path,
                         const char *real_path) {
        _cleanup_(module_arg_close) struct module_arg m = { .dir_fd = -EBADF };
        _cleanup_free_ char *error = NULL, *picked = NULL, *release = NULL;
        struct signing_key *key = NULL;
        struct cli_gate gate = {};
        struct policy_gathered facts = {};
        struct policy_decision d;
        enum modsign_outcome outcome;
        const char *why = NULL;
        int r, ret = EXIT_ERROR;

        r = signing_key_load(conf, &key, &error);
        if (r < 0) {
                log_error("%s: not signed: modsignd is not running, and its key cannot be used here: %s",
                          module_path, error ?: strerror(-r));
                log_error("start the daemon (systemctl start modsignd.socket), or run DKMS as root where "
                          "the key in %s is readable; 'modsignctl doctor' checks the whole chain",
                          arg_global.config_path ?: CONFIG_DEFAULT_FILE);
                return EXIT_ERROR;
        }
        ret = module_arg_open(module_path, &m);
        if (ret != EXIT_OK)
                goto out;
        ret = EXIT_ERROR;
        /* The daemon's gate, in this process: the shim signs during a DKMS build. */
        if (cli_gate_open(&gate, conf, signer_get_cert(key->signer), true) < 0)
                goto out;
        struct policy_request preq = {
                .requester = POLICY_REQUESTER_DKMS_SHIM,
                .m = &m.file,
                .path = real_path ?: module_path,
                .dir_fd = m.dir_fd,
                .release = kernel,
                .hash = hash,
                .dkms_origin = true,
                .dkms_path = real_path,
        };
        if (cli_gate_check(&gate, &preq, module_path, &d, &facts) < 0)
                goto out;
        if (!kernel && module_vermagic_release(m.file.meta.vermagic, &release) >= 0)
                kernel = release;
        r = signing_key_pick_hash(key, hash, kernel, &picked);
        if (r < 0) {
                log_error("%s: not signed: hash '%s' is not allowed (sha256, sha384 or sha512)", module_path, hash);
                goto out;
        }
        struct modsign_request req = {
                .signer = key->signer,
                .hash = picked,
                /* The same rule as the daemon's: another key's signature is not ours to replace. */
                .existing = MODSIGN_EXISTING_REFUSE,
                .write_module = true,
        };
        r = modsign_sign(&m.file, &req, &outcome, &why);
        if (r < 0) {
                log_error("%s: not signed: %s: %s", module_path, why ?: "signing failed", strerror(-r));
                cli_gate_record(&gate, AUDIT_EVENT_FAILED, preq.path, &facts, NULL, why ?: strerror(-r));
                goto out;
        }
        if (outcome != MODSIGN_UNCHANGED) {
                char reason[128];
                snprintf(reason, sizeof(reason), "%s; policy %s; the DKMS shim without a daemon", picked, d.rule);
                cli_gate_record(&gate, m.file.meta.n_signatures > 0 ? AUDIT_EVENT_RESIGNED : AUDIT_EVENT_SIGNED, preq.path,
                                &facts, "dkms-sign-file", reason);
        }
        log_notice("%s: %s with modsignd's key directly (%s; no daemon running)", module_path,
                 outcome == MODSIGN_UNCHANGED ? "already signed" : "signed", picked);
        ret = EXIT_OK;
out:
        policy_gathered_done(&facts);
        cli_gate_close(&gate);
        signing_key_unref(key);
        return ret;
}

int cmd_dkms_sign_file(int argc, char *argv[]) {
        static const struct option options[] = {
                { "timeout", required_argument, NULL, 't' },
                { "kernel", required_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(config_done) struct config conf = {};
        _cleanup_free_ char *conf_error = NULL;
        _cleanup_close_ int dir_fd = -EBADF;
        struct sign_remote_reply reply = {};
        const char *hash, *key, *module_path, *base, *socket_path, *kernel = NULL;
        long timeout_s = DEFAULT_TIMEOUT_S;
        int c, r;

        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 't': {
                        char *end;

                        errno = 0;
                        timeout_s = strtol(optarg, &end, 10);
                        if (errno || *end || timeout_s <= 0 || timeout_s > 24 * 3600) {
                                log_error("dkms-sign-file: --timeout wants seconds between 1 and 86400, not '%s'", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                }
                case 'k':
                        kernel = optarg;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }

        if (argc - optind == 4 || argc - optind == 5) {
                key = argv[optind + 1];
                if (!streq(key, DKMS_DAEMON_KEY_REF)) {
                        /* Someone's own key: the kernel's sign-file semantics, unchanged. */
                        argv[optind - 1] = (char *) "sign-file";
                        int n = argc - optind + 1;
                        char **args = argv + optind - 1;
                        optind = 0;
                        return cmd_sign_file(n, args);
                }
        }
        if (argc - optind != 4) {
                fprintf(stderr, "Usage: modsignctl dkms-sign-file [--timeout SEC] HASH %s X509 MODULE\n",
                        DKMS_DAEMON_KEY_REF);
                return EXIT_USAGE;
        }
        hash = argv[optind];
        module_path = argv[optind + 3];
        /* argv[optind + 2], the certificate, is DKMS's business (it checks that the file
         * exists); modsignd signs with the certificate it is configured with. */

        r = config_load(arg_global.config_path ?: CONFIG_DEFAULT_FILE, arg_global.config_path != NULL,
                        arg_global.config_path ? NULL : CONFIG_DEFAULT_DROPIN_DIR, &conf, &conf_error);
        if (r < 0) {
                log_error("%s: not signed: %s", module_path, conf_error ?: strerror(-r));
                return EXIT_ERROR;
        }
        socket_path = arg_global.socket_given ? arg_global.socket_path : conf.socket_path;

        r = open_parent_dir(module_path, &dir_fd, &base);
        if (r < 0) {
                log_error_errno(r, "%s: not signed: %m", module_path);
                return EXIT_ERROR;
        }
        /* DKMS runs us on the module in its build directory: say so, and where (the daemon
         * checks that the path is the file it gets). */
        _cleanup_free_ char *real_path = realpath(module_path, NULL);
        r = sign_remote_dkms(socket_path, dir_fd, base, hash, kernel, real_path, (int) (timeout_s * 1000), &reply);
        if (r == -ENOENT || r == -ECONNREFUSED)
                return sign_directly(&conf, hash, kernel, module_path, real_path);
        if (r == -ETIMEDOUT) {
                log_error("%s: not signed: modsignd (%s) did not answer within %ld s; see "
                          "'journalctl -u modsignd'",
                          module_path, socket_path, timeout_s);
                return EXIT_ERROR;
        }
        if (r == -EACCES || r == -EPERM) {
                log_error("%s: not signed: %s: permission denied; only root may ask modsignd to sign",
                          module_path, socket_path);
                return EXIT_ERROR;
        }
        if (r == -ESTALE) {
                log_error("%s: not signed: the module changed while it was being signed", module_path);
                return EXIT_ERROR;
        }
        if (r < 0) {
                log_error_errno(r, "%s: not signed: talking to modsignd (%s) failed: %m", module_path, socket_path);
                return EXIT_ERROR;
        }
        if (reply.error) {
                int ret = exit_code_from_errno(reply.error) == EXIT_NOT_MODULE ? EXIT_NOT_MODULE : EXIT_ERROR;

                if (reply.rule)
                        log_error("%s: not signed: modsignd refused: %s (rule %s)", module_path,
                                  reply.message ?: strerror(-reply.error), reply.rule);
                else
                        log_error("%s: not signed: modsignd failed: %s", module_path,
                                  reply.message ?: strerror(-reply.error));
                sign_remote_reply_done(&reply);
                return ret;
        }
        log_notice("%s: signed by modsignd (%s)", module_path, reply.hash ?: hash);
        sign_remote_reply_done(&reply);
        return EXIT_OK;
}
