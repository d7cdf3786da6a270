/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl strip: remove appended signatures. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "log.h"
#include "modsign.h"
#include "modsignctl.h"

static void help(void) {
        printf("Usage: modsignctl strip MODULE...\n"
               "\n"
               "Remove every appended signature (atomically; compressed modules stay compressed).\n"
               "An unsigned module is left untouched.\n"
               "\n"
               "  -h --help   show this help\n");
}

static int strip_one(const char *path) {
        _cleanup_(module_arg_close) struct module_arg m = { .dir_fd = -EBADF };
        int code, r;

        code = module_arg_open(path, &m);
        if (code != EXIT_OK)
                return code;
        r = modsign_strip(&m.file, 0);
        if (r < 0) {
                log_error_errno(r, "%s: cannot strip: %m", path);
                return EXIT_ERROR;
        }
        if (!arg_global.quiet)
                printf("%s: %s\n", path, r == 1 ? "not signed, unchanged" : "signature removed");
        return EXIT_OK;
}

int cmd_strip(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c, code = EXIT_OK;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        if (optind >= argc) {
                log_error("strip: no module given");
                return EXIT_USAGE;
        }
        for (int i = optind; i < argc; i++)
                code = exit_code_merge(code, strip_one(argv[i]));
        return code;
}
