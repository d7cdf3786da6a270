/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl info: what a module is and how it is signed. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>

#include "log.h"
#include "modsignctl.h"
#include "verify.h"

static void help(void) {
        printf("Usage: modsignctl [--json] info MODULE...\n"
               "\n"
               "Show each module's name, vermagic, compression and signature (signer, serial or\n"
               "key id, hash, key algorithm). It does not check the signature: see 'verify'.\n"
               "\n"
               "  -h --help   show this help\n");
}

static json_object *jstr(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static int info_one(const char *path, json_object *jarray) {
        _cleanup_(module_arg_close) struct module_arg m = { .dir_fd = -EBADF };
        _cleanup_free_ uint8_t *der = NULL;
        struct sig_details d = {};
        bool have_sig = false;
        size_t len = 0;
        int code;

        code = module_arg_open(path, &m);
        if (code != EXIT_OK)
                return code;

        if (m.file.meta.n_signatures > 0) {
                int r = module_file_read_signature(&m.file, &der, &len);
                if (r >= 0)
                        r = sig_describe(der, len, &d);
                if (r < 0) {
                        log_error("%s: malformed signature: the PKCS#7 signature cannot be parsed", path);
                        code = EXIT_BAD_SIGNATURE;
                } else
                        have_sig = true;
        }

        if (jarray) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "file", jstr(path));
                json_object_object_add(o, "name", jstr(m.file.meta.name));
                json_object_object_add(o, "vermagic", jstr(m.file.meta.vermagic));
                json_object_object_add(o, "version", jstr(m.file.meta.version));
                json_object_object_add(o, "compression", jstr(compression_to_string(m.file.compression)));
                json_object_object_add(o, "signed", json_object_new_boolean(m.file.meta.n_signatures > 0));
                json_object_object_add(o, "signatures", json_object_new_int((int) m.file.meta.n_signatures));
                json_object_object_add(o, "signer", jstr(d.signer));
                json_object_object_add(o, "issuer", jstr(d.issuer));
                json_object_object_add(o, "serial", jstr(d.serial));
                json_object_object_add(o, "key_id", jstr(d.key_id));
                json_object_object_add(o, "hash", jstr(d.hash));
                json_object_object_add(o, "key_algorithm", jstr(d.key_algo));
                json_object_object_add(o, "signature_length",
                                       have_sig ? json_object_new_int64(m.file.meta.last_sig.sig_len) : NULL);
                json_object_array_add(jarray, o);
        } else {
                printf("file:             %s\n", path);
                printf("name:             %s\n", m.file.meta.name ?: "-");
                printf("vermagic:         %s\n", m.file.meta.vermagic ?: "-");
                if (m.file.meta.version)
                        printf("version:          %s\n", m.file.meta.version);
                printf("compression:      %s\n", compression_to_string(m.file.compression));
                printf("signed:           %s\n", m.file.meta.n_signatures == 0 ? "no"
                                                 : m.file.meta.n_signatures == 1 ? "yes"
                                                                                 : "yes (stacked signatures)");
                if (have_sig) {
                        if (d.signer)
                                printf("signer:           %s\n", d.signer);
                        if (d.serial)
                                printf("serial:           %s\n", d.serial);
                        if (d.key_id)
                                printf("key_id:           %s\n", d.key_id);
                        printf("hash:             %s\n", d.hash ?: "?");
                        printf("key_algorithm:    %s\n", d.key_algo ?: "?");
                        printf("signature_length: %u\n", m.file.meta.last_sig.sig_len);
                }
        }
        sig_details_done(&d);
        return code;
}

int cmd_info(int argc, char *argv[]) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        json_object *jarray = NULL;
        int c, code = EXIT_OK;

        while ((c = getopt_long(argc, argv, "jh", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        arg_global.json = true;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        if (optind >= argc) {
                log_error("info: no module given");
                return EXIT_USAGE;
        }

        if (arg_global.json)
                jarray = json_object_new_array();
        for (int i = optind; i < argc; i++) {
                if (!jarray && i > optind)
                        printf("\n");
                code = exit_code_merge(code, info_one(argv[i], jarray));
        }
        if (jarray) {
                printf("%s\n", json_object_to_json_string_ext(jarray, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(jarray);
        }
        return code;
}
