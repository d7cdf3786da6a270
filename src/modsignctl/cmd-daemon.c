/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl status, scan, reload: requests to the running daemon. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "macro.h"
#include "modsignctl.h"
#include "proto.h"

/* A scan of a large tree signs many modules before it answers. */
#define STATUS_TIMEOUT_MS (10 * 1000)
#define SCAN_TIMEOUT_MS (30 * 60 * 1000)

int daemon_request(enum proto_type type, const char *path, const char *kernel, int timeout_ms, json_object **ret) {
        static uint8_t req[PROTO_MAX_PACKET], reply[PROTO_MAX_PACKET];
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *json = NULL, *message = NULL;
        struct proto_message m;
        struct proto_writer w;
        size_t len, reply_len;
        uint32_t error = EIO;
        int r;

        r = client_connect(arg_global.socket_path, &fd);
        if (r == -ENOENT || r == -ECONNREFUSED) {
                log_error("modsignd is not running (nothing listens on %s); start it with 'systemctl start modsignd'",
                          arg_global.socket_path);
                return EXIT_DAEMON_DOWN;
        }
        if (r == -EACCES || r == -EPERM) {
                log_error("%s: permission denied; only root may talk to modsignd", arg_global.socket_path);
                return EXIT_ERROR;
        }
        if (r < 0) {
                log_error_errno(r, "cannot connect to %s: %m", arg_global.socket_path);
                return EXIT_ERROR;
        }

        proto_writer_init(&w, req, type);
        proto_put_string(&w, PROTO_TAG_PATH, path);
        proto_put_string(&w, PROTO_TAG_KERNEL, kernel);
        if (proto_writer_finish(&w, &len) < 0) {
                log_error("request too large");
                return EXIT_USAGE;
        }
        r = client_call(fd, req, len, -EBADF, timeout_ms, reply, &reply_len);
        if (r == -ETIMEDOUT) {
                log_error("modsignd did not answer within %d s", timeout_ms / 1000);
                return EXIT_ERROR;
        }
        if (r < 0 || proto_decode(reply, reply_len, &m) < 0) {
                log_error_errno(r < 0 ? r : -EBADMSG, "no valid answer from modsignd: %m");
                return EXIT_ERROR;
        }
        if (m.type == PROTO_REPLY_ERROR) {
                (void) proto_get_u32(&m, PROTO_TAG_ERRNO, &error);
                (void) proto_get_string(&m, PROTO_TAG_MESSAGE, &message);
                log_error("modsignd: %s", message ?: strerror((int) error));
                return EXIT_ERROR;
        }
        if (proto_get_string(&m, PROTO_TAG_JSON, &json) < 0 || !(*ret = json_tokener_parse(json))) {
                log_error("modsignd sent an answer without its JSON");
                return EXIT_ERROR;
        }
        return EXIT_OK;
}

