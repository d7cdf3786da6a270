/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl provenance MODULE: print the in-toto statement modsignd wrote when it signed the
 * module (provenance.h), found by the module's SHA-256 as it is now. A module whose bytes are
 * no longer those that were signed has no statement under its digest: then say so, and name
 * the statement it was signed under when there is one. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "log.h"
#include "macro.h"
#include "modsignctl.h"
#include "provenance.h"

static void help(void) {
        printf("Usage: modsignctl provenance [--state-dir DIR] [--json] MODULE...\n"
               "\n"
               "Print the in-toto statement recorded when the module was signed, found by the\n"
               "module's SHA-256 (for a compressed module, of the file or of its contents), in\n"
               "STATE_DIRECTORY/provenance/.\n"
               "\n"
               "  -d --state-dir DIR  modsignd's state directory (default: $MODSIGND_STATE_DIRECTORY,\n"
               "                      else StateDirectory= of the configuration)\n"
               "  -j --json           print the statement as one line of JSON\n"
               "  -h --help           show this help\n"
               "\n"
               "Exit status: 0 a statement matches every module, %d none matches (the module\n"
               "changed after signing, or was not signed through modsignd), 1 error, 2 usage,\n"
               "6 not a module.\n",
               EXIT_NO_PROVENANCE);
}

static const char *pred_string(json_object *st, const char *a, const char *b) {
        json_object *v;

        if (!json_object_object_get_ex(st, "predicate", &v) || !json_object_object_get_ex(v, a, &v))
                return NULL;
        if (b && !json_object_object_get_ex(v, b, &v))
                return NULL;
        return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int provenance_one(const char *state_dir, const char *path, bool one_line) {
        _cleanup_(module_arg_close) struct module_arg m = { .dir_fd = -EBADF };
        _cleanup_free_ char *release = NULL;
        char file_sha[65] = "", content_sha[65] = "", real[PATH_MAX];
        json_object *st = NULL;
        int code, r;

        code = module_arg_open(path, &m);
        if (code != EXIT_OK)
                return code;
        r = digest_fd_sha256(m.file.fd, file_sha);
        if (r >= 0 && m.file.decompressed)
                r = digest_sha256_hex(m.file.decompressed, (size_t) m.file.data.size, content_sha);
        if (r < 0) {
                log_error_errno(r, "%s: cannot hash: %m", path);
                return EXIT_ERROR;
        }

        r = provenance_load(state_dir, file_sha, &st);
        if (r == -ENOENT && content_sha[0])
                r = provenance_load(state_dir, content_sha, &st);
        if (r >= 0) {
                printf("%s\n", json_object_to_json_string_ext(st, (one_line ? JSON_C_TO_STRING_PLAIN
                                                                            : JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED) |
                                                                          JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(st);
                return EXIT_OK;
        }
        if (r == -EBADMSG) {
                log_error("%s/provenance/%s.json: not a statement for this module's digest; the file was tampered with",
                          state_dir, file_sha);
                return EXIT_NO_PROVENANCE;
        }
        if (r != -ENOENT) {
                log_error_errno(r, "%s: cannot read its provenance statement in %s/provenance: %m", path, state_dir);
                return EXIT_ERROR;
        }

        /* No statement for these bytes: was the module signed as something else? */
        (void) module_vermagic_release(m.file.meta.vermagic, &release);
        r = provenance_find_for_module(state_dir, realpath(path, real) ? real : path, m.file.meta.name, release, &st);
        if (r >= 0) {
                log_error("%s: changed after signing: it was signed at %s with SHA-256 %s (statement "
                          "%s/provenance/%s.json), but its SHA-256 is now %s",
                          path, pred_string(st, "time", NULL) ?: "?", provenance_subject_sha256(st) ?: "?", state_dir,
                          provenance_subject_sha256(st) ?: "?", file_sha);
                json_object_put(st);
        } else
                log_error("%s: no provenance statement for SHA-256 %s in %s/provenance: the module was not signed by "
                          "modsignd or modsignctl sign as root (or before statements were kept)",
                          path, file_sha, state_dir);
        return EXIT_NO_PROVENANCE;
}

int cmd_provenance(int argc, char *argv[]) {
        static const struct option options[] = {
                { "state-dir", required_argument, NULL, 'd' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_free_ char *state_dir = NULL;
        bool one_line = arg_global.json;
        int c, r, code = EXIT_OK;

        while ((c = getopt_long(argc, argv, "d:jh", options, NULL)) >= 0)
                switch (c) {
                case 'd':
                        free(state_dir);
                        state_dir = strdup(optarg);
                        if (!state_dir)
                                return log_oom(), EXIT_ERROR;
                        break;
                case 'j':
                        one_line = true;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        if (optind >= argc) {
                log_error("provenance: no module given");
                return EXIT_USAGE;
        }
        if (!state_dir) {
                r = audit_state_directory(&state_dir);
                if (r < 0)
                        return log_error_errno(r, "cannot find the state directory: %m"), EXIT_ERROR;
        }
        for (int i = optind; i < argc; i++) {
                int k = provenance_one(state_dir, argv[i], one_line);
                /* The most severe wins; "no statement" outranks success. */
                code = code == EXIT_OK ? k : k == EXIT_OK ? code : exit_code_merge(code, k);
        }
        return code;
}
