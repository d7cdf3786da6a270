/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignctl audit verify|show: check the audit log's hash chain; list its records. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "conf.h"
#include "log.h"
#include "macro.h"
#include "modsignctl.h"

int audit_state_directory(char **ret) {
        const char *e = getenv(AUDIT_STATE_DIR_ENV);
        struct config c;

        if (e && *e) {
                *ret = strdup(e);
                return *ret ? 0 : -ENOMEM;
        }
        /* StateDirectory= of the daemon's configuration (--config's, which must be readable
         * then), when it can be read; else the default. */
        if (arg_global.config_path) {
                _cleanup_free_ char *error = NULL;
                int r = config_load(arg_global.config_path, true, NULL, &c, &error);
                if (r < 0) {
                        log_error("%s", error ?: strerror(-r));
                        return r;
                }
        } else if (config_load(CONFIG_DEFAULT_FILE, false, CONFIG_DEFAULT_DROPIN_DIR, &c, NULL) < 0) {
                *ret = strdup(AUDIT_DEFAULT_STATE_DIR);
                return *ret ? 0 : -ENOMEM;
        }
        *ret = TAKE_PTR(c.state_directory);
        config_done(&c);
        return *ret ? 0 : -ENOMEM;
}

static int default_log_path(char **ret) {
        _cleanup_free_ char *dir = NULL;
        int r = audit_state_directory(&dir);

        if (r < 0)
                return r;
        return asprintf(ret, "%s/%s", dir, AUDIT_LOG_FILE) < 0 ? -ENOMEM : 0;
}

static int open_log(const char *file, char **ret_path, int *ret_fd) {
        _cleanup_free_ char *path = NULL;
        int fd, r;

        if (file)
                path = strdup(file);
        else {
                r = default_log_path(&path);
                if (r < 0)
                        return log_error_errno(r, "cannot find the audit log: %m");
        }
        if (!path)
                return log_oom();
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_error_errno(negative_errno(), "%s: cannot open the audit log: %m", path);
        *ret_fd = fd;
        *ret_path = TAKE_PTR(path);
        return 0;
}

/* --- verify ------------------------------------------------------------------------------------ */

static void verify_help(void) {
        printf("Usage: modsignctl audit verify [--head COUNT:HASH] [--file PATH]\n"
               "\n"
               "Recompute the audit log's hash chain and name the first bad record.\n"
               "\n"
               "  -H --head COUNT:HASH   a head recorded elsewhere (modsignd writes it to the\n"
               "                         journal): record COUNT must exist and hash to HASH\n"
               "  -f --file PATH         the log (default: STATE_DIRECTORY/audit.jsonl)\n"
               "  -h --help              show this help\n"
               "\n"
               "Exit status: 0 intact, %d chain broken, 1 the log cannot be read, 2 usage.\n",
               EXIT_AUDIT_BROKEN);
}