static int64_t jint(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static const char *jstr(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

static void print_json(json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
}

static bool want_help(int argc, char *argv[], void (*help)(void)) {
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--help") || streq(argv[i], "-h")) {
                        help();
                        return true;
                }
        return false;
}

static void help_status(void) {
        printf("Usage: modsignctl [--json] status\n"
               "\n"
               "Show what the running modsignd is doing: its key, how many modules it signed,\n"
               "what waits. Exit status 7 when the daemon is not running.\n");
}

int cmd_status(int argc, char *argv[]) {
        json_object *o = NULL;
        int code;

        if (want_help(argc, argv, help_status))
                return EXIT_OK;
        if (argc > 1) {
                log_error("status: takes no arguments");
                return EXIT_USAGE;
        }
        code = daemon_request(PROTO_REQ_STATUS, NULL, NULL, STATUS_TIMEOUT_MS, &o);
        if (code != EXIT_OK)
                return code;
        if (arg_global.json)
                print_json(o);
        else {
                printf("modsignd %s, pid %" PRId64 ", up %" PRId64 " s\n", jstr(o, "version"), jint(o, "pid"),
                       jint(o, "uptime_seconds"));
                printf("key:       SHA-256 %s, hash %s\n", jstr(o, "key_fingerprint"), jstr(o, "hash"));
                {
                        json_object *v;
                        if (json_object_object_get_ex(o, "key_available", &v) && !json_object_get_boolean(v))
                                printf("key:       UNAVAILABLE: %s\n", jstr(o, "key_error"));
                }
                printf("watching:  %" PRId64 " directories; %" PRId64 " workers, %" PRId64 " modules queued\n",
                       jint(o, "watched_directories"), jint(o, "workers"), jint(o, "queued"));
                printf("modules:   %" PRId64 " signed, %" PRId64 " already signed, %" PRId64
                       " signed by another key (left alone), %" PRId64 " refused, %" PRId64 " failed\n",
                       jint(o, "signed"), jint(o, "unchanged"), jint(o, "foreign"), jint(o, "refused"),
                       jint(o, "failed"));
        }
        json_object_put(o);
        return EXIT_OK;
}

static void help_scan(void) {
        printf("Usage: modsignctl [--json] scan [--kernel KVER | PATH]\n"
               "\n"
               "Ask modsignd to look at every module of a kernel (its updates/, extra/, misc/),\n"
               "or under PATH, or in all watched trees, and sign the ones that need it.\n"
               "\n"
               "  -k --kernel KVER   one installed kernel release\n"
               "  -h --help          show this help\n"
               "Exit status: 0 all good, 1 some module failed or was refused, 7 daemon not running.\n");
}

int cmd_scan(int argc, char *argv[]) {
        static const struct option options[] = {
                { "kernel", required_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *kernel = NULL;
        _cleanup_free_ char *path = NULL;
        json_object *o = NULL;
        int c, code;

        while ((c = getopt_long(argc, argv, "k:h", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        kernel = optarg;
                        break;
                case 'h':
                        help_scan();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        if (optind < argc - 1 || (kernel && optind < argc)) {
                log_error("scan: give --kernel KVER or one PATH");
                return EXIT_USAGE;
        }
        if (optind < argc) {
                path = realpath(argv[optind], NULL);
                if (!path) {
                        log_error_errno(-errno, "%s: %m", argv[optind]);
                        return EXIT_ERROR;
                }
        }
        code = daemon_request(PROTO_REQ_SCAN, path, kernel, SCAN_TIMEOUT_MS, &o);
        if (code != EXIT_OK)
                return code;
        if (arg_global.json)
                print_json(o);
        else
                printf("%" PRId64 " signed, %" PRId64 " already signed, %" PRId64 " signed by another key, %" PRId64
                       " refused, %" PRId64 " failed\n",
                       jint(o, "signed"), jint(o, "unchanged"), jint(o, "foreign"), jint(o, "refused"), jint(o, "failed"));
        if (jint(o, "cancelled") > 0)
                log_error("modsignd stopped before it looked at %" PRId64 " modules; run the scan again",
                          jint(o, "cancelled"));
        /* A hook before the initramfs is built relies on this: anything not looked at, refused
         * or failed may be an unsigned module. */
        code = jint(o, "failed") > 0 || jint(o, "refused") > 0 || jint(o, "cancelled") > 0 ? EXIT_ERROR : EXIT_OK;
        json_object_put(o);
        return code;
}

static void help_reload(void) {
        printf("Usage: modsignctl reload\n"
               "\n"
               "Make modsignd read its configuration and key again (like systemctl reload\n"
               "modsignd). A bad configuration is refused and the running one kept.\n");
}

int cmd_reload(int argc, char *argv[]) {
        json_object *o = NULL;
        int code;

        if (want_help(argc, argv, help_reload))
                return EXIT_OK;
        if (argc > 1) {
                log_error("reload: takes no arguments");
                return EXIT_USAGE;
        }
        code = daemon_request(PROTO_REQ_RELOAD, NULL, NULL, STATUS_TIMEOUT_MS, &o);
        if (code != EXIT_OK)
                return code;
        if (arg_global.json)
                print_json(o);
        else if (!arg_global.quiet)
                printf("reloaded; signing key SHA-256 %s\n", jstr(o, "key_fingerprint"));
        json_object_put(o);
        return EXIT_OK;
}
