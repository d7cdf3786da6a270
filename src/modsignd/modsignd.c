/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* modsignd: keeps the machine's out-of-tree kernel modules signed. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "daemon-audit.h"
#include "daemon.h"
#include "journal.h"
#include "log.h"
#include "macro.h"
#include "server.h"
#include "watcher.h"

static const char *arg_config = CONFIG_DEFAULT_FILE;
static const char *arg_dropin_dir = CONFIG_DEFAULT_DROPIN_DIR;
static bool arg_check_config;
static bool arg_config_given;

static void help(void) {
        printf("Usage: modsignd [OPTIONS]\n"
               "\n"
               "Keep out-of-tree kernel modules signed: watch the module trees, sign what\n"
               "arrives unsigned, and sign for DKMS over a root-only socket. See modsignd(8).\n"
               "\n"
               "  -c --config FILE    configuration file (default %s;\n"
               "                      drop-ins from FILE.d/ when FILE is given)\n"
               "     --check-config   load configuration and key, report, and exit\n"
               "  -f --foreground     run in the foreground (the default; for compatibility)\n"
               "  -v --verbose        log every module looked at\n"
               "  -h --help           show this help\n"
               "  -V --version        show the version\n",
               CONFIG_DEFAULT_FILE);
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_CHECK_CONFIG = 0x100 };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
                { "foreground", no_argument, NULL, 'f' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {}
        };
        static char dropin[4096];
        int c;

        while ((c = getopt_long(argc, argv, "c:fvhV", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        arg_config_given = true;
                        snprintf(dropin, sizeof(dropin), "%s.d", optarg);
                        arg_dropin_dir = dropin;
                        break;
                case ARG_CHECK_CONFIG:
                        arg_check_config = true;
                        break;
                case 'f':
                        break;
                case 'v':
                        log_set_max_level(LOG_LEVEL_DEBUG);
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("modsignd %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                log_error("unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct daemon *d = userdata;

        d->stopping = true;
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Finishing the modules being signed");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) daemon_reload(userdata);
        return 0;
}

static int load(struct daemon *d) {
        _cleanup_free_ char *error = NULL;
        int r;

        r = config_load(d->config_path, d->config_required, d->dropin_dir, &d->config, &error);
        if (r < 0)
                return log_error_errno(r, "%s", error ?: "cannot load the configuration");
        r = signing_key_load(&d->config, &d->key, &error);
        if (r < 0)
                return log_error_errno(r, "cannot load the signing key: %s", error ?: strerror(-r));
        pthread_mutex_init(&d->rate.lock, NULL);
        r = daemon_policy_load(&d->config, &d->rate, &d->policy, &error);
        if (r < 0)
                return log_error_errno(r, "cannot load the policy: %s", error ?: strerror(-r));
        return 0;
}

static int run(int argc, char *argv[]) {
        struct daemon d = { .config_path = NULL };
        sigset_t mask;
        int r;

        log_set_program_name("modsignd");
        journal_setup();
        /* Key material must never land in a core dump. */
        (void) prctl(PR_SET_DUMPABLE, 0);

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        d.config_path = arg_config;
        d.config_required = arg_config_given;
        d.dropin_dir = arg_dropin_dir;

        r = load(&d);
        if (r < 0) {
                signing_key_unref(d.key);
                config_done(&d.config);
                return EXIT_FAILURE;
        }
        if (arg_check_config) {
                printf("configuration OK: key %s, certificate %s (SHA-256 %s), hash %s, policy %s, %zu watched trees\n",
                       d.config.private_key, d.config.certificate, d.key->fingerprint, d.config.hash,
                       policy_mode_to_string(d.config.policy_mode), d.config.watch_paths.n);
                signing_key_unref(d.key);
                daemon_policy_unref(d.policy);
                config_done(&d.config);
                return EXIT_SUCCESS;
        }

        /* A token's module may write to a peer that is gone: p11-kit's client module, whose
         * server was stopped, raises SIGPIPE in C_Sign. That must be a failed signature
         * (daemon-key.h), not the end of the daemon. (systemd ignores SIGPIPE for services by
         * default; a daemon started any other way needs this.) */
        (void) signal(SIGPIPE, SIG_IGN);

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_default(&d.event);
        if (r < 0)
                goto finish;
        (void) sd_event_now(d.event, CLOCK_MONOTONIC, &d.start_usec);
        (void) sd_event_add_signal(d.event, NULL, SIGTERM, on_sigterm, &d);
        (void) sd_event_add_signal(d.event, NULL, SIGINT, on_sigterm, &d);
        (void) sd_event_add_signal(d.event, NULL, SIGHUP, on_sighup, &d);
        /* WATCHDOG=1 at half of WatchdogSec=, from the loop itself: a wedged loop is caught. */
        (void) sd_event_set_watchdog(d.event, true);

        /* Nothing is signed that cannot be recorded: no audit log, no daemon. */
        r = daemon_audit_open(&d);
        if (r < 0)
                goto finish;
        {
                struct daemon_audit_entry ae;
                struct audit_record rec = {
                        .event = AUDIT_EVENT_KEY_LOADED,
                        .key_fingerprint = d.key->fingerprint,
                        .requester = { .kind = AUDIT_REQUESTER_DAEMON },
                        .reason = "modsignd " PACKAGE_VERSION " started",
                };
                r = daemon_audit_append(&d, &rec, &ae);
                daemon_audit_done(&d, &ae);
                if (r < 0)
                        goto finish;
        }

        r = workers_new(d.event, d.config.workers, &d.workers);
        if (r < 0) {
                log_error_errno(r, "cannot start worker threads: %m");
                goto finish;
        }
        r = server_new(&d, &d.server);
        if (r < 0)
                goto finish;
        r = watcher_new(&d, &d.watcher);
        if (r < 0) {
                log_error_errno(r, "cannot watch the module trees: %m");
                goto finish;
        }

        {
                struct module_event ev = { .message_id = MSGID_KEY_LOADED, .fingerprint = d.key->fingerprint };
                log_module_event(6 /* LOG_INFO */, &ev, "modsignd %s ready: key %s, %u directories watched, %u workers",
                                 PACKAGE_VERSION, d.key->fingerprint, watcher_n_watches(d.watcher),
                                 workers_threads(d.workers));
        }
        (void) sd_notify(false, "READY=1");
        daemon_notify_status(&d);

        r = sd_event_loop(d.event);
        if (r < 0)
                log_error_errno(r, "event loop failed: %m");

finish:
        d.stopping = true;
        /* Running jobs finish their module (each replacement is atomic); queued ones are dropped. */
        workers_free(d.workers);
        daemon_key_done(&d);
        server_free(d.server);
        watcher_free(d.watcher);
        daemon_audit_close(&d);
        signing_key_unref(d.key);
        daemon_policy_unref(d.policy);
        config_done(&d.config);
        sd_event_unref(d.event);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        /* One malloc arena for every thread. A worker's own arena keeps its top (the last
         * module's buffers) resident forever: malloc_trim() trims only the main arena's top.
         * With one arena, the trim when the workers go idle hands a burst's memory back. */
        (void) mallopt(M_ARENA_MAX, 1);
        /* free() itself does not shrink the heap: the workers' deferred malloc_trim() does,
         * once they are idle. Otherwise every job's last free() gives the heap's top back
         * and the next job's malloc() asks for it again, two brk() calls and a TLB
         * shoot-down per module. Buffers above the mmap threshold (128 KiB, fixed by this
         * setting) still go back to the system when freed. */
        (void) mallopt(M_TRIM_THRESHOLD, 8 << 20);
        return run(argc, argv);
}