static int audit_verify(int argc, char *argv[]) {
        static const struct option options[] = {
                { "head", required_argument, NULL, 'H' },
                { "file", required_argument, NULL, 'f' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct audit_head anchor, *a = NULL;
        struct audit_verify_result res;
        const char *file = NULL;
        char head[AUDIT_HEAD_STRING_MAX];
        bool json = arg_global.json;
        int c, r;

        while ((c = getopt_long(argc, argv, "H:f:jh", options, NULL)) >= 0)
                switch (c) {
                case 'H':
                        if (audit_head_parse(optarg, &anchor) < 0) {
                                log_error("audit verify: --head takes COUNT:HASH (a SHA-256 in hex), not '%s'", optarg);
                                return EXIT_USAGE;
                        }
                        a = &anchor;
                        break;
                case 'f':
                        file = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        verify_help();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        if (optind < argc) {
                log_error("audit verify: unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }

        if (open_log(file, &path, &fd) < 0)
                return EXIT_ERROR;
        r = audit_verify_fd(fd, a, &res);
        if (r < 0 && r != -EBADMSG) {
                log_error_errno(r, "%s: cannot read the audit log: %m", path);
                return EXIT_ERROR;
        }
        audit_head_format(&res.head, head);

        if (json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "file", json_object_new_string(path));
                json_object_object_add(o, "intact", json_object_new_boolean(r == 0));
                json_object_object_add(o, "records", json_object_new_int64((int64_t) res.n_records));
                json_object_object_add(o, "head", json_object_new_string(head));
                if (r < 0) {
                        json_object_object_add(o, "bad_line", json_object_new_int64((int64_t) res.bad_line));
                        json_object_object_add(o, "bad_seq", json_object_new_int64((int64_t) res.bad_seq));
                        json_object_object_add(o, "why", json_object_new_string(res.why));
                }
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
        } else if (r == 0) {
                if (!arg_global.quiet)
                        printf("%s: intact, %llu records, head %s%s\n", path, (unsigned long long) res.n_records, head,
                               a ? " (matches the head given)" : "");
        } else
                printf("%s: chain broken at line %llu (seq %llu): %s\n", path, (unsigned long long) res.bad_line,
                       (unsigned long long) res.bad_seq, res.why);
        return r == 0 ? EXIT_OK : EXIT_AUDIT_BROKEN;
}

/* --- show -------------------------------------------------------------------------------------- */

struct show_args {
        const char *module, *kernel, *event;
        time_t since, until;
        bool have_since, have_until, json;
        unsigned shown;
};

/* "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS]", "YYYY-MM-DDTHH:MM:SS[Z]" (UTC) or "@EPOCH". */
static int parse_time(const char *s, time_t *ret) {
        static const char *const formats[] = { "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
                                                "%Y-%m-%d %H:%M", "%Y-%m-%d" };

        if (s[0] == '@') {
                char *end;
                long long v;
                errno = 0;
                v = strtoll(s + 1, &end, 10);
                if (errno || !s[1] || *end)
                        return -EINVAL;
                *ret = (time_t) v;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(formats); i++) {
                struct tm tm = {};
                const char *end = strptime(s, formats[i], &tm);
                if (end && !*end) {
                        *ret = timegm(&tm);
                        return 0;
                }
        }
        return -EINVAL;
}

static const char *member(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                                : NULL;
}

static bool record_matches(struct show_args *a, json_object *o) {
        const char *module = member(o, "module"), *path = member(o, "path"), *t;
        time_t when;

        if (a->module && !((module && fnmatch(a->module, module, 0) == 0) || (path && fnmatch(a->module, path, 0) == 0)))
                return false;
        if (a->kernel && !streq_ptr(a->kernel, member(o, "kernel")))
                return false;
        if (a->event && !streq_ptr(a->event, member(o, "event")))
                return false;
        if (a->have_since || a->have_until) {
                t = member(o, "time");
                if (!t || parse_time(t, &when) < 0)
                        return false;
                if ((a->have_since && when < a->since) || (a->have_until && when > a->until))
                        return false;
        }
        return true;
}

static void print_record(json_object *o) {
        json_object *seq = NULL, *q = NULL, *d = NULL;
        const char *s;

        (void) json_object_object_get_ex(o, "seq", &seq);
        printf("%lld %s %-11s", (long long) json_object_get_int64(seq), member(o, "time") ?: "?", member(o, "event") ?: "?");
        if ((s = member(o, "module")))
                printf(" %s", s);
        if ((s = member(o, "version")))
                printf(" %s", s);
        if ((s = member(o, "kernel")))
                printf(" kernel %s", s);
        if (json_object_object_get_ex(o, "dkms", &d) && json_object_is_type(d, json_type_object))
                printf(" dkms %s/%s", member(d, "package") ?: "?", member(d, "version") ?: "?");
        if (json_object_object_get_ex(o, "requester", &q)) {
                if (json_object_is_type(q, json_type_object)) {
                        json_object *pid = NULL, *uid = NULL;
                        (void) json_object_object_get_ex(q, "pid", &pid);
                        (void) json_object_object_get_ex(q, "uid", &uid);
                        printf(" by pid %lld uid %lld (%s)", (long long) json_object_get_int64(pid),
                               (long long) json_object_get_int64(uid), member(q, "comm") ?: "?");
                        if (member(q, "command"))
                                printf(" '%s'", member(q, "command"));
                } else
                        printf(" by %s", json_object_get_string(q));
        }
        if ((s = member(o, "rule")))
                printf(" rule %s", s);
        if ((s = member(o, "reason")))
                printf(": %s", s);
        printf("\n");
        if ((s = member(o, "path")))
                printf("    path %s\n", s);
        if ((s = member(o, "key")))
                printf("    key %s\n", s);
        if ((s = member(o, "sha256_before")))
                printf("    before %s\n", s);
        if ((s = member(o, "sha256_after")))
                printf("    after %s\n", s);
}

static int show_line(uint64_t line_no, const char *line, size_t len, bool complete, void *userdata) {
        struct show_args *a = userdata;
        json_tokener *tok = json_tokener_new();
        json_object *o;

        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, line, (int) MIN(len, (size_t) INT32_MAX));
        if (!complete || !o || !json_object_is_type(o, json_type_object))
                log_warning("line %llu is not a complete record (run 'modsignctl audit verify')", (unsigned long long) line_no);
        else if (record_matches(a, o)) {
                a->shown++;
                if (a->json)
                        printf("%.*s\n", (int) len, line);
                else
                        print_record(o);
        }
        json_object_put(o);
        json_tokener_free(tok);
        return 0;
}

static void show_help(void) {
        printf("Usage: modsignctl audit show [OPTIONS]\n"
               "\n"
               "List the audit log's records, oldest first (this does not check the chain:\n"
               "use 'modsignctl audit verify').\n"
               "\n"
               "  -m --module GLOB   records whose module name or path matches GLOB\n"
               "  -k --kernel KVER   records for kernel release KVER\n"
               "  -S --since TIME    records at or after TIME (UTC: YYYY-MM-DD[ HH:MM[:SS]],\n"
               "                     YYYY-MM-DDTHH:MM:SSZ or @EPOCH)\n"
               "  -U --until TIME    records at or before TIME\n"
               "  -e --event EVENT   signed, resigned, refused, failed, key-loaded,\n"
               "                     key-rotated, reloaded or approved\n"
               "  -j --json          the records as they are in the log, one JSON object a line\n"
               "  -f --file PATH     the log (default: STATE_DIRECTORY/audit.jsonl)\n"
               "  -h --help          show this help\n");
}

static int audit_show(int argc, char *argv[]) {
        static const struct option options[] = {
                { "module", required_argument, NULL, 'm' },
                { "kernel", required_argument, NULL, 'k' },
                { "since", required_argument, NULL, 'S' },
                { "until", required_argument, NULL, 'U' },
                { "event", required_argument, NULL, 'e' },
                { "json", no_argument, NULL, 'j' },
                { "file", required_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct show_args a = { .json = arg_global.json };
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *file = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "m:k:S:U:e:jf:h", options, NULL)) >= 0)
                switch (c) {
                case 'm':
                        a.module = optarg;
                        break;
                case 'k':
                        a.kernel = optarg;
                        break;
                case 'S':
                case 'U':
                        if (parse_time(optarg, c == 'S' ? &a.since : &a.until) < 0) {
                                log_error("audit show: bad time '%s' (YYYY-MM-DD[ HH:MM[:SS]], YYYY-MM-DDTHH:MM:SSZ, @EPOCH)",
                                          optarg);
                                return EXIT_USAGE;
                        }
                        if (c == 'S')
                                a.have_since = true;
                        else
                                a.have_until = true;
                        break;
                case 'e':
                        if (audit_event_from_string(optarg) < 0) {
                                log_error("audit show: unknown event '%s'", optarg);
                                return EXIT_USAGE;
                        }
                        a.event = optarg;
                        break;
                case 'j':
                        a.json = true;
                        break;
                case 'f':
                        file = optarg;
                        break;
                case 'h':
                        show_help();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        if (optind < argc) {
                log_error("audit show: unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        if (open_log(file, &path, &fd) < 0)
                return EXIT_ERROR;
        r = audit_for_each_line(fd, show_line, &a);
        if (r < 0) {
                log_error_errno(r, "%s: %s", path, r == -EBADMSG ? "a line too long to be a record" : strerror(-r));
                return EXIT_ERROR;
        }
        return EXIT_OK;
}

int cmd_audit(int argc, char *argv[]) {
        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                printf("Usage: modsignctl audit verify [--head COUNT:HASH] [--file PATH]\n"
                       "       modsignctl audit show [--module GLOB] [--kernel KVER] [--since TIME] [--until TIME]\n"
                       "                             [--event EVENT] [--json] [--file PATH]\n");
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        if (streq(argv[1], "verify"))
                return audit_verify(argc - 1, argv + 1);
        if (streq(argv[1], "show"))
                return audit_show(argc - 1, argv + 1);
        log_error("audit: unknown subcommand '%s' (verify or show)", argv[1]);
        return EXIT_USAGE;
}
