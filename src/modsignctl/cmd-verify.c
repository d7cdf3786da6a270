/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl verify: check module signatures as the kernel would. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>

#include "key.h"
#include "log.h"
#include "modsign.h"
#include "modsignctl.h"
#include "openssl-util.h"
#include "verify.h"

static void help(void) {
        printf("Usage: modsignctl verify --cert FILE|DIR [--cert FILE|DIR]... MODULE...\n"
               "\n"
               "Check each module's signature against trusted certificates, the way the kernel\n"
               "does. Exit status: 0 all trusted, 3 unsigned, 4 bad signature, 5 untrusted\n"
               "signer, 6 not a module, 1 other errors.\n"
               "\n"
               "  -c --cert PATH   trusted certificate(s): PEM/DER file, PEM bundle, directory\n"
               "  -h --help        show this help\n");
}

static const char *status_name(int code) {
        switch (code) {
        case EXIT_OK:
                return "trusted";
        case EXIT_UNSIGNED:
                return "unsigned";
        case EXIT_BAD_SIGNATURE:
                return "bad-signature";
        case EXIT_UNTRUSTED:
                return "untrusted";
        case EXIT_NOT_MODULE:
                return "not-a-module";
        default:
                return "error";
        }
}

static char *subject_cn(X509 *cert) {
        const X509_NAME *n = X509_get_subject_name(cert);
        char buf[256];

        if (X509_NAME_get_text_by_NID((X509_NAME *) n, NID_commonName, buf, sizeof(buf)) < 0)
                return strdup("(no common name)");
        return strdup(buf);
}

static int verify_one(const char *path, STACK_OF(X509) *trusted, json_object *jarray) {
        _cleanup_(module_arg_close) struct module_arg m = { .dir_fd = -EBADF };
        _cleanup_(X509_freep) X509 *signer = NULL;
        _cleanup_free_ char *cn = NULL;
        struct sig_details d = {};
        _cleanup_free_ uint8_t *der = NULL;
        size_t len;
        int code, r;

        code = module_arg_open(path, &m);
        if (code != EXIT_OK)
                goto report;

        r = modsign_verify(&m.file, trusted, &signer);
        code = exit_code_from_errno(r);
        if (module_file_read_signature(&m.file, &der, &len) >= 0)
                (void) sig_describe(der, len, &d);
        if (signer)
                cn = subject_cn(signer);

        switch (r) {
        case 0:
                if (!arg_global.quiet && !jarray)
                        printf("%s: signed by \"%s\" (%s, %s)\n", path, cn ?: "?", d.hash ?: "?", d.key_algo ?: "?");
                break;
        case -ENODATA:
                log_error("%s: unsigned", path);
                break;
        case -ENOKEY:
                log_error("%s: signed by a key none of the given certificates matches (signer %s%s)", path,
                          d.signer ? d.signer : "key id ", d.signer ? "" : d.key_id ?: "?");
                break;
        case -EKEYREJECTED:
                log_error("%s: bad signature: the module does not match its signature (modified after signing?)", path);
                break;
        case -EBADMSG:
                log_error("%s: bad signature: the PKCS#7 signature is malformed", path);
                break;
        default:
                log_error_errno(r, "%s: cannot verify: %m", path);
                break;
        }

report:
        if (jarray) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "file", json_object_new_string(path));
                json_object_object_add(o, "status", json_object_new_string(status_name(code)));
                json_object_object_add(o, "signer", cn ? json_object_new_string(cn) : NULL);
                json_object_object_add(o, "hash", d.hash ? json_object_new_string(d.hash) : NULL);
                json_object_object_add(o, "key_algorithm", d.key_algo ? json_object_new_string(d.key_algo) : NULL);
                json_object_array_add(jarray, o);
        }
        sig_details_done(&d);
        return code;
}

int cmd_verify(int argc, char *argv[]) {
        static const struct option options[] = {
                { "cert", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *trusted = sk_X509_new_null();
        json_object *jarray = NULL;
        int c, r, code = EXIT_OK;
        bool have_cert = false;

        if (!trusted)
                return log_oom(), EXIT_ERROR;

        while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        r = certs_load_path(optarg, trusted);
                        if (r == -ENOENT || r == 0) {
                                log_error("%s: no certificate found there", optarg);
                                return EXIT_ERROR;
                        }
                        if (r < 0) {
                                log_error_errno(r, "%s: cannot load certificates: %m", optarg);
                                return EXIT_ERROR;
                        }
                        have_cert = true;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }

        if (!have_cert) {
                log_error("verify: at least one --cert is required");
                return EXIT_USAGE;
        }
        if (optind >= argc) {
                log_error("verify: no module given");
                return EXIT_USAGE;
        }

        if (arg_global.json)
                jarray = json_object_new_array();
        for (int i = optind; i < argc; i++)
                code = exit_code_merge(code, verify_one(argv[i], trusted, jarray));
        if (jarray) {
                printf("%s\n", json_object_to_json_string_ext(jarray, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(jarray);
        }
        return code;
}
